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
from matplotlib import image as mpimg

from autograder.assignment import load_assignment
from autograder.cli import main
from autograder.feedback import write_feedback

from result_fixtures import FIXTURES, copy_results
CHROMIUM = "/usr/bin/chromium"
WINDOW = (1200, 1600)


@pytest.fixture(scope="module")
def assignment(repo):
    return load_assignment(repo / "assignments" / "mnist")


def confusion_matrix() -> np.ndarray:
    matrix = np.diag([970, 1120, 1000, 990, 960, 880, 940, 1010, 950, 990]).astype(np.int64)
    matrix[4, 9], matrix[9, 4] = 12, 15
    return matrix


def save_artifact(results: Path, key: str, array: np.ndarray) -> None:
    (results / "artifacts" / key).mkdir(parents=True, exist_ok=True)
    np.save(results / "artifacts" / key / "confusion_student.npy", array, allow_pickle=True)


@pytest.fixture(scope="module")
def pages(tmp_path_factory, assignment) -> dict[str, Path]:
    """Feedback for the fixture results: valid matrices for a001 and a004, invalid ones for a002 and a005."""
    results = copy_results(tmp_path_factory.mktemp("RESULTS"), assignment)
    save_artifact(results, "a001-complete", confusion_matrix())
    save_artifact(results, "a002-partial", confusion_matrix().astype(float))  # wrong dtype
    save_artifact(results, "a005-injection", np.array([{"a": 1}], dtype=object))  # a pickle
    # The grader's own evidence archive (autograder.artifacts.save_evidence) also holds the matrix.
    (results / "artifacts" / "a004-late").mkdir(parents=True)
    np.savez_compressed(results / "artifacts" / "a004-late" / "predictions.npz", confusion=confusion_matrix(),
                        **{"mlp.eval": np.zeros(50, dtype=np.int8)})
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
    assert "Confusion matrix heatmap" in html(pages, "a004-late")  # from predictions.npz
    assert "Confusion matrix heatmap" not in html(pages, "a003-rejected")  # no artifacts at all


def test_plots_are_real_images(pages):
    complete = embedded_pngs(html(pages, "a001-complete"))
    assert len(complete) == 2  # accuracy chart and heatmap
    for picture in complete:
        assert picture.shape[0] > 200 and picture.shape[1] > 200
        assert picture.std() > 0.05  # not a blank canvas
    assert "Accuracy per architecture" in html(pages, "a002-partial")
    assert embedded_pngs(html(pages, "a003-rejected")) == []  # rejected: nothing measured


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
