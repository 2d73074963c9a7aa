"""Prediction sandbox: load exported models safely and predict on unlabeled images.

Runs in a fresh sandbox with no student code but the model files: ``safe_mode=True`` refuses Lambda
bytecode, and only Keras's own layers deserialize. Writes, per model, its architecture summary (JSON)
and its class probabilities for each image set (``.npy``, float32, n x 10). It never sees a label.

    python -m autograder_inside.predict [--wait] MODELS_DIR OUT_DIR NAME=IMAGES.npy [NAME=IMAGES.npy ...]

With ``--wait`` it imports Keras and reads the images first, then waits for a ``go`` line on stdin
before it looks at MODELS_DIR: the grader starts it beside the notebook and releases it once the
notebook's kernel is gone (end of input without ``go``: nothing to predict, exit).
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

ARCHS = ("mlp", "cnn", "simple_rnn", "lstm", "gru")


def _shape(tensor_or_shape):
    shape = getattr(tensor_or_shape, "shape", tensor_or_shape)
    try:
        return [None if d is None else int(d) for d in shape]
    except TypeError:
        return None


def _flat_layers(model):
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _flat_layers(layer)
        else:
            yield layer


def describe_layer(layer) -> dict:
    config = layer.get_config()
    info = {"class": type(layer).__name__, "name": layer.name, "params": int(layer.count_params())}
    for key in ("units", "filters", "kernel_size", "pool_size", "activation", "return_sequences", "rate"):
        if key in config:
            value = config[key]
            info[key] = list(value) if isinstance(value, tuple) else value
    for attr in ("layer", "forward_layer"):  # TimeDistributed / Bidirectional
        inner = getattr(layer, attr, None)
        if inner is not None:
            info["wraps"] = describe_layer(inner)
            break
    for attr, key in (("input", "input_shape"), ("output", "output_shape")):
        try:
            info[key] = _shape(getattr(layer, attr))
        except Exception:
            info[key] = None
    return info


def compile_info(model) -> dict:
    optimizer = getattr(model, "optimizer", None)
    loss = getattr(model, "loss", None)
    from_logits = None
    if loss is not None and hasattr(loss, "get_config"):
        from_logits = loss.get_config().get("from_logits")
    return {"optimizer": type(optimizer).__name__ if optimizer is not None else None,
            "loss": (loss if isinstance(loss, str) else type(loss).__name__) if loss is not None else None,
            "from_logits": from_logits}


def summarize(model) -> dict:
    return {"class": type(model).__name__, "input_shape": _shape(model.input_shape),
            "output_shape": _shape(model.output_shape), "params": int(model.count_params()),
            "layers": [describe_layer(layer) for layer in _flat_layers(model)], **compile_info(model)}


def load(path: str):
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception:  # a compile config that does not deserialize: weights and layers still do
        return keras.saving.load_model(path, safe_mode=True, compile=False)


def predict(model, images: np.ndarray) -> np.ndarray:
    x = images.astype("float32") / 255.0
    x = x.reshape((len(x),) + tuple(model.input_shape[1:]))
    return np.asarray(model.predict(x, batch_size=500, verbose=0), dtype=np.float32)


def main(argv: list[str]) -> int:
    wait = argv[:1] == ["--wait"]
    models_dir, out_dir, *image_sets = argv[1:] if wait else argv
    images = {}
    for item in image_sets:
        name, path = item.split("=", 1)
        images[name] = np.load(path, allow_pickle=False)
    if wait:
        import keras  # noqa: F401  (the slow part, done while the notebook runs)

        if sys.stdin.readline().strip() != "go":
            return 0
    report = {}
    for arch in ARCHS:
        path = os.path.join(models_dir, f"{arch}.keras")
        if not os.path.isfile(path) or os.path.islink(path):
            continue
        try:
            model = load(path)
            report[arch] = {"summary": summarize(model)}
            for name, batch in images.items():
                np.save(os.path.join(out_dir, f"{arch}.{name}.npy"), predict(model, batch), allow_pickle=False)
        except Exception as exc:
            report[arch] = {**report.get(arch, {}), "error": f"{type(exc).__name__}: {exc}"[:500]}
    with open(os.path.join(out_dir, "summaries.json"), "w") as fh:
        json.dump(report, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
