"""The watchdog of a sandboxed process tree: its CPU clock, and a SIGKILL of the whole tree on a breach.

Time is counted as CPU work (:class:`CpuClock`), with a wall-clock backstop; disk is the size of the
directories the tree writes back; memory is the cgroup's OOM kill where a cgroup could be made, else
resident memory (and the RAM its private tmpfs hold) sampled here. RLIMIT_AS is not used: TensorFlow
reserves far more address space than it touches and fails in confusing ways under it.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil

from autograder.run.sandbox import cgroup
from autograder.run.sandbox.process_tree import ProcessTree, tmpfs_bytes, tree_processes, tree_size_bytes
from autograder.run.sandbox.spec import Limits


class CpuClock:
    """The CPU work a sandboxed process tree has done, in seconds of its ``threads`` (CPU seconds / threads).

    Counted by the job's cgroup where it has a CPU clock (every process of the job, however it was
    started, and whatever ended); otherwise the sum of user and system time over the tree psutil lists
    (each process's own and that of the children it reaped): a process that left the tree is not counted
    while it runs. Unlike wall time it does not grow while the machine is busy with other work, so the
    same notebook reaches a limit at the same point at any ``-j`` and any load.
    """

    def __init__(self, pid: int, threads: int, cgroup: cgroup.Cgroup | None = None) -> None:
        self.pid, self.threads = pid, max(1, threads)
        self.cgroup = cgroup if cgroup is not None and cgroup.cpu_seconds() is not None else None
        self.source = self.cgroup.version if self.cgroup is not None else "process-tree"
        self._seen = 0.0

    def cpu_seconds(self) -> float:
        """CPU seconds used so far (never less than read before: a reaped process's time may vanish for a moment)."""
        used = self.cgroup.cpu_seconds() if self.cgroup is not None else self._tree_seconds()
        self._seen = max(self._seen, used or 0.0)
        return self._seen

    def work_seconds(self) -> float:
        return self.cpu_seconds() / self.threads

    def _tree_seconds(self) -> float:
        total = 0.0
        for proc in tree_processes(self.pid):
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system + times.children_user + times.children_system
        return total


#: The result's stop reason for each time limit: "wall_budget" is the time budget, whichever clock ran out.
TIME_STOPS = {"cpu_budget": "wall_budget", "wall_backstop": "wall_budget"}


class Watchdog:
    """Polls a sandboxed process tree; SIGKILLs it all on a memory, disk or time breach.

    ``stopped`` records why it fired ("memory", "disk", "wall_budget": the time budget) and ``limit``
    which limit it was ("memory", "disk", "cpu_budget": the CPU work of ``cpu_seconds``, counted by
    ``clock``; "wall_backstop": the wall clock of ``wall_seconds``); ``peak_rss_mb`` is the most memory
    the tree used. With a ``cgroup`` the kernel enforces the memory limit and the watchdog reads its
    OOM-kill event (and its peak); without one it samples RSS and tmpfs.
    """

    def __init__(self, pid: int, limits: Limits, watched_dirs: list[Path] = (),
                 wall_seconds: float | None = None, interval: float = 0.1, private_tmpfs: bool = True,
                 cgroup: cgroup.Cgroup | None = None, cpu_seconds: float | None = None) -> None:
        self.pid, self.limits, self.watched_dirs = pid, limits, list(watched_dirs)
        self.cgroup = cgroup
        self.tree = ProcessTree(pid, cgroup)  # now, while the process is known to be unreaped
        self.clock = CpuClock(pid, limits.threads, cgroup)
        self.private_tmpfs = private_tmpfs  # a bubblewrap sandbox's home and /tmp: their RAM counts as memory
        self.deadline = time.monotonic() + (wall_seconds or limits.wall_seconds)
        self.cpu_deadline = cpu_seconds  # in the clock's work seconds; None: no CPU limit
        self.interval = interval
        self.stopped: str | None = None
        self.limit: str | None = None
        self.peak_rss_mb = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"watchdog-{pid}", daemon=True)

    def __enter__(self) -> "Watchdog":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        if self.stopped is None and self.cgroup is not None and self.cgroup.oom_kills():
            self.stopped = self.limit = "memory"  # the OOM kill ended the job before the next poll saw it
        elif self.stopped is None and self.disk_breach():
            self.stopped = self.limit = "disk"  # filled between the last poll and the end
        self.tree.kill()  # whatever outlived the job (a double-forked daemon) ends here
        self.tree.close()

    def extend(self, seconds: float) -> None:
        """Allow ``seconds`` more from now, of wall time and of CPU work (the export step after a student's
        time ran out)."""
        self.deadline = time.monotonic() + seconds
        if self.cpu_deadline is not None:
            self.cpu_deadline = self.clock.work_seconds() + seconds

    def rss_mb(self, with_tmpfs: bool = False) -> float:
        """Resident memory of the tree; with ``with_tmpfs``, plus the RAM its private tmpfs hold."""
        procs = tree_processes(self.pid)
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        if with_tmpfs:
            total += tmpfs_bytes([proc.pid for proc in reversed(procs)])
        return total / 2**20

    def _breach(self, with_tmpfs: bool) -> str | None:
        """The limit breached now, if any."""
        if self.cgroup is not None:
            self.peak_rss_mb = max(self.peak_rss_mb, self.cgroup.peak_mb() or 0.0)
            if self.cgroup.oom_kills():
                return "memory"
        else:
            rss = self.rss_mb(with_tmpfs)
            self.peak_rss_mb = max(self.peak_rss_mb, rss)
            if rss > self.limits.memory_mb:
                return "memory"
        if self.cpu_deadline is not None and self.clock.work_seconds() > self.cpu_deadline:
            return "cpu_budget"
        if time.monotonic() > self.deadline:
            return "wall_backstop" if self.cpu_deadline is not None else "wall_budget"
        return None

    def disk_breach(self) -> bool:
        return sum(tree_size_bytes(d) for d in self.watched_dirs) > self.limits.export_mb * 2**20

    def _watch(self) -> None:
        ticks = 0
        while not self._done.wait(self.interval):
            ticks += 1
            reason = self._breach(with_tmpfs=self.private_tmpfs and ticks % 5 == 0)
            if reason is None and self.disk_breach():  # every tick: a few small directories
                reason = "disk"
            if reason is not None:
                self.stopped, self.limit = TIME_STOPS.get(reason, reason), reason
                self.tree.kill()
                return
