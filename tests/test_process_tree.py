"""The watchdog's process-tree kill and tmpfs accounting, without TensorFlow (seconds, any user)."""
from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import psutil

from autograder.run.sandbox import process, process_tree, watchdog
from autograder.run.sandbox.spec import Limits, Mount, SandboxSpec, prepare_writable_dir

from waiting import within

REPO = Path(__file__).resolve().parents[1]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_host_tmp_never_counts_as_sandbox_memory():
    # Before the sandbox forks (and for the outer bwrap always) the watched process's root is the host:
    # its /tmp holds 64 MiB here, far above the 16 MiB limit, and none of it is the sandbox's.
    with tempfile.NamedTemporaryFile(dir="/tmp") as big:
        big.write(b"x" * 64 * 2**20)
        big.flush()
        host = subprocess.Popen(["sleep", "60"], start_new_session=True)
        try:
            # Measured once it is `sleep`: before its exec, the forked child's memory changes between reads.
            assert within(30, lambda: psutil.Process(host.pid).cmdline()[:1] == ["sleep"])
            dog = watchdog.Watchdog(host.pid, Limits(memory_mb=16), private_tmpfs=True)
            assert process_tree.tmpfs_bytes([host.pid]) == 0
            # The two reads are not compared with each other: the kernel may trim `sleep`'s resident pages
            # between them (seen on CI: 1.85 then 1.50 MiB). Either way the 64 MiB file would breach 16 MiB.
            assert dog.rss_mb(with_tmpfs=True) < 16
            assert dog.rss_mb() < 16
            dog.tree.close()
        finally:
            host.kill()
            host.wait()


def test_files_in_the_sandbox_tmp_are_counted_and_the_host_tmp_is_not(tmp_path):
    out = tmp_path / "out"
    spec = SandboxSpec(limits=Limits(file_size_mb=64),
                       mounts=[Mount(out, "/out", writable=True)])
    prepare_writable_dir(out, spec)
    fill = ("import sys\nopen('/tmp/fill', 'wb').write(b'x' * 48 * 2**20)\n"
            "open('/out/filled', 'w').close()\nsys.stdin.readline()\n")
    with tempfile.NamedTemporaryFile(dir="/tmp") as big:
        big.write(b"x" * 64 * 2**20)
        big.flush()
        running = process.start(spec, [sys.executable, "-c", fill], log_path=tmp_path / "log.txt")
        try:
            assert within(60, (out / "filled").exists), (tmp_path / "log.txt").read_text()
            tree = [running.proc.pid] + [p.pid for p in psutil.Process(running.proc.pid).children(recursive=True)]
            assert process_tree.tmpfs_bytes([running.proc.pid]) == 0  # the outer bwrap: the host's namespace
            held = process_tree.tmpfs_bytes(tree)
            # 48 MiB written inside; the host's 64 MiB file (and the host disk) must not show.
            assert 48 * 2**20 <= held < 64 * 2**20, held
        finally:
            running.cancel()


PID_REUSE = textwrap.dedent("""
    import signal, subprocess
    from autograder.run.sandbox import process_tree

    target = subprocess.Popen(["sleep", "60"], start_new_session=True)
    tree = process_tree.ProcessTree(target.pid)
    target.kill()
    target.wait()  # reaped: its pid is free again
    with open("/proc/sys/kernel/ns_last_pid", "w") as last:
        last.write(str(target.pid - 1))  # the next process is given the same pid (and group id)
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    assert stranger.pid == target.pid, (stranger.pid, target.pid)
    tree.kill()
    # A SIGKILL already sent marks the process as dying with SIGKILL at once: a SIGTERM after it would
    # not change how it ends. So the way it ends tells whether the tree signalled it.
    stranger.terminate()
    print("stranger ended by", -stranger.wait())
""")


def test_a_reaped_root_whose_pid_was_reused_is_never_signalled():
    # A PID namespace of its own (as any user, through a user namespace) lets the test hand the
    # reaped pid to a new process on purpose.
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc",
                           sys.executable, "-c", PID_REUSE], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"stranger ended by {int(signal.SIGTERM)}" in done.stdout, done.stdout


DAEMON = textwrap.dedent("""
    import os, sys, time
    if os.fork() == 0:
        if os.fork() == 0:  # reparented away from the tree, still in its process group
            open(sys.argv[1], "w").write(str(os.getpid()))
            time.sleep(600)
        os._exit(0)
    time.sleep(600)
""")


def test_the_tree_kill_reaches_descendants_and_the_process_group(tmp_path):
    pid_file = tmp_path / "daemon.pid"
    root = subprocess.Popen([sys.executable, "-c", DAEMON, str(pid_file)], start_new_session=True)
    tree = process_tree.ProcessTree(root.pid)
    try:
        assert within(30, lambda: pid_file.exists() and pid_file.read_text() != "")
        daemon = int(pid_file.read_text())
        assert daemon not in {p.pid for p in psutil.Process(root.pid).children(recursive=True)}
        tree.kill()
        assert root.wait(timeout=20) == -signal.SIGKILL
        assert within(20, lambda: gone(daemon))
    finally:
        tree.close()
        root.kill()
        root.wait()


def test_disk_use_counts_files_below_never_through_links_and_a_flood_is_over_size(tmp_path):
    watched, outside = tmp_path / "export", tmp_path / "outside"
    (watched / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "big").write_bytes(b"x" * 2**20)
    for path in (watched / "a", watched / "b", watched / "sub" / "c"):
        path.write_bytes(b"x" * 8192)
    (watched / "link").symlink_to(outside / "big")
    (watched / "dirlink").symlink_to(outside)
    # Three files of 8 KiB (two 4 KiB blocks each): 24 KiB, none of the 1 MiB behind the links.
    assert 3 * 8192 <= process_tree.tree_size_bytes(watched) < 3 * 8192 + 3 * 4096
    assert {e.name for e in process_tree.entries_under(watched)} == {"a", "b", "sub", "c", "link", "dirlink"}
    assert process_tree.tree_size_bytes(watched, limit_entries=5) == sys.maxsize
