"""MNIST, found offline and verified.

Resolution order (first hit wins):

1. a directory named by ``--mnist-dir`` or ``$AUTOGRADER_MNIST_DIR`` holding ``mnist.npz``
   or the four original IDX ``.gz`` files;
2. the Keras cache, ``$KERAS_HOME/datasets/mnist.npz`` or ``~/.keras/datasets/mnist.npz``;
3. Keras's own download (``keras.datasets.mnist.load_data()``), the real-world path.

Every file is checked against the SHA-256 of the original distribution before it is parsed.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENV_VAR = "AUTOGRADER_MNIST_DIR"

#: SHA-256 of the original downloads (the same values as ``shared/data/mnist/SHA256SUMS``).
KNOWN_SHA256 = {
    "mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
EXPECTED_COUNTS = {"x_train": 60_000, "y_train": 60_000, "x_test": 10_000, "y_test": 10_000}


class DataError(RuntimeError):
    """MNIST could not be found, or a file is not the original."""


@dataclass(frozen=True)
class Mnist:
    x_train: np.ndarray  # (60000, 28, 28) uint8
    y_train: np.ndarray  # (60000,) uint8
    x_test: np.ndarray  # (10000, 28, 28) uint8
    y_test: np.ndarray  # (10000,) uint8
    source: str  # where it came from, for logs


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, expected: str | None = None) -> None:
    """Raise DataError naming the file and both hashes unless ``path`` has the known SHA-256."""
    expected = expected or KNOWN_SHA256[path.name]
    actual = sha256_of(path)
    if actual != expected:
        raise DataError(
            f"{path}: SHA-256 mismatch (expected {expected}, got {actual}); "
            "the file is corrupt or not the original MNIST download"
        )


def parse_idx(raw: bytes, *, name: str = "<idx>") -> np.ndarray:
    """Parse an uncompressed IDX file (images: magic 2051, labels: magic 2049)."""
    if len(raw) < 8:
        raise DataError(f"{name}: too short to be an IDX file ({len(raw)} bytes)")
    magic, count = np.frombuffer(raw[:8], dtype=">u4")
    if magic == IMAGE_MAGIC:
        rows, cols = np.frombuffer(raw[8:16], dtype=">u4")
        header, shape = 16, (int(count), int(rows), int(cols))
    elif magic == LABEL_MAGIC:
        header, shape = 8, (int(count),)
    else:
        raise DataError(f"{name}: bad IDX magic number {magic} (expected {IMAGE_MAGIC} or {LABEL_MAGIC})")
    body = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{name}: header says {shape} but the file holds {body.size} values")
    return body.reshape(shape)


def _load_idx_dir(directory: Path, verify: bool) -> dict[str, np.ndarray]:
    arrays = {}
    for key, filename in IDX_FILES.items():
        path = directory / filename
        if verify:
            verify_file(path)
        arrays[key] = parse_idx(gzip.decompress(path.read_bytes()), name=str(path))
    return arrays


def _load_npz(path: Path, verify: bool) -> dict[str, np.ndarray]:
    if verify:
        verify_file(path)
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in EXPECTED_COUNTS}


def _check_counts(arrays: dict[str, np.ndarray], source: str) -> None:
    for key, count in EXPECTED_COUNTS.items():
        if arrays[key].shape[0] != count:
            raise DataError(f"{source}: {key} has {arrays[key].shape[0]} items, expected {count}")


def keras_cache_file() -> Path:
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets" / "mnist.npz"


def find_mnist_file(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The verified ``mnist.npz`` to use, or None (IDX-only dirs and downloads have none)."""
    directory = data_dir or os.environ.get(ENV_VAR)
    if directory and (Path(directory) / "mnist.npz").is_file():
        return Path(directory) / "mnist.npz"
    if not directory and keras_cache_file().is_file():
        return keras_cache_file()
    return None


def load_mnist(data_dir: str | os.PathLike | None = None, *, verify: bool = True) -> Mnist:
    """Load MNIST following the module's resolution order."""
    directory = data_dir or os.environ.get(ENV_VAR)
    if directory:
        directory = Path(directory)
        if (directory / "mnist.npz").is_file():
            source, arrays = str(directory / "mnist.npz"), _load_npz(directory / "mnist.npz", verify)
        elif all((directory / f).is_file() for f in IDX_FILES.values()):
            source, arrays = str(directory), _load_idx_dir(directory, verify)
        else:
            raise DataError(
                f"{directory} (from --mnist-dir or ${ENV_VAR}) holds neither mnist.npz nor the four "
                f"IDX files {sorted(IDX_FILES.values())}"
            )
    elif keras_cache_file().is_file():
        source, arrays = str(keras_cache_file()), _load_npz(keras_cache_file(), verify)
    else:
        source, arrays = "keras download", _download_with_keras()
    _check_counts(arrays, source)
    return Mnist(source=source, **arrays)


def _download_with_keras() -> dict[str, np.ndarray]:
    from keras.datasets import mnist  # Keras verifies its own download's hash.

    try:
        (x_train, y_train), (x_test, y_test) = mnist.load_data()
    except Exception as exc:  # offline, a proxy, a bad cache: say what to do instead
        raise DataError(f"MNIST was not found locally and the Keras download failed ({exc}). Point "
                        f"--mnist-dir or ${ENV_VAR} at a folder with mnist.npz or the four IDX .gz files, "
                        f"or put mnist.npz at {keras_cache_file()}") from exc
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def keras_cache_source(data_dir: str | os.PathLike | None = None) -> Path:
    """The verified original ``mnist.npz`` to serve as a Keras cache, downloading it the Keras way if needed.

    Keras checks the cache file's SHA-256, so only the original file will do: IDX files alone cannot
    stand in for it (re-packed arrays hash differently and Keras would try to download).
    """
    source = find_mnist_file(data_dir)
    if source is None and not (data_dir or os.environ.get(ENV_VAR)):
        _download_with_keras()  # the real-world path: Keras fetches and verifies it into its cache
        source = find_mnist_file(data_dir)
    if source is None:
        where = data_dir or os.environ.get(ENV_VAR)
        raise DataError(f"{where} has only the IDX files; the sandbox's Keras cache needs the original "
                        "mnist.npz (Keras verifies its hash). Put mnist.npz beside them, or unset "
                        f"{ENV_VAR} to use ~/.keras/datasets/mnist.npz")
    verify_file(source, KNOWN_SHA256["mnist.npz"])
    return source


def provision_keras_cache(keras_home: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> Path:
    """Copy the verified ``mnist.npz`` to ``keras_home/datasets/mnist.npz``.

    With ``KERAS_HOME`` pointing there (or ``HOME`` holding it as ``.keras``), an unmodified
    ``keras.datasets.mnist.load_data()`` loads it without touching the network.
    """
    target = Path(keras_home) / "datasets" / "mnist.npz"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(keras_cache_source(data_dir), target)
    target.chmod(0o644)
    return target


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1], the input scale every model in this homework takes."""
    return images.astype("float32") / 255.0


@dataclass(frozen=True)
class EvaluationSet:
    """Hidden evaluation images: never labelled where student code can see them."""

    images: np.ndarray  # (n, 28, 28) uint8, shifted, in secret order
    labels: np.ndarray  # (n,) uint8, trusted side only
    source_index: np.ndarray  # (n,) index into the MNIST test set, for audits


def shift_image(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Translate by (dy, dx) pixels, filling with background; MNIST's 4-pixel margin keeps digits whole."""
    out = np.zeros_like(image)
    h, w = image.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        image[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def make_evaluation_set(x_test: np.ndarray, y_test: np.ndarray, *, seed: int, size: int,
                        max_shift: int = 2) -> EvaluationSet:
    """A secret subset of the test images, each moved 1..max_shift pixels, in secret order.

    No image equals a public test image, so a lookup table of the public test set cannot answer it,
    while the digit (and so the label) is unchanged.
    """
    rng = np.random.default_rng(seed)
    index = rng.choice(len(x_test), size=min(size, len(x_test)), replace=False)
    shifts = [(dy, dx) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)
              if (dy, dx) != (0, 0)]
    chosen = rng.integers(len(shifts), size=len(index))
    images = np.stack([shift_image(x_test[i], *shifts[s]) for i, s in zip(index, chosen)])
    return EvaluationSet(images=images, labels=y_test[index].copy(), source_index=index)
