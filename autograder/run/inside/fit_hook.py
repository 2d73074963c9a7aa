"""The grader's record of every ``keras.Model.fit`` call, installed by ``kernel_setup`` before student code.

Per call it keeps plain probes of what was fed (x, y, validation data), the validation split, the
epochs and the optimizer steps taken; when x is a ``tf.data.Dataset`` or a Keras ``Sequence`` /
``PyDataset``, a probe of a sample of what fit actually receives from it (``fed_sample``: the inputs of
its first batches, after any ``Dataset.map`` scaling), from which the export learns how the model was
fed. Per model a strong reference (so a model built and trained
inside a function, of which only ``history`` is kept, is still found by the export) and a fingerprint
of its trainable weights before its first fit, or right after the first step when fit itself builds
the model (so the export can say whether they moved).

The wrapper never changes what ``fit`` returns or raises: every step of its own is guarded, and when
it cannot understand the arguments it calls the real ``fit`` with them untouched. Everything here
lives in the student's process and can be undone by the student (see SECURITY.md); the trusted side
treats it as evidence to cross-check, never as a verdict.
"""
from __future__ import annotations

import functools
import inspect
import weakref
from typing import Any

import numpy as np

from . import contract, probe

_concatenate = np.concatenate  # bound before any student cell, like probe's references
#: A sample of what a dataset feeds: its first batches, up to this many inputs (the scaling is learned
#: from their mean and standard deviation, within 1 % at this size) or this many batches.
SAMPLE_ROWS = 2048
SAMPLE_BATCHES = 64


class ModelRecord:
    """What the hook saw of one model: the model itself, its fit calls and its initial weights."""

    def __init__(self, model: Any) -> None:
        self.model = model  # strong: keeps models trained inside functions alive for the export
        self.fit_calls = 0
        self.steps = 0
        self.initial_weights: list | None = None
        self.baseline: str | None = None  # "before_fit", or "first_step" for a model fit had to build
        self.last_x: dict | None = None  # probe of the last array-like x it was fit on, or of a fed sample
        self.fit_rows: list[int] = []  # indices into FITS of its recorded calls


#: id(model) -> record, in first-fit order. Strong references, so ids stay unique.
MODELS: dict[int, ModelRecord] = {}
#: Every fit call, capped at contract.MAX_FITS (later calls still count in their model's record).
FITS: list[dict] = []
#: Weak references to the objects fed to fit, to name them later: role -> [(ref, fit index)].
FED: dict[str, list] = {"x": [], "y": [], "validation_x": [], "validation_y": []}

_installed: dict[str, Any] = {}


def optimizer_steps(model: Any) -> int | None:
    """The optimizer's step counter (``iterations``), or None when it has none."""
    try:
        return int(model.optimizer.iterations.numpy())
    except Exception:
        return None


def _batches(x: Any) -> Any:
    """The batches a dataset or Sequence yields, drawn without taking them from fit; None for anything
    else (a Python generator's batch, once drawn, would be missing from training)."""
    kind = probe.kind_of(x)
    if kind == "dataset":
        return iter(x.take(SAMPLE_BATCHES))  # a fresh iterator: fit's own starts from the beginning
    if kind == "generator" and hasattr(type(x), "__getitem__") and hasattr(type(x), "__len__"):
        return (x[i] for i in range(min(len(x), SAMPLE_BATCHES)))
    return None


def fed_sample(x: Any) -> dict | None:
    """A probe of the inputs fit actually receives from a dataset or Sequence ``x`` (its first batches,
    up to ``SAMPLE_ROWS``), or None: an array (probed as it is), a generator, or a structure not
    understood. Drawing creates a new iterator, so a dataset reshuffling each epoch shuffles once more."""
    try:
        batches = _batches(x)
        parts, rows = [], 0
        for element in batches if batches is not None else ():
            inputs = element[0] if isinstance(element, (tuple, list)) else element
            array = probe.as_numeric(inputs)
            if array is None or array.ndim < 2:
                return None
            parts.append(array)
            rows += len(array)
            if rows >= SAMPLE_ROWS:
                break
        return probe.probe(_concatenate(parts)) if parts else None
    except Exception:  # a pipeline that cannot be drawn from here: nothing learned, fit goes on as called
        return None


def _remember(role: str, value: Any, index: int) -> None:
    try:
        FED[role].append((weakref.ref(value), index))
    except TypeError:  # lists, tuples: not weak-referenceable; named arrays always are
        pass


def _take_fingerprint(record: ModelRecord, model: Any, baseline: str) -> None:
    if record.initial_weights is None and getattr(model, "built", False) and model.trainable_weights:
        record.initial_weights, record.baseline = probe.fingerprint(model), baseline


def _fingerprint_callback(keras: Any) -> type:
    class FingerprintAfterFirstStep(keras.callbacks.Callback):
        """For a model that fit builds (Keras builds it while tracing the first step): its weights
        right after that step, the earliest moment they exist outside the traced function."""

        def __init__(self, record: ModelRecord) -> None:
            super().__init__()
            self._agx_record = record

        def on_train_batch_end(self, batch, logs=None) -> None:
            if self._agx_record.initial_weights is None:
                try:
                    _take_fingerprint(self._agx_record, self._agx_record.model, "first_step")
                except Exception:
                    pass

    return FingerprintAfterFirstStep


def _before(model: Any, arguments: dict[str, Any]) -> dict:
    record = MODELS.get(id(model))
    if record is None:
        record = MODELS[id(model)] = ModelRecord(model)
    record.fit_calls += 1
    _take_fingerprint(record, model, "before_fit")
    validation = arguments.get("validation_data")
    validation_x = validation_y = None
    if isinstance(validation, (tuple, list)) and len(validation) >= 2:
        validation_x, validation_y = validation[0], validation[1]
    call = {"model_id": id(model), "class_name": probe.text(type(model).__name__),
            "x": probe.probe(arguments.get("x")), "y": probe.probe(arguments.get("y")),
            "validation_split": None, "validation_data": validation is not None,
            "validation_x": probe.probe(validation_x) if validation is not None else None,
            "validation_y": probe.probe(validation_y) if validation is not None else None,
            "x_sample": None, "epochs": None, "steps": 0, "error": None}
    split, epochs = arguments.get("validation_split"), arguments.get("epochs", 1)
    if isinstance(split, (int, float)) and not isinstance(split, bool) and 0 < split < 1:
        call["validation_split"] = float(split)
    if isinstance(epochs, int) and not isinstance(epochs, bool):
        call["epochs"] = epochs
    if not call["x"].get("is_array"):
        call["x_sample"] = fed_sample(arguments.get("x"))
    sample = call["x"] if call["x"].get("is_array") else call["x_sample"]
    if sample and sample.get("is_array"):
        record.last_x = sample
    index = len(FITS)
    for role, value in (("x", arguments.get("x")), ("y", arguments.get("y")),
                        ("validation_x", validation_x), ("validation_y", validation_y)):
        if value is not None:
            _remember(role, value, index)
    return call


def _after(call: dict, model: Any, steps_before: int | None, error: BaseException | None) -> None:
    steps_after = optimizer_steps(model)
    if steps_before is not None and steps_after is not None:
        call["steps"] = max(0, steps_after - steps_before)
    MODELS[id(model)].steps += call["steps"]
    if error is not None:
        call["error"] = probe.text(f"{type(error).__name__}: {error}")
    if len(FITS) < contract.MAX_FITS:
        MODELS[id(model)].fit_rows.append(len(FITS))
        FITS.append(call)


def install(keras: Any) -> None:
    """Wrap ``keras.Model.fit`` (``tf.keras.Model`` is the same class in Keras 3); idempotent."""
    if "fit" in _installed:
        return
    original = keras.Model.fit
    signature = inspect.signature(original)
    callback_class = _fingerprint_callback(keras)

    @functools.wraps(original)
    def fit(self, *args, **kwargs):
        call = steps_before = None
        try:
            bound = signature.bind(self, *args, **kwargs)
            call = _before(self, bound.arguments)
            steps_before = optimizer_steps(self)
            record = MODELS[id(self)]
            callbacks = bound.arguments.get("callbacks")
            if record.initial_weights is None and (callbacks is None or isinstance(callbacks, (list, tuple))):
                # Not built yet: Keras builds it while tracing the first step.
                bound.arguments["callbacks"] = [*(callbacks or []), callback_class(record)]
                args, kwargs = bound.args[1:], bound.kwargs
        except Exception:  # arguments fit itself will reject, or a probe that failed: fit as called
            pass
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            if call is not None:
                try:
                    _after(call, self, steps_before, exc)
                except Exception:
                    pass
            raise
        if call is not None:
            try:
                _after(call, self, steps_before, None)
            except Exception:
                pass
        return result

    keras.Model.fit = fit
    _installed["fit"] = (keras, original)


def uninstall() -> None:
    """Restore the real ``fit`` and forget every record (for tests running in one process)."""
    keras, original = _installed.pop("fit", (None, None))
    if keras is not None:
        keras.Model.fit = original
    forget()


def forget() -> None:
    """Drop every record (a new notebook in the same process: tests only)."""
    MODELS.clear()
    FITS.clear()
    for refs in FED.values():
        refs.clear()
