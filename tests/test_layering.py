"""The layering of ARCHITECTURE.md as import contracts, checked over every module's ``ast`` (issue 27).

Every ``import`` and ``from ... import`` of the ``autograder`` package, at module level or inside a
function, is an edge from one module to another. The contracts below are the only statement of the
rules; ARCHITECTURE.md points here. A broken contract fails with one line per offending import: the file
and line, the module it imports, and the rule it breaks.
"""
from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import autograder

GRADER = Path(autograder.__file__).resolve().parent

#: The layers, top down. A module imports from its own unit or from a unit on a lower line, never up;
#: units on one line are siblings and import nothing from each other. ``""`` is the package's top level
#: (``assignment.py``, ``data.py``, ``results.py``, ``__init__.py``), which every phase uses;
#: ``__main__.py`` belongs to ``cli/``, whose ``main`` it calls.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli",),  # one thin module per verb
    ("pipeline",),  # chains the phases: grade_one, batch, the Gradescope entry point
    ("output", "author"),  # what is made from results; what the instructor runs before the term
    ("score",),  # Phase B, trusted: evidence into points
    ("intake",),  # untrusted bytes read as data
    ("run",),  # Phase A: the sandboxes, and inside/ beside student code
    ("",),
)

#: What grading writes into, the only part of output/ that pipeline/ may use: what decides a grade is never
#: in output/ (output/ is made from results, and a change there must not be able to move a score).
RESULT_WRITERS = {"output.store", "output.intake_record", "output.gradescope"}
#: The one module every layer may import: the names, caps and MNIST facts both sides of the sandbox share. It
#: imports nothing (it runs inside the sandbox too), so the top level takes the five architectures and MNIST's
#: sizes from it instead of spelling them a second time (issue 27: one definition per fact).
SHARED_CONTRACT = "run.inside.contract"
#: What score/ may take from run/: the export's names and caps, and the per-image hash both sides compute.
SHARED_WITH_SCORE = {"run.inside.contract", "run.inside.sketch"}

#: Imports allowed against a rule: (importing file, imported module) -> why. None is needed today.
EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    file: str  # autograder/output/feedback.py
    line: int
    importer: str  # output.feedback ("" for autograder/__init__.py)
    target: str  # score.integrity
    absolute: bool  # spelled ``autograder.…`` rather than relative

    def where(self) -> str:
        return f"{self.file}:{self.line} imports {dotted(self.target)}"

    @property
    def key(self) -> tuple[str, str]:
        return self.file, dotted(self.target)


def dotted(module: str) -> str:
    return f"autograder.{module}" if module else "autograder"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(GRADER).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = GRADER.joinpath(*name.split(".")) if name else GRADER
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path) -> Iterator[Import]:
    """Every import of the package in ``path``, resolved to the module it loads (``from autograder.run import
    sandbox`` loads ``run.sandbox``; ``from autograder.score.checks import failed`` loads ``score.checks``)."""
    importer = module_name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    file = path.relative_to(GRADER.parent).as_posix()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "autograder" or alias.name.startswith("autograder."):
                    yield Import(file, node.lineno, importer, alias.name.removeprefix("autograder").lstrip("."), True)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[:len(base) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module == "autograder" or (node.module or "").startswith("autograder."):
                source = node.module.removeprefix("autograder").lstrip(".")
            else:
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}" if source else alias.name
                target = submodule if is_module(submodule) else source
                yield Import(file, node.lineno, importer, target, not node.level)


def all_imports() -> list[Import]:
    """Each (file, line, module) once: ``from autograder.run import job, prediction`` is two imports."""
    return list(dict.fromkeys(found for path in sorted(GRADER.rglob("*.py")) if "__pycache__" not in path.parts
                              for found in imports_of(path)))


def unit(module: str) -> str:
    """The package a module belongs to (``output``), ``""`` for the top level."""
    first = module.split(".")[0]
    return "cli" if first == "__main__" else first if (GRADER / first).is_dir() else ""


def rank(module: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit(module) in layer)


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# --- the contracts: each returns the rule an import breaks, or None ---------------------------------------

def inside_stays_inside(found: Import) -> str | None:
    if within(found.importer, "run.inside") and (found.absolute or not within(found.target, "run.inside")):
        return ("run/inside/ imports nothing from autograder (it runs in the sandbox, mounted as "
                "autograder_inside): only relative imports of its own modules")
    return None


def the_contract_imports_nothing(found: Import) -> str | None:
    if found.importer == SHARED_CONTRACT:
        return "run/inside/contract.py imports nothing: every layer imports it"
    return None


def run_imports_no_other_phase(found: Import) -> str | None:
    if unit(found.importer) == "run" and unit(found.target) not in ("run", ""):
        return "run/ imports no other phase (only run/ and the top level)"
    return None


def score_takes_only_the_contract_from_run(found: Import) -> str | None:
    if unit(found.importer) == "score" and unit(found.target) == "run" and found.target not in SHARED_WITH_SCORE:
        return "score/ takes from run/ only inside/contract.py and inside/sketch.py"
    return None


def output_never_runs_a_notebook(found: Import) -> str | None:
    if unit(found.importer) == "output" and unit(found.target) == "run" and found.target != "run.inside.contract":
        return "output/ never runs a notebook: from run/ it takes only inside/contract.py"
    return None


def only_cli_imports_author(found: Import) -> str | None:
    if unit(found.target) == "author" and unit(found.importer) not in ("author", "cli"):
        return "only cli/ imports author/: authoring runs before the term, nothing that grades or reports needs it"
    return None


def grading_takes_no_scoring_from_output(found: Import) -> str | None:
    if unit(found.importer) == "pipeline" and unit(found.target) == "output" and found.target not in RESULT_WRITERS:
        return ("pipeline/ takes from output/ only what it writes results with "
                f"({', '.join(sorted(RESULT_WRITERS))}): what decides a grade lives in score/")
    return None


def imports_run_down(found: Import) -> str | None:
    if found.target == SHARED_CONTRACT:
        return None
    here, there = rank(found.importer), rank(found.target)
    if here > there or (here == there and unit(found.importer) != unit(found.target)):
        order = " > ".join(", ".join(u or "top level" for u in layer) for layer in LAYERS)
        return f"imports run down the layers ({order}), never up or sideways"
    return None


CONTRACTS: tuple[Callable[[Import], str | None], ...] = (
    inside_stays_inside, the_contract_imports_nothing, run_imports_no_other_phase, score_takes_only_the_contract_from_run,
    output_never_runs_a_notebook, only_cli_imports_author, grading_takes_no_scoring_from_output, imports_run_down)


def broken_rule(found: Import) -> str | None:
    return next((rule for contract in CONTRACTS if (rule := contract(found))), None)


def violations(imports: list[Import]) -> list[str]:
    allowed = EXCEPTIONS.keys()
    return [f"{found.where()}: {rule}" for found in imports
            if found.key not in allowed and (rule := broken_rule(found))]


def circles(imports: list[Import]) -> list[str]:
    """One line per group of modules that import each other (a strongly connected component), showing one
    circle through it. Allowed imports (exceptions, pending) are left out of the graph."""
    allowed = EXCEPTIONS.keys()
    edges: dict[str, dict[str, Import]] = {}
    for found in imports:
        if found.key not in allowed and found.importer != found.target:
            edges.setdefault(found.importer, {}).setdefault(found.target, found)
    lines = []
    for group in strongly_connected(edges):
        start = min(group)
        path = circle_through(start, group, edges)
        lines.append("circle: " + "; ".join(edges[a][b].where() for a, b in zip(path, path[1:]))
                     + ": no circle between modules")
    return lines


def strongly_connected(edges: dict[str, dict[str, Import]]) -> list[set[str]]:
    """Tarjan's algorithm; only groups of two or more modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(groups, key=min)


def circle_through(start: str, group: set[str], edges: dict[str, dict[str, Import]]) -> list[str]:
    """The shortest path from ``start`` back to itself inside ``group`` (breadth first)."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(edges.get(node, {})):
                if nxt not in group:
                    continue
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"{start} is in a strongly connected group but on no circle")


# --- the tests -------------------------------------------------------------------------------------------

def test_every_module_sits_in_a_layer():
    modules = {module_name(p) for p in GRADER.rglob("*.py") if "__pycache__" not in p.parts}
    placed = {u for layer in LAYERS for u in layer}
    assert {m for m in modules if unit(m) not in placed} == set(), "add the new package to LAYERS"


def test_imports_keep_the_contracts():
    broken = violations(all_imports())
    assert not broken, "\n" + "\n".join(broken)


def test_no_circle_between_modules():
    found = circles(all_imports())
    assert not found, "\n" + "\n".join(found)


@pytest.mark.parametrize("file, target, absolute, contract", [
    ("run/inside/probe.py", "run.inside.contract", True, inside_stays_inside),  # spelled autograder.run.inside
    ("run/inside/probe.py", "assignment", False, inside_stays_inside),
    ("run/inside/contract.py", "run.inside.sketch", False, the_contract_imports_nothing),
    ("run/kernel_session.py", "score.artifacts", True, run_imports_no_other_phase),
    ("score/accuracy.py", "run.kernel_session", True, score_takes_only_the_contract_from_run),
    ("output/show.py", "run.sandbox", True, output_never_runs_a_notebook),
    ("pipeline/batch.py", "author.term", True, only_cli_imports_author),
    ("pipeline/grade_one.py", "output.feedback", True, grading_takes_no_scoring_from_output),
    ("score/hidden.py", "pipeline.batch", True, imports_run_down),
    ("output/gradebook.py", "author.calibrate", True, only_cli_imports_author),  # siblings: sideways
])
def test_each_contract_names_the_import_it_refuses(file, target, absolute, contract):
    """Each rule fires on the import it is written against, and is the one reported for it."""
    found = Import(f"autograder/{file}", 7, module_name(GRADER / file), target, absolute)
    assert broken_rule(found) == contract(found) is not None
    assert violations([found]) == [f"autograder/{file}:7 imports autograder.{target}: {contract(found)}"]


def test_a_circle_is_one_line_naming_each_import_on_it():
    imports = [Import("autograder/output/a.py", 3, "output.a", "output.b", True),
               Import("autograder/output/b.py", 5, "output.b", "output.c", True),
               Import("autograder/output/c.py", 9, "output.c", "output.a", True),
               Import("autograder/output/c.py", 10, "output.c", "output.store", True)]
    assert circles(imports) == [
        "circle: autograder/output/a.py:3 imports autograder.output.b; autograder/output/b.py:5 imports "
        "autograder.output.c; autograder/output/c.py:9 imports autograder.output.a: no circle between modules"]


def test_every_allowance_is_still_needed():
    """An exception that no longer occurs (or no longer breaks a rule) is stale."""
    breaking = {found.key for found in all_imports() if broken_rule(found)}
    stale = [f"{file} -> {module}: listed in EXCEPTIONS but no such import breaks a rule any more"
             for file, module in EXCEPTIONS if (file, module) not in breaking]
    assert not stale, "\n" + "\n".join(stale)


def test_architecture_md_names_every_module():
    """ARCHITECTURE.md's table stays the map of the tree: a module added, moved or renamed without it fails here."""
    text = (GRADER.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
    unnamed = [path.relative_to(GRADER.parent).as_posix() for path in sorted(GRADER.rglob("*.py"))
               if "__pycache__" not in path.parts and path.stem not in ("__init__", "__main__")
               and unit(module_name(path)) != "cli"  # one module per verb, named by the verb
               and f"`{path.stem}`" not in text and f"{path.stem}.py" not in text]
    assert not unnamed, f"ARCHITECTURE.md does not name: {', '.join(unnamed)}"
