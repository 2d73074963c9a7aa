"""A batch's input, as one :class:`~autograder.intake.layouts.Submission` per student.

``collect(source, workdir=..., roster=...)`` accepts a folder or a ``.zip`` of one. A zip is extracted
safely into ``workdir`` (:mod:`autograder.intake.archives`); a zip whose only entry is one folder is
looked into. The layout (Gradescope export, Canvas bulk download, folder of notebooks) is recognised and
read by :mod:`autograder.intake.layouts`. A source in which no submission holds a notebook is refused
(nothing in it could be graded). With a roster, each submission is mapped to a roster student
(:mod:`autograder.intake.roster`); what cannot be mapped is kept with ``student_id=None`` and a problem
string, never dropped.

Each student ends with at most one Submission: the notebook is preferred over other files; among
several notebooks, the one named like the assignment's notebook (``notebook_name``, ignoring case,
punctuation and Canvas's ``-1``), then the newest (Canvas file id, Gradescope ``created_at``) is
kept. The choice is noted in ``problems`` and the files not graded are listed in ``ignored``. When
no single notebook can be chosen, ``path`` is None and ``reason`` says why ("no_notebook" or
"multiple_notebooks", codes of :data:`autograder.results.REASONS`).
"""
from __future__ import annotations

import zipfile
from collections import defaultdict
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pandas as pd

from autograder.intake.archives import ZipLimits, safe_extract
from autograder.intake.inputs import SubmissionsError
from autograder.intake.layouts import Candidate, Submission, layout_candidates, unwrap
from autograder.intake.roster import map_to_roster, read_roster


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
