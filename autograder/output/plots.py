"""The pictures on the feedback pages and the review workbench: matplotlib figures rendered to PNG
``data:`` URIs (no files beside the page), and the stored confusion matrix the student page draws."""
from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no global figure state; Figure renders with Agg

from autograder.assignment import ARCHITECTURE_TITLES, ARCHITECTURES
from autograder.run.inside import contract
from autograder.score.accuracy import is_confusion_matrix
from autograder.score.artifacts import EVIDENCE_JSON, stored_evidence


def png_data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def confusion_plot(matrix: np.ndarray) -> str:
    figure = Figure(figsize=(4.6, 4.1))
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046)
    threshold = matrix.max() / 2
    for (row, col), count in np.ndenumerate(matrix):
        axes.text(col, row, str(count), ha="center", va="center", fontsize=7,
                  color="white" if count > threshold else "black")
    axes.set(xticks=range(contract.CLASSES), yticks=range(contract.CLASSES), xlabel="predicted label",
             ylabel="true label", title="Your confusion matrix (test set)")
    return png_data_uri(figure)


def accuracy_plot(models: dict[str, Any]) -> str | None:
    """Measured accuracy per architecture, with the full-credit and zero-credit thresholds."""
    archs = [a for a in ARCHITECTURES if (models.get(a) or {}).get("accuracy") is not None]
    if not archs:
        return None
    figure = Figure(figsize=(5.6, 3.8))
    axes = figure.subplots()
    for x, arch in enumerate(ARCHITECTURES):
        if arch not in archs:
            axes.text(x, 0, "no model", ha="center", va="bottom", fontsize=8, color="#c62828",
                      transform=axes.get_xaxis_transform())
            continue
        model = models[arch]
        accuracy, full, zero = model["accuracy"], model.get("threshold_full"), model.get("threshold_zero")
        colour = ("#2e7d32" if full is None or accuracy >= full else
                  "#c62828" if zero is not None and accuracy <= zero else "#ef6c00")
        axes.bar(x, 100 * accuracy, color=colour, width=0.6)
        axes.text(x, 100 * accuracy + 0.5, f"{100 * accuracy:.1f}%", ha="center", fontsize=8)
        if full is not None:
            axes.hlines(100 * full, x - 0.4, x + 0.4, colors="black", linewidth=2,
                        label="full credit" if arch == archs[0] else None)
        if zero is not None:
            axes.hlines(100 * zero, x - 0.4, x + 0.4, colors="grey", linestyles="dashed",
                        label="zero credit" if arch == archs[0] else None)
    lowest = min([models[a]["accuracy"] for a in archs]
                 + [models[a]["threshold_zero"] for a in archs if models[a].get("threshold_zero") is not None])
    axes.set(xticks=range(len(ARCHITECTURES)), xticklabels=[ARCHITECTURE_TITLES[a] for a in ARCHITECTURES],
             xlim=(-0.6, len(ARCHITECTURES) - 0.4),
             ylabel="accuracy (%)", ylim=(max(0, 100 * lowest - 5), 101),
             title="Accuracy on the evaluation images vs. thresholds")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    return png_data_uri(figure)


def histogram_plot(percents: list[float]) -> str:
    figure = Figure(figsize=(6.4, 3.2))
    axes = figure.subplots()
    axes.hist(percents, bins=np.linspace(0, 100, 21), color="#1565c0", edgecolor="white")
    axes.set(xlabel="score (%)", ylabel="submissions", title="Score distribution")
    return png_data_uri(figure)


def load_confusion(artifacts_dir: Path, index: Any) -> np.ndarray | None:
    """The stored confusion matrix at ``index`` (a result's ``data.confusion.index``: the one the grader
    matched), read with the reader regrading uses; None when there is none or it is not a valid 10x10 count
    matrix."""
    if not isinstance(index, int) or not (artifacts_dir / EVIDENCE_JSON).is_file():
        return None
    try:
        candidates = stored_evidence(artifacts_dir).confusion
    except (ValueError, KeyError, OSError, zipfile.BadZipFile):
        return None
    if not 0 <= index < len(candidates):
        return None
    matrix = candidates[index].matrix
    return matrix.astype(np.int64) if is_confusion_matrix(matrix) else None
