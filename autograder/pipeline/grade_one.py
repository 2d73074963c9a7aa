"""Grade one submission: intake -> sandboxed run (Phase A) -> evidence -> hidden tests (Phase B) -> result.

``grade_one`` writes ``OUT/result.json`` (schema: ``autograder/schemas/result.schema.json``) and ``OUT/artifacts/``:
the sanitized submission, the executed notebook (outputs capped), the validated evidence that regrading
re-scores without running anything, and the logs.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import nbformat
import numpy as np

from autograder import __version__
from autograder.assignment import Assignment, AssignmentError, Key, save_evidence_key
from autograder.data import DataError
from autograder.intake.notebook import PRINTED_FILE, load_printed, read_notebook, save_printed
from autograder.intake.printed import PrintedAccuracy
from autograder.output.store import Store
from autograder.pipeline.evidence import evaluation_images, keras_cache_file, run_phase_a
from autograder.results import REASONS, SCHEMA_VERSION, read_result, write_result
from autograder.run import isolation
from autograder.run.kernel_session import ExecutionRecord
from autograder.run.output_cap import OutputCapFault
from autograder.run.sandbox.spec import SandboxUnavailable
from autograder.score import integrity
from autograder.score.accuracy import closest_confusion
from autograder.score.artifacts import Evidence, stored_evidence
from autograder.score.diagnose.matcher import diagnose
from autograder.score.diagnose.table import load_table
from autograder.score.hidden import review_list, run_checks
from autograder.score.lost_models import mark_lost_models
from autograder.score.report.analysis import analyze_report, report_markdown, template_markdown

ARTIFACTS = "artifacts"
#: Where a grader fault's traceback goes: a TA log line (``Store.log`` of the result's key), never the result.
Log = Callable[[str], None]


class GraderFault(RuntimeError):
    """The grader's own scoring failed on this submission (a hidden test's bug included): never a grade."""


class EvidenceUnusable(RuntimeError):
    """A stored result's evidence is missing or unreadable: only running the notebook again cures it."""


class EvidenceStale(RuntimeError):
    """A stored result's evidence was produced under another evidence key: the notebook must run again."""


def _submission_block(path: Path, sha256: str | None, student: dict[str, Any] | None) -> dict[str, Any]:
    student = student or {}
    return {"path": str(path), "sha256": sha256, "student_id": student.get("student_id") or path.stem,
            "student_name": student.get("student_name"), "late": bool(student.get("late", False)),
            "submitted_at": student.get("submitted_at"),
            "submitted_name": student.get("submitted_name") or path.name, "canvas_id": student.get("canvas_id")}


def base_result(path: Path, assignment: Assignment, sha256: str | None, student: dict | None,
                sandboxed: bool, evidence_key: Key | None = None) -> dict[str, Any]:
    evidence_key = evidence_key or assignment.evidence_key()
    return {"schema_version": SCHEMA_VERSION,
            "submission": _submission_block(path, sha256, student),
            "assignment": {"name": assignment.name, "bundle_sha256": assignment.scoring_key().sha256,
                           "evidence_sha256": evidence_key.sha256, "root": str(assignment.root)},
            "status": "graded", "reason": None, "message": "", "sandboxed": sandboxed,
            "score": 0.0, "max_score": assignment.max_score, "questions": [], "models": {}, "data": {},
            "integrity": {}, "review": [], "isolation": None,  # None: nothing ran (yet)
            "execution": None, "diagnoses": [], "notes": [], "export_errors": [], "timings": {},
            "grader": {"version": __version__,
                       "graded_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}}


def rejected_result(result: dict[str, Any], assignment: Assignment, reason: str, message: str,
                    status: str = "rejected") -> dict[str, Any]:
    """Every question at zero, with the reason: one row in the gradebook, never a crash."""
    result.update(status=status, reason=reason, message=message or REASONS.get(reason, ""), score=0.0,
                  max_score=assignment.max_score)
    result["questions"] = [{"id": q.id, "title": q.title, "score": 0.0, "max_score": q.points,
                            "status": "not_assessed", "message": result["message"],
                            "checks": [{"name": c.test, "score": 0.0, "max_score": c.points, "passed": False,
                                        "status": "not_assessed", "message": result["message"], "detail": ""}
                                       for c in q.checks]} for q in assignment.questions]
    return result


def fixtures_for(assignment: Assignment, evidence: Evidence, notebook: Any,
                 printed: tuple[PrintedAccuracy, ...] = ()) -> dict[str, Any]:
    """The names hidden tests may ask for."""
    images = evaluation_images(assignment)
    labels = {name: image_set.labels.astype(np.int64) for name, image_set in images.sets.items()}
    calibration = assignment.calibration()
    models = evidence.models
    test_set = integrity.TestSet.of(images.public.images, labels["public"])
    findings = integrity.assess(models, labels, calibration, test_set, images.distorted.from_test,
                                assignment.allow_pretrained_weights)
    return {
        "assignment": assignment, "calibration": calibration, "thresholds": assignment.thresholds(calibration),
        "param_budgets": assignment.param_budgets(calibration),
        "models": models, "data": evidence.data, "validation": evidence.validation, "confusion": evidence.confusion,
        "best_model": evidence.best_model, "labels": labels,
        "integrity": findings,
        "flagged_architectures": frozenset(arch for arch, rules in findings.items() if integrity.flagged(rules)),
        "measured_accuracy": {a: m.accuracy("eval", labels["eval"]) for a, m in models.items()
                              if "eval" in m.predictions},
        "measured_public_accuracy": {a: m.accuracy("public", labels["public"]) for a, m in models.items()
                                     if "public" in m.predictions},
        "report": analyze_report(report_markdown(notebook), assignment),
        "printed_accuracies": printed,
    }


def models_block(fixtures: dict[str, Any]) -> dict[str, Any]:
    """What the grader found and measured per architecture, and how it fed each model."""
    block = {}
    for arch, model in fixtures["models"].items():
        threshold = fixtures["thresholds"][arch]
        block[arch] = {"found": model.found, "variable": model.variable, "found_by": model.found_by,
                       "class_name": model.class_name, "subclassed": model.subclassed, "error": model.error,
                       "params": (model.summary or {}).get("params"), "param_budget": fixtures["param_budgets"][arch],
                       "input": model.input, "fed": model.fed, "training": model.training,
                       "accuracy": fixtures["measured_accuracy"].get(arch),
                       "public_accuracy": fixtures["measured_public_accuracy"].get(arch),
                       "threshold_full": threshold.full, "threshold_zero": threshold.zero}
    return block


def data_block(evidence: Evidence, labels: dict[str, np.ndarray]) -> dict[str, Any]:
    """Which variable played each data role and the confusion matrix, and what they held (for the feedback)."""
    keep = ("variable", "found_by", "type", "dtype", "shape", "min", "max", "mean", "std", "labels", "error")
    match = closest_confusion(evidence.confusion, evidence.models, labels["public"])
    chosen = None if match is None else {"index": match.index, "variable": evidence.confusion[match.index].variable,
                                         "closest": match.arch, "moved": match.moved}
    return {"roles": {role: {k: probe.get(k) for k in keep if k in probe} for role, probe in evidence.data.items()},
            "validation": evidence.validation, "confusion": chosen,
            "confusion_candidates": [{"variable": c.variable, "found_by": c.found_by} for c in evidence.confusion]}


def score(result: dict[str, Any], assignment: Assignment, evidence: Evidence, notebook: Any,
          printed: tuple[PrintedAccuracy, ...] = ()) -> dict[str, Any]:
    """Phase B: run the hidden tests on the evidence and fill in scores (also used by regrade).

    A hidden test that raised (status ``grader_error``) raises :class:`GraderFault`: a fault of the
    grader is never part of a student's total."""
    fixtures = fixtures_for(assignment, evidence, notebook, printed)
    result["questions"] = run_checks(assignment, fixtures)
    faults = [f"{q['id']}.{c['name']}: {c['detail']}" for q in result["questions"] for c in q["checks"]
              if c["status"] == "grader_error"]
    if faults:  # a hidden test's own bug: the whole result is the grader's failure, not a lower grade
        raise GraderFault(f"hidden test failed: {'; '.join(faults)}"[:2000])
    result["models"] = models_block(fixtures)
    result["data"] = data_block(evidence, fixtures["labels"])
    result["integrity"] = integrity.as_block(fixtures["integrity"])
    result["review"] = review_list(result["questions"])
    result["score"] = round(sum(q["score"] for q in result["questions"]), 4)
    result["max_score"] = assignment.max_score
    return result


def overall_reason(execution: ExecutionRecord) -> str | None:
    if execution.stopped:
        return execution.stopped
    if any(cell.status in ("error", "timeout") for cell in execution.cells):
        return "cell_errors"
    if not execution.export_ran:
        return "export_failed"
    return None


def grade_one(path: str | Path, assignment: Assignment, out_dir: str | Path, *, sandboxed: bool = True,
              student: dict[str, Any] | None = None, work_root: str | Path | None = None) -> dict[str, Any]:
    """Grade the notebook at ``path``: ``out_dir/result.json``, ``out_dir/artifacts/`` and, when the grader
    fails, its traceback in ``out_dir/logs/<out_dir's name>.log``."""
    out_dir = Path(out_dir)
    log = functools.partial(Store(out_dir, single=True).log, out_dir.name)
    return grade_into(path, assignment, out_dir / "result.json", out_dir / ARTIFACTS, sandboxed=sandboxed,
                      student=student, work_root=work_root, log=log)


def default_log(line: str) -> None:
    logging.getLogger("autograder").error("%s", line)


def grader_error(result: dict[str, Any], assignment: Assignment, stage: str, fault: str, notes: list[str],
                 log: Log) -> dict[str, Any]:
    """``status: error``, reason ``grader_error``: the traceback goes to the TA log only; the result keeps one
    TA note naming the stage, and every question at zero stands for "not graded" (reports leave it blank)."""
    log(f"grader error in {stage}:\n{fault.rstrip()}")
    summary = (fault.strip().splitlines() or ["(no message)"])[-1]
    result = rejected_result(result, assignment, "grader_error", "", status="error")
    result["notes"] = [*notes, f"grader error in {stage}: {summary}"[:2000] + " (traceback in the TA log)"]
    return result


def grade_into(path: str | Path, assignment: Assignment, result_path: Path, artifacts: Path, *,
               sandboxed: bool = True, student: dict[str, Any] | None = None, work_root: str | Path | None = None,
               log: Log = default_log) -> dict[str, Any]:
    """Grade the notebook at ``path``; the result is written last, atomically, to ``result_path``.

    The evidence key it was produced under is stored beside the artifacts (:func:`save_evidence_key`).
    An exception in the grader's own code (intake, the run and its output capping, reading the export,
    scoring) gives ``status: error`` / ``grader_error`` with the traceback in ``log``, never a grade.
    """
    path = Path(path)
    started = time.monotonic()
    template_markdown(assignment)  # Phase B's own input: a set-up error is found before student code runs
    evidence_key = assignment.evidence_key()
    intake = read_notebook(path, assignment)
    result = base_result(path, assignment, intake.sha256, student, sandboxed, evidence_key)
    result["timings"]["intake"] = round(time.monotonic() - started, 3)
    if intake.reason == "grader_error":
        result = grader_error(result, assignment, "intake", intake.fault, intake.notes, log)
    elif not intake.ok:
        result = rejected_result(result, assignment, intake.reason, intake.message)
    if not intake.ok:
        write_result(result_path, result)
        return result
    level = isolation.choose(sandboxed)
    result["isolation"] = level
    artifacts.mkdir(parents=True, exist_ok=True)
    if level == isolation.CONTAINER_UID:  # no namespaces: the sandbox uids must find these closed
        isolation.require_private(keras_cache_file())
        result_path.parent.mkdir(parents=True, exist_ok=True)
        isolation.hide([assignment.root, result_path.parent, artifacts.parent, path.parent])
    nbformat.write(intake.notebook, artifacts / "submission.ipynb")
    save_printed(intake.printed, artifacts / PRINTED_FILE)

    try:
        execution, evidence = run_phase_a(intake.notebook, assignment, artifacts, level=level, work_root=work_root)
    except (SandboxUnavailable, AssignmentError, DataError):
        raise  # the set-up is wrong, not this submission: stop the batch and say why
    except Exception as exc:  # the grader failed on this submission: one row that says so
        stage = "output capping" if isinstance(exc, OutputCapFault) else "the run or reading its export"
        result = grader_error(result, assignment, stage, traceback.format_exc(), intake.notes, log)
        write_result(result_path, result)
        return result
    save_evidence_key(evidence_key, artifacts)

    result["execution"] = execution.as_dict()
    try:
        finish(result, assignment, execution, evidence, intake.notebook, intake.printed)
    except (AssignmentError, DataError):
        raise
    except Exception:  # noqa: BLE001 — a scoring fault: the evidence stays, the result says "not graded"
        result = grader_error(result, assignment, "scoring", traceback.format_exc(), intake.notes, log)
        write_result(result_path, result)
        return result
    result["notes"] = intake.notes + evidence.problems
    result["timings"]["total"] = round(time.monotonic() - started, 3)
    write_result(result_path, result)
    return result


def finish(result: dict[str, Any], assignment: Assignment, execution: ExecutionRecord, evidence: Evidence,
           notebook: Any, printed: tuple[PrintedAccuracy, ...]) -> None:
    """Phase B for a notebook that ran: scores, reason, review list, diagnoses, timings."""
    ex = assignment.execution
    checks_started = time.monotonic()
    score(result, assignment, evidence, notebook, printed)
    result["reason"] = overall_reason(execution)
    result["message"] = REASONS.get(result["reason"], "") if result["reason"] else "Graded."
    mark_lost_models(result, assignment.models)
    instructor_table = assignment.root / "diagnoses.toml"
    result["diagnoses"] = diagnose(result["execution"]["cells"], execution.stopped, {
        "budget": ex.wall_budget_seconds, "cell_timeout": ex.cell_timeout_seconds, "limit_mb": ex.memory_mb},
        table=load_table(instructor_table) if instructor_table.is_file() else None)
    result["export_errors"] = evidence.export_errors  # what the export step itself reported: untrusted text
    result["timings"].update(execution.timings, predict=execution.predict.get("seconds", 0.0),
                             checks=round(time.monotonic() - checks_started, 3))


def regrade(result_path: Path, artifacts: Path, assignment: Assignment,
            keys: tuple[str, str] | None = None) -> dict[str, Any]:
    """Re-score a graded submission from its stored evidence, without running any student code.

    Raises :class:`EvidenceStale` when the evidence was produced under another evidence key (the notebook
    must run again), :class:`EvidenceUnusable` when it is missing or unreadable; any other exception is
    the grader's own fault. In each case nothing is written: the stored result and its artifacts stay.
    On success the result records this assignment (its folder and scoring key). ``keys``: the assignment's
    (evidence key, scoring key) when the caller already has them (a batch computes them once).
    """
    evidence_key, scoring_key = keys or (assignment.evidence_key().sha256, assignment.scoring_key().sha256)
    result = read_result(result_path)
    if (result.get("assignment") or {}).get("evidence_sha256") != evidence_key:
        raise EvidenceStale(f"{result_path.name}: its evidence was produced under another evidence key")
    if result["status"] in ("rejected", "error"):  # nothing to re-score: zero rows under the new rubric
        result = rejected_result(result, assignment, result["reason"], result["message"], status=result["status"])
    else:
        try:
            evidence = stored_evidence(artifacts)
            notebook = nbformat.read(artifacts / "submission.ipynb", as_version=4)
        except Exception as exc:  # noqa: BLE001 — whatever is wrong with the stored files, they cannot be scored
            raise EvidenceUnusable(f"its stored evidence cannot be read ({type(exc).__name__}: "
                                   f"{str(exc)[:200]})") from exc
        score(result, assignment, evidence, notebook, load_printed(artifacts / PRINTED_FILE))
        mark_lost_models(result, assignment.models)
    result["assignment"].update(name=assignment.name, bundle_sha256=scoring_key, root=str(assignment.root))
    result["grader"]["regraded_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    write_result(result_path, result)
    return result
