"""What the adversarial tests measure around a grading: the grader's memory, leftover processes, outputs."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import nbformat
import psutil


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
