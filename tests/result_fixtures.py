"""The stored result fixtures (tests/fixtures/results), copied into a RESULTS folder as `grade` leaves it.

Each fixture is a hand-chosen scenario (names, scores, errors, injected markup) in the exact shape real
``grade_one`` output has: the fields a scenario does not choose were filled from a real result, and every
fixture must match ``autograder/schemas/result.schema.json``, the schema every written result is checked
against (test_results.py). Each copy is stamped with the scoring and evidence keys and the folder of the assignment it is
read with: the fixtures stand for results graded under the current rubric and scoring code (reports
refuse stale ones).
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
    result["assignment"].update(name=assignment.name, bundle_sha256=assignment.scoring_key().sha256,
                                evidence_sha256=assignment.evidence_key().sha256, root=str(assignment.root))
    path = results / "results" / f"{key}.json"
    path.write_text(json.dumps(result))
    return path
