"""Fixtures of the adversarial suite: test-sized assignment directories and limits."""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from autograder.assignment import Assignment, load_assignment
from autograder.pipeline import evidence as grade

import cases


def assignment_variant(source: Assignment, target: Path, settings: dict, calibration: dict | None = None) -> Path:
    """A copy of ``source``'s directory with other execution limits or image-set sizes (and calibration); batch
    workers read it."""
    shutil.copytree(source.root, target)
    toml = (target / "assignment.toml").read_text()
    for key, value in settings.items():
        toml, count = re.subn(rf"(?m)^{key} = \S+", f"{key} = {value}", toml)
        assert count == 1, key
    (target / "assignment.toml").write_text(toml)
    if calibration is not None:
        (target / "calibration.json").write_text(json.dumps(calibration))
    return target


@pytest.fixture
def work_root() -> Path:
    """A private root for one test's job dirs. A grader starting in another test worker removes the stale
    jobs of the shared /tmp, and could remove a test's leftovers before it looks (it did, in CI). The name
    is short (the kernel's ipc socket paths must fit in 107 bytes) and the dir traversable by the sandbox
    uids, as /tmp is."""
    root = Path(tempfile.mkdtemp(prefix="agx-"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_dir(small_assignment, tmp_path_factory) -> Path:
    return assignment_variant(small_assignment, tmp_path_factory.mktemp("tiny") / "mnist", cases.TINY)


@pytest.fixture(scope="session")
def assignments(small_assignment, tiny_dir, tmp_path_factory) -> dict[str, Assignment]:
    """By case ``limits``: tiny (no TensorFlow), short (tiny, a smaller CPU budget and cells), waiting (tiny, a
    short wall-clock backstop), model (small_assignment on test-sized image sets), lookup (the same, with a
    realistic reference gap).

    The lookup rule compares a model's public-test/hidden-set gap with the references'; the test-only
    calibration has an unrealistic 20-point gap, so the lookup case gets references 5 points apart.
    """
    calibration = json.loads(small_assignment.calibration_file.read_text())
    for figures in calibration["architectures"].values():
        figures["test_accuracy"] = {"mean": 0.75, "min": 0.70}
        figures["eval_accuracy"].update(mean=0.70, min=0.50)  # its runs stay: the integrity rules read them
    model = assignment_variant(small_assignment, tmp_path_factory.mktemp("model") / "mnist", cases.MODEL_IMAGES)
    lookup = assignment_variant(small_assignment, tmp_path_factory.mktemp("lookup") / "mnist", cases.MODEL_IMAGES,
                                calibration)
    # A cell that waits (no CPU work) ends only at the wall-clock backstop: the tiny limits' 10 x leaves room
    # for busy cells on a loaded machine; a waiting case needs only the backstop itself, so 2 x.
    waiting = assignment_variant(small_assignment, tmp_path_factory.mktemp("waiting") / "mnist",
                                 {**cases.TINY, "wall_backstop_factor": 2})
    short = assignment_variant(small_assignment, tmp_path_factory.mktemp("short") / "mnist", cases.SHORT)
    loaded = {"tiny": load_assignment(tiny_dir), "short": load_assignment(short), "waiting": load_assignment(waiting),
              "model": load_assignment(model), "lookup": load_assignment(lookup)}
    for assignment in loaded.values():  # warm the grader's caches so memory growth below is the job's own
        grade.evaluation_images(assignment)
    grade.mnist_data()
    return loaded


@pytest.fixture(scope="session")
def production_assignment(repo) -> Assignment:
    """assignments/mnist as shipped: its assignment.toml limits, its calibration, its hidden set."""
    assignment = load_assignment(repo / "assignments" / "mnist")
    grade.evaluation_images(assignment)
    grade.mnist_data()
    return assignment

