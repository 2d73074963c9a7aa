"""Finding the rubric's sections in a report's blocks: by heading, else by content.

* **Sections** are found as people write them. A heading of any level matches a rubric section when it
  contains the section's title or an alias (assignment.toml ``[[report.sections]]``) as a word,
  case-insensitively, an added plural "s" allowed: "## 3. Results and discussion", "Part 2: Model
  comparison", "### CONCLUSIONS"; so does a pseudo-heading (see :mod:`~autograder.score.report.markdown`).
  A section's body runs to the next heading of the same or a higher level, across cells, subsections
  included. A heading that names only this section wins over one that names several ("Comparison of models"
  is Results before it is Architectures); then the longest.
* **Content fallback** when no heading names a section, wherever the content sits (a paragraph, or a
  whole list: some reports are one bullet list): the paragraph or list naming two or more architectures
  with the most layer vocabulary (three terms at least: layer, dense, conv, pool, units, filters, ...)
  is the Architectures section; a table of accuracies (two or more architectures with a number each) or
  else a bullet list of them is the Results section (with the paragraph just before and just after it);
  the longest paragraph or list with a sentence naming two or more architectures and an accuracy-like
  number is the Insights section (with the prose that follows).
* **Words** of a section are those of its paragraphs, list items, inline code and table cells, as a
  student counting the words they wrote would count them: a Results section that is only a table has the
  table's words. Not counted: headings, code blocks, HTML other than tables, and tags.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from autograder.score.report.findings import Claim, Section
from autograder.score.report.markdown import Heading, Prose, word_count
from autograder.score.report.prose import accuracy_numbers, split_sentences
from autograder.vocabulary import architectures_named

ARCHITECTURES_SECTION = "Architectures"  # the rubric section a description of several architectures' layers stands in for
RESULTS = "Results"  # the rubric section a table or list of accuracies stands in for
INSIGHTS = "Insights"  # the rubric section check_insights reads (assignment.toml [[report.sections]])


def term_pattern(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(term)}s?(?!\w)", re.IGNORECASE)


def _block_words(block: Prose | list[list[str]]) -> int:
    if isinstance(block, Prose):
        return word_count(block.text)
    return sum(word_count(cell) for row in block for cell in row)


def _named_in(blocks: Iterable[Any]) -> frozenset[str]:
    return frozenset().union(*(architectures_named(s) for b in blocks if isinstance(b, Prose)
                               for s in split_sentences(b.text)))


def _make_section(title: str, heading: str | None, found_by: str, blocks: Sequence[Any],
                  start: int, end: int) -> Section:
    body = [b for b in blocks[start:end] if not isinstance(b, Heading)]
    return Section(title, heading, sum(_block_words(b) for b in body), _named_in(body), found_by, (start, end))


def _sections_by_heading(rubric: Sequence[Any], blocks: Sequence[Any]) -> dict[str, Section]:
    patterns = {s.title: [term_pattern(t) for t in (s.title, *s.aliases)] for s in rubric}
    matches = {i: {title for title, ps in patterns.items() if any(p.search(b.text) for p in ps)}
               for i, b in enumerate(blocks) if isinstance(b, Heading)}
    matches = {i: titles for i, titles in matches.items() if titles}
    # Words before each block, so that any span's words cost one subtraction (a hostile report may hold
    # thousands of matching headings).
    words_before = [0]
    for block in blocks:
        words_before.append(words_before[-1] + (0 if isinstance(block, Heading) else _block_words(block)))
    spans = {}
    for i in matches:
        level = blocks[i].level
        end = next((j for j in range(i + 1, len(blocks))
                    if isinstance(blocks[j], Heading) and blocks[j].level <= level), len(blocks))
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
        while start > 0 and isinstance(blocks[start - 1], Prose) and blocks[start - 1].listed:
            start -= 1
        while end < len(blocks) and isinstance(blocks[end], Prose) and blocks[end].listed:
            end += 1
        what = "a list of accuracies"
    else:
        return None
    # The paragraph introducing it and the one commenting on it belong to it.
    if start > 0 and isinstance(blocks[start - 1], Prose):
        start -= 1
    if end < len(blocks) and isinstance(blocks[end], Prose):
        end += 1
    return _make_section(RESULTS, None, f"content: {what}", blocks, start, end)


def _prose_units(blocks: Sequence[Any]) -> list[tuple[int, int]]:
    """Spans of prose read as one piece: a paragraph, or a whole list (a report may be one bullet list)."""
    units, i = [], 0
    while i < len(blocks):
        end = i + 1
        if isinstance(blocks[i], Prose):
            while blocks[i].listed and end < len(blocks) and isinstance(blocks[end], Prose) and blocks[end].listed:
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
    best = max(candidates, key=lambda u: (layer_terms(u), word_count(_unit_text(blocks, u))))
    return _make_section(ARCHITECTURES_SECTION, None, "content: a description of the layers of several architectures",
                         blocks, *best)


def _insights_by_content(blocks: Sequence[Any]) -> Section | None:
    """The longest paragraph (or list) comparing two or more architectures with numbers, and the prose after it."""
    def compares(unit: tuple[int, int]) -> bool:
        # Numbers, and a sentence that names two architectures: a list of one accuracy per architecture
        # is a results summary, not a comparison.
        sentences = [s for b in blocks[unit[0]:unit[1]] for s in split_sentences(b.text)]
        return (any(len(architectures_named(s)) >= 2 for s in sentences)
                and any(accuracy_numbers(s) for s in sentences))

    candidates = [u for u in _prose_units(blocks) if compares(u)]
    if not candidates:
        return None
    start, end = max(candidates, key=lambda u: word_count(_unit_text(blocks, u)))
    while end < len(blocks) and isinstance(blocks[end], Prose):
        end += 1
    return _make_section(INSIGHTS, None, "content: a paragraph comparing architectures with numbers",
                         blocks, start, end)


def find_sections(rubric: Sequence[Any], blocks: Sequence[Any], claims: Sequence[Claim]) -> tuple[Section, ...]:
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
