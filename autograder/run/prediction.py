"""The prediction run: the exported models predict the unlabeled images in a sandbox of their own.

The prediction sandbox holds only the model files and the unlabeled images (no labels, no Keras MNIST
cache); it starts beside a notebook that names Keras or TensorFlow so its TensorFlow import overlaps the
student's cells (any other notebook gets it only once it exported a model), and is released on the exported
models only once the kernel is gone. Each model has its own budget; what the
sandbox writes back is read by name, as plain files only.
"""
from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

from autograder.run.class_source import class_source
from autograder.run.inside import contract
from autograder.run.job import EXPORT_MOUNT, Job
from autograder.run.sandbox import process

PREDICT_POLL_SECONDS = 0.2
#: What a notebook's code must name before the prediction sandbox starts beside it: the modules, not a path such
#: as the Keras cache's ``~/.keras/datasets`` or an attribute.
TENSORFLOW_NAME = re.compile(r"(?<![\w./])(?:keras|tensorflow)\b")


@dataclass
class Predictor:
    """The prediction sandbox of one job: started early, released on the exported models by :func:`predict`."""

    job: Job
    options: list[str]  # the ablation, as the sandbox's command line says it
    image_sets: list[str]  # NAME=PATH as the sandbox sees them
    bubblewrap: bool  # else on the job's real paths (Job.host_argv)
    first: process.Running | None = None  # started beside the notebook, still waiting

    def start(self, only: list[str] | None = None, classes: bool = False, retry: bool = False) -> process.Running:
        """A fresh prediction process for the models ``only`` (all stock models: None); ``retry``: the second
        pass, each model once per feed of the inputs' ``contract.FEEDS_FILE``."""
        out = self.out(classes, retry)
        module = [sys.executable, "-m", "autograder_inside.predict", "--wait"]
        if only is not None:
            module += ["--only", ",".join(only)]
        if classes:
            module += ["--classes", f"/inputs/{contract.CLASS_SOURCE}"]
        if retry:
            module += ["--feeds", f"/inputs/{contract.FEEDS_FILE}"]
        module += self.options
        log = self.job.root / f"predict{'-classes' if classes else ''}{'-retry' if retry else ''}.log"
        if not self.bubblewrap:
            command = module + [str(self.job.export), str(out)] + self.image_sets
            command = [a.replace("/inputs/", f"{self.job.inputs}/") for a in command]
            return process.Running(self.job.host_argv(command, "classes" if classes else "predict"),
                                   self.job.predict_spec().limits, [out], log,
                                   env=self.job.host_env(), private_tmpfs=False)
        command = module + [EXPORT_MOUNT, "/predictions"] + self.image_sets
        return process.start(self.job.predict_spec(out), command, watched_dirs=[out], log_path=log)

    def out(self, classes: bool, retry: bool) -> Path:
        """Where a pass writes: its own directory for subclassed models and for the retry."""
        if retry:
            return self.job.class_retry_predictions if classes else self.job.retry_predictions
        return self.job.class_predictions if classes else self.job.predictions

    def take_first(self) -> process.Running | None:
        """The process started beside the notebook (once): it predicts every stock model."""
        first, self.first = self.first, None
        return first

    def cancel(self) -> None:
        """Stop the first process if it was never released (no stock model, or the grading failed)."""
        if self.first is not None:
            self.first.cancel()


def names_tensorflow(notebook: nbformat.NotebookNode) -> bool:
    """Whether a code cell names Keras or TensorFlow. A notebook that names neither builds no model unless it
    reaches them in a roundabout way, and then only loses the overlap: :func:`predict` starts the sandbox."""
    sources = [_text(cell.get("source", "")) for cell in notebook.get("cells", []) if cell.get("cell_type") == "code"]
    return any(TENSORFLOW_NAME.search(source) for source in sources)


def _text(source: str | list[str]) -> str:
    return "".join(source) if isinstance(source, list) else str(source)


def start_predictor(job: Job, image_sets: dict[str, np.ndarray], *, bubblewrap: bool = True,
                    ablation: tuple[str, int] | None = None, early: bool = True) -> Predictor:
    """Write the image sets and, when ``early``, start the prediction sandbox beside the notebook, so its
    TensorFlow import overlaps the student's cells (a notebook that never names Keras or TensorFlow would
    only pay that import for nothing).

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
    predictor = Predictor(job, options, sets, bubblewrap)
    if early:
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


def _run_models(predictor: Predictor, archs: list[str], deadline: float, *, classes: bool,
                outcomes: dict[str, dict[str, Any]], processes: list[process.Completed], feeds: int = 0) -> None:
    """Predict ``archs``, each within the job's ``predict_model_seconds`` of CPU work (the prediction sandbox's
    CPU time / threads, as the notebook's limits count) and its wall-clock backstop; a model that overruns or
    blows the memory limit is killed and recorded, and a fresh process goes on with the models not yet started.
    ``feeds``: the retry pass, each model predicted once per feed (at most that many), a budget per feed."""
    pending = list(archs)
    out = predictor.out(classes, retry=feeds > 0)
    model_seconds = predictor.job.config.predict_model_seconds * max(feeds, 1)
    backstop = predictor.job.backstop_factor * model_seconds
    while pending and time.monotonic() < deadline:
        first = None if classes or feeds else predictor.take_first()
        running = first or predictor.start(pending, classes=classes, retry=feeds > 0)
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
    processes: list[process.Completed] = []
    if stock:
        _run_models(predictor, stock, deadline, classes=False, outcomes=outcomes, processes=processes)
    predictor.cancel()  # not released when only subclassed models (or none) were exported
    if subclassed:
        notebook = job.inputs / "submission.ipynb"
        source = class_source(nbformat.read(notebook, as_version=4)) if notebook.is_file() else ""
        (job.inputs / contract.CLASS_SOURCE).write_text(source)
        (job.inputs / contract.CLASS_SOURCE).chmod(0o644)
        _run_models(predictor, subclassed, deadline, classes=True, outcomes=outcomes, processes=processes)
        _adopt_class_predictions(job, subclassed, [arg.split("=", 1)[0] for arg in predictor.image_sets])
    return _report(started, outcomes, processes)


def _report(started: float, outcomes: dict[str, dict[str, Any]], processes: list[process.Completed]) -> dict[str, Any]:
    return {"seconds": round(time.monotonic() - started, 3), "processes": len(processes),
            "stopped": next((o["stopped"] for o in outcomes.values() if o["stopped"]), None),
            "peak_rss_mb": max((p.peak_rss_mb for p in processes), default=0.0),
            "returncode": processes[-1].returncode if processes else None, "models": outcomes}


def predict_again(predictor: Predictor, feeds: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The second pass: each model of ``feeds`` predicted afresh once per feed listed for it, in the same kind
    of sandbox as its first pass (subclassed ones in their own process again), into the retry directories.

    Only the models whose measurement the notebook's own evaluate() contradicts come here, so a normal job
    never runs it. Each model has one model's budget per feed; the whole pass, that much per model.
    """
    job = predictor.job
    started = time.monotonic()
    (job.inputs / contract.FEEDS_FILE).write_text(json.dumps(feeds))
    (job.inputs / contract.FEEDS_FILE).chmod(0o644)
    stock, subclassed = exported_models(job)
    most = max(len(f) for f in feeds.values())
    deadline = started + job.backstop_factor * job.config.predict_model_seconds * most * len(feeds)
    outcomes: dict[str, dict[str, Any]] = {}
    processes: list[process.Completed] = []
    for archs, classes in (([a for a in stock if a in feeds], False), ([a for a in subclassed if a in feeds], True)):
        if archs:
            _run_models(predictor, archs, deadline, classes=classes, outcomes=outcomes, processes=processes,
                        feeds=most)
    return _report(started, outcomes, processes)
