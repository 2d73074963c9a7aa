"""How students name the architectures and write accuracies, in their reports and in what their notebooks print.

Read by intake's extraction of printed numbers (:mod:`autograder.intake.printed`, Phase A) and by the report
analysis (:mod:`autograder.score.report`, Phase B): both must recognise the same architectures and the same
accuracy-like numbers. What intake finds with it is stored as evidence, so this module belongs to the
evidence key.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# A stated or printed accuracy is at least chance (a weak one-epoch model's run may print 0.42).
from autograder.run.inside.contract import CHANCE

# --- naming architectures ---------------------------------------------------------------------------

def _name_pattern(*alternatives: str) -> re.Pattern[str]:
    # Letters or digits may not touch the name ("grunt" is no GRU) but "_" and punctuation may
    # ("gru_model", "(CNN)"); a plural "s" is allowed.
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(alternatives) + r")s?(?![a-z0-9])", re.IGNORECASE)


# Names that identify an architecture on their own ...
_NAMES = {
    "mlp": _name_pattern(r"mlp", r"multi[\s-]?layer(?:ed)?[\s-]+perceptron"),
    "cnn": _name_pattern(r"cnn", r"conv[\s-]?net", r"convolutional"),
    "simple_rnn": _name_pattern(r"simple[\s_-]?rnn", r"vanilla[\s_-]?rnn"),
    "lstm": _name_pattern(r"lstm"),
    "gru": _name_pattern(r"gru"),
}
# ... descriptions that do only when no name is given ("a CNN with a dense head" is a CNN) ...
_DESCRIPTIONS = {
    "mlp": _name_pattern(r"dense", r"fully[\s-]connected", r"feed[\s-]?forward"),
    "cnn": _name_pattern(r"conv\w*"),
}
# ... and a plain "RNN", which is the SimpleRNN unless the text names an LSTM or a GRU.
_PLAIN_RNN = _name_pattern(r"rnn")


def architectures_named(text: str) -> frozenset[str]:
    """The architectures a piece of text names, e.g. {"cnn"} for "CNN (2 conv + dense layers)"."""
    names = {arch for arch, pattern in _NAMES.items() if pattern.search(text)}
    if not names & {"lstm", "gru"} and _PLAIN_RNN.search(text):
        names.add("simple_rnn")
    if names:
        return frozenset(names)
    return frozenset(arch for arch, pattern in _DESCRIPTIONS.items() if pattern.search(text))


# --- writing accuracies -----------------------------------------------------------------------------

#: "%" and the words students write for it (English, German, Spanish, French, Italian, Portuguese).
PERCENT_SIGN = r"(?:%|percent\b|prozent\b|por\s?ciento\b|pour\s?cent\b|per\s?cento\b)"

# Words for accuracy in the languages students write (English, German, Spanish, French, Italian, Portuguese);
# "precision" only with its accent, where it is the usual word for accuracy ("precisión", "précision").
ACCURACY_WORDS = (r"genauigkeit|treffer(?:quote|rate)|korrektklassifik\w*|exactitud|precisi[óo]n(?<!precision)"
                  r"|précision|acierto|exactitude|accuratezza|acur[áa]cia|precis[ãa]o")
#: "accuracy", "acc", "accurate" and the words above
ACCURACY_WORD = re.compile(rf"(?<![a-z])acc(?:urac(?:y|ies)|urate)?(?![a-z])|{ACCURACY_WORDS}", re.IGNORECASE)
#: A percentage: "98.1%", "97 percent", "98,1 Prozent" (group 1 the digits, group 2 the sign)
PERCENT = re.compile(rf"(?<![\w.])(\d{{1,3}}(?:\.\d+)?)\s?({PERCENT_SIGN})", re.IGNORECASE)


@dataclass(frozen=True)
class Number:
    value: float  # a fraction in [0, 1]
    resolution: float  # one unit of its last digit, as a fraction
    start: int
    end: int


def as_fraction(match: re.Match[str]) -> Number | None:
    """A matched number (group 1 its digits, group 2 a percent sign) as a fraction; None outside [0, 1]."""
    digits = match.group(1).replace(",", ".")
    value = float(digits)
    decimals = len(digits.partition(".")[2])
    resolution = 10.0 ** -decimals
    if match.group(2) or value > 1:
        value, resolution = value / 100, resolution / 100
    return Number(value, resolution, match.start(), match.end()) if 0 <= value <= 1 else None


def shorten(text: str, limit: int = 160) -> str:
    """Untrusted text quoted in a message: whitespace collapsed, cut at ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
