"""Hidden tests for q8 (the written report). The runner passes ``report``, built once with
``autograder.report.analyze_report`` from the notebook's markdown cells; the report is never executed."""
from __future__ import annotations

from autograder.assignment import Assignment
from autograder.checks import Outcome
from autograder.report import ReportAnalysis, check_claims, check_insights, check_sections, check_table


def report_sections(report: ReportAnalysis, assignment: Assignment) -> Outcome:
    return check_sections(report, assignment)


def report_table(report: ReportAnalysis, assignment: Assignment) -> Outcome:
    return check_table(report, assignment)


def report_insights(report: ReportAnalysis, assignment: Assignment) -> Outcome:
    return check_insights(report, assignment)


def report_claims(report: ReportAnalysis, assignment: Assignment,
                  measured_public_accuracy: dict[str, float], models: dict) -> Outcome:
    # Claims are compared with the public MNIST test set: the one the student's notebook evaluates on.
    not_submitted = frozenset(arch for arch, model in models.items() if model.variable is None)
    return check_claims(report, measured_public_accuracy, assignment.claim_tolerance, not_submitted)
