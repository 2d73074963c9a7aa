"""A report's tables, and the accuracies they state.

Tables are read whatever their headers say. A column is an accuracy column unless its header names another
quantity (parameters, time, epochs, loss, error, ...) — or, for a header that names nothing known, unless
none of its cells looks like an accuracy. Every number in an accuracy cell is a stated accuracy of the row's
architecture (the first cell, outside the accuracy columns, that names exactly one), kinded per value: by
the cell's own label ("99.9 (train)"), by position when the header lists as many labels as the cell has
numbers ("Accuracy (val / test)", "Train / test acc"), else by the header. Training accuracies are the only
ones not compared with the grader's measurement; validation accuracies are (on MNIST they sit within a
fraction of a point of test accuracy). A header such as "Test accuracy (val / test)" therefore never hides a
value. A table with architectures as columns and metrics as rows is read transposed. Words for accuracy,
training, test and other quantities are known in German, Spanish, French, Italian and Portuguese as well as
English.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from autograder.score.report.findings import Claim, Table, TableRow
from autograder.score.report.numbers import cell_numbers
from autograder.vocabulary import ACCURACY_WORDS, Number, architectures_named, shorten

_ACCURACY_HEADER = re.compile(rf"acc|score|perf|result|top[\s-]?1|correct|test|val|%|ergebnis|prueba|{ACCURACY_WORDS}",
                              re.IGNORECASE)
# Headers that name another quantity (and no accuracy): their columns state no accuracies.
_OTHER_HEADER = re.compile(
    r"param|weight|size|time|second|\(s\)|minute|hour|durat|epoch|step|loss|error|unit|neuron|layer|filter"
    r"|kernel|batch|dropout|learning|\blr\b|rate|optim|memory|flop|latency|speed|model|network|name"
    r"|architecture"
    # ... and the same in German, Spanish, French, Italian, Portuguese
    r"|par[áa]m|paramè|gewicht|peso|poids|tiempo|zeit|temps|tempo|dauer|duraci|durée|segund|sekund|minut|époc|epoc"
    r"|époque|p[ée]rdida|verlust|perte|perdita|fehler|capa|schicht|couche|strato|neuron|einheit|unidad|unité|lote"
    r"|tasa|modell|mod[èe]l|netz|\bred\b|réseau|rete|arquitect|architektur|nombre|\bnom\b|tamaño|gr[öo]ße|taille",
    re.IGNORECASE)
_TRAINING = re.compile(r"(?<![a-z])(?:train|entren|entra[iî]n|trein|addestr)", re.IGNORECASE)
VALIDATION = re.compile(r"(?<![a-z])val(?:id\w*)?(?![a-z])|val_", re.IGNORECASE)
TEST = re.compile(r"(?<![a-z])(?:test|prueba)", re.IGNORECASE)
_HEADER_LIST = re.compile(r"([a-z]\w*)\s*/\s*([a-z]\w*)(?:\s*/\s*([a-z]\w*))?", re.IGNORECASE)
_STRICT_ACCURACY = re.compile(r"%|(?<![\w.])(?:0?\.\d{2,}|[5-9]\d\.\d+|100\.0*)(?![\w.])")


def _kind(text: str) -> str | None:
    """What a label says a number is: "training", "validation", "test", or None."""
    has = {kind for kind, p in (("training", _TRAINING), ("validation", VALIDATION), ("test", TEST)) if p.search(text)}
    if "test" in has:
        return "test"
    if "validation" in has:
        return "validation"
    return "training" if has else None


def _label_kind(word: str) -> str:
    """A word from a header list ("val / test") as a kind; a word that is no accuracy label is "other"."""
    if kind := _kind(word):
        return kind
    return "unspecified" if re.match(r"acc|score|top", word, re.IGNORECASE) else "other"


def _is_accuracy_column(header: str, cells: Sequence[str]) -> bool:
    if re.search(rf"acc|{ACCURACY_WORDS}", header, re.IGNORECASE):
        return True
    if _OTHER_HEADER.search(header):
        return False
    # A known accuracy word, or a header saying nothing known whose cells look like accuracies.
    return bool(_ACCURACY_HEADER.search(header)) or any(_STRICT_ACCURACY.search(c) for c in cells)


def _value_kinds(header: str, cell: str, numbers: Sequence[Number]) -> list[str]:
    """The kind of each number of an accuracy cell (see the module doc)."""
    listed = _HEADER_LIST.search(header)
    labels = [w for w in listed.groups() if w] if listed else []
    by_position = [_label_kind(w) for w in labels] if len(numbers) > 1 and len(labels) == len(numbers) else None
    # The cell's own labels: before each number when the cell starts with one ("val 97.5 / test 97.9"),
    # else after it ("97.5 (val) / 97.9 (test)").
    bounds = [0] + [n.end for n in numbers]
    labels_first = bool(re.search(r"[a-z]", cell[:numbers[0].start], re.IGNORECASE)) if numbers else False
    kinds = []
    for i, number in enumerate(numbers):
        own = (_kind(cell[bounds[i]:number.start]) if labels_first else
               _kind(cell[number.end:numbers[i + 1].start if i + 1 < len(numbers) else len(cell)]))
        kinds.append(own or (by_position[i] if by_position else _kind(header) or "unspecified"))
    return kinds


def _transposed(rows: list[list[str]]) -> bool:
    """Architectures as columns and metrics as rows."""
    header, body = rows[0], rows[1:]
    named = [h for h in header[1:] if len(architectures_named(h)) == 1]
    return len(named) >= 2 and not any(architectures_named(r[0]) for r in body if r)


def read_table(rows: list[list[str]], block: int) -> tuple[Table, list[Claim]]:
    if _transposed(rows):
        rows = [list(column) for column in zip(*rows)]
    header, body = rows[0], rows[1:]
    columns = [i for i, h in enumerate(header) if _is_accuracy_column(h, [r[i] for r in body if i < len(r)])]
    # Test columns first: a row's accuracy (for the table check) is its first non-training one.
    columns.sort(key=lambda i: _kind(header[i]) != "test")
    table_rows, claims = [], []
    for r, cells in enumerate(body):
        names = next((n for i, cell in enumerate(cells) if i not in columns and (n := architectures_named(cell))),
                     frozenset())
        architecture = next(iter(names)) if len(names) == 1 else None
        accuracy = None
        for i in columns:
            numbers = cell_numbers(cells[i])
            for number, kind in zip(numbers, _value_kinds(header[i], cells[i], numbers)):
                if kind in ("training", "other"):
                    continue
                accuracy = number.value if accuracy is None else accuracy
                if architecture:
                    claims.append(Claim(architecture, number.value, "table",
                                        shorten("| " + " | ".join(cells) + " |"), kind, number.resolution,
                                        block, (block, r)))
        table_rows.append(TableRow(tuple(cells), architecture, accuracy))
    accuracy_header = header[columns[0]] if columns else None
    return Table(tuple(header), accuracy_header, tuple(table_rows), block), claims
