"""The export step and the fit hook, run in-process on namespaces shaped like real notebooks.

No sandbox: the kernel-side code is plain Python, so each test builds a small namespace the way a
student's notebook leaves it (models trained a step or two on a few hundred MNIST images), runs the
export and reads the manifest and files it wrote.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import keras  # noqa: E402  (a dependency of the project: never skipped)

import exports

from autograder.run.class_source import class_source  # noqa: E402
from autograder.run.inside import confusion_hook, contract, evaluate_hook, export, fit_hook, predict, probe  # noqa: E402
from autograder.score import architecture  # noqa: E402

#: The template names the grader's export cell passes: the assignment's [models] and [probes].
CONFIG = {"models": exports.MODELS, "probes": exports.PROBES}


@pytest.fixture(scope="module", autouse=True)
def hook():
    fit_hook.install(keras)
    yield
    fit_hook.uninstall()


@pytest.fixture(autouse=True)
def fresh_records():
    fit_hook.forget()
    keras.utils.set_random_seed(0)
    yield
    fit_hook.forget()


@pytest.fixture(scope="module")
def data(mnist):
    """A few hundred training images (scaled /255) and the 10,000 raw test images."""
    x = mnist.x_train[:384].astype("float32") / 255.0
    return {"x": x, "y": mnist.y_train[:384].astype("int64"), "x_test": mnist.x_test, "y_test": mnist.y_test}


def mlp(input_shape=(28, 28)) -> keras.Model:
    model = keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def cnn(input_shape=(28, 28, 1)) -> keras.Model:
    model = keras.Sequential([keras.Input(input_shape), keras.layers.Conv2D(2, 3), keras.layers.Flatten(),
                              keras.layers.Dense(10, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


run_export = exports.write_export


def test_template_names_win_and_every_fact_is_recorded(data, tmp_path):
    model = mlp()
    x_val, y_val = data["x"][:128], data["y"][:128]
    model.fit(data["x"], data["y"], epochs=1, batch_size=128, validation_data=(x_val, y_val), verbose=0)
    confusion = np.diag(np.full(10, 1000))
    namespace = {"mlp_model": model, "x_train": data["x"], "y_train": data["y"], "x_val": x_val, "y_val": y_val,
                 "x_test": data["x_test"] / 255.0, "y_test": data["y_test"], "confusion": confusion,
                 "best_model_name": "MLP"}
    manifest = run_export(namespace, tmp_path)

    assert manifest["version"] == 2 and manifest["errors"] == []
    entry = manifest["models"]["mlp"]
    assert entry["variable"] == "mlp_model" and entry["found_by"] == "name"
    assert entry["file"] == "mlp.keras" and not entry["subclassed"]
    assert keras.saving.load_model(tmp_path / contract.MODELS_DIR / "mlp.keras").count_params() == 7850
    assert entry["fit_calls"] == 1 and entry["fit_steps"] == 3 == entry["training_steps"]
    assert entry["fit_rows"] == [0]  # its call in manifest["fits"]
    assert entry["weights_baseline"] == "before_fit" and entry["weights_moved"] > 0
    assert entry["input"]["source"] == "fit" and entry["input"]["shape"] == [28, 28]
    assert contract.input_scaling(entry["input"]["mean"], entry["input"]["std"]) == (1 / 255, 0.0)
    assert {role: (found["variable"], found["found_by"]) for role, found in manifest["data"].items()} == {
        role: (role, "name") for role in contract.DATA_ROLES}
    assert manifest["data"]["y_train"]["labels"] == "int" and manifest["data"]["x_test"]["max"] == 1.0
    assert manifest["validation"] == {"kind": "data", "fraction": None, "variable": None}
    assert manifest["confusion"] == [{"variable": "confusion", "found_by": "name", "file": "confusion_0.npy",
                                      "total": 10000}]
    saved = np.load(tmp_path / "confusion_0.npy", allow_pickle=False)
    assert saved.dtype == np.int64 and (saved == confusion).all()
    assert manifest["best_model"] == "MLP"
    fit = manifest["fits"][0]
    assert fit["model"] == "mlp_model" and fit["validation_data"] and fit["validation_x"]["shape"] == [128, 28, 28]
    assert fit["epochs"] == 1 and fit["steps"] == 3 and fit["error"] is None


def test_model_built_and_trained_inside_a_function_is_found(data, tmp_path):
    def main():
        model = cnn()
        return model.fit(data["x"][..., None], data["y"], epochs=1, batch_size=128, verbose=0)

    def forgotten():  # nothing kept at all: only the fit hook still holds it
        mlp().fit(data["x"], data["y"], epochs=1, batch_size=128, verbose=0)

    history = main()
    forgotten()
    manifest = run_export({"history": history}, tmp_path)

    cnn_entry, mlp_entry = manifest["models"]["cnn"], manifest["models"]["mlp"]
    assert (cnn_entry["variable"], cnn_entry["found_by"]) == ("history.model", "history")
    assert (mlp_entry["variable"], mlp_entry["found_by"]) == (None, "fit")
    assert cnn_entry["fit_steps"] == 3 and cnn_entry["input"]["shape"] == [28, 28, 1]
    assert (tmp_path / contract.MODELS_DIR / "cnn.keras").is_file()
    assert manifest["data"]["x_train"]["found_by"] == "fit"
    assert manifest["data"]["x_train"]["variable"].startswith("fit #")  # an unnamed expression was fed


class DigitNet(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(2, 3, activation="relu")
        self.flatten = keras.layers.Flatten()
        self.out = keras.layers.Dense(10, activation="softmax")

    def call(self, inputs):
        return self.out(self.flatten(self.conv(inputs)))


def test_subclassed_model_is_saved_as_weights_with_its_fit_shape(data, tmp_path):
    net = DigitNet()
    net.compile("adam", "sparse_categorical_crossentropy")
    net.fit(data["x"][..., None], data["y"], epochs=1, batch_size=128, verbose=0)
    manifest = run_export({"net": net}, tmp_path)

    entry = manifest["models"]["cnn"]
    assert entry["subclassed"] and entry["class_name"] == "DigitNet" and entry["found_by"] == "discovered"
    assert entry["file"] == contract.model_file("cnn", True) == "cnn.weights.h5"
    assert (tmp_path / contract.MODELS_DIR / "cnn.weights.h5").is_file()
    assert not (tmp_path / contract.MODELS_DIR / "cnn.keras").exists()
    assert entry["input"]["shape"] == [28, 28, 1] and entry["input"]["source"] == "fit"
    assert entry["weights_baseline"] == "first_step"  # fit built it: no weights existed before
    rebuilt = DigitNet()
    rebuilt(np.zeros((1, 28, 28, 1), "float32"))
    rebuilt.load_weights(tmp_path / contract.MODELS_DIR / "cnn.weights.h5")
    assert np.allclose(rebuilt.predict(data["x"][:8, ..., None], verbose=0),
                       net.predict(data["x"][:8, ..., None], verbose=0))


BLOCKS_NOTEBOOK = {"cells": [{"cell_type": "code", "source": """import keras
from keras import layers

class ConvBlock(layers.Layer):
    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(filters, 3, padding="same", activation="relu")
        self.pool = layers.MaxPooling2D()

    def call(self, x):
        return self.pool(self.conv(x))

class BlockNet(keras.Model):
    def __init__(self):
        super().__init__()
        self.blocks = [ConvBlock(4), ConvBlock(8)]
        self.flat = layers.Flatten()
        self.out = layers.Dense(10, activation="softmax")

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return self.out(self.flat(x))

net = BlockNet()
"""}]}


def test_a_cnn_of_custom_layer_blocks_is_a_cnn_to_the_export_and_to_scoring(data, tmp_path):
    namespace: dict = {}
    exec(BLOCKS_NOTEBOOK["cells"][0]["source"], namespace)  # the test's own notebook, as the kernel runs it
    net = namespace["net"]
    net.compile("adam", "sparse_categorical_crossentropy")
    net.fit(data["x"][..., None], data["y"], epochs=1, batch_size=128, verbose=0)
    export_dir, out = tmp_path / "export", tmp_path / "predictions"
    export_dir.mkdir()
    out.mkdir()
    export.run({"net": net}, str(export_dir), json.dumps(CONFIG))
    manifest = json.loads((export_dir / contract.MANIFEST).read_text())
    assert list(manifest["models"]) == ["cnn"] and manifest["models"]["cnn"]["subclassed"]

    classes = tmp_path / contract.CLASS_SOURCE
    classes.write_text(class_source(BLOCKS_NOTEBOOK))
    np.save(tmp_path / "eval.npy", data["x_test"][:32])
    assert predict.main(["--classes", str(classes), "--ablate=eval:32", str(export_dir), str(out),
                         f"eval={tmp_path / 'eval.npy'}"]) == 0
    written = json.loads((out / contract.SUMMARY_FILE.format(arch="cnn")).read_text())
    assert written["error"] is None
    summary = written["summary"]
    assert architecture.layer_classes(summary) == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten",
                                                   "Dense"]
    assert architecture.kind(summary) == "cnn" and architecture.not_of_kind("cnn", summary) is None
    assert architecture.architecture_outcome("cnn", summary, budget=10**6).fraction == 1.0
    assert len(written["ablation"]["zeroed"]) == 2  # the convolutions inside the blocks do the work


def test_a_block_with_weights_of_its_own_is_listed_beside_what_it_holds():
    class Gated(keras.layers.Layer):  # a scale of its own: work no Keras layer names
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 3)
            self.gate = self.add_weight(shape=(1,), initializer="ones")

        def call(self, x):
            return self.conv(x) * self.gate

    inner = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10)])
    model = keras.Sequential([keras.Input((28, 28, 1)), Gated(), inner])  # a nested model is unrolled too
    assert export.layer_classes(model) == ["Gated", "Conv2D", "Flatten", "Dense"]
    assert contract.classify(export.layer_classes(model)) == "cnn"
    assert contract.disallowed_layers("cnn", export.layer_classes(model)) == ["Gated"]


def test_a_model_fit_built_and_stepped_once_has_no_weight_change_to_report(data, tmp_path):
    model = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])  # no Input
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(data["x"], data["y"], epochs=1, batch_size=len(data["x"]), verbose=0)
    entry = run_export({"model": model}, tmp_path)["models"]["mlp"]

    assert entry["fit_steps"] == 1 and entry["weights_baseline"] == "first_step"
    assert entry["weights_moved"] is None  # nothing existed before the step that built it: not "did not learn"


def test_keras2_style_names_are_found_by_fit_and_content(data, tmp_path):
    X_train, Y_train = data["x"][:256].reshape(-1, 784), keras.utils.to_categorical(data["y"][:256], 10)
    x_valid, y_valid = data["x"][256:].reshape(-1, 784), keras.utils.to_categorical(data["y"][256:], 10)
    X_test, Y_test = data["x_test"].reshape(-1, 784) / 255.0, keras.utils.to_categorical(data["y_test"], 10)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    model.fit(X_train, Y_train, batch_size=128, epochs=1, validation_data=(x_valid, y_valid), verbose=0)
    cm = np.bincount(data["y_test"] * 10 + data["y_test"], minlength=100).reshape(10, 10)
    namespace = {"X_train": X_train, "Y_train": Y_train, "x_valid": x_valid, "y_valid": y_valid,
                 "X_test": X_test, "Y_test": Y_test, "network": model, "cm": cm}
    manifest = run_export(namespace, tmp_path)

    found = {role: (entry["variable"], entry["found_by"]) for role, entry in manifest["data"].items()}
    assert found == {"x_train": ("X_train", "fit"), "y_train": ("Y_train", "fit"), "x_val": ("x_valid", "fit"),
                     "y_val": ("y_valid", "fit"), "x_test": ("X_test", "content"), "y_test": ("Y_test", "content")}
    assert manifest["data"]["y_train"]["labels"] == "one_hot" and manifest["data"]["x_test"]["images"]
    assert manifest["validation"] == {"kind": "data", "fraction": None, "variable": "x_valid"}
    assert manifest["models"]["mlp"]["variable"] == "network"
    assert manifest["models"]["mlp"]["input"]["shape"] == [784]
    assert manifest["confusion"][0]["variable"] == "cm" and manifest["confusion"][0]["found_by"] == "content"


def test_validation_split_and_unnamed_inputs(data, tmp_path):
    raw = (data["x"] * 255).astype("uint8")
    model = mlp()
    model.fit(raw / 255.0, data["y"], epochs=1, batch_size=128, validation_split=0.25, verbose=0)
    manifest = run_export({"raw_images": raw, "model": model}, tmp_path)

    assert manifest["validation"] == {"kind": "split", "fraction": 0.25, "variable": None}
    x_train = manifest["data"]["x_train"]
    assert x_train["found_by"] == "fit" and x_train["variable"] == "fit #0 x" and x_train["max"] <= 1.0
    assert manifest["models"]["mlp"]["fit_steps"] == 3  # 288 of 384 images train, batches of 128
    assert "x_val" not in manifest["data"]


def test_raw_pixel_training_is_reported_as_fed(data, tmp_path):
    raw = (data["x"] * 255).astype("float32")
    model = mlp()
    model.fit(raw, data["y"], epochs=1, batch_size=128, verbose=0)
    manifest = run_export({"model": model, "x_test": data["x_test"], "x_train": raw, "labels": data["y"]}, tmp_path)

    fed = manifest["models"]["mlp"]["input"]
    assert contract.input_scaling(fed["mean"], fed["std"]) == (1.0, 0.0) and fed["source"] == "fit"
    found = {role: (entry["variable"], entry["found_by"]) for role, entry in manifest["data"].items()}
    assert found["x_train"] == ("x_train", "name") and found["y_train"] == ("labels", "fit")


def test_confusion_matrices_by_content(data, tmp_path):
    import pandas
    from sklearn import metrics
    import tensorflow as tf

    counts = np.arange(100).reshape(10, 10)
    namespace = {"table": pandas.DataFrame(counts + 1), "same_table_again": pandas.DataFrame(counts + 1),
                 "tensor_cm": tf.math.confusion_matrix(data["y_test"], data["y_test"]),
                 "display": metrics.ConfusionMatrixDisplay(counts + 2),
                 "normalised": counts / counts.sum(), "negative": counts - 50, "not_square": np.ones((10, 9), int)}
    manifest = run_export(namespace, tmp_path)

    variables = [entry["variable"] for entry in manifest["confusion"]]
    assert variables == ["table", "tensor_cm", "display.confusion_matrix"]  # distinct count matrices only
    for index, expected in enumerate((counts + 1, np.diag(np.bincount(data["y_test"])), counts + 2)):
        saved = np.load(tmp_path / contract.CONFUSION_FILE.format(index=index), allow_pickle=False)
        assert saved.dtype == np.int64 and (saved == expected).all()


def test_a_display_under_the_template_name_gives_its_counts(tmp_path):
    from sklearn import metrics
    counts = np.arange(100).reshape(10, 10)
    manifest = run_export({"confusion": metrics.ConfusionMatrixDisplay(counts)}, tmp_path)

    assert manifest["confusion"] == [{"variable": "confusion.confusion_matrix", "found_by": "name",
                                      "file": "confusion_0.npy", "total": 4950}]


def test_confusion_candidates_are_capped_and_a_bad_named_one_is_reported(tmp_path):
    namespace = {"confusion": np.eye(10) / 2, **{f"cm{i}": np.full((10, 10), i) for i in range(20)}}
    manifest = run_export(namespace, tmp_path)

    assert len(manifest["confusion"]) == contract.MAX_CONFUSION_CANDIDATES
    assert all(entry["found_by"] == "content" for entry in manifest["confusion"])
    assert any(error.startswith("confusion is not a 10x10 matrix of counts") for error in manifest["errors"])


def test_patched_numpy_before_the_export_does_not_change_the_probes(data, tmp_path, monkeypatch):
    forged = np.full((100, 28, 28), 0.5)
    monkeypatch.setattr(np, "asarray", lambda *args, **kwargs: forged)
    monkeypatch.setattr(np, "mean", lambda *args, **kwargs: 0.5)
    monkeypatch.setattr(np, "save", lambda *args, **kwargs: None)
    monkeypatch.setattr(json, "dump", lambda *args, **kwargs: None)
    namespace = {"x_train": data["x"], "y_train": data["y"], "x_val": "no validation set",
                 "x_test": data["x_test"], "confusion": np.eye(10, dtype=int) * 1000}
    manifest = run_export(namespace, tmp_path)

    x_train = manifest["data"]["x_train"]
    assert x_train["shape"] == [384, 28, 28] and x_train["mean"] == pytest.approx(float(data["x"].mean()), 1e-5)
    assert manifest["data"]["x_test"]["max"] == 255.0
    assert manifest["data"]["x_val"] == {"variable": "x_val", "found_by": "name", "present": True, "type": "str",
                                         "kind": "str", "is_array": False}
    assert manifest["validation"]["kind"] is None
    assert (tmp_path / "confusion_0.npy").is_file()  # written with the grader's own np.save (and json.dump)


def test_a_str_where_x_val_should_be_gives_way_to_a_real_validation_array(data, tmp_path):
    namespace = {"x_train": data["x"][:256], "x_val": "see below", "x_valid": data["x"][256:],
                 "y_valid": data["y"][256:]}
    manifest = run_export(namespace, tmp_path)

    assert (manifest["data"]["x_val"]["variable"], manifest["data"]["x_val"]["found_by"]) == ("x_valid", "content")
    assert manifest["data"]["x_val"]["is_array"] and manifest["data"]["y_val"]["variable"] == "y_valid"
    assert manifest["validation"] == {"kind": "arrays", "fraction": None, "variable": "x_valid"}


def test_trained_mnist_shaped_models_are_preferred(data, tmp_path):
    cifar = cnn((32, 32, 3))  # never trained, and shaped for colour images
    untrained = cnn()
    trained = cnn()
    trained.fit(data["x"][..., None], data["y"], epochs=1, batch_size=128, verbose=0)
    stacked = keras.Sequential([keras.Input((28, 28)), keras.layers.Bidirectional(keras.layers.LSTM(2)),
                                keras.layers.Dense(10, "softmax")])
    mixed = keras.Sequential([keras.Input((28, 28)), keras.layers.SimpleRNN(2, return_sequences=True),
                              keras.layers.GRU(2), keras.layers.Dense(10)])
    namespace = {"a_cifar": cifar, "b_untrained": untrained, "models": [trained, stacked], "zoo": {"odd": mixed}}
    manifest = run_export(namespace, tmp_path)

    assert manifest["models"]["cnn"]["variable"] == "models[0]"
    assert manifest["models"]["cnn"]["found_by"] == "container"
    assert manifest["models"]["lstm"]["variable"] == "models[1]"
    assert "gru" not in manifest["models"] and "simple_rnn" not in manifest["models"]
    rows = {row["variable"]: row for row in manifest["candidates"]}
    assert rows["a_cifar"] == {"variable": "a_cifar", "found_by": "discovered", "class_name": "Sequential",
                               "kind": "cnn", "trained": False, "mnist_shaped": False, "chosen": None}
    assert rows["b_untrained"]["mnist_shaped"] and not rows["b_untrained"]["trained"]
    assert rows["zoo['odd']"]["kind"] == "mixed" and rows["models[0]"]["chosen"] == "cnn"


def test_fit_hook_is_transparent_and_records_other_inputs(data):
    import tensorflow as tf
    model = mlp()
    student_callbacks = []
    history = model.fit(data["x"], data["y"], epochs=2, batch_size=128, verbose=0, callbacks=student_callbacks)
    assert isinstance(history, keras.callbacks.History) and history.model is model
    assert len(history.history["loss"]) == 2 and student_callbacks == []
    with pytest.raises(ValueError, match="Unrecognized data type"):
        model.fit("not data", epochs=1, verbose=0)

    def batches():
        while True:
            yield data["x"][:128], data["y"][:128]

    dataset = tf.data.Dataset.from_tensor_slices((data["x"], data["y"])).batch(128)
    model.fit(batches(), steps_per_epoch=2, epochs=1, verbose=0)
    model.fit(dataset, epochs=1, verbose=0)
    kinds = [(call["x"]["kind"], call["x"]["is_array"], call["steps"], bool(call["error"])) for call in fit_hook.FITS]
    assert kinds == [("array", True, 6, False), ("str", False, 0, True), ("generator", False, 2, False),
                     ("dataset", False, 3, False)]
    assert fit_hook.MODELS[id(model)].fit_calls == 4


def test_probe_reads_types_not_claims():
    assert probe.probe(None) == {"present": False}
    assert probe.probe([1, 2, 3])["labels"] == "int"
    assert probe.probe(np.eye(10)[[1, 2, 3]])["labels"] == "one_hot"
    assert probe.probe(np.array([0.5, 1.5]))["labels"] is None
    assert probe.probe(np.array(["a", "b"]))["is_array"] is False
    assert probe.probe(np.zeros((5, 28, 28, 1)))["images"] and not probe.probe(np.zeros((5, 32, 32, 3)))["images"]
    assert probe.probe({"a": 1})["keys"] == ["a"]

    class Liar:  # an object that says it is whatever array the caller hopes for
        def __array__(self, dtype=None, copy=None):
            return np.diag(np.full(10, 1000))

    class Impostor(Liar):  # claims to be an ndarray, and to come from pandas
        __class__ = property(lambda self: np.ndarray)
        __module__ = "pandas.core.frame"

    assert probe.probe(Liar()) == {"present": True, "type": "Liar", "kind": "other", "is_array": False}
    assert isinstance(Impostor(), np.ndarray) and probe.kind_of(Impostor()) == "other"
    assert export.count_matrix(Liar()) is None
    assert probe.probe([[1, 2], [3]])["error"].startswith("ValueError")  # ragged: not an array, and says why


@pytest.mark.slow
def test_in_the_sandboxed_kernel_the_hook_precedes_student_code_and_patches_do_not_reach_the_probes(tmp_path):
    """kernel_setup installs the fit hook and binds numpy before the first cell: a model trained and
    dropped inside a function is still exported, and patching numpy afterwards forges no probe."""
    import nbformat

    from autograder.pipeline.grade_one import keras_cache_file
    from autograder.run import kernel_session
    from autograder.run.job import Job
    from autograder.run.sandbox.spec import Limits, SandboxSpec

    cells = ["import numpy as np\nrng = np.random.default_rng(0)\n"
             "x_train = rng.random((256, 28, 28), dtype=np.float32)\ny_train = rng.integers(0, 10, 256)",
             "import tensorflow as tf\n"
             "def main():\n"
             "    model = tf.keras.Sequential([tf.keras.layers.Flatten(), tf.keras.layers.Dense(10, 'softmax')])\n"
             "    model.compile('adam', 'sparse_categorical_crossentropy')\n"
             "    model.fit(x_train, y_train, epochs=2, batch_size=64, validation_split=0.25, verbose=0)\n"
             "main()",
             "from sklearn.metrics import confusion_matrix\nconfusion_matrix(y_train, (y_train + 1) % 10)",
             "np.asarray = lambda *a, **k: np.zeros((9, 28, 28))\nnp.mean = lambda *a, **k: 0.0\nx_val = 'none'"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    limits = Limits(wall_seconds=400, memory_mb=2048)  # generous: importing TensorFlow on a busy machine
    job = Job(tmp_path / "job", SandboxSpec(limits=limits, keras_cache=keras_cache_file()))
    job.prepare()
    ex = kernel_session.run_notebook(nb, job, budget=300, cell_timeout=280, on_error="continue",
                                     models=CONFIG["models"], probes=CONFIG["probes"], max_output_bytes=2**20,
                                     bubblewrap=True)
    assert [cell.status for cell in ex.cells] == ["ok", "ok", "ok", "ok"] and ex.export_ran
    manifest = json.loads((job.export / contract.MANIFEST).read_text())

    entry = manifest["models"]["mlp"]
    assert (entry["variable"], entry["found_by"]) == (None, "fit")
    assert entry["fit_calls"] == 1 and entry["fit_steps"] == 6 and entry["weights_moved"] > 0
    assert (job.export / contract.MODELS_DIR / "mlp.keras").is_file()
    x_train = manifest["data"]["x_train"]
    true_mean = float(np.random.default_rng(0).random((256, 28, 28), dtype=np.float32).mean())
    assert x_train["shape"] == [256, 28, 28] and x_train["found_by"] == "name"
    assert x_train["mean"] == pytest.approx(true_mean, abs=1e-6)
    assert manifest["data"]["x_val"]["kind"] == "str" and not manifest["data"]["x_val"]["is_array"]
    assert manifest["validation"] == {"kind": "split", "fraction": 0.25, "variable": None}
    # sklearn.metrics, imported by the student, had its confusion_matrix wrapped on import (kernel_setup)
    assert [(c["variable"], c["found_by"], c["total"]) for c in manifest["confusion"]] == [
        ("confusion_matrix() #1", "returned", 256)]


# --- issue 23: what the notebook computed without keeping it, how fit was fed, models that do not save ----

@pytest.fixture
def confusion_hooks():
    import pandas
    import sklearn.metrics
    import tensorflow as tf

    confusion_hook.after_sklearn_metrics(sklearn.metrics)
    confusion_hook.after_pandas(pandas)
    confusion_hook.after_tensorflow(tf)
    yield
    confusion_hook.uninstall()


def test_confusion_matrices_passed_straight_into_a_plot_are_recorded_and_exported(data, tmp_path, confusion_hooks):
    """sns.heatmap(confusion_matrix(...)) and friends leave no variable: what the call returned is a candidate."""
    import pandas as pd
    import tensorflow as tf
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    labels = data["y_test"][:1000]
    predictions = [(labels + shift * (np.arange(1000) % 7 == 0)) % 10 for shift in range(4)]  # four models
    confusion_matrix(labels, predictions[0])  # shown, never kept
    ConfusionMatrixDisplay.from_predictions(labels, predictions[1])
    pd.crosstab(labels, predictions[2], margins=True)  # its "All" row and column are not counts
    tf.math.confusion_matrix(labels, predictions[3])
    confusion_matrix(labels, predictions[0])  # the same matrix again: recorded once
    confusion_matrix(labels, predictions[1], normalize="true")  # rates, not counts: not a candidate
    manifest = run_export({"y_test": data["y_test"]}, tmp_path)

    found = [(row["variable"], row["found_by"], row["total"]) for row in manifest["confusion"]]
    assert found == [("confusion_matrix() #1", "returned", 1000), ("ConfusionMatrixDisplay #2", "returned", 1000),
                     ("pd.crosstab() #3", "returned", 1000), ("tf.math.confusion_matrix() #4", "returned", 1000)]
    for row, predicted in zip(manifest["confusion"], predictions):
        saved = np.load(tmp_path / row["file"], allow_pickle=False)
        assert saved.dtype == np.int64 and (saved == confusion_matrix(labels, predicted)).all()


def test_a_named_matrix_comes_before_the_recorded_ones(data, tmp_path, confusion_hooks):
    from sklearn.metrics import confusion_matrix

    labels = data["y_test"][:100]
    confusion = confusion_matrix(labels, labels)
    confusion_matrix(labels, (labels + 1) % 10)
    manifest = run_export({"confusion": confusion}, tmp_path)
    assert [(row["variable"], row["found_by"]) for row in manifest["confusion"]] == [
        ("confusion", "name"), ("confusion_matrix() #2", "returned")]


def test_a_model_compiled_with_the_loss_class_is_saved_without_its_compile_config(data, tmp_path):
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
    model.compile("adam", loss=keras.losses.SparseCategoricalCrossentropy)  # the class: get_config fails at save
    model.fit(data["x"], data["y"], epochs=1, batch_size=128, verbose=0)
    with pytest.raises(TypeError):
        model.save(tmp_path / "direct.keras")
    manifest = run_export({"mlp_model": model}, tmp_path)

    entry = manifest["models"]["mlp"]
    assert entry["error"] is None and entry["file"] == "mlp.keras" and entry["saved_without_compile"]
    loaded = keras.saving.load_model(tmp_path / contract.MODELS_DIR / "mlp.keras", safe_mode=True)
    x = data["x"][:64]
    assert np.allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert "get_compile_config" not in vars(model)  # the student's model is left as it was


def mapped_dataset(images: np.ndarray, labels: np.ndarray):
    """Raw 0-255 images scaled inside Dataset.map, as a tf.data notebook does."""
    import tensorflow as tf

    return (tf.data.Dataset.from_tensor_slices((images, labels))
            .map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y)).batch(64))


def test_how_a_model_was_fed_is_learned_from_what_fit_received_from_its_dataset(mnist, tmp_path):
    """The namespace holds raw pixels; fit received them scaled by Dataset.map: the model is fed /255."""
    from autograder.run.inside import predict

    raw_x, raw_y = mnist.x_train[:2048], mnist.y_train[:2048].astype("int64")
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.SimpleRNN(8), keras.layers.Dense(10, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(mapped_dataset(raw_x, raw_y), epochs=1, verbose=0)
    manifest = run_export({"rnn_model": model, "x_train": raw_x, "y_train": raw_y, "x_test": mnist.x_test,
                           "y_test": mnist.y_test}, tmp_path)

    entry = manifest["models"]["simple_rnn"]
    assert entry["input"]["source"] == "fit" and entry["input"]["shape"] == [28, 28]
    assert entry["input"]["max"] == 1.0 and entry["input"]["mean"] == pytest.approx(0.1307, abs=0.003)
    assert manifest["fits"][0]["x_sample"]["shape"] == [fit_hook.SAMPLE_ROWS, 28, 28]
    assert predict.feeding(model, entry)["scale"] == pytest.approx(1 / 255)


def test_test_images_a_dataset_feeds_fit_are_recognised_one_by_one(mnist, tmp_path):
    """What fit drew from a tf.data pipeline is what it trained on: its test images are counted like an
    array's (issue 24), and a pipeline of training images shows none."""
    from autograder.score import artifacts, integrity

    mixed_x = np.concatenate([mnist.x_train[:3000], mnist.x_test[:3000]])
    mixed_y = np.concatenate([mnist.y_train[:3000], mnist.y_test[:3000]]).astype("int64")
    order = np.random.default_rng(5).permutation(len(mixed_x))
    test_set = integrity.TestSet.of(mnist.x_test, mnist.y_test)
    findings = {}
    for name, (x, y) in {"mixed": (mixed_x[order], mixed_y[order]),
                         "honest": (mnist.x_train[:6000], mnist.y_train[:6000].astype("int64"))}.items():
        fit_hook.forget()
        model = mlp()
        model.fit(mapped_dataset(x, y), epochs=1, verbose=0)
        run_export({"mlp_model": model}, tmp_path / name)
        (tmp_path / name / "predictions").mkdir()
        evidence = artifacts.load_evidence(tmp_path / name, tmp_path / name / "predictions", {}).models["mlp"]
        findings[name] = integrity.no_test_images_trained_on(evidence, test_set)
    mixed = findings["mixed"]
    assert mixed.passed is False and mixed.evidence["in_call"] == "fit() call 1"
    assert mixed.evidence["images_in_call"] == fit_hook.SAMPLE_ROWS  # the batches fit drew, half of them test images
    assert 700 < mixed.evidence["test_images"] < 1_350
    assert findings["honest"].passed is True and findings["honest"].evidence["test_images"] == 0


def test_a_sequence_is_sampled_by_index_and_a_generator_is_never_drawn_from(data):
    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 3

        def __getitem__(self, index):
            rows = slice(128 * index, 128 * (index + 1))
            return data["x"][rows] * 2 - 1, data["y"][rows]  # scaled to [-1, 1]

    def generator():
        while True:
            yield data["x"][:128], data["y"][:128]

    model = mlp()
    model.fit(Batches(), epochs=1, verbose=0)
    model.fit(generator(), steps_per_epoch=2, epochs=1, verbose=0)
    sequence, gen = fit_hook.FITS
    assert sequence["x_sample"]["shape"] == [384, 28, 28] and sequence["x_sample"]["min"] == -1.0
    assert gen["x_sample"] is None and gen["steps"] == 2


def test_the_notebooks_own_evaluate_is_recorded_for_review_only(mnist, tmp_path):
    from autograder.score.artifacts import own_accuracy

    evaluate_hook.install(keras)
    try:
        raw_x, raw_y = mnist.x_train[:512], mnist.y_train[:512].astype("int64")
        model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(raw_x / 255.0, raw_y, epochs=2, validation_data=(raw_x[:64] / 255.0, raw_y[:64]), verbose=0)
        model.evaluate(raw_x[:100] / 255.0, raw_y[:100], verbose=0)  # not the test set: not the notebook's test figure
        _, reported = model.evaluate(mapped_dataset(mnist.x_test, mnist.y_test.astype("int64")), verbose=0)
        manifest = run_export({"mlp_model": model}, tmp_path)
    finally:
        evaluate_hook.uninstall()
    measures = manifest["models"]["mlp"]["own_measures"]
    # fit's own validation passes are not the notebook's evaluate() calls
    assert [(m["method"], m["rows"]) for m in measures] == [("evaluate", 100), ("evaluate", None)]
    assert measures[1]["accuracy"] == pytest.approx(reported) and measures[1]["std"] == pytest.approx(0.3, abs=0.02)
    assert own_accuracy(measures) == pytest.approx(reported)
    assert own_accuracy([*measures, {"accuracy": 7.0, "rows": 10_000}, {"accuracy": "0.99", "rows": None}]) \
        == pytest.approx(reported)


def test_the_notebooks_own_predict_on_the_test_images_is_recorded_for_review_only(mnist, tmp_path, monkeypatch):
    """A notebook that computes its accuracy from predict() never calls evaluate(): its predict() on the test
    images in their published order (however scaled) is scored against the public test labels of the Keras
    cache the sandbox mounts; predictions on anything else have no labels the hook could know."""
    from autograder.data import keras_cache_source
    from autograder.score.artifacts import own_accuracy

    (tmp_path / "keras" / "datasets").mkdir(parents=True)
    (tmp_path / "keras" / "datasets" / "mnist.npz").symlink_to(keras_cache_source())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    flat_test = mnist.x_test.reshape(-1, 784).astype("float32")
    evaluate_hook.install(keras)
    try:
        model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])  # logits
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(mnist.x_train[:2048].reshape(-1, 784) / 255.0, mnist.y_train[:2048].astype("int64"), epochs=2,
                  verbose=0)
        model.predict(mnist.x_train[:10_000].reshape(-1, 784) / 255.0, verbose=0)  # test-sized, no test images
        model.predict(flat_test[::-1] / 255.0, verbose=0)  # the test images in another order
        model.predict(flat_test[:100] / 255.0, verbose=0)  # a few of them
        standardised = model.predict((flat_test - 33.3) / 78.6, verbose=0)  # the same images, scaled otherwise
        scores = model.predict(flat_test / 255.0, verbose=0)  # as the notebook fed it
        measures = run_export({"mlp_model": model}, tmp_path / "export")["models"]["mlp"]["own_measures"]
    finally:
        evaluate_hook.uninstall()
    own = [float((answers.argmax(axis=1) == mnist.y_test).mean()) for answers in (standardised, scores)]
    assert [(m["method"], m["rows"], m["shape"]) for m in measures] == [("predict", 10_000, [784])] * 2
    assert [m["accuracy"] for m in measures] == pytest.approx(own) and own[1] > 0.8
    assert own_accuracy(measures) == pytest.approx(own[1])


@pytest.mark.slow
def test_a_model_trained_before_eager_execution_was_disabled_is_still_exported(tmp_path):
    """Disabling eager execution leaves weights only eager code can read: the export runs in eager mode.
    (A process of its own: eager execution cannot be switched back on in this one.)"""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import json, numpy as np, keras, tensorflow as tf
        from autograder.run.inside import export, fit_hook
        fit_hook.install(keras)
        rng = np.random.default_rng(0)
        model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(rng.random((256, 28, 28)), rng.integers(0, 10, 256), epochs=1, batch_size=64, verbose=0)
        tf.compat.v1.disable_eager_execution()
        try:
            model.save({str(tmp_path / "direct.keras")!r})
        except NotImplementedError:
            print("direct save fails")
        export.run({{"mlp_model": model}}, {str(tmp_path)!r}, {json.dumps(CONFIG)!r})
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "direct save fails" in done.stdout
    manifest = json.loads((tmp_path / contract.MANIFEST).read_text())
    entry = manifest["models"]["mlp"]
    assert entry["error"] is None and entry["file"] == "mlp.keras" and entry["training_steps"] == 4
    assert entry["weights_moved"] > 0 and manifest["errors"] == []
    assert keras.saving.load_model(tmp_path / contract.MODELS_DIR / "mlp.keras").count_params() == 7850


def test_a_model_fit_on_a_python_generator_is_fed_as_its_own_evaluate_was(mnist, tmp_path):
    """A generator cannot be drawn from without taking batches from fit: the notebook's evaluate() input says
    how the model was fed, before the raw arrays left in the namespace."""
    evaluate_hook.install(keras)
    try:
        raw_x, raw_y = mnist.x_train[:512], mnist.y_train[:512].astype("int64")

        def batches():
            while True:
                yield raw_x[:128] / 255.0, raw_y[:128]

        model = mlp()
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(batches(), steps_per_epoch=2, epochs=1, verbose=0)
        model.evaluate(mnist.x_test / 255.0, mnist.y_test, verbose=0)
        manifest = run_export({"mlp_model": model, "x_train": raw_x, "x_test": mnist.x_test}, tmp_path)
    finally:
        evaluate_hook.uninstall()
    fed = manifest["models"]["mlp"]["input"]
    assert fed["source"] == "evaluate" and fed["shape"] == [28, 28]
    assert fed["mean"] == pytest.approx(mnist.x_test.mean() / 255, rel=1e-4)
