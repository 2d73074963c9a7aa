"""How the grader read a notebook, in words a student or a TA reads: which variable it took for each
role and model and how it fed each model, each integrity rule's finding, and the cells that failed as
the student sees them (numbered as Jupyter numbers them, with the failing line quoted). Every piece of
text passes :func:`autograder.student_text.plain_text`."""
from __future__ import annotations

import re
from typing import Any

from autograder.assignment import ARCHITECTURE_TITLES, ARCHITECTURES
from autograder.output.rule_titles import RULE_TITLES
from autograder.run.inside import contract
from autograder.score.accuracy import retried_figures
from autograder.score.artifacts import FOUND_BY_WORDS
from autograder.score.integrity import RULES
from autograder.score.notebook_code import jupyter_numbers
from autograder.student_text import plain_text, strip_ansi


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
        return f"{shape_text}, {how}{_retried(fed)}"
    return shape_text + _retried(fed)


def _retried(fed: dict[str, Any]) -> str:
    """The re-feed, said when the grader's second pass replaced its first feed (artifacts.adopt_retried_feed)."""
    figures = retried_figures(fed)
    if figures is None:
        return ""
    first, retried, _ = figures
    return (f" (re-fed as the notebook's own evaluate() fed it: {first:.1%} -> {retried:.1%} on the public test "
            "images)")


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
