"""Phase A: run the untrusted notebook in the sandbox, export plain data, predict in a second sandbox.

The trusted process drives the kernel with nbclient's async client over ZeroMQ *ipc* sockets (TCP cannot
cross the sandbox's network namespace), caps the outputs it keeps while they stream, and never reads a
verdict from the kernel: cell status and tracebacks only feed diagnoses. After the student's cells an
export step (in the same kernel) saves the models as ``.keras`` files and plain probes; then the kernel
is killed and a fresh sandbox, holding only the model files and the unlabeled images, predicts.
"""
from __future__ import annotations

import asyncio
import fcntl
import functools
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import nbformat
import numpy as np
import zmq.asyncio
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from autograder.assignment import Execution
from autograder.run import cgroup, sandbox
from autograder.run.class_source import class_source
from autograder.run.inside import contract
from autograder.run.sandbox import Mount, SandboxSpec

EXPORT_MOUNT = "/export"
IPC_ROOT = Path("/tmp")
PREDICT_POLL_SECONDS = 0.2
MAX_MESSAGE_BYTES = 16 * 2**20  # one kernel message; bigger ones drop the connection, not our memory
#: Messages received but not yet read, per socket: with MAX_MESSAGE_BYTES this bounds what a flooding kernel
#: can make the grader hold (ZeroMQ's default is 1000 messages; past the bound the kernel's side drops them).
QUEUED_MESSAGES = 4
#: How often a running cell's limits are checked, in seconds (nbclient counts its wait in whole seconds).
LIMIT_POLL_SECONDS = 1
TRUNCATION_NOTE = "\n[output truncated by the grader: this notebook printed more than {limit} MB]\n"
LOST_NOTE = "\n[output dropped by the grader: a single burst of output was larger than {limit} MB]\n"


JOB_PREFIX = "autograder-job-"
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
    confinement: Any = None  # isolation.UidConfinement: the container-uid level, where bubblewrap cannot run
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
            mounts.append(Mount(self.public_tests, f"{sandbox.HOME}/tests"))
        if (self.inputs / "submission.ipynb").is_file():  # otter's report check reads the saved notebook
            mounts.append(Mount(self.inputs / "submission.ipynb", f"{sandbox.HOME}/{self.notebook_name}"))
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

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711)  # the sandbox uid may traverse to the ipc sockets, not list the job
        for path in (self.ipc, self.export, self.predictions, self.class_predictions):
            sandbox.prepare_writable_dir(path, self.spec)
        self.inputs.mkdir(exist_ok=True)
        self.inputs.chmod(0o755)
        # What the unsandboxed mode's kernel finds in its working directory (the job root).
        for link, target in ((self.root / "agx" / "autograder_inside", sandbox.INSIDE_PACKAGE),
                             (self.root / "tests", self.public_tests)):
            if target is not None and not link.exists():
                link.parent.mkdir(exist_ok=True)
                link.symlink_to(target)
        if self.confinement is not None:
            self.confinement.prepare(self)

    def confine(self, command: list[str], role: str) -> list[str]:
        """An unsandboxed command as it is, or under the container level's uid for ``role`` (isolation.py)."""
        if self.confinement is None:
            return command
        if role == "kernel":
            self.confinement.stage_notebook(self.inputs / "submission.ipynb", self.notebook_name)
        return self.confinement.argv(command, role)

    def unsandboxed_env(self) -> dict[str, str]:
        """Environment for --unsafe-no-sandbox: same helpers and Keras cache, no isolation."""
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

    def export_dir(self, sandboxed: bool) -> str:
        return EXPORT_MOUNT if sandboxed else str(self.export)


@dataclass
class CellRecord:
    index: int
    source: str
    status: str  # ok | error | timeout | not_run
    seconds: float = 0.0  # wall clock
    error: dict[str, Any] | None = None
    cpu_seconds: float = 0.0  # its CPU work (sandbox.CpuClock: CPU seconds / threads)
    limit: str | None = None  # a timeout's limit: cell_cpu | cpu_budget | wall_backstop

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "source": self.source, "status": self.status,
                "seconds": round(self.seconds, 3), "cpu_seconds": round(self.cpu_seconds, 3), "limit": self.limit,
                "error": self.error}


@dataclass
class CellLimits:
    """The limits of the student cell running now: CPU work (``clock``), and a wall-clock backstop that
    ends a cell that waits without working (sleeping, blocked)."""

    clock: sandbox.CpuClock
    started_work: float  # the clock when the cell started
    cpu_limit: float  # the CPU work it may do
    cpu_limit_name: str  # "cell_cpu" (its own limit) or "cpu_budget" (what is left of the notebook's)
    wall_deadline: float  # time.monotonic() at the backstop

    def breach(self) -> str | None:
        if self.clock.work_seconds() - self.started_work > self.cpu_limit:
            return self.cpu_limit_name
        if time.monotonic() > self.wall_deadline:
            return "wall_backstop"
        return None

    def message(self, limit: str) -> str:
        if limit == "wall_backstop":
            return "cell stopped: it ran past the wall-clock backstop without finishing (waiting, not working)"
        what = "its limit" if limit == "cell_cpu" else "what was left of the notebook's time budget"
        return f"cell stopped after {self.cpu_limit:g} s of CPU work, {what}"


@dataclass
class ExecutionRecord:
    """What Phase A did; plain data for the result's ``execution`` block."""

    cells: list[CellRecord] = field(default_factory=list)
    stopped: str | None = None
    stopped_by: str | None = None  # the limit that ended the cells: cell_cpu | cpu_budget | wall_backstop | memory ...
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # the cells' CPU work (sandbox.CpuClock), what the time limits count
    cpu_clock: str = ""  # where it was counted: cgroup-v1 | cgroup-v2 | process-tree
    budget_seconds: float = 0.0
    output_truncated: bool = False
    peak_rss_mb: float = 0.0
    export_ran: bool = False
    predict: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notebook: Any = None  # the executed notebook with capped outputs
    containment: dict[str, Any] = field(default_factory=dict)  # which mechanism held (sandbox.Confinement)

    def as_dict(self) -> dict[str, Any]:
        return {"cells": [c.as_dict() for c in self.cells], "stopped": self.stopped, "stopped_by": self.stopped_by,
                "seconds": round(self.seconds, 3), "cpu_seconds": round(self.cpu_seconds, 3),
                "cpu_clock": self.cpu_clock, "budget_seconds": self.budget_seconds,
                "output_truncated": self.output_truncated, "peak_rss_mb": self.peak_rss_mb,
                "export_ran": self.export_ran, "predict": self.predict, "containment": self.containment}


class SandboxedKernelManager(AsyncKernelManager):
    """An ipykernel started inside bubblewrap, reached over ipc sockets in the job's ``ipc`` dir."""

    def __init__(self, job: Job, confinement: sandbox.Confinement | None, **kwargs: Any) -> None:
        super().__init__(kernel_name="python3", transport="ipc", ip=str(job.ipc / "k"),
                         connection_file=str(job.ipc / "kernel.json"), **kwargs)
        self.job, self.confinement = job, confinement

    @property
    def sandboxed(self) -> bool:
        return self.confinement is not None

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        if self.sandboxed or self.job.confinement is not None:
            sandbox.prepare_writable_dir(self.job.ipc, self.job.spec)
            Path(self.connection_file).chmod(0o644)  # the kernel (another uid) must read it

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file,
                  "--IPKernelApp.exec_lines=['import autograder_inside.kernel_setup']",
                  "--HistoryManager.enabled=False"]
        if not self.sandboxed:
            return self.job.confine(kernel, "kernel")
        # The kernel cannot see the grader's PID (own PID namespace), so no parent poller.
        return sandbox.bwrap_argv(self.job.kernel_spec(), kernel, self.confinement)

    @property
    def kernel_spec(self):  # noqa: D401 - the spec decides how interrupts are sent
        spec = super().kernel_spec
        if spec is not None:
            # SIGINT to bwrap would not reach the kernel; ask the kernel to interrupt itself.
            spec.interrupt_mode = "message"
        return spec


def render_terminal(text: str) -> str:
    """What Jupyter shows for ``text``: ``\\r`` starts its line over, ``\\b`` deletes a character."""
    if "\r" not in text and "\b" not in text:
        return text
    lines = []
    for line in text.split("\n"):
        shown: list[str] = []
        for char in line:
            if char == "\r":
                shown.clear()
            elif char == "\b":
                if shown:
                    shown.pop()
            else:
                shown.append(char)
        lines.append("".join(shown))
    return "\n".join(lines)


def stored_size(content: dict[str, Any]) -> int:
    """Bytes a message's content takes once kept: every field counts, whatever nbclient keeps of it."""
    return len(json.dumps(content, default=str))


class GraderFault(RuntimeError):
    """The grader's own output capping failed: the run ends as the grader's error, not the kernel's."""


def own_code(method: Callable[..., Any]) -> Callable[..., Any]:
    """Any exception of the grader's own message handling is a :class:`GraderFault` (a message nested too
    deep to handle stays the kernel's: ``kernel_protocol``)."""
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except RecursionError:
            raise
        except Exception as exc:
            raise GraderFault(f"{method.__name__}: {type(exc).__name__}: {exc}") from exc
    return wrapper


class CappedNotebookClient(NotebookClient):
    """nbclient that stops storing outputs past a byte budget, while they stream in.

    Every field of a kept message counts against the budget (data, text and tracebacks, but also
    metadata, display ids and execution counts); a message over the budget is dropped whole. Display
    updates count once per output they rewrite. Widget (comm) messages are never kept: no widget
    frontend is mimicked.
    """

    DISPLAY_TYPES = ("display_data", "execute_result", "update_display_data")
    MAX_DISPLAY_ID = 200

    def __init__(self, nb: Any, max_output_bytes: int, **kwargs: Any) -> None:
        super().__init__(nb, **kwargs)
        self.max_output_bytes = max_output_bytes
        self.output_bytes = 0
        self.truncated = False
        self.idle_seen = True
        self.limits: CellLimits | None = None  # a student cell's; None: nbclient's own wall-clock timeout
        self.stopped_by: str | None = None  # the limit that stopped the last student cell
        self._polled = 0.0

    async def _async_handle_timeout(self, timeout: int, cell: Any = None) -> dict[str, Any] | None:
        """No reply for ``timeout`` s. For a student cell that is the poll of its limits: it is interrupted
        (as nbclient does at its own timeout) only once one is reached; until then nbclient waits on."""
        if self.limits is None:
            return await super()._async_handle_timeout(timeout, cell)
        self.stopped_by = self.limits.breach()
        if self.stopped_by is None:
            # A late reply of an earlier, stopped cell shortens nbclient's next wait to nothing: poll no faster.
            await asyncio.sleep(max(0.0, self._polled + LIMIT_POLL_SECONDS - time.monotonic()))
            self._polled = time.monotonic()
            return None
        self.error_on_timeout = {"ename": "CellTimeoutError", "evalue": self.limits.message(self.stopped_by),
                                 "traceback": []}
        return await super()._async_handle_timeout(timeout, cell)

    def charge(self, size: int, outs: list) -> bool:
        """Count ``size`` more bytes kept; False (and a note, once) when that would pass the budget."""
        if self.output_bytes + size > self.max_output_bytes:
            if not self.truncated:
                self.truncated = True
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr", text=TRUNCATION_NOTE.format(limit=self.max_output_bytes / 2**20)))
            return False
        self.output_bytes += size
        return True

    def process_message(self, msg: dict, cell: Any, cell_index: int) -> Any:
        if not isinstance(msg.get("content"), dict):
            return super().process_message(msg, cell, cell_index)  # nbclient's to refuse: kernel_protocol
        if self.cap_message(msg, cell):
            return super().process_message(msg, cell, cell_index)
        return None

    @own_code
    def cap_message(self, msg: dict, cell: Any) -> bool:
        """False when the message is not kept (a comm message, or a display update over the budget)."""
        msg_type, content = msg["msg_type"], msg["content"]
        if msg_type == "status" and content.get("execution_state") == "idle":
            self.idle_seen = True
        if msg_type.startswith("comm"):
            return False
        if "execution_count" in content and type(content["execution_count"]) is not int:
            content["execution_count"] = None  # nbclient copies it into the cell; the schema wants a number
        transient = content.get("transient")
        display_id = transient.get("display_id") if isinstance(transient, dict) else None
        if display_id is not None and not (isinstance(display_id, str) and len(display_id) <= self.MAX_DISPLAY_ID):
            content["transient"] = {}  # an id the grader would have to keep: the output is kept without it
        elif display_id in self._display_id_map and msg_type in self.DISPLAY_TYPES:
            copies = sum(len(indices) for indices in self._display_id_map[display_id].values())
            return self.charge(stored_size(content) * copies, cell.outputs)
        return True

    async def async_execute_cell(self, cell: Any, cell_index: int, **kwargs: Any) -> Any:
        self.idle_seen = False
        return await super().async_execute_cell(cell, cell_index, **kwargs)

    def note_lost_output(self, cell: Any) -> None:
        """A message over MAX_MESSAGE_BYTES drops the output connection: the cell's idle never arrives."""
        if not self.idle_seen:
            self.truncated = True
            cell.outputs.append(nbformat.v4.new_output("stream", name="stderr", text=LOST_NOTE.format(
                limit=MAX_MESSAGE_BYTES // 2**20)))

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> Any:
        kept = self.cap_output(outs, msg)
        return super().output(outs, msg, display_id, cell_index) if kept is True else kept

    @own_code
    def cap_output(self, outs: list, msg: dict) -> Any:
        """True: nbclient stores the output; else what ``output`` returns (merged into the last, or None)."""
        content = msg["content"]
        if msg["msg_type"] == "stream" and outs and outs[-1].get("output_type") == "stream" \
                and outs[-1].get("name") == content.get("name") and isinstance(content.get("text"), str):
            # Progress bars redraw with \r and \b: keep what a terminal would show, not every frame.
            before = len(outs[-1].text)
            merged = render_terminal(outs[-1].text + content["text"])
            if self.output_bytes + len(merged) - before <= self.max_output_bytes:
                outs[-1].text = merged
                self.output_bytes += len(merged) - before
                return outs[-1]
        return True if self.charge(stored_size(content), outs) else None


def _error_record(content: dict[str, Any]) -> dict[str, Any]:
    """An error as plain, size-capped data (the kernel controls every string in it)."""
    return {"ename": str(content.get("ename", ""))[:200], "evalue": str(content.get("evalue", ""))[:2000],
            "traceback": [str(line)[:2000] for line in list(content.get("traceback") or [])[-20:]]}


def _error_of(cell: Any) -> dict[str, Any] | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return _error_record(out)
    return None


def _interrupted_record(exc: Exception) -> dict[str, Any]:
    """The error of a cell during which the conversation with the kernel ended."""
    if isinstance(exc, DeadKernelError):
        return {"ename": "DeadKernelError", "evalue": "the kernel died", "traceback": []}
    return {"ename": "KernelProtocolError", "evalue": f"unreadable kernel message ({type(exc).__name__})",
            "traceback": []}


def export_code(export_dir: str, models: dict[str, str], probes: dict[str, str]) -> str:
    config = json.dumps({"models": models, "probes": probes})
    return ("import autograder_inside.export as __agx_export\n"
            f"__agx_export.run(globals(), {export_dir!r}, {config!r})\n")


async def _run_cells(client: CappedNotebookClient, nb: Any, execution: ExecutionRecord, budget: float,
                     cell_timeout: float, on_error: str, clock: sandbox.CpuClock, backstop_factor: float) -> None:
    """The student's cells, each within ``cell_timeout`` and all within ``budget`` seconds of CPU work
    (``clock``), and within ``backstop_factor`` times as many seconds of wall clock."""
    started, started_work = time.monotonic(), clock.work_seconds()
    stop = False
    replies: dict[int, dict[str, Any]] = {}

    def remember_error(cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        # An unknown %magic fails with an error reply but no error output: the reply is the record.
        replies[cell_index] = execute_reply.get("content", {})

    client.on_cell_error = remember_error
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        record = CellRecord(index=index, source=cell.source, status="not_run")
        execution.cells.append(record)
        remaining = budget - (clock.work_seconds() - started_work)
        wall_left = backstop_factor * budget - (time.monotonic() - started)
        if not stop and (remaining <= 0 or wall_left <= 0):  # spent by the cells before, each within its limit
            stop, execution.stopped_by = True, "cpu_budget" if remaining <= 0 else "wall_backstop"
        if stop:
            continue
        cell_started, cell_work = time.monotonic(), clock.work_seconds()
        client.limits = CellLimits(clock, cell_work, min(cell_timeout, remaining),
                                   "cell_cpu" if cell_timeout <= remaining else "cpu_budget",
                                   cell_started + min(backstop_factor * cell_timeout, wall_left))
        client.timeout, client.stopped_by = LIMIT_POLL_SECONDS, None
        try:
            await client.async_execute_cell(cell, index)
        except Exception as exc:
            record.status, record.seconds = "error", time.monotonic() - cell_started
            record.error = _interrupted_record(exc)
            raise
        finally:
            client.limits = None
            record.cpu_seconds = clock.work_seconds() - cell_work
            execution.cpu_seconds = clock.work_seconds() - started_work
        record.seconds = time.monotonic() - cell_started
        reply = replies.get(index, {})
        if reply.get("ename") == "CellTimeoutError":  # our own marker: the kernel's is a KeyboardInterrupt
            record.status, record.error, record.limit = "timeout", _error_record(reply), client.stopped_by
        else:
            record.error = _error_of(cell) or (_error_record(reply) if reply else None)
            record.status = "error" if record.error else "ok"
        client.note_lost_output(cell)
        if record.status != "ok" and (on_error == "stop" or record.status == "timeout"):
            stop = True  # after a timeout the kernel may still be busy: go straight to the export


def _stage_notebook(nb: Any, job: Job) -> None:
    path = job.inputs / "submission.ipynb"
    nbformat.write(nb, path)
    path.chmod(0o644)
    if not (job.root / job.notebook_name).exists():
        (job.root / job.notebook_name).symlink_to(path)


async def _run_and_export(nb: Any, job: Job, km: AsyncKernelManager, kc: Any, dog: sandbox.Watchdog,
                          execution: ExecutionRecord, *, budget: float, cell_timeout: float, on_error: str,
                          models: dict[str, str], probes: dict[str, str], max_output_bytes: int,
                          sandboxed: bool) -> None:
    """The student's cells, then the export step, in the running kernel."""
    client = CappedNotebookClient(nb, max_output_bytes, km=km, allow_errors=True,
                                  interrupt_on_timeout=True, record_timing=False,
                                  store_widget_state=False, iopub_timeout=4)
    client.kc = kc
    cells_started = time.monotonic()
    try:
        await _run_cells(client, nb, execution, budget, cell_timeout, on_error, dog.clock, job.backstop_factor)
        execution.timings["cells"] = round(time.monotonic() - cells_started, 3)
        dog.extend(job.config.export_seconds)
        export_started = time.monotonic()
        client.timeout = job.config.export_seconds
        export_cell = nbformat.v4.new_code_cell(export_code(job.export_dir(sandboxed), models, probes))
        nb.cells.append(export_cell)  # nbclient writes outputs back by index
        try:
            await client.async_execute_cell(export_cell, len(nb.cells) - 1, store_history=False)
        finally:
            nb.cells.pop()
        execution.export_ran = _error_of(export_cell) is None
        execution.timings["export"] = round(time.monotonic() - export_started, 3)
    except DeadKernelError:
        execution.stopped = dog.stopped or "kernel_died"
    except GraderFault:
        raise  # the grader's own code: grade_into records a grader error, not a stopped run
    except Exception:  # e.g. RecursionError on a message nested too deep: this notebook ends here, logs kept
        execution.stopped = dog.stopped or "kernel_protocol"
    execution.output_truncated = client.truncated


async def _execute(nb: Any, job: Job, *, budget: float, cell_timeout: float, on_error: str,
                   models: dict[str, str], probes: dict[str, str], max_output_bytes: int,
                   sandboxed: bool) -> ExecutionRecord:
    execution = ExecutionRecord(budget_seconds=budget)
    _stage_notebook(nb, job)
    confinement = sandbox.Confinement.create(job.spec.limits) if sandboxed else None
    km = SandboxedKernelManager(job, confinement)
    context = zmq.asyncio.Context()
    context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    context.setsockopt(zmq.RCVHWM, QUEUED_MESSAGES)
    log = open(job.root / "kernel.log", "wb")
    started = time.monotonic()
    kc = None
    try:
        if confinement is not None:
            await km.start_kernel(stdout=log, stderr=log, pass_fds=confinement.pass_fds)
            confinement.started()
        else:
            await km.start_kernel(stdout=log, stderr=log, cwd=str(job.root), env=job.unsandboxed_env())
        # The ipc directory is a host directory the kernel writes to: it counts as disk like the export.
        private = [job.confinement.home("kernel")] if job.confinement is not None else []
        config = job.config
        # The hard stops, after the cells' own: CPU work past the budget, or the wall-clock backstop.
        after_start = config.kernel_start_seconds + config.watchdog_grace_seconds
        dog = sandbox.Watchdog(km.provisioner.pid, job.spec.limits, [job.export, job.ipc, *private],
                               wall_seconds=job.backstop_factor * budget + after_start,
                               cpu_seconds=budget + after_start, sandboxed=sandboxed,
                               cgroup=confinement.cgroup if confinement else None)
        execution.cpu_clock = dog.clock.source
        with dog:
            kc = km.client(context=context)
            kc.start_channels()
            kc.allow_stdin = False  # input() raises at once instead of hanging (after start_channels)
            try:
                await kc.wait_for_ready(timeout=config.kernel_start_seconds)
            except RuntimeError:
                execution.stopped = dog.stopped or "kernel_died"
            else:
                execution.timings["kernel_start"] = round(time.monotonic() - started, 3)
                await _run_and_export(nb, job, km, kc, dog, execution, budget=budget, cell_timeout=cell_timeout,
                                      on_error=on_error, models=models, probes=probes,
                                      max_output_bytes=max_output_bytes, sandboxed=sandboxed)
        if dog.stopped:
            execution.stopped = dog.stopped
        execution.stopped_by = dog.limit or execution.stopped_by or next((c.limit for c in execution.cells if c.limit),
                                                                          None)
        if execution.stopped is None and execution.stopped_by == "wall_backstop":
            execution.stopped = "wall_budget"  # it waited, or the machine was starved: a time stop, retried
        execution.peak_rss_mb = round(dog.peak_rss_mb, 1)
    finally:
        if kc is not None:
            kc.stop_channels()
        try:
            await km.shutdown_kernel(now=True)
        except Exception:  # already dead: the watchdog or the student killed it
            pass
        await km.cleanup_resources()
        context.destroy(linger=0)
        log.close()
        if confinement is not None:
            execution.containment = confinement.close()
        if job.confinement is not None:  # nothing of the notebook may run on while the models are predicted
            job.confinement.end_kernel(job)
    execution.seconds = round(time.monotonic() - started, 3)
    execution.notebook = nb
    return execution


def run_notebook(nb: Any, job: Job, **kwargs: Any) -> ExecutionRecord:
    """Execute ``nb`` (already sanitized by intake) in the sandbox and run the export step."""
    return asyncio.run(_execute(nb, job, **kwargs))


@dataclass
class Predictor:
    """The prediction sandbox of one job: started early, released on the exported models by :func:`predict`."""

    job: Job
    options: list[str]  # the ablation, as the sandbox's command line says it
    image_sets: list[str]  # NAME=PATH as the sandbox sees them
    sandboxed: bool
    first: sandbox.Running | None = None  # started beside the notebook, still waiting

    def start(self, only: list[str] | None = None, classes: bool = False) -> sandbox.Running:
        """A fresh prediction process for the models ``only`` (all stock models: None)."""
        out = self.job.class_predictions if classes else self.job.predictions
        module = [sys.executable, "-m", "autograder_inside.predict", "--wait"]
        if only is not None:
            module += ["--only", ",".join(only)]
        if classes:
            module += ["--classes", f"/inputs/{contract.CLASS_SOURCE}"]
        module += self.options
        log = self.job.root / ("predict-classes.log" if classes else "predict.log")
        if not self.sandboxed:
            command = module + [str(self.job.export), str(out)] + self.image_sets
            command = [a.replace("/inputs/", f"{self.job.inputs}/") for a in command]
            return sandbox.Running(self.job.confine(command, "classes" if classes else "predict"),
                                   self.job.predict_spec().limits, [out], log,
                                   env=self.job.unsandboxed_env(), sandboxed=False)
        command = module + [EXPORT_MOUNT, "/predictions"] + self.image_sets
        return sandbox.start(self.job.predict_spec(out), command, watched_dirs=[out], log_path=log)

    def take_first(self) -> sandbox.Running | None:
        """The process started beside the notebook (once): it predicts every stock model."""
        first, self.first = self.first, None
        return first

    def cancel(self) -> None:
        """Stop the first process if it was never released (no stock model, or the grading failed)."""
        if self.first is not None:
            self.first.cancel()


def start_predictor(job: Job, image_sets: dict[str, np.ndarray], *, sandboxed: bool = True,
                    ablation: tuple[str, int] | None = None) -> Predictor:
    """Start the prediction sandbox beside the notebook, so its TensorFlow import overlaps the student's cells.

    It holds, reading nothing from the export, until :func:`predict` releases it after the kernel is
    gone; it never runs at the same time as student code, as before, only its start-up does.
    ``ablation`` names the image set and how many of its first images are predicted again with the
    model's working layers zeroed.
    """
    sets = []
    for name, images in image_sets.items():
        path = job.inputs / f"{name}.npy"
        np.save(path, np.ascontiguousarray(images, dtype=np.uint8), allow_pickle=False)
        path.chmod(0o644)
        sets.append(f"{name}=/inputs/{name}.npy")
    options = [] if ablation is None else [f"--ablate={ablation[0]}:{ablation[1]}"]
    predictor = Predictor(job, options, sets, sandboxed)
    predictor.first = predictor.start()
    return predictor


def exported_models(job: Job) -> tuple[list[str], list[str]]:
    """Architectures with an exported model file: (stock models, subclassed models), in contract order."""
    stock, subclassed = [], []
    for arch in contract.ARCHITECTURES:
        for is_subclassed, found in ((False, stock), (True, subclassed)):
            path = job.export / contract.MODELS_DIR / contract.model_file(arch, is_subclassed)
            if path.is_file() and not path.is_symlink():
                found.append(arch)
                break
    return stock, subclassed


def _regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _run_models(predictor: Predictor, archs: list[str], out: Path, deadline: float, *, classes: bool,
                outcomes: dict[str, dict[str, Any]], processes: list[sandbox.Completed]) -> None:
    """Predict ``archs``, each within the job's ``predict_model_seconds`` of CPU work (the prediction sandbox's
    CPU time / threads, as the notebook's limits count) and its wall-clock backstop; a model that overruns or
    blows the memory limit is killed and recorded, and a fresh process goes on with the models not yet started."""
    pending = list(archs)
    model_seconds = predictor.job.config.predict_model_seconds
    backstop = predictor.job.backstop_factor * model_seconds
    while pending and time.monotonic() < deadline:
        running = (None if classes else predictor.take_first()) or predictor.start(pending, classes=classes)
        running.release(b"go\n")
        current, since, since_work, timed_out = None, 0.0, 0.0, False
        while running.proc.poll() is None:
            now, work = time.monotonic(), running.dog.clock.work_seconds()
            started = [a for a in pending if _regular_file(out / contract.STARTED_FILE.format(arch=a))
                       and not _regular_file(out / contract.SUMMARY_FILE.format(arch=a))]
            if started and started[0] != current:
                current, since, since_work = started[0], now, work
            if now > deadline or (current is not None and (work - since_work > model_seconds
                                                           or now - since > backstop)):
                timed_out = True
                running.cancel()
                break
            time.sleep(PREDICT_POLL_SECONDS)
        done = running.wait()
        processes.append(done)
        stop = "wall_budget" if timed_out else done.stopped or "crashed"
        progressed = False
        for arch in list(pending):
            if _regular_file(out / contract.SUMMARY_FILE.format(arch=arch)):
                outcomes[arch] = {"outcome": "predicted", "stopped": None}
            elif _regular_file(out / contract.STARTED_FILE.format(arch=arch)):
                outcomes[arch] = {"outcome": "stopped", "stopped": stop}
                _write_stopped_summary(out, arch, stop)
            else:
                continue
            pending.remove(arch)
            progressed = True
        if not progressed:  # the process died before any model started: no fresh process would do better
            break
    for arch in pending:
        stop = "wall_budget" if time.monotonic() >= deadline else "crashed"
        outcomes[arch] = {"outcome": "stopped", "stopped": stop}
        _write_stopped_summary(out, arch, stop)


STOP_MESSAGES = {"memory": "it used more than the memory limit while predicting",
                 "wall_budget": "predicting took longer than its time budget",
                 "disk": "it wrote more than the disk limit while predicting",
                 "crashed": "the prediction process died"}


def _write_stopped_summary(out: Path, arch: str, stop: str) -> None:
    """The trusted side's record of a model it stopped (replacing whatever the sandbox left)."""
    path = out / contract.SUMMARY_FILE.format(arch=arch)
    path.unlink(missing_ok=True)
    path.write_text(json.dumps({"arch": arch, "error": f"the model was stopped: {STOP_MESSAGES[stop]}",
                                "stopped": stop}))


def _adopt_class_predictions(job: Job, archs: list[str], image_sets: list[str]) -> None:
    """Move the subclassed models' files into the predictions dir; only their expected names, only plain files."""
    for arch in archs:
        names = [contract.SUMMARY_FILE.format(arch=arch)]
        names += [contract.PREDICTIONS_FILE.format(arch=arch, image_set=s) for s in image_sets]
        names += [contract.ABLATED_FILE.format(arch=arch, image_set=s) for s in image_sets]
        for name in names:
            source, target = job.class_predictions / name, job.predictions / name
            if _regular_file(source) and not target.exists():
                os.replace(source, target)


def predict(predictor: Predictor, *, notebook_seconds: float = 0.0) -> dict[str, Any]:
    """Predict every exported model, each with its own budget, and report each outcome.

    Stock models run first in the process started beside the notebook; subclassed ones in a fresh
    process of their own that gets the notebook's class definitions. The whole run is bounded by what
    is left of the notebook's budget (``notebook_seconds`` of CPU work used of ``limits.wall_seconds``), but
    never less than one model's budget, so a notebook that used all its time still has its models measured;
    in wall time, times the job's backstop factor (each model's own limit counts CPU work).
    """
    job = predictor.job
    started = time.monotonic()
    budget = max(job.config.predict_model_seconds, job.spec.limits.wall_seconds - notebook_seconds)
    deadline = started + job.backstop_factor * min(budget, job.config.predict_max_seconds)
    stock, subclassed = exported_models(job)
    outcomes: dict[str, dict[str, Any]] = {}
    processes: list[sandbox.Completed] = []
    if stock:
        _run_models(predictor, stock, job.predictions, deadline, classes=False, outcomes=outcomes,
                    processes=processes)
    predictor.cancel()  # not released when only subclassed models (or none) were exported
    if subclassed:
        notebook = job.inputs / "submission.ipynb"
        source = class_source(nbformat.read(notebook, as_version=4)) if notebook.is_file() else ""
        (job.inputs / contract.CLASS_SOURCE).write_text(source)
        (job.inputs / contract.CLASS_SOURCE).chmod(0o644)
        _run_models(predictor, subclassed, job.class_predictions, deadline, classes=True, outcomes=outcomes,
                    processes=processes)
        _adopt_class_predictions(job, subclassed, [arg.split("=", 1)[0] for arg in predictor.image_sets])
    return {"seconds": round(time.monotonic() - started, 3), "processes": len(processes),
            "stopped": next((o["stopped"] for o in outcomes.values() if o["stopped"]), None),
            "peak_rss_mb": max((p.peak_rss_mb for p in processes), default=0.0),
            "returncode": processes[-1].returncode if processes else None, "models": outcomes}


def cleanup(job: Job) -> None:
    if job.confinement is not None:
        job.confinement.end()
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
