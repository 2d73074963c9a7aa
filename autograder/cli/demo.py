"""``autograder demo``: grade the bundled example submissions end to end, as a TA would.

Batch-grades ``examples/submissions`` (a Canvas bulk download with a late submission) against the
roster, then writes what a TA reads next (:func:`write_reports`): the similarity report, the gradebook
with a late policy (recorded in RESULTS), the exports and the feedback pages.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from autograder.assignment import Assignment, load_assignment
from autograder.cli import positive_int
from autograder.intake.inputs import named_timezone, parse_due
from autograder.output.feedback import write_feedback
from autograder.output.gradebook import write_gradebook
from autograder.output.policy import GradingPolicy, updated
from autograder.output.similarity import write_report as write_similarity_report
from autograder.output.store import check_report_folder
from autograder.pipeline.batch import grade_batch
from autograder.run.sandbox.spec import SandboxUnavailable

DUE = "2026-12-01T23:59"
TIMEZONE = "UTC"
LATE_POLICY = "10%/day,max=50%"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--examples", type=Path, default=Path("examples"),
                        help="folder with submissions/ and roster.csv")
    parser.add_argument("--assignment", type=Path, default=Path("assignments/mnist"))
    parser.add_argument("-o", "--out", type=Path, default=Path("demo-results"))
    parser.add_argument("-j", "--jobs", type=positive_int, help="submissions graded at once (default: as `grade`)")


def write_reports(out: Path, assignment: Assignment, roster: Path) -> list[Path]:
    """Everything a TA reads after `grade`: similarity first, so the instructor page links it."""
    write_similarity_report(out, out / "similarity", assignment)
    zone = named_timezone(TIMEZONE)
    policy = updated(GradingPolicy(), roster=str(roster), due=parse_due(DUE, zone), zone=zone,
                     late_policy=LATE_POLICY)
    write_gradebook(out, out / "gradebook.csv", assignment, policy)
    return write_feedback(out, out / "feedback", assignment)


def run(args: argparse.Namespace) -> int:
    check_report_folder(args.out)
    assignment = load_assignment(args.assignment)
    roster_path = args.examples / "roster.csv"
    try:
        counts = grade_batch(args.examples / "submissions", args.assignment, args.out, jobs=args.jobs,
                             roster=roster_path)
    except SandboxUnavailable as exc:
        print(f"error: the sandbox cannot start: {exc}", file=sys.stderr)
        return 2
    pages = write_reports(args.out, assignment, roster_path)
    gradebook = args.out / "gradebook.csv"
    book = pd.read_csv(gradebook, dtype={"student_id": str})
    print(book[["student_id", "student_name", *[q.id for q in assignment.questions], "late_penalty", "total",
                "status", "reason"]].to_string(index=False))
    print(f"\ngraded: {counts}")
    print(f"gradebook:        {gradebook.resolve()} (+ final_grades.csv, canvas_grades.csv, gradescope/)")
    print(f"feedback pages:   {(args.out / 'feedback').resolve()}/ ({len(pages) - 1} students)")
    print(f"instructor page:  {(args.out / 'feedback' / 'index.html').resolve()}")
    print(f"similarity:       {(args.out / 'similarity' / 'index.html').resolve()}")
    return 0
