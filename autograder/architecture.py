"""Architecture rules over a model summary (plain JSON made in the prediction sandbox).

Each rule is a small function returning ``(ok, message)``; :func:`architecture_outcome` combines the
rules for one architecture into an :class:`Outcome`. The kind of a model is read from its layers, so a
"CNN" that is secretly an MLP is called an MLP.
"""
from __future__ import annotations

from typing import Any, Callable

from autograder.assignment import ARCHITECTURE_TITLES
from autograder.checks import Outcome, failed

Summary = dict[str, Any]
Rule = Callable[[Summary], tuple[bool, str]]

WITH_ARTICLE = {"mlp": "an MLP", "cnn": "a CNN", "simple_rnn": "a SimpleRNN", "lstm": "an LSTM", "gru": "a GRU"}
RECURRENT = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
POOLING = {"MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D"}
CONVOLUTION = {"Conv2D", "SeparableConv2D", "DepthwiseConv2D"}


def layers(summary: Summary) -> list[dict[str, Any]]:
    """Layers in order, wrappers (Bidirectional, TimeDistributed) replaced by what they wrap."""
    flat = []
    for layer in summary.get("layers", []):
        wrapped = layer.get("wraps")
        flat.append({**wrapped, "input_shape": layer.get("input_shape")} if isinstance(wrapped, dict) else layer)
    return flat


def layer_classes(summary: Summary) -> list[str]:
    return [str(layer.get("class")) for layer in layers(summary)]


def kind(summary: Summary) -> str | None:
    """The architecture a model really is, judged by its layers (recurrent > convolutional > dense)."""
    classes = set(layer_classes(summary))
    for arch, layer_name in RECURRENT.items():
        if layer_name in classes:
            return arch
    if classes & CONVOLUTION:
        return "cnn"
    return "mlp" if "Dense" in classes else None


def ten_way_output(summary: Summary) -> tuple[bool, str]:
    shape = summary.get("output_shape") or []
    if list(shape)[-1:] != [10]:
        return False, f"the output layer should have 10 units (one per digit), not shape {shape}"
    last = layers(summary)[-1] if layers(summary) else {}
    activation = last.get("activation")
    if activation == "softmax" or (last.get("class") == "Softmax"):
        return True, "10-way softmax output"
    if activation in (None, "linear") and summary.get("from_logits"):
        return True, "10 logits with a from_logits loss"
    return False, (f"the last layer uses activation {activation!r}; use 'softmax' "
                   "(or keep logits and compile with from_logits=True)")


def parameter_budget(max_params: int) -> Rule:
    def rule(summary: Summary) -> tuple[bool, str]:
        params = int(summary.get("params") or 0)
        if params > max_params:
            return False, f"{params:,} parameters is over the budget of {max_params:,}"
        return True, f"{params:,} parameters"
    return rule


def dense_after_flatten(summary: Summary) -> tuple[bool, str]:
    input_shape = summary.get("input_shape") or []
    flat_input = len(input_shape) == 2
    seen_flatten = flat_input
    for layer in layers(summary):
        if layer.get("class") in ("Flatten", "Reshape"):
            seen_flatten = True
        if layer.get("class") == "Dense" and not seen_flatten:
            return False, "a Dense layer comes before the image is flattened (add a Flatten layer first)"
    hidden = sum(1 for layer in layers(summary) if layer.get("class") == "Dense") - 1
    if hidden < 1:
        return False, "an MLP needs at least one hidden Dense layer before the output layer"
    flattening = "flat input" if flat_input else next(
        layer["class"] for layer in layers(summary) if layer.get("class") in ("Flatten", "Reshape"))
    return True, f"{flattening} then {hidden} hidden Dense layer(s)"


def convolution_and_pooling(summary: Summary) -> tuple[bool, str]:
    classes = set(layer_classes(summary))
    if not classes & CONVOLUTION:
        return False, "no Conv2D layer"
    if not classes & POOLING:
        return False, "Conv2D layers but no pooling layer (add MaxPooling2D)"
    return True, "Conv2D with pooling"


def recurrent_over_rows(arch: str) -> Rule:
    def rule(summary: Summary) -> tuple[bool, str]:
        for layer in layers(summary):
            if layer.get("class") == RECURRENT[arch]:
                shape = layer.get("input_shape") or []
                if list(shape)[-2:] == [28, 28]:
                    return True, f"{RECURRENT[arch]} reads 28 time steps of 28 pixels"
                return False, f"the {RECURRENT[arch]} layer is fed shape {shape}, not 28 steps of 28 pixels"
        return False, f"no {RECURRENT[arch]} layer"
    return rule


def rules_for(arch: str, max_params: int) -> list[Rule]:
    structure = {"mlp": dense_after_flatten, "cnn": convolution_and_pooling}.get(arch) or recurrent_over_rows(arch)
    return [structure, ten_way_output, parameter_budget(max_params)]


def wrong_kind(arch: str, summary: Summary) -> Outcome | None:
    """A zero Outcome when the model is not of the architecture the question asks for."""
    actual = kind(summary)
    if actual == arch:
        return None
    described = WITH_ARTICLE.get(actual, "a model without Dense, Conv2D or recurrent layers")
    return failed(f"This model is {described}, not {WITH_ARTICLE[arch]}, so it earns no "
                  f"{ARCHITECTURE_TITLES[arch]} points.", f"layers: {layer_classes(summary)}")


def architecture_outcome(arch: str, summary: Summary, max_params: int) -> Outcome:
    """Share of the architecture rules passed; zero when the model is of the wrong kind."""
    wrong = wrong_kind(arch, summary)
    if wrong is not None:
        return wrong
    results = [rule(summary) for rule in rules_for(arch, max_params)]
    problems = [message for ok, message in results if not ok]
    fraction = sum(ok for ok, _ in results) / len(results)
    title = ARCHITECTURE_TITLES[arch]
    message = f"{title} architecture looks right." if not problems else \
        f"{title} architecture: " + "; ".join(problems) + "."
    return Outcome(fraction, message, "; ".join(m for _, m in results) + f"; layers: {layer_classes(summary)}")
