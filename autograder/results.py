"""The result of grading one submission: a versioned JSON schema, checked on every write, written atomically.

The schema is ``autograder/schemas/result.schema.json`` (each field described there); its
``schema_version`` is :data:`SCHEMA_VERSION`. :func:`write_result` refuses a result that does not match
it: that is a grader bug (a field added or renamed without the schema), so tests catch drift.
"""
from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "result.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
SCHEMA_VERSION: int = SCHEMA["properties"]["schema_version"]["const"]


class ResultSchemaError(RuntimeError):
    """A result the grader built does not match result.schema.json: a bug in the grader, not in the submission."""

#: Reason codes, each with the student-facing message used when no better one is known.
REASONS: dict[str, str] = {
    "invalid_notebook": "The file is not a readable Jupyter notebook.",
    "too_large": "The submission is larger than the size limit.",
    "no_notebook": "No notebook was found in the submission.",
    "multiple_notebooks": "The submission holds more than one notebook; submit exactly one.",
    "unsupported_nbformat": "The notebook format version is not supported; save it with Jupyter 4+.",
    "wall_budget": "The notebook ran past its time budget and was stopped.",
    "memory": "The notebook used more memory than allowed and was stopped.",
    "disk": "The notebook wrote more data to disk than allowed and was stopped.",
    "kernel_died": "The Python kernel crashed or exited while running the notebook.",
    "kernel_protocol": "The notebook's kernel sent the grader a message it could not read, so the run was stopped.",
    "cell_errors": "Some cells raised errors; the questions that depend on them were not assessed.",
    "export_failed": "The grader could not read your models after the notebook ran.",
    "models_to_review": "A model your notebook trained earned no points or could not be fully assessed; your instructor will review it.",
    "grader_error": "The grader itself failed on this submission; your instructor has been told.",
}


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` so readers see the old file or the whole new one, never a torn write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results and pages are meant to be read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@functools.lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(SCHEMA)


def check_result(result: dict[str, Any]) -> None:
    """Raise :class:`ResultSchemaError`, naming the field, if ``result`` does not match the schema."""
    error = jsonschema.exceptions.best_match(_validator().iter_errors(result))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path) or "(top level)"
        raise ResultSchemaError(f"result{where}: {error.message[:300]} (does not match {SCHEMA_FILE.name} "
                                f"version {SCHEMA_VERSION}: a grader bug)")


def write_result(path: str | os.PathLike, result: dict[str, Any]) -> None:
    """Check ``result`` against the schema, then write it atomically."""
    check_result(result)
    atomic_write_text(path, json.dumps(result, indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_result(path: str | os.PathLike) -> dict[str, Any]:
    result = json.loads(Path(path).read_text(encoding="utf-8"))
    if result.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: result schema {result.get('schema_version')} is not {SCHEMA_VERSION}")
    return result
