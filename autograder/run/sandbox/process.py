"""One sandboxed process: started under its watchdog, held until released, waited for.

Limits: a memory and pids cgroup per sandboxed process where one can be made (:mod:`.cgroup`; the
kernel's OOM kill is the stop reason), a seccomp filter (:mod:`.syscall_filter`: no new namespaces,
mounts, ptrace or keyrings), rlimits (no core dumps, file size, open files, processes) through
``prlimit`` (:mod:`.bwrap`); time (CPU work), disk and, where no cgroup could be made, resident memory
through the :class:`~.watchdog.Watchdog`, which SIGKILLs the whole process tree. :class:`Completed`
records which mechanism held (:class:`~.containment.Containment`).
"""
from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.run.sandbox.bwrap import bwrap_argv
from autograder.run.sandbox.containment import Containment
from autograder.run.sandbox.spec import Limits, SandboxSpec
from autograder.run.sandbox.watchdog import Watchdog


def read_tail(path: Path, limit: int) -> bytes:
    """The last ``limit`` bytes of a log the sandbox wrote (it controls how long the log is)."""
    if not path.is_file():
        return b""
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - limit))
        return fh.read(limit)


@dataclass
class Completed:
    returncode: int | None
    stopped: str | None
    peak_rss_mb: float
    seconds: float
    stderr_tail: str
    containment: dict[str, object] = field(default_factory=dict)  # Containment.describe(), if it had one (bubblewrap)


class Running:
    """A process started under its watchdog, holding until :meth:`release` writes to its stdin.

    Lets a sandbox do its slow start-up (importing TensorFlow) while the grader is busy elsewhere; its
    wall-clock limit counts from the release, its memory limit from the start.
    """

    def __init__(self, argv: list[str], limits: Limits, watched_dirs: list[Path] = (),
                 log_path: Path | None = None, env: dict[str, str] | None = None, private_tmpfs: bool = True,
                 containment: Containment | None = None) -> None:
        self.limits, self.log_path, self.containment = limits, log_path, containment
        self.completed: Completed | None = None
        self.started = time.monotonic()
        self.log = open(log_path, "wb") if log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=self.log, stderr=self.log, env=env,
                                         start_new_session=True, pass_fds=containment.pass_fds if containment else ())
        except BaseException:
            if containment is not None:
                containment.close()
            raise
        if containment is not None:
            containment.started()
        self.dog = Watchdog(self.proc.pid, limits, watched_dirs, wall_seconds=float("inf"), private_tmpfs=private_tmpfs,
                            cgroup=containment.cgroup if containment else None).__enter__()

    def release(self, message: bytes = b"") -> None:
        """Send ``message`` and end the process's stdin; its wall-clock limit starts now."""
        self.started = time.monotonic()
        self.dog.extend(self.limits.wall_seconds)
        try:
            self.proc.stdin.write(message)
            self.proc.stdin.close()
        except OSError:  # it already died (the memory watchdog): wait() reports it
            pass

    def wait(self) -> Completed:
        if self.completed is not None:
            return self.completed
        containment: dict[str, object] = {}
        try:
            # Wait for the end without reaping: until the watchdog's last kill, the pid (also the process
            # group's id) stays this process's and cannot be handed to another.
            os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            pass
        finally:
            try:
                self.dog.__exit__(None, None, None)
            finally:
                returncode = self.proc.wait()
                if self.containment is not None:
                    containment = self.containment.close()
                if self.log_path:
                    self.log.close()
        tail = read_tail(self.log_path, 4000).decode("utf-8", "replace") if self.log_path else ""
        self.completed = Completed(returncode=returncode, stopped=self.dog.stopped,
                                   peak_rss_mb=round(self.dog.peak_rss_mb, 1),
                                   seconds=round(time.monotonic() - self.started, 3), stderr_tail=tail,
                                   containment=containment)
        return self.completed

    def cancel(self) -> None:
        """Kill it if it still runs (never released, or the grader gave up on it)."""
        if self.completed is None:
            self.dog.tree.kill()
            self.wait()


def start(spec: SandboxSpec, command: list[str], *, watched_dirs: list[Path] = (),
          log_path: Path | None = None) -> Running:
    """Start ``command`` in the sandbox; it runs until it blocks on stdin, see :class:`Running`."""
    containment = Containment.create(spec.limits)
    return Running(bwrap_argv(spec, command, containment), spec.limits, watched_dirs, log_path,
                   containment=containment)


def run(spec: SandboxSpec, command: list[str], *, watched_dirs: list[Path] = (),
        log_path: Path | None = None) -> Completed:
    """Run ``command`` in the sandbox to completion under the watchdog (its stdin is empty)."""
    running = start(spec, command, watched_dirs=watched_dirs, log_path=log_path)
    running.release()
    return running.wait()
