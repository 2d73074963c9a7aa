"""Batch grading for TAs: many submissions, in parallel, resumable, on this machine or a Dask cluster.

Layout of a RESULTS directory (see :mod:`autograder.output.store`)::

    results/<key>.json      one result per submission, written atomically and last (it marks "done")
    artifacts/<key>/        the sanitized submission, executed notebook, evidence for regrading, logs
    logs/<key>.log          one line per grading event of that submission
    batch.json              what was collected: students, files that could not be mapped, and the
                            intake decisions (:mod:`autograder.output.intake_record`); earlier runs
                            into the same RESULTS are kept under "previous"

``key`` = student id + the notebook's SHA-256 prefix, so a re-run skips what is done, a resubmission is
graded anew, a result whose evidence key differs (evaluation seed or settings, execution settings, the
code that runs or reads the notebook: :meth:`Assignment.evidence_key`) is executed again, and one whose
scoring key differs (thresholds, rubric, hidden tests, the grader's scoring code) is re-scored from its
stored evidence without executing the notebook again. A result with ``status: error`` (the grader failed
on it) is not done: it counts as failed and the next ``grade`` runs it again, as it does a result whose
evidence is gone; one whose re-scoring fails is kept as it was, with its artifacts, and counts as failed.
``--retry-failed`` also re-runs submissions that were stopped (time budget, memory, disk, kernel died),
e.g. after a busy night.
Everything a person supplies (source, roster, output folder, scheduler) is checked before anything is
written.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import multiprocessing

from tqdm import tqdm

from autograder.assignment import Assignment, Key
from autograder.data import keras_cache_source
from autograder.intake.inputs import InputError
from autograder.intake.layouts import Submission
from autograder.intake.roster import read_roster
from autograder.intake.submissions import collect
from autograder.output.intake_record import BATCH_RECORD, record_fields, result_student_id
from autograder.output.store import Store, check_output_folder, open_results, require_current_evidence
from autograder.pipeline.grade_one import EvidenceUnusable, base_result, grade_into, regrade, rejected_result
from autograder.results import atomic_write_text, read_result, write_result
from autograder.run.sandbox.bwrap import check_available
from autograder.score.report.analysis import template_markdown

#: Stop reasons that depend on the machine as much as on the notebook: ``--retry-failed`` re-runs them.
RETRIED_STOPS = ("wall_budget", "memory", "disk", "kernel_died")
#: Seconds to reach a Dask scheduler before saying it cannot be reached.
SCHEDULER_TIMEOUT = 5


def submission_key(submission: Submission) -> str:
    """Stable, filesystem-safe and unique per (student, notebook content)."""
    who = re.sub(r"[^A-Za-z0-9_.-]+", "_", submission.student_id or f"unmapped_{submission.source_name}")[:80]
    digest = hashlib.sha256(submission.path.read_bytes()).hexdigest()[:12] if submission.path else "none"
    return f"{who}-{digest}"


def student_info(submission: Submission) -> dict[str, Any]:
    return {"student_id": result_student_id(submission.student_id, submission.source_name),
            "student_name": submission.student_name, "late": submission.late,
            "submitted_at": submission.submitted_at, "submitted_name": submission.submitted_name,
            "canvas_id": submission.canvas_id}


def grade_task(path: str, assignment_dir: str, result_path: str, artifacts: str, sandboxed: bool,
               student: dict[str, Any]) -> dict[str, Any]:
    """One submission, run in a worker process (local pool or Dask worker); returns a short summary."""
    from autograder.assignment import load_assignment

    assignment = load_assignment(assignment_dir)
    artifacts_path, result_path = Path(artifacts), Path(result_path)
    shutil.rmtree(artifacts_path, ignore_errors=True)  # leftovers of a run that was killed
    log = functools.partial(Store(result_path.parent.parent).log, result_path.stem)  # RESULTS/logs/<key>.log
    result = grade_into(path, assignment, result_path, artifacts_path, sandboxed=sandboxed, student=student,
                        log=log)
    return {"score": result["score"], "status": result["status"], "reason": result["reason"],
            "seconds": (result.get("execution") or {}).get("seconds")}


class Executor:
    """Where grading tasks run. ``submit`` returns a future; ``completed`` yields them as they finish."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    def completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class LocalExecutor(Executor):
    """A process pool on this machine (forkserver: workers start clean, without the parent's threads)."""

    def __init__(self, jobs: int) -> None:
        self.pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("forkserver"))

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        return self.pool.submit(fn, *args)

    def completed(self, futures: Iterable[Future]) -> Iterator[Future]:
        from concurrent.futures import as_completed

        return as_completed(list(futures))

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(Executor):
    """A dask.distributed cluster; workers need the submissions, assignment and RESULTS on a shared path."""

    def __init__(self, scheduler: str) -> None:
        from distributed import Client

        try:  # fail fast on a wrong address, before anything is written
            self.client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise InputError(f"--scheduler {scheduler}: no Dask scheduler answered within "
                             f"{SCHEDULER_TIMEOUT} s ({type(exc).__name__}: {str(exc)[:200]})") from None

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        # pure=False: two gradings of one notebook are two runs; retries would re-run untrusted code.
        return self.client.submit(fn, *args, pure=False, retries=0)

    def completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        from distributed import as_completed

        return as_completed(list(futures))

    def close(self) -> None:
        self.client.close()


def write_batch_manifest(store: Store, source: Path, assignment: Assignment, submissions: list[Submission],
                         only: list[str] | None = None) -> None:
    """This run's record of everything collected (``--only`` chooses what is graded, not what intake saw);
    the records of earlier runs into the same RESULTS are kept, never overwritten."""
    path = store.root / BATCH_RECORD
    previous: list[dict[str, Any]] = []
    if path.is_file():
        try:
            earlier = json.loads(path.read_text(encoding="utf-8"))
            previous = [*earlier.pop("previous", []), earlier]
        except (OSError, ValueError):
            previous = [{"unreadable_record": path.read_bytes()[:10_000].decode("utf-8", "replace")}]
    unmapped = [s.source_name for s in submissions if s.student_id is None]
    payload = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "source": str(Path(source).resolve()),
               "assignment": str(assignment.root),
               "submissions": [{**asdict(s), "path": str(s.path) if s.path else None} for s in submissions],
               "unmapped": unmapped, **record_fields(submissions), "only": only or None, "previous": previous}
    atomic_write_text(path, json.dumps(payload, indent=1, default=str))


def only_these(submissions: list[Submission], only: list[str]) -> list[Submission]:
    """The submissions of the students (ids, result keys or file names) named by ``--only``."""
    def names(s: Submission) -> set[str]:
        return {s.student_id or "", submission_key(s), s.source_name} - {""}

    unknown = [name for name in only if not any(name in names(s) for s in submissions)]
    if unknown:
        raise InputError(f"--only: no submission from {', '.join(unknown)} in this batch")
    return [s for s in submissions if names(s) & set(only)]


def grade_batch(source: str | Path, assignment_dir: str | Path | Assignment, out: str | Path, *,
                jobs: int | None = None, scheduler: str | None = None, roster: Any = None,
                sandboxed: bool = True, progress: bool = True, only: list[str] | None = None,
                retry_failed: bool = False) -> dict[str, int]:
    """Grade every submission in ``source`` into ``out``; returns counts by outcome.

    Every input is checked before RESULTS is touched: a problem raises an ``InputError`` (or a set-up
    error) and leaves an earlier batch's files as they were.
    """
    from autograder.assignment import load_assignment

    assignment = assignment_dir if isinstance(assignment_dir, Assignment) else load_assignment(assignment_dir)
    jobs = jobs or max(1, (os.cpu_count() or 1) // assignment.execution.threads)
    if roster is not None and not hasattr(roster, "columns"):
        roster = read_roster(roster)
    store = Store(check_output_folder(out).resolve())
    # Set-up problems stop the batch here, once, instead of failing every submission.
    assignment.thresholds(), assignment.evaluation_seed(), template_markdown(assignment), keras_cache_source()
    if sandboxed:
        check_available()
    workdir = Path(tempfile.mkdtemp(prefix="autograder-batch-"))
    executors: list[Executor] = []

    def executor() -> Executor:  # a local pool only when something must run; a cluster is reached first
        if not executors:
            executors.append(DaskExecutor(scheduler) if scheduler else LocalExecutor(jobs))
        return executors[0]

    try:
        collected = collect(source, workdir=workdir, roster=roster, notebook_name=assignment.student_notebook)
        submissions = only_these(collected, only) if only else collected
        if scheduler:
            executor()
        assignment.warn_if_public_seed()
        store.root.mkdir(parents=True, exist_ok=True)
        write_batch_manifest(store, Path(source), assignment, collected, only)
        changed = True  # until shown otherwise: a batch stopped half way has changed results too
        try:
            counts = _grade(store, submissions, assignment, executor, sandboxed=sandboxed, progress=progress,
                            retry_failed=retry_failed)
            changed = counts["skipped"] < len(submissions)
            return counts
        finally:
            if changed:  # reports written before no longer match the results
                store.remove_reports()
    finally:
        for pool in executors:
            pool.close()
        shutil.rmtree(workdir, ignore_errors=True)


def needs_run(store: Store, key: str, stored: dict[str, Any], retry_failed: bool, evidence: Key) -> str | None:
    """Why a stored result must be graded again, executing the notebook (None: it stands, perhaps after a
    regrade): the grader failed on it, its evidence was produced under another evidence key, or
    ``--retry-failed`` and it was stopped."""
    if stored.get("status") == "error":
        return "the grader failed on it last time"
    changed = store.evidence_changes(key, stored, evidence)
    if changed:
        return f"its evidence was produced under other settings ({', '.join(changed[:3])} changed)"
    stopped = (stored.get("execution") or {}).get("stopped")
    if retry_failed and stopped in RETRIED_STOPS:
        return f"--retry-failed: it was stopped ({stopped})"
    return None


def _grade(store: Store, submissions: list[Submission], assignment: Assignment,
           executor_for: Callable[[], Executor], *, sandboxed: bool, progress: bool,
           retry_failed: bool = False) -> dict[str, int]:
    counts = {"graded": 0, "skipped": 0, "regraded": 0, "rejected": 0, "failed": 0}
    scoring, evidence = assignment.scoring_key().sha256, assignment.evidence_key()
    todo: list[tuple[str, Submission]] = []
    for submission in submissions:
        key = submission_key(submission)
        if store.result(key).exists():
            stored = read_result(store.result(key))
            again = needs_run(store, key, stored, retry_failed, evidence)
            if again is None and stored["assignment"]["bundle_sha256"] == scoring:
                counts["skipped"] += 1
                continue
            if again is None:
                try:
                    regrade(store.result(key), store.artifacts(key), assignment, (evidence.sha256, scoring))
                    store.log(key, "regraded from stored evidence (scoring key changed)")
                    counts["regraded"] += 1
                    continue
                except EvidenceUnusable as exc:  # nothing left to score: only running it again cures that
                    again = f"it cannot be re-scored: {exc}"
                except Exception as exc:  # the grader's own fault: the result and its evidence stay as they were
                    store.log(key, f"grader error while re-scoring (result kept, still stale):\n"
                                   f"{traceback.format_exc().rstrip()}")
                    logging.getLogger("autograder").warning(
                        "%s: grader error while re-scoring (%s); the result is kept, see %s", key,
                        type(exc).__name__, store.log_path(key))
                    counts["failed"] += 1
                    continue
            store.log(key, f"grading again: {again}")
        if submission.path is None:
            result = base_result(Path(submission.source_name), assignment, None, student_info(submission), sandboxed,
                                 evidence)
            write_result(store.result(key), rejected_result(result, assignment, submission.reason or "no_notebook",
                                                            "; ".join(submission.problems)))
            store.log(key, f"rejected: {submission.reason}")
            counts["rejected"] += 1
            continue
        todo.append((key, submission))

    if not todo:
        return counts
    executor = executor_for()
    futures = {}
    for key, submission in todo:
        store.log(key, f"executing {submission.path}")
        future = executor.submit(grade_task, str(submission.path.resolve()), str(assignment.root),
                                 str(store.result(key)), str(store.artifacts(key)), sandboxed,
                                 student_info(submission))
        futures[future] = key
    bar = tqdm(total=len(futures), desc="grading", unit="nb", disable=not progress)
    for future in executor.completed(futures):
        key = futures[future]
        try:
            summary = future.result()
            outcome = {"rejected": "rejected", "error": "failed"}.get(summary["status"], "graded")
            counts[outcome] += 1
            store.log(key, f"done: {json.dumps(summary)}")
            if summary["reason"]:
                bar.write(f"{key}: {summary['reason']} (score {summary['score']:g})")
        except Exception as exc:  # the grader failed on this one: record it, keep going
            counts["failed"] += 1
            store.log(key, f"grader error: {type(exc).__name__}: {exc}")
            bar.write(f"{key}: grader error: {type(exc).__name__}: {exc}")
        bar.update(1)
        bar.set_postfix({k: v for k, v in counts.items() if v})
    bar.close()
    return counts


# --- regrading ------------------------------------------------------------------------------------

@dataclass
class RegradeReport:
    """What ``regrade`` changed: one row per re-scored result; results it passed over, with why."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    passed_over: list[tuple[str, str]] = field(default_factory=list)  # (key, note)
    not_rescored: int = 0  # graded results whose evidence could not be re-scored
    removed_reports: list[Path] = field(default_factory=list)  # gradebook, exports, pages written before

    def table(self) -> str:
        lines = [f"{'student':<24} {'old total':>9} {'new total':>9}  checks that moved"]
        for row in self.rows:
            moved = ", ".join(row["moved"]) or "-"
            lines.append(f"{row['student'][:24]:<24} {row['old']:>9.4g} {row['new']:>9.4g}  {moved}")
        return "\n".join(lines)


def check_scores(result: dict[str, Any]) -> dict[str, float]:
    return {f"{q['id']}.{c['name']}": float(c.get("score") or 0.0)
            for q in result.get("questions") or [] for c in q.get("checks") or []}


def regrade_all(out: str | Path, assignment: Assignment | str | Path) -> RegradeReport:
    """Re-score every stored result against the current assignment, executing nothing.

    Refused (:class:`ResultsError`, nothing written) when any result's evidence was produced under another
    evidence key: only ``grade`` cures that. A result the grader failed on (``status: error``) is listed as
    passed over (``grade`` runs it again). A result that cannot be re-scored (evidence gone, or the
    grader's own fault) is left as it was, with its artifacts, and listed too, the traceback in its log.
    Each re-scored result records this assignment; report files written before are removed.
    """
    from autograder.assignment import load_assignment

    assignment = assignment if isinstance(assignment, Assignment) else load_assignment(assignment)
    template_markdown(assignment)  # an assignment that cannot score is one error, not a note per result
    store = open_results(out)
    results = store.load()
    require_current_evidence(store, results, assignment)
    keys = (assignment.evidence_key().sha256, assignment.scoring_key().sha256)
    report = RegradeReport()
    for key, before in results.items():
        student = str((before.get("submission") or {}).get("student_id") or key)
        try:
            after = regrade(store.result(key), store.artifacts(key), assignment, keys)
        except Exception as exc:  # evidence unusable, or the grader's own fault: say so, keep it, keep going
            store.log(key, f"not re-scored, the result is kept:\n{traceback.format_exc().rstrip()}")
            what = str(exc)[:300] if isinstance(exc, EvidenceUnusable) else \
                f"the grader failed re-scoring it ({type(exc).__name__}; traceback in {store.log_path(key)})"
            report.passed_over.append((key, f"not re-scored, {what}; the result is kept as it was"))
            report.not_rescored += 1
            continue
        store.log(key, "regraded")
        if before.get("status") == "error":
            report.passed_over.append((key, "not re-scored: the grader failed on it (status error); "
                                            "`autograder grade` runs it again"))
            continue
        old, new = check_scores(before), check_scores(after)
        moved = [f"{name} {old.get(name, 0):g}->{new.get(name, 0):g}" for name in sorted(old.keys() | new.keys())
                 if abs(old.get(name, 0.0) - new.get(name, 0.0)) > 1e-9]
        report.rows.append({"key": key, "student": student, "old": float(before.get("score") or 0.0),
                            "new": float(after.get("score") or 0.0), "moved": moved})
    report.removed_reports = store.remove_reports()
    return report


# --- command line ---------------------------------------------------------------------------------
