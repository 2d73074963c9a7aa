"""The stored result fixtures (tests/fixtures/results), copied into a RESULTS folder as `grade` leaves it.

Each copy is stamped with the bundle hash of the assignment it is read with: the fixtures stand for
results graded under the current rubric and scoring code (reports refuse stale ones).
"""
from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "results"


def fixture_result(key: str) -> dict:
    return json.loads((FIXTURES / f"{key}.json").read_text())


def copy_results(results: Path, assignment, keys: list[str] | None = None) -> Path:
    """``results/results/<key>.json`` for each fixture (all by default), current for ``assignment``."""
    (results / "results").mkdir(parents=True, exist_ok=True)
    for path in sorted(FIXTURES.glob("*.json")):
        if keys is None or path.stem in keys:
            write(results, path.stem, fixture_result(path.stem), assignment)
    return results


def write(results: Path, key: str, result: dict, assignment) -> Path:
    result["assignment"].update(name=assignment.name, bundle_sha256=assignment.bundle_sha256())
    path = results / "results" / f"{key}.json"
    path.write_text(json.dumps(result))
    return path
