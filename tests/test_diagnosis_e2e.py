"""Real notebooks break: each known failure is diagnosed in the result and on the feedback page, and the
questions the failure does not touch are still scored (issue: grade what ran).

The two trained notebooks' tests read their results only: each is graded once and its evidence stored
(tests/variant_evidence.py, ``graded_fixture``; its key holds the diagnoses' code too), then re-scored by
today's scoring code while the key is current. The timeout is executed every time."""
from __future__ import annotations

import dataclasses

import nbformat
import pytest

import notebooks
import variant_evidence as evidence
from autograder.output.feedback import write_feedback
from autograder.output.gradebook import write_gradebook
from autograder.pipeline.grade_one import grade_one
from autograder.run.output_cap import render_terminal
from autograder.score.lost_models import REVIEW_REASONS

pytestmark = pytest.mark.slow

#: (cell source, diagnosis code it must get)
BROKEN_CELLS = [
    ("from keras.utils import np_utils", "keras3_np_utils"),
    ("mlp_model.predict_classes(x_test[:5])", "keras3_predict_classes"),
    ("opt = keras.optimizers.Adam(lr=0.01)", "keras3_lr_argument"),
    ("from google.colab import drive\ndrive.mount('/content/drive')", "colab_drive_mount"),
    ("!pip install opencv-python", "shell_pip_install"),
    ("import cv2", "missing_package_cv2"),
    ("import gdown\ngdown.download('https://example.org/mnist.zip', 'mnist.zip')", "no_network_gdown"),
    ("import pandas as pd\nextra = pd.read_csv('my_extra_digits.csv')", "missing_file"),
]
NOISY_TRAINING = ("noisy = keras.Sequential([keras.Input((28, 28)), layers.Flatten(), layers.Dense(10, activation='softmax')])\n"
                  "noisy.compile('adam', 'sparse_categorical_crossentropy')\n"
                  "noisy.fit(x_train, y_train, epochs=2, batch_size=8, verbose=1)")

#: A CNN trained in the notebook that the prediction sandbox refuses to load (a Python lambda inside):
#: it earns nothing, so the instructor must see it in the review list.
UNLOADABLE_CNN = ("lenet = keras.Sequential([keras.Input((28, 28, 1)), layers.Lambda(lambda x: x * 1.0),\n"
                  "    layers.Conv2D(4, 3, activation='relu'), layers.MaxPooling2D(), layers.Flatten(),\n"
                  "    layers.Dense(10, activation='softmax')])\n"
                  "lenet.compile('adam', 'sparse_categorical_crossentropy')\n"
                  "lenet.fit(x_train[:500, ..., None], y_train[:500], epochs=1, verbose=0)")


def broken_notebook() -> nbformat.NotebookNode:
    """The MLP homework, then every broken cell and a noisy training."""
    return notebooks.homework(("mlp",), extra_cells=[source for source, _ in BROKEN_CELLS] + [NOISY_TRAINING])


def lost_model_notebook() -> nbformat.NotebookNode:
    return notebooks.homework((), extra_cells=[UNLOADABLE_CNN], report=False)


@pytest.fixture(scope="module")
def broken(small_assignment, tmp_path_factory):
    """:func:`broken_notebook` graded into a RESULTS folder (its stored evidence re-scored while current)."""
    out = tmp_path_factory.mktemp("broken")
    result = evidence.graded_fixture("diagnosis_broken", small_assignment, out / "results" / "broken.json",
                                     out / "artifacts" / "broken")
    return result, out, evidence.fixture_notebook("diagnosis_broken")


def test_each_known_failure_gets_its_own_diagnosis(broken):
    result, _, nb = broken
    first_extra = next(i for i, cell in enumerate(nb.cells) if cell.source == BROKEN_CELLS[0][0])
    by_cell = {d["cell"]: d for d in result["diagnoses"]}
    for offset, (_, code) in enumerate(BROKEN_CELLS):
        assert by_cell[first_extra + offset]["code"] == code, (offset, by_cell.get(first_extra + offset))
    pip = by_cell[first_extra + 4]
    assert pip["cell_status"] == "ok" and "no network" in pip["advice"]
    import_cv2 = first_extra + 5
    jupyter_number = sum(cell.cell_type == "code" for cell in nb.cells[:import_cv2 + 1])  # In [n]
    assert pip["advice"].endswith(f"follows from it is in cell {jupyter_number}.")  # the import that then fails
    assert by_cell[import_cv2]["caused_by"] == first_extra + 4 and by_cell[import_cv2]["cell_number"] == jupyter_number
    assert result["reason"] == "cell_errors"


def test_questions_the_failures_do_not_touch_are_still_scored(broken):
    result, _, _ = broken
    scores = {q["id"]: q["score"] for q in result["questions"]}
    assert scores["q1"] == 10 and scores["q2"] >= 8
    assert scores["q8"] > 0  # the report is static markdown: graded whatever the cells did


def test_a_trained_model_that_earned_nothing_is_listed_for_review(small_assignment, tmp_path):
    nb = evidence.fixture_notebook("diagnosis_lost_model")
    out = tmp_path
    result = evidence.graded_fixture("diagnosis_lost_model", small_assignment, out / "results" / "lost.json",
                                     out / "artifacts" / "lost")
    lenet_cell = next(i for i, cell in enumerate(nb.cells) if cell.source == UNLOADABLE_CNN)
    jupyter_number = sum(cell.cell_type == "code" for cell in nb.cells[:lenet_cell + 1])

    models = [item for item in result["review"] if item["kind"] == "model"]
    assert models == [{"kind": "model", "arch": "cnn", "code": "prediction_failed", "variable": "lenet",
                       "cell_number": jupyter_number, "text": REVIEW_REASONS["prediction_failed"]}]
    # scoring lists the CNN's checks it could not judge beside it: one list, each entry with its kind
    assert {item["kind"] for item in result["review"]} <= {"model", "needs_review"}
    assert result["reason"] == "models_to_review"  # nothing else went wrong: no longer a plain "graded"
    write_gradebook(out, out / "gradebook.csv", small_assignment)
    assert "cnn: prediction_failed" in (out / "gradebook.csv").read_text()
    write_feedback(out, out / "feedback", small_assignment)
    summary = (out / "feedback" / "index.html").read_text()
    assert "CNN <code>lenet</code>" in summary and "<code>prediction_failed</code>" in summary


def test_progress_bars_are_kept_out_of_the_stored_notebook(broken):
    _, out, _ = broken
    executed = out / "artifacts" / "broken" / "executed.ipynb"
    text = executed.read_text()
    assert executed.stat().st_size < 200_000
    noisy = next(c for c in nbformat.reads(text, as_version=4).cells if c.source == NOISY_TRAINING)
    stream = "".join(o.get("text", "") for o in noisy.outputs if o.output_type == "stream")
    assert "Epoch 2/2" in stream and "\r" not in stream and "\b" not in stream


def test_feedback_page_shows_the_diagnoses(broken, small_assignment):
    _, out, _ = broken
    pages = write_feedback(out, out / "feedback", small_assignment)
    page = (out / "feedback" / "broken.html").read_text()
    assert "OpenCV" in page and "pip install" in page
    assert len(pages) == 2


def test_timeout_is_diagnosed_with_the_cell_and_budget(small_assignment, tmp_path):
    # One thread: the busy loop uses one, and the limits count CPU seconds per thread (3 s, not 6 s, of work).
    quick = dataclasses.replace(small_assignment, execution=dataclasses.replace(
        small_assignment.execution, cell_timeout_seconds=3, wall_budget_seconds=30, wall_backstop_factor=20,
        threads=1))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("while True:\n    pass")])
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, path)
    result = grade_one(path, quick, tmp_path / "graded")
    timeout = next(d for d in result["diagnoses"] if d["code"] == "cell_timeout")
    assert timeout["cell"] == 1 and "3" in timeout["advice"]
    busy = result["execution"]["cells"][1]
    assert busy["status"] == "timeout" and busy["limit"] == "cell_cpu" and busy["cpu_seconds"] >= 3
    assert result["execution"]["stopped_by"] == "cell_cpu" and result["execution"]["stopped"] is None


def test_render_terminal_keeps_what_jupyter_shows():
    assert render_terminal("1/3 [=>..]\r2/3 [==>.]\r3/3 [===] done\nnext") == "3/3 [===] done\nnext"
    assert render_terminal("abc\b\bX") == "aX"
    assert render_terminal("plain\ntext\n") == "plain\ntext\n"

