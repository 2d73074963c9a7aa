"""Prediction sandbox: rebuild each exported model, feed it the way its author did, predict on unlabeled images.

Runs in a fresh sandbox that never sees a label. Stock models load from ``.keras`` files with
``safe_mode=True`` (no Lambda bytecode, only Keras's own layers deserialize), so no student code runs.
Subclassed models (a ``keras.Model`` subclass defined in the notebook) are only rebuilt when the grader
passes ``--classes``: the notebook's class definitions, extracted by the trusted side, are executed here,
the class instantiated, called once on a dummy batch of the recorded input shape, and its weights loaded.
The grader runs those in a process of their own, writing to a directory of their own, so student code
cannot touch another model's results.

Per model (in ``OUT_DIR``, names from :mod:`contract`): a ``started`` marker when it begins (the grader
kills a model that overruns its budget and goes on with the others in a fresh process), its class scores
for each image set, the scores with its working layers zeroed on the ablation images, and last its
summary: architecture, how it was fed, a hash of its weights, the ablation's agreement, or the error.

    python -m autograder_inside.predict [--wait] [--only ARCH,...] [--classes CLASSES.py] [--ablate NAME:N]
                                        [--feeds FEEDS.json] EXPORT_DIR OUT_DIR NAME=IMAGES.npy [...]

With ``--feeds`` (the grader's second pass, for the models whose measurement the notebook's own evaluate()
contradicts) each model is predicted once per feed the file lists for it, each feed's files named
``contract.RETRY_NAME``; the model's own ``started`` and summary files frame them all.

With ``--wait`` it imports Keras and reads the images first, then waits for a ``go`` line on stdin
before it looks at EXPORT_DIR: the grader starts it beside the notebook and releases it once the
notebook's kernel is gone (end of input without ``go``: nothing to predict, exit).
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import sys
import time

import numpy as np

from . import contract

BATCH_SIZE = 500
MAX_LAYERS = 300  # layers described per model (a summary has a size cap)


class ModelError(Exception):
    """This model cannot be rebuilt, fed or predicted; the message says why, for the feedback."""


# --- architecture summary ---------------------------------------------------------------------------

def _shape(tensor_or_shape) -> list | None:
    shape = getattr(tensor_or_shape, "shape", tensor_or_shape)
    try:
        return [None if d is None else int(d) for d in shape]
    except TypeError:
        return None


def _input_shape(layer) -> list | None:
    try:
        return _shape(layer.input)
    except Exception:  # a sub-layer of a subclassed model has no graph input: use the shape it was built on
        built = getattr(layer, "_build_shapes_dict", None) or {}
        shapes = [_shape(value) for value in built.values()]
        shape = shapes[0] if len(shapes) == 1 else None
        return None if shape is None else [None] + shape[1:]


def describe_layer(layer) -> dict:
    config = layer.get_config()
    info = {"class": type(layer).__name__, "name": layer.name, "params": int(layer.count_params())}
    for key in ("units", "filters", "kernel_size", "strides", "pool_size", "activation", "return_sequences", "rate"):
        if key in config:
            value = config[key]
            info[key] = list(value) if isinstance(value, tuple) else value
    inner = contract.wrapped(layer)
    if inner is not None:
        info["wraps"] = describe_layer(inner)
    info["input_shape"] = _input_shape(layer)
    try:
        info["output_shape"] = _shape(layer.output)
    except Exception:
        info["output_shape"] = None
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


def _model_shape(model, attr: str) -> list | None:
    try:
        return _shape(getattr(model, attr))
    except Exception:  # subclassed models have no input_shape / output_shape
        return None


def summarize(model, subclassed: bool = False) -> dict:
    layers = contract.model_layers(model)
    return {"class": type(model).__name__, "subclassed": subclassed,
            "input_shape": _model_shape(model, "input_shape"), "output_shape": _model_shape(model, "output_shape"),
            "params": int(model.count_params()), "layers": [describe_layer(layer) for layer in layers[:MAX_LAYERS]],
            "layers_omitted": max(0, len(layers) - MAX_LAYERS), **compile_info(model)}


# --- rebuilding ------------------------------------------------------------------------------------

def load(path: str):
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception:  # a compile config that does not deserialize: weights and layers still do
        return keras.saving.load_model(path, safe_mode=True, compile=False)


def load_classes(path: str) -> dict:
    """Run the notebook's class definitions (extracted by the trusted side) in a fresh namespace."""
    with open(path, encoding="utf-8") as fh:
        source = fh.read()
    namespace = {"__name__": "agx_notebook_classes"}
    exec(compile(source, "notebook classes", "exec"), namespace)  # noqa: S102 - this sandbox exists for it
    return namespace


def rebuild_subclassed(entry: dict, weights_path: str, namespace: dict, shape: list[int]):
    """Instantiate the notebook's class as the notebook did, build it on a dummy batch, load the weights."""
    class_name = str(entry.get("class_name") or "")
    cls = namespace.get(class_name)
    if not isinstance(cls, type):
        raise ModelError(f"the class {class_name!r} is not among the notebook's class definitions")
    args, kwargs = namespace.get(contract.CONSTRUCTOR_CALLS, {}).get(class_name, ((), {}))
    try:
        model = cls(*args, **kwargs)
        model(np.zeros((1, *shape), dtype="float32"))
        model.load_weights(weights_path)
    except Exception as exc:
        raise ModelError(f"the subclassed model {class_name} could not be rebuilt from the notebook's code: "
                         f"{type(exc).__name__}: {exc}") from exc
    return model


# --- feeding: the author's input pipeline -----------------------------------------------------------

def _recorded_shape(entry: dict) -> list[int] | None:
    shape = (entry.get("input") or {}).get("shape")
    if isinstance(shape, list) and shape and all(isinstance(d, int) and d > 0 for d in shape):
        return shape
    return None


def input_shape(model, entry: dict) -> list[int]:
    """Per-sample shape to feed: the model's input spec, its unknown dims filled from what the author fed."""
    spec = _model_shape(model, "input_shape")
    recorded = _recorded_shape(entry)
    if spec is None or isinstance(spec[0], list):  # subclassed, or several inputs
        if recorded is None:
            raise ModelError("the model declares no input shape and none was recorded when it was trained")
        return recorded
    spec = spec[1:]
    if all(d is not None for d in spec):
        return spec
    if recorded is not None and len(recorded) == len(spec) and all(s in (None, r) for s, r in zip(spec, recorded)):
        return recorded
    if spec[-1:] == [contract.MNIST_SIDE] and len(spec) == 2:  # (None, 28): 28 rows of 28 pixels
        return [contract.MNIST_SIDE, contract.MNIST_SIDE]
    if len(spec) == 3 and spec[-1] is not None:  # (None, None, channels): a whole image
        return [contract.MNIST_SIDE, contract.MNIST_SIDE, spec[-1]]
    raise ModelError(f"cannot feed MNIST images to a model whose input is {spec}")


def feeding(model, entry: dict) -> dict:
    """How this model is fed: ``scale * pixels + offset``, padded by ``pad`` pixels, reshaped to ``shape``."""
    pixels = entry.get("input") or {}
    mean, std = pixels.get("mean"), pixels.get("std")
    if isinstance(mean, (int, float)) and isinstance(std, (int, float)) and std > 0:
        scale, offset = contract.input_scaling(float(mean), float(std), contract.mnist_share(pixels.get("shape")))
        source = pixels.get("source") if pixels.get("source") in ("fit", "evaluate", "probe", "default") else "probe"
    else:
        (scale, offset), source = contract.DEFAULT_SCALING, "default"
    shape = input_shape(model, entry)
    size = int(np.prod(shape))
    channels = 1
    pad = 0
    side = contract.MNIST_SIDE
    if size % contract.MNIST_PIXELS == 0:
        channels = size // contract.MNIST_PIXELS
    elif len(shape) >= 2 and shape[0] == shape[1] and shape[0] > side and (shape[0] - side) % 2 == 0 \
            and size % (shape[0] * shape[1]) == 0:  # LeNet's 32x32: the digit centred, zeros around it
        pad = (shape[0] - side) // 2
        channels = size // (shape[0] * shape[1])
    else:
        raise ModelError(f"cannot feed MNIST images to a model whose input is {shape}")
    if channels not in (1, 3):
        raise ModelError(f"cannot feed MNIST images to a model whose input is {shape}")
    return {"scale": scale, "offset": offset, "shape": shape, "pad": pad, "channels": channels, "source": source}


def retried_feeding(model, entry: dict, feed: dict) -> dict:
    """How the model is fed on the grader's retry with ``feed``: pixel statistics the notebook fed it
    (``mean``, ``std``, ``shape``, as :func:`feeding` reads them) or a known ``scale`` and ``offset``."""
    if "scale" in feed:
        fed = feeding(model, entry)
        fed.update(scale=float(feed["scale"]), offset=float(feed["offset"]))
    else:
        fed = feeding(model, {**entry, "input": feed})
    fed["source"] = "retried"
    return fed


def feed(images: np.ndarray, fed: dict) -> np.ndarray:
    x = images
    if fed["pad"]:
        x = np.pad(x, ((0, 0), (fed["pad"], fed["pad"]), (fed["pad"], fed["pad"])))  # raw background is 0
    x = x.astype("float32") * np.float32(fed["scale"]) + np.float32(fed["offset"])
    if fed["channels"] > 1:
        x = np.repeat(x[..., None], fed["channels"], axis=-1)
    return x.reshape((len(x), *fed["shape"]))


def scores(model, images: np.ndarray, fed: dict) -> np.ndarray:
    """Class scores (softmax or logits, argmax decides) as float32 (n, contract.CLASSES)."""
    out = model.predict(feed(images, fed), batch_size=BATCH_SIZE, verbose=0)
    if isinstance(out, (list, tuple, dict)):
        raise ModelError(f"the model has several outputs; the homework asks for one {contract.CLASSES}-class output")
    out = np.asarray(out, dtype=np.float32).reshape(len(images), -1)
    if out.shape[1] != contract.CLASSES:
        raise ModelError(f"the model outputs {out.shape[1]} values per image, not {contract.CLASSES} class scores")
    if not np.isfinite(out).all():
        raise ModelError("the model outputs NaN or infinite scores")
    return out


# --- integrity evidence -----------------------------------------------------------------------------

def weights_sha256(model) -> str:
    """SHA-256 over the weight arrays in order (dtype, shape, bytes): equal weights, equal hash."""
    digest = hashlib.sha256()
    for weights in model.get_weights():
        array = np.ascontiguousarray(weights)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def working_layers(model, arch: str) -> list:
    """The layers that do the named kind's work (contract.WORKING_LAYERS), wrappers included."""
    kinds = contract.WORKING_LAYERS.get(arch, frozenset())
    found = []
    for layer in contract.model_layers(model):
        inner = contract.wrapped(layer)
        if type(layer).__name__ in kinds or (inner is not None and type(inner).__name__ in kinds):
            found.append(layer)
    return found


def ablate(model, arch: str, images: np.ndarray, intact: np.ndarray, fed: dict) -> tuple[dict | None, np.ndarray | None]:
    """Zero the working layers' weights and measure how often the predictions stay the same.

    A network of the named kind depends on them (about one prediction in ten survives: a constant
    answer); a model whose convolution or recurrent branch is decoration keeps answering as before.
    """
    layers = working_layers(model, arch)
    if not layers:
        return None, None
    for layer in layers:
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    ablated = scores(model, images, fed)
    agreement = float(np.mean(ablated.argmax(axis=1) == intact.argmax(axis=1)))
    return {"zeroed": [layer.name for layer in layers], "images": len(images), "agreement": round(agreement, 4)}, ablated


# --- one model ---------------------------------------------------------------------------------------

def _save(out_dir: str, name: str, array: np.ndarray) -> None:
    np.save(os.path.join(out_dir, name), array, allow_pickle=False)


def exported_subclassed(export_dir: str, arch: str) -> bool | None:
    """Whether the exported file is a subclass's weights (True) or a whole model (False); None: no file.

    Decided by the file, as the grader decides which process predicts it, not by the manifest's word.
    """
    for subclassed in (False, True):
        path = os.path.join(export_dir, contract.MODELS_DIR, contract.model_file(arch, subclassed))
        if os.path.isfile(path) and not os.path.islink(path):
            return subclassed
    return None


def predict_model(arch: str, entry: dict, export_dir: str, out_dir: str, images: dict[str, np.ndarray],
                  ablation: tuple[str, int] | None, classes: dict | None, feed: dict | None = None,
                  name: str | None = None) -> dict:
    """Predict one model on every image set and return its summary (raises ModelError); ``feed``: a retry's
    feed (:func:`retried_feeding`), its files named ``name`` instead of ``arch``."""
    name = name or arch
    subclassed = exported_subclassed(export_dir, arch)
    if subclassed is None:
        raise ModelError("the exported model file is missing")
    path = os.path.join(export_dir, contract.MODELS_DIR, contract.model_file(arch, subclassed))
    if subclassed:
        if classes is None:
            raise ModelError("subclassed models are rebuilt in their own process")
        shape = _recorded_shape(entry) or [contract.MNIST_SIDE, contract.MNIST_SIDE]
        model = rebuild_subclassed(entry, path, classes, shape)
    else:
        model = load(path)
    summary = {"summary": summarize(model, subclassed)}
    fed = feeding(model, entry) if feed is None else retried_feeding(model, entry, feed)
    summary["fed"] = fed
    summary["weights_sha256"] = weights_sha256(model)
    for image_set, batch in images.items():
        result = scores(model, batch, fed)
        _save(out_dir, contract.PREDICTIONS_FILE.format(arch=name, image_set=image_set), result)
        if ablation is not None and image_set == ablation[0]:
            intact = result[:ablation[1]]
    summary["ablation"] = None
    if ablation is not None and ablation[0] in images:
        set_name, count = ablation
        summary["ablation"], ablated = ablate(model, arch, images[set_name][:count], intact, fed)
        if summary["ablation"] is not None:
            summary["ablation"]["image_set"] = set_name
            _save(out_dir, contract.ABLATED_FILE.format(arch=name, image_set=set_name), ablated)
    return summary


def retry_model(arch: str, entry: dict, args: argparse.Namespace, images: dict[str, np.ndarray],
                ablation: tuple[str, int] | None, classes: dict | None, feeds: list[dict]) -> int:
    """Predict the model afresh once per feed (the ablation zeroes its layers), each feed's files and summary
    named ``contract.RETRY_NAME``; a feed that fails records its error and the next one is tried."""
    import keras

    for index, feed in enumerate(feeds):
        name = contract.RETRY_NAME.format(arch=arch, index=index)
        try:
            summary = predict_model(arch, entry, args.export_dir, args.out_dir, images, ablation, classes, feed, name)
            summary["error"] = None
        except Exception as exc:
            summary = {"error": f"{type(exc).__name__}: {exc}"[:contract.MAX_TEXT * 3]}
        _write_json(os.path.join(args.out_dir, contract.SUMMARY_FILE.format(arch=name)), summary)
        keras.backend.clear_session()
    return len(feeds)


def _write_json(path: str, value: dict) -> None:
    with open(path, "w") as fh:
        json.dump(value, fh)


def read_manifest(export_dir: str) -> dict:
    try:
        with open(os.path.join(export_dir, contract.MANIFEST)) as fh:
            manifest = json.load(fh)
    except (OSError, ValueError):
        return {}
    models = manifest.get("models") if isinstance(manifest, dict) else None
    return {arch: entry for arch, entry in (models or {}).items() if arch in contract.ARCHITECTURES
            and isinstance(entry, dict)}


def _configure_threads() -> None:
    """A fixed thread count (float results, and so argmaxes, can depend on it)."""
    import tensorflow as tf

    threads = int(os.environ["AUTOGRADER_THREADS"])  # always set by the grader (its [execution] threads)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised (in-process callers): keep what they chose
        pass


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="autograder_inside.predict")
    parser.add_argument("--wait", action="store_true")
    parser.add_argument("--only", default=None, help="comma-separated architectures, in order")
    parser.add_argument("--classes", default=None, help="the notebook's class definitions (subclassed models)")
    parser.add_argument("--ablate", default=None, help="NAME:N, the first N images of set NAME")
    parser.add_argument("--feeds", default=None, help="the feeds to retry each model with (JSON)")
    parser.add_argument("export_dir")
    parser.add_argument("out_dir")
    parser.add_argument("image_sets", nargs="*")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    images = {}
    for item in args.image_sets:
        name, path = item.split("=", 1)
        images[name] = np.load(path, allow_pickle=False)
    ablation = None
    if args.ablate:
        name, count = args.ablate.rsplit(":", 1)
        ablation = (name, int(count))
    import keras  # the slow part, done while the notebook runs

    _configure_threads()
    gc.freeze()  # TensorFlow's import objects live to the end: each model's collection skips them (~0.4 s each)
    if args.wait and sys.stdin.readline().strip() != "go":
        return 0
    manifest = read_manifest(args.export_dir)
    archs = args.only.split(",") if args.only else list(contract.ARCHITECTURES)
    classes = None
    feeds = None
    if args.feeds:
        with open(args.feeds) as fh:
            feeds = json.load(fh)
    for arch in archs:
        entry = manifest.get(arch, {})
        if exported_subclassed(args.export_dir, arch) != bool(args.classes):
            continue  # stock models here, subclassed ones in their own process (and vice versa)
        open(os.path.join(args.out_dir, contract.STARTED_FILE.format(arch=arch)), "w").close()
        started = time.monotonic()
        try:
            if args.classes and classes is None:
                try:
                    classes = load_classes(args.classes)
                except Exception as exc:
                    raise ModelError(f"the notebook's class definitions do not run on their own: "
                                     f"{type(exc).__name__}: {exc}") from exc
            if feeds is None:
                summary = predict_model(arch, entry, args.export_dir, args.out_dir, images, ablation, classes)
            else:
                summary = {"feeds": retry_model(arch, entry, args, images, ablation, classes, feeds.get(arch, []))}
            summary["error"] = None
        except ModelError as exc:
            summary = {"error": str(exc)[:contract.MAX_TEXT * 3]}
        except Exception as exc:
            summary = {"error": f"{type(exc).__name__}: {exc}"[:contract.MAX_TEXT * 3]}
        summary.update(arch=arch, seconds=round(time.monotonic() - started, 3))
        _write_json(os.path.join(args.out_dir, contract.SUMMARY_FILE.format(arch=arch)), summary)
        keras.backend.clear_session()  # each model's memory is its own (it also collects garbage)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # every file is written and closed: skip TensorFlow's seconds-long teardown
