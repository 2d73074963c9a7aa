"""Feedback pages: one self-contained HTML page per student, and one summary page for instructors.

Pipeline: load results -> a student-safe view of each result (how the grader read the notebook and the
failed cells from :mod:`autograder.output.reading`, plots from :mod:`autograder.output.plots`) -> Jinja2 templates (autoescape on) -> ``<out>/<key>.html`` and ``<out>/index.html``.

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

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from autograder.assignment import ARCHITECTURE_TITLES, ARCHITECTURES, Assignment
from autograder.output.gradebook import build_submissions, lateness_text, with_review
from autograder.output.intake_record import read_decisions
from autograder.output.plots import accuracy_plot, confusion_plot, histogram_plot, load_confusion
from autograder.output.policy import GradingPolicy, read_policy
from autograder.output.reading import failed_cells, integrity_view, reading_view
from autograder.output.rule_titles import RULE_TITLES
from autograder.output.store import Store, check_writable, open_results, require_current
from autograder.results import REASONS, atomic_write_text
from autograder.score.notebook_code import jupyter_numbers
from autograder.student_text import plain_text

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
    matched = (result.get("data") or {}).get("confusion") or {}
    confusion = load_confusion(artifacts_dir, matched.get("index"))
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
