"""The MNIST data layer: IDX parsing, checksums, where MNIST is found, hidden evaluation images, Keras cache."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from autograder import data
from autograder.data import (IDX_FILES, DataError, load_mnist, make_evaluation_set, parse_idx,
                             provision_keras_cache, shift_image, verify_file)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode uint8 labels (1-D) or images (3-D) the way the original MNIST files are laid out."""
    magic = data.IMAGE_MAGIC if array.ndim == 3 else data.LABEL_MAGIC
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def tiny_images() -> np.ndarray:
    return np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)


@pytest.fixture
def no_mnist_anywhere(tmp_path, monkeypatch) -> Path:
    """No MNIST directory configured and an empty Keras cache."""
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    keras_home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    return keras_home


# --- IDX parsing -------------------------------------------------------------------------------

def test_parse_idx_reads_images_from_a_written_file(tmp_path, tiny_images):
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(idx_bytes(tiny_images))
    parsed = parse_idx(path.read_bytes(), name=str(path))
    assert parsed.shape == (2, 3, 4) and parsed.dtype == np.uint8
    np.testing.assert_array_equal(parsed, tiny_images)


def test_parse_idx_reads_labels():
    labels = np.array([7, 2, 1, 0, 4], dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(idx_bytes(labels)), labels)


def test_parse_idx_rejects_bad_magic_naming_the_file(tiny_images):
    raw = bytearray(idx_bytes(tiny_images))
    raw[2:4] = b"\x09\x99"
    with pytest.raises(DataError, match=r"broken\.idx: bad IDX magic number 2457"):
        parse_idx(bytes(raw), name="broken.idx")


def test_parse_idx_rejects_a_truncated_body(tiny_images):
    with pytest.raises(DataError, match=r"cut\.idx: header says \(2, 3, 4\) but the file holds 20 values"):
        parse_idx(idx_bytes(tiny_images)[:-4], name="cut.idx")


def test_parse_idx_rejects_a_file_shorter_than_its_header():
    with pytest.raises(DataError, match="too short"):
        parse_idx(b"\x00\x00\x08", name="stub")


def test_a_tiny_idx_directory_parses_but_fails_the_count_check(tmp_path, tiny_images, monkeypatch):
    labels = np.array([3, 5], dtype=np.uint8)
    for key, filename in IDX_FILES.items():
        (tmp_path / filename).write_bytes(gzip.compress(idx_bytes(tiny_images if key.startswith("x") else labels)))
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    with pytest.raises(DataError, match="x_train has 2 items, expected 60000"):
        load_mnist(verify=False)


# --- checksums ---------------------------------------------------------------------------------

def test_checksum_failure_names_the_file_and_both_hashes(tmp_path, tiny_images, monkeypatch):
    fake = tmp_path / "train-images-idx3-ubyte.gz"
    fake.write_bytes(gzip.compress(idx_bytes(tiny_images)))
    expected = data.KNOWN_SHA256[fake.name]
    actual = data.sha256_of(fake)
    with pytest.raises(DataError) as error:
        verify_file(fake)
    message = str(error.value)
    assert str(fake) in message and expected in message and actual in message
    assert actual != expected


def test_load_mnist_verifies_before_parsing(tmp_path, monkeypatch):
    (tmp_path / "mnist.npz").write_bytes(b"not the original")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    with pytest.raises(DataError, match=r"mnist\.npz: SHA-256 mismatch"):
        load_mnist()


# --- resolution order --------------------------------------------------------------------------

def test_env_dir_with_npz_is_used_first(monkeypatch, tmp_path):
    data_dir = Path(os.environ[data.ENV_VAR])  # the shared copy, set by conftest
    keras_home = tmp_path / "keras_home"
    (keras_home / "datasets").mkdir(parents=True)
    (keras_home / "datasets" / "mnist.npz").write_bytes(b"must not be read")
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    mnist = load_mnist()
    assert mnist.source == str(data_dir / "mnist.npz")
    assert mnist.x_train.shape == (60_000, 28, 28) and mnist.x_test.shape == (10_000, 28, 28)
    assert mnist.y_train.shape == (60_000,) and set(np.unique(mnist.y_test)) == set(range(10))


def test_env_dir_with_only_idx_files(tmp_path, monkeypatch, mnist):
    for filename in IDX_FILES.values():
        shutil.copyfile(Path(mnist.source).parent / filename, tmp_path / filename)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    from_idx = load_mnist()
    assert from_idx.source == str(tmp_path)
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(from_idx, key), getattr(mnist, key))


def test_explicit_dir_wins_over_the_environment(tmp_path, monkeypatch, mnist):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "nowhere"))
    assert load_mnist(Path(mnist.source).parent).source == mnist.source


def test_env_dir_without_mnist_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    monkeypatch.setattr(data, "_download_with_keras", lambda: pytest.fail("must not download"))
    with pytest.raises(DataError, match=f"{tmp_path}.*holds neither mnist.npz nor the four"):
        load_mnist()


def test_keras_cache_is_used_when_no_dir_is_configured(no_mnist_anywhere, mnist):
    cached = no_mnist_anywhere / "datasets" / "mnist.npz"
    cached.parent.mkdir(parents=True)
    shutil.copyfile(mnist.source, cached)
    from_cache = load_mnist()
    assert from_cache.source == str(cached)
    np.testing.assert_array_equal(from_cache.y_test, mnist.y_test)


def test_download_is_the_last_resort(no_mnist_anywhere, monkeypatch):
    calls = []

    def fake_download():
        calls.append(True)
        return {key: np.zeros((count, 28, 28) if key.startswith("x") else (count,), np.uint8)
                for key, count in data.EXPECTED_COUNTS.items()}

    monkeypatch.setattr(data, "_download_with_keras", fake_download)
    mnist = load_mnist()
    assert calls == [True]
    assert mnist.source == "keras download" and mnist.x_train.shape == (60_000, 28, 28)


# --- hidden evaluation set ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def evaluation(mnist):
    return make_evaluation_set(mnist.x_test, mnist.y_test, seed=1234, size=2000, max_shift=2)


def test_evaluation_set_is_deterministic_for_a_seed(mnist, evaluation):
    again = make_evaluation_set(mnist.x_test, mnist.y_test, seed=1234, size=2000, max_shift=2)
    other = make_evaluation_set(mnist.x_test, mnist.y_test, seed=1235, size=2000, max_shift=2)
    np.testing.assert_array_equal(again.images, evaluation.images)
    np.testing.assert_array_equal(again.source_index, evaluation.source_index)
    assert not np.array_equal(other.source_index, evaluation.source_index)


def test_evaluation_set_keeps_labels_and_draws_distinct_images(mnist, evaluation):
    assert evaluation.images.shape == (2000, 28, 28) and evaluation.images.dtype == np.uint8
    assert len(set(evaluation.source_index.tolist())) == 2000
    np.testing.assert_array_equal(evaluation.labels, mnist.y_test[evaluation.source_index])


def test_no_evaluation_image_is_a_public_test_image(mnist, evaluation):
    public = {image.tobytes() for image in mnist.x_test}
    assert not any(image.tobytes() in public for image in evaluation.images)
    assert not np.any(np.all(evaluation.images == mnist.x_test[evaluation.source_index], axis=(1, 2)))


@pytest.mark.parametrize("max_shift", [1, 2])
def test_every_evaluation_image_is_its_source_moved_at_most_max_shift(mnist, max_shift):
    evaluation = make_evaluation_set(mnist.x_test, mnist.y_test, seed=7, size=300, max_shift=max_shift)
    offsets = range(-max_shift, max_shift + 1)
    shifts_seen = set()
    for image, index in zip(evaluation.images, evaluation.source_index):
        source = mnist.x_test[index]
        matches = [(dy, dx) for dy in offsets for dx in offsets
                   if (dy, dx) != (0, 0) and np.array_equal(shift_image(source, dy, dx), image)]
        assert matches, f"evaluation image from test index {index} is not a shift within {max_shift} px"
        shifts_seen.add(matches[0])
    assert len(shifts_seen) == (2 * max_shift + 1) ** 2 - 1  # every allowed shift is used


def test_shift_image_moves_pixels_and_fills_with_background():
    image = np.zeros((5, 5), np.uint8)
    image[2, 2] = 255
    moved = shift_image(image, 1, -2)
    assert moved[3, 0] == 255 and moved.sum() == 255
    assert shift_image(image, 0, 3).sum() == 0  # moved off the edge


# --- provisioning the Keras cache for the sandbox ----------------------------------------------

OFFLINE_LOAD = textwrap.dedent("""
    import json, socket, urllib.request

    def offline(*args, **kwargs):
        raise OSError("network access attempted")

    socket.socket = offline
    socket.create_connection = offline
    urllib.request.urlopen = offline
    urllib.request.urlretrieve = offline

    from keras.datasets import mnist
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    print(json.dumps({"shapes": [list(a.shape) for a in (x_train, y_train, x_test, y_test)],
                      "last_label": int(y_test[-1])}))
""")


def test_provisioned_cache_lets_unmodified_keras_load_mnist_offline(tmp_path, mnist):
    home = tmp_path / "home"
    target = provision_keras_cache(home / ".keras")
    assert target == home / ".keras" / "datasets" / "mnist.npz"
    verify_file(target)  # a byte-for-byte copy of the original, so Keras's own hash check passes
    env = {**os.environ, "HOME": str(home), "KERAS_HOME": str(home / ".keras"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop(data.ENV_VAR, None)
    proc = subprocess.run([sys.executable, "-c", OFFLINE_LOAD], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded["shapes"] == [[60000, 28, 28], [60000], [10000, 28, 28], [10000]]
    assert loaded["last_label"] == int(mnist.y_test[-1])


def test_idx_files_alone_cannot_be_a_keras_cache(tmp_path, monkeypatch, mnist):
    for filename in IDX_FILES.values():
        (tmp_path / filename).symlink_to(Path(mnist.source).parent / filename)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    with pytest.raises(DataError, match="original mnist.npz"):
        data.keras_cache_source()
