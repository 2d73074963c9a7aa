"""Intake: one submitted file in, a clean notebook or a rejection out — never a crash.

``read_notebook(path, assignment)`` applies these rules, in this order, and stops at the first
that refuses the file (``Intake.reason`` is a code from :data:`autograder.results.REASONS`):

1. Size: the file's size is checked against ``execution.max_submission_mb`` before it is read, and
   at most that many bytes (+1) are ever read ("too_large").
2. Bytes: a known binary format renamed to ``.ipynb`` (ZIP, PDF, PNG, ...) is named in the message;
   otherwise the bytes must be UTF-8 (a UTF-8 byte-order mark is tolerated) ("invalid_notebook").
3. JSON: nesting deeper than :data:`MAX_JSON_DEPTH` is refused before parsing, so hostile nesting
   never reaches a recursive parser or validator; empty, truncated and malformed JSON is refused
   with the line and column ("invalid_notebook").
4. Shape: the top level must be an object with integer ``nbformat``/``nbformat_minor`` and its
   cell list.
5. Version: nbformat 4 is accepted; nbformat 3 is upgraded with ``nbformat.convert`` (the one
   upgrade rule); any other major version is refused ("unsupported_nbformat").
6. Schema: ``nbformat.validate``; on failure nbformat's own ``normalize`` (missing or duplicate
   cell ids, invalid metadata) is tried once, and a notebook still invalid is refused with the
   first error's path, e.g. ``cells[3].source`` ("invalid_notebook").
7. Sanitize (every change is listed in ``Intake.notes``):
   - grader test cells are dropped: cells tagged as tests (:data:`TEST_CELL_TAGS`), nbgrader
     autograder-test cells, cells whose source holds an otter/nbgrader test marker
     (``# BEGIN TESTS``, ``BEGIN TEST CONFIG``, ``### BEGIN HIDDEN TESTS``...), and every cell of an
     otter ``# BEGIN TESTS`` ... ``# END TESTS`` block (hidden ``# HIDDEN`` test cases included);
     ``grader.check("q1")`` cells stay (they only print, and printed output never scores);
   - outputs and execution counts are cleared, so a pre-filled "All tests passed!" means nothing;
     before that, the accuracy-like numbers the outputs showed are kept as untrusted evidence
     (``Intake.printed``, :func:`autograder.intake.printed.printed_accuracies`, capped): they never earn points,
     they only show that an accuracy the report states is what the student's own run printed;
   - cell metadata is reduced to its tags, minus tags that steer execution (``raises-exception``,
     ``skip-execution``); markdown/raw attachments are dropped;
   - notebook metadata is replaced by a clean one whose kernelspec comes from the instructor's
     notebook (python3 by default): the submitted kernelspec is ignored;
   - the notebook is brought to the current v4 minor (cell ids added where missing).

Anything unexpected inside the grader yields reason "grader_error" (its traceback in ``Intake.fault``, for
the TA log), not an exception; the result is then ``status: error``, never a rejection.
"""
from __future__ import annotations

import codecs
import hashlib
import itertools
import json
import re
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.validator import ValidationError

from autograder.assignment import ARCHITECTURES, Assignment, instructor_kernelspec
from autograder.intake.printed import MAX_PRINTED, MAX_PRINTED_TEXT, PrintedAccuracy, printed_accuracies
from autograder.results import REASONS

#: Real notebooks nest about 10 levels deep; widget and plot outputs rarely pass 30.
MAX_JSON_DEPTH = 100

#: Leading bytes of formats students upload by mistake, with a plain name for the message.
MAGIC_BYTES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Office document"),
    (codecs.BOM_UTF16_LE, "UTF-16 text"),
    (codecs.BOM_UTF16_BE, "UTF-16 text"),
)
HTML_START = re.compile(rb"\A\s*<(!doctype\s+html|html)", re.IGNORECASE)

#: Cell tags that mark a cell as the grader's, not the student's.
TEST_CELL_TAGS = frozenset({"tests", "hidden", "hidden-test", "hidden-tests", "hidden_test", "hidden_tests",
                            "autograder", "autograder-tests", "grader"})
#: Otter Assign and nbgrader test markers, matched at the start of any source line.
TEST_MARKER = re.compile(
    r"""^\s*(?:[ru]?\"{3}\s*)?\#+\s*(?:
        (?:BEGIN|END)\s+(?:HIDDEN\s+)?TESTS?\b    # otter "# BEGIN TESTS", nbgrader "### BEGIN HIDDEN TESTS"
      | BEGIN\s+TEST\s+CONFIG\b                   # otter test-case config
    )""",
    re.IGNORECASE | re.MULTILINE | re.VERBOSE)
#: Otter Assign wraps test cells in raw cells "# BEGIN TESTS" ... "# END TESTS"; all of it goes.
BEGIN_TESTS_BLOCK = re.compile(r"\s*#+\s*BEGIN\s+TESTS\b", re.IGNORECASE)
END_TESTS_BLOCK = re.compile(r"\s*#+\s*END\s+TESTS\b", re.IGNORECASE)
#: Tags that change how a cell runs: the grader decides that, not the submission.
EXECUTION_TAGS = frozenset({"raises-exception", "skip-execution"})
FAKE_PASS = re.compile(r"all tests passed|tests? passed!|\bpassed\b.*\b100(?:\.0)?\s*%", re.IGNORECASE)

#: Where grading keeps ``Intake.printed`` next to the submission, for regrades.
PRINTED_FILE = "printed_accuracies.json"
MAX_PRINTED_FILE_BYTES = 256 * 1024  # MAX_PRINTED entries of MAX_PRINTED_TEXT characters fit easily


@dataclass(frozen=True)
class Intake:
    """What intake made of one file: a clean notebook (``ok``) or the reason it was refused."""

    ok: bool
    reason: str | None  # a REASONS code when refused
    message: str  # short, student-facing
    notebook: NotebookNode | None
    sha256: str | None  # of the raw bytes; None when they were never read
    notes: list[str] = field(default_factory=list)  # what intake changed, for TAs
    printed: tuple[PrintedAccuracy, ...] = ()  # accuracies the submitted outputs showed: untrusted evidence
    fault: str = ""  # reason "grader_error": the traceback, for the TA log only


class Rejected(Exception):
    """Raised inside intake by a rule that refuses the file."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def read_notebook(path: str | Path, assignment: Assignment) -> Intake:
    """Read one submitted ``.ipynb`` and return a sanitized notebook or a rejection (see module doc)."""
    path = Path(path)
    notes: list[str] = []
    digest = None
    try:
        raw = read_capped(path, assignment.execution.max_submission_mb)
        digest = hashlib.sha256(raw).hexdigest()
        document = parse_json(decode_text(raw, notes))
        notebook = to_v4_notebook(document, notes)
        validate_or_repair(notebook, notes)
        printed = original_printed(notebook, notes)
        notebook = sanitize(notebook, instructor_kernelspec(assignment.master_notebook), notes)
        nbformat.validate(notebook)  # a failure here is the grader's bug, reported as grader_error
    except Rejected as exc:
        return Intake(False, exc.reason, exc.message, None, digest, notes)
    except Exception:  # noqa: BLE001 — intake must answer for every file; this one is on us
        return Intake(False, "grader_error", REASONS["grader_error"], None, digest, notes,
                      fault=traceback.format_exc())
    return Intake(True, None, "The notebook was accepted.", notebook, digest, notes, printed)


def find_notebooks(folder: str | Path) -> list[Path]:
    """The notebooks in a student's folder, ignoring checkpoints, ``__MACOSX`` and hidden files."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*.ipynb")
                  if p.is_file() and not p.is_symlink()  # a link could point at any file on the grader
                  and not any(is_clutter(part) for part in p.relative_to(folder).parts))


def is_clutter(name: str) -> bool:
    """Names that archive tools and Jupyter leave behind, never a student's answer."""
    return name.startswith(".") or name in ("__MACOSX", ".ipynb_checkpoints")


# --- 1-3: bytes to JSON ---------------------------------------------------------------------------

def read_capped(path: Path, max_mb: float) -> bytes:
    limit = int(max_mb * 1024 * 1024)
    try:
        size = path.stat().st_size
        if size > limit:
            raise Rejected("too_large", f"The file is {size / 2**20:.1f} MB; the limit is {max_mb:g} MB. "
                                        "Clear the outputs (Kernel > Restart & Clear Output) and save again.")
        with path.open("rb") as fh:
            raw = fh.read(limit + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise Rejected("invalid_notebook", f"The file could not be read ({exc.strerror or exc}).") from exc
    if len(raw) > limit:
        raise Rejected("too_large", f"The file is larger than the {max_mb:g} MB limit.")
    return raw


def decode_text(raw: bytes, notes: list[str]) -> str:
    for magic, kind in MAGIC_BYTES:
        if raw.startswith(magic):
            raise Rejected("invalid_notebook", f"This is {kind} renamed to .ipynb, not a notebook; "
                                               "upload the .ipynb file saved by Jupyter.")
    if HTML_START.match(raw[:1024]):
        raise Rejected("invalid_notebook", "This is a web page (HTML export) renamed to .ipynb; "
                                           "upload the .ipynb file itself.")
    if raw.startswith(codecs.BOM_UTF8):
        notes.append("removed a UTF-8 byte-order mark")
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected("invalid_notebook",
                       f"The file is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                       "save the notebook from Jupyter again.") from exc


STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """Deepest bracket nesting outside string literals, found without recursion."""
    brackets = NOT_BRACKET.sub("", STRING_LITERAL.sub("", text))
    return max(itertools.accumulate(1 if b in "[{" else -1 for b in brackets), default=0)


def parse_json(text: str) -> Any:
    if not text.strip():
        raise Rejected("invalid_notebook", "The file is empty.")
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise Rejected("invalid_notebook", f"The file's JSON is nested {depth} levels deep (the limit is "
                                           f"{MAX_JSON_DEPTH}); it is not a notebook saved by Jupyter.")
    try:
        return json.loads(text)
    except RecursionError as exc:  # a second line of defence behind json_depth
        raise Rejected("invalid_notebook", "The file's JSON is nested too deeply to be a notebook.") from exc
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            raise Rejected("invalid_notebook", "The file ends in the middle of the notebook (it was cut off "
                                               "while saving or uploading); save it again.") from exc
        raise Rejected("invalid_notebook", f"The file is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                                           f"{exc.msg}).") from exc


# --- 4-6: JSON to a valid v4 notebook -------------------------------------------------------------

def to_v4_notebook(document: Any, notes: list[str]) -> NotebookNode:
    if not isinstance(document, dict):
        raise Rejected("invalid_notebook", f"The file holds a JSON {json_type(document)}, not a notebook object.")
    major = document.get("nbformat")
    if "nbformat" not in document and "cells" not in document:
        raise Rejected("invalid_notebook", "The file is JSON but not a notebook: it has no 'cells' and no "
                                           "'nbformat' version.")
    if not is_int(major):
        raise Rejected("invalid_notebook", "The notebook has no valid 'nbformat' version number.")
    if major not in (3, 4):
        raise Rejected("unsupported_nbformat", f"The notebook is in format version {major}; only version 4 "
                                               "(and 3, upgraded automatically) is accepted.")
    if not is_int(document.get("nbformat_minor", 0)):
        raise Rejected("invalid_notebook", "The notebook's 'nbformat_minor' version is not a number.")
    body = "cells" if major == 4 else "worksheets"
    if not isinstance(document.get(body), list):
        raise Rejected("invalid_notebook", f"The notebook has no '{body}' list.")
    if major == 4:
        return nbformat.from_dict(document)  # multi-line sources are joined after validation
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # v3 schema warnings: the v4 result is validated next
            notebook = nbformat.convert(nbformat.versions[3].to_notebook_json(document), 4)
    except (ValidationError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Rejected("invalid_notebook", f"The format-3 notebook could not be upgraded to format 4 "
                                           f"({short(str(exc))}).") from exc
    notes.append("upgraded from nbformat 3 to 4")
    return notebook


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def json_type(value: Any) -> str:
    return {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def validate_or_repair(notebook: NotebookNode, notes: list[str]) -> None:
    """Schema-check in place; let nbformat repair what it knows how to, once."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing/duplicate cell-id warnings: we repair them below
        try:
            nbformat.validate(notebook)
            return
        except ValidationError:
            pass
        changes, repaired = nbformat.validator.normalize(notebook, strip_invalid_metadata=True)
        try:
            nbformat.validate(repaired)
        except ValidationError as exc:
            raise Rejected("invalid_notebook", f"The notebook does not follow the Jupyter format at "
                                               f"{error_path(exc)}: {short(exc.message)}") from exc
    notebook.clear()
    notebook.update(repaired)
    notes.append(f"repaired {changes} schema problem(s) with nbformat.validator.normalize")


def error_path(exc: ValidationError) -> str:
    path = ""
    for part in getattr(exc, "absolute_path", ()):
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.lstrip(".") or "the top level"


def short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# --- 7: sanitize ----------------------------------------------------------------------------------

def sanitize(notebook: NotebookNode, kernelspec: dict, notes: list[str]) -> NotebookNode:
    notebook = nbformat.versions[4].to_notebook_json(notebook)  # join multi-line sources, drop transients
    if notebook.nbformat_minor < nbformat.v4.nbformat_minor:
        notebook = nbformat.v4.upgrade(notebook, from_version=4, from_minor=notebook.nbformat_minor)
    kept = drop_test_cells(notebook.cells)
    if len(kept) < len(notebook.cells):
        notes.append(f"removed {len(notebook.cells) - len(kept)} grader test cell(s)")
    notebook.cells = kept

    with_outputs = fake_passes = trimmed_metadata = attachments = 0
    for cell in kept:
        if cell.cell_type == "code":
            with_outputs += bool(cell.outputs or cell.execution_count is not None)
            fake_passes += any(FAKE_PASS.search(output_text(o)) for o in cell.outputs)
            cell.outputs = []
            cell.execution_count = None
        elif "attachments" in cell:
            attachments += 1
            del cell["attachments"]
        tags = [t for t in cell.metadata.get("tags", []) if t not in EXECUTION_TAGS]
        clean = NotebookNode({"tags": tags} if tags else {})
        trimmed_metadata += clean != cell.metadata
        cell.metadata = clean
    if with_outputs:
        notes.append(f"cleared outputs and execution counts of {with_outputs} code cell(s)")
    if fake_passes:
        notes.append(f"ignored pre-filled outputs claiming that tests passed in {fake_passes} cell(s) "
                     "(outputs are cleared; only the grader's own run counts)")
    if trimmed_metadata:
        notes.append(f"reduced the metadata of {trimmed_metadata} cell(s) to their tags")
    if attachments:
        notes.append(f"dropped attachments from {attachments} markdown/raw cell(s)")

    submitted_kernel = notebook.metadata.get("kernelspec", {})
    if submitted_kernel != kernelspec:
        notes.append(f"replaced the notebook metadata; submitted kernelspec "
                     f"{submitted_kernel.get('name') if isinstance(submitted_kernel, dict) else None!r} "
                     f"ignored for {kernelspec['name']!r}")
    notebook.metadata = NotebookNode({"kernelspec": NotebookNode(kernelspec),
                                      "language_info": NotebookNode({"name": "python"})})
    return notebook


def original_printed(notebook: NotebookNode, notes: list[str]) -> tuple[PrintedAccuracy, ...]:
    """The accuracy-like numbers the submitted outputs showed, before sanitize clears them."""
    cells = [(index, joined(cell.get("source", "")), [output_text(o) for o in cell.get("outputs", [])])
             for index, cell in enumerate(notebook.cells) if cell.get("cell_type") == "code"]
    printed = printed_accuracies(cells)
    if printed:
        notes.append(f"kept {len(printed)} accuracy-like number(s) from the submitted outputs as untrusted "
                     "evidence for the report's claims (never a source of points)")
    return printed


def joined(text: str | list[str]) -> str:
    return "".join(text) if isinstance(text, list) else str(text)


def save_printed(printed: tuple[PrintedAccuracy, ...], path: Path) -> None:
    """Keep ``Intake.printed`` next to the stored submission, so a regrade judges the same claims."""
    path.write_text(json.dumps([{"value": p.value, "architecture": p.architecture, "text": p.text, "cell": p.cell}
                                for p in printed], indent=1), encoding="utf-8")


def load_printed(path: Path) -> tuple[PrintedAccuracy, ...]:
    """What :func:`save_printed` kept; a missing file (a result graded before it existed) gives ``()``.

    The content came from a student's file: every entry is checked and capped, malformed ones are dropped.
    """
    try:
        if path.stat().st_size > MAX_PRINTED_FILE_BYTES:
            return ()
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    kept = []
    for entry in entries[-MAX_PRINTED:] if isinstance(entries, list) else ():
        if not isinstance(entry, dict):
            continue
        value, arch, text, cell = (entry.get(k) for k in ("value", "architecture", "text", "cell"))
        if (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
                and (arch is None or arch in ARCHITECTURES) and isinstance(text, str) and is_int(cell)):
            kept.append(PrintedAccuracy(float(value), arch, text[:MAX_PRINTED_TEXT], cell))
    return tuple(kept)


def drop_test_cells(cells: list[NotebookNode]) -> list[NotebookNode]:
    kept, in_tests_block = [], False
    for cell in cells:
        in_tests_block = in_tests_block or bool(BEGIN_TESTS_BLOCK.match(cell.source))
        if not (in_tests_block or is_test_cell(cell)):
            kept.append(cell)
        in_tests_block = in_tests_block and not END_TESTS_BLOCK.match(cell.source)
    return kept


def is_test_cell(cell: NotebookNode) -> bool:
    metadata = cell.get("metadata", {})
    if TEST_CELL_TAGS.intersection(metadata.get("tags", [])):
        return True
    grading = metadata.get("nbgrader", {})
    if isinstance(grading, dict) and grading.get("grade") and not grading.get("solution"):
        return True  # nbgrader "autograder tests" cell
    return bool(TEST_MARKER.search(cell.source))


def output_text(output: NotebookNode) -> str:
    """The visible text of an output (stream, plain-text result or error)."""
    parts = (output.get("text", ""), output.get("data", {}).get("text/plain", ""), output.get("evalue", ""))
    return "\n".join("".join(part) if isinstance(part, list) else str(part) for part in parts)
