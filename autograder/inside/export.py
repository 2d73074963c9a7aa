"""Export step: runs in the student's kernel after their cells; writes plain data to the export dir.

Finds each required model by its template name, else discovers Keras models in the namespace and
classifies them by their layers; saves each as ``.keras`` (config + weights, no pickles) for the
prediction sandbox; writes probes of the preprocessing variables and the student's confusion matrix.
"""
from __future__ import annotations

import json
import math
import os
import sys

import numpy as np

KIND_BY_LAYER = {"Conv2D": "cnn", "Conv1D": "cnn", "LSTM": "lstm", "GRU": "gru", "SimpleRNN": "simple_rnn"}
MAX_TEXT = 200


def layer_classes(model) -> list[str]:
    names = []
    for layer in getattr(model, "layers", []):
        names.append(type(layer).__name__)
        if hasattr(layer, "layers"):
            names.extend(layer_classes(layer))
        inner = getattr(layer, "layer", None) or getattr(layer, "forward_layer", None)
        if inner is not None:  # Bidirectional / TimeDistributed wrappers
            names.append(type(inner).__name__)
    return names


def guess_kind(model) -> str | None:
    classes = layer_classes(model)
    for layer_name in ("LSTM", "GRU", "SimpleRNN", "Conv2D", "Conv1D"):
        if layer_name in classes:
            return KIND_BY_LAYER[layer_name]
    return "mlp" if "Dense" in classes else None


def training_steps(model) -> int:
    try:
        return int(model.optimizer.iterations.numpy())
    except Exception:
        return 0


def find_models(namespace: dict, wanted: dict[str, str]) -> dict[str, dict]:
    """arch -> {variable, found_by, object}: template names first, then discovery by layers."""
    keras = sys.modules.get("keras")
    if keras is None:  # never imported, so no model exists: skip a ten-second TensorFlow import
        return {}
    found: dict[str, dict] = {}
    for arch, variable in wanted.items():
        obj = namespace.get(variable)
        if isinstance(obj, keras.Model):
            found[arch] = {"variable": variable, "found_by": "name", "object": obj}
    taken = {id(entry["object"]) for entry in found.values()}
    candidates = sorted(
        ((name, obj) for name, obj in list(namespace.items())
         if not name.startswith("_") and isinstance(obj, keras.Model) and id(obj) not in taken),
        key=lambda item: (-training_steps(item[1]), item[0]))
    for name, obj in candidates:
        kind = guess_kind(obj)
        if kind in wanted and kind not in found:
            found[kind] = {"variable": name, "found_by": "discovered", "object": obj}
            taken.add(id(obj))
    return found


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def probe_array(value) -> dict:
    """Plain facts about a variable: type, dtype, shape, range; never the data itself."""
    if value is None:
        return {"present": False}
    info = {"present": True, "type": type(value).__name__[:MAX_TEXT]}
    try:
        array = np.asarray(value)
    except Exception as exc:  # objects that refuse to be arrays
        info["error"] = f"{type(exc).__name__}: {exc}"[:MAX_TEXT]
        return info
    info.update(dtype=str(array.dtype)[:MAX_TEXT], shape=[int(n) for n in array.shape])
    if array.dtype.kind in "biuf" and array.size:
        info.update(min=_finite(array.min()), max=_finite(array.max()), mean=_finite(array.mean()),
                    finite=bool(np.isfinite(array).all()))
        if array.ndim == 1 and array.dtype.kind in "biu":
            info["distinct"] = sorted(int(v) for v in np.unique(array)[:50])
        elif array.ndim == 2 and array.shape[1] == 10:  # one-hot labels
            info["row_sums_one"] = bool(np.allclose(array.sum(axis=1), 1.0))
    return info


def run(namespace: dict, export_dir: str, config_json: str) -> None:
    config = json.loads(config_json)
    os.makedirs(os.path.join(export_dir, "models"), exist_ok=True)
    manifest: dict = {"models": {}, "probes": {}, "errors": []}
    try:
        models = find_models(namespace, config["models"])
    except Exception as exc:
        models = {}
        manifest["errors"].append(f"model discovery failed: {type(exc).__name__}: {exc}"[:MAX_TEXT])
    for arch, entry in models.items():
        model = entry.pop("object")
        entry.update(training_steps=training_steps(model), compiled=getattr(model, "optimizer", None) is not None)
        try:
            model.save(os.path.join(export_dir, "models", f"{arch}.keras"))
            entry["file"] = f"{arch}.keras"
        except Exception as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"[:MAX_TEXT]
        manifest["models"][arch] = entry
    for key, variable in config["probes"].items():
        value = namespace.get(variable)
        if key == "confusion_matrix":
            manifest["probes"][key] = probe_array(value)
            try:
                np.save(os.path.join(export_dir, "confusion.npy"), np.asarray(value, dtype=np.int64),
                        allow_pickle=False)
            except Exception as exc:
                manifest["errors"].append(f"confusion matrix not saved: {type(exc).__name__}"[:MAX_TEXT])
        elif key == "best_model":
            manifest["probes"][key] = str(value)[:MAX_TEXT] if value is not None else None
        else:
            manifest["probes"][key] = probe_array(value)
    with open(os.path.join(export_dir, "manifest.json"), "w") as fh:
        json.dump(manifest, fh)
