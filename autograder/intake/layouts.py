"""The layouts a batch of submissions comes in, and what each tells about who submitted what and when.

:func:`layout_candidates` recognises the layout of a folder, in this order, and reads one
:class:`Candidate` per submitted file or folder (a :class:`Submission` with the :class:`Identity` the
layout gives, how recent it is, and whether it is named like the assignment's notebook):

- Gradescope export: ``submission_metadata.yml`` at the root maps each ``submission_<id>/`` folder to
  ``{":submitters": [{":name", ":sid", ":email"}], ":created_at", ":status", ...}`` (read with a
  PyYAML *safe* loader that also accepts Ruby-tagged values as plain data). One candidate per
  submitter (a group submission gives each member the same notebook). Late when the record says
  ``:late: true`` or, given ``due``, when ``:created_at`` is after it.
- Canvas bulk download: files named ``<login>[_LATE]_<user id>_<file id>_<original name>``; Canvas
  appends ``-1``, ``-2``... to re-submitted names. ``_LATE`` sets ``late``; the student key is the
  Canvas user id, and a larger file id is a newer upload (:func:`upload_order`).
- Folder of notebooks: each ``<student>.ipynb`` at the root (student id = file stem), or each
  ``<student>/`` sub-folder holding one notebook (student id = folder name).

A folder's notebook is its only one, or the only one named like the assignment's (:func:`named_like`);
otherwise the Submission has no ``path`` and a ``reason`` ("no_notebook" or "multiple_notebooks").
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any, Iterable

import yaml

from autograder.intake.inputs import InputError, SubmissionsError, parse_time
from autograder.intake.notebook import find_notebooks, is_clutter

GRADESCOPE_METADATA = "submission_metadata.yml"
CANVAS_NAME = re.compile(r"^(?P<login>[^_]+?)(?P<late>_LATE)?_(?P<user>\d+)_(?P<file>\d+)_(?P<original>.+)$")
RESUBMISSION_SUFFIX = re.compile(r"-\d+(?=\.[^.]+$)|-\d+$")


@dataclass
class Submission:
    """One student's submission as the batch holds it: the notebook to grade and what the layout told."""

    student_id: str | None  # None: could not be mapped to a student (see problems)
    student_name: str | None
    path: Path | None  # the notebook to grade; None when there is no single one (see reason)
    late: bool = False
    submitted_at: str | None = None  # ISO 8601 when the source tells
    source_name: str = ""  # the file or folder name in the batch, for TAs
    submitted_name: str | None = None  # the notebook's name as submitted (otter's ``file`` column)
    canvas_id: str | None = None  # the Canvas user id, from a Canvas bulk download's file name
    problems: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # this student's other files, not graded
    reason: str | None = None  # "no_notebook" / "multiple_notebooks" when path is None


@dataclass(frozen=True)
class Identity:
    """What a batch layout tells about who submitted, before the roster is consulted."""

    key: str  # unique per student within the layout, e.g. "canvas:12345"
    id: str | None = None  # an institution id (a roster's student_id)
    canvas_id: str | None = None  # a Canvas user id (a roster's canvas_id)
    login: str | None = None
    name: str | None = None
    email: str | None = None


@dataclass
class Candidate:
    identity: Identity
    submission: Submission
    recency: Any = None  # larger is newer; None when the layout does not tell
    preferred: bool = False  # its notebook is named like the assignment's


def layout_candidates(root: Path, due: datetime | None, notebook_name: str | None) -> Iterable[Candidate]:
    """The candidates of the layout ``root`` is in (see module doc)."""
    if (root / GRADESCOPE_METADATA).is_file():
        return gradescope_candidates(root, due, notebook_name)
    files = [p for p in sorted(root.iterdir()) if p.is_file() and not is_clutter(p.name)]
    if any(CANVAS_NAME.match(p.name) for p in files):
        return canvas_candidates(files, notebook_name)
    return folder_candidates(root, notebook_name)


def unwrap(root: Path) -> Path:
    """Where an extracted zip's layout starts: inside a single folder (people zip the folder, not its contents)."""
    entries = [p for p in root.iterdir() if not is_clutter(p.name)]
    while len(entries) == 1 and entries[0].is_dir() and not (root / GRADESCOPE_METADATA).exists():
        root = entries[0]
        entries = [p for p in root.iterdir() if not is_clutter(p.name)]
    return root


class GradescopeLoader(yaml.SafeLoader):
    """``yaml.safe_load`` semantics; values tagged ``!ruby/...`` (Gradescope is a Rails app) read as plain data."""


def _untagged(loader: GradescopeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


GradescopeLoader.add_multi_constructor("!ruby/", _untagged)


def field_of(record: dict, name: str) -> Any:
    """Gradescope writes Ruby symbols as keys (``:sid``); plain keys are accepted too."""
    return record.get(f":{name}", record.get(name))


def gradescope_candidates(root: Path, due: datetime | None, notebook_name: str | None) -> list[Candidate]:
    try:
        metadata = yaml.load((root / GRADESCOPE_METADATA).read_text(encoding="utf-8"), Loader=GradescopeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SubmissionsError(f"{GRADESCOPE_METADATA}: cannot be read: {exc}") from exc
    if not isinstance(metadata, dict):
        raise SubmissionsError(f"{GRADESCOPE_METADATA}: expected a mapping of submission folders")
    candidates = []
    listed = set()
    for folder_name, record in sorted(metadata.items(), key=lambda item: str(item[0])):
        folder_name = str(folder_name)
        listed.add(folder_name)
        record = record if isinstance(record, dict) else {}
        folder = (root / folder_name).resolve()
        submission = Submission(None, None, None, source_name=folder_name)
        inside = folder.is_relative_to(root.resolve()) and folder.is_dir()  # a key may say "../elsewhere"
        if not inside:
            submission.problems.append(f"{folder_name}: listed in {GRADESCOPE_METADATA} but no such folder")
        pick_single_notebook(submission, find_notebooks(folder) if inside else [], notebook_name)
        preferred = submission.path is not None and named_like(submission.path.name, notebook_name)
        created = field_of(record, "created_at")
        created_at = lenient_time(created)
        submission.submitted_at = created_at.isoformat() if created_at else (str(created) if created else None)
        submission.late = bool(field_of(record, "late")) or bool(due and created_at and is_after(created_at, due))
        recency = created_at.timestamp() if created_at else None  # zones may differ between records
        submitters = [s for s in field_of(record, "submitters") or [] if isinstance(s, dict)]
        if not submitters:
            submission.problems.append(f"{folder_name}: no submitters in {GRADESCOPE_METADATA}")
            candidates.append(Candidate(Identity(key=f"gradescope-folder:{folder_name}"), submission, recency,
                                        preferred))
        for person in submitters:
            sid, email, name = (text_or_none(field_of(person, k)) for k in ("sid", "email", "name"))
            member = replace(submission, student_id=sid, student_name=name, problems=list(submission.problems),
                             ignored=list(submission.ignored))
            if len(submitters) > 1:
                member.problems.append(f"group submission of {len(submitters)} students")
            key = f"gradescope:{sid or email or name or folder_name}"
            candidates.append(Candidate(Identity(key, id=sid, name=name, email=email), member, recency, preferred))
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not is_clutter(p.name)):
        if folder.name not in listed:
            submission = Submission(None, None, None, source_name=folder.name,
                                    problems=[f"{folder.name}: not listed in {GRADESCOPE_METADATA}"])
            pick_single_notebook(submission, find_notebooks(folder), notebook_name)
            candidates.append(Candidate(Identity(key=f"gradescope-folder:{folder.name}"), submission))
    return candidates


def canvas_candidates(files: list[Path], notebook_name: str | None) -> list[Candidate]:
    candidates = []
    for path in files:
        match = CANVAS_NAME.match(path.name)
        if match is None:
            submission = Submission(None, None, path if is_notebook(path) else None, source_name=path.name,
                                    submitted_name=path.name,
                                    problems=[f"{path.name}: name does not follow Canvas's "
                                              "<login>_<user id>_<file id>_<name> pattern"])
            if submission.path is None:
                submission.reason = "no_notebook"
            candidates.append(Candidate(Identity(key=f"file:{path.name}"), submission))
            continue
        login, user = match["login"], match["user"]
        original = RESUBMISSION_SUFFIX.sub("", match["original"])
        submission = Submission(user, login, path, late=bool(match["late"]), source_name=path.name,
                                submitted_name=path.name, canvas_id=user)
        if not is_notebook(path):
            submission.path, submission.reason = None, "no_notebook"
            submission.problems.append(f"{original} is not a notebook")
        preferred = submission.path is not None and named_like(original, notebook_name)
        candidates.append(Candidate(Identity(f"canvas:{user}", canvas_id=user, login=login), submission,
                                    int(match["file"]), preferred))
    return candidates


def folder_candidates(root: Path, notebook_name: str | None) -> list[Candidate]:
    candidates = []
    for entry in sorted(p for p in root.iterdir() if not is_clutter(p.name)):
        if entry.is_dir():
            submission = Submission(entry.name, None, None, source_name=entry.name)
            pick_single_notebook(submission, find_notebooks(entry), notebook_name)
        elif is_notebook(entry):
            submission = Submission(entry.stem, None, entry, source_name=entry.name, submitted_name=entry.name)
        else:
            submission = Submission(entry.stem, None, None, source_name=entry.name, reason="no_notebook",
                                    problems=[f"{entry.name} is not a notebook"])
        candidates.append(Candidate(Identity(f"folder:{submission.student_id}", id=submission.student_id,
                                             login=submission.student_id), submission))
    return candidates


def pick_single_notebook(submission: Submission, notebooks: list[Path], notebook_name: str | None) -> None:
    """The notebook of a student's folder: its only one, or the only one named like the assignment's;
    otherwise say why there is none to grade."""
    named = [nb for nb in notebooks if named_like(nb.name, notebook_name)]
    if len(notebooks) > 1 and len(named) == 1:
        ignored = [nb.name for nb in notebooks if nb != named[0]]
        submission.ignored += [f"{submission.source_name}/{name}" for name in ignored]
        submission.problems.append(f"{submission.source_name}: {len(notebooks)} notebooks; kept the one named "
                                   f"like the template ({named[0].name}), ignored {', '.join(ignored)}")
        notebooks = named
    if len(notebooks) == 1:
        submission.path = notebooks[0]
        submission.submitted_name = f"{submission.source_name}/{notebooks[0].name}"
    elif not notebooks:
        submission.reason = "no_notebook"
        submission.problems.append(f"{submission.source_name}: no notebook in the folder")
    else:
        submission.reason = "multiple_notebooks"
        submission.problems.append(f"{submission.source_name}: {len(notebooks)} notebooks "
                                   f"({', '.join(p.name for p in notebooks)}); submit exactly one")


def is_notebook(path: Path) -> bool:
    return path.suffix.lower() == ".ipynb"


def upload_order(file_name: str) -> int | None:
    """Where an upload stands in the course site's own order, when its file name says: a Canvas bulk
    download's file id (a later upload has a larger one). None for other sources."""
    match = CANVAS_NAME.match(PurePath(str(file_name)).name)
    return int(match["file"]) if match else None


def named_like(file_name: str, notebook_name: str | None) -> bool:
    """Whether a submitted notebook carries the assignment's notebook name, give or take case,
    punctuation and Canvas's re-submission suffix ("MNIST-Homework-1.ipynb" for mnist_homework.ipynb)."""
    if not notebook_name or not is_notebook(Path(file_name)):
        return False
    return squash(Path(RESUBMISSION_SUFFIX.sub("", file_name)).stem) == squash(Path(notebook_name).stem)


def lenient_time(value: Any) -> datetime | None:
    """A time from an LMS export, or None when it is absent or unreadable (the record is kept)."""
    try:
        return parse_time(value)
    except InputError:
        return None


def text_or_none(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def is_after(moment: datetime, due: datetime) -> bool:
    """Compare instants; a time without a zone is taken as local time (as datetime.timestamp does)."""
    return moment.timestamp() > due.timestamp()


def squash(text: str) -> str:
    """Lowercase ASCII letters and digits only: "José Doe-Smith" -> "josedoesmith"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", ascii_text.lower())
