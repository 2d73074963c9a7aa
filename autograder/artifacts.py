"""Phase B's door: read what the sandbox exported, as plain data only, and validate it.

Everything under the export and prediction directories was written by untrusted code. Files are opened
without following symbolic links, size-capped, parsed as JSON or as ``.npy`` with
``allow_pickle=False``, and checked for dtype, shape and finiteness before any score uses them.
"""
from __future__ import annotations

import errno
import io
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autograder.assignment import ARCHITECTURES

MAX_JSON_BYTES = 2 * 2**20
MAX_NPY_BYTES = 64 * 2**20


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
        return json.loads(read_untrusted(directory, name, MAX_JSON_BYTES))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ArtifactError(f"{name} is not valid JSON") from exc


def read_array(directory: Path, name: str, *, shape: tuple[int | None, ...], kinds: str) -> np.ndarray:
    """A numeric array of the given shape (None: any length) and dtype kinds ('f', 'iu', ...)."""
    raw = read_untrusted(directory, name, MAX_NPY_BYTES)
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


@dataclass
class ModelEvidence:
    """One architecture's model as the grader saw it, all plain data."""

    arch: str
    variable: str | None = None
    found_by: str | None = None  # "name" | "discovered"
    summary: dict[str, Any] | None = None  # from the prediction sandbox
    predictions: dict[str, np.ndarray] = field(default_factory=dict)  # set name -> class ids
    error: str | None = None  # why it could not be assessed

    def accuracy(self, image_set: str, labels: np.ndarray) -> float | None:
        predicted = self.predictions.get(image_set)
        return None if predicted is None else float(np.mean(predicted == labels))


@dataclass
class Evidence:
    """Everything Phase A produced that Phase B may use."""

    models: dict[str, ModelEvidence]
    probes: dict[str, Any]
    confusion: np.ndarray | None
    problems: list[str]  # TA-facing notes on exported files that were rejected


def _text(value: Any, limit: int = 200) -> str | None:
    return None if value is None else str(value)[:limit]


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


def load_evidence(export_dir: Path, predictions_dir: Path, image_counts: dict[str, int]) -> Evidence:
    """Read the export and prediction directories; anything invalid becomes a problem, not a crash."""
    problems: list[str] = []
    manifest = _json_object(export_dir, "manifest.json", problems)
    summaries = _json_object(predictions_dir, "summaries.json", problems)

    models = {}
    exported = manifest.get("models") if isinstance(manifest.get("models"), dict) else {}
    for arch in ARCHITECTURES:
        entry = exported.get(arch)
        evidence = ModelEvidence(arch)
        models[arch] = evidence
        if not isinstance(entry, dict):
            evidence.error = "no model found"
            continue
        evidence.variable, evidence.found_by = _text(entry.get("variable")), _text(entry.get("found_by"))
        if entry.get("error") or not entry.get("file"):
            evidence.error = f"the model could not be saved: {_text(entry.get('error'))}"
            continue
        predicted = summaries.get(arch) if isinstance(summaries.get(arch), dict) else {}
        if predicted.get("error") or not isinstance(predicted.get("summary"), dict):
            evidence.error = f"the saved model could not be loaded or run: {_text(predicted.get('error'), 300)}"
            continue
        evidence.summary = predicted["summary"]
        for image_set, count in image_counts.items():
            try:
                probs = read_array(predictions_dir, f"{arch}.{image_set}.npy", shape=(count, 10), kinds="f")
                evidence.predictions[image_set] = probs.argmax(axis=1)
            except ArtifactError as exc:
                evidence.error = f"predictions unusable: {exc}"
                evidence.predictions.clear()
                break

    confusion = None
    try:
        confusion = read_array(export_dir, "confusion.npy", shape=(None, None), kinds="iu")
    except ArtifactError as exc:
        problems.append(f"confusion matrix: {exc}")
    probes = manifest.get("probes") if isinstance(manifest.get("probes"), dict) else {}
    return Evidence(models=models, probes=probes, confusion=confusion, problems=problems)


def save_evidence(evidence: Evidence, directory: Path) -> None:
    """Store validated evidence in the grader's own plain format, for regrading without re-running."""
    directory.mkdir(parents=True, exist_ok=True)
    models = {arch: {"variable": m.variable, "found_by": m.found_by, "summary": m.summary, "error": m.error,
                     "prediction_sets": sorted(m.predictions)} for arch, m in evidence.models.items()}
    arrays = {f"{arch}.{name}": ids.astype(np.int8) for arch, m in evidence.models.items()
              for name, ids in m.predictions.items()}
    if evidence.confusion is not None:
        arrays["confusion"] = evidence.confusion.astype(np.int64)
    np.savez_compressed(directory / "predictions.npz", **arrays)
    payload = {"models": models, "probes": evidence.probes, "problems": evidence.problems}
    (directory / "evidence.json").write_text(json.dumps(payload, sort_keys=True))


def stored_evidence(directory: Path) -> Evidence:
    payload = json.loads((directory / "evidence.json").read_text())
    with np.load(directory / "predictions.npz", allow_pickle=False) as arrays:
        stored = {key: arrays[key] for key in arrays.files}
    models = {}
    for arch, entry in payload["models"].items():
        models[arch] = ModelEvidence(arch, entry["variable"], entry["found_by"], entry["summary"],
                                     {name: stored[f"{arch}.{name}"].astype(np.int64)
                                      for name in entry["prediction_sets"]}, entry["error"])
    return Evidence(models=models, probes=payload["probes"], confusion=stored.get("confusion"),
                    problems=payload["problems"])
