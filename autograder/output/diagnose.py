"""Explain why a notebook failed in the grader, in a student's words, from a table of known failures.

The table is data: ``diagnoses.toml`` next to this module (its header documents every key), plus
any instructor tables passed to :func:`load_table`. :func:`diagnose` turns the executed cells of one
notebook into a list of diagnoses, ordered by cell::

    {code, category, title, advice, cell, cell_number, cell_status, caused_by, because, dependents}

``cell`` is the schema's cell ``index`` (markdown cells count); ``cell_number`` and every text number
code cells as Jupyter does after "Restart & Run All" (``In [n]``).

One root cause, one card: a failure that follows from an earlier one (it uses a name the earlier
cell should have defined, a name a failed data load had only half filled or a download the grader
cannot make bound, a name cells that ran made from any of those, a module that failed to import or
that a ``!pip`` line could not install, a file a download could not fetch, or it is the same
problem again) gets ``caused_by``, the cell of the root cause, and ``because``, one sentence saying
why; the root's diagnosis lists them all in ``dependents``. A knock-on of a knock-on goes to the
root, so a diagnosis with a ``because`` is never a root, and a root that says only "this cell
failed" read nothing but names that cells that ran had bound. Which names a cell defines and uses
comes from its source (``ast``; nothing runs).

Diagnoses are advice only: nothing here re-runs or patches student code. Every string returned
is plain text (ANSI codes and control characters removed, student-controlled parts shortened);
HTML escaping happens when the feedback page is rendered.
"""
from __future__ import annotations

import ast
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import jsonschema  # a dependency of nbformat

from autograder.assignment import read_toml
from autograder.output.student_text import plain_text, strip_ansi

BUILTIN_TABLE = Path(__file__).with_name("diagnoses.toml")

EVALUE_CHARS = 300  # an exception message quoted to the student
GROUP_CHARS = 120  # a value captured by a named group: a module, an argument, a path
TITLE_CHARS = 200
ADVICE_CHARS = 2000
MATCH_CHARS = 20_000  # longer messages and sources are cut before matching or parsing, so both stay fast

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


# ---------------------------------------------------------------- diagnosing one run

def diagnose(cells: Sequence[Mapping[str, Any]], stopped: str | None, limits: Mapping[str, float],
             table: Sequence[Pattern] | None = None) -> list[dict[str, Any]]:
    """Diagnoses for the executed cells of one notebook, ordered by cell.

    ``cells`` are the result schema's ``execution.cells`` items ({index, source, status, seconds,
    error}), one per code cell in notebook order; ``stopped`` is ``execution.stopped``; ``limits``
    holds ``budget`` (seconds for the whole notebook), ``cell_timeout`` (seconds for one cell) and
    ``limit_mb`` (memory). Each failed cell gets its first matching pattern; each cell that ran and
    needs the network (``!pip``, ``!wget``, ...) gets a note, pointing at the first failure that
    follows from it; a stopped run gets one run-level diagnosis at the cell that was running. Then
    every failure is grouped under its root cause (see the module docstring).
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
    notes: dict[int, tuple[Pattern, dict[str, str], dict[str, Any]]] = {}  # cell index -> note match
    for cell in cells:
        status = cell.get("status")
        subject = _subject(cell)
        context = {**base, **_cell_context(cell, numbers)}
        covered = stop is not None and stop[0].covers_cell and cell is stop_cell
        if status in ("error", "timeout") and not covered:
            match = _first_match(table, "error" if status == "error" else "timeout", subject)
            if match:
                own[cell["index"]] = _render(*match, context, cell)
        note = _first_match(table, "source", subject) if status != "not_run" else None
        if note and not (cell["index"] in own and own[cell["index"]]["category"] == note[0].category):
            notes[cell["index"]] = (*note, context)

    cards = _group_knock_ons(cells, own, notes, numbers)
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


def jupyter_numbers(cells: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """Cell index -> the number Jupyter shows (``In [n]``) after "Restart & Run All": code cells
    counted from 1 in notebook order (``cells`` holds every code cell, run or not)."""
    return {cell["index"]: number for number, cell in enumerate(cells, start=1) if "index" in cell}


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


def _subject(cell: Mapping[str, Any]) -> dict[str, str]:
    error = cell.get("error") or {}
    return {"source": (cell.get("source") or "")[:MATCH_CHARS],
            "ename": strip_ansi(str(error.get("ename") or ""))[:MATCH_CHARS],
            "evalue": strip_ansi(str(error.get("evalue") or ""))[:MATCH_CHARS]}


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


# ---------------------------------------------------------------- one root cause, one card

#: Diagnoses that say only "this cell failed": when such a cell uses a name that a failed cell
#: should have (re)defined, the earlier failure is the cause. A specific diagnosis (an API that
#: changed, a missing package) is a problem of its own cell and stays a card of its own.
GENERIC_CODES = {"unknown_error", "name_not_defined"}
#: pip names whose module is called otherwise; any other name installs the module of the same
#: name, with "-" read as "_".
INSTALLED_MODULES = {"opencv-python": "cv2", "opencv-python-headless": "cv2", "opencv-contrib-python": "cv2",
                     "scikit-learn": "sklearn", "scikit-image": "skimage", "pillow": "PIL",
                     "keras-tuner": "keras_tuner", "tensorflow-datasets": "tensorflow_datasets",
                     "pyyaml": "yaml", "beautifulsoup4": "bs4", "python-mnist": "mnist",
                     "tensorflow-addons": "tensorflow_addons"}
_INSTALL_LINE = re.compile(r"^[ \t]*[!%][ \t]*(?:pip3?|python3? -m pip|conda|mamba)[ \t]+install\b(?P<args>.*)$",
                           re.MULTILINE)
#: Endings of the data files a download cell fetches (words of its source are matched against them).
DATA_FILE_ENDINGS = (".zip", ".gz", ".tgz", ".tar", ".npz", ".npy", ".csv", ".h5", ".hdf5", ".keras", ".pkl",
                     ".pickle", ".json", ".txt", ".png", ".jpg", ".jpeg", "-ubyte", ".mat", ".parquet", ".xls", ".xlsx")
_NAME_ERROR = re.compile(r"name '(?P<name>\w+)' is not defined")
_MISSING_MODULE = re.compile(r"No module named '(?P<module>[\w.]+)'|cannot import name '\w+' from '(?P<package>[\w.]+)'")
#: A cell that unpacks an archive: which files it would have made is unknown.
_UNPACK = re.compile(r"\b(unzip|tar|gunzip|7z|extractall|unpack_archive)\b")
_MISSING_PATH = re.compile(r"No such file or directory: '(?P<path>[^']+)'")


class Statement(NamedTuple):
    """One top-level statement of a cell: its lines and the names it reads and binds."""

    first: int
    last: int
    reads: frozenset[str]  # every name it reads (not those local to its functions and comprehensions)
    uses: frozenset[str]  # the names it reads that the cell has not bound before it
    binds: frozenset[str]
    kind: str  # "import", "star_import" (``from m import *``) or "code"


@dataclass(frozen=True)
class CellNames:
    """What one cell's source binds and uses, read with ``ast`` (IPython syntax translated first)."""

    binds: frozenset[str]
    uses: frozenset[str]  # names read before the cell itself binds them
    installs: frozenset[str]  # modules its !pip / %pip lines install
    files: frozenset[str]  # file names it mentions (what a download would have fetched)
    unpacks: bool = False  # it unpacks an archive (unzip, tar, extractall, ...)
    statements: tuple[Statement, ...] = ()

    def uses_until(self, line: int | None) -> frozenset[str]:
        """Names the statements that start at or before ``line`` use (all of them when None): what
        a cell that failed at that line had read."""
        return frozenset().union(*(s.uses for s in self.statements if line is None or s.first <= line))


@lru_cache(maxsize=4096)
def cell_names(source: str) -> CellNames:
    source = source[:MATCH_CHARS]
    binds: set[str] = set()
    uses: set[str] = set()
    statements = []
    for statement in python_statements(source):
        reads = {node.id for node in ast.walk(statement) if isinstance(node, ast.Name)
                 and isinstance(node.ctx, ast.Load)} - _nested_scope_names(statement)
        uses |= reads - binds
        bound = _bound_names(statement)
        statements.append(Statement(statement.lineno, statement.end_lineno or statement.lineno, frozenset(reads),
                                    frozenset(reads - binds), frozenset(bound), _statement_kind(statement)))
        binds |= bound
    installs = {INSTALLED_MODULES.get(package.lower(), package.replace("-", "_"))
                for line in _INSTALL_LINE.finditer(source)
                for package in (re.split(r"[<>=!~\[;@]", word)[0] for word in line["args"].split())
                if package and not package.startswith(("-", ".", "/", "git+", "http"))}
    files = {word for word in re.findall(r"[\w.-]+", source)
             if word.lower().endswith(DATA_FILE_ENDINGS) and not word.startswith((".", "-"))}
    return CellNames(frozenset(binds), frozenset(uses), frozenset(installs), frozenset(files),
                     _UNPACK.search(source) is not None, tuple(statements))


def _statement_kind(statement: ast.stmt) -> str:
    if isinstance(statement, ast.ImportFrom) and any(alias.name == "*" for alias in statement.names):
        return "star_import"
    return "import" if isinstance(statement, (ast.Import, ast.ImportFrom)) else "code"


def python_statements(source: str) -> list[ast.stmt]:
    """The cell's top-level statements; a cell Python cannot read (say, Python 2 prints) is read
    line by line, so the lines that parse still count."""
    python = _ipython_to_python(source[:MATCH_CHARS])  # cell_names passes it cut already; review does not
    try:
        return ast.parse(python).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # the last two: hostile nesting
        statements = []
        for number, line in enumerate(python.splitlines(), start=1):
            try:
                tree = ast.parse(line.strip())
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue
            statements += ast.increment_lineno(tree, number - 1).body
        return statements


def _ipython_to_python(source: str) -> str:
    """``%magic`` and ``!shell`` lines as the Python IPython runs for them (nothing is run here)."""
    from IPython.core.inputtransformer2 import TransformerManager  # IPython comes with ipykernel

    if not _IPYTHON_SYNTAX.search(source):
        return source
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # IPython's own parser gives up on some broken cells: read them as they are
        return source


_IPYTHON_SYNTAX = re.compile(r"^[ \t]*[%!?]|[?=][ \t]*[%!]|\?[ \t]*$", re.MULTILINE)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _bound_names(statement: ast.stmt) -> set[str]:
    """Names a top-level statement binds in the notebook's namespace (not inside functions)."""
    names: set[str] = set()
    stack: list[ast.AST] = [statement]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name != "*"}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue  # its body is a scope of its own
        if not isinstance(node, (ast.Lambda, *_COMPREHENSIONS)):
            stack.extend(ast.iter_child_nodes(node))
    return names


def _nested_scope_names(statement: ast.stmt) -> set[str]:
    """Names local to the functions and comprehensions inside a statement (parameters, targets)."""
    names: set[str] = set()
    for node in ast.walk(statement):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            names |= {arg.arg for arg in ast.walk(node.args) if isinstance(arg, ast.arg)}
            names |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        elif isinstance(node, _COMPREHENSIONS):
            names |= {n.id for generator in node.generators for n in ast.walk(generator.target)
                      if isinstance(n, ast.Name)}
    return names


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


def _group_knock_ons(cells: Sequence[Mapping[str, Any]], own: dict[int, dict[str, Any]], notes: Notes,
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
    subject = _subject(cell)
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
