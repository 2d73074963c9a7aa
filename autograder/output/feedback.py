"""Feedback pages: one self-contained HTML page per student, and one summary page for instructors.

Pipeline: load results -> a student-safe view of each result -> plots (matplotlib, PNG as data: URIs)
-> Jinja2 templates (autoescape on) -> ``<out>/<key>.html`` and ``<out>/index.html``.

What a student page may show is decided here, field by field, in :func:`student_view`: scores,
the grade after late penalty and instructor overrides (the same computation as the gradebook, under the
grading policy ``autograder gradebook`` recorded in RESULTS, so the page and the Canvas import agree),
the late policy and how late the submission was, student-facing messages, the failing
cells numbered as Jupyter numbers them (``[n]``, code cells from the top) with the failing line
quoted, diagnoses and what to do next. TA-only ``detail`` never reaches the template. Every piece
of text is passed through :func:`autograder.student_text.plain_text` (ANSI codes and control characters
removed, length capped) and then HTML-escaped by the template; a Content-Security-Policy forbids
scripts on the page as a second line of defence.
"""
from __future__ import annotations

import base64
import io
import math
import os
import re
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape
from matplotlib.figure import Figure  # no pyplot: no global figure state; Figure renders with Agg

from autograder.assignment import ARCHITECTURE_TITLES, ARCHITECTURES, Assignment
from autograder.output.gradebook import build_submissions, lateness_text, with_review
from autograder.output.intake_record import read_decisions
from autograder.output.policy import GradingPolicy, read_policy
from autograder.output.rule_titles import RULE_TITLES
from autograder.output.store import Store, check_writable, open_results, require_current
from autograder.results import REASONS, atomic_write_text
from autograder.run.inside import contract
from autograder.score.accuracy import is_confusion_matrix
from autograder.score.artifacts import EVIDENCE_ARRAYS, FOUND_BY_WORDS
from autograder.score.integrity import RULES
from autograder.score.notebook_code import jupyter_numbers
from autograder.student_text import plain_text, strip_ansi

TEMPLATES = Path(__file__).with_name("templates")
SLOWEST_SHOWN = 10

_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True)


def code_spans(text: str) -> Markup:
    """Plain text whose `backtick` spans show as code. The text is escaped first, so the only markup
    on the page is the <code> added here; unbalanced backticks are shown as they are."""
    parts = str(escape(text)).split("`")
    if len(parts) % 2 == 0:
        return escape(text)
    return Markup("".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts)))


_env.filters["code_spans"] = code_spans


def points(value: float | None) -> str:
    """A score as pages show it; no grade (the grader failed on it, or no submission) is a dash, never 0."""
    return "\u2014" if value is None or math.isnan(value) else f"{value:.4g}"


_env.filters["points"] = points


# --- plots ----------------------------------------------------------------------------------------

def png_data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def confusion_plot(matrix: np.ndarray) -> str:
    figure = Figure(figsize=(4.6, 4.1))
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046)
    threshold = matrix.max() / 2
    for (row, col), count in np.ndenumerate(matrix):
        axes.text(col, row, str(count), ha="center", va="center", fontsize=7,
                  color="white" if count > threshold else "black")
    axes.set(xticks=range(contract.CLASSES), yticks=range(contract.CLASSES), xlabel="predicted label",
             ylabel="true label", title="Your confusion matrix (test set)")
    return png_data_uri(figure)


def accuracy_plot(models: dict[str, Any]) -> str | None:
    """Measured accuracy per architecture, with the full-credit and zero-credit thresholds."""
    archs = [a for a in ARCHITECTURES if (models.get(a) or {}).get("accuracy") is not None]
    if not archs:
        return None
    figure = Figure(figsize=(5.6, 3.8))
    axes = figure.subplots()
    for x, arch in enumerate(ARCHITECTURES):
        if arch not in archs:
            axes.text(x, 0, "no model", ha="center", va="bottom", fontsize=8, color="#c62828",
                      transform=axes.get_xaxis_transform())
            continue
        model = models[arch]
        accuracy, full, zero = model["accuracy"], model.get("threshold_full"), model.get("threshold_zero")
        colour = ("#2e7d32" if full is None or accuracy >= full else
                  "#c62828" if zero is not None and accuracy <= zero else "#ef6c00")
        axes.bar(x, 100 * accuracy, color=colour, width=0.6)
        axes.text(x, 100 * accuracy + 0.5, f"{100 * accuracy:.1f}%", ha="center", fontsize=8)
        if full is not None:
            axes.hlines(100 * full, x - 0.4, x + 0.4, colors="black", linewidth=2,
                        label="full credit" if arch == archs[0] else None)
        if zero is not None:
            axes.hlines(100 * zero, x - 0.4, x + 0.4, colors="grey", linestyles="dashed",
                        label="zero credit" if arch == archs[0] else None)
    lowest = min([models[a]["accuracy"] for a in archs]
                 + [models[a]["threshold_zero"] for a in archs if models[a].get("threshold_zero") is not None])
    axes.set(xticks=range(len(ARCHITECTURES)), xticklabels=[ARCHITECTURE_TITLES[a] for a in ARCHITECTURES],
             xlim=(-0.6, len(ARCHITECTURES) - 0.4),
             ylabel="accuracy (%)", ylim=(max(0, 100 * lowest - 5), 101),
             title="Accuracy on the evaluation images vs. thresholds")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    return png_data_uri(figure)


def histogram_plot(percents: list[float]) -> str:
    figure = Figure(figsize=(6.4, 3.2))
    axes = figure.subplots()
    axes.hist(percents, bins=np.linspace(0, 100, 21), color="#1565c0", edgecolor="white")
    axes.set(xlabel="score (%)", ylabel="submissions", title="Score distribution")
    return png_data_uri(figure)


def load_confusion(artifacts_dir: Path, result: dict[str, Any]) -> np.ndarray | None:
    """The student's confusion matrix the grader matched (``data.confusion.index`` of the result), read from
    the stored evidence; None when there is none or it is not a valid 10x10 count matrix."""
    chosen = ((result.get("data") or {}).get("confusion") or {}).get("index")
    archive = artifacts_dir / EVIDENCE_ARRAYS
    if not isinstance(chosen, int) or not archive.is_file():
        return None
    try:
        with np.load(archive, allow_pickle=False) as arrays:
            key = f"confusion.{chosen}"
            if key not in arrays.files:
                return None
            matrix = arrays[key]
    except (ValueError, OSError, zipfile.BadZipFile):
        return None
    return matrix.astype(np.int64) if is_confusion_matrix(matrix) else None


# --- how the grader read the notebook, in words ----------------------------------------------------

#: The scalings of ``contract.KNOWN_SCALINGS``, in words.
SCALING_WORDS = {"raw": "raw pixel values 0-255", "unit": "pixels divided by 255",
                 "symmetric": "pixels scaled to [-1, 1]"}


def fed_description(arch: str, fed: dict[str, Any]) -> str:
    """How the grader fed a model, e.g. "28x28x1 images, pixels divided by 255"."""
    shape = [d for d in fed.get("shape") or [] if isinstance(d, int)]
    side, recurrent = contract.MNIST_SIDE, arch in contract.RECURRENT_LAYER
    shape_text = (f"{contract.MNIST_PIXELS}-pixel vectors" if shape == [contract.MNIST_PIXELS] else
                  f"{side} time steps of {side} pixels" if shape == [side, side] and recurrent else
                  "x".join(map(str, shape)) + " images" if shape else "its input shape")
    if fed.get("pad"):
        shape_text += ", zero-padded to 32x32"
    scale, offset = fed.get("scale"), fed.get("offset")
    if isinstance(scale, (int, float)) and isinstance(offset, (int, float)):
        how = SCALING_WORDS.get(contract.scaling_name(scale, offset),
                                f"pixels x {scale:.4g} {'+' if offset >= 0 else '-'} {abs(offset):.4g}")
        return f"{shape_text}, {how}"
    return shape_text


def reading_view(result: dict[str, Any]) -> dict[str, Any]:
    """Which variable the grader used for each role and model, and how it fed each model."""
    data = result.get("data") or {}
    found_roles = data.get("roles") or {}
    roles = [{"role": role, "variable": plain_text(probe.get("variable"), 200),
              "found": FOUND_BY_WORDS.get(probe.get("found_by"), "found"),
              "holds": plain_text(f"{probe.get('dtype', '?')} {probe.get('shape', '')}", 200)}
             for role in contract.DATA_ROLES if isinstance(probe := found_roles.get(role), dict)]
    validation = data.get("validation") or {}
    confusion = data.get("confusion") or {}
    models = []
    for arch in ARCHITECTURES:
        model = (result.get("models") or {}).get(arch) or {}
        if not model.get("found", model.get("variable") is not None):
            continue
        models.append({"title": ARCHITECTURE_TITLES[arch],
                       "variable": plain_text(model.get("variable") or model.get("class_name") or "(unnamed)", 200),
                       "found": FOUND_BY_WORDS.get(model.get("found_by"), "found"),
                       "fed": plain_text(fed_description(arch, model.get("fed") or {}), 200) if model.get("fed") else
                       "not run by the grader" if model.get("error") else "as it was saved"})
    return {"roles": roles, "models": models,
            "validation": plain_text({"split": "validation_split in fit()", "data": "validation_data in fit()",
                                      "arrays": "separate validation arrays"}.get(validation.get("kind"), "none found")),
            "confusion": plain_text(confusion.get("variable"), 200) if confusion else None}


def integrity_view(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per model, each integrity rule in plain words; flagged and unmeasured rules first."""
    rows = []
    for arch in ARCHITECTURES:
        rules = (result.get("integrity") or {}).get(arch) or {}
        for rule in [r for r in RULES if r in rules]:  # the result's JSON keeps keys sorted: restore rule order
            finding = rules[rule]
            passed = finding.get("passed") if isinstance(finding, dict) else None
            rows.append({"title": ARCHITECTURE_TITLES[arch], "rule": RULE_TITLES.get(rule, plain_text(rule, 60)),
                         "status": "passed" if passed is True else "failed" if passed is False else "needs_review",
                         "message": plain_text((finding or {}).get("message"))})
    order = {"failed": 0, "needs_review": 1, "passed": 2}
    return sorted(rows, key=lambda row: order[row["status"]])


def flagged_rows(key: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Instructor view: every failed integrity rule and every check that needs a person, with its evidence."""
    rows = []
    for arch, rules in (result.get("integrity") or {}).items():
        for rule, finding in (rules or {}).items():
            if isinstance(finding, dict) and finding.get("passed") is False:
                evidence = ", ".join(f"{k}={v}" for k, v in (finding.get("evidence") or {}).items())
                rows.append({"what": f"{ARCHITECTURE_TITLES.get(arch, arch)}: {RULE_TITLES.get(rule, rule)}",
                             "evidence": plain_text(evidence, 400), "kind": "flagged"})
    for item in result.get("review") or []:
        if item.get("kind") in ("needs_review", "grader_error"):  # a check (other review entries have their own table)
            rows.append({"what": plain_text(f"{item.get('question')} {item.get('check')}", 200),
                         "evidence": plain_text(item.get("reason"), 400),
                         "kind": "needs review" if item["kind"] == "needs_review" else "grader error"})
    return [{"key": key, "href": page_name(key), **student_row(result), **row} for row in rows]


# --- cells as the student sees them ---------------------------------------------------------------

_ARROW_LINE = re.compile(r"^\s*-+>\s*\d+\s(.*)$")


def failing_line(error: Any) -> str | None:
    """The line of the student's own cell where the error was raised, from the kernel's traceback."""
    if not isinstance(error, dict):
        return None
    frames = [strip_ansi(str(frame)) for frame in error.get("traceback") or []]
    own = [frame for frame in frames if frame.lstrip().startswith("Cell In[")]
    for frame in reversed(own):
        for line in frame.splitlines():
            match = _ARROW_LINE.match(line)
            if match:
                return match.group(1).strip()
    return None


def error_text(error: dict[str, Any] | None) -> str:
    """A cell's error record (``execution.cells[].error``) in one line."""
    return "" if not error else f"{error.get('ename') or 'Error'}: {error.get('evalue') or ''}".strip()


def failed_cells(result: dict[str, Any]) -> list[dict[str, Any]]:
    numbers = jupyter_numbers((result.get("execution") or {}).get("cells") or [])
    return [{"number": numbers.get(cell.get("index")),
             "status": plain_text(cell.get("status"), 20),
             "error": plain_text(error_text(cell.get("error")), 500),
             "line": plain_text(failing_line(cell.get("error")), 300) or None}
            for cell in (result.get("execution") or {}).get("cells") or []
            if cell.get("status") in ("error", "timeout")]


def next_steps(result: dict[str, Any], failed: list[dict[str, Any]], grade: dict[str, Any],
               assignment: Assignment) -> list[str]:
    """What the student can do now, most useful first."""
    steps = []
    status, stopped = result.get("status"), (result.get("execution") or {}).get("stopped")
    if status == "rejected":
        steps.append("Your file could not be graded as submitted: fix what the message above says and "
                     "submit the notebook again (one .ipynb, saved from Jupyter).")
    if status == "error":
        steps.append("The grader itself failed on your notebook; your instructor has been told and will "
                     "grade it again. You do not need to do anything.")
    if failed:
        first = failed[0]["number"]
        steps.append(f"Start with cell [{first}]: later failures often follow from it. Fix it, then run "
                     "Kernel > Restart & Run All and check that every cell runs from top to bottom.")
    if stopped == "wall_budget":
        minutes = assignment.execution.wall_budget_seconds / 60
        steps.append(f"Your notebook ran out of time: the whole notebook must run in {minutes:g} minutes "
                     "(train for fewer epochs or use a smaller model).")
    elif stopped == "memory":
        steps.append(f"Your notebook used more than {assignment.execution.memory_mb} MB of memory: use "
                     "smaller batches and do not keep copies of the data set.")
    if status == "graded" and grade["graded"] < grade["max_score"]:
        steps.append("Run grader.check_all() in your notebook to see the public checks, then compare with "
                     "the questions below that lost points.")
    if not steps:
        steps.append("Nothing to fix: well done.")
    steps.append("If you think a score is wrong, reply to your instructor with this page.")
    return steps


def grade_block(result: dict[str, Any], row: pd.Series | None, assignment: Assignment,
                policy: GradingPolicy = GradingPolicy()) -> dict[str, Any]:
    """The graded score and what the gradebook makes of it (late penalty with the policy and how late,
    overrides, final grade)."""
    graded = math.nan if result.get("status") == "error" else float(result.get("score") or 0.0)  # not graded
    max_score = float(result.get("max_score") or assignment.max_score)
    if row is None:
        return {"graded": graded, "max_score": max_score, "late_penalty": 0.0, "override_note": "",
                "adjusted": graded, "final": graded, "lateness": ""}
    return {"graded": graded, "max_score": max_score,
            "late_penalty": float(row["late_penalty"] or 0.0),
            "override_note": plain_text(row["override_note"], 1000),
            "adjusted": float(row["raw_total"]), "final": float(row["total"]),
            "lateness": lateness_text(row, policy)}


#: How a check's or question's status reads on the student page: (badge class, words). A check with
#: nothing to grade (no model, a rejected file) is a final 0, not a pending one.
STATUS_LABELS = {"passed": ("passed", "passed"), "partial": ("partial", "partial"), "failed": ("failed", "failed"),
                 "not_assessed": ("final_zero", "0 points, final"),
                 "needs_review": ("needs_review", "pending: a person will review it"),
                 "grader_error": ("needs_review", "pending: your instructor will review it")}


def status_label(status: Any) -> dict[str, str]:
    css, words = STATUS_LABELS.get(str(status), ("failed", plain_text(status, 40).replace("_", " ")))
    return {"status": css, "label": words}


# --- views: exactly what each page may show -------------------------------------------------------

def student_view(key: str, result: dict[str, Any], artifacts_dir: Path,
                 assignment: Assignment, row: pd.Series | None = None,
                 policy: GradingPolicy = GradingPolicy()) -> dict[str, Any]:
    submission = result.get("submission") or {}
    reason = result.get("reason")
    confusion = load_confusion(artifacts_dir, result)
    numbers = jupyter_numbers((result.get("execution") or {}).get("cells") or [])
    failed = failed_cells(result)
    grade = grade_block(result, row, assignment, policy)
    return {
        "grade": grade,
        "failed_cells": failed,
        "next_steps": next_steps(result, failed, grade, assignment),
        "key": key,
        "assignment_title": plain_text(assignment.title or assignment.name, 200),
        "student_name": plain_text(submission.get("student_name"), 200),
        "student_id": plain_text(submission.get("student_id"), 100),
        "status": result.get("status") or "error",
        "message": plain_text(result.get("message") or REASONS.get(reason or "", "")),
        "score": float(result.get("score") or 0.0),
        "max_score": float(result.get("max_score") or assignment.max_score),
        "questions": [{
            "id": plain_text(q.get("id"), 40),
            "title": plain_text(q.get("title"), 200),
            "score": float(q.get("score") or 0.0),
            "max_score": float(q.get("max_score") or 0.0),
            **status_label(q.get("status")),
            "message": plain_text(q.get("message")),
            "checks": [{
                "name": plain_text(c.get("name"), 100),
                "score": float(c.get("score") or 0.0),
                "max_score": float(c.get("max_score") or 0.0),
                **status_label(c.get("status") or check_status(c)),
                "message": plain_text(c.get("message")),
            } for c in q.get("checks") or []],
        } for q in result.get("questions") or []],
        "diagnoses": diagnosis_cards(result),
        "reading": reading_view(result),
        "integrity": integrity_view(result),
        "confusion_png": confusion_plot(confusion) if confusion is not None else None,
        "accuracy_png": accuracy_plot(result.get("models") or {}),
    }


def diagnosis_cards(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One card per root cause; the failures that follow from it go with it, shown one click away.
    Cells are numbered as Jupyter numbers them (``In [n]``), also for results stored before
    diagnoses carried ``cell_number``."""
    diagnoses = [d for d in result.get("diagnoses") or [] if isinstance(d, dict)]
    numbers = jupyter_numbers(((result.get("execution") or {}).get("cells")) or [])

    def number(d: dict[str, Any]) -> int | None:
        n = d.get("cell_number") if isinstance(d.get("cell_number"), int) else numbers.get(d.get("cell"))
        return n if isinstance(n, int) else None

    return [{
        "title": plain_text(d.get("title"), 300),
        "advice": plain_text(d.get("advice")),
        "cell": number(d),
        "dependents": [{"cell": number(x), "title": plain_text(x.get("title"), 300),
                        "because": plain_text(x.get("because"))}
                       for x in diagnoses if x.get("caused_by") is not None and x.get("cell") in (d.get("dependents") or [])],
    } for d in diagnoses if d.get("caused_by") is None]


def check_status(check: dict[str, Any]) -> str:
    """For results written before checks carried their own status."""
    return "passed" if check.get("passed") else "partial" if (check.get("score") or 0) > 0 else "failed"


def architecture_rows(results: dict[str, dict[str, Any]], assignment: Assignment) -> list[dict[str, Any]]:
    """Per architecture, across the class: measured accuracy against the full- and zero-credit thresholds."""
    thresholds = assignment.thresholds()
    rows = []
    for arch in ARCHITECTURES:
        measured = [float(m["accuracy"]) for r in results.values()
                    if (m := (r.get("models") or {}).get(arch)) and m.get("accuracy") is not None]
        full, zero = thresholds[arch].full, thresholds[arch].zero
        rows.append({"title": ARCHITECTURE_TITLES[arch], "full": full, "zero": zero, "models": len(measured),
                     "no_model": len(results) - len(measured),
                     "median": float(np.median(measured)) if measured else None,
                     "lowest": min(measured, default=None), "highest": max(measured, default=None),
                     "full_credit": sum(a >= full for a in measured),
                     "partial": sum(zero < a < full for a in measured),
                     "zero_credit": sum(a <= zero for a in measured)})
    return rows


def evidence_links(store: Store, key: str, out_dir: Path) -> list[dict[str, str]]:
    """Relative links from the instructor page to what a TA opens next: executed notebook and logs."""
    artifacts = store.artifacts(key)
    files = [("notebook", artifacts / "executed.ipynb"), ("kernel log", artifacts / "kernel.log"),
             ("predict log", artifacts / "predict.log"), ("grading log", store.log_path(key))]
    return [{"label": label, "href": quote(os.path.relpath(path, out_dir))} for label, path in files if path.is_file()]


def summary_view(results: dict[str, dict[str, Any]], assignment: Assignment, store: Store | None = None,
                 out_dir: Path | None = None, final: dict[str, float] | None = None,
                 never_submitted: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The instructor page; ``never_submitted`` (None: no roster recorded) lists roster students without a
    submission. The class statistics (mean, histogram, questions, checks, architectures) count graded
    results only: one the grader failed on has no grade, and ``not_graded`` says how many were left out."""
    def percent(result: dict[str, Any]) -> float | None:
        if not has_grade(result):
            return None
        return 100 * float(result.get("score") or 0.0) / (result.get("max_score") or assignment.max_score)

    with_grade = {key: result for key, result in results.items() if has_grade(result)}
    count = len(with_grade)
    scores: dict[str, list[float]] = {q.id: [] for q in assignment.questions}
    checks: Counter[tuple[str, str]] = Counter()
    check_passes: Counter[tuple[str, str]] = Counter()
    for result in with_grade.values():
        graded = {q["id"]: q for q in result.get("questions") or []}
        for question in assignment.questions:
            got = graded.get(question.id) or {}
            scores[question.id].append(float(got.get("score") or 0.0))
            by_name = {c["name"]: c for c in got.get("checks") or []}
            for check in question.checks:
                checks[(question.id, check.test)] += 1
                check_passes[(question.id, check.test)] += bool((by_name.get(check.test) or {}).get("passed"))
    reasons = Counter(r.get("reason") for r in results.values() if r.get("reason"))
    by_time = sorted(results.items(), key=lambda kv: -float((kv[1].get("execution") or {}).get("seconds") or 0))
    return {
        "assignment_title": plain_text(assignment.title or assignment.name, 200),
        "count": len(results),
        "graded": count,
        "not_graded": len(results) - count,
        "mean_percent": sum(map(percent, with_grade.values())) / count if count else None,
        "histogram_png": histogram_plot([percent(r) for r in with_grade.values()]),
        "questions": [{
            "id": q.id, "title": q.title, "max_score": q.points,
            "pass_rate": sum(s >= q.points for s in scores[q.id]) / count if count else 0.0,
            "mean": sum(scores[q.id]) / count if count else 0.0,
        } for q in assignment.questions],
        "checks": [{"question": qid, "name": name, "pass_rate": check_passes[(qid, name)] / total}
                   for (qid, name), total in checks.items()],
        "reasons": [{"code": plain_text(code, 100), "count": n, "text": REASONS.get(code, "")}
                    for code, n in reasons.most_common()],
        "review": [{"key": key, "href": page_name(key), **student_row(r),
                    "arch": ARCHITECTURE_TITLES.get(item.get("arch"), plain_text(item.get("arch"), 40)),
                    "code": plain_text(item.get("code"), 100), "text": plain_text(item.get("text")),
                    "variable": plain_text(item.get("variable"), 100),
                    "cell": item.get("cell_number") if isinstance(item.get("cell_number"), int) else None}
                   for key, r in sorted(results.items(), key=lambda kv: student_row(kv[1])["student_id"])
                   for item in r.get("review") or [] if isinstance(item, dict) and item.get("kind") == "model"],
        "slowest": [{"key": key, "href": page_name(key), **student_row(r),
                     "seconds": float((r.get("execution") or {}).get("seconds") or 0),
                     "stopped": plain_text((r.get("execution") or {}).get("stopped"), 100)}
                    for key, r in by_time[:SLOWEST_SHOWN]],
        "flagged": [row for key, r in sorted(results.items()) for row in flagged_rows(key, r)],
        "students": [{"key": key, "href": page_name(key), **student_row(r), "percent": percent(r),
                      "final": (final or {}).get(key, student_row(r)["score"]),
                      "links": evidence_links(store, key, out_dir) if store and out_dir else []}
                     for key, r in sorted(results.items(), key=lambda kv: student_row(kv[1])["student_id"])],
        "architectures": architecture_rows(with_grade, assignment),
        "similarity": similarity_link(store, out_dir) if store and out_dir else None,
        "intake": [d.view() for d in read_decisions(store.root)] if store else [],
        "never_submitted": never_submitted,
    }


def similarity_link(store: Store, out_dir: Path) -> str | None:
    """The batch's similarity report (written by `grade` and `autograder similarity`), if there is one."""
    page = store.root / "similarity" / "index.html"
    return quote(os.path.relpath(page, out_dir)) if page.is_file() else None


def student_row(result: dict[str, Any]) -> dict[str, Any]:
    submission = result.get("submission") or {}
    return {"student_id": plain_text(submission.get("student_id"), 100),
            "student_name": plain_text(submission.get("student_name"), 200),
            "score": float(result.get("score") or 0.0) if has_grade(result) else None,
            "status": plain_text(result.get("status"), 40),
            "reason": plain_text(result.get("reason"), 100),
            "late": bool(submission.get("late"))}


def has_grade(result: dict[str, Any]) -> bool:
    """A result the grader failed on (status ``error``) has no grade: never a 0 in a class statistic."""
    return result.get("status") != "error"


def page_name(key: str) -> str:
    return quote(f"{key}.html")


# --- writing --------------------------------------------------------------------------------------

def write_feedback(results_dir: str | Path, out_dir: str | Path, assignment: Assignment,
                   policy: GradingPolicy | None = None) -> list[Path]:
    """Write ``<out_dir>/<key>.html`` per result and ``<out_dir>/index.html``; returns their paths.

    The grades follow ``policy``, by default the one ``autograder gradebook`` recorded in RESULTS (none
    recorded: graded scores, no roster). ``results_dir`` is a RESULTS folder or a ``grade-one`` output
    folder; results that are not current are refused, naming ``grade`` or ``regrade``
    (:func:`require_current`). The pages written are recorded, so a later regrade removes them.
    """
    store, out_dir = open_results(results_dir), Path(out_dir)
    results = store.load()
    require_current(store, results, assignment)
    policy = policy if policy is not None else read_policy(store.root) or GradingPolicy()
    decided, review = with_review(policy, store.root, results)
    rows = build_submissions(results, assignment, decided)
    missing = rows[rows["status"] == "missing"]
    never_submitted = None if policy.roster is None else [
        {"student_id": plain_text(sid, 100), "student_name": plain_text(name, 200)}
        for sid, name in zip(missing["student_id"], missing["student_name"])]
    rows = rows[rows["submission"] != ""].set_index("submission")
    pages = {out_dir / f"{key}.html": key for key in results}
    index = out_dir / "index.html"
    check_writable([*pages, index])
    student_page = _env.get_template("student.html.j2")
    for path, key in pages.items():
        view = student_view(key, results[key], store.artifacts(key), assignment, rows.loc[key], policy)
        view["comments"] = [{"question": plain_text(c["question"], 40), "text": plain_text(c["text"])}
                            for c in review.comments.get(key, [])]
        atomic_write_text(path, student_page.render(page=view))
    final = {key: float(rows.loc[key, "total"]) for key in results}
    summary = summary_view(results, assignment, store, out_dir, final, never_submitted)
    summary["review_progress"] = {"total": review.items, "decided": review.decided,
                                  "second_look": len(review.second_look)}
    atomic_write_text(index, _env.get_template("summary.html.j2").render(page=summary))
    store.record_reports([*pages, index])  # a later regrade or grade removes them
    return [*pages, index]
