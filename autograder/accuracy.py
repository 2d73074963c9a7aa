"""Accuracy, measured by the grader: the student's predictions on hidden images against hidden labels."""
from __future__ import annotations

from typing import Any

import numpy as np

from autograder.architecture import wrong_kind
from autograder.artifacts import ModelEvidence
from autograder.assignment import ARCHITECTURE_TITLES, Threshold
from autograder.checks import NotAssessed, Outcome, failed

#: A lookup of the public test labels is near perfect on the public test set and falls on the shifted
#: hidden copies much further than the references do; weak but honest models fall too, but are not
#: near perfect on the public set.
LOOKUP_PUBLIC_ACCURACY = 0.99
LOOKUP_GAP_MARGIN = 0.10


def reference_gap(calibration: dict[str, Any], arch: str) -> float:
    figures = calibration["architectures"][arch]
    return figures["test_accuracy"]["mean"] - figures["eval_accuracy"]["mean"]


def accuracy_outcome(model: ModelEvidence, eval_labels: np.ndarray, public_labels: np.ndarray,
                     threshold: Threshold, calibration: dict[str, Any]) -> Outcome:
    title = ARCHITECTURE_TITLES[model.arch]
    if model.error or model.summary is None:
        raise NotAssessed(f"No usable {title} model: {model.error or 'not found'}.")
    wrong = wrong_kind(model.arch, model.summary)
    if wrong is not None:
        return wrong
    hidden = model.accuracy("eval", eval_labels)
    public = model.accuracy("public", public_labels)
    if hidden is None:
        raise NotAssessed(f"The grader could not get predictions from your {title} model.")
    detail = (f"hidden={hidden:.4f} public_test={public if public is None else round(public, 4)} "
              f"full_credit_at={threshold.full} zero_at={threshold.zero} variable={model.variable}")
    if public is not None and public >= LOOKUP_PUBLIC_ACCURACY \
            and public - hidden > reference_gap(calibration, model.arch) + LOOKUP_GAP_MARGIN:
        return failed(f"Your {title} scores {public:.1%} on the public MNIST test set but only {hidden:.1%} "
                      "on slightly shifted copies of the same digits: it looks like it memorised the test set "
                      "instead of learning to classify digits.", detail + " lookup_suspected")
    return Outcome(threshold.credit(hidden),
                   f"Your {title} classified {hidden:.2%} of the grader's hidden test images correctly "
                   f"(full credit from {threshold.full:.2%}, none at or below {threshold.zero:.2%}).", detail)
