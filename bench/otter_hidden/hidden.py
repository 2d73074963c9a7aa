"""Hidden tests for otter equal in effect to the grader's: each model's accuracy on the test images
and a confusion matrix that agrees with the best model's predictions. Unlike ours they run inside the
student's own process, on the student's own objects (that is how otter works)."""
from otter.test_files import test_case

OK_FORMAT = False

name = "hidden"
points = None

MODELS = ("mlp_model", "cnn_model", "rnn_model", "lstm_model", "gru_model")


def _accuracy(model, x_test, y_test):
    import numpy as np
    x = np.asarray(x_test, dtype="float32").reshape((len(x_test),) + tuple(model.input_shape[1:]))
    return float(np.mean(np.argmax(model.predict(x, batch_size=500, verbose=0), axis=1) == y_test))


@test_case(points=None, hidden=True)
def test_accuracies(env, x_test, y_test):
    for variable in MODELS:
        model = env.get(variable)
        assert model is not None, f"{variable} is missing"
        assert _accuracy(model, x_test, y_test) >= 0.5, f"{variable} is below the threshold"


@test_case(points=None, hidden=True)
def test_confusion_matches_best_model(env, confusion, best_model_name, x_test, y_test):
    import numpy as np
    variable = {"mlp": "mlp_model", "cnn": "cnn_model", "simple_rnn": "rnn_model", "lstm": "lstm_model",
                "gru": "gru_model"}[best_model_name]
    model = env[variable]
    x = np.asarray(x_test, dtype="float32").reshape((len(x_test),) + tuple(model.input_shape[1:]))
    predicted = np.argmax(model.predict(x, batch_size=500, verbose=0), axis=1)
    expected = np.zeros((10, 10), dtype=int)
    np.add.at(expected, (y_test, predicted), 1)
    assert np.array_equal(np.asarray(confusion), expected), "confusion does not match the best model"
