"""The figures. Each runs its subject and its baseline back to back in every repeat (alternating
which goes first) and records raw numbers with ``rec(repeat, measure, value, unit)``.

``ROWS`` says how the raw numbers become the table in BENCHMARKS.md (see run.py).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import workloads as w

Recorder = Callable[[int, str, float, str], None]
TIMING_PARTS = ("intake", "kernel_start", "cells", "export", "predict", "checks", "total")


@dataclass(frozen=True)
class Row:
    """One table row: ``ours`` against ``baseline`` (measure names), compared as ``compare``.

    compare: "ratio" (ours/baseline), "difference" (ours-baseline), "speedup" (baseline/ours) or
    "value" (ours alone); the target applies to that number.
    """

    figure: str
    label: str
    ours: str
    baseline: str | None
    compare: str
    target: tuple[str, float] | None = None
    unit: str = "s"


ROWS = [
    Row("overhead", "1. grade-one / nbconvert --execute, reference notebook", "grader_s", "nbconvert_s", "ratio",
        ("<=", 1.05)),
    Row("fixed", "2. fixed overhead, trivial notebook (grader - nbconvert)", "grader_s", "nbconvert_s",
        "difference", ("<=", 2.0)),
    *(Row("fixed", f"2. part: {part}", f"part_{part}_s", None, "value") for part in
      ("startup", "intake", "sandbox_probe", "kernel_start", "cells", "export", "predict", "checks")),
    Row("fixed", "2. part: keras import, sandbox vs host", "sandbox_keras_import_s", "host_keras_import_s",
        "difference"),
    Row("otter", "3. ours / otter run (no container), small homework", "grader_s", "otter_s", "ratio"),
    Row("regrade", "4. regrade 100 stored submissions after a threshold change (vs re-executing them, estimated)", "regrade_s",
        "reexecute_estimate_s", "value", ("<=", 60.0)),
    Row("scaling", "5. batch of 8, 2 local workers vs 1", "jobs2_s", "jobs1_s", "speedup", (">=", 1.7)),
    Row("scaling", "5. batch of 8, Dask with 2 local workers vs 1 local worker", "dask2_s", "jobs1_s", "speedup",
        (">=", 1.7)),
    Row("memory", "6. grader peak RSS, 100 MB printed (vs nbconvert)", "grader_flood_rss_mb", "nbconvert_flood_rss_mb",
        "value", ("<=", 300.0), "MB"),
    Row("memory", "6. grader peak RSS, trivial notebook", "grader_trivial_rss_mb", None, "value", None, "MB"),
    Row("memory", "6. notebook sandbox peak RSS (trivial notebook)", "kernel_rss_mb", None, "value", None, "MB"),
    Row("memory", "6. prediction sandbox peak RSS (trivial notebook)", "predict_rss_mb", None, "value", None, "MB"),
    Row("similarity", "7. similarity report over 300 stored submissions (code, prose, 5 models each)", "similarity_s",
        None, "value", ("<=", 60.0)),
    Row("similarity", "7. its CPU time (user + system; what a quiet 2-core machine's wall time approaches)",
        "similarity_cpu_s", None, "value"),
    Row("review", "8. review workbench, 300 results: the queue page (first load, every result read)", "queue_first_s",
        None, "value", ("<=", 1.0)),
    Row("review", "8. review workbench, 300 results: the queue page (median answer)", "queue_s", None, "value",
        ("<=", 1.0)),
    Row("review", "8. review workbench, 300 results: an item page with its evidence (median answer)", "item_s", None,
        "value", ("<=", 1.0)),
    Row("review", "8. ... an item page seen for the first time (its confusion matrix drawn; median)", "item_first_s",
        None, "value", ("<=", 1.0)),
    Row("review", "8. ... the slowest first view of an item page", "item_first_max_s",
        None, "value", ("<=", 1.0)),
    Row("report", "9. report checks on one claim repeated 4,000 times (analysis and claims judged)",
        "repeating_report_s", None, "value", ("<=", 20.0)),
]


@dataclass
class Context:
    scratch: Path
    quick: bool
    env: dict[str, str]

    def small_assignment(self, evaluation_size: int | None = 1000) -> Path:
        name = f"assignment-small-{evaluation_size}"
        root = self.scratch / name / "mnist"
        return root if root.is_dir() else w.assignment_copy(self.scratch / name, small=True,
                                                            evaluation_size=evaluation_size)


def _first(repeat: int) -> bool:
    """Alternate which of the pair runs first, so a drift in machine load hits both alike."""
    return repeat % 2 == 0


def _back_to_back(repeat: int, baseline: Callable[[], Any], ours: Callable[[], Any]) -> tuple[Any, Any]:
    """Run the baseline and ours one right after the other; returns (baseline's, ours)."""
    if _first(repeat):
        theirs = baseline()
        return theirs, ours()
    mine = ours()
    return baseline(), mine


def _record_pair(rec: Recorder, repeat: int, ours: w.Run, baseline: w.Run, baseline_name: str) -> None:
    rec(repeat, "grader_s", ours.seconds, "s")
    rec(repeat, f"{baseline_name}_s", baseline.seconds, "s")


def _record_timings(rec: Recorder, repeat: int, result: dict, wall: float) -> None:
    timings = result["timings"]
    for part in TIMING_PARTS:
        rec(repeat, f"part_{part}_s", float(timings.get(part, 0.0)), "s")
    rec(repeat, "part_startup_s", wall - float(timings.get("total", 0.0)), "s")
    execution = result.get("execution") or {}
    rec(repeat, "kernel_rss_mb", float(execution.get("peak_rss_mb") or 0.0), "MB")
    rec(repeat, "predict_rss_mb", float((execution.get("predict") or {}).get("peak_rss_mb") or 0.0), "MB")


def overhead(ctx: Context, repeats: int, rec: Recorder) -> None:
    """1. The reference homework graded vs executed by nbconvert."""
    if ctx.quick:
        notebook = w.write_notebook(w.small_homework(("mlp",), 300), ctx.scratch / "overhead" / "homework.ipynb")
        assignment = ctx.small_assignment()
    else:
        notebook = w.REFERENCE_NOTEBOOK
        assignment = w.assignment_copy(ctx.scratch / "assignment-real", small=False)
    for repeat in range(repeats):
        plain, (graded, result) = _back_to_back(
            repeat, lambda: w.nbconvert(notebook, ctx.scratch / "overhead" / "nbconvert", ctx.env),
            lambda: w.grade_one(notebook, assignment, ctx.scratch / "overhead" / "graded", ctx.env))
        _record_pair(rec, repeat, graded, plain, "nbconvert")
        rec(repeat, "score", float(result["score"]), "points")
        rec(repeat, "real_calibration", float(w.has_real_calibration(assignment)), "bool")
        _record_timings(rec, repeat, result, graded.seconds)


def _sandbox_probe_seconds() -> float:
    """What grade-one's bwrap.check_available() costs: one bwrap start running ``true``."""
    from autograder.run.sandbox import bwrap

    started = time.monotonic()
    bwrap.check_available()
    return time.monotonic() - started


def _keras_import_seconds(bubblewrap: bool, env: dict[str, str]) -> float:
    from autograder.run.sandbox import process
    from autograder.run.sandbox.spec import SandboxSpec

    command = [w.PYTHON, "-c", "import keras"]
    started = time.monotonic()
    if bubblewrap:
        done = process.run(SandboxSpec(), command)
        assert done.returncode == 0, done.stderr_tail
    else:
        subprocess.run(command, env=env, check=True)
    return time.monotonic() - started


def fixed(ctx: Context, repeats: int, rec: Recorder) -> None:
    """2. A notebook that does nothing but import TensorFlow and build a tiny model."""
    notebook = w.write_notebook(w.trivial_notebook(), ctx.scratch / "fixed" / "trivial.ipynb")
    assignment = ctx.small_assignment()
    for repeat in range(repeats):
        plain, (graded, result) = _back_to_back(
            repeat, lambda: w.nbconvert(notebook, ctx.scratch / "fixed" / "nbconvert", ctx.env),
            lambda: w.grade_one(notebook, assignment, ctx.scratch / "fixed" / "graded", ctx.env))
        _record_pair(rec, repeat, graded, plain, "nbconvert")
        _record_timings(rec, repeat, result, graded.seconds)
        rec(repeat, "part_sandbox_probe_s", _sandbox_probe_seconds(), "s")
        keras = [_keras_import_seconds(True, ctx.env), _keras_import_seconds(False, ctx.env)]
        rec(repeat, "sandbox_keras_import_s", keras[0], "s")
        rec(repeat, "host_keras_import_s", keras[1], "s")


def otter(ctx: Context, repeats: int, rec: Recorder) -> None:
    """3. The same small homework graded by ``otter run`` (otter's non-container path) and by us."""
    archs, size = (("mlp",), 300) if ctx.quick else (("mlp", "cnn", "simple_rnn", "lstm", "gru"), 1000)
    notebook = w.write_notebook(w.small_homework(archs, size), ctx.scratch / "otter" / "homework.ipynb")
    autograder_zip = w.otter_zip(ctx.scratch / "otter", ctx.env)
    assignment = ctx.small_assignment()
    for repeat in range(repeats):
        (theirs, otter_result), (ours, result) = _back_to_back(
            repeat, lambda: w.otter_run(notebook, autograder_zip, ctx.scratch / "otter" / "otter-out", ctx.env),
            lambda: w.grade_one(notebook, assignment, ctx.scratch / "otter" / "graded", ctx.env))
        _record_pair(rec, repeat, ours, theirs, "otter")
        rec(repeat, "otter_rss_mb", theirs.peak_rss_mb, "MB")
        rec(repeat, "otter_tests", float(len(otter_result.get("tests", []))), "tests")
        rec(repeat, "score", float(result["score"]), "points")


def _store_copies(seed: Path, results: Path, count: int) -> None:
    """``count`` stored submissions in a RESULTS layout, each a copy of one real grading."""
    shutil.rmtree(results, ignore_errors=True)
    (results / "results").mkdir(parents=True)
    for index in range(count):
        key = f"student{index:03d}-bench"
        shutil.copytree(seed / "artifacts", results / "artifacts" / key)
        shutil.copy(seed / "result.json", results / "results" / f"{key}.json")


def _change_threshold(assignment: Path, repeat: int) -> None:
    """A new calibration (as after re-running calibrate): every stored result is out of date."""
    path = assignment / "calibration.json"
    calibration = json.loads(path.read_text())
    for entry in calibration["architectures"].values():
        entry["eval_accuracy"]["min"] = round(0.50 - 0.01 * (repeat + 1), 4)
    path.write_text(json.dumps(calibration))


def regrade(ctx: Context, repeats: int, rec: Recorder) -> None:
    """4. Re-score stored evidence after a threshold change; nothing is executed."""
    count = 3 if ctx.quick else 100
    archs, size = (("mlp",), 300) if ctx.quick else (("mlp", "cnn", "simple_rnn", "lstm", "gru"), 500)
    # Full size hidden set: the evidence read back is as large as in a real course.
    assignment = ctx.small_assignment(evaluation_size=None)
    notebook = w.write_notebook(w.small_homework(archs, size), ctx.scratch / "regrade" / "homework.ipynb")
    seed_run, _ = w.grade_one(notebook, assignment, ctx.scratch / "regrade" / "seed", ctx.env)
    results = ctx.scratch / "regrade" / "results"
    _store_copies(ctx.scratch / "regrade" / "seed", results, count)
    for repeat in range(repeats):
        _change_threshold(assignment, repeat)
        run = w.regrade(results, assignment, ctx.env)
        rec(repeat, "regrade_s", run.seconds, "s")
        rec(repeat, "reexecute_estimate_s", seed_run.seconds * count, "s")
        rec(repeat, "submissions", float(count), "count")
        rec(repeat, "regrade_rss_mb", run.peak_rss_mb, "MB")


def scaling(ctx: Context, repeats: int, rec: Recorder) -> None:
    """5. A batch graded with 1 and 2 local workers and on a 2-worker Dask LocalCluster."""
    from distributed import LocalCluster

    count = 2 if ctx.quick else 8
    source = ctx.scratch / "scaling" / "submissions"
    shutil.rmtree(source, ignore_errors=True)
    nb = w.trivial_notebook() if ctx.quick else w.small_homework(("mlp",), 500)
    for index in range(count):
        w.write_notebook(nb, source / f"student{index + 1:02d}.ipynb")
    assignment = ctx.small_assignment()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        for repeat in range(repeats):
            runs = {"jobs1_s": lambda: w.grade_batch(source, assignment, ctx.scratch / "scaling" / "j1", ctx.env),
                    "jobs2_s": lambda: w.grade_batch(source, assignment, ctx.scratch / "scaling" / "j2", ctx.env,
                                                     jobs=2),
                    "dask2_s": lambda: w.grade_batch(source, assignment, ctx.scratch / "scaling" / "dask", ctx.env,
                                                     scheduler=cluster.scheduler_address)}
            order = list(runs) if _first(repeat) else list(runs)[::-1]
            for measure in order:
                rec(repeat, measure, runs[measure]().seconds, "s")
            rec(repeat, "submissions", float(count), "count")


def memory(ctx: Context, repeats: int, rec: Recorder) -> None:
    """6. Peak RSS of the grader while a notebook floods its output, and of each sandboxed job."""
    megabytes = 5 if ctx.quick else 100
    flood = w.write_notebook(w.flood_notebook(megabytes), ctx.scratch / "memory" / "flood.ipynb")
    trivial = w.write_notebook(w.trivial_notebook(), ctx.scratch / "memory" / "trivial.ipynb")
    assignment = ctx.small_assignment()
    for repeat in range(repeats):
        graded, result = w.grade_one(flood, assignment, ctx.scratch / "memory" / "flood", ctx.env)
        plain = w.nbconvert(flood, ctx.scratch / "memory" / "nbconvert", ctx.env)
        rec(repeat, "grader_flood_rss_mb", graded.peak_rss_mb, "MB")
        rec(repeat, "nbconvert_flood_rss_mb", plain.peak_rss_mb, "MB")
        rec(repeat, "flood_truncated", float(bool(result["execution"]["output_truncated"])), "bool")
        graded, result = w.grade_one(trivial, assignment, ctx.scratch / "memory" / "trivial", ctx.env)
        rec(repeat, "grader_trivial_rss_mb", graded.peak_rss_mb, "MB")
        _record_timings(rec, repeat, result, graded.seconds)


def similarity(ctx: Context, repeats: int, rec: Recorder) -> None:
    """7. The similarity report from stored artifacts: nothing is executed, every pair is considered."""
    count = 12 if ctx.quick else 300
    results = w.similarity_batch(ctx.scratch / "similarity" / "results", count)
    for repeat in range(repeats):
        run = w.similarity(results, ctx.scratch / "similarity" / f"report-{repeat}", ctx.env)
        rec(repeat, "similarity_s", run.seconds, "s")
        rec(repeat, "similarity_cpu_s", run.cpu_seconds, "s")
        rec(repeat, "submissions", float(count), "count")
        rec(repeat, "similarity_rss_mb", run.peak_rss_mb, "MB")


def review(ctx: Context, repeats: int, rec: Recorder) -> None:
    """8. The review workbench over a RESULTS folder of 300 students: how fast the queue and an item answer."""
    import statistics

    count = 12 if ctx.quick else 300
    results = w.review_batch(ctx.scratch / "review" / "results", count)
    for repeat in range(repeats):
        timings = w.review_timings(results, 3 if ctx.quick else 10)
        rec(repeat, "queue_first_s", timings["queue_first_s"][0], "s")
        rec(repeat, "queue_s", statistics.median(timings["queue_s"]), "s")
        rec(repeat, "item_s", statistics.median(timings["item_s"]), "s")
        rec(repeat, "item_max_s", max(timings["item_s"]), "s")
        rec(repeat, "item_first_s", statistics.median(timings["item_first_s"]), "s")
        rec(repeat, "item_first_max_s", max(timings["item_first_s"]), "s")
        rec(repeat, "items_listed", timings["items_listed"][0], "count")
        rec(repeat, "results", float(count), "count")


def report(ctx: Context, repeats: int, rec: Recorder) -> None:
    """9. The report checks on a hostile report: one accuracy claim repeated 4,000 times in four cells (a
    regular expression that backtracks, or a pass over claims that is quadratic, shows here first)."""
    from autograder.assignment import load_assignment
    from autograder.score.report.analysis import analyze_report
    from autograder.score.report.checks import check_claims
    from autograder.score.report.claims import ClaimRules, claim_limits, judge_claims

    assignment = load_assignment(w.REPO / "assignments" / "mnist")
    limits = claim_limits(ClaimRules.from_assignment(assignment), assignment.calibration())
    cells = ["The MLP reaches 97.9% on the test set. " * 1000] * 4
    for repeat in range(repeats):
        started = time.perf_counter()
        outcome = check_claims(judge_claims(analyze_report(cells, assignment), {"mlp": 0.979}, limits))
        rec(repeat, "repeating_report_s", time.perf_counter() - started, "s")
        rec(repeat, "claims_credited", outcome.fraction, "fraction")


FIGURES = {"overhead": overhead, "fixed": fixed, "otter": otter, "regrade": regrade, "scaling": scaling,
           "memory": memory, "similarity": similarity, "review": review, "report": report}
DEFAULT_REPEATS = {"overhead": 1, "fixed": 5, "otter": 2, "regrade": 3, "scaling": 1, "memory": 2, "similarity": 3,
                   "review": 3, "report": 3}
