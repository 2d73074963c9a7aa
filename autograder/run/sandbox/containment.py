"""What holds one sandboxed process beyond its namespaces: its cgroup and its seccomp filter.

:meth:`Containment.describe` is what each result records as ``execution.containment``: which mechanism
held each limit (a cgroup, the watchdog, rlimits, seccomp) and the cgroup's own events.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

from autograder.run.sandbox import cgroup, syscall_filter
from autograder.run.sandbox.spec import Limits


@dataclass
class Containment:
    """What holds one sandboxed process beyond its namespaces: its cgroup, if one could be made, and the
    seccomp filter. Create one per process, start the process with :meth:`wrap` and ``pass_fds``, call
    :meth:`started`, and :meth:`close` when it is over."""

    cgroup: cgroup.Cgroup | None
    seccomp_fd: int | None

    @classmethod
    def create(cls, limits: Limits) -> "Containment":
        fd = syscall_filter.program_fd()
        return cls(cgroup.create(limits.memory_mb * 2**20, limits.processes, limits.threads), fd)

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return (self.seccomp_fd,) if self.seccomp_fd is not None else ()

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` (bwrap's) with the filter, run by a shell that first joins the cgroup, so that every
        process of the sandbox is born in it."""
        argv = [argv[0], "--seccomp", str(self.seccomp_fd)] + argv[1:]
        if self.cgroup is None:
            return argv
        join = " && ".join(f"echo $$ > {shlex.quote(str(procs))}" for procs in self.cgroup.procs_files)
        return ["/bin/sh", "-c", f'{join} && exec "$@"', "agx-sandbox"] + argv

    def started(self) -> None:
        """The process has its copy of the filter's descriptor (bwrap reads it once): close ours."""
        if self.seccomp_fd is not None:
            os.close(self.seccomp_fd)
            self.seccomp_fd = None

    def describe(self) -> dict[str, object]:
        """Which mechanism held each limit, and the cgroup's own events, for the result."""
        held_by = self.cgroup.version if self.cgroup is not None else None
        quota = held_by if self.cgroup is not None and self.cgroup.quota is not None else "none"
        return {"memory": held_by or "watchdog", "processes": held_by or "rlimit", "syscalls": "seccomp",
                "disk": "watchdog", "cpu": quota, "oom_kills": self.cgroup.oom_kills() if self.cgroup else 0,
                "pids_refused": self.cgroup.pids_refused() if self.cgroup else 0}

    def close(self) -> dict[str, object]:
        """Kill what is left, remove the cgroup; returns :meth:`describe` as it was at the end."""
        self.started()
        summary = self.describe()
        if self.cgroup is not None:
            self.cgroup.remove()
        return summary
