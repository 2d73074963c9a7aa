"""A report's markdown as blocks: headings, pseudo-headings, prose paragraphs and tables, in order.

Parsed with markdown-it (CommonMark plus GFM tables), never rendered. Tables are GFM markdown tables or HTML
``<table>`` elements; code blocks and other HTML are skipped. A top-level paragraph that is only a short bold
phrase (``**Results**``, ``**Results:**``), starts with one followed by a colon (``**Results:** the table
...``), or is one short line ending in a colon (``Results:``) is a pseudo-heading, below every real heading,
when it names a rubric section (:func:`resolve_pseudo_headings`); otherwise it stays prose. Markup such as
``<script>`` or ANSI escapes is only ever text.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

PSEUDO_LEVEL = 7  # a bold pseudo-heading ranks below every markdown heading (levels 1-6)
_PSEUDO_MAX_WORDS = 6

# CommonMark plus GFM tables; the preset caps nesting depth, so adversarial input stays cheap to parse.
_MARKDOWN = MarkdownIt("commonmark").enable("table")


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    written: str | None = None  # a pseudo-heading's paragraph as written: prose again if it names no section
    rest: str = ""  # a bold lead-in's text after the colon


@dataclass(frozen=True)
class Prose:
    text: str
    listed: bool = False  # a list item


_WORD = re.compile(r"[^\W_]+(?:[.,'’-][^\W_]+)*")


def word_count(text: str) -> int:
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


def _pseudo_heading(token: Token) -> Heading | None:
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
    if not title or word_count(title) > _PSEUDO_MAX_WORDS:
        return None
    return Heading(PSEUDO_LEVEL, title, written=text, rest=rest)


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


def markdown_blocks(markdown: str) -> Iterator[Heading | Prose | list[list[str]]]:
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
            yield Heading(int(token.tag[1:]), _inline_text(tokens[i + 1]).strip())
            i += 2
        elif token.type == "table_open":
            end = next(j for j in range(i, len(tokens)) if tokens[j].type == "table_close")
            yield _table(tokens[i:end])
            i = end
        elif token.type == "paragraph_open" and token.level == 0 and (pseudo := _pseudo_heading(tokens[i + 1])):
            yield pseudo
            i += 2
        elif token.type == "inline":  # a paragraph, also inside lists and block quotes
            yield Prose(_inline_text(token), listed=lists > 0)
        i += 1


def resolve_pseudo_headings(blocks: Iterable[Any], patterns: Sequence[re.Pattern[str]]) -> list[Any]:
    """Pseudo-headings that name a rubric section stay headings (their lead-in text becomes prose);
    the others are the paragraphs they were."""
    resolved: list[Any] = []
    for block in blocks:
        if isinstance(block, Heading) and block.written is not None:
            if any(p.search(block.text) for p in patterns):
                resolved.append(Heading(block.level, block.text))
                if block.rest:
                    resolved.append(Prose(block.rest))
            else:
                resolved.append(Prose(block.written))
        else:
            resolved.append(block)
    return resolved
