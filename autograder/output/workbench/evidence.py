"""What one review item's page shows beside the decision: the student's cells with the relevant lines, the
model and the grader's measurements against their limits, the report beside the measured accuracies,
the confusion matrix, and what the grader decided and why.

Everything the student wrote or printed is untrusted: it passes :func:`plain_text` (control characters
out, capped) and the template escapes it; nothing is rendered as markup. Only files of the result's own
artifacts folder are read, by fixed names.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autograder.assignment import ARCHITECTURE_TITLES, ARCHITECTURES
from autograder.output.plots import confusion_plot, load_confusion
from autograder.output.reading import error_text, failing_line, fed_description
from autograder.output.rule_titles import RULE_TITLES
from autograder.output.store import Store
from autograder.output.workbench.queue import REPORT_CHECK_PREFIX, Item, find_check
from autograder.score.artifacts import EVIDENCE_ARRAYS
from autograder.score.integrity import RULES
from autograder.score.notebook_code import jupyter_numbers
from autograder.student_text import plain_text

CELL_LIMIT = 4000  # characters of one cell shown
CELLS_SHOWN = 6
REPORT_CELLS_SHOWN = 12
NOTEBOOK_READ_LIMIT = 20 * 1024 * 1024  # an executed notebook larger than this is not opened
REPORT_KINDS = ("claims",)


def item_evidence(item: Item, result: Mapping[str, Any], store: Store) -> dict[str, Any]:
    """The evidence block of one result's item (a pair shows one of these per side)."""
    question, check = find_check(result, item.check)
    arch = item.arch or _arch_of(item.check)
    models = result.get("models") or {}
    about_report = item.kind in REPORT_KINDS or str(item.check or "").startswith(REPORT_CHECK_PREFIX)
    archive = store.artifacts(item.key) / EVIDENCE_ARRAYS
    stamp = archive.stat().st_mtime_ns if archive.is_file() else 0
    chosen = ((result.get("data") or {}).get("confusion") or {}).get("index")
    return {
        "status": plain_text(result.get("status"), 40), "reason": plain_text(result.get("reason"), 100),
        "message": plain_text(result.get("message"), 600),
        "score": float(result.get("score") or 0.0), "max_score": float(result.get("max_score") or 0.0),
        "check": check and {"name": plain_text(check.get("name"), 100), "question": plain_text(question.get("id"), 40),
                            "score": float(check.get("score") or 0.0), "max_score": float(check.get("max_score") or 0.0),
                            "status": plain_text(check.get("status"), 40), "message": plain_text(check.get("message")),
                            "detail": plain_text(check.get("detail"))},
        "models": [model_row(a, models[a]) for a in ARCHITECTURES
                   if isinstance(models.get(a), Mapping) and (a == arch or not arch)],
        "integrity": integrity_rows(result, arch) if arch else [],
        "cells": relevant_cells(result, arch, item),
        "report": claims_beside(report_cells(store.artifacts(item.key)), models) if about_report else [],
        "confusion_png": confusion_picture(store.artifacts(item.key), stamp, chosen) if stamp else None,
        "notes": [plain_text(n, 600) for n in (result.get("notes") or [])[:10]],
        "has_report": any(str(c.get("name", "")).startswith(REPORT_CHECK_PREFIX)
                          for q in result.get("questions") or [] for c in q.get("checks") or []),
    }


@lru_cache(maxsize=512)
def confusion_picture(artifacts: Path, stamp: int, chosen: Any) -> str | None:
    """The stored confusion matrix drawn as the student page draws it, once per stored evidence file
    (``stamp``: its modification time, so a regrade draws it again)."""
    matrix = load_confusion(artifacts, chosen)
    return confusion_plot(matrix) if matrix is not None else None


def _arch_of(check: str | None) -> str | None:
    return next((a for a in sorted(ARCHITECTURES, key=len, reverse=True) if str(check or "").startswith(f"{a}_")), None)


def model_row(arch: str, model: Mapping[str, Any]) -> dict[str, Any]:
    """The model summary with its measured accuracy against both thresholds."""
    accuracy, full, zero = model.get("accuracy"), model.get("threshold_full"), model.get("threshold_zero")
    standing = (None if accuracy is None else "full credit" if full is not None and accuracy >= full else
                "zero credit" if zero is not None and accuracy <= zero else "partial credit")
    return {"title": ARCHITECTURE_TITLES.get(arch, arch), "variable": plain_text(model.get("variable"), 100),
            "class_name": plain_text(model.get("class_name"), 100), "params": model.get("params"),
            "accuracy": accuracy, "public_accuracy": model.get("public_accuracy"), "full": full, "zero": zero,
            "standing": standing, "error": plain_text(model.get("error"), 600) or None,
            "fed": plain_text(fed_description(arch, model.get("fed") or {}), 200) if model.get("fed") else "",
            "training": {k: v for k, v in (model.get("training") or {}).items() if isinstance(v, (int, float))}}


def integrity_rows(result: Mapping[str, Any], arch: str) -> list[dict[str, Any]]:
    """Each integrity rule of one model: passed or not, and each measurement beside its limit."""
    rules = (result.get("integrity") or {}).get(arch) or {}
    return [{"rule": RULE_TITLES.get(rule, rule), "passed": (rules[rule] or {}).get("passed"),
             "message": plain_text((rules[rule] or {}).get("message"), 600),
             "evidence": [(plain_text(k, 60, one_line=True), plain_text(v, 100, one_line=True))
                          for k, v in ((rules[rule] or {}).get("evidence") or {}).items()]}
            for rule in RULES if rule in rules]


def relevant_cells(result: Mapping[str, Any], arch: str | None, item: Item) -> list[dict[str, Any]]:
    """The code cells that matter to the item, with the lines that mention its model (or failed) marked:
    the model's variable for an architecture, failing cells for an error, the confusion matrix's variable."""
    cells = (result.get("execution") or {}).get("cells") or []
    numbers = jupyter_numbers(cells)
    model = ((result.get("models") or {}).get(arch) or {}) if arch else {}
    confusion = ((result.get("data") or {}).get("confusion") or {}).get("variable")
    needles = [n for n in (model.get("variable"), confusion if item.check == "confusion_matrix" else None) if n]
    chosen = []
    for cell in cells:
        source = str(cell.get("source") or "")
        failed = cell.get("status") in ("error", "timeout")
        if not (failed or any(n in source for n in needles)):
            continue
        bad = failing_line(cell.get("error"))
        lines = [{"text": plain_text(line, 400, one_line=False), "marked": bool(
            (bad and bad in line) or any(n in line for n in needles))}
                 for line in plain_text(source, CELL_LIMIT).splitlines()]
        chosen.append({"number": numbers.get(cell.get("index")), "status": plain_text(cell.get("status"), 20),
                       "error": plain_text(error_text(cell.get("error")), 600), "lines": lines})
    return chosen[:CELLS_SHOWN]


def report_cells(artifacts: Path) -> list[str]:
    """The notebook's markdown (the report) as plain text, from the executed notebook the grader stored."""
    path = artifacts / "executed.ipynb"
    if not path.is_file() or path.is_symlink() or path.stat().st_size > NOTEBOOK_READ_LIMIT:
        return []
    try:
        notebook = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except ValueError:
        return []
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    texts = []
    for cell in cells if isinstance(cells, list) else []:
        if isinstance(cell, dict) and cell.get("cell_type") == "markdown":
            source = cell.get("source")
            texts.append(plain_text("".join(map(str, source)) if isinstance(source, list) else source, CELL_LIMIT))
    return texts[:REPORT_CELLS_SHOWN]


_CLAIMED = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d+)?)\s*%|(?<![\d.])(0\.\d{2,4})(?!\d)")


def claims_beside(texts: list[str], models: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each report paragraph with the accuracies it states (``98.1%``, ``0.981``), each beside the measured
    accuracy nearest to it (the grader's secret evaluation and the public test), so a TA reads claim and
    measurement side by side."""
    measured = [(ARCHITECTURE_TITLES.get(arch, arch), m.get("accuracy"), m.get("public_accuracy"))
                for arch in ARCHITECTURES if isinstance(m := models.get(arch), Mapping)]
    paragraphs = []
    for text in texts:
        claims = []
        for match in list(_CLAIMED.finditer(text))[:20]:
            value = float(match.group(1)) / 100 if match.group(1) else float(match.group(2))
            options = [(abs(v - value), title, v, kind) for title, acc, public in measured
                       for v, kind in ((acc, "secret eval"), (public, "public test")) if isinstance(v, (int, float))]
            nearest = min(options, default=None)
            claims.append({"claimed": match.group(0), "model": nearest[1] if nearest else None,
                           "measured": nearest[2] if nearest else None, "set": nearest[3] if nearest else None,
                           "gap": nearest[0] if nearest else None})
        paragraphs.append({"text": text, "claims": claims})
    return paragraphs
