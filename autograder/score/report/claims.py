"""Judging the accuracies a report states against the grader's measurement.

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
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autograder.assignment import ARCHITECTURES, Assignment
from autograder.intake.printed import PrintedAccuracy
from autograder.score.report.findings import Claim, ReportAnalysis

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


def true_share(verdicts: Iterable[Verdict], blocks: tuple[int, int]) -> float:
    """The share of the architectures whose accuracies a part of the report states that are not false (1 when
    it states none): numbers are part of what a Results section is worth."""
    located = [v for v in verdicts if blocks[0] <= v.claim.block < blocks[1] and v.status != NOT_MEASURED]
    stated = {v.claim.architecture for v in located}
    return 1 - len(false_architectures(located)) / len(stated) if stated else 1.0
