"""Phase B pieces on their own: the untrusted-artifact reader, architecture rules, the hidden-test runner."""
from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest

from autograder import architecture
from autograder.artifacts import ArtifactError, load_evidence, read_array, read_json, read_untrusted
from autograder.assignment import AssignmentError
from autograder.checks import NotAssessed, Outcome
from autograder.hidden import call_with_fixtures, run_checks


# --- reading what the sandbox wrote -----------------------------------------------------------------

def test_a_symlink_planted_by_the_student_is_refused(tmp_path):
    secret = tmp_path / "labels.npy"
    np.save(secret, np.arange(10))
    export = tmp_path / "export"
    export.mkdir()
    os.symlink(secret, export / "confusion.npy")
    with pytest.raises(ArtifactError, match="symbolic link"):
        read_untrusted(export, "confusion.npy", 1000)


def test_oversized_and_special_files_are_refused(tmp_path):
    (tmp_path / "big.json").write_text("[" + "1," * 1000 + "1]")
    with pytest.raises(ArtifactError, match="limit"):
        read_untrusted(tmp_path, "big.json", 100)
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ArtifactError, match="regular"):
        read_untrusted(tmp_path, "pipe", 100)


def test_pickled_arrays_are_never_loaded(tmp_path):
    np.save(tmp_path / "evil.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ArtifactError):
        read_array(tmp_path, "evil.npy", shape=(None,), kinds="f")


@pytest.mark.parametrize("array, problem", [
    (np.full((4, 10), np.nan, dtype=np.float32), "NaN"),
    (np.zeros((4, 9), dtype=np.float32), "shape"),
    (np.zeros((4, 10), dtype=np.complex64), "dtype"),
])
def test_predictions_must_be_finite_numbers_of_the_right_shape(tmp_path, array, problem):
    np.save(tmp_path / "p.npy", array)
    with pytest.raises(ArtifactError, match=problem):
        read_array(tmp_path, "p.npy", shape=(4, 10), kinds="f")


def test_bad_json_is_an_artifact_error(tmp_path):
    (tmp_path / "m.json").write_bytes(b"\xff\xfe not json")
    with pytest.raises(ArtifactError, match="JSON"):
        read_json(tmp_path, "m.json")


def test_evidence_survives_a_forged_export(tmp_path):
    export, predictions = tmp_path / "export", tmp_path / "predictions"
    export.mkdir()
    predictions.mkdir()
    (export / "manifest.json").write_text(json.dumps({"models": {"mlp": {"variable": "m", "file": "mlp.keras"},
                                                                 "cnn": "not a dict"}, "probes": []}))
    (predictions / "summaries.json").write_text(json.dumps({"mlp": {"summary": {"layers": []}}}))
    np.save(predictions / "mlp.eval.npy", np.zeros((3, 10), dtype=np.float32))
    np.save(predictions / "mlp.public.npy", np.zeros((2, 10), dtype=np.float32))  # wrong length
    evidence = load_evidence(export, predictions, {"eval": 3, "public": 5})
    assert evidence.models["mlp"].predictions == {} and "shape" in evidence.models["mlp"].error
    assert evidence.models["cnn"].error == "no model found"
    assert evidence.probes == {} and evidence.confusion is None


# --- architecture rules -----------------------------------------------------------------------------

def summary(*layers: dict, input_shape=(None, 28, 28), output=(None, 10), params=1000, **extra) -> dict:
    return {"input_shape": list(input_shape), "output_shape": list(output), "params": params,
            "layers": list(layers), **extra}


DENSE_OUT = {"class": "Dense", "units": 10, "activation": "softmax"}


def test_kind_is_read_from_the_layers():
    assert architecture.kind(summary({"class": "Flatten"}, {"class": "Dense"}, DENSE_OUT)) == "mlp"
    assert architecture.kind(summary({"class": "Conv2D"}, {"class": "MaxPooling2D"}, DENSE_OUT)) == "cnn"
    assert architecture.kind(summary({"class": "Bidirectional", "wraps": {"class": "LSTM"}}, DENSE_OUT)) == "lstm"
    assert architecture.kind(summary({"class": "Flatten"})) is None


def test_a_well_formed_mlp_passes_every_rule():
    mlp = summary({"class": "Flatten"}, {"class": "Dense", "units": 64, "activation": "relu"}, DENSE_OUT)
    outcome = architecture.architecture_outcome("mlp", mlp, max_params=10_000)
    assert outcome.fraction == 1.0 and outcome.status == "passed"


@pytest.mark.parametrize("arch, model, problem", [
    ("mlp", summary({"class": "Dense", "units": 64}, {"class": "Flatten"}, DENSE_OUT), "before the image is flattened"),
    ("mlp", summary({"class": "Flatten"}, {"class": "Dense", "units": 64}, {**DENSE_OUT, "activation": "relu"}),
     "activation 'relu'"),
    ("cnn", summary({"class": "Conv2D"}, {"class": "Flatten"}, DENSE_OUT), "no pooling"),
    ("lstm", summary({"class": "LSTM", "input_shape": [None, 784, 1]}, DENSE_OUT), "not 28 steps"),
    ("mlp", summary({"class": "Flatten"}, {"class": "Dense"}, DENSE_OUT, params=10**7), "over the budget"),
])
def test_each_rule_fails_with_its_reason(arch, model, problem):
    outcome = architecture.architecture_outcome(arch, model, max_params=10**6)
    assert 0 < outcome.fraction < 1 and problem in outcome.message


def test_the_mlp_rule_names_the_flattening_the_model_really_has():
    flattened = summary({"class": "Flatten"}, {"class": "Dense", "units": 64}, DENSE_OUT)
    flat_input = {**summary({"class": "Dense", "units": 64}, DENSE_OUT), "input_shape": [None, 784]}
    assert architecture.dense_after_flatten(flattened) == (True, "Flatten then 1 hidden Dense layer(s)")
    assert architecture.dense_after_flatten(flat_input) == (True, "flat input then 1 hidden Dense layer(s)")


def test_a_missing_array_is_reported_once_in_the_preprocessing_message(repo):
    spec = importlib.util.spec_from_file_location("data_tests", repo / "assignments/mnist/hidden/data_tests.py")
    data_tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data_tests)
    present = {"present": True, "dtype": "float32", "min": 0.0, "max": 1.0, "shape": [100, 28, 28]}
    probes = {"x_train": {"present": False}, "x_val": present, "x_test": present}

    message = data_tests.preprocessing(probes).message

    assert message.count("x_train is missing") == 1 and "shape []" not in message


def test_logits_with_a_from_logits_loss_are_accepted():
    model = summary({"class": "Flatten"}, {"class": "Dense"}, {"class": "Dense", "activation": "linear"},
                    from_logits=True)
    assert architecture.ten_way_output(model)[0]


def test_a_model_of_the_wrong_kind_scores_zero():
    mlp = summary({"class": "Flatten"}, {"class": "Dense"}, DENSE_OUT)
    outcome = architecture.architecture_outcome("gru", mlp, max_params=10**6)
    assert outcome.fraction == 0 and "an MLP, not a GRU" in outcome.message


# --- the hidden-test runner -------------------------------------------------------------------------

def test_fixtures_are_injected_by_parameter_name():
    def uses_two(models, probes):
        return Outcome(0.5, f"{models}-{probes}")
    assert call_with_fixtures(uses_two, {"models": 1, "probes": 2, "other": 3}).message == "1-2"


def test_unknown_fixture_and_wrong_return_type_are_instructor_errors():
    with pytest.raises(AssignmentError, match="unknown fixtures"):
        call_with_fixtures(lambda nonexistent: None, {"models": 1})
    with pytest.raises(AssignmentError, match="not an Outcome"):
        call_with_fixtures(lambda: True, {})


def test_run_checks_scores_not_assessed_and_buggy_tests_fairly(small_assignment):
    def not_assessed():
        raise NotAssessed("the model cell failed")

    def buggy():
        raise ZeroDivisionError("instructor bug")

    tests = {check.test: (lambda: Outcome(1.0, "fine")) for q in small_assignment.questions for check in q.checks}
    tests["mlp_accuracy"], tests["cnn_accuracy"] = not_assessed, buggy
    questions = {q["id"]: q for q in run_checks(small_assignment, {}, tests)}
    mlp_acc = next(c for c in questions["q2"]["checks"] if c["name"] == "mlp_accuracy")
    cnn_acc = next(c for c in questions["q3"]["checks"] if c["name"] == "cnn_accuracy")
    assert mlp_acc["status"] == "not_assessed" and mlp_acc["score"] == 0 and "cell failed" in mlp_acc["message"]
    assert cnn_acc["status"] == "grader_error" and "ZeroDivisionError" in cnn_acc["detail"]
    assert "instructor bug" not in cnn_acc["message"]
    assert questions["q1"]["score"] == 10 and questions["q2"]["score"] == 8
    assert sum(q["score"] for q in questions.values()) == 100 - 10 - 10
