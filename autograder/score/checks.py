"""The small vocabulary hidden tests are written in.

A hidden test is a plain function in ``assignments/<name>/hidden/*.py``. The trusted runner calls it
with the fixtures its parameters name (``models``, ``probes``, ``report``, ``thresholds``, ...) and
expects an :class:`Outcome`. A test that cannot assess its question (say, the model is missing because
its cell failed) raises :class:`NotAssessed` with a student-facing reason; a test whose evidence exists
but that the grader cannot judge (a model that will not rebuild, a prediction that failed) raises
:class:`NeedsReview`, so a person looks at it instead of the student silently getting 0.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """What one check found: the share of its points earned, and why."""

    fraction: float  # 0..1 of the check's points
    message: str  # student-facing: what is right or wrong, in plain words
    detail: str = ""  # TA-facing: numbers, variable names, thresholds

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"Outcome.fraction must be within [0, 1], got {self.fraction}")

    @property
    def status(self) -> str:
        return "passed" if self.fraction >= 1.0 else "failed" if self.fraction <= 0.0 else "partial"


def passed(message: str, detail: str = "") -> Outcome:
    return Outcome(1.0, message, detail)


def failed(message: str, detail: str = "") -> Outcome:
    return Outcome(0.0, message, detail)


class NotAssessed(Exception):
    """The check's inputs are missing; the message says why in a student's words."""


class NeedsReview(Exception):
    """The work is there but the grader cannot judge it; the message says why, for the student and the TA."""
