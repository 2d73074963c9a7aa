"""The job's files: one job folder per notebook, what crosses into its sandboxes and what comes back out.

A job folder holds ``inputs`` (the sanitized submission, the unlabeled images, the class definitions:
read-only to the sandboxes), ``export`` (the kernel's models and manifest), ``predictions`` and
``predictions-classes`` (the prediction processes' scores; ``-retry`` beside each: the second pass that
retries other feeds), and the kernel's ipc sockets in a short
path of their own. It is locked while its grader lives, so a killed grader's jobs are found and removed.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nbformat

from autograder.assignment import Execution
from autograder.run.inside.contract import JOB_PREFIX
from autograder.run.sandbox import cgroup
from autograder.run.sandbox.spec import HOME, INSIDE_PACKAGE, Mount, SandboxSpec, prepare_writable_dir

EXPORT_MOUNT = "/export"
IPC_ROOT = Path("/tmp")
JOB_LOCK = "job.lock"  # held (flock) by the grader while the job lives; the kernel frees it if the grader dies


def ipc_dir(root: Path) -> Path:
    """Where the kernel's sockets of the job at ``root`` live; a unix socket path must fit in 107 bytes."""
    return IPC_ROOT / f"agx-{hashlib.sha256(str(root).encode()).hexdigest()[:16]}"


@dataclass
class Job:
    """The directories of one job; only ``ipc``, ``export`` and ``predictions`` are sandbox-writable."""

    root: Path
    spec: SandboxSpec  # limits, uid and Keras cache shared by both sandboxes of the job
    config: Execution = field(default_factory=Execution)  # the assignment's timings (export, predict...)
    public_tests: Path | None = None  # the template's otter tests, so grader.check() cells still run
    notebook_name: str = "notebook.ipynb"  # where the submission appears in the sandbox's home
    uid_isolation: Any = None  # isolation.UidIsolation: the container-uid level, where bubblewrap cannot run
    lock: Any = None  # the open, locked JOB_LOCK of a job made by create()

    @classmethod
    def create(cls, work_root: str | Path | None, spec: SandboxSpec, **kwargs: Any) -> "Job":
        """A new job directory under ``work_root``, locked as alive (see :func:`remove_stale_jobs`)."""
        root = Path(tempfile.mkdtemp(prefix=JOB_PREFIX, dir=work_root))
        lock = open(root / JOB_LOCK, "w")
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write(str(os.getpid()))  # written only once locked: an empty lock is a job being made
        lock.flush()
        return cls(root, spec, lock=lock, **kwargs)

    def kernel_spec(self) -> SandboxSpec:
        """The notebook's sandbox: writes its export; reaches the grader only through ipc sockets."""
        mounts = [Mount(self.ipc, str(self.ipc), writable=True), Mount(self.export, EXPORT_MOUNT, writable=True)]
        if self.public_tests is not None and self.public_tests.is_dir():
            mounts.append(Mount(self.public_tests, f"{HOME}/tests"))
        if (self.inputs / "submission.ipynb").is_file():  # otter's report check reads the saved notebook
            mounts.append(Mount(self.inputs / "submission.ipynb", f"{HOME}/{self.notebook_name}"))
        return replace(self.spec, mounts=mounts)

    def predict_spec(self, out_dir: Path | None = None) -> SandboxSpec:
        """The prediction sandbox: model files and unlabeled images in, class scores out.

        No Keras MNIST cache (its labels would sit beside the images), the assignment's fixed thread count,
        and a wall clock of its own: :func:`predict` bounds each model and the whole run.
        """
        limits = replace(self.spec.limits, wall_seconds=self.config.predict_max_seconds)
        return replace(self.spec, keras_cache=None, limits=limits,
                       mounts=[Mount(self.export, EXPORT_MOUNT), Mount(self.inputs, "/inputs"),
                               Mount(out_dir or self.predictions, "/predictions", writable=True)])

    @property
    def ipc(self) -> Path:
        return ipc_dir(self.root)

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions"

    @property
    def class_predictions(self) -> Path:
        """Where the subclassed models' process writes: student code runs there, apart from the rest."""
        return self.root / "predictions-classes"

    @property
    def retry_predictions(self) -> Path:
        """Where the second pass writes: the contradicted stock models, once per other feed."""
        return self.root / "predictions-retry"

    @property
    def class_retry_predictions(self) -> Path:
        """The second pass of the contradicted subclassed models, apart from the rest like their first."""
        return self.root / "predictions-classes-retry"

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711)  # the sandbox uid may traverse to the ipc sockets, not list the job
        for path in (self.ipc, self.export, self.predictions, self.class_predictions, self.retry_predictions,
                     self.class_retry_predictions):
            prepare_writable_dir(path, self.spec)
        self.inputs.mkdir(exist_ok=True)
        self.inputs.chmod(0o755)
        # What a kernel outside bubblewrap finds in its working directory (the job root).
        for link, target in ((self.root / "agx" / "autograder_inside", INSIDE_PACKAGE),
                             (self.root / "tests", self.public_tests)):
            if target is not None and not link.exists():
                link.parent.mkdir(exist_ok=True)
                link.symlink_to(target)
        if self.uid_isolation is not None:
            self.uid_isolation.prepare(self)

    def host_argv(self, command: list[str], role: str) -> list[str]:
        """A command run outside bubblewrap, on the job's real paths: as it is (``--unsafe-no-sandbox``), or
        under the container level's uid for ``role`` (isolation.py)."""
        if self.uid_isolation is None:
            return command
        if role == "kernel":
            self.uid_isolation.stage_notebook(self.inputs / "submission.ipynb", self.notebook_name)
        return self.uid_isolation.argv(command, role)

    def host_env(self) -> dict[str, str]:
        """Environment of a command outside bubblewrap: same helpers and Keras cache (the container level's
        uid then replaces it with the sandbox's own, see isolation.py)."""
        env = dict(os.environ, PYTHONPATH=str(self.root / "agx"), AUTOGRADER_THREADS=str(self.spec.limits.threads))
        if self.spec.keras_cache is not None:
            cache = self.root / "keras" / "datasets"
            cache.mkdir(parents=True, exist_ok=True)
            if not (cache / "mnist.npz").exists():
                (cache / "mnist.npz").symlink_to(self.spec.keras_cache)
            env["KERAS_HOME"] = str(self.root / "keras")
        env.pop("JPY_PARENT_PID", None)
        return env

    @property
    def backstop_factor(self) -> float:
        """Wall-clock seconds allowed per second of a time limit: ``wall_backstop_factor`` times what one busy
        thread needs (the limits count CPU seconds / threads, which one thread does at 1/threads per second)."""
        return self.config.wall_backstop_factor * self.spec.limits.threads

    def export_dir(self, bubblewrap: bool) -> str:
        """Where the kernel writes its export: the mount inside bubblewrap, else the job's real path."""
        return EXPORT_MOUNT if bubblewrap else str(self.export)


def stage_notebook(nb: Any, job: Job) -> None:
    """The sanitized submission in ``inputs`` (read-only to the sandboxes), and beside the job root."""
    path = job.inputs / "submission.ipynb"
    nbformat.write(nb, path)
    path.chmod(0o644)
    if not (job.root / job.notebook_name).exists():
        (job.root / job.notebook_name).symlink_to(path)


def cleanup(job: Job) -> None:
    if job.uid_isolation is not None:
        job.uid_isolation.end()
    shutil.rmtree(job.ipc, ignore_errors=True)
    shutil.rmtree(job.root, ignore_errors=True)
    if job.lock is not None:
        job.lock.close()


def remove_stale_jobs(work_root: str | Path | None) -> int:
    """Remove job directories (and their ipc directories and cgroups) left by a grader that was killed.

    A job is stale when nobody holds its lock; the kernel released it when its grader died. Directories
    without a lock (made by another program, or an instant before their lock) are left alone.
    """
    removed = 0
    for root in Path(work_root or tempfile.gettempdir()).glob(f"{JOB_PREFIX}*"):
        try:
            lock = open(root / JOB_LOCK, "r")
        except OSError:
            continue
        with lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its grader is alive
            if not lock.read():
                continue
            shutil.rmtree(ipc_dir(root), ignore_errors=True)
            shutil.rmtree(root, ignore_errors=True)
            removed += 1
    return removed + cgroup.remove_stale()
