"""A term rehearsal (issue 22): one course run from ``new-term`` to every export, as an instructor and TAs run
it, with the steps that used to turn a whole class's grades wrong with exit 0.

The course: a Canvas download in which Alice uploaded her homework and a scratch notebook (with the larger
file id), Bob's SIS id is Alice's Canvas id, Carol is late, Dave is late within an extension, Eve never
submits; then Bob resubmits. The TA grades, writes the gradebook under a late policy with an override and
the extension, then the rubric changes (regrade), then a new seed (regrade refused; grade runs the notebooks
again), and two of the same notebooks go through Gradescope's ``run_autograder``. Every exported number
(gradebook, otter, Canvas, Gradescope, student page) is checked against values worked out here by hand
from the graded question scores: the policy's arithmetic is the test's own, never the grader's.

Small notebooks keep it to a few minutes: Alice's tiny MLP is the one model of the term (the one number
the seed decides); everyone else's notebook holds the data and a report only, read without Keras, so that
it never imports TensorFlow (which costs more than the rest of such a run).
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

import notebooks
from autograder.author import term
from autograder.output.store import open_results
from test_gradescope import run_autograder, unpacked
from test_ta_outputs import one_line_refusal, run_cli as cli

pytestmark = pytest.mark.slow
TITLE = "Neural networks on MNIST: MLP, CNN, SimpleRNN, LSTM, GRU (4711)"
ROSTER = """student_id,name,canvas_id
A1,Alice Martin,5001
5001,Bob Chen,5002
C3,Carol Diaz,5003
D4,Dave Evans,5004
E5,Eve Fox,5005
"""


def report_only(author: str, *, report: bool = True):
    """The data prepared as the homework asks, and a report (unless ``report=False``); no model (nothing to
    train, and no TensorFlow to import)."""
    return notebooks.homework((), extra_cells=[f"# {author}'s notebook"], report=report, keras=False)


def canvas_download(folder: Path, files: dict[str, object]) -> Path:
    folder.mkdir(parents=True)
    for name, notebook in files.items():
        notebooks.write(notebook, folder / name)
    return folder


def by_student(results: Path) -> dict[str, list[dict]]:
    """Results per roster student id, oldest first (by graded_at)."""
    found: dict[str, list[dict]] = {}
    for key, result in sorted(open_results(results).load().items(), key=lambda kv: kv[1]["grader"]["graded_at"]):
        found.setdefault(result["submission"]["student_id"], []).append({**result, "key": key})
    return found


def question(result: dict, qid: str) -> float:
    return next(q["score"] for q in result["questions"] if q["id"] == qid)


def raw(result: dict) -> float:
    return round(sum(q["score"] for q in result["questions"]), 4)


def expected_totals(latest: dict[str, dict], override_q7: float) -> dict[str, dict[str, float]]:
    """By hand: Alice's q7 is overridden; Carol is one started day late at 10 %/day (a Canvas LATE mark);
    Dave's late penalty is set to 0 (he submitted within his extension); Bob and Alice were on time."""
    alice, bob, carol, dave = (latest[s] for s in ("A1", "5001", "C3", "D4"))
    alice_raw = round(raw(alice) - question(alice, "q7") + override_q7, 4)
    carol_penalty = round(raw(carol) * 0.10, 2)
    return {"A1": {"raw": alice_raw, "penalty": 0.0, "total": alice_raw},
            "5001": {"raw": raw(bob), "penalty": 0.0, "total": raw(bob)},
            "C3": {"raw": raw(carol), "penalty": carol_penalty, "total": round(raw(carol) - carol_penalty, 4)},
            "D4": {"raw": raw(dave), "penalty": 0.0, "total": raw(dave)}}


def check_exports(results: Path, expected: dict[str, dict[str, float]], latest: dict[str, dict],
                  max_score: float) -> None:
    book = pd.read_csv(results / "gradebook.csv", dtype={"student_id": str}).set_index("student_id")
    assert sorted(book.index) == ["5001", "A1", "C3", "D4", "E5"]
    for sid, want in expected.items():
        row = book.loc[sid]
        assert (row["raw_total"], row["late_penalty"], row["total"]) == pytest.approx(
            (want["raw"], want["penalty"], want["total"])), sid
        assert row["percent"] == pytest.approx(round(100 * want["total"] / max_score, 2)), sid
    assert book.loc["E5", "status"] == "missing" and pd.isna(book.loc["E5", "total"])  # blank, not 0
    assert book.loc["A1", "q7"] == 4.0 and "wrong model" in book.loc["A1", "override_note"]

    with (results / "canvas_grades.csv").open(newline="") as fh:
        canvas = list(csv.DictReader(fh))[1:]
    by_canvas = {row["ID"]: row for row in canvas}
    assert len(canvas) == len(by_canvas) == 5  # each student once
    for sid, canvas_id in (("A1", "5001"), ("5001", "5002"), ("C3", "5003"), ("D4", "5004")):
        assert by_canvas[canvas_id]["SIS User ID"] == sid
        assert float(by_canvas[canvas_id][TITLE]) == pytest.approx(expected[sid]["total"]), sid
    assert by_canvas["5005"][TITLE] == ""

    otter = pd.read_csv(results / "final_grades.csv").iloc[1:]  # after otter's points-possible row
    for sid, want in expected.items():
        row = otter[otter["file"] == latest[sid]["submission"]["submitted_name"]].iloc[0]
        assert float(row["total_points_earned"]) == pytest.approx(want["raw"]), sid
        assert float(row["late_penalty"]) == pytest.approx(want["penalty"]), sid

    for sid, want in expected.items():
        key = latest[sid]["key"]
        gradescope = json.loads((results / "gradescope" / key / "results.json").read_text())
        assert gradescope["score"] == pytest.approx(want["total"]), sid
        page = (results / "feedback" / f"{key}.html").read_text()
        assert float(re.search(r"Your grade: ([\d.]+) /", page).group(1)) == pytest.approx(want["total"]), sid


def test_a_term_from_new_term_to_every_export(small_assignment, tmp_path, monkeypatch, capsys):
    # --- before the term: a private seed. Its thresholds are measured from the stored reference models
    # (tested in test_ta_outputs); here the test-sized calibration is kept, so tiny models earn points.
    course = tmp_path / "course" / "mnist"
    shutil.copytree(small_assignment.root, course, ignore=shutil.ignore_patterns("term"))
    calibration = (course / "calibration.json").read_text()
    monkeypatch.setattr(term, "measure_reference_models", lambda root, models, out: out.write_text(calibration))
    assert cli(capsys, "new-term", "--assignment", course)[0] == 0
    first_seed = (course / "term" / "evaluation_seed.txt").read_text()

    # --- after the deadline: the Canvas download, graded with the roster.
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    results = tmp_path / "RESULTS"
    download = canvas_download(tmp_path / "canvas-1", {
        "martinalice_5001_100_mnist_homework.ipynb": notebooks.homework(("mlp",)),
        "martinalice_5001_101_scratch.ipynb": report_only("Alice's scratch"),
        "chenbob_5002_200_mnist_homework.ipynb": report_only("Bob", report=False),
        "diazcarol_LATE_5003_300_mnist_homework.ipynb": report_only("Carol"),
        "evansdave_LATE_5004_400_mnist_homework.ipynb": report_only("Dave"),
    })
    code, out, err = cli(capsys, "grade", download, "-o", results, "--roster", roster, "--assignment", course)
    assert code == 0, err
    assert "ignored martinalice_5001_101_scratch.ipynb" in out  # the intake decision, printed at the end
    graded = by_student(results)
    assert sorted(graded) == ["5001", "A1", "C3", "D4"]  # Bob's SIS id is Alice's Canvas id: no mix-up
    assert graded["A1"][0]["submission"]["submitted_name"] == "martinalice_5001_100_mnist_homework.ipynb"
    assert graded["5001"][0]["submission"]["submitted_name"] == "chenbob_5002_200_mnist_homework.ipynb"
    assert question(graded["A1"][0], "q2") > 0  # her MLP was found and measured

    # --- Bob resubmits (a second download holds his new notebook, now with its report): his latest
    # submission counts.
    resubmission = canvas_download(tmp_path / "canvas-2", {
        "chenbob_5002_201_mnist_homework.ipynb": report_only("Bob, again")})
    assert cli(capsys, "grade", resubmission, "-o", results, "--roster", roster, "--assignment", course)[0] == 0
    graded = by_student(results)
    assert len(graded["5001"]) == 2 and raw(graded["5001"][1]) > raw(graded["5001"][0])

    # --- the gradebook under the term's policy: deadline, late policy, an override, an extension.
    overrides = tmp_path / "overrides.csv"
    overrides.write_text("student_id,question,score,reason\nA1,q7,4,matrix of the wrong model\n"
                         "D4,late_penalty,0,submitted within his extension\n")
    extensions = tmp_path / "extensions.csv"
    extensions.write_text("student_id,due\nD4,2026-12-08\n")
    policy = ["--roster", roster, "--overrides", overrides, "--extensions", extensions, "--due", "2026-12-01",
              "--timezone", "UTC", "--late-policy", "10%/day,max=50%", "--canvas-assignment-id", "4711"]
    code, out, err = cli(capsys, "gradebook", results, "--assignment", course, *policy)
    assert code == 0, err
    assert "2026-12-01 23:59:59" in out  # what --due was read as: the end of that day
    assert cli(capsys, "feedback", results, "--assignment", course)[0] == 0  # the recorded policy, no flags
    latest = {sid: found[-1] for sid, found in by_student(results).items()}
    check_exports(results, expected_totals(latest, 4.0), latest, 100.0)

    # --- the rubric changes (preprocessing is worth 12): regrade re-scores, old reports are removed, and
    # the recorded policy grades the new scores.
    toml = course / "assignment.toml"
    toml.write_text(toml.read_text().replace('checks = [{ test = "preprocessing", points = 10 }]',
                                             'checks = [{ test = "preprocessing", points = 12 }]'))
    code, out, err = cli(capsys, "regrade", results, "--assignment", course)
    assert code == 0, err
    assert not (results / "gradebook.csv").exists() and not (results / "feedback" / "index.html").exists()
    regraded = {sid: found[-1] for sid, found in by_student(results).items()}
    for sid, result in regraded.items():  # the new points, by hand: 12/10 of the old preprocessing score
        assert question(result, "q1") == pytest.approx(question(latest[sid], "q1") * 1.2, abs=1e-3), sid
        assert raw(result) == pytest.approx(raw(latest[sid]) + question(latest[sid], "q1") * 0.2, abs=1e-3)
    assert cli(capsys, "gradebook", results, "--assignment", course)[0] == 0
    assert cli(capsys, "feedback", results, "--assignment", course)[0] == 0
    check_exports(results, expected_totals(regraded, 4.0), regraded, 102.0)

    # --- a new seed: the stored predictions mean nothing for the new evaluation images. regrade refuses and
    # changes nothing; the reports refuse; grade runs the notebooks again.
    assert cli(capsys, "new-term", "--assignment", course, "--force")[0] == 0
    assert (course / "term" / "evaluation_seed.txt").read_text() != first_seed
    before = {p: p.read_bytes() for p in (results / "results").glob("*.json")}
    one_line_refusal(*cli(capsys, "regrade", results, "--assignment", course)[::2], "evaluation seed")
    assert {p: p.read_bytes() for p in (results / "results").glob("*.json")} == before
    one_line_refusal(*cli(capsys, "gradebook", results, "--assignment", course)[::2], "grade")
    for source in (download, resubmission):
        assert cli(capsys, "grade", source, "-o", results, "--roster", roster, "--assignment", course)[0] == 0
    rerun = {sid: found[-1] for sid, found in by_student(results).items()}
    assert all(rerun[sid]["grader"]["graded_at"] >= regraded[sid]["grader"]["graded_at"] for sid in rerun)
    assert all(rerun[sid]["assignment"]["evidence_sha256"] != regraded[sid]["assignment"]["evidence_sha256"]
               for sid in rerun)
    for sid in ("C3", "D4"):  # no model: nothing the seed decides, the same score after the new run
        assert raw(rerun[sid]) == pytest.approx(raw(regraded[sid])), sid
    assert cli(capsys, "gradebook", results, "--assignment", course)[0] == 0
    assert cli(capsys, "feedback", results, "--assignment", course)[0] == 0
    check_exports(results, expected_totals(rerun, 4.0), rerun, 102.0)

    # --- the same two notebooks through Gradescope's run_autograder: the same score for every check.
    if shutil.which("bwrap") is None or os.geteuid() != 0:
        pytest.skip("run_autograder needs root and bubblewrap, as grading here had")
    package = tmp_path / "autograder.zip"
    assert cli(capsys, "gradescope", course, "--out", package)[0] == 0
    for sid, notebook in (("A1", download / "martinalice_5001_100_mnist_homework.ipynb"),
                          ("C3", download / "diazcarol_LATE_5003_300_mnist_homework.ipynb")):
        where = Path(tempfile.mkdtemp(prefix="agx-rehearsal-", dir="/tmp"))
        where.chmod(0o755)
        try:
            root = unpacked(package, where)
            shutil.copy(notebook, root / "submission" / "mnist_homework.ipynb")
            there = run_autograder(root, os.environ["PATH"])
        finally:
            shutil.rmtree(where, ignore_errors=True)
        here = {f"{q['id']} {c['name']}": c["score"] for q in rerun[sid]["questions"] for c in q["checks"]}
        assert {f"{t['name'].split(' ', 1)[0]} {t['name'].rsplit(': ', 1)[1]}": t["score"]
                for t in there["tests"] if t["max_score"] > 0} == here, sid
        assert there["score"] == pytest.approx(raw(rerun[sid])), sid
