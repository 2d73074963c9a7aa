"""Shared fixtures. Tests use small slices of MNIST; full-data runs live in calibration and bench/."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
if "AUTOGRADER_MNIST_DIR" not in os.environ and (SHARED_MNIST / "mnist.npz").is_file():
    os.environ["AUTOGRADER_MNIST_DIR"] = str(SHARED_MNIST)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# What the grader sets inside its sandboxes ([execution] threads), for tests that run inside/ code in-process.
os.environ.setdefault("AUTOGRADER_THREADS", "2")


#: Modules whose tests share an expensive module-scoped fixture (a graded batch, trained models, a built
#: package): under pytest-xdist (`make test` runs two workers) each runs on one worker, so it is built once.
#: Every other test goes to whichever worker is free.
SHARED_FIXTURE_MODULES = {"test_architectures", "test_authoring", "test_batch", "test_diagnose_corpus",
                          "test_diagnosis_e2e", "test_feedback",
                          "test_grade", "test_gradescope", "test_similarity", "test_variants", "test_batch_integrity"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if item.module else ""
        if module in SHARED_FIXTURE_MODULES:
            item.add_marker(pytest.mark.xdist_group(module))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="module")
def assignment(repo):
    """The committed MNIST assignment, as shipped (for tests that run no notebook)."""
    from autograder.assignment import load_assignment

    return load_assignment(repo / "assignments" / "mnist")


@pytest.fixture(scope="session")
def mnist():
    from autograder.data import load_mnist

    return load_mnist()


from notebooks import SMALL_CALIBRATION  # noqa: E402  (shared with bench/)


@pytest.fixture(scope="session")
def small_assignment(tmp_path_factory):
    """The real MNIST assignment with test-sized thresholds, hidden set and budgets.

    Same questions, hidden tests and rubric; only calibration.json (thresholds for slice-trained models),
    the hidden set size (1,000) and the budgets (5 minutes, 2 GiB) differ, so sandboxed runs stay short.
    """
    import json
    import re
    import shutil

    from autograder.assignment import load_assignment

    root = tmp_path_factory.mktemp("assignment") / "mnist"
    shutil.copytree(REPO / "assignments" / "mnist", root, ignore=shutil.ignore_patterns("generated"))
    (root / "calibration.json").write_text(json.dumps(SMALL_CALIBRATION))
    toml = (root / "assignment.toml").read_text()
    toml = toml.replace('"../../', f'"{REPO}/')
    # 300 s: a one-epoch notebook needs about 60 s alone, but several times that on the shared 2-core
    # machine under load (its setup cell alone took 80 s), and predictions share the same budget.
    for key, value in {"size": "1000", "wall_budget_seconds": "300", "cell_timeout_seconds": "240",
                       "memory_mb": "2048"}.items():
        toml = re.sub(rf"(?m)^{key} = \S+", f"{key} = {value}", toml)
    (root / "assignment.toml").write_text(toml)
    return load_assignment(root)
