"""Hidden tests for q2-q6: each architecture's structure, and its accuracy on the secret test images.

Two tests per architecture, ``<arch>_architecture`` and ``<arch>_accuracy`` (the names assignment.toml
gives), made below from one definition each. Fixtures (by parameter name): models, labels, thresholds,
param_budgets, integrity.
"""
from autograder.assignment import ARCHITECTURES
from autograder.score.accuracy import accuracy_outcome, usable_model
from autograder.score.architecture import architecture_outcome


def _architecture_test(arch):
    def test(models, param_budgets):
        model = usable_model(models[arch])
        return architecture_outcome(arch, model.summary, param_budgets[arch])
    return test


def _accuracy_test(arch):
    def test(models, labels, thresholds, param_budgets, integrity):
        return accuracy_outcome(models[arch], labels["eval"], thresholds[arch], param_budgets[arch],
                                integrity.get(arch, {}))
    return test


for _arch in ARCHITECTURES:
    for _kind, _make in (("architecture", _architecture_test), ("accuracy", _accuracy_test)):
        _test = _make(_arch)
        _test.__name__ = _test.__qualname__ = f"{_arch}_{_kind}"
        globals()[_test.__name__] = _test
