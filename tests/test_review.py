"""Trained models that earned nothing: each gets a reason code and lands in the instructor's review."""
from __future__ import annotations

import copy

import pytest

from autograder.results import check_result
from autograder.score.lost_models import REVIEW_REASONS, lost_models, mark_lost_models, trained_in_notebook
from exports import MODELS as TEMPLATE_NAMES
from result_fixtures import fixture_result
CELLS = [  # code cells of a notebook that trains an MLP and a CNN under names of its own
    ("import keras\nfrom keras import layers", "ok"),
    ("mlp_model = keras.Sequential([layers.Flatten(), layers.Dense(64), layers.Dense(10)])\n"
     "mlp_model.compile('adam', 'sparse_categorical_crossentropy')", "ok"),
    ("mlp_model.fit(x_train, y_train, epochs=1)", "ok"),
    ("def build():\n    return keras.Sequential([layers.Conv2D(8, 3), layers.MaxPooling2D(), layers.Flatten(),\n"
     "                              layers.Dense(10)])\nlenet = build()\nlenet.compile('adam', 'mse')", "ok"),
    ("history = lenet.fit(x_train[..., None], y_train, epochs=1)", "ok"),
    ("lstm = keras.Sequential()\nlstm.add(layers.LSTM(32))\nlstm.add(layers.Dense(10))", "ok"),
    ("lstm.fit(x_train, y_train)", "error"),  # never trained: its fit failed
]


COMPLETE = fixture_result("a001-complete")  # a real result: every model found, every check passed


def found(**entry) -> dict:
    """A models-block entry of a model the export found: the real result's, with the fields given."""
    return {**COMPLETE["models"]["mlp"], **entry}


def checks_of(graded: dict, arch: str) -> list[dict]:
    """The architecture's two checks (architecture, accuracy) in a result."""
    return [check for question in graded["questions"] for check in question["checks"]
            if check["name"] in (f"{arch}_architecture", f"{arch}_accuracy")]


def result(**models) -> dict:
    """The real result of a notebook that ran ``CELLS``, with only ``models`` (arch -> (entry, architecture
    points)) found; every other model not found and its checks at zero."""
    graded = copy.deepcopy(COMPLETE)
    graded.update(reason=None, message="Graded.", review=[], integrity={})
    for arch in TEMPLATE_NAMES:
        entry, score = models.get(arch, (None, 0.0))
        graded["models"][arch] = found(**entry) if entry is not None else {
            **COMPLETE["models"][arch], "found": False, "variable": None, "found_by": None, "error": None,
            "training": {}}
        architecture, accuracy = checks_of(graded, arch)
        architecture["score"], accuracy["score"] = score, 0.0
        if entry is not None:
            graded["integrity"][arch] = COMPLETE["integrity"][arch]
    graded["execution"]["stopped"] = None
    graded["execution"]["cells"] = [{**COMPLETE["execution"]["cells"][0], "index": 2 * i, "source": source,
                                     "status": status} for i, (source, status) in enumerate(CELLS)]
    check_result(graded)  # still a result the grader could have written
    return graded


def test_which_models_the_notebook_trained_comes_from_the_cells_that_ran():
    trained = trained_in_notebook(result()["execution"]["cells"], {}, TEMPLATE_NAMES)

    assert trained == {"mlp": ("mlp_model", 3), "cnn": ("lenet", 5)}  # the LSTM's fit failed


def test_a_trained_model_the_grader_never_found_is_lost():
    graded = result(mlp=({"variable": "mlp_model", "error": None}, 8.0))

    assert lost_models(graded, TEMPLATE_NAMES) == [
        {"kind": "model", "arch": "cnn", "code": "model_lost", "variable": "lenet", "cell_number": 5,
         "text": REVIEW_REASONS["model_lost"]}]


@pytest.mark.parametrize("entry, status, integrity, code", [
    ({"variable": "lenet", "error": "the model could not be saved: TypeError"}, "passed", {}, "model_not_saved"),
    ({"variable": "lenet", "error": "the saved model could not be loaded or run: killed"}, "passed", {}, "prediction_failed"),
    ({"variable": "lenet", "error": None}, "needs_review", {}, "not_assessed"),
    ({"variable": "lenet", "error": None}, "failed", {"cnn": {"trained": {"passed": True},
                                                              "distinct": {"passed": False}}}, "integrity_flagged"),
    ({"variable": "lenet", "error": None}, "failed", {}, "scored_zero"),
])
def test_each_way_a_found_model_earns_nothing_has_its_own_code(entry, status, integrity, code):
    graded = result(mlp=({"variable": "mlp_model", "error": None}, 8.0), cnn=(entry, 0.0))
    for check in checks_of(graded, "cnn"):
        check["status"] = status
    graded["integrity"] = integrity

    assert [(item["arch"], item["code"]) for item in lost_models(graded, TEMPLATE_NAMES)] == [("cnn", code)]


def test_a_model_an_integrity_rule_flagged_is_listed_whatever_its_architecture_earned():
    graded = result(mlp=({"variable": "mlp_model", "error": None}, 8.0), cnn=({"variable": "lenet", "error": None}, 3.0))
    graded["integrity"] = {"mlp": {"trained": {"passed": True}, "no_test_images_trained_on": {"passed": False}},
                           "cnn": {"trained": {"passed": True}}}

    assert [(item["arch"], item["code"]) for item in lost_models(graded, TEMPLATE_NAMES)] == [("mlp", "integrity_flagged")]


def test_a_model_that_earned_points_but_was_not_fully_assessed_is_listed_too():
    graded = result(mlp=({"variable": "mlp_model", "error": None}, 8.0), cnn=({"variable": "lenet", "error": None}, 3.0))
    checks_of(graded, "mlp")[1]["status"] = "needs_review"

    assert [(item["arch"], item["code"]) for item in lost_models(graded, TEMPLATE_NAMES)] == [("mlp", "not_assessed")]


def test_a_stopped_run_explains_a_lost_model_and_earned_points_are_never_listed():
    graded = result(mlp=({"variable": "mlp_model", "error": None}, 8.0))
    graded["execution"]["stopped"] = "wall_budget"

    assert [(item["arch"], item["code"]) for item in lost_models(graded, TEMPLATE_NAMES)] == [("cnn", "run_stopped")]


def test_a_model_the_student_never_built_is_not_for_review():
    graded = result(mlp=({"variable": "mlp_model", "error": None}, 8.0), cnn=({"variable": "lenet", "error": None}, 3.0))

    assert lost_models(graded, TEMPLATE_NAMES) == []  # no GRU, no SimpleRNN; the LSTM never trained


def test_a_result_with_nothing_else_wrong_gets_the_review_reason_and_loses_it_on_a_clean_regrade():
    graded = result(mlp=({"variable": "mlp_model", "error": None}, 8.0))
    mark_lost_models(graded, TEMPLATE_NAMES)
    assert graded["reason"] == "models_to_review" and graded["review"][0]["code"] == "model_lost"

    fixed = copy.deepcopy(graded)
    fixed["models"]["cnn"] = found(variable="lenet", error=None)
    checks_of(fixed, "cnn")[1]["score"] = 10.0
    mark_lost_models(fixed, TEMPLATE_NAMES)
    assert (fixed["reason"], fixed["message"], fixed["review"]) == (None, "Graded.", [])

    failing = result(mlp=({"variable": "mlp_model", "error": None}, 8.0))
    failing["reason"] = "cell_errors"
    mark_lost_models(failing, TEMPLATE_NAMES)
    assert failing["reason"] == "cell_errors" and failing["review"]  # the worse reason stays
