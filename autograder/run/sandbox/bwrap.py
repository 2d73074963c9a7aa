"""The bubblewrap command line: namespaces and mounts, then the privilege drop and rlimits, then the command.

What a sandboxed process sees: read-only system directories and Python, the in-sandbox helper package
(``autograder/run/inside``), a size-capped private home and /tmp, the Keras MNIST cache, and only the job
directories it is given. It has no network (own network namespace), its own PID namespace (it cannot
see or signal the grader) and no capabilities. When the grader runs as root, the sandbox drops to a
dedicated uid with ``setpriv``; otherwise bubblewrap's user namespace maps the caller's uid.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from autograder.run.inside.contract import INSIDE_MOUNT
from autograder.run.sandbox import syscall_filter
from autograder.run.sandbox.containment import Containment
from autograder.run.sandbox.spec import HOME, INSIDE_PACKAGE, Limits, SandboxSpec, SandboxUnavailable, sandbox_env


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
        containment = Containment.create(Limits())
    except syscall_filter.FilterUnavailable as exc:
        raise SandboxUnavailable(f"cannot build the seccomp filter: {exc}") from exc
    try:
        probe = subprocess.run(bwrap_argv(SandboxSpec(), ["true"], containment), capture_output=True, text=True,
                               timeout=30, pass_fds=containment.pass_fds)
    finally:
        containment.close()
    if probe.returncode != 0:
        raise SandboxUnavailable(
            "bubblewrap cannot create namespaces here: " + probe.stderr.strip()[:300]
            + " (enable unprivileged user namespaces: `sysctl kernel.unprivileged_userns_clone=1`"
            " / `sysctl user.max_user_namespaces=10000`, or run the grader as root)")


def bwrap_argv(spec: SandboxSpec, command: list[str], containment: Containment | None = None) -> list[str]:
    """The full command line: bwrap, then privilege drop and rlimits, then ``command``.

    With a ``containment``, bwrap loads its seccomp filter and runs in its cgroup (pass
    ``containment.pass_fds`` to the process that starts it).
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
    return containment.wrap(argv) if containment is not None else argv


def rlimit_argv(limits: Limits) -> list[str]:
    """``prlimit`` with the sandbox's rlimits, ending in ``--`` (the command follows)."""
    return ["prlimit", "--core=0", f"--fsize={limits.file_size_mb * 1024 * 1024}",
            f"--nofile={limits.open_files}", f"--nproc={limits.processes}", "--"]
