"""``autograder regrade``: stored results re-scored from their evidence after a threshold, rubric or grader change.

Refused with one line (exit 2, nothing written) when the evidence itself is out of date (a new evaluation
seed, other execution settings, a change to the code that runs the notebook): ``grade`` runs those again.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from autograder.output.store import open_results, resolve_assignment
from autograder.output.workbench.decisions import adjustments
from autograder.pipeline.batch import regrade_all


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path, help="RESULTS folder of `autograder grade` (or a grade-one --out)")
    parser.add_argument("--assignment", type=Path,
                        help="assignment folder (default: the one the results were graded with)")


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    store = open_results(args.results)
    assignment = resolve_assignment(args.assignment, store.load())
    report = regrade_all(store.root, assignment)
    print(report.table())
    for key, note in report.passed_over:
        print(f"note: {key}: {note}")
    review = adjustments(store.root, store.load())  # decisions are kept; those whose evidence moved wait
    if review.second_look:
        print(f"review: {len(review.second_look)} decision(s) wait for a second look (their result changed): "
              f"`autograder review {args.results}`")
    print(f"regraded {len(report.rows)} results in {time.monotonic() - started:.1f} s (no notebook executed)"
          + (f"; passed over {len(report.passed_over)}" if report.passed_over else ""))
    if report.removed_reports:
        print(f"removed {len(report.removed_reports)} report file(s) written before this regrade (gradebook, "
              "exports, feedback pages): run `autograder gradebook` and `autograder feedback` again")
    return 1 if report.not_rescored else 0
