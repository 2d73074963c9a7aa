"""The variant corpus (issue 11): realistic student notebooks, graded through the real sandboxed pipeline, must
score what a careful human grader would give them.

The notebooks live in tests/fixtures/variants/ (rebuilt by build.py from students.py, each executed once as its
student ran it, outputs kept). ranges.toml is the rubric key: per variant, the range of the total and of each
question, with the reason, the traits it shows and the mistakes it makes. The fast tests check the key itself
(every trait of the issue covered, ranges within the rubric, sensible order, one mistake costing one
question); the slow test grades the corpus (-j 2) and checks every score against the key.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

from autograder.assignment import load_assignment
from autograder.pipeline.batch import grade_batch
from autograder.results import read_result

VARIANTS_DIR = Path(__file__).resolve().parent / "fixtures" / "variants"
KEY = tomllib.loads((VARIANTS_DIR / "ranges.toml").read_text())
VARIANTS: dict[str, dict] = KEY["variants"]
#: Variants whose miss is a known grader gap (variant -> the gap, as the issue it is tracked in says it).
KNOWN_GAPS: dict[str, str] = KEY.get("known_gaps", {})
QUESTIONS = tuple(f"q{i}" for i in range(1, 9))
SLACK = 0.01  # scores are rounded; a range's bounds are inclusive up to this
VARIANT_JOBS, VARIANT_THREADS = 2, 1  # the corpus's batch: two notebooks at once, one thread each
#: While working on a few variants: VARIANTS_ONLY=name,name grades and checks only those.
ONLY = [name for name in os.environ.get("VARIANTS_ONLY", "").split(",") if name]

sys.path.insert(0, str(VARIANTS_DIR))
import build  # noqa: E402
import students  # noqa: E402

#: The traits issue 11 asks the corpus to show, each at least once.
ISSUE_TRAITS = {
    "complete_strong", "weak", "mlp_only", "raw_pixels", "dense_called_cnn", "inflated_report", "no_report",
    "functional_model", "subclassed_model", "neutral_names", "one_hot_labels", "bullet_report", "crashing_gru",
    "trained_on_test", "logits_outputs", "keras2_imports", "X_train", "x_valid", "cm", "conf_mat",
    "validation_split", "bidirectional_rnn", "stacked_rnn", "models_inside_main", "history_only",
    "flat_784_input", "lenet_32x32", "results_and_discussion_heading", "bold_pseudo_headings",
    "numbered_headings", "own_words_headings", "results_only_a_table", "honest_printed_numbers",
    # issue 23 (lane report3)
    "foreign_language_report", "thousands_separators", "html_table", "conv1d_cnn", "one_wrong_number",
}


def points(assignment) -> dict[str, float]:
    return {q.id: q.points for q in assignment.questions}


def lower_levels() -> list[tuple[str, list[str], bool]]:
    """(upper, lowers, strict) steps of the order: strong >= logits > crashing GRU > each weaker one."""
    order = KEY["order"]
    return [(order["strong"], [order["logits"]], False), (order["logits"], [order["crashing_gru"]], True),
            (order["crashing_gru"], order["weaker"], True)]


# --- the key itself ---------------------------------------------------------------------------------

def test_every_issue_trait_is_shown_by_some_variant():
    shown = {trait for variant in VARIANTS.values() for trait in variant["traits"]}
    assert ISSUE_TRAITS <= shown, sorted(ISSUE_TRAITS - shown)
    assert shown <= ISSUE_TRAITS, sorted(shown - ISSUE_TRAITS)  # no trait spelled two ways
    assert len(VARIANTS) >= 20


def test_every_variant_is_a_built_notebook_with_the_outputs_its_student_saw():
    assert set(VARIANTS) == set(students.VARIANTS)
    for name, variant in students.VARIANTS.items():
        nb = nbformat.read(VARIANTS_DIR / f"{name}.ipynb", as_version=4)
        text = "\n".join(str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
                         for cell in nb.cells for out in cell.get("outputs", []))
        printed = [arch for arch, pattern in variant.printed.items() if re.search(pattern, text, re.MULTILINE)]
        assert printed, f"{name}: no accuracy printed in its outputs"
        report = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
        assert not build.PLACEHOLDER.search(report), f"{name}: an unfilled placeholder in its report"


def test_ranges_lie_within_the_rubric(small_assignment):
    worth = points(small_assignment)
    for name, variant in VARIANTS.items():
        for qid in QUESTIONS:
            low, high = variant[qid]["range"]
            assert 0 <= low <= high <= worth[qid], (name, qid)
            assert variant[qid]["why"].strip(), (name, qid)
        low, high = variant["total"]
        assert 0 <= low <= high <= sum(worth.values()), name
        # The total's range must be reachable from the questions' ranges.
        assert sum(variant[q]["range"][0] for q in QUESTIONS) <= high + SLACK, name
        assert sum(variant[q]["range"][1] for q in QUESTIONS) >= low - SLACK, name


def test_ranges_respect_the_order_of_the_issue():
    for upper, lowers, strict in lower_levels():
        for lower in lowers:
            up, down = VARIANTS[upper]["total"], VARIANTS[lower]["total"]
            if strict:
                assert down[1] < up[0], (upper, up, lower, down)
            else:
                assert up[0] >= down[0] and up[1] >= down[1], (upper, up, lower, down)


def test_no_honest_variant_loses_points_twice_for_one_mistake(small_assignment):
    """Each mistake costs points in one question; every other question of an honest variant is at full marks
    (up to one point of judgment)."""
    worth = points(small_assignment)
    for name, variant in VARIANTS.items():
        if not variant["honest"]:
            continue
        named = [m["question"] for m in variant["mistakes"]]
        assert all(isinstance(q, str) and q in QUESTIONS for q in named), name
        for qid in set(QUESTIONS) - set(named):
            low, high = variant[qid]["range"]
            assert high == worth[qid] and low >= worth[qid] - 1, (name, qid, variant[qid])


# --- grading the corpus -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def variant_assignment(small_assignment, tmp_path_factory):
    """The small test assignment with the thresholds the key assumes and budgets for a 5-model notebook.

    Only what sets the thresholds (the calibrated minimum accuracy on the evaluation images, and the span
    from full to zero credit), the execution budgets and the thread count change; everything else stays as it is.
    """
    root = tmp_path_factory.mktemp("variants-assignment") / "mnist"
    shutil.copytree(small_assignment.root, root)
    calibration = json.loads((root / "calibration.json").read_text())
    for arch, threshold in KEY["thresholds"].items():
        figures = calibration["architectures"][arch]["eval_accuracy"]
        figures["min"] = round(threshold["full"] + small_assignment.threshold_margin, 4)
    (root / "calibration.json").write_text(json.dumps(calibration))
    spans = {round(t["full"] - t["zero"], 4) for t in KEY["thresholds"].values()}
    assert len(spans) == 1, "the key's thresholds need one span (full - zero) for all architectures"
    toml = (root / "assignment.toml").read_text()
    # One thread per notebook for the batch's two jobs: threads x jobs = the machine's two cores, the rule
    # `grade` itself picks jobs by (22 variants: 852 s instead of 986 s with two threads each).
    for key, value in {"wall_budget_seconds": "600", "cell_timeout_seconds": "420", "memory_mb": "3072",
                       "threads": str(VARIANT_THREADS), "span": str(spans.pop())}.items():
        toml, count = re.subn(rf"(?m)^{key} = \S+", f"{key} = {value}", toml)
        assert count == 1, key
    (root / "assignment.toml").write_text(toml)
    assignment = load_assignment(root)
    for arch, threshold in assignment.thresholds().items():
        assert (threshold.full, threshold.zero) == pytest.approx(
            (KEY["thresholds"][arch]["full"], KEY["thresholds"][arch]["zero"])), arch
    return assignment


@pytest.fixture(scope="module")
def graded(variant_assignment, tmp_path_factory) -> dict[str, dict]:
    """Every variant graded in one sandboxed batch of two workers: variant name -> result."""
    where = tmp_path_factory.mktemp("variants")
    submissions = where / "submissions"
    submissions.mkdir()
    for name in ONLY or VARIANTS:
        shutil.copy(VARIANTS_DIR / f"{name}.ipynb", submissions / f"{name}.ipynb")
    grade_batch(submissions, variant_assignment.root, where / "results", jobs=VARIANT_JOBS, progress=False)
    results = [read_result(path) for path in (where / "results" / "results").glob("*.json")]
    return {result["submission"]["student_id"]: result for result in results}


def score_table(graded: dict[str, dict]) -> str:
    """Markdown: each variant's expected and obtained total and question scores (misses marked **)."""
    def cell(expected: list[float], got: float | None) -> str:
        if got is None:
            return f"{expected[0]:g}-{expected[1]:g} / —"
        miss = not expected[0] - SLACK <= got <= expected[1] + SLACK
        text = f"{expected[0]:g}-{expected[1]:g} / {got:.4g}"
        return f"**{text}**" if miss else text

    lines = ["| variant | total | " + " | ".join(QUESTIONS) + " | status |",
             "|---" * (len(QUESTIONS) + 3) + "|"]
    for name, variant in VARIANTS.items():
        result = graded.get(name)
        scores = {q["id"]: q["score"] for q in result["questions"]} if result else {}
        row = [cell(variant["total"], result["score"] if result else None)]
        row += [cell(variant[q]["range"], scores.get(q)) for q in QUESTIONS]
        status = f"{result['status']} {result.get('reason') or ''}".strip() if result else "missing"
        lines.append(f"| {name} | " + " | ".join(row) + f" | {status} |")
    return "\n".join(lines)


@pytest.mark.slow
def test_every_variant_scores_what_a_careful_grader_gives(graded):
    table = score_table(graded)
    if os.environ.get("VARIANTS_TABLE"):  # where to write the table too (for the team's notes)
        Path(os.environ["VARIANTS_TABLE"]).write_text(table + "\n")
    misses, known = [], []
    for name, variant in VARIANTS.items():
        if ONLY and name not in ONLY:
            continue
        result = graded.get(name)
        if result is None:
            misses.append(f"{name}: no result")
            continue
        scores = {q["id"]: q["score"] for q in result["questions"]}
        for key, expected, got in [("total", variant["total"], result["score"]),
                                   *((q, variant[q]["range"], scores[q]) for q in QUESTIONS)]:
            if not expected[0] - SLACK <= got <= expected[1] + SLACK:
                why = variant[key]["why"] if key in variant and isinstance(variant[key], dict) else ""
                (known if name in KNOWN_GAPS else misses).append(f"{name} {key}: {got:.4g} not in {expected} ({why})")
    if known:  # grader gaps the key records (ranges.toml [known_gaps], each an open issue): shown, not hidden
        print("known gaps:\n" + "\n".join(known))
    assert not misses, "\n".join(misses) + "\n\n" + table


@pytest.mark.slow
def test_totals_keep_the_order_of_the_issue(graded):
    """A complete strong notebook >= one with logits outputs > one with a crashing GRU cell > weaker ones."""
    total = {name: result["score"] for name, result in graded.items()}
    for upper, lowers, strict in lower_levels():
        for lower in [lower for lower in lowers if not ONLY or {upper, lower} <= set(total)]:
            assert total[upper] > total[lower] if strict else total[upper] >= total[lower], \
                (upper, total[upper], lower, total[lower], score_table(graded))
