"""``autograder demo``: grade the bundled example submissions end to end, as a TA would.

Batch-grades ``examples/submissions`` (a Canvas bulk download with a late submission) against the
roster, then writes the gradebook with a late policy, the exports and the feedback pages.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from autograder.assignment import load_assignment
from autograder.cli import positive_int
from autograder.intake.inputs import parse_time, read_roster
from autograder.output.feedback import write_feedback
from autograder.output.gradebook import GradingPolicy, LatePolicy, write_gradebook
from autograder.pipeline.batch import grade_batch
from autograder.run import sandbox

DUE = "2026-12-01T23:59+00:00"
LATE_POLICY = "10%/day,max=50%"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--examples", type=Path, default=Path("examples"),
                        help="folder with submissions/ and roster.csv")
    parser.add_argument("--assignment", type=Path, default=Path("assignments/mnist"))
    parser.add_argument("-o", "--out", type=Path, default=Path("demo-results"))
    parser.add_argument("-j", "--jobs", type=positive_int, help="submissions graded at once (default: as `grade`)")


def run(args: argparse.Namespace) -> int:
    assignment = load_assignment(args.assignment)
    roster_path = args.examples / "roster.csv"
    try:
        counts = grade_batch(args.examples / "submissions", args.assignment, args.out, jobs=args.jobs,
                             roster=roster_path)
    except sandbox.SandboxUnavailable as exc:
        print(f"error: the sandbox cannot start: {exc}", file=sys.stderr)
        return 2
    gradebook = args.out / "gradebook.csv"
    policy = GradingPolicy(roster=read_roster(roster_path), overrides=None, due=parse_time(DUE),
                           late=LatePolicy.parse(LATE_POLICY))
    write_gradebook(args.out, gradebook, assignment, roster=policy.roster, due=policy.due, policy=policy.late)
    pages = write_feedback(args.out, args.out / "feedback", assignment, policy)
    book = pd.read_csv(gradebook, dtype={"student_id": str})
    print(book[["student_id", "student_name", *[q.id for q in assignment.questions], "late_penalty", "total",
                "status", "reason"]].to_string(index=False))
    print(f"\ngraded: {counts}")
    print(f"gradebook:        {gradebook.resolve()} (+ final_grades.csv, canvas_grades.csv, gradescope/)")
    print(f"feedback pages:   {(args.out / 'feedback').resolve()}/ ({len(pages) - 1} students)")
    print(f"instructor page:  {(args.out / 'feedback' / 'index.html').resolve()}")
    return 0
