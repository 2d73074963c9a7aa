"""Hidden tests for q2-q6: each architecture's structure and its accuracy on the hidden images.

Fixtures (by parameter name): models, eval_labels, public_labels, thresholds, calibration, assignment.
"""
from autograder.accuracy import accuracy_outcome
from autograder.architecture import architecture_outcome
from autograder.assignment import ARCHITECTURE_TITLES
from autograder.checks import NotAssessed


def _architecture(arch, models, assignment):
    model = models[arch]
    if model.summary is None:
        raise NotAssessed(f"No usable {ARCHITECTURE_TITLES[arch]} model: {model.error or 'not found'}.")
    return architecture_outcome(arch, model.summary, assignment.max_params)


def _accuracy(arch, models, eval_labels, public_labels, thresholds, calibration):
    return accuracy_outcome(models[arch], eval_labels, public_labels, thresholds[arch], calibration)


def mlp_architecture(models, assignment):
    return _architecture("mlp", models, assignment)


def mlp_accuracy(models, eval_labels, public_labels, thresholds, calibration):
    return _accuracy("mlp", models, eval_labels, public_labels, thresholds, calibration)


def cnn_architecture(models, assignment):
    return _architecture("cnn", models, assignment)


def cnn_accuracy(models, eval_labels, public_labels, thresholds, calibration):
    return _accuracy("cnn", models, eval_labels, public_labels, thresholds, calibration)


def simple_rnn_architecture(models, assignment):
    return _architecture("simple_rnn", models, assignment)


def simple_rnn_accuracy(models, eval_labels, public_labels, thresholds, calibration):
    return _accuracy("simple_rnn", models, eval_labels, public_labels, thresholds, calibration)


def lstm_architecture(models, assignment):
    return _architecture("lstm", models, assignment)


def lstm_accuracy(models, eval_labels, public_labels, thresholds, calibration):
    return _accuracy("lstm", models, eval_labels, public_labels, thresholds, calibration)


def gru_architecture(models, assignment):
    return _architecture("gru", models, assignment)


def gru_accuracy(models, eval_labels, public_labels, thresholds, calibration):
    return _accuracy("gru", models, eval_labels, public_labels, thresholds, calibration)
