"""Grading inside Gradescope: ``run_autograder``'s entry point (``python -m autograder.pipeline.gradescope``).

Gradescope unpacks the package that ``autograder gradescope`` builds (:mod:`autograder.output.gradescope`)
into ``/autograder/source`` and runs ``run_autograder`` once per submission, as root. Grading goes through
the same pipeline as ``grade-one`` (intake, sandboxed run, export, predictions, hidden tests); the result
becomes ``/autograder/results/results.json``. When no grade can be computed (:class:`NotGraded`) no
``results.json`` is written: Gradescope then records no score, never a 0.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from autograder.assignment import Assignment, AssignmentError, load_assignment
from autograder.data import ENV_VAR
from autograder.intake.layouts import Submission, pick_single_notebook
from autograder.intake.notebook import find_notebooks
from autograder.output.gradescope import ROOT_ENV, write_results_json
from autograder.pipeline.grade_one import base_result, grade_into, rejected_result
from autograder.results import REASONS
from autograder.run import isolation
from autograder.run.sandbox.spec import SandboxUnavailable

class NotGraded(Exception):
    """No grade could be computed: the set-up is broken or the grader failed on this submission, neither the
    student's doing. ``results.json`` is then not written: Gradescope shows the submission as "The autograder
    failed to execute correctly", with no score (never a 0), and the instructor can re-run it."""


def lock_down(root: Path) -> None:
    """Before any student code runs: the bundle, the metadata (names, e-mails, earlier results) and the
    results are root's alone, whatever isolation level is used."""
    for path in (root / "source", root / "results", root / "submission_metadata.json"):
        if path.exists():
            path.chmod(0o700 if path.is_dir() else 0o600)


def grade_submission(root: Path) -> dict[str, Any]:
    """Grade ``root/submission``'s notebook and write ``root/results/results.json``.

    Raises :class:`NotGraded` (and leaves no ``results.json``) when no grade could be computed.
    """
    results = root / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.unlink(missing_ok=True)  # an earlier run's file would be read as this run's grade
    lock_down(root)
    os.environ[ENV_VAR] = str(root / "source" / "mnist")
    try:
        result = grade_notebook(root, load_assignment(root / "source" / "assignment"))
    except SandboxUnavailable as exc:
        raise NotGraded(f"The grading sandbox could not be started: {exc}") from None
    except AssignmentError as exc:  # the package lacks something a score reads: no grade, never a wrong one
        raise NotGraded(f"The autograder package is incomplete: {exc}") from None
    if result.get("status") == "error":
        raise NotGraded("; ".join(["The grader failed on this submission", *(result.get("notes") or [])]))
    return write_results_json(result, results)


def grade_notebook(root: Path, assignment: Assignment) -> dict[str, Any]:
    """The result of ``root/submission``'s notebook, chosen by the batch's rule (:func:`pick_single_notebook`:
    the only one, or the only one named like the template)."""
    submission = root / "submission"
    picked = Submission(student_id=None, student_name=None, path=None, source_name=submission.name)
    pick_single_notebook(picked, find_notebooks(submission) if submission.is_dir() else [], assignment.student_notebook)
    # Results and artifacts stay root's; the jobs' directory must be traversable by the sandbox uids.
    with tempfile.TemporaryDirectory(prefix="autograder-gradescope-") as private, \
            tempfile.TemporaryDirectory(prefix="autograder-gradescope-jobs-") as jobs:
        Path(jobs).chmod(0o711)
        if picked.path is None:
            return rejected_result(base_result(submission, assignment, None, None, True), assignment, picked.reason,
                                   REASONS[picked.reason])
        return grade_into(picked.path, assignment, Path(private) / "result.json", Path(private) / "artifacts",
                          work_root=jobs)


def main(argv: list[str] | None = None) -> int:
    """``run_autograder``'s entry point."""
    parser = argparse.ArgumentParser(prog="python -m autograder.pipeline.gradescope")
    parser.add_argument("--root", type=Path, default=Path(os.environ.get(ROOT_ENV, "/autograder")))
    args = parser.parse_args(argv)
    try:
        gradescope = grade_submission(args.root)
    except NotGraded as exc:  # stdout is shown to the instructor only
        print(f"not graded (no results.json, so Gradescope records no score; re-run it once fixed): {exc}")
        return 1
    levels = {isolation.BUBBLEWRAP: "bubblewrap namespaces", isolation.CONTAINER_UID: "separate uid, no namespaces"}
    isolation_level = gradescope["extra_data"].get("isolation")
    # stdout is shown to the instructor only (stdout_visibility: hidden)
    print(f"score {gradescope['score']:g}; status {gradescope['extra_data']['status']}; "
          f"isolation: {levels.get(isolation_level, isolation_level)}")
    for note in gradescope["extra_data"].get("notes") or []:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
