"""Hidden tests for q1 (preprocessing, from the exported probes) and q7 (the confusion matrix).

Fixtures (by parameter name): probes, confusion, best_model, models, public_labels.
"""
import numpy as np

from autograder.assignment import ARCHITECTURE_TITLES
from autograder.checks import NotAssessed, Outcome, failed

IMAGE_SHAPES = ([28, 28], [28, 28, 1], [784])
TEST_SIZE = 10_000


def _rows(probe):
    return probe.get("shape", [None])[0] if probe.get("present") and probe.get("shape") else None


def _inputs_scaled(probes):
    for name in ("x_train", "x_val", "x_test"):
        p = probes.get(name, {})
        if not p.get("present"):
            return False, f"{name} is missing"
        if not str(p.get("dtype", "")).startswith("float"):
            return False, f"{name} should hold floats, but its dtype is {p.get('dtype')}"
        low, high = p.get("min"), p.get("max")
        if low is None or high is None or low < 0 or high > 1 or high < 0.5:
            return False, (f"{name} should be scaled to [0, 1] (divide by 255), but it ranges from "
                           f"{low} to {high}")
    return True, "inputs are floats in [0, 1]"


def _image_shapes(probes):
    for name in ("x_train", "x_val", "x_test"):
        if not probes.get(name, {}).get("present"):
            return False, f"{name} is missing"  # said once: the messages are merged below
        shape = probes.get(name, {}).get("shape") or []
        if list(shape[1:]) not in IMAGE_SHAPES:
            return False, f"{name} has shape {shape}; each image should be 28x28 (or 28x28x1, or 784)"
    return True, "image shapes are right"


def _labels(probes):
    for name in ("y_train", "y_val", "y_test"):
        p = probes.get(name, {})
        if not p.get("present"):
            return False, f"{name} is missing"
        shape = p.get("shape") or []
        if len(shape) == 2 and shape[1] == 10 and p.get("row_sums_one"):
            continue  # one-hot labels
        distinct = p.get("distinct")
        if len(shape) != 1 or distinct is None or not set(distinct) <= set(range(10)):
            return False, f"{name} should hold the digit labels 0-9 (shape {shape}, values {distinct})"
    return True, "labels are digits 0-9"


def _validation_split(probes):
    train, val = _rows(probes.get("x_train", {})), _rows(probes.get("x_val", {}))
    if not train or not val:
        return False, "there is no validation set (x_val) split off the training data"
    if train + val > 60_000:
        return False, f"x_train ({train}) and x_val ({val}) overlap: together they exceed the 60,000 training images"
    if _rows(probes.get("y_val", {})) != val or _rows(probes.get("y_train", {})) != train:
        return False, "x_train/y_train or x_val/y_val have different lengths"
    return True, f"{train} training and {val} validation images"


def _test_set(probes):
    rows = _rows(probes.get("x_test", {}))
    if rows != TEST_SIZE or _rows(probes.get("y_test", {})) != TEST_SIZE:
        return False, f"x_test/y_test should be the full 10,000-image MNIST test set (found {rows})"
    return True, "full test set"


def preprocessing(probes):
    if not probes:
        raise NotAssessed("The notebook did not get far enough to define its data.")
    results = [rule(probes) for rule in (_inputs_scaled, _image_shapes, _labels, _validation_split, _test_set)]
    problems = list(dict.fromkeys(message for ok, message in results if not ok))
    message = "Preprocessing is right." if not problems else "Preprocessing: " + "; ".join(problems) + "."
    return Outcome(sum(ok for ok, _ in results) / len(results), message, "; ".join(m for _, m in results))


def confusion_matrix(confusion, best_model, models, public_labels):
    if confusion is None:
        raise NotAssessed("No confusion matrix named `confusion` (a 10x10 array of integers) was found.")
    if confusion.shape != (10, 10) or (confusion < 0).any():
        return failed(f"`confusion` should be a 10x10 matrix of counts, not shape {confusion.shape}.")
    total = int(confusion.sum())
    if total != len(public_labels):
        return Outcome(0.25, f"The confusion matrix counts {total} images; it should cover all "
                             f"{len(public_labels):,} test images.")
    measured = {}
    for arch, model in models.items():
        predicted = model.predictions.get("public")
        if predicted is not None:
            grid = np.zeros((10, 10), dtype=np.int64)
            np.add.at(grid, (public_labels, predicted), 1)
            measured[arch] = (int(np.abs(grid - confusion).sum()) // 2, float(np.trace(grid)) / len(public_labels))
    if not measured:
        raise NotAssessed("No model could be run, so the confusion matrix cannot be checked against one.")
    closest = min(measured, key=lambda arch: measured[arch][0])
    moved, _ = measured[closest]
    detail = f"closest={closest} moved={moved} named_best={best_model} measured={measured}"
    if moved > 0.01 * total:
        return Outcome(0.25, "The confusion matrix does not match the predictions of any of your models on "
                             f"the test set ({moved} images differ from the closest, your "
                             f"{ARCHITECTURE_TITLES[closest]}).", detail)
    best = max(measured, key=lambda arch: measured[arch][1])
    if measured[best][1] - measured[closest][1] > 0.005:
        return Outcome(0.75, f"The confusion matrix is that of your {ARCHITECTURE_TITLES[closest]}, but your "
                             f"{ARCHITECTURE_TITLES[best]} is more accurate; show the best model's matrix.", detail)
    return Outcome(1.0, f"The confusion matrix matches your {ARCHITECTURE_TITLES[closest]}'s predictions.", detail)
