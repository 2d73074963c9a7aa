"""What intake decided about a batch, as one record: written by ``grade`` into ``RESULTS/batch.json``,
read back by ``grade``'s closing summary, ``show``, the instructor page and the review queue through
:func:`read_decisions`.

A decision is kept for every submission intake had to choose or doubt about: a file it picked among
several (and the files it ignored), a file it could not map to a roster student, a name that matched
several, a student with no single notebook, a group submission. File names come from the students'
uploads: every reader shows them through :func:`~autograder.student_text.plain_text`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from autograder.intake.inputs import InputError
from autograder.intake.layouts import Submission
from autograder.student_text import plain_text

BATCH_RECORD = "batch.json"


@dataclass(frozen=True)
class Decision:
    student_id: str | None  # None: not mapped to a roster student
    source_name: str  # the file or folder in the batch the decision is about
    graded: str | None  # the file graded for this student; None when none was (see reason)
    reason: str | None = None  # why none was: "no_notebook", "multiple_notebooks"
    ignored: tuple[str, ...] = ()  # this student's other files, not graded
    notes: tuple[str, ...] = ()  # what intake decided, a sentence each

    def view(self) -> dict[str, Any]:
        """The decision's text, each field one printable line (file names are the students' own)."""
        return {"student": plain_text(self.student_id, 100, one_line=True) if self.student_id else "not mapped",
                "file": plain_text(self.source_name, 200, one_line=True),
                "graded": (f"graded {plain_text(self.graded, 200, one_line=True)}" if self.graded
                           else f"nothing graded from {plain_text(self.source_name, 200, one_line=True)} "
                                f"({plain_text(self.reason or 'no_notebook', 40, one_line=True)})"),
                "ignored": [plain_text(name, 200, one_line=True) for name in self.ignored],
                "notes": [plain_text(note, 500, one_line=True) for note in self.notes]}

    def concerns(self, submission: dict[str, Any]) -> bool:
        """Whether a result's ``submission`` block is the one this decision is about."""
        return submission.get("student_id") == result_student_id(self.student_id, self.source_name)

    def line(self) -> str:
        """The decision on one line, for a terminal."""
        view = self.view()
        return "; ".join([f"{view['student']}: {view['graded']}", *view["notes"]])


def result_student_id(student_id: str | None, source_name: str) -> str:
    """The student id a result records: a file not mapped to a student is named after itself."""
    return student_id or f"unmapped:{source_name}"


def decisions_of(submissions: Iterable[Submission]) -> list[Decision]:
    """The decisions behind these submissions (those intake had nothing to say about are left out)."""
    return [Decision(s.student_id, s.source_name, s.submitted_name if s.path else None, s.reason,
                     tuple(s.ignored), tuple(s.problems))
            for s in submissions if s.problems or s.ignored or s.student_id is None or s.path is None]


def record_fields(submissions: Iterable[Submission]) -> dict[str, Any]:
    """The part of ``batch.json`` :func:`read_decisions` reads."""
    return {"intake": [asdict(d) for d in decisions_of(submissions)]}


def read_decisions(results_root: str | Path) -> list[Decision]:
    """The latest ``grade`` run's intake decisions; none when RESULTS has no batch record (``grade-one``)."""
    path = Path(results_root) / BATCH_RECORD
    if not path.is_file():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8")).get("intake") or []
        return [Decision(e.get("student_id"), str(e.get("source_name") or ""), e.get("graded"), e.get("reason"),
                         tuple(e.get("ignored") or ()), tuple(e.get("notes") or ())) for e in entries]
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise InputError(f"{path}: cannot be read ({exc}); run `autograder grade` again to rewrite it") from exc
