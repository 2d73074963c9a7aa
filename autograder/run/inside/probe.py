"""Plain facts about a value (type, shape, range, label kind), read with numpy functions bound early.

``kernel_setup`` imports this module before any student cell runs, so the references below are the
real numpy functions even if the student later replaces ``numpy.asarray`` or friends. Only C-level
callables are kept (``asarray``, ``bincount``, ufuncs and their reductions, ndarray methods that do not
forward to Python): none of them can be monkeypatched after the fact. A student who controls the
kernel can still forge what a probe reads (see SECURITY.md); this only makes the cheap forgeries fail.

A probe never holds the data, and a value that is not array-like (a ``str``, a generator, a dataset)
is recorded as what it is, with ``is_array: False``.
"""
from __future__ import annotations

import inspect
import math
import sys

import numpy as np

from . import contract

_asarray = np.asarray
_ndarray = np.ndarray
_bincount = np.bincount
_float64, _float32 = np.float64, np.float32
_int64 = np.int64
_add, _multiply, _minimum, _maximum = np.add, np.multiply, np.minimum, np.maximum
_floor, _equal, _logical_and, _absolute = np.floor, np.equal, np.logical_and, np.absolute

CHUNK = 1 << 20  # values per chunk: statistics of 60,000 images without a 188 MB float32 copy
MAX_DISTINCT = 50
MAX_KEYS = 20


def text(value: object) -> str:
    return str(value)[:contract.MAX_TEXT]


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _real_types(module_name: str, attributes: tuple[str, ...]) -> tuple[type, ...]:
    """Classes of a library the notebook imported (never imported here just to look)."""
    module = sys.modules.get(module_name)
    return tuple(t for t in (getattr(module, a, None) for a in attributes) if isinstance(t, type))


def kind_of(value: object) -> str:
    """What a value is, by its real type: ``type()``, never ``__class__``, ``__module__`` or what it says."""
    cls = type(value)
    if issubclass(cls, (str, bytes)):
        return "str"
    if issubclass(cls, _ndarray):
        return "array"
    if cls in _real_types("pandas", ("DataFrame", "Series")):  # exact: a subclass may override __array__
        return "dataframe"
    if issubclass(cls, dict):
        return "dict"
    if issubclass(cls, (list, tuple)):
        return "list"
    if issubclass(cls, _real_types("tensorflow", ("Tensor", "Variable")) + _real_types("keras", ("Variable",))
                  + _real_types("jax", ("Array",)) + _real_types("torch", ("Tensor",))):
        return "tensor"
    if hasattr(value, "element_spec"):  # tf.data.Dataset
        return "dataset"
    if inspect.isgenerator(value) or hasattr(value, "__next__") or any(
            base.__name__ in ("PyDataset", "Sequence") for base in cls.__mro__):
        return "generator"
    return "other"


def as_numeric(value: object) -> np.ndarray | None:
    """The value as a numeric ndarray, or None when it is not array-like or not numeric."""
    kind = kind_of(value)
    if kind in ("str", "dict", "dataset", "generator", "other"):  # "other": whatever its __array__ says
        return None
    array = _asarray(value)  # a plain ndarray even for subclasses: their overrides are not called
    return array if array.dtype.kind in "biuf" else None


def _statistics(array: np.ndarray) -> dict:
    """min, max, mean, std; NaN and inf propagate through minimum/maximum, so they also say ``finite``."""
    flat = array.reshape(-1)
    low, high = _finite(_minimum.reduce(flat)), _finite(_maximum.reduce(flat))
    if low is None or high is None:
        return {"min": low, "max": high, "mean": None, "std": None, "finite": False}
    total = total_sq = 0.0
    for start in range(0, flat.shape[0], CHUNK):  # float32 pairwise sums per chunk, float64 across chunks
        chunk = flat[start:start + CHUNK]
        chunk = chunk if chunk.dtype.kind == "f" else chunk.astype(_float32)
        total += float(_add.reduce(chunk))
        total_sq += float(_add.reduce(_multiply(chunk, chunk)))
    mean = total / flat.shape[0]
    return {"min": low, "max": high, "mean": _finite(mean),
            "std": _finite(math.sqrt(max(total_sq / flat.shape[0] - mean * mean, 0.0))), "finite": True}


def total(array: np.ndarray) -> int:
    return int(_add.reduce(array, axis=None))


def integer_valued(array: np.ndarray) -> bool:
    if array.dtype.kind in "biu":
        return True
    return bool(_logical_and.reduce(_equal(array.reshape(-1), _floor(array.reshape(-1)))))


def _labels(array: np.ndarray, info: dict) -> str | None:
    if info["min"] is None or info["max"] is None or not info["finite"]:
        return None
    if array.ndim == 2 and array.shape[1] == 10 and info["min"] >= 0 and info["max"] <= 1:
        sums = _add.reduce(array.astype(_float64), axis=1)
        if integer_valued(array) and bool(_logical_and.reduce(_absolute(sums - 1.0) < 1e-6)):
            return "one_hot"
        return None
    if (array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)) and info["min"] >= 0 and info["max"] <= 9:
        return "int" if integer_valued(array) else None
    return None


def probe(value: object) -> dict:
    """Plain facts about a variable: type, kind, dtype, shape, range, label kind; never the data."""
    if value is None:
        return {"present": False}
    info: dict = {"present": True, "type": text(type(value).__name__), "kind": "other", "is_array": False}
    try:
        info["kind"] = kind_of(value)
        if info["kind"] == "dict":
            info["keys"] = [text(key) for key in list(value)[:MAX_KEYS]]
        elif info["kind"] == "dataset":
            info["element_spec"] = text(value.element_spec)
        array = as_numeric(value)
    except Exception as exc:  # ragged lists, objects that refuse to be arrays or to be looked at
        info["error"] = text(f"{type(exc).__name__}: {exc}")
        return info
    if array is None:
        return info
    info.update(is_array=True, dtype=text(array.dtype), shape=[int(n) for n in array.shape],
                images=contract.image_shaped(array.shape), labels=None)
    if array.size:
        info.update(_statistics(array))
        info["labels"] = _labels(array, info)
        if array.ndim == 1 and info["finite"] and info["min"] is not None and info["min"] >= 0 \
                and info["max"] < 1e6 and integer_valued(array):
            counts = _bincount(array.astype(_int64))
            info["distinct"] = [int(v) for v in counts.nonzero()[0][:MAX_DISTINCT]]
    return info


def fingerprint(model, max_values: int = 1_000_000) -> list[np.ndarray]:
    """A copy (strided when large) of a model's trainable weights, to tell later whether they moved."""
    variables = list(model.trainable_weights)
    total = sum(math.prod(int(n) for n in v.shape) for v in variables)
    stride = max(1, -(-total // max_values))
    return [_asarray(v.numpy(), dtype=_float64).reshape(-1)[::stride].copy() for v in variables]


def weights_moved(model, before: list[np.ndarray]) -> float | None:
    """Relative L2 change of the trainable weights since ``before`` (same sampling), or None."""
    now = fingerprint(model)
    if not before or len(now) != len(before) or any(a.shape != b.shape for a, b in zip(now, before)):
        return None
    diff = sum(float(_add.reduce(_multiply(a - b, a - b))) for a, b in zip(now, before))
    base = sum(float(_add.reduce(_multiply(b, b))) for b in before)
    return _finite(math.sqrt(diff) / math.sqrt(base)) if base > 0 else _finite(math.sqrt(diff))
