"""The diagnosis table: known ways a notebook fails in the grader, and what to tell the student.

The table is data: ``diagnoses.toml`` next to this module (its header documents every key), plus any
instructor tables passed to :func:`load_table`, checked against :data:`TABLE_SCHEMA` and compiled into
:class:`Pattern` objects when loaded, so a typo fails at load time, not on a student. :func:`cell_subject`
is what a pattern matches for one cell.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema  # a dependency of nbformat

from autograder.assignment import read_toml
from autograder.score.notebook_code import READ_CHARS
from autograder.student_text import strip_ansi

BUILTIN_TABLE = Path(__file__).with_name("diagnoses.toml")

#: How much of a diagnosis's texts, and of the student values they quote, is kept.
EVALUE_CHARS = 300  # an exception message quoted to the student
GROUP_CHARS = 120  # a value captured by a named group: a module, an argument, a path
TITLE_CHARS = 200
ADVICE_CHARS = 2000

#: Which cell fields each kind of pattern may match, and which values its texts may use.
MATCH_FIELDS = {"error": ("ename", "evalue", "source"), "timeout": ("source",),
                "source": ("source",), "stopped": ("stopped",)}
TEXT_FIELDS = {
    "error": {"cell", "seconds", "budget", "wall_budget", "limit_mb", "ename", "evalue"},
    "timeout": {"cell", "seconds", "budget", "wall_budget", "limit_mb"},
    "source": {"cell"},
    "stopped": {"cell", "seconds", "budget", "wall_budget", "limit_mb", "stopped"},
}
NUMBER_FIELDS = {"cell", "seconds", "budget", "wall_budget", "limit_mb", "later_cell"}
WHOLE_MATCH = {"ename", "stopped"}  # names: "NameError" must not match "UnboundNameError"

_TEXT = {"type": "string", "minLength": 1}
_NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}
TABLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["pattern"],
    "properties": {"pattern": {"type": "array", "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["code", "category", "title", "advice", "example"],
        "properties": {
            "code": _NAME, "category": _NAME, "on": {"enum": list(MATCH_FIELDS)},
            "ename": _TEXT, "evalue": _TEXT, "source": _TEXT, "stopped": _TEXT,
            "title": _TEXT, "advice": _TEXT, "pointer": _TEXT, "explains": _TEXT,
            "covers_cell": {"type": "boolean"}, "before_first_cell": {"type": "boolean"},
            "example": {"type": "object", "additionalProperties": False, "properties": {
                "source": {"type": "string"}, "status": {"enum": ["ok", "error", "timeout", "not_run"]},
                "ename": _TEXT, "evalue": {"type": "string"}, "stopped": _TEXT,
                "seconds": {"type": "number", "minimum": 0}}},
        },
    }}},
}


class DiagnosisTableError(ValueError):
    """A diagnosis table is invalid; the message names the file, the entry and the key."""


@dataclass(frozen=True)
class Pattern:
    """One known failure: when it applies (``on`` + regexes) and what to tell the student."""

    code: str
    category: str
    on: str
    title: str
    advice: str
    matchers: Mapping[str, re.Pattern[str]]
    pointer: str | None
    explains: re.Pattern[str] | None  # ("source") later failures this note causes, by "ename: evalue"
    covers_cell: bool
    before_first_cell: bool
    example: Mapping[str, str]

    def match(self, subject: Mapping[str, str]) -> dict[str, str] | None:
        """The named groups if every match field matches ``subject``, else None."""
        groups: dict[str, str] = {}
        for field, regex in self.matchers.items():
            text = subject.get(field, "")
            found = regex.fullmatch(text) if field in WHOLE_MATCH else regex.search(text)
            if found is None:
                return None
            groups.update(found.groupdict(default=""))
        return groups


def cell_subject(cell: Mapping[str, Any]) -> dict[str, str]:
    """What a pattern matches for one cell (its source, its exception's type and message), cut to size."""
    error = cell.get("error") or {}
    return {"source": (cell.get("source") or "")[:READ_CHARS],
            "ename": strip_ansi(str(error.get("ename") or ""))[:READ_CHARS],
            "evalue": strip_ansi(str(error.get("evalue") or ""))[:READ_CHARS]}


# ---------------------------------------------------------------- loading the table

@lru_cache(maxsize=8)
def load_table(*extra: str | os.PathLike) -> tuple[Pattern, ...]:
    """The built-in table with instructor tables merged in front of it, the first given winning.

    An instructor pattern with the code of an existing one replaces it in place (so a replaced
    catch-all stays last); a new code goes in front of the patterns it is merged into.
    """
    table = _read_table(BUILTIN_TABLE)
    for path in reversed(extra):
        front = {p.code: p for p in _read_table(Path(path))}
        kept = [front.pop(p.code, p) for p in table]
        table = [*front.values(), *kept]
    return tuple(table)


def _read_table(path: Path) -> list[Pattern]:
    raw = read_toml(path, DiagnosisTableError)
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(TABLE_SCHEMA).iter_errors(raw))
    if error is not None:
        where = list(error.absolute_path)
        entry = _entry_name(raw["pattern"], where[1]) if where[:1] == ["pattern"] and len(where) > 1 else ""
        key = ".".join(str(part) for part in where[2:])
        raise DiagnosisTableError(": ".join(filter(None, (str(path), entry, key, error.message))))
    patterns = [_build_pattern(path, _entry_name(raw["pattern"], i), entry)
                for i, entry in enumerate(raw["pattern"])]
    codes = [p.code for p in patterns]
    duplicate = next((code for code in codes if codes.count(code) > 1), None)
    if duplicate:
        raise DiagnosisTableError(f"{path}: code {duplicate!r} is used by more than one pattern")
    return patterns


def _entry_name(entries: list, index: int) -> str:
    code = entries[index].get("code") if isinstance(entries[index], dict) else None
    return f"pattern[{index}]" + (f" ({code})" if isinstance(code, str) else "")


def _build_pattern(path: Path, name: str, entry: dict[str, Any]) -> Pattern:
    def fail(message: str) -> DiagnosisTableError:
        return DiagnosisTableError(f"{path}: {name}: {message}")

    on = entry.get("on", "error")
    allowed = MATCH_FIELDS[on]
    for key in ("ename", "evalue", "source", "stopped"):
        if key in entry and key not in allowed:
            raise fail(f"{key}: a pattern with on = {on!r} can only match {', '.join(allowed)}")
    if on == "source" and "source" not in entry:
        raise fail("source: a pattern with on = 'source' needs a source regex")
    for key in ("pointer", "explains"):
        if key in entry and on != "source":
            raise fail(f"{key}: only a pattern with on = 'source' has it")
    for key in ("covers_cell", "before_first_cell"):
        if key in entry and on != "stopped":
            raise fail(f"{key}: only a pattern with on = 'stopped' has it")
    before_first_cell = entry.get("before_first_cell", False)

    matchers = {}
    for key in (*allowed, "explains"):
        if key in entry:
            try:
                matchers[key] = re.compile(entry[key], re.MULTILINE if key == "source" else 0)
            except re.error as exc:
                raise fail(f"{key}: bad regex {entry[key]!r}: {exc}") from exc
    explains = matchers.pop("explains", None)
    groups = {group for regex in matchers.values() for group in regex.groupindex}
    clash = groups & (NUMBER_FIELDS | TEXT_FIELDS["error"] | {"stopped"})
    if clash:
        raise fail(f"regex group name {sorted(clash)[0]!r} is a reserved placeholder name")
    fields = TEXT_FIELDS[on] - ({"cell"} if before_first_cell else set()) | groups
    texts = {"title": fields, "advice": fields, "pointer": fields | {"later_cell"}}
    for key, placeholders in texts.items():
        if key in entry:
            _check_template(entry[key], placeholders, fail, key)
    return Pattern(code=entry["code"], category=entry["category"], on=on, title=entry["title"],
                   advice=entry["advice"], matchers=matchers, pointer=entry.get("pointer"), explains=explains,
                   covers_cell=entry.get("covers_cell", False), before_first_cell=before_first_cell,
                   example=entry["example"])


def _check_template(template: str, fields: set[str], fail: Callable[[str], DiagnosisTableError],
                    key: str) -> None:
    """Format ``template`` with sample values now, so a typo fails at load time, not on a student."""
    sample = {field: 1 if field in NUMBER_FIELDS else "x" for field in fields}
    try:
        template.format_map(sample)
    except KeyError as exc:
        raise fail(f"{key}: unknown placeholder {{{exc.args[0]}}} (allowed: {', '.join(sorted(fields))})") from exc
    except (ValueError, IndexError, AttributeError) as exc:
        raise fail(f"{key}: bad placeholder: {exc}") from exc
