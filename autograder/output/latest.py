"""Which of a student's results counts: the latest one, read from the results themselves.

The gradebook keeps each student's latest submission (:func:`latest_per_student`); the review workbench
applies decisions and the similarity report compares notebooks on the same result (:func:`latest_keys`), so
no two outputs ever disagree about which submission is a student's.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import pandas as pd

from autograder.intake.inputs import parse_time
from autograder.intake.layouts import upload_order


def submitted_file(submission: Mapping[str, Any]) -> str:
    """The notebook's name as it was submitted (otter's ``file``)."""
    return str(submission.get("submitted_name") or PurePath(str(submission.get("path") or "")).name)


def latest_per_student(submissions: pd.DataFrame) -> pd.DataFrame:
    """The gradebook proper: each student's latest submission, by submitted_at, then the course site's own
    upload order (a Canvas file id), then graded_at: grading an older download again never makes it the
    latest."""
    def instants(column: str) -> pd.Series:
        return pd.to_datetime(submissions[column].map(parse_time), utc=True)

    order = ["_submitted", "_upload", "_graded"]
    ordered = submissions.assign(_submitted=instants("submitted_at"), _graded=instants("graded_at"),
                                 _upload=pd.to_numeric(submissions["file"].map(upload_order))).sort_values(
        ["student_id", *order, "submission"], kind="stable", na_position="first")
    latest = ordered.drop_duplicates("student_id", keep="last")
    return latest.drop(columns=order).reset_index(drop=True)


def latest_keys(results: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Each student id a result carries -> the key of their latest result, ordered as
    :func:`latest_per_student` orders the gradebook's rows (for readers without a roster)."""
    rows = pd.DataFrame([{"submission": key, "student_id": str((r.get("submission") or {}).get("student_id") or key),
                          "submitted_at": (r.get("submission") or {}).get("submitted_at") or "",
                          "file": submitted_file(r.get("submission") or {}),
                          "graded_at": (r.get("grader") or {}).get("graded_at") or ""}
                         for key, r in results.items()],
                        columns=["submission", "student_id", "submitted_at", "file", "graded_at"])
    latest = latest_per_student(rows) if len(rows) else rows
    return dict(zip(latest["student_id"], latest["submission"]))
