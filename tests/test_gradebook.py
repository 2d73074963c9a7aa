"""Gradebook: columns, roster, late policy, overrides and the otter / Canvas / Gradescope exports."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from autograder.cli import main
from autograder.intake.inputs import InputError, parse_time, read_extensions
from autograder.intake.roster import read_roster
from autograder.output.gradebook import write_gradebook
from autograder.output.policy import GradingPolicy, LatePolicy
from result_fixtures import FIXTURES, copy_results, fixture_result, write
DUE = "2026-12-01T23:59:00+00:00"


@pytest.fixture
def results_dir(tmp_path, assignment) -> Path:
    return copy_results(tmp_path / "RESULTS", assignment)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def roster() -> pd.DataFrame:
    return pd.DataFrame({"student_id": ["A001", "A002", "A003", "A004", "A006"],
                         "name": ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson",
                                  "Edsger Dijkstra"],
                         "section": ["S1", "S1", "S2", "S2", "S1"]})


def gradebook(results_dir: Path, assignment, **policy) -> pd.DataFrame:
    out = results_dir / "out" / "gradebook.csv"
    write_gradebook(results_dir, out, assignment, GradingPolicy(**policy))
    return pd.read_csv(out, dtype={"student_id": str}, keep_default_na=False).set_index("student_id")


def test_columns_are_stable_and_totals_match_the_results(results_dir, assignment):
    out = results_dir / "out" / "gradebook.csv"
    write_gradebook(results_dir, out, assignment)
    table = pd.read_csv(out, dtype={"student_id": str}, keep_default_na=False)
    qids = [q.id for q in assignment.questions]
    assert list(table.columns) == ["student_id", "student_name", *qids, "raw_total", "late_penalty",
                                   "override_note", "total", "max_score", "percent", "status", "reason",
                                   "needs_review", "flagged", "review", "submitted_at", "late"]
    assert list(table["student_id"]) == sorted(table["student_id"])
    table = table.set_index("student_id")
    for path in FIXTURES.glob("*.json"):
        result = json.loads(path.read_text())
        row = table.loc[result["submission"]["student_id"]]
        assert row["raw_total"] == pytest.approx(result["score"])
        assert row[qids].sum() == pytest.approx(result["score"])
        assert row["total"] == pytest.approx(result["score"])  # no late policy, no override
        assert row["percent"] == pytest.approx(100 * result["score"] / assignment.max_score, abs=0.01)
        assert row["status"] == result["status"]
        assert row["reason"] == (result["reason"] or "")
    assert table.loc["A003", qids].eq(0).all()  # rejected: every question 0


def test_the_review_column_lists_trained_models_that_earned_nothing(results_dir, assignment):
    result = fixture_result("a001-complete")
    result["submission"]["student_id"] = "A007"
    result["review"] = [{"kind": "model", "arch": "cnn", "code": "model_lost", "variable": "lenet", "cell_number": 9,
                         "text": "x"},
                        {"kind": "model", "arch": "gru", "code": "prediction_failed", "variable": "gru",
                         "cell_number": 12, "text": "y"},
                        {"kind": "needs_review", "question": "q3", "check": "cnn_accuracy", "reason": "z"}]
    write(results_dir, "a007-lost", result, assignment)

    table = gradebook(results_dir, assignment)

    assert table.loc["A007", "review"] == "cnn: model_lost; gru: prediction_failed"
    assert table.loc["A001", "review"] == ""


def test_roster_lists_missing_students_and_flags_unknown_ones(results_dir, assignment):
    table = gradebook(results_dir, assignment, roster=roster())
    assert table.loc["A006", "status"] == "missing"
    assert table.loc["A006", "student_name"] == "Edsger Dijkstra"
    assert table.loc["A006", ["q1", "raw_total", "total", "percent"]].eq("").all()  # no grade yet, not 0
    assert gradebook(results_dir, assignment, roster=roster(), missing_as_zero=True).loc[
        "A006", ["raw_total", "total", "percent"]].eq(0).all()
    assert table.loc["A005", "status"] == "not_on_roster"
    assert float(table.loc["A005", "total"]) == pytest.approx(fixture_result("a005-injection")["score"])
    assert table.loc["A001", "status"] == "graded"
    assert len(table) == 6


def test_roster_with_a_repeated_student_is_refused(tmp_path):
    path = write_csv(tmp_path / "roster.csv", "student_id,name\nA001,Ada\nA002,Grace\nA001,Ada L.\n")
    with pytest.raises(InputError, match="'A001' is listed more than once"):
        read_roster(path)


def test_extensions_with_a_repeated_or_blank_student_are_refused_naming_the_lines(tmp_path):
    """The roster's rules for its key column, read by the same code: the refusal names both lines."""
    path = write_csv(tmp_path / "extensions.csv", "student_id,due\nA001,2026-12-03\nA002,2026-12-04\nA001,2026-12-05\n")
    with pytest.raises(InputError, match=r"student_id 'A001' is listed more than once \(lines 2 and 4\)"):
        read_extensions(path, ZoneInfo("UTC"))
    blank = write_csv(tmp_path / "blank.csv", "student_id,due\nA001,2026-12-03\n,2026-12-04\n")
    with pytest.raises(InputError, match=r"blank.csv:3: student_id is blank"):
        read_extensions(blank, ZoneInfo("UTC"))


@pytest.mark.parametrize("text, units, expected", [
    ("none", 3, 0.0), ("zero", 1, 1.0), ("zero", 0, 0.0), ("10%/day,max=50%", 2, 0.2),
    ("10%/day,max=50%", 9, 0.5), ("25%/day", 7, 1.0), ("2.5%/hour", 4, 0.1),
])
def test_late_policy_fraction(text, units, expected):
    assert LatePolicy.parse(text).fraction(units) == pytest.approx(expected)


def test_late_policy_units_and_bad_syntax():
    assert LatePolicy.parse("5%/hour").unit == timedelta(hours=1)
    for bad in ("10 percent", "10%/week", "max=50%", ""):
        with pytest.raises(ValueError, match="late policy"):
            LatePolicy.parse(bad)


def test_late_penalty_counts_started_days_after_the_deadline(results_dir, assignment):
    table = gradebook(results_dir, assignment, due=parse_time(DUE), late=LatePolicy.parse("10%/day,max=50%"))
    late = table.loc["A004"]  # submitted 2026-12-03T10:30Z: 1 day 10.5 hours late -> 2 started days
    assert bool(late["late"]) is True
    assert late["late_penalty"] == pytest.approx(round(late["raw_total"] * 0.2, 2))
    assert late["total"] == pytest.approx(late["raw_total"] - late["late_penalty"])
    on_time = table.loc["A002"]  # 2026-12-01T21:40Z, before the deadline
    assert bool(on_time["late"]) is False and on_time["late_penalty"] == 0


def test_late_flag_counts_when_there_is_no_deadline(results_dir, assignment):
    table = gradebook(results_dir, assignment, late=LatePolicy.parse("zero"))
    assert table.loc["A004", "total"] == 0
    assert table.loc["A004", "late_penalty"] == pytest.approx(table.loc["A004", "raw_total"])
    assert table.loc["A001", "total"] == pytest.approx(fixture_result("a001-complete")["score"])


def test_overrides_replace_scores_and_are_noted(results_dir, assignment):
    overrides = pd.DataFrame({"student_id": ["A002", "A004"], "question": ["q5", "late_penalty"],
                              "score": ["5", "0"], "reason": ["regrade: cell order", "excused extension"]})
    table = gradebook(results_dir, assignment, overrides=overrides, due=parse_time(DUE),
                      late=LatePolicy.parse("10%/day"))
    graded = fixture_result("a002-partial")["score"]
    assert table.loc["A002", "q5"] == 5
    assert table.loc["A002", "raw_total"] == pytest.approx(graded + 5)
    assert "q5: 0 -> 5 (regrade: cell order)" in table.loc["A002", "override_note"]
    assert table.loc["A004", "late_penalty"] == 0
    assert bool(table.loc["A004", "late"]) is True
    assert "excused extension" in table.loc["A004", "override_note"]
    assert table.loc["A001", "override_note"] == ""


@pytest.mark.parametrize("question, score, error", [
    ("q9", "1", "unknown question"), ("q1", "11", "outside 0..10"), ("q1", "-1", "outside"),
    ("q1", "ten", "not a number"), ("late_penalty", "-5", "cannot be negative"),
])
def test_bad_overrides_are_refused(results_dir, assignment, question, score, error):
    overrides = pd.DataFrame({"student_id": ["A001"], "question": [question], "score": [score],
                              "reason": ["x"]})
    with pytest.raises(ValueError, match=error):
        gradebook(results_dir, assignment, overrides=overrides)


def test_latest_submission_counts(results_dir, assignment):
    resubmission = fixture_result("a001-complete")
    resubmission["submission"]["submitted_at"] = "2026-12-01T09:00:00+00:00"
    resubmission["questions"][0]["score"] = 4.0
    resubmission["score"] -= 6.0
    write(results_dir, "a001-resubmitted", resubmission, assignment)
    table = gradebook(results_dir, assignment)
    assert list(table.index).count("A001") == 1
    assert table.loc["A001", "q1"] == 4.0
    assert table.loc["A001", "total"] == pytest.approx(resubmission["score"])


def test_latest_is_decided_by_instant_not_by_text(results_dir, assignment):
    earlier = fixture_result("a001-complete")  # the original was submitted 2026-11-30T18:12Z
    earlier["submission"]["submitted_at"] = "2026-11-30T19:00:00+02:00"  # 17:00Z: earlier, sorts later as text
    earlier["questions"][0]["score"] = 0.0
    earlier["score"] -= 10.0
    write(results_dir, "a001-earlier", earlier, assignment)
    table = gradebook(results_dir, assignment)
    assert table.loc["A001", "total"] == pytest.approx(fixture_result("a001-complete")["score"])


def test_otter_final_grades_layout(results_dir, assignment):
    write_gradebook(results_dir, results_dir / "out" / "gradebook.csv", assignment)
    otter = pd.read_csv(results_dir / "out" / "final_grades.csv", keep_default_na=False)
    qids = [q.id for q in assignment.questions]
    assert list(otter.columns) == ["file", *sorted(qids), "total_points_earned", "percent_correct",
                                   "grading_status", "late_penalty"]
    points = otter.iloc[0]
    assert points["file"] == "points-per-question"
    assert [points[q] for q in qids] == [q.points for q in assignment.questions]
    assert points["total_points_earned"] == assignment.max_score
    rows = otter.iloc[1:].set_index("file")
    assert list(rows.index) == sorted(rows.index) == sorted(  # otter's row order; file = the submitted name
        fixture_result(p.stem)["submission"]["submitted_name"] for p in FIXTURES.glob("*.json"))
    assert rows.loc["a001-complete/mnist_homework.ipynb", "grading_status"] == "Completed"
    assert rows.loc["a003-rejected/mnist_homework.ipynb", "grading_status"] == "rejected: invalid_notebook"
    assert rows.loc["a002-partial/mnist_homework.ipynb", "percent_correct"] == pytest.approx(
        fixture_result("a002-partial")["score"] / assignment.max_score, abs=1e-4)


def test_canvas_import_layout(results_dir, assignment):
    write_gradebook(results_dir, results_dir / "out" / "gradebook.csv", assignment,
                    GradingPolicy(roster=roster(), canvas_assignment_id="4711"))
    canvas = pd.read_csv(results_dir / "out" / "canvas_grades.csv", dtype=str, keep_default_na=False)
    column = f"{assignment.title} (4711)"
    assert list(canvas.columns) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column]
    assert canvas.iloc[0]["Student"].strip() == "Points Possible"
    assert float(canvas.iloc[0][column]) == assignment.max_score
    students = canvas.iloc[1:].set_index("SIS User ID")
    assert set(students.index) == {"A001", "A002", "A003", "A004", "A005", "A006"}
    assert students.loc["A003", "Section"] == "S2"
    assert students.loc["A006", column] == ""  # no submission: Canvas keeps whatever it has
    assert float(students.loc["A001", column]) == pytest.approx(fixture_result("a001-complete")["score"])


def test_gradescope_results_per_submission(results_dir, assignment):
    write_gradebook(results_dir, results_dir / "out" / "gradebook.csv", assignment,
                    GradingPolicy(due=parse_time(DUE), late=LatePolicy.parse("10%/day")))
    for path in FIXTURES.glob("*.json"):
        result = json.loads(path.read_text())
        exported_text = (results_dir / "out" / "gradescope" / path.stem / "results.json").read_text()
        exported = json.loads(exported_text)
        assert set(exported) == {"score", "output", "tests", "visibility", "stdout_visibility"}
        checks = [c for q in result["questions"] for c in q["checks"]]
        assert len(exported["tests"]) == len(checks)
        for test in exported["tests"]:
            assert set(test) == {"score", "max_score", "name", "output", "visibility"}
            assert test["visibility"] == "visible"
        assert sum(t["score"] for t in exported["tests"]) == pytest.approx(result["score"])
        assert "TA-ONLY" not in exported_text and "\x1b" not in exported_text
    late = json.loads((results_dir / "out" / "gradescope" / "a004-late" / "results.json").read_text())
    raw = fixture_result("a004-late")["score"]
    assert late["score"] == pytest.approx(raw - round(raw * 0.2, 2))
    assert "Late penalty" in late["output"]


def test_csv_names_are_plain_and_cannot_start_a_formula(results_dir, assignment):
    hostile = fixture_result("a001-complete")
    hostile["submission"].update(student_id="A009", student_name='=HYPERLINK("http://x","\x1b[31mclick")')
    write(results_dir, "a009", hostile, assignment)
    table = gradebook(results_dir, assignment)
    assert table.loc["A009", "student_name"] == "'=HYPERLINK(\"http://x\",\"click\")"
    assert "\x1b" not in table.loc["A005", "student_name"]


def test_cli_writes_every_export_and_rejects_a_bad_policy(results_dir, repo, tmp_path, capsys):
    roster_file = write_csv(tmp_path / "roster.csv", "student_id,name\nA001,Ada Lovelace\nA006,Edsger Dijkstra\n")
    overrides = write_csv(tmp_path / "overrides.csv", "student_id,question,score,reason\nA006,q1,10,paper copy\n")
    out = tmp_path / "grades" / "gradebook.csv"
    code = main(["gradebook", str(results_dir), "-o", str(out.parent), "--assignment", str(repo / "assignments/mnist"),
                 "--roster", str(roster_file), "--overrides", str(overrides), "--due", DUE,
                 "--late-policy", "10%/day,max=50%"])
    assert code == 0
    assert {p.name for p in out.parent.iterdir()} == {"gradebook.csv", "final_grades.csv", "canvas_grades.csv",
                                                      "gradescope"}
    table = pd.read_csv(out, dtype={"student_id": str}, keep_default_na=False).set_index("student_id")
    assert table.loc["A006", ["q1", "total"]].tolist() == [10, 10]
    assert table.loc["A006", "status"] == "missing"
    assert main(["gradebook", str(results_dir), "-o", str(out.parent), "--late-policy", "often"]) == 2
    assert "late policy" in capsys.readouterr().err
