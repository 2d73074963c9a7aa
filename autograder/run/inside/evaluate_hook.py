"""The grader's record of the notebook's own ``keras.Model.evaluate`` and ``predict`` calls, installed by
``kernel_setup``.

Per model it keeps the accuracy each call gave and what it was given: the number of rows and the pixel
statistics (for a dataset or Sequence, those of the sample ``fit_hook.fed_sample`` draws). For
``evaluate`` the accuracy is the model's accuracy metric right after the call; for ``predict`` it is the
share of its answers that match the MNIST test labels, recorded only when it was given the test images in
their published order (recognised image by image with ``sketch``, against the public test set of the
Keras cache), as a notebook that computes its accuracy from ``predict`` does. The trusted side compares
the notebook's own figure on the test images with its own measurement of the model: a far lower
measurement means the grader may have fed the model otherwise than its author did, and the model goes
to review instead of being scored. The record lives in the student's process, so it may only send a
model to review, never earn a point.

Like the fit hook, the wrappers never change what ``evaluate`` or ``predict`` return or raise.
"""
from __future__ import annotations

import functools
from typing import Any

from . import contract, fit_hook, probe, sketch

#: id(model) -> (model, its last contract.MAX_EVALUATIONS evaluate/predict calls); strong references, so ids
#: stay unique.
MEASURES: dict[int, tuple[Any, list[dict]]] = {}
_installed: dict[str, Any] = {}
#: Share of a predict() input's images that must be the MNIST test images in their published order for its
#: answers to be scored against the test labels: a few edited images change nothing, a shuffle or a subset
#: (other labels) is not scored.
SAME_ORDER = 0.99
_test_set: dict[str, Any] = {}


def reported_accuracy(model: Any) -> float | None:
    """The accuracy the model's metrics hold now (right after evaluate), or None without such a metric."""
    for name, value in model.get_metrics_result().items():
        lowered = str(name).lower()
        if "acc" in lowered and "top" not in lowered:
            number = float(value)
            return number if 0.0 <= number <= 1.0 else None
    return None


def _inputs(x: Any) -> dict:
    facts = probe.probe(x)
    if not facts.get("is_array"):
        sample = fit_hook.fed_sample(x)
        return {"rows": None, **_pixels(sample)} if sample and sample.get("is_array") else {"rows": None}
    return {"rows": facts["shape"][0] if facts.get("shape") else None, **_pixels(facts)}


def _pixels(facts: dict) -> dict:
    return {"shape": facts["shape"][1:], "mean": facts.get("mean"), "std": facts.get("std")}


def _record(model: Any, method: str, accuracy: float | None, x: Any) -> None:
    if accuracy is None:
        return
    _, calls = MEASURES.setdefault(id(model), (model, []))
    calls.append({"method": method, "accuracy": accuracy, **_inputs(x)})
    del calls[:-contract.MAX_EVALUATIONS]  # the latest ones: the trained model's


def public_test_set() -> tuple[Any, Any] | None:
    """(per-image hashes of the MNIST test images in their published order, their labels) from the Keras
    cache, or None when it is not there. Read once."""
    if "hashes" not in _test_set:
        _test_set["hashes"] = None
        try:
            with fit_hook._load(fit_hook.mnist_cache(), allow_pickle=False) as data:
                images, labels = data["x_test"], data["y_test"].copy()
            _test_set["hashes"] = (sketch.image_hashes(sketch.canonical(images)), labels)
        except Exception:
            pass
    return _test_set["hashes"]


def predicted_accuracy(x: Any, scores: Any) -> float | None:
    """The share of ``predict``'s answers that are the test labels, when ``x`` was the MNIST test images in
    their published order (however scaled or shaped) and each answer is one score per class; else None."""
    array = probe.as_numeric(x)
    test = public_test_set()
    if array is None or test is None or len(array) != contract.MNIST_TEST_SIZE:
        return None
    hashes, labels = test
    images = sketch.canonical(array)
    if images is None or float((sketch.image_hashes(images) == hashes).mean()) < SAME_ORDER:
        return None
    answers = probe.as_numeric(scores)
    if answers is None or answers.shape != (len(labels), contract.CLASSES):
        return None
    return float((answers.argmax(axis=1) == labels).mean())


def install(keras: Any) -> None:
    """Wrap ``keras.Model.evaluate`` and ``keras.Model.predict``; idempotent."""
    if "evaluate" in _installed:
        return
    original, original_predict = keras.Model.evaluate, keras.Model.predict

    @functools.wraps(original)
    def evaluate(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if kwargs.get("_use_cached_eval_dataset"):  # fit's own validation pass, not the notebook's evaluate
            return result
        try:
            _record(self, "evaluate", reported_accuracy(self), args[0] if args else kwargs.get("x"))
        except Exception:
            pass
        return result

    @functools.wraps(original_predict)
    def predict(self, *args, **kwargs):
        result = original_predict(self, *args, **kwargs)
        try:
            x = args[0] if args else kwargs.get("x")
            _record(self, "predict", predicted_accuracy(x, result), x)
        except Exception:
            pass
        return result

    keras.Model.evaluate, keras.Model.predict = evaluate, predict
    _installed["evaluate"] = (keras, original, original_predict)


def measures(model: Any) -> list[dict]:
    """The recorded evaluate and predict calls of ``model``, oldest first."""
    entry = MEASURES.get(id(model))
    return list(entry[1]) if entry and entry[0] is model else []


def uninstall() -> None:
    """Restore the real ``evaluate`` and ``predict`` and forget every record (tests running in one process)."""
    keras, original, original_predict = _installed.pop("evaluate", (None, None, None))
    if keras is not None:
        keras.Model.evaluate, keras.Model.predict = original, original_predict
    MEASURES.clear()
    _test_set.clear()
