"""Every hostile or broken submission of cases.py is graded, contained and scored for what is really there."""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.assignment import EVIDENCE_KEY_FILE
from autograder.output import feedback
from autograder.pipeline.batch import grade_batch
from autograder.pipeline.grade_one import ARTIFACTS, grade_one
from autograder.results import REASONS, read_result
from autograder.run import prediction
from autograder.run.sandbox import process
from autograder.run.sandbox.spec import SandboxSpec

import cases
from cases import CASES, Case, Context
from containment import (PeakMemory, executed_text, job_processes, leftover_processes, running_cmdline,
                         tree_digest)
from waiting import within

from autograder.intake.notebook import PRINTED_FILE  # noqa: E402

pytestmark = pytest.mark.slow

ARTIFACT_NAMES = {"submission.ipynb", "executed.ipynb", "evidence.json", "predictions.npz", "kernel.log",
                  "predict.log", PRINTED_FILE, EVIDENCE_KEY_FILE}
GRADER_MEMORY_MB = 300  # growth of the grader's own RSS while it grades one hostile notebook


def test_the_suite_covers_the_issue():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)) >= 35
    assert {case.category for case in CASES} == {"malformed", "resources", "integrity", "ml"}
    assert all(reason in REASONS for case in CASES for reason in case.expect.reasons if reason)


def grade_case(case: Case, ctx: Context, submission: Path, assignment, work: Path) -> dict:
    if submission.is_dir():  # a student folder: the batch's collection step decides, nothing runs
        grade_batch(submission, assignment.root, ctx.out_dir, jobs=1, progress=False)
        (result_path,) = (ctx.out_dir / "results").glob("student1-*.json")
        return read_result(result_path)
    return grade_one(submission, assignment, ctx.out_dir, work_root=work)


def test_the_leftover_check_sees_a_running_sandbox():
    """The containment check below is not blind whoever runs the tests: it finds a held sandbox's
    process while it runs, and nothing once the job has ended."""
    held = "import sys; sys.stdin.readline()  # agx-leftover-check"
    running = process.start(SandboxSpec(), [sys.executable, "-c", held])
    try:
        assert within(60, lambda: any("agx-leftover-check" in (running_cmdline(p) or "") for p in job_processes()))
    finally:
        running.release()
        running.wait()
    assert not leftover_processes()


def test_a_notebook_that_never_names_keras_starts_no_prediction_sandbox(assignments, work_root, tmp_path):
    """No TensorFlow import is spent beside a notebook that cannot build a model: no prediction log, and the
    model cases below (the lookups, the honest twin) show that a notebook naming Keras is still predicted."""
    def code(source: str) -> nbformat.NotebookNode:
        return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])

    assert prediction.names_tensorflow(code("import numpy as np, keras")) and prediction.names_tensorflow(
        code("import tensorflow as tf")) and prediction.names_tensorflow(code("from keras import layers"))
    plain = cases.cells(nbformat.v4.new_code_cell(cases.NUMPY_PREPROCESSING + "print('PLAIN', len(x_train))"))
    (tmp_path / "submission").mkdir()
    ctx = Context(out_dir=tmp_path / "out", canary_dir=tmp_path, repo=Path.cwd(), assignment_root=tmp_path,
                  seed_file=tmp_path, other_submission=tmp_path, grader_pid=os.getpid())
    result = grade_one(plain(ctx, tmp_path / "submission"), assignments["tiny"], ctx.out_dir, work_root=work_root)
    assert result["status"] == "graded" and not result["execution"]["predict"]
    assert "PLAIN 1500" in executed_text(ctx.out_dir / ARTIFACTS)  # it read the Keras cache, without Keras
    assert not (ctx.out_dir / ARTIFACTS / "predict.log").exists()
    assert not leftover_processes() and not any(work_root.iterdir())


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_submission_is_contained(case: Case, assignments, work_root, tmp_path):
    check_contained(case, assignments[case.limits], work_root, tmp_path)


PRODUCTION_CASES = [case for case in CASES if case.production]


@pytest.mark.production_limits
@pytest.mark.parametrize("case", PRODUCTION_CASES, ids=[case.name for case in PRODUCTION_CASES])
def test_contained_under_the_production_limits(case: Case, production_assignment, work_root, tmp_path):
    """The same attacks under assignments/mnist's own limits and the sandbox's defaults, nothing test-sized."""
    assert case.limits == "tiny"  # cheap cases only: no model is trained
    check_contained(case, production_assignment, work_root, tmp_path)


def check_contained(case: Case, assignment, work: Path, tmp_path: Path) -> None:
    other = tmp_path / "others" / "alice.ipynb"
    other.parent.mkdir()
    other.write_text('{"secret": "alice answers"}')
    ctx = Context(out_dir=tmp_path / "results" / case.name, canary_dir=tmp_path / "canary", repo=Path.cwd(),
                  assignment_root=assignment.root, seed_file=assignment.evaluation_seed_file,
                  other_submission=other, grader_pid=os.getpid())
    ctx.canary_dir.mkdir()
    (tmp_path / "submission").mkdir()
    submission = case.make(ctx, tmp_path / "submission")
    protected = tree_digest(assignment.root)

    with PeakMemory() as memory:
        result = grade_case(case, ctx, submission, assignment, work)

    # One result, in the schema, with a reason whenever something went wrong.
    expect = case.expect
    assert result["status"] == expect.status, (result["status"], result["reason"], result["message"])
    assert result["reason"] in expect.reasons, (result["reason"], result["message"], result.get("execution"))
    assert result["message"] and expect.message in result["message"], result["message"]
    assert result["max_score"] == assignment.max_score == 100
    assert result["score"] == pytest.approx(sum(q["score"] for q in result["questions"]))
    if result["status"] == "graded":
        assert read_result(ctx.out_dir / "result.json") == result
    stopped = (result.get("execution") or {}).get("stopped")
    if expect.stopped is not None:
        assert stopped in expect.stopped, stopped
    if stopped or any(cell["status"] != "ok" for cell in (result.get("execution") or {}).get("cells", [])):
        assert result["reason"] is not None
    if result.get("execution"):  # which mechanism held is on record
        containment = result["execution"]["containment"]
        assert containment["syscalls"] == "seccomp", containment
        assert containment["memory"] in ("cgroup-v1", "cgroup-v2", "watchdog"), containment

    # Scores for what is legitimately there.
    scores = {q["id"]: q["score"] for q in result["questions"]}
    for qid in expect.zero:
        assert scores[qid] == 0, (qid, result["questions"])
    for qid in expect.positive:
        assert scores[qid] > 0, (qid, result["questions"])
    checks = {c["name"]: c for q in result["questions"] for c in q["checks"]}
    for name, most in expect.checks.items():
        assert checks[name]["score"] <= most, checks[name]
    for name in expect.earned:
        assert checks[name]["score"] > 0, checks[name]
    for arch, rule in expect.flagged.items():  # flagged with its evidence, and on the review list
        assert result["integrity"][arch][rule]["passed"] is False, result["integrity"][arch]
        assert result["integrity"][arch][rule]["evidence"], rule
        assert (arch, "integrity_flagged") in {(i.get("arch"), i.get("code")) for i in result["review"]}, result["review"]
    for arch in expect.unflagged:
        assert all(f["passed"] is not False for f in result["integrity"][arch].values()), result["integrity"][arch]
    notes = " ".join(result.get("notes", []))
    for text in expect.notes:
        assert text in notes, notes

    # The attack ran, and nothing it tried succeeded.
    artifacts = ctx.out_dir / ARTIFACTS
    seen = executed_text(artifacts)
    for text in expect.outputs:
        assert text in seen, text
    assert "LEAK:" not in seen, seen[seen.find("LEAK:") - 200:seen.find("LEAK:") + 300]

    # Contained: nothing left running, nothing written outside the job, the grader's memory bounded.
    assert not leftover_processes()
    assert not any(ctx.canary_dir.iterdir())
    assert not any(work.iterdir()), list(work.iterdir())  # the job directory is gone
    assert {p.name for p in ctx.out_dir.iterdir()} <= {"result.json", ARTIFACTS, "results", "logs", "batch.json"}
    for name in expect.artifacts:
        assert (artifacts / name).is_file(), name
    if artifacts.is_dir():
        assert {p.name for p in artifacts.iterdir()} <= ARTIFACT_NAMES
        assert sum(p.stat().st_size for p in artifacts.iterdir()) < 8 * 2**20
    assert tree_digest(assignment.root) == protected
    assert memory.growth_mb < GRADER_MEMORY_MB, memory.growth_mb

    # Student-controlled text reaches the feedback page inert.
    page = feedback_page(case.name, result, artifacts, assignment, tmp_path / "feedback")
    assert not re.search(r"<script\b|<img\b[^>]*onerror", page, re.IGNORECASE) and "\x1b" not in page


def feedback_page(key: str, result: dict, artifacts: Path, assignment, where: Path) -> str:
    (where / "results").mkdir(parents=True)
    (where / "results" / f"{key}.json").write_text(json.dumps(result))
    if artifacts.is_dir():
        shutil.copytree(artifacts, where / "artifacts" / key)
    feedback.write_feedback(where, where / "html", assignment)
    return (where / "html" / f"{key}.html").read_text()
