"""Batch grading for TAs: many submissions, in parallel, resumable, on this machine or a Dask cluster.

Layout of a RESULTS directory::

    results/<key>.json      one result per submission, written atomically and last (it marks "done")
    artifacts/<key>/        the sanitized submission, executed notebook, evidence for regrading, logs
    logs/<key>.log          one line per grading event of that submission
    batch.json              what was collected: students, files that could not be mapped

``key`` = student id + the notebook's SHA-256 prefix, so a re-run skips what is done, a resubmission is
graded anew, and a result whose assignment bundle hash differs (thresholds, rubric, hidden tests
changed) is re-scored from its stored evidence without executing the notebook again.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import multiprocessing

from tqdm import tqdm

from autograder import sandbox
from autograder.assignment import Assignment, load_assignment
from autograder.data import keras_cache_source
from autograder.grade import base_result, grade_into, regrade, rejected_result
from autograder.results import atomic_write_text, read_result, write_result
from autograder.submissions import Submission, collect


def submission_key(submission: Submission) -> str:
    """Stable, filesystem-safe and unique per (student, notebook content)."""
    who = re.sub(r"[^A-Za-z0-9_.-]+", "_", submission.student_id or f"unmapped_{submission.source_name}")[:80]
    digest = hashlib.sha256(submission.path.read_bytes()).hexdigest()[:12] if submission.path else "none"
    return f"{who}-{digest}"


def student_info(submission: Submission) -> dict[str, Any]:
    return {"student_id": submission.student_id or f"unmapped:{submission.source_name}",
            "student_name": submission.student_name, "late": submission.late,
            "submitted_at": submission.submitted_at}


class Batch:
    """Paths of a RESULTS directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def result(self, key: str) -> Path:
        return self.root / "results" / f"{key}.json"

    def artifacts(self, key: str) -> Path:
        return self.root / "artifacts" / key

    def log(self, key: str, line: str) -> None:
        path = self.root / "logs" / f"{key}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")

    def result_paths(self) -> list[Path]:
        return sorted((self.root / "results").glob("*.json"))


def grade_task(path: str, assignment_dir: str, result_path: str, artifacts: str, sandboxed: bool,
               student: dict[str, Any]) -> dict[str, Any]:
    """One submission, run in a worker process (local pool or Dask worker); returns a short summary."""
    assignment = load_assignment(assignment_dir)
    artifacts_path = Path(artifacts)
    shutil.rmtree(artifacts_path, ignore_errors=True)  # leftovers of a run that was killed
    result = grade_into(path, assignment, Path(result_path), artifacts_path, sandboxed=sandboxed,
                        student=student)
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

        self.client = Client(scheduler)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        # pure=False: two gradings of one notebook are two runs; retries would re-run untrusted code.
        return self.client.submit(fn, *args, pure=False, retries=0)

    def completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        from distributed import as_completed

        return as_completed(list(futures))

    def close(self) -> None:
        self.client.close()


def write_batch_manifest(batch: Batch, submissions: list[Submission]) -> None:
    unmapped = [s.source_name for s in submissions if s.student_id is None]
    payload = {"submissions": [{**asdict(s), "path": str(s.path) if s.path else None} for s in submissions],
               "unmapped": unmapped}
    atomic_write_text(batch.root / "batch.json", json.dumps(payload, indent=1, default=str))


def grade_batch(source: str | Path, assignment_dir: str | Path, out: str | Path, *, jobs: int | None = None,
                scheduler: str | None = None, roster: str | Path | None = None, sandboxed: bool = True,
                progress: bool = True) -> dict[str, int]:
    """Grade every submission in ``source`` into ``out``; returns counts by outcome."""
    assignment = load_assignment(assignment_dir)
    jobs = jobs or max(1, (os.cpu_count() or 1) // assignment.execution.threads)
    # Set-up problems stop the batch here, once, instead of failing every submission.
    assignment.thresholds(), assignment.evaluation_seed(), keras_cache_source()
    if sandboxed:
        sandbox.check_available()
    batch = Batch(Path(out).resolve())
    batch.root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="autograder-batch-"))
    try:
        submissions = collect(source, workdir=workdir, roster=roster)
        write_batch_manifest(batch, submissions)
        return _grade(batch, submissions, assignment, jobs=jobs, scheduler=scheduler,
                      sandboxed=sandboxed, progress=progress)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _grade(batch: Batch, submissions: list[Submission], assignment: Assignment, *, jobs: int,
           scheduler: str | None, sandboxed: bool, progress: bool) -> dict[str, int]:
    counts = {"graded": 0, "skipped": 0, "regraded": 0, "rejected": 0, "failed": 0}
    bundle = assignment.bundle_sha256()
    todo: list[tuple[str, Submission]] = []
    for submission in submissions:
        key = submission_key(submission)
        if batch.result(key).exists():
            stored = read_result(batch.result(key))
            if stored["assignment"]["bundle_sha256"] == bundle:
                counts["skipped"] += 1
            else:
                regrade(batch.result(key), batch.artifacts(key), assignment)
                batch.log(key, "regraded from stored evidence (assignment bundle changed)")
                counts["regraded"] += 1
            continue
        if submission.path is None:
            result = base_result(Path(submission.source_name), assignment, None, student_info(submission), sandboxed)
            write_result(batch.result(key), rejected_result(result, assignment, submission.reason or "no_notebook",
                                                            "; ".join(submission.problems)))
            batch.log(key, f"rejected: {submission.reason}")
            counts["rejected"] += 1
            continue
        todo.append((key, submission))

    if not todo:
        return counts
    executor = DaskExecutor(scheduler) if scheduler else LocalExecutor(jobs)
    futures = {}
    try:
        for key, submission in todo:
            batch.log(key, f"executing {submission.path}")
            future = executor.submit(grade_task, str(submission.path.resolve()), str(assignment.root),
                                     str(batch.result(key)), str(batch.artifacts(key)), sandboxed,
                                     student_info(submission))
            futures[future] = key
        bar = tqdm(total=len(futures), desc="grading", unit="nb", disable=not progress)
        for future in executor.completed(futures):
            key = futures[future]
            try:
                summary = future.result()
                counts["rejected" if summary["status"] == "rejected" else "graded"] += 1
                batch.log(key, f"done: {json.dumps(summary)}")
                if summary["reason"]:
                    bar.write(f"{key}: {summary['reason']} (score {summary['score']:g})")
            except Exception as exc:  # the grader failed on this one: record it, keep going
                counts["failed"] += 1
                batch.log(key, f"grader error: {type(exc).__name__}: {exc}")
                bar.write(f"{key}: grader error: {type(exc).__name__}: {exc}")
            bar.update(1)
            bar.set_postfix({k: v for k, v in counts.items() if v})
        bar.close()
    finally:
        executor.close()
    return counts


def regrade_all(out: str | Path, assignment_dir: str | Path) -> int:
    """Re-score every stored result against the current assignment, executing nothing."""
    assignment = load_assignment(assignment_dir)
    batch = Batch(Path(out))
    paths = batch.result_paths()
    for path in paths:
        regrade(path, batch.artifacts(path.stem), assignment)
        batch.log(path.stem, "regraded")
    return len(paths)


def configure_grade(parser: Any) -> None:
    parser.add_argument("submissions", type=Path,
                        help="folder, .zip, Canvas bulk download or Gradescope export of submissions")
    parser.add_argument("--assignment", type=Path, default=Path("assignments/mnist"))
    parser.add_argument("--out", type=Path, required=True, help="RESULTS directory")
    parser.add_argument("-j", "--jobs", type=int,
                        help="submissions graded at once (default: cores / the assignment's threads per "
                             "notebook, so TensorFlow jobs do not fight over cores)")
    parser.add_argument("--scheduler", help="dask.distributed scheduler address, e.g. tcp://host:8786")
    parser.add_argument("--roster", type=Path, help="CSV with student_id,name[,email] to map files to students")
    parser.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="UNSAFE: run submissions unsandboxed with the grader's rights")


def run_grade(args: Any) -> int:
    try:
        counts = grade_batch(args.submissions, args.assignment, args.out, jobs=args.jobs,
                             scheduler=args.scheduler, roster=args.roster, sandboxed=not args.unsafe_no_sandbox)
    except sandbox.SandboxUnavailable as exc:
        print(f"error: the sandbox cannot start: {exc}\nRefusing to run untrusted code.")
        return 2
    print(" ".join(f"{k}={v}" for k, v in counts.items()), f"results in {args.out}")
    return 1 if counts["failed"] else 0


def configure_regrade(parser: Any) -> None:
    parser.add_argument("results", type=Path, help="RESULTS directory of an earlier `autograder grade`")
    parser.add_argument("--assignment", type=Path, default=Path("assignments/mnist"))


def run_regrade(args: Any) -> int:
    started = time.monotonic()
    count = regrade_all(args.results, args.assignment)
    print(f"regraded {count} results in {time.monotonic() - started:.1f} s (no notebook executed)")
    return 0
