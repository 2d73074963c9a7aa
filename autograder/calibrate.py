"""``autograder calibrate``: train the reference architectures to learn what accuracy is reachable.

Each architecture in ``reference_solutions.architectures`` is trained with its recipe on the homework's
split (the first 55,000 training images to train, the last 5,000 to validate), once per seed, and scored
on the public test set and on the hidden evaluation set. The figures, with the versions and machine
they were measured on, go to the assignment's ``calibration.json``, from which
``Assignment.thresholds()`` derives the accuracy thresholds (it reads ``eval_accuracy.min``).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from autograder.assignment import ARCHITECTURES, Assignment, load_assignment
from autograder.data import load_mnist, make_evaluation_set, normalize
from autograder.results import atomic_write_text

# Keras and the reference models are imported inside the functions that train: the CLI imports every
# verb's module to build its parser, and no other verb should wait seconds for TensorFlow.
if TYPE_CHECKING:
    import keras

    from reference_solutions.architectures import Recipe

SCHEMA_VERSION = 1
#: The homework's split: train on the first 55,000 training images, validate on the last 5,000.
HOMEWORK_TRAIN_SIZE = 55_000


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--assignment", default="assignments/mnist", metavar="DIR",
                        help="assignment directory (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=3, metavar="N",
                        help="train every architecture with seeds 0..N-1 (default: %(default)s)")
    parser.add_argument("--train-size", type=int, default=HOMEWORK_TRAIN_SIZE, metavar="N",
                        help="train on the first N of the homework's training images (default: all %(default)s)")
    parser.add_argument("--epochs-scale", type=float, default=1.0, metavar="F",
                        help="multiply every recipe's epochs by F, at least 1 epoch (default: %(default)s)")
    parser.add_argument("--out", metavar="FILE",
                        help="where to write the calibration (default: the assignment's calibration_file)")


def run(args: argparse.Namespace) -> int:
    assignment = load_assignment(args.assignment)
    calibration = calibrate(assignment, seeds=list(range(args.seeds)), train_size=args.train_size,
                            epochs_scale=args.epochs_scale, progress=_print_progress)
    out = Path(args.out) if args.out else assignment.calibration_file
    atomic_write_text(out, json.dumps(calibration, indent=2) + "\n")
    print(f"wrote {out}")
    for arch, figures in calibration["architectures"].items():
        print(f"{arch:>10}: test {figures['test_accuracy']['mean']:.4f} (min {figures['test_accuracy']['min']:.4f})"
              f"  eval {figures['eval_accuracy']['mean']:.4f} (min {figures['eval_accuracy']['min']:.4f})"
              f"  {figures['params']:,} params  {figures['train_seconds']['mean']:.1f} s")
    return 0


@dataclass(frozen=True)
class Split:
    """Inputs scaled to [0, 1], shaped (n, 28, 28); each model reshapes them with ``shape_for``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray


@dataclass(frozen=True)
class Run:
    test_accuracy: float
    eval_accuracy: float
    train_seconds: float
    params: int


def load_split(assignment: Assignment, train_size: int = HOMEWORK_TRAIN_SIZE) -> Split:
    mnist = load_mnist()
    evaluation = make_evaluation_set(mnist.x_test, mnist.y_test, seed=assignment.evaluation_seed(),
                                     size=assignment.evaluation_size, max_shift=assignment.evaluation_max_shift)
    train_size = min(train_size, HOMEWORK_TRAIN_SIZE)
    return Split(
        x_train=normalize(mnist.x_train[:train_size]), y_train=mnist.y_train[:train_size],
        x_val=normalize(mnist.x_train[HOMEWORK_TRAIN_SIZE:]), y_val=mnist.y_train[HOMEWORK_TRAIN_SIZE:],
        x_test=normalize(mnist.x_test), y_test=mnist.y_test,
        x_eval=normalize(evaluation.images), y_eval=evaluation.labels,
    )


def train_reference(arch: str, seed: int, split: Split, epochs_scale: float = 1.0) -> Run:
    """Train one reference model from scratch, seeded, and score it."""
    import keras

    from reference_solutions.architectures import BUILDERS, compile_model, shape_for

    keras.backend.clear_session()  # each run starts from a fresh graph and frees the last model
    keras.utils.set_random_seed(seed)
    recipe = scaled_recipe(arch, epochs_scale)
    model = compile_model(BUILDERS[arch](), recipe)
    started = time.perf_counter()
    model.fit(shape_for(model, split.x_train), split.y_train, epochs=recipe.epochs,
              batch_size=recipe.batch_size, validation_data=(shape_for(model, split.x_val), split.y_val),
              verbose=0)
    seconds = time.perf_counter() - started
    return Run(test_accuracy=_accuracy(model, split.x_test, split.y_test),
               eval_accuracy=_accuracy(model, split.x_eval, split.y_eval),
               train_seconds=seconds, params=int(model.count_params()))


def scaled_recipe(arch: str, epochs_scale: float) -> Recipe:
    from reference_solutions.architectures import RECIPES

    recipe = RECIPES[arch]
    return replace(recipe, epochs=max(1, round(recipe.epochs * epochs_scale)))


def _accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> float:
    from reference_solutions.architectures import shape_for

    predicted = model.predict(shape_for(model, images), batch_size=1000, verbose=0).argmax(axis=1)
    return float(np.mean(predicted == labels))


def calibrate(assignment: Assignment, *, seeds: list[int], train_size: int = HOMEWORK_TRAIN_SIZE,
              epochs_scale: float = 1.0, progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Train every reference architecture once per seed; return the calibration document."""
    import keras
    import tensorflow as tf

    split = load_split(assignment, train_size)
    architectures = {}
    total, done = len(ARCHITECTURES) * len(seeds), 0
    for arch in ARCHITECTURES:
        runs = []
        for seed in seeds:
            result = train_reference(arch, seed, split, epochs_scale)
            runs.append(result)
            done += 1
            progress(f"[{done}/{total}] {arch} seed {seed}: test {result.test_accuracy:.4f}  "
                     f"eval {result.eval_accuracy:.4f}  {result.train_seconds:.1f} s")
        recipe = scaled_recipe(arch, epochs_scale)
        architectures[arch] = {
            "recipe": {"epochs": recipe.epochs, "batch_size": recipe.batch_size,
                       "learning_rate": recipe.learning_rate},
            "params": runs[0].params,
            "test_accuracy": _spread([r.test_accuracy for r in runs]),
            "eval_accuracy": _spread([r.eval_accuracy for r in runs]),
            "train_seconds": {"mean": round(statistics.fmean(r.train_seconds for r in runs), 2),
                              "max": round(max(r.train_seconds for r in runs), 2),
                              "runs": [round(r.train_seconds, 2) for r in runs]},
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
        "seeds": list(seeds),
        "train_size": len(split.x_train),
        "evaluation": {"size": len(split.x_eval), "max_shift": assignment.evaluation_max_shift},
        "architectures": architectures,
    }


def _spread(values: list[float]) -> dict[str, Any]:
    # Population std: these are all the runs there are, and one seed gives 0 rather than an error.
    return {"mean": round(statistics.fmean(values), 4), "std": round(statistics.pstdev(values), 4),
            "min": round(min(values), 4), "max": round(max(values), 4),
            "runs": [round(v, 4) for v in values]}


def _print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
