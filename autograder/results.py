"""The result of grading one submission: a versioned, documented JSON schema, written atomically.

Schema (``schema_version`` 1), one JSON object per submission::

    schema_version   1
    submission       {path, sha256, student_id, student_name, late, submitted_at,
                      submitted_name (the notebook's name as submitted), canvas_id (Canvas downloads)}
    assignment       {name, bundle_sha256, root (the assignment folder graded with)}
    status           "graded" | "rejected" (intake refused it) | "error" (the grader failed: a failure,
                     re-run by the next ``grade``)
    reason           null or a reason code (see REASONS), the main thing that went wrong
    message          one short, student-facing sentence about ``reason``
    sandboxed        false only under --unsafe-no-sandbox
    isolation        "bubblewrap" | "container-uid" (no namespaces: separate uids, see isolation.py) | "none"
                     (--unsafe-no-sandbox) | null (intake refused it: nothing ran)
    score, max_score points after checks (overrides and late penalties live in the gradebook)
    questions        [{id, title, score, max_score, status, message, checks: [...]}]
                     check: {name, score, max_score, passed, status, message, detail}
                     check status: "passed" | "partial" | "failed" | "not_assessed" (its inputs are missing,
                     e.g. no such model) | "needs_review" (the work is there but the grader cannot judge
                     it, e.g. a model that will not rebuild: 0 points until a person looks) | "grader_error";
                     a question is "needs_review" when any of its checks is.
                     ``message`` is for the student; ``detail`` is for TAs only.
    review           [{kind, ...}]   what a person must look at; empty when none. Checks: {kind: "needs_review" |
                     "grader_error", question, check, reason}
    models           {arch: {found, variable, found_by, class_name, subclassed, error, params, param_budget,
                             input (what the author fed it), fed (how the grader fed it: scale, offset, shape,
                             pad), training (fit_calls, fit_steps, training_steps, weights_moved),
                             accuracy (on ``eval``), public_accuracy, threshold_full, threshold_zero}}
    integrity        {arch: {rule: {passed: true | false | null, message, evidence: {...}}}}   per model with
                     predictions; rules in autograder.integrity (trained, not_trained_on_test, generalises,
                     does_the_work, distinct); false: flagged, no accuracy points; null: not measured
    data             {roles: {role: {variable, found_by, dtype, shape, ...}}, validation: {kind, fraction,
                      variable}, confusion: null | {index, variable, closest, moved}, confusion_candidates}
    execution        {seconds, budget_seconds, cells: [{index, seconds, status, error, diagnosis}],
                      stopped: null | "wall_budget" | "memory" | "kernel_died" | ...,
                      output_truncated, peak_rss_mb,
                      containment: {memory, processes, syscalls, disk, oom_kills, pids_refused}}
                     (which mechanism held each limit, see SECURITY.md)
    diagnoses        [{code, title, advice, cell, cell_number, caused_by, because, dependents}]
                     from autograder.diagnose (one card per root cause; knock-ons point at it)
    review           [{arch, code, variable, cell_number, text}]   trained models that earned
                     nothing, from autograder.review; non-empty gives reason "models_to_review"
                     when nothing else went wrong
    notes            [str]   TA-facing: intake notes, exported files that were rejected, the export's own errors
    timings          {stage: seconds}
    grader           {version, graded_at}
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

#: Reason codes, each with the student-facing message used when no better one is known.
REASONS: dict[str, str] = {
    "invalid_notebook": "The file is not a readable Jupyter notebook.",
    "too_large": "The submission is larger than the size limit.",
    "no_notebook": "No notebook was found in the submission.",
    "multiple_notebooks": "The submission holds more than one notebook; submit exactly one.",
    "unsupported_nbformat": "The notebook format version is not supported; save it with Jupyter 4+.",
    "wall_budget": "The notebook ran past its time budget and was stopped.",
    "memory": "The notebook used more memory than allowed and was stopped.",
    "disk": "The notebook wrote more data to disk than allowed and was stopped.",
    "kernel_died": "The Python kernel crashed or exited while running the notebook.",
    "kernel_protocol": "The notebook's kernel sent the grader a message it could not read, so the run was stopped.",
    "cell_errors": "Some cells raised errors; the questions that depend on them were not assessed.",
    "export_failed": "The grader could not read your models after the notebook ran.",
    "models_to_review": "A model your notebook trained earned no points or could not be fully assessed; your instructor will review it.",
    "grader_error": "The grader itself failed on this submission; your instructor has been told.",
}


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` so readers see the old file or the whole new one, never a torn write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results and pages are meant to be read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_result(path: str | os.PathLike, result: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(result, indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_result(path: str | os.PathLike) -> dict[str, Any]:
    result = json.loads(Path(path).read_text(encoding="utf-8"))
    if result.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: result schema {result.get('schema_version')} is not {SCHEMA_VERSION}")
    return result
