"""Feedback pages: one self-contained HTML page per student, and one summary page for instructors.

Pipeline: load results -> a student-safe view of each result -> plots (matplotlib, PNG as data: URIs)
-> Jinja2 templates (autoescape on) -> ``<out>/<key>.html`` and ``<out>/index.html``.

What a student page may show is decided here, field by field, in :func:`student_view`: scores,
student-facing messages and diagnoses. TA-only ``detail`` never reaches the template. Every piece
of text is passed through :func:`autograder.gradebook.plain_text` (ANSI codes and control characters
removed, length capped) and then HTML-escaped by the template; a Content-Security-Policy forbids
scripts on the page as a second line of defence.
"""
from __future__ import annotations

import argparse
import base64
import io
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape
from matplotlib.figure import Figure  # no pyplot: no global figure state; Figure renders with Agg

from autograder.assignment import ARCHITECTURE_TITLES, ARCHITECTURES, Assignment, load_assignment
from autograder.diagnose import jupyter_numbers
from autograder.gradebook import load_results, plain_text
from autograder.results import REASONS, atomic_write_text

TEMPLATES = Path(__file__).with_name("templates")
CONFUSION_ARTIFACT = "confusion_student.npy"
EVIDENCE_ARCHIVE = "predictions.npz"  # the grader's stored evidence (autograder.artifacts.save_evidence)
MAX_ARTIFACT_BYTES = 64 * 1024  # a 10x10 int64 matrix is under 1 KB
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
    axes.set(xticks=range(10), yticks=range(10), xlabel="predicted label", ylabel="true label",
             title="Your confusion matrix (test set)")
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


def load_confusion(artifacts_dir: Path) -> np.ndarray | None:
    """The student's 10x10 confusion matrix, or None when it is absent or not a valid matrix.

    Read from ``confusion_student.npy``, else from the ``confusion`` array of the stored evidence.
    """
    npy, archive = artifacts_dir / CONFUSION_ARTIFACT, artifacts_dir / EVIDENCE_ARCHIVE
    try:
        if npy.is_file() and npy.stat().st_size <= MAX_ARTIFACT_BYTES:
            matrix = np.load(npy, allow_pickle=False)
        elif not npy.exists() and archive.is_file():
            with np.load(archive, allow_pickle=False) as arrays:
                if "confusion" not in arrays.files:
                    return None
                matrix = arrays["confusion"]
        else:
            return None
    except (ValueError, OSError, zipfile.BadZipFile):
        return None
    valid = (matrix.shape == (10, 10) and np.issubdtype(matrix.dtype, np.integer)
             and (matrix >= 0).all())
    return matrix.astype(np.int64) if valid else None


# --- views: exactly what each page may show -------------------------------------------------------

def student_view(key: str, result: dict[str, Any], artifacts_dir: Path,
                 assignment: Assignment) -> dict[str, Any]:
    submission = result.get("submission") or {}
    reason = result.get("reason")
    confusion = load_confusion(artifacts_dir)
    return {
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
            "status": plain_text(q.get("status"), 40),
            "message": plain_text(q.get("message")),
            "checks": [{
                "name": plain_text(c.get("name"), 100),
                "score": float(c.get("score") or 0.0),
                "max_score": float(c.get("max_score") or 0.0),
                "status": plain_text(c.get("status") or check_status(c), 40),
                "message": plain_text(c.get("message")),
            } for c in q.get("checks") or []],
        } for q in result.get("questions") or []],
        "diagnoses": diagnosis_cards(result),
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


def summary_view(results: dict[str, dict[str, Any]], assignment: Assignment) -> dict[str, Any]:
    def percent(result: dict[str, Any]) -> float:
        return 100 * float(result.get("score") or 0.0) / (result.get("max_score") or assignment.max_score)

    count = len(results)
    scores: dict[str, list[float]] = {q.id: [] for q in assignment.questions}
    checks: Counter[tuple[str, str]] = Counter()
    check_passes: Counter[tuple[str, str]] = Counter()
    for result in results.values():
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
        "count": count,
        "mean_percent": sum(map(percent, results.values())) / count if count else 0.0,
        "histogram_png": histogram_plot([percent(r) for r in results.values()]),
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
                   for item in r.get("review") or [] if isinstance(item, dict)],
        "slowest": [{"key": key, "href": page_name(key), **student_row(r),
                     "seconds": float((r.get("execution") or {}).get("seconds") or 0),
                     "stopped": plain_text((r.get("execution") or {}).get("stopped"), 100)}
                    for key, r in by_time[:SLOWEST_SHOWN]],
        "students": [{"key": key, "href": page_name(key), **student_row(r), "percent": percent(r)}
                     for key, r in sorted(results.items(), key=lambda kv: student_row(kv[1])["student_id"])],
    }


def student_row(result: dict[str, Any]) -> dict[str, Any]:
    submission = result.get("submission") or {}
    return {"student_id": plain_text(submission.get("student_id"), 100),
            "student_name": plain_text(submission.get("student_name"), 200),
            "score": float(result.get("score") or 0.0),
            "status": plain_text(result.get("status"), 40),
            "reason": plain_text(result.get("reason"), 100),
            "late": bool(submission.get("late"))}


def page_name(key: str) -> str:
    return quote(f"{key}.html")


# --- writing --------------------------------------------------------------------------------------

def write_feedback(results_dir: str | Path, out_dir: str | Path, assignment: Assignment) -> list[Path]:
    """Write ``<out_dir>/<key>.html`` per result and ``<out_dir>/index.html``; returns their paths."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    results = load_results(results_dir)
    student_page = _env.get_template("student.html.j2")
    written = []
    for key, result in results.items():
        view = student_view(key, result, results_dir / "artifacts" / key, assignment)
        path = out_dir / f"{key}.html"
        atomic_write_text(path, student_page.render(page=view))
        written.append(path)
    index = out_dir / "index.html"
    atomic_write_text(index, _env.get_template("summary.html.j2").render(page=summary_view(results, assignment)))
    return [*written, index]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", metavar="RESULTS", help="directory holding results/ and artifacts/")
    parser.add_argument("-o", "--output", metavar="DIR", help="output directory (default: RESULTS/feedback)")
    parser.add_argument("--assignment", default="assignments/mnist", help="assignment directory")


def run(args: argparse.Namespace) -> int:
    out_dir = Path(args.output or Path(args.results) / "feedback")
    paths = write_feedback(args.results, out_dir, load_assignment(args.assignment))
    print(f"wrote {len(paths) - 1} student pages and {out_dir / 'index.html'}")
    return 0
