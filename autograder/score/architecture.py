"""Architecture rules over a model summary (plain JSON made in the prediction sandbox).

The kind of a model is read from its layers with the contract's one classifier
(:func:`autograder.run.inside.contract.classify`, the same the export step uses), so a "CNN" that is secretly
an MLP is called an MLP. A model is *of the named kind* when it classifies as that architecture, holds
only the layers that architecture may hold (``contract.ALLOWED_LAYERS``: no recurrent branch in a CNN,
no convolution in an RNN) and stays within its parameter budget (a multiple of its reference model's
parameters, from calibration). Only a model of the named kind can earn that architecture's points. A CNN
whose convolutions are all 1-D (a Conv1D over the 28 rows) is a convolutional network, so it is the CNN and
is measured as usual, but it misses the rule that it convolves over the image's two dimensions: part of the
architecture points.

Each structural rule is a small function returning ``(ok, message)`` whose message describes the model
as it is; :func:`architecture_outcome` combines them into an :class:`Outcome`.
"""
from __future__ import annotations

from typing import Any, Callable

from autograder.run.inside import contract
from autograder.score.checks import Outcome, failed

Summary = dict[str, Any]
Rule = Callable[[Summary], tuple[bool, str]]

TITLES = contract.ARCHITECTURE_TITLES
WITH_ARTICLE = {"mlp": "an MLP", "cnn": "a CNN", "simple_rnn": "a SimpleRNN", "lstm": "an LSTM", "gru": "a GRU",
                "mixed": "a mix of recurrent networks"}
#: Convolutions that slide over both of the image's dimensions: what the CNN question asks for. A Conv1D
#: over the 28 rows is a convolutional network (classified "cnn", measured as usual) that misses this rule.
IMAGE_CONVOLUTIONS = frozenset(c for c in contract.CONVOLUTION_LAYERS if c.endswith("2D"))
FLATTENING = {"Flatten", "Reshape", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
              "GlobalMaxPooling2D"}


def layers(summary: Summary) -> list[dict[str, Any]]:
    """Layers in order, wrappers (Bidirectional, TimeDistributed) replaced by what they wrap."""
    flat = []
    for layer in summary.get("layers") or []:
        if not isinstance(layer, dict):
            continue
        wrapped = layer.get("wraps")
        flat.append({**wrapped, "input_shape": layer.get("input_shape")} if isinstance(wrapped, dict) else layer)
    return flat


def layer_classes(summary: Summary) -> list[str]:
    return [str(layer.get("class")) for layer in layers(summary)]


def kind(summary: Summary) -> str | None:
    """The architecture a model really is, judged by its layers (contract.classify)."""
    return contract.classify(layer_classes(summary))


def params(summary: Summary) -> int:
    value = summary.get("params")
    return int(value) if isinstance(value, (int, float)) else 0


# --- is it of the named kind? ----------------------------------------------------------------------

def not_of_kind(arch: str, summary: Summary) -> str | None:
    """Why the model is not a network of kind ``arch`` (student-facing), or None when it is."""
    actual = kind(summary)
    if actual != arch:
        described = WITH_ARTICLE.get(actual, "a model without Dense, convolutional or recurrent layers")
        return f"This model is {described}, not {WITH_ARTICLE[arch]}."
    extra = contract.disallowed_layers(arch, layer_classes(summary))
    if extra:
        return (f"This model holds layers {WITH_ARTICLE[arch]} may not hold ({', '.join(extra)}), so it is not "
                f"{WITH_ARTICLE[arch]} network alone.")
    return None


def over_budget(arch: str, summary: Summary, budget: int) -> str | None:
    """Why the model is too big to count as a network of kind ``arch``, or None."""
    if params(summary) > budget:
        return (f"This {TITLES[arch]} has {params(summary):,} parameters, over its budget of {budget:,} "
                "(a multiple of the reference model's): that is more a lookup table than a network.")
    return None


# --- structural rules: each message describes the model as it is ------------------------------------

def ten_way_output(summary: Summary) -> tuple[bool, str]:
    last = layers(summary)[-1] if layers(summary) else {}
    # A subclassed model has no output shape of its own: its last layer's says the same.
    shape = summary.get("output_shape") or last.get("output_shape") or ([None, last["units"]] if "units" in last else [])
    if list(shape)[-1:] != [contract.CLASSES]:
        return False, f"the output layer should have {contract.CLASSES} units (one per digit), not shape {shape}"
    activation = last.get("activation")
    if activation == "softmax" or last.get("class") == "Softmax":
        return True, f"{contract.CLASSES}-way softmax output"
    if activation in (None, "linear") and summary.get("from_logits"):
        return True, f"{contract.CLASSES} logits with a from_logits loss"
    return False, (f"the last layer uses activation {activation!r}; use 'softmax' "
                   "(or keep logits and compile with from_logits=True)")


def within_budget(budget: int) -> Rule:
    def rule(summary: Summary) -> tuple[bool, str]:
        if params(summary) > budget:
            return False, f"{params(summary):,} parameters is over the budget of {budget:,}"
        return True, f"{params(summary):,} parameters (budget {budget:,})"
    return rule


def dense_layers_on_a_vector(summary: Summary) -> tuple[bool, str]:
    input_shape = summary.get("input_shape") or []
    vector_input = len(input_shape) == 2
    flattened_by = "its input is already a vector" if vector_input else None
    for layer in layers(summary):
        name = layer.get("class")
        if name in FLATTENING and flattened_by is None:
            flattened_by = f"a {name} layer makes the image a vector"
        if name == "Dense" and flattened_by is None:
            return False, ("a Dense layer is applied to each row of the image before the image is flattened "
                           "(add a Flatten layer first)")
    hidden = sum(1 for layer in layers(summary) if layer.get("class") == "Dense") - 1
    if hidden < 1:
        return False, "an MLP needs at least one hidden Dense layer before the output layer"
    return True, f"{flattened_by or 'no flattening'}, then {hidden} hidden Dense layer(s)"


def convolution_and_downsampling(summary: Summary) -> tuple[bool, str]:
    found = layers(summary)
    convolutions = [layer["class"] for layer in found if layer.get("class") in contract.CONVOLUTION_LAYERS]
    if not convolutions:
        return False, "no convolutional layer"
    pooling = [layer["class"] for layer in found if layer.get("class") in contract.POOLING_LAYERS]
    strided = [layer["class"] for layer in found if layer.get("class") in contract.CONVOLUTION_LAYERS
               and any(int(s) > 1 for s in (layer.get("strides") or []) if isinstance(s, (int, float)))]
    if not pooling and not strided:
        return False, f"{len(convolutions)} convolutional layer(s) but no pooling (add MaxPooling2D)"
    how = f"{len(pooling)} pooling layer(s)" if pooling else f"{len(strided)} strided convolution(s)"
    return True, f"{len(convolutions)} convolutional layer(s) ({', '.join(dict.fromkeys(convolutions))}) and {how}"


def convolution_over_the_image(summary: Summary) -> tuple[bool, str]:
    convolutions = [str(layer.get("class")) for layer in layers(summary)
                    if layer.get("class") in contract.CONVOLUTION_LAYERS]
    if any(c in IMAGE_CONVOLUTIONS for c in convolutions):
        return True, "its convolutions slide over both dimensions of the image"
    if convolutions:
        return False, (f"its convolutions ({', '.join(dict.fromkeys(convolutions))}) slide along one dimension "
                       f"only, e.g. over the {contract.MNIST_SIDE} rows; a CNN for images convolves over both (Conv2D)")
    return False, "no convolution over the image"


def recurrent_over_rows(arch: str) -> Rule:
    recurrent = contract.RECURRENT_LAYER[arch]

    def rule(summary: Summary) -> tuple[bool, str]:
        stacked = [layer for layer in layers(summary) if layer.get("class") == recurrent]
        if not stacked:
            return False, f"no {recurrent} layer"
        shape = stacked[0].get("input_shape") or []
        side = contract.MNIST_SIDE
        if list(shape)[-2:] == [side, side]:
            return True, f"{len(stacked)} {recurrent} layer(s) reading {side} time steps of {side} pixels"
        return False, f"the {recurrent} layer is fed shape {shape}, not {side} steps of {side} pixels"
    return rule


def rules_for(arch: str, budget: int) -> list[Rule]:
    structure = {"mlp": [dense_layers_on_a_vector], "cnn": [convolution_and_downsampling, convolution_over_the_image]
                 }.get(arch) or [recurrent_over_rows(arch)]
    return [*structure, ten_way_output, within_budget(budget)]


def architecture_outcome(arch: str, summary: Summary, budget: int) -> Outcome:
    """Share of the structural rules passed; zero when the model is not of the named kind.

    Over budget is one failed rule here, but it also withholds the accuracy points
    (:func:`over_budget`): a lookup table's accuracy is not a network's.
    """
    title = TITLES[arch]
    classes = f"layers: {layer_classes(summary)}; params: {params(summary)}; budget: {budget}"
    wrong = not_of_kind(arch, summary)
    if wrong is not None:
        return failed(f"{wrong} It earns no {title} points.", classes)
    results = [rule(summary) for rule in rules_for(arch, budget)]
    problems = [message for ok, message in results if not ok]
    fraction = sum(ok for ok, _ in results) / len(results)
    message = (f"{title} architecture looks right: " + "; ".join(m for _, m in results) + ".") if not problems \
        else f"{title} architecture: " + "; ".join(problems) + "."
    return Outcome(fraction, message, "; ".join(m for _, m in results) + f"; {classes}")
