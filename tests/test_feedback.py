"""Feedback pages: what students may see, escaping, plots, the summary, and a real browser render."""
from __future__ import annotations

import base64
import io
import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from markupsafe import escape
from matplotlib import image as mpimg

from autograder.cli import main
from autograder.output.feedback import write_feedback
from autograder.run.inside import contract
from autograder.score.artifacts import (EVIDENCE_ARRAYS, ConfusionCandidate, Evidence, ModelEvidence,
                                        save_evidence)

from result_fixtures import FIXTURES, copy_results, fixture_result, write
CHROMIUM = "/usr/bin/chromium"
WINDOW = (1200, 1600)


def confusion_matrix() -> np.ndarray:
    matrix = np.diag([970, 1120, 1000, 990, 960, 880, 940, 1010, 950, 990]).astype(np.int64)
    matrix[4, 9], matrix[9, 4] = 12, 15
    return matrix


def save_evidence_archive(results: Path, key: str, candidates: list[np.ndarray]) -> Path:
    """The grader's stored evidence, written by its own writer (``save_evidence``): the confusion candidates
    and an MLP's predictions."""
    models = {arch: ModelEvidence(arch) for arch in contract.ARCHITECTURES}
    models["mlp"] = ModelEvidence("mlp", found=True, predictions={"eval": np.zeros(50, dtype=np.int64)})
    confusion = [ConfusionCandidate(f"cm{i}", "content", matrix) for i, matrix in enumerate(candidates)]
    save_evidence(Evidence(models=models, data={}, validation={}, confusion=confusion, best_model=None, fits=[],
                           problems=[]), results / "artifacts" / key)
    return results / "artifacts" / key / EVIDENCE_ARRAYS


def tamper(archive: Path, matrix: np.ndarray, replacement: np.ndarray) -> None:
    """Replace a stored confusion matrix in the archive with something the grader never writes."""
    with np.load(archive, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    name = next(name for name, array in arrays.items() if array.shape == matrix.shape and (array == matrix).all())
    np.savez_compressed(archive, **{**arrays, name: replacement})


@pytest.fixture(scope="module")
def pages(tmp_path_factory, assignment) -> dict[str, Path]:
    """Feedback for the fixture results: valid matrices for a001 and a004, invalid ones for a002 and a005."""
    results = copy_results(tmp_path_factory.mktemp("RESULTS"), assignment)
    save_evidence_archive(results, "a001-complete", [confusion_matrix()])
    tamper(save_evidence_archive(results, "a002-partial", [confusion_matrix()]), confusion_matrix(),
           confusion_matrix().astype(float))  # wrong dtype
    tamper(save_evidence_archive(results, "a005-injection", [confusion_matrix()]), confusion_matrix(),
           np.array([{"a": 1}], dtype=object))  # a pickle
    save_evidence_archive(results, "a004-late", [np.eye(3, dtype=np.int64), confusion_matrix()][::-1])
    paths = write_feedback(results, results / "feedback", assignment)
    return {path.stem: path for path in paths}


def html(pages: dict[str, Path], key: str) -> str:
    return pages[key].read_text(encoding="utf-8")


def embedded_pngs(text: str) -> list[np.ndarray]:
    return [mpimg.imread(io.BytesIO(base64.b64decode(data)), format="png")
            for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


def test_one_page_per_result_and_an_index(pages):
    assert set(pages) == {p.stem for p in FIXTURES.glob("*.json")} | {"index"}


def test_student_text_is_escaped_stripped_and_truncated(pages):
    page = html(pages, "a005-injection")
    assert "<script" not in page.lower()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;Mallory O&#39;Brien &amp; Co" in page
    assert "<a href='javascript" not in page and "&lt;a href=&#39;javascript:alert(1)&#39;&gt;" in page
    assert "\x1b" not in page and "[31m" not in page and "[1;31m" not in page
    assert "x_train holds" in page and "not floats" in page
    assert "END-OF-LONG-MESSAGE" not in page and "[truncated]" in page
    assert "default-src 'none'" in page  # the CSP that forbids scripts even if escaping failed


def test_student_pages_never_show_ta_detail(pages):
    for key, path in pages.items():
        text = path.read_text(encoding="utf-8")
        assert "TA-ONLY" not in text, key
        assert "threshold_full" not in text and "found_by" not in text, key


def test_student_page_shows_scores_messages_and_diagnoses(pages):
    result = json.loads((FIXTURES / "a002-partial.json").read_text())
    page = html(pages, "a002-partial")
    assert f'{result["score"]:g} / {result["max_score"]:g}' in page
    for question in result["questions"]:
        assert question["title"] in page
        for check in question["checks"]:
            assert check["message"] in page
    diagnosis = result["diagnoses"][0]
    assert diagnosis["title"] in page and diagnosis["advice"] in page
    code_cells = [c["index"] for c in result["execution"]["cells"]]
    assert f'(cell [{code_cells.index(diagnosis["cell"]) + 1}])' in page  # as Jupyter numbers code cells


def test_confusion_heatmap_only_from_a_valid_matrix(pages):
    assert "Confusion matrix heatmap" in html(pages, "a001-complete")
    assert "Confusion matrix heatmap" not in html(pages, "a002-partial")  # float matrix refused
    assert "Confusion matrix heatmap" not in html(pages, "a005-injection")  # pickle never loaded
    assert "Confusion matrix heatmap" in html(pages, "a004-late")  # the candidate the grader matched
    assert "Confusion matrix heatmap" not in html(pages, "a003-rejected")  # no artifacts at all


def test_plots_are_real_images(pages):
    complete = embedded_pngs(html(pages, "a001-complete"))
    assert len(complete) == 2  # accuracy chart and heatmap
    for picture in complete:
        assert picture.shape[0] > 200 and picture.shape[1] > 200
        assert picture.std() > 0.05  # not a blank canvas
    assert "Accuracy per architecture" in html(pages, "a002-partial")
    assert embedded_pngs(html(pages, "a003-rejected")) == []  # rejected: nothing measured


def test_student_page_says_which_variable_was_used_and_how_it_was_fed(pages):
    page = html(pages, "a001-complete")
    assert "How the grader read your notebook" in page
    assert "<td>x_train</td><td><code>X_tr</code></td><td>by its content</td>" in page
    assert "Validation: validation_split in fit()." in page and "Confusion matrix: <code>cm</code>" in page
    assert "<td>CNN</td><td><code>cnn_model</code></td><td>by its name</td><td>28x28x1 images, pixels divided by 255</td>" in page
    assert "784-pixel vectors, pixels divided by 255" in page and "28 time steps of 28 pixels" in page
    assert page.index("<td>x_train</td>") < page.index("<td>y_train</td>") < page.index("<td>x_test</td>")
    partial = html(pages, "a002-partial")
    assert "32x32x1 images, zero-padded to 32x32, raw pixel values 0-255" in partial


def test_student_page_states_integrity_findings_in_plain_words_flagged_first(pages):
    page = html(pages, "a002-partial")
    section = page.split("Is each model a trained network of its kind?")[1].split("<h2>")[0]
    assert "clearly better on test images (99.9%)" in section
    assert section.index("badge failed") < section.index("badge needs_review") < section.index("badge passed")
    assert "allowed_gap" not in page  # evidence numbers are for the instructor
    mlp_rows = html(pages, "a001-complete").split("Is each model")[1]
    assert mlp_rows.index("Trained in the notebook") < mlp_rows.index("A model of its own")  # rule order


def test_summary_lists_flagged_students_and_checks_for_review_with_evidence(pages):
    section = html(pages, "index").split("For review")[1].split("<h2>")[0]
    assert 'href="a002-partial.html"' in section and "CNN: Not trained on the test set" in section
    assert "eval_accuracy=0.999, train_sample_accuracy=0.97, allowed_gap=0.021" in section
    assert "q4 simple_rnn_accuracy" in section and "needs review" in section
    assert 'href="a001-complete.html"' not in section  # nothing to review there


def test_summary_page(pages):
    results = {p.stem: json.loads(p.read_text()) for p in FIXTURES.glob("*.json")}
    page = html(pages, "index")
    for key in results:
        assert f'href="{key}.html"' in page
    for code, count in Counter(r["reason"] for r in results.values() if r["reason"]).items():
        assert re.search(rf"<code>{code}</code></td><td class=\"num\">{count}</td>", page), code
    slowest = max(results, key=lambda k: (results[k]["execution"] or {}).get("seconds", 0))
    slow_table = page.split("Slowest submissions")[1]
    assert slow_table.index(f'href="{slowest}.html"') < min(
        slow_table.index(f'href="{k}.html"') for k in results if k != slowest)
    assert len(embedded_pngs(page)) == 1  # the histogram
    assert "<script" not in page.lower() and "TA-ONLY" not in page


def test_cli_defaults_to_results_feedback(tmp_path, repo, assignment):
    copy_results(tmp_path, assignment, ["a001-complete"])
    assert main(["feedback", str(tmp_path), "--assignment", str(repo / "assignments/mnist")]) == 0
    assert sorted(p.name for p in (tmp_path / "feedback").iterdir()) == ["a001-complete.html", "index.html"]


@pytest.mark.parametrize("key", ["a001-complete", "a005-injection", "index"])
def test_pages_render_in_headless_chromium(pages, key, tmp_path):
    screenshot = tmp_path / f"{key}.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={screenshot}",
         f"--window-size={WINDOW[0]},{WINDOW[1]}", pages[key].as_uri()],
        check=True, capture_output=True, timeout=180)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    picture = mpimg.imread(screenshot)
    assert picture.shape[:2] == (WINDOW[1], WINDOW[0])
    colours = np.unique((picture[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50  # text, badges, tables and plots, not a blank page
    top = picture[: WINDOW[1] // 4, :, :3]
    assert (top.mean(axis=2) < 0.3).mean() > 0.002  # dark heading text near the top


@pytest.fixture(scope="module")
def old_notebook_pages(tmp_path_factory, assignment) -> dict[str, str]:
    """One result of the real-failure-shapes notebook of test_diagnose, without a roster name, and
    with two trained models that earned nothing."""
    from test_diagnose import LIMITS, old_notebook

    from autograder.score.diagnose.matcher import diagnose
    from autograder.score.lost_models import REVIEW_REASONS

    results = tmp_path_factory.mktemp("OLD")
    (results / "results").mkdir()
    result = json.loads((FIXTURES / "a001-complete.json").read_text())
    cells = old_notebook()
    result["submission"].update(student_id="s-4711", student_name=None)
    result["execution"]["cells"] = cells
    result["diagnoses"] = diagnose(cells, None, LIMITS)
    result["reason"] = "cell_errors"
    result["review"] = [{"kind": "model", "arch": "cnn", "code": "model_lost", "variable": "lenet",
                         "cell_number": 11, "text": REVIEW_REASONS["model_lost"]},
                        {"kind": "model", "arch": "gru", "code": "prediction_failed", "variable": "gru_model",
                         "cell_number": None, "text": REVIEW_REASONS["prediction_failed"]}]
    write(results, "old", result, assignment)
    paths = write_feedback(results, results / "feedback", assignment)
    return {path.stem: path.read_text(encoding="utf-8") for path in paths}


def test_one_card_per_root_cause_with_the_rest_one_click_away(old_notebook_pages):
    page = old_notebook_pages["old"]
    cards = page.split('<div class="card">')[1:]
    diagnosis_cards = [card for card in cards if "<strong>" in card and "(cell " in card.split("</strong>")[1][:40]]

    assert len(diagnosis_cards) == 11  # the roots of test_diagnose's notebook, nothing more
    lenet = next(card for card in diagnosis_cards if "(cell [9])" in card)
    assert "<details>" in lenet and "and 3 later cells that depend on it</summary>" in lenet
    assert "Cell 10: lenet is used before it is defined. It uses <code>lenet</code>, which cell 9" in lenet
    assert "Cell 25: AveragePooling2D needs a pool_size in Keras 3. The same problem as in cell 9." in lenet
    np_utils = next(card for card in diagnosis_cards if "(cell [3])" in card)
    assert "and 1 later cell that depends on it</summary>" in np_utils
    assert "`" not in page.split("<h2>What went wrong")[1].split("<h2>")[0]  # backticks became <code>
    assert "<code>keras.utils.to_categorical</code>" in np_utils


def test_a_page_without_a_roster_name_names_the_student_id(old_notebook_pages):
    assert "Feedback for s-4711</p>" in old_notebook_pages["old"]


def test_each_question_message_is_shown_once(old_notebook_pages):
    result = json.loads((FIXTURES / "a001-complete.json").read_text())
    page = old_notebook_pages["old"]
    for question in result["questions"]:
        for check in question["checks"]:
            if check["message"] and "`" not in check["message"]:
                assert page.count(str(escape(check["message"]))) == 1, check["message"]


def test_the_summary_lists_every_trained_model_that_earned_nothing(old_notebook_pages):
    review = old_notebook_pages["index"].split("were not assessed: review</h2>")[1].split("<h2>")[0]
    rows = review.split("<tr>")[2:]
    assert len(rows) == 2
    assert "s-4711" in rows[0] and "CNN <code>lenet</code>" in rows[0] and "(trained in cell 11)" in rows[0]
    assert "<code>model_lost</code>" in rows[0]
    assert "GRU <code>gru_model</code>" in rows[1] and "<code>prediction_failed</code>" in rows[1]


def test_class_statistics_leave_out_the_results_the_grader_failed_on(tmp_path, assignment):
    """A grader error has no grade: it is not a 0 in the mean, the histogram or the per-architecture table,
    and the page says how many were left out."""
    from autograder.pipeline.grade_one import grader_error

    results = copy_results(tmp_path, assignment, ["a001-complete", "a003-rejected"])
    failed = grader_error(fixture_result("a004-late"), assignment, "scoring",
                          "Traceback (most recent call last):\nRuntimeError: boom", [], log=lambda line: None)
    write(tmp_path, "a004-late", failed, assignment)
    page = Path(write_feedback(results, tmp_path / "feedback", assignment)[-1]).read_text(encoding="utf-8")
    assert "3 submissions, mean score 48.5%" in page  # (97 + 0) / 2: the rejected one counts, the error does not
    assert "1 submission the grader failed on (no grade) left out" in page and "the statistics count 2" in page
    mlp = next(row for row in page.split("Accuracy per architecture")[1].split("<tr>") if "<td>MLP</td>" in row)
    assert re.findall(r'<td class="num">(\d+)</td>', mlp) == ["1", "1", "0", "0", "1"]  # models, full/partial/zero, none
    students = page.split("All students")[1]
    row = next(r for r in students.split("<tr>") if 'href="a004-late.html"' in r)
    assert "<span class=\"badge error\">error</span>" in row and "(0%)" not in row
