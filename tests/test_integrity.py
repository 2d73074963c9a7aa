"""Integrity rules on synthetic evidence (no TensorFlow): each flags its attack and never honest work.

The honest figures below were measured (1,500 training images, one epoch, batch 64, Adam, the sets of
``autograder.data.make_evaluation_images`` with 1,000 eval images): weak honest models are as accurate
on training images as on test images and keep about 70 % of their above-chance accuracy on distorted
digits. The attacks are the ones of issue 12.
"""
from __future__ import annotations

import numpy as np
import pytest

from autograder.assignment import Threshold
from autograder.run.inside import contract, fit_hook, probe
from autograder.score import artifacts, integrity
from autograder.output.reading import fed_description
from autograder.score.accuracy import accuracy_outcome
from autograder.score.artifacts import ModelEvidence
from autograder.score.checks import NeedsReview, NotAssessed
from exports import corpus_model

SIZES = {"public": 10_000, "eval": 5_000, "train_sample": 3_000, "distorted": 2_000}
RNG = np.random.default_rng(0)
LABELS = {name: RNG.integers(0, 10, n) for name, n in SIZES.items()}
FROM_TEST = RNG.permutation(SIZES["distorted"]) < SIZES["distorted"] // 2  # half from test images, secretly mixed

#: The reference models as calibration.json holds them (seed-0 figures measured by the predict helper on
#: the committed seed's sets): eval / train_sample / distorted accuracy.
REFERENCES = {"mlp": (0.9802, 0.9887, 0.8540), "cnn": (0.9924, 0.9923, 0.9420), "simple_rnn": (0.9732, 0.9753, 0.8385),
              "lstm": (0.9844, 0.9900, 0.9260), "gru": (0.9816, 0.9793, 0.9045)}
CALIBRATION = {"architectures": {arch: {
    "eval_accuracy": {"runs": [e]}, "train_sample_accuracy": {"runs": [t]}, "distorted_accuracy": {"runs": [d]}}
    for arch, (e, t, d) in REFERENCES.items()}}

#: Measured on honest weak models (1,500 images, one epoch): (eval, train_sample, distorted) accuracy.
HONEST_WEAK = {
    "mlp": (0.675, 0.683, 0.527),
    "cnn": (0.712, 0.722, 0.555),
    "simple_rnn": (0.282, 0.283, 0.224),
    "lstm": (0.258, 0.271, 0.223),
    "gru": (0.093, 0.112, 0.1045),  # still at chance after one epoch
}


def answers(labels: np.ndarray, accuracy: float, seed: int = 1) -> np.ndarray:
    """Class ids that are right on exactly round(accuracy * n) images, chosen at random."""
    rng = np.random.default_rng(seed)
    predicted = (labels + rng.integers(1, 10, len(labels))) % 10
    right = rng.choice(len(labels), size=round(accuracy * len(labels)), replace=False)
    predicted[right] = labels[right]
    return predicted


def model(arch: str = "mlp", *, eval_acc=0.98, train_acc=0.985, distorted_acc=0.88, public_acc=0.98,
          seed: int = 1, fit_steps: int = 400, moved: float | None = 0.3, ablated_agreement: float | None = 0.1,
          distorted_halves: tuple[float, float] | None = None, **training) -> ModelEvidence:
    accuracies = {"public": public_acc, "eval": eval_acc, "train_sample": train_acc, "distorted": distorted_acc}
    m = ModelEvidence(arch, found=True, variable=f"{arch}_model", found_by="name",
                      training={"fit_calls": 1, "fit_steps": fit_steps, "training_steps": fit_steps,
                                "weights_moved": moved, **training},
                      summary=corpus_model(arch, "summary"),
                      predictions={name: answers(LABELS[name], acc, seed + i)
                                   for i, (name, acc) in enumerate(accuracies.items()) if acc is not None})
    if distorted_halves is not None:  # accuracy on the distorted images made from test / from training images
        for half, acc in zip((FROM_TEST, ~FROM_TEST), distorted_halves):
            m.predictions["distorted"][half] = answers(LABELS["distorted"][half], acc, seed + 7)
    if ablated_agreement is not None and arch != "mlp" and "eval" in m.predictions:
        intact = m.predictions["eval"][:1000]
        m.ablated["eval"] = np.where(np.arange(1000) < ablated_agreement * 1000, intact, (intact + 1) % 10)
    return m


#: A stand-in for the MNIST test images and labels (the rule reads statistics, not pixels).
TEST_IMAGES = np.random.default_rng(4).integers(0, 256, (1_000, 28, 28)).astype(np.uint8)
TEST_IMAGES[:, :4] = 0  # blank borders, like MNIST's
TEST_LABELS = np.random.default_rng(5).integers(0, 10, 1_000)
TEST_SET = integrity.TestSet.of(TEST_IMAGES, TEST_LABELS)


def honest(arch: str = "mlp") -> integrity.HonestRange:
    return integrity.honest_range(CALIBRATION, arch)


# --- trained --------------------------------------------------------------------------------------

def test_trained_needs_fit_steps_and_moved_weights():
    assert integrity.trained(model()).passed is True
    never = integrity.trained(model(fit_steps=0, training_steps=0))
    assert never.passed is False and "never trained" in never.message
    frozen = integrity.trained(model(moved=0.0))
    assert frozen.passed is False and frozen.evidence["weights_moved"] == 0.0


def test_trained_without_a_weight_fingerprint_passes_and_outside_fit_goes_to_a_person():
    assert integrity.trained(model(moved=None)).passed is True
    custom_loop = integrity.trained(model(fit_steps=0, training_steps=250))
    assert custom_loop.passed is None and "outside fit()" in custom_loop.message


# --- not_fit_on_test ------------------------------------------------------------------------------

def fitted_on(x: np.ndarray, y: np.ndarray | None) -> ModelEvidence:
    """A model whose one fit call the kernel's own probe recorded."""
    m = model()
    m.fits = [{"x": probe.probe(x), "y": probe.probe(y), "epochs": 2, "steps": 32}]
    return m


@pytest.mark.parametrize("scaling", [
    lambda x: x.astype(np.float32) / 255,                                     # the template's [0, 1]
    lambda x: (x.astype(np.float32) - 33.3) / 78.6,                           # standardised
    lambda x: x.astype(np.float32) / 127.5 - 1,                               # [-1, 1]
    lambda x: x.reshape(len(x), 784).astype(np.float64) / 255,                # flat vectors
    lambda x: np.pad(x.astype(np.float32) / 255, ((0, 0), (2, 2), (2, 2)))[..., None],  # LeNet's 32x32x1
])
def test_a_fit_on_the_test_images_is_recognised_however_they_were_scaled(scaling):
    finding = integrity.not_fit_on_test(fitted_on(scaling(TEST_IMAGES), TEST_LABELS), TEST_SET)
    assert finding.passed is False and "test images" in finding.message
    assert finding.evidence["test_set_fits"] == [0] and finding.evidence["epochs"] == 2
    one_hot = np.eye(10, dtype=np.float32)[TEST_LABELS]  # one-hot labels leave it to the images
    assert integrity.not_fit_on_test(fitted_on(scaling(TEST_IMAGES), one_hot), TEST_SET).passed is False


def test_fits_on_other_images_of_the_same_size_are_not_the_test_set():
    rng = np.random.default_rng(6)
    others = rng.integers(0, 256, TEST_IMAGES.shape).astype(np.uint8)
    others[:, :4] = 0
    assert integrity.not_fit_on_test(fitted_on(others / 255, TEST_LABELS), TEST_SET).passed is True
    # The test images with one image swapped for another: a different set, however close.
    almost = TEST_IMAGES.copy()
    almost[0] = others[0]
    assert integrity.not_fit_on_test(fitted_on(almost / 255, TEST_LABELS), TEST_SET).passed is True
    # The test images fed with other labels are not the test set either (a validation set of that size?).
    assert integrity.not_fit_on_test(fitted_on(TEST_IMAGES / 255, rng.integers(0, 10, 1_000)), TEST_SET).passed is True
    assert integrity.not_fit_on_test(model(), TEST_SET).passed is True  # no fit recorded: nothing to say
    # Validation data is not training data.
    honest_fit = fitted_on(others / 255, TEST_LABELS)
    honest_fit.fits[0]["validation_x"] = probe.probe(TEST_IMAGES / 255)
    assert integrity.not_fit_on_test(honest_fit, TEST_SET).passed is True


# --- not_trained_on_test --------------------------------------------------------------------------

@pytest.mark.parametrize("eval_acc, train_acc, halves", [
    (0.98, 0.985, (0.88, 0.88)), (0.70, 0.68, (0.53, 0.52)), (0.99, 0.985, (0.95, 0.94)), (0.9924, 0.9923, None)])
def test_honest_models_are_not_flagged_as_trained_on_test(eval_acc, train_acc, halves):
    m = model(eval_acc=eval_acc, train_acc=train_acc, distorted_halves=halves)
    finding = integrity.not_trained_on_test(m, LABELS, honest(), FROM_TEST)
    assert finding.passed is True, finding.evidence


@pytest.mark.parametrize("eval_acc, train_acc, halves", [
    (0.9872, 0.9397, (0.77, 0.74)),  # measured: an MLP fit on the 10,000 test images for five epochs
    (0.984, 0.961, (0.903, 0.874)),  # measured: a CNN fit on them for two epochs
    (0.9836, 0.9647, (0.907, 0.880)),  # measured: the corpus's trained_on_test variant's CNN (z 3.94)
    (1.0, 0.94, (0.81, 0.79)),  # a 1-NN lookup of the public test set
])
def test_training_on_the_test_set_or_a_lookup_of_it_is_flagged(eval_acc, train_acc, halves):
    m = model(eval_acc=eval_acc, train_acc=train_acc, distorted_halves=halves)
    finding = integrity.not_trained_on_test(m, LABELS, honest("cnn"), FROM_TEST)
    assert finding.passed is False and "test set" in finding.message and "distorted test digits" in finding.message
    assert finding.evidence["z"] > integrity.NOISE_Z


def test_the_distorted_halves_add_power_and_the_references_gap_is_allowed():
    cnn_on_test = model(eval_acc=0.984, train_acc=0.961, distorted_halves=(0.903, 0.874))
    alone = integrity.not_trained_on_test(cnn_on_test, LABELS, honest("cnn")).evidence["z"]
    assert integrity.not_trained_on_test(cnn_on_test, LABELS, honest("cnn"), FROM_TEST).evidence["z"] > alone
    calibration = {"architectures": {"mlp": {"eval_accuracy": {"runs": [0.98]},
                                             "train_sample_accuracy": {"runs": [0.96]}}}}
    assert integrity.honest_range(calibration, "mlp").test_minus_train_max == pytest.approx(0.02)
    small = {name: labels[:300] for name, labels in LABELS.items()}
    few = ModelEvidence("mlp", found=True, predictions={k: v[:300] for k, v in cnn_on_test.predictions.items()})
    assert integrity.not_trained_on_test(few, small, honest()).passed is True  # 300 images: too few to tell


def test_missing_training_sample_predictions_are_not_measured():
    finding = integrity.not_trained_on_test(model(train_acc=None), LABELS, honest())
    assert finding.passed is None and finding.evidence["missing"] == ["train_sample"]


# --- generalises ----------------------------------------------------------------------------------

def test_a_lookup_that_collapses_on_distorted_digits_is_flagged():
    finding = integrity.generalises(model("cnn", eval_acc=1.0, distorted_acc=0.40), LABELS, honest("cnn"))
    assert finding.passed is False and "distorted" in finding.message
    assert finding.evidence["honest_expected"] == pytest.approx(0.95, abs=0.01)


def test_the_references_themselves_generalise():
    for arch, (eval_acc, train_acc, distorted_acc) in REFERENCES.items():
        m = model(arch, eval_acc=eval_acc, train_acc=train_acc, distorted_acc=distorted_acc)
        assert integrity.generalises(m, LABELS, honest(arch)).passed is True, arch
        assert integrity.not_trained_on_test(m, LABELS, honest(arch)).passed is True, arch


@pytest.mark.parametrize("arch", list(HONEST_WEAK))
def test_measured_weak_honest_models_generalise_and_were_not_trained_on_test(arch):
    eval_acc, train_acc, distorted_acc = HONEST_WEAK[arch]
    m = model(arch, eval_acc=eval_acc, train_acc=train_acc, distorted_acc=distorted_acc)
    small = {**LABELS, "eval": LABELS["eval"][:1000]}
    m.predictions["eval"] = answers(small["eval"], eval_acc)
    assert integrity.generalises(m, small, honest(arch)).passed is True
    assert integrity.not_trained_on_test(m, small, honest(arch), FROM_TEST).passed is True


def test_a_model_far_weaker_than_the_references_is_not_compared_with_them():
    raw_pixel_rnn = model("simple_rnn", eval_acc=0.3596, distorted_acc=0.184)  # measured: kept 0.32 of its share
    finding = integrity.generalises(raw_pixel_rnn, LABELS, honest("simple_rnn"))
    assert finding.passed is True and finding.evidence["applies"] is False


def test_generalisation_without_a_calibrated_honest_range_is_not_measured():
    finding = integrity.generalises(model(), LABELS, integrity.honest_range({"architectures": {}}, "mlp"))
    assert finding.passed is None


# --- does_the_work --------------------------------------------------------------------------------

def test_a_dead_recurrent_branch_is_flagged_and_a_working_one_passes():
    dead = integrity.does_the_work(model("lstm", ablated_agreement=1.0))
    assert dead.passed is False and dead.evidence["agreement"] == 1.0 and "LSTM" in dead.message
    assert integrity.does_the_work(model("lstm", ablated_agreement=0.12)).passed is True
    assert integrity.does_the_work(model("cnn", ablated_agreement=0.6)).passed is True  # a residual path


def test_ablation_does_not_apply_to_an_mlp_and_is_needed_for_the_others():
    assert integrity.does_the_work(model("mlp")).evidence == {"applies": False}
    assert integrity.does_the_work(model("gru", ablated_agreement=None)).passed is None


# --- distinct -------------------------------------------------------------------------------------

def test_two_architectures_with_identical_answers_are_one_model():
    mlp, cnn, gru = model("mlp", seed=3), model("cnn", seed=3), model("gru", seed=9)
    models = {"mlp": mlp, "cnn": cnn, "gru": gru}
    assert integrity.distinct(mlp, models).passed is True  # the first keeps its credit
    same = integrity.distinct(cnn, models)
    assert same.passed is False and same.evidence == {"identical_to": "mlp", "images": sum(SIZES.values())}
    assert integrity.distinct(gru, models).passed is True


# --- all together, and what accuracy makes of it ----------------------------------------------------

def test_assess_covers_every_rule_for_models_with_predictions_only():
    models = {"mlp": model("mlp"), "cnn": model("cnn", seed=5),
              "lstm": ModelEvidence("lstm", found=True, error="could not rebuild")}
    findings = integrity.assess(models, LABELS, CALIBRATION, TEST_SET)
    assert set(findings) == {"mlp", "cnn"}
    assert all(list(rules) == list(integrity.RULES) for rules in findings.values())
    assert not integrity.flagged(findings["mlp"]) and not integrity.flagged(findings["cnn"])
    block = integrity.as_block(findings)
    assert block["cnn"]["does_the_work"]["passed"] is True and "agreement" in block["cnn"]["does_the_work"]["evidence"]


THRESHOLD = Threshold(full=0.95, zero=0.80)
MLP_SUMMARY = corpus_model("mlp", "summary")  # a real MLP's: 235,146 parameters


def test_a_flagged_model_earns_no_accuracy_points_and_is_told_why():
    lookup = model(eval_acc=1.0, train_acc=0.95)
    lookup.summary = MLP_SUMMARY
    findings = integrity.assess({"mlp": lookup}, LABELS, CALIBRATION, TEST_SET)["mlp"]
    outcome = accuracy_outcome(lookup, LABELS["eval"], THRESHOLD, 1_000_000, findings)
    assert outcome.fraction == 0 and "100.00%" in outcome.message and "test set" in outcome.message


def test_an_honest_model_earns_its_accuracy_points():
    m = model(eval_acc=0.97)
    m.summary = MLP_SUMMARY
    findings = integrity.assess({"mlp": m}, LABELS, CALIBRATION, TEST_SET)["mlp"]
    assert accuracy_outcome(m, LABELS["eval"], THRESHOLD, 1_000_000, findings).fraction == 1.0


def test_what_cannot_be_judged_goes_to_a_person_never_a_silent_zero():
    m = model(fit_steps=0, training_steps=100)
    m.summary = MLP_SUMMARY
    findings = integrity.assess({"mlp": m}, LABELS, CALIBRATION, TEST_SET)["mlp"]
    with pytest.raises(NeedsReview, match="outside fit"):
        accuracy_outcome(m, LABELS["eval"], THRESHOLD, 1_000_000, findings)
    with pytest.raises(NeedsReview, match="could not rebuild"):
        accuracy_outcome(ModelEvidence("mlp", found=True, variable="net", error="could not rebuild"),
                         LABELS["eval"], THRESHOLD, 1_000_000, {})
    with pytest.raises(NotAssessed, match="No usable MLP"):
        accuracy_outcome(ModelEvidence("mlp"), LABELS["eval"], THRESHOLD, 1_000_000, {})


def test_a_measurement_the_notebooks_own_evaluate_contradicts_goes_to_review_never_to_a_score():
    """A recurrent network fed raw pixels falls to chance; the notebook's own evaluate() said 95 %."""
    fed_wrong = model("simple_rnn", eval_acc=0.14)
    fed_wrong.summary, fed_wrong.own_accuracy = corpus_model("simple_rnn", "summary"), 0.95
    with pytest.raises(NeedsReview, match=r"your SimpleRNN at 14\.00%.*evaluate\(\) or predict\(\) gave 95\.00%"):
        accuracy_outcome(fed_wrong, LABELS["eval"], THRESHOLD, 1_000_000, {})
    agreeing = model(eval_acc=0.96)
    agreeing.summary, agreeing.own_accuracy = MLP_SUMMARY, 0.98  # run-to-run noise: scored as measured
    assert accuracy_outcome(agreeing, LABELS["eval"], THRESHOLD, 1_000_000, {}).fraction == 1.0
    boasting = model(eval_acc=0.97)
    boasting.summary, boasting.own_accuracy = MLP_SUMMARY, 0.50  # a lower claim never costs a point
    assert accuracy_outcome(boasting, LABELS["eval"], THRESHOLD, 1_000_000, {}).fraction == 1.0


def test_over_budget_or_foreign_layers_earn_no_accuracy_points():
    m = model(eval_acc=0.99)
    m.summary = MLP_SUMMARY
    assert "over its budget" in accuracy_outcome(m, LABELS["eval"], THRESHOLD, 50_000, {}).message
    m.summary = corpus_model("cnn", "summary")
    assert "a CNN, not an MLP" in accuracy_outcome(m, LABELS["eval"], THRESHOLD, 10**6, {}).message


# --- Phase B end to end on synthetic evidence (no sandbox, no TensorFlow) ------------------------------

def synthetic_evidence(labels: dict[str, np.ndarray], accuracies: dict[str, dict[str, float]]):
    from autograder.score.artifacts import Evidence

    models = {}
    for seed, arch in enumerate(("mlp", "cnn", "simple_rnn", "lstm", "gru")):
        if arch not in accuracies:
            models[arch] = ModelEvidence(arch)
            continue
        m = ModelEvidence(arch, found=True, variable=f"{arch}_net", found_by="fit",
                          training={"fit_calls": 1, "fit_steps": 50, "training_steps": 50, "weights_moved": 0.2},
                          summary=corpus_model(arch, "summary"), fed=corpus_model(arch, "fed"),
                          predictions={name: answers(labels[name], acc, seed * 10 + i)
                                       for i, (name, acc) in enumerate(accuracies[arch].items())})
        if arch != "mlp":
            intact = m.predictions["eval"][:200]
            m.ablated["eval"] = np.where(np.arange(200) % 10 == 0, intact, (intact + 1) % 10)
        models[arch] = m
    models["lstm"] = ModelEvidence("lstm", found=True, variable="lstm_net", error="the grader could not rebuild or "
                                   "run the saved model: the subclassed model MyLSTM could not be rebuilt")
    return Evidence(models=models, data={}, validation={}, confusion=[], best_model=None, fits=[], problems=[])


def test_scoring_gates_accuracy_on_integrity_and_sends_the_unjudgeable_to_review(small_assignment):
    import nbformat

    from autograder.pipeline import grade_one as grade

    labels = {name: s.labels.astype(np.int64) for name, s in grade.evaluation_images(small_assignment).sets.items()}
    honest = {"public": 0.8, "eval": 0.8, "train_sample": 0.82, "distorted": 0.62}
    lookup = {"public": 1.0, "eval": 1.0, "train_sample": 0.94, "distorted": 0.80}
    evidence = synthetic_evidence(labels, {"mlp": lookup, "cnn": honest, "gru": honest})
    result = grade.score({}, small_assignment, evidence, nbformat.v4.new_notebook())
    checks = {c["name"]: c for q in result["questions"] for c in q["checks"]}
    assert checks["mlp_accuracy"]["score"] == 0 and "test set" in checks["mlp_accuracy"]["message"]
    assert checks["mlp_architecture"]["status"] == "passed"  # structure is structure; accuracy is withheld
    assert checks["cnn_accuracy"]["score"] == 10 and checks["gru_accuracy"]["score"] == 4
    assert checks["lstm_accuracy"]["status"] == checks["lstm_architecture"]["status"] == "needs_review"
    assert checks["simple_rnn_accuracy"]["status"] == "not_assessed"
    assert result["integrity"]["mlp"]["not_trained_on_test"]["passed"] is False
    assert all(f["passed"] for arch in ("cnn", "gru") for f in result["integrity"][arch].values())
    assert {(r["question"], r["check"]) for r in result["review"]} == {("q5", "lstm_architecture"),
                                                                        ("q5", "lstm_accuracy")}
    assert result["models"]["cnn"]["fed"] == corpus_model("cnn", "fed") and result["models"]["lstm"]["found"]


def test_a_model_that_gives_one_answer_everywhere_is_not_called_hollow():
    stuck = model("gru", eval_acc=0.1)
    stuck.predictions["eval"] = np.full(SIZES["eval"], 1)
    stuck.ablated["eval"] = np.full(1000, 1)
    finding = integrity.does_the_work(stuck)
    assert finding.passed is True and finding.evidence["most_common_answer_share"] == 1.0


# --- no_test_images_trained_on (issue 24) ---------------------------------------------------------

@pytest.fixture(scope="module")
def mnist_test_set(mnist) -> integrity.TestSet:
    return integrity.TestSet.of(mnist.x_test, mnist.y_test)


def trained_on(*xs: np.ndarray, split: float | None = None) -> ModelEvidence:
    """A model whose fit calls the kernel's own hook sketched, read back through the grader's door."""
    m = model()
    m.fits = [{"x": probe.probe(x), "trained_on": artifacts.image_sketch(fit_hook.test_image_sketch(x, split))}
              for x in xs]
    return m


def test_honest_training_on_19000_training_images_holds_no_test_image(mnist, mnist_test_set):
    x = mnist.x_train[:19_000].astype(np.float32) / 255
    finding = integrity.no_test_images_trained_on(trained_on(x, x[:5_000]), mnist_test_set)
    assert finding.passed is True and finding.evidence["test_images"] == 0
    assert finding.evidence["images_in_call"] == 19_000 and finding.evidence["checked"] == contract.SKETCH_SIZE


@pytest.mark.parametrize("scaling", [
    lambda x: x.astype(np.float32) / 255,                                     # the template's [0, 1]
    lambda x: (x.astype(np.float32) - 33.3) / 78.6,                           # standardised
    lambda x: x.reshape(len(x), 784).astype(np.float64) / 255,                # flat vectors
    lambda x: (x.astype(np.float32) / 255)[..., None],                        # (28, 28, 1)
    lambda x: np.pad(x.astype(np.float32) / 255, ((0, 0), (2, 2), (2, 2)))[..., None],  # LeNet's 32x32x1
])
def test_a_shuffled_subset_of_the_test_images_in_a_second_fit_is_recognised(mnist, mnist_test_set, scaling):
    perm = np.random.default_rng(3).permutation(10_000)
    honest_part = scaling(mnist.x_train[:19_000])
    finding = integrity.no_test_images_trained_on(trained_on(honest_part, scaling(mnist.x_test[perm[:9000]])),
                                                  mnist_test_set)
    assert finding.passed is False and finding.evidence["in_call"] == "fit() call 2"
    assert 8_000 < finding.evidence["test_images"] < 10_000 and "test images" in finding.message


def test_test_images_concatenated_into_the_training_set_and_shuffled_are_recognised(mnist, mnist_test_set):
    mixed = np.concatenate([mnist.x_train[:19_000], mnist.x_test[:9_000]])
    mixed = mixed[np.random.default_rng(4).permutation(len(mixed))].astype(np.float32) / 255
    evidence = integrity.no_test_images_trained_on(trained_on(mixed), mnist_test_set).evidence
    assert evidence["test_images"] > integrity.HANDFUL and 6_000 < evidence["test_images"] < 12_000
    # 300 test images hidden among 19,000 training images are still seen.
    few = np.concatenate([mnist.x_train[:19_000], mnist.x_test[:300]]).astype(np.float32) / 255
    assert integrity.no_test_images_trained_on(trained_on(few), mnist_test_set).passed is False


def test_a_handful_of_test_images_is_allowed_and_held_out_validation_tails_are_not_training(mnist, mnist_test_set):
    def fed(test_images: int) -> np.ndarray:
        return np.concatenate([mnist.x_train[:900], mnist.x_test[:test_images]]).astype(np.float32) / 255

    assert integrity.no_test_images_trained_on(trained_on(fed(integrity.HANDFUL)), mnist_test_set).passed is True
    finding = integrity.no_test_images_trained_on(trained_on(fed(50)), mnist_test_set)
    assert finding.passed is False and finding.evidence["test_images"] == 50  # under 1,024 images: counted exactly
    # validation_split holds out the tail of x: test images there are validated on, never trained on.
    assert integrity.no_test_images_trained_on(trained_on(fed(100), split=0.1), mnist_test_set).passed is True


def test_train_on_batch_with_test_images_is_recognised(mnist, mnist_test_set):
    def batches(images: np.ndarray) -> dict:
        record = fit_hook.BatchTraining()
        for start in range(0, len(images), 64):
            record.add(images[start:start + 64].astype(np.float32) / 255)
        return artifacts.image_sketch(record.as_dict())

    m = trained_on(mnist.x_train[:2_000].astype(np.float32) / 255)
    m.batch_training = batches(mnist.x_test[:3_000])
    finding = integrity.no_test_images_trained_on(m, mnist_test_set)
    assert finding.passed is False and finding.evidence["in_call"] == "train_on_batch (47 calls)"
    m.batch_training = batches(mnist.x_train[2_000:5_000])
    assert integrity.no_test_images_trained_on(m, mnist_test_set).passed is True


def test_unreadable_or_oversized_sketches_are_refused_at_the_door():
    assert artifacts.image_sketch({"images": 5, "sketch": "zz" * 8}) is None
    assert artifacts.image_sketch({"images": 5, "sketch": "0" * 15}) is None
    assert artifacts.image_sketch({"images": 5, "sketch": "0" * 16 * (contract.SKETCH_SIZE + 1)}) is None
    assert artifacts.image_sketch({"images": -3, "sketch": "0" * 16}) == {"images": 0, "sketch": "0" * 16}
    assert integrity.no_test_images_trained_on(model(), integrity.TestSet.of(TEST_IMAGES, TEST_LABELS)).passed is True


# --- weights_from_this_notebook (issue 24) --------------------------------------------------------

def started_from(accuracy: float | None, source: str = "initialised", own: bool = False) -> ModelEvidence:
    m = model()
    m.weights_origin = {"sample": 500, "start_accuracy": accuracy,
                        "first_fit": {"event": "first_fit", "accuracy": accuracy, "own": own, "source": source}}
    return m


def test_weights_trained_elsewhere_are_flagged_unless_the_assignment_allows_them():
    finding = integrity.weights_from_this_notebook(started_from(0.967, "set_weights"))
    assert finding.passed is False and "97%" in finding.message and "set_weights()" in finding.message
    assert finding.evidence["first_fit_accuracy"] == 0.967 and finding.evidence["weights_from"] == "set_weights"
    assert integrity.weights_from_this_notebook(started_from(0.967, "set_weights"), True).passed is True
    assert integrity.weights_from_this_notebook(started_from(0.11)).passed is True
    assert integrity.weights_from_this_notebook(started_from(None)).passed is True  # not measured: no verdict
    assert integrity.weights_from_this_notebook(model()).passed is True


def test_the_assignment_switch_decides_whether_weights_trained_elsewhere_earn_points(small_assignment):
    import dataclasses

    import nbformat

    from autograder.pipeline import grade_one as grade

    labels = {name: s.labels.astype(np.int64) for name, s in grade.evaluation_images(small_assignment).sets.items()}
    honest = {"public": 0.8, "eval": 0.8, "train_sample": 0.82, "distorted": 0.62}
    evidence = synthetic_evidence(labels, {"mlp": honest})
    evidence.models["mlp"].weights_origin = {"sample": 500, "start_accuracy": 0.95, "events": [], "first_fit": {
        "event": "first_fit", "accuracy": 0.95, "own": False, "source": "load_weights"}}
    refused = grade.score({}, small_assignment, evidence, nbformat.v4.new_notebook())
    checks = {c["name"]: c for q in refused["questions"] for c in q["checks"]}
    assert checks["mlp_accuracy"]["score"] == 0 and "trained elsewhere" in checks["mlp_accuracy"]["message"]
    assert refused["integrity"]["mlp"]["weights_from_this_notebook"]["evidence"]["first_fit_accuracy"] == 0.95
    allowing = dataclasses.replace(small_assignment, allow_pretrained_weights=True)
    allowed = grade.score({}, allowing, evidence, nbformat.v4.new_notebook())
    assert {c["name"]: c for q in allowed["questions"] for c in q["checks"]}["mlp_accuracy"]["score"] > 0


def test_a_feed_record_that_only_claims_a_re_feed_is_scored_as_measured():
    """The prediction sandbox writes each model's ``fed`` record, and a subclassed model's student code runs
    there: a record that says "retried" without the second pass's figures is not a re-feed (it once stopped
    scoring with a KeyError, a grader error); the figures the trusted pass records are what the message says."""
    claimed = model(eval_acc=0.97)
    claimed.summary, claimed.fed = MLP_SUMMARY, {**claimed.fed, "source": "retried"}
    outcome = accuracy_outcome(claimed, LABELS["eval"], THRESHOLD, 1_000_000, {})
    assert outcome.fraction == 1.0 and "re-fed" not in outcome.message and "refed" not in outcome.detail
    assert "re-fed" not in fed_description("mlp", claimed.fed)
    adopted = model(eval_acc=0.97)
    adopted.summary = MLP_SUMMARY
    adopted.fed = {**adopted.fed, "source": "retried", "public_first": 0.12, "public_retried": 0.96, "own": 0.97}
    outcome = accuracy_outcome(adopted, LABELS["eval"], THRESHOLD, 1_000_000, {})
    assert "re-fed it the way your notebook did (96.00%" in outcome.message and "public_first=0.12" in outcome.detail
    assert "12.0% -> 96.0%" in fed_description("mlp", adopted.fed)
