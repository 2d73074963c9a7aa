"""The grader's record of the confusion matrices the notebook computed, installed by ``kernel_setup``.

A matrix passed straight into a plot (``sns.heatmap(confusion_matrix(y_test, y_hat))``,
``ConfusionMatrixDisplay.from_predictions(...)``, ``pd.crosstab(...)``, ``tf.math.confusion_matrix(...)``)
leaves no variable for the export to find, so the functions that make confusion matrices are wrapped
when their library is first imported, and a copy of every 10x10 count matrix they return is kept (as
the fit hook keeps what ``fit`` was given). The export offers these after the notebook's variables,
and the trusted side judges them against its own predictions exactly as a variable's matrix.

Like the fit hook, a wrapper never changes what the function returns or raises, and the record lives in
the student's process: it is a candidate to check, never a verdict.
"""
from __future__ import annotations

import functools
from typing import Any

from . import contract, probe

#: (what made it, 10x10 int64 copy), distinct, in call order; capped at contract.MAX_CONFUSION_CANDIDATES.
RECORDED: list[tuple[str, Any]] = []
_installed: dict[str, tuple[Any, str, Any]] = {}


def count_matrix(value: Any) -> Any:
    """A ``contract.CONFUSION_SHAPE`` matrix of non-negative integer counts as an int64 copy, or None."""
    if probe.kind_of(value) not in ("array", "dataframe", "tensor") or tuple(value.shape) != contract.CONFUSION_SHAPE:
        return None  # the shape first: a large array is never converted just to be turned down
    array = probe.as_numeric(value)
    if array is None:
        return None
    facts = probe.probe(array)
    if not facts.get("finite") or facts.get("min") is None or facts["min"] < 0 or not probe.integer_valued(array):
        return None
    return array.astype(probe._int64)  # astype copies: a later change to the student's array is not seen


def record(made_by: str, value: Any) -> None:
    """Keep ``value`` if it is a 10x10 count matrix not seen before (never raises)."""
    try:
        matrix = count_matrix(value)
        if matrix is None or len(RECORDED) >= contract.MAX_CONFUSION_CANDIDATES:
            return
        if all(matrix.tobytes() != seen.tobytes() for _, seen in RECORDED):
            RECORDED.append((made_by, matrix))
    except Exception:
        pass


def _wrap(owner: Any, attribute: str, made_by: str, returned: Any) -> None:
    """Replace ``owner.attribute`` by a wrapper recording ``returned(result, args, kwargs)``; a library
    laid out otherwise than expected is left as it is (the student's import must never fail here)."""
    try:
        original = getattr(owner, attribute, None)
    except Exception:
        return
    if not callable(original) or made_by in _installed:
        return

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        try:
            record(made_by, returned(result, args, kwargs))
        except Exception:
            pass
        return result

    try:
        setattr(owner, attribute, wrapper)
    except Exception:
        return
    _installed[made_by] = (owner, attribute, original)


def _result(result: Any, args: tuple, kwargs: dict) -> Any:
    return result


def _crosstab_counts(result: Any, args: tuple, kwargs: dict) -> Any:
    """``margins=True`` adds an "All" row and column: the counts are the rest."""
    if kwargs.get("margins") and tuple(getattr(result, "shape", ())) == (11, 11):
        return result.iloc[:-1, :-1]
    return result


def _display_counts(result: Any, args: tuple, kwargs: dict) -> Any:
    """``ConfusionMatrixDisplay(confusion_matrix, ...)``: the matrix it was built with."""
    return kwargs.get("confusion_matrix", args[1] if len(args) > 1 else None)


def after_sklearn_metrics(metrics: Any) -> None:
    """``sklearn.metrics.confusion_matrix``, and every ``ConfusionMatrixDisplay`` (``from_predictions``,
    ``from_estimator`` and direct construction all pass through ``__init__``)."""
    _wrap(metrics, "confusion_matrix", "confusion_matrix()", _result)
    display = getattr(metrics, "ConfusionMatrixDisplay", None)
    if isinstance(display, type):
        _wrap(display, "__init__", "ConfusionMatrixDisplay", _display_counts)


def after_pandas(pandas: Any) -> None:
    _wrap(pandas, "crosstab", "pd.crosstab()", _crosstab_counts)


def after_tensorflow(tf: Any) -> None:
    _wrap(getattr(tf, "math", None), "confusion_matrix", "tf.math.confusion_matrix()", _result)


def uninstall() -> None:
    """Restore every wrapped function and forget the records (tests running in one process)."""
    for owner, attribute, original in _installed.values():
        setattr(owner, attribute, original)
    _installed.clear()
    RECORDED.clear()
