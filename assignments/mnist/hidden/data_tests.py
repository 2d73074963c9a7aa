"""Hidden tests for q1 (preprocessing) and q7 (the confusion matrix).

The export found the data by its role, whatever the variables are called (template names first, then the
arrays fit() was called with, then arrays shaped like MNIST images or labels); the confusion matrix is
chosen among the 10x10 count matrices of the notebook as the one that agrees with one of the student's
models. Every message says which variable was used.

Scaling is the step the homework names first and the one training depends on most: it carries most of
q1's points (``RULE_WEIGHTS``), the shapes, labels, validation set and test set share the rest. Each
mistake is charged once: raw 0-255 pixels fail the scaling rule here and nothing else (the grader feeds
every model the way its author did, so its accuracy is its real one). Raw arrays that only feed a
``tf.data`` pipeline (or Sequence) scaling them are no mistake: when every model was fit on such a pipeline
and fit received normalised batches from each (the fit hook's sample), the pipeline is the preprocessing.

Fixtures (by parameter name): data, validation, confusion, models, labels.
"""
from autograder.data import MNIST_TRAIN_SIZE
from autograder.run.inside import contract
from autograder.score.accuracy import closest_confusion, is_confusion_matrix
from autograder.score.artifacts import FOUND_BY_WORDS
from autograder.score.checks import NeedsReview, NotAssessed, Outcome, failed

#: Raw MNIST pixels have a standard deviation of 78.6; scaled to [0, 1] 0.31, standardised about 1.
NORMALISED_MAX_STD = 2.0
TITLES = contract.ARCHITECTURE_TITLES
#: Tenths of q1 each rule carries, in the order preprocessing() lists them: scaling, shapes, labels,
#: validation set, test set. Unscaled pixels cost 6 of the 10.
RULE_WEIGHTS = (6, 1, 1, 1, 1)


def _named(role, probe):
    return f"`{probe.get('variable') or role}` ({FOUND_BY_WORDS.get(probe.get('found_by'), 'found')})"


def _rows(probe):
    shape = probe.get("shape") or []
    return shape[0] if probe.get("is_array") and shape else None


def _readable(role, data):
    """The probe of ``role`` when it holds numeric data, else the reason it does not."""
    probe = data.get(role)
    if probe is None:
        return None, f"no {role} was found"
    if not probe.get("is_array"):
        return None, f"{_named(role, probe)} is not numeric data (a {probe.get('type')}: {probe.get('error') or 'unreadable'})"
    return probe, None


def _scaling(probe):
    """(normalised, description) of an image array from its statistics."""
    low, high, mean, std = (probe.get(k) for k in ("min", "max", "mean", "std"))
    if high is None or low is None:
        return False, "holds no finite numbers"
    if std is None:  # older probes: judge by the range alone
        std = (high - low) / 4
    if std > NORMALISED_MAX_STD:
        return False, f"holds raw pixel values ({low:g} to {high:g}); divide by 255 or standardise"
    if low >= 0 and high <= 1:
        return True, "scaled to [0, 1]"
    if low >= -1 and high <= 1:
        return True, "scaled to [-1, 1]"
    return True, f"standardised (mean {mean:.2f}, std {std:.2f})"


def _pipeline_scaling(models):
    """How the models' input pipeline scales the images, when every fit of every model was fed a dataset
    or Sequence and the batches fit received from it (``x_sample``) are normalised; else None."""
    samples = [fit.get("x_sample") for model in (models or {}).values() if model.found for fit in model.fits]
    if not samples or not all(isinstance(sample, dict) and sample.get("is_array") for sample in samples):
        return None
    verdicts = [_scaling(sample) for sample in samples]
    return verdicts[-1][1] if all(ok for ok, _ in verdicts) else None


def _images_rules(data, roles, pipeline=None):
    scaled, shaped, problems_scale, problems_shape, used = True, True, [], [], []
    for role in roles:
        probe, why = _readable(role, data)
        if probe is None:  # charged once: a missing test set by the test-set rule, anything else here
            if role != "x_test" or role in data:
                scaled = False
                problems_scale.append(why)
            continue
        ok, how = _scaling(probe)
        if not ok and pipeline is not None:
            ok, how = True, f"raw, {pipeline} by the input pipeline fit() was fed"
        used.append(f"{role} = {_named(role, probe)}, {how}")
        if not ok:
            scaled = False
            problems_scale.append(f"{_named(role, probe)} {how}")
        if not contract.image_shaped(probe.get("shape") or []):
            shaped = False
            problems_shape.append(f"{_named(role, probe)} has shape {probe.get('shape')}; each image should be "
                                  "28x28 (or 28x28x1, or 784)")
    if not used:  # shapes are right only when there were images to look at
        shaped = False
    return (scaled, problems_scale), (shaped, problems_shape), used


def _labels_rule(data, roles):
    problems, used = [], []
    for role in roles:
        probe, why = _readable(role, data)
        if probe is None:
            if role != "y_test" or role in data:  # a missing test set is the test-set rule's
                problems.append(why)
            continue
        kind = probe.get("labels")
        if kind not in ("int", "one_hot"):
            problems.append(f"{_named(role, probe)} should hold the digit labels 0-9 or one-hot rows "
                            f"(shape {probe.get('shape')}, values {probe.get('distinct')})")
        else:
            used.append(f"{role} = {_named(role, probe)}, {'one-hot' if kind == 'one_hot' else 'integer'} labels")
    return not problems, problems, used


def _validation_rule(data, validation):
    kind = validation.get("kind")
    if kind == "split":
        fraction = validation.get("fraction")
        return True, f"a validation split in fit() (validation_split={fraction:g})" if fraction else \
            "a validation split in fit()"
    if kind == "data":
        return True, f"validation data passed to fit() (`{validation.get('variable') or 'validation_data'}`)"
    x_val, y_val, x_train = data.get("x_val"), data.get("y_val"), data.get("x_train")
    if kind != "arrays" or x_val is None or y_val is None:
        return False, "there is no validation set (split some training images off, or use validation_split in fit())"
    val, train = _rows(x_val), _rows(x_train or {})
    if val is None or _rows(y_val) != val:
        return False, f"{_named('x_val', x_val)} and {_named('y_val', y_val)} have different lengths"
    if train is not None and train + val > MNIST_TRAIN_SIZE:
        return False, (f"{_named('x_train', x_train)} ({train}) and {_named('x_val', x_val)} ({val}) overlap: together "
                       f"they exceed the {MNIST_TRAIN_SIZE:,} training images")
    return True, f"{val} validation images in {_named('x_val', x_val)}"


def _test_set_rule(data):
    x_test, y_test = data.get("x_test"), data.get("y_test")
    if x_test is None or y_test is None:
        return False, "no test set (x_test / y_test) was found"
    rows = (_rows(x_test), _rows(y_test))
    if rows != (contract.MNIST_TEST_SIZE, contract.MNIST_TEST_SIZE):
        return False, (f"{_named('x_test', x_test)} / {_named('y_test', y_test)} should be the full "
                       f"{contract.MNIST_TEST_SIZE:,}-image MNIST test set (found {rows[0]} / {rows[1]})")
    return True, f"the full test set in {_named('x_test', x_test)} / {_named('y_test', y_test)}"


def preprocessing(data, validation, models=None):
    if not data:
        raise NotAssessed("The notebook did not get far enough to define its data (no MNIST images or labels "
                          "were found).")
    image_roles = [r for r in ("x_train", "x_val", "x_test") if r != "x_val" or validation.get("kind") == "arrays"]
    label_roles = [r.replace("x_", "y_") for r in image_roles]
    (scaled, scale_problems), (shaped, shape_problems), used = _images_rules(data, image_roles, _pipeline_scaling(models))
    labels_ok, label_problems, used_labels = _labels_rule(data, label_roles)
    validation_ok, validation_says = _validation_rule(data, validation)
    test_ok, test_says = _test_set_rule(data)
    results = [(scaled, "; ".join(scale_problems) or "inputs are normalised"),
               (shaped, "; ".join(shape_problems) or "image shapes are right"),
               (labels_ok, "; ".join(label_problems) or "labels are digits"),
               (validation_ok, validation_says), (test_ok, test_says)]
    problems = [message for ok, message in results if not ok]
    variables = "Variables used: " + "; ".join(used + used_labels) + "." if used or used_labels else ""
    message = ("Preprocessing is right." if not problems else "Preprocessing: " + "; ".join(problems) + ".")
    if validation_ok:
        message += f" Validation: {validation_says}."
    earned = sum(weight for weight, (ok, _) in zip(RULE_WEIGHTS, results) if ok) / sum(RULE_WEIGHTS)
    return Outcome(earned, f"{message} {variables}".strip(), "; ".join(m for _, m in results))


# --- q7 ---------------------------------------------------------------------------------------------

def confusion_matrix(confusion, models, labels):
    if not confusion:
        raise NotAssessed("No confusion matrix (a 10x10 matrix of counts) was found in the notebook.")
    public = labels["public"]
    if not any(is_confusion_matrix(c.matrix) for c in confusion):
        first = confusion[0]
        return failed(f"`{first.variable}` should be a 10x10 matrix of counts, not shape {first.matrix.shape}.")
    match = closest_confusion(confusion, models, public)
    unrun = [TITLES[arch] for arch, m in models.items() if m.found and "public" not in m.predictions]
    if match is None:
        if unrun:
            raise NeedsReview(f"The grader could not run your {', '.join(unrun)}, so the confusion matrix cannot be "
                              "checked against the model it shows; a person will check it.")
        raise NotAssessed("No model could be run, so the confusion matrix cannot be checked against one.")
    accuracy = {arch: m.accuracy("public", public) for arch, m in models.items() if "public" in m.predictions}
    chosen, closest, moved = confusion[match.index], match.arch, match.moved
    name, total = f"`{chosen.variable}`", int(chosen.matrix.sum())
    detail = (f"variable={chosen.variable} found_by={chosen.found_by} closest={closest} moved={moved} "
              f"candidates={[c.variable for c in confusion]} accuracy={accuracy}")
    if total != len(public):
        return Outcome(0.25, f"The confusion matrix {name} counts {total} images; it should cover all "
                             f"{len(public):,} test images.", detail)
    if moved > 0.01 * total:
        if unrun:  # it may well be the matrix of a model the grader could not run
            raise NeedsReview(f"The confusion matrix {name} matches none of the models the grader could run, and "
                              f"it could not run your {', '.join(unrun)}; a person will check it.")
        return Outcome(0.25, f"The confusion matrix {name} does not match the predictions of any of your models on "
                             f"the test set ({moved} images differ from the closest, your {TITLES[closest]}).", detail)
    best = max(accuracy, key=accuracy.get)
    if accuracy[best] - accuracy[closest] > 0.005:
        return Outcome(0.75, f"The confusion matrix {name} is that of your {TITLES[closest]}, but your "
                             f"{TITLES[best]} is more accurate; show the best model's matrix.", detail)
    return Outcome(1.0, f"The confusion matrix {name} matches your {TITLES[closest]}'s predictions.", detail)
