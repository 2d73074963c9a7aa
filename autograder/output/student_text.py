"""Text the student controls (outputs, tracebacks, names, messages) made inert before anyone reads it.

Every page, CSV cell, Gradescope message and diagnosis shows student text through :func:`plain_text`.
HTML escaping is the template's job (autoescape); this removes what escaping does not: terminal codes
(colours and hyperlinks, which IPython tracebacks are full of), control characters, unbounded length.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any

STUDENT_TEXT_LIMIT = 2000
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def strip_ansi(text: str) -> str:
    """Remove terminal colour and hyperlink codes."""
    return _ANSI.sub("", text)


def plain_text(value: Any, limit: int = STUDENT_TEXT_LIMIT, *, one_line: bool = False) -> str:
    """``value`` as printable text of at most about ``limit`` characters.

    Kept as lines (the default): line breaks and tabs stay, other control characters go, and a cut is
    marked `` … [truncated]``. ``one_line`` (titles, table cells): every control or format character
    becomes a space, runs of space become one, and a cut ends in an ellipsis within ``limit``.
    """
    text = "" if value is None else str(value)
    if not one_line:
        text = _CONTROL_CHARS.sub("", strip_ansi(text))
        return text if len(text) <= limit else text[:limit] + " … [truncated]"
    text = strip_ansi(text[: limit * 4])
    text = " ".join("".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
