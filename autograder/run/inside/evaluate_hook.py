"""The grader's record of the notebook's own ``keras.Model.evaluate`` calls, installed by ``kernel_setup``.

Per model it keeps the accuracy each call reported (the model's accuracy metric right after the call)
and what it was given: the number of rows and the pixel statistics (for a dataset or Sequence, those of
the sample ``fit_hook.fed_sample`` draws). The trusted side compares the notebook's own figure on the
test images with its own measurement of the model: a far lower measurement means the grader may have
fed the model otherwise than its author did, and the model goes to review instead of being scored.
The record lives in the student's process, so it may only send a model to review, never earn a point.

Like the fit hook, the wrapper never changes what ``evaluate`` returns or raises.
"""
from __future__ import annotations

import functools
from typing import Any

from . import contract, fit_hook, probe

#: id(model) -> (model, its last contract.MAX_EVALUATIONS evaluate calls); strong references, so ids stay unique.
MEASURES: dict[int, tuple[Any, list[dict]]] = {}
_installed: dict[str, Any] = {}


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


def _record(model: Any, x: Any) -> None:
    accuracy = reported_accuracy(model)
    if accuracy is None:
        return
    _, calls = MEASURES.setdefault(id(model), (model, []))
    calls.append({"method": "evaluate", "accuracy": accuracy, **_inputs(x)})
    del calls[:-contract.MAX_EVALUATIONS]  # the latest ones: the trained model's


def install(keras: Any) -> None:
    """Wrap ``keras.Model.evaluate``; idempotent."""
    if "evaluate" in _installed:
        return
    original = keras.Model.evaluate

    @functools.wraps(original)
    def evaluate(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if kwargs.get("_use_cached_eval_dataset"):  # fit's own validation pass, not the notebook's evaluate
            return result
        try:
            _record(self, args[0] if args else kwargs.get("x"))
        except Exception:
            pass
        return result

    keras.Model.evaluate = evaluate
    _installed["evaluate"] = (keras, original)


def measures(model: Any) -> list[dict]:
    """The recorded evaluate calls of ``model``, oldest first."""
    entry = MEASURES.get(id(model))
    return list(entry[1]) if entry and entry[0] is model else []


def uninstall() -> None:
    """Restore the real ``evaluate`` and forget every record (tests running in one process)."""
    keras, original = _installed.pop("evaluate", (None, None))
    if keras is not None:
        keras.Model.evaluate = original
    MEASURES.clear()
