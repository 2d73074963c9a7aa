"""``autograder grade``: a folder, zip, Canvas or Gradescope download of submissions, graded into RESULTS."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from autograder.cli import positive_int
from autograder.intake.inputs import InputError
from autograder.output.intake_record import BATCH_RECORD, read_decisions
from autograder.output.similarity import write_report as write_similarity_report
from autograder.output.store import check_report_folder, open_results, resolve_assignment
from autograder.pipeline.batch import grade_batch
from autograder.run.sandbox.spec import SandboxUnavailable


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submissions", type=Path,
                        help="folder, .zip, Canvas bulk download or Gradescope export of submissions")
    parser.add_argument("-o", "--out", type=Path, required=True, help="RESULTS folder (new, empty or an "
                                                                      "earlier one to resume)")
    parser.add_argument("--assignment", type=Path,
                        help="assignment folder (default: the one RESULTS was graded with, else "
                             "./assignments/mnist)")
    parser.add_argument("-j", "--jobs", type=positive_int,
                        help="submissions graded at once (default: cores / the assignment's threads per "
                             "notebook, so TensorFlow jobs do not fight over cores)")
    parser.add_argument("--scheduler", help="dask.distributed scheduler address, e.g. tcp://host:8786")
    parser.add_argument("--roster", type=Path, help="CSV with student_id[, name, email, ...] to map files to "
                                                    "students (see README)")
    parser.add_argument("--only", nargs="+", metavar="ID",
                        help="grade only these students (student ids, result keys or file names)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="also re-run submissions that were stopped (time budget, memory, disk, kernel "
                             "died); results the grader failed on are always re-run")
    parser.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="UNSAFE: run submissions unsandboxed with the grader's rights")


def previous_results(out: Path) -> dict[str, dict[str, Any]]:
    try:
        return open_results(out).load()
    except InputError:
        return {}


def run(args: argparse.Namespace) -> int:
    check_report_folder(args.out)
    assignment = resolve_assignment(args.assignment, previous_results(args.out))
    try:
        counts = grade_batch(args.submissions, assignment, args.out, jobs=args.jobs,
                             scheduler=args.scheduler, roster=args.roster, sandboxed=not args.unsafe_no_sandbox,
                             progress=not getattr(args, "quiet", False), only=args.only,
                             retry_failed=args.retry_failed)
    except SandboxUnavailable as exc:
        print(f"autograder grade: the sandbox cannot start: {exc}; refusing to run untrusted code",
              file=sys.stderr)
        return 2
    print(" ".join(f"{k}={v}" for k, v in counts.items()), f"results in {args.out}")
    if any(counts[k] for k in ("graded", "skipped", "regraded")):  # cheap, from stored artifacts only
        pairs = write_similarity_report(args.out, Path(args.out) / "similarity", assignment)
        print(f"similarity: {len(pairs)} pair(s) to look at in {Path(args.out) / 'similarity' / 'index.html'}")
    decisions = read_decisions(args.out)
    if decisions:
        print(f"intake: {len(decisions)} decision(s) to check (recorded in {Path(args.out) / BATCH_RECORD}):")
        print("\n".join(f"  {decision.line()}" for decision in decisions))
    return 1 if counts["failed"] else 0
