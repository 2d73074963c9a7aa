"""Shared fixtures. Tests use small slices of MNIST; full-data runs live in calibration and bench/."""
from __future__ import annotations

import importlib.util
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
#: Modules that take longest, longest first (`make test --durations` on CI; the full lane executes the variant
#: corpus): they run first, since pytest-xdist hands out work in collection order (`--no-loadscope-reorder`) and a
#: two-minute test started last would leave the other worker idle for two minutes. The rest keep their order.
LONGEST_FIRST = ("test_variants", "test_term_rehearsal", "test_batch_integrity", "test_calibrate", "test_gradescope",
                 "test_batch", "test_authoring", "test_grade", "test_ta_outputs")


# First: pytest-xdist's worker reads the marks in its own pytest_collection_modifyitems, which runs before a
# conftest's (it is registered later), so marks added after it would group nothing.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _module(item) in SHARED_FIXTURE_MODULES:
            item.add_marker(pytest.mark.xdist_group(_module(item)))
    rank = {module: position for position, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_module(item), len(LONGEST_FIRST)))  # stable: a module stays in one piece


def _module(item: pytest.Item) -> str:
    return item.module.__name__.rpartition(".")[2] if item.module else ""


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown to a run with -p no:xdist
def pytest_xdist_node_collection_finished(node, ids: list[str]) -> None:
    """Refuse to run when `--dist loadgroup` would split a shared-fixture module across the workers (each would
    build its fixtures again): the worker marks a grouped test by appending `@group` to its node id, which it
    cannot do for marks added after its own hook, nor at all under pytest 9.2."""
    if node.config.getoption("dist") != "loadgroup":
        return
    ungrouped = [nodeid for nodeid in ids if "@" not in nodeid
                 and Path(nodeid.partition("::")[0]).stem in SHARED_FIXTURE_MODULES]
    if ungrouped:
        import xdist

        pytest.exit(f"--dist loadgroup does not group {ungrouped[0]} (pytest {pytest.__version__}, pytest-xdist "
                    f"{xdist.__version__}): its module's fixtures would be built on both workers; use pytest<9.2",
                    returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="module")
def assignment(repo):
    """The committed MNIST assignment, as shipped (for tests that run no notebook)."""
    from autograder.assignment import load_assignment

    return load_assignment(repo / "assignments" / "mnist")


@pytest.fixture(scope="module")
def data_tests(repo):
    """The shipped hidden tests of q1 and q7 (``assignments/mnist/hidden/data_tests.py``)."""
    spec = importlib.util.spec_from_file_location("_data_tests", repo / "assignments/mnist/hidden/data_tests.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def mnist():
    from autograder.data import load_mnist

    return load_mnist()


@pytest.fixture(scope="session")
def small_assignment(tmp_path_factory):
    """The real MNIST assignment with test-sized thresholds, hidden set and budgets (see
    :func:`variant_evidence.small_assignment`)."""
    from variant_evidence import small_assignment as build

    return build(tmp_path_factory.mktemp("assignment"))
