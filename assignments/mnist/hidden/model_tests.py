"""Hidden tests for q2-q6: each architecture's structure, and its accuracy on the secret test images.

Fixtures (by parameter name): models, labels, thresholds, param_budgets, integrity.
"""
from autograder.accuracy import accuracy_outcome, usable_model
from autograder.architecture import architecture_outcome


def _architecture(arch, models, param_budgets):
    model = usable_model(models[arch])
    return architecture_outcome(arch, model.summary, param_budgets[arch])


def _accuracy(arch, models, labels, thresholds, param_budgets, integrity):
    return accuracy_outcome(models[arch], labels["eval"], thresholds[arch], param_budgets[arch],
                            integrity.get(arch, {}))


def mlp_architecture(models, param_budgets):
    return _architecture("mlp", models, param_budgets)


def mlp_accuracy(models, labels, thresholds, param_budgets, integrity):
    return _accuracy("mlp", models, labels, thresholds, param_budgets, integrity)


def cnn_architecture(models, param_budgets):
    return _architecture("cnn", models, param_budgets)


def cnn_accuracy(models, labels, thresholds, param_budgets, integrity):
    return _accuracy("cnn", models, labels, thresholds, param_budgets, integrity)


def simple_rnn_architecture(models, param_budgets):
    return _architecture("simple_rnn", models, param_budgets)


def simple_rnn_accuracy(models, labels, thresholds, param_budgets, integrity):
    return _accuracy("simple_rnn", models, labels, thresholds, param_budgets, integrity)


def lstm_architecture(models, param_budgets):
    return _architecture("lstm", models, param_budgets)


def lstm_accuracy(models, labels, thresholds, param_budgets, integrity):
    return _accuracy("lstm", models, labels, thresholds, param_budgets, integrity)


def gru_architecture(models, param_budgets):
    return _architecture("gru", models, param_budgets)


def gru_accuracy(models, labels, thresholds, param_budgets, integrity):
    return _accuracy("gru", models, labels, thresholds, param_budgets, integrity)
