"""The sandbox untrusted code runs in: bubblewrap, an unprivileged uid, hard limits, watchdogs.

What a sandboxed process sees: read-only system directories and Python, the in-sandbox helper package
(``autograder/run/inside``), a size-capped private home and /tmp, the Keras MNIST cache, and only the job
directories it is given. It has no network (own network namespace), its own PID namespace (it cannot
see or signal the grader) and no capabilities. When the grader runs as root, the sandbox drops to a
dedicated uid with ``setpriv``; otherwise bubblewrap's user namespace maps the caller's uid.

Limits: a memory and pids cgroup per sandboxed process where one can be made (:mod:`autograder.run.cgroup`;
the kernel's OOM kill is the stop reason), a seccomp filter (:mod:`autograder.run.syscall_filter`: no new
namespaces, mounts, ptrace or keyrings), rlimits (no core dumps, file size, open files, processes)
through ``prlimit``; time (CPU work counted by :class:`CpuClock`, and a wall-clock backstop), disk and,
where no cgroup could be made, resident memory through :class:`Watchdog`, which SIGKILLs the whole process
tree (RLIMIT_AS is not used: TensorFlow reserves far more address space than it touches and fails in
confusing ways under it). :class:`Confinement` records
which mechanism held.
"""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from autograder.assignment import Execution
from autograder.run import cgroup, syscall_filter

INSIDE_PACKAGE = Path(__file__).resolve().parent / "inside"
INSIDE_MOUNT = "/opt/agx"  # holds the package as /opt/agx/autograder_inside
HOME = "/home/student"
SANDBOX_UID_BASE = 200_000  # a uid range no real account uses


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be built here; the message names the fix."""


#: The documented defaults of assignment.toml's [execution] table: Limits() is a sandbox under them.
_DEFAULTS = Execution()


@dataclass(frozen=True)
class Limits:
    memory_mb: int = _DEFAULTS.memory_mb  # memory of the whole process tree, tmpfs files included (cgroup, or watchdog)
    wall_seconds: float = _DEFAULTS.wall_budget_seconds  # watchdog kill, on top of any softer per-cell timeouts
    file_size_mb: int = _DEFAULTS.file_size_mb  # RLIMIT_FSIZE: any one file written
    open_files: int = 1024  # RLIMIT_NOFILE
    processes: int = _DEFAULTS.processes  # pids.max and RLIMIT_NPROC
    home_mb: int = _DEFAULTS.home_mb  # size of the private tmpfs home and of /tmp
    export_mb: int = _DEFAULTS.export_mb  # disk the job may fill in the directories it writes back (watchdog)
    threads: int = _DEFAULTS.threads  # CPU threads TensorFlow and BLAS may use

    @classmethod
    def from_execution(cls, execution: Execution, wall_seconds: float) -> "Limits":
        """The sandbox limits an assignment's [execution] table sets, with this wall clock."""
        return cls(memory_mb=execution.memory_mb, wall_seconds=wall_seconds, file_size_mb=execution.file_size_mb,
                   processes=execution.processes, home_mb=execution.home_mb, export_mb=execution.export_mb,
                   threads=execution.threads)


@dataclass
class Mount:
    source: Path
    target: str
    writable: bool = False


@dataclass
class SandboxSpec:
    """One sandboxed process: what it sees, its environment and its limits."""

    limits: Limits = field(default_factory=Limits)
    mounts: list[Mount] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    keras_cache: Path | None = None  # a verified mnist.npz, made visible at ~/.keras/datasets/
    uid: int | None = None  # None: derive one from the grader's pid (root only)

    def sandbox_uid(self) -> int:
        return self.uid if self.uid is not None else SANDBOX_UID_BASE + os.getpid() % 50_000


def python_paths() -> list[Path]:
    """Directories the sandbox needs to run this interpreter and its packages, read-only."""
    paths = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.prefix)}
    return sorted(paths)


def check_available() -> None:
    """Raise SandboxUnavailable with the fix when bubblewrap cannot build a sandbox here."""
    missing = [tool for tool in ("bwrap", "prlimit") + (("setpriv",) if os.geteuid() == 0 else ())
               if shutil.which(tool) is None]
    if missing:
        raise SandboxUnavailable(
            f"missing {', '.join(missing)}: install with `sudo apt-get install bubblewrap util-linux` "
            "(or run `make setup`)")
    try:
        confinement = Confinement.create(Limits())
    except syscall_filter.FilterUnavailable as exc:
        raise SandboxUnavailable(f"cannot build the seccomp filter: {exc}") from exc
    try:
        probe = subprocess.run(bwrap_argv(SandboxSpec(), ["true"], confinement), capture_output=True, text=True,
                               timeout=30, pass_fds=confinement.pass_fds)
    finally:
        confinement.close()
    if probe.returncode != 0:
        raise SandboxUnavailable(
            "bubblewrap cannot create namespaces here: " + probe.stderr.strip()[:300]
            + " (enable unprivileged user namespaces: `sysctl kernel.unprivileged_userns_clone=1`"
            " / `sysctl user.max_user_namespaces=10000`, or run the grader as root)")


def bwrap_argv(spec: SandboxSpec, command: list[str], confinement: "Confinement | None" = None) -> list[str]:
    """The full command line: bwrap, then privilege drop and rlimits, then ``command``.

    With a ``confinement``, bwrap loads its seccomp filter and runs in its cgroup (pass
    ``confinement.pass_fds`` to the process that starts it).
    """
    limits = spec.limits
    argv = ["bwrap", "--die-with-parent", "--new-session",
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "sandbox", "--clearenv"]
    if os.geteuid() != 0:
        argv.append("--unshare-user")  # unprivileged bwrap needs a user namespace
    argv += ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc",
             "--proc", "/proc", "--dev", "/dev"]
    for name in ("bin", "lib", "lib64", "sbin"):
        target = Path("/") / name
        if target.is_symlink():
            argv += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            argv += ["--ro-bind", str(target), str(target)]
    made: set[str] = set()

    def bind(source: Path | str, target: str, flag: str = "--ro-bind") -> None:
        # bwrap would create missing parents as 0700 root: make them traversable for the sandbox uid.
        for parent in reversed(Path(target).parents[:-1]):
            if str(parent) not in made and str(parent) not in ("/usr", "/etc", HOME, "/tmp"):
                made.add(str(parent))
                argv.extend(["--perms", "0755", "--dir", str(parent)])
        argv.extend([flag, str(source), target])

    # The private tmpfs come first: a checkout (and its venv) under /tmp must be bound on top of them.
    home_bytes = str(limits.home_mb * 1024 * 1024)
    argv += ["--perms", "1777", "--size", home_bytes, "--tmpfs", HOME,
             "--perms", "1777", "--size", home_bytes, "--tmpfs", "/tmp",
             "--perms", "1777", "--dir", f"{HOME}/.keras"]
    for path in python_paths():
        bind(path, str(path))
    bind(INSIDE_PACKAGE, f"{INSIDE_MOUNT}/autograder_inside")
    if spec.keras_cache is not None:
        argv += ["--perms", "0755", "--dir", f"{HOME}/.keras/datasets",
                 "--ro-bind", str(spec.keras_cache), f"{HOME}/.keras/datasets/mnist.npz"]
    for mount in spec.mounts:
        bind(mount.source, mount.target, "--bind" if mount.writable else "--ro-bind")
    env = sandbox_env(spec)
    for key, value in sorted(env.items()):
        argv += ["--setenv", key, value]
    argv += ["--chdir", HOME, "--"]
    if os.geteuid() == 0:
        uid = str(spec.sandbox_uid())
        argv += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    argv += rlimit_argv(limits) + command
    return confinement.wrap(argv) if confinement is not None else argv


def rlimit_argv(limits: Limits) -> list[str]:
    """``prlimit`` with the sandbox's rlimits, ending in ``--`` (the command follows)."""
    return ["prlimit", "--core=0", f"--fsize={limits.file_size_mb * 1024 * 1024}",
            f"--nofile={limits.open_files}", f"--nproc={limits.processes}", "--"]


def sandbox_env(spec: SandboxSpec) -> dict[str, str]:
    """The whole environment of a sandboxed process (nothing of the grader's is inherited)."""
    limits = spec.limits
    env = {
        "HOME": HOME, "PATH": f"{Path(sys.prefix) / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8",
        "PYTHONPATH": INSIDE_MOUNT, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/matplotlib", "TF_CPP_MIN_LOG_LEVEL": "2",
        "OMP_NUM_THREADS": str(limits.threads), "OPENBLAS_NUM_THREADS": str(limits.threads),
        "AUTOGRADER_THREADS": str(limits.threads),
    }
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # machine-specific BLAS fixes, keep them
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(spec.env)
    return env


@dataclass
class Confinement:
    """What holds one sandboxed process beyond its namespaces: its cgroup, if one could be made, and the
    seccomp filter. Create one per process, start the process with :meth:`wrap` and ``pass_fds``, call
    :meth:`started`, and :meth:`close` when it is over."""

    cgroup: cgroup.Cgroup | None
    seccomp_fd: int | None

    @classmethod
    def create(cls, limits: Limits) -> "Confinement":
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


def prepare_writable_dir(path: Path, spec: SandboxSpec) -> Path:
    """Create a directory the sandboxed uid may write to (and nobody else but the grader)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, spec.sandbox_uid(), spec.sandbox_uid())
    path.chmod(0o700)
    return path


def entries_under(root: Path) -> Iterator[os.DirEntry]:
    """Every entry under ``root``, without following links (an unreadable directory is passed over)."""
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            yield entry
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
            except OSError:
                continue


def tree_size_bytes(root: Path, limit_entries: int = 10_000) -> int:
    """Bytes under ``root`` without following links; a flood of tiny files counts as over-size."""
    total = 0
    for seen, entry in enumerate(entries_under(root), start=1):
        if seen > limit_entries:
            return sys.maxsize
        try:
            if not entry.is_dir(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_blocks * 512
        except OSError:
            continue
    return total


def mount_namespace(pid: int | str) -> str | None:
    """The id of ``pid``'s mount namespace (``mnt:[4026531841]``), or None when it cannot be read."""
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def tmpfs_bytes(pids: list[int]) -> int:
    """RAM held by files in the sandbox's private home and /tmp (tmpfs pages are no process's RSS).

    Read through ``/proc/<pid>/root`` of the first of ``pids`` whose mount namespace is not the grader's.
    The outer bwrap process (and the tree before bwrap has forked) shares the grader's namespace and
    its root is the host: counting there would measure the host's /tmp (a false "memory" stop). A pidfd
    taken first makes sure the namespace checked and the root measured belong to the same process.
    """
    own = mount_namespace("self")
    for pid in pids:
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            continue
        try:
            if mount_namespace(pid) in (None, own):
                continue
            sizes = [os.statvfs(f"/proc/{pid}/root{mount}") for mount in (HOME, "/tmp")]
            signal.pidfd_send_signal(pidfd, 0)  # still the process whose namespace was checked
        except OSError:
            continue
        finally:
            os.close(pidfd)
        return sum((stats.f_blocks - stats.f_bfree) * stats.f_frsize for stats in sizes)
    return 0


def read_tail(path: Path, limit: int) -> bytes:
    """The last ``limit`` bytes of a log the sandbox wrote (it controls how long the log is)."""
    if not path.is_file():
        return b""
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - limit))
        return fh.read(limit)


def signal_listed(proc: psutil.Process, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to ``proc`` through a pidfd, only if it is still the process psutil listed.

    The pidfd pins the process from the moment it is opened; the start time checked after that shows
    the pid was not reaped and reused in between, so a stranger that inherited the pid is never signalled.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:
        return
    try:
        if proc.is_running():
            signal.pidfd_send_signal(pidfd, sig)
    except (OSError, psutil.Error):
        pass
    finally:
        os.close(pidfd)


class ProcessTree:
    """A process, its descendants and its process group, killable without ever signalling a reused pid.

    Made while the root is known to exist (the grader's unreaped child): a pidfd then names it for
    good. Descendants and group members are found by pid, so they are trusted only while the root is
    unreaped (its pid, the group's id, cannot be reused until then), and each is signalled through a
    pidfd checked against the process listed. With a ``cgroup`` every process in it is killed too (a
    double-forked daemon the tree no longer shows). The PID namespace ends with bwrap's init.
    """

    def __init__(self, pid: int, cgroup: cgroup.Cgroup | None = None) -> None:
        self.pid, self.cgroup = pid, cgroup
        try:
            self.pidfd: int | None = os.pidfd_open(pid)
        except OSError:  # already reaped: nothing of it can be named safely
            self.pidfd = None

    def holds_pid(self) -> bool:
        """Whether the root is unreaped (running or a zombie), so its pid still names it and its group."""
        if self.pidfd is None:
            return False
        try:
            signal.pidfd_send_signal(self.pidfd, 0)
        except ProcessLookupError:
            return False
        except OSError:  # EPERM: it exists
            pass
        return True

    def members(self) -> list[psutil.Process]:
        """Processes below the root or in its process group (the root itself not included)."""
        try:
            below = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            below = []
        group = []
        for proc in psutil.process_iter():
            try:
                if proc.pid != self.pid and os.getpgid(proc.pid) == self.pid:
                    group.append(proc)
            except OSError:
                continue
        return list({proc.pid: proc for proc in below + group}.values())

    def kill(self) -> None:
        """SIGKILL the root, its descendants and its process group (and the cgroup)."""
        if self.cgroup is not None:
            self.cgroup.kill()
        if not self.holds_pid():
            return
        members = self.members()
        if self.holds_pid():  # the root was unreaped throughout: the listing was of its own tree
            for proc in members:
                signal_listed(proc)
        try:
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        except OSError:
            pass

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


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


def tree_processes(pid: int) -> list[psutil.Process]:
    """The process ``pid`` and all its descendants as they are now; none once it is gone."""
    try:
        root = psutil.Process(pid)
        return [root] + root.children(recursive=True)
    except psutil.Error:
        return []


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
                 wall_seconds: float | None = None, interval: float = 0.1, sandboxed: bool = True,
                 cgroup: cgroup.Cgroup | None = None, cpu_seconds: float | None = None) -> None:
        self.pid, self.limits, self.watched_dirs = pid, limits, list(watched_dirs)
        self.cgroup = cgroup
        self.tree = ProcessTree(pid, cgroup)  # now, while the process is known to be unreaped
        self.clock = CpuClock(pid, limits.threads, cgroup)
        self.sandboxed = sandboxed  # only a sandbox has private tmpfs mounts to count
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
            reason = self._breach(with_tmpfs=self.sandboxed and ticks % 5 == 0)
            if reason is None and self.disk_breach():  # every tick: a few small directories
                reason = "disk"
            if reason is not None:
                self.stopped, self.limit = TIME_STOPS.get(reason, reason), reason
                self.tree.kill()
                return


@dataclass
class Completed:
    returncode: int | None
    stopped: str | None
    peak_rss_mb: float
    seconds: float
    stderr_tail: str
    containment: dict[str, object] = field(default_factory=dict)  # Confinement.describe(), if sandboxed


class Running:
    """A process started under its watchdog, holding until :meth:`release` writes to its stdin.

    Lets a sandbox do its slow start-up (importing TensorFlow) while the grader is busy elsewhere; its
    wall-clock limit counts from the release, its memory limit from the start.
    """

    def __init__(self, argv: list[str], limits: Limits, watched_dirs: list[Path] = (),
                 log_path: Path | None = None, env: dict[str, str] | None = None, sandboxed: bool = True,
                 confinement: Confinement | None = None) -> None:
        self.limits, self.log_path, self.confinement = limits, log_path, confinement
        self.completed: Completed | None = None
        self.started = time.monotonic()
        self.log = open(log_path, "wb") if log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=self.log, stderr=self.log, env=env,
                                         start_new_session=True, pass_fds=confinement.pass_fds if confinement else ())
        except BaseException:
            if confinement is not None:
                confinement.close()
            raise
        if confinement is not None:
            confinement.started()
        self.dog = Watchdog(self.proc.pid, limits, watched_dirs, wall_seconds=float("inf"), sandboxed=sandboxed,
                            cgroup=confinement.cgroup if confinement else None).__enter__()

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
                if self.confinement is not None:
                    containment = self.confinement.close()
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
    confinement = Confinement.create(spec.limits)
    return Running(bwrap_argv(spec, command, confinement), spec.limits, watched_dirs, log_path,
                   confinement=confinement)


def run(spec: SandboxSpec, command: list[str], *, watched_dirs: list[Path] = (),
        log_path: Path | None = None) -> Completed:
    """Run ``command`` in the sandbox to completion under the watchdog (its stdin is empty)."""
    running = start(spec, command, watched_dirs=watched_dirs, log_path=log_path)
    running.release()
    return running.wait()
