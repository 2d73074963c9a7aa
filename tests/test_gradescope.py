"""The Gradescope package end to end, with bubblewrap and at the container-uid level (no namespaces).

One small notebook is graded per mode through ``run_autograder`` in a Gradescope-shaped temporary tree.
The notebook also carries the attacks that matter when there are no namespaces: reading the hidden
bundle, the submission metadata and the secret images; forging results and predictions; writing
outside its own directory; leaving a daemon behind. What succeeds leaves a ``LEAK-*`` file in a
world-writable drop directory (the one thing such a cell can still reach), so the test sees it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import jsonschema
import nbformat
import psutil
import pytest

from autograder.assignment import load_assignment
from autograder.output import gradescope
from autograder.pipeline import gradescope as entry_point
from autograder.run import isolation
from tests import notebooks

REPO = Path(__file__).resolve().parents[1]

#: Gradescope's results.json, as documented at https://gradescope-autograders.readthedocs.io/en/latest/specs/
#: (only documented keys; visibility values from the same page).
VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
GRADESCOPE_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["tests"],
    "properties": {
        "score": {"type": "number"}, "execution_time": {"type": "number"}, "output": {"type": "string"},
        "output_format": {"type": "string"}, "test_output_format": {"type": "string"},
        "test_name_format": {"type": "string"}, "visibility": VISIBILITY, "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"}, "leaderboard": {"type": "array"},
        "tests": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["name", "score", "max_score"],
            "properties": {
                "score": {"type": "number"}, "max_score": {"type": "number"},
                "status": {"enum": ["passed", "failed"]}, "name": {"type": "string"},
                "name_format": {"type": "string"}, "number": {"type": "string"}, "output": {"type": "string"},
                "output_format": {"type": "string"}, "tags": {"type": "array"}, "visibility": VISIBILITY,
                "extra_data": {"type": "object"}}}},
    },
}

DAEMON_SECONDS = "317.25"  # a marker: no process with it may outlive the grading
SCORES: dict[str, float] = {}  # per isolation level: the same notebook must score the same


def hostile_cell(root: Path, drop: Path, canary: Path, tmp_marker: Path) -> str:
    secrets = [root / "source" / "assignment" / "hidden" / "evaluation_seed.txt",
               root / "source" / "assignment" / "calibration.json", root / "source" / "mnist" / "mnist.npz",
               root / "submission_metadata.json", root / "results", "../inputs", "../inputs/eval.npy"]
    forgeries = [root / "results" / "results.json", canary / "written.txt", "../predictions/mlp_summary.json",
                 "../predictions/forged.json", "../export/../forged.json"]
    return f'''
import os, subprocess
def leak(name):
    try:
        open(os.path.join({str(drop)!r}, "LEAK-" + name.replace("/", "_")), "w").close()
    except OSError:
        pass
for path in {[str(p) for p in secrets]!r}:
    try:
        os.listdir(path) if os.path.isdir(path) else open(path, "rb").read(16)
        leak("read" + path)
    except OSError:
        pass
for path in {[str(p) for p in forgeries]!r}:
    try:
        with open(path, "w") as fh:
            fh.write('{{"score": 100}}')
        leak("wrote" + path)
    except OSError:
        pass
open({str(tmp_marker)!r}, "w").close()  # allowed (world-writable), but removed after the job
subprocess.Popen("nohup sleep {DAEMON_SECONDS} >/dev/null 2>&1 &", shell=True)
open(os.path.join({str(drop)!r}, "RAN"), "w").close()
'''


@pytest.fixture(scope="module")
def package(small_assignment, tmp_path_factory) -> Path:
    """The test-sized assignment's package, with the real budgets: importing TensorFlow alone can take
    minutes on a loaded machine, and a timeout here would test nothing."""
    where = tmp_path_factory.mktemp("package")
    root = where / "mnist"
    shutil.copytree(small_assignment.root, root)
    toml = (root / "assignment.toml").read_text()
    for key, value in {"wall_budget_seconds": 900, "cell_timeout_seconds": 600}.items():
        toml = re.sub(rf"(?m)^{key} = \S+", f"{key} = {value}", toml)
    (root / "assignment.toml").write_text(toml)
    out = where / "autograder.zip"
    gradescope.write_zip(gradescope.package_entries(load_assignment(root)), out)
    return out


def test_package_is_reproducible_and_holds_no_solution(small_assignment, tmp_path):
    package, again = tmp_path / "first.zip", tmp_path / "again.zip"
    gradescope.write_zip(gradescope.package_entries(small_assignment), package)
    gradescope.write_zip(gradescope.package_entries(small_assignment), again)
    assert again.read_bytes() == package.read_bytes()
    with zipfile.ZipFile(package) as zf:
        names = zf.namelist()
        modes = {info.filename: info.external_attr >> 16 for info in zf.infolist()}
        toml = zf.read("assignment/assignment.toml").decode()
        constraints = zf.read("constraints.txt").decode().split()
        template = zf.read("assignment/public/mnist_homework.ipynb")
    assert names == sorted(names)
    assert stat.S_IMODE(modes["setup.sh"]) == 0o755 and stat.S_IMODE(modes["run_autograder"]) == 0o755
    # the one notebook is the student template, byte for byte: what every student is handed
    assert [n for n in names if n.endswith(".ipynb")] == ["assignment/public/mnist_homework.ipynb"]
    assert template == (small_assignment.student_dir / "mnist_homework.ipynb").read_bytes()
    assert not [n for n in names if "reference_solutions" in n or "generated" in n or "reference_models" in n]
    assert "assignment/hidden/evaluation_seed.txt" in names and "mnist/mnist.npz" in names
    assert "assignment/public/tests/q1.py" in names and "project/autograder/pipeline/grade_one.py" in names
    assert 'student_dir = "public"' in toml and "reference_solutions" not in toml
    assert any(line.startswith(("tensorflow-cpu==", "tensorflow==")) for line in constraints)


def test_packaging_warns_of_the_demo_seed_and_leaves_out_the_reference_models(repo, tmp_path, capsys):
    from autograder.cli import main

    out = tmp_path / "autograder.zip"
    assert main(["gradescope", str(repo / "assignments" / "mnist"), "--out", str(out), "--download-mnist"]) == 0
    assert "packaging for Gradescope with the public demo seed" in capsys.readouterr().err
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
    assert (repo / "assignments" / "mnist" / "reference_models").is_dir()  # in the folder, not in the zip
    assert not [n for n in names if "reference_models" in n]
    assert "assignment/calibration.json" in names and "assignment/hidden/model_tests.py" in names


def test_packaging_refuses_an_assignment_without_its_student_template(small_assignment, tmp_path, capsys):
    """The report checks subtract the template's text: a package without it would score differently."""
    from autograder.cli import main

    root = tmp_path / "mnist"
    shutil.copytree(small_assignment.root, root)
    toml = (root / "assignment.toml").read_text()
    (root / "assignment.toml").write_text(re.sub(r'(?m)^student_dir = .*$', 'student_dir = "nowhere"', toml))
    out = tmp_path / "autograder.zip"
    assert main(["gradescope", str(root), "--out", str(out), "--download-mnist"]) == 2
    err = capsys.readouterr().err
    assert "cannot read the student template" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def gradescope_tree(package: Path, root: Path) -> Path:
    """``root`` shaped as Gradescope leaves it: the package unpacked in ``source``, one small notebook submitted."""
    with zipfile.ZipFile(package) as zf:
        zf.extractall(root / "source")
    (root / "submission").mkdir()
    notebooks.write(notebooks.homework(("mlp",)), root / "submission" / "mnist_homework.ipynb")
    return root


def test_a_package_without_the_template_grades_nothing_and_says_why(package, tmp_path, monkeypatch, capsys):
    """Inside Gradescope, a missing input is a failure the instructor sees, never a score (and nothing runs):
    no results.json, so Gradescope says the autograder failed and records no grade."""
    root = gradescope_tree(package, tmp_path / "autograder")
    (root / "source" / "assignment" / "public" / "mnist_homework.ipynb").unlink()
    monkeypatch.setenv("AUTOGRADER_MNIST_DIR", os.environ.get("AUTOGRADER_MNIST_DIR", ""))  # grading sets it
    assert entry_point.main(["--root", str(root)]) == 1
    assert "not graded" in (out := capsys.readouterr().out) and "cannot read the student template" in out
    assert (root / "results").is_dir() and not (root / "results" / "results.json").exists()


def test_a_grader_fault_on_a_submission_is_no_score_on_gradescope(package, tmp_path, monkeypatch, capsys):
    """The grader failing on a submission (status error, grader_error) is never exported as a 0: no
    results.json (Gradescope then shows "autograder failed" with no score), the fault on the instructor's log."""
    import autograder.pipeline.grade_one as grade

    def broken_phase_a(*args, **kwargs):
        raise RuntimeError("zmq: file name too long")

    root = gradescope_tree(package, tmp_path / "autograder")
    (root / "results").mkdir()
    (root / "results" / "results.json").write_text('{"score": 0.0, "tests": []}')  # not this run's
    monkeypatch.setenv("AUTOGRADER_MNIST_DIR", os.environ.get("AUTOGRADER_MNIST_DIR", ""))
    monkeypatch.setattr(grade, "run_phase_a", broken_phase_a)
    assert entry_point.main(["--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "not graded" in out and "grader error in the run or reading its export" in out and "file name too long" in out
    assert not (root / "results" / "results.json").exists()


def template_homework() -> nbformat.NotebookNode:
    """A small homework as a student hands it in: the template's own instructions around their code and a
    report without insights (the report checks must leave the instructions out wherever it is graded)."""
    template = nbformat.read(REPO / "student_template" / "mnist_homework.ipynb", as_version=4)
    instructions = [cell for cell in template.cells if cell.cell_type == "markdown"]
    report = next(i for i, cell in enumerate(instructions) if cell.source.startswith("_Replace this text"))
    work = notebooks.homework(("mlp",), report=False)
    text = notebooks.REPORT.split("## Insights")[0].format(rows="| MLP | 0.9 | 50890 | 3 |")
    work.cells = (instructions[:report] + work.cells[1:] + [nbformat.v4.new_markdown_cell(text)]
                  + instructions[report + 1:])
    return work


@pytest.fixture(scope="module")
def graded_here(package, submitted, tmp_path_factory) -> Path:
    """The homework the bubblewrap run grades (``template_homework`` with the hostile cell), byte for byte,
    graded by ``grade-one`` with the folder the package was built from."""
    from autograder.pipeline.grade_one import grade_one

    where = tmp_path_factory.mktemp("graded-here")
    notebook = where / "mnist_homework.ipynb"
    shutil.copy(submitted[0] / "submission" / UPLOADED, notebook)
    grade_one(notebook, load_assignment(package.parent / "mnist"), where / "graded")
    return where / "graded"


def check_scores(result: dict) -> dict[str, float]:
    return {f"{q['id']} {c['name']}": c["score"] for q in result["questions"] for c in q["checks"]}


@pytest.mark.slow
def test_the_packages_assignment_scores_stored_evidence_as_the_source_does(package, graded_here, tmp_path):
    """The same evidence regraded with the zip's assignment folder and with the folder it was built from:
    every check scores the same, to the last digit (the template's instructions are no report text)."""
    from autograder.pipeline.grade_one import regrade

    with zipfile.ZipFile(package) as zf:
        zf.extractall(tmp_path / "unpacked")
    scores = {}
    for name, folder in (("zip", tmp_path / "unpacked" / "assignment"), ("source", package.parent / "mnist")):
        shutil.copytree(graded_here, tmp_path / name)
        scores[name] = check_scores(regrade(tmp_path / name / "result.json", tmp_path / name / "artifacts",
                                            load_assignment(folder)))
    graded = json.loads((graded_here / "result.json").read_text())
    assert graded["status"] == "graded" and 0 < graded["score"] < graded["max_score"]
    assert scores["zip"] == scores["source"] == check_scores(graded)


def traversable_dir() -> Path:
    """A directory every uid can traverse, as / is for /autograder (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="agx-gradescope-test-", dir="/tmp"))
    path.chmod(0o755)
    return path


@pytest.fixture
def where():
    path = traversable_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


#: The homework's name in the bubblewrap run's upload: as a re-upload is named, beside a scratch notebook.
UPLOADED = "MNIST-Homework-1.ipynb"


@pytest.fixture(scope="module")
def submitted(package):
    """/autograder for the bubblewrap run, with its drop and canary dirs: the hostile homework uploaded as
    ``UPLOADED`` beside a scratch notebook (intake must pick the one named like the template). One run
    serves both the containment test and the comparison with ``grade-one``."""
    path = traversable_dir()
    root, drop, canary = gradescope_root(package, path, UPLOADED)
    notebooks.write(notebooks.homework(("mlp",), report=False), root / "submission" / "scratch.ipynb")
    yield root, drop, canary
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def bubblewrap_run(submitted) -> dict:
    """``submitted`` graded by Gradescope's ``run_autograder`` with bubblewrap: its results.json."""
    if shutil.which("bwrap") is None or os.geteuid() != 0:
        pytest.skip("needs root and bubblewrap")
    return run_autograder(submitted[0], os.environ["PATH"])


def unpacked(package: Path, where: Path) -> Path:
    """/autograder as Gradescope lays it out before a submission arrives: the package in source/, its
    run_autograder beside it, an empty submission/."""
    root = where / "autograder"
    with zipfile.ZipFile(package) as zf:
        zf.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    (root / "submission").mkdir()
    return root


def gradescope_root(package: Path, where: Path, name: str = "mnist_homework.ipynb") -> tuple[Path, Path, Path]:
    """/autograder as Gradescope lays it out, with the submission (``template_homework`` and the hostile
    cell, as ``name``); plus the drop and canary dirs."""
    root = unpacked(package, where)
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"name": "Ada", "email": "a@x"}]}))
    drop, canary = where / "drop", where / "canary"
    drop.mkdir(), canary.mkdir()
    drop.chmod(0o1777)
    nb = template_homework()
    nb.cells.append(nbformat.v4.new_code_cell(hostile_cell(root, drop, canary, tmp_marker(where))))
    notebooks.write(nb, root / "submission" / name)
    return root, drop, canary


def tmp_marker(where: Path) -> Path:
    return Path("/tmp") / f"{where.name}-marker"


def path_without_bwrap(where: Path) -> str:
    """A PATH with every tool of /usr/bin and /bin except bubblewrap: namespaces unavailable."""
    tools = where / "bin"
    tools.mkdir()
    for folder in (Path("/usr/bin"), Path("/bin")):
        for tool in folder.iterdir():
            if tool.name != "bwrap" and not (tools / tool.name).exists():
                (tools / tool.name).symlink_to(tool)
    return str(tools)


def python_reachable(command: list[str], where: Path) -> list[str]:
    """``command`` where other uids can run this Python, as in a container (Python in /usr or /usr/local).

    Here the interpreter may live under /root (closed to other users): the grader then runs in a private
    mount namespace whose /root is an open directory holding only the directory that leads to Python.
    Student code still gets no namespace of its own: the level under test is unchanged.
    """
    python = Path(sys.executable).resolve()
    if isolation.readable_by_others(python):
        return command
    closed = next(p for p in reversed(python.parents) if not p.stat().st_mode & stat.S_IXOTH)
    inside = python.relative_to(closed).parts[0]
    stand_in = where / "open-root"
    (stand_in / inside).mkdir(parents=True)
    stand_in.chmod(0o755)
    script = (f'mount --bind "{closed / inside}" "{stand_in / inside}" && mount --rbind "{stand_in}" "{closed}" '
              '&& exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *command]


def run_autograder(root: Path, path: str, command: list[str] | None = None) -> dict:
    env = dict(os.environ, PATH=path, AUTOGRADER_GRADESCOPE_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    env.pop("AUTOGRADER_MNIST_DIR", None)  # the package's own MNIST, as on Gradescope
    done = subprocess.run(command or [str(root / "run_autograder")], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=2400)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((root / "results" / "results.json").read_text())


def assert_graded_and_contained(results: dict, drop: Path, canary: Path, level: str) -> None:
    """Graded, schema-valid, and no attack succeeded; the drop dir shows the hostile cell ran to its end
    at the container level (bubblewrap never shows the drop dir to the notebook at all)."""
    jsonschema.validate(results, GRADESCOPE_SCHEMA)
    assert results["extra_data"]["isolation"] == level
    assert results["extra_data"]["status"] == "graded"
    tests = {t["name"].split(": ")[-1]: t for t in results["tests"]}
    assert tests["mlp_architecture"]["score"] == tests["mlp_architecture"]["max_score"] > 0
    assert tests["mlp_accuracy"]["visibility"] == "after_published"
    assert tests["mlp_architecture"]["visibility"] == "visible"
    assert tests["cnn_architecture"]["score"] == 0
    hidden = {t["name"]: t for t in results["tests"] if t["max_score"] == 0}
    assert hidden["Integrity review"]["visibility"] == "after_published"
    assert "mlp:" in hidden["Accuracy evidence (measured by the grader)"]["output"]
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))
    ran = [] if level == isolation.BUBBLEWRAP else ["RAN"]
    assert sorted(p.name for p in drop.iterdir()) == ran  # nothing secret read, nothing forged
    assert list(canary.iterdir()) == []
    leftovers = [p.info["pid"] for p in psutil.process_iter(["pid", "cmdline"])
                 if DAEMON_SECONDS in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []
    assert not tmp_marker(drop.parent).exists()


@pytest.mark.slow
def test_run_autograder_with_bubblewrap(submitted, bubblewrap_run):
    _, drop, canary = submitted
    assert_graded_and_contained(bubblewrap_run, drop, canary, isolation.BUBBLEWRAP)
    SCORES[isolation.BUBBLEWRAP] = bubblewrap_run["score"]


@pytest.mark.slow
def test_run_autograder_without_namespaces_uses_separate_uids(package, where):
    if os.geteuid() != 0:
        pytest.skip("the container-uid level needs root")
    root, drop, canary = gradescope_root(package, where)
    results = run_autograder(root, path_without_bwrap(where),
                             python_reachable([str(root / "run_autograder")], where))
    assert_graded_and_contained(results, drop, canary, isolation.CONTAINER_UID)
    assert stat.S_IMODE((root / "source").stat().st_mode) == 0o700
    if isolation.BUBBLEWRAP in SCORES:  # same notebook, same scores, whichever level contained it
        assert results["score"] == SCORES[isolation.BUBBLEWRAP]


@pytest.mark.slow
def test_run_autograder_scores_like_grade_one(graded_here, bubblewrap_run):
    """The same notebook through Gradescope's entry point and through ``grade-one``: the same score for
    every check, to the last digit, and the same notebook picked among two uploads (the one named like
    the template, as intake picks it for a local batch; the scratch notebook has no report)."""
    results = bubblewrap_run
    here = json.loads((graded_here / "result.json").read_text())
    assert results["extra_data"]["isolation"] == here["isolation"] == isolation.BUBBLEWRAP
    there = [(t["name"].split(" ", 1)[0], t["name"].rsplit(": ", 1)[1], t["score"]) for t in results["tests"]
             if t["max_score"] > 0]
    assert there == [(*check.split(" "), score) for check, score in check_scores(here).items()]
    assert results["score"] == here["score"]


def test_without_root_and_without_namespaces_the_grader_refuses(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("drops to another uid to show the refusal")
    code = ("from autograder.run import isolation\nfrom autograder.run.sandbox.spec import SandboxUnavailable\n"
            "try:\n    isolation.choose()\nexcept SandboxUnavailable as exc:\n    print('REFUSED', exc)\n")
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
                          cwd=REPO, env=dict(os.environ, PATH=path_without_bwrap(tmp_path)),
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("REFUSED"), done.stdout + done.stderr
    assert "needs root" in done.stdout and "not running as root" in done.stdout


def test_the_exports_own_errors_reach_the_instructor_only_data():
    from autograder.output.gradescope import results_json
    from result_fixtures import fixture_result

    result = fixture_result("a002-partial")
    gradescope = results_json(result)
    assert gradescope["extra_data"]["export_errors"] == result["export_errors"] != []
    assert not any("confusion_pct" in str(test["output"]) for test in gradescope["tests"])  # students never see it


@pytest.mark.parametrize("names, reason", [([], "no_notebook"), (["a.ipynb", "b.ipynb"], "multiple_notebooks"),
                                           (["mnist_homework.ipynb", "MNIST-Homework-1.ipynb"], "multiple_notebooks")])
def test_gradescope_chooses_the_notebook_by_the_batch_s_rule(small_assignment, tmp_path, names, reason):
    """No single notebook to grade (none, or several with no single one named like the template) is a
    rejection with its reason, as in a batch, and nothing runs."""
    (tmp_path / "submission").mkdir()
    for name in names:
        nbformat.write(nbformat.v4.new_notebook(), tmp_path / "submission" / name)
    result = entry_point.grade_notebook(tmp_path, small_assignment)
    assert (result["status"], result["reason"], result["score"]) == ("rejected", reason, 0.0)
