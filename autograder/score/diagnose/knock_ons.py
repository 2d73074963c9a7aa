"""One root cause, one card: group each failure that follows from an earlier one under its root.

A failure that follows from an earlier one (it uses a name the earlier cell should have defined, a name
a failed data load had only half filled or a download the grader cannot make bound, a name cells that ran
made from any of those, a module that failed to import or that a ``!pip`` line could not install, a file
a download could not fetch, or it is the same problem again) gets ``caused_by``, the cell of the root
cause, and ``because``, one sentence saying why; the root's diagnosis lists them all in ``dependents``.
A knock-on of a knock-on goes to the root, so a diagnosis with a ``because`` is never a root, and a root
that says only "this cell failed" read nothing but names that cells that ran had bound. Which names a
cell defines and uses comes from its source (:mod:`autograder.score.notebook_code`; nothing runs).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autograder.score.diagnose.table import GROUP_CHARS, Pattern, cell_subject
from autograder.score.notebook_code import CellNames, Statement, cell_names
from autograder.student_text import plain_text, strip_ansi

#: Diagnoses that say only "this cell failed": when such a cell uses a name that a failed cell
#: should have (re)defined, the earlier failure is the cause. A specific diagnosis (an API that
#: changed, a missing package) is a problem of its own cell and stays a card of its own.
GENERIC_CODES = {"unknown_error", "name_not_defined"}
_NAME_ERROR = re.compile(r"name '(?P<name>\w+)' is not defined")
_MISSING_MODULE = re.compile(r"No module named '(?P<module>[\w.]+)'|cannot import name '\w+' from '(?P<package>[\w.]+)'")
_MISSING_PATH = re.compile(r"No such file or directory: '(?P<path>[^']+)'")


@dataclass(frozen=True)
class Cause:
    """Why a failure follows from an earlier cell. ``kind``: name (a name the cell should have defined
    but failed first), partial (a name a cell loading data had bound when it failed), silent (a name a
    cell with a note should have defined), fetch (a name bound by a download the grader cannot make),
    module, file (a file a download note cannot fetch), download (... a download that failed cannot
    fetch), unwritten (a file a failed cell should have written), note (a failure the note explains) or
    same. ``via`` is the name, module or file; ``through`` the name the failure reads when a cell that
    ran made it from ``via``."""

    cell: int
    kind: str
    via: str = ""
    through: str = ""

    @property
    def card(self) -> tuple[int, str]:
        """Which diagnosis of the earlier cell explains it: its note or its own failure."""
        return (self.cell, "own" if self.kind in ("name", "partial", "download", "unwritten", "same") else "note")


NoteMatch = tuple[Pattern, dict[str, str], dict[str, Any]]  # a note's pattern, its groups, its cell's values
Notes = Mapping[int, NoteMatch]  # cell index -> its note
#: Failures of a cell that was loading or fetching data: what it bound before it failed (a list
#: half filled, an empty table) is as suspect as what it never bound. A write into a missing folder
#: (missing_folder) is no load: its data was there.
DATA_LOAD_CATEGORIES = {"missing_file", "no_network"}
SAVE_CODES = {"missing_folder"}
#: The key of ``suspects`` for every name a failed ``from module import *`` should have bound.
STAR = "*"


def group_knock_ons(cells: Sequence[Mapping[str, Any]], own: dict[int, dict[str, Any]], notes: Notes,
                     numbers: Mapping[int, int]) -> dict[tuple[int, str], list[int]]:
    """Mark each failure that follows from an earlier one (``caused_by``, the cell of its root card,
    and ``because``) and return the root cards, (cell index, "own" | "note") -> the cells that depend
    on it, in order. A knock-on of a knock-on goes to the root; a failure that reads a name an earlier
    failure left unset, or made from such a name in cells that ran, is a knock-on of that failure."""
    ran = [cell for cell in cells if cell.get("status") != "not_run"]
    parents: dict[int, tuple[int, str]] = {}  # knock-on cell -> the card of its direct cause
    suspects: dict[str, Cause] = {}  # name -> why a failure that reads it follows from an earlier cell
    imported: set[str] = set()  # names an import that ran bound: a module imported again is the same
    first_seen: dict[tuple[str, str], int] = {}  # (code, title) of a root failure -> its cell
    cards: dict[tuple[int, str], list[int]] = {}
    for position, cell in enumerate(ran):
        index, diagnosis = cell["index"], own.get(cell["index"])
        if cell.get("status") == "error" and diagnosis is not None:
            cause = _direct_cause(cell, diagnosis, ran[:position], suspects, notes, own)
            key = (diagnosis["code"], diagnosis["title"])
            if cause is None and key in first_seen:
                cause = Cause(first_seen[key], "same")
            if cause is None:
                first_seen[key] = index
            else:
                parents[index] = cause.card
                root = _root_card(cause.card, parents)
                cards.setdefault(root, []).append(index)
                diagnosis.update(caused_by=root[0], because=_because(cause, numbers[cause.cell], notes))
        _leave_suspects(suspects, imported, cell, diagnosis, notes.get(index))
    return cards


def _root_card(card: tuple[int, str], parents: Mapping[int, tuple[int, str]]) -> tuple[int, str]:
    """Walk from a card to its root: a note, or a failure that follows from nothing earlier."""
    while card[1] == "own" and card[0] in parents:
        card = parents[card[0]]
    return card


def _direct_cause(cell: Mapping[str, Any], diagnosis: Mapping[str, Any], earlier: Sequence[Mapping[str, Any]],
                  suspects: Mapping[str, Cause], notes: Notes, own: Mapping[int, Mapping[str, Any]]) -> Cause | None:
    subject = cell_subject(cell)
    ename, evalue = subject["ename"], subject["evalue"]
    missing = _NAME_ERROR.search(evalue) if ename == "NameError" else None
    if missing:
        cause = _undefined_name_cause(missing["name"], earlier, suspects, notes)
        if cause is not None:
            return cause
    module = _MISSING_MODULE.search(evalue) if ename in ("ModuleNotFoundError", "ImportError") else None
    top_module = (module["module"] or module["package"]).split(".")[0] if module else None
    if top_module and cell["index"] in notes and top_module in cell_names(subject["source"]).installs:
        return Cause(cell["index"], "module", top_module)  # the cell's own !pip line could not add it
    downloads = {index for index, d in own.items() if d["category"] == "no_network"}  # downloads that failed
    for earlier_cell in reversed(earlier):
        index = earlier_cell["index"]
        if index not in notes and index not in downloads:
            continue
        names = cell_names(earlier_cell.get("source") or "")
        fetched = _file_it_fetches(names, cell, diagnosis, evalue)
        if fetched is not None:
            return Cause(index, "file" if index in notes else "download", fetched)
        if index not in notes:
            continue
        if top_module and top_module in names.installs:
            return Cause(index, "module", top_module)
        if notes[index][0].explains and notes[index][0].explains.search(f"{ename}: {evalue}"):
            return Cause(index, "note")
    if _reads_missing_file(diagnosis):
        return _unwritten_file_cause(evalue, earlier, own)
    if diagnosis["code"] in GENERIC_CODES:
        return _suspect_read(cell, suspects)
    return None


def _reads_missing_file(diagnosis: Mapping[str, Any]) -> bool:
    return diagnosis["category"] == "missing_file" and diagnosis["code"] not in SAVE_CODES


def _unwritten_file_cause(evalue: str, earlier: Sequence[Mapping[str, Any]],
                          own: Mapping[int, Mapping[str, Any]]) -> Cause | None:
    """A missing file that a cell that failed names: it should have written the file (a checkpoint,
    saved features), or it could not read it either (the same problem)."""
    for earlier_cell in reversed(earlier):
        index = earlier_cell["index"]
        if earlier_cell.get("status") != "error" or index not in own:
            continue
        named = next((f for f in sorted(cell_names(earlier_cell.get("source") or "").files) if f in evalue), None)
        if named is not None:
            return Cause(index, "same" if _reads_missing_file(own[index]) else "unwritten", named)
    return None


def _file_it_fetches(download: CellNames, cell: Mapping[str, Any], diagnosis: Mapping[str, Any],
                     evalue: str) -> str | None:
    """The file a download cell should have fetched that the failed cell reads: named in its
    missing-file error, any missing file when the download unpacks an archive, or named in its
    source when it failed some other way (``!wget -O`` leaves an empty file)."""
    if diagnosis["category"] == "missing_file":
        fetched = next((f for f in sorted(download.files) if f in evalue), None)
        missing = _MISSING_PATH.search(evalue)
        if fetched is None and download.unpacks and missing and diagnosis["code"] not in SAVE_CODES:
            fetched = missing["path"]
        return fetched
    if diagnosis["code"] in GENERIC_CODES:
        return next(iter(sorted(download.files & cell_names(cell.get("source") or "").files)), None)
    return None


def _undefined_name_cause(name: str, earlier: Sequence[Mapping[str, Any]], suspects: Mapping[str, Cause],
                          notes: Notes) -> Cause | None:
    """Why ``name`` is not defined: a cell that should have defined it failed or stopped early, or a
    ``from module import *`` failed and nothing else binds it."""
    binder = next((c for c in reversed(earlier) if name in cell_names(c.get("source") or "").binds), None)
    if binder is not None and binder.get("status") == "ok" and binder["index"] in notes:
        return Cause(binder["index"], "silent", name)  # it ran without an error but stopped early
    if name in suspects:
        return suspects[name]
    if binder is None and STAR in suspects:
        return Cause(suspects[STAR].cell, "name", name)
    return None


def _suspect_read(cell: Mapping[str, Any], suspects: Mapping[str, Cause]) -> Cause | None:
    """The cause of the latest suspect name the failed cell read before its failing line; a cell
    Python could not read (a syntax error) read nothing."""
    line = _failing_line(cell)
    if line == 0:
        return None
    read = [(suspects[name].cell, name) for name in cell_names(cell.get("source") or "").uses_until(line)
            if name in suspects]
    return suspects[max(read)[1]] if read else None


def _leave_suspects(suspects: dict[str, Cause], imported: set[str], cell: Mapping[str, Any],
                    diagnosis: Mapping[str, Any] | None, note: NoteMatch | None) -> None:
    """Update ``suspects`` with what ``cell`` left behind, statement by statement: a name it failed
    to bind blames it (unless an import that ran already bound it to the same module); a name a
    failed data load or a download the grader cannot make bound is suspect; a name made from
    suspect values carries their cause on; any other name it bound is clean."""
    index, source = cell["index"], cell.get("source") or ""
    failed = cell.get("status") == "error"
    line = _failing_line(cell) if failed else None
    loading = failed and diagnosis is not None and diagnosis["category"] in DATA_LOAD_CATEGORIES \
        and diagnosis["code"] not in SAVE_CODES
    fetch = note[0].matchers["source"] if note is not None and note[0].category == "no_network" else None
    lines = source.splitlines()

    def downloads(statement: Statement) -> bool:
        return fetch is not None and statement.kind == "code" \
            and fetch.search("\n".join(lines[statement.first - 1:statement.last])) is not None

    for statement in cell_names(source).statements:
        if failed and (line is None or statement.last >= line):  # it never finished
            again = imported if statement.kind == "import" else set()
            suspects.update({name: Cause(index, "name", name) for name in statement.binds - again})
            if statement.kind == "star_import":
                suspects[STAR] = Cause(index, "name")
            continue
        if statement.kind == "star_import":
            suspects.pop(STAR, None)
        if statement.kind == "import":
            imported |= statement.binds
        read = [suspects[name] for name in sorted(statement.reads) if name in suspects]
        if loading and statement.kind == "code":
            suspects.update({name: Cause(index, "partial", name) for name in statement.binds})
        elif downloads(statement):
            suspects.update({name: Cause(index, "fetch", name) for name in statement.binds})
        elif read:
            cause = max(read, key=lambda c: c.cell)
            suspects.update({name: Cause(cause.cell, cause.kind, cause.via, name if name != cause.via else "")
                             for name in statement.binds})
        else:
            for name in statement.binds:
                suspects.pop(name, None)


#: The frame of the cell's own top-level code (a function's frame says ", in name()" after it; the
#: executor keeps only the last 20 frames, so the cell's own may be gone).
_CELL_FRAME = re.compile(r"^Cell In\[\d+\], line (\d+)[ \t]*$", re.MULTILINE)


def _failing_line(cell: Mapping[str, Any]) -> int | None:
    """The line of a failed cell's own code that raised, from IPython's traceback: 0 when none of
    the cell ran (Python could not read it), None when the traceback does not say."""
    error = cell.get("error") or {}
    if error.get("ename") in ("SyntaxError", "IndentationError", "TabError"):
        return 0
    found = _CELL_FRAME.search(strip_ansi("\n".join(map(str, error.get("traceback") or []))))
    return int(found[1]) if found else None


def _because(cause: Cause, number: int, notes: Notes) -> str:
    """One sentence, for the student, on why a failure follows from an earlier cell."""
    via, through = (plain_text(text, GROUP_CHARS, one_line=True) for text in (cause.via, cause.through))
    used = f"`{through}`, made from `{via}`," if through else f"`{via}`,"
    if cause.kind == "name":
        return f"It uses {used} which cell {number} should have defined, but cell {number} failed."
    if cause.kind == "silent":
        return f"It uses {used} which cell {number} should have defined, but cell {number} stopped early."
    if cause.kind == "partial":
        return f"It uses {used} which cell {number} did not finish loading: cell {number} failed."
    if cause.kind == "fetch":
        return f"It uses {used} which the download in cell {number} cannot fetch in the grader."
    if cause.kind == "module":
        return f"It needs `{via}`, which the install in cell {number} cannot add in the grader."
    if cause.kind in ("file", "download"):
        return f"It reads `{via}`, which the download in cell {number} cannot fetch in the grader."
    if cause.kind == "unwritten":
        return f"It reads `{via}`, which cell {number} should have written, but cell {number} failed."
    if cause.kind == "note":
        return f"It follows from cell {number}: {notes[cause.cell][0].title.format_map(notes[cause.cell][2])}."
    return f"The same problem as in cell {number}."
