"""Grade one submission: intake -> sandboxed run (Phase A) -> evidence -> hidden tests (Phase B) -> result.

``grade_one`` writes ``OUT/result.json`` (schema: ``autograder/schemas/result.schema.json``) and ``OUT/artifacts/``:
the sanitized submission, the executed notebook (outputs capped), the validated evidence that regrading
re-scores without running anything, and the logs.
"""
from __future__ import annotations

import datetime as dt
import functools
import time
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

from autograder import __version__
from autograder.assignment import Assignment, AssignmentError
from autograder.data import (DataError, EvaluationConfig, EvaluationImages, Mnist, keras_cache_source, load_mnist,
                             make_evaluation_images)
from autograder.intake.notebook import PRINTED_FILE, load_printed, read_notebook, save_printed
from autograder.output.diagnose import diagnose, load_table
from autograder.output.review import mark_lost_models
from autograder.results import REASONS, SCHEMA_VERSION, read_result, write_result
from autograder.run import execute, isolation, sandbox
from autograder.run.inside import contract
from autograder.score import integrity
from autograder.score.accuracy import closest_confusion
from autograder.score.artifacts import Evidence, load_evidence, save_evidence, stored_evidence
from autograder.score.hidden import review_list, run_checks
from autograder.score.report import PrintedAccuracy, analyze_report, report_markdown

ARTIFACTS = "artifacts"


@functools.lru_cache(maxsize=1)
def mnist_data() -> Mnist:
    return load_mnist()


@functools.lru_cache(maxsize=4)
def _evaluation_images(seed: int, config: EvaluationConfig) -> EvaluationImages:
    return make_evaluation_images(mnist_data(), seed=seed, config=config)


def evaluation_images(assignment: Assignment) -> EvaluationImages:
    """The grader's secret image sets (public, eval, train_sample, distorted), with their labels."""
    return _evaluation_images(assignment.evaluation_seed(), EvaluationConfig.from_assignment(assignment))


@functools.lru_cache(maxsize=1)
def keras_cache_file() -> Path:
    """The verified mnist.npz the sandbox mounts read-only as its Keras cache."""
    return keras_cache_source().resolve()


def _submission_block(path: Path, sha256: str | None, student: dict[str, Any] | None) -> dict[str, Any]:
    student = student or {}
    return {"path": str(path), "sha256": sha256, "student_id": student.get("student_id") or path.stem,
            "student_name": student.get("student_name"), "late": bool(student.get("late", False)),
            "submitted_at": student.get("submitted_at"),
            "submitted_name": student.get("submitted_name") or path.name, "canvas_id": student.get("canvas_id")}


def base_result(path: Path, assignment: Assignment, sha256: str | None, student: dict | None,
                sandboxed: bool) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION,
            "submission": _submission_block(path, sha256, student),
            "assignment": {"name": assignment.name, "bundle_sha256": assignment.bundle_sha256(),
                           "root": str(assignment.root)},
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
    """Phase B: run the hidden tests on the evidence and fill in scores (also used by regrade)."""
    fixtures = fixtures_for(assignment, evidence, notebook, printed)
    result["questions"] = run_checks(assignment, fixtures)
    result["models"] = models_block(fixtures)
    result["data"] = data_block(evidence, fixtures["labels"])
    result["integrity"] = integrity.as_block(fixtures["integrity"])
    result["review"] = review_list(result["questions"])
    result["score"] = round(sum(q["score"] for q in result["questions"]), 4)
    result["max_score"] = assignment.max_score
    return result


def overall_reason(execution: execute.ExecutionRecord) -> str | None:
    if execution.stopped:
        return execution.stopped
    if any(cell.status in ("error", "timeout") for cell in execution.cells):
        return "cell_errors"
    if not execution.export_ran:
        return "export_failed"
    return None


def grade_one(path: str | Path, assignment: Assignment, out_dir: str | Path, *, sandboxed: bool = True,
              student: dict[str, Any] | None = None, work_root: str | Path | None = None) -> dict[str, Any]:
    """Grade the notebook at ``path``: ``out_dir/result.json`` and ``out_dir/artifacts/``."""
    out_dir = Path(out_dir)
    return grade_into(path, assignment, out_dir / "result.json", out_dir / ARTIFACTS, sandboxed=sandboxed,
                      student=student, work_root=work_root)


def _phase_a(notebook_in: Any, assignment: Assignment, artifacts: Path, *, level: str,
             work_root: str | Path | None) -> tuple[execute.ExecutionRecord, Evidence]:
    """Run the notebook and the predictions in their sandboxes; return what they left, validated."""
    ex = assignment.execution
    limits = sandbox.Limits.from_execution(ex, wall_seconds=ex.wall_budget_seconds + ex.export_seconds)
    execute.remove_stale_jobs(work_root)  # left by a grader killed mid-job
    job = execute.Job.create(work_root, sandbox.SandboxSpec(limits=limits, keras_cache=keras_cache_file()),
                             public_tests=assignment.student_dir / "tests", notebook_name=assignment.student_notebook,
                             config=ex)
    if level == isolation.CONTAINER_UID:
        job.confinement = isolation.UidConfinement(job.spec, job.root)
    sandboxed = level == isolation.BUBBLEWRAP  # the other levels run with the job's real paths
    predictor = None
    try:
        job.prepare()
        images = evaluation_images(assignment)
        image_sets = images.image_sets()
        predictor = execute.start_predictor(job, image_sets, sandboxed=sandboxed,
                                            ablation=("eval", images.ablation_size))
        notebook = nbformat.from_dict(notebook_in)
        execution = execute.run_notebook(
            notebook, job, budget=ex.wall_budget_seconds, cell_timeout=ex.cell_timeout_seconds,
            on_error=ex.on_error, models=assignment.models, probes=assignment.probes,
            max_output_bytes=int(ex.max_output_mb * 2**20), sandboxed=sandboxed)
        exported = job.export / contract.MODELS_DIR  # whole models (.keras) or a subclass's weights (.weights.h5)
        if exported.is_dir() and any(exported.iterdir()):
            execution.predict = execute.predict(predictor, notebook_seconds=execution.seconds)
        evidence = load_evidence(job.export, job.predictions, {k: len(v) for k, v in image_sets.items()})
        save_evidence(evidence, artifacts)
        nbformat.write(execution.notebook, artifacts / "executed.ipynb")
    finally:
        if predictor is not None:
            predictor.cancel()  # never released (no model exported) or the grading failed
        for log in ("kernel.log", "predict.log"):  # kept whatever happened; student-controlled: only their ends
            if (job.root / log).is_file():
                (artifacts / log).write_bytes(sandbox.read_tail(job.root / log, 64 * 1024))
        execute.cleanup(job)

    return execution, evidence


def grade_into(path: str | Path, assignment: Assignment, result_path: Path, artifacts: Path, *,
               sandboxed: bool = True, student: dict[str, Any] | None = None, work_root: str | Path | None = None) -> dict[str, Any]:
    """Grade the notebook at ``path``; the result is written last, atomically, to ``result_path``."""
    path = Path(path)
    started = time.monotonic()
    intake = read_notebook(path, assignment)
    result = base_result(path, assignment, intake.sha256, student, sandboxed)
    result["timings"]["intake"] = round(time.monotonic() - started, 3)
    if not intake.ok:
        write_result(result_path, rejected_result(result, assignment, intake.reason, intake.message))
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
        execution, evidence = _phase_a(intake.notebook, assignment, artifacts, level=level, work_root=work_root)
    except (sandbox.SandboxUnavailable, AssignmentError, DataError):
        raise  # the set-up is wrong, not this submission: stop the batch and say why
    except Exception as exc:  # the grader failed on this submission: one row that says so
        result = rejected_result(result, assignment, "grader_error", "", status="error")
        result["notes"] = intake.notes + [f"{type(exc).__name__}: {exc}"[:2000]]
        write_result(result_path, result)
        return result

    ex = assignment.execution
    checks_started = time.monotonic()
    score(result, assignment, evidence, intake.notebook, intake.printed)
    result["execution"] = execution.as_dict()
    result["reason"] = overall_reason(execution)
    result["message"] = REASONS.get(result["reason"], "") if result["reason"] else "Graded."
    mark_lost_models(result, assignment.models)
    instructor_table = assignment.root / "diagnoses.toml"
    result["diagnoses"] = diagnose(result["execution"]["cells"], execution.stopped, {
        "budget": ex.wall_budget_seconds, "cell_timeout": ex.cell_timeout_seconds, "limit_mb": ex.memory_mb},
        table=load_table(instructor_table) if instructor_table.is_file() else None)
    result["notes"] = intake.notes + evidence.problems
    result["export_errors"] = evidence.export_errors  # what the export step itself reported: untrusted text
    result["timings"].update(execution.timings, predict=execution.predict.get("seconds", 0.0),
                             checks=round(time.monotonic() - checks_started, 3),
                             total=round(time.monotonic() - started, 3))
    write_result(result_path, result)
    return result


def regrade(result_path: Path, artifacts: Path, assignment: Assignment) -> dict[str, Any]:
    """Re-score a graded submission from its stored evidence, without running any student code."""
    result = read_result(result_path)
    if result["status"] in ("rejected", "error"):  # nothing to re-score: zero rows under the new rubric
        result = rejected_result(result, assignment, result["reason"], result["message"], status=result["status"])
    else:
        evidence = stored_evidence(artifacts)
        notebook = nbformat.read(artifacts / "submission.ipynb", as_version=4)
        score(result, assignment, evidence, notebook, load_printed(artifacts / PRINTED_FILE))
        mark_lost_models(result, assignment.models)
    result["assignment"]["bundle_sha256"] = assignment.bundle_sha256()
    result["grader"]["regraded_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    write_result(result_path, result)
    return result
