"""Hidden tests for q8 (the written report). The runner passes ``report``, built once with
``autograder.score.report.analysis.analyze_report`` from the notebook's markdown cells; the report is never executed.

Stated accuracies are judged against the grader's measurement on the public MNIST test set (the one the
student's notebook evaluates on), with per-architecture tolerances from the calibration's run-to-run
spread (``autograder.score.report.claims.claim_limits``). A false number costs its architecture's share of the
table, of the Results section and of the claims (and of the insights, when it is inflated). The numbers
the submitted notebook printed (``printed_accuracies``, untrusted) only excuse a plausible re-run
difference; a claim about a model that failed an integrity check (``flagged_architectures``) is never a match."""
from __future__ import annotations

from typing import Any

from autograder.assignment import Assignment
from autograder.intake.printed import PrintedAccuracy
from autograder.score.checks import Outcome
from autograder.score.report.checks import check_claims, check_insights, check_sections, check_table
from autograder.score.report.claims import ClaimRules, Verdict, claim_limits, judge_claims
from autograder.score.report.findings import ReportAnalysis


def _not_submitted(models: dict) -> frozenset[str]:
    return frozenset(arch for arch, model in models.items() if not model.found)


def _verdicts(report: ReportAnalysis, assignment: Assignment, measured: dict[str, float], models: dict,
              calibration: dict[str, Any], printed: tuple[PrintedAccuracy, ...],
              flagged: frozenset[str]) -> tuple[Verdict, ...]:
    limits = claim_limits(ClaimRules.from_assignment(assignment), calibration)
    return judge_claims(report, measured, limits, printed=printed, failed_integrity=flagged,
                        not_submitted=_not_submitted(models))


def report_sections(report: ReportAnalysis, assignment: Assignment, measured_public_accuracy: dict[str, float],
                    models: dict, calibration: dict[str, Any], printed_accuracies: tuple[PrintedAccuracy, ...],
                    flagged_architectures: frozenset[str]) -> Outcome:
    return check_sections(report, assignment, _verdicts(report, assignment, measured_public_accuracy, models,
                                                        calibration, printed_accuracies, flagged_architectures))


def report_table(report: ReportAnalysis, assignment: Assignment, measured_public_accuracy: dict[str, float],
                 models: dict, calibration: dict[str, Any], printed_accuracies: tuple[PrintedAccuracy, ...],
                 flagged_architectures: frozenset[str]) -> Outcome:
    return check_table(report, assignment, _not_submitted(models),
                       _verdicts(report, assignment, measured_public_accuracy, models, calibration,
                                 printed_accuracies, flagged_architectures))


def report_insights(report: ReportAnalysis, assignment: Assignment, measured_public_accuracy: dict[str, float],
                    models: dict, calibration: dict[str, Any], printed_accuracies: tuple[PrintedAccuracy, ...],
                    flagged_architectures: frozenset[str]) -> Outcome:
    return check_insights(report, assignment, _verdicts(report, assignment, measured_public_accuracy, models,
                                                        calibration, printed_accuracies, flagged_architectures))


def report_claims(report: ReportAnalysis, assignment: Assignment, measured_public_accuracy: dict[str, float],
                  models: dict, calibration: dict[str, Any], printed_accuracies: tuple[PrintedAccuracy, ...],
                  flagged_architectures: frozenset[str]) -> Outcome:
    return check_claims(_verdicts(report, assignment, measured_public_accuracy, models, calibration,
                                  printed_accuracies, flagged_architectures))
