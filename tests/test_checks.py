"""Phase B pieces on their own: the untrusted-artifact reader, architecture rules, the hidden-test runner."""
from __future__ import annotations

import functools
import json
import os
import shutil

import numpy as np
import pytest

import exports
from autograder.assignment import AssignmentError
from autograder.run.inside import contract, predict
from autograder.score import architecture
from autograder.score.artifacts import (ArtifactError, ConfusionCandidate, ModelEvidence, load_evidence, read_array,
                                        read_json, read_untrusted, save_evidence, stored_evidence)
from autograder.score.checks import NeedsReview, NotAssessed, Outcome
from autograder.score.hidden import call_with_fixtures, review_list, run_checks


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


IMAGE_COUNTS = {"eval": 20, "public": 30}
ABLATED = 8  # eval images the prediction sandbox ablates


@pytest.fixture(scope="module")
def real_export(mnist, tmp_path_factory):
    """An export as the sandboxes write it, by their own code run in-process: a notebook that trained an MLP
    (with a validation split) and a CNN it kept no name for, left an untrained LSTM and GRU under their
    template names, and two confusion matrices; then each model's summary and class scores."""
    import keras

    where = tmp_path_factory.mktemp("real-export")
    x, y = mnist.x_train[:128] / 255.0, mnist.y_train[:128]
    with exports.notebook_kernel(keras):
        keras.utils.set_random_seed(0)
        mlp = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
        mlp.compile("adam", "sparse_categorical_crossentropy")
        mlp.fit(x, y, epochs=2, batch_size=64, validation_split=0.1, verbose=0)
        cnn = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(2, 3), keras.layers.MaxPooling2D(),
                                keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
        cnn.compile("adam", "sparse_categorical_crossentropy")
        cnn.fit(x[..., None], y, epochs=1, batch_size=64, verbose=0)  # kept by nothing but the fit hook
        recurrent = {name: keras.Sequential([keras.Input((28, 28)), layer(4), keras.layers.Dense(10, "softmax")])
                     for name, layer in (("lstm_model", keras.layers.LSTM), ("gru_model", keras.layers.GRU))}
        namespace = {"mlp_model": mlp, **recurrent, "x_train": x, "y_train": y, "best_model_name": "mlp",
                     "confusion": np.eye(10, dtype=np.int64), "cm2": np.full((10, 10), 3, dtype=np.int64)}
        exports.write_export(namespace, where / "export")
    images = {name: mnist.x_test[:n] for name, n in IMAGE_COUNTS.items()}
    exports.run_predict(where / "export", where / "predictions", images, f"--ablate=eval:{ABLATED}")
    return where


def copied_export(real_export, tmp_path):
    """A copy of the real export and predictions, for a test to corrupt."""
    shutil.copytree(real_export / "export", tmp_path / "export")
    shutil.copytree(real_export / "predictions", tmp_path / "predictions")
    return tmp_path / "export", tmp_path / "predictions"


def test_the_real_export_is_read_whole(real_export, tmp_path):
    """What the sandboxes wrote, untouched, is all evidence: no problem, every model found is predicted."""
    export, predictions = copied_export(real_export, tmp_path)
    evidence = load_evidence(export, predictions, IMAGE_COUNTS)
    assert evidence.problems == [] and evidence.export_errors == []
    assert {arch for arch, model in evidence.models.items() if model.found} == {"mlp", "cnn", "lstm", "gru"}
    assert all(model.error is None and set(model.predictions) == set(IMAGE_COUNTS)
               for model in evidence.models.values() if model.found)


def test_evidence_survives_a_forged_export(real_export, tmp_path):
    export, predictions = copied_export(real_export, tmp_path)

    def forge(manifest: dict) -> None:
        manifest["models"]["cnn"] = "not a dict"
        manifest.update(data=[], errors={"not": "a list"}, confusion={"not": "a list"})
    exports.rewrite_manifest(export, forge)
    # The public set holds more images than the sandbox predicted: its scores have the wrong length.
    evidence = load_evidence(export, predictions, {**IMAGE_COUNTS, "public": IMAGE_COUNTS["public"] + 3})
    assert evidence.models["mlp"].predictions == {} and "shape" in evidence.models["mlp"].error
    assert not evidence.models["cnn"].found and evidence.models["cnn"].error is None
    assert evidence.data == {} and evidence.confusion == [] and evidence.export_errors == []


def test_a_manifest_of_another_version_is_a_note_not_evidence(real_export, tmp_path):
    export, predictions = copied_export(real_export, tmp_path)
    exports.rewrite_manifest(export, lambda manifest: manifest.pop("version"))
    evidence = load_evidence(export, predictions, IMAGE_COUNTS)
    assert not any(model.found for model in evidence.models.values())
    assert len(evidence.problems) == 1 and "manifest version None" in evidence.problems[0]


def full_export(real_export, tmp_path):
    """The real export with hostile fields: fit rows that point nowhere, counts that are no numbers, a save
    that failed, a prediction stopped by its budget, an unknown data role, a confusion matrix outside the
    export, and an error of the export's own."""
    export, predictions = copied_export(real_export, tmp_path)

    def corrupt(manifest: dict) -> None:
        models = manifest["models"]
        models["mlp"]["fit_rows"] = [0, 0, len(manifest["fits"]) + 5, -1, True, "1"]
        models["cnn"].update(fit_steps="many", weights_moved=float("nan"), fit_rows="0")
        models["gru"].update(file=None, error="save failed: " + "x" * 999)
        manifest["data"]["bogus_role"] = {"variable": "z"}
        manifest["confusion"].append({"variable": "evil", "found_by": "content", "file": "../../etc/passwd"})
        manifest["errors"] = ["probe x_val: a str"]
    manifest = exports.rewrite_manifest(export, corrupt)
    # Begun, never finished: the grader stopped it over its budget before its summary was written.
    (predictions / contract.SUMMARY_FILE.format(arch="lstm")).unlink()
    assert (predictions / contract.STARTED_FILE.format(arch="lstm")).is_file()
    return export, predictions, manifest


def test_manifest_v2_and_per_model_files_are_read_as_plain_validated_data(real_export, tmp_path):
    export, predictions, manifest = full_export(real_export, tmp_path)
    evidence = load_evidence(export, predictions, IMAGE_COUNTS)
    mlp, cnn, lstm, gru = (evidence.models[a] for a in ("mlp", "cnn", "lstm", "gru"))
    exported = manifest["models"]["mlp"]
    assert mlp.found and mlp.variable == "mlp_model" and mlp.found_by == "name" and mlp.error is None
    assert mlp.training == {key: exported[key] for key in ("fit_calls", "fit_steps", "training_steps",
                                                           "weights_moved")}
    assert mlp.training["fit_calls"] == 1 and mlp.training["weights_moved"] > 0
    assert mlp.fits == [evidence.fits[0]]  # its one real fit row, once; the others point nowhere
    assert evidence.fits[0]["model"] == "mlp_model" and evidence.fits[0]["trained_on"]["images"] > 0
    assert mlp.fed == json.loads((predictions / contract.SUMMARY_FILE.format(arch="mlp")).read_text())["fed"]
    assert mlp.input == exported["input"] and mlp.input["shape"] == [28, 28]
    assert set(mlp.predictions) == set(IMAGE_COUNTS) and mlp.ablated == {}  # an MLP has no layers to zero
    assert cnn.variable is None and cnn.found_by == "fit" and cnn.training["fit_steps"] == 0  # "many" is no count
    assert cnn.fits == []
    assert cnn.training["weights_moved"] is None and len(cnn.ablated["eval"]) == ABLATED
    assert cnn.ablation["zeroed"] == [layer["name"] for layer in cnn.summary["layers"] if layer["class"] == "Conv2D"]
    assert lstm.found and "stopped" in lstm.error
    assert gru.found and "could not be saved" in gru.error and len(gru.error) < 300
    assert not evidence.models["simple_rnn"].found
    assert set(evidence.data) == set(manifest["data"]) - {"bogus_role"} and "x_train" in evidence.data
    assert evidence.validation["kind"] == "split"
    assert [c.variable for c in evidence.confusion] == ["confusion", "cm2"]
    assert [p for p in evidence.problems if "evil" in p]  # a path outside the export is refused
    assert evidence.export_errors == ["probe x_val: a str"]  # the export's own words, apart from rejected files
    assert not any("x_val" in p for p in evidence.problems)


def test_stored_evidence_round_trips_everything_a_regrade_needs(real_export, tmp_path):
    export, predictions, _ = full_export(real_export, tmp_path)
    evidence = load_evidence(export, predictions, IMAGE_COUNTS)
    save_evidence(evidence, tmp_path / "stored")
    again = stored_evidence(tmp_path / "stored")
    for arch, model in evidence.models.items():
        other = again.models[arch]
        assert (other.found, other.variable, other.training, other.fed, other.error, other.ablation) == \
            (model.found, model.variable, model.training, model.fed, model.error, model.ablation)
        assert {k: v.tolist() for k, v in other.predictions.items()} == \
            {k: v.tolist() for k, v in model.predictions.items()}
        assert {k: v.tolist() for k, v in other.ablated.items()} == {k: v.tolist() for k, v in model.ablated.items()}
    assert [c.matrix.tolist() for c in again.confusion] == [c.matrix.tolist() for c in evidence.confusion]
    assert (again.data, again.validation, again.best_model, again.fits, again.problems, again.export_errors) == \
        (evidence.data, evidence.validation, evidence.best_model, evidence.fits, evidence.problems,
         evidence.export_errors)


def test_the_exports_own_errors_are_kept_as_capped_plain_text(real_export, tmp_path):
    """The manifest's ``errors`` come from the student's kernel: strings, capped in length and number."""
    from autograder.score.artifacts import MAX_EXPORT_ERRORS
    errors = ["x" * 10_000, {"nested": ["not", "text"]}, 42] + [f"error {i}" for i in range(100)]
    export, predictions = copied_export(real_export, tmp_path)
    exports.rewrite_manifest(export, lambda manifest: manifest.update(errors=errors))
    evidence = load_evidence(export, predictions, IMAGE_COUNTS)
    assert len(evidence.export_errors) == MAX_EXPORT_ERRORS
    assert all(isinstance(e, str) and len(e) <= contract.MAX_TEXT for e in evidence.export_errors)
    assert evidence.export_errors[:4] == ["x" * contract.MAX_TEXT, "{'nested': ['not', 'text']}", "42", "error 0"]


# --- architecture rules -----------------------------------------------------------------------------

@functools.cache
def written_keys() -> tuple[frozenset[str], frozenset[str]]:
    """The keys the prediction sandbox writes in a summary and in its layers (``predict.summarize`` of a real
    model holding every kind of layer these rules read)."""
    import keras

    layers = keras.layers
    model = keras.Sequential([keras.Input((28, 28)), layers.Bidirectional(layers.LSTM(4, return_sequences=True)),
                              layers.Reshape((28, 8, 1)), layers.Conv2D(2, 3, strides=2, activation="relu"),
                              layers.MaxPooling2D(), layers.Dropout(0.1), layers.Flatten(),
                              layers.Dense(10, activation="softmax")])
    written = predict.summarize(model)
    inner = [layer["wraps"] for layer in written["layers"] if "wraps" in layer]
    return frozenset(written), frozenset(key for layer in written["layers"] + inner for key in layer)


def summary(*layers: dict, input_shape=(None, 28, 28), output=(None, 10), params=1000, **extra) -> dict:
    """A model summary in the prediction sandbox's shape, holding only keys it writes (so a rule cannot be
    tested on a field the sandbox never fills in)."""
    written = {"input_shape": input_shape and list(input_shape), "output_shape": output and list(output),
               "params": params, "layers": list(layers), **extra}
    summary_keys, layer_keys = written_keys()
    assert set(written) <= summary_keys, set(written) - summary_keys
    for layer in layers:
        assert set(layer) | set(layer.get("wraps") or {}) <= layer_keys, set(layer) - layer_keys
    return written


DENSE_OUT = {"class": "Dense", "units": 10, "activation": "softmax"}


def test_kind_is_read_from_the_layers_with_the_contracts_classifier():
    assert architecture.kind(summary({"class": "Flatten"}, {"class": "Dense"}, DENSE_OUT)) == "mlp"
    assert architecture.kind(summary({"class": "Conv2D"}, {"class": "MaxPooling2D"}, DENSE_OUT)) == "cnn"
    assert architecture.kind(summary({"class": "SeparableConv2D"}, DENSE_OUT)) == "cnn"
    assert architecture.kind(summary({"class": "Conv1D"}, DENSE_OUT)) == "cnn"
    assert architecture.kind(summary({"class": "Bidirectional", "wraps": {"class": "LSTM"}}, DENSE_OUT)) == "lstm"
    assert architecture.kind(summary({"class": "SimpleRNN"}, {"class": "LSTM"}, DENSE_OUT)) == "mixed"
    assert architecture.kind(summary({"class": "Flatten"})) is None


def test_a_well_formed_mlp_passes_every_rule_and_says_what_it_is():
    mlp = summary({"class": "Flatten"}, {"class": "Dense", "units": 64, "activation": "relu"}, DENSE_OUT)
    outcome = architecture.architecture_outcome("mlp", mlp, budget=10_000)
    assert outcome.fraction == 1.0 and outcome.status == "passed"
    assert "a Flatten layer makes the image a vector, then 1 hidden Dense layer(s)" in outcome.message
    vector = summary({"class": "Dense", "units": 64}, {"class": "Dense", "units": 32}, DENSE_OUT, input_shape=(None, 784))
    message = architecture.architecture_outcome("mlp", vector, budget=10_000).message
    assert "input is already a vector, then 2 hidden Dense" in message and "Flatten" not in message


@pytest.mark.parametrize("arch, model, problem", [
    ("mlp", summary({"class": "Dense", "units": 64}, {"class": "Flatten"}, DENSE_OUT), "before the image is flattened"),
    ("mlp", summary({"class": "Flatten"}, {"class": "Dense", "units": 64}, {**DENSE_OUT, "activation": "relu"}),
     "activation 'relu'"),
    ("cnn", summary({"class": "Conv2D"}, {"class": "Flatten"}, DENSE_OUT), "no pooling"),
    ("lstm", summary({"class": "LSTM", "input_shape": [None, 784, 1]}, DENSE_OUT), "not 28 steps"),
    ("mlp", summary({"class": "Flatten"}, {"class": "Dense"}, DENSE_OUT, params=10**7), "over the budget"),
])
def test_each_rule_fails_with_its_reason(arch, model, problem):
    outcome = architecture.architecture_outcome(arch, model, budget=10**6)
    assert 0 < outcome.fraction < 1 and problem in outcome.message


def test_a_1d_convolution_over_the_rows_is_a_cnn_that_earns_part_of_the_architecture_points():
    rows = summary({"class": "Conv1D", "input_shape": [None, 28, 28]}, {"class": "MaxPooling1D"}, {"class": "Flatten"},
                   {"class": "Dense", "units": 64}, DENSE_OUT)
    assert architecture.kind(rows) == "cnn" and architecture.not_of_kind("cnn", rows) is None
    outcome = architecture.architecture_outcome("cnn", rows, budget=10**6)
    assert outcome.fraction == pytest.approx(3 / 4)
    assert "its convolutions (Conv1D) slide along one dimension only" in outcome.message
    image = summary({"class": "SeparableConv2D"}, {"class": "Conv1D"}, {"class": "MaxPooling2D"}, {"class": "Flatten"},
                    DENSE_OUT)
    assert architecture.architecture_outcome("cnn", image, budget=10**6).fraction == 1.0


def test_strided_convolutions_downsample_like_pooling():
    cnn = summary({"class": "Conv2D", "strides": [2, 2]}, {"class": "Flatten"}, DENSE_OUT)
    assert architecture.convolution_and_downsampling(cnn) == (True, "1 convolutional layer(s) (Conv2D) and "
                                                                   "1 strided convolution(s)")


def test_a_real_cnn_that_downsamples_by_strides_passes_as_the_prediction_sandbox_describes_it():
    """The rule reads each convolution's strides: the sandbox's summary must record them."""
    import keras

    layers = keras.layers
    cnn = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, 3, strides=2, activation="relu"),
                            layers.Conv2D(8, 3, strides=2, activation="relu"), layers.Flatten(),
                            layers.Dense(10, activation="softmax")])
    assert architecture.architecture_outcome("cnn", predict.summarize(cnn), budget=10**6).fraction == 1.0


def test_a_subclassed_models_output_is_read_from_its_last_layer():
    subclassed = summary({"class": "Conv2D"}, {"class": "MaxPooling2D"}, {"class": "Flatten"}, DENSE_OUT,
                         input_shape=None, output=None)
    assert architecture.ten_way_output(subclassed) == (True, "10-way softmax output")
    assert architecture.architecture_outcome("cnn", subclassed, budget=10**6).fraction == 1.0


def test_logits_with_a_from_logits_loss_are_accepted():
    model = summary({"class": "Flatten"}, {"class": "Dense"}, {"class": "Dense", "activation": "linear"},
                    from_logits=True)
    assert architecture.ten_way_output(model)[0]


def test_a_model_of_the_wrong_kind_scores_zero():
    mlp = summary({"class": "Flatten"}, {"class": "Dense"}, DENSE_OUT)
    outcome = architecture.architecture_outcome("gru", mlp, budget=10**6)
    assert outcome.fraction == 0 and "an MLP, not a GRU" in outcome.message


def test_a_cnn_with_a_recurrent_branch_is_no_recurrent_network():
    hybrid = summary({"class": "Conv2D"}, {"class": "MaxPooling2D"}, {"class": "Flatten"},
                     {"class": "SimpleRNN", "units": 2, "input_shape": [None, 28, 28]}, {"class": "Concatenate"},
                     DENSE_OUT)
    outcome = architecture.architecture_outcome("simple_rnn", hybrid, budget=10**6)
    assert outcome.fraction == 0 and "(Conv2D, MaxPooling2D, Concatenate)" in outcome.message
    assert architecture.not_of_kind("cnn", hybrid) == "This model is a SimpleRNN, not a CNN."


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


def test_needs_review_is_its_own_status_and_lands_in_the_review_list(small_assignment):
    def cannot_judge():
        raise NeedsReview("the subclassed model would not rebuild")

    tests = {check.test: (lambda: Outcome(1.0, "fine")) for q in small_assignment.questions for check in q.checks}
    tests["cnn_accuracy"] = cannot_judge
    questions = run_checks(small_assignment, {}, tests)
    q3 = next(q for q in questions if q["id"] == "q3")
    assert q3["status"] == "needs_review" and q3["score"] == 6
    assert review_list(questions) == [{"kind": "needs_review", "question": "q3", "check": "cnn_accuracy",
                                       "reason": "the subclassed model would not rebuild"}]


def test_a_fixture_with_a_default_may_be_missing():
    def written_ahead(models, printed=()):
        return Outcome(1.0, f"{models}{printed}")
    assert call_with_fixtures(written_ahead, {"models": 1}).message == "1()"
    assert call_with_fixtures(written_ahead, {"models": 1, "printed": 2}).message == "12"


# --- q1 and q7 (hidden/data_tests.py) ---------------------------------------------------------------

def probe(variable, shape, *, found_by="name", **stats):
    return {"variable": variable, "found_by": found_by, "present": True, "is_array": True, "type": "ndarray",
            "dtype": "float32", "shape": list(shape), **stats}


SCALED = {"min": 0.0, "max": 1.0, "mean": 0.13, "std": 0.31}
RAW = {"min": 0.0, "max": 255.0, "mean": 33.3, "std": 78.6, "dtype": "uint8"}
TEMPLATE_DATA = {"x_train": probe("x_train", (54000, 28, 28), **SCALED),
                 "y_train": probe("y_train", (54000,), labels="int"),
                 "x_val": probe("x_val", (6000, 28, 28), **SCALED), "y_val": probe("y_val", (6000,), labels="int"),
                 "x_test": probe("x_test", (10000, 28, 28), **SCALED), "y_test": probe("y_test", (10000,), labels="int")}
ARRAYS = {"kind": "arrays", "fraction": None, "variable": "x_val"}


def test_the_template_preprocessing_earns_full_points_and_names_its_variables(data_tests):
    outcome = data_tests.preprocessing(TEMPLATE_DATA, ARRAYS)
    assert outcome.fraction == 1.0 and "`x_train` (by its name), scaled to [0, 1]" in outcome.message


def test_any_names_a_validation_split_one_hot_labels_and_standardisation_count(data_tests):
    data = {"x_train": probe("X", (60000, 784), found_by="fit", min=-0.42, max=2.8, mean=0.0, std=1.0),
            "y_train": probe("Y", (60000, 10), found_by="fit", labels="one_hot"),
            "x_test": probe("Xt", (10000, 784), found_by="content", min=-0.42, max=2.8, mean=0.0, std=1.0),
            "y_test": probe("Yt", (10000, 10), found_by="content", labels="one_hot")}
    outcome = data_tests.preprocessing(data, {"kind": "split", "fraction": 0.1, "variable": None})
    assert outcome.fraction == 1.0, outcome.message
    assert "`X` (as what fit() was given), standardised (mean 0.00, std 1.00)" in outcome.message
    assert "validation_split=0.1" in outcome.message and "one-hot labels" in outcome.message


def test_raw_pixels_cost_most_of_the_preprocessing_points(data_tests):
    data = {role: ({**p, **RAW} if role.startswith("x_") else p) for role, p in TEMPLATE_DATA.items()}
    outcome = data_tests.preprocessing(data, ARRAYS)
    # Scaling carries 6 of the 10 points; shapes, labels, validation and the test set hold: 4 / 10.
    assert outcome.fraction == pytest.approx(0.4)
    assert "holds raw pixel values (0 to 255)" in outcome.message


def test_raw_arrays_that_only_feed_a_scaling_pipeline_are_no_preprocessing_mistake(data_tests, mnist):
    """tf.data notebooks keep the 0-255 arrays and scale in Dataset.map: what fit received is what counts."""
    from autograder.run.inside import probe as inside_probe

    data = {role: ({**p, **RAW} if role.startswith("x_") else p) for role, p in TEMPLATE_DATA.items()}
    batches = inside_probe.probe(mnist.x_train[:2048].astype("float32") / 255)  # the fit hook's x_sample
    dataset = {"present": True, "type": "_PrefetchDataset", "kind": "dataset", "is_array": False}
    piped = {arch: ModelEvidence(arch, found=True, fits=[{"x": dataset, "x_sample": batches}])
             for arch in ("mlp", "gru")}
    outcome = data_tests.preprocessing(data, ARRAYS, piped)
    assert outcome.fraction == 1.0, outcome.message
    assert "`x_train` (by its name), raw, scaled to [0, 1] by the input pipeline fit() was fed" in outcome.message
    # One model fit on the raw arrays themselves: they are its preprocessing, and they are raw.
    piped["cnn"] = ModelEvidence("cnn", found=True,
                                 fits=[{"x": inside_probe.probe(mnist.x_train[:10]), "x_sample": None}])
    assert data_tests.preprocessing(data, ARRAYS, piped).fraction == pytest.approx(0.4)  # scaling: 6 of 10
    # A pipeline that hands fit raw pixels scales nothing.
    raw_batches = inside_probe.probe(mnist.x_train[:2048].astype("float32"))
    raw_piped = {"mlp": ModelEvidence("mlp", found=True, fits=[{"x": dataset, "x_sample": raw_batches}])}
    assert data_tests.preprocessing(data, ARRAYS, raw_piped).fraction == pytest.approx(0.4)


def test_a_string_where_images_should_be_is_not_data(data_tests):
    forged = {**TEMPLATE_DATA, "x_val": {"variable": "x_val", "found_by": "name", "present": True, "type": "str",
                                         "is_array": False}}
    outcome = data_tests.preprocessing(forged, ARRAYS)
    assert outcome.fraction < 1 and "`x_val` (by its name) is not numeric data (a str" in outcome.message


def test_no_validation_and_a_partial_test_set_are_charged_once_each(data_tests):
    data = {**TEMPLATE_DATA, "x_test": probe("x_test", (5000, 28, 28), **SCALED),
            "y_test": probe("y_test", (5000,), labels="int")}
    del data["x_val"], data["y_val"]
    outcome = data_tests.preprocessing(data, {"kind": None})
    # Validation and the test set fail (1 of 10 points each); scaling, shapes and labels hold: 8 / 10.
    assert outcome.fraction == pytest.approx(0.8)
    assert "no validation set" in outcome.message and "found 5000 / 5000" in outcome.message


def test_no_data_at_all_is_not_assessed(data_tests):
    with pytest.raises(NotAssessed):
        data_tests.preprocessing({}, {})


def confusion_setup():
    rng = np.random.default_rng(3)
    public = rng.integers(0, 10, 10_000)
    models = {}
    for arch, wrong in (("mlp", 800), ("cnn", 150)):
        predicted = public.copy()
        predicted[:wrong] = (predicted[:wrong] + 1) % 10
        models[arch] = ModelEvidence(arch, found=True, predictions={"public": predicted})
    return public, models


def grid(labels, predicted):
    matrix = np.zeros((10, 10), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def test_the_confusion_matrix_is_chosen_by_agreement_with_a_model(data_tests):
    public, models = confusion_setup()
    candidates = [ConfusionCandidate("scores", "content", np.eye(10, dtype=np.int64)),
                  ConfusionCandidate("cm", "content", grid(public, models["cnn"].predictions["public"]))]
    outcome = data_tests.confusion_matrix(candidates, models, {"public": public})
    assert outcome.fraction == 1.0 and "`cm` matches your CNN" in outcome.message


def test_the_matrix_of_a_weaker_model_loses_a_quarter(data_tests):
    public, models = confusion_setup()
    candidates = [ConfusionCandidate("confusion", "name", grid(public, models["mlp"].predictions["public"]))]
    outcome = data_tests.confusion_matrix(candidates, models, {"public": public})
    assert outcome.fraction == 0.75 and "your CNN is more accurate" in outcome.message


def test_a_count_matrix_that_matches_no_model_earns_a_quarter(data_tests):
    public, models = confusion_setup()
    forged = np.diag(np.bincount(public, minlength=10)).astype(np.int64)  # "100 %": no model is that good
    outcome = data_tests.confusion_matrix([ConfusionCandidate("cm", "name", forged)], models, {"public": public})
    assert outcome.fraction == 0.25 and "does not match" in outcome.message
    with pytest.raises(NotAssessed):
        data_tests.confusion_matrix([], models, {"public": public})


def test_a_matrix_that_may_be_of_a_model_the_grader_could_not_run_goes_to_a_person(data_tests):
    public, models = confusion_setup()
    unrun_cnn = models.pop("cnn")
    candidates = [ConfusionCandidate("cm", "name", grid(public, unrun_cnn.predictions["public"]))]
    models["cnn"] = ModelEvidence("cnn", found=True, variable="cnn", error="prediction stopped at its budget")
    with pytest.raises(NeedsReview, match="could not run your CNN"):
        data_tests.confusion_matrix(candidates, models, {"public": public})
    with pytest.raises(NeedsReview, match="could not run your CNN"):  # no model ran at all
        data_tests.confusion_matrix(candidates, {"cnn": models["cnn"]}, {"public": public})
    # The matrix of a model that did run is still judged as usual.
    mlp = [ConfusionCandidate("cm", "name", grid(public, models["mlp"].predictions["public"]))]
    assert data_tests.confusion_matrix(mlp, models, {"public": public}).fraction > 0


def test_plain_keeps_integers_caps_strings_and_drops_what_is_not_data():
    from autograder.score.artifacts import plain
    value = plain({"shape": [500, 28, 28], "mean": 0.5, "nan": float("nan"), "flag": True, "name": "x" * 999,
                   "deep": [[[[[[["too deep"]]]]]]], "huge": 10**30})
    assert value["shape"] == [500, 28, 28] and all(type(n) is int for n in value["shape"])
    assert value["mean"] == 0.5 and value["nan"] is None and value["flag"] is True and value["huge"] is None
    assert len(value["name"]) == 200 and value["deep"] == [[[[[None]]]]]


def test_strings_in_every_data_role_earn_no_preprocessing_points(data_tests):
    """The numpy-patched-before-export attack: every role forged into a str; no rule may call it right."""
    forged = {role: {"variable": role, "found_by": "name", "present": True, "type": "str", "is_array": False}
              for role in TEMPLATE_DATA}
    outcome = data_tests.preprocessing(forged, ARRAYS)
    assert outcome.fraction == 0.0, outcome.detail
