"""``autograder calibrate`` on a tiny slice: train stores models, measure reads them (no retraining)."""
from __future__ import annotations

import dataclasses
import json
import re
import shutil

import pytest

from autograder import cli
from autograder.assignment import ARCHITECTURES, load_assignment
from autograder.author import calibrate
from reference_solutions.architectures import BUILDERS, RECIPES

SPREAD_KEYS = ("test_accuracy", "eval_accuracy", "train_sample_accuracy", "distorted_accuracy",
               "distorted_test_accuracy", "distorted_train_accuracy", "eval_minus_train_sample", "distorted_ratio")


@pytest.fixture
def assignment_copy(repo, tmp_path):
    """The real assignment with small secret image sets, so measuring stays quick."""
    copy = tmp_path / "mnist"
    shutil.copytree(repo / "assignments" / "mnist", copy,
                    ignore=shutil.ignore_patterns("calibration.json", "reference_models", "generated"))
    toml = (copy / "assignment.toml").read_text()
    for key, value in {"size": 600, "train_sample_size": 400, "distorted_size": 400, "ablation_size": 200}.items():
        toml = re.sub(rf"(?m)^{key} = \S+", f"{key} = {value}", toml)
    (copy / "assignment.toml").write_text(toml)
    return copy


@pytest.mark.slow
def test_calibrate_trains_stores_and_measures_and_remeasures_without_training(assignment_copy, tmp_path, capsys,
                                                                               monkeypatch, mnist, repo):
    # Tiny data: 2,000 test images stand in for the 10,000 (the public set every model predicts), and 1,000
    # validation images (the training images after the homework's 55,000) for the 5,000 each fit evaluates.
    validation_end = calibrate.HOMEWORK_TRAIN_SIZE + 1000
    monkeypatch.setattr(calibrate, "load_mnist", lambda: dataclasses.replace(
        mnist, x_train=mnist.x_train[:validation_end], y_train=mnist.y_train[:validation_end],
        x_test=mnist.x_test[:2000], y_test=mnist.y_test[:2000]))
    models = tmp_path / "models"
    exit_code = cli.main(["calibrate", "--assignment", str(assignment_copy), "--seeds", "2", "--train-size", "1500",
                          "--epochs-scale", "0.01", "--models-dir", str(models)])
    assert exit_code == 0
    out_file = assignment_copy / "calibration.json"
    assert f"wrote {out_file}" in capsys.readouterr().out
    calibration = json.loads(out_file.read_text())

    assert sorted(p.name for p in models.glob("*.keras")) == sorted(
        f"{arch}-seed{seed}.keras" for arch in ARCHITECTURES for seed in (0, 1))
    assert calibration["schema_version"] == 2
    assert {"created", "tensorflow", "keras", "numpy", "python", "cpu_cores", "machine"} <= set(calibration)
    assert calibration["seeds"] == [0, 1] and calibration["train_size"] == 1500
    assert calibration["evaluation"] == {"size": 600, "train_sample_size": 400, "distorted_size": 400,
                                         "ablation_size": 200}
    assert list(calibration["architectures"]) == list(ARCHITECTURES)
    for arch, figures in calibration["architectures"].items():
        assert figures["recipe"] == {"epochs": 1, "batch_size": RECIPES[arch].batch_size,
                                     "learning_rate": RECIPES[arch].learning_rate}
        assert figures["params"] == BUILDERS[arch]().count_params()
        assert RECIPES[arch].batch_size == 128  # so one epoch of 1,500 images is 11 full batches and one of 92:
        assert figures["training_steps"] == 12
        for key in SPREAD_KEYS:
            spread = figures[key]
            assert len(spread["runs"]) == 2 and spread["min"] <= spread["mean"] <= spread["max"], (arch, key)
        for key in SPREAD_KEYS[:6]:
            assert 0 <= figures[key]["min"] and figures[key]["max"] <= 1
        agreement = figures["agreement"]
        assert agreement["images"] == 600 and 0 < agreement["min"] <= agreement["max"] <= 1
        assert agreement["min_disagreements"] == 600 - agreement["max_identical"]
        if arch == "mlp":
            assert figures["ablation_agreement"] is None  # nothing to zero in an MLP
        else:  # zeroing the convolution / recurrent layer leaves a constant answer
            assert figures["ablation_agreement"]["max"] < 0.5
        assert len(figures["train_seconds"]["runs"]) == 2

    # Thresholds read the new calibration (how they follow from it: tests/test_assignment.py, worked by hand),
    # not the shipped one, which a 1-epoch slice cannot match.
    assignment = load_assignment(assignment_copy)
    assert assignment.thresholds() == assignment.thresholds(calibration)
    assert assignment.thresholds() != load_assignment(repo / "assignments" / "mnist").thresholds()

    # Re-measuring the stored models trains nothing and gives the same figures.
    monkeypatch.setattr(calibrate, "train", lambda *a, **k: pytest.fail("--from-models retrained"))
    again = tmp_path / "again.json"
    assert cli.main(["calibrate", "--assignment", str(assignment_copy), "--from-models", str(models),
                     "--out", str(again)]) == 0
    remeasured = json.loads(again.read_text())
    for arch in ARCHITECTURES:
        for key in SPREAD_KEYS + ("ablation_agreement", "agreement", "params", "training_steps"):
            assert remeasured["architectures"][arch][key] == calibration["architectures"][arch][key], (arch, key)


def test_measure_refuses_a_models_dir_without_every_architecture(assignment_copy, tmp_path):
    (tmp_path / "mlp-seed0.keras").write_bytes(b"")
    with pytest.raises(SystemExit, match="no stored model for cnn, simple_rnn, lstm, gru"):
        calibrate.measure(load_assignment(assignment_copy), tmp_path)


def test_stored_models_are_found_by_architecture_and_seed(tmp_path):
    for name in ("mlp-seed0.keras", "mlp-seed2.keras", "simple_rnn-seed1.keras", "notes.keras", "cnn-seed0.h5"):
        (tmp_path / name).write_bytes(b"")
    assert calibrate.stored_models(tmp_path) == {"mlp": {0: tmp_path / "mlp-seed0.keras", 2: tmp_path / "mlp-seed2.keras"},
                                                 "simple_rnn": {1: tmp_path / "simple_rnn-seed1.keras"}}


def test_seed_agreement_counts_identical_predictions():
    import numpy as np

    runs = [calibrate.Run(seed=s, params=1, eval_predictions=np.array(p))
            for s, p in enumerate(([1, 2, 3, 4], [1, 2, 3, 5], [0, 2, 3, 5]))]
    assert calibrate.seed_agreement(runs) == {"min": 0.5, "max": 0.75, "max_identical": 3, "min_disagreements": 1,
                                              "images": 4}
    assert calibrate.seed_agreement(runs[:1]) is None


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


def test_split_follows_the_homework(mnist):
    split = calibrate.load_split(train_size=1000)
    assert split.x_train.shape == (1000, 28, 28) and split.x_train.dtype == "float32"
    assert 0 <= split.x_train.min() and split.x_train.max() == 1
    assert (split.y_train == mnist.y_train[:1000]).all()
    assert (split.y_val == mnist.y_train[55_000:]).all() and len(split.x_val) == 5000
