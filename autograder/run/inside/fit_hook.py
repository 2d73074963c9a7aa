"""The grader's record of every ``keras.Model.fit`` call, installed by ``kernel_setup`` before student code.

Per call it keeps plain probes of what was fed (x, y, validation data), the validation split, the
epochs and the optimizer steps taken; when x is a ``tf.data.Dataset`` or a Keras ``Sequence`` /
``PyDataset``, a probe of a sample of what fit actually receives from it (``fed_sample``: the inputs of
its first batches, after any ``Dataset.map`` scaling), from which the export learns how the model was
fed. Per model a strong reference (so a model built and trained
inside a function, of which only ``history`` is kept, is still found by the export) and a fingerprint
of its trainable weights before its first fit, or right after the first step when fit itself builds
the model (so the export can say whether they moved).

It also records, for the trusted side to judge (issue 24): a bottom-k sketch of per-image hashes of what
each ``fit()`` and ``train_on_batch`` trained on (``test_image_sketch``; for a dataset or Sequence, of the
sample fit drew from it: the grader counts the MNIST test images among them), and where each model's
weights came from (``weights_origin``): its accuracy on a small public sample of training images when its
first fit starts and whenever weights are set or loaded, and whether those weights are a state this run's
own training produced (end of an epoch or fit, a save of such a model, as ``ModelCheckpoint`` does).

The wrapper never changes what ``fit`` returns or raises: every step of its own is guarded, and when
it cannot understand the arguments it calls the real ``fit`` with them untouched. Everything here
lives in the student's process and can be undone by the student (see SECURITY.md); the trusted side
treats it as evidence to cross-check, never as a verdict.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import math
import os
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from . import contract, probe, sketch

# Bound before any student cell runs (kernel_setup imports this module first), like probe's.
_load, _pad, _dtype = np.load, np.pad, np.dtype

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
        self.batch_training = BatchTraining()  # its train_on_batch calls


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


def drawn_inputs(x: Any) -> np.ndarray | None:
    """The inputs fit actually receives from a dataset or Sequence ``x`` (its first batches, up to
    ``SAMPLE_ROWS``), or None: an array (read as it is), a generator, or a structure not understood.
    Drawing creates a new iterator, so a dataset reshuffling each epoch shuffles once more."""
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
        return _concatenate(parts) if parts else None
    except Exception:  # a pipeline that cannot be drawn from here: nothing learned, fit goes on as called
        return None


def fed_sample(x: Any) -> dict | None:
    """A probe of :func:`drawn_inputs`, or None."""
    drawn = drawn_inputs(x)
    return None if drawn is None else probe.probe(drawn)


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
    drawn = None if call["x"].get("is_array") else drawn_inputs(arguments.get("x"))
    if drawn is not None:
        call["x_sample"] = probe.probe(drawn)
    sample = call["x"] if call["x"].get("is_array") else call["x_sample"]
    if sample and sample.get("is_array"):
        record.last_x = sample
    if drawn is None:
        call["trained_on"] = test_image_sketch(arguments.get("x"), call["validation_split"])
    else:  # what fit drew from its dataset or Sequence is what it trains on (validation_split needs arrays)
        call["trained_on"] = test_image_sketch(drawn)
    if record.fit_calls == 1:
        note_first_fit(model, arguments.get("x"))
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
    try:
        note_produced(model)
    except Exception:
        pass


# --- what training received: per-image hashes for the trusted side (issue 24) ------------------------

def test_image_sketch(x: Any, validation_split: float | None = None) -> dict | None:
    """``{"images": distinct images trained on, "sketch": bottom-k of their hashes}`` for an image array
    (for a dataset or Sequence, the inputs fit drew from it: ``drawn_inputs``), or None for anything else.
    The tail ``validation_split`` holds out (Keras's own split) is not trained on, so it is left out."""
    try:
        array = probe.as_numeric(x)
        if array is None:
            return None
        if validation_split:
            array = array[:int(math.ceil(len(array) * (1.0 - validation_split)))]
        hashes = sketch.hashes_of(array)
        if hashes is None:
            return None
        return {"images": int(len(hashes)), "sketch": sketch.to_text(sketch.smallest(hashes))}
    except Exception:
        return None


class BatchTraining:
    """A model's ``train_on_batch`` calls: how many, and a sketch of every distinct image they trained on."""

    MAX_DISTINCT = 1_000_000  # distinct hashes counted; beyond that the count stops growing

    def __init__(self) -> None:
        self.calls = 0
        self.distinct: set[int] = set()
        self.sketch = sketch.EMPTY

    def add(self, x: Any) -> None:
        self.calls += 1
        try:
            array = probe.as_numeric(x)
            hashes = None if array is None else sketch.hashes_of(array)
        except Exception:
            return
        if hashes is not None:
            if len(self.distinct) < self.MAX_DISTINCT:
                self.distinct.update(int(h) for h in hashes)
            self.sketch = sketch.merge(self.sketch, hashes)

    def as_dict(self) -> dict | None:
        if not self.calls:
            return None
        return {"calls": self.calls, "images": len(self.distinct), "sketch": sketch.to_text(self.sketch)}


# --- where a model's weights came from (issue 24) -----------------------------------------------------

#: The public sample the accuracy is measured on: every 120th MNIST training image (500), from the Keras
#: cache the sandbox mounts. Training images only: never the grader's evaluation images.
SAMPLE_STRIDE = 120
MAX_ORIGIN_EVENTS = 10
_sample: dict[str, Any] = {}


def mnist_cache() -> str:
    """Where the sandbox mounts the Keras MNIST cache (public images only: never the grader's)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets", "mnist.npz")


def public_sample() -> tuple[Any, Any] | None:
    """(500 uint8 images, their labels) from the Keras MNIST cache, or None when it is not there."""
    if "images" not in _sample:
        _sample["images"] = None
        try:
            with _load(mnist_cache(), allow_pickle=False) as data:
                _sample["images"] = (data["x_train"][::SAMPLE_STRIDE].copy(), data["y_train"][::SAMPLE_STRIDE].copy())
        except Exception:
            pass
    return _sample["images"]


def feed_of(x: Any) -> dict | None:
    """How an image array was fed: its min and max (pixels 0 and 255) and per-sample shape."""
    array = probe.as_numeric(x)
    if array is None or array.ndim < 2 or not len(array) or sketch.canonical(array[:1]) is None:
        return None
    return {"low": float(probe._minimum.reduce(array, axis=None)),
            "high": float(probe._maximum.reduce(array, axis=None)),
            "shape": tuple(int(n) for n in array.shape[1:]), "dtype": array.dtype}


def sample_accuracy(model: Any, feed: dict | None) -> float | None:
    """Accuracy of a built model on the public sample fed like ``feed`` (default: /255, its input shape)."""
    sample = public_sample()
    if sample is None or not getattr(model, "built", False):
        return None
    images, labels = sample
    if feed is None:
        shape = getattr(model, "input_shape", None)
        if not isinstance(shape, tuple) or None in shape[1:]:
            return None
        feed = {"low": 0.0, "high": 1.0, "shape": tuple(shape[1:]), "dtype": probe._float32}
    pixels = math.prod(feed["shape"])
    raw = images.astype(probe._float32)
    if pixels == contract.PADDED_PIXELS:
        border = (contract.PADDING, contract.PADDING)
        raw = _pad(raw, ((0, 0), border, border))
    elif pixels != contract.MNIST_PIXELS:
        return None
    x = (feed["low"] + raw * ((feed["high"] - feed["low"]) / float(contract.PIXEL_MAX))).astype(feed["dtype"])
    scores = probe._asarray(model(x.reshape((len(x), *feed["shape"])), training=False))
    if scores.ndim != 2 or scores.shape[0] != len(labels):
        return None
    return float((scores.argmax(axis=1) == labels).mean())


def weights_state(model: Any) -> str:
    """A hash of every weight of a model (trainable or not), in order: equal states, equal hashes."""
    digest = hashlib.blake2b(digest_size=16)
    for variable in model.weights:
        value = probe._asarray(variable.numpy())
        digest.update(repr(value.shape).encode() + value.tobytes())
    return digest.hexdigest()


#: Weight states this run's own training produced (end of every fit; every save of such a model, which is
#: what ModelCheckpoint does): state -> {"steps": optimizer steps behind it, "start_accuracy": the public-sample
#: accuracy of the weights that training started from (None: not measured)}.
PRODUCED: dict[str, dict] = {}


class WeightsOrigin:
    """What the hook saw of one model's weights: measurements at its first fit and at every set/load."""

    def __init__(self, model: Any) -> None:
        self.ref = weakref.ref(model)
        self.first_fit: dict | None = None
        self.events: list[dict] = []
        self.start_accuracy: float | None = None  # of the weights this model's lineage started training from
        self.steps = 0  # optimizer steps behind its current weights in this run

    def measure(self, model: Any, event: str, feed: dict | None) -> dict:
        state = weights_state(model)
        produced = PRODUCED.get(state)
        accuracy = sample_accuracy(model, feed)
        if produced is not None:  # this run's own training produced these weights
            self.start_accuracy, self.steps = produced["start_accuracy"], produced["steps"]
        else:
            self.start_accuracy, self.steps = accuracy, 0
        return {"event": event, "accuracy": None if accuracy is None else round(accuracy, 4),
                "own": produced is not None, "start_accuracy": self.start_accuracy, "producer_steps": self.steps}

    def as_dict(self) -> dict:
        sample = public_sample()
        return {"sample": 0 if sample is None else len(sample[1]), "first_fit": self.first_fit,
                "events": self.events, "start_accuracy": self.start_accuracy}


#: id(model) -> its origin record (the weak reference tells a reused id from the same model).
ORIGINS: dict[int, WeightsOrigin] = {}


def weights_origin(model: Any) -> WeightsOrigin:
    found = ORIGINS.get(id(model))
    if found is None or found.ref() is not model:
        found = ORIGINS[id(model)] = WeightsOrigin(model)
    return found


def origin_of(model: Any) -> dict | None:
    """The export's view of a model's weight origin, or None when none of its weights was measured."""
    found = ORIGINS.get(id(model))
    return found.as_dict() if found is not None and found.ref() is model else None


def _last_feed(model: Any) -> dict | None:
    """How the notebook fed this model (or, before any fit of it, the last model fit): for a measurement."""
    record = MODELS.get(id(model)) or (list(MODELS.values())[-1] if MODELS else None)
    if record is None or not record.last_x or record.last_x.get("min") is None:
        return None
    return {"low": record.last_x["min"], "high": record.last_x["max"], "shape": tuple(record.last_x["shape"][1:]),
            "dtype": _dtype(record.last_x["dtype"])}


def note_weights_event(model: Any, event: str) -> None:
    """After set_weights, load_weights or load_model: measure the weights the model now holds."""
    try:
        origin = weights_origin(model)
        if len(origin.events) < MAX_ORIGIN_EVENTS:
            origin.events.append(origin.measure(model, event, _last_feed(model)))
        else:
            origin.measure(model, event, _last_feed(model))
    except Exception:
        pass


def note_first_fit(model: Any, x: Any) -> None:
    """When a model's first fit starts: the weights it starts from, measured as the notebook feeds it."""
    try:
        if getattr(model, "built", False) and model.weights:
            origin = weights_origin(model)
            source = origin.events[-1]["event"] if origin.events else "initialised"
            origin.first_fit = {**origin.measure(model, "first_fit", feed_of(x)), "source": source}
    except Exception:
        pass


def note_produced(model: Any) -> None:
    """After a fit, and at every save of a model: its weights are a state this run produced."""
    record = MODELS.get(id(model))
    origin = weights_origin(model)
    if record is None and not origin.events:
        return  # never trained nor loaded here: saving untouched initial weights produces nothing
    # During fit (ModelCheckpoint) the record's steps are not counted yet: the optimizer's own counter is.
    steps = max((record.steps if record else 0) + origin.steps, optimizer_steps(model) or 0)
    state = weights_state(model)
    if steps >= PRODUCED.get(state, {}).get("steps", 0):
        PRODUCED[state] = {"steps": steps, "start_accuracy": origin.start_accuracy}


def _produced_callback(keras: Any) -> type:
    class ProducedAtEpochEnd(keras.callbacks.Callback):
        """Each epoch's weights are a state this run's training produced (what EarlyStopping's
        restore_best_weights and a per-epoch ModelCheckpoint hand back later)."""

        def on_epoch_end(self, epoch, logs=None) -> None:
            try:
                note_produced(self.model)
            except Exception:
                pass

    return ProducedAtEpochEnd


def _after_call(original: Any, note: Callable[..., None]) -> Any:
    """``original`` called as given, then ``note(self_or_result, ...)`` guarded: never changes what it returns."""
    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        try:
            note(result, *args, **kwargs)
        except Exception:
            pass
        return result
    return wrapper


def _install_weights_hooks(keras: Any) -> None:
    """train_on_batch, set_weights, load_weights, save, save_weights and load_model, each still itself."""
    wrapped = {
        "train_on_batch": keras.Model.train_on_batch, "set_weights": keras.Model.set_weights,
        "load_weights": keras.Model.load_weights, "save": keras.Model.save, "save_weights": keras.Model.save_weights}
    original_train = wrapped["train_on_batch"]

    @functools.wraps(original_train)
    def train_on_batch(self, x=None, *args, **kwargs):
        try:
            record = MODELS.get(id(self)) or MODELS.setdefault(id(self), ModelRecord(self))
            if not record.batch_training.calls and not record.fit_calls:
                note_first_fit(self, x)
            record.batch_training.add(x)
        except Exception:
            pass
        return original_train(self, x, *args, **kwargs)

    keras.Model.train_on_batch = train_on_batch
    for name in ("set_weights", "load_weights"):
        setattr(keras.Model, name, _after_call(wrapped[name], lambda _, model, *a, _n=name, **k:
                                                note_weights_event(model, _n)))
    for name in ("save", "save_weights"):
        setattr(keras.Model, name, _after_call(wrapped[name], lambda _, model, *a, **k: note_produced(model)))
    loaders = {module: module.load_model for module in (keras.models, keras.saving)}
    for module, original in loaders.items():
        module.load_model = _after_call(original, lambda model, *a, **k: note_weights_event(model, "load_model"))
    _installed["weights"] = (keras, wrapped, loaders)


def install(keras: Any) -> None:
    """Wrap ``keras.Model.fit`` (``tf.keras.Model`` is the same class in Keras 3); idempotent."""
    if "fit" in _installed:
        return
    original = keras.Model.fit
    signature = inspect.signature(original)
    callback_class = _fingerprint_callback(keras)
    epoch_class = _produced_callback(keras)

    @functools.wraps(original)
    def fit(self, *args, **kwargs):
        call = steps_before = None
        try:
            bound = signature.bind(self, *args, **kwargs)
            call = _before(self, bound.arguments)
            steps_before = optimizer_steps(self)
            record = MODELS[id(self)]
            callbacks = bound.arguments.get("callbacks")
            if callbacks is None or isinstance(callbacks, (list, tuple)):
                added = [epoch_class()]  # every epoch's weights are this run's own (EarlyStopping restores one)
                if record.initial_weights is None:  # not built yet: Keras builds it while tracing the first step
                    added.append(callback_class(record))
                bound.arguments["callbacks"] = [*(callbacks or []), *added]
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
    _install_weights_hooks(keras)


def uninstall() -> None:
    """Restore the real ``fit`` and forget every record (for tests running in one process)."""
    keras, original = _installed.pop("fit", (None, None))
    if keras is not None:
        keras.Model.fit = original
    keras, wrapped, loaders = _installed.pop("weights", (None, {}, {}))
    for name, method in wrapped.items():
        setattr(keras.Model, name, method)
    for module, loader in loaders.items():
        module.load_model = loader
    forget()


def forget() -> None:
    """Drop every record (a new notebook in the same process: tests only)."""
    MODELS.clear()
    FITS.clear()
    PRODUCED.clear()
    ORIGINS.clear()
    for refs in FED.values():
        refs.clear()
