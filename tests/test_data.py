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
from autograder.data import IDX_FILES, DataError, load_mnist, parse_idx, provision_keras_cache, verify_file


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


# --- the secret image sets ---------------------------------------------------------------------

SMALL = data.EvaluationConfig(size=1500, train_sample_size=800, distorted_size=600, ablation_size=300)


@pytest.fixture(scope="module")
def images(mnist):
    return data.make_evaluation_images(mnist, seed=1234, config=SMALL)


def test_image_sets_are_deterministic_for_a_seed(mnist, images):
    again = data.make_evaluation_images(mnist, seed=1234, config=SMALL)
    other = data.make_evaluation_images(mnist, seed=1235, config=SMALL)
    for name in data.IMAGE_SETS:
        np.testing.assert_array_equal(again.sets[name].images, images.sets[name].images)
        np.testing.assert_array_equal(again.sets[name].source_index, images.sets[name].source_index)
    for name in ("eval", "train_sample", "distorted"):
        assert not np.array_equal(other.sets[name].images, images.sets[name].images)


def test_image_sets_have_the_configured_sizes_and_true_labels(mnist, images):
    sizes = {"public": 10_000, "eval": 1500, "train_sample": 800, "distorted": 600}
    assert list(images.image_sets()) == list(data.IMAGE_SETS)
    for name, image_set in images.sets.items():
        assert image_set.images.shape == (sizes[name], 28, 28) and image_set.images.dtype == np.uint8
        assert len(image_set.labels) == len(image_set.from_test) == len(image_set.source_index) == sizes[name]
        test_labels = mnist.y_test[image_set.source_index[image_set.from_test]]
        train_labels = mnist.y_train[image_set.source_index[~image_set.from_test]]
        np.testing.assert_array_equal(image_set.labels[image_set.from_test], test_labels)
        np.testing.assert_array_equal(image_set.labels[~image_set.from_test], train_labels)
    assert images.ablation_size == 300


def test_eval_is_unshifted_test_images_in_secret_order(mnist, images):
    index = images.eval.source_index
    assert images.eval.from_test.all() and len(set(index.tolist())) == len(index)
    np.testing.assert_array_equal(images.eval.images, mnist.x_test[index])  # the images the homework names
    assert not np.array_equal(np.sort(index), index)  # not the public order


def test_train_sample_reaches_both_the_training_part_and_the_validation_tail(images):
    index = images.train_sample.source_index
    assert not images.train_sample.from_test.any() and len(set(index.tolist())) == len(index)
    tail = np.mean(index >= data.HOMEWORK_TRAIN_SIZE)
    assert 0.03 < tail < 0.15  # about 5,000 / 60,000 of a uniform sample


def test_distorted_images_are_new_but_close_to_their_sources(mnist, images):
    distorted = images.distorted
    assert distorted.from_test.sum() == 300 and (~distorted.from_test).sum() == 300
    assert not set(distorted.source_index[distorted.from_test].tolist()) & set(images.eval.source_index.tolist())
    known = {image.tobytes() for image in mnist.x_test} | {image.tobytes() for image in mnist.x_train}
    assert not any(image.tobytes() in known for image in distorted.images)
    sources = np.where(distorted.from_test[:, None, None], mnist.x_test[distorted.source_index % 10_000],
                       mnist.x_train[distorted.source_index])
    changed = np.mean(np.abs(distorted.images.astype(int) - sources) > 32, axis=(1, 2))
    assert changed.min() > 0.01  # every image is moved, not copied
    # Legible: the ink stays about the same (no digit cut off or smeared away).
    ink_ratio = distorted.images.sum(axis=(1, 2)) / sources.sum(axis=(1, 2))
    assert 0.6 < ink_ratio.min() and ink_ratio.max() < 1.6


def test_distortions_differ_per_image():
    rng = np.random.default_rng(0)
    digit = np.zeros((4, 28, 28), np.uint8)
    digit[:, 8:20, 12:16] = 255
    warped = data.distort(digit, rng)
    assert len({image.tobytes() for image in warped}) == 4


def test_evaluation_sizes_come_from_the_assignment(repo):
    from autograder.assignment import load_assignment

    assignment = load_assignment(repo / "assignments" / "mnist")
    config = data.EvaluationConfig.from_assignment(assignment)
    table = assignment.raw["evaluation"]
    assert config == data.EvaluationConfig(size=table["size"], train_sample_size=table["train_sample_size"],
                                           distorted_size=table["distorted_size"], ablation_size=table["ablation_size"])


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
