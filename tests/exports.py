"""What the sandboxes write, written by the grader's own code run in-process: the kernel's export step
(``run/inside/export.py``) and the prediction sandbox (``run/inside/predict.py``).

Tests that read an export (the manifest, the model files, each model's summary and class scores) build it
here, so a change to the format is a change to what they read, never a hand-written copy of an old shape. A
test about a malformed or hostile export starts from one of these and corrupts the one field it is about
(:func:`rewrite_manifest`, :func:`rewrite_summary`).
"""
from __future__ import annotations

import contextlib
import copy
import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from autograder.assignment import load_assignment
from autograder.run.inside import contract, export, fit_hook, predict
from autograder.score.artifacts import Evidence, stored_evidence

REPO = Path(__file__).resolve().parents[1]
#: The variant corpus's stored evidence (tests/variant_evidence.py): what real notebooks' sandboxes wrote.
CORPUS_EVIDENCE = REPO / "tests" / "fixtures" / "variants" / "evidence"
_assignment = load_assignment(REPO / "assignments" / "mnist")
#: The template names the grader's export cell passes (the assignment's [models] and [probes] tables).
MODELS: dict[str, str] = dict(_assignment.models)
PROBES: dict[str, str] = dict(_assignment.probes)


@contextlib.contextmanager
def notebook_kernel(keras: Any) -> Iterator[None]:
    """The fit hook as the sandboxed kernel installs it before any student cell (no earlier records), for
    the notebook's cells and the export after them; removed afterwards."""
    fit_hook.install(keras)
    fit_hook.forget()
    try:
        yield
    finally:
        fit_hook.uninstall()


def write_export(namespace: dict, export_dir: Path) -> dict:
    """Run the export step on ``namespace`` with the assignment's template names, as the grader's export cell
    does after the student's cells; returns the manifest it wrote."""
    export_dir.mkdir(parents=True, exist_ok=True)
    export.run(namespace, str(export_dir), json.dumps({"models": MODELS, "probes": PROBES}))
    return read_manifest(export_dir)


def run_predict(export_dir: Path, out: Path, images: dict[str, np.ndarray], *extra: str) -> None:
    """The prediction sandbox's run over ``export_dir`` (``extra``: --only, --classes, --ablate), in-process."""
    out.mkdir(parents=True, exist_ok=True)
    args = list(extra) + [str(export_dir), str(out)]
    for name, batch in images.items():
        np.save(out.parent / f"{name}.npy", batch)
        args.append(f"{name}={out.parent / f'{name}.npy'}")
    assert predict.main(args) == 0


def read_manifest(export_dir: Path) -> dict:
    return json.loads((export_dir / contract.MANIFEST).read_text())


def rewrite_manifest(export_dir: Path, change: Callable[[dict], Any]) -> dict:
    """Corrupt a real manifest: ``change`` edits it in place; returns it as written back."""
    manifest = read_manifest(export_dir)
    change(manifest)
    (export_dir / contract.MANIFEST).write_text(json.dumps(manifest))
    return manifest


def rewrite_summary(predictions_dir: Path, arch: str, change: Callable[[dict], Any]) -> dict:
    """Corrupt a real prediction summary (``{arch}.summary.json``) the same way."""
    path = predictions_dir / contract.SUMMARY_FILE.format(arch=arch)
    written = json.loads(path.read_text())
    change(written)
    path.write_text(json.dumps(written))
    return written



@functools.lru_cache(maxsize=None)
def _corpus_evidence(variant: str) -> Evidence:
    return stored_evidence(CORPUS_EVIDENCE / variant / "artifacts")


def corpus_model(arch: str, field: str, variant: str = "strong_template") -> Any:
    """A real model's ``summary`` or ``fed`` (as the prediction sandbox wrote it and the grader's door read
    it), from a variant of the corpus (the template's strong notebook by default): a copy to change at will."""
    return copy.deepcopy(getattr(_corpus_evidence(variant).models[arch], field))
