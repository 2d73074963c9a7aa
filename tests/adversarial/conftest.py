"""Fixtures of the adversarial suite: test-sized assignment directories and the invariants every case shares."""
from __future__ import annotations

import json
import re
import shutil
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from autograder import grade, sandbox
from autograder.assignment import Assignment, load_assignment

import cases


def assignment_variant(source: Assignment, target: Path, execution: dict, calibration: dict | None = None) -> Path:
    """A copy of ``source``'s directory with other execution limits (and calibration); batch workers read it."""
    shutil.copytree(source.root, target)
    toml = (target / "assignment.toml").read_text()
    for key, value in execution.items():
        toml, count = re.subn(rf"(?m)^{key} = \S+", f"{key} = {value}", toml)
        assert count == 1, key
    (target / "assignment.toml").write_text(toml)
    if calibration is not None:
        (target / "calibration.json").write_text(json.dumps(calibration))
    return target


@pytest.fixture(scope="session")
def tiny_dir(small_assignment, tmp_path_factory) -> Path:
    return assignment_variant(small_assignment, tmp_path_factory.mktemp("tiny") / "mnist", cases.TINY)


@pytest.fixture(scope="session")
def assignments(small_assignment, tiny_dir, tmp_path_factory) -> dict[str, Assignment]:
    """By case ``limits``: tiny (no TensorFlow), model (small_assignment), lookup (a realistic reference gap).

    The lookup rule compares a model's public-test/hidden-set gap with the references'; the test-only
    calibration has an unrealistic 20-point gap, so the lookup case gets references 5 points apart.
    """
    calibration = json.loads(small_assignment.calibration_file.read_text())
    for figures in calibration["architectures"].values():
        figures["test_accuracy"] = {"mean": 0.75, "min": 0.70}
        figures["eval_accuracy"] = {"mean": 0.70, "min": 0.50}
    lookup = assignment_variant(small_assignment, tmp_path_factory.mktemp("lookup") / "mnist", {}, calibration)
    loaded = {"tiny": load_assignment(tiny_dir), "model": small_assignment, "lookup": load_assignment(lookup)}
    for assignment in loaded.values():  # warm the grader's caches so memory growth below is the job's own
        grade.evaluation_set(assignment.evaluation_seed(), assignment.evaluation_size, assignment.evaluation_max_shift)
    grade.mnist_data()
    return loaded


@pytest.fixture
def tiny_limits(monkeypatch):
    """Disk, process and export-time limits grade.py leaves at their defaults, made test-sized."""
    real = sandbox.Limits
    monkeypatch.setattr(sandbox, "Limits", lambda **kwargs: real(**{**cases.TINY_SANDBOX, **kwargs}))
    monkeypatch.setattr(grade.execute, "EXPORT_SECONDS", cases.TINY_EXPORT_SECONDS)


class PeakMemory:
    """The grader's own resident memory while a block runs (sampled every 20 ms)."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.baseline = self.peak = self.process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 2**20


def sandbox_processes(uid: int, wait: float = 10.0) -> list[psutil.Process]:
    """Processes still running as the sandbox uid, after giving the kernel ``wait`` seconds to reap them."""
    deadline = time.monotonic() + wait
    while True:
        alive = [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def tree_digest(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def executed_text(artifacts: Path) -> str:
    """Every output the student's cells produced, plus the prediction sandbox's log."""
    parts = []
    if (artifacts / "executed.ipynb").is_file():
        for cell in nbformat.read(artifacts / "executed.ipynb", as_version=4).cells:
            for out in cell.get("outputs", []):
                parts.append(str(out.get("text", "")))
                parts.extend(str(v) for v in out.get("data", {}).values())
                parts.append(str(out.get("evalue", "")))
                parts.extend(out.get("traceback", []))
    for log in ("predict.log", "kernel.log"):
        if (artifacts / log).is_file():
            parts.append((artifacts / log).read_text(errors="replace"))
    return "\n".join(parts)
