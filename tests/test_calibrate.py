"""``autograder calibrate`` on a tiny slice: the file it writes, and that thresholds can be read from it."""
from __future__ import annotations

import json
import shutil

import pytest

from autograder import calibrate, cli
from autograder.assignment import ARCHITECTURES, load_assignment
from reference_solutions.architectures import BUILDERS, RECIPES


@pytest.fixture
def assignment_copy(repo, tmp_path):
    copy = tmp_path / "mnist"
    shutil.copytree(repo / "assignments" / "mnist", copy, ignore=shutil.ignore_patterns("calibration.json"))
    return copy


@pytest.mark.slow
def test_calibrate_writes_a_calibration_that_thresholds_can_read(assignment_copy, capsys):
    exit_code = cli.main(["calibrate", "--assignment", str(assignment_copy), "--seeds", "1",
                          "--train-size", "1500", "--epochs-scale", "0.01"])
    assert exit_code == 0
    out_file = assignment_copy / "calibration.json"
    assert f"wrote {out_file}" in capsys.readouterr().out
    calibration = json.loads(out_file.read_text())

    assert calibration["schema_version"] == 1
    assert {"created", "tensorflow", "keras", "numpy", "python", "cpu_cores", "machine"} <= set(calibration)
    assert calibration["seeds"] == [0] and calibration["train_size"] == 1500
    assert calibration["evaluation"] == {"size": 5000, "max_shift": 2}
    assert list(calibration["architectures"]) == list(ARCHITECTURES)
    for arch, figures in calibration["architectures"].items():
        assert figures["recipe"] == {"epochs": 1, "batch_size": RECIPES[arch].batch_size,
                                     "learning_rate": RECIPES[arch].learning_rate}
        assert figures["params"] == BUILDERS[arch]().count_params()
        for key in ("test_accuracy", "eval_accuracy"):
            spread = figures[key]
            assert len(spread["runs"]) == 1 and spread["std"] == 0
            assert 0 <= spread["min"] == spread["mean"] == spread["max"] == spread["runs"][0] <= 1
        seconds = figures["train_seconds"]
        assert len(seconds["runs"]) == 1 and 0 < seconds["mean"] == seconds["max"]

    assignment = load_assignment(assignment_copy)
    thresholds = assignment.thresholds()
    for arch in ARCHITECTURES:
        full = calibration["architectures"][arch]["eval_accuracy"]["min"] - assignment.threshold_margin
        assert thresholds[arch].full == pytest.approx(full, abs=1e-4)
        assert thresholds[arch].zero == pytest.approx(full - assignment.threshold_span, abs=1e-4)


def test_spread_summarises_runs():
    spread = calibrate._spread([0.97, 0.98, 0.99])
    assert spread == {"mean": 0.98, "std": pytest.approx(0.0082, abs=1e-4), "min": 0.97, "max": 0.99,
                      "runs": [0.97, 0.98, 0.99]}


def test_epochs_scale_multiplies_epochs_and_keeps_at_least_one():
    for arch in ARCHITECTURES:
        recipe = RECIPES[arch]
        assert calibrate.scaled_recipe(arch, 1.0) == recipe
        assert calibrate.scaled_recipe(arch, 2.0).epochs == 2 * recipe.epochs
        assert calibrate.scaled_recipe(arch, 0.01).epochs == 1
        assert calibrate.scaled_recipe(arch, 0.01).batch_size == recipe.batch_size


def test_split_follows_the_homework(assignment_copy, mnist):
    split = calibrate.load_split(load_assignment(assignment_copy), train_size=1000)
    assert split.x_train.shape == (1000, 28, 28) and split.x_train.dtype == "float32"
    assert 0 <= split.x_train.min() and split.x_train.max() == 1
    assert (split.y_train == mnist.y_train[:1000]).all()
    assert (split.y_val == mnist.y_train[55_000:]).all() and len(split.x_val) == 5000
    assert split.x_test.shape == (10_000, 28, 28) and (split.y_test == mnist.y_test).all()
    assert split.x_eval.shape == (5000, 28, 28) and len(split.y_eval) == 5000
