"""``autograder feedback``: an HTML page per student and a summary page for instructors."""
from __future__ import annotations

import argparse
from pathlib import Path

from autograder.cli.gradebook import add_policy_arguments, policy_from
from autograder.output.feedback import write_feedback
from autograder.output.store import open_results, resolve_assignment


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", metavar="RESULTS",
                        help="RESULTS folder of `autograder grade` (or the --out folder of `grade-one`)")
    parser.add_argument("-o", "--out", metavar="DIR", help="output folder (default: RESULTS/feedback)")
    parser.add_argument("--assignment", metavar="DIR",
                        help="assignment folder (default: the one the results were graded with)")
    add_policy_arguments(parser)  # the same options as `gradebook`, so each page shows the grade given


def run(args: argparse.Namespace) -> int:
    policy = policy_from(args)
    store = open_results(args.results)
    assignment = resolve_assignment(args.assignment, store.load())
    out_dir = Path(args.out or store.root / "feedback")
    paths = write_feedback(store.root, out_dir, assignment, policy)
    print(f"wrote {len(paths) - 1} student pages and {out_dir / 'index.html'}")
    return 0
