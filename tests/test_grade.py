"""grade-one end to end: a sandboxed run of small homework notebooks, scored by the hidden tests.

The five-model notebook, the MLP-only notebook and the unfilled template are read for their results only:
each is graded once and its evidence stored (tests/variant_evidence.py, ``graded_fixture``), then re-scored by
today's scoring code while the key it was produced under is current. The other notebooks here are executed
for real every time, the determinism test's twice.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

import notebooks
import variant_evidence as evidence
from autograder.pipeline.grade_one import grade_one, regrade
from autograder.results import SCHEMA_VERSION, read_result

pytestmark = pytest.mark.slow


def question(result: dict, qid: str) -> dict:
    return next(q for q in result["questions"] if q["id"] == qid)


def check(result: dict, name: str) -> dict:
    return next(c for q in result["questions"] for c in q["checks"] if c["name"] == name)


def graded(name: str, assignment, out: Path) -> dict:
    """Fixture ``name`` graded into ``out`` as ``grade_one`` lays it out (stored evidence re-scored while current)."""
    return evidence.graded_fixture(name, assignment, out / "result.json", out / "artifacts")


def full_notebook() -> nbformat.NotebookNode:
    """All five architectures, with a report that overstates the MLP's accuracy."""
    return notebooks.homework(claims={"mlp": "99.5%"}, best="cnn")


@pytest.fixture(scope="module")
def full(small_assignment, tmp_path_factory):
    """:func:`full_notebook` graded (its stored evidence re-scored while current)."""
    out = tmp_path_factory.mktemp("full")
    return graded("grade_full", small_assignment, out / "graded"), out


def test_result_schema_and_artifacts(full):
    result, out = full
    assert read_result(out / "graded" / "result.json") == result
    assert result["schema_version"] == SCHEMA_VERSION and result["status"] == "graded"
    assert result["sandboxed"] is True and result["reason"] is None
    assert result["max_score"] == 100
    assert {q["id"] for q in result["questions"]} == {f"q{i}" for i in range(1, 9)}
    for name in ("submission.ipynb", "executed.ipynb", "evidence.json", "predictions.npz"):
        assert (out / "graded" / "artifacts" / name).is_file(), name
    assert all(cell["status"] == "ok" for cell in result["execution"]["cells"])


def test_every_architecture_found_and_checked(full):
    result, _ = full
    for arch, qid in [("mlp", "q2"), ("cnn", "q3"), ("simple_rnn", "q4"), ("lstm", "q5"), ("gru", "q6")]:
        assert result["models"][arch]["found_by"] == "name"
        assert check(result, f"{arch}_architecture")["status"] == "passed", arch
    assert question(result, "q1")["status"] == "passed"
    assert result["data"]["roles"]["x_train"]["variable"] == "x_train"
    assert result["data"]["confusion"]["variable"] == "confusion"


def test_honest_models_pass_every_integrity_rule(full):
    result, _ = full
    assert set(result["integrity"]) == {"mlp", "cnn", "simple_rnn", "lstm", "gru"}
    for arch, rules in result["integrity"].items():
        assert {rule: f["passed"] for rule, f in rules.items()} == dict.fromkeys(rules, True), (arch, rules)
        assert check(result, f"{arch}_accuracy")["status"] != "needs_review", arch
    assert result["integrity"]["cnn"]["does_the_work"]["evidence"]["agreement"] < 0.95
    assert result["models"]["cnn"]["training"]["fit_steps"] > 0 and result["review"] == []


def test_accuracy_is_measured_by_the_grader_on_hidden_images(full):
    result, _ = full
    mlp = result["models"]["mlp"]
    assert 0.2 < mlp["accuracy"] < 1.0 and 0.2 < mlp["public_accuracy"] < 1.0
    acc = check(result, "mlp_accuracy")
    assert f"{mlp['accuracy']:.2%}" in acc["message"]
    expected = min(1.0, max(0.0, (mlp["accuracy"] - mlp["threshold_zero"])
                            / (mlp["threshold_full"] - mlp["threshold_zero"])))
    assert acc["score"] == pytest.approx(10 * expected, abs=1e-3)


def test_confusion_matrix_matches_the_named_models_predictions(full):
    result, _ = full
    confusion = check(result, "confusion_matrix")
    assert "closest=cnn moved=0" in confusion["detail"]
    assert confusion["score"] >= 6


def test_overstated_report_claim_loses_the_claims_points(full):
    result, _ = full
    claims = check(result, "report_claims")
    measured = result["models"]["mlp"]["public_accuracy"]
    assert claims["score"] == 0
    assert "99.5%" in claims["message"] and f"{measured:.1%}" in claims["message"]
    # The Results section's only number is false: it loses its share of the sections (a third of 10).
    sections = check(result, "report_sections")
    assert sections["score"] == pytest.approx(10 * 2 / 3, abs=1e-3) and "'Results' states accuracies" in sections["message"]


def mlp_only_notebook() -> nbformat.NotebookNode:
    return notebooks.homework(("mlp",), report=False)


def unfilled_template_notebook() -> nbformat.NotebookNode:
    """The student template as handed out."""
    return nbformat.read(Path(__file__).resolve().parents[1] / "student_template" / "mnist_homework.ipynb",
                         as_version=4)


def test_only_mlp_done_earns_preprocessing_and_mlp_only(small_assignment, tmp_path):
    result = graded("grade_mlp_only", small_assignment, tmp_path / "graded")
    earned = {q["id"] for q in result["questions"] if q["score"] > 0}
    assert earned <= {"q1", "q2", "q7"} and {"q1", "q2"} <= earned
    for qid in ("q3", "q4", "q5", "q6"):
        assert question(result, qid)["status"] == "not_assessed"
        assert "No usable" in question(result, qid)["message"]
    assert question(result, "q8")["score"] == 0


def fake_cnn_notebook() -> nbformat.NotebookNode:
    """An MLP, a "CNN" that is an MLP, and an LSTM under a name of its own."""
    fake_cnn = ('cnn_model = keras.Sequential([keras.Input((28, 28)), layers.Flatten(), '
                'layers.Dense(32, activation="relu"), layers.Dense(10, activation="softmax")])\n'
                + notebooks.FIT.format(var="cnn_model", x="x_train", epochs=1))
    renamed_lstm = notebooks.MODELS["lstm"][1].replace("lstm_model", "my_recurrent_net") + "\n" + \
        notebooks.FIT.format(var="my_recurrent_net", x="x_train", epochs=1)
    # 500 training images: what is checked is the models' kinds and that two gradings agree, not their accuracy.
    return notebooks.homework(("mlp", "cnn", "lstm"), replace={"cnn": fake_cnn, "lstm": renamed_lstm},
                              report=False, train_size=500)


@pytest.fixture(scope="module")
def fake_cnn_twice(small_assignment, tmp_path_factory) -> tuple[dict, dict]:
    """:func:`fake_cnn_notebook` graded twice, for real, from the same file."""
    out = tmp_path_factory.mktemp("fake_cnn")
    nb = notebooks.write(fake_cnn_notebook(), out / "fake_cnn.ipynb")
    return grade_one(nb, small_assignment, out / "one"), grade_one(nb, small_assignment, out / "two")


def test_cnn_that_is_secretly_an_mlp_loses_the_cnn_points(fake_cnn_twice):
    result, _ = fake_cnn_twice
    q3 = question(result, "q3")
    assert q3["score"] == 0 and "is an MLP, not a CNN" in q3["message"]
    assert result["models"]["lstm"]["variable"] == "my_recurrent_net"
    assert result["models"]["lstm"]["found_by"] in ("fit", "discovered")
    assert check(result, "lstm_architecture")["status"] == "passed"


def test_regrade_rescores_from_stored_evidence_without_running(full, small_assignment, monkeypatch):
    result, out = full
    from autograder.run import kernel_session, prediction

    monkeypatch.setattr(kernel_session, "run_notebook", lambda *a, **k: pytest.fail("regrade executed a notebook"))
    monkeypatch.setattr(prediction, "predict", lambda *a, **k: pytest.fail("regrade ran predictions"))
    again = regrade(out / "graded" / "result.json", out / "graded" / "artifacts", small_assignment)
    assert [q["score"] for q in again["questions"]] == [q["score"] for q in result["questions"]]
    assert "regraded_at" in again["grader"]


def test_malformed_notebook_is_one_rejected_result(small_assignment, tmp_path):
    bad = tmp_path / "broken.ipynb"
    bad.write_text('{"cells": [')
    result = grade_one(bad, small_assignment, tmp_path / "graded")
    assert result["status"] == "rejected" and result["reason"] == "invalid_notebook"
    assert result["score"] == 0 and len(result["questions"]) == 8
    assert json.loads((tmp_path / "graded" / "result.json").read_text())["reason"] == "invalid_notebook"


def test_unfilled_template_scores_near_zero_with_a_message_per_question(small_assignment, tmp_path):
    assert small_assignment.student_notebook == "mnist_homework.ipynb"  # the notebook the fixture grades
    result = graded("grade_unfilled_template", small_assignment, tmp_path / "graded")
    assert result["status"] == "graded"
    assert result["score"] <= 5
    for q in result["questions"]:
        assert q["message"], q["id"]


def test_same_notebook_twice_gives_the_same_scores(fake_cnn_twice):
    first, second = fake_cnn_twice
    assert first["status"] == second["status"] == "graded" and {"mlp", "lstm"} <= set(first["models"])
    assert [c["score"] for q in first["questions"] for c in q["checks"]] == \
        [c["score"] for q in second["questions"] for c in q["checks"]]
    assert first["models"] == second["models"]


def test_unsandboxed_run_is_marked_as_such(small_assignment, tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    path = tmp_path / "trivial.ipynb"
    nbformat.write(nb, path)
    result = grade_one(path, small_assignment, tmp_path / "graded", sandboxed=False)
    assert result["sandboxed"] is False and result["status"] == "graded"
    assert question(result, "q1")["status"] == "not_assessed" and "no MNIST images" in question(result, "q1")["message"]


def test_a_grader_failure_is_one_error_result_not_a_crash(small_assignment, tmp_path, monkeypatch):
    import autograder.pipeline.grade_one as grade

    def broken_phase_a(*args, **kwargs):
        raise RuntimeError("zmq: file name too long")

    monkeypatch.setattr(grade, "run_phase_a", broken_phase_a)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    path = tmp_path / "fine.ipynb"
    nbformat.write(nb, path)
    result = grade_one(path, small_assignment, tmp_path / "graded")
    assert result["status"] == "error" and result["reason"] == "grader_error"
    assert "file name too long" in result["notes"][-1] and "file name" not in result["message"]
    assert read_result(tmp_path / "graded" / "result.json")["status"] == "error"
