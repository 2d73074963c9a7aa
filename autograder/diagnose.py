"""Explain why a notebook failed in the grader, in a student's words, from a table of known failures.

The table is data: ``diagnoses.toml`` next to this module (its header documents every key), plus
any instructor tables passed to :func:`load_table`. :func:`diagnose` turns the executed cells of one
notebook into a list of diagnoses, ordered by cell::

    {code, category, title, advice, cell, cell_status}

``cell`` is the schema's cell ``index``; the texts count cells from 1 (``index + 1``), as a student
does. Diagnoses are advice only: nothing here re-runs or patches student code. Every string returned
is plain text (ANSI codes and control characters removed, student-controlled parts shortened);
HTML escaping happens when the feedback page is rendered.
"""
from __future__ import annotations

import os
import re
import tomllib
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema  # a dependency of nbformat

BUILTIN_TABLE = Path(__file__).with_name("diagnoses.toml")

EVALUE_CHARS = 300  # an exception message quoted to the student
GROUP_CHARS = 120  # a value captured by a named group: a module, an argument, a path
TITLE_CHARS = 200
ADVICE_CHARS = 2000
MATCH_CHARS = 20_000  # longer messages and sources are cut before matching, so a regex stays fast

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
            "title": _TEXT, "advice": _TEXT, "pointer": _TEXT,
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
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DiagnosisTableError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DiagnosisTableError(f"{path}: not valid TOML: {exc}") from exc
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
    if "pointer" in entry and on != "source":
        raise fail("pointer: only a pattern with on = 'source' has a pointer")
    for key in ("covers_cell", "before_first_cell"):
        if key in entry and on != "stopped":
            raise fail(f"{key}: only a pattern with on = 'stopped' has it")
    before_first_cell = entry.get("before_first_cell", False)

    matchers = {}
    for key in allowed:
        if key in entry:
            try:
                matchers[key] = re.compile(entry[key], re.MULTILINE if key == "source" else 0)
            except re.error as exc:
                raise fail(f"{key}: bad regex {entry[key]!r}: {exc}") from exc
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
                   advice=entry["advice"], matchers=matchers, pointer=entry.get("pointer"),
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


# ---------------------------------------------------------------- diagnosing one run

def diagnose(cells: Sequence[Mapping[str, Any]], stopped: str | None, limits: Mapping[str, float],
             table: Sequence[Pattern] | None = None) -> list[dict[str, Any]]:
    """Diagnoses for the executed cells of one notebook, ordered by cell.

    ``cells`` are the result schema's ``execution.cells`` items ({index, source, status, seconds,
    error}); ``stopped`` is ``execution.stopped``; ``limits`` holds ``budget`` (seconds for the
    whole notebook), ``cell_timeout`` (seconds for one cell) and ``limit_mb`` (memory). Each failed
    cell gets its first matching pattern; each cell that ran and needs the network (``!pip``,
    ``!wget``, ...) gets a note pointing at the first error at or after it; a stopped run gets one
    run-level diagnosis at the cell that was running.
    """
    table = load_table() if table is None else table
    if stopped is None and _ran_out_of_wall_budget(cells, limits):
        stopped = "wall_budget"
    base = {"budget": round(limits["cell_timeout"]), "wall_budget": round(limits["budget"]),
            "limit_mb": round(limits["limit_mb"]), "stopped": plain_text(stopped or "", GROUP_CHARS)}
    stop_cell = _stop_cell(cells) if stopped else None
    stop = _first_stop(table, stopped, stop_cell is not None) if stopped else None
    failed = [c["index"] for c in cells if c.get("status") == "error"]

    found: list[tuple[int, dict[str, Any]]] = []  # (rank within the cell, diagnosis)
    for cell in cells:
        status = cell.get("status")
        subject = _subject(cell)
        context = {**base, **_cell_context(cell)}
        own = None
        covered = stop is not None and stop[0].covers_cell and cell is stop_cell
        if status in ("error", "timeout") and not covered:
            own = _first_match(table, "error" if status == "error" else "timeout", subject)
            if own:
                found.append((0, _render(*own, context, cell)))
        note = _first_match(table, "source", subject) if status != "not_run" else None
        if note and not (own and own[0].category == note[0].category):
            later = next((i for i in failed if i > cell["index"]), None)
            found.append((1, _render(*note, context, cell, later)))
    if stop:
        run_seconds = round(sum(c.get("seconds") or 0 for c in cells if c.get("status") != "not_run"))
        context = {**base, **_cell_context(stop_cell or {}), "seconds": run_seconds,
                   "budget": base["wall_budget"]}
        found.append((0 if stop[0].covers_cell else 2, _render(*stop, context, stop_cell)))

    def order(item: tuple[int, dict[str, Any]]) -> tuple:
        rank, diagnosis = item
        return (diagnosis["cell"] is None, diagnosis["cell"] or 0, rank)

    return [diagnosis for _, diagnosis in sorted(found, key=order)]


def _ran_out_of_wall_budget(cells: Sequence[Mapping[str, Any]], limits: Mapping[str, float]) -> bool:
    """The executor gives a cell only what is left of the notebook's budget when that is less than
    the per-cell limit, so a cell stopped before the per-cell limit means the whole budget ran out."""
    return any(c.get("status") == "timeout" and (c.get("seconds") or 0) < limits["cell_timeout"] - 1
               for c in cells)


def _stop_cell(cells: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The cell that was running when the run stopped: the last one that started, if any."""
    started = [c for c in cells if c.get("status") != "not_run"]
    return started[-1] if started else None


def _first_stop(table: Sequence[Pattern], stopped: str, cell_ran: bool) -> tuple[Pattern, dict[str, str]] | None:
    usable = [p for p in table if p.before_first_cell != cell_ran]
    return _first_match(usable, "stopped", {"stopped": stopped})


def _subject(cell: Mapping[str, Any]) -> dict[str, str]:
    error = cell.get("error") or {}
    return {"source": (cell.get("source") or "")[:MATCH_CHARS],
            "ename": strip_ansi(str(error.get("ename") or ""))[:MATCH_CHARS],
            "evalue": strip_ansi(str(error.get("evalue") or ""))[:MATCH_CHARS]}


def _cell_context(cell: Mapping[str, Any]) -> dict[str, Any]:
    error = cell.get("error") or {}
    return {"cell": cell["index"] + 1 if "index" in cell else "?",
            "seconds": round(cell.get("seconds") or 0),
            "ename": plain_text(str(error.get("ename") or ""), GROUP_CHARS),
            "evalue": plain_text(str(error.get("evalue") or ""), EVALUE_CHARS)}


def _first_match(table: Sequence[Pattern], on: str,
                 subject: Mapping[str, str]) -> tuple[Pattern, dict[str, str]] | None:
    for pattern in table:
        if pattern.on == on:
            groups = pattern.match(subject)
            if groups is not None:
                return pattern, groups
    return None


def _render(pattern: Pattern, groups: Mapping[str, str], context: Mapping[str, Any],
            cell: Mapping[str, Any] | None, later_cell: int | None = None) -> dict[str, Any]:
    values = {**context, **{name: plain_text(value, GROUP_CHARS) for name, value in groups.items()}}
    advice = pattern.advice.format_map(values)
    if pattern.pointer and later_cell is not None:
        advice += " " + pattern.pointer.format_map({**values, "later_cell": later_cell + 1})
    return {"code": pattern.code, "category": pattern.category,
            "title": plain_text(pattern.title.format_map(values), TITLE_CHARS),
            "advice": plain_text(advice, ADVICE_CHARS),
            "cell": cell.get("index") if cell else None, "cell_status": cell.get("status") if cell else None}


# ---------------------------------------------------------------- plain text

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    """Remove terminal colour and hyperlink codes (IPython tracebacks are full of them)."""
    return _ANSI.sub("", text)


def plain_text(text: str, limit: int) -> str:
    """One line of printable text, at most ``limit`` characters (cut with an ellipsis)."""
    text = strip_ansi(text[: limit * 4])
    text = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
