"""The accuracy-like numbers a submitted notebook's own outputs printed: untrusted evidence.

Found by intake (:func:`autograder.intake.notebook.read_notebook`) before it clears the outputs, and stored
beside the evidence (``PRINTED_FILE``), so this module belongs to the evidence key. The numbers never earn
points; they only show that a claim of the report is what the student's own run printed (see
:func:`autograder.score.report.claims.judge_claims`). Printed outputs are read at most ``MAX_OUTPUT_CHARS``
per output and ``MAX_OUTPUTS_CHARS`` per notebook, keeping ``MAX_PRINTED`` numbers.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from autograder.vocabulary import ACCURACY_WORD, CHANCE, PERCENT, Number, architectures_named, as_fraction, shorten

MAX_OUTPUT_CHARS = 100_000  # of each original output, its end (final epochs and evaluations come last)
MAX_OUTPUTS_CHARS = 2_000_000  # of all original outputs of one notebook
MAX_PRINTED = 400  # printed numbers kept per notebook: the last distinct ones
MAX_PRINTED_TEXT = 120  # characters of the output line kept with each printed number
MAX_SOURCE_CHARS = 50_000  # of each code cell's source, searched for the architecture it builds


@dataclass(frozen=True)
class PrintedAccuracy:
    """An accuracy-like number the submitted notebook's own outputs showed: untrusted evidence.

    Kept by intake before it clears the outputs. It never earns points; it only shows that a claim is what
    the student's own run printed (see :func:`~autograder.score.report.claims.judge_claims`).
    """

    value: float  # a fraction in [0, 1]
    architecture: str | None  # named by its output line, else by its cell's code; None if neither says
    text: str  # the output line it came from, shortened
    cell: int  # index of the code cell among the notebook's cells


# The label just before a printed number, when it says the number is no test accuracy: training accuracy,
# a loss, a learning rate, another metric.
_PRINTED_NOT_TEST = re.compile(r"(?:train\w*[\s_:=-]*(?:acc\w*)?|loss|lr|learning[\s_]rate|error|mse|mae"
                               r"|precision|recall|f1\w*)[\s:=]*$", re.IGNORECASE)
# A Keras progress line ("94/94 ━━━ 1s 9ms/step - accuracy: 0.97 - loss: ... - val_accuracy: 0.98"): its bare
# accuracy is fit's running training accuracy (or evaluate's, which cannot be told apart); its val_ ones count.
_PROGRESS_LINE = re.compile(r"\d+/\d+\s.*?(?:step|[━=>.]{3})|val_acc", re.IGNORECASE)
_BARE_ACCURACY_LABEL = re.compile(r"(?<!val_)acc\w*[\s:=]*$", re.IGNORECASE)
# Fractions with two or more decimals; not 1.0, which is what pixel ranges print (a perfect score is
# left to the grader's own measurement).
_PRINTED_FRACTION = re.compile(r"(?<![\w.])(0?\.\d{2,})(?![\w.])()")
_PRINTED_BARE_PERCENT = re.compile(r"(?<![\w.])([5-9]\d\.\d+|100\.0+)(?![\w.%])()")  # on accuracy lines only
_OUTPUT_LINES = re.compile(r"\n")


def _printed_numbers(line: str) -> Iterator[Number]:
    """Accuracy-like numbers of one output line, at least chance: percentages, fractions with two or more
    decimals, and 50-100 with decimals on a line about accuracy; not those labelled as training accuracy (also the bare
    "accuracy" of a Keras progress line), loss or another metric."""
    patterns = [PERCENT, _PRINTED_FRACTION] + ([_PRINTED_BARE_PERCENT] if ACCURACY_WORD.search(line) else [])
    progress_line = bool(_PROGRESS_LINE.search(line))
    for pattern in patterns:
        for match in pattern.finditer(line):
            number = as_fraction(match)
            label = line[max(0, match.start() - 24):match.start()]
            if (number is not None and number.value >= CHANCE and not _PRINTED_NOT_TEST.search(label)
                    and not (progress_line and _BARE_ACCURACY_LABEL.search(label))):
                yield number


def printed_accuracies(cells: Iterable[tuple[int, str, Sequence[str]]]) -> tuple[PrintedAccuracy, ...]:
    """The last ``MAX_PRINTED`` distinct accuracy-like numbers in code cells' original outputs.

    ``cells`` are ``(cell index, source, output texts)``. Only the end of each output and of all outputs
    is read (``MAX_OUTPUT_CHARS``, ``MAX_OUTPUTS_CHARS``): the final evaluations come last.
    """
    found: OrderedDict[tuple[str | None, float], PrintedAccuracy] = OrderedDict()
    budget = MAX_OUTPUTS_CHARS
    for index, source, outputs in cells:
        in_code = architectures_named(source[:MAX_SOURCE_CHARS])
        for output in outputs:
            text = output[-min(MAX_OUTPUT_CHARS, budget):] if budget > 0 else ""
            budget -= len(text)
            for line in _OUTPUT_LINES.split(text):
                # What a terminal shows: a progress bar's carriage returns overwrite the line's earlier frames.
                line = line.rsplit("\r", 1)[-1].replace("\x08", "")
                numbers = list(_printed_numbers(line))
                if not numbers:
                    continue
                named = architectures_named(line)
                arch = next(iter(named)) if len(named) == 1 else next(iter(in_code)) if len(in_code) == 1 else None
                for number in numbers:
                    key = (arch, round(number.value, 6))
                    found.pop(key, None)
                    found[key] = PrintedAccuracy(number.value, arch, shorten(line, MAX_PRINTED_TEXT), index)
                    if len(found) > MAX_PRINTED:
                        found.popitem(last=False)
    return tuple(found.values())
