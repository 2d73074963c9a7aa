"""What the adversarial tests measure around a grading: the grader's memory, leftover processes, outputs."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import nbformat
import psutil

from autograder.run.sandbox import cgroup
from waiting import within


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


def job_processes() -> list[psutil.Process]:
    """Processes a grading by this process started, found the same way whoever runs the tests (no uid
    filter): descendants in a PID namespace that is not ours (a sandbox's daemon stays under bwrap's
    init there; the grader's own helpers, such as multiprocessing's tracker, do not count), and every
    member of a job cgroup named for this grader (``agx-<pid>-``: a process that left the tree)."""
    own_namespace = os.readlink("/proc/self/ns/pid")
    found = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            if os.readlink(f"/proc/{proc.pid}/ns/pid") != own_namespace:
                found[proc.pid] = proc
        except OSError:
            continue
    job_cgroup = f"/{cgroup.PREFIX}{os.getpid()}-"
    for proc in psutil.process_iter():
        try:
            if job_cgroup in Path(f"/proc/{proc.pid}/cgroup").read_text():
                found[proc.pid] = proc
        except OSError:
            continue
    return [proc for proc in found.values() if running_cmdline(proc) is not None]


def running_cmdline(proc: psutil.Process) -> str | None:
    """The command line of ``proc`` while it runs; None once it is gone or a zombie."""
    try:
        return None if proc.status() == psutil.STATUS_ZOMBIE else " ".join(proc.cmdline())
    except psutil.Error:
        return None


def leftover_processes(wait: float = 10.0) -> list[psutil.Process]:
    """:func:`job_processes` still there after giving the kernel ``wait`` seconds to reap them."""
    within(wait, lambda: not job_processes())
    return job_processes()


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
