"""One grading policy for every output (issue 22, items 5, 6 and 10), tried as a TA would: stored results,
rosters and the command line, no notebook run.

The policy `gradebook` is given is recorded in RESULTS and every output reads it; deadlines are ISO 8601
only, a date alone is the end of that day in a named timezone; the Canvas CSV never lists a student
twice; pages say what is final; the command line keeps the README's promises.
"""
from __future__ import annotations

import csv
import json
import os
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

from autograder.cli import demo, main
from autograder.output.policy import POLICY_FILE
from result_fixtures import copy_results, fixture_result, write
from test_ta_outputs import one_line_refusal as refused, run_cli

LATE_POLICY = ["--due", "2026-12-01T23:59Z", "--late-policy", "10%/day,max=50%"]


@pytest.fixture
def results(tmp_path, assignment) -> Path:
    return copy_results(tmp_path / "RESULTS", assignment)


@pytest.fixture
def flags(repo) -> list:
    return ["--assignment", repo / "assignments/mnist"]


def files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def canvas_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))[1:]  # after Canvas's Points Possible row


def page_grade(page: Path) -> float:
    return float(re.search(r"Your grade: ([\d.]+) /", page.read_text()).group(1))


def write_roster(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text(text)
    return path


# --- 5. one policy for every output ---------------------------------------------------------------

def test_feedback_without_options_shows_the_grade_canvas_gets(results, flags, capsys, assignment):
    assert run_cli(capsys, "gradebook", results, *flags, *LATE_POLICY)[0] == 0
    assert run_cli(capsys, "feedback", results, *flags)[0] == 0  # no policy options: the recorded one
    canvas = {row["SIS User ID"]: float(row[assignment.title]) for row in canvas_rows(results / "canvas_grades.csv")}
    late = fixture_result("a004-late")["score"]
    assert canvas["A004"] == pytest.approx(late - round(late * 0.2, 2))  # 2 started days at 10%
    for key in ("a001-complete", "a002-partial", "a004-late"):
        student = fixture_result(key)["submission"]["student_id"]
        assert round(page_grade(results / "feedback" / f"{key}.html"), 2) == round(canvas[student], 2), key
    record = json.loads((results / POLICY_FILE).read_text())
    assert record["late_policy"] == "10%/day,max=50%" and record["due"] == "2026-12-01T23:59:00+00:00"


def test_feedback_refuses_options_that_disagree_with_the_record(results, flags, capsys):
    refused(*run_cli(capsys, "feedback", results, *flags, *LATE_POLICY)[::2], "no grading policy recorded",
            "autograder gradebook")
    assert run_cli(capsys, "gradebook", results, *flags, *LATE_POLICY)[0] == 0
    before = files(results)
    refused(*run_cli(capsys, "feedback", results, *flags, "--late-policy", "zero")[::2],
            "--late-policy", "autograder gradebook", "10%/day,max=50% -> zero")
    assert files(results) == before and not (results / "feedback").exists()


def test_gradebook_keeps_the_recorded_policy_and_says_what_changed(results, flags, capsys, tmp_path):
    assert run_cli(capsys, "gradebook", results, *flags, *LATE_POLICY)[0] == 0
    overrides = tmp_path / "overrides.csv"
    overrides.write_text("student_id,question,score,reason\nA002,q5,5,regraded by hand\n")
    code, out, _ = run_cli(capsys, "gradebook", results, *flags, "--overrides", overrides)
    assert code == 0 and "changed: overrides: none -> 1 row(s)" in out
    book = pd.read_csv(results / "gradebook.csv", dtype={"student_id": str}).set_index("student_id")
    assert book.loc["A004", "late_penalty"] > 0  # the recorded late policy still counts
    code, out, _ = run_cli(capsys, "gradebook", results, *flags)
    assert code == 0 and "(unchanged)" in out
    code, out, _ = run_cli(capsys, "gradebook", results, *flags, "--late-policy", "none")
    assert code == 0 and "late_policy: 10%/day,max=50% -> none" in out and "due: 2026-12-01 23:59:00" in out
    assert json.loads((results / POLICY_FILE).read_text())["due"] is None  # a deadline needs a late policy


def test_an_extension_is_a_deadline_of_the_students_own(results, flags, capsys, tmp_path):
    extensions = tmp_path / "extensions.csv"
    extensions.write_text("student_id,due\nA004,2026-12-03\n")  # submitted 2026-12-03T10:30Z: in time
    assert run_cli(capsys, "gradebook", results, *flags, *LATE_POLICY, "--extensions", extensions,
                   "--timezone", "UTC")[0] == 0
    book = pd.read_csv(results / "gradebook.csv", dtype={"student_id": str}).set_index("student_id")
    assert book.loc["A004", "late_penalty"] == 0 and not book.loc["A004", "late"]
    assert json.loads((results / POLICY_FILE).read_text())["extensions"]["rows"] == [
        {"student_id": "A004", "due": "2026-12-03T23:59:59+00:00"}]


def test_a_late_mark_without_a_time_is_not_judged_against_an_extension(tmp_path, flags, capsys, assignment):
    """Canvas marks LATE against the course's deadline and gives no time: against a student's own deadline the
    grader cannot tell, so it refuses until the TA sets that student's late penalty."""
    results = copy_results(tmp_path / "RESULTS", assignment, [])
    result = fixture_result("a004-late")
    result["submission"].update(submitted_at=None, late=True)  # as a Canvas download records a LATE file
    write(results, "a004-late", result, assignment)
    extensions = tmp_path / "extensions.csv"
    extensions.write_text("student_id,due\nA004,2026-12-08\n")
    refused(*run_cli(capsys, "gradebook", results, *flags, *LATE_POLICY, "--extensions", extensions,
                     "--timezone", "UTC")[::2], "'A004'", "late_penalty")
    assert not (results / "gradebook.csv").exists()
    overrides = tmp_path / "overrides.csv"
    overrides.write_text("student_id,question,score,reason\nA004,late_penalty,0,submitted within the extension\n")
    assert run_cli(capsys, "gradebook", results, *flags, *LATE_POLICY, "--extensions", extensions,
                   "--timezone", "UTC", "--overrides", overrides)[0] == 0
    book = pd.read_csv(results / "gradebook.csv", dtype={"student_id": str}).set_index("student_id")
    assert book.loc["A004", "late_penalty"] == 0 and book.loc["A004", "total"] == pytest.approx(result["score"])
    assert "submitted within the extension" in book.loc["A004", "override_note"]


def test_grading_an_older_canvas_download_again_never_makes_it_the_latest(tmp_path, flags, capsys, assignment):
    """Canvas gives no submission times, only file ids (a later upload has a larger one). Bob's first upload,
    graded again after his resubmission (a retry, a new seed), is still not the one that counts."""
    results = copy_results(tmp_path / "RESULTS", assignment, [])
    for key, fixture, file_id, graded_at in (("first", "a002-partial", 200, "2026-12-04T10:00:00+00:00"),
                                             ("again", "a001-complete", 201, "2026-12-03T10:00:00+00:00")):
        result = fixture_result(fixture)
        result["submission"].update(student_id="5002", canvas_id="5002", submitted_at=None, late=False,
                                    submitted_name=f"chenbob_5002_{file_id}_mnist_homework.ipynb")
        result["grader"]["graded_at"] = graded_at  # the first upload was graded last
        write(results, key, result, assignment)
    assert run_cli(capsys, "gradebook", results, *flags)[0] == 0
    book = pd.read_csv(results / "gradebook.csv", dtype={"student_id": str}).set_index("student_id")
    assert book.loc["5002", "total"] == pytest.approx(fixture_result("a001-complete")["score"])


def test_the_canvas_assignment_id_is_recorded_with_the_policy(results, flags, capsys):
    """After a regrade the TA runs `gradebook` again without options: the Canvas import still updates the
    same assignment, never a new column beside it."""
    assert run_cli(capsys, "gradebook", results, *flags, "--canvas-assignment-id", "4711")[0] == 0
    assert run_cli(capsys, "gradebook", results, *flags)[0] == 0
    header = (results / "canvas_grades.csv").read_text().splitlines()[0]
    assert header.endswith("(4711)\"") or header.endswith("(4711)"), header


@pytest.mark.parametrize("due", ["1.12.2026", "12/1", "next friday", "2026-12-01 at noon"])
def test_a_deadline_that_is_not_iso_8601_is_refused(results, flags, capsys, due):
    refused(*run_cli(capsys, "gradebook", results, *flags, "--due", due, "--late-policy", "10%/day")[::2],
            "--due", "ISO 8601")
    assert not (results / "gradebook.csv").exists() and not (results / POLICY_FILE).exists()


def test_a_date_without_a_time_is_the_end_of_that_day_in_the_named_timezone(results, flags, capsys):
    code, out, _ = run_cli(capsys, "gradebook", results, *flags, "--due", "2026-12-02", "--timezone",
                           "Europe/Berlin", "--late-policy", "10%/day")
    assert code == 0 and "due: 2026-12-02 23:59:59 Europe/Berlin (UTC+01:00)" in out
    assert json.loads((results / POLICY_FILE).read_text())["due"] == "2026-12-02T22:59:59+00:00"
    book = pd.read_csv(results / "gradebook.csv", dtype={"student_id": str}).set_index("student_id")
    raw = fixture_result("a004-late")["score"]  # submitted 2026-12-03T10:30Z: 11.5 hours late, 1 started day
    assert book.loc["A004", "late_penalty"] == pytest.approx(round(raw * 0.1, 2))
    refused(*run_cli(capsys, "gradebook", results, *flags, "--due", "2026-12-02", "--timezone", "Mars/Olympus",
                     "--late-policy", "10%/day")[::2], "--timezone")
    refused(*run_cli(capsys, "gradebook", results, *flags, "--timezone", "UTC")[::2], "give --due again")


def test_a_deadline_without_a_late_policy_is_refused(results, flags, capsys):
    refused(*run_cli(capsys, "gradebook", results, *flags, "--due", "2026-12-01T23:59Z")[::2],
            "--due", "--late-policy")
    assert not (results / "gradebook.csv").exists()


# --- 6. the Canvas CSV and -o ---------------------------------------------------------------------

def test_a_roster_keyed_differently_never_lists_a_student_twice(tmp_path, flags, capsys, assignment):
    results = copy_results(tmp_path / "RESULTS", assignment, [])
    for key, student_id, canvas_id in (("k1", "1001", "1001"), ("k2", "bob", None), ("k3", "Cy@uni.edu", None)):
        result = fixture_result("a001-complete")  # a Canvas download (its ids) and files named by login / email
        result["submission"].update(student_id=student_id, canvas_id=canvas_id)
        write(results, key, result, assignment)
    roster = write_roster(tmp_path, "student_id,name,canvas_id,login,email\nS1,Alice Martin,1001,alice,\n"
                                    "S2,Bob Nguyen,,bob,\nS3,Cy Young,,cy,cy@uni.edu\nS4,Dee Ray,1004,dee,\n")
    assert run_cli(capsys, "gradebook", results, *flags, "--roster", roster)[0] == 0
    rows = canvas_rows(results / "canvas_grades.csv")
    assert sorted(row["SIS User ID"] for row in rows) == ["S1", "S2", "S3", "S4"]
    graded = {row["SIS User ID"]: row[assignment.title] for row in rows}
    assert all(float(graded[s]) == pytest.approx(fixture_result("a001-complete")["score"]) for s in ("S1", "S2", "S3"))
    assert graded["S4"] == ""  # never submitted: blank


def test_a_result_whose_canvas_id_is_another_roster_students_is_refused(tmp_path, flags, capsys, assignment):
    results = copy_results(tmp_path / "RESULTS", assignment, [])
    # x1's file came from Canvas user 777, whom the roster calls x2: two students, one Canvas user.
    for key, student_id, canvas_id in (("k1", "x1", "777"), ("k2", "x2", None)):
        result = fixture_result("a001-complete")
        result["submission"].update(student_id=student_id, canvas_id=canvas_id)
        write(results, key, result, assignment)
    roster = write_roster(tmp_path, "student_id,name,canvas_id\nx1,Ann,\nx2,Ann B,777\n")
    refused(*run_cli(capsys, "gradebook", results, *flags, "--roster", roster)[::2], "'x1'", "'777'", "'x2'")
    assert not (results / "canvas_grades.csv").exists()


def test_a_canvas_batch_graded_without_a_roster_goes_to_the_right_students(tmp_path, flags, capsys, assignment):
    """Graded from a Canvas download without a roster, each result's id is its Canvas user id. Bob's SIS id is
    Alice's Canvas id: the gradebook still gives each grade to its own student (by canvas_id, never by the
    coincidence of numbers)."""
    results = copy_results(tmp_path / "RESULTS", assignment, [])
    for key, canvas_id, fixture in (("alice", "5001", "a001-complete"), ("bob", "5002", "a002-partial")):
        result = fixture_result(fixture)
        result["submission"].update(student_id=canvas_id, canvas_id=canvas_id)
        write(results, key, result, assignment)
    roster = write_roster(tmp_path, "student_id,name,canvas_id\nA1,Alice,5001\n5001,Bob,5002\n")
    assert run_cli(capsys, "gradebook", results, *flags, "--roster", roster)[0] == 0
    graded = {row["SIS User ID"] or row["ID"]: row for row in canvas_rows(results / "canvas_grades.csv")}
    title = next(c for c in graded["A1"] if c.startswith("Neural networks"))
    assert float(graded["A1"][title]) == pytest.approx(fixture_result("a001-complete")["score"])
    assert float(graded["5001"][title]) == pytest.approx(fixture_result("a002-partial")["score"])
    assert (graded["A1"]["ID"], graded["5001"]["ID"]) == ("5001", "5002")


@pytest.mark.parametrize("verb", ["gradebook", "feedback", "similarity"])
def test_out_onto_a_file_or_under_one_is_one_line_and_writes_nothing(results, flags, capsys, tmp_path, verb):
    blocker = tmp_path / "taken.csv"
    blocker.write_text("someone's file\n")
    before = files(tmp_path)
    extra = flags if verb != "similarity" else []
    for out in (blocker, blocker / "grades"):
        refused(*run_cli(capsys, verb, results, "-o", out, *extra)[::2], str(blocker), "not a folder")
    assert files(tmp_path) == before


def test_nothing_is_half_written_when_one_export_cannot_be(results, flags, capsys, tmp_path):
    out = tmp_path / "grades"
    out.mkdir()
    (out / "gradescope").write_text("a file where the gradescope/ folder goes\n")
    refused(*run_cli(capsys, "gradebook", results, *flags, "-o", out)[::2], "gradescope")
    assert [p.name for p in out.iterdir()] == ["gradescope"] and not (results / POLICY_FILE).exists()


# --- 10. pages and commands say what is final -----------------------------------------------------

def test_a_missing_model_is_a_final_zero_with_its_reason(results, capsys, flags):
    assert run_cli(capsys, "feedback", results, *flags)[0] == 0
    page = (results / "feedback" / "a002-partial.html").read_text()
    row = page.split("<td>lstm_accuracy</td>")[1].split("</tr>")[0]
    assert "0 points, final" in row and "the model is missing" in row
    assert 'badge not_assessed' not in page and ">not assessed<" not in page


def test_a_late_penalty_shows_the_policy_and_how_late(results, flags, capsys):
    assert run_cli(capsys, "gradebook", results, *flags, *LATE_POLICY)[0] == 0
    assert run_cli(capsys, "feedback", results, *flags)[0] == 0
    page = (results / "feedback" / "a004-late.html").read_text()
    assert "2 started days late (deadline 2026-12-01 23:59:00 " in page
    assert "late policy: 10% of the points per started day late, at most 50%" in page
    gradescope = json.loads((results / "gradescope" / "a004-late" / "results.json").read_text())["output"]
    assert "2 started days late" in gradescope and "at most 50%" in gradescope  # the same words in every output


def test_no_grader_path_reaches_a_students_text(results, flags, capsys, assignment):
    result = fixture_result("a002-partial")
    venv_file = f"{sys.prefix}/lib/python3.11/site-packages/keras/src/utils/__init__.py"
    job_file = "/tmp/autograder-job-k3x9/ipc/kernel-1.json"
    evalue = f"cannot import name 'np_utils' from 'keras.utils' ({venv_file})"
    result["execution"]["cells"][6]["error"] = {"ename": "ImportError", "traceback": [], "evalue": evalue}
    result["questions"][4]["checks"][0]["message"] = f"Your model could not be read from {job_file}."
    write(results, "a002-partial", result, assignment)
    assert run_cli(capsys, "feedback", results, *flags)[0] == 0
    page = (results / "feedback" / "a002-partial.html").read_text()
    assert "(…/site-packages/keras/src/utils/__init__.py)" in page  # the library's part stays
    assert "read from …." in page
    for grader_path in (sys.prefix, os.path.realpath(sys.prefix), str(Path(__file__).parents[1]), "autograder-job-"):
        assert grader_path not in page, grader_path


def test_the_instructor_page_lists_roster_students_who_never_submitted(results, flags, capsys, tmp_path):
    roster = write_roster(tmp_path, "student_id,name\nA001,Ada Lovelace\nA002,Grace Hopper\nA006,Edsger Dijkstra\n")
    assert run_cli(capsys, "gradebook", results, *flags, "--roster", roster)[0] == 0
    assert run_cli(capsys, "feedback", results, *flags)[0] == 0
    section = (results / "feedback" / "index.html").read_text().split("Roster students who never submitted")[1]
    section = section.split("<h2>")[0]
    assert "A006" in section and "Edsger Dijkstra" in section and "A001" not in section


def test_the_demo_writes_the_similarity_report_and_links_it(results, repo, assignment):
    pages = demo.write_reports(results, assignment, repo / "examples" / "roster.csv")
    assert (results / "similarity" / "index.html").is_file() and (results / "gradebook.csv").is_file()
    index = [p for p in pages if p.name == "index.html"][0].read_text()
    assert 'href="../similarity/index.html"' in index


def test_mnist_dir_after_the_verb(results, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("AUTOGRADER_MNIST_DIR", raising=False)
    assert run_cli(capsys, "show", results, "--mnist-dir", tmp_path)[0] == 0
    assert os.environ["AUTOGRADER_MNIST_DIR"] == str(tmp_path)


def test_an_unknown_option_after_a_verb_prints_that_verbs_usage(results, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["gradebook", str(results), "--colour", "red"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("usage: autograder gradebook") and "--late-policy" in err
    assert "unrecognized arguments: --colour red" in err


def test_version_names_the_grader_and_the_assignment_bundle(capsys, assignment, repo, monkeypatch):
    monkeypatch.chdir(repo)
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and re.match(r"autograder \d+\.\d+\.\d+\n", out)
    assert (f"assignment {assignment.name}: evidence key {assignment.evidence_key().sha256[:16]}, "
            f"scoring key {assignment.scoring_key().sha256[:16]}") in out


@pytest.mark.parametrize("verb", ["grade-one", "grade", "gradebook", "feedback", "demo", "similarity", "calibrate",
                                  "gradescope"])
def test_every_verb_that_writes_takes_o(verb, capsys):
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    assert re.search(r"-o (\w+), --out \1", capsys.readouterr().out), verb
