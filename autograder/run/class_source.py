"""The notebook's class definitions, carried to the prediction sandbox to rebuild subclassed models.

A ``keras.Model`` subclass saves its weights, not its code, so the sandbox that predicts needs the class.
This module reads the notebook's code cells with :mod:`ast` only: it never executes, imports or
evaluates anything from them (``ast.literal_eval`` reads constants, nothing else). What it keeps:

- imports, each wrapped so that a module missing from the sandbox does not stop the rest;
- top-level class and function definitions (custom layers and helpers the model's class may use);
- top-level assignments of literal constants (``NUM_CLASSES = 10``);
- how the notebook instantiated each class, when every argument is a literal
  (``MyCNN(32, dropout=0.25)``), under ``contract.CONSTRUCTOR_CALLS``.

The result is executed only inside the prediction sandbox, which sees no labels and writes to a
directory of its own. Cells that do not parse (IPython magics are blanked first) are skipped.
"""
from __future__ import annotations

import ast
from typing import Any

from autograder.run.inside import contract

_PARSE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)


def _code_cells(notebook: Any) -> list[str]:
    cells = notebook.get("cells", []) if isinstance(notebook, dict) else getattr(notebook, "cells", [])
    sources = []
    for cell in cells:
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            sources.append("".join(source) if isinstance(source, list) else str(source))
    return sources


def _without_magics(source: str) -> str:
    """IPython's ``%magic`` and ``!shell`` lines become blank, keeping line numbers."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _literal(node: ast.AST) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return False, None


def _guarded_import(node: ast.stmt) -> str:
    body = ast.unparse(node)
    return f"try:\n    {body}\nexcept Exception:\n    pass"


def _constant_assignment(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets)
            and _literal(node.value)[0])


def _constructor_calls(tree: ast.AST, class_names: set[str], calls: dict[str, tuple[list, dict]]) -> None:
    """Record ``ClassName(literal, ..., key=literal)`` calls; a later call wins (the model last built)."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in class_names):
            continue
        args = [_literal(arg) for arg in node.args]
        kwargs = {kw.arg: _literal(kw.value) for kw in node.keywords}
        if None in kwargs or not all(ok for ok, _ in args + list(kwargs.values())):
            continue  # **kwargs or a non-literal argument: the sandbox tries the class's defaults
        calls[node.func.id] = ([value for _, value in args], {key: value for key, (_, value) in kwargs.items()})


def class_source(notebook: Any) -> str:
    """Python source holding the notebook's imports, classes, functions and constants (never executed here)."""
    trees = []
    for source in _code_cells(notebook):
        try:
            trees.append(ast.parse(_without_magics(source)))
        except _PARSE_ERRORS:
            continue
    parts: list[str] = []
    class_names: set[str] = set()
    for tree in trees:
        for node in tree.body:
            try:
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    parts.append(_guarded_import(node))
                elif isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    parts.append(ast.unparse(node))
                    if isinstance(node, ast.ClassDef):
                        class_names.add(node.name)
                elif _constant_assignment(node):
                    parts.append(ast.unparse(node))
            except _PARSE_ERRORS:
                continue
    calls: dict[str, tuple[list, dict]] = {}
    for tree in trees:
        try:
            _constructor_calls(tree, class_names, calls)
        except RecursionError:
            continue
    parts.append(f"{contract.CONSTRUCTOR_CALLS} = {calls!r}")
    return "\n\n".join(parts) + "\n"
