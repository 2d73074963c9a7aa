"""The four q8 checks of the written report, each one :class:`~autograder.score.checks.Outcome`.

**False numbers weigh on every part that states them.** A number the grader's measurement contradicts
(``FALSE``: wrong, and no plausible printed run explains it) earns no table row, no share of the Results
section holding it, and no claims share; an inflated one also discounts the insights that name its
architecture. Each in proportion to the architectures stated, so a report of inflated numbers keeps only its
prose, one wrong number costs its architecture's share, and a plausible re-run difference (``PRINTED``) costs
nothing. A Results section holding a table with an accuracy for every required architecture is long enough
whatever its word count: the table is the content the section asks for.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from autograder.assignment import ARCHITECTURE_TITLES, ARCHITECTURES, Assignment
from autograder.score.checks import NotAssessed, Outcome, failed, passed
from autograder.score.report.claims import (INTEGRITY, NOT_MEASURED, NOT_SUBMITTED, PRINTED, WRONG, ClaimRules,
                                            Verdict, false_architectures, true_share)
from autograder.score.report.findings import ReportAnalysis
from autograder.score.report.sections import INSIGHTS, RESULTS


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
    :func:`~autograder.score.report.claims.judge_claims`), so a Results section of inflated numbers earns nothing and one wrong number costs
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
        supported = true_share(verdicts, found.span) if rubric.title == RESULTS else 1.0
        if supported < 1:
            false = false_architectures(verdicts, blocks=found.span)
            problems.append(f"'{rubric.title}' states accuracies the grader's measurements do not support for "
                            f"{_titles(false)} (see the claims check)")
        credit += length * supported
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
    numbers are part of what it is worth: a row whose accuracy is false (see :func:`~autograder.score.report.claims.judge_claims`) earns
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
    :func:`~autograder.score.report.claims.judge_claims`) rest on them: insights resting on inflated numbers only earn
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
