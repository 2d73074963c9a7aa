"""One definition per fact: the facts both sides of the trust boundary (and several trusted modules) rely on
are spelled once, and the places that use them agree. Each test catches one kind of drift."""
from __future__ import annotations

import ast
import json

import numpy as np
import pytest

from autograder import assignment, data, vocabulary
from autograder.output.plots import load_confusion
from autograder.output.reading import SCALING_WORDS, fed_description
from autograder.run.inside import confusion_hook, contract, export, probe, sketch
from autograder.score import integrity
from autograder.score.accuracy import closest_confusion, is_confusion_matrix
from autograder.score.artifacts import ConfusionCandidate, Evidence, ModelEvidence, save_evidence

# --- the five architectures ---------------------------------------------------------------------------


def test_the_architectures_are_the_contract_s_and_no_other_literal_lists_them(repo):
    """The trusted side takes the list from the contract the sandbox shares; no module spells it again."""
    assert assignment.ARCHITECTURES is contract.ARCHITECTURES
    assert assignment.ARCHITECTURE_TITLES is contract.ARCHITECTURE_TITLES
    everyone = set(contract.ARCHITECTURES)
    copies = []
    for root in (repo / "autograder", repo / "assignments"):
        for path in sorted(root.rglob("*.py")):
            if path.name == "contract.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and \
                        {e.value for e in node.elts if isinstance(e, ast.Constant)} == everyone:
                    copies.append(f"{path.relative_to(repo)}:{node.lineno}")
    assert copies == []


def test_the_schemas_name_the_contract_s_architectures():
    """JSON schemas cannot import: they are compared with the contract instead."""
    schemas = assignment.SCHEMA_FILE.parent
    config = json.loads((schemas / "assignment.schema.json").read_text())
    result = json.loads((schemas / "result.schema.json").read_text())
    models = config["properties"]["models"]
    assert models["required"] == list(models["properties"]) == list(contract.ARCHITECTURES)
    assert config["properties"]["report"]["properties"]["table_architectures"]["items"]["enum"] == \
        list(contract.ARCHITECTURES)
    assert result["$defs"]["architecture"]["enum"] == list(contract.ARCHITECTURES)


# --- MNIST's sizes and the image shapes both sides accept ----------------------------------------------


def test_mnist_is_as_big_as_the_grader_says(mnist):
    assert mnist.x_train.shape == (data.MNIST_TRAIN_SIZE, contract.MNIST_SIDE, contract.MNIST_SIDE)
    assert mnist.x_test.shape == (contract.MNIST_TEST_SIZE, contract.MNIST_SIDE, contract.MNIST_SIDE)
    assert set(np.unique(mnist.y_test)) == set(range(contract.CLASSES))
    assert int(mnist.x_train.max()) == contract.PIXEL_MAX
    assert vocabulary.CHANCE is integrity.CHANCE is contract.CHANCE == 1 / contract.CLASSES


def as_fed(images: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """MNIST images (n, 28, 28) as a notebook feeds them in ``shape`` (32x32: zero-padded)."""
    if np.prod(shape) == contract.PADDED_PIXELS:
        border = (contract.PADDING, contract.PADDING)
        images = np.pad(images, ((0, 0), border, border))
    return (images.astype(np.float32) / contract.PIXEL_MAX).reshape(len(images), *shape)


def q1_with_images(data_tests, found: dict) -> float:
    """q1's score for a notebook whose only data is ``found`` (training images), validated by a split."""
    return data_tests.preprocessing({"x_train": {"variable": "x_train", "found_by": "name", **found}},
                                    {"kind": "split", "fraction": 0.1}).fraction


@pytest.fixture(scope="module")
def right_shape_score(mnist, data_tests) -> float:
    return q1_with_images(data_tests, probe.probe(as_fed(mnist.x_train[:64], (28, 28))))


@pytest.mark.parametrize("shape", sorted(contract.IMAGE_SHAPES))
@pytest.mark.parametrize("flagged", [True, False], ids=["probe-verdict", "shape-only"])
def test_every_accepted_image_shape_is_accepted_on_both_sides(mnist, data_tests, right_shape_score, shape, flagged):
    """What the export takes for images (the data probe, the model finder), q1's shape rule and the
    per-image hash both sides compute all accept the same shapes; a stored probe without the export's own
    ``images`` verdict (evidence written before it existed) is judged by its shape alone, the same way.
    On main, q1's own list left out channels-first (1, 28, 28), which the export and the prediction
    sandbox accept."""
    images = mnist.x_train[:64]
    fed = as_fed(images, shape)
    found = probe.probe(fed)
    assert found["images"] is True
    if not flagged:
        del found["images"]
    assert q1_with_images(data_tests, found) == right_shape_score
    assert export._mnist_shaped(list(shape))
    assert np.array_equal(sketch.hashes_of(fed), sketch.hashes_of(images))


@pytest.mark.parametrize("shape", [(28, 28, 3), (27, 27), (30, 30), (28, 29)])
def test_a_shape_neither_side_accepts_is_refused_by_both(data_tests, right_shape_score, shape):
    found = probe.probe(np.full((64, *shape), 0.5, np.float32))  # scaled: only the shape is wrong
    assert found["images"] is False and not export._mnist_shaped(list(shape))
    assert q1_with_images(data_tests, found) < right_shape_score


# --- how a model's inputs were scaled -------------------------------------------------------------------


def test_the_export_s_default_input_is_fed_the_prediction_sandbox_s_default_way():
    """A model whose input nothing recorded: the statistics the export reports for it decode, in the
    prediction sandbox, to the default scaling (pixels / 255)."""
    stats = export.DEFAULT_INPUT
    assert contract.input_scaling(stats["mean"], stats["std"]) == contract.DEFAULT_SCALING


@pytest.mark.parametrize("name", list(contract.KNOWN_SCALINGS))
def test_every_known_scaling_is_recovered_and_said_in_words(mnist, name):
    scale, offset = contract.KNOWN_SCALINGS[name]
    fed = probe.probe(mnist.x_train.astype(np.float32) * np.float32(scale) + np.float32(offset))
    recovered = contract.input_scaling(fed["mean"], fed["std"])
    assert recovered == (scale, offset)
    described = fed_description("cnn", {"shape": [28, 28, 1], "scale": recovered[0], "offset": recovered[1]})
    assert described == f"28x28x1 images, {SCALING_WORDS[name]}"
    assert set(SCALING_WORDS) == set(contract.KNOWN_SCALINGS)


# --- what a valid confusion matrix is ------------------------------------------------------------------


@pytest.mark.parametrize("matrix, valid", [
    (np.diag(np.full(10, 1000)), True),
    (np.diag(np.full(10, 1000)).astype(np.float32), True),  # counts held as floats: recorded as int64
    (np.full((10, 10), -1), False),
    (np.ones((9, 9), dtype=np.int64), False),
    (np.full((10, 10), 0.5), False),
])
def test_the_sandbox_and_the_grader_agree_on_what_a_confusion_matrix_is(tmp_path, matrix, valid):
    """What the confusion hook records in the sandbox is what the grader scores (q7's choice) and draws
    (the feedback page, from stored evidence); what it refuses, the grader refuses too."""
    recorded = confusion_hook.count_matrix(matrix)
    assert (recorded is not None) == valid
    candidate = recorded if recorded is not None else np.asarray(matrix)
    assert is_confusion_matrix(candidate) == valid
    labels = np.repeat(np.arange(10), 1000)
    models = {"mlp": ModelEvidence("mlp", found=True, predictions={"public": labels})}
    match = closest_confusion([ConfusionCandidate("cm", "name", candidate)], models, labels)
    assert (match is not None) == valid
    if candidate.dtype.kind in "iu":  # the export's reader keeps integer matrices only
        save_evidence(Evidence(models={}, data={}, validation={}, confusion=[ConfusionCandidate("cm", "name", candidate)],
                               best_model="", fits=[], problems=[], export_errors=[]), tmp_path)
        drawn = load_confusion(tmp_path, 0)
        assert (drawn is not None) == valid
