"""The contract both sides of the trust boundary share: names, files, caps, MNIST's facts and the layer classifier.

Standard library only: it is imported by the kernel's export step and the prediction sandbox (as
``autograder_inside.contract``, next to student code) and by the trusted grader (as
``autograder.run.inside.contract``). Nothing here trusts the other side; it only spells the agreement
once, so the two sides cannot drift apart.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

# --- architectures ----------------------------------------------------------------------------------

ARCHITECTURES = ("mlp", "cnn", "simple_rnn", "lstm", "gru")
ARCHITECTURE_TITLES = {"mlp": "MLP", "cnn": "CNN", "simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}

#: The recurrent layer class each recurrent architecture is named after.
RECURRENT_LAYER = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
CONVOLUTION_LAYERS = frozenset({"Conv1D", "Conv2D", "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D",
                                "DepthwiseConv2D"})
POOLING_LAYERS = frozenset({"MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
                            "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
                            "GlobalMaxPooling2D"})
#: Layers that wrap another; the classifier looks at what they wrap.
WRAPPERS = frozenset({"Bidirectional", "TimeDistributed"})

#: What any of the five may hold: the dense head, shaping, regularisation, normalisation, activations,
#: input scaling and augmentation. None of these can do a network's work on its own beyond an MLP's.
COMMON_LAYERS = frozenset({
    "InputLayer", "Flatten", "Reshape", "Permute", "Dense", "Dropout", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "ActivityRegularization", "BatchNormalization", "LayerNormalization",
    "UnitNormalization", "GroupNormalization", "Normalization", "Rescaling", "Activation", "ReLU",
    "LeakyReLU", "PReLU", "ELU", "Softmax", "RandomRotation", "RandomTranslation", "RandomZoom",
    "RandomContrast", "RandomCrop", "Resizing"})

#: Layers each architecture may hold (after unwrapping). Anything else means the model is not (only)
#: the kind of network the question names: a CNN may add convolution, pooling, padding and merges
#: (residual blocks); a recurrent network adds its own recurrent layer (stacked, bidirectional) and
#: masking. Mixing recurrent kinds, or a recurrent branch in a CNN, is none of the five.
ALLOWED_LAYERS = {
    "mlp": COMMON_LAYERS,
    "cnn": COMMON_LAYERS | CONVOLUTION_LAYERS | POOLING_LAYERS | {
        "ZeroPadding1D", "ZeroPadding2D", "SpatialDropout1D", "SpatialDropout2D", "Add", "Concatenate",
        "Average", "Maximum", "Multiply", "UpSampling2D"},
    **{arch: COMMON_LAYERS | {layer, "Masking"} for arch, layer in RECURRENT_LAYER.items()},
}

#: Layers whose weights carry the work of the named kind; the prediction sandbox zeroes these for the
#: ablation check ("if predictions do not change, it is not that kind of network").
WORKING_LAYERS = {"cnn": CONVOLUTION_LAYERS, **{arch: frozenset({layer}) for arch, layer in RECURRENT_LAYER.items()}}


def classify(layer_classes: Iterable[str]) -> str | None:
    """The architecture a model's layers make it: one recurrent kind > convolution > dense.

    ``layer_classes`` are class names with wrappers already unwrapped. Two different recurrent kinds in
    one model make it ``"mixed"`` (none of the five); no Dense, convolutional or recurrent layer: None.
    """
    classes = set(layer_classes)
    recurrent = [arch for arch, layer in RECURRENT_LAYER.items() if layer in classes]
    if len(recurrent) > 1:
        return "mixed"
    if recurrent:
        return recurrent[0]
    if classes & CONVOLUTION_LAYERS:
        return "cnn"
    return "mlp" if "Dense" in classes else None


def disallowed_layers(arch: str, layer_classes: Iterable[str]) -> list[str]:
    """Layer classes a model of ``arch`` may not hold, in first-seen order."""
    allowed = ALLOWED_LAYERS[arch]
    return list(dict.fromkeys(c for c in layer_classes if c not in allowed))


# --- which layers a model is made of: one flattener for the export and the prediction summary ------

MAX_NESTING = 10  # blocks within blocks looked into


def keras_own(obj: Any) -> bool:
    """Whether ``obj``'s class is one of Keras's own (not a notebook's subclass)."""
    return type(obj).__module__.startswith("keras.")


def _is_model(layer: Any) -> bool:
    return any(cls.__name__ == "Model" and cls.__module__.startswith("keras.") for cls in type(layer).__mro__)


def sub_layers(layer: Any) -> list:
    """The layers ``layer`` holds directly (a model's layers, or the sub-layers Keras tracks for a block)."""
    try:
        return list(getattr(layer, "layers", None) or getattr(layer, "_layers", None) or [])
    except Exception:  # a property of a half-built model
        return []


def _own_weights(layer: Any) -> bool:
    """Whether ``layer`` made weights itself (``add_weight``), beside those of the layers it holds."""
    return bool(getattr(layer, "_trainable_variables", None) or getattr(layer, "_non_trainable_variables", None))


def flat_layers(layers: Iterable[Any], depth: int = 0) -> Iterator[Any]:
    """The layers a model is made of, in order, as the export and the prediction summary both list them.

    Nested models are unrolled into their layers, and so is a notebook's own block (a ``Layer`` or
    ``Model`` subclass that holds layers): it is what it holds, so a CNN built from custom conv blocks
    is a CNN on both sides. Such a block is listed itself too when it also has weights of its own (work
    no Keras layer names, which the architecture rules then see). Keras's own layers are never opened
    (a Bidirectional's two LSTMs, an RNN's cell): wrappers are read through :func:`wrapped`.
    """
    for layer in layers if depth < MAX_NESTING else []:
        if keras_own(layer) and not _is_model(layer):
            yield layer
            continue
        children = sub_layers(layer)
        if not keras_own(layer) and (not children or _own_weights(layer)):
            yield layer
        yield from flat_layers(children, depth + 1)


def model_layers(model: Any) -> list:
    """:func:`flat_layers` of a whole model."""
    return list(flat_layers(sub_layers(model)))


def wrapped(layer: Any) -> Any:
    """The layer a Keras wrapper (``WRAPPERS``) holds, or None for any other layer."""
    if not (keras_own(layer) and type(layer).__name__ in WRAPPERS):
        return None
    return getattr(layer, "forward_layer", None) or getattr(layer, "layer", None)


# --- MNIST as both sides see it ------------------------------------------------------------------------

CLASSES = 10  # digits: a model outputs this many scores per image
#: The accuracy of guessing among the ten digits: an untrained network's, and the floor of any accuracy.
CHANCE = 1 / CLASSES
MNIST_SIDE = 28  # an image is MNIST_SIDE x MNIST_SIDE pixels
MNIST_PIXELS = MNIST_SIDE * MNIST_SIDE
PADDED_SIDE = 32  # LeNet's input: the digit centred in a border of zeros
PADDING = (PADDED_SIDE - MNIST_SIDE) // 2
PADDED_PIXELS = PADDED_SIDE * PADDED_SIDE
MNIST_TEST_SIZE = 10_000  # an image or label array of this many rows is taken for the test set
#: Per-sample shapes of MNIST images as students feed them: whole images (channels last or first), flat
#: vectors, and LeNet's zero-padded 32x32. The export finds image arrays by these; q1's shape rule accepts them.
IMAGE_SHAPES = frozenset({(MNIST_SIDE, MNIST_SIDE), (MNIST_SIDE, MNIST_SIDE, 1), (MNIST_PIXELS,),
                          (1, MNIST_SIDE, MNIST_SIDE), (PADDED_SIDE, PADDED_SIDE), (PADDED_SIDE, PADDED_SIDE, 1)})
#: A confusion matrix: CLASSES x CLASSES counts (non-negative integers), true digits by row.
CONFUSION_SHAPE = (CLASSES, CLASSES)


def image_shaped(shape: Iterable[int | None]) -> bool:
    """Whether an array of ``shape`` (samples first) holds MNIST images in one of the :data:`IMAGE_SHAPES`."""
    shape = tuple(shape)
    return len(shape) >= 2 and shape[1:] in IMAGE_SHAPES


# --- what the export reports -------------------------------------------------------------------------

#: The data a notebook prepares, by role; found by template name, then by what fit was fed, then by content.
DATA_ROLES = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
MANIFEST_VERSION = 2


# --- files the sandboxes write (relative to their directories) --------------------------------------

MANIFEST = "manifest.json"  # export dir: models, probes, fits, errors
MODELS_DIR = "models"  # export dir: one model per architecture
CONFUSION_FILE = "confusion_{index}.npy"  # export dir: candidate confusion matrices, int64 CONFUSION_SHAPE
SUMMARY_FILE = "{arch}.summary.json"  # predictions dir: architecture summary, how it was fed, ablation
PREDICTIONS_FILE = "{arch}.{image_set}.npy"  # predictions dir: float32 (n, CLASSES) scores
ABLATED_FILE = "{arch}.ablated.{image_set}.npy"  # predictions dir: scores with the working layers zeroed
CLASS_SOURCE = "classes.py"  # inputs dir: the notebook's class definitions, for subclassed models
STARTED_FILE = "{arch}.started"  # predictions dir: marker written when a model's prediction begins
FEEDS_FILE = "feeds.json"  # inputs dir: {arch: [feed, ...]}, the other feeds a contradicted model is retried with
RETRY_NAME = "{arch}.feed{index}"  # retry dir: the ``arch`` of one retried feed's summary and scores files
#: Name, in CLASS_SOURCE, of a dict {class name: (args, kwargs)}: how the notebook instantiated each class
#: (literal arguments only), so the prediction sandbox builds it the same way.
CONSTRUCTOR_CALLS = "__agx_constructor_calls__"


def model_file(arch: str, subclassed: bool) -> str:
    """A whole model (``.keras``) or, for a subclass of keras.Model, its weights only."""
    return f"{arch}.weights.h5" if subclassed else f"{arch}.keras"


# --- where the grader's own files are, as student code sees them (tracebacks carry these paths) -----

INSIDE_MOUNT = "/opt/agx"  # in the sandbox, holds this package as /opt/agx/autograder_inside
JOB_PREFIX = "autograder-job-"  # each job's folder on the host (the kernel's working dir outside bubblewrap)


# --- caps on what crosses the boundary --------------------------------------------------------------

MAX_TEXT = 200  # any string the kernel reports
MAX_CONFUSION_CANDIDATES = 8
MAX_FITS = 50  # fit() calls recorded
MAX_EVALUATIONS = 10  # evaluate() calls recorded per model
MAX_MODEL_CANDIDATES = 30  # models listed in the manifest for the TA
#: Image hashes in one sketch of what a fit()/train_on_batch trained on (16 hex digits each: 16 KB;
#: with MAX_FITS sketches the manifest stays well under MAX_JSON_BYTES).
SKETCH_SIZE = 1024
MAX_JSON_BYTES = 2 * 2**20
MAX_NPY_BYTES = 64 * 2**20

# --- how a model is fed: the author's input pipeline, applied to raw uint8 MNIST images -------------

#: Pixel statistics of the raw MNIST training images (uint8, 0..PIXEL_MAX): mean and standard deviation.
PIXEL_MAX = 255
RAW_PIXEL_MEAN = 33.318
RAW_PIXEL_STD = 78.567
#: The scalings known by name, as ``(scale, offset)`` with ``data = scale * raw_pixels + offset``; a
#: measured scaling within 2 % of one is snapped to it.
KNOWN_SCALINGS = {"raw": (1.0, 0.0), "unit": (1 / PIXEL_MAX, 0.0), "symmetric": (2 / PIXEL_MAX, -1.0)}
#: How a model is fed when nothing says how its author fed it: pixels / 255, what the homework asks for.
DEFAULT_SCALING = KNOWN_SCALINGS["unit"]


def scaling_name(scale: float, offset: float) -> str | None:
    """The name in :data:`KNOWN_SCALINGS` of ``(scale, offset)`` (equal to 6 decimals), or None."""
    return next((name for name, (known_scale, known_offset) in KNOWN_SCALINGS.items()
                 if round(known_scale, 6) == round(scale, 6) and round(known_offset, 6) == round(offset, 6)), None)


def mnist_share(shape: Any) -> float:
    """The share of each image's pixels that are MNIST's, for statistics of images of ``shape`` (per sample):
    784 of 1024 for LeNet's zero-padded 32x32, else all of them."""
    if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d > 0 for d in shape):
        return 1.0
    channels = shape[-1] if len(shape) == 3 else 1
    pixels = int(math.prod(shape)) // channels
    return MNIST_PIXELS / pixels if pixels > MNIST_PIXELS else 1.0


def input_scaling(mean: float, std: float, real_share: float = 1.0) -> tuple[float, float]:
    """``(scale, offset)`` with ``data ≈ scale * raw_pixels + offset``, from the data's mean and std.

    Any global affine preprocessing (none, ``/ 255``, ``[-1, 1]``, standardisation) is recovered from
    the statistics of what the author fed their model; known scalings are snapped to exactly. When only
    ``real_share`` of the pixels are MNIST's and the rest zero padding (LeNet's 32x32: 784 of 1024), the
    statistics are first taken back to those of the MNIST pixels alone.
    """
    if real_share < 1:
        mean, second_moment = mean / real_share, (std ** 2 + mean ** 2) / real_share
        std = math.sqrt(max(second_moment - mean ** 2, 0.0))
    scale = std / RAW_PIXEL_STD if std > 0 else DEFAULT_SCALING[0]
    offset = mean - scale * RAW_PIXEL_MEAN
    for known_scale, known_offset in KNOWN_SCALINGS.values():
        if abs(scale / known_scale - 1) < 0.02 and abs(offset - known_offset) < 0.02 * max(1.0, PIXEL_MAX * known_scale):
            return known_scale, known_offset
    return scale, offset
