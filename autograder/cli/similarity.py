"""``autograder similarity``: pairs of students ranked by shared code, report prose and trained models."""
from __future__ import annotations

import argparse
from pathlib import Path

from autograder.output.similarity import write_report
from autograder.output.store import check_report_folder, open_results, resolve_assignment


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path, help="RESULTS folder written by `autograder grade`")
    parser.add_argument("--assignment", type=Path,
                        help="assignment folder (default: the one the results record)")
    parser.add_argument("-o", "--out", type=Path, help="output folder (default: RESULTS/similarity)")


def run(args: argparse.Namespace) -> int:
    store = open_results(args.results)
    out = check_report_folder(args.out or args.results / "similarity")
    pairs = write_report(store.root, out, resolve_assignment(args.assignment, store.load()))
    print(f"{len(pairs)} pair(s) over a threshold; see {out / 'index.html'} and {out / 'pairs.csv'}")
    return 0
