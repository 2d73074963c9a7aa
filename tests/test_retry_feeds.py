"""The evaluate() safety net's second pass: a model the grader measured far below the notebook's own evaluate()
on the public test images is predicted again with the feeds the notebook used, in the real prediction sandbox;
a feed that reproduces the notebook's figure on the PUBLIC images is adopted, else the model goes to review.
"""
from __future__ import annotations

import numpy as np
import pytest

from autograder.assignment import Threshold
from autograder.output.reading import fed_description
from autograder.pipeline.evidence import retry_contradicted
from autograder.run import prediction
from autograder.run.inside import contract, evaluate_hook
from autograder.run.job import Job
from autograder.run.sandbox.spec import Limits, SandboxSpec
from autograder.score.accuracy import accuracy_outcome
from autograder.score.artifacts import load_evidence, save_evidence, stored_evidence
from autograder.score.checks import NeedsReview

import exports

import keras  # noqa: E402  (a dependency of the project: never skipped)
layers = keras.layers

#: What the symmetric scaling (pixels to [-1, 1]) gives on MNIST: the statistics the export would record for it.
SYMMETRIC = {"mean": 2 / 255 * contract.RAW_PIXEL_MEAN - 1, "std": 2 / 255 * contract.RAW_PIXEL_STD}


def _trained(model, x: np.ndarray, y: np.ndarray, epochs: int) -> keras.Model:
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)
    return model


@pytest.mark.slow
def test_a_contradicted_model_is_re_fed_the_notebooks_way_and_one_no_feed_reproduces_goes_to_review(tmp_path, mnist):
    keras.utils.set_random_seed(0)
    x_train, y_train = mnist.x_train[:3000] / 255, mnist.y_train[:3000]
    mlp = _trained(keras.Sequential([keras.Input((28, 28)), layers.Flatten(), layers.Dense(32, activation="tanh"),
                                     layers.Dense(10, activation="softmax")]), x_train, y_train, 3)
    cnn = _trained(keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(4, 3, activation="relu"),
                                     layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(10, activation="softmax")]),
                   x_train[:300, ..., None], y_train[:300], 1)
    steady = _trained(keras.Sequential([keras.Input((28, 28)), layers.Flatten(), layers.Dense(16, activation="tanh"),
                                        layers.Dense(10, activation="softmax")]), x_train, y_train, 1)
    job = Job(tmp_path / "job", SandboxSpec(limits=Limits(memory_mb=1800, threads=1)))
    job.prepare()
    evaluate_hook.install(keras)
    try:
        with exports.notebook_kernel(keras):
            for model, x in ((mlp, mnist.x_test / 255), (cnn, mnist.x_test[..., None] / 255), (steady, mnist.x_test / 255)):
                model.evaluate(x, mnist.y_test, verbose=0)  # the notebook's own figure, on the whole test set
            exports.write_export({exports.MODELS["mlp"]: mlp, exports.MODELS["cnn"]: cnn,
                                  exports.MODELS["gru"]: steady}, job.export)
    finally:
        evaluate_hook.uninstall()

    def mislead(manifest: dict) -> None:
        manifest["models"]["mlp"]["input"].update(SYMMETRIC, source="fit")  # the export read the wrong feed
        for measure in manifest["models"]["cnn"]["own_measures"]:
            measure["accuracy"] = 0.999  # a figure no feed of this barely trained CNN reproduces
    exports.rewrite_manifest(job.export, mislead)
    (job.export / contract.MODELS_DIR).chmod(0o755)
    public, eval_ = slice(0, 1000), slice(1000, 3000)
    image_sets = {"public": mnist.x_test[public], "eval": mnist.x_test[eval_]}
    counts = {name: len(images) for name, images in image_sets.items()}
    predictor = prediction.start_predictor(job, image_sets, ablation=("eval", 200))
    try:
        prediction.predict(predictor)
        evidence = load_evidence(job.export, job.predictions, counts)
        first = {arch: evidence.models[arch].accuracy("public", mnist.y_test[public]) for arch in ("mlp", "cnn", "gru")}
        report = retry_contradicted(predictor, evidence, mnist.y_test[public], counts)
    finally:
        predictor.cancel()

    mlp_seen, cnn_seen, steady_seen = (evidence.models[arch] for arch in ("mlp", "cnn", "gru"))
    assert mlp_seen.falls_short(first["mlp"]) and cnn_seen.falls_short(first["cnn"])
    assert not steady_seen.falls_short(first["gru"])
    # Only the contradicted models were predicted again: the steady one has no second pass, no file of one.
    assert set(report["models"]) == {"mlp", "cnn"} and report["adopted"] == ["mlp"]
    assert not any(path.name.startswith("gru") for path in job.retry_predictions.iterdir())
    assert steady_seen.fed["source"] == "evaluate" and "first" not in steady_seen.fed

    # The MLP: re-fed pixels / 255, as its own evaluate() was, and its eval predictions are that feed's.
    fed = mlp_seen.fed
    assert fed["source"] == "retried" and (fed["scale"], fed["offset"]) == (1 / 255, 0.0)
    assert (fed["first"]["scale"], fed["first"]["offset"]) == (2 / 255, -1.0)
    assert fed["public_first"] == round(first["mlp"], 4) and fed["public_retried"] >= fed["own"] - 0.1
    expected = mlp.predict(mnist.x_test[eval_] / 255, verbose=0).argmax(axis=1)
    assert (mlp_seen.predictions["eval"] == expected).mean() > 0.99
    outcome = accuracy_outcome(mlp_seen, mnist.y_test[eval_], Threshold(full=0.95, zero=0.5), 10**6, {})
    assert outcome.fraction > 0.5
    assert "re-fed it the way your notebook did" in outcome.message and "refed=notebook_feed" in outcome.detail

    # The CNN: no feed came close to its (forged) figure, so nothing changed and it goes to review.
    assert cnn_seen.fed["source"] == "evaluate" and "first" not in cnn_seen.fed
    with pytest.raises(NeedsReview, match="none of the feeds your notebook used came close"):
        accuracy_outcome(cnn_seen, mnist.y_test[eval_], Threshold(full=0.95, zero=0.5), 10**6, {})

    # The instructor sees the re-feed in the stored evidence a regrade reads, and the item page says it.
    save_evidence(evidence, tmp_path / "artifacts")
    assert stored_evidence(tmp_path / "artifacts").models["mlp"].fed == fed
    assert "re-fed as the notebook's own evaluate() fed it" in fed_description("mlp", fed)
    assert "re-fed" not in fed_description("gru", steady_seen.fed)

    # Nothing contradicted (the re-fed MLP now agrees with its own figure): no second pass at all.
    del evidence.models["cnn"]
    assert retry_contradicted(predictor, evidence, mnist.y_test[public], counts) is None
