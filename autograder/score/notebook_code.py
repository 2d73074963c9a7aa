"""How the trusted grader reads a notebook's code cells, with ``ast`` only (nothing is compiled or run).

One reader for every rule that looks at the student's code: the diagnoses (which names a cell binds and
uses, which modules it installs, which files it fetches) and the review list (which models the notebook
trained). IPython's ``%magic`` and ``!shell`` lines are first translated into the Python IPython runs for
them (a string translation), and a source is cut to :data:`READ_CHARS` before it is read, so hostile
sources stay fast. :func:`jupyter_numbers` numbers the cells as Jupyter does.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

READ_CHARS = 20_000  # longer sources (and the messages diagnoses match) are cut before parsing or matching


def jupyter_numbers(cells: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """Cell index -> the number Jupyter shows (``In [n]``) after "Restart & Run All": code cells
    counted from 1 in notebook order (``cells`` holds every code cell, run or not)."""
    return {cell["index"]: number for number, cell in enumerate(cells, start=1) if "index" in cell}


#: pip names whose module is called otherwise; any other name installs the module of the same
#: name, with "-" read as "_".
INSTALLED_MODULES = {"opencv-python": "cv2", "opencv-python-headless": "cv2", "opencv-contrib-python": "cv2",
                     "scikit-learn": "sklearn", "scikit-image": "skimage", "pillow": "PIL",
                     "keras-tuner": "keras_tuner", "tensorflow-datasets": "tensorflow_datasets",
                     "pyyaml": "yaml", "beautifulsoup4": "bs4", "python-mnist": "mnist",
                     "tensorflow-addons": "tensorflow_addons"}
_INSTALL_LINE = re.compile(r"^[ \t]*[!%][ \t]*(?:pip3?|python3? -m pip|conda|mamba)[ \t]+install\b(?P<args>.*)$",
                           re.MULTILINE)
#: Endings of the data files a download cell fetches (words of its source are matched against them).
DATA_FILE_ENDINGS = (".zip", ".gz", ".tgz", ".tar", ".npz", ".npy", ".csv", ".h5", ".hdf5", ".keras", ".pkl",
                     ".pickle", ".json", ".txt", ".png", ".jpg", ".jpeg", "-ubyte", ".mat", ".parquet", ".xls", ".xlsx")
#: A cell that unpacks an archive: which files it would have made is unknown.
_UNPACK = re.compile(r"\b(unzip|tar|gunzip|7z|extractall|unpack_archive)\b")


class Statement(NamedTuple):
    """One top-level statement of a cell: its lines and the names it reads and binds."""

    first: int
    last: int
    reads: frozenset[str]  # every name it reads (not those local to its functions and comprehensions)
    uses: frozenset[str]  # the names it reads that the cell has not bound before it
    binds: frozenset[str]
    kind: str  # "import", "star_import" (``from m import *``) or "code"


@dataclass(frozen=True)
class CellNames:
    """What one cell's source binds and uses, read with ``ast`` (IPython syntax translated first)."""

    binds: frozenset[str]
    uses: frozenset[str]  # names read before the cell itself binds them
    installs: frozenset[str]  # modules its !pip / %pip lines install
    files: frozenset[str]  # file names it mentions (what a download would have fetched)
    unpacks: bool = False  # it unpacks an archive (unzip, tar, extractall, ...)
    statements: tuple[Statement, ...] = ()

    def uses_until(self, line: int | None) -> frozenset[str]:
        """Names the statements that start at or before ``line`` use (all of them when None): what
        a cell that failed at that line had read."""
        return frozenset().union(*(s.uses for s in self.statements if line is None or s.first <= line))


@lru_cache(maxsize=4096)
def cell_names(source: str) -> CellNames:
    source = source[:READ_CHARS]
    binds: set[str] = set()
    uses: set[str] = set()
    statements = []
    for statement in python_statements(source):
        reads = {node.id for node in ast.walk(statement) if isinstance(node, ast.Name)
                 and isinstance(node.ctx, ast.Load)} - _nested_scope_names(statement)
        uses |= reads - binds
        bound = _bound_names(statement)
        statements.append(Statement(statement.lineno, statement.end_lineno or statement.lineno, frozenset(reads),
                                    frozenset(reads - binds), frozenset(bound), _statement_kind(statement)))
        binds |= bound
    installs = {INSTALLED_MODULES.get(package.lower(), package.replace("-", "_"))
                for line in _INSTALL_LINE.finditer(source)
                for package in (re.split(r"[<>=!~\[;@]", word)[0] for word in line["args"].split())
                if package and not package.startswith(("-", ".", "/", "git+", "http"))}
    files = {word for word in re.findall(r"[\w.-]+", source)
             if word.lower().endswith(DATA_FILE_ENDINGS) and not word.startswith((".", "-"))}
    return CellNames(frozenset(binds), frozenset(uses), frozenset(installs), frozenset(files),
                     _UNPACK.search(source) is not None, tuple(statements))


def _statement_kind(statement: ast.stmt) -> str:
    if isinstance(statement, ast.ImportFrom) and any(alias.name == "*" for alias in statement.names):
        return "star_import"
    return "import" if isinstance(statement, (ast.Import, ast.ImportFrom)) else "code"


def python_statements(source: str) -> list[ast.stmt]:
    """The cell's top-level statements; a cell Python cannot read (say, Python 2 prints) is read
    line by line, so the lines that parse still count."""
    python = _ipython_to_python(source[:READ_CHARS])  # cell_names passes it cut already; the review list does not
    try:
        return ast.parse(python).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # the last two: hostile nesting
        statements = []
        for number, line in enumerate(python.splitlines(), start=1):
            try:
                tree = ast.parse(line.strip())
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue
            statements += ast.increment_lineno(tree, number - 1).body
        return statements


def _ipython_to_python(source: str) -> str:
    """``%magic`` and ``!shell`` lines as the Python IPython runs for them (nothing is run here)."""
    from IPython.core.inputtransformer2 import TransformerManager  # IPython comes with ipykernel

    if not _IPYTHON_SYNTAX.search(source):
        return source
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # IPython's own parser gives up on some broken cells: read them as they are
        return source


_IPYTHON_SYNTAX = re.compile(r"^[ \t]*[%!?]|[?=][ \t]*[%!]|\?[ \t]*$", re.MULTILINE)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _bound_names(statement: ast.stmt) -> set[str]:
    """Names a top-level statement binds in the notebook's namespace (not inside functions)."""
    names: set[str] = set()
    stack: list[ast.AST] = [statement]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name != "*"}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue  # its body is a scope of its own
        if not isinstance(node, (ast.Lambda, *_COMPREHENSIONS)):
            stack.extend(ast.iter_child_nodes(node))
    return names


def _nested_scope_names(statement: ast.stmt) -> set[str]:
    """Names local to the functions and comprehensions inside a statement (parameters, targets)."""
    names: set[str] = set()
    for node in ast.walk(statement):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            names |= {arg.arg for arg in ast.walk(node.args) if isinstance(arg, ast.arg)}
            names |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        elif isinstance(node, _COMPREHENSIONS):
            names |= {n.id for generator in node.generators for n in ast.walk(generator.target)
                      if isinstance(n, ast.Name)}
    return names
