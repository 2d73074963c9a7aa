"""Batch grading: same scores with one worker, two workers and a real Dask cluster; resume; regrade."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import nbformat
import psutil
import pytest

from autograder.output.gradebook import write_gradebook
from autograder.pipeline import batch
from autograder.results import read_result

pytestmark = pytest.mark.slow

# Cheap notebooks: preprocessing with NumPy straight from the Keras cache (no TensorFlow) and a report,
# so the batch machinery is exercised without training; the full pipeline is tested in test_grade.py.
PREPROCESS = """\
import numpy as np, os
with np.load(os.path.expanduser("~/.keras/datasets/mnist.npz")) as d:
    x_all, y_all, x_test, y_test = d["x_train"][:{n}], d["y_train"][:{n}], d["x_test"], d["y_test"]
x_train, y_train = x_all[:-100] / {scale}, y_all[:-100]
x_val, y_val = x_all[-100:] / {scale}, y_all[-100:]
x_test = x_test / {scale}
"""
REPORT = "## Architectures\n" + "We compare dense and convolutional networks. " * 12 + \
         "\n\n## Insights\n" + "The CNN beats the MLP because of weight sharing. " * 10


def student_notebook(n: int, scale: str, report: bool) -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_code_cell(PREPROCESS.format(n=n, scale=scale))]
    if report:
        cells.append(nbformat.v4.new_markdown_cell(REPORT))
    return nbformat.v4.new_notebook(cells=cells)


@pytest.fixture(scope="module")
def submissions(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("submissions")
    for student, (n, scale, report) in {"ada": (1000, "255.0", True), "bob": (600, "1.0", False),
                                        "cy": (800, "255.0", False)}.items():
        nbformat.write(student_notebook(n, scale, report), folder / f"{student}.ipynb")
    (folder / "dan.ipynb").write_text("not a notebook")
    return folder


def scores(out: Path) -> dict[str, list[float]]:
    results = [read_result(p) for p in sorted((out / "results").glob("*.json"))]
    return {r["submission"]["student_id"]: [q["score"] for q in r["questions"]] for r in results}


@pytest.fixture(scope="module")
def serial(submissions, small_assignment, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    counts = batch.grade_batch(submissions, small_assignment.root, out, jobs=1, progress=False)
    return out, counts


def test_one_worker_grades_everything_once(serial):
    out, counts = serial
    assert counts == {"graded": 3, "skipped": 0, "regraded": 0, "rejected": 1, "failed": 0}
    graded = scores(out)
    assert set(graded) == {"ada", "bob", "cy", "dan"}
    assert graded["ada"][0] == 10 and graded["bob"][0] < 10  # bob did not scale to [0, 1]
    assert graded["ada"][-1] > graded["cy"][-1] == 0  # only ada wrote a report
    dan = read_result(next((out / "results").glob("dan-*.json")))
    assert dan["status"] == "rejected" and dan["reason"] == "invalid_notebook"
    assert all((out / "logs" / f"{p.stem}.log").is_file() for p in (out / "results").glob("*.json"))


def test_gradebook_reads_the_batch(serial, small_assignment, tmp_path):
    import pandas as pd

    out, _ = serial
    write_gradebook(out, tmp_path / "gradebook.csv", small_assignment)
    book = pd.read_csv(tmp_path / "gradebook.csv", dtype={"student_id": str}).set_index("student_id")
    for student, points in scores(out).items():
        assert book.loc[student, "total"] == pytest.approx(sum(points))
    assert book.loc["dan", "status"] != "graded"


def test_two_workers_give_the_same_scores(serial, submissions, small_assignment, tmp_path):
    out, _ = serial
    batch.grade_batch(submissions, small_assignment.root, tmp_path, jobs=2, progress=False)
    assert scores(tmp_path) == scores(out)


def test_rerun_skips_finished_work_and_resumes_lost_work(serial, submissions, small_assignment, tmp_path):
    out, _ = serial
    shutil.copytree(out, tmp_path / "copy")
    lost = next((tmp_path / "copy" / "results").glob("cy-*.json"))
    lost.unlink()  # as if the grader was killed before cy's result was written
    counts = batch.grade_batch(submissions, small_assignment.root, tmp_path / "copy", jobs=1, progress=False)
    assert counts["graded"] == 1 and counts["skipped"] == 3
    assert scores(tmp_path / "copy") == scores(out)
    assert len(list((tmp_path / "copy" / "results").glob("*.json"))) == 4


def report_points_doubled(serial_out: Path, assignment_root: Path, tmp_path: Path) -> Path:
    """A copy of the batch's output in ``tmp_path/copy``, and a copy of the assignment whose report check
    is worth 20 points instead of 10 (returned)."""
    shutil.copytree(serial_out, tmp_path / "copy")
    changed = tmp_path / "assignment"
    shutil.copytree(assignment_root, changed)
    toml = (changed / "assignment.toml").read_text()
    (changed / "assignment.toml").write_text(toml.replace('{ test = "report_sections", points = 10 }',
                                                          '{ test = "report_sections", points = 20 }'))
    return changed


def test_threshold_change_regrades_without_executing(serial, submissions, small_assignment, tmp_path, monkeypatch):
    out, _ = serial
    changed = report_points_doubled(out, small_assignment.root, tmp_path)
    monkeypatch.setattr(batch, "LocalExecutor", lambda jobs: pytest.fail("a notebook was executed"))
    counts = batch.grade_batch(submissions, changed, tmp_path / "copy", jobs=1, progress=False)
    assert counts["regraded"] == 4 and counts["graded"] == 0
    ada = scores(tmp_path / "copy")["ada"]
    assert ada[-1] > scores(out)["ada"][-1]
    report = batch.regrade_all(tmp_path / "copy", changed)
    assert len(report.rows) == 4 and not report.passed_over
    assert all(not row["moved"] for row in report.rows)  # already regraded by the resumed batch


def test_regrade_table_names_the_checks_that_moved(serial, small_assignment, tmp_path):
    out, _ = serial
    changed = report_points_doubled(out, small_assignment.root, tmp_path)
    report = batch.regrade_all(tmp_path / "copy", changed)
    rows = {row["student"]: row for row in report.rows}
    before = scores(out)
    assert rows["ada"]["old"] == pytest.approx(sum(before["ada"]))
    [moved] = rows["ada"]["moved"]  # only the check whose points changed
    name, change = moved.split(" ")
    was, now = map(float, change.split("->"))
    assert name == "q8.report_sections" and now == pytest.approx(2 * was, abs=1e-3) and was > 0
    assert rows["ada"]["new"] - rows["ada"]["old"] == pytest.approx(now - was, abs=1e-3)
    assert rows["bob"]["moved"] == [] and rows["bob"]["new"] == rows["bob"]["old"]
    assert moved in report.table()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dask_cluster_gives_the_same_scores(serial, submissions, small_assignment, tmp_path):
    out, _ = serial
    port = free_port()
    dask = str(Path(sys.executable).with_name("dask"))
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        # Two workers, each under its nanny, from one command (one process fewer to start than two commands).
        procs.append(subprocess.Popen([dask, "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1",
                                       "--nworkers", "2", "--no-dashboard"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(f"tcp://127.0.0.1:{port}", timeout=60) as client:
            client.wait_for_workers(2, timeout=90)
        batch.grade_batch(submissions, small_assignment.root, tmp_path, scheduler=f"tcp://127.0.0.1:{port}",
                          progress=False)
        assert scores(tmp_path) == scores(out)
        assert json.loads((tmp_path / "batch.json").read_text())["unmapped"] == []
    finally:
        # Dask's nannies start worker processes of their own: wait for the whole tree, not a fixed time.
        tree = []
        for proc in procs:
            try:
                tree += psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                continue
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for leftover in psutil.wait_procs(tree, timeout=20)[1]:
            leftover.kill()
