"""Hostile and broken submissions, as data: what each one does and what the grader must make of it.

Each :class:`Case` writes its submission (raw bytes, a notebook, or a student folder) for a
:class:`Context` that names the host paths hostile code aims at, and states the expected outcome.
Hostile cells print ``LEAK:`` when something they should not be able to do succeeded; the suite fails
on any ``LEAK:`` in the executed notebook or the prediction log. The invariants every case shares
(one result, a reason when something went wrong, no process left, nothing written outside the job,
bounded grader memory) are checked by ``test_adversarial.py``.

Limits: ``tiny`` cases run without TensorFlow under seconds-and-hundreds-of-MB limits (``TINY``);
``model`` cases train a small Keras model under the ``small_assignment`` budgets, on test-sized secret image
sets (``MODEL_IMAGES``).
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

import lookups
import notebooks

QUESTIONS = tuple(f"q{i}" for i in range(1, 9))
MODEL_QUESTIONS = ("q2", "q3", "q4", "q5", "q6", "q7")

#: Test-sized limits for cases without TensorFlow (execution keys of assignment.toml). One thread: the
#: time limits count CPU seconds / threads, and these cells work in one; a busy loop on a heavily loaded
#: test machine still reaches its CPU limit before the wall-clock backstop (10 x 5 s).
TINY = {"wall_budget_seconds": 14, "cell_timeout_seconds": 5, "memory_mb": 600, "max_output_mb": 1,
        "max_submission_mb": 1, "home_mb": 64, "export_mb": 64, "file_size_mb": 32, "processes": 256,
        "export_seconds": 15, "threads": 1, "wall_backstop_factor": 10}

#: Tiny limits with a 6-s notebook budget and 3-s cells, for the cases that run into a CPU limit: they burn what
#: the limit allows, so they reach a smaller one sooner (the limit is what they test, not its size).
SHORT = {**TINY, "wall_budget_seconds": 6, "cell_timeout_seconds": 3}

#: Test-sized secret image sets (``[evaluation]`` keys) for the cases that train or craft a model: each model
#: predicts 1,000 + 1,000 + 1,000 images and 500 ablated ones, not 1,000 + 3,000 + 2,000 and 1,000. The
#: integrity rules count their sample noise from these sizes, so honest models stay unflagged; the attacks stay
#: far outside it (measured: every case flagged by the same rules as on the larger sets; a lookup's
#: test-minus-training gap at z = 15.8, was 27.4, the fit on the test set at 6.3, was 10.0, the flag at 3.5; a dead
#: branch agrees with itself on every ablated image; test images and brought-in weights are counted, not sampled).
MODEL_IMAGES = {"train_sample_size": 1000, "distorted_size": 1000, "ablation_size": 500}


@dataclass(frozen=True)
class Context:
    """Host paths a hostile notebook may aim at; none of them may be touched."""

    out_dir: Path  # where this case's result.json goes
    canary_dir: Path  # a host directory that must stay empty
    repo: Path
    assignment_root: Path
    seed_file: Path
    other_submission: Path  # another student's notebook on the host
    grader_pid: int


@dataclass(frozen=True)
class Expect:
    status: str = "graded"
    reasons: tuple[str | None, ...] = (None,)  # acceptable reason codes
    zero: tuple[str, ...] = QUESTIONS  # questions that must score 0
    positive: tuple[str, ...] = ()  # questions that must still earn points
    message: str = ""  # substring of the result's message (rejections)
    outputs: tuple[str, ...] = ()  # substrings the executed notebook must show (the attack did run)
    notes: tuple[str, ...] = ()  # substrings of the result's notes
    stopped: tuple[str | None, ...] | None = None  # acceptable execution.stopped values
    checks: dict[str, float] = field(default_factory=dict)  # check name -> maximal score
    earned: tuple[str, ...] = ()  # checks that must score above 0 (an honest twin's accuracy)
    flagged: dict[str, str] = field(default_factory=dict)  # arch -> integrity rule that must flag it
    unflagged: tuple[str, ...] = ()  # architectures no integrity rule may flag
    artifacts: tuple[str, ...] = ()  # files the result's artifacts must hold (logs kept whatever happened)


@dataclass(frozen=True)
class Case:
    name: str
    category: str  # malformed | resources | integrity | ml
    make: Callable[[Context, Path], Path]  # writes the submission into a directory, returns its path
    expect: Expect
    limits: str = "tiny"  # tiny | short | waiting | model | lookup
    in_batch: bool = False  # part of the mixed batch (cheap, and contained under the toml limits alone)
    production: bool = False  # also graded once under the production limits of assignments/mnist

    @property
    def intake_only(self) -> bool:
        return self.expect.status == "rejected"


# --- submission builders --------------------------------------------------------------------------

def raw(data: bytes | Callable[[Context], bytes]) -> Callable[[Context, Path], Path]:
    def make(ctx: Context, where: Path) -> Path:
        path = where / "submission.ipynb"
        path.write_bytes(data(ctx) if callable(data) else data)
        return path
    return make


def notebook(*sources: str | Callable[[Context], str], builder: Callable[[], nbformat.NotebookNode] | None = None,
             ) -> Callable[[Context, Path], Path]:
    """Code cells (strings, or functions of the context) appended to ``builder()`` (default: empty)."""
    def make(ctx: Context, where: Path) -> Path:
        nb = builder() if builder else nbformat.v4.new_notebook()
        for source in sources:
            nb.cells.append(nbformat.v4.new_code_cell(source(ctx) if callable(source) else source))
        path = where / "submission.ipynb"
        nbformat.write(nb, path)
        return path
    return make


def cells(*made: nbformat.NotebookNode, metadata: dict | None = None) -> Callable[[Context, Path], Path]:
    def make(ctx: Context, where: Path) -> Path:
        nb = nbformat.v4.new_notebook(cells=list(made))
        nb.metadata.update(metadata or {})
        path = where / "submission.ipynb"
        nbformat.write(nb, path)
        return path
    return make


def folder(*names: str) -> Callable[[Context, Path], Path]:
    """A batch holding student1's submission folder with the named files (student1's result is checked).

    A batch holding no notebook at all is refused as a whole, so when student1 has none a classmate's
    folder of two notebooks (never run: nothing says which to grade) keeps the batch gradable.
    """
    def make(ctx: Context, where: Path) -> Path:
        folders = {"student1": names} if names else {"student1": (), "classmate": ("a.ipynb", "b.ipynb")}
        for student, files in folders.items():
            (where / "batch" / student).mkdir(parents=True)
            for name in files:
                nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]),
                               where / "batch" / student / name)
        (where / "batch" / "student1" / "notes.txt").write_text("my homework")
        return where / "batch"
    return make


def tagged(source: str, **metadata) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata.update(metadata)
    return cell


def valid_bytes() -> bytes:
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])).encode()


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("homework.ipynb", valid_bytes())
    return buffer.getvalue()


NBFORMAT_3 = json.dumps({
    "nbformat": 3, "nbformat_minor": 0, "metadata": {"name": "old"},
    "worksheets": [{"cells": [{"cell_type": "code", "language": "python", "input": "print('FORMAT-3 RAN')",
                               "outputs": [], "collapsed": False, "metadata": {}}], "metadata": {}}]}).encode()

# --- hostile cells --------------------------------------------------------------------------------

ATTEMPT = '''\
import os
def attempt(name, action):
    try:
        result = action()
        print("LEAK:", name, repr(result)[:80])
    except BaseException as exc:
        print("DENIED", name, type(exc).__name__)
'''

#: Real MNIST arrays without TensorFlow: the Keras cache the sandbox provides, read with numpy.
NUMPY_PREPROCESSING = '''\
import numpy as np
with np.load("/home/student/.keras/datasets/mnist.npz", allow_pickle=False) as data:
    x_all, y_all, x_test, y_test = data["x_train"][:2000], data["y_train"][:2000], data["x_test"], data["y_test"]
x_train, x_val = x_all[:1500].astype("float32") / 255.0, x_all[1500:].astype("float32") / 255.0
y_train, y_val = y_all[:1500], y_all[1500:]
x_test = x_test.astype("float32") / 255.0
'''


def read_grader_files(ctx: Context) -> str:
    targets = [ctx.repo / "autograder" / "pipeline" / "grade_one.py", ctx.assignment_root / "hidden" / "model_tests.py",
               ctx.assignment_root / "assignment.toml", ctx.assignment_root / "calibration.json",
               ctx.seed_file, ctx.other_submission, ctx.other_submission.parent, ctx.out_dir.parent,
               "/work/shared/data/mnist/mnist.npz", "/etc/shadow", "/root/.ssh", "/root/.bash_history"]
    return ATTEMPT + "".join(
        f"attempt({str(t)!r}, lambda: os.listdir({str(t)!r}) if os.path.isdir({str(t)!r}) "
        f"else open({str(t)!r}, 'rb').read(64))\n" for t in targets)


def hunt_evaluation_labels(ctx: Context) -> str:
    """Walk everything the sandbox sees for the seed or a labels file; neither may be there."""
    return f'''\
import os, sys
skip = ("/proc", "/sys", "/dev", "/usr", "/etc", sys.prefix, sys.base_prefix, "/opt/agx")
found, walked = [], 0
for top, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if not os.path.join(top, d).startswith(skip)]
    for name in files:
        walked += 1
        if any(word in name.lower() for word in ("seed", "label", "hidden", "calibration", "eval")):
            found.append(os.path.join(top, name))
print("WALKED", walked)
if found:
    print("LEAK: label-like files visible:", found[:20])
for path in ({str(ctx.seed_file)!r}, "/inputs", "/predictions"):
    if os.path.exists(path):
        print("LEAK: visible", path)
'''


def other_processes(ctx: Context) -> str:
    return f'''\
import os
pids = [p for p in os.listdir("/proc") if p.isdigit()]
print("PROCS", len(pids))
for pid in pids:
    try:
        environ = open(f"/proc/{{pid}}/environ", "rb").read()
        cmdline = open(f"/proc/{{pid}}/cmdline", "rb").read()
    except OSError as exc:
        print("DENIED", pid, type(exc).__name__)
        continue
    if b"AUTOGRADER_MNIST_DIR" in environ or b"pytest" in cmdline:
        print("LEAK: a grader process is visible:", pid)
if os.path.exists("/proc/{ctx.grader_pid}/environ") and b"pytest" in open("/proc/{ctx.grader_pid}/cmdline", "rb").read():
    print("LEAK: the grader's /proc entry")
'''


def write_fake_results(ctx: Context) -> str:
    targets = [ctx.out_dir / "result.json", ctx.out_dir.parent / "gradebook.csv", ctx.canary_dir / "result.json",
               ctx.assignment_root / "hidden" / "model_tests.py", ctx.repo / "autograder" / "pipeline" / "grade_one.py",
               "/export/../result.json", "/usr/lib/forged.json", "/opt/agx/autograder_inside/export.py"]
    body = "".join(f"write({str(t)!r})\n" for t in targets)
    return f'''\
import json, os
fake = json.dumps({{"score": 100, "max_score": 100, "status": "graded", "questions": []}})
def write(path):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(fake)
        print("WROTE-INSIDE", path)
    except OSError as exc:
        print("DENIED", path, type(exc).__name__)
{body}'''


def kill_the_grader(ctx: Context) -> str:
    return f'''\
import os, signal
for pid in ({ctx.grader_pid}, os.getppid(), 1):
    try:
        os.kill(pid, signal.SIGKILL)
        print("SIGNALLED", pid)
    except OSError as exc:
        print("DENIED", pid, type(exc).__name__)
try:
    os.kill(-1, signal.SIGKILL)
    print("SIGNALLED -1")
except OSError as exc:
    print("DENIED -1", type(exc).__name__)
'''


NETWORK = ATTEMPT + '''\
import socket, subprocess, sys, urllib.request
attempt("tcp", lambda: socket.create_connection(("1.1.1.1", 80), timeout=2))
attempt("tcp-localhost-grader", lambda: socket.create_connection(("127.0.0.1", 22), timeout=2))
attempt("dns", lambda: socket.getaddrinfo("pypi.org", 443))
attempt("http", lambda: urllib.request.urlopen("http://example.com", timeout=2).read(10))
attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("8.8.8.8", 53)))
attempt("ipv6", lambda: socket.create_connection(("2606:4700:4700::1111", 80), timeout=2))
attempt("pip", lambda: subprocess.run([sys.executable, "-m", "pip", "install", "--retries", "0", "--timeout", "2",
                                       "--user", "six"], check=True, capture_output=True, timeout=30))
'''

DAEMON = '''\
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.closerange(0, 1024)
        while True:  # a daemon that means to outlive the job
            time.sleep(0.2)
    os._exit(0)
time.sleep(0.5)
print("DAEMON STARTED")
'''

FORK_BOMB = '''\
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
'''

THREAD_BOMB = '''\
import threading, time
threads = []
while True:
    thread = threading.Thread(target=time.sleep, args=(600,), daemon=True)
    thread.start()
    threads.append(thread)
'''

MEMORY_BOMB = '''\
hog = []
while True:
    hog.append(bytearray(b"x") * (50 * 2**20))
'''

SIGINT_PROOF = '''\
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    try:
        time.sleep(0.05)
    except BaseException:
        pass
'''

DISK_FILL_HOME = '''\
import itertools, os
for i in itertools.count():  # files under the per-file size limit until the private home is full
    with open(os.path.expanduser(f"~/fill{i}"), "wb") as fh:
        for _ in range(16):
            fh.write(b"x" * 2**20)
'''

DISK_FILL_EXPORT = '''\
import os, itertools
for i in itertools.count():  # many files below the per-file size limit, in the directory the grader reads
    with open(f"/export/fill{i}", "wb") as fh:
        fh.write(b"x" * 8 * 2**20)
'''

PRINT_FLOOD = '''\
import sys
chunk = "x" * 2**20
while True:
    print(chunk)
'''

ONE_HUGE_WRITE = '''\
import sys
sys.stdout.write("y" * 40 * 2**20)
sys.stdout.flush()
print("AFTER HUGE WRITE")
'''

DISPLAY_FLOOD = '''\
from IPython.display import HTML, display
for i in range(200_000):
    display(HTML(f"<b>row {i}</b>" + "z" * 200))
'''

#: The grader keeps whatever nbclient stores: every field of an output, not only its data and text.
METADATA_FLOOD = """\
from IPython.display import display
pad = "m" * (12 * 2**20)
for i in range(50):  # 600 MB of metadata, each message under the grader's limit for one message
    display({"text/plain": f"row {i}"}, raw=True, metadata={"text/plain": {"pad": pad}})
print("AFTER METADATA")
"""

#: Fields nbclient stores outside ``output()``: display updates (copied into every output sharing the id),
#: execution counts and display ids, and widget (comm) messages, each crafted to be large.
STORED_FIELDS_FLOOD = """\
from IPython.display import display, update_display
kernel = get_ipython().kernel
pad = "u" * (12 * 2**20)
handle = display("small", display_id=True)
for _ in range(50):  # fifty outputs share one display id: one update is copied into each
    display("small", display_id=handle.display_id)
update_display({"text/plain": pad}, raw=True, display_id=handle.display_id)
parent = kernel.get_parent()
for i in range(5):
    kernel.session.send(kernel.iopub_socket, "execute_result", parent=parent, content={
        "execution_count": "E" * (8 * 2**20), "data": {"text/plain": "x"}, "metadata": {},
        "transient": {"display_id": f"{i}" + "D" * (8 * 2**20)}})
    kernel.session.send(kernel.iopub_socket, "comm_open", parent=parent, content={
        "comm_id": f"c{i}", "target_name": "jupyter.widget", "data": {"state": {
            "_model_module": "@jupyter-widgets/output", "_model_name": "OutputModel", "pad": pad},
            "buffer_paths": []}})
print("AFTER FIELDS")
"""

#: A correctly signed iopub message nested 200,000 deep: json.loads in the grader raises RecursionError.
DEEP_MESSAGE = """\
kernel = get_ipython().kernel
header = kernel.session.msg_header("stream")
frames = [kernel.session.pack(header), kernel.session.pack(kernel.get_parent().get("header", {})), b"{}",
          b'{"name": "stdout", "text": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"]
kernel.session.send_raw(kernel.iopub_socket, frames)
import time
time.sleep(1)
print("AFTER DEEP")
"""

#: RAM in anonymous memory files, never mapped: no process's RSS, no tmpfs the watchdog knows.
MEMFD_HOARD = ["""\
import os
held = []
for i in range(5 * 1024 // 16):  # 5 GiB in 16 MB files (under RLIMIT_FSIZE), allocated, never written
    fd = os.memfd_create(f"hoard{i}")
    os.posix_fallocate(fd, 0, 16 * 2**20)
    held.append(fd)
""", "if len(held) * 16 > 1024:\n    print('LEAK: held', len(held) * 16, 'MB in memfd files')\n"]

#: A user namespace of its own makes the notebook root there: a tmpfs of any size, mounts, capabilities.
NESTED_NAMESPACE_TMPFS = ATTEMPT + """\
import subprocess
def mount_private_tmpfs():
    script = "mount -t tmpfs -o size=8g none /tmp && dd if=/dev/zero of=/tmp/fill bs=1M count=30 status=none && du -m /tmp/fill"
    done = subprocess.run(["unshare", "-U", "-r", "-m", "sh", "-c", script], capture_output=True, text=True)
    if done.returncode:
        raise PermissionError(done.stderr.strip()[-120:])
    return done.stdout
attempt("unshare-tmpfs", mount_private_tmpfs)
"""

#: System calls the sandbox never needs; each one printed DENIED, or LEAK when the kernel allowed it.
FORBIDDEN_SYSCALLS = ATTEMPT + """\
import ctypes, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def call(name, *args):
    result = getattr(libc, name)(*args)
    if result == -1:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return result

def syscall(number, *args):
    result = libc.syscall(ctypes.c_long(number), *args)
    if result == -1:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return result

CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWPID = 0x10000000, 0x00020000, 0x40000000, 0x20000000
def clone3_newuser():
    args = (ctypes.c_uint64 * 11)(CLONE_NEWUSER, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0)  # flags, ..., exit_signal
    pid = syscall(435, ctypes.byref(args), ctypes.c_size_t(88))
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid

def in_child(action):  # a kernel in new namespaces would no longer talk to the grader: try in a child
    def run():
        pid = os.fork()
        if pid == 0:
            try:
                action()
            except OSError:
                os._exit(1)
            os._exit(0)
        if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
            raise PermissionError("refused in the child")
        return "allowed in the child"
    return run

def ptrace_attach():
    child = os.fork()
    if child == 0:
        time.sleep(5)
        os._exit(0)
    try:
        return call("ptrace", 16, child, None, None)  # PTRACE_ATTACH
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)

attempt("unshare-user", in_child(lambda: call("unshare", CLONE_NEWUSER)))
attempt("unshare-mount-net-pid", in_child(lambda: call("unshare", CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID)))
attempt("clone3-newuser", clone3_newuser)
attempt("setns", lambda: call("setns", os.open("/proc/self/ns/uts", os.O_RDONLY), 0))
attempt("ptrace-attach", ptrace_attach)
attempt("ptrace-traceme", in_child(lambda: call("ptrace", 0, 0, None, None)))
attempt("keyctl-join", lambda: syscall(250, 1, None))  # KEYCTL_JOIN_SESSION_KEYRING
attempt("add_key", lambda: syscall(248, b"user", b"agx", b"secret", 6, -3))
attempt("mount", lambda: call("mount", b"none", b"/tmp", b"tmpfs", 0, None))
attempt("umount", lambda: call("umount2", b"/proc", 2))
attempt("pivot_root", lambda: syscall(155, b"/tmp", b"/tmp"))
attempt("fallocate", lambda: syscall(285, os.open("/tmp/reserved", os.O_CREAT | os.O_WRONLY), 0, 0, ctypes.c_long(2**20)))
print("SYSCALLS TRIED")
"""

#: The directory of the kernel's sockets is a host directory the sandbox writes to.
IPC_DIR_FILL = ["""\
import os
from ipykernel.connect import get_connection_file
ipc = os.path.dirname(get_connection_file())
written = 0
chunk = b"x" * 8 * 2**20
for i in range(160):  # 1.25 GiB in files below the per-file limit, next to the kernel's sockets
    with open(os.path.join(ipc, f"fill{i}"), "wb") as fh:
        fh.write(chunk)
    written += 8
""", "if written > 1024:\n    print('LEAK: wrote', written, 'MB beside the kernel sockets')\n"]

SEGFAULT = "import ctypes\nctypes.string_at(0)\n"
SELF_SIGKILL = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
OS_EXIT = "import os\nos._exit(0)\n"

#: Four "epochs" of 2 s of CPU work each, every one under the cell's limit, together over the notebook's budget
#: (SHORT: 3-s cells, 6 s in all).
BUDGET_BLOWOUT = ["import time\nstart = time.process_time()\nwhile time.process_time() - start < 2:\n    pass\n"] * 4 \
    + ["print('LEAK: ran after the budget was spent')\n"]

SYMLINKS_IN_EXPORT = '''\
import os
os.symlink("/etc/passwd", "/export/confusion.npy")
os.symlink("/etc/hostname", "/export/manifest.json")
os.makedirs("/export/models", exist_ok=True)
os.symlink("/etc/passwd", "/export/models/mlp.keras")
print("LINKS PLANTED")
'''

#: Replace the export step with one that forges the manifest, a crafted model file and a confusion matrix.
FORGED_EXPORT = '''\
import json, os, sys, types, zipfile
import numpy as np

def forged_run(namespace, export_dir, config_json):
    os.makedirs(os.path.join(export_dir, "models"), exist_ok=True)
    evil = {"module": "os", "class_name": "system", "config": {"command": "echo LEAK: crafted config ran"},
            "registered_name": "system"}
    layer = {"module": "builtins", "class_name": "exec", "config": {"source": "print('LEAK: exec ran')"}}
    config = {"module": "keras", "class_name": "Sequential", "config": {"name": "seq", "layers": [layer, evil]},
              "registered_name": None}
    for arch in ("mlp", "cnn", "simple_rnn", "lstm", "gru"):
        with zipfile.ZipFile(os.path.join(export_dir, "models", f"{arch}.keras"), "w") as archive:
            archive.writestr("config.json", json.dumps(config))
            archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
            archive.writestr("model.weights.h5", b"not hdf5")
    manifest = {"models": {arch: {"variable": f"{arch}_model", "found_by": "name", "file": f"{arch}.keras",
                                  "accuracy": 1.0, "training_steps": 10**6}
                           for arch in ("mlp", "cnn", "simple_rnn", "lstm", "gru")},
                "probes": {"best_model": "cnn"}, "errors": [], "score": 100}
    with open(os.path.join(export_dir, "manifest.json"), "w") as fh:
        json.dump(manifest, fh)
    np.save(os.path.join(export_dir, "confusion.npy"), np.diag([1000] * 10))

fake = types.ModuleType("autograder_inside.export")
fake.run = forged_run
sys.modules["autograder_inside.export"] = fake
import autograder_inside
autograder_inside.export = fake
print("EXPORT REPLACED")
'''

LIARS = '''\
import numpy as np

class Liar:
    """Equal to everything, true, and an array of whatever shape the caller hopes for."""
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __bool__(self): return True
    def __len__(self): return 10
    def __array__(self, dtype=None, copy=None): return np.diag(np.full(10, 1000)).astype(dtype or int)

class Scaled(np.ndarray):
    """Raw 0-255 pixels that claim to be scaled."""
    def min(self, *a, **k): return 0.0
    def max(self, *a, **k): return 1.0
'''

LYING_OBJECTS = LIARS + '''\
x_train = np.random.randint(0, 256, (1500, 28, 28)).astype("float32").view(Scaled)
x_val = np.full((500, 28, 28), np.nan, dtype="float32")
x_test = np.full((10000, 28, 28), np.inf, dtype="float32")
y_train, y_val, y_test = Liar(), np.array(["seven"] * 500), np.arange(10000) * 1.5
confusion = Liar()
best_model_name = Liar()
print("LIES TOLD")
'''

INJECTION = '''\
best_model_name = "<script>alert('best')</script>\\x1b[2J\\x1b[31m"
print("\\x1b[2J\\x1b[31m<script>alert('stdout')</script>")
from IPython.display import HTML, Javascript, display
display(HTML("<script>alert('display')</script><img src=x onerror=alert(1)>"))
display(Javascript("alert('js')"))
raise RuntimeError("<img src=x onerror=alert('error')>\\x1b[31m red </td></tr></table><script>alert(2)</script>")
'''

EXPORT_NAME_COLLISIONS = '''\
__agx_export = "hijacked"
autograder_inside = None
json = None
os = None
np = None
keras = None
'''

MONKEYPATCH_BEFORE_EXPORT = '''\
import builtins, json
import numpy as np
import keras

_real_save = np.save
def _save(path, array, *args, **kwargs):  # every saved array becomes a "perfect" confusion matrix
    return _real_save(path, np.diag(np.full(10, 1000)), *args, **kwargs)
np.save = _save
_real_dump = json.dump
def _dump(obj, fh, *args, **kwargs):
    if isinstance(obj, dict) and "models" in obj:
        obj["score"] = 100
        for entry in obj["models"].values():
            entry["accuracy"] = 1.0
    return _real_dump(obj, fh, *args, **kwargs)
json.dump = _dump
keras.Model.predict = lambda self, x, *a, **k: np.eye(10, dtype="float32")[np.zeros(len(x), dtype=int)]
keras.Model.evaluate = lambda self, *a, **k: [0.0, 1.0]
print("PATCHED")
'''

SYS_EXIT_EARLY = "import sys\nprint('EXITING')\nsys.exit(0)\n"
AFTER_EXIT = "print('STILL RUNNING AFTER sys.exit')\n"

PERFECT_CONFUSION_CLAIM = "confusion = np.diag(np.bincount(y_test, minlength=10))\n"

#: A "model" of standard layers that finds the nearest public test image and returns its label.
LOOKUP_MODEL = '''\
import numpy as np
import keras
from keras import layers
(_, _), (test_images, test_labels) = keras.datasets.mnist.load_data()
table = test_images.reshape(10000, 784).astype("float32") / 255.0
sharpness = 50.0  # softmax over -distance: all the mass on the nearest stored image
nearest = layers.Dense(10000, activation="softmax")
label_of = layers.Dense(10, use_bias=False)
mlp_model = keras.Sequential([keras.Input((28, 28)), layers.Flatten(), nearest, label_of])
nearest.set_weights([sharpness * table.T, -0.5 * sharpness * (table ** 2).sum(axis=1)])
label_of.set_weights([np.eye(10, dtype="float32")[test_labels]])
mlp_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
'''

#: A CNN whose Lambda layer would run code wherever the model is loaded and called.
LAMBDA_PAYLOAD_CNN = '''\
def _payload(x):
    import os
    if os.path.isdir("/predictions"):
        print("LEAK: Lambda code ran in the prediction sandbox")
        open("/predictions/mlp.eval.npy", "wb").write(b"forged")
    return x
cnn_model = keras.Sequential([keras.Input((28, 28, 1)), layers.Lambda(_payload), layers.Conv2D(4, 3),
                              layers.MaxPooling2D(), layers.Flatten(), layers.Dense(10, activation="softmax")])
cnn_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
'''


def legit_mlp_homework(claims: dict[str, str] | None = None) -> Callable[[], nbformat.NotebookNode]:
    return lambda: notebooks.homework(("mlp",), claims=claims)


def lookup_homework() -> nbformat.NotebookNode:
    return notebooks.homework(())


# --- the table ------------------------------------------------------------------------------------

REJECTED = dict(status="rejected", zero=QUESTIONS)
MALFORMED = [
    Case("not_json", "malformed", raw(b"print('hello')\n"), Expect(reasons=("invalid_notebook",), **REJECTED,
                                                                      message="not valid JSON"), in_batch=True),
    Case("empty_file", "malformed", raw(b""), Expect(reasons=("invalid_notebook",), **REJECTED, message="empty")),
    Case("truncated_json", "malformed", raw(lambda ctx: valid_bytes().rstrip()[:-1]),
         Expect(reasons=("invalid_notebook",), **REJECTED, message="cut off"), in_batch=True),
    Case("zip_renamed", "malformed", raw(lambda ctx: zip_bytes()),
         Expect(reasons=("invalid_notebook",), **REJECTED, message="ZIP"), in_batch=True),
    Case("pdf_renamed", "malformed", raw(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"),
         Expect(reasons=("invalid_notebook",), **REJECTED, message="PDF")),
    Case("png_renamed", "malformed", raw(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)),
         Expect(reasons=("invalid_notebook",), **REJECTED, message="PNG")),
    Case("non_utf8", "malformed", raw(b'{"cells": [], "metadata": {"n": "caf\xe9"}, "nbformat": 4, "nbformat_minor": 5}'),
         Expect(reasons=("invalid_notebook",), **REJECTED, message="not UTF-8")),
    Case("json_list", "malformed", raw(b"[1, 2, 3]"), Expect(reasons=("invalid_notebook",), **REJECTED,
                                                               message="JSON list")),
    Case("json_without_cells", "malformed", raw(b'{"score": 100, "status": "graded"}'),
         Expect(reasons=("invalid_notebook",), **REJECTED, message="not a notebook")),
    Case("nbformat_99", "malformed", raw(b'{"nbformat": 99, "nbformat_minor": 0, "cells": [], "metadata": {}}'),
         Expect(reasons=("unsupported_nbformat",), **REJECTED, message="version 99"), in_batch=True),
    Case("schema_invalid_cells", "malformed",
         raw(b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": '
             b'[{"cell_type": "evil", "source": 42, "metadata": {}}]}'),
         Expect(reasons=("invalid_notebook",), **REJECTED, message="Jupyter format")),
    Case("deeply_nested", "malformed",
         raw(b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {"x": ' + b"[" * 100_000 + b"]" * 100_000
             + b'}, "cells": []}'), Expect(reasons=("invalid_notebook",), **REJECTED, message="nested"),
         in_batch=True),
    Case("over_size", "malformed", raw(lambda ctx: b'{"pad": "' + b"x" * (3 * 2**20) + b'"}'),
         Expect(reasons=("too_large",), **REJECTED, message="limit")),
    Case("zero_notebooks", "malformed", folder(), Expect(reasons=("no_notebook",), **REJECTED)),
    Case("two_notebooks", "malformed", folder("homework.ipynb", "homework_final.ipynb"),
         Expect(reasons=("multiple_notebooks",), **REJECTED, message="homework_final.ipynb")),
    Case("nbformat_3_upgraded", "malformed", raw(NBFORMAT_3),
         Expect(outputs=("FORMAT-3 RAN",), notes=("upgraded from nbformat 3",))),
    Case("answer_cells_deleted", "malformed", cells(nbformat.v4.new_markdown_cell("# MNIST homework")),
         Expect(reasons=(None,))),
    Case("answer_cells_retyped", "malformed",
         cells(nbformat.v4.new_markdown_cell(NUMPY_PREPROCESSING + "print('LEAK: markdown ran')"),
               nbformat.v4.new_raw_cell("print('LEAK: raw cell ran')"),
               nbformat.v4.new_code_cell("print('CODE CELL RAN')")),
         Expect(outputs=("CODE CELL RAN",))),
    Case("tampered_test_cells_and_points", "malformed",
         cells(nbformat.v4.new_code_cell("print('STUDENT CELL')"),
               tagged("print('LEAK: tagged test cell ran')", tags=["tests"]),
               tagged("print('LEAK: nbgrader test cell ran')",
                      nbgrader={"grade": True, "solution": False, "points": 1000, "grade_id": "q1"}),
               nbformat.v4.new_raw_cell("# BEGIN TESTS"),
               nbformat.v4.new_code_cell("print('LEAK: otter test ran')"),
               nbformat.v4.new_raw_cell("# END TESTS"),
               tagged("print('STILL EXECUTED')", tags=["skip-execution", "raises-exception"],
                      nbgrader={"points": 1000, "solution": True})),
         Expect(outputs=("STUDENT CELL", "STILL EXECUTED"))),
    Case("tampered_kernelspec", "malformed",
         cells(nbformat.v4.new_code_cell("import sys\nprint('KERNEL', sys.executable.endswith('python'))"),
               metadata={"kernelspec": {"name": "bash", "display_name": "evil", "language": "bash"},
                         "language_info": {"name": "bash"}}),
         Expect(outputs=("KERNEL True",), notes=("kernelspec 'bash' ignored",))),
    Case("fake_prefilled_outputs", "malformed",
         cells(nbformat.v4.new_code_cell("x = 1", execution_count=7, outputs=[
             nbformat.v4.new_output("stream", name="stdout", text="All tests passed!\nq1 - 10/10 points\n"),
             nbformat.v4.new_output("execute_result", data={"text/plain": "Score: 100/100"}, execution_count=7)])),
         Expect(notes=("claiming that tests passed",))),
]

RESOURCES = [
    Case("infinite_loop", "resources", notebook("while True:\n    pass\n", "print('AFTER LOOP')"),
         Expect(reasons=("cell_errors",)), limits="short", in_batch=True),
    Case("sigint_ignoring_loop", "resources", notebook(SIGINT_PROOF),
         Expect(reasons=("cell_errors", "wall_budget")), limits="waiting"),
    Case("input_call", "resources", notebook("name = input('your name? ')\n", "print('AFTER INPUT')"),
         Expect(reasons=("cell_errors",), outputs=("AFTER INPUT",))),
    Case("memory_bomb", "resources", notebook(MEMORY_BOMB), Expect(reasons=("memory",), stopped=("memory",)),
         in_batch=True),
    Case("fork_bomb", "resources", notebook(FORK_BOMB),
         Expect(reasons=("memory", "cell_errors", "kernel_died", "wall_budget")), in_batch=True),
    Case("thread_bomb", "resources", notebook(THREAD_BOMB, "print('AFTER THREADS')"),
         Expect(reasons=("cell_errors", "memory", "kernel_died")), in_batch=True),
    Case("double_forked_daemon", "resources", notebook(DAEMON, "print('AFTER DAEMON')"),
         Expect(outputs=("DAEMON STARTED", "AFTER DAEMON")), in_batch=True),
    Case("disk_fill_home", "resources", notebook(DISK_FILL_HOME, "print('AFTER FILL')"),
         Expect(reasons=("cell_errors",), outputs=("No space left", "AFTER FILL"))),
    Case("disk_fill_export", "resources", notebook(DISK_FILL_EXPORT),
         Expect(reasons=("disk", "cell_errors"), stopped=("disk", None))),
    Case("gigabytes_printed", "resources", notebook(PRINT_FLOOD), Expect(reasons=("cell_errors", "memory")),
         in_batch=True),
    Case("one_huge_write", "resources", notebook(ONE_HUGE_WRITE), Expect(reasons=(None, "cell_errors"))),
    Case("display_flood", "resources", notebook(DISPLAY_FLOOD), Expect(reasons=(None, "cell_errors"))),
    Case("metadata_flood", "resources", notebook(METADATA_FLOOD, "print('NEXT CELL')"),
         Expect(reasons=(None, "cell_errors"), outputs=("output truncated by the grader",)), production=True),
    Case("stored_fields_flood", "resources", notebook(STORED_FIELDS_FLOOD),
         Expect(reasons=(None, "cell_errors"), outputs=("output truncated by the grader",)), production=True),
    Case("deep_kernel_message", "resources", notebook("print('BEFORE DEEP')", DEEP_MESSAGE, "print('LATER CELL')"),
         Expect(reasons=("kernel_protocol",), stopped=("kernel_protocol",), outputs=("BEFORE DEEP",),
                artifacts=("executed.ipynb", "kernel.log")), production=True),
    Case("memfd_hoard", "resources", notebook(*MEMFD_HOARD), Expect(reasons=("memory",), stopped=("memory",)),
         production=True),
    Case("ipc_dir_fill", "resources", notebook(*IPC_DIR_FILL), Expect(reasons=("disk",), stopped=("disk",)),
         production=True),
    Case("os_exit", "resources", notebook(OS_EXIT, "print('NEVER')"),
         Expect(reasons=("kernel_died",), stopped=("kernel_died",)), in_batch=True),
    Case("self_sigkill", "resources", notebook(SELF_SIGKILL), Expect(reasons=("kernel_died",))),
    Case("segfault_ctypes", "resources", notebook(SEGFAULT), Expect(reasons=("kernel_died",)), in_batch=True),
    Case("training_budget_blowout", "resources", notebook(NUMPY_PREPROCESSING, *BUDGET_BLOWOUT),
         Expect(reasons=("cell_errors", "wall_budget"), positive=("q1",),
                zero=tuple(q for q in QUESTIONS if q != "q1")), limits="short"),
]

INTEGRITY = [
    Case("read_grader_files", "integrity", notebook(read_grader_files), Expect(outputs=("DENIED",))),
    Case("hunt_evaluation_labels", "integrity", notebook(hunt_evaluation_labels), Expect(outputs=("WALKED",))),
    Case("proc_of_other_processes", "integrity", notebook(other_processes), Expect(outputs=("PROCS",))),
    Case("write_fake_results", "integrity", notebook(write_fake_results), Expect(outputs=("DENIED",))),
    Case("symlinks_in_export", "integrity", notebook(SYMLINKS_IN_EXPORT),
         Expect(reasons=(None, "export_failed"), outputs=("LINKS PLANTED",), notes=("symbolic link",))),
    Case("kill_the_grader", "integrity", notebook(kill_the_grader, "print('AFTER KILL')"),
         Expect(reasons=(None, "kernel_died", "cell_errors")), in_batch=True),
    Case("sys_exit_early", "integrity", notebook(NUMPY_PREPROCESSING, SYS_EXIT_EARLY, AFTER_EXIT),
         Expect(reasons=(None, "cell_errors"), outputs=("STILL RUNNING",), positive=("q1",),
                zero=tuple(q for q in QUESTIONS if q != "q1"))),
    Case("nested_namespace_tmpfs", "integrity", notebook(NESTED_NAMESPACE_TMPFS),
         Expect(outputs=("DENIED unshare-tmpfs",)), production=True),
    Case("forbidden_syscalls", "integrity", notebook(FORBIDDEN_SYSCALLS),
         Expect(outputs=("SYSCALLS TRIED", "DENIED unshare-user", "DENIED keyctl-join")), production=True),
    Case("network_access", "integrity", notebook(NETWORK), Expect(outputs=("DENIED tcp", "DENIED dns", "DENIED pip"))),
    # Only what the arrays really are counts: right shapes and sizes (1 + 1 of preprocessing's 10 points), nothing else.
    Case("lying_objects", "integrity", notebook(LYING_OBJECTS),
         Expect(outputs=("LIES TOLD",), zero=QUESTIONS[1:], checks={"preprocessing": 2.0})),
    # The crafted models are never loaded, so they earn nothing: listed for the instructor's review.
    Case("forged_export_and_crafted_model_files", "integrity", notebook(FORGED_EXPORT),
         # Crafted files are not models the notebook trained: no review entry is owed, one is harmless.
         Expect(reasons=(None, "models_to_review"), outputs=("EXPORT REPLACED",))),
    # One legitimate MLP, then hostile cells: the MLP is still graded, the lies earn nothing.
    Case("hostile_cells_after_a_real_model", "integrity",
         notebook(LIARS + "confusion = Liar()\n", MONKEYPATCH_BEFORE_EXPORT, INJECTION, SYS_EXIT_EARLY, AFTER_EXIT, EXPORT_NAME_COLLISIONS,
                  builder=legit_mlp_homework(claims={"mlp": "99.5%"})),
         Expect(reasons=("cell_errors",), positive=("q1", "q2"), zero=("q3", "q4", "q5", "q6"),
                outputs=("PATCHED", "STILL RUNNING"), checks={"confusion_matrix": 2.0, "report_claims": 0.0}),
         limits="model"),
]

ML_CHEATING = [
    Case("lookup_model_and_lambda_payload", "ml",
         notebook(LOOKUP_MODEL, LAMBDA_PAYLOAD_CNN, builder=lookup_homework),
         # Accuracy: lookup detected. Architecture: only the Flatten-then-Dense third of it (size and output fail).
         # The Lambda CNN is refused by the prediction sandbox: listed for the instructor's review.
         Expect(reasons=("models_to_review",), zero=("q3", "q4", "q5", "q6", "q7"),
                checks={"mlp_accuracy": 0.0, "mlp_architecture": 2.67}),
         limits="lookup"),
]

def setup_then(*sources: str | Callable[[], str], report: str | None = None) -> Callable[[Context, Path], Path]:
    """MNIST loaded and scaled as the template asks (notebooks.SETUP), then ``sources`` (strings, or functions
    that make them when the submission is written), then ``report``."""
    def builder() -> nbformat.NotebookNode:
        nb = notebooks.homework((), report=False)
        nb.cells += [nbformat.v4.new_code_cell(source() if callable(source) else source) for source in sources]
        if report:
            nb.cells.append(nbformat.v4.new_markdown_cell(report))
        return nb
    return notebook(builder=builder)


def mlp_then_report(report: str) -> Callable[[Context, Path], Path]:
    """One honest slice-trained MLP (no confusion matrix), then ``report``."""
    def builder() -> nbformat.NotebookNode:
        nb = notebooks.homework(("mlp",), report=False)
        nb.cells = [cell for cell in nb.cells if "confusion" not in cell.source]
        nb.cells.append(nbformat.v4.new_markdown_cell(report))
        return nb
    return notebook(builder=builder)


#: Accuracy integrity (issue 12): points only for a trained network of the named kind, measured on what the
#: homework asks. The lookups score ~100 % on the unshifted test images without learning anything, look
#: trained (an identity head fitted for one epoch) and are dressed as each architecture; none of it may earn
#: a model point. Preprocessing (q1) is honest in each, so it must still be earned.
NOT_Q1 = tuple(q for q in QUESTIONS if q != "q1")
ACCURACY_INTEGRITY = [
    Case("lookup_of_the_test_set", "ml", setup_then(lookups.LOOKUP_PLAIN),
         Expect(reasons=("models_to_review",), zero=NOT_Q1, positive=("q1",), outputs=("LOOKUP public accuracy",)), limits="model"),
    Case("lookup_relabelled_by_a_1x1_conv", "ml", setup_then(lookups.LOOKUP_AS_CNN),
         Expect(reasons=("models_to_review",), zero=NOT_Q1, positive=("q1",), outputs=("LOOKUP public accuracy",)), limits="model"),
    Case("lookup_with_dead_recurrent_branches", "ml", setup_then(lookups.LOOKUP_WITH_RECURRENT_BRANCH),
         Expect(reasons=("models_to_review",), zero=NOT_Q1, positive=("q1",), outputs=("LOOKUP public accuracy",)), limits="model"),
    # A real CNN is no SimpleRNN, LSTM or GRU because a 2-unit recurrent branch hangs off it.
    Case("cnn_with_dead_recurrent_branches", "ml", setup_then(lookups.DEAD_RECURRENT_BRANCH),
         Expect(reasons=("models_to_review",), zero=NOT_Q1, positive=("q1",), outputs=("DEAD BRANCH GRU",)), limits="model"),
    # Fitted on x_test: its architecture is an MLP's, but its accuracy and the report's "99.9%" are not earned.
    Case("fit_on_the_test_set", "ml", setup_then(lookups.FIT_ON_TEST, report=lookups.FIT_ON_TEST_REPORT),
         Expect(reasons=("models_to_review",), zero=("q3", "q4", "q5", "q6", "q7"), positive=("q1",),
                outputs=("FIT ON TEST",),
                checks={"mlp_accuracy": 0.0, "report_claims": 0.0}), limits="model"),
    # An honest MLP, and a claims table made to be skipped: a "(val / test)" header, rows repeated for one
    # architecture, numbers 10+ points above the model. Claims must be read anyway, and fail.
    Case("evasive_claims_table", "ml", mlp_then_report(lookups.EVASIVE_CLAIMS_REPORT),
         Expect(zero=("q3", "q4", "q5", "q6", "q7"), positive=("q1", "q2"), checks={"report_claims": 0.0}),
         limits="model"),
    # Strings where the data should be, numpy patched to turn them into scaled MNIST-shaped arrays.
    Case("numpy_patched_before_export", "ml", notebook(lookups.PATCHED_NUMPY),
         # The forged probes earn nothing; the point left is the validation split the grader's own fit
         # hook saw passed to fit().
         Expect(zero=NOT_Q1, outputs=("NUMPY PATCHED",), checks={"preprocessing": 1.0})),
    # Issue 24: test images recognised one by one in what training received, however they got there.
    Case("test_images_hidden_in_training", "ml", setup_then(lookups.TEST_IMAGES_HIDDEN),
         Expect(reasons=("models_to_review",), zero=("q4", "q5", "q6", "q7"), positive=("q1",),
                outputs=("TEST IMAGES HIDDEN",), checks={"mlp_accuracy": 0.0, "cnn_accuracy": 0.0},
                flagged={"mlp": "no_test_images_trained_on", "cnn": "no_test_images_trained_on"}), limits="model"),
    Case("test_images_by_train_on_batch", "ml", setup_then(lookups.TEST_IMAGES_BY_BATCH),
         Expect(reasons=("models_to_review",), zero=("q3", "q4", "q5", "q6", "q7"), positive=("q1",),
                outputs=("TEST IMAGES BY BATCH",), checks={"mlp_accuracy": 0.0},
                flagged={"mlp": "no_test_images_trained_on"}), limits="model"),
    Case("test_images_in_a_tf_data_pipeline", "ml", setup_then(lookups.TEST_IMAGES_IN_A_PIPELINE),
         Expect(reasons=("models_to_review",), zero=("q3", "q4", "q5", "q6", "q7"), positive=("q1",),
                outputs=("TEST IMAGES IN A PIPELINE",), checks={"mlp_accuracy": 0.0},
                flagged={"mlp": "no_test_images_trained_on"}), limits="model"),
    # Issue 24: weights trained elsewhere, then a token fit(): no accuracy point, to review with the evidence.
    Case("weights_brought_in_by_set_weights", "ml", setup_then(lookups.weights_set),
         Expect(reasons=("models_to_review",), zero=("q4", "q5", "q6", "q7"), positive=("q1",),
                outputs=("WEIGHTS BROUGHT IN",), checks={"mlp_accuracy": 0.0, "cnn_accuracy": 0.0},
                flagged={"mlp": "weights_from_this_notebook", "cnn": "weights_from_this_notebook"}), limits="model"),
    Case("weights_brought_in_as_files", "ml", setup_then(lookups.weights_files),
         Expect(reasons=("models_to_review",), zero=("q4", "q5", "q6", "q7"), positive=("q1",),
                outputs=("FILES BROUGHT IN",), checks={"mlp_accuracy": 0.0, "cnn_accuracy": 0.0},
                flagged={"mlp": "weights_from_this_notebook", "cnn": "weights_from_this_notebook"}), limits="model"),
]

#: The honest twin of issue 24's attacks: the same moves done honestly earn what they are worth.
HONEST_TWINS = [
    Case("honest_test_validation_and_own_checkpoints", "ml", setup_then(lookups.HONEST_TWIN),
         Expect(zero=("q4", "q5", "q6", "q7"), positive=("q1", "q2", "q3"),
                outputs=("HONEST TEST ACCURACY", "HONEST RELOADED"), earned=("mlp_accuracy", "cnn_accuracy"),
                unflagged=("mlp", "cnn")), limits="model"),
]


CASES: list[Case] = MALFORMED + RESOURCES + INTEGRITY + ML_CHEATING + ACCURACY_INTEGRITY + HONEST_TWINS
