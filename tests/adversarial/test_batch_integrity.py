"""Batches with hostile neighbours: clean scores unchanged, every submission one result, crashes resumable.

The clean submissions here do not train models (preprocessing with numpy and a written report), so the
properties are checked at CI cost; the per-case suite covers notebooks with models.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

import notebooks
from autograder.assignment import load_assignment
from autograder.pipeline.batch import grade_batch
from autograder.pipeline.grade_one import grade_one
from autograder.results import read_result
from autograder.run.inside.contract import JOB_PREFIX
from autograder.run.job import JOB_LOCK, ipc_dir
from autograder.run.sandbox import cgroup

from cases import CASES, NUMPY_PREPROCESSING, Context

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
VOLATILE = {"submission", "grader", "timings"}  # who and when; everything else must repeat exactly


def clean_notebooks() -> dict[str, nbformat.NotebookNode]:
    """Two honest partial homeworks: preprocessing and a report (full), preprocessing only (other split)."""
    report = notebooks.homework((), report=True)
    full = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NUMPY_PREPROCESSING), *report.cells[2:]])
    partial = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        NUMPY_PREPROCESSING.replace("1500", "1200") + "print(x_train.shape)\n")])
    return {"clean_full": full, "clean_partial": partial}


def stable(result: dict) -> dict:
    """The result without identity and timing fields; execution keeps only what each cell did."""
    kept = {k: v for k, v in result.items() if k not in VOLATILE}
    if kept.get("execution"):
        execution = kept["execution"]
        kept["execution"] = {"stopped": execution["stopped"], "export_ran": execution["export_ran"],
                             "cells": [(c["index"], c["status"], c["error"]) for c in execution["cells"]]}
    return kept


@pytest.fixture(scope="module")
def neighbours_dir(tiny_dir, tmp_path_factory) -> Path:
    """The tiny limits with a 2-second cell limit: the hostile neighbours that run until a limit (busy loops,
    a fork bomb, a print flood) are stopped sooner; what is checked is their clean neighbours, which need
    well under a second of CPU work per cell."""
    root = tmp_path_factory.mktemp("neighbours") / "mnist"
    shutil.copytree(tiny_dir, root)
    toml, count = re.subn(r"(?m)^cell_timeout_seconds = \S+", "cell_timeout_seconds = 2",
                          (root / "assignment.toml").read_text())
    assert count == 1
    (root / "assignment.toml").write_text(toml)
    return root


@pytest.fixture(scope="module")
def clean_alone(neighbours_dir, tmp_path_factory):
    """Each clean notebook graded on its own, twice."""
    root = tmp_path_factory.mktemp("alone")
    assignment = load_assignment(neighbours_dir)
    graded = {}
    for name, nb in clean_notebooks().items():
        path = notebooks.write(nb, root / f"{name}.ipynb")
        graded[name] = [grade_one(path, assignment, root / f"{name}-{run}") for run in (1, 2)]
    return graded


def test_each_clean_submission_graded_twice_gives_identical_results(clean_alone):
    for name, (first, second) in clean_alone.items():
        assert first["status"] == "graded" and first["score"] > 0, name
        assert stable(first) == stable(second), name


def test_clean_scores_are_unchanged_by_hostile_neighbours_in_one_batch(clean_alone, neighbours_dir, tmp_path):
    source = tmp_path / "submissions"
    source.mkdir()
    ctx = Context(out_dir=tmp_path / "results", canary_dir=tmp_path / "canary", repo=REPO,
                  assignment_root=neighbours_dir, seed_file=neighbours_dir / "hidden" / "evaluation_seed.txt",
                  other_submission=source / "clean_full.ipynb", grader_pid=os.getpid())
    ctx.canary_dir.mkdir()
    hostile = [case for case in CASES if case.in_batch]
    for case in hostile:
        case.make(ctx, tmp_path).rename(source / f"{case.name}.ipynb")
    for name, nb in clean_notebooks().items():
        notebooks.write(nb, source / f"{name}.ipynb")

    counts = grade_batch(source, neighbours_dir, ctx.out_dir, jobs=2, progress=False)

    results = {read_result(p)["submission"]["student_id"]: read_result(p)
               for p in (ctx.out_dir / "results").glob("*.json")}
    assert sorted(results) == sorted(p.stem for p in source.iterdir())
    assert counts["failed"] == 0 and counts["graded"] + counts["rejected"] == len(results)
    for name, (alone, _) in clean_alone.items():
        assert stable(results[name]) == stable(alone), name
    for case in hostile:
        result = results[case.name]
        assert result["status"] == case.expect.status and result["reason"] in case.expect.reasons, case.name
        scores = {q["id"]: q["score"] for q in result["questions"]}
        assert all(scores[qid] == 0 for qid in case.expect.zero), case.name
    assert not any(ctx.canary_dir.iterdir())


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def test_kill_9_of_the_grader_mid_batch_then_resume_gives_one_result_each(tiny_dir, tmp_path):
    source = tmp_path / "submissions"
    source.mkdir()
    for name, nb in clean_notebooks().items():
        notebooks.write(nb, source / f"{name}.ipynb")
    for i in range(2):  # slow enough that the kill lands mid-batch (waiting, not working: one kernel each)
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"import time\ntime.sleep(4)\nx = {i}")])
        notebooks.write(nb, source / f"sleeper{i}.ipynb")
    out = tmp_path / "results"
    command = [sys.executable, "-m", "autograder", "grade", str(source), "--assignment", str(tiny_dir),
               "--out", str(out), "--jobs", "2"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    delay = random.Random().uniform(0, 4)

    grader = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not list((out / "results").glob("*.json")) and time.monotonic() < deadline and grader.poll() is None:
        time.sleep(0.1)
    time.sleep(delay)
    doomed = descendants(grader.pid)
    os.killpg(grader.pid, signal.SIGKILL)  # the grader, its pool, its forkserver: a crashed machine
    grader.wait()
    # Sandboxes die with their worker (bwrap --die-with-parent, then the PID namespace goes).
    gone, alive = psutil.wait_procs(doomed, timeout=15)
    assert not alive, (delay, alive)
    done_before = len(list((out / "results").glob("*.json")))

    resumed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    results = sorted((out / "results").glob("*.json"))
    students = [read_result(p)["submission"]["student_id"] for p in results]
    assert sorted(students) == sorted(p.stem for p in source.iterdir()), (delay, done_before, students)
    assert f"skipped={done_before}" in resumed.stdout or done_before == 0, resumed.stdout


def test_job_dirs_and_cgroups_of_a_killed_grader_are_removed_at_the_next_start(tiny_dir, assignments, tmp_path,
                                                                                work_root):
    source = tmp_path / "submissions"
    source.mkdir()
    notebooks.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time\ntime.sleep(60)")]),
                    source / "sleeper.ipynb")
    command = [sys.executable, "-m", "autograder", "grade", str(source), "--assignment", str(tiny_dir),
               "--out", str(tmp_path / "results"), "--jobs", "1"]
    grader = subprocess.Popen(command, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(work_root)),
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ours: list[Path] = []
    deadline = time.monotonic() + 120
    while not ours and time.monotonic() < deadline:  # the job of the grader's worker, with its kernel running
        time.sleep(0.2)
        ours = [lock.parent for lock in work_root.glob(f"{JOB_PREFIX}*/{JOB_LOCK}")
                if ipc_dir(lock.parent).joinpath("kernel.json").exists()]
    owner = (ours[0] / JOB_LOCK).read_text() if ours else ""
    where = cgroup.hierarchy()
    # Taken while the grader lives; stale cgroups are removed by any grader's start, so only their
    # disappearance is ours to check, not who removed them.
    its_cgroups = list(where.memory.glob(f"{cgroup.PREFIX}{owner}-*")) if where and owner else []
    doomed = descendants(grader.pid)
    os.killpg(grader.pid, signal.SIGKILL)
    grader.wait()
    psutil.wait_procs(doomed, timeout=15)
    assert ours, "the grader never started its job"
    job = ours[0]
    assert job.is_dir() and ipc_dir(job).is_dir()  # left behind: nobody cleaned up
    assert its_cgroups or where is None

    clean = notebooks.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]),
                            tmp_path / "clean.ipynb")
    assert grade_one(clean, assignments["tiny"], tmp_path / "next", work_root=work_root)["status"] == "graded"

    assert not job.exists() and not ipc_dir(job).exists()
    assert not any(group.exists() for group in its_cgroups)
