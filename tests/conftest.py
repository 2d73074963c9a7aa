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


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def mnist():
    from autograder.data import load_mnist

    return load_mnist()
