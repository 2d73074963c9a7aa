"""A batch's input, as one :class:`Submission` per student.

``collect(source, workdir=..., roster=...)`` accepts a folder or a ``.zip`` of one. A zip is extracted
safely into ``workdir`` (members that are absolute, climb out with ``..`` or are symlinks refuse the
archive; member count and total size are capped against zip bombs); a zip whose only entry is one
folder is looked into. The layout is then recognised, in this order:

- Gradescope export: ``submission_metadata.yml`` at the root maps each ``submission_<id>/`` folder to
  ``{":submitters": [{":name", ":sid", ":email"}], ":created_at", ":status", ...}`` (read with a
  PyYAML *safe* loader that also accepts Ruby-tagged values as plain data). One Submission per
  submitter (a group submission gives each member the same notebook). Late when the record says
  ``:late: true`` or, given ``due``, when ``:created_at`` is after it.
- Canvas bulk download: files named ``<login>[_LATE]_<user id>_<file id>_<original name>``; Canvas
  appends ``-1``, ``-2``... to re-submitted names. ``_LATE`` sets ``late``; the student key is the
  Canvas user id, and a larger file id is a newer upload.
- Folder of notebooks: each ``<student>.ipynb`` at the root (student id = file stem), or each
  ``<student>/`` sub-folder holding one notebook (student id = folder name).

A source in which no submission holds a notebook is refused (nothing in it could be graded).

With a roster (:func:`autograder.intake.inputs.read_roster`), each submission is mapped to a roster
student: a Canvas file by the roster's ``canvas_id`` (never by ``student_id``, which is another id
space), any other by ``student_id``; then by Canvas-style login or email, then by name; a unique
match is required, and a Canvas file is never mapped to a student whose ``canvas_id`` is another. A
roster without any ``canvas_id`` is taken to list Canvas ids as ``student_id`` (as the demo's does),
unless the file's login, email or name points at another student. What cannot be mapped is kept
with ``student_id=None`` and a problem string, never dropped.

Each student ends with at most one Submission: the notebook is preferred over other files; among
several notebooks, the one named like the assignment's notebook (``notebook_name``, ignoring case,
punctuation and Canvas's ``-1``), then the newest (Canvas file id, Gradescope ``created_at``) is
kept. The choice is noted in ``problems`` and the files not graded are listed in ``ignored``. When
no single notebook can be chosen, ``path`` is None and ``reason`` says why ("no_notebook" or
"multiple_notebooks", codes of :data:`autograder.results.REASONS`).
"""
from __future__ import annotations

import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
import zlib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path, PurePath, PurePosixPath
from typing import Any, Iterable

import pandas as pd
import yaml

from autograder.intake.inputs import InputError, parse_time, read_roster
from autograder.intake.notebook import find_notebooks, is_clutter

GRADESCOPE_METADATA = "submission_metadata.yml"
CANVAS_NAME = re.compile(r"^(?P<login>[^_]+?)(?P<late>_LATE)?_(?P<user>\d+)_(?P<file>\d+)_(?P<original>.+)$")
RESUBMISSION_SUFFIX = re.compile(r"-\d+(?=\.[^.]+$)|-\d+$")


class SubmissionsError(InputError):
    """The batch input as a whole cannot be used (unreadable, unsafe archive, bad roster)."""


@dataclass(frozen=True)
class ZipLimits:
    """What a zip of submissions may unpack to (zip bombs are refused before and while extracting)."""

    members: int = 20_000
    bytes: int = 8 * 2**30  # 300 students x 25 MB, with room to spare


@dataclass
class Submission:
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


def collect(source: str | Path, *, workdir: str | Path | None = None,
            roster: str | Path | pd.DataFrame | None = None,
            due: datetime | None = None, zip_limits: ZipLimits = ZipLimits(),
            notebook_name: str | None = None) -> list[Submission]:
    """One Submission per student found in ``source`` (see module doc); refuses a source with none.

    ``notebook_name`` is the assignment's notebook (``Assignment.student_notebook``): among one
    student's notebooks, the one named like it is graded.
    """
    source = Path(source)
    if roster is not None and not isinstance(roster, pd.DataFrame):
        roster = read_roster(roster)
    if not source.exists():
        raise SubmissionsError(f"{source}: no such file or folder")
    if source.is_file() and source.suffix.lower() == ".zip" and not zipfile.is_zipfile(source):
        raise SubmissionsError(f"{source}: the zip file is corrupt or truncated (download it again)")
    if source.is_file() and zipfile.is_zipfile(source):
        if workdir is None:
            raise SubmissionsError(f"{source}: a zip needs a workdir to be extracted into")
        source = unwrap(safe_extract(source, Path(workdir), zip_limits))
    elif not source.is_dir():
        raise SubmissionsError(f"{source}: expected a folder or a .zip of submissions")
    candidates = list(layout_candidates(source, due, notebook_name))
    if not candidates:
        raise SubmissionsError(f"{source}: holds no submissions (expected notebooks, student folders, "
                               "a Canvas bulk download or a Gradescope export)")
    if not any(c.submission.path or c.submission.reason == "multiple_notebooks" for c in candidates):
        names = sorted(c.submission.source_name for c in candidates)
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        raise SubmissionsError(f"{source}: holds no notebook, only {', '.join(names[:3])}{more}; expected .ipynb "
                               "files, student folders, a Canvas bulk download or a Gradescope export")
    if roster is not None:
        candidates = map_to_roster(candidates, roster)
    return one_per_student(candidates)


def layout_candidates(root: Path, due: datetime | None, notebook_name: str | None) -> Iterable[Candidate]:
    if (root / GRADESCOPE_METADATA).is_file():
        return gradescope_candidates(root, due, notebook_name)
    files = [p for p in sorted(root.iterdir()) if p.is_file() and not is_clutter(p.name)]
    if any(CANVAS_NAME.match(p.name) for p in files):
        return canvas_candidates(files, notebook_name)
    return folder_candidates(root, notebook_name)


# --- safe extraction --------------------------------------------------------------------------------

def safe_extract(archive: Path, workdir: Path, limits: ZipLimits = ZipLimits()) -> Path:
    """Extract ``archive`` into a fresh folder under ``workdir``, refusing anything unsafe."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > limits.members:
                raise SubmissionsError(f"{archive.name}: {len(members)} entries (limit {limits.members})")
            declared = sum(m.file_size for m in members)
            if declared > limits.bytes:
                raise SubmissionsError(f"{archive.name}: would unpack to {declared / 2**30:.1f} GiB "
                                       f"(limit {limits.bytes / 2**30:.0f} GiB)")
            workdir.mkdir(parents=True, exist_ok=True)
            dest = Path(tempfile.mkdtemp(prefix=f"{archive.stem}-", dir=workdir)).resolve()
            try:
                extract_members(zf, members, dest, archive.name, limits.bytes)
            except BaseException:
                shutil.rmtree(dest, ignore_errors=True)  # no half-extracted batch left behind
                raise
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # damaged headers or damaged data
        raise SubmissionsError(f"{archive.name}: the zip file is corrupt ({exc}); download it again") from exc
    except (zipfile.LargeZipFile, NotImplementedError, RuntimeError, OSError) as exc:
        raise SubmissionsError(f"{archive.name}: cannot be extracted ({exc})") from exc
    return dest


def extract_members(zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], dest: Path, archive_name: str,
                    max_bytes: int) -> None:
    budget = max_bytes  # counted while copying too: the declared sizes could lie
    for member in members:
        target = member_target(member, dest, archive_name)
        if target is None:
            continue
        if member.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(member) as src, target.open("wb") as out:
            budget -= copy_capped(src, out, budget)
        if budget < 0:
            raise SubmissionsError(f"{archive_name}: unpacks to more than {max_bytes / 2**30:.0f} GiB")


def member_target(member: zipfile.ZipInfo, dest: Path, archive_name: str) -> Path | None:
    """Where a member goes under ``dest``; None for clutter. Unsafe members refuse the archive."""
    name = member.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise SubmissionsError(f"{archive_name}: entry {member.filename!r} points outside the archive; "
                               "refusing the whole archive")
    if stat.S_ISLNK(member.external_attr >> 16):
        raise SubmissionsError(f"{archive_name}: entry {member.filename!r} is a symbolic link; "
                               "refusing the whole archive")
    if not parts or "__MACOSX" in parts:
        return None
    target = dest.joinpath(*parts).resolve()
    if not target.is_relative_to(dest):
        raise SubmissionsError(f"{archive_name}: entry {member.filename!r} points outside the archive")
    return target


def copy_capped(src, out, budget: int, chunk: int = 1 << 20) -> int:
    """Copy at most ``budget`` + 1 bytes; return how many were copied."""
    copied = 0
    while copied <= budget and (data := src.read(min(chunk, budget + 1 - copied))):
        out.write(data)
        copied += len(data)
    return copied


def unwrap(root: Path) -> Path:
    """Look into a zip that holds a single folder (people zip the folder, not its contents)."""
    entries = [p for p in root.iterdir() if not is_clutter(p.name)]
    while len(entries) == 1 and entries[0].is_dir() and not (root / GRADESCOPE_METADATA).exists():
        root = entries[0]
        entries = [p for p in root.iterdir() if not is_clutter(p.name)]
    return root


# --- layouts ------------------------------------------------------------------------------------------

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


# --- roster -------------------------------------------------------------------------------------------

def squash(text: str) -> str:
    """Lowercase ASCII letters and digits only: "José Doe-Smith" -> "josedoesmith"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", ascii_text.lower())


def name_forms(name: str) -> set[str]:
    """A name as written and in Canvas's login style (family name first)."""
    if "," in name:
        family, given = name.split(",", 1)
    else:
        *given_parts, family = name.split() or [""]
        given = " ".join(given_parts)
    return {squash(given + family), squash(family + given)} - {""}


def canvas_id_of(student: Any) -> str:
    return str(getattr(student, "canvas_id", "") or "")


def map_to_roster(candidates: list[Candidate], roster: pd.DataFrame) -> list[Candidate]:
    students = list(roster.itertuples(index=False))
    by_id = {s.student_id: s for s in students}
    by_canvas = {canvas_id_of(s): s for s in students if canvas_id_of(s)}
    by_email = defaultdict(list)
    by_login = defaultdict(list)
    by_name = defaultdict(list)
    for student in students:
        if student.email:
            by_email[student.email.lower()].append(student)
            by_login[squash(student.email.split("@")[0])].append(student)
        for form in name_forms(student.name or ""):
            by_login[form].append(student)
            by_name[form].append(student)
    for candidate in candidates:
        who = candidate.identity
        named = [
            ("login", by_login.get(squash(who.login), []) if who.login else []),
            ("email", by_email.get(who.email.lower(), []) if who.email else []),
            ("name", by_name.get(squash(who.name), []) if who.name else []),
        ]
        if who.canvas_id and by_canvas:  # a student whose Canvas id is another did not upload this file
            named = [(how, [s for s in found if canvas_id_of(s) in ("", who.canvas_id)]) for how, found in named]
        # Canvas ids are looked up among the roster's Canvas ids; only a roster that has none is taken to
        # list Canvas ids as its student ids.
        canvas_ids = by_canvas if by_canvas else by_id
        lookups = [("Canvas id", [canvas_ids[who.canvas_id]] if who.canvas_id in canvas_ids else []),
                   ("id", [by_id[who.id]] if who.id in by_id else []), *named]
        submission = candidate.submission
        matches = next(((how, found) for how, found in lookups if found), None)
        by_other = next(((how, found) for how, found in named if found), None)
        described = ", ".join(f"{k} {v!r}" for k, v in (("Canvas id", who.canvas_id), ("id", who.id),
                                                         ("login", who.login), ("name", who.name),
                                                         ("email", who.email)) if v)
        if (matches and matches[0] == "Canvas id" and not by_canvas and by_other
                and matches[1][0].student_id not in {s.student_id for s in by_other[1]}):
            problem = (f"its Canvas id is student_id {matches[1][0].student_id!r} on the roster but its "
                       f"{by_other[0]} is another student's ({described}); add a canvas_id column to the roster")
        elif matches and len({s.student_id for s in matches[1]}) == 1:
            student = matches[1][0]
            submission.student_id, submission.student_name = student.student_id, student.name or None
            continue
        elif matches:
            problem = f"matches several roster students by {matches[0]} ({described})"
        else:
            problem = f"not on the roster ({described or submission.source_name})"
        submission.student_id = None
        submission.problems.append(problem)
    return candidates


# --- one per student -------------------------------------------------------------------------------

def one_per_student(candidates: list[Candidate]) -> list[Submission]:
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        student = candidate.submission.student_id
        groups[f"id:{student}" if student is not None else candidate.identity.key].append(candidate)
    chosen = [choose(group) for group in groups.values()]
    return sorted(chosen, key=lambda s: (s.student_id is None, s.student_id or "", s.source_name))


def choose(group: list[Candidate]) -> Submission:
    """The submission to grade among one student's files (see module doc)."""
    if len(group) == 1:
        return group[0].submission
    notebooks = [c for c in group if c.submission.path is not None]
    others = sorted(c.submission.source_name for c in group if c.submission.path is None)
    if not notebooks:
        best = max(group, key=lambda c: (c.recency is not None, c.recency or 0)).submission
        best.problems.append(f"none of the files is a notebook: {', '.join(others)}")
        return best
    contenders = [c for c in notebooks if c.preferred] or notebooks
    if len(contenders) > 1 and any(c.recency is None for c in contenders):
        names = ", ".join(sorted(c.submission.source_name for c in notebooks))
        first = notebooks[0].submission
        return replace(first, path=None, reason="multiple_notebooks",
                       problems=first.problems + [f"several notebooks for one student ({names}); "
                                                  "no way to tell which is newest"])
    best = max(contenders, key=lambda c: c.recency or 0)
    submission = best.submission
    ignored = sorted(c.submission.source_name for c in notebooks if c is not best)
    if ignored:
        why = {(True, False): "newest", (False, True): "one named like the template",
               (True, True): "newest of those named like the template"}[(len(contenders) > 1,
                                                                         len(contenders) < len(notebooks))]
        submission.problems.append(f"{len(notebooks)} notebooks submitted; kept the {why} "
                                   f"({submission.source_name}), ignored {', '.join(ignored)}")
    if others:
        submission.problems.append(f"ignored files that are not notebooks: {', '.join(others)}")
    submission.ignored += ignored + others
    return submission
