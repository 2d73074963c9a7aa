"""Lost models: a model the notebook trained that earned no points, that a check could not assess, or
that an integrity rule flagged (whatever its architecture earned), is listed for an instructor's review.

A trained model can earn nothing for reasons the student never sees in a score: it was not there when
the notebook ended (the name was reused, it lived inside a function), it could not be saved or
predicted with, a check could not assess it, integrity rules flagged it, or it simply scored zero.
:func:`lost_models` reads one result (its models, checks, integrity and executed cells) and returns
one entry per such architecture, with a reason code from :data:`REVIEW_REASONS`::

    {arch, code, variable, cell_number, text}

Which models the notebook trained is read from the executed cells' sources with ``ast`` (a
``name.fit(...)`` call in a cell that ran without error; nothing is run), and from the models block
when it carries training figures (``fit_calls``, ``training_steps``).
"""
from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

from autograder.results import REASONS
from autograder.run.inside import contract
from autograder.score.notebook_code import cell_names, jupyter_numbers, python_statements

#: Review reason codes, most specific first, each with the text an instructor reads.
REVIEW_REASONS: dict[str, str] = {
    "run_stopped": "the run was stopped before the grader could read the model",
    "model_lost": "trained in the notebook, but no such model was there when the notebook ended "
                  "(name reused, deleted, or kept inside a function)",
    "model_not_saved": "found, but the grader could not save it",
    "prediction_failed": "saved, but it could not be loaded or predicted with in the prediction sandbox",
    "not_assessed": "a check could not assess it (it may have earned points on the others)",
    "integrity_flagged": "an integrity rule flagged it (no accuracy points; the evidence is on its page)",
    "scored_zero": "assessed and scored zero (wrong kind of network or accuracy at or below zero credit)",
}
FIT_METHODS = ("fit", "fit_generator")
MODEL = "model"  # the review entries this module writes (scoring writes kind "needs_review" / "grader_error")
UNASSESSED = ("not_assessed", "needs_review")  # check statuses: the check could not judge the model


def mark_lost_models(result: dict[str, Any], models: Mapping[str, str]) -> None:
    """Add the lost models to ``result["review"]`` (beside the checks scoring put there); a result with
    nothing else wrong gets reason ``models_to_review`` (and loses it on a regrade that finds none)."""
    lost = lost_models(result, models)
    result["review"] = [item for item in result.get("review") or [] if item.get("kind") != MODEL] + lost
    if lost and result.get("reason") is None:
        result.update(reason="models_to_review", message=REASONS["models_to_review"])
    elif not lost and result.get("reason") == "models_to_review":
        result.update(reason=None, message="Graded.")


def lost_models(result: Mapping[str, Any], models: Mapping[str, str]) -> list[dict[str, Any]]:
    """One entry per architecture whose model the notebook trained (or the grader found) that earned
    no points or was not fully assessed; ``models`` are the assignment's template names (arch -> variable)."""
    block = result.get("models") or {}
    execution = result.get("execution") or {}
    trained = trained_in_notebook(execution.get("cells") or [], block, models)
    scores = arch_scores(result)
    lost = []
    for arch in contract.ARCHITECTURES:
        entry = block.get(arch) or {}  # {}: nothing ran (the models block then is empty)
        training = entry.get("training") or {}  # the grader's fit-hook figures ({} when none were recorded)
        figures_say_trained = bool(training.get("fit_calls") or training.get("training_steps"))
        found = bool(entry.get("found"))
        if arch not in scores or not (arch in trained or found or figures_say_trained):
            continue
        unassessed = any(c.get("status") in UNASSESSED for c in arch_checks(result, arch))
        if scores[arch] > 0 and not unassessed and not integrity_flagged(result, arch):
            continue
        code = _reason(arch, entry, found, result)
        variable, number = trained.get(arch, (entry.get("variable"), None))
        lost.append({"kind": MODEL, "arch": arch, "code": code, "variable": variable, "cell_number": number,
                     "text": REVIEW_REASONS[code]})
    return lost


def _reason(arch: str, entry: Mapping[str, Any], found: bool, result: Mapping[str, Any]) -> str:
    error = str(entry.get("error") or "")
    if not found:
        return "run_stopped" if (result.get("execution") or {}).get("stopped") else "model_lost"
    if "could not be saved" in error:
        return "model_not_saved"
    if error:
        return "prediction_failed"
    if any(c.get("status") in UNASSESSED for c in arch_checks(result, arch)):
        return "not_assessed"
    if integrity_flagged(result, arch):
        return "integrity_flagged"
    return "scored_zero"


def integrity_flagged(result: Mapping[str, Any], arch: str) -> bool:
    """An integrity rule flagged the model: listed even when its architecture earned points (issue 24)."""
    rules = ((result.get("integrity") or {}).get(arch) or {}).values()
    return any(isinstance(rule, Mapping) and rule.get("passed") is False for rule in rules)


def arch_checks(result: Mapping[str, Any], arch: str) -> list[Mapping[str, Any]]:
    """The checks of one architecture: by convention they are named ``<arch>_...``."""
    return [check for question in result.get("questions") or [] for check in question.get("checks") or []
            if str(check.get("name", "")).startswith(f"{arch}_")]


def arch_scores(result: Mapping[str, Any]) -> dict[str, float]:
    """Points each architecture's checks earned, for the architectures the assignment grades."""
    return {arch: sum(float(c.get("score") or 0.0) for c in checks)
            for arch in contract.ARCHITECTURES if (checks := arch_checks(result, arch))}


def trained_in_notebook(cells: list[Mapping[str, Any]], block: Mapping[str, Any],
                        models: Mapping[str, str]) -> dict[str, tuple[str, int]]:
    """Arch -> (variable, Jupyter cell number) of the last ``variable.fit(...)`` in a cell that ran
    without error. A variable's architecture: the grader's own finding for it, else the template
    name, else the layers its defining statements call (``contract.classify``)."""
    by_variable = {**{name: arch for arch, name in models.items()},
                   **{(block.get(a) or {}).get("variable"): a for a in contract.ARCHITECTURES
                      if (block.get(a) or {}).get("variable")}}
    ran = [c for c in cells if c.get("status") != "not_run"]
    numbers = jupyter_numbers(cells)
    trained: dict[str, tuple[str, int]] = {}
    for cell in ran:
        if cell.get("status") != "ok":
            continue
        for variable in _fitted_variables(cell.get("source") or ""):
            arch = by_variable.get(variable) or contract.classify(_layers_of(variable, ran))
            if arch in contract.ARCHITECTURES:
                trained[arch] = (variable, numbers[cell["index"]])
    return trained


def _fitted_variables(source: str) -> list[str]:
    return [node.func.value.id for statement in python_statements(source) for node in ast.walk(statement)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in FIT_METHODS and isinstance(node.func.value, ast.Name)]


def _layers_of(variable: str, cells: list[Mapping[str, Any]]) -> set[str]:
    """Names called where the notebook builds ``variable``: statements that bind it or call
    ``variable.add(...)``, and the bodies of notebook functions they call (one level)."""
    functions: dict[str, ast.AST] = {}
    building: list[ast.AST] = []
    for cell in cells:
        source = cell.get("source") or ""
        if variable not in cell_names(source).binds | cell_names(source).uses:
            functions.update(_functions(source))
            continue
        for statement in python_statements(source):
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions[statement.name] = statement
            elif variable in _targets(statement) or _adds_to(statement, variable):
                building.append(statement)
    called = {name for node in building for name in _called_names(node)}
    called |= {name for function in called & functions.keys() for name in _called_names(functions[function])}
    return called


def _functions(source: str) -> dict[str, ast.AST]:
    return {s.name: s for s in python_statements(source) if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _targets(statement: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _adds_to(statement: ast.AST, variable: str) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "add"
               and isinstance(n.func.value, ast.Name) and n.func.value.id == variable for n in ast.walk(statement))


def _called_names(node: ast.AST) -> set[str]:
    return {call.func.id if isinstance(call.func, ast.Name) else call.func.attr
            for call in ast.walk(node) if isinstance(call, ast.Call) and isinstance(call.func, (ast.Name, ast.Attribute))}
