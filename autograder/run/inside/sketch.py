"""Per-image hashes of MNIST images, whatever scaling and shape they were given; one code for both sides.

The fit hook hashes what each ``fit()`` / ``train_on_batch`` was fed and exports a bounded sample of the
hashes (a bottom-k sketch: the ``SKETCH_SIZE`` smallest distinct ones); the trusted side hashes the MNIST
test images with the same function and counts how many of the sample are test images. The sandbox never
decides anything and never needs the test set: the verdict is the grader's.

Canonical image: the array's own minimum is pixel 0 and its maximum pixel 255 (MNIST sets of more than a
few images always hold both), which undoes any increasing affine scaling applied to the whole array
(``/ 255``, standardisation, ``[-1, 1]``, dtype changes) up to float rounding; per-sample shapes of
784 pixels become 28x28, LeNet's zero-padded 32x32 loses its 2-pixel border. Augmented or shifted copies
hash differently: this recognises the images themselves, not digits that look like them.

Numpy only (it runs next to student code with references bound on import, like ``probe``).
"""
from __future__ import annotations

import numpy as np

from .contract import MNIST_PIXELS, MNIST_SIDE, PADDED_PIXELS, PADDED_SIDE, PADDING, PIXEL_MAX, SKETCH_SIZE

_asarray, _rint, _clip, _minimum, _maximum = np.asarray, np.rint, np.clip, np.minimum, np.maximum
_uint8, _uint64, _float64 = np.uint8, np.uint64, np.float64
_unique, _concatenate = np.unique, np.concatenate

EMPTY = np.zeros(0, dtype=np.uint64)  # a sketch of nothing
#: Images canonicalised at a time (bounds the float copy: 8,192 x 784 x 8 bytes = 51 MB).
CHUNK_ROWS = 8192
#: Odd 64-bit multipliers, one per 8-byte word of a 28x28 image (98 words), from a fixed seed.
_MULTIPLIERS = (np.random.default_rng(20240524).integers(1, 2**63, MNIST_PIXELS // 8, dtype=np.uint64) * np.uint64(2)
                + np.uint64(1))


def _as_rows(array: np.ndarray) -> np.ndarray | None:
    """(n, 784) view of an image array: 784 pixels per sample, or a 32x32 padded sample cropped to 28x28."""
    if array.ndim < 2 or not len(array):
        return None
    pixels = int(np.prod(array.shape[1:]))
    if pixels == MNIST_PIXELS:
        return array.reshape(len(array), MNIST_PIXELS)
    if pixels == PADDED_PIXELS:
        digit = slice(PADDING, PADDING + MNIST_SIDE)
        return array.reshape(len(array), PADDED_SIDE, PADDED_SIDE)[:, digit, digit].reshape(len(array), MNIST_PIXELS)
    return None


def canonical(array: np.ndarray) -> np.ndarray | None:
    """uint8 (n, 784) images: the array's min mapped to 0 and its max to 255, rounded; None if not images."""
    rows = _as_rows(array)
    if rows is None or rows.dtype.kind not in "biuf":
        return None
    low, high = float(_minimum.reduce(rows, axis=None)), float(_maximum.reduce(rows, axis=None))
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        return None
    scale = float(PIXEL_MAX) / (high - low)
    out = np.empty(rows.shape, dtype=_uint8)
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = (rows[start:start + CHUNK_ROWS].astype(_float64) - low) * scale
        out[start:start + CHUNK_ROWS] = _clip(_rint(chunk), 0, PIXEL_MAX)
    return out


def image_hashes(images: np.ndarray) -> np.ndarray:
    """One 64-bit hash per canonical uint8 (n, 784) image (a multiply-add of its 98 words, then mixed)."""
    words = np.ascontiguousarray(images).view(_uint64)  # (n, 98)
    with np.errstate(over="ignore"):
        h = (words * _MULTIPLIERS).sum(axis=1, dtype=_uint64)
        h ^= h >> _uint64(31)
        h *= _uint64(0x9E3779B97F4A7C15)
        h ^= h >> _uint64(29)
    return h


def hashes_of(value: np.ndarray) -> np.ndarray | None:
    """Distinct sorted hashes of an image array as it was fed, or None when it is not MNIST-shaped images."""
    images = canonical(value)
    return None if images is None else _unique(image_hashes(images))


def smallest(hashes: np.ndarray, k: int = SKETCH_SIZE) -> np.ndarray:
    """The ``k`` smallest of sorted distinct hashes: the bottom-k sketch."""
    return hashes[:k]


def merge(sketch: np.ndarray, hashes: np.ndarray, k: int = SKETCH_SIZE) -> np.ndarray:
    """The bottom-k sketch of the union of a sketch and more distinct hashes."""
    return _unique(_concatenate([sketch, hashes]))[:k]


def to_text(hashes: np.ndarray) -> str:
    """Hashes as one string of 16 hex digits each (what crosses the boundary)."""
    return "".join(f"{int(h):016x}" for h in hashes)


def from_text(text: str) -> np.ndarray:
    """The inverse of :func:`to_text`; raises ValueError on anything else."""
    if len(text) % 16:
        raise ValueError("not a whole number of 16-digit hashes")
    return np.array([int(text[i:i + 16], 16) for i in range(0, len(text), 16)], dtype=_uint64)
