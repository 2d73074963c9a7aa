"""``autograder assign``: turn the master notebook into what students get and what the grader keeps.

The master notebook (``reference_solutions/``, otter-assign format: ``# BEGIN QUESTION``, ``# BEGIN
SOLUTION``/``# END SOLUTION``, ``# BEGIN PROMPT``, ``# BEGIN TESTS``) goes through ``otter assign``,
which strips the solutions and writes the public tests. This module then

1. makes the output deterministic (otter gives the cells it adds random ids),
2. publishes the student side to ``student_dir``: the notebook, ``tests/q*.py`` (otter's
   exception-based test files, run offline by ``grader.check``) and a ``README.md`` rendered from
   ``assignment.toml`` (rubric, time budget, how grading works),
3. keeps otter's solution notebook in ``hidden/generated/`` (its tests are the public ones, kept once).

Nothing else reaches ``student_dir``: the hidden deep-learning checks, the evaluation seed and the
calibration stay in the assignment directory.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jinja2
import nbformat

from autograder.assignment import Assignment

GENERATED_DIR = "generated"  # under the assignment's hidden/ directory
README_TEMPLATE = "student_readme.md.j2"


def assign(assignment: Assignment) -> list[Path]:
    """Regenerate the student template and the hidden bundle; return the files written."""
    with tempfile.TemporaryDirectory(prefix="autograder-assign-") as scratch:
        dist = run_otter_assign(assignment.master_notebook, assignment.student_notebook, Path(scratch))
        for notebook in dist.glob("*/*.ipynb"):
            stabilize_notebook(notebook)
        (dist / "student" / "README.md").write_text(render_readme(assignment), encoding="utf-8")
        written = publish_student_files(dist / "student", assignment.student_dir, assignment.student_notebook)
        written += publish_solution_notebook(dist / "autograder", assignment.hidden_dir / GENERATED_DIR,
                                             assignment.student_notebook)
    return written


def run_otter_assign(master: Path, notebook_name: str, scratch: Path) -> Path:
    """Run ``otter assign`` on a copy of ``master``; return its output dir (``student/``, ``autograder/``).

    A subprocess keeps otter's ``chdir`` out of our process, and its own TMPDIR catches the scratch
    directory otter leaves behind. The copy is named like the student notebook, because otter writes
    that name into the notebook's ``otter.Notebook(...)`` cell.
    """
    work, tmp = scratch / "master", scratch / "tmp"
    work.mkdir()
    tmp.mkdir()
    shutil.copyfile(master, work / notebook_name)
    command = [sys.executable, "-m", "otter", "assign", "--no-run-tests", notebook_name, "dist"]
    env = {**os.environ, "TMPDIR": str(tmp)}
    completed = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"otter assign failed on {master}:\n{completed.stderr.strip()}")
    return work / "dist"


def stabilize_notebook(path: Path) -> None:
    """Give every cell an id derived from its position and source, so reruns write identical files."""
    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        cell["id"] = hashlib.sha1(f"{index}:{cell['source']}".encode()).hexdigest()[:8]
    nbformat.write(notebook, path)


def render_readme(assignment: Assignment) -> str:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("autograder.output", "templates"),
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    environment.filters["points"] = lambda value: f"{value:g}"
    environment.filters["percentage_points"] = percentage_points
    execution = assignment.execution
    return environment.get_template(README_TEMPLATE).render(
        title=assignment.title or assignment.name,
        name=assignment.name,
        notebook=assignment.student_notebook,
        wall_minutes=f"{execution.wall_budget_seconds / 60:g}",
        cell_minutes=f"{execution.cell_timeout_seconds / 60:g}",
        memory_mb=execution.memory_mb,
        threads=execution.threads,
        max_submission_mb=f"{execution.max_submission_mb:g}",
        margin=assignment.threshold_margin,
        span=assignment.threshold_span,
        tolerance=assignment.claim_tolerance,
        questions=assignment.questions,
        max_score=assignment.max_score,
    )


def percentage_points(fraction: float) -> str:
    """0.01 -> "1 percentage point", 0.15 -> "15 percentage points"."""
    points = round(fraction * 100, 2)
    return f"{points:g} percentage point{'' if points == 1 else 's'}"


def publish_student_files(source: Path, student_dir: Path, notebook_name: str) -> list[Path]:
    """Replace the notebook, ``tests/`` and README in ``student_dir``; leave anything else alone."""
    student_dir.mkdir(parents=True, exist_ok=True)
    written = replace_tree(source / "tests", student_dir / "tests")
    for name in (notebook_name, "README.md"):
        shutil.copyfile(source / name, student_dir / name)
        written.append(student_dir / name)
    return sorted(written)


def publish_solution_notebook(source: Path, target: Path, notebook_name: str) -> list[Path]:
    """Keep otter's solution notebook; its tests/ are the public tests, kept once in the template."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copyfile(source / notebook_name, target / notebook_name)
    return [target / notebook_name]


def replace_tree(source: Path, target: Path) -> list[Path]:
    """Make ``target`` a copy of ``source`` (stale files from an older run disappear)."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    return sorted(path for path in target.rglob("*") if path.is_file())
