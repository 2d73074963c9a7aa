"""Reference architectures: the layers each one is made of, and that each one learns."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from autograder.assignment import ARCHITECTURES, load_assignment
from autograder.data import normalize
from autograder.run.inside import contract
from reference_solutions.architectures import BUILDERS, RECIPES, Recipe, compile_model, shape_for

RECURRENT = {"simple_rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}
#: Smoke training: one epoch of 2,000 images in batches of 16 (125 steps). Chance is 0.1; the bars sit
#: well below the lowest accuracy measured over seeds 0-4 (in the comments), as the recurrent nets
#: learn slowest in their first steps.
SMOKE_BATCH_SIZE = 16
SMOKE_ACCURACY = {
    "mlp": 0.75,  # measured 0.83-0.86
    "cnn": 0.80,  # 0.89-0.92
    "simple_rnn": 0.60,  # 0.69-0.75
    "lstm": 0.50,  # 0.58-0.63
    "gru": 0.50,  # 0.58-0.65
}


def layer_types(model: keras.Model) -> list[type]:
    return [type(layer) for layer in model.layers]


@pytest.fixture(scope="module")
def models() -> dict[str, keras.Model]:
    return {arch: BUILDERS[arch]() for arch in ARCHITECTURES}


def test_every_architecture_has_a_builder_and_a_recipe():
    assert set(BUILDERS) == set(RECIPES) == set(ARCHITECTURES)
    assert all(isinstance(RECIPES[arch], Recipe) and RECIPES[arch].epochs >= 1 for arch in ARCHITECTURES)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_ends_in_a_ten_way_softmax(models, arch):
    model = models[arch]
    assert model.output_shape == (None, 10)
    assert model.layers[-1].activation is keras.activations.softmax


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_is_the_calibrated_reference_and_within_its_parameter_budget(models, arch, repo):
    assignment = load_assignment(repo / "assignments" / "mnist")
    calibration = assignment.calibration()
    assert models[arch].count_params() == calibration["architectures"][arch]["params"]
    assert models[arch].count_params() <= assignment.param_budgets(calibration)[arch]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_the_contract_classifies_it_as_its_own_kind_with_only_allowed_layers(models, arch):
    classes = [type(layer).__name__ for layer in models[arch].layers]
    assert contract.classify(classes) == arch
    assert contract.disallowed_layers(arch, classes) == []


def test_mlp_is_flatten_then_dense_layers(models):
    types = layer_types(models["mlp"])
    assert types[0] is layers.Flatten
    assert types.count(layers.Dense) >= 2
    assert not any(issubclass(t, (layers.Conv2D, layers.RNN)) for t in types)


def test_cnn_convolves_and_pools(models):
    model = models["cnn"]
    types = layer_types(model)
    assert model.input_shape == (None, 28, 28, 1)
    assert layers.Conv2D in types
    assert any(issubclass(t, (layers.MaxPooling2D, layers.AveragePooling2D)) for t in types)
    assert types.index(layers.Conv2D) < types.index(layers.Flatten) < len(types) - 1


@pytest.mark.parametrize("arch", list(RECURRENT))
def test_recurrent_models_read_rows_as_time_steps(models, arch):
    model = models[arch]
    assert model.input_shape == (None, 28, 28)
    recurrent = [t for t in layer_types(model) if issubclass(t, (layers.SimpleRNN, layers.LSTM, layers.GRU))]
    assert recurrent == [RECURRENT[arch]]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_shape_for_reshapes_flat_images_to_the_model_input(models, arch):
    images = np.zeros((3, 28, 28), np.float32)
    assert shape_for(models[arch], images).shape == (3,) + tuple(models[arch].input_shape[1:])


@pytest.fixture(scope="module")
def small_mnist(mnist):
    return (normalize(mnist.x_train[:2000]), mnist.y_train[:2000],
            normalize(mnist.x_test[:1000]), mnist.y_test[:1000])


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_one_epoch_on_2000_images_beats_chance_by_far(small_mnist, arch):
    x_train, y_train, x_test, y_test = small_mnist
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = compile_model(BUILDERS[arch](), RECIPES[arch])
    model.fit(shape_for(model, x_train), y_train, epochs=1, batch_size=SMOKE_BATCH_SIZE, verbose=0)
    predicted = model.predict(shape_for(model, x_test), verbose=0).argmax(axis=1)
    accuracy = float(np.mean(predicted == y_test))
    assert accuracy > SMOKE_ACCURACY[arch], f"{arch}: {accuracy:.3f} on 1,000 test images after one epoch"
