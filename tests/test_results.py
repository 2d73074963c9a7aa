"""The result schema (autograder/schemas/result.schema.json): every write is checked, fixtures match it."""
from __future__ import annotations

import copy
import json

import pytest

from autograder.assignment import load_assignment
from autograder.pipeline.grade_one import base_result, rejected_result
from autograder.results import (REASONS, SCHEMA, SCHEMA_VERSION, ResultSchemaError, check_result, read_result,
                                write_result)
from result_fixtures import FIXTURES, fixture_result

KEYS = sorted(path.stem for path in FIXTURES.glob("*.json"))


@pytest.mark.parametrize("key", KEYS)
def test_every_fixture_matches_the_schema_real_results_are_written_under(key):
    result = fixture_result(key)
    check_result(result)
    assert result["schema_version"] == SCHEMA_VERSION


def test_a_result_that_drifted_from_the_schema_is_refused_by_name_and_not_written(tmp_path):
    drifted = fixture_result("a001-complete")
    drifted["models"]["cnn"]["accuracy_on_test"] = drifted["models"]["cnn"].pop("accuracy")  # a renamed field
    with pytest.raises(ResultSchemaError, match=r"result\.models\.cnn: .*grader bug"):
        write_result(tmp_path / "result.json", drifted)
    assert not (tmp_path / "result.json").exists()

    missing = fixture_result("a002-partial")
    del missing["export_errors"]
    with pytest.raises(ResultSchemaError, match="'export_errors' is a required property"):
        write_result(tmp_path / "result.json", missing)


def test_rejected_results_built_by_the_grader_match_the_schema(tmp_path, repo):
    assignment = load_assignment(repo / "assignments" / "mnist")
    for reason in ("no_notebook", "invalid_notebook"):
        result = rejected_result(base_result(tmp_path / "x.ipynb", assignment, None, None, True), assignment, reason, "")
        write_result(tmp_path / "result.json", result)
        assert read_result(tmp_path / "result.json") == json.loads(json.dumps(result))
    failed = rejected_result(base_result(tmp_path / "x.ipynb", assignment, "ab" * 32, None, True), assignment,
                             "grader_error", "", status="error")
    failed.update(isolation="bubblewrap", notes=["OSError: file name too long"])
    check_result(failed)


def test_the_export_errors_are_capped_untrusted_text():
    result = fixture_result("a002-partial")
    for bad in (["x" * 201], ["e"] * 21, [{"verdict": "passed"}]):
        with pytest.raises(ResultSchemaError, match="export_errors"):
            check_result({**copy.deepcopy(result), "export_errors": bad})


def test_every_reason_code_a_result_may_carry_has_a_student_message():
    codes = SCHEMA["properties"]["reason"]["oneOf"][1]["enum"]
    assert set(codes) <= set(REASONS)


def test_the_schema_knows_every_integrity_rule_and_no_other():
    from autograder.score.integrity import RULES
    rules = SCHEMA["properties"]["integrity"]["additionalProperties"]["propertyNames"]["enum"]
    assert rules == list(RULES)
