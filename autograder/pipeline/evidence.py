"""Phase A for one notebook: run it and the predictions in their sandboxes, keep what they left as evidence.

Everything here produces evidence, so it belongs to the evidence key
(:meth:`autograder.assignment.Assignment.evidence_key`): a change to it means the notebooks must run
again, which ``regrade`` cannot do. Scoring that evidence is :mod:`autograder.pipeline.grade_one`.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

from autograder.assignment import Assignment
from autograder.data import (EvaluationConfig, EvaluationImages, Mnist, keras_cache_source, load_mnist,
                             make_evaluation_images)
from autograder.run import isolation, kernel_session, prediction
from autograder.run.inside import contract
from autograder.run.job import Job, cleanup, remove_stale_jobs
from autograder.run.sandbox.process import read_tail
from autograder.run.sandbox.spec import Limits, SandboxSpec
from autograder.score.artifacts import (Evidence, adopt_retried_feed, load_evidence, read_retried, retry_feeds,
                                       save_evidence)


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


def run_phase_a(notebook_in: Any, assignment: Assignment, artifacts: Path, *, level: str,
                work_root: str | Path | None) -> tuple[kernel_session.ExecutionRecord, Evidence]:
    """Run the notebook and the predictions in their sandboxes; return what they left, validated."""
    ex = assignment.execution
    limits = Limits.from_execution(ex, wall_seconds=ex.wall_budget_seconds + ex.export_seconds)
    remove_stale_jobs(work_root)  # left by a grader killed mid-job
    job = Job.create(work_root, SandboxSpec(limits=limits, keras_cache=keras_cache_file()),
                     public_tests=assignment.student_dir / "tests", notebook_name=assignment.student_notebook,
                     config=ex)
    if level == isolation.CONTAINER_UID:
        job.uid_isolation = isolation.UidIsolation(job.spec, job.root)
    bubblewrap = level == isolation.BUBBLEWRAP  # the other levels run with the job's real paths
    predictor = None
    try:
        job.prepare()
        images = evaluation_images(assignment)
        image_sets = images.image_sets()
        notebook = nbformat.from_dict(notebook_in)
        predictor = prediction.start_predictor(job, image_sets, bubblewrap=bubblewrap,
                                               ablation=("eval", images.ablation_size),
                                               early=prediction.names_tensorflow(notebook))
        execution = kernel_session.run_notebook(
            notebook, job, budget=ex.wall_budget_seconds, cell_timeout=ex.cell_timeout_seconds,
            on_error=ex.on_error, models=assignment.models, probes=assignment.probes,
            max_output_bytes=int(ex.max_output_mb * 2**20), bubblewrap=bubblewrap)
        exported = job.export / contract.MODELS_DIR  # whole models (.keras) or a subclass's weights (.weights.h5)
        if exported.is_dir() and any(exported.iterdir()):
            execution.predict = prediction.predict(predictor, notebook_seconds=execution.cpu_seconds)
        counts = {k: len(v) for k, v in image_sets.items()}
        evidence = load_evidence(job.export, job.predictions, counts)
        retried = retry_contradicted(predictor, evidence, images.public.labels, counts)
        if retried is not None and execution.predict is not None:
            execution.predict["retry"] = retried
        save_evidence(evidence, artifacts)
        nbformat.write(execution.notebook, artifacts / "executed.ipynb")
    finally:
        if predictor is not None:
            predictor.cancel()  # never released (no model exported) or the grading failed
        for log in ("kernel.log", "predict.log", "predict-retry.log"):  # kept whatever happened; student-controlled: only their ends
            if (job.root / log).is_file():
                (artifacts / log).write_bytes(read_tail(job.root / log, 64 * 1024))
        cleanup(job)

    return execution, evidence


def retry_contradicted(predictor: prediction.Predictor, evidence: Evidence, public_labels: np.ndarray,
                       image_counts: dict[str, int]) -> dict[str, Any] | None:
    """The safety net's second pass: the models measured on the PUBLIC test images far below the notebook's own
    evaluate()/predict() figure are predicted again with the feeds the notebook used (and the known
    scalings); a feed that comes within the gap replaces the first (``adopt_retried_feed``). None: no model
    was contradicted, and no second pass ran. The eval labels are never looked at here."""
    feeds = {}
    for arch, model in evidence.models.items():
        measured = model.accuracy("public", public_labels)
        if measured is not None and model.falls_short(measured) and (tried := retry_feeds(model)):
            feeds[arch] = tried
    if not feeds:
        return None
    report = prediction.predict_again(predictor, feeds)
    _, subclassed = prediction.exported_models(predictor.job)
    report["adopted"] = []
    for arch, tried in feeds.items():
        model = evidence.models[arch]
        retry_dir = predictor.out(classes=arch in subclassed, retry=True)
        if adopt_retried_feed(model, read_retried(model, retry_dir, len(tried), image_counts), public_labels):
            report["adopted"].append(arch)
    return report
