"""Accuracies stated in sentences (paragraphs and list items).

A prose claim is a sentence that names exactly one architecture and exactly one accuracy-like number,
unhedged. Prose extraction stays conservative: a missed prose claim earns nothing (the claims check needs
stated accuracies and the table is always read), an invented one would cost an honest student points. Hedges,
bounds and differences are known in German, Spanish, French, Italian and Portuguese as well as English.
"""
from __future__ import annotations

import re

from autograder.score.report.findings import Claim
from autograder.score.report.numbers import DIFFERENCE_BEFORE, PLAUSIBLE
from autograder.score.report.table import TEST, VALIDATION
from autograder.vocabulary import (ACCURACY_WORD, CHANCE, PERCENT, PERCENT_SIGN, Number, architectures_named,
                                   as_fraction, shorten)

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_FRACTION = re.compile(rf"(?<![\w.])(0?\.\d+)(?!\w|\.\d|\s?{PERCENT_SIGN})()", re.IGNORECASE)

# Words that make a sentence's numbers targets rather than measured results ...
_HEDGE = re.compile(r"(?<![a-z])(?:should|must|would|could|might|expect\w*|target\w*|goal|aim\w*|if"
                    r"|sollte\w*|müsste\w*|würde\w*|könnte\w*|erwart\w*|ziel\w*|wenn|falls"
                    r"|deber[íi]a\w*|podr[íi]a\w*|esperab\w*|objetivo\w*|meta|si"
                    r"|devrait|pourrait|objectif\w*|dovrebbe|potrebbe)(?![a-z])", re.IGNORECASE)
# ... and words just before a number that make it a bound ("above 99%", "at least 97%", "more than 0.98").
_BOUND_BEFORE = re.compile(r"(?<![a-z])(?:above|over|more than|less than|below|under|at least|at most|up to"
                           r"|exceed\w*|beyond|than|[<>≥≤]=?"
                           r"|über|mehr als|weniger als|unter|mindestens|höchstens|bis zu|als"
                           r"|más de|menos de|al menos|como mínimo|hasta|por encima de|por debajo de|supera\w*|que"
                           r"|plus de|moins de|au moins|jusqu'à|au-dessus de|au-dessous de)"
                           r"\s*(?:~|about|around|approximately|etwa|ca\.|un|una|el|del|al|aprox\w*|environ)?\s*$",
                           re.IGNORECASE)
_DIFFERENCE_AFTER = re.compile(r"^\s*(?:more|less|fewer|better|worse|higher|lower|points?|pp|of|error"
                               r"|faster|slower|improvement|increase|decrease|drop|gain|relative"
                               r"|mehr|weniger|besser|schlechter|punkte?|prozentpunkte?|fehler"
                               r"|más|menos|mejor|peor|puntos?|error|plus|moins|meilleur)\b",
                               re.IGNORECASE)
# "training accuracy", "train acc", "on the training set" (but not "trained in 30 s")
_TRAINING_ACCURACY = re.compile(r"(?<![a-z])train(?:ing)?[\s_-]*(?:acc\w*|set|data|split|loss)"
                                r"|trainings\w*|entrenamiento|entraînement|treino|addestramento", re.IGNORECASE)


def split_sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def accuracy_numbers(sentence: str) -> list[Number]:
    """Accuracy-like numbers in a sentence: plausible percentages, and fractions next to an accuracy word."""
    matches = list(PERCENT.finditer(sentence))
    about_accuracy = bool(ACCURACY_WORD.search(sentence))
    if about_accuracy:
        matches += _FRACTION.finditer(sentence)
    numbers = []
    for match in matches:
        number = as_fraction(match)
        if (number is not None and CHANCE <= number.value
                # Look only near the number: the sentence is untrusted and may be huge.
                and not DIFFERENCE_BEFORE.search(sentence[max(0, match.start() - 12):match.start()])
                and not _BOUND_BEFORE.search(sentence[max(0, match.start() - 24):match.start()])
                and not _DIFFERENCE_AFTER.match(sentence[match.end():match.end() + 30])):
            numbers.append(number)
    # Numbers well above chance are the accuracies ("with 20% dropout the MLP reaches 97.9% accuracy"); a
    # smaller one is read only from a sentence that says "accuracy" and states nothing higher (a one-epoch
    # GRU's "48.3% test accuracy").
    plausible = [n for n in numbers if n.value >= PLAUSIBLE]
    return plausible or (numbers if about_accuracy else [])


def prose_claim(sentence: str, listed: bool, block: int) -> Claim | None:
    named = architectures_named(sentence)
    if len(named) != 1 or _HEDGE.search(sentence) or _TRAINING_ACCURACY.search(sentence):
        return None
    numbers = accuracy_numbers(sentence)
    if len(numbers) != 1:
        return None
    kind = "validation" if VALIDATION.search(sentence) and not TEST.search(sentence) else "test"
    return Claim(next(iter(named)), numbers[0].value, "list" if listed else "prose", shorten(sentence), kind,
                 numbers[0].resolution, block)
