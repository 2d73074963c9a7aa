"""Static analysis of the written report: the notebook's markdown cells, parsed and never executed or rendered.

Pipeline: ``report_markdown`` (markdown cell sources) -> ``analyze_report`` (sections, tables and stated
accuracies as frozen dataclasses) -> ``judge_claims`` (each stated accuracy against the grader's
measurement) -> the ``check_*`` functions (one :class:`~autograder.score.checks.Outcome` each).

Decisions the checks rely on:

* **Sections** are found as people write them. A heading of any level matches a rubric section when it
  contains the section's title or an alias (assignment.toml ``[[report.sections]]``) as a word,
  case-insensitively, an added plural "s" allowed: "## 3. Results and discussion", "Part 2: Model
  comparison", "### CONCLUSIONS". A top-level paragraph that is only a short bold phrase (``**Results**``,
  ``**Results:**``), starts with one followed by a colon (``**Results:** the table ...``), or is one short
  line ending in a colon (``Results:``) is a pseudo-heading, below every real heading, when it names a
  section; otherwise it stays prose. A section's body runs to the next heading of the same or a higher
  level, across cells, subsections included. A heading that names only this section wins over one that
  names several ("Comparison of models" is Results before it is Architectures); then the longest.
* **Content fallback** when no heading names a section, wherever the content sits (a paragraph, or a
  whole list: some reports are one bullet list): the paragraph or list naming two or more architectures
  with the most layer vocabulary (three terms at least: layer, dense, conv, pool, units, filters, ...)
  is the Architectures section; a table of accuracies (two or more architectures with a number each) or
  else a bullet list of them is the Results section (with the paragraph just before and just after it);
  the longest paragraph or list with a sentence naming two or more architectures and an accuracy-like
  number is the Insights section (with the prose that follows).
* **Words** of a section are those of its paragraphs, list items, inline code and table cells, as a
  student counting the words they wrote would count them: a Results section that is only a table has the
  table's words. Not counted: headings, code blocks, HTML other than tables, and tags. A Results section
  holding a table with an accuracy for every required architecture is long enough whatever its word
  count: the table is the content the section asks for.
* **Numbers** are read in the report's own convention (:func:`decimal_mark`): a report whose numbers show
  decimal commas ("98,1 %") reads "71.818" as a thousands-grouped 71818, one with decimal points reads
  "10,000" as 10000 (:func:`canonical_numbers`, applied before parsing). Words for accuracy, percent,
  training, test, hedges, bounds and other quantities are known in German, Spanish, French, Italian and
  Portuguese as well as English; so are the section aliases (assignment.toml).
* **Tables** are GFM markdown tables or HTML ``<table>`` elements, read whatever their headers say. A
  column is an accuracy column unless its header names another quantity (parameters, time, epochs, loss,
  error, ...) — or, for a header that names nothing known, unless none of its cells looks like an accuracy.
  Every number in an accuracy cell is a stated accuracy of the row's architecture (the first cell, outside the accuracy
  columns, that names exactly one), kinded per value: by the cell's own label ("99.9 (train)"), by
  position when the header lists as many labels as the cell has numbers ("Accuracy (val / test)",
  "Train / test acc"), else by the header. Training accuracies are the only ones not compared with the
  grader's measurement; validation accuracies are (on MNIST they sit within a fraction of a point of
  test accuracy). A header such as "Test accuracy (val / test)" therefore never hides a value. A table
  with architectures as columns and metrics as rows is read transposed.
* **Prose claims** are sentences (paragraphs and list items) that name exactly one architecture and
  exactly one accuracy-like number, unhedged. Prose extraction stays conservative: a missed prose claim
  earns nothing (the claims check needs stated accuracies and the table is always read), an invented one
  would cost an honest student points.
* **Judging a claim** (``judge_claims``): it agrees when it is within the architecture's tolerance of the
  grader's measurement on the 10,000 MNIST test images. The tolerance comes from the measured run-to-run
  spread (``claim_limits``): ``max(claim_tolerance, claim_spread_sigmas x std)`` of the calibration's test
  accuracy over seeds, plus ``claim_machine_margin`` for other machines (laptops, GPUs, thread counts),
  never more than ``claim_tolerance_cap``. A claim that equals, to the digits it states, a number the
  submitted notebook itself printed (its original outputs, kept by intake as untrusted evidence: see
  :class:`PrintedAccuracy`) is honest unless the grader's measurement makes that printed run implausible,
  i.e. the printed number is further from it than ``max(tolerance + claim_printed_margin (capped),
  claim_printed_error_share x (1 - measured))``. The second term is there because run-to-run spread grows
  with a model's error rate (the calibration's standard deviations are up to about a tenth of the error
  rate; a one-epoch network on a slice of MNIST differs by several points between runs): a weak model's
  printed run may be further from the re-run than a strong one's. Printed numbers never earn points; they
  only excuse a re-run that landed elsewhere. For a model near the reference's quality every bound stays
  under two points, so a claim two or more points above everything measured and printed is wrong. A
  claim about a model that failed an integrity check is never a match. Several table rows for one
  architecture are all checked: they pass when each agrees, or as a sweep whose best row agrees.
* **False numbers weigh on every part that states them.** A number the grader's measurement contradicts
  (``FALSE``: wrong, and no plausible printed run explains it) earns no table row, no share of the Results section holding it,
  and no claims share; an inflated one also discounts the insights that name its architecture. Each in
  proportion to the architectures stated, so a report of inflated numbers keeps only its prose, one wrong
  number costs its architecture's share, and a plausible re-run difference (``PRINTED``) costs nothing.
* **Only the student's text counts**: a markdown cell equal (whitespace aside) to one of the student
  template's is the homework's own instructions and is skipped. A template that cannot be read is an
  ``AssignmentError``, never an empty template (its instructions would then count as report text).
* The text is untrusted: each cell is cut at ``MAX_CELL_CHARS`` and the whole report at
  ``MAX_REPORT_CHARS``; printed outputs at ``MAX_OUTPUT_CHARS`` per output, ``MAX_OUTPUTS_CHARS`` per
  notebook and ``MAX_PRINTED`` numbers; markup such as ``<script>`` or ANSI escapes is only ever text.
"""
from __future__ import annotations

import functools
import json
import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from autograder.assignment import ARCHITECTURE_TITLES, ARCHITECTURES, Assignment, AssignmentError
from autograder.score.checks import NotAssessed, Outcome, failed, passed

MAX_CELL_CHARS = 50_000  # a long report is ~5k characters; anything near this is not prose
MAX_REPORT_CHARS = 200_000  # ~30k words: far beyond any report, and parsed in a few seconds at worst
MAX_OUTPUT_CHARS = 100_000  # of each original output, its end (final epochs and evaluations come last)
MAX_OUTPUTS_CHARS = 2_000_000  # of all original outputs of one notebook
MAX_PRINTED = 400  # printed numbers kept per notebook: the last distinct ones
MAX_PRINTED_TEXT = 120  # characters of the output line kept with each printed number
ARCHITECTURES_SECTION = "Architectures"  # the rubric section a description of several architectures' layers stands in for
RESULTS = "Results"  # the rubric section a table or list of accuracies stands in for
INSIGHTS = "Insights"  # the rubric section check_insights reads (assignment.toml [[report.sections]])
PSEUDO_LEVEL = 7  # a bold pseudo-heading ranks below every markdown heading (levels 1-6)
_PSEUDO_MAX_WORDS = 6

# CommonMark plus GFM tables; the preset caps nesting depth, so adversarial input stays cheap to parse.
_MARKDOWN = MarkdownIt("commonmark").enable("table")


# --- rules from assignment.toml [report] ------------------------------------------------------------

#: assignment.toml [report] key -> ClaimRules field
_RULE_KEYS = {"claim_tolerance": "tolerance_floor", "claim_spread_sigmas": "spread_sigmas",
              "claim_machine_margin": "machine_margin", "claim_printed_margin": "printed_margin",
              "claim_tolerance_cap": "cap", "claim_printed_error_share": "printed_error_share",
              "list_table_credit": "list_table_credit",
              "inflated_insights_credit": "inflated_insights_credit"}


@dataclass(frozen=True)
class ClaimRules:
    """How far a stated accuracy may be from the grader's measurement, and what q8 credit depends on it."""

    tolerance_floor: float = 0.01  # rounding and ordinary noise: no tolerance is smaller
    spread_sigmas: float = 3.0  # standard deviations of the calibration's test accuracy over seeds
    machine_margin: float = 0.005  # other machines: laptops, GPUs, thread counts, library versions
    printed_margin: float = 0.004  # extra for a number the notebook itself printed
    cap: float = 0.019  # no tolerance reaches two points
    printed_error_share: float = 0.4  # a printed run is plausible within this share of the model's error rate
    list_table_credit: float = 0.6  # a bullet list of accuracies instead of a table: share of table credit
    inflated_insights_credit: float = 0.5  # insights naming an architecture whose claim is inflated

    @classmethod
    def from_assignment(cls, assignment: Assignment) -> ClaimRules:
        """The [report] table's rules (ranges checked by the assignment schema when it was loaded)."""
        table = assignment.raw.get("report", {})
        return cls(**{name: float(table[key]) for key, name in _RULE_KEYS.items() if key in table})


def _test_accuracy_std(calibration: Mapping[str, Any], arch: str) -> float:
    """The calibration's standard deviation of one architecture's test accuracy over seeds (0 if unknown)."""
    spread = calibration.get("architectures", {}).get(arch, {}).get("test_accuracy", {})
    if isinstance(spread.get("std"), (int, float)):
        return float(spread["std"])
    runs = [r for r in spread.get("runs", ()) if isinstance(r, (int, float))]
    if len(runs) < 2:
        return 0.0
    mean = sum(runs) / len(runs)
    return math.sqrt(sum((r - mean) ** 2 for r in runs) / len(runs))


@dataclass(frozen=True)
class ClaimLimits:
    """Per architecture: the tolerance of any claim, and the bound for a run the notebook printed."""

    tolerance: Mapping[str, float]
    printed_bound: Mapping[str, float]
    printed_error_share: float = 0.0  # the bound widens to this share of the measured model's error rate

    def plausible_printed_gap(self, arch: str, measured: float) -> float:
        """How far a printed run may be from the grader's measurement of the same model."""
        return max(self.printed_bound.get(arch, 0.0), self.printed_error_share * (1 - measured))


def claim_limits(rules: ClaimRules, calibration: Mapping[str, Any]) -> ClaimLimits:
    """Tolerances from the measured run-to-run spread (see the module doc for the formula)."""
    tolerance, bound = {}, {}
    for arch in ARCHITECTURES:
        spread = max(rules.tolerance_floor, rules.spread_sigmas * _test_accuracy_std(calibration, arch))
        tolerance[arch] = round(min(rules.cap, spread + rules.machine_margin), 4)
        bound[arch] = round(min(rules.cap, tolerance[arch] + rules.printed_margin), 4)
    return ClaimLimits(tolerance, bound, rules.printed_error_share)


# --- what the analysis finds ------------------------------------------------------------------------

@dataclass(frozen=True)
class Section:
    """One rubric section as found in the report (``found_by`` is None when neither heading nor content is)."""

    title: str
    heading: str | None  # the heading that starts it (None when found by its content)
    words: int
    architectures: frozenset[str]  # architectures its prose names
    found_by: str | None = None  # "heading" or "content: <what stood in for it>"
    span: tuple[int, int] = (0, 0)  # its blocks, [start, end), for claims located in it

    @property
    def present(self) -> bool:
        return self.found_by is not None

    @property
    def label(self) -> str:
        return repr(self.heading) if self.heading is not None else f"({self.found_by})"


@dataclass(frozen=True)
class TableRow:
    cells: tuple[str, ...]
    architecture: str | None
    accuracy: float | None  # a fraction in [0, 1]: the row's first non-training accuracy


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    accuracy_header: str | None  # the header of the first accuracy column, if any
    rows: tuple[TableRow, ...]
    block: int = -1  # index of its block, to locate it in a section

    @property
    def architectures(self) -> frozenset[str]:
        """The architectures it gives an accuracy for."""
        return frozenset(row.architecture for row in self.rows if row.architecture and row.accuracy is not None)

    @property
    def rows_without_accuracy(self) -> frozenset[str]:
        """The architectures it has a row for but no accuracy ("not done", "crashed", "—")."""
        return frozenset(row.architecture for row in self.rows if row.architecture and row.accuracy is None)


@dataclass(frozen=True)
class Claim:
    """An accuracy the report states for one architecture."""

    architecture: str
    accuracy: float  # a fraction in [0, 1]
    source: str  # "table", "list" (a list item) or "prose"
    quote: str  # the row or sentence, shortened, for messages
    kind: str = "test"  # "test", "validation" or "unspecified" (training accuracies are no claims)
    resolution: float = 0.0001  # one unit of the last digit stated, as a fraction
    block: int = -1  # index of the block it is in, to locate it in a section
    row: tuple[int, int] | None = None  # (block, row) of a table row: rows of one architecture form a sweep


@dataclass(frozen=True)
class ReportAnalysis:
    sections: tuple[Section, ...]  # one per rubric section, in rubric order
    tables: tuple[Table, ...]
    claims: tuple[Claim, ...]
    headings: tuple[str, ...]  # every heading, for TA-facing details
    truncated: bool  # the input was cut at MAX_CELL_CHARS / MAX_REPORT_CHARS

    def section(self, title: str) -> Section:
        for section in self.sections:
            if section.title == title:
                return section
        raise KeyError(f"the report rubric has no section titled {title!r}")


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


# --- markdown to blocks -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Heading:
    level: int
    text: str
    written: str | None = None  # a pseudo-heading's paragraph as written: prose again if it names no section
    rest: str = ""  # a bold lead-in's text after the colon


@dataclass(frozen=True)
class _Prose:
    text: str
    listed: bool = False  # a list item


_WORD = re.compile(r"[^\W_]+(?:[.,'’-][^\W_]+)*")


def _word_count(text: str) -> int:
    return len(_WORD.findall(text))


def _inline_text(token: Token) -> str:
    """Plain text of an inline token: emphasis and links unwrapped, HTML tags and images dropped."""
    parts = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts)


def _pseudo_heading(token: Token) -> _Heading | None:
    """A top-level paragraph that reads as a heading: ``**Results**``, ``**Results:** text``, ``Results:``."""
    children = [c for c in token.children or () if not (c.type == "text" and not c.content.strip())]
    text = " ".join(_inline_text(token).split())
    if children and children[0].type == "strong_open":
        close = next((i for i, c in enumerate(children) if c.type == "strong_close"), None)
        if close is None:
            return None
        bold = "".join(c.content for c in children[1:close] if c.type in ("text", "code_inline")).strip()
        after = "".join(c.content if c.type in ("text", "code_inline") else " " for c in children[close + 1:])
        after = " ".join(after.split())
        if after and not (bold.endswith(":") or after.startswith(":")):
            return None  # a bold phrase opening a sentence, not a heading
        title, rest = bold.rstrip(":").strip(), after.lstrip(":").strip()
    elif text.endswith(":") and not any(c.type in ("softbreak", "hardbreak") for c in children):
        title, rest = text.rstrip(":").strip(), ""
    else:
        return None
    if not title or _word_count(title) > _PSEUDO_MAX_WORDS:
        return None
    return _Heading(PSEUDO_LEVEL, title, written=text, rest=rest)


def _table(tokens: Sequence[Token]) -> list[list[str]]:
    """The cell texts of one table's tokens, header row first (GFM pads short rows)."""
    rows: list[list[str]] = []
    for token in tokens:
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline":
            rows[-1].append(" ".join(_inline_text(token).split()))
    return rows


class _HtmlTables(HTMLParser):
    """The cell texts of the ``<table>`` elements of an HTML fragment, header row first; the rest is ignored."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "table":  # a table nested in a cell ends that cell's text
            self.tables.append([])
            self._cell = None
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self.tables:
            if not self.tables[-1]:
                self.tables[-1].append([])
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _html_tables(html: str) -> list[list[list[str]]]:
    """The tables of an HTML block, rows padded to the widest (as GFM pads a table's short rows)."""
    parser = _HtmlTables()
    parser.feed(html)
    parser.close()
    tables = []
    for rows in parser.tables:
        rows = [row for row in rows if row]
        if len(rows) >= 2:
            width = max(len(row) for row in rows)
            tables.append([row + [""] * (width - len(row)) for row in rows])
    return tables


def _blocks(markdown: str) -> Iterator[_Heading | _Prose | list[list[str]]]:
    """Headings, pseudo-headings, prose paragraphs and tables (markdown or HTML ``<table>``) in order; code
    blocks and other HTML are skipped."""
    tokens = _MARKDOWN.parse(markdown)
    lists = 0
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "html_block" and "<table" in token.content.lower():
            # A table with blank lines inside is several HTML blocks: read them up to its end as one.
            html = [token.content]
            while "</table" not in html[-1].lower() and i + 1 < len(tokens) and tokens[i + 1].type == "html_block":
                i += 1
                html.append(tokens[i].content)
            yield from _html_tables("".join(html))
        elif token.type in ("bullet_list_open", "ordered_list_open"):
            lists += 1
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            lists -= 1
        elif token.type == "heading_open":
            yield _Heading(int(token.tag[1:]), _inline_text(tokens[i + 1]).strip())
            i += 2
        elif token.type == "table_open":
            end = next(j for j in range(i, len(tokens)) if tokens[j].type == "table_close")
            yield _table(tokens[i:end])
            i = end
        elif token.type == "paragraph_open" and token.level == 0 and (pseudo := _pseudo_heading(tokens[i + 1])):
            yield pseudo
            i += 2
        elif token.type == "inline":  # a paragraph, also inside lists and block quotes
            yield _Prose(_inline_text(token), listed=lists > 0)
        i += 1


def _resolve_pseudo_headings(blocks: Iterable[Any], patterns: Sequence[re.Pattern[str]]) -> list[Any]:
    """Pseudo-headings that name a rubric section stay headings (their lead-in text becomes prose);
    the others are the paragraphs they were."""
    resolved: list[Any] = []
    for block in blocks:
        if isinstance(block, _Heading) and block.written is not None:
            if any(p.search(block.text) for p in patterns):
                resolved.append(_Heading(block.level, block.text))
                if block.rest:
                    resolved.append(_Prose(block.rest))
            else:
                resolved.append(_Prose(block.written))
        else:
            resolved.append(block)
    return resolved


# --- sections ---------------------------------------------------------------------------------------

def _term_pattern(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(term)}s?(?!\w)", re.IGNORECASE)


def _block_words(block: _Prose | list[list[str]]) -> int:
    if isinstance(block, _Prose):
        return _word_count(block.text)
    return sum(_word_count(cell) for row in block for cell in row)


def _named_in(blocks: Iterable[Any]) -> frozenset[str]:
    return frozenset().union(*(architectures_named(s) for b in blocks if isinstance(b, _Prose)
                               for s in _sentences(b.text)))


def _make_section(title: str, heading: str | None, found_by: str, blocks: Sequence[Any],
                  start: int, end: int) -> Section:
    body = [b for b in blocks[start:end] if not isinstance(b, _Heading)]
    return Section(title, heading, sum(_block_words(b) for b in body), _named_in(body), found_by, (start, end))


def _sections_by_heading(rubric: Sequence[Any], blocks: Sequence[Any]) -> dict[str, Section]:
    patterns = {s.title: [_term_pattern(t) for t in (s.title, *s.aliases)] for s in rubric}
    matches = {i: {title for title, ps in patterns.items() if any(p.search(b.text) for p in ps)}
               for i, b in enumerate(blocks) if isinstance(b, _Heading)}
    matches = {i: titles for i, titles in matches.items() if titles}
    # Words before each block, so that any span's words cost one subtraction (a hostile report may hold
    # thousands of matching headings).
    words_before = [0]
    for block in blocks:
        words_before.append(words_before[-1] + (0 if isinstance(block, _Heading) else _block_words(block)))
    spans = {}
    for i in matches:
        level = blocks[i].level
        end = next((j for j in range(i + 1, len(blocks))
                    if isinstance(blocks[j], _Heading) and blocks[j].level <= level), len(blocks))
        spans[i] = (i + 1, end)
    found: dict[str, Section] = {}
    for title in patterns:
        candidates = [i for i, titles in matches.items() if title in titles]
        if candidates:
            # A heading naming only this section first, then the longest section.
            best = max(candidates, key=lambda i: (len(matches[i]) == 1, words_before[spans[i][1]] - words_before[i + 1],
                                                  -i))
            found[title] = _make_section(title, blocks[best].text, "heading", blocks, *spans[best])
    return found


def _results_by_content(blocks: Sequence[Any], claims: Sequence[Claim]) -> Section | None:
    """A table, or else a list, stating accuracies for two or more architectures stands in for Results."""
    def archs_by_block(source: str) -> dict[int, set[str]]:
        by_block: dict[int, set[str]] = {}
        for claim in claims:
            if claim.source == source:
                by_block.setdefault(claim.block, set()).add(claim.architecture)
        return by_block

    tables = {i: archs for i, archs in archs_by_block("table").items() if len(archs) >= 2}
    items = archs_by_block("list")
    if tables:
        start = max(tables, key=lambda i: len(tables[i]))
        end, what = start + 1, "a table of accuracies"
    elif len(set().union(*items.values()) if items else ()) >= 2:
        # The run of list items around the first item stating an accuracy.
        start = end = min(items)
        while start > 0 and isinstance(blocks[start - 1], _Prose) and blocks[start - 1].listed:
            start -= 1
        while end < len(blocks) and isinstance(blocks[end], _Prose) and blocks[end].listed:
            end += 1
        what = "a list of accuracies"
    else:
        return None
    # The paragraph introducing it and the one commenting on it belong to it.
    if start > 0 and isinstance(blocks[start - 1], _Prose):
        start -= 1
    if end < len(blocks) and isinstance(blocks[end], _Prose):
        end += 1
    return _make_section(RESULTS, None, f"content: {what}", blocks, start, end)


def _prose_units(blocks: Sequence[Any]) -> list[tuple[int, int]]:
    """Spans of prose read as one piece: a paragraph, or a whole list (a report may be one bullet list)."""
    units, i = [], 0
    while i < len(blocks):
        end = i + 1
        if isinstance(blocks[i], _Prose):
            while blocks[i].listed and end < len(blocks) and isinstance(blocks[end], _Prose) and blocks[end].listed:
                end += 1
            units.append((i, end))
        i = end
    return units


def _unit_text(blocks: Sequence[Any], unit: tuple[int, int]) -> str:
    return " ".join(b.text for b in blocks[unit[0]:unit[1]])


# What a description of architectures talks about: at least three of these.
_LAYER_TERM = re.compile(r"(?<![a-z])(layer|dense|conv|pool|unit|filter|dropout|flatten|neuron|kernel|softmax|relu"
                         r"|hidden|gate|stride|padding|activation"
                         r"|capa|schicht|couche|filtro|unidad|einheit|unité|oculta|verborgen)", re.IGNORECASE)
_MIN_LAYER_TERMS = 3


def _architectures_by_content(blocks: Sequence[Any]) -> Section | None:
    """The paragraph or list that describes the most layers of two or more architectures."""
    def layer_terms(unit: tuple[int, int]) -> int:
        return len({m.group(1).lower() for m in _LAYER_TERM.finditer(_unit_text(blocks, unit))})

    candidates = [u for u in _prose_units(blocks)
                  if len(architectures_named(_unit_text(blocks, u))) >= 2 and layer_terms(u) >= _MIN_LAYER_TERMS]
    if not candidates:
        return None
    best = max(candidates, key=lambda u: (layer_terms(u), _word_count(_unit_text(blocks, u))))
    return _make_section(ARCHITECTURES_SECTION, None, "content: a description of the layers of several architectures",
                         blocks, *best)


def _insights_by_content(blocks: Sequence[Any]) -> Section | None:
    """The longest paragraph (or list) comparing two or more architectures with numbers, and the prose after it."""
    def compares(unit: tuple[int, int]) -> bool:
        # Numbers, and a sentence that names two architectures: a list of one accuracy per architecture
        # is a results summary, not a comparison.
        sentences = [s for b in blocks[unit[0]:unit[1]] for s in _sentences(b.text)]
        return (any(len(architectures_named(s)) >= 2 for s in sentences)
                and any(_accuracy_numbers(s) for s in sentences))

    candidates = [u for u in _prose_units(blocks) if compares(u)]
    if not candidates:
        return None
    start, end = max(candidates, key=lambda u: _word_count(_unit_text(blocks, u)))
    while end < len(blocks) and isinstance(blocks[end], _Prose):
        end += 1
    return _make_section(INSIGHTS, None, "content: a paragraph comparing architectures with numbers",
                         blocks, start, end)


def _find_sections(rubric: Sequence[Any], blocks: Sequence[Any], claims: Sequence[Claim]) -> tuple[Section, ...]:
    found = _sections_by_heading(rubric, blocks)
    titles = [s.title for s in rubric]
    if RESULTS in titles and RESULTS not in found:
        if (results := _results_by_content(blocks, claims)) is not None:
            found[RESULTS] = results
    if ARCHITECTURES_SECTION in titles and ARCHITECTURES_SECTION not in found:
        if (architectures := _architectures_by_content(blocks)) is not None:
            found[ARCHITECTURES_SECTION] = architectures
    if INSIGHTS in titles and INSIGHTS not in found:
        if (insights := _insights_by_content(blocks)) is not None:
            found[INSIGHTS] = insights
    return tuple(found.get(s.title, Section(s.title, None, 0, frozenset())) for s in rubric)


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

#: "%" and the words students write for it (English, German, Spanish, French, Italian, Portuguese).
_PERCENT_SIGN = r"(?:%|percent\b|prozent\b|por\s?ciento\b|pour\s?cent\b|per\s?cento\b)"
_NUMBER = re.compile(rf"(?<![\w.])(\d+(?:[.,]\d+)?|[.,]\d+)\s*({_PERCENT_SIGN})?", re.IGNORECASE)
# "by 1.5%", "+1.5%", "±0.2%", or the upper end of a range ("97-98%")
_DIFFERENCE_BEFORE = re.compile(r"(?:\bby\s*|[+±]\s*|\d\s*[–-]\s*)$", re.IGNORECASE)


@dataclass(frozen=True)
class _Number:
    value: float  # a fraction in [0, 1]
    resolution: float  # one unit of its last digit, as a fraction
    start: int
    end: int


def _as_fraction(match: re.Match[str]) -> _Number | None:
    digits = match.group(1).replace(",", ".")
    value = float(digits)
    decimals = len(digits.partition(".")[2])
    resolution = 10.0 ** -decimals
    if match.group(2) or value > 1:
        value, resolution = value / 100, resolution / 100
    return _Number(value, resolution, match.start(), match.end()) if 0 <= value <= 1 else None


def parse_accuracy(cell: str) -> float | None:
    """The first number of a cell as a fraction: "98.1%", "98.1" and "0.981" all give 0.981."""
    match = _NUMBER.search(cell)
    number = _as_fraction(match) if match else None
    return number.value if number else None


def _cell_numbers(cell: str) -> list[_Number]:
    """The accuracies in a table cell: the first number, and any later one that is not a difference or
    a bound ("± 0.2", "97-98") and looks like an accuracy."""
    numbers = []
    for match in _NUMBER.finditer(cell):
        number = _as_fraction(match)
        if number is None or _DIFFERENCE_BEFORE.search(cell[max(0, match.start() - 12):match.start()]):
            continue
        if numbers and number.value < _PLAUSIBLE:
            continue
        numbers.append(number)
    return numbers


# --- tables -----------------------------------------------------------------------------------------

# Words for accuracy in the languages students write (English, German, Spanish, French, Italian, Portuguese);
# "precision" only with its accent, where it is the usual word for accuracy ("precisión", "précision").
_ACCURACY_WORDS = (r"genauigkeit|treffer(?:quote|rate)|korrektklassifik\w*|exactitud|precisi[óo]n(?<!precision)"
                   r"|précision|acierto|exactitude|accuratezza|acur[áa]cia|precis[ãa]o")
_ACCURACY_HEADER = re.compile(rf"acc|score|perf|result|top[\s-]?1|correct|test|val|%|ergebnis|prueba|{_ACCURACY_WORDS}",
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
_VALIDATION = re.compile(r"(?<![a-z])val(?:id\w*)?(?![a-z])|val_", re.IGNORECASE)
_TEST = re.compile(r"(?<![a-z])(?:test|prueba)", re.IGNORECASE)
_HEADER_LIST = re.compile(r"([a-z]\w*)\s*/\s*([a-z]\w*)(?:\s*/\s*([a-z]\w*))?", re.IGNORECASE)
_STRICT_ACCURACY = re.compile(r"%|(?<![\w.])(?:0?\.\d{2,}|[5-9]\d\.\d+|100\.0*)(?![\w.])")


def _kind(text: str) -> str | None:
    """What a label says a number is: "training", "validation", "test", or None."""
    has = {kind for kind, p in (("training", _TRAINING), ("validation", _VALIDATION), ("test", _TEST)) if p.search(text)}
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
    if re.search(rf"acc|{_ACCURACY_WORDS}", header, re.IGNORECASE):
        return True
    if _OTHER_HEADER.search(header):
        return False
    # A known accuracy word, or a header saying nothing known whose cells look like accuracies.
    return bool(_ACCURACY_HEADER.search(header)) or any(_STRICT_ACCURACY.search(c) for c in cells)


def _value_kinds(header: str, cell: str, numbers: Sequence[_Number]) -> list[str]:
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


def _read_table(rows: list[list[str]], block: int) -> tuple[Table, list[Claim]]:
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
            numbers = _cell_numbers(cells[i])
            for number, kind in zip(numbers, _value_kinds(header[i], cells[i], numbers)):
                if kind in ("training", "other"):
                    continue
                accuracy = number.value if accuracy is None else accuracy
                if architecture:
                    claims.append(Claim(architecture, number.value, "table",
                                        _shorten("| " + " | ".join(cells) + " |"), kind, number.resolution,
                                        block, (block, r)))
        table_rows.append(TableRow(tuple(cells), architecture, accuracy))
    accuracy_header = header[columns[0]] if columns else None
    return Table(tuple(header), accuracy_header, tuple(table_rows), block), claims


# --- prose claims -----------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_PERCENT = re.compile(rf"(?<![\w.])(\d{{1,3}}(?:\.\d+)?)\s?({_PERCENT_SIGN})", re.IGNORECASE)
_FRACTION = re.compile(rf"(?<![\w.])(0?\.\d+)(?!\w|\.\d|\s?{_PERCENT_SIGN})()", re.IGNORECASE)
_ACCURACY_WORD = re.compile(rf"(?<![a-z])acc(?:urac(?:y|ies)|urate)?(?![a-z])|{_ACCURACY_WORDS}", re.IGNORECASE)
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
_PLAUSIBLE = 0.5  # without the word "accuracy", smaller numbers are more likely differences than accuracies
_CHANCE = 0.1  # a stated or printed accuracy is at least chance: a weak one-epoch model's run may print 0.42


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def _accuracy_numbers(sentence: str) -> list[_Number]:
    """Accuracy-like numbers in a sentence: plausible percentages, and fractions next to an accuracy word."""
    matches = list(_PERCENT.finditer(sentence))
    about_accuracy = bool(_ACCURACY_WORD.search(sentence))
    if about_accuracy:
        matches += _FRACTION.finditer(sentence)
    numbers = []
    for match in matches:
        number = _as_fraction(match)
        if (number is not None and _CHANCE <= number.value
                # Look only near the number: the sentence is untrusted and may be huge.
                and not _DIFFERENCE_BEFORE.search(sentence[max(0, match.start() - 12):match.start()])
                and not _BOUND_BEFORE.search(sentence[max(0, match.start() - 24):match.start()])
                and not _DIFFERENCE_AFTER.match(sentence[match.end():match.end() + 30])):
            numbers.append(number)
    # Numbers well above chance are the accuracies ("with 20% dropout the MLP reaches 97.9% accuracy"); a
    # smaller one is read only from a sentence that says "accuracy" and states nothing higher (a one-epoch
    # GRU's "48.3% test accuracy").
    plausible = [n for n in numbers if n.value >= _PLAUSIBLE]
    return plausible or (numbers if about_accuracy else [])


def _prose_claim(sentence: str, listed: bool, block: int) -> Claim | None:
    named = architectures_named(sentence)
    if len(named) != 1 or _HEDGE.search(sentence) or _TRAINING_ACCURACY.search(sentence):
        return None
    numbers = _accuracy_numbers(sentence)
    if len(numbers) != 1:
        return None
    kind = "validation" if _VALIDATION.search(sentence) and not _TEST.search(sentence) else "test"
    return Claim(next(iter(named)), numbers[0].value, "list" if listed else "prose", _shorten(sentence), kind,
                 numbers[0].resolution, block)


def _shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --- what the notebook printed ----------------------------------------------------------------------

@dataclass(frozen=True)
class PrintedAccuracy:
    """An accuracy-like number the submitted notebook's own outputs showed: untrusted evidence.

    Kept by intake before it clears the outputs. It never earns points; it only shows that a claim is what
    the student's own run printed (see :func:`judge_claims`).
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


def _printed_numbers(line: str) -> Iterator[_Number]:
    """Accuracy-like numbers of one output line, at least chance: percentages, fractions with two or more
    decimals, and 50-100 with decimals on a line about accuracy; not those labelled as training accuracy (also the bare
    "accuracy" of a Keras progress line), loss or another metric."""
    patterns = [_PERCENT, _PRINTED_FRACTION] + ([_PRINTED_BARE_PERCENT] if _ACCURACY_WORD.search(line) else [])
    progress_line = bool(_PROGRESS_LINE.search(line))
    for pattern in patterns:
        for match in pattern.finditer(line):
            number = _as_fraction(match)
            label = line[max(0, match.start() - 24):match.start()]
            if (number is not None and number.value >= _CHANCE and not _PRINTED_NOT_TEST.search(label)
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
        in_code = architectures_named(source[:MAX_CELL_CHARS])
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
                    found[key] = PrintedAccuracy(number.value, arch, _shorten(line, MAX_PRINTED_TEXT), index)
                    if len(found) > MAX_PRINTED:
                        found.popitem(last=False)
    return tuple(found.values())


# --- entry points -----------------------------------------------------------------------------------

def report_markdown(nb: Any) -> list[str]:
    """The sources of the markdown cells of an nbformat notebook, in order."""
    sources = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            source = cell.get("source", "")
            sources.append(source if isinstance(source, str) else "".join(source))
    return sources


def _normalised(text: str) -> str:
    return " ".join(text.split())


@functools.lru_cache(maxsize=4)
def _instructions(template: str) -> frozenset[str]:
    """The markdown cells of the student template's text, whitespace-normalised."""
    try:
        notebook = json.loads(template)
    except ValueError as exc:
        raise AssignmentError(f"assignment.student_dir: the student template is not a notebook: {exc}") from exc
    if not isinstance(notebook, dict):
        raise AssignmentError("assignment.student_dir: the student template is not a notebook")
    return frozenset(_normalised(source) for source in report_markdown(notebook))


def template_markdown(assignment: Assignment) -> frozenset[str]:
    """The markdown the homework itself hands out (instructions, question headings), whitespace-normalised.

    A submitted cell equal to one of them is the instructor's text, not the student's report: its words and
    its mentions of architectures and layers earn nothing (the unfilled template scores zero). A template
    that cannot be read raises ``AssignmentError``.
    """
    return _instructions(assignment.student_template())


def analyze_report(markdown_cells: list[str], assignment: Assignment) -> ReportAnalysis:
    """Parse the report's markdown cells once into everything the report checks need."""
    truncated = False
    texts: list[str] = []
    budget = MAX_REPORT_CHARS
    instructions = template_markdown(assignment)
    for source in markdown_cells:
        if _normalised(source[:MAX_CELL_CHARS + 1]) in instructions:
            continue
        text = source[:min(MAX_CELL_CHARS, budget)]
        truncated |= len(text) < len(source)
        budget -= len(text)
        if text:
            texts.append(text)
    decimal = decimal_mark(texts)
    parsed: list[Any] = []
    for text in texts:  # cell by cell: an unclosed code fence ends with its cell
        parsed.extend(_blocks(canonical_numbers(text, decimal)))
    terms = [_term_pattern(t) for s in assignment.report_sections for t in (s.title, *s.aliases)]
    blocks = _resolve_pseudo_headings(parsed, terms)

    tables, claims = [], []
    for i, block in enumerate(blocks):
        if isinstance(block, list):
            table, table_claims = _read_table(block, i)
            tables.append(table)
            claims += table_claims
        elif isinstance(block, _Prose):
            claims += [claim for sentence in _sentences(block.text)
                       if (claim := _prose_claim(sentence, block.listed, i))]
    sections = _find_sections(assignment.report_sections, blocks, claims)
    headings = tuple(b.text for b in blocks if isinstance(b, _Heading))
    return ReportAnalysis(sections, tuple(tables), tuple(claims), headings, truncated)


# --- judging claims ---------------------------------------------------------------------------------

AGREES = "agrees"  # within the architecture's tolerance of the grader's measurement
PRINTED = "printed"  # what the notebook printed, and the grader's measurement makes that run plausible
SWEEP = "sweep"  # a lower row of a sweep whose best row agrees
WRONG = "wrong"  # neither
INTEGRITY = "integrity"  # about a model that failed an integrity check: never a match
NOT_SUBMITTED = "not_submitted"  # about an architecture the notebook has no model for
NOT_MEASURED = "not_measured"  # the grader found the model but could not measure it: left out
HONEST = frozenset({AGREES, PRINTED, SWEEP})
#: A number the grader's measurement contradicts (and no plausible printed run explains). A claim about a
#: flagged model may be the true number of a dishonest model, and one about a model the grader has not got
#: may come from a run that was lost (a timeout): both are charged by the claims check and the model's own
#: question, not again as false numbers.
FALSE = frozenset({WRONG})


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    status: str  # one of the statuses above
    measured: float | None
    tolerance: float
    printed: PrintedAccuracy | None = None  # the printed number that makes it honest

    @property
    def false(self) -> bool:
        return self.status in FALSE

    @property
    def inflated(self) -> bool:
        """A false claim that says more than the grader measured, or vouches for a model it cannot credit."""
        return self.status in (INTEGRITY, NOT_SUBMITTED) or (
            self.status == WRONG and self.measured is not None and self.claim.accuracy > self.measured)


def _printed_match(claim: Claim, measured: float, bound: float,
                   printed: Iterable[PrintedAccuracy]) -> PrintedAccuracy | None:
    """A number the notebook printed for this architecture (or for none named) that the claim states to
    its own digits, from a run the grader's measurement makes plausible."""
    for number in printed:
        if (number.architecture in (claim.architecture, None)
                and abs(number.value - claim.accuracy) <= claim.resolution + 1e-9
                and abs(number.value - measured) <= bound + 1e-9):
            return number
    return None


def judge_claims(analysis: ReportAnalysis, measured: Mapping[str, float], limits: ClaimLimits, *,
                 printed: Sequence[PrintedAccuracy] = (), failed_integrity: frozenset[str] = frozenset(),
                 not_submitted: frozenset[str] = frozenset()) -> tuple[Verdict, ...]:
    """Each claim against the grader's measurement on the MNIST test images (see the module doc)."""
    verdicts = []
    for claim in analysis.claims:
        arch = claim.architecture
        tolerance = limits.tolerance.get(arch, 0.0)
        value = measured.get(arch)
        match = None
        if arch in not_submitted:
            status = NOT_SUBMITTED
        elif arch in failed_integrity:
            status = INTEGRITY
        elif value is None:
            status = NOT_MEASURED
        elif abs(claim.accuracy - value) <= tolerance + 1e-9:  # 1e-9: exactly at the tolerance is within it
            status = AGREES
        elif match := _printed_match(claim, value, limits.plausible_printed_gap(arch, value), printed):
            status = PRINTED
        else:
            status = WRONG
        verdicts.append(Verdict(claim, status, value, tolerance, match))
    return tuple(_sweeps(verdicts))


def _sweeps(verdicts: list[Verdict]) -> list[Verdict]:
    """Several table rows for one architecture: each must agree, or they are a sweep whose best row does."""
    rows: dict[str, dict[tuple[int, int], list[int]]] = {}
    for i, verdict in enumerate(verdicts):
        if verdict.claim.row is not None:
            rows.setdefault(verdict.claim.architecture, {}).setdefault(verdict.claim.row, []).append(i)
    for by_row in rows.values():
        if len(by_row) < 2 or all(verdicts[i].status != WRONG for members in by_row.values() for i in members):
            continue
        best = max(by_row.values(), key=lambda members: max(verdicts[i].claim.accuracy for i in members))
        if all(verdicts[i].status in HONEST for i in best):
            top = max(verdicts[i].claim.accuracy for i in best)
            for members in by_row.values():
                for i in members:
                    if verdicts[i].status == WRONG and verdicts[i].claim.accuracy <= top:
                        verdicts[i] = Verdict(verdicts[i].claim, SWEEP, verdicts[i].measured, verdicts[i].tolerance)
    return verdicts


def false_architectures(verdicts: Iterable[Verdict], sources: Iterable[str] = ("table", "list", "prose"),
                        blocks: tuple[int, int] | None = None) -> frozenset[str]:
    """Architectures the report states a false number for, from ``sources``, within ``blocks`` [start, end)."""
    sources = frozenset(sources)
    return frozenset(v.claim.architecture for v in verdicts if v.false and v.claim.source in sources
                     and (blocks is None or blocks[0] <= v.claim.block < blocks[1]))


def _true_share(verdicts: Iterable[Verdict], blocks: tuple[int, int]) -> float:
    """The share of the architectures whose accuracies a part of the report states that are not false (1 when
    it states none): numbers are part of what a Results section is worth."""
    located = [v for v in verdicts if blocks[0] <= v.claim.block < blocks[1] and v.status != NOT_MEASURED]
    stated = {v.claim.architecture for v in located}
    return 1 - len(false_architectures(located)) / len(stated) if stated else 1.0


# --- checks -----------------------------------------------------------------------------------------

def _titles(archs: Iterable[str]) -> str:
    named = set(archs)
    return ", ".join(ARCHITECTURE_TITLES[a] for a in ARCHITECTURES if a in named)


_LISTED = 20  # items a TA-facing detail lists


def _listing(items: Sequence[str], total: int | None = None) -> str:
    """Items joined for a TA-facing detail, capped: the report is untrusted and may repeat itself.
    ``total`` is the number of items when only the first ``_LISTED`` were rendered."""
    total = len(items) if total is None else total
    more = [f"... and {total - _LISTED} more"] if total > _LISTED else []
    return "; ".join(list(items[:_LISTED]) + more)


def _percent(fraction: float) -> str:
    text = f"{100 * fraction:.2f}".rstrip("0")
    return text + "0%" if text.endswith(".") else text + "%"


def _points(fraction: float) -> str:
    return f"{100 * fraction:.1f} points"


def check_sections(analysis: ReportAnalysis, assignment: Assignment, verdicts: Sequence[Verdict] = ()) -> Outcome:
    """Each rubric section is there (by heading or by content) with at least its minimum number of words.

    A section shorter than its minimum earns its share in proportion to its words: a short section is
    part of the work, not none of it. The Results section's numbers are part of what it is worth: it earns
    the share of the architectures it states accuracies for whose numbers are not false (see
    :func:`judge_claims`), so a Results section of inflated numbers earns nothing and one wrong number costs
    only its architecture's share.
    """
    problems, credit = [], 0.0
    for rubric in assignment.report_sections:
        found = analysis.section(rubric.title)
        length = 1.0
        if not found.present:
            problems.append(f"no '{rubric.title}' section (start it with a markdown heading such as "
                            f"'## {rubric.title}')")
            continue
        if found.words < rubric.min_words and not (
                rubric.title == RESULTS and any(set(assignment.table_architectures) <= t.architectures
                                                for t in analysis.tables if found.span[0] <= t.block < found.span[1])):
            problems.append(f"'{rubric.title}' has {found.words} words; at least {rubric.min_words} are expected")
            length = found.words / rubric.min_words
        true_share = _true_share(verdicts, found.span) if rubric.title == RESULTS else 1.0
        if true_share < 1:
            false = false_architectures(verdicts, blocks=found.span)
            problems.append(f"'{rubric.title}' states accuracies the grader's measurements do not support for "
                            f"{_titles(false)} (see the claims check)")
        credit += length * true_share
    total = len(assignment.report_sections)
    detail = "; ".join(f"{s.title}: {'heading ' + s.label if s.heading is not None else s.label}, {s.words} words"
                       for s in analysis.sections)
    detail += f". Headings seen: {list(analysis.headings[:30])}" + (" (input truncated)" if analysis.truncated else "")
    if not problems:
        return passed(f"All {total} report sections are present and long enough.", detail)
    return Outcome(credit / total, f"Report sections: {'; '.join(problems)}.", detail)


def check_table(analysis: ReportAnalysis, assignment: Assignment, not_submitted: frozenset[str] = frozenset(),
                verdicts: Sequence[Verdict] = ()) -> Outcome:
    """A comparison table (markdown or HTML) gives a numeric accuracy for every required architecture.

    An architecture that only a bullet list gives an accuracy for (one item per architecture, e.g.
    "- CNN: 99.1 %") earns ``list_table_credit`` of its share (assignment.toml [report]). A row that
    honestly says a model the notebook does not have was not done or crashed is the right row for it:
    the missing model is charged once, in its own question (``not_submitted``), not again here. A table's
    numbers are part of what it is worth: a row whose accuracy is false (see :func:`judge_claims`) earns
    nothing, so a table of inflated numbers earns nothing and one wrong number costs only its row.
    """
    honest_gaps = not_submitted & set().union(*(t.rows_without_accuracy for t in analysis.tables))
    required = tuple(a for a in assignment.table_architectures if a not in honest_gaps)
    in_table = set().union(*(t.architectures for t in analysis.tables)) & set(required)
    in_list = {c.architecture for c in analysis.claims if c.source == "list"} & set(required) - in_table
    false = ((false_architectures(verdicts, ("table",)) & in_table)
             | (false_architectures(verdicts, ("list",)) & in_list))
    share = ClaimRules.from_assignment(assignment).list_table_credit
    detail = _listing([f"table {list(t.header)} (accuracy column: {t.accuracy_header!r})" for t in analysis.tables])
    if in_list:
        detail = "; ".join(filter(None, [detail, f"accuracies in a list only: {_titles(in_list)}"]))
    if honest_gaps:
        detail = "; ".join(filter(None, [detail, f"rows without a model, not charged here: {_titles(honest_gaps)}"]))
    if false:
        detail = "; ".join(filter(None, [detail, f"false accuracies: {_titles(false)}"]))
    if not required:  # every row honestly says "not done": the notebook trained nothing to compare
        return failed("The notebook trained none of the architectures, so its table compares no results.", detail)
    missing = [a for a in required if a not in in_table | in_list]
    fraction = (len(in_table - false) + share * len(in_list - false)) / len(required)
    false_note = (f" Its accuracies for {_titles(false)} are not what the grader measured (see the claims check), "
                  f"so {'that row earns' if len(false) == 1 else 'those rows earn'} nothing." if false else "")
    list_note = (f" {_titles(in_list)} {'is' if len(in_list) == 1 else 'are'} only in a list, which earns "
                 f"{100 * share:.0f}% of a table row's credit." if in_list else "")
    if not analysis.tables and not in_list:
        return failed("No markdown table was found in the report; the Results section needs a comparison "
                      "table with one row per architecture and its test accuracy.")
    if not in_table and not in_list:
        return failed("The report's table has no accuracy column (a column of test accuracies, e.g. headed "
                      "'Test accuracy').", detail)
    if not missing and not in_list and not false:
        gaps = (f" (its {'row' if len(honest_gaps) == 1 else 'rows'} for {_titles(honest_gaps)}, a model the "
                "notebook does not have, cost points only in the model's own question)" if honest_gaps else "")
        return passed(f"The comparison table gives an accuracy for all {len(required)} architectures your "
                      f"notebook trained{gaps}.", detail)
    message = (f"The comparison table has no numeric accuracy for: {_titles(missing)}." if missing else
               "The report gives an accuracy for every architecture, but not all in a table." if in_list else
               f"The comparison table gives an accuracy for all {len(required)} architectures.")
    return Outcome(fraction, message + list_note + false_note, detail)


def check_insights(analysis: ReportAnalysis, assignment: Assignment, verdicts: Sequence[Verdict] = ()) -> Outcome:
    """The Insights section is substantive and compares architectures.

    Half the credit is for naming at least two architectures, half for anything else said; both in
    proportion to the length, up to ``min_insight_words`` (a comparison in eight words is a mention, not
    an insight). Insights that name architectures whose stated accuracy is inflated (see
    :func:`judge_claims`) rest on them: insights resting on inflated numbers only earn
    ``inflated_insights_credit``, and each inflated architecture among those named costs its share of that.
    """
    insights = analysis.section(INSIGHTS)
    if not insights.present:
        return failed(f"No '{INSIGHTS}' section was found (start it with a heading such as '## {INSIGHTS}').")
    minimum = assignment.min_insight_words
    length = min(1.0, insights.words / minimum) if minimum else 1.0  # min_insight_words = 0: any length
    compares = len(insights.architectures) >= 2
    inflated = sorted({v.claim.architecture for v in verdicts if v.inflated} & insights.architectures)
    detail = f"{insights.label}, {insights.words} words, names {sorted(insights.architectures)}"
    problems = []
    if length < 1:
        problems.append(f"it has {insights.words} words; at least {minimum} are expected")
    if not compares:
        problems.append("it should compare the architectures with each other (it names "
                        f"{_titles(insights.architectures) or 'none'})")
    fraction = length * (0.5 + 0.5 * compares)
    if inflated:
        # Each architecture named on an inflated number takes its share of the discount.
        discount = 1 - ClaimRules.from_assignment(assignment).inflated_insights_credit
        fraction *= 1 - discount * len(inflated) / len(insights.architectures)
        problems.append(f"it rests on accuracies the grader could not confirm for {_titles(inflated)} "
                        "(see the claims check)")
        detail += f"; inflated claims about {inflated}"
    if not problems:
        return passed(f"The '{INSIGHTS}' section compares {_titles(insights.architectures)}.", detail)
    return Outcome(fraction, f"The '{INSIGHTS}' section: {'; '.join(problems)}.", detail)


def _verdict_detail(verdict: Verdict) -> str:
    claim = verdict.claim
    text = f"{ARCHITECTURE_TITLES[claim.architecture]} {_percent(claim.accuracy)} ({claim.source}"
    text += f", {claim.kind}" if claim.kind != "test" else ""
    text += f": {claim.quote!r}) {verdict.status}"
    if verdict.measured is not None:
        text += f", measured {_percent(verdict.measured)}, tolerance {_points(verdict.tolerance)}"
    if verdict.printed is not None:
        text += f", printed by cell {verdict.printed.cell}: {verdict.printed.text!r}"
    return text


def check_claims(verdicts: Sequence[Verdict]) -> Outcome:
    """Every accuracy the report states is honest: it agrees with the grader's measurement, or it is what
    the notebook printed from a plausible run, or it is a lower row of a sweep whose best row agrees.

    Credit is the share of the architectures compared whose every stated number is honest: one wrong
    number costs its architecture's share. A claim about a model that failed an integrity check is no
    match; one about a model the grader found but could not run is left out. A claim about an
    architecture with no model in the notebook at all is a claim nothing supports: no credit.
    """
    if not verdicts:
        return failed("The report states no accuracies to compare with the grader's measurements "
                      "(give each architecture's test accuracy, e.g. in the comparison table).")
    detail = _listing([_verdict_detail(v) for v in verdicts[:_LISTED]], len(verdicts))
    unsupported = list(dict.fromkeys(v.claim.architecture for v in verdicts if v.status == NOT_SUBMITTED))
    if unsupported:
        return failed(f"Your report states accuracies for {_titles(unsupported)}, but the notebook has no such "
                      "model, so the grader could not measure them.", detail)
    compared = [v for v in verdicts if v.status != NOT_MEASURED]
    if not compared:
        raise NotAssessed(f"The grader could not measure {_titles(v.claim.architecture for v in verdicts)}, the "
                          "architectures your report states accuracies for.")
    flagged = list(dict.fromkeys(v.claim.architecture for v in compared if v.status == INTEGRITY))
    wrong = [v for v in compared if v.status == WRONG]
    if not flagged and not wrong:
        printed = sum(v.status == PRINTED for v in compared)
        note = (f" ({printed} of them {'is' if printed == 1 else 'are'} what your notebook printed, from a run "
                "the grader's re-run makes plausible.)" if printed else "")
        return passed(f"All {len(compared)} accuracies stated in the report agree with the grader's "
                      f"measurements on the MNIST test set.{note}", detail)
    compared_archs = {v.claim.architecture for v in compared}
    dishonest = set(flagged) | {v.claim.architecture for v in wrong}
    fraction = 1 - len(dishonest) / len(compared_archs)
    messages = [f"Your report states an accuracy for the {ARCHITECTURE_TITLES[arch]}, but that model failed the "
                "grader's integrity checks, so no measurement can confirm it." for arch in flagged]
    messages += list(dict.fromkeys(
        f"Your report says the {ARCHITECTURE_TITLES[v.claim.architecture]} reaches {_percent(v.claim.accuracy)} "
        f"but the grader measured {100 * v.measured:.1f}% on the MNIST test set (tolerance {_points(v.tolerance)})."
        for v in wrong))
    more = f" (And {len(messages) - 3} more like these.)" if len(messages) > 3 else ""
    return Outcome(fraction, " ".join(messages[:3]) + more, detail)
