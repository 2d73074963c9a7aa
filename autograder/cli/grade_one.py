"""``autograder grade-one``: one notebook, sandboxed run and trusted scoring, into ``OUT/result.json``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from autograder.output.store import ResultsError, check_output_folder, check_report_folder, resolve_assignment
from autograder.pipeline.grade_one import grade_one
from autograder.run.sandbox.spec import SandboxUnavailable


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submission", type=Path, help="the student's .ipynb")
    parser.add_argument("--assignment", type=Path,
                        help="assignment folder (default: ./assignments/mnist)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="folder for result.json and artifacts/")
    parser.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="UNSAFE: run the student's code with the grader's own rights, unsandboxed "
                             "(only for trusted notebooks, e.g. your reference solution)")


def run(args: argparse.Namespace) -> int:
    if not args.submission.is_file():
        raise ResultsError(f"{args.submission}: no such file")
    check_output_folder(check_report_folder(args.out), marks=("result.json",))
    assignment = resolve_assignment(args.assignment)
    assignment.warn_if_public_seed()
    try:
        result = grade_one(args.submission, assignment, args.out, sandboxed=not args.unsafe_no_sandbox)
    except SandboxUnavailable as exc:
        print(f"autograder grade-one: the sandbox cannot start: {exc}; refusing to run untrusted code (pass "
              "--unsafe-no-sandbox only for notebooks you trust)", file=sys.stderr)
        return 2
    summary = {q["id"]: f'{q["score"]:g}/{q["max_score"]:g}' for q in result["questions"]}
    print(json.dumps({"score": result["score"], "max_score": result["max_score"], "status": result["status"],
                      "reason": result["reason"], "questions": summary}, indent=1))
    print(f"result: {Path(args.out) / 'result.json'}")
    return 1 if result["status"] == "error" else 0
