"""Accuracy, measured by the grader: the student's predictions on the secret ``eval`` images (an
unshifted subset of the MNIST test set, in secret order) against labels only the grader holds.

Accuracy points need a usable model of the named kind (:mod:`autograder.score.architecture`) that passed every
integrity rule (:mod:`autograder.score.integrity`); the thresholds come from calibration.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from autograder.assignment import Threshold
from autograder.run.inside import contract
from autograder.score.architecture import not_of_kind, over_budget
from autograder.score.artifacts import ConfusionCandidate, ModelEvidence
from autograder.score.checks import NeedsReview, NotAssessed, Outcome, failed
from autograder.score.integrity import Finding, flagged, unmeasured


def usable_model(model: ModelEvidence) -> ModelEvidence:
    """The model, or the reason it cannot be judged: not found (not assessed) or found but unusable (review)."""
    title = contract.ARCHITECTURE_TITLES[model.arch]
    if not model.found:
        raise NotAssessed(f"No usable {title} model: no {title} was found in the notebook.")
    if model.error or model.summary is None:
        raise NeedsReview(f"Your {title} ({model.variable or model.class_name or 'unnamed model'}) was found, but "
                          f"{model.error or 'the grader could not describe it'}. A person will look at it.")
    return model


def accuracy_outcome(model: ModelEvidence, eval_labels: np.ndarray, threshold: Threshold, budget: int,
                     findings: dict[str, Finding]) -> Outcome:
    title = contract.ARCHITECTURE_TITLES[model.arch]
    usable_model(model)
    wrong = not_of_kind(model.arch, model.summary) or over_budget(model.arch, model.summary, budget)
    if wrong is not None:
        return failed(f"{wrong} It earns no {title} accuracy points.")
    accuracy = model.accuracy("eval", eval_labels)
    if accuracy is None:
        raise NeedsReview(f"The grader got no predictions from your {title} on the test images. A person will "
                          "look at it.")
    detail = f"eval={accuracy:.4f} full_credit_at={threshold.full} zero_at={threshold.zero} variable={model.variable}"
    if (figures := retried_figures(model.fed)) is not None:
        detail += " refed=notebook_feed public_first={} public_retried={} own={}".format(*figures)
    contradicted(model, accuracy)
    bad = flagged(findings)
    if bad:
        return failed(f"Your {title} reached {accuracy:.2%} on the grader's test images, but it earns no accuracy "
                      "points: " + " ".join(findings[rule].message for rule in bad),
                      detail + f" integrity_flagged={bad}")
    unsure = unmeasured(findings)
    if unsure:
        raise NeedsReview(f"Your {title} reached {accuracy:.2%} on the grader's test images, but the grader could "
                          "not check that it is a trained network of its kind: "
                          + " ".join(findings[rule].message for rule in unsure))
    return Outcome(threshold.credit(accuracy),
                   f"Your {title} classified {accuracy:.2%} of the grader's secret test images correctly "
                   f"(full credit from {threshold.full:.2%}, none at or below {threshold.zero:.2%})." + refed(model),
                   detail)


def contradicted(model: ModelEvidence, accuracy: float) -> None:
    """Review instead of a score when the notebook's own evaluate() or predict() on the test images gave far
    more than the grader measured (ModelEvidence.falls_short), even after it retried the notebook's feeds
    (artifacts.retry_feeds): the grader may have fed the model otherwise than its author did."""
    if model.falls_short(accuracy):
        title = contract.ARCHITECTURE_TITLES[model.arch]
        raise NeedsReview(f"The grader measured your {title} at {accuracy:.2%} on its test images, but your "
                          f"notebook's own evaluate() or predict() gave {model.own_accuracy:.2%} on the test set; "
                          "the grader may not feed it the way your notebook did (none of the feeds your notebook "
                          "used came close either), so a person will look at it.")


def retried_figures(fed: dict[str, Any]) -> tuple[float, float, float] | None:
    """``(public_first, public_retried, own)`` when the grader's second pass adopted this feed
    (artifacts.adopt_retried_feed), else None: also when the record, which the prediction sandbox writes and
    student code can reach, says "retried" without carrying the three figures as numbers."""
    figures = tuple(fed.get(key) for key in ("public_first", "public_retried", "own"))
    if fed.get("source") != "retried" or not all(isinstance(f, (int, float)) for f in figures):
        return None
    return figures


def refed(model: ModelEvidence) -> str:
    """The sentence saying the grader re-fed the model the way the notebook's own evaluate() did, or ''."""
    figures = retried_figures(model.fed)
    if figures is None:
        return ""
    first, retried, own = figures
    return (f" Fed the way the grader first read your code, it got {first:.2%} of the public test images right, "
            f"far below the {own:.2%} your notebook's own evaluate() or predict() gave, so the grader re-fed it "
            f"the way your notebook did ({retried:.2%} on the public test images) and measured it that way.")


# --- the student's confusion matrix against the grader's own ---------------------------------------

@dataclass(frozen=True)
class ConfusionMatch:
    """The candidate matrix that agrees best with one of the student's models."""

    index: int  # into the evidence's confusion candidates
    arch: str  # the model whose public-test predictions it matches best
    moved: int  # images that would have to move between cells to turn one into the other


def is_confusion_matrix(matrix: np.ndarray) -> bool:
    """Whether a candidate is a confusion matrix: ``contract.CONFUSION_SHAPE`` non-negative integer counts, as
    the sandbox's confusion hook records them (the export's reader keeps any integer matrix, so q7 can name
    what a variable held instead)."""
    return (matrix.shape == contract.CONFUSION_SHAPE and np.issubdtype(matrix.dtype, np.integer)
            and bool((matrix >= 0).all()))


def confusion_grid(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    grid = np.zeros(contract.CONFUSION_SHAPE, dtype=np.int64)
    np.add.at(grid, (labels, predicted), 1)
    return grid


def closest_confusion(candidates: list[ConfusionCandidate], models: dict[str, ModelEvidence],
                      public_labels: np.ndarray) -> ConfusionMatch | None:
    """Among the notebook's confusion matrices, the one closest to a model's test-set predictions."""
    grids = {arch: confusion_grid(public_labels, m.predictions["public"])
             for arch, m in models.items() if "public" in m.predictions}
    pairs = [(int(np.abs(grid - c.matrix).sum()) // 2, i, arch) for i, c in enumerate(candidates)
             if is_confusion_matrix(c.matrix) for arch, grid in grids.items()]
    if not pairs:
        return None
    moved, index, arch = min(pairs)  # fewest moves; ties: the earlier candidate (template names come first)
    return ConfusionMatch(index, arch, moved)
