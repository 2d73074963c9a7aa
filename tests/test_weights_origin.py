"""Where a model's weights came from (issue 24): the fit hook's record, read through the grader's door.

In-process, like test_export.py: each test trains small models on a few thousand MNIST images with the
grader's hooks installed, runs the real export, reads the manifest with ``artifacts.load_evidence`` and
applies the integrity rules. Weights "trained elsewhere" are trained here first, then every record is
forgotten (a new notebook), exactly what a notebook that brings them in looks like to the hook.
"""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

import keras  # noqa: E402  (a dependency of the project: never skipped)

from autograder.data import keras_cache_source
from autograder.run.inside import export, fit_hook
from autograder.score import artifacts, integrity

import exports
from test_export import fresh_records  # noqa: F401  (autouse: each test starts with no fit records)

CONFIG = {"models": exports.MODELS, "probes": {}}  # the template's model names; no data roles


@pytest.fixture(scope="module", autouse=True)
def hook(tmp_path_factory):
    """The hook, with the public sample where the sandbox mounts it (the Keras cache)."""
    home = tmp_path_factory.mktemp("keras_home")
    (home / "datasets").mkdir()
    (home / "datasets" / "mnist.npz").symlink_to(keras_cache_source())
    patch = pytest.MonkeyPatch()
    patch.setenv("KERAS_HOME", str(home))
    fit_hook._sample.clear()
    fit_hook.install(keras)
    yield
    fit_hook.uninstall()
    fit_hook._sample.clear()
    patch.undo()


@pytest.fixture(scope="module")
def data(mnist):
    return {"x": mnist.x_train[:3000].astype("float32") / 255.0, "y": mnist.y_train[:3000].astype("int64"),
            "x_test": mnist.x_test.astype("float32") / 255.0, "y_test": mnist.y_test.astype("int64")}


def mlp() -> keras.Model:
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(32, "relu"),
                              keras.layers.Dense(10, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


@pytest.fixture(scope="module")
def trained_elsewhere(data, tmp_path_factory) -> dict:
    """A model trained before the notebook starts: its weights as a base64 literal and as files."""
    keras.utils.set_random_seed(1)
    donor = mlp()
    donor.fit(data["x"], data["y"], epochs=3, verbose=0)
    where = tmp_path_factory.mktemp("elsewhere")
    donor.save(where / "pretrained.keras")
    donor.save_weights(where / "pretrained.weights.h5")
    buffer = io.BytesIO()
    np.savez(buffer, *donor.get_weights())
    fit_hook.forget()
    return {"base64": base64.b64encode(buffer.getvalue()).decode(), "model": where / "pretrained.keras",
            "weights": where / "pretrained.weights.h5"}


def findings(namespace: dict, tmp_path, arch: str = "mlp") -> dict[str, integrity.Finding]:
    """The integrity rules that read the hook's record, on the real export's manifest read by the door."""
    export.run(namespace, str(tmp_path), json.dumps(CONFIG))
    (tmp_path / "predictions").mkdir()
    model = artifacts.load_evidence(tmp_path, tmp_path / "predictions", {}).models[arch]
    return {"trained": integrity.trained(model), "weights": integrity.weights_from_this_notebook(model),
            "allowed": integrity.weights_from_this_notebook(model, allow_pretrained_weights=True)}


def test_base64_weights_then_a_token_fit_are_flagged(data, trained_elsewhere, tmp_path):
    with np.load(io.BytesIO(base64.b64decode(trained_elsewhere["base64"]))) as arrays:
        weights = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
    mlp_model = mlp()
    mlp_model.set_weights(weights)
    mlp_model.fit(data["x"][:2000], data["y"][:2000], epochs=1, verbose=0)
    found = findings({"mlp_model": mlp_model}, tmp_path)
    assert found["weights"].passed is False and found["weights"].evidence["weights_from"] == "set_weights"
    assert found["weights"].evidence["first_fit_accuracy"] > 0.7 and "set_weights()" in found["weights"].message
    assert found["allowed"].passed is True  # a course that permits transfer learning
    assert found["trained"].passed is True  # it was fit: only the origin of its weights is wrong


@pytest.mark.parametrize("how", ["load_model", "load_weights", "copied", "assigned"])
def test_weights_loaded_from_a_file_or_copied_from_another_model_are_flagged(how, data, trained_elsewhere, tmp_path):
    if how == "load_model":
        mlp_model = keras.models.load_model(trained_elsewhere["model"])
    else:
        mlp_model = mlp()
        donor = keras.saving.load_model(trained_elsewhere["model"])
        if how == "load_weights":
            mlp_model.load_weights(trained_elsewhere["weights"])
        elif how == "copied":
            mlp_model.set_weights(donor.get_weights())
        else:  # variable by variable: no set_weights or load call for the hook to see
            for mine, theirs in zip(mlp_model.weights, donor.weights):
                mine.assign(theirs)
    mlp_model.fit(data["x"][:2000], data["y"][:2000], epochs=1, verbose=0)
    finding = findings({"mlp_model": mlp_model}, tmp_path)["weights"]
    assert finding.passed is False and finding.evidence["start_accuracy"] > 0.7
    expected = {"load_model": "load_model", "load_weights": "load_weights", "copied": "set_weights",
                "assigned": "initialised"}[how]
    assert finding.evidence["weights_from"] == expected


def test_a_model_loaded_from_elsewhere_and_never_fit_is_flagged_too(trained_elsewhere, tmp_path):
    mlp_model = keras.models.load_model(trained_elsewhere["model"])
    found = findings({"mlp_model": mlp_model}, tmp_path)
    assert found["weights"].passed is False and found["weights"].evidence["weights_from"] == "load_model"
    assert found["trained"].passed is not True


def test_honest_training_second_fit_and_test_set_validation_are_not_flagged(data, tmp_path):
    mlp_model = mlp()
    mlp_model.fit(data["x"], data["y"], epochs=1, verbose=0, validation_data=(data["x_test"], data["y_test"]))
    mlp_model.evaluate(data["x_test"], data["y_test"], verbose=0)
    mlp_model.fit(data["x"], data["y"], epochs=1, verbose=0)  # continued training of its own model
    found = findings({"mlp_model": mlp_model}, tmp_path)
    assert found["weights"].passed is True and found["weights"].evidence["first_fit_accuracy"] < 0.2
    assert found["trained"].passed is True
    assert [fit["trained_on"]["images"] for fit in fit_hook.FITS] == [3000, 3000]  # validation data is not trained on


def test_reloading_checkpoints_the_notebook_wrote_is_honest(data, tmp_path):
    best = tmp_path / "best.weights.h5"
    mlp_model = mlp()
    checkpoint = keras.callbacks.ModelCheckpoint(str(best), save_weights_only=True, monitor="loss", save_best_only=True)
    mlp_model.fit(data["x"], data["y"], epochs=2, verbose=0, callbacks=[checkpoint])
    mlp_model.load_weights(best)
    mlp_model.save(tmp_path / "final.keras")
    reloaded = keras.models.load_model(tmp_path / "final.keras")  # model.save, then load_model
    fine_tuned = keras.models.load_model(tmp_path / "final.keras")
    fine_tuned.fit(data["x"][:1000], data["y"][:1000], epochs=1, verbose=0)  # a fine-tune of its own model
    copy = mlp()
    copy.set_weights(mlp_model.get_weights())  # weights copied from a model this notebook trained
    copy.fit(data["x"][:1000], data["y"][:1000], epochs=1, verbose=0)
    for model in (mlp_model, reloaded, fine_tuned, copy):
        found = findings({"mlp_model": model}, tmp_path / str(id(model)))
        assert found["weights"].passed is True, found["weights"]
        assert found["weights"].evidence["start_accuracy"] < 0.2
        assert found["trained"].passed is True, found["trained"]
    assert "checkpoint" in findings({"mlp_model": reloaded}, tmp_path / "again")["trained"].message


def test_early_stopping_that_restores_its_best_weights_is_honest(data, tmp_path):
    mlp_model = mlp()
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    mlp_model.fit(data["x"], data["y"], epochs=3, verbose=0, callbacks=[stop])
    mlp_model.fit(data["x"][:1000], data["y"][:1000], epochs=1, verbose=0)
    found = findings({"mlp_model": mlp_model}, tmp_path)
    assert found["weights"].passed is True and found["weights"].evidence["start_accuracy"] < 0.2


def test_weights_swapped_in_after_an_honest_first_fit_are_flagged(data, trained_elsewhere, tmp_path):
    mlp_model = mlp()
    mlp_model.fit(data["x"][:1000], data["y"][:1000], epochs=1, verbose=0)
    mlp_model.load_weights(trained_elsewhere["weights"])
    mlp_model.fit(data["x"][:1000], data["y"][:1000], epochs=1, verbose=0)
    finding = findings({"mlp_model": mlp_model}, tmp_path)["weights"]
    assert finding.passed is False and finding.evidence["first_fit_accuracy"] < 0.2
    assert finding.evidence["weight_events"][0].startswith("load_weights 0.")
