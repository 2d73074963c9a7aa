"""Phase B's door: read what the sandboxes exported, as plain data only, and validate it.

Everything under the export and prediction directories was written by untrusted code (the export runs in
the student's kernel; the prediction sandbox may run class definitions from the notebook). Files are
opened without following symbolic links, size-capped, parsed as JSON or as ``.npy`` with
``allow_pickle=False``, and checked for dtype, shape and finiteness before any score uses them. Strings
are capped; numbers are checked to be numbers. What is rejected becomes a note, never a crash.

Read here (names from :mod:`autograder.run.inside.contract`): the export's manifest (version 2: models with
their fit-hook records and weight origins, sketches of the images each fit trained on, data roles,
validation, confusion candidates, errors), and per model its summary
and class scores for every image set, plus the scores with the named kind's layers zeroed (ablation).
"""
from __future__ import annotations

import errno
import io
import json
import math
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autograder.run.inside import contract

#: How far below the notebook's own evaluate() the grader's measurement may fall before it is not believed:
#: run-to-run noise and the eval subset move accuracy by a point or two; a model fed otherwise than its
#: author fed it falls by tens of points (a recurrent network on raw pixels: to chance).
OWN_MEASURE_GAP = 0.10
#: Other feeds tried per contradicted model (the notebook's own, then the known scalings), at most.
MAX_RETRY_FEEDS = 5

EVIDENCE_JSON = "evidence.json"
EVIDENCE_ARRAYS = "predictions.npz"
#: The export's own error messages kept (each capped at contract.MAX_TEXT): untrusted text for the TA, never a verdict.
MAX_EXPORT_ERRORS = 20


#: How the export found a model or a data role (its ``found_by``), in words for feedback and messages.
FOUND_BY_WORDS = {"name": "by its name", "fit": "as what fit() was given", "content": "by its content",
                  "history": "through the History that fit() returned", "container": "in a list or dict",
                  "discovered": "by its layers"}


class ArtifactError(ValueError):
    """An exported file is missing, oversized, a link, or not the plain data it should be."""


def read_untrusted(directory: Path, name: str, max_bytes: int) -> bytes:
    """Read ``directory/name`` refusing links and non-regular files, and at most ``max_bytes``."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ArtifactError(f"{directory.name}/ is not a plain directory ({exc.strerror})") from exc
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as exc:
        reason = "a symbolic link" if exc.errno == errno.ELOOP else "missing"
        raise ArtifactError(f"{name} is {reason}") from exc
    finally:
        os.close(dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ArtifactError(f"{name} is not a regular file")
        if info.st_size > max_bytes:
            raise ArtifactError(f"{name} is {info.st_size} bytes, over the {max_bytes} byte limit")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(max_bytes + 1)[:max_bytes]
    finally:
        os.close(fd)


def read_json(directory: Path, name: str) -> Any:
    try:
        return json.loads(read_untrusted(directory, name, contract.MAX_JSON_BYTES))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ArtifactError(f"{name} is not valid JSON") from exc


def read_array(directory: Path, name: str, *, shape: tuple[int | None, ...], kinds: str) -> np.ndarray:
    """A numeric array of the given shape (None: any length) and dtype kinds ('f', 'iu', ...)."""
    raw = read_untrusted(directory, name, contract.MAX_NPY_BYTES)
    try:
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ArtifactError(f"{name} is not a plain .npy array ({exc})") from exc
    if not isinstance(array, np.ndarray) or array.dtype.kind not in kinds:
        raise ArtifactError(f"{name} has dtype {getattr(array, 'dtype', '?')}, expected kind {kinds!r}")
    if array.ndim != len(shape) or any(want is not None and got != want for got, want in zip(array.shape, shape)):
        raise ArtifactError(f"{name} has shape {array.shape}, expected {shape}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ArtifactError(f"{name} holds NaN or infinite values")
    return array


# --- plain values out of untrusted JSON -------------------------------------------------------------

def text(value: Any, limit: int = contract.MAX_TEXT) -> str | None:
    return None if value is None else str(value)[:limit]


def number(value: Any) -> float | None:
    """A finite float, or None for anything else (bools, strings, NaN are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def count(value: Any) -> int:
    """A non-negative integer count; anything else is 0."""
    n = number(value)
    return int(n) if n is not None and n >= 0 else 0


def plain(value: Any, depth: int = 6) -> Any:
    """JSON-safe copy with capped strings and bounded nesting: what is stored and shown."""
    if depth <= 0:
        return None
    if isinstance(value, dict):
        return {text(k, 60): plain(v, depth - 1) for k, v in list(value.items())[:200]}
    if isinstance(value, list):
        return [plain(v, depth - 1) for v in value[:200]]
    if isinstance(value, str):
        return text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else None  # JSON-exact integers (shapes, counts)
    return number(value)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --- evidence ------------------------------------------------------------------------------------------

@dataclass
class ModelEvidence:
    """One architecture's model as the grader saw it, all plain data."""

    arch: str
    found: bool = False  # the export found a model for this architecture
    variable: str | None = None
    found_by: str | None = None  # "name" | "fit" | "history" | "container" | "discovered"
    class_name: str | None = None
    subclassed: bool = False
    training: dict[str, Any] = field(default_factory=dict)  # fit_calls, fit_steps, training_steps, weights_moved
    fits: list[dict[str, Any]] = field(default_factory=list)  # its fit calls as the fit hook recorded them
    input: dict[str, Any] = field(default_factory=dict)  # what the author fed it (from the export)
    summary: dict[str, Any] | None = None  # from the prediction sandbox: class, shapes, params, layers, loss
    fed: dict[str, Any] = field(default_factory=dict)  # how the prediction sandbox fed it: scale, offset, shape, pad
    weights_sha256: str | None = None
    ablation: dict[str, Any] = field(default_factory=dict)  # which layers were zeroed, on which images
    predictions: dict[str, np.ndarray] = field(default_factory=dict)  # image set -> class ids
    ablated: dict[str, np.ndarray] = field(default_factory=dict)  # image set -> class ids, first rows only
    error: str | None = None  # why it could not be assessed (found but unusable), for needs_review
    #: What the notebook's own last evaluate() on test-set-sized input reported, or its last predict() on the
    #: test images scored against their labels (evaluate_hook): untrusted,
    #: it may only send the model to review (accuracy.contradicted), never earn a point.
    own_accuracy: float | None = None
    #: What the notebook's own evaluate() and predict() calls were given ({shape, mean, std}, oldest first): the
    #: feeds the grader retries when the notebook's own figure contradicts its measurement (retry_feeds).
    own_feeds: list[dict[str, Any]] = field(default_factory=list)
    weights_origin: dict[str, Any] = field(default_factory=dict)  # the fit hook's measurements of its weights
    batch_training: dict[str, Any] | None = None  # its train_on_batch calls: calls, images, sketch

    def accuracy(self, image_set: str, labels: np.ndarray) -> float | None:
        predicted = self.predictions.get(image_set)
        return None if predicted is None else float(np.mean(predicted == labels))

    def falls_short(self, accuracy: float) -> bool:
        """Whether the notebook's own evaluate() or predict() on the test images gave far more than
        ``accuracy``: the grader may have fed the model otherwise than its author did (then it retries the
        notebook's feeds, :func:`retry_feeds`, and failing that, scoring sends it to review)."""
        return self.own_accuracy is not None and self.own_accuracy - accuracy > OWN_MEASURE_GAP


@dataclass
class ConfusionCandidate:
    variable: str | None
    found_by: str | None
    matrix: np.ndarray


@dataclass
class Evidence:
    """Everything Phase A produced that Phase B may use."""

    models: dict[str, ModelEvidence]
    data: dict[str, dict[str, Any]]  # role -> {variable, found_by, **probe}
    validation: dict[str, Any]  # {kind, fraction, variable}
    confusion: list[ConfusionCandidate]
    best_model: str | None
    fits: list[dict[str, Any]]
    problems: list[str]  # TA-facing notes: exported files that were rejected
    export_errors: list[str] = field(default_factory=list)  # the manifest's ``errors``: the export's own, untrusted


def _json_object(directory: Path, name: str, problems: list[str]) -> dict[str, Any]:
    """A JSON object from an untrusted file, or {} with the reason added to ``problems``."""
    try:
        value = read_json(directory, name)
        if not isinstance(value, dict):
            raise ArtifactError(f"{name} is not an object")
        return value
    except ArtifactError as exc:
        problems.append(f"{directory.name}: {exc}")
        return {}


HEX_DIGITS = frozenset("0123456789abcdef")


def image_sketch(value: Any) -> dict[str, Any] | None:
    """A sketch of images trained on (``fit_hook.test_image_sketch``): distinct images and up to
    ``contract.SKETCH_SIZE`` 16-hex-digit hashes; None for anything else."""
    value = _object(value)
    hashes = value.get("sketch")
    if (not isinstance(hashes, str) or len(hashes) % 16 or len(hashes) > 16 * contract.SKETCH_SIZE
            or not set(hashes) <= HEX_DIGITS):
        return None
    checked = {"images": count(value.get("images")), "sketch": hashes}
    if "calls" in value:
        checked["calls"] = count(value.get("calls"))
    return checked


def _fit_row(row: dict[str, Any]) -> dict[str, Any]:
    """One recorded fit() call: plain data, its sketch validated whole (``plain`` would cut it)."""
    checked = plain({key: value for key, value in row.items() if key != "trained_on"})
    checked["trained_on"] = image_sketch(row.get("trained_on"))
    return checked


def _model_from_manifest(arch: str, entry: Any, fits: list[dict[str, Any]]) -> ModelEvidence:
    model = ModelEvidence(arch)
    if not isinstance(entry, dict):
        return model
    model.found = True
    rows = [i for i in _list(entry.get("fit_rows"))[:contract.MAX_FITS]
            if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(fits)]
    model.fits = [fits[i] for i in dict.fromkeys(rows)]
    model.variable, model.found_by = text(entry.get("variable")), text(entry.get("found_by"))
    model.class_name, model.subclassed = text(entry.get("class_name")), entry.get("subclassed") is True
    model.training = {"fit_calls": count(entry.get("fit_calls")), "fit_steps": count(entry.get("fit_steps")),
                      "training_steps": count(entry.get("training_steps")),
                      "weights_moved": number(entry.get("weights_moved"))}
    model.input = plain(_object(entry.get("input")))
    model.own_accuracy = own_accuracy(entry.get("own_measures"))
    model.own_feeds = [feed for measure in _list(entry.get("own_measures"))[:contract.MAX_EVALUATIONS]
                       if (feed := pixel_feed(measure)) is not None]
    model.weights_origin = plain(_object(entry.get("weights_origin")))
    model.batch_training = image_sketch(entry.get("batch_training"))
    if entry.get("error") or not entry.get("file"):
        model.error = f"the model could not be saved after the notebook ran: {text(entry.get('error'))}"
    return model


def own_accuracy(measures: Any) -> float | None:
    """The accuracy of the last recorded evaluate() on test-set-sized input (10,000 rows, or a dataset,
    whose rows the hook cannot count), if it is a number in [0, 1]; else None."""
    reported = None
    for measure in _list(measures)[:contract.MAX_EVALUATIONS]:
        measure = _object(measure)
        rows, accuracy = measure.get("rows"), number(measure.get("accuracy"))
        test_sized = rows is None or (number(rows) == contract.MNIST_TEST_SIZE)
        if test_sized and accuracy is not None and 0.0 <= accuracy <= 1.0:
            reported = accuracy
    return reported


def pixel_feed(record: Any) -> dict[str, Any] | None:
    """``{shape, mean, std}`` (per-sample shape of positive ints, finite numbers, std > 0) from an untrusted
    record of what a call was given, or None."""
    record = _object(record)
    shape, mean, std = record.get("shape"), number(record.get("mean")), number(record.get("std"))
    if (not isinstance(shape, list) or not shape or len(shape) > 4 or mean is None or std is None or std <= 0
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d < 2**16 for d in shape)):
        return None
    return {"shape": list(shape), "mean": mean, "std": std}


def _feed_key(scale: float, offset: float, shape: Any) -> tuple:
    return round(scale, 6), round(offset, 6), tuple(shape or ())


def retry_feeds(model: ModelEvidence) -> list[dict[str, Any]]:
    """The other feeds to try on a model whose measurement the notebook's own figure contradicts: what the
    notebook's own evaluate()/predict() calls were given (latest first), what its fit() calls were given,
    then the contract's known scalings in the first feed's shape; each once, none the same as the first."""
    first = model.fed
    scale, offset = number(first.get("scale")), number(first.get("offset"))
    if scale is None or offset is None:
        return []
    seen = {_feed_key(scale, offset, first.get("shape"))}
    measured = [*reversed(model.own_feeds)]
    for fit in reversed(model.fits):
        feed = pixel_feed({**_object(fit.get("x")), "shape": _list(_object(fit.get("x")).get("shape"))[1:]})
        if feed is not None:
            measured.append(feed)
    feeds = []
    for feed in measured:
        key = _feed_key(*contract.input_scaling(feed["mean"], feed["std"], contract.mnist_share(feed["shape"])),
                        feed["shape"])
        if key not in seen:
            seen.add(key)
            feeds.append(feed)
    for scale, offset in contract.KNOWN_SCALINGS.values():
        key = _feed_key(scale, offset, first.get("shape"))
        if key not in seen:
            seen.add(key)
            feeds.append({"scale": scale, "offset": offset})
    return feeds[:MAX_RETRY_FEEDS]


def read_retried(model: ModelEvidence, retry_dir: Path, feeds: int, image_counts: dict[str, int]) -> list[ModelEvidence]:
    """What the second pass wrote for each retried feed of ``model`` (``contract.RETRY_NAME``), validated
    like the first pass: one ModelEvidence per feed, its ``error`` set when that feed gave nothing usable."""
    tried = []
    for index in range(feeds):
        retried = ModelEvidence(model.arch, found=True)
        _read_predictions(retried, retry_dir, image_counts, contract.RETRY_NAME.format(arch=model.arch, index=index))
        tried.append(retried)
    return tried


def adopt_retried_feed(model: ModelEvidence, tried: list[ModelEvidence], public_labels: np.ndarray) -> bool:
    """Keep the retried feed whose accuracy on the PUBLIC test images comes within OWN_MEASURE_GAP of the
    notebook's own figure (the closest if several): its predictions, ablation and feed replace the first
    pass's, the feed recording the first one and both public figures. None comes close: nothing changes.

    The choice never sees the eval labels; the same weights are required (the same exported model)."""
    first = model.accuracy("public", public_labels)
    own = model.own_accuracy
    if first is None or own is None:
        return False
    close = [(abs(own - accuracy), index, accuracy) for index, retried in enumerate(tried)
             if retried.error is None and retried.weights_sha256 == model.weights_sha256
             and (accuracy := retried.accuracy("public", public_labels)) is not None
             and not model.falls_short(accuracy)]
    if not close:
        return False
    _, index, accuracy = min(close)
    chosen = tried[index]
    model.fed = {**chosen.fed, "first": model.fed, "public_first": round(first, 4),
                 "public_retried": round(accuracy, 4), "own": round(own, 4)}
    model.predictions, model.ablated, model.ablation = chosen.predictions, chosen.ablated, chosen.ablation
    return True


def _read_predictions(model: ModelEvidence, predictions_dir: Path, image_counts: dict[str, int],
                      name: str | None = None) -> None:
    """The model's summary and class ids per image set (its files named ``name``, else its arch); any fault
    leaves ``model.error`` set."""
    arch = name or model.arch
    problems: list[str] = []
    written = _json_object(predictions_dir, contract.SUMMARY_FILE.format(arch=arch), problems)
    summary = _object(written.get("summary"))
    if written.get("error") or not isinstance(summary.get("layers"), list):
        if not written and (predictions_dir / contract.STARTED_FILE.format(arch=arch)).exists():
            reason = "its prediction was stopped (over its time or memory budget)"
        else:
            reason = text(written.get("error"), 300) or (problems[0] if problems else "no summary")
        model.error = f"the grader could not rebuild or run the saved model: {reason}"
        return
    model.summary = plain(summary)
    model.fed, model.ablation = plain(_object(written.get("fed"))), plain(_object(written.get("ablation")))
    model.weights_sha256 = text(written.get("weights_sha256"), 64)
    for image_set, n in image_counts.items():
        try:
            scores = read_array(predictions_dir, contract.PREDICTIONS_FILE.format(arch=arch, image_set=image_set),
                                shape=(n, contract.CLASSES), kinds="f")
        except ArtifactError as exc:
            model.error = f"its predictions are unusable: {exc}"
            model.predictions.clear()
            return
        model.predictions[image_set] = scores.argmax(axis=1)
        name = contract.ABLATED_FILE.format(arch=arch, image_set=image_set)
        if (predictions_dir / name).exists():
            try:
                ablated = read_array(predictions_dir, name, shape=(None, contract.CLASSES), kinds="f")
                if 0 < len(ablated) <= n:
                    model.ablated[image_set] = ablated.argmax(axis=1)
            except ArtifactError:
                pass  # no usable ablation: the does_the_work rule says it was not measured


def load_evidence(export_dir: Path, predictions_dir: Path, image_counts: dict[str, int]) -> Evidence:
    """Read the export and prediction directories; anything invalid becomes a problem, not a crash."""
    problems: list[str] = []
    manifest = _json_object(export_dir, contract.MANIFEST, problems)
    if manifest and manifest.get("version") != contract.MANIFEST_VERSION:
        problems.append(f"export: manifest version {text(manifest.get('version'), 20)} is not {contract.MANIFEST_VERSION}")
        manifest = {}
    export_errors = [text(e) for e in _list(manifest.get("errors"))[:MAX_EXPORT_ERRORS]]

    fits = [_fit_row(f) for f in _list(manifest.get("fits"))[:contract.MAX_FITS] if isinstance(f, dict)]
    models = {}
    exported = _object(manifest.get("models"))
    for arch in contract.ARCHITECTURES:
        model = models[arch] = _model_from_manifest(arch, exported.get(arch), fits)
        if model.found and model.error is None:
            _read_predictions(model, predictions_dir, image_counts)

    confusion = []
    for entry in _list(manifest.get("confusion"))[:contract.MAX_CONFUSION_CANDIDATES]:
        entry = _object(entry)
        try:
            matrix = read_array(export_dir, os.path.basename(str(entry.get("file"))), shape=(None, None), kinds="iu")
        except ArtifactError as exc:
            problems.append(f"confusion matrix {text(entry.get('variable'))}: {exc}")
            continue
        confusion.append(ConfusionCandidate(text(entry.get("variable")), text(entry.get("found_by")),
                                            matrix.astype(np.int64)))

    data = {role: plain(probe) for role, probe in _object(manifest.get("data")).items()
            if role in contract.DATA_ROLES and isinstance(probe, dict)}
    return Evidence(models=models, data=data, validation=plain(_object(manifest.get("validation"))),
                    confusion=confusion, best_model=text(manifest.get("best_model")), fits=fits, problems=problems,
                    export_errors=export_errors)


# --- stored evidence, for regrading without running anything ------------------------------------------

def save_evidence(evidence: Evidence, directory: Path) -> None:
    """Store validated evidence in the grader's own plain format: everything a regrade re-scores from."""
    directory.mkdir(parents=True, exist_ok=True)
    models = {}
    arrays = {}
    for arch, model in evidence.models.items():
        entry = asdict(model)
        entry["prediction_sets"], entry["ablated_sets"] = sorted(entry.pop("predictions")), sorted(entry.pop("ablated"))
        models[arch] = entry
        arrays.update({f"{arch}.{name}": ids.astype(np.int8) for name, ids in model.predictions.items()})
        arrays.update({f"{arch}.ablated.{name}": ids.astype(np.int8) for name, ids in model.ablated.items()})
    arrays.update({f"confusion.{i}": c.matrix.astype(np.int64) for i, c in enumerate(evidence.confusion)})
    np.savez_compressed(directory / EVIDENCE_ARRAYS, **arrays)
    payload = {"models": models, "data": evidence.data, "validation": evidence.validation,
               "confusion": [{"variable": c.variable, "found_by": c.found_by} for c in evidence.confusion],
               "best_model": evidence.best_model, "fits": evidence.fits, "problems": evidence.problems,
               "export_errors": evidence.export_errors}
    (directory / EVIDENCE_JSON).write_text(json.dumps(payload, sort_keys=True))


def stored_evidence(directory: Path) -> Evidence:
    payload = json.loads((directory / EVIDENCE_JSON).read_text())
    with np.load(directory / EVIDENCE_ARRAYS, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    models = {}
    for arch, entry in payload["models"].items():
        prediction_sets, ablated_sets = entry.pop("prediction_sets"), entry.pop("ablated_sets")
        models[arch] = ModelEvidence(
            **entry, predictions={name: arrays[f"{arch}.{name}"].astype(np.int64) for name in prediction_sets},
            ablated={name: arrays[f"{arch}.ablated.{name}"].astype(np.int64) for name in ablated_sets})
    confusion = [ConfusionCandidate(c["variable"], c["found_by"], arrays[f"confusion.{i}"])
                 for i, c in enumerate(payload["confusion"])]
    return Evidence(models=models, data=payload["data"], validation=payload["validation"], confusion=confusion,
                    best_model=payload["best_model"], fits=payload["fits"], problems=payload["problems"],
                    export_errors=payload["export_errors"])
