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
from typing import Any

import numpy as np

from autograder.run.inside import contract

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
#: MNIST's sizes; those the sandbox needs too (the test set's, the image side, the classes) are in ``contract``.
MNIST_TRAIN_SIZE = 60_000
EXPECTED_COUNTS = {"x_train": MNIST_TRAIN_SIZE, "y_train": MNIST_TRAIN_SIZE,
                   "x_test": contract.MNIST_TEST_SIZE, "y_test": contract.MNIST_TEST_SIZE}


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
    """uint8 pixels -> float32 in [0, 1] (``contract.DEFAULT_SCALING``), the input scale the homework asks for."""
    return images.astype("float32") / float(contract.PIXEL_MAX)



# --- the images the grader predicts on --------------------------------------------------------------
#
# All four sets are drawn from the assignment's secret seed, so a submission graded twice sees the same
# images, and the prediction sandbox receives them unlabeled and unnamed by purpose (it cannot tell the
# scored images from the integrity probes):
#
# ``public``        the 10,000 MNIST test images in their public order: what the student's notebook
#                   reports, kept for the report-claims check and the audit.
# ``eval``          a secret subset of the test images, UNSHIFTED, in secret order: the test-set accuracy
#                   the homework asks for, and the accuracy that is scored. A secret order alone does not
#                   stop a lookup of the public test set; the integrity sets below do.
# ``train_sample``  a secret uniform sample of all 60,000 training images. An honest network is at least
#                   as good on images it trained on as on test images; one trained on the test set shows the
#                   reverse. About 8 % of the sample falls in the homework's validation tail (55,000-59,999):
#                   unseen by a student who trained on the 55,000, seen by one who trained on all 60,000.
#                   Both are honest; the 55k student is the one whose train-sample accuracy is lowest (the
#                   tail reads like test images), and the reference models are trained exactly that way, so
#                   the honest range measured at calibration is the conservative one. ``source_index`` lets
#                   the trusted side split the sample at HOMEWORK_TRAIN_SIZE when it wants both figures.
# ``distorted``     test and training images (half each, disjoint from ``eval``'s sources), each warped by
#                   its own small random affine map (rotation, scale, shear, translation) composed with a
#                   mild elastic field, resampled bilinearly. The distortions are continuous and drawn per
#                   image from the seed, so no finite table of known images answers them, while the digit
#                   stays legible and its label unchanged: an honest network keeps close to the references
#                   there, a lookup collapses.

#: The homework's split: the first 55,000 training images train, the last 5,000 validate.
HOMEWORK_TRAIN_SIZE = 55_000
IMAGE_SETS = ("public", "eval", "train_sample", "distorted")


@dataclass(frozen=True)
class Distortion:
    """Ranges of the per-image distortion; each image draws its own values uniformly from them."""

    max_rotation_degrees: float = 12.0
    max_scale: float = 0.10  # each axis scaled by 1 +- this
    max_shear: float = 0.15  # shear factor
    max_translation: float = 1.5  # pixels, each axis
    elastic_alpha: float = 1.8  # peak displacement of the smoothed field, pixels
    elastic_sigma: float = 3.0  # smoothing of the elastic field, pixels


@dataclass(frozen=True)
class EvaluationConfig:
    """Sizes of the secret image sets (``[evaluation]`` in assignment.toml)."""

    size: int = 5000  # eval
    train_sample_size: int = 3000
    distorted_size: int = 2000
    ablation_size: int = 1000  # the first images of eval, predicted again with the working layers zeroed

    @classmethod
    def from_assignment(cls, assignment: Any) -> "EvaluationConfig":
        table = assignment.raw.get("evaluation", {})  # checked by the assignment schema when it was loaded
        sizes = {key: table[key] for key in ("train_sample_size", "distorted_size", "ablation_size") if key in table}
        return cls(size=assignment.evaluation_size, **sizes)


@dataclass(frozen=True)
class ImageSet:
    """Images the prediction sandbox sees unlabeled; labels and sources stay on the trusted side."""

    images: np.ndarray  # (n, 28, 28) uint8
    labels: np.ndarray  # (n,) uint8
    from_test: np.ndarray  # (n,) bool: the source is a test image (else a training image)
    source_index: np.ndarray  # (n,) int64 index into x_test or x_train, for audits

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class EvaluationImages:
    public: ImageSet
    eval: ImageSet
    train_sample: ImageSet
    distorted: ImageSet
    ablation_size: int  # the ablation runs on eval's first images

    @property
    def sets(self) -> dict[str, ImageSet]:
        return {name: getattr(self, name) for name in IMAGE_SETS}

    def image_sets(self) -> dict[str, np.ndarray]:
        """What the prediction sandbox receives: images only, by set name."""
        return {name: image_set.images for name, image_set in self.sets.items()}


def distort(images: np.ndarray, rng: np.random.Generator, distortion: Distortion = Distortion()) -> np.ndarray:
    """Each image warped by its own random affine map composed with a smooth elastic field (uint8 in and out)."""
    from scipy import ndimage  # ships with scikit-learn; only the trusted side distorts

    d = distortion
    n, size = len(images), images.shape[1]
    angles = np.deg2rad(rng.uniform(-d.max_rotation_degrees, d.max_rotation_degrees, n))
    scales = 1 + rng.uniform(-d.max_scale, d.max_scale, (n, 2))
    shears = rng.uniform(-d.max_shear, d.max_shear, n)
    shifts = rng.uniform(-d.max_translation, d.max_translation, (n, 2))
    fields = ndimage.gaussian_filter(rng.uniform(-1, 1, (n, 2, size, size)), (0, 0, d.elastic_sigma, d.elastic_sigma),
                                     mode="constant")
    fields *= d.elastic_alpha / np.maximum(np.abs(fields).max(axis=(2, 3), keepdims=True), 1e-12)
    centre = (size - 1) / 2
    grid = np.mgrid[0:size, 0:size].reshape(2, -1).astype(np.float64)
    out = np.empty_like(images)
    for i in range(n):
        cos, sin = np.cos(angles[i]), np.sin(angles[i])
        forward = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1, shears[i]], [0, 1]]) @ np.diag(scales[i])
        # Each output pixel reads the input where the inverse map sends it, plus the elastic displacement.
        source = np.linalg.inv(forward) @ (grid - centre - shifts[i][:, None]) + centre
        coords = source.reshape(2, size, size) + fields[i]
        warped = ndimage.map_coordinates(images[i].astype(np.float64), coords, order=1, mode="constant", cval=0.0)
        out[i] = np.clip(np.rint(warped), 0, contract.PIXEL_MAX)
    return out


def _image_set(x: np.ndarray, y: np.ndarray, index: np.ndarray, from_test: bool) -> ImageSet:
    return ImageSet(images=x[index], labels=y[index].copy(), from_test=np.full(len(index), from_test),
                    source_index=index.astype(np.int64))


def make_evaluation_images(mnist: Mnist, *, seed: int, config: EvaluationConfig = EvaluationConfig(),
                           distortion: Distortion = Distortion()) -> EvaluationImages:
    """The four image sets, all from ``seed``: see the comment above for what each one is for."""
    rng = np.random.default_rng(seed)
    n_test, n_train = len(mnist.x_test), len(mnist.x_train)
    test_order = rng.permutation(n_test)
    eval_index = test_order[:min(config.size, n_test)]
    train_index = rng.choice(n_train, size=min(config.train_sample_size, n_train), replace=False)

    # Distorted images come from test images outside eval (when there are any) and from training images.
    n_distorted_test = config.distorted_size // 2
    spare_test = test_order[len(eval_index):]
    pool = spare_test if len(spare_test) >= n_distorted_test else test_order
    distorted_test = rng.choice(pool, size=min(n_distorted_test, len(pool)), replace=False)
    distorted_train = rng.choice(n_train, size=min(config.distorted_size - len(distorted_test), n_train),
                                 replace=False)
    sources = [(mnist.x_test, mnist.y_test, distorted_test, True),
               (mnist.x_train, mnist.y_train, distorted_train, False)]
    images, labels, from_test, source_index = [], [], [], []
    for x, y, index, is_test in sources:
        images.append(distort(x[index], rng, distortion))
        labels.append(y[index])
        from_test.append(np.full(len(index), is_test))
        source_index.append(index.astype(np.int64))
    order = rng.permutation(sum(len(s[2]) for s in sources))  # test and train interleaved, secretly
    distorted = ImageSet(images=np.concatenate(images)[order], labels=np.concatenate(labels)[order],
                         from_test=np.concatenate(from_test)[order],
                         source_index=np.concatenate(source_index)[order])
    public = _image_set(mnist.x_test, mnist.y_test, np.arange(n_test), True)
    return EvaluationImages(public=public, eval=_image_set(mnist.x_test, mnist.y_test, eval_index, True),
                            train_sample=_image_set(mnist.x_train, mnist.y_train, train_index, False),
                            distorted=distorted, ablation_size=min(config.ablation_size, len(eval_index)))

