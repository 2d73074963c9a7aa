"""Numbers as the report writes them.

Numbers are read in the report's own convention (:func:`decimal_mark`): a report whose numbers show decimal
commas ("98,1 %") reads "71.818" as a thousands-grouped 71818, one with decimal points reads "10,000" as
10000 (:func:`canonical_numbers`, applied before parsing).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from autograder.vocabulary import PERCENT_SIGN, Number, as_fraction

# --- the report's own number conventions ------------------------------------------------------------

# A numeral with its separators: "98.1", "98,1", "71.818", "1.234,5", "10,000", "1,2,3".
_NUMERAL = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)+")


def _grouped(groups: Sequence[str]) -> bool:
    """Digit groups that read as thousands: "71" "818", "1" "234" "567" (not "0" "981", not "98" "1")."""
    return (1 <= len(groups[0]) <= 3 and not groups[0].startswith("0")
            and all(len(g) == 3 for g in groups[1:]))


def _decimal_mark_shown(numeral: str) -> str | None:
    """The decimal mark a numeral shows unambiguously ("98,1", "0.981", "1.234,5"), None if it could be either."""
    marks = re.findall(r"[.,]", numeral)
    if len(set(marks)) == 2:
        return marks[-1]
    if len(marks) == 1 and not _grouped(re.split(r"[.,]", numeral)):
        return marks[0]
    return None


def decimal_mark(texts: Iterable[str]) -> str:
    """The decimal mark a report writes: "," when more of its numbers show a decimal comma than a decimal point."""
    shown = [mark for text in texts for m in _NUMERAL.finditer(text) if (mark := _decimal_mark_shown(m.group()))]
    return "," if shown.count(",") > shown.count(".") else "."


def _canonical_numeral(numeral: str, decimal: str) -> str:
    """A numeral as Python reads it, in the report's conventions: "98,1" -> "98.1"; with decimal commas
    "71.818" -> "71818" (thousands), with decimal points "10,000" -> "10000"; "1.234,5" -> "1234.5".
    Anything else ("1,2,3", "5.12.2026") is left as it is."""
    marks = re.findall(r"[.,]", numeral)
    groups = re.split(r"[.,]", numeral)
    if len(set(marks)) == 2:  # the last mark is the decimal one, the others group thousands
        if marks[-1] in marks[:-1] or not _grouped(groups[:-1]):
            return numeral
        return "".join(groups[:-1]) + "." + groups[-1]
    if len(marks) > 1:
        return "".join(groups) if _grouped(groups) else numeral
    if marks[0] != decimal and _grouped(groups):
        return "".join(groups)
    return groups[0] + "." + groups[1]


def canonical_numbers(text: str, decimal: str) -> str:
    """The text with every numeral written as Python reads it (see :func:`_canonical_numeral`)."""
    return _NUMERAL.sub(lambda m: _canonical_numeral(m.group(), decimal), text)


# --- numbers ----------------------------------------------------------------------------------------

_NUMBER = re.compile(rf"(?<![\w.])(\d+(?:[.,]\d+)?|[.,]\d+)\s*({PERCENT_SIGN})?", re.IGNORECASE)
# "by 1.5%", "+1.5%", "±0.2%", or the upper end of a range ("97-98%")
DIFFERENCE_BEFORE = re.compile(r"(?:\bby\s*|[+±]\s*|\d\s*[–-]\s*)$", re.IGNORECASE)

PLAUSIBLE = 0.5  # without the word "accuracy", smaller numbers are more likely differences than accuracies


def parse_accuracy(cell: str) -> float | None:
    """The first number of a cell as a fraction: "98.1%", "98.1" and "0.981" all give 0.981."""
    match = _NUMBER.search(cell)
    number = as_fraction(match) if match else None
    return number.value if number else None


def cell_numbers(cell: str) -> list[Number]:
    """The accuracies in a table cell: the first number, and any later one that is not a difference or
    a bound ("± 0.2", "97-98") and looks like an accuracy."""
    numbers = []
    for match in _NUMBER.finditer(cell):
        number = as_fraction(match)
        if number is None or DIFFERENCE_BEFORE.search(cell[max(0, match.start() - 12):match.start()]):
            continue
        if numbers and number.value < PLAUSIBLE:
            continue
        numbers.append(number)
    return numbers
