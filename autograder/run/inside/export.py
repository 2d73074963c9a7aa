"""Export step: runs in the student's kernel after their cells; writes plain data to the export dir.

It finds the models (template names, then what the grader's fit hook saw, ``history.model``, models in
lists/dicts, any Keras model), classifies them with ``contract.classify``, saves one per architecture
for the prediction sandbox (``.keras``; weights only for a subclass of ``keras.Model``), and probes
the data roles and confusion matrices by name, then by what ``fit`` was fed, then by content. All
probes use ``probe``'s numpy references, bound before any student cell ran. Everything written here
is untrusted evidence: the trusted side validates it and measures what matters itself.

Manifest (``contract.MANIFEST``), version 2::

    {"version": 2,
     "models": {arch: {
         "variable": str|null,      # how it was reached: "cnn_model", "history.model", "models[1]",
                                    # "models['cnn']"; null when only the fit hook holds it
         "found_by": "name"|"discovered"|"history"|"container"|"fit",
         "class_name": str, "subclassed": bool,   # subclassed: class not defined by keras itself
         "file": str|null,          # contract.model_file(arch, subclassed) under contract.MODELS_DIR
         "training_steps": int,     # optimizer.iterations at export time
         "fit_calls": int, "fit_steps": int,       # from the fit hook: calls seen, optimizer steps in them
         "fit_rows": [int],                        # indices into "fits" of its recorded calls
         "weights_moved": float|null,              # relative L2 change of the trainable weights since
         "weights_baseline": "before_fit"|"first_step"|null,   # ... this moment (first_step: fit built it)
         "input_shape": [int|null, ...]|null,      # model.input_shape when known
         "input": {"shape": [int, ...], "mean": f, "std": f, "min": f|null, "max": f|null,
                   "source": "fit"|"evaluate"|"probe"|"default"},  # how its author fed it, per sample
                                   # (fit: its last fit's x, or the sample fit drew from its dataset)
         "own_measures": [{"method": "evaluate"|"predict", "accuracy": f,   # the notebook's own evaluate()
                           "rows": int|null, "shape": [int]|null,            # calls, and predict() calls on
                           "mean": f|null, "std": f|null}],                  # the test images in order
                                    # (evaluate_hook; <= contract.MAX_EVALUATIONS): for review only
         "saved_without_compile": bool,   # the full save failed; saved again without the compile config
         "weights_origin": {"sample": int, "start_accuracy": f|null,        # null: nothing measured;
                            "first_fit": measurement|null, "events": [measurement]}|null,   # see fit_hook
         "batch_training": {"calls": int, "images": int, "sketch": str}|null,  # its train_on_batch calls
         "error": str|null}},
     "candidates": [{"variable", "found_by", "class_name", "kind", "trained": bool,
                     "mnist_shaped": bool, "chosen": arch|null}],         # <= contract.MAX_MODEL_CANDIDATES
     "data": {role: {"variable": str, "found_by": "name"|"fit"|"content", **probe}},  # contract.DATA_ROLES
     "validation": {"kind": "data"|"split"|"arrays"|null, "fraction": float|null, "variable": str|null},
     "confusion": [{"variable": str, "found_by": "name"|"content"|"returned", "file": str, "total": int}],
                                    # returned: what a confusion-matrix function returned, kept by
                                    # confusion_hook; its variable says which ("confusion_matrix() #1")
     "best_model": str|null,
     "fits": [{"model": str, "class_name": str, "x": probe, "y": probe, "validation_split": float|null,
               "validation_data": bool, "validation_x": probe|null, "validation_y": probe|null,
               "x_sample": probe|null,   # x a dataset/Sequence: the inputs of its first batches
               "epochs": int|null, "steps": int, "error": str|null,
               "trained_on": {"images": int, "sketch": str}|null}],   # <= contract.MAX_FITS
     "errors": [str]}

A sketch is up to ``sketch.SKETCH_SIZE`` 16-hex-digit hashes of the distinct images trained on (the
smallest ones); a measurement is ``{"event", "accuracy", "own", "start_accuracy", "producer_steps"}`` (and
``"source"`` for ``first_fit``). A probe is ``probe.probe``'s dict: present, type, kind, is_array, and for arrays dtype, shape, min,
max, mean, std, finite, images, labels ("int"|"one_hot"|null), distinct. A data role's variable is a
namespace name, or ``"fit #i x"`` (``y``, ``validation x``...) when fit was fed an unnamed expression.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import confusion_hook, contract, evaluate_hook, fit_hook, probe

# kernel_setup imports this module before any student cell, so these are the real functions.
_save = np.save
_dump = json.dump

MAX_CONTAINER_ITEMS = 50
IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})
#: Statistics of MNIST fed the default way (contract.DEFAULT_SCALING: pixels / 255), as 28 rows of 28 pixels.
DEFAULT_INPUT = {"shape": [contract.MNIST_SIDE, contract.MNIST_SIDE],
                 "mean": contract.RAW_PIXEL_MEAN / contract.PIXEL_MAX,
                 "std": contract.RAW_PIXEL_STD / contract.PIXEL_MAX, "min": 0.0, "max": 1.0, "source": "default"}


def _public_items(namespace: dict) -> list[tuple[str, Any]]:
    return [(name, value) for name, value in list(namespace.items())
            if isinstance(name, str) and not name.startswith("_") and name not in IPYTHON_NAMES]


def _names_by_id(namespace: dict) -> dict[int, str]:
    names: dict[int, str] = {}
    for name, value in _public_items(namespace):
        names.setdefault(id(value), name)
    return names


def _guarded(errors: list[str], what: str, step: Callable[[], Any], default: Any) -> Any:
    try:
        return step()
    except Exception as exc:
        errors.append(probe.text(f"{what} failed: {type(exc).__name__}: {exc}"))
        return default


# --- models -------------------------------------------------------------------------------------------

def layer_classes(model: Any) -> list[str]:
    """Class names of a model's layers as the prediction summary lists them (``contract.model_layers``),
    wrappers unwrapped, for classify."""
    return [type(contract.wrapped(layer) or layer).__name__ for layer in contract.model_layers(model)]


def is_subclassed(model: Any) -> bool:
    return not contract.keras_own(model)


def _iterations(model: Any) -> int:
    return fit_hook.optimizer_steps(model) or 0


def _input_shape(model: Any) -> list | None:
    try:
        shape = model.input_shape
        return [None if d is None else int(d) for d in shape]
    except Exception:  # unbuilt, subclassed or several inputs
        return None


def _mnist_shaped(sample_shape: list | None) -> bool:
    if sample_shape is None:
        return False
    return tuple(sample_shape) in contract.IMAGE_SHAPES or tuple(sample_shape) == (None, contract.MNIST_SIDE)


@dataclass
class Candidate:
    model: Any
    variable: str | None
    found_by: str
    order: int
    record: fit_hook.ModelRecord | None = None
    kind: str | None = None
    steps: int = 0
    mnist_shaped: bool = False
    chosen: str | None = None

    @property
    def trained(self) -> bool:
        return self.steps > 0

    def rank(self) -> tuple:
        """Trained before untrained, MNIST-shaped before not, seen by fit, then most steps, then first."""
        return (not self.trained, not self.mnist_shaped, self.record is None, -self.steps, self.order)


def _reachable(namespace: dict, keras: Any) -> Iterator[tuple[str, str, Any]]:
    """(variable, found_by, model) for models in the namespace, in History objects and in containers."""
    history_class = keras.callbacks.History

    def unpack(path: str, value: Any, found_by: str) -> Iterator[tuple[str, str, Any]]:
        if isinstance(value, keras.Model):
            yield path, found_by, value
        elif isinstance(value, history_class) and isinstance(getattr(value, "model", None), keras.Model):
            yield f"{path}.model", "history", value.model

    for name, value in _public_items(namespace):
        yield from unpack(name, value, "discovered")
        if isinstance(value, (list, tuple)):
            for index, item in enumerate(value[:MAX_CONTAINER_ITEMS]):
                yield from unpack(f"{name}[{index}]", item, "container")
        elif isinstance(value, dict):
            for key, item in list(value.items())[:MAX_CONTAINER_ITEMS]:
                yield from unpack(probe.text(f"{name}[{key!r}]"), item, "container")


_PATH_RANK = {"discovered": 0, "history": 1, "container": 2}


def model_candidates(namespace: dict, keras: Any) -> list[Candidate]:
    """Every distinct model the notebook left reachable or trained, with the best path to it."""
    by_id: dict[int, Candidate] = {}
    for record in fit_hook.MODELS.values():
        by_id[id(record.model)] = Candidate(record.model, None, "fit", len(by_id), record)
    for variable, found_by, model in _reachable(namespace, keras):
        found = by_id.get(id(model))
        if found is None:
            by_id[id(model)] = Candidate(model, variable, found_by, len(by_id), fit_hook.MODELS.get(id(model)))
        elif found.variable is None or _PATH_RANK[found_by] < _PATH_RANK[found.found_by]:
            found.variable, found.found_by = variable, found_by
    for candidate in by_id.values():
        candidate.kind = contract.classify(layer_classes(candidate.model))
        hooked = candidate.record.steps if candidate.record else 0
        candidate.steps = max(hooked, _iterations(candidate.model))
        shape = _input_shape(candidate.model)
        if shape is None and candidate.record and candidate.record.last_x:
            shape = [None, *candidate.record.last_x["shape"][1:]]
        candidate.mnist_shaped = shape is not None and _mnist_shaped(shape[1:])
    return list(by_id.values())


def choose_models(candidates: list[Candidate], namespace: dict, wanted: dict[str, str],
                  keras: Any) -> dict[str, Candidate]:
    """arch -> candidate: a template name wins; else the best-ranked candidate of that kind."""
    chosen: dict[str, Candidate] = {}
    by_id = {id(c.model): c for c in candidates}
    for arch, variable in wanted.items():
        model = namespace.get(variable)
        if isinstance(model, keras.Model) and id(model) in by_id and by_id[id(model)].chosen is None:
            candidate = by_id[id(model)]
            candidate.variable, candidate.found_by, candidate.chosen = variable, "name", arch
            chosen[arch] = candidate
    for candidate in sorted(candidates, key=Candidate.rank):
        if candidate.chosen is None and candidate.kind in wanted and candidate.kind not in chosen:
            candidate.chosen = candidate.kind
            chosen[candidate.kind] = candidate
    return chosen


def _evaluated(model: Any) -> dict | None:
    """What the notebook's own last evaluate() (or predict() on the test images) of the model was given
    (per-sample shape and statistics), shaped like a probe; None when it was never evaluated or its input
    could not be read."""
    for measure in reversed(evaluate_hook.measures(model)):
        if measure.get("mean") is not None and measure.get("std") is not None and measure.get("shape"):
            return {"is_array": True, "shape": [None, *measure["shape"]], "mean": measure["mean"],
                    "std": measure["std"], "min": None, "max": None}
    return None


def input_block(candidate: Candidate, data: dict[str, dict]) -> dict:
    """How the model's author fed it: what fit received, else what the notebook's own evaluate() was given
    (a model fit on a Python generator), else the test (or train) data, else MNIST / 255."""
    record = candidate.record
    sources = [(record.last_x if record else None, "fit"), (_evaluated(candidate.model), "evaluate"),
               (data.get("x_test"), "probe"), (data.get("x_train"), "probe")]
    for seen, source in sources:
        if seen and seen.get("is_array") and seen.get("mean") is not None and seen.get("std") is not None:
            return {"shape": seen["shape"][1:], "mean": seen["mean"], "std": seen["std"], "min": seen.get("min"),
                    "max": seen.get("max"), "source": source}
    shape = _input_shape(candidate.model)
    return {**DEFAULT_INPUT, "shape": shape[1:] if shape and None not in shape[1:] else DEFAULT_INPUT["shape"]}


def save_model(model: Any, export_dir: str, arch: str) -> tuple[str, bool]:
    """Save for the prediction sandbox; a subclass only as weights (its class is rebuilt there).

    Returns the file's name and whether the compile configuration was left out: a model whose compile
    configuration does not serialize (``loss=CategoricalCrossentropy``, the class rather than an
    instance) is saved again without it, since predicting needs only its architecture and weights.
    """
    name = contract.model_file(arch, is_subclassed(model))
    path = os.path.join(export_dir, contract.MODELS_DIR, name)
    if is_subclassed(model):
        model.save_weights(path)
        return name, False
    try:
        model.save(path)
        return name, False
    except Exception:
        if os.path.exists(path):
            os.remove(path)
    model.get_compile_config = lambda: None  # on the instance, for this save only
    try:
        model.save(path)
    finally:
        del model.get_compile_config
    return name, True


def _eager() -> Any:
    """TensorFlow's eager mode for the export, whatever the notebook set: a notebook that disabled eager
    execution after training leaves weights that only eager code can read and save."""
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is None or tensorflow.executing_eagerly():
        return contextlib.nullcontext()
    from tensorflow.python.eager import context

    return context.eager_mode()


def export_model(candidate: Candidate, export_dir: str, arch: str, data: dict[str, dict], errors: list[str]) -> dict:
    model, record = candidate.model, candidate.record
    entry = {"variable": candidate.variable, "found_by": candidate.found_by,
             "class_name": probe.text(type(model).__name__), "subclassed": is_subclassed(model), "file": None,
             "training_steps": _iterations(model), "fit_calls": record.fit_calls if record else 0,
             "fit_steps": record.steps if record else 0, "fit_rows": list(record.fit_rows) if record else [],
             "weights_moved": None,
             "weights_baseline": record.baseline if record else None, "input_shape": _input_shape(model),
             "input": input_block(candidate, data), "own_measures": evaluate_hook.measures(model),
             "saved_without_compile": False, "error": None}
    # A model fit had to build has no weights before its first step: with one step only, nothing to compare.
    if record and record.initial_weights is not None and (record.baseline == "before_fit" or record.steps > 1):
        try:
            entry["weights_moved"] = probe.weights_moved(model, record.initial_weights)
        except Exception as exc:  # weights_moved stays null: "not measured", not an unusable model
            errors.append(probe.text(f"{arch}: weights not compared: {type(exc).__name__}: {exc}"))
    entry["weights_origin"] = fit_hook.origin_of(model)
    entry["batch_training"] = record.batch_training.as_dict() if record else None
    try:
        entry["file"], entry["saved_without_compile"] = save_model(model, export_dir, arch)
    except Exception as exc:
        entry["error"] = probe.text(f"{type(exc).__name__}: {exc}")
    return entry


def _candidate_row(candidate: Candidate) -> dict:
    return {"variable": candidate.variable, "found_by": candidate.found_by,
            "class_name": probe.text(type(candidate.model).__name__), "kind": candidate.kind,
            "trained": candidate.trained, "mnist_shaped": candidate.mnist_shaped, "chosen": candidate.chosen}


# --- data roles ---------------------------------------------------------------------------------------

def _shape(value: Any) -> tuple | None:
    """The shape of an array-like value without converting it; None for anything else."""
    if probe.kind_of(value) not in ("array", "dataframe", "tensor"):
        return None
    try:
        return tuple(int(n) for n in value.shape)
    except Exception:
        return None


def _fed(role: str, index: int) -> Any:
    for ref, fit_index in fit_hook.FED[role]:
        if fit_index == index:
            return ref()
    return None


@dataclass
class DataRoles:
    """Which value plays each role, and how it was found."""

    namespace: dict
    names: dict[int, str]
    found: dict[str, dict] = field(default_factory=dict)
    used: set = field(default_factory=set)

    def take(self, role: str, variable: str, found_by: str, facts: dict, value: Any = None) -> None:
        self.found[role] = {"variable": probe.text(variable), "found_by": found_by, **facts}
        if value is not None:
            self.used.add(id(value))

    def by_name(self, names: dict[str, str]) -> dict[str, dict]:
        """Template names; a value that is not an array is kept only if nothing better turns up."""
        not_arrays = {}
        for role in contract.DATA_ROLES:
            variable = names.get(role)
            if variable is None or self.namespace.get(variable) is None:
                continue
            value = self.namespace[variable]
            facts = probe.probe(value)
            if facts.get("is_array"):
                self.take(role, variable, "name", facts, value)
            else:
                not_arrays[role] = {"variable": probe.text(variable), "found_by": "name", **facts}
        return not_arrays

    def by_fit(self) -> None:
        """x/y of the first fit fed arrays are train; the first validation_data arrays are val."""
        pairs = (("x", "y", "x_train", "y_train"), ("validation_x", "validation_y", "x_val", "y_val"))
        for x_key, y_key, x_role, y_role in pairs:
            if x_role in self.found and y_role in self.found:
                continue
            for index, call in enumerate(fit_hook.FITS):
                if call.get(x_key) and call[x_key].get("is_array"):
                    for key, role in ((x_key, x_role), (y_key, y_role)):
                        if role in self.found or not (call.get(key) or {}).get("is_array"):
                            continue
                        value = _fed(key, index)
                        name = self.names.get(id(value)) if value is not None else None
                        label = name or f"fit #{index} {key.replace('_', ' ')}"
                        self.take(role, label, "fit", call[key], value)
                    break

    def by_content(self) -> None:
        """Arrays shaped like MNIST images/labels: 10,000 rows is test; the largest other is train."""
        items = [(name, value, _shape(value)) for name, value in _public_items(self.namespace)
                 if id(value) not in self.used]
        images = [(name, value, shape) for name, value, shape in items if shape and contract.image_shaped(shape)]
        labels = [(name, value, shape) for name, value, shape in items
                  if shape and len(shape) in (1, 2) and (len(shape) == 1 or shape[1] in (1, contract.CLASSES))]

        def hint(name: str, words: tuple[str, ...]) -> bool:
            return any(word in name.lower() for word in words)

        def floating(value: Any) -> bool:
            return "float" in str(getattr(value, "dtype", ""))

        rules = {"x_test": (lambda shape: shape[0] == contract.MNIST_TEST_SIZE, ("test",)),
                 "x_train": (lambda shape: shape[0] != contract.MNIST_TEST_SIZE, ("train",)),
                 "x_val": (lambda shape: shape[0] != contract.MNIST_TEST_SIZE, ("val", "dev"))}
        for role, (fits_role, words) in rules.items():
            if role in self.found:
                continue
            options = [(name, value, shape) for name, value, shape in images
                       if id(value) not in self.used and fits_role(shape)]
            if role == "x_val":  # a validation set is only recognised by its name, never by size alone
                options = [option for option in options if hint(option[0], words)]
            if not options:
                continue
            order = {id(value): i for i, (_, value, _) in enumerate(options)}
            name, value, _ = min(options, key=lambda o: (not hint(o[0], words), not floating(o[1]), -o[2][0],
                                                         order[id(o[1])]))
            self.take(role, name, "content", probe.probe(value), value)
        for x_role, y_role in (("x_train", "y_train"), ("x_val", "y_val"), ("x_test", "y_test")):
            if y_role in self.found:
                continue
            rows = self.found[x_role]["shape"][0] if x_role in self.found else (
                contract.MNIST_TEST_SIZE if y_role == "y_test" else None)
            x_name = self.found.get(x_role, {}).get("variable", x_role).lower()
            options = []
            for name, value, shape in labels:
                if id(value) in self.used or (rows is not None and shape[0] != rows):
                    continue
                facts = probe.probe(value)
                if facts.get("labels"):
                    twin = name.lower() == x_name.replace("x", "y", 1)
                    options.append((not twin, not hint(name, (y_role[2:],)), len(options), name, value, facts))
            if options:
                *_, name, value, facts = min(options, key=lambda o: o[:3])
                self.take(y_role, name, "content", facts, value)


def find_data(namespace: dict, names: dict[str, str], ids: dict[int, str]) -> dict[str, dict]:
    roles = DataRoles(namespace, ids)
    not_arrays = roles.by_name(names)
    roles.by_fit()
    roles.by_content()
    for role, facts in not_arrays.items():  # what the template name held, when nothing else was found
        roles.found.setdefault(role, facts)
    return {role: roles.found[role] for role in contract.DATA_ROLES if role in roles.found}


def validation(data: dict[str, dict]) -> dict:
    for call in fit_hook.FITS:
        if call.get("validation_data"):
            variable = data["x_val"]["variable"] if data.get("x_val", {}).get("found_by") == "fit" else None
            return {"kind": "data", "fraction": None, "variable": variable}
    for call in fit_hook.FITS:
        if call.get("validation_split"):
            return {"kind": "split", "fraction": call["validation_split"], "variable": None}
    if data.get("x_val", {}).get("is_array"):
        return {"kind": "arrays", "fraction": None, "variable": data["x_val"]["variable"]}
    return {"kind": None, "fraction": None, "variable": None}


# --- confusion matrices -------------------------------------------------------------------------------

#: One rule for what counts as a confusion matrix, for variables and for what the confusion hook recorded.
count_matrix = confusion_hook.count_matrix


def _unwrap_display(name: str, value: Any) -> tuple[str, Any]:
    """sklearn's ConfusionMatrixDisplay holds its counts in ``.confusion_matrix``."""
    if type(value).__name__ == "ConfusionMatrixDisplay" and getattr(value, "confusion_matrix", None) is not None:
        return f"{name}.confusion_matrix", value.confusion_matrix
    return name, value


def find_confusion(namespace: dict, variable: str | None, export_dir: str, errors: list[str]) -> list[dict]:
    """The template's matrix first, then every other 10x10 count matrix, then those the notebook's calls
    returned without keeping them (recorded by the confusion hook); distinct ones, capped."""
    found, seen = [], set()
    sources = [(variable, namespace.get(variable), "name")] if variable and variable in namespace else []
    sources += [(name, value, "content") for name, value in _public_items(namespace) if name != variable]
    sources += [(f"{made_by} #{i + 1}", matrix, "returned") for i, (made_by, matrix) in
                enumerate(confusion_hook.RECORDED)]
    for variable_name, raw, found_by in sources:
        name, value = _unwrap_display(variable_name, raw)
        if len(found) >= contract.MAX_CONFUSION_CANDIDATES:
            break
        matrix = count_matrix(value)
        if matrix is None:
            if found_by == "name":
                errors.append(probe.text(f"{name} is not a 10x10 matrix of counts ({probe.probe(value)})"))
            continue
        if matrix.tobytes() in seen:
            continue
        seen.add(matrix.tobytes())
        file = contract.CONFUSION_FILE.format(index=len(found))
        _save(os.path.join(export_dir, file), matrix, allow_pickle=False)
        found.append({"variable": probe.text(name), "found_by": found_by, "file": file,
                      "total": probe.total(matrix)})
    return found


# --- the step -----------------------------------------------------------------------------------------

def _fit_rows(names: dict[int, str]) -> list[dict]:
    rows = []
    for call in fit_hook.FITS:
        row = {key: value for key, value in call.items() if key != "model_id"}
        row["model"] = probe.text(names.get(call["model_id"], call["class_name"]))
        rows.append(row)
    return rows


def export(namespace: dict, config: dict, export_dir: str) -> dict:
    """Everything the trusted side may use, as a manifest; models and matrices saved beside it."""
    os.makedirs(os.path.join(export_dir, contract.MODELS_DIR), exist_ok=True)
    errors: list[str] = []
    wanted, names = config.get("models", {}), config.get("probes", {})
    ids = _names_by_id(namespace)
    data = _guarded(errors, "data probes", lambda: find_data(namespace, names, ids), {})
    manifest: dict = {"version": contract.MANIFEST_VERSION, "models": {}, "candidates": [], "data": data,
                      "validation": _guarded(errors, "validation", lambda: validation(data),
                                             {"kind": None, "fraction": None, "variable": None}),
                      "confusion": _guarded(errors, "confusion matrices", lambda: find_confusion(
                          namespace, names.get("confusion_matrix"), export_dir, errors), []),
                      "best_model": None, "fits": _guarded(errors, "fit records", lambda: _fit_rows(ids), []),
                      "errors": errors}
    best = namespace.get(names.get("best_model", ""))
    manifest["best_model"] = probe.text(best) if best is not None else None
    keras = sys.modules.get("keras")
    if keras is None:  # never imported, so no model exists: skip a ten-second TensorFlow import
        return manifest
    with _guarded(errors, "eager mode", _eager, contextlib.nullcontext()):
        candidates = _guarded(errors, "model discovery", lambda: model_candidates(namespace, keras), [])
        chosen = _guarded(errors, "model choice", lambda: choose_models(candidates, namespace, wanted, keras), {})
        for arch, candidate in chosen.items():
            entry = _guarded(errors, f"{arch} export",
                             lambda: export_model(candidate, export_dir, arch, data, errors), None)
            if entry is not None:
                manifest["models"][arch] = entry
    manifest["candidates"] = [_candidate_row(c) for c in candidates[:contract.MAX_MODEL_CANDIDATES]]
    return manifest


def run(namespace: dict, export_dir: str, config_json: str) -> None:
    manifest = export(namespace, json.loads(config_json), export_dir)
    with open(os.path.join(export_dir, contract.MANIFEST), "w") as fh:
        _dump(manifest, fh)
