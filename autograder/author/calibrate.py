"""``autograder calibrate``: what honest reference networks show on the grader's images, over seeds.

Two steps, so that measuring never needs retraining:

- **train**: each architecture in ``reference_solutions.architectures`` is trained with its recipe on the
  homework's split (the first 55,000 training images to train, the last 5,000 to validate), once per
  seed, and saved as ``{arch}-seed{n}.keras`` in a models directory (by default the assignment's
  ``reference_models/``, committed with the assignment), with ``train_log.json`` (seconds, steps, recipe).
- **measure** (``--from-models DIR`` runs only this): every stored model is fed and predicted exactly
  as the prediction sandbox does it (:mod:`autograder.run.inside.predict`) on the assignment's secret image
  sets (:mod:`autograder.data`): accuracy on the public test set, on ``eval`` (the scored accuracy;
  ``Assignment.thresholds()`` reads ``eval_accuracy.min``), on ``train_sample`` and ``distorted`` (split
  by source), the ablation agreement, and how much two seeds agree.

The spread over seeds is the honest range each integrity rule and the claims tolerance start from:
``eval_minus_train_sample`` (an honest network is no better on test images than on training images),
``distorted_ratio`` (how much of its eval accuracy an honest network keeps on distorted digits),
``ablation_agreement`` (how often predictions survive zeroing the convolutional / recurrent layers).
The figures, with the versions and machine they were measured on, go to the assignment's
``calibration.json``.
"""
from __future__ import annotations

import datetime
import itertools
import json
import os
import platform
import re
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from autograder.assignment import ARCHITECTURES, Assignment
from autograder.data import (HOMEWORK_TRAIN_SIZE, EvaluationConfig, EvaluationImages, load_mnist,
                             make_evaluation_images, normalize)
from autograder.results import atomic_write_text
from autograder.run.inside import contract

# Keras and the reference models are imported inside the functions that use them: the CLI imports every
# verb's module to build its parser, and no other verb should wait seconds for TensorFlow.
if TYPE_CHECKING:
    from reference_solutions.architectures import Recipe

SCHEMA_VERSION = 2
TRAIN_LOG = "train_log.json"
MODEL_NAME = re.compile(r"^(?P<arch>[a-z_]+)-seed(?P<seed>\d+)\.keras$")


# --- train -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Split:
    """Inputs scaled to [0, 1], shaped (n, 28, 28); each model reshapes them with ``shape_for``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def load_split(train_size: int = HOMEWORK_TRAIN_SIZE) -> Split:
    mnist = load_mnist()
    train_size = min(train_size, HOMEWORK_TRAIN_SIZE)
    return Split(x_train=normalize(mnist.x_train[:train_size]), y_train=mnist.y_train[:train_size],
                 x_val=normalize(mnist.x_train[HOMEWORK_TRAIN_SIZE:]), y_val=mnist.y_train[HOMEWORK_TRAIN_SIZE:])


def scaled_recipe(arch: str, epochs_scale: float) -> Recipe:
    from reference_solutions.architectures import RECIPES

    recipe = RECIPES[arch]
    return replace(recipe, epochs=max(1, round(recipe.epochs * epochs_scale)))


def model_path(models_dir: Path, arch: str, seed: int) -> Path:
    return models_dir / f"{arch}-seed{seed}.keras"


def train(models_dir: Path, *, seeds: list[int], train_size: int = HOMEWORK_TRAIN_SIZE, epochs_scale: float = 1.0,
          progress: Callable[[str], None] = lambda line: None) -> None:
    """Train every reference architecture once per seed and save the models (and how they were trained)."""
    import keras

    from reference_solutions.architectures import BUILDERS, compile_model, shape_for

    models_dir.mkdir(parents=True, exist_ok=True)
    split = load_split(train_size)
    log: dict[str, Any] = {}
    total = len(ARCHITECTURES) * len(seeds)
    for done, (seed, arch) in enumerate(itertools.product(seeds, ARCHITECTURES), start=1):
        keras.backend.clear_session()  # each run starts from a fresh graph and frees the last model
        keras.utils.set_random_seed(seed)
        recipe = scaled_recipe(arch, epochs_scale)
        model = compile_model(BUILDERS[arch](), recipe)
        started = time.perf_counter()
        model.fit(shape_for(model, split.x_train), split.y_train, epochs=recipe.epochs,
                  batch_size=recipe.batch_size, validation_data=(shape_for(model, split.x_val), split.y_val),
                  verbose=0)
        seconds = time.perf_counter() - started
        model.save(model_path(models_dir, arch, seed))
        log[model_path(models_dir, arch, seed).stem] = {
            "train_seconds": round(seconds, 2), "steps": int(model.optimizer.iterations.numpy()),
            "epochs": recipe.epochs, "batch_size": recipe.batch_size, "learning_rate": recipe.learning_rate,
            "train_size": len(split.x_train)}
        atomic_write_text(models_dir / TRAIN_LOG, json.dumps(log, indent=1) + "\n")
        progress(f"[{done}/{total}] trained {arch} seed {seed} in {seconds:.1f} s")


# --- measure -----------------------------------------------------------------------------------------

@dataclass
class Run:
    """One stored model's figures on the grader's images."""

    seed: int
    params: int
    accuracy: dict[str, float] = field(default_factory=dict)
    ablation_agreement: float | None = None
    eval_predictions: np.ndarray | None = None


def stored_models(models_dir: Path) -> dict[str, dict[int, Path]]:
    """``{arch: {seed: path}}`` for every ``{arch}-seed{n}.keras`` in ``models_dir``."""
    found: dict[str, dict[int, Path]] = {}
    for path in sorted(models_dir.glob("*.keras")):
        match = MODEL_NAME.match(path.name)
        if match and match["arch"] in ARCHITECTURES:
            found.setdefault(match["arch"], {})[int(match["seed"])] = path
    return found


def measure_model(path: Path, arch: str, seed: int, images: EvaluationImages) -> Run:
    """Predict one reference model the way the prediction sandbox predicts a student's (pixels / 255)."""
    import keras

    from autograder.run.inside import predict

    keras.backend.clear_session()
    model = predict.load(str(path))
    fed = predict.feeding(model, {})
    run = Run(seed=seed, params=int(model.count_params()))
    predicted = {}
    for name, image_set in images.sets.items():
        predicted[name] = predict.scores(model, image_set.images, fed).argmax(axis=1)
        correct = predicted[name] == image_set.labels
        run.accuracy[name] = float(np.mean(correct))
        if name == "distorted":
            run.accuracy["distorted_test"] = float(np.mean(correct[image_set.from_test]))
            run.accuracy["distorted_train"] = float(np.mean(correct[~image_set.from_test]))
    run.eval_predictions = predicted["eval"]
    count = images.ablation_size
    intact = np.eye(contract.CLASSES, dtype=np.float32)[predicted["eval"][:count]]
    ablation, _ = predict.ablate(model, arch, images.eval.images[:count], intact, fed)
    run.ablation_agreement = None if ablation is None else ablation["agreement"]
    return run


def seed_agreement(runs: list[Run]) -> dict[str, Any] | None:
    """How much two independently trained seeds agree on eval: the honest ceiling for similarity."""
    pairs = [(a.eval_predictions, b.eval_predictions) for a, b in itertools.combinations(runs, 2)]
    if not pairs:
        return None
    identical = [int(np.sum(a == b)) for a, b in pairs]
    n = len(runs[0].eval_predictions)
    return {"min": round(min(identical) / n, 4), "max": round(max(identical) / n, 4),
            "max_identical": max(identical), "min_disagreements": n - max(identical), "images": n}


def measure(assignment: Assignment, models_dir: Path, *,
            progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Measure the stored reference models on the assignment's image sets; return the calibration document."""
    import keras
    import tensorflow as tf

    from reference_solutions.architectures import RECIPES

    models = stored_models(models_dir)
    missing = [arch for arch in ARCHITECTURES if arch not in models]
    if missing:
        raise SystemExit(f"{models_dir}: no stored model for {', '.join(missing)} (expected {{arch}}-seed{{n}}.keras)")
    config = EvaluationConfig.from_assignment(assignment)
    images = make_evaluation_images(load_mnist(), seed=assignment.evaluation_seed(), config=config)
    log_file = models_dir / TRAIN_LOG
    log = json.loads(log_file.read_text()) if log_file.is_file() else {}
    seeds = sorted(set().union(*(set(by_seed) for by_seed in models.values())))
    architectures = {}
    for arch in ARCHITECTURES:
        runs = []
        for seed, path in sorted(models[arch].items()):
            runs.append(measure_model(path, arch, seed, images))
            progress(f"measured {arch} seed {seed}: eval {runs[-1].accuracy['eval']:.4f}  "
                     f"train sample {runs[-1].accuracy['train_sample']:.4f}  "
                     f"distorted {runs[-1].accuracy['distorted']:.4f}  ablation {runs[-1].ablation_agreement}")
        trained = [log.get(model_path(models_dir, arch, r.seed).stem, {}) for r in runs]
        recipe = RECIPES[arch]
        architectures[arch] = {
            "recipe": {"epochs": trained[0].get("epochs", recipe.epochs),
                       "batch_size": trained[0].get("batch_size", recipe.batch_size),
                       "learning_rate": trained[0].get("learning_rate", recipe.learning_rate)},
            "params": runs[0].params,
            "training_steps": trained[0].get("steps"),
            "test_accuracy": _spread([r.accuracy["public"] for r in runs]),
            "eval_accuracy": _spread([r.accuracy["eval"] for r in runs]),
            "train_sample_accuracy": _spread([r.accuracy["train_sample"] for r in runs]),
            "distorted_accuracy": _spread([r.accuracy["distorted"] for r in runs]),
            "distorted_test_accuracy": _spread([r.accuracy["distorted_test"] for r in runs]),
            "distorted_train_accuracy": _spread([r.accuracy["distorted_train"] for r in runs]),
            "eval_minus_train_sample": _spread([r.accuracy["eval"] - r.accuracy["train_sample"] for r in runs]),
            "distorted_ratio": _spread([r.accuracy["distorted"] / r.accuracy["eval"] for r in runs]),
            "ablation_agreement": None if runs[0].ablation_agreement is None
            else _spread([r.ablation_agreement for r in runs]),
            "agreement": seed_agreement(runs),
            "train_seconds": _seconds([t["train_seconds"] for t in trained if "train_seconds" in t]),
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu_cores": os.cpu_count(),
        "machine": platform.platform(),
        "seeds": seeds,
        "train_size": next((t.get("train_size") for t in log.values() if "train_size" in t), HOMEWORK_TRAIN_SIZE),
        "models_dir": _relative(models_dir, assignment.root),
        "evaluation": {"size": len(images.eval), "train_sample_size": len(images.train_sample),
                       "distorted_size": len(images.distorted), "ablation_size": images.ablation_size},
        "architectures": architectures,
    }


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def _spread(values: list[float]) -> dict[str, Any]:
    # Population std: these are all the runs there are, and one seed gives 0 rather than an error.
    return {"mean": round(statistics.fmean(values), 4), "std": round(statistics.pstdev(values), 4),
            "min": round(min(values), 4), "max": round(max(values), 4),
            "runs": [round(v, 4) for v in values]}


def _seconds(values: list[float]) -> dict[str, Any] | None:
    if not values:
        return None
    return {"mean": round(statistics.fmean(values), 2), "max": round(max(values), 2),
            "runs": [round(v, 2) for v in values]}
