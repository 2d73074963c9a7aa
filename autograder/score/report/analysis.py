"""The report analysis's entry points: a notebook's markdown cells parsed once into a :class:`ReportAnalysis`.

* **Only the student's text counts**: a markdown cell equal (whitespace aside) to one of the student
  template's is the homework's own instructions and is skipped. A template that cannot be read is an
  ``AssignmentError``, never an empty template (its instructions would then count as report text).
* The text is untrusted: each cell is cut at ``MAX_CELL_CHARS`` and the whole report at ``MAX_REPORT_CHARS``.
"""
from __future__ import annotations

import functools
import json
from typing import Any

from autograder.assignment import Assignment, AssignmentError
from autograder.score.report.findings import ReportAnalysis
from autograder.score.report.markdown import Heading, Prose, markdown_blocks, resolve_pseudo_headings
from autograder.score.report.numbers import canonical_numbers, decimal_mark
from autograder.score.report.prose import prose_claim, split_sentences
from autograder.score.report.sections import find_sections, term_pattern
from autograder.score.report.table import read_table

MAX_CELL_CHARS = 50_000  # a long report is ~5k characters; anything near this is not prose
MAX_REPORT_CHARS = 200_000  # ~30k words: far beyond any report, and parsed in a few seconds at worst


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
        parsed.extend(markdown_blocks(canonical_numbers(text, decimal)))
    terms = [term_pattern(t) for s in assignment.report_sections for t in (s.title, *s.aliases)]
    blocks = resolve_pseudo_headings(parsed, terms)

    tables, claims = [], []
    for i, block in enumerate(blocks):
        if isinstance(block, list):
            table, table_claims = read_table(block, i)
            tables.append(table)
            claims += table_claims
        elif isinstance(block, Prose):
            claims += [claim for sentence in split_sentences(block.text)
                       if (claim := prose_claim(sentence, block.listed, i))]
    sections = find_sections(assignment.report_sections, blocks, claims)
    headings = tuple(b.text for b in blocks if isinstance(b, Heading))
    return ReportAnalysis(sections, tuple(tables), tuple(claims), headings, truncated)
