"""`make test`'s two pytest-xdist workers (`--dist loadgroup`): a module of tests/conftest.py's
SHARED_FIXTURE_MODULES runs on one worker, so its module-scoped fixtures are built once, and a run in which
that no longer holds stops in one line instead of silently building them twice."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SHARED_MODULE = """\
import os
import pytest

@pytest.fixture(scope="module")
def built():
    with open(os.environ["BUILDS"], "a") as fh:
        fh.write(os.environ.get("PYTEST_XDIST_WORKER", "-") + "\\n")

@pytest.mark.parametrize("i", range(6))
def test_uses_the_module_fixture(built, i):
    pass
"""


def run_two_workers(tmp_path: Path, conftest: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """A tiny project with the suite's conftest hooks and a module named like a shared-fixture module."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(  # the suite's conftest, under another name than the project's own
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('suite_conftest', {str(TESTS / 'conftest.py')!r})\n"
        "suite = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(suite)\n" + conftest)
    (project / "test_grade.py").write_text(SHARED_MODULE)
    builds = tmp_path / "builds.txt"
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2", "--dist",
                          "loadgroup", "--no-loadscope-reorder"], cwd=project, capture_output=True, text=True,
                         env={**os.environ, "BUILDS": str(builds)}, timeout=300)
    return run, builds.read_text().split() if builds.exists() else []


def test_a_shared_fixture_module_is_built_once_under_two_workers(tmp_path):
    run, builds = run_two_workers(tmp_path, "pytest_collection_modifyitems = suite.pytest_collection_modifyitems\n")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "6 passed" in run.stdout
    assert len(builds) == 1, builds  # one worker ran the whole module


def test_a_run_that_would_split_a_shared_module_stops_in_one_line(tmp_path):
    # Marks added after pytest-xdist's worker has read them (its hook runs before a plain conftest hook) group
    # nothing, as with pytest 9.2's node ids: the guard must stop the run before any test builds the fixture.
    late_marks = ("import pytest\npytest_xdist_node_collection_finished = suite.pytest_xdist_node_collection_finished\n"
                  "def pytest_collection_modifyitems(items):\n"
                  "    for item in items:\n"
                  "        item.add_marker(pytest.mark.xdist_group('test_grade'))\n")
    run, builds = run_two_workers(tmp_path, late_marks)
    assert run.returncode == 4 and builds == []
    refusal = [line for line in run.stdout.splitlines() if "--dist loadgroup does not group" in line]
    assert len(refusal) == 1 and "test_grade.py::test_uses_the_module_fixture[" in refusal[0]
    assert "pytest-xdist" in refusal[0] and "pytest<9.2" in refusal[0]
