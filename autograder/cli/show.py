"""``autograder show``: the results, or one student's result, as a TA reads them."""
from __future__ import annotations

import argparse

from autograder.assignment import AssignmentError
from autograder.intake.inputs import InputError
from autograder.output.intake_record import read_decisions
from autograder.output.show import describe, overview
from autograder.output.store import ResultsError, open_results, resolve_assignment


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", metavar="RESULTS",
                        help="RESULTS folder of `autograder grade` (or the --out folder of `grade-one`)")
    parser.add_argument("id", metavar="ID", nargs="?", help="a student id or result key (default: list all)")
    parser.add_argument("--assignment", metavar="DIR",
                        help="assignment folder, to say whether results are stale (default: the recorded one)")


def run(args: argparse.Namespace) -> int:
    store = open_results(args.results)
    results = store.load()
    try:
        stale = store.staleness(results, resolve_assignment(args.assignment, results))
    except (InputError, AssignmentError):
        stale = None  # showing a result needs no assignment; staleness is then not told
    decisions = read_decisions(store.root)
    if args.id is None:
        print(overview(results, stale, decisions))
        return 0
    chosen = [key for key, r in results.items()
              if args.id in (key, str((r.get("submission") or {}).get("student_id")))]
    if not chosen:
        raise ResultsError(f"{store.root}: no result for {args.id!r} (`autograder show {args.results}` lists them)")
    print("\n\n".join(describe(key, results[key], store, stale, decisions) for key in chosen))
    return 0
