"""Text the student controls (outputs, tracebacks, names, messages) made inert before anyone reads it.

Every page, CSV cell, Gradescope message and diagnosis shows student text through :func:`plain_text`.
HTML escaping is the template's job (autoescape); this removes what escaping does not: terminal codes
(colours and hyperlinks, which IPython tracebacks are full of), control characters, unbounded length,
and the grader's own paths (its virtualenv, its checkout, a sandbox job's folder), which a traceback or
an error message carries and which are nobody's business but the grader's: a library file keeps only
its part from ``site-packages/`` on, anything else of the grader's becomes ``…``.
"""
from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path
from typing import Any

import autograder
from autograder.run.inside.contract import INSIDE_MOUNT, JOB_PREFIX

STUDENT_TEXT_LIMIT = 2000
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_PATH_CHARS = r"[^\s'\"()\[\]<>:,]"
#: A library file under any Python prefix, e.g. /srv/grader/.venv/lib/python3.11/site-packages/keras/...
_SITE_PACKAGES = re.compile(rf"/{_PATH_CHARS}*?/(?=(?:site|dist)-packages/)")
#: The grader's virtualenv and Python (not a system /usr), its checkout, its package inside the sandbox.
_GRADER_ROOTS = sorted({str(Path(p)) for p in (sys.prefix, Path(sys.prefix).resolve(), sys.base_prefix,
                                                Path(autograder.__file__).resolve().parents[1], INSIDE_MOUNT)}
                       - {"/usr", "/"}, key=len, reverse=True)
_GRADER_PATH = re.compile("(?:" + "|".join([*(re.escape(root) + rf"(?![^/\s'\"()\[\]<>:,])(?:/{_PATH_CHARS}*)?"
                                              for root in _GRADER_ROOTS),
                                            rf"/{_PATH_CHARS}*{re.escape(JOB_PREFIX)}{_PATH_CHARS}*"])
                          + r")(?<!\.)")  # a sentence's full stop after a path is not part of it


def hide_grader_paths(text: str) -> str:
    """The grader's paths out of ``text``: ``…/site-packages/keras/x.py`` keeps the library's part."""
    return _GRADER_PATH.sub("…", _SITE_PACKAGES.sub("…/", text))


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
        text = hide_grader_paths(_CONTROL_CHARS.sub("", strip_ansi(text)))
        return text if len(text) <= limit else text[:limit] + " … [truncated]"
    text = hide_grader_paths(strip_ansi(text[: limit * 4]))
    text = " ".join("".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
