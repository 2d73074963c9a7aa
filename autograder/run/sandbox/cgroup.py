"""A memory and pids cgroup per sandboxed process: the kernel's own accounting, and its own events.

The kernel charges a cgroup for everything its processes hold, including what no process's RSS shows
(tmpfs and ``memfd`` files, page tables, socket buffers), and its OOM killer acts at ``memory_mb``
before the machine suffers; the ``oom_kill`` event is then the stop reason. ``pids.max`` bounds
processes plus threads per job (RLIMIT_NPROC counts per uid). The same cgroup is the job's CPU clock:
the CPU time every process of the job used (v2 ``cpu.stat``, present in every v2 cgroup; v1 the
``cpuacct`` hierarchy, where one is mounted), which the time limits count in; and, where the ``cpu``
controller is offered, a CPU quota of the assignment's ``threads`` cores, so that CPU time / threads
never runs ahead of the wall clock (a time limit is never reached sooner than a wall clock would reach it).

Where: cgroup v2 (``memory.max``, ``pids.max``) when the unified hierarchy offers both controllers to
the grader's own cgroup; otherwise the v1 ``memory`` and ``pids`` hierarchies (machines that mount v1
controllers beside an empty v2, like these); otherwise none, and :class:`autograder.run.sandbox.watchdog.Watchdog`
bounds memory alone. Job cgroups are made under the grader's own ones (never the machine's root),
named ``agx-<grader pid>-<n>``, so one left by a killed grader is recognised by its dead pid and
removed by :func:`remove_stale`.
"""
from __future__ import annotations

import functools
import itertools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

PREFIX = "agx-"
CPU_PERIOD_US = 100_000  # the quota's accounting period
_serial = itertools.count()


@dataclass(frozen=True)
class Hierarchy:
    """Where job cgroups go: the grader's own cgroup in each hierarchy the limits need."""

    version: str  # "cgroup-v1" | "cgroup-v2"
    memory: Path
    pids: Path
    cpu: Path | None  # where CPU time is counted (v2: the same directory; v1: cpuacct), None: nowhere
    quota: Path | None  # where a CPU quota is set (v2: the same directory, if cpu is delegated; v1: cpu)


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, file system type, options) of each cgroup mount this process sees."""
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] in ("cgroup", "cgroup2"):
            found.append((fields[1].replace("\\040", " "), fields[2], set(fields[3].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup path by v1 controller name, and by "" for v2."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path.lstrip("/")
    return paths


def _v2_parent(mount: str, own: str) -> Path | None:
    """The grader's own v2 cgroup, if it hands memory and pids down to new children."""
    parent = Path(mount) / own
    try:
        if not {"memory", "pids"} <= set((parent / "cgroup.controllers").read_text().split()):
            return None
        delegated = set((parent / "cgroup.subtree_control").read_text().split())
        if not {"memory", "pids"} <= delegated:
            # Refused when the grader's cgroup holds processes itself (v2's "no internal processes").
            (parent / "cgroup.subtree_control").write_text("+memory +pids")
    except OSError:
        return None
    try:  # the CPU quota is a bonus: without it the limits still count CPU time (cpu.stat is always there)
        if "cpu" not in (parent / "cgroup.subtree_control").read_text().split():
            (parent / "cgroup.subtree_control").write_text("+cpu")
    except OSError:
        pass
    return parent


@functools.lru_cache(maxsize=1)
def hierarchy() -> Hierarchy | None:
    """The hierarchy job cgroups are made in here, or None when this machine or user offers none."""
    try:
        mounts, own = _mounts(), _own_paths()
    except (OSError, ValueError):
        return None
    for mount, kind, _ in mounts:
        if kind == "cgroup2" and "" in own:
            parent = _v2_parent(mount, own[""])
            if parent is not None:
                try:
                    delegated = "cpu" in (parent / "cgroup.subtree_control").read_text().split()
                except OSError:
                    delegated = False
                return Hierarchy("cgroup-v2", parent, parent, parent, parent if delegated else None)
    v1 = {name: Path(mount) / own[name] for mount, kind, options in mounts if kind == "cgroup"
          for name in ("memory", "pids", "cpuacct", "cpu") if name in options and name in own}
    v1 = {name: path for name, path in v1.items() if os.access(path, os.W_OK)}
    if {"memory", "pids"} <= set(v1):
        return Hierarchy("cgroup-v1", v1["memory"], v1["pids"], v1.get("cpuacct"), v1.get("cpu"))
    return None


def _read_field(path: Path, key: str) -> int:
    """A counter from a flat keyed file (``memory.events``, ``pids.events``, ``memory.oom_control``)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


@dataclass
class Cgroup:
    """One job's cgroup (one directory in v2, one per controller in v1)."""

    version: str
    memory: Path
    pids: Path
    cpu: Path | None = None  # its CPU clock
    quota: Path | None = None  # its CPU quota

    @property
    def directories(self) -> list[Path]:
        return list(dict.fromkeys(d for d in (self.memory, self.pids, self.cpu, self.quota) if d is not None))

    @property
    def procs_files(self) -> list[Path]:
        """Where a process writes its pid to join (a child is born in its parent's cgroup)."""
        return [directory / "cgroup.procs" for directory in self.directories]

    def oom_kills(self) -> int:
        """Processes the kernel's OOM killer ended because this cgroup reached its memory limit."""
        if self.version == "cgroup-v2":
            return _read_field(self.memory / "memory.events", "oom_kill")
        return _read_field(self.memory / "memory.oom_control", "oom_kill")

    def pids_refused(self) -> int:
        """Forks and new threads refused at ``pids.max``."""
        return _read_field(self.pids / "pids.events", "max")

    def cpu_seconds(self) -> float | None:
        """CPU time (user and system) every process of the job used so far; None where it is not counted."""
        try:
            if self.cpu is None:
                return None
            if self.version == "cgroup-v2":
                return _read_field(self.cpu / "cpu.stat", "usage_usec") / 1e6
            return int((self.cpu / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            return None

    def peak_mb(self) -> float | None:
        name = "memory.peak" if self.version == "cgroup-v2" else "memory.max_usage_in_bytes"
        try:
            return int((self.memory / name).read_text()) / 2**20
        except (OSError, ValueError):
            return None

    def members(self) -> list[int]:
        pids: set[int] = set()
        for procs in self.procs_files:
            try:
                pids.update(int(pid) for pid in procs.read_text().split())
            except (OSError, ValueError):
                continue
        return sorted(pids)

    def kill(self) -> None:
        """SIGKILL every process in the cgroup (through a pidfd, checked to be a member, never a reused pid)."""
        for pid in self.members():
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                if any(str(d).endswith(line.split(":", 2)[2]) for d in self.directories
                       for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except OSError:
                pass
            finally:
                os.close(pidfd)

    def remove(self, wait: float = 5.0) -> bool:
        """Kill what is left and remove the cgroup; False if it still had processes after ``wait`` s."""
        deadline = time.monotonic() + wait
        while True:
            self.kill()
            try:
                for directory in self.directories:
                    if directory.exists():
                        directory.rmdir()
                return True
            except OSError:  # EBUSY while the killed processes are being reaped
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)


def create(memory_bytes: int, processes: int, cpus: int) -> Cgroup | None:
    """A new cgroup limited to ``memory_bytes`` (no swap), ``processes`` tasks and, where the ``cpu``
    controller is offered, ``cpus`` cores of CPU time; or None if none can be made."""
    where = hierarchy()
    if where is None:
        return None
    name = f"{PREFIX}{os.getpid()}-{next(_serial)}"
    group = Cgroup(where.version, where.memory / name, where.pids / name)
    try:
        for directory in group.directories:
            directory.mkdir()
        if group.version == "cgroup-v2":
            (group.memory / "memory.max").write_text(str(memory_bytes))
            if (group.memory / "memory.swap.max").exists():
                (group.memory / "memory.swap.max").write_text("0")
        else:
            (group.memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            if (group.memory / "memory.memsw.limit_in_bytes").exists():  # memory plus swap: no swap either
                (group.memory / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
        (group.pids / "pids.max").write_text(str(processes))
    except OSError:
        group.remove(wait=0)
        return None
    if where.cpu is not None:  # without it the limits count CPU time from the process tree (watchdog.CpuClock)
        try:
            (where.cpu / name).mkdir(exist_ok=True)
            group.cpu = where.cpu / name
        except OSError:
            pass
    if where.quota is not None:
        try:
            (where.quota / name).mkdir(exist_ok=True)
            group.quota = where.quota / name
            if group.version == "cgroup-v2":
                (group.quota / "cpu.max").write_text(f"{cpus * CPU_PERIOD_US} {CPU_PERIOD_US}")
            else:
                (group.quota / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
                (group.quota / "cpu.cfs_quota_us").write_text(str(cpus * CPU_PERIOD_US))
        except OSError:  # no quota: CPU time / threads may then run ahead of the wall clock
            if group.quota is not None and group.quota not in (group.memory, group.pids, group.cpu):
                try:
                    group.quota.rmdir()
                except OSError:
                    pass
            group.quota = None
    return group


def remove_stale() -> int:
    """Remove job cgroups whose grader is gone (killed before it could); returns how many."""
    where = hierarchy()
    if where is None:
        return 0
    removed = 0
    parents = [p for p in (where.memory, where.pids, where.cpu, where.quota) if p is not None]
    for name in sorted({entry.name for parent in parents for entry in parent.glob(f"{PREFIX}*-*")}):
        owner = name[len(PREFIX):].split("-")[0]
        if owner.isdigit() and not psutil.pid_exists(int(owner)):
            group = Cgroup(where.version, where.memory / name, where.pids / name, where.cpu and where.cpu / name,
                           where.quota and where.quota / name)
            removed += group.remove(wait=1)
    return removed
