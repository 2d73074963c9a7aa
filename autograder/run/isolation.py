"""Which isolation the grader can give here, and the container level for machines without namespaces.

Three levels, the strongest available is used and recorded in every result (``"isolation"``):

- ``bubblewrap``: namespaces (PID, network, IPC, mount) as described in :mod:`autograder.run.sandbox.bwrap`;
- ``container-uid``: inside a container (Gradescope, a Kubernetes pod) bubblewrap usually cannot create
  namespaces, but the grader runs as root. Student code then runs under separate unprivileged uids
  (one for the notebook's kernel, one for the prediction process, one for the process that runs the
  notebook's model classes), with the same rlimits, the same watchdog, a private writable home per
  role, and the grader's secrets unreadable to those uids (directories the grader creates are 0700;
  the assignment, submission and results directories lose every permission for other users). What
  this level cannot do: cut the network, hide other processes' command lines, or stop writes to
  world-writable directories (``/tmp``, ``/dev/shm``: files the uids leave there are deleted after
  the job). Every process of the uids is killed when its phase ends, so a daemon cannot outlive it;
- ``none``: ``--unsafe-no-sandbox``, only for trusted notebooks.

Without root and without namespaces no level can be built: the grader refuses, as before.
"""
from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from autograder.run.sandbox.bwrap import check_available, rlimit_argv
from autograder.run.sandbox.process_tree import entries_under
from autograder.run.sandbox.spec import (INSIDE_PACKAGE, SandboxSpec, SandboxUnavailable, prepare_writable_dir,
                                         sandbox_env)

BUBBLEWRAP, CONTAINER_UID, NONE = "bubblewrap", "container-uid", "none"
#: The three processes of a job and their uid offsets from the job's base uid (200000 + pid % 50000).
ROLE_UID_OFFSETS = {"kernel": 0, "predict": 50_000, "classes": 100_000}
#: World-writable places a uid can write outside its home; what it leaves there is deleted after the job.
SHARED_WRITABLE = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"))
REAP_ROUNDS = 50


def choose(sandboxed: bool = True) -> str:
    """The strongest level available (``none`` only when the caller asked for no sandbox).

    Raises SandboxUnavailable, naming both fixes, when neither bubblewrap nor the uid level can be built.
    """
    if not sandboxed:
        return NONE
    try:
        check_available()
        return BUBBLEWRAP
    except SandboxUnavailable as no_bubblewrap:
        missing = [tool for tool in ("setpriv", "prlimit", "env") if shutil.which(tool) is None]
        if os.geteuid() == 0 and not missing:
            closed = [path for path in (Path(sys.executable).resolve(), INSIDE_PACKAGE / "__init__.py")
                      if not readable_by_others(path)]
            if closed:  # bubblewrap mounts them; a bare uid must reach them through the real directories
                raise SandboxUnavailable(
                    f"{no_bubblewrap}; the container level (a separate uid) cannot reach {closed[0]}: a parent "
                    "directory is closed to other users. Install Python and the grader where every user can "
                    "read them (a system-wide or /usr/local virtual environment)") from None
            return CONTAINER_UID
        why = "not running as root" if os.geteuid() != 0 else f"missing {', '.join(missing)}"
        raise SandboxUnavailable(f"{no_bubblewrap}; the container level (a separate uid) needs root and "
                                 f"util-linux: {why}") from None


def hide(paths: list[Path]) -> None:
    """Take every permission for other users off ``paths`` (not recursive: a closed directory is enough).

    The sandbox uids are "other" to every file on the machine (own uid, own gid, no groups), so this
    makes the hidden tests, the seed, the results and other submissions unreadable to them.
    """
    for path in paths:
        if path.exists():
            path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o007)


def readable_by_others(path: Path) -> bool:
    """Whether a uid that is neither owner nor in the group can read ``path`` (every parent traversable)."""
    path = path.resolve()
    for parent in reversed(path.parents):
        if not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return bool(path.stat().st_mode & stat.S_IROTH)


@dataclass
class UidIsolation:
    """The ``container-uid`` level for one job: uids, homes, the command wrapper and the clean-up."""

    spec: SandboxSpec
    root: Path  # the job's root directory

    def uid(self, role: str) -> int:
        return self.spec.sandbox_uid() + ROLE_UID_OFFSETS[role]

    def home(self, role: str) -> Path:
        return self.root / f"home-{role}"

    def prepare(self, job: Any) -> None:
        """Give each role its home and its directories; keep the unlabeled images from the kernel's uid.

        Called by ``Job.prepare`` after the directories exist. The kernel uid owns ``ipc`` and ``export``;
        the prediction uid owns ``predictions`` (and ``predictions-retry``); the classes uid ``predictions-classes``
        (and ``predictions-classes-retry``); ``inputs`` (the
        secret, unlabeled images) is readable by the prediction uids only (group of the prediction uid).
        """
        for role in ROLE_UID_OFFSETS:
            prepare_writable_dir(self.home(role), self.spec)
            os.chown(self.home(role), self.uid(role), self.uid(role))
        os.chown(job.predictions, self.uid("predict"), self.uid("predict"))
        os.chown(job.retry_predictions, self.uid("predict"), self.uid("predict"))
        os.chown(job.class_predictions, self.uid("classes"), self.uid("classes"))
        os.chown(job.class_retry_predictions, self.uid("classes"), self.uid("classes"))
        os.chown(job.inputs, 0, self.uid("predict"))
        job.inputs.chmod(0o750)
        if self.spec.keras_cache is not None:  # the kernel's own copy: the prediction uids never see the labels
            cache = self.home("kernel") / ".keras" / "datasets"
            cache.mkdir(parents=True)
            shutil.copyfile(self.spec.keras_cache, cache / "mnist.npz")
            for path in (cache.parent, cache, cache / "mnist.npz"):
                os.chown(path, self.uid("kernel"), self.uid("kernel"))
        if job.public_tests is not None and job.public_tests.is_dir():
            shutil.copytree(job.public_tests, self.home("kernel") / "tests")
            for path in [self.home("kernel") / "tests", *(self.home("kernel") / "tests").rglob("*")]:
                os.chown(path, self.uid("kernel"), self.uid("kernel"), follow_symlinks=False)

    def stage_notebook(self, notebook: Path, name: str) -> None:
        """A copy of the submission in the kernel's home (otter's report check reads the saved notebook)."""
        target = self.home("kernel") / name
        if notebook.is_file() and not target.exists():
            shutil.copyfile(notebook, target)
            os.chown(target, self.uid("kernel"), self.uid("kernel"))

    def argv(self, command: list[str], role: str) -> list[str]:
        """``command`` as ``role``: own uid without capabilities, rlimits, a clean environment, its home."""
        uid, home = self.uid(role), self.home(role)
        # The classes process reads the export and inputs, which belong to the prediction uid's group.
        groups = [f"--groups={self.uid('predict')}"] if role == "classes" else ["--clear-groups"]
        env = sandbox_env(self.spec)
        env.update(HOME=str(home), TMPDIR=str(home), MPLCONFIGDIR=str(home / ".matplotlib"),
                   PYTHONPATH=str(self.root / "agx"), KERAS_HOME=str(home / ".keras"))
        return (["setpriv", f"--reuid={uid}", f"--regid={uid}", *groups, "--inh-caps=-all",
                 "--bounding-set=-all", "--no-new-privs"] + rlimit_argv(self.spec.limits)
                + ["env", "-i", f"--chdir={home}"] + [f"{k}={v}" for k, v in sorted(env.items())] + command)

    def end_kernel(self, job: Any) -> None:
        """The notebook is over: kill every process of its uid, then hand the export to the prediction uids.

        Only then may the prediction processes read the export, so no daemon of the notebook can change
        a model file (or anything) while the grader's predictions run.
        """
        reap(self.uid("kernel"))
        for path in [job.export, *(Path(e.path) for e in entries_under(job.export))]:
            info = path.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                path.unlink()  # a hard link may name a file outside the export: never change its owner
                continue
            os.chown(path, 0, self.uid("predict"), follow_symlinks=False)
            if not stat.S_ISLNK(info.st_mode):  # links are refused by the readers; never follow one here
                path.chmod(0o750 if stat.S_ISDIR(info.st_mode) else 0o640)

    def end(self) -> None:
        """The job is over: no process of its uids is left, nor anything they wrote in shared places."""
        uids = {self.uid(role) for role in ROLE_UID_OFFSETS}
        for uid in uids:
            reap(uid)
        for place in SHARED_WRITABLE:
            for entry in owned_entries(place, uids):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


def owned_entries(place: Path, owners: set[int]) -> list[Path]:
    """The entries directly in ``place`` owned by ``owners`` (a uid can create nothing deeper in the
    shared places, except in world-writable subdirectories: see SECURITY.md)."""
    try:
        entries = list(os.scandir(place))
    except OSError:
        return []
    owned = []
    for entry in entries:
        try:
            if entry.stat(follow_symlinks=False).st_uid in owners:
                owned.append(Path(entry.path))
        except OSError:
            continue
    return owned


def processes_of(uid: int) -> list[int]:
    pids = []
    for proc in psutil.process_iter(["uids"]):
        uids = proc.info.get("uids")
        if uids is not None and uid in (uids.real, uids.effective, uids.saved):
            pids.append(proc.pid)
    return pids


def reap(uid: int) -> None:
    """SIGKILL every process of ``uid`` until none is left (a fork loop is killed as it forks).

    ``kill(-1)`` sent *as that uid* reaches all of its processes in one system call; psutil confirms.
    """
    for _ in range(REAP_ROUNDS):
        if not processes_of(uid):
            return
        subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                        "kill", "-s", "KILL", "--", "-1"], capture_output=True)
        for pid in processes_of(uid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)


def require_private(mnist: Path) -> None:
    """The public MNIST labels beside the secret images would let model code look labels up: at the
    container level the file the kernel's copy comes from must be unreadable to the sandbox uids."""
    if readable_by_others(mnist):
        raise SandboxUnavailable(
            f"{mnist} is readable by every user; at the container-uid level (no namespaces) the model "
            "processes could read its labels. Keep MNIST where only root can read it (e.g. chmod o-rwx "
            "on its directory, or point AUTOGRADER_MNIST_DIR at a root-only copy)")
