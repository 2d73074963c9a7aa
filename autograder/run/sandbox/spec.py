"""The sandbox spec: what one sandboxed process sees (mounts, environment) and the limits it runs under.

Plain data and the few paths both the bubblewrap command line (:mod:`.bwrap`) and the container level
(:mod:`autograder.run.isolation`) build from: the private home, the sandbox uid, the helper package.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autograder.assignment import Execution
from autograder.run.inside.contract import INSIDE_MOUNT

INSIDE_PACKAGE = Path(__file__).resolve().parent.parent / "inside"
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


def prepare_writable_dir(path: Path, spec: SandboxSpec) -> Path:
    """Create a directory the sandboxed uid may write to (and nobody else but the grader)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, spec.sandbox_uid(), spec.sandbox_uid())
    path.chmod(0o700)
    return path
