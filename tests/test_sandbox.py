"""The sandbox and Phase A on their own: isolation, limits, watchdog, output capping, ipc kernel."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from autograder.assignment import Execution
from autograder.pipeline.grade_one import keras_cache_file
from autograder.run import kernel_session
from autograder.run.inside.contract import JOB_PREFIX
from autograder.run.job import Job, cleanup, remove_stale_jobs
from autograder.run.sandbox import bwrap, cgroup, process
from autograder.run.sandbox.containment import Containment
from autograder.run.sandbox.spec import Limits, Mount, SandboxSpec, prepare_writable_dir

from waiting import within

pytestmark = pytest.mark.slow


def run_python(code: str, tmp_path: Path, **limits) -> tuple[process.Completed, str]:
    spec = SandboxSpec(limits=Limits(**limits), keras_cache=keras_cache_file())
    done = process.run(spec, [sys.executable, "-c", code], log_path=tmp_path / "log.txt")
    return done, (tmp_path / "log.txt").read_text(errors="replace")


@pytest.fixture(scope="module")
def startup_seconds(tmp_path_factory) -> float:
    """How long a sandbox that does nothing takes here, now: time bounds are relative to it (a loaded
    machine slows both alike)."""
    started = time.monotonic()
    done, log = run_python("pass", tmp_path_factory.mktemp("baseline"))
    assert done.returncode == 0, log
    return time.monotonic() - started


def test_sandbox_is_available_here():
    bwrap.check_available()


def test_identity_filesystem_and_network_are_isolated(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("hidden labels")
    code = f"""
import os, socket
print("uid", os.getuid())
print("secret_visible", os.path.exists({str(secret)!r}))
print("repo_visible", os.path.exists({str(Path(__file__).resolve().parents[1] / 'assignments')!r}))
print("pids", sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))
try:
    socket.create_connection(("1.1.1.1", 80), timeout=3); print("net open")
except OSError as exc:
    print("net closed", exc.errno)
try:
    socket.getaddrinfo("pypi.org", 443); print("dns open")
except OSError:
    print("dns closed")
print("keras_cache", os.path.getsize(os.path.expanduser("~/.keras/datasets/mnist.npz")))
open("/home/student/scratch.txt", "w").write("ok")
"""
    done, log = run_python(code, tmp_path)
    assert done.returncode == 0, log
    assert "uid 0" not in log and "uid " in log
    assert "secret_visible False" in log and "repo_visible False" in log
    assert "net closed" in log and "dns closed" in log
    pids = eval(log.split("pids ")[1].splitlines()[0])
    assert max(pids) < 10  # its own PID namespace: the grader's processes are invisible
    assert "keras_cache 11490434" in log


def test_memory_watchdog_kills_the_tree(tmp_path):
    done, _ = run_python("import time\nblocks = []\nwhile True:\n    blocks.append(bytearray(50 * 2**20))\n"
                         "    time.sleep(0.01)", tmp_path, memory_mb=300)
    assert done.stopped == "memory" and done.returncode != 0
    # The peak is sampled: the cgroup may kill between two samples (50 MB every 10 ms), so it can read below
    # the 300 MB limit on a loaded machine, but it saw the growth and never a runaway.
    assert 100 < done.peak_rss_mb < 1500


def test_wall_clock_watchdog_kills_a_process_that_ignores_signals(tmp_path, startup_seconds):
    started = time.monotonic()
    done, _ = run_python("import signal\nfor s in (signal.SIGINT, signal.SIGTERM):\n"
                         "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass", tmp_path, wall_seconds=3)
    assert done.stopped == "wall_budget"
    assert time.monotonic() - started < 3 + 3 * startup_seconds + 2  # the limit, start and end, a few polls


def marked_processes(marker: str) -> list[int]:
    """Processes whose environment holds ``marker`` (found as any user, whichever uid the sandbox runs as)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if marker.encode() in Path(f"/proc/{proc.pid}/environ").read_bytes():
                found.append(proc.pid)
        except OSError:
            continue
    return found


DAEMON = """
import os, signal, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open('/out/daemon', 'w').close()
        signal.pause()
    os._exit(0)
while not os.path.exists('/out/daemon'):
    pass
sys.stdin.readline()
"""


def test_forked_daemon_does_not_outlive_the_job(tmp_path):
    out, marker = tmp_path / "out", f"agx-daemon-test-{os.getpid()}-{time.monotonic_ns()}"
    spec = SandboxSpec(limits=Limits(wall_seconds=20), env={"AGX_TEST_MARKER": marker},
                       mounts=[Mount(out, "/out", writable=True)])
    prepare_writable_dir(out, spec)
    running = process.start(spec, [sys.executable, "-c", DAEMON], log_path=tmp_path / "log.txt")
    # The check can see the job: its main process and the daemon, while they run.
    assert within(60, lambda: (out / "daemon").exists() and len(marked_processes(marker)) >= 2), \
        (tmp_path / "log.txt").read_text()
    running.release()
    assert running.wait().stopped is None
    assert within(10, lambda: marked_processes(marker) == []), marked_processes(marker)


def test_file_size_limit(tmp_path):
    done, log = run_python("open('/tmp/big', 'wb').write(b'x' * (40 * 2**20))", tmp_path, file_size_mb=10)
    assert done.returncode != 0


def notebook(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def run_cells(tmp_path: Path, nb: nbformat.NotebookNode, **kwargs) -> kernel_session.ExecutionRecord:
    limits = Limits(wall_seconds=60, memory_mb=kwargs.pop("memory_mb", 1024), threads=kwargs.pop("threads", 2))
    job = Job(tmp_path / "job", SandboxSpec(limits=limits, keras_cache=keras_cache_file()),
              config=kwargs.pop("config", Execution()))
    job.prepare()
    options = dict(budget=30, cell_timeout=20, on_error="continue", models={"mlp": "mlp_model"},
                   probes={"x_train": "x_train"}, max_output_bytes=2**20, bubblewrap=True)
    options.update(kwargs)
    return kernel_session.run_notebook(nb, job, **options)


def test_cells_run_over_ipc_with_errors_recorded_and_execution_continuing(tmp_path):
    ex = run_cells(tmp_path, notebook("x_train = [0.5]", "1 / 0", "input('name?')", "y = 2"))
    assert [c.status for c in ex.cells] == ["ok", "error", "error", "ok"]
    assert ex.cells[1].error["ename"] == "ZeroDivisionError"
    assert ex.cells[2].error["ename"] == "StdinNotImplementedError"
    assert ex.export_ran and ex.stopped is None
    assert (tmp_path / "job" / "export" / "manifest.json").is_file()


def test_stop_on_first_error_policy(tmp_path):
    ex = run_cells(tmp_path, notebook("1 / 0", "y = 2"), on_error="stop")
    assert [c.status for c in ex.cells] == ["error", "not_run"]
    assert ex.export_ran  # the export still runs: grade what ran


#: A wall-clock backstop no loaded test machine reaches before a busy cell's CPU limit.
UNHURRIED = Execution(wall_backstop_factor=20)
#: A cell that does ``{}`` seconds of CPU work (its own process's CPU time), however long that takes.
CPU_WORK = "import time\nstart = time.process_time()\nwhile time.process_time() - start < {}:\n    pass"


def test_a_job_cgroup_counts_cpu_time_and_holds_the_job_to_its_threads():
    held = Containment.create(Limits(threads=1))
    try:
        group = held.cgroup
        assert group.cpu_seconds() == 0.0
        if group.version == "cgroup-v2":
            quota, period = (group.quota / "cpu.max").read_text().split()
        else:
            quota, period = (group.quota / "cpu.cfs_quota_us").read_text(), (group.quota / "cpu.cfs_period_us").read_text()
        assert int(quota) == int(period)  # one core
        assert held.describe()["cpu"] == group.version
    finally:
        held.close()
    assert not any(directory.exists() for directory in group.directories)


def test_a_busy_cell_is_stopped_by_its_cpu_limit_and_the_export_still_runs(tmp_path):
    ex = run_cells(tmp_path, notebook("x_train = [1.0]", "while True:\n    pass", "z = 3"),
                   budget=20, cell_timeout=3, threads=1, config=UNHURRIED)
    assert [c.status for c in ex.cells] == ["ok", "timeout", "not_run"]
    assert ex.cells[1].limit == "cell_cpu" and ex.cells[1].cpu_seconds >= 3
    assert ex.stopped is None and ex.stopped_by == "cell_cpu" and ex.cpu_clock == "cgroup-v1"
    record = ex.as_dict()
    assert record["stopped_by"] == "cell_cpu" and record["cells"][1]["limit"] == "cell_cpu"
    assert ex.export_ran


def test_where_no_cgroup_can_be_made_the_process_trees_cpu_times_are_the_clock(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroup, "create", lambda memory_bytes, processes, cpus: None)
    ex = run_cells(tmp_path, notebook("while True:\n    pass", "z = 3"), budget=20, cell_timeout=2, threads=1,
                   config=UNHURRIED)
    assert ex.cpu_clock == "process-tree" and ex.containment["cpu"] == "none"
    assert [c.status for c in ex.cells] == ["timeout", "not_run"] and ex.cells[0].limit == "cell_cpu"
    assert ex.cells[0].cpu_seconds >= 2


def test_the_notebooks_cpu_budget_stops_the_cell_it_runs_out_in(tmp_path):
    # The limits are checked once a second: the second cell crosses the 5 s budget about 1.5 s into its 3.5 s
    # of work, so a check falls inside it however loaded the machine is.
    ex = run_cells(tmp_path, notebook(*[CPU_WORK.format(3.5)] * 4), budget=5, cell_timeout=4, threads=1,
                   config=UNHURRIED)
    assert [c.status for c in ex.cells] == ["ok", "timeout", "not_run", "not_run"]
    assert ex.cells[1].limit == "cpu_budget" and ex.stopped_by == "cpu_budget"
    assert ex.cpu_seconds >= 5


def test_a_waiting_cell_is_not_stopped_by_the_cpu_limit_only_by_the_wall_backstop(tmp_path):
    # 2 s of CPU work per cell, and a wall-clock backstop of 3 x 2 s. Sleeping does no work.
    ex = run_cells(tmp_path, notebook("import time\ntime.sleep(4)", "time.sleep(600)", "z = 3"),
                   budget=20, cell_timeout=2, threads=1, config=Execution(wall_backstop_factor=3))
    assert [c.status for c in ex.cells] == ["ok", "timeout", "not_run"]
    assert ex.cells[0].seconds > 4 and ex.cells[0].limit is None
    assert ex.cells[1].limit == "wall_backstop" and ex.cells[1].cpu_seconds < 2
    # A time stop, not the cell's own error: --retry-failed runs it again (the machine may have been starved).
    assert ex.stopped_by == "wall_backstop" and ex.stopped == "wall_budget" and ex.export_ran


def test_a_cell_on_a_loaded_machine_is_not_cut_where_a_wall_clock_would_cut_it(tmp_path):
    """The sandbox shares one core with two busy processes: 2 s of CPU work take more than the cell's 3 s
    limit of wall time, yet stay inside its 3 s of CPU work."""
    core = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    busy = [subprocess.Popen([sys.executable, "-c", "while True:\n    pass"]) for _ in range(2)]
    try:
        for proc in busy:
            os.sched_setaffinity(proc.pid, {core})
        os.sched_setaffinity(0, {core})  # the sandbox started now inherits it
        ex = run_cells(tmp_path, notebook("x_train = [1.0]", CPU_WORK.format(2)), budget=20, cell_timeout=3,
                       threads=1, config=UNHURRIED)
    finally:
        os.sched_setaffinity(0, before)
        for proc in busy:
            proc.kill()
            proc.wait()
    assert ex.cells[1].seconds > 3  # a wall-clock limit of 3 s would have cut it here
    assert [c.status for c in ex.cells] == ["ok", "ok"] and ex.stopped_by is None
    assert 2 <= ex.cells[1].cpu_seconds < 3


def test_output_is_capped_while_it_streams(tmp_path):
    ex = run_cells(tmp_path, notebook("for _ in range(200):\n    print('x' * 50_000)"),
                   max_output_bytes=200_000)
    assert ex.output_truncated
    stored = len(nbformat.writes(ex.notebook))
    assert stored < 400_000
    assert "truncated by the grader" in nbformat.writes(ex.notebook)


def test_kernel_that_exits_is_reported_dead(tmp_path):
    ex = run_cells(tmp_path, notebook("import os\nos._exit(3)", "y = 1"))
    assert ex.stopped == "kernel_died"
    assert not ex.export_ran


def test_memory_bomb_in_a_notebook_is_stopped(tmp_path):
    ex = run_cells(tmp_path, notebook("blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 2**20))"),
                   memory_mb=400)
    assert ex.stopped == "memory"
    assert ex.peak_rss_mb > 300


@pytest.mark.skipif(os.geteuid() != 0, reason="uid drop is exercised when the grader runs as root")
def test_sandbox_uid_is_unprivileged(tmp_path):
    done, log = run_python("import os; print('ids', os.getuid(), os.geteuid(), os.getgroups())", tmp_path)
    uid = SandboxSpec().sandbox_uid()
    assert f"ids {uid} {uid} []" in log


HELD = """
import sys, time
open('/out/started', 'w').close()
line = sys.stdin.readline()
open('/out/released', 'w').write(line)
time.sleep(float(line or 0))
"""


def held_sandbox(tmp_path: Path, wall_seconds: float = 600) -> tuple[process.Running, Path]:
    out = tmp_path / "out"
    spec = SandboxSpec(limits=Limits(wall_seconds=wall_seconds),
                       mounts=[Mount(out, "/out", writable=True)])
    prepare_writable_dir(out, spec)
    return process.start(spec, [sys.executable, "-c", HELD], log_path=tmp_path / "log.txt"), out


def test_held_sandbox_waits_for_its_release_and_its_wall_clock_starts_then(tmp_path, startup_seconds):
    held, out = held_sandbox(tmp_path, wall_seconds=2)
    assert within(60, (out / "started").exists)
    time.sleep(2.5)  # the point of the test: held longer than its wall limit, which must not count
    assert (out / "started").exists() and not (out / "released").exists()
    held.release(b"30\n")  # now it sleeps past its 2 s limit
    done = held.wait()
    assert (out / "released").read_text() == "30\n"
    assert done.stopped == "wall_budget" and done.seconds < 2 + startup_seconds + 2


def test_cancelled_sandbox_never_runs_past_its_hold(tmp_path):
    held, out = held_sandbox(tmp_path)
    held.cancel()
    assert held.wait().returncode != 0
    assert not (out / "released").exists()
    assert not psutil.pid_exists(held.proc.pid)


@pytest.mark.parametrize("held_by", ["cgroup", "watchdog"])
def test_files_in_the_private_tmpfs_count_as_memory(tmp_path, monkeypatch, held_by):
    if held_by == "watchdog":  # the watchdog's tmpfs accounting, read inside the sandbox's mount namespace
        monkeypatch.setattr(cgroup, "create", lambda memory_bytes, processes, cpus: None)
    code = ("import time\nfor i in range(40):\n    open(f'/tmp/fill{i}', 'wb').write(b'x' * (20 * 2**20))\n"
            "    time.sleep(0.05)\ntime.sleep(5)")
    done, _ = run_python(code, tmp_path, memory_mb=300, file_size_mb=64)
    assert done.stopped == "memory"
    if held_by == "watchdog":
        assert done.containment["memory"] == "watchdog"


MEMFD_HOARD = ("import os, time\nheld = []\nfor i in range(100):\n    fd = os.memfd_create('h')\n"
               "    os.write(fd, b'h' * 20 * 2**20)\n    held.append(fd)\n    time.sleep(0.02)\ntime.sleep(5)")


@pytest.mark.skipif(os.geteuid() != 0, reason="job cgroups are made when the grader runs as root")
def test_the_job_cgroup_holds_memory_no_process_shows_and_says_so(tmp_path):
    assert cgroup.hierarchy() is not None, "a grading machine run as root offers memory and pids cgroups"
    done, _ = run_python(MEMFD_HOARD, tmp_path, memory_mb=300, file_size_mb=64)
    assert done.stopped == "memory", done
    assert done.containment["memory"] == cgroup.hierarchy().version and done.containment["oom_kills"] >= 1
    assert done.containment["syscalls"] == "seccomp"
    assert not list(cgroup.hierarchy().memory.glob(f"agx-{os.getpid()}-*"))  # removed with the job


def test_where_no_cgroup_can_be_made_the_watchdog_holds_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroup, "create", lambda memory_bytes, processes, cpus: None)
    done, _ = run_python("blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 2**20))", tmp_path,
                         memory_mb=300)
    assert done.stopped == "memory"
    assert done.containment["memory"] == "watchdog" and done.containment["processes"] == "rlimit"


def test_stale_jobs_are_removed_and_live_ones_kept(tmp_path):
    spec = SandboxSpec()
    live, dead = Job.create(tmp_path, spec), Job.create(tmp_path, spec)
    for job in (live, dead):
        job.prepare()
    dead.lock.close()  # what the kernel does to the lock of a grader killed mid-job
    foreign = tmp_path / f"{JOB_PREFIX}foreign"  # no lock: not ours to judge
    foreign.mkdir()
    try:
        assert remove_stale_jobs(tmp_path) >= 1
        assert not dead.root.exists() and not dead.ipc.exists()
        assert live.root.is_dir() and live.ipc.is_dir() and foreign.is_dir()
    finally:
        cleanup(live)
        cleanup(dead)


def test_job_sockets_fit_the_unix_path_limit_whatever_the_job_root(tmp_path):
    deep = tmp_path / ("d" * 120) / ("e" * 60)
    job = Job(deep, SandboxSpec())
    assert len(str(job.ipc / "k-65535")) < 107


def test_an_interpreter_under_tmp_stays_visible_beneath_the_private_tmp(monkeypatch):
    # CI may clone the project (and its venv) under /tmp, where the sandbox mounts its own tmpfs.
    import tempfile

    with tempfile.TemporaryDirectory(dir="/tmp") as scratch:
        venv = Path(scratch) / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        os.chmod(scratch, 0o755)
        monkeypatch.setattr(bwrap, "python_paths", lambda: [venv, Path(sys.base_prefix).resolve()])
        argv = bwrap.bwrap_argv(SandboxSpec(), [str(venv / "bin" / "python"), "-c", "print('alive')"])
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "alive" in done.stdout, done.stderr


def test_a_kernel_that_never_starts_is_a_stop_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setattr(kernel_session.JobKernelManager, "format_kernel_cmd",
                        lambda self, extra_arguments=None: ["false"])
    ex = run_cells(tmp_path, notebook("x = 1"), config=Execution(kernel_start_seconds=5))
    assert ex.stopped == "kernel_died" and not ex.export_ran
    assert ex.notebook is not None and ex.cells == []
