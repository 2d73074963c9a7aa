"""The process tree of a sandbox: its processes, the disk and tmpfs it fills, and killing it all.

Every kill goes through a pidfd checked against the process listed, so a pid the kernel reaped and
handed to a stranger is never signalled.
"""
from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil

from autograder.run.sandbox import cgroup
from autograder.run.sandbox.spec import HOME


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


def tree_processes(pid: int) -> list[psutil.Process]:
    """The process ``pid`` and all its descendants as they are now; none once it is gone."""
    try:
        root = psutil.Process(pid)
        return [root] + root.children(recursive=True)
    except psutil.Error:
        return []
