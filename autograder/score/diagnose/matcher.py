"""Diagnose one run: each failed cell gets the first pattern of the table that matches it.

:func:`diagnose` turns the executed cells of one notebook into a list of diagnoses, ordered by cell::

    {code, category, title, advice, cell, cell_number, cell_status, caused_by, because, dependents}

``cell`` is the schema's cell ``index`` (markdown cells count); ``cell_number`` and every text number
code cells as Jupyter does after "Restart & Run All" (``In [n]``). Then every failure is grouped under
its root cause (:mod:`autograder.score.diagnose.knock_ons`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from autograder.score.diagnose.knock_ons import NoteMatch, group_knock_ons
from autograder.score.diagnose.table import (ADVICE_CHARS, EVALUE_CHARS, GROUP_CHARS, TITLE_CHARS, Pattern,
                                             cell_subject, load_table)
from autograder.score.notebook_code import jupyter_numbers
from autograder.student_text import plain_text


def diagnose(cells: Sequence[Mapping[str, Any]], stopped: str | None, limits: Mapping[str, float],
             table: Sequence[Pattern] | None = None) -> list[dict[str, Any]]:
    """Diagnoses for the executed cells of one notebook, ordered by cell.

    ``cells`` are the result schema's ``execution.cells`` items ({index, source, status, seconds,
    error}), one per code cell in notebook order; ``stopped`` is ``execution.stopped``; ``limits``
    holds ``budget`` (seconds for the whole notebook), ``cell_timeout`` (seconds for one cell) and
    ``limit_mb`` (memory). Each failed cell gets its first matching pattern; each cell that ran and
    needs the network (``!pip``, ``!wget``, ...) gets a note, pointing at the first failure that
    follows from it; a stopped run gets one run-level diagnosis at the cell that was running. Then
    every failure is grouped under its root cause (see :mod:`autograder.score.diagnose.knock_ons`).
    """
    table = load_table() if table is None else table
    if stopped is None and _ran_out_of_wall_budget(cells, limits):
        stopped = "wall_budget"
    base = {"budget": round(limits["cell_timeout"]), "wall_budget": round(limits["budget"]),
            "limit_mb": round(limits["limit_mb"]),
            "stopped": plain_text(stopped or "", GROUP_CHARS, one_line=True)}
    numbers = jupyter_numbers(cells)
    stop_cell = _stop_cell(cells) if stopped else None
    stop = _first_stop(table, stopped, stop_cell is not None) if stopped else None

    own: dict[int, dict[str, Any]] = {}  # cell index -> the diagnosis of its own failure
    notes: dict[int, NoteMatch] = {}  # cell index -> note match
    for cell in cells:
        status = cell.get("status")
        subject = cell_subject(cell)
        context = {**base, **_cell_context(cell, numbers)}
        covered = stop is not None and stop[0].covers_cell and cell is stop_cell
        if status in ("error", "timeout") and not covered:
            match = _first_match(table, "error" if status == "error" else "timeout", subject)
            if match:
                own[cell["index"]] = _render(*match, context, cell)
        note = _first_match(table, "source", subject) if status != "not_run" else None
        if note and not (cell["index"] in own and own[cell["index"]]["category"] == note[0].category):
            notes[cell["index"]] = (*note, context)

    cards = group_knock_ons(cells, own, notes, numbers)
    for (index, kind), dependents in cards.items():
        if kind == "own" and index in own:
            own[index]["dependents"] = dependents
    found: list[tuple[int, dict[str, Any]]] = [(0, d) for d in own.values()]  # (rank within the cell, diagnosis)
    by_index = {cell["index"]: cell for cell in cells}
    for index, (pattern, groups, context) in notes.items():
        dependents = cards.get((index, "note"), [])
        later = numbers[dependents[0]] if dependents else None
        found.append((1, {**_render(pattern, groups, context, by_index[index], later), "dependents": dependents}))
    if stop:
        run_seconds = round(sum(_counted_seconds(c) for c in cells if c.get("status") != "not_run"))
        context = {**base, **_cell_context(stop_cell or {}, numbers), "seconds": run_seconds,
                   "budget": base["wall_budget"]}
        found.append((0 if stop[0].covers_cell else 2, _render(*stop, context, stop_cell)))

    def order(item: tuple[int, dict[str, Any]]) -> tuple:
        rank, diagnosis = item
        return (diagnosis["cell"] is None, diagnosis["cell"] or 0, rank)

    return [diagnosis for _, diagnosis in sorted(found, key=order)]


def _ran_out_of_wall_budget(cells: Sequence[Mapping[str, Any]], limits: Mapping[str, float]) -> bool:
    """Whether a cell was stopped because the notebook's budget ran out: its record says which limit
    stopped it; a result from before it did is read the old way (the executor gave a cell only what was
    left of the budget, so a cell stopped before the per-cell limit meant the whole budget ran out)."""
    return any(c.get("status") == "timeout" and (c["limit"] == "cpu_budget" if "limit" in c
                                                 else (c.get("seconds") or 0) < limits["cell_timeout"] - 1)
               for c in cells)


def _counted_seconds(cell: Mapping[str, Any]) -> float:
    """The seconds the time limits counted for ``cell``: its CPU work, or its wall time where the wall-clock
    backstop stopped it (and in results from before CPU time was counted)."""
    if "cpu_seconds" in cell and cell.get("limit") != "wall_backstop":
        return cell.get("cpu_seconds") or 0
    return cell.get("seconds") or 0


def _stop_cell(cells: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The cell that was running when the run stopped: the last one that started, if any."""
    started = [c for c in cells if c.get("status") != "not_run"]
    return started[-1] if started else None


def _first_stop(table: Sequence[Pattern], stopped: str, cell_ran: bool) -> tuple[Pattern, dict[str, str]] | None:
    usable = [p for p in table if p.before_first_cell != cell_ran]
    return _first_match(usable, "stopped", {"stopped": stopped})


def _cell_context(cell: Mapping[str, Any], numbers: Mapping[int, int]) -> dict[str, Any]:
    error = cell.get("error") or {}
    return {"cell": numbers.get(cell["index"], "?") if "index" in cell else "?",
            "seconds": round(_counted_seconds(cell)),
            "ename": plain_text(str(error.get("ename") or ""), GROUP_CHARS, one_line=True),
            "evalue": plain_text(str(error.get("evalue") or ""), EVALUE_CHARS, one_line=True)}


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
    """``later_cell`` is the Jupyter number of the first failure a note explains."""
    values = {**context,
              **{name: plain_text(value, GROUP_CHARS, one_line=True) for name, value in groups.items()}}
    advice = pattern.advice.format_map(values)
    if pattern.pointer and later_cell is not None:
        advice += " " + pattern.pointer.format_map({**values, "later_cell": later_cell})
    number = context.get("cell") if cell else None
    return {"code": pattern.code, "category": pattern.category,
            "title": plain_text(pattern.title.format_map(values), TITLE_CHARS, one_line=True),
            "advice": plain_text(advice, ADVICE_CHARS, one_line=True),
            "cell": cell.get("index") if cell else None, "cell_number": number if isinstance(number, int) else None,
            "cell_status": cell.get("status") if cell else None,
            "caused_by": None, "because": None, "dependents": []}
