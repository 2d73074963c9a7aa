"""The prediction sandbox: feeding each model as its author did, subclassed rebuilds, ablation, per-model budgets.

Models here are small and untrained (or trained for one short epoch): what is asserted is that the sandbox's
scores are exactly what the author's own pipeline gives, not any accuracy.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from autograder.assignment import Execution
from autograder.run import prediction
from autograder.run.job import Job
from autograder.run.sandbox import bwrap
from autograder.run.sandbox.spec import Limits, SandboxSpec
from autograder.run.class_source import class_source
from autograder.run.inside import contract, predict

import exports

import keras  # noqa: E402  (a dependency of the project: never skipped)
layers = keras.layers


@pytest.fixture(scope="module")
def digits(mnist) -> np.ndarray:
    return mnist.x_test[:64]


@pytest.fixture(scope="module")
def training_images(mnist) -> np.ndarray:
    """What an author trains on, before their own scaling: enough images for the export to measure it."""
    return mnist.x_train[:1000]


def export(tmp_path: Path, models: dict[str, tuple[object, np.ndarray | None]], **names) -> tuple[Path, Path]:
    """An export dir as the kernel leaves it, written by the export step itself: each model under its template
    name, trained one step on what its author fed it (None: never trained, so nothing was recorded), beside
    the other ``names`` the notebook left (``x_test``...)."""
    export_dir, out = tmp_path / "export", tmp_path / "predictions"
    out.mkdir(parents=True)
    namespace = dict(names)
    with exports.notebook_kernel(keras):
        for arch, (model, fed) in models.items():
            if fed is not None:
                model.compile("sgd", "sparse_categorical_crossentropy")
                model.fit(fed, np.zeros(len(fed), "int64"), batch_size=len(fed), epochs=1, verbose=0)
            namespace[exports.MODELS[arch]] = model
        exports.write_export(namespace, export_dir)
    return export_dir, out


run_predict = exports.run_predict


def summary(out: Path, arch: str) -> dict:
    return json.loads((out / contract.SUMMARY_FILE.format(arch=arch)).read_text())


def scores(out: Path, arch: str, image_set: str = "eval") -> np.ndarray:
    return np.load(out / contract.PREDICTIONS_FILE.format(arch=arch, image_set=image_set))


# --- feeding --------------------------------------------------------------------------------------

def _raw_pixel_mlp():
    return keras.Sequential([keras.Input((28, 28)), layers.Flatten(), layers.Dense(16, activation="relu"),
                             layers.Dense(10)])


def _vector_mlp():
    return keras.Sequential([keras.Input((784,)), layers.Dense(16, activation="relu"),
                             layers.Dense(10, activation="softmax")])


def _sequence_rnn():
    return keras.Sequential([keras.Input((None, 28)), layers.SimpleRNN(8), layers.Dense(10)])


def _lenet():
    return keras.Sequential([keras.Input((32, 32, 1)), layers.Conv2D(4, 5, activation="tanh"),
                             layers.AveragePooling2D(2), layers.Flatten(), layers.Dense(10)])


FEEDING = {  # arch: (builder, what the author fed: images -> model input, expected "fed"); the simple_rnn is
    # never trained: the export learns its input from the test images the notebook scaled (source "probe")
    "mlp": (_raw_pixel_mlp, lambda x: x.astype("float32"),
            {"scale": 1.0, "offset": 0.0, "shape": [28, 28], "pad": 0, "source": "fit"}),
    "cnn": (_lenet, lambda x: np.pad(x, ((0, 0), (2, 2), (2, 2)))[..., None].astype("float32") / 255,
            {"scale": 1 / 255, "offset": 0.0, "shape": [32, 32, 1], "pad": 2, "source": "fit"}),
    "simple_rnn": (_sequence_rnn, lambda x: x.astype("float32") / 255,
                   {"scale": 1 / 255, "offset": 0.0, "shape": [28, 28], "pad": 0, "source": "probe"}),
    "gru": (_vector_mlp, lambda x: x.reshape(len(x), 784).astype("float32") / 255,
            {"scale": 1 / 255, "offset": 0.0, "shape": [784], "pad": 0, "source": "fit"}),
}


def test_each_model_is_fed_the_way_its_author_fed_it(tmp_path, digits, training_images, mnist):
    keras.utils.set_random_seed(0)
    models = {arch: build() for arch, (build, _, _) in FEEDING.items()}
    export_dir, out = export(
        tmp_path, {arch: (model, None if arch == "simple_rnn" else FEEDING[arch][1](training_images))
                   for arch, model in models.items()}, x_test=FEEDING["simple_rnn"][1](mnist.x_test))
    run_predict(export_dir, out, {"eval": digits})
    for arch, (_, author_pipeline, fed) in FEEDING.items():
        written = summary(out, arch)
        assert written["error"] is None, arch
        assert {k: written["fed"][k] for k in fed} == fed, arch
        expected = models[arch].predict(author_pipeline(digits), verbose=0)
        np.testing.assert_allclose(scores(out, arch), expected, rtol=1e-4, atol=1e-5, err_msg=arch)


def test_scores_for_wrongly_scaled_inputs_would_differ(digits):
    """The comparison above can fail: the raw-pixel model's scores on /255 inputs are not the same."""
    keras.utils.set_random_seed(0)
    model = _raw_pixel_mlp()
    assert not np.allclose(model.predict(digits.astype("float32"), verbose=0),
                           model.predict(digits.astype("float32") / 255, verbose=0), atol=1e-3)


def test_a_model_without_a_recorded_input_is_fed_pixels_over_255(tmp_path, digits):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(10)])
    export_dir, out = export(tmp_path, {"mlp": (model, None)})
    run_predict(export_dir, out, {"eval": digits})
    assert exports.read_manifest(export_dir)["models"]["mlp"]["input"]["source"] == "default"  # as it was fed:
    assert summary(out, "mlp")["fed"]["source"] == "default"  # the export's default, not taken for a probe
    np.testing.assert_allclose(scores(out, "mlp"), model.predict(digits[..., None] / 255, verbose=0), atol=1e-5)


def test_a_model_that_cannot_take_mnist_is_an_error_not_a_crash(tmp_path, digits):
    thumbnails = keras.Sequential([keras.Input((20, 20)), layers.Flatten(), layers.Dense(10)])
    ten_classes_short = keras.Sequential([keras.Input((28, 28)), layers.Flatten(), layers.Dense(3)])
    export_dir, out = export(tmp_path, {"cnn": (thumbnails, None), "mlp": (ten_classes_short, None)})
    run_predict(export_dir, out, {"eval": digits})
    assert "cannot feed MNIST images" in summary(out, "cnn")["error"]
    assert "not 10 class scores" in summary(out, "mlp")["error"]
    assert not (out / contract.PREDICTIONS_FILE.format(arch="cnn", image_set="eval")).exists()


def test_summary_has_the_architecture_and_a_hash_of_the_weights(tmp_path, digits):
    keras.utils.set_random_seed(2)
    model = _raw_pixel_mlp()
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    export_dir, out = export(tmp_path, {"mlp": (model, None), "cnn": (_lenet(), None)})
    run_predict(export_dir, out, {"eval": digits})
    written = summary(out, "mlp")
    assert [layer["class"] for layer in written["summary"]["layers"]] == ["Flatten", "Dense", "Dense"]
    assert written["summary"]["params"] == model.count_params()
    assert written["weights_sha256"] == predict.weights_sha256(twin) != summary(out, "cnn")["weights_sha256"]
    assert written["arch"] == "mlp" and written["seconds"] >= 0


# --- subclassed models ----------------------------------------------------------------------------

SUBCLASSED_NOTEBOOK = {"cells": [
    {"cell_type": "markdown", "source": "# My CNN"},
    {"cell_type": "code", "source": "%matplotlib inline\nimport numpy as np\nimport keras\nfrom keras import layers\n"
                                    "import not_installed_anywhere\nFILTERS = 6"},
    {"cell_type": "code", "source": [
        "class TinyCNN(keras.Model):\n",
        "    def __init__(self, filters, classes=10):\n",
        "        super().__init__()\n",
        "        self.conv = layers.Conv2D(filters, 3, activation='relu')\n",
        "        self.pool = layers.MaxPooling2D()\n",
        "        self.flat = layers.Flatten()\n",
        "        self.out = layers.Dense(classes)\n",
        "    def call(self, x):\n",
        "        return self.out(self.flat(self.pool(self.conv(x))))\n"]},
    {"cell_type": "code", "source": "cnn = TinyCNN(FILTERS, classes=10)\ncnn.compile('adam', 'mse')\n"
                                    "open('/tmp/should-not-be-kept', 'w')\nprint(undefined_name)"},
]}


def _build_tiny_cnn():
    namespace: dict = {}
    exec(class_source(SUBCLASSED_NOTEBOOK), namespace)  # the test's own trusted source
    model = namespace["TinyCNN"](6, classes=10)
    model(np.zeros((1, 28, 28, 1), "float32"))
    return model


def test_class_source_keeps_definitions_and_literal_constructor_calls_only():
    source = class_source(SUBCLASSED_NOTEBOOK)
    assert "class TinyCNN(keras.Model)" in source and "FILTERS = 6" in source
    assert "import not_installed_anywhere" in source and "except Exception" in source
    assert "should-not-be-kept" not in source and "undefined_name" not in source and "compile" not in source
    assert "%matplotlib" not in source
    assert f"{contract.CONSTRUCTOR_CALLS} = " in source
    namespace: dict = {}
    exec(source, namespace)
    # FILTERS is a name, not a literal, so that call is not replayed: the sandbox will try the defaults.
    assert namespace[contract.CONSTRUCTOR_CALLS] == {}


def test_class_source_replays_literal_constructor_arguments():
    notebook = {"cells": [{"cell_type": "code", "source": "class Net:\n    pass\nnet = Net(32, rate=0.25)"}]}
    namespace: dict = {}
    exec(class_source(notebook), namespace)
    assert namespace[contract.CONSTRUCTOR_CALLS] == {"Net": ([32], {"rate": 0.25})}


def test_class_source_survives_cells_that_do_not_parse():
    notebook = {"cells": [{"cell_type": "code", "source": "def broken(:\n"},
                          {"cell_type": "code", "source": "X = 1"}]}
    assert "X = 1" in class_source(notebook)


def test_subclassed_model_is_rebuilt_from_the_notebooks_classes(tmp_path, digits, training_images):
    keras.utils.set_random_seed(3)
    model = _build_tiny_cnn()
    export_dir, out = export(tmp_path, {"cnn": (model, training_images[..., None] / 255)})
    assert exports.read_manifest(export_dir)["models"]["cnn"]["subclassed"]
    classes = tmp_path / contract.CLASS_SOURCE
    notebook = json.loads(json.dumps(SUBCLASSED_NOTEBOOK))
    notebook["cells"].append({"cell_type": "code", "source": "again = TinyCNN(6)"})  # the literal call replayed
    classes.write_text(class_source(notebook))

    run_predict(export_dir, out, {"eval": digits})  # the stock-model process leaves it alone
    assert not (out / contract.SUMMARY_FILE.format(arch="cnn")).exists()

    run_predict(export_dir, out, {"eval": digits}, "--classes", str(classes), "--ablate=eval:32")
    written = summary(out, "cnn")
    assert written["error"] is None and written["summary"]["subclassed"] is True
    described = written["summary"]["layers"]
    assert [layer["class"] for layer in described] == ["Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    # Input shapes are known for the layers that were built on one (those with weights).
    assert described[0]["input_shape"] == [None, 28, 28, 1] and described[3]["input_shape"] == [None, 1014]
    assert described[0]["filters"] == 6 and described[3]["units"] == 10
    np.testing.assert_allclose(scores(out, "cnn"), model.predict(digits[..., None] / 255, verbose=0), atol=1e-5)
    zeroed = written["ablation"]["zeroed"]
    assert zeroed == [described[0]["name"]]  # the convolution, as the summary names it


def test_subclassed_model_that_will_not_rebuild_says_why(tmp_path, digits, training_images):
    keras.utils.set_random_seed(3)
    export_dir, out = export(tmp_path, {"cnn": (_build_tiny_cnn(), training_images[..., None] / 255)})
    exports.rewrite_manifest(export_dir, lambda manifest: manifest["models"]["cnn"].update(class_name="SomethingElse"))
    classes = tmp_path / contract.CLASS_SOURCE
    classes.write_text(class_source(SUBCLASSED_NOTEBOOK))
    run_predict(export_dir, out, {"eval": digits}, "--classes", str(classes))
    assert "'SomethingElse' is not among the notebook's class definitions" in summary(out, "cnn")["error"]


# --- ablation -------------------------------------------------------------------------------------

def test_ablation_separates_a_cnn_from_an_mlp_with_a_dead_convolution(tmp_path, mnist):
    keras.utils.set_random_seed(4)
    cnn = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, 3, activation="relu"), layers.MaxPooling2D(),
                            layers.Flatten(), layers.Dense(10, activation="softmax")])
    cnn.compile("adam", "sparse_categorical_crossentropy")
    cnn.fit(mnist.x_train[:3000, ..., None] / 255, mnist.y_train[:3000], epochs=1, batch_size=64, verbose=0)

    inputs = keras.Input((28, 28, 1))
    main = layers.Dense(10)(layers.Dense(32, activation="relu")(layers.Flatten()(inputs)))
    dead = layers.Dense(10, kernel_initializer="zeros", trainable=False)  # the branch adds nothing
    branch = dead(layers.Flatten()(layers.Conv2D(1, 1)(inputs)))
    decorated = keras.Model(inputs, layers.Add()([main, branch]))
    decorated.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    decorated.fit(mnist.x_train[:3000, ..., None] / 255, mnist.y_train[:3000], epochs=1, batch_size=64, verbose=0)

    # Trained before the fit hook was there: nothing recorded, so both are fed pixels / 255, as they were trained.
    export_dir, out = export(tmp_path, {"cnn": (cnn, None), "lstm": (decorated, None)})
    # "lstm" has no LSTM layer: nothing to zero, so no ablation is claimed for it.
    run_predict(export_dir, out, {"eval": mnist.x_test[:500]}, "--ablate=eval:400")
    honest = summary(out, "cnn")["ablation"]
    assert honest["zeroed"] == [cnn.layers[0].name] and honest["images"] == 400 and honest["agreement"] < 0.5
    ablated = np.load(out / contract.ABLATED_FILE.format(arch="cnn", image_set="eval"))
    assert ablated.shape == (400, 10)
    assert honest["agreement"] == pytest.approx(np.mean(ablated.argmax(1) == scores(out, "cnn")[:400].argmax(1)))
    assert summary(out, "lstm")["ablation"] is None

    # The same decorated model answering as a CNN: zeroing its convolution changes nothing.
    export_dir, out = export(tmp_path / "again", {"cnn": (decorated, None)})
    run_predict(export_dir, out, {"eval": mnist.x_test[:500]}, "--ablate=eval:400")
    assert summary(out, "cnn")["ablation"]["agreement"] == 1.0


# --- per-model budgets, in the real sandbox -------------------------------------------------------

@pytest.mark.slow
def test_a_model_heavy_at_predict_time_is_stopped_and_the_others_still_predicted(tmp_path, digits):
    keras.utils.set_random_seed(5)
    tiny = keras.Sequential([keras.Input((28, 28)), layers.Flatten(), layers.Dense(10)])
    # Tiny in the notebook, gigabytes at predict time: 500 images blown up to 1120 x 1120 pixels.
    heavy = keras.Sequential([keras.Input((28, 28, 1)), layers.UpSampling2D(40), layers.Conv2D(1, 1),
                              layers.GlobalMaxPooling2D(), layers.Dense(10)])
    recurrent = keras.Sequential([keras.Input((28, 28)), layers.GRU(4), layers.Dense(10)])
    job = Job(tmp_path / "job", SandboxSpec(limits=Limits(memory_mb=1800, threads=1)))
    job.prepare()
    with exports.notebook_kernel(keras):
        exports.write_export({exports.MODELS[arch]: model for arch, model in (("mlp", tiny), ("cnn", heavy),
                                                                               ("gru", recurrent))}, job.export)
    os.chmod(job.export / contract.MODELS_DIR, 0o755)
    images = np.repeat(digits, 8, axis=0)  # 512: one full batch for the heavy model
    predictor = prediction.start_predictor(job, {"eval": images}, ablation=("eval", 100))
    try:
        outcome = prediction.predict(predictor)
    finally:
        predictor.cancel()
    assert outcome["models"] == {"mlp": {"outcome": "predicted", "stopped": None},
                                 "cnn": {"outcome": "stopped", "stopped": "memory"},
                                 "gru": {"outcome": "predicted", "stopped": None}}
    assert outcome["processes"] == 2 and outcome["stopped"] == "memory"
    stopped = summary(job.predictions, "cnn")
    assert stopped["stopped"] == "memory" and "memory limit" in stopped["error"]
    for arch in ("mlp", "gru"):
        assert summary(job.predictions, arch)["error"] is None
        assert scores(job.predictions, arch).shape == (512, 10)


def test_prediction_sandbox_gets_no_keras_cache_and_the_fixed_thread_count(tmp_path):
    cache = tmp_path / "mnist.npz"
    cache.write_bytes(b"labels live here")
    job = Job(tmp_path / "job", SandboxSpec(limits=Limits(threads=3), keras_cache=cache),
              config=Execution(predict_max_seconds=321))
    assert job.kernel_spec().keras_cache == cache  # the notebook may load MNIST ...
    spec = job.predict_spec()
    argv = bwrap.bwrap_argv(spec, ["true"])
    assert spec.keras_cache is None and str(cache) not in argv  # ... the images' predictor never sees labels
    assert argv[argv.index("AUTOGRADER_THREADS") + 1] == "3" and spec.limits.wall_seconds == 321
