"""The assignment definition: validation with errors that name the key, thresholds from calibration."""
from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from autograder.assignment import ARCHITECTURES, AssignmentError, Threshold, load_assignment


@pytest.fixture
def copy(repo, tmp_path):
    root = tmp_path / "mnist"
    shutil.copytree(repo / "assignments" / "mnist", root)
    return root


def edit(root, old: str, new: str) -> None:
    path = root / "assignment.toml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_the_shipped_assignment_loads_and_sums_to_100(repo):
    assignment = load_assignment(repo / "assignments" / "mnist")
    assert assignment.max_score == 100
    assert [q.id for q in assignment.questions] == [f"q{i}" for i in range(1, 9)]
    assert {q.id: q.points for q in assignment.questions} == {
        "q1": 10, "q2": 18, "q3": 16, "q4": 7, "q5": 7, "q6": 7, "q7": 8, "q8": 27}
    assert set(assignment.models) == set(ARCHITECTURES)


def test_thresholds_come_from_the_calibration_file(copy):
    edit(copy, "margin = 0.015", "margin = 0.02")
    edit(copy, "span = 0.06", "span = 0.1")
    calibration_file = load_assignment(copy).calibration_file
    calibration = json.loads(calibration_file.read_text())
    calibration["architectures"]["mlp"]["eval_accuracy"]["min"] = 0.9712
    calibration["architectures"]["gru"]["eval_accuracy"]["min"] = 0.9805
    calibration_file.write_text(json.dumps(calibration))
    thresholds = load_assignment(copy).thresholds()
    # Full credit at the lowest reference run minus the margin, zero credit one span below that:
    #   mlp: 0.9712 - 0.02 = 0.9512, 0.9512 - 0.1 = 0.8512;  gru: 0.9805 - 0.02 = 0.9605, 0.8605.
    assert thresholds["mlp"] == Threshold(full=0.9512, zero=0.8512)
    assert thresholds["gru"] == Threshold(full=0.9605, zero=0.8605)


@pytest.mark.parametrize("old, new, key", [
    ("points = 10 }]", 'points = "ten" }]', "questions[0].checks[0].points"),
    ('on_error = "continue"', 'on_error = "sometimes"', "execution.on_error"),
    ("memory_mb = 4096", "memory_mb = true", "execution.memory_mb"),
    ('mlp = "mlp_model"', 'mlp = 3', "models.mlp"),
    ('id = "q2"', 'id = "q1"', "questions[1].id"),
    ("[execution]", "[execution]\nwall_budget = 5", "execution.wall_budget"),
    ('table_architectures = ["mlp"', 'table_architectures = ["transformer"', "report.table_architectures"),
    ("size = 5000", "", "evaluation.size"),
    ("size = 5000", "size = 5000\nmax_shift = 2", "evaluation.max_shift"),  # never used: no longer read
    ("threads = 2 ", "threads = 0 ", "execution.threads"),
    ("processes = 512", "processes = 1.5", "execution.processes"),
    ("export_seconds = 120", "export_seconds = -1", "execution.export_seconds"),
    ("list_table_credit = 0.6", "list_table_credit = 2", "report.list_table_credit"),
    ("allow_pretrained_weights = false", 'allow_pretrained_weights = "yes"', "integrity.allow_pretrained_weights"),
])
def test_a_bad_key_is_named(copy, old, new, key):
    edit(copy, old, new)
    with pytest.raises(AssignmentError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_assignment(copy)


def test_invalid_toml_is_reported_with_the_file(copy):
    (copy / "assignment.toml").write_text("[assignment\nname = 1")
    with pytest.raises(AssignmentError, match="not valid TOML"):
        load_assignment(copy)


def test_missing_calibration_names_the_command_to_run(copy):
    (copy / "calibration.json").unlink()
    with pytest.raises(AssignmentError, match="autograder calibrate"):
        load_assignment(copy).thresholds()


def test_bundle_hash_changes_with_what_decides_a_score(copy):
    before = load_assignment(copy).scoring_key().sha256
    edit(copy, "span = 0.06", "span = 0.2")
    assert load_assignment(copy).scoring_key().sha256 != before


def test_pretrained_weights_are_refused_unless_the_integrity_table_allows_them(copy):
    assert load_assignment(copy).allow_pretrained_weights is False
    edit(copy, "allow_pretrained_weights = false", "allow_pretrained_weights = true")
    assert load_assignment(copy).allow_pretrained_weights is True
    toml = (copy / "assignment.toml").read_text()
    start = toml.index("[integrity]")
    (copy / "assignment.toml").write_text(toml[:start] + toml[toml.index("[[questions]]"):])
    assert load_assignment(copy).allow_pretrained_weights is False  # the table is optional: off by default


def test_threshold_credit_is_linear_between_zero_and_full():
    threshold = Threshold(full=0.95, zero=0.80)
    assert threshold.credit(0.96) == 1.0 and threshold.credit(0.80) == 0.0
    # Linear from 0.80 to 0.95 (a width of 0.15): 0.875 is 0.075 up, half way; 0.83 is 0.03 up, 0.03 / 0.15 = 0.2.
    assert threshold.credit(0.875) == pytest.approx(0.5)
    assert threshold.credit(0.83) == pytest.approx(0.2)


def test_the_shipped_execution_table_writes_out_the_defaults(repo):
    """assignment.toml documents every limit with its default: the file and the code agree."""
    import tomllib
    from autograder.assignment import Execution
    shipped = tomllib.loads((repo / "assignments" / "mnist" / "assignment.toml").read_text())["execution"]
    assert shipped == dataclasses.asdict(Execution())


def test_sandbox_limits_come_from_the_execution_table(copy):
    from autograder.run.sandbox.spec import Limits
    edit(copy, "home_mb = 1024", "home_mb = 64")
    edit(copy, "processes = 512", "processes = 99")
    edit(copy, "threads = 2 ", "threads = 3 ")
    limits = Limits.from_execution(load_assignment(copy).execution, wall_seconds=7)
    assert (limits.home_mb, limits.processes, limits.threads, limits.wall_seconds) == (64, 99, 3, 7)
    assert (limits.export_mb, limits.file_size_mb) == (1024, 512)


def test_the_schema_knows_every_execution_key_and_architecture_the_code_does():
    """The schema and the code name the same keys: a new limit cannot be added to one and not the other."""
    from autograder.assignment import SCHEMA_FILE, Execution
    schema = json.loads(SCHEMA_FILE.read_text())
    assert set(schema["properties"]["execution"]["properties"]) == {f.name for f in dataclasses.fields(Execution)}
    assert tuple(schema["properties"]["models"]["required"]) == ARCHITECTURES
