"""``autograder review``: the TA review workbench, a local web app over RESULTS (or overrides.csv in and out)."""
from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from autograder.intake.inputs import read_overrides
from autograder.output.gradebook import csv_text
from autograder.output.store import check_writable, open_results, resolve_assignment
from autograder.output.workbench.decisions import export_overrides, import_overrides
from autograder.results import atomic_write_text


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", metavar="RESULTS",
                        help="RESULTS folder of `autograder grade` (or the --out folder of `grade-one`)")
    parser.add_argument("--assignment", metavar="DIR",
                        help="assignment folder (default: the one the results were graded with)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to serve on (default: 127.0.0.1, this machine only; 0.0.0.0 shares it "
                             "with a TA team, who then need the printed URL and its token)")
    parser.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0 picks a free one)")
    parser.add_argument("--name", default=None, help="who decides (default: your login name); each TA can "
                                                     "set their own name on the page")
    parser.add_argument("--import-overrides", metavar="CSV",
                        help="store each row of an overrides CSV (student_id, question, score, reason) as a "
                             "decision, then stop")
    parser.add_argument("--export-overrides", metavar="CSV",
                        help="write the decisions as an overrides CSV, then stop")


def run(args: argparse.Namespace) -> int:
    store = open_results(args.results)
    results = store.load()
    who = args.name or getpass.getuser()
    if args.import_overrides:
        overrides = read_overrides(args.import_overrides)
        assignment = resolve_assignment(args.assignment, results)
        count = import_overrides(store.root, results, overrides, {q.id: q.points for q in assignment.questions}, who)
        print(f"stored {count} override(s) from {args.import_overrides} as decisions in {store.root}")
        return 0
    if args.export_overrides:
        check_writable([Path(args.export_overrides)])
        rows = export_overrides(store.root, results)
        atomic_write_text(Path(args.export_overrides), csv_text(rows))
        print(f"wrote {len(rows)} override(s) to {args.export_overrides}")
        return 0
    from autograder.output.workbench.app import serve  # the web stack only when serving

    assignment = resolve_assignment(args.assignment, results)
    serve(store, assignment, host=args.host, port=args.port, default_name=who)
    return 0
