"""What the report analysis finds: sections, tables, stated accuracies (claims), as frozen dataclasses."""
from __future__ import annotations

from dataclasses import dataclass


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
