"""The kernel session: the notebook's cells, then the export step, in one sandboxed ipykernel.

The trusted process drives the kernel with nbclient's async client over ZeroMQ *ipc* sockets (TCP cannot
cross the sandbox's network namespace), caps the outputs it keeps while they stream (:mod:`.output_cap`),
and never reads a verdict from the kernel: cell status and tracebacks only feed diagnoses. After the
student's cells an export step (in the same kernel) saves the models as ``.keras`` files and plain
probes; then the kernel is killed, and :mod:`.prediction` predicts in a fresh sandbox.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import zmq.asyncio
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError

from autograder.run.job import Job, stage_notebook
from autograder.run.output_cap import MAX_MESSAGE_BYTES, QUEUED_MESSAGES, CappedNotebookClient, OutputCapFault
from autograder.run.sandbox.bwrap import bwrap_argv
from autograder.run.sandbox.containment import Containment
from autograder.run.sandbox.spec import prepare_writable_dir
from autograder.run.sandbox.watchdog import CpuClock, Watchdog

#: How often a running cell's limits are checked, in seconds (nbclient counts its wait in whole seconds).
LIMIT_POLL_SECONDS = 1


@dataclass
class CellRecord:
    index: int
    source: str
    status: str  # ok | error | timeout | not_run
    seconds: float = 0.0  # wall clock
    error: dict[str, Any] | None = None
    cpu_seconds: float = 0.0  # its CPU work (watchdog.CpuClock: CPU seconds / threads)
    limit: str | None = None  # a timeout's limit: cell_cpu | cpu_budget | wall_backstop

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "source": self.source, "status": self.status,
                "seconds": round(self.seconds, 3), "cpu_seconds": round(self.cpu_seconds, 3), "limit": self.limit,
                "error": self.error}


@dataclass
class CellLimits:
    """The limits of the student cell running now: CPU work (``clock``), and a wall-clock backstop that
    ends a cell that waits without working (sleeping, blocked)."""

    clock: CpuClock
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
    cpu_seconds: float = 0.0  # the cells' CPU work (watchdog.CpuClock), what the time limits count
    cpu_clock: str = ""  # where it was counted: cgroup-v1 | cgroup-v2 | process-tree
    budget_seconds: float = 0.0
    output_truncated: bool = False
    peak_rss_mb: float = 0.0
    export_ran: bool = False
    predict: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notebook: Any = None  # the executed notebook with capped outputs
    containment: dict[str, Any] = field(default_factory=dict)  # which mechanism held: Containment.describe()

    def as_dict(self) -> dict[str, Any]:
        return {"cells": [c.as_dict() for c in self.cells], "stopped": self.stopped, "stopped_by": self.stopped_by,
                "seconds": round(self.seconds, 3), "cpu_seconds": round(self.cpu_seconds, 3),
                "cpu_clock": self.cpu_clock, "budget_seconds": self.budget_seconds,
                "output_truncated": self.output_truncated, "peak_rss_mb": self.peak_rss_mb,
                "export_ran": self.export_ran, "predict": self.predict, "containment": self.containment}


class JobKernelManager(AsyncKernelManager):
    """The job's ipykernel, reached over ipc sockets in the job's ``ipc`` dir: inside bubblewrap when it has a
    ``containment``, else on the host (as the container level's uid, or as the grader: ``Job.host_argv``)."""

    def __init__(self, job: Job, containment: Containment | None, **kwargs: Any) -> None:
        super().__init__(kernel_name="python3", transport="ipc", ip=str(job.ipc / "k"),
                         connection_file=str(job.ipc / "kernel.json"), **kwargs)
        self.job, self.containment = job, containment

    @property
    def bubblewrap(self) -> bool:
        return self.containment is not None

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        if self.bubblewrap or self.job.uid_isolation is not None:
            prepare_writable_dir(self.job.ipc, self.job.spec)
            Path(self.connection_file).chmod(0o644)  # the kernel (another uid) must read it

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file,
                  "--IPKernelApp.exec_lines=['import autograder_inside.kernel_setup']",
                  "--HistoryManager.enabled=False"]
        if not self.bubblewrap:
            return self.job.host_argv(kernel, "kernel")
        # The kernel cannot see the grader's PID (own PID namespace), so no parent poller.
        return bwrap_argv(self.job.kernel_spec(), kernel, self.containment)

    @property
    def kernel_spec(self):  # noqa: D401 - the spec decides how interrupts are sent
        spec = super().kernel_spec
        if spec is not None:
            # SIGINT to bwrap would not reach the kernel; ask the kernel to interrupt itself.
            spec.interrupt_mode = "message"
        return spec


class LimitedNotebookClient(CappedNotebookClient):
    """The capped client that also stops a student cell at its limits (:class:`CellLimits`), polled while it
    runs: nbclient's timeout is the poll."""

    def __init__(self, nb: Any, max_output_bytes: int, **kwargs: Any) -> None:
        super().__init__(nb, max_output_bytes, **kwargs)
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


async def _run_cells(client: LimitedNotebookClient, nb: Any, execution: ExecutionRecord, budget: float,
                     cell_timeout: float, on_error: str, clock: CpuClock, backstop_factor: float) -> None:
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


async def _run_and_export(nb: Any, job: Job, km: AsyncKernelManager, kc: Any, dog: Watchdog,
                          execution: ExecutionRecord, *, budget: float, cell_timeout: float, on_error: str,
                          models: dict[str, str], probes: dict[str, str], max_output_bytes: int,
                          bubblewrap: bool) -> None:
    """The student's cells, then the export step, in the running kernel."""
    client = LimitedNotebookClient(nb, max_output_bytes, km=km, allow_errors=True,
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
        export_cell = nbformat.v4.new_code_cell(export_code(job.export_dir(bubblewrap), models, probes))
        nb.cells.append(export_cell)  # nbclient writes outputs back by index
        try:
            await client.async_execute_cell(export_cell, len(nb.cells) - 1, store_history=False)
        finally:
            nb.cells.pop()
        execution.export_ran = _error_of(export_cell) is None
        execution.timings["export"] = round(time.monotonic() - export_started, 3)
    except DeadKernelError:
        execution.stopped = dog.stopped or "kernel_died"
    except OutputCapFault:
        raise  # the grader's own code: grade_into records a grader error, not a stopped run
    except Exception:  # e.g. RecursionError on a message nested too deep: this notebook ends here, logs kept
        execution.stopped = dog.stopped or "kernel_protocol"
    execution.output_truncated = client.truncated


async def _execute(nb: Any, job: Job, *, budget: float, cell_timeout: float, on_error: str,
                   models: dict[str, str], probes: dict[str, str], max_output_bytes: int,
                   bubblewrap: bool) -> ExecutionRecord:
    execution = ExecutionRecord(budget_seconds=budget)
    stage_notebook(nb, job)
    containment = Containment.create(job.spec.limits) if bubblewrap else None
    km = JobKernelManager(job, containment)
    context = zmq.asyncio.Context()
    context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    context.setsockopt(zmq.RCVHWM, QUEUED_MESSAGES)
    log = open(job.root / "kernel.log", "wb")
    started = time.monotonic()
    kc = None
    try:
        if containment is not None:
            await km.start_kernel(stdout=log, stderr=log, pass_fds=containment.pass_fds)
            containment.started()
        else:
            await km.start_kernel(stdout=log, stderr=log, cwd=str(job.root), env=job.host_env())
        # The ipc directory is a host directory the kernel writes to: it counts as disk like the export.
        private = [job.uid_isolation.home("kernel")] if job.uid_isolation is not None else []
        config = job.config
        # The hard stops, after the cells' own: CPU work past the budget, or the wall-clock backstop.
        after_start = config.kernel_start_seconds + config.watchdog_grace_seconds
        dog = Watchdog(km.provisioner.pid, job.spec.limits, [job.export, job.ipc, *private],
                       wall_seconds=job.backstop_factor * budget + after_start,
                       cpu_seconds=budget + after_start, private_tmpfs=bubblewrap,
                       cgroup=containment.cgroup if containment else None)
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
                                      max_output_bytes=max_output_bytes, bubblewrap=bubblewrap)
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
        if containment is not None:
            execution.containment = containment.close()
        if job.uid_isolation is not None:  # nothing of the notebook may run on while the models are predicted
            job.uid_isolation.end_kernel(job)
    execution.seconds = round(time.monotonic() - started, 3)
    execution.notebook = nb
    return execution


def run_notebook(nb: Any, job: Job, **kwargs: Any) -> ExecutionRecord:
    """Execute ``nb`` (already sanitized by intake) in the sandbox and run the export step."""
    return asyncio.run(_execute(nb, job, **kwargs))
