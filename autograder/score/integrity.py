"""Integrity rules: is each model a trained network of its kind that learned to classify digits?

Each rule is a small function over one model's evidence that returns a :class:`Finding`: passed (True),
flagged (False) or not measured (None, with the reason), the numbers it rests on, and a sentence in
plain words for the student. The numbers are the grader's own: class ids the prediction sandbox
produced on the grader's secret image sets, scored here against labels that never left the trusted
side. The only kernel-side record used is the grader's own fit hook (``trained``).

The rules, and what honest work shows instead:

``trained``               fit() took optimizer steps and moved the weights from where they started (or the
                          model holds weights this notebook's own training produced: a reloaded checkpoint).
``weights_from_this_notebook``  the weights training started from were at chance on a public sample: an honest
                          model is, before its first fit(); trained weights set or loaded from elsewhere are
                          not (a checkpoint this run's own training wrote counts as its own). Off when the
                          assignment allows pretrained weights (``[integrity] allow_pretrained_weights``).
``not_fit_on_test``       no fit() call was given the MNIST test images to train on. The grader's fit hook
                          records what each call was fed; the trusted side recognises the test set by
                          statistics that no other set of MNIST images of its size shares. This record lives
                          in the student's process, so it can only take points away: a notebook that hides
                          a test-set fit from the hook still meets ``not_trained_on_test``.
``no_test_images_trained_on``  no fit() or train_on_batch trained on more than a handful of MNIST test images,
                          recognised one by one (any subset, in any order, mixed into training images): the
                          hook sends hashes of a bounded sample of the images, the grader counts test images.
``not_trained_on_test``   a network trained on the training images is at least about as accurate on
                          them as on test images; one trained on the test set (or a lookup of it) is
                          clearly better on test images. Flagged beyond the references' own gap plus the
                          sample noise of the two accuracies.
``generalises``           on secretly distorted digits an honest network keeps most of its accuracy above
                          chance, as the references do; a lookup of known images collapses.
``does_the_work``         with the named kind's layers zeroed (convolutions, the recurrent layer) an honest
                          network's predictions change almost everywhere; a dead branch changes nothing.
``distinct``              two different networks never agree on every one of thousands of images; two
                          "models" that do are one model, which counts once.

A model with a flagged rule earns no accuracy points for its architecture; one with a rule that could
not be measured goes to a person (needs_review). Thresholds are set so that honest work is never
flagged: each allows for the references' honest range (calibration.json) and for sample noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from autograder.run.inside import contract, sketch
from autograder.run.inside.contract import CHANCE
from autograder.score.artifacts import ModelEvidence

RULES = ("trained", "weights_from_this_notebook", "not_fit_on_test", "no_test_images_trained_on",
         "not_trained_on_test", "generalises", "does_the_work", "distinct")
TITLES = contract.ARCHITECTURE_TITLES

#: Relative L2 change of the trainable weights below which training did not move them (one honest epoch
#: of Adam on 1,500 images moves them by more than 5 %).
MIN_WEIGHT_CHANGE = 1e-3
#: One-sided allowance for sample noise, in standard errors of the measured difference. With the floor
#: below, an honest model whose true gap is zero (measured honest gaps are below it) is flagged by noise
#: alone with probability under 5e-5 at 70 % accuracy and under 1e-6 above 95 %; a CNN fit on the test set
#: for two epochs reaches z = 3.9-4.8 (variant trained_on_test, and a second seed).
NOISE_Z = 3.5
#: Test-image accuracy may exceed training-image accuracy by this much beyond the references' own gap
#: before the excess counts (measured honest gaps: -0.02 to +0.002; a CNN fit on the test set for two
#: epochs: +0.023, and +0.029 on the distorted halves; an MLP fit on it for five: +0.047 and +0.030).
TEST_GAP_FLOOR = 0.005
#: On distorted digits a model is flagged when it keeps less than this share of what the references keep
#: of their above-chance accuracy. Honest weak models keep less than strong ones (measured: about 0.70-0.78
#: of their above-chance accuracy after one epoch on 1,500 images, 0.85-0.94 for the references), never
#: less than 0.7 of the references' share; a lookup that collapses keeps far less.
GENERALISATION_SHARE = 0.5
#: Far below the references on the test images, a model's share kept is no longer comparable with theirs
#: (a raw-pixel SimpleRNN at 36 % kept 0.32 of it), and such a model earns no accuracy points anyway: the
#: rule reads only models within this many points of the weakest reference.
GENERALISATION_LEAGUE = 0.10
#: Agreement of the ablated model with itself at or above which the zeroed layers did nothing.
DEAD_LAYERS_AGREEMENT = 0.95
MIN_ABLATION_IMAGES = 100
#: Ablation is only read when the intact model answers with some variety (a lookup or a network does).
MAX_ONE_ANSWER_SHARE = 0.5


#: Relative tolerance when recognising the test images by their pixel statistics. Float32 scaling moves them
#: by under 1e-6; of 300 random 10,000-image samples of the training images the closest was 8e-4 away.
TEST_SET_TOLERANCE = 1e-5


#: More test images than this in what one fit()/train_on_batch trained on flags the model. MNIST's training
#: images hold no exact copy of a test image (measured: 0 of 60,000), so honest training shows none; a
#: handful is allowed for a notebook that tries a few test images, which cannot move an accuracy measured
#: on 5,000 of them. Above SKETCH_SIZE distinct images the count is estimated from the sketch (the smallest
#: 1,024 hashes): each match stands for (images / 1,024) images, so one match in a 60,000-image fit already
#: reads about 59; 300 test images hidden among 60,000 training images go unseen with probability under 1 %.
HANDFUL = 10
#: Accuracy on the 500-image public sample at or above which the weights a model started from were trained:
#: an untrained network sits near 10 % (measured 0.08-0.13), trained MNIST networks above 80 %.
PRETRAINED_ACCURACY = 0.3


@dataclass(frozen=True)
class TestSet:
    """Statistics of the MNIST test images and labels that survive any affine pixel scaling the student
    applied (x / 255, standardisation, [-1, 1]), for plain and 32x32 zero-padded images; and the per-image
    hashes of the test images (``sketch``), to recognise them one by one in what a model trained on."""

    images: int
    invariants: dict[int, tuple[float, float]]  # pixels per image -> _invariants of those pixels
    label_mean: float
    label_std: float
    hashes: np.ndarray  # sorted distinct sketch.image_hashes of the test images

    def count_in(self, trained_on: dict[str, Any]) -> tuple[int, int, int]:
        """(test images among the sketch's hashes, hashes in the sketch, test images estimated in the whole)."""
        sample = sketch.from_text(trained_on["sketch"])
        matches = int(np.isin(sample, self.hashes).sum())
        images = max(trained_on["images"], len(sample))
        estimate = matches if images <= len(sample) else round(matches * images / len(sample))
        return matches, len(sample), estimate

    @classmethod
    def of(cls, images: np.ndarray, labels: np.ndarray) -> TestSet:
        """From (n, 28, 28) images; the padded statistics follow from the sums (2 zero pixels on each side)."""
        pixels = images.astype(np.float64)
        total, squares, low, high = pixels.sum(), np.square(pixels).sum(), pixels.min(), pixels.max()
        invariants = {}
        for size in (contract.MNIST_PIXELS, contract.PADDED_PIXELS):
            count = len(images) * size
            mean = total / count
            invariants[size] = _invariants(mean, math.sqrt(squares / count - mean ** 2), min(low, 0.0), max(high, 0.0))
        hashes = np.unique(sketch.image_hashes(sketch.canonical(images)))
        return cls(len(images), invariants, float(labels.mean()), float(labels.std()), hashes)


def _invariants(mean: float, std: float, low: float, high: float) -> tuple[float, float]:
    """(mean - min) / std and (max - min) / std: unchanged by any increasing affine map of the pixels."""
    return (mean - low) / std, (high - low) / std


@dataclass(frozen=True)
class Finding:
    """What one rule found for one model."""

    passed: bool | None  # None: could not be measured (the reason is in ``message``)
    message: str  # plain words, for the student
    evidence: dict[str, Any]  # the numbers, for the TA and the record

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "message": self.message, "evidence": self.evidence}


@dataclass(frozen=True)
class HonestRange:
    """What the reference models showed over the calibration seeds, for one architecture."""

    test_minus_train_max: float  # largest (eval - train_sample) accuracy, clipped at 0 (honest: <= 0)
    distorted_test_minus_train_max: float  # the same for the distorted images made from test vs training images
    retention_min: float | None  # smallest (distorted - chance) / (eval - chance); None: not calibrated
    eval_min: float | None  # the weakest reference's eval accuracy


def _runs(figures: dict[str, Any], key: str) -> list[float]:
    runs = (figures.get(key) or {}).get("runs") or []
    return [float(r) for r in runs if isinstance(r, (int, float))]


def honest_range(calibration: dict[str, Any], arch: str) -> HonestRange:
    figures = calibration.get("architectures", {}).get(arch, {})
    evals, trains, distorted = (_runs(figures, k) for k in ("eval_accuracy", "train_sample_accuracy",
                                                              "distorted_accuracy"))
    gaps = [e - t for e, t in zip(evals, trains)]
    distorted_gaps = [e - t for e, t in zip(_runs(figures, "distorted_test_accuracy"),
                                            _runs(figures, "distorted_train_accuracy"))]
    retention = [(d - CHANCE) / (e - CHANCE) for e, d in zip(evals, distorted) if e > CHANCE]
    return HonestRange(test_minus_train_max=max([0.0, *gaps]), distorted_test_minus_train_max=max([0.0, *distorted_gaps]),
                       retention_min=min(retention) if retention else None, eval_min=min(evals) if evals else None)


def _standard_error(*accuracies_and_counts: tuple[float, int]) -> float:
    """Standard error of a sum/difference of independent accuracies (binomial proportions)."""
    return math.sqrt(sum(p * (1 - p) / n for p, n in accuracies_and_counts if n > 0))


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# --- the rules --------------------------------------------------------------------------------------

def _restored_steps(model: ModelEvidence) -> int:
    """Optimizer steps of this run's own training behind weights the model was loaded with and never fit since."""
    origin = model.weights_origin or {}
    events = [e for e in origin.get("events") or [] if isinstance(e, dict)]
    if origin.get("first_fit") or not events or events[-1].get("own") is not True:
        return 0
    steps = events[-1].get("producer_steps")
    return steps if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0 else 0


def trained(model: ModelEvidence) -> Finding:
    record = model.training
    steps, moved = record.get("fit_steps", 0), record.get("weights_moved")
    evidence = {"fit_calls": record.get("fit_calls", 0), "fit_steps": steps,
                "weights_moved": _r(moved), "min_weight_change": MIN_WEIGHT_CHANGE}
    restored = _restored_steps(model)
    if steps <= 0 and restored:
        return Finding(True, f"Loaded from a checkpoint that this notebook's own training wrote ({restored} "
                             "optimizer steps of fit()).", {**evidence, "restored_steps": restored})
    if steps <= 0:
        if record.get("training_steps", 0) > 0:
            return Finding(None, "This model was trained outside fit() (its optimizer took "
                                 f"{record['training_steps']} steps), which the grader cannot verify; a person "
                                 "will look at it.", {**evidence, "training_steps": record["training_steps"]})
        return Finding(False, "This model was never trained in your notebook: fit() took no optimizer steps "
                              "on it.", evidence)
    if moved is not None and moved < MIN_WEIGHT_CHANGE:
        return Finding(False, f"fit() ran {steps} steps on this model but its weights did not change "
                              f"({moved:.2g} relative change): it did not learn.", evidence)
    if moved is None:
        return Finding(True, f"Trained by fit() for {steps} steps (weight change not measured).", evidence)
    return Finding(True, f"Trained by fit() for {steps} steps; its weights moved {moved:.1%}.", evidence)


def _is_test_images(x: dict[str, Any], test_set: TestSet) -> bool:
    shape, stats = x.get("shape"), [x.get(k) for k in ("mean", "std", "min", "max")]
    if not (x.get("is_array") and isinstance(shape, list) and shape and shape[0] == test_set.images
            and all(isinstance(v, (int, float)) for v in stats) and stats[1] > 0):
        return False
    expected = test_set.invariants.get(math.prod(d for d in shape[1:] if isinstance(d, int)))
    return expected is not None and all(math.isclose(a, b, rel_tol=TEST_SET_TOLERANCE)
                                        for a, b in zip(_invariants(*stats), expected))


def _is_test_labels_or_unknown(y: dict[str, Any] | None, test_set: TestSet) -> bool:
    """Integer labels must be the test labels; one-hot or unreadable labels leave it to the images."""
    if not y or y.get("labels") != "int":
        return True
    mean, std = y.get("mean"), y.get("std")
    return (isinstance(mean, (int, float)) and isinstance(std, (int, float))
            and math.isclose(mean, test_set.label_mean, rel_tol=1e-9) and math.isclose(std, test_set.label_std, rel_tol=1e-6))


def not_fit_on_test(model: ModelEvidence, test_set: TestSet) -> Finding:
    fitted = [i for i, fit in enumerate(model.fits)
              if _is_test_images(fit.get("x") or {}, test_set) and _is_test_labels_or_unknown(fit.get("y"), test_set)]
    evidence = {"fit_calls_recorded": len(model.fits), "test_set_fits": fitted}
    if fitted:
        fit = model.fits[fitted[0]]
        evidence.update(x_shape=(fit.get("x") or {}).get("shape"), epochs=fit.get("epochs"), steps=fit.get("steps"))
        return Finding(False, f"fit() was given the {test_set.images:,} MNIST test images to train on; a model "
                              "trained on the test set cannot be scored on it.", evidence)
    return Finding(True, f"None of its {len(model.fits)} recorded fit() calls trained on the test images.", evidence)


def no_test_images_trained_on(model: ModelEvidence, test_set: TestSet) -> Finding:
    """Test images recognised one by one in what each fit() call (and train_on_batch) trained this model on."""
    calls = [(f"fit() call {i + 1}", fit.get("trained_on")) for i, fit in enumerate(model.fits)]
    if model.batch_training:
        calls.append((f"train_on_batch ({model.batch_training.get('calls', 0)} calls)", model.batch_training))
    counted = []
    for where, trained_on in calls:
        if trained_on:
            matches, sampled, estimate = test_set.count_in(trained_on)
            counted.append({"in_call": where, "test_images": estimate, "images_in_call": trained_on["images"],
                            "checked": sampled, "test_among_checked": matches})
    if not counted:
        return Finding(True, "No fit() call gave it image arrays the grader could check one by one.",
                       {"applies": False})
    worst = max(counted, key=lambda c: c["test_images"])
    evidence = {**worst, "handful": HANDFUL, "calls_checked": len(counted)}
    if worst["test_images"] > HANDFUL:
        return Finding(False, f"{worst['in_call']} trained this model on about {worst['test_images']:,} of the "
                              f"MNIST test images ({worst['test_among_checked']} of the {worst['checked']:,} of its "
                              f"{worst['images_in_call']:,} images the grader checked are test images); a model "
                              "trained on test images cannot be scored on them.", evidence)
    return Finding(True, f"None of the images of its {len(counted)} checked training call(s) are test images.", evidence)


#: How the weights a model started from reached it, in words.
ORIGIN_WORDS = {"initialised": "by means the grader did not see (no set_weights, load_weights or load_model)",
                "set_weights": "through set_weights()", "load_weights": "through load_weights() of a file",
                "load_model": "through load_model() of a file"}


def weights_from_this_notebook(model: ModelEvidence, allow_pretrained_weights: bool = False) -> Finding:
    """The weights training started from: at chance for an honest model, trained for brought-in weights."""
    origin = model.weights_origin or {}
    start = origin.get("start_accuracy")
    first = origin.get("first_fit") if isinstance(origin.get("first_fit"), dict) else {}
    events = [e for e in origin.get("events") or [] if isinstance(e, dict)]
    source = first.get("source") or (events[-1].get("event") if events else None)
    evidence = {"start_accuracy": start, "first_fit_accuracy": first.get("accuracy"), "sample": origin.get("sample"),
                "weights_from": source, "flag_at": PRETRAINED_ACCURACY,
                "weight_events": [f"{e.get('event')} {e.get('accuracy')}{' own' if e.get('own') else ''}"
                                  for e in events][:5]}
    if allow_pretrained_weights:
        return Finding(True, "The assignment allows weights trained elsewhere.", {**evidence, "applies": False})
    if not isinstance(start, (int, float)) or isinstance(start, bool):
        return Finding(True, "The weights it started from were not measured.", evidence)
    if start >= PRETRAINED_ACCURACY:
        how = ORIGIN_WORDS.get(source, "from elsewhere")
        return Finding(False, f"Before any training in your notebook this model already classified {start:.0%} of "
                              f"{origin.get('sample')} public training images (an untrained network gets about "
                              f"{100 * CHANCE:.0f} %): "
                              f"its weights were trained elsewhere and reached it {how}. The homework asks you to "
                              "train your networks.", evidence)
    return Finding(True, f"Started from untrained weights ({start:.0%} on a public sample) and learned in the "
                         "notebook.", evidence)


def _excess(test: float, n_test: int, train: float, n_train: int, honest_gap: float) -> tuple[float, float]:
    """Test-image accuracy minus training-image accuracy beyond the honest gap, and its standard error."""
    return test - train - honest_gap - TEST_GAP_FLOOR, max(_standard_error((test, n_test), (train, n_train)), 1e-9)


def not_trained_on_test(model: ModelEvidence, labels: dict[str, np.ndarray], honest: HonestRange,
                        distorted_from_test: np.ndarray | None = None) -> Finding:
    """Test images vs training images, twice: ``eval`` vs ``train_sample``, and the distorted images made from
    test vs from training images (``distorted_from_test``); the two independent excesses are combined
    weighted by their precision (inverse variance), and flagged when their z-score passes ``NOISE_Z``."""
    test = model.accuracy("eval", labels["eval"])
    train = model.accuracy("train_sample", labels["train_sample"])
    if test is None or train is None:
        return Finding(None, "The grader has no predictions of this model on its test and training samples.",
                       {"missing": [s for s, a in (("eval", test), ("train_sample", train)) if a is None]})
    excesses = [_excess(test, len(labels["eval"]), train, len(labels["train_sample"]), honest.test_minus_train_max)]
    evidence = {"eval_accuracy": _r(test), "train_sample_accuracy": _r(train), "gap": _r(test - train),
                "honest_gap_max": _r(honest.test_minus_train_max)}
    distorted = model.predictions.get("distorted")
    also = ""
    if distorted is not None and distorted_from_test is not None and 0 < distorted_from_test.sum() < len(distorted):
        right = distorted == labels["distorted"]
        d_test, d_train = float(right[distorted_from_test].mean()), float(right[~distorted_from_test].mean())
        excesses.append(_excess(d_test, int(distorted_from_test.sum()), d_train, int((~distorted_from_test).sum()),
                                honest.distorted_test_minus_train_max))
        evidence.update(distorted_test_accuracy=_r(d_test), distorted_train_accuracy=_r(d_train),
                        honest_distorted_gap_max=_r(honest.distorted_test_minus_train_max))
        also = f", and on distorted test digits than on distorted training digits ({d_test:.1%} vs {d_train:.1%})"
    weights = [1 / se ** 2 for _, se in excesses]  # independent image sets: precision-weighted mean
    z = sum(w * excess for w, (excess, _) in zip(weights, excesses)) / math.sqrt(sum(weights))
    evidence.update(z=round(z, 2), flag_above=NOISE_Z)
    if z > NOISE_Z and test - train > honest.test_minus_train_max + TEST_GAP_FLOOR:
        return Finding(False, f"This model is clearly better on test images ({test:.1%}) than on training "
                              f"images ({train:.1%}){also}; a network trained on the training set shows the "
                              "reverse. It looks trained on the test set, or a lookup of it.", evidence)
    return Finding(True, f"As accurate on training images ({train:.1%}) as a network trained on them should be "
                         f"(test images: {test:.1%}).", evidence)


def generalises(model: ModelEvidence, labels: dict[str, np.ndarray], honest: HonestRange) -> Finding:
    test = model.accuracy("eval", labels["eval"])
    distorted = model.accuracy("distorted", labels["distorted"])
    if test is None or distorted is None:
        return Finding(None, "The grader has no predictions of this model on its distorted digits.",
                       {"missing": [s for s, a in (("eval", test), ("distorted", distorted)) if a is None]})
    if honest.retention_min is None or honest.eval_min is None:
        return Finding(None, "The grader has no honest reference for distorted digits (calibration).",
                       {"distorted_accuracy": _r(distorted)})
    if test < honest.eval_min - GENERALISATION_LEAGUE:
        return Finding(True, f"Keeps {distorted:.1%} on slightly distorted digits (at {test:.1%} on test images it "
                             "is too far from the references for a comparison).",
                       {"applies": False, "eval_accuracy": _r(test), "distorted_accuracy": _r(distorted),
                        "applies_from": _r(honest.eval_min - GENERALISATION_LEAGUE)})
    retention = max(0.0, honest.retention_min)
    expected = CHANCE + retention * max(0.0, test - CHANCE)
    kept = GENERALISATION_SHARE * retention
    # The floor scales the eval accuracy by ``kept``, so its noise scales too.
    noise = NOISE_Z * math.sqrt(distorted * (1 - distorted) / len(labels["distorted"])
                                + kept ** 2 * test * (1 - test) / len(labels["eval"]))
    floor = CHANCE + kept * max(0.0, test - CHANCE) - noise
    evidence = {"eval_accuracy": _r(test), "distorted_accuracy": _r(distorted), "honest_expected": _r(expected),
                "flag_below": _r(floor), "honest_retention_min": _r(honest.retention_min)}
    if distorted < floor:
        return Finding(False, f"On slightly distorted digits this model falls to {distorted:.1%}, far below the "
                              f"{expected:.0%} an honest network with its test accuracy ({test:.1%}) keeps: it "
                              "recognises known images rather than digits.", evidence)
    return Finding(True, f"Keeps {distorted:.1%} on slightly distorted digits, as an honest network with its "
                         f"test accuracy does.", evidence)


def does_the_work(model: ModelEvidence) -> Finding:
    arch = model.arch
    if arch not in contract.WORKING_LAYERS:
        return Finding(True, "An MLP has no separate working layers to test.", {"applies": False})
    kind_layers = "convolutional" if arch == "cnn" else contract.RECURRENT_LAYER[arch]
    agreements = {name: (ids, model.predictions[name][:len(ids)]) for name, ids in model.ablated.items()
                  if name in model.predictions}
    images = sum(len(ids) for ids, _ in agreements.values())
    if images < MIN_ABLATION_IMAGES:
        return Finding(None, f"The grader could not test the model with its {kind_layers} layers switched off.",
                       {"ablated_images": images})
    agreement = sum(int(np.sum(a == b)) for a, b in agreements.values()) / images
    intact = np.concatenate([b for _, b in agreements.values()])
    most_common = float(np.bincount(intact, minlength=contract.CLASSES).max()) / images
    evidence = {"agreement": _r(agreement), "ablated_images": images, "flag_at": DEAD_LAYERS_AGREEMENT,
                "most_common_answer_share": _r(most_common), "zeroed": model.ablation.get("zeroed")}
    # A model that gives nearly one answer everywhere (untrained, at chance) keeps giving it with or
    # without the layers: agreement says nothing there, and such a model earns no accuracy points anyway.
    if agreement >= DEAD_LAYERS_AGREEMENT and most_common < MAX_ONE_ANSWER_SHARE:
        return Finding(False, f"With its {kind_layers} layers switched off this model still gives the same answer "
                              f"on {agreement:.1%} of the images: those layers do no work, so it is not "
                              f"{'a CNN' if arch == 'cnn' else 'a ' + TITLES[arch]} in substance.", evidence)
    return Finding(True, f"Its {kind_layers} layers do the work (switching them off changes {1 - agreement:.0%} of "
                         "its answers).", evidence)


def distinct(model: ModelEvidence, others: dict[str, ModelEvidence]) -> Finding:
    """Identical predictions on every image to an earlier architecture's model: one model, counted once."""
    mine = model.predictions
    for arch, other in others.items():
        if arch == model.arch:
            break  # only earlier architectures: the first of identical models keeps its credit
        shared = sorted(set(mine) & set(other.predictions))
        images = sum(len(mine[s]) for s in shared)
        if images and all(np.array_equal(mine[s], other.predictions[s]) for s in shared):
            return Finding(False, f"This model gives exactly the same answer as your {TITLES[arch]} on all "
                                  f"{images:,} of the grader's images: it is the same model, which counts once.",
                           {"identical_to": arch, "images": images})
    return Finding(True, "Its answers differ from those of your other models.", {})


# --- all rules, all models ------------------------------------------------------------------------

def assess(models: dict[str, ModelEvidence], labels: dict[str, np.ndarray], calibration: dict[str, Any],
           test_set: TestSet, distorted_from_test: np.ndarray | None = None,
           allow_pretrained_weights: bool = False) -> dict[str, dict[str, Finding]]:
    """Every rule for every model that has predictions, in ``RULES`` order.

    ``test_set`` describes the MNIST test images the student has; ``distorted_from_test`` marks the distorted
    images made from test images (the rest come from training images); without it ``not_trained_on_test``
    compares the undistorted sets only; ``allow_pretrained_weights`` is the assignment's ``[integrity]`` switch.
    """
    usable = {arch: models[arch] for arch in contract.ARCHITECTURES if arch in models and models[arch].predictions}
    findings = {}
    for arch, model in usable.items():
        honest = honest_range(calibration, arch)
        findings[arch] = {"trained": trained(model),
                          "weights_from_this_notebook": weights_from_this_notebook(model, allow_pretrained_weights),
                          "not_fit_on_test": not_fit_on_test(model, test_set),
                          "no_test_images_trained_on": no_test_images_trained_on(model, test_set),
                          "not_trained_on_test": not_trained_on_test(model, labels, honest, distorted_from_test),
                          "generalises": generalises(model, labels, honest), "does_the_work": does_the_work(model),
                          "distinct": distinct(model, usable)}
    return findings


def flagged(findings: dict[str, Finding]) -> list[str]:
    return [rule for rule, finding in findings.items() if finding.passed is False]


def unmeasured(findings: dict[str, Finding]) -> list[str]:
    return [rule for rule, finding in findings.items() if finding.passed is None]


def as_block(findings: dict[str, dict[str, Finding]]) -> dict[str, dict[str, dict[str, Any]]]:
    """The result schema's ``integrity`` block: {arch: {rule: {passed, message, evidence}}}."""
    return {arch: {rule: finding.as_dict() for rule, finding in rules.items()} for arch, rules in findings.items()}
