"""Static analysis of the written report: the notebook's markdown cells, parsed and never executed or rendered.

Pipeline: ``report_markdown`` (markdown cell sources) -> ``analyze_report`` (sections, tables and stated
accuracies as frozen dataclasses) -> the ``check_*`` functions (one :class:`~autograder.checks.Outcome` each).

Decisions the checks rely on:

* **Sections.** A heading of any level matches a rubric section when it contains the section's title or
  an alias as a word, case-insensitively, an added plural "s" allowed ("## 3. Discussion of the results",
  "### Conclusions"). The body of a section runs to the next heading of the same or a higher level, across
  cells, subsections included. When several headings match one section, the one with the most words counts.
* **Words** of a section are those of its paragraphs, list items, inline code and table cells, as a
  student counting the words they wrote would count them (the template asks for "at least 30 words
  including the table", and its public check counts the same way). Not counted: headings, code blocks,
  HTML blocks and tags.
* **Tables** are GFM markdown tables. A row belongs to the architecture named by its first cell that names
  any (see :func:`architectures_named`); its accuracy is the first number in the column whose header
  contains "acc" (a "test" column wins over the others). "98.1%", "98.1" and "0.981" all mean 0.981.
  A table with architectures as columns and metrics as rows is read transposed.
* **Claims** are stated accuracies the grader can check against its own measurement: table rows (unless
  the accuracy column is about training or validation data, or the architecture has several rows, e.g. a
  hyperparameter sweep) and prose sentences that name exactly one architecture and exactly one
  accuracy-like number. Prose extraction is deliberately conservative: a missed claim costs nothing, an
  invented one would cost the student points.
* The text is untrusted: each cell is cut at ``MAX_CELL_CHARS`` and the whole report at
  ``MAX_REPORT_CHARS``; markup such as ``<script>`` or ANSI escapes is only ever text.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from autograder.assignment import ARCHITECTURE_TITLES, ARCHITECTURES, Assignment
from autograder.checks import NotAssessed, Outcome, failed, passed

MAX_CELL_CHARS = 50_000  # a long report is ~5k characters; anything near this is not prose
MAX_REPORT_CHARS = 200_000  # ~30k words: far beyond any report, and parsed in a few seconds at worst
INSIGHTS = "Insights"  # the rubric section check_insights reads (assignment.toml [[report.sections]])

# CommonMark plus GFM tables; the preset caps nesting depth, so adversarial input stays cheap to parse.
_MARKDOWN = MarkdownIt("commonmark").enable("table")


# --- what the analysis finds ------------------------------------------------------------------------

@dataclass(frozen=True)
class Section:
    """One rubric section as found in the report (``heading`` is None when no heading matches)."""

    title: str
    heading: str | None
    words: int
    architectures: frozenset[str]  # architectures its prose names

    @property
    def present(self) -> bool:
        return self.heading is not None


@dataclass(frozen=True)
class TableRow:
    cells: tuple[str, ...]
    architecture: str | None
    accuracy: float | None  # a fraction in [0, 1]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    accuracy_header: str | None  # the header of the accuracy column, if any
    rows: tuple[TableRow, ...]


@dataclass(frozen=True)
class Claim:
    """An accuracy the report states for one architecture."""

    architecture: str
    accuracy: float  # a fraction in [0, 1]
    source: str  # "table" or "prose"
    quote: str  # the row or sentence, shortened, for messages


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


@dataclass(frozen=True)
class _Prose:
    text: str


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


def _table(tokens: Sequence[Token]) -> list[list[str]]:
    """The cell texts of one table's tokens, header row first (GFM pads short rows)."""
    rows: list[list[str]] = []
    for token in tokens:
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline":
            rows[-1].append(" ".join(_inline_text(token).split()))
    return rows


def _blocks(markdown: str) -> Iterator[_Heading | _Prose | list[list[str]]]:
    """Headings, prose paragraphs and tables in document order; code and HTML blocks are skipped."""
    tokens = _MARKDOWN.parse(markdown)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "heading_open":
            yield _Heading(int(token.tag[1:]), _inline_text(tokens[i + 1]).strip())
            i += 2
        elif token.type == "table_open":
            end = next(j for j in range(i, len(tokens)) if tokens[j].type == "table_close")
            yield _table(tokens[i:end])
            i = end
        elif token.type == "inline":  # a paragraph, also inside lists and block quotes
            yield _Prose(_inline_text(token))
        i += 1


# --- sections ---------------------------------------------------------------------------------------

def _term_pattern(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(term)}s?(?!\w)", re.IGNORECASE)


def _block_words(block: _Prose | list[list[str]]) -> int:
    if isinstance(block, _Prose):
        return _word_count(block.text)
    return sum(_word_count(cell) for row in block for cell in row)


def _section(title: str, aliases: Iterable[str], blocks: Sequence[Any]) -> Section:
    patterns = [_term_pattern(t) for t in (title, *aliases)]
    best = Section(title, None, 0, frozenset())
    for i, block in enumerate(blocks):
        if not isinstance(block, _Heading) or not any(p.search(block.text) for p in patterns):
            continue
        end = next((j for j in range(i + 1, len(blocks))
                    if isinstance(blocks[j], _Heading) and blocks[j].level <= block.level), len(blocks))
        body = [b for b in blocks[i + 1:end] if not isinstance(b, _Heading)]
        words = sum(_block_words(b) for b in body)
        if best.heading is None or words > best.words:
            prose = [b.text for b in body if isinstance(b, _Prose)]
            named = frozenset().union(*(architectures_named(s) for text in prose for s in _sentences(text)))
            best = Section(title, block.text, words, named)
    return best


# --- tables -----------------------------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?|[.,]\d+)\s*(%|percent\b)?", re.IGNORECASE)
_ACCURACY_HEADER = re.compile(r"acc", re.IGNORECASE)
_TEST_HEADER = re.compile(r"test", re.IGNORECASE)
# "training accuracy", "val acc", "validation", "val_accuracy" (but not "evaluation" or "trained in 30 s")
_NOT_TEST = re.compile(r"(?<![a-z])(?:train(?:ing)?[\s_-]*(?:acc\w*|set|data|split|loss)|val(?:idation)?(?![a-z])"
                       r"|val_\w+)", re.IGNORECASE)


def parse_accuracy(cell: str) -> float | None:
    """The first number of a cell as a fraction: "98.1%", "98.1" and "0.981" all give 0.981."""
    match = _NUMBER.search(cell)
    if match is None:
        return None
    value = float(match.group(1).replace(",", "."))
    if match.group(2) or value > 1:
        value /= 100
    return value if 0 <= value <= 1 else None


def _accuracy_column(header: Sequence[str]) -> int | None:
    candidates = [i for i, h in enumerate(header) if _ACCURACY_HEADER.search(h)]
    tests = [i for i in candidates if _TEST_HEADER.search(header[i])]
    return (tests or candidates or [None])[0]


def _read_table(rows: list[list[str]]) -> Table:
    header, body = rows[0], rows[1:]
    if len(architectures_named(" | ".join(header[1:]))) >= 2 and _accuracy_column(header) is None:
        # Architectures as columns, metrics as rows: read it the other way round.
        header, *body = (list(column) for column in zip(*rows))
    column = _accuracy_column(header)
    table_rows = []
    for cells in body:
        names = next((n for i, cell in enumerate(cells) if i != column and (n := architectures_named(cell))),
                     frozenset())
        table_rows.append(TableRow(
            cells=tuple(cells),
            architecture=next(iter(names)) if len(names) == 1 else None,
            accuracy=parse_accuracy(cells[column]) if column is not None else None))
    return Table(tuple(header), header[column] if column is not None else None, tuple(table_rows))


def _table_claims(table: Table) -> Iterator[Claim]:
    if table.accuracy_header is None or _NOT_TEST.search(table.accuracy_header):
        return
    rows_per_arch = Counter(row.architecture for row in table.rows)
    for row in table.rows:
        if row.architecture and row.accuracy is not None and rows_per_arch[row.architecture] == 1:
            yield Claim(row.architecture, row.accuracy, "table", _shorten("| " + " | ".join(row.cells) + " |"))


# --- prose claims -----------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_PERCENT = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d+)?)\s?(?:%|percent\b)", re.IGNORECASE)
_FRACTION = re.compile(r"(?<![\w.])(0?\.\d+)(?!\w|\.\d|\s?%|\s?percent)", re.IGNORECASE)
_ACCURACY_WORD = re.compile(r"(?<![a-z])acc(?:urac(?:y|ies)|urate)?(?![a-z])", re.IGNORECASE)
# Words that make a number a target, a bound or a difference rather than a measured result.
_HEDGE = re.compile(r"(?<![a-z])(?:should|must|would|could|might|expect\w*|target\w*|goal|aim\w*|at least"
                    r"|above|over|more than|less than|below|under|exceed\w*|up to|than|if)(?![a-z])",
                    re.IGNORECASE)
# "by 1.5%", "+1.5%", "±0.2%", or the upper end of a range ("97-98%")
_DIFFERENCE_BEFORE = re.compile(r"(?:\bby\s*|[+±]\s*|\d\s*[–-]\s*)$", re.IGNORECASE)
_DIFFERENCE_AFTER = re.compile(r"^\s*(?:more|less|fewer|better|worse|higher|lower|points?|pp|of|error"
                               r"|faster|slower|improvement|increase|decrease|drop|gain|relative)\b",
                               re.IGNORECASE)
_PLAUSIBLE = 0.5  # MNIST accuracies worth stating are far above chance; smaller numbers are differences


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def _accuracy_numbers(sentence: str) -> list[float]:
    """Accuracy-like numbers in a sentence: plausible percentages, and fractions next to an accuracy word."""
    found = [(m, float(m.group(1)) / 100) for m in _PERCENT.finditer(sentence)]
    if _ACCURACY_WORD.search(sentence):
        found += [(m, float(m.group(1))) for m in _FRACTION.finditer(sentence)]
    return [value for m, value in found
            if _PLAUSIBLE <= value <= 1
            # Look only near the number: the sentence is untrusted and may be huge.
            and not _DIFFERENCE_BEFORE.search(sentence[max(0, m.start() - 12):m.start()])
            and not _DIFFERENCE_AFTER.match(sentence[m.end():m.end() + 30])]


def _prose_claim(sentence: str) -> Claim | None:
    named = architectures_named(sentence)
    if len(named) != 1 or _HEDGE.search(sentence) or _NOT_TEST.search(sentence):
        return None
    numbers = _accuracy_numbers(sentence)
    if len(numbers) != 1:
        return None
    return Claim(next(iter(named)), numbers[0], "prose", _shorten(sentence))


def _shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --- entry points -----------------------------------------------------------------------------------

def report_markdown(nb: Any) -> list[str]:
    """The sources of the markdown cells of an nbformat notebook, in order."""
    sources = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            source = cell.get("source", "")
            sources.append(source if isinstance(source, str) else "".join(source))
    return sources


def analyze_report(markdown_cells: list[str], assignment: Assignment) -> ReportAnalysis:
    """Parse the report's markdown cells once into everything the report checks need."""
    truncated = False
    blocks: list[Any] = []
    budget = MAX_REPORT_CHARS
    for source in markdown_cells:
        text = source[:min(MAX_CELL_CHARS, budget)]
        truncated |= len(text) < len(source)
        budget -= len(text)
        if text:  # cell by cell: an unclosed code fence ends with its cell
            blocks.extend(_blocks(text))

    sections = tuple(_section(s.title, s.aliases, blocks) for s in assignment.report_sections)
    tables = tuple(_read_table(rows) for rows in blocks if isinstance(rows, list))
    claims = [claim for table in tables for claim in _table_claims(table)]
    claims += [claim for block in blocks if isinstance(block, _Prose)
               for sentence in _sentences(block.text) if (claim := _prose_claim(sentence))]
    headings = tuple(b.text for b in blocks if isinstance(b, _Heading))
    return ReportAnalysis(sections, tables, tuple(claims), headings, truncated)


# --- checks -----------------------------------------------------------------------------------------

def _titles(archs: Iterable[str]) -> str:
    named = set(archs)
    return ", ".join(ARCHITECTURE_TITLES[a] for a in ARCHITECTURES if a in named)


def _listing(items: list[str], limit: int = 20) -> str:
    """Items joined for a TA-facing detail, capped: the report is untrusted and may repeat itself."""
    more = [f"... and {len(items) - limit} more"] if len(items) > limit else []
    return "; ".join(items[:limit] + more)


def _percent(fraction: float) -> str:
    text = f"{100 * fraction:.2f}".rstrip("0")
    return text + "0%" if text.endswith(".") else text + "%"


def check_sections(analysis: ReportAnalysis, assignment: Assignment) -> Outcome:
    """Each rubric section has a heading and at least its minimum number of words."""
    problems, complete = [], 0
    for rubric in assignment.report_sections:
        found = analysis.section(rubric.title)
        if not found.present:
            problems.append(f"no '{rubric.title}' section (start it with a markdown heading such as "
                            f"'## {rubric.title}')")
        elif found.words < rubric.min_words:
            problems.append(f"'{rubric.title}' has {found.words} words; at least {rubric.min_words} are expected")
        else:
            complete += 1
    total = len(assignment.report_sections)
    detail = "; ".join(f"{s.title}: heading {s.heading!r}, {s.words} words" for s in analysis.sections)
    detail += f". Headings seen: {list(analysis.headings[:30])}" + (" (input truncated)" if analysis.truncated else "")
    if not problems:
        return passed(f"All {total} report sections are present and long enough.", detail)
    return Outcome(complete / total, f"Report sections: {'; '.join(problems)}.", detail)


def check_table(analysis: ReportAnalysis, assignment: Assignment) -> Outcome:
    """A markdown comparison table gives a numeric accuracy for every required architecture."""
    required = assignment.table_architectures
    covered = {row.architecture for table in analysis.tables for row in table.rows
               if row.accuracy is not None} & set(required)
    detail = _listing([f"table {list(t.header)} (accuracy column: {t.accuracy_header!r})" for t in analysis.tables])
    if not analysis.tables:
        return failed("No markdown table was found in the report; the Results section needs a comparison "
                      "table with one row per architecture and its test accuracy.")
    if not any(t.accuracy_header for t in analysis.tables):
        return failed("The report's table has no accuracy column (a column whose header contains 'accuracy').",
                      detail)
    missing = [a for a in required if a not in covered]
    if not missing:
        return passed(f"The comparison table gives an accuracy for all {len(required)} architectures.", detail)
    return Outcome(len(covered) / len(required),
                   f"The comparison table has no numeric accuracy for: {_titles(missing)}.", detail)


def check_insights(analysis: ReportAnalysis, assignment: Assignment) -> Outcome:
    """The Insights section is substantive and compares architectures.

    Half the credit is for length (in proportion, up to ``min_insight_words``), half for naming at
    least two architectures.
    """
    insights = analysis.section(INSIGHTS)
    if not insights.present:
        return failed(f"No '{INSIGHTS}' section was found (start it with a heading such as '## {INSIGHTS}').")
    minimum = assignment.min_insight_words
    length = min(1.0, insights.words / minimum)
    compares = len(insights.architectures) >= 2
    detail = f"heading {insights.heading!r}, {insights.words} words, names {sorted(insights.architectures)}"
    problems = []
    if length < 1:
        problems.append(f"it has {insights.words} words; at least {minimum} are expected")
    if not compares:
        problems.append("it should compare the architectures with each other (it names "
                        f"{_titles(insights.architectures) or 'none'})")
    if not problems:
        return passed(f"The '{INSIGHTS}' section compares {_titles(insights.architectures)}.", detail)
    return Outcome(0.5 * length + 0.5 * compares, f"The '{INSIGHTS}' section: {'; '.join(problems)}.", detail)


def check_claims(analysis: ReportAnalysis, measured: dict[str, float], tolerance: float,
                 not_submitted: frozenset[str] = frozenset()) -> Outcome:
    """Every accuracy the report states agrees with the grader's measurement within ``tolerance``.

    A claim about an architecture with no model in the notebook at all (``not_submitted``) is a claim
    nothing supports; one about a model the grader found but could not run is left out.
    """
    if not analysis.claims:
        return failed("The report states no accuracies to compare with the grader's measurements "
                      "(give each architecture's test accuracy, e.g. in the comparison table).")
    unsupported = list(dict.fromkeys(c.architecture for c in analysis.claims if c.architecture in not_submitted))
    if unsupported:
        return failed(f"Your report states accuracies for {_titles(unsupported)}, but the notebook has no such "
                      "model, so the grader could not measure them.")
    compared = [c for c in analysis.claims if c.architecture in measured]
    ignored = [c for c in analysis.claims if c.architecture not in measured]
    detail = _listing([f"{ARCHITECTURE_TITLES[c.architecture]} {_percent(c.accuracy)} ({c.source}: {c.quote!r})"
                       + ("" if c.architecture in measured else " ignored: not measured") for c in analysis.claims])
    if not compared:
        raise NotAssessed(f"The grader could not measure {_titles(c.architecture for c in ignored)}, the "
                          "architectures your report states accuracies for.")
    # 1e-9: a claim exactly one point off is within a one-point tolerance despite float rounding.
    wrong = [c for c in compared if abs(c.accuracy - measured[c.architecture]) > tolerance + 1e-9]
    points = f"{100 * tolerance:.1f} points"
    if not wrong:
        return passed(f"All {len(compared)} accuracies stated in the report agree with the grader's "
                      f"measurements on the MNIST test set (within {points}).", detail)
    messages = list(dict.fromkeys(
        f"Your report says the {ARCHITECTURE_TITLES[c.architecture]} reaches {_percent(c.accuracy)} but the "
        f"grader measured {100 * measured[c.architecture]:.1f}% on the MNIST test set (tolerance {points})."
        for c in wrong))
    more = f" (And {len(messages) - 3} more like these.)" if len(messages) > 3 else ""
    return failed(" ".join(messages[:3]) + more, detail)
