"""A whole class's grades never go silently wrong (issue 22, items 1, 2 and 6's regrade part).

The evidence key (what produced the stored evidence) and the scoring key (what turns it into points):
a new seed makes `regrade` refuse and `grade` execute again; a scoring change is regraded. A fault of
the grader is `status: error` / `grader_error`, never a number. After a regrade nothing stale stays.
Results are built with the grader's own writers (fixtures, save_evidence, grade_into), no notebook runs
unless a stage of the run itself is under test.
"""
from __future__ import annotations

import ast
import json
import shutil
from concurrent.futures import Future
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

import autograder.intake.notebook as intake_notebook
import autograder.pipeline.evidence as evidence_module
import autograder.run.output_cap as output_cap
import autograder.score.integrity as integrity
from autograder.assignment import (ARCHITECTURES, EVIDENCE, EVIDENCE_KEY_FILE, GRADER_ROOT, KEY_PART_WORDS, NEITHER,
                                   SCORING, grader_files, load_assignment, save_evidence_key)
from autograder.cli import main
from autograder.intake.layouts import Submission
from autograder.output.store import open_results
from autograder.pipeline import batch
from autograder.pipeline.evidence import evaluation_images
from autograder.pipeline.grade_one import grade_into, grade_one
from autograder.results import read_result
from autograder.score.artifacts import Evidence, ModelEvidence, save_evidence
from result_fixtures import FIXTURES, copy_results, fixture_result, write

ALL = sorted(p.stem for p in FIXTURES.glob("*.json"))
GRADED = [key for key in ALL if fixture_result(key)["status"] == "graded"]
SEED_WORDS = KEY_PART_WORDS["seed"]  # how a refusal names a new term's seed


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def course(tmp_path, small_assignment, repo):
    """A private copy of the test-sized assignment (and of the student template), free to edit."""
    root = tmp_path / "course" / "mnist"
    shutil.copytree(small_assignment.root, root)
    shutil.copytree(repo / "student_template", tmp_path / "course" / "student_template")
    shutil.copy(repo / "reference_solutions" / "mnist_homework.ipynb", tmp_path / "course" / "master.ipynb")
    toml = root / "assignment.toml"
    toml.write_text(toml.read_text().replace(f'"{repo}/student_template"', '"../student_template"')
                    .replace(f'"{repo}/reference_solutions/mnist_homework.ipynb"', '"../master.ipynb"'))
    return load_assignment(root)


def new_term(course) -> None:
    """What `autograder new-term` leaves: a private seed and the calibration measured on it."""
    term = course.root / "term"
    term.mkdir()
    (term / "evaluation_seed.txt").write_text("424242\n")
    shutil.copy(course.calibration_file, term / "calibration.json")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def graded_results(root: Path, course) -> Path:
    """RESULTS as `grade` leaves it, from the grader's writers: the fixture results, and for each graded one
    its stored evidence (an MLP's predictions of the evaluation images), submission and evidence key."""
    copy_results(root, course)
    images = evaluation_images(course)
    for key in GRADED:
        models = {arch: ModelEvidence(arch) for arch in ARCHITECTURES}
        models["mlp"] = ModelEvidence("mlp", found=True, variable="mlp_model", predictions={
            name: image_set.labels.astype(np.int64) for name, image_set in images.sets.items()})
        artifacts = root / "artifacts" / key
        save_evidence(Evidence(models, {}, {}, [], None, [], []), artifacts)
        nbformat.write(nbformat.v4.new_notebook(), artifacts / "submission.ipynb")
        save_evidence_key(course.evidence_key(), artifacts)
    return root


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "logs" not in p.parts}


# --- 1. two keys -----------------------------------------------------------------------------------

def test_every_grader_file_belongs_to_exactly_one_key_or_the_documented_neither_list(course):
    claimed = grader_files()
    on_disk = {p.relative_to(GRADER_ROOT).as_posix() for p in GRADER_ROOT.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert set(claimed) == on_disk  # nothing unclaimed, so nothing skipped silently
    assert set(claimed.values()) == {EVIDENCE, SCORING, NEITHER}
    evidence = {k.removeprefix("code:") for k in course.evidence_key().parts if k.startswith("code:")}
    scoring = {k.removeprefix("code:") for k in course.scoring_key().parts if k.startswith("code:")}
    assert evidence == {f for f, key in claimed.items() if key == EVIDENCE} and not evidence & scoring
    assert scoring == {f for f, key in claimed.items() if key == SCORING}
    assert {"score/lost_models.py", "score/notebook_code.py", "score/report/analysis.py", "score/report/claims.py",
            "pipeline/grade_one.py", "assignment.py"} <= scoring
    assert {"run/kernel_session.py", "run/output_cap.py", "run/prediction.py", "run/job.py", "run/sandbox/watchdog.py",
            "run/inside/export.py", "run/inside/predict.py", "data.py", "intake/notebook.py", "intake/printed.py",
            "vocabulary.py", "score/artifacts.py", "pipeline/evidence.py"} <= evidence
    assert claimed["output/gradebook.py"] == claimed["cli/regrade.py"] == NEITHER
    assert claimed["score/diagnose/matcher.py"] == claimed["score/diagnose/diagnoses.toml"] == NEITHER


#: Files in neither key that scoring code may import: the result format and its reason texts (versioned by
#: the schema), the package version, where a grader fault is logged, and the diagnoses (advice, no points).
UNKEYED_FOR_SCORING = {"results.py", "__init__.py", "output/store.py", "score/diagnose/matcher.py",
                       "score/diagnose/table.py"}


def imported_grader_files(path: Path, claimed: dict[str, str]) -> set[str]:
    """The grader's own files that the module at ``path`` imports (``import autograder.x``, ``from autograder.x import y``)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    files = set()
    for module in modules:
        if module.split(".")[0] == "autograder":
            relative = "/".join(module.split(".")[1:])
            files |= {f for f in (f"{relative}.py", f"{relative}/__init__.py".lstrip("/")) if f in claimed}
    return files


def test_code_that_scores_imports_only_keyed_code():
    """A change to what a scoring rule reads moves a key (the review list reads the cells' code: on main it
    took its reader from the diagnoses, in neither key, so a change there reached the review list unkeyed)."""
    claimed = grader_files()
    unkeyed = {(name, imported) for name, key in claimed.items() if key != NEITHER and name.endswith(".py")
               for imported in imported_grader_files(GRADER_ROOT / name, claimed)
               if claimed[imported] == NEITHER and imported not in UNKEYED_FOR_SCORING}
    assert unkeyed == set()


def test_each_input_a_score_reads_moves_exactly_its_own_key(course):
    def keys():
        fresh = load_assignment(course.root)
        return fresh.evidence_key().sha256, fresh.scoring_key().sha256

    toml, template = course.root / "assignment.toml", course.student_dir / course.student_notebook
    changes = {  # what is changed -> the key it must move (the other must not move)
        "seed": (EVIDENCE, lambda: new_term(course)),
        "execution": (EVIDENCE, lambda: edit(toml, "threads = 2", "threads = 1")),
        "evaluation": (EVIDENCE, lambda: edit(toml, "distorted_size = 2000", "distorted_size = 1500")),
        "models": (EVIDENCE, lambda: edit(toml, 'mlp = "mlp_model"', 'mlp = "mlp"')),
        "public tests": (EVIDENCE, lambda: (course.student_dir / "tests" / "q1.py").write_text("# changed\n")),
        "threshold": (SCORING, lambda: edit(toml, "span = 0.06", "span = 0.2")),
        "rubric": (SCORING, lambda: edit(toml, '"preprocessing", points = 10', '"preprocessing", points = 12')),
        "hidden test": (SCORING, lambda: (course.hidden_dir / "model_tests.py").write_text(
            (course.hidden_dir / "model_tests.py").read_text() + "\n# a fix\n")),
        "student template": (SCORING, lambda: template.write_text(template.read_text().replace("MNIST", "Mnist", 1))),
        "kernel": (EVIDENCE, lambda: edit(course.master_notebook, '"name": "python3"', '"name": "python3-gpu"')),
        "master notebook's text": (NEITHER, lambda: edit(course.master_notebook, "MNIST", "Mnist")),
        "instructor diagnoses": (NEITHER, lambda: (course.root / "diagnoses.toml").write_text("# advice only\n")),
    }
    for what, (moved, change) in changes.items():
        before = keys()
        change()
        after = keys()
        assert (before[0] != after[0], before[1] != after[1]) == (moved == EVIDENCE, moved == SCORING), what
    calibration = load_assignment(course.root).calibration_file
    before = keys()
    calibration.write_text(calibration.read_text().replace("}", ' }', 1))
    assert keys()[0] == before[0] and keys()[1] != before[1]  # the calibration scores


def test_a_new_seed_then_regrade_is_refused_naming_the_seed_and_nothing_changes(course, tmp_path, capsys):
    results = graded_results(tmp_path / "RESULTS", course)
    assert run_cli(capsys, "regrade", results, "--assignment", course.root)[0] == 0
    before = snapshot(results)
    new_term(course)  # what `autograder new-term` does
    code, out, err = run_cli(capsys, "regrade", results, "--assignment", course.root)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert SEED_WORDS in err and "autograder grade" in err
    assert snapshot(results) == before  # no result rescored against labels drawn with the new seed
    code, _, err = run_cli(capsys, "gradebook", results, "--assignment", course.root)
    assert code == 2 and SEED_WORDS in err and "autograder grade" in err
    code, out, _ = run_cli(capsys, "show", results, "--assignment", course.root)
    assert out.count("STALE (run grade)") == len(ALL)  # every result, the rejected one too


def test_grade_after_a_new_seed_executes_the_notebooks_again(course, tmp_path):
    store = batch.Store(graded_results(tmp_path / "RESULTS", course))
    key = GRADED[0]
    stored = read_result(store.result(key))
    assert batch.needs_run(store, key, stored, False, course.evidence_key()) is None
    new_term(course)
    fresh = load_assignment(course.root)
    reason = batch.needs_run(store, key, stored, False, fresh.evidence_key())
    assert SEED_WORDS in reason and KEY_PART_WORDS["calibration"] not in reason

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(nb, tmp_path / "ada.ipynb")
    submission = Submission("ada", "Ada", tmp_path / "ada.ipynb", source_name="ada.ipynb")
    result = fixture_result(key)
    result["submission"]["student_id"] = "ada"
    write(store.root, batch.submission_key(submission), result, course)
    shutil.copytree(store.artifacts(key), store.artifacts(batch.submission_key(submission)))
    executor = RecordingExecutor()
    counts = batch._grade(store, [submission], fresh, lambda: executor, sandboxed=True, progress=False)
    assert executor.submitted == ["ada.ipynb"] and counts["regraded"] == 0  # executed, not re-scored
    assert SEED_WORDS in store.log_path(batch.submission_key(submission)).read_text()


def test_a_scoring_change_is_regraded_and_recorded(course, tmp_path, capsys):
    results = graded_results(tmp_path / "RESULTS", course)
    edit(course.root / "assignment.toml", 'test = "mlp_accuracy", points = 10', 'test = "mlp_accuracy", points = 20')
    shutil.copytree(course.root.parent, tmp_path / "copy")  # regrade --assignment another folder: recorded
    copy = tmp_path / "copy" / "mnist"
    code, out, _ = run_cli(capsys, "regrade", results, "--assignment", copy)
    assert code == 0 and f"regraded {len(ALL)} results" in out
    regraded = load_assignment(copy)
    for key in ALL:
        result = read_result(results / "results" / f"{key}.json")
        assert result["max_score"] == regraded.max_score == course.max_score + 10  # the new rubric
        assert result["assignment"]["bundle_sha256"] == regraded.scoring_key().sha256
        assert result["assignment"]["root"] == str(copy.resolve())
    code, out, _ = run_cli(capsys, "show", results)  # no --assignment: the one regrade used
    assert code == 0 and "STALE" not in out


def test_reports_written_before_a_regrade_are_removed(course, tmp_path, capsys):
    results = graded_results(tmp_path / "RESULTS", course)
    assert run_cli(capsys, "gradebook", results, "--assignment", course.root)[0] == 0
    assert run_cli(capsys, "feedback", results, "--assignment", course.root, "-o", tmp_path / "pages")[0] == 0
    written = [results / "gradebook.csv", results / "canvas_grades.csv", results / "final_grades.csv",
               tmp_path / "pages" / "index.html", tmp_path / "pages" / f"{GRADED[0]}.html"]
    assert all(path.is_file() for path in written)
    edit(course.root / "assignment.toml", "span = 0.06", "span = 0.2")
    code, out, _ = run_cli(capsys, "regrade", results, "--assignment", course.root)
    assert code == 0 and "removed" in out and "autograder gradebook" in out
    assert not any(path.exists() for path in written)  # no page from before can be taken for current
    assert run_cli(capsys, "gradebook", results, "--assignment", course.root)[0] == 0


# --- 2. a fault of the grader is never a student's grade -----------------------------------------------

def fault(*args, **kwargs):
    raise ZeroDivisionError("a bug in the grader")


def check_grader_error(result: dict, out: Path, stage: str) -> None:
    assert result["status"] == "error" and result["reason"] == "grader_error" and result["score"] == 0
    assert "fix" not in result["message"].lower()
    stored = (out / "result.json").read_text()
    assert "Traceback" not in stored and f"grader error in {stage}" in stored
    log = (out / "logs" / f"{out.name}.log").read_text()
    assert "Traceback" in log and "ZeroDivisionError: a bug in the grader" in log and stage in log


@pytest.mark.parametrize("target", ["sanitize", "printed_accuracies"])
def test_an_intake_fault_is_a_grader_error_not_a_rejection(target, small_assignment, tmp_path, monkeypatch):
    monkeypatch.setattr(intake_notebook, target, fault)  # sanitizing; the printed-number extraction
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('accuracy: 0.98')")])
    nbformat.write(nb, tmp_path / "fine.ipynb")
    out = tmp_path / "graded"
    check_grader_error(grade_one(tmp_path / "fine.ipynb", small_assignment, out), out, "intake")


@pytest.mark.slow
@pytest.mark.parametrize("stage, module, name", [
    ("output capping", output_cap, "stored_size"),  # the bytes an output costs against the cap
    ("the run or reading its export", evidence_module, "load_evidence"),
    ("scoring", integrity, "assess"),
])
def test_a_fault_in_the_run_export_or_scoring_is_a_grader_error(stage, module, name, small_assignment, tmp_path,
                                                                monkeypatch):
    monkeypatch.setattr(module, name, fault)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('a')\nprint('b')")])
    nbformat.write(nb, tmp_path / "fine.ipynb")
    out = tmp_path / "graded"
    result = grade_one(tmp_path / "fine.ipynb", small_assignment, out, sandboxed=False)
    check_grader_error(result, out, stage)
    assert (result["execution"] or {}).get("stopped") != "kernel_protocol"


def test_a_hidden_tests_own_bug_makes_the_result_an_error_not_a_lower_grade(course, tmp_path, capsys):
    results = graded_results(tmp_path / "RESULTS", course)
    tests = course.hidden_dir / "model_tests.py"
    tests.write_text(tests.read_text() + "\n\ndef mlp_accuracy(models):\n    return 1 / 0\n")
    before = snapshot(results)
    code, out, _ = run_cli(capsys, "regrade", results, "--assignment", course.root)
    assert code == 1 and "the grader failed re-scoring it (GraderFault" in out
    after = snapshot(results)
    assert {k: v for k, v in after.items() if "rejected" not in k} == \
        {k: v for k, v in before.items() if "rejected" not in k}  # each result and its artifacts kept as they were
    log = (results / "logs" / f"{GRADED[0]}.log").read_text()
    assert "mlp_accuracy" in log and "ZeroDivisionError" in log


class RecordingExecutor(batch.Executor):
    """Runs nothing: records what the batch would execute."""

    def __init__(self) -> None:
        self.submitted: list[str] = []

    def submit(self, fn, *args):
        self.submitted.append(Path(args[0]).name)
        future = Future()
        future.set_result({"score": 0.0, "status": "graded", "reason": None, "seconds": 1.0})
        return future

    def completed(self, futures):
        return list(futures)


def test_a_regrade_fault_inside_grade_keeps_the_result_and_its_artifacts(course, tmp_path, monkeypatch):
    store = batch.Store(graded_results(tmp_path / "RESULTS", course))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(nb, tmp_path / "ada.ipynb")
    submission = Submission("ada", "Ada", tmp_path / "ada.ipynb", source_name="ada.ipynb")
    key = batch.submission_key(submission)
    write(store.root, key, fixture_result(GRADED[0]), course)
    shutil.copytree(store.artifacts(GRADED[0]), store.artifacts(key))
    edit(course.root / "assignment.toml", "span = 0.06", "span = 0.2")  # stale: grade re-scores it
    monkeypatch.setattr(integrity, "assess", fault)
    before = snapshot(store.root)
    executor = RecordingExecutor()
    counts = batch._grade(store, [submission], load_assignment(course.root), lambda: executor, sandboxed=True,
                          progress=False)
    assert executor.submitted == [] and counts["failed"] == 1  # never re-executed behind the TA's back
    assert snapshot(store.root) == before
    assert "ZeroDivisionError: a bug in the grader" in store.log_path(key).read_text()


def test_a_grader_error_is_blank_in_every_export_flagged_and_retried(course, tmp_path, capsys, monkeypatch):
    results = copy_results(tmp_path / "RESULTS", course)
    monkeypatch.setattr(intake_notebook, "sanitize", fault)
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "bob.ipynb")
    grade_into(tmp_path / "bob.ipynb", course, results / "results" / "bob.json", results / "artifacts" / "bob",
               student={"student_id": "B900", "student_name": "Bob"})
    assert run_cli(capsys, "gradebook", results, "--assignment", course.root)[0] == 0
    table = pd.read_csv(results / "gradebook.csv", dtype={"student_id": str}).set_index("student_id")
    assert table.loc["B900", "status"] == "error" and table.loc["B900", "reason"] == "grader_error"
    assert pd.isna(table.loc["B900", "total"]) and pd.isna(table.loc["B900", "q1"])
    canvas = pd.read_csv(results / "canvas_grades.csv", dtype=str, keep_default_na=False)
    assert canvas.loc[canvas["SIS User ID"] == "B900"].iloc[0, -1] == ""
    assert not (results / "gradescope" / "bob" / "results.json").exists()
    assert run_cli(capsys, "feedback", results, "--assignment", course.root)[0] == 0
    page = (results / "feedback" / "bob.html").read_text()
    assert "Your grade: \u2014" in page and "grader" in page
    index = (results / "feedback" / "index.html").read_text()
    assert "grader_error" in index

    store = batch.Store(results)
    submission = Submission("B900", "Bob", tmp_path / "bob.ipynb", source_name="bob.ipynb")
    shutil.copy(results / "results" / "bob.json", store.result(batch.submission_key(submission)))
    executor = RecordingExecutor()
    batch._grade(store, [submission], course, lambda: executor, sandboxed=True, progress=False, retry_failed=True)
    assert executor.submitted == ["bob.ipynb"]


def test_a_real_regrade_keeps_the_decisions_whose_evidence_did_not_change(course, tmp_path, capsys):
    """issue 26 item 4 through `autograder regrade` itself: a rubric change of q2 sends the decision on q2's
    check to a second look and keeps the one on the report's claims, which the gradebook still applies."""
    from autograder.output.workbench.decisions import adjustments
    from test_workbench import decide

    results = graded_results(tmp_path / "RESULTS", course)
    assert run_cli(capsys, "regrade", results, "--assignment", course.root)[0] == 0  # scored from the evidence
    claims, accuracy = "a001-complete~check~report_claims", "a001-complete~check~mlp_accuracy"
    decide(results, claims, "score", score=2.0, reason="the table's claims are the measured ones", who="ana")
    decide(results, accuracy, "score", score=5.0, reason="half the MLP's points", who="ana")
    edit(course.root / "assignment.toml", 'test = "mlp_accuracy", points = 10', 'test = "mlp_accuracy", points = 20')
    code, out, _ = run_cli(capsys, "regrade", results, "--assignment", course.root)
    assert code == 0 and "1 decision(s) wait for a second look" in out
    review = adjustments(results, open_results(results).load())
    assert [d.item for d in review.second_look] == [accuracy]
    assert review.overrides[["student_id", "question"]].values.tolist() == [["A001", "q8"]]
    assert run_cli(capsys, "gradebook", results, "--assignment", course.root)[0] == 0
    book = pd.read_csv(results / "gradebook.csv", dtype={"student_id": str}).set_index("student_id")
    regraded = read_result(results / "results" / "a001-complete.json")
    graded = {q["id"]: q["score"] for q in regraded["questions"]}
    claims_score = next(c["score"] for q in regraded["questions"] for c in q["checks"] if c["name"] == "report_claims")
    assert book.loc["A001", "q8"] == pytest.approx(graded["q8"] - claims_score + 2.0)
    assert book.loc["A001", "q2"] == pytest.approx(graded["q2"])  # held for a second look: not applied


def test_the_evidence_key_is_stored_beside_the_artifacts(course, tmp_path):
    results = graded_results(tmp_path / "RESULTS", course)
    stored = json.loads((results / "artifacts" / GRADED[0] / EVIDENCE_KEY_FILE).read_text())
    assert stored["sha256"] == course.evidence_key().sha256
    assert "424242" not in json.dumps(stored) and str(course.evaluation_seed()) not in json.dumps(stored)


@pytest.mark.slow
def test_a_grade_that_changes_results_removes_the_reports_written_before(course, tmp_path, capsys):
    source = tmp_path / "submissions"
    source.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), source / "ada.ipynb")
    results = tmp_path / "RESULTS"
    batch.grade_batch(source, course, results, jobs=1, sandboxed=False, progress=False)
    assert run_cli(capsys, "gradebook", results, "--assignment", course.root)[0] == 0
    counts = batch.grade_batch(source, course, results, jobs=1, sandboxed=False, progress=False)
    assert counts["skipped"] == 1 and (results / "gradebook.csv").is_file()  # nothing changed: kept
    edit(course.root / "assignment.toml", "span = 0.06", "span = 0.2")
    counts = batch.grade_batch(source, load_assignment(course.root), results, jobs=1, sandboxed=False,
                               progress=False)
    assert counts["regraded"] == 1 and not (results / "gradebook.csv").exists()
