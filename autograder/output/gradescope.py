"""Gradescope: build an autograder package (``autograder gradescope``), and grade inside it.

The zip holds ``setup.sh`` (run once when Gradescope builds the image: Python, bubblewrap, this
project at this exact version with its dependencies pinned to the versions it was calibrated with,
MNIST verified), ``run_autograder`` (run per submission: ``python -m autograder.output.gradescope``), the
project's source and the hidden bundle: everything a score reads (assignment config, calibration, hidden
tests, evaluation seed, public tests, the student template whose instructions the report checks leave
out), so a submission scores there what ``grade-one`` gives it. The reference solution is never shipped:
the master notebook, ``reference_solutions/`` and the otter-generated copies under ``hidden/generated``
stay out, as do the reference models (grading never reads them). Gradescope unpacks the zip into
``/autograder/source``; the grader makes it readable by root only before any student code runs.

Grading goes through the same pipeline as ``grade-one`` (intake, sandboxed run, export, predictions,
hidden tests); the result becomes Gradescope's ``results.json``: one test per check (name, points,
student-facing message), accuracy checks, the accuracy evidence and the integrity review visible only
once the instructor publishes grades. Lateness is Gradescope's to apply. When no grade can be computed
(:class:`NotGraded`) no ``results.json`` is written: Gradescope then records no score, never a 0.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import stat
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

import autograder
from autograder.assignment import Assignment, AssignmentError, load_assignment
from autograder.author.term import REFERENCE_MODELS
from autograder.data import ENV_VAR, KNOWN_SHA256, keras_cache_source
from autograder.intake.notebook import find_notebooks
from autograder.intake.submissions import named_like
from autograder.output.student_text import plain_text
from autograder.results import REASONS, atomic_write_text
from autograder.run import isolation
from autograder.run.sandbox.spec import SandboxUnavailable

ROOT_ENV = "AUTOGRADER_GRADESCOPE_ROOT"  # tests point the grader at a Gradescope-shaped temporary tree
PYTHON_ENV = "AUTOGRADER_PYTHON"
VENV = "/usr/local/autograder"  # where setup.sh installs the project
DISTRIBUTION = "mnist-autograder"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every entry's timestamp: the same input gives the same bytes
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
PUBLISHED = "after_published"
BUILD_TOOLS = {"pip", "setuptools", "wheel"}  # pinned, they would fight the build's own requirements

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (network available).
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip bubblewrap util-linux ca-certificates curl
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {{
    echo "setup.sh: Python >= 3.11 is needed; choose the Ubuntu 24.04 base image in the autograder settings" >&2
    exit 1; }}
python3 -m venv {venv}
{venv}/bin/pip install --no-cache-dir -c constraints.txt ./project
mkdir -p mnist
if [ ! -f mnist/mnist.npz ]; then  # not bundled: fetch it now, never at grading time
    curl -fsSL -o mnist/mnist.npz {url}
fi
echo "{sha256}  mnist/mnist.npz" | sha256sum -c -
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this per submission, as root; results go to $ROOT/results/results.json.
set -euo pipefail
ROOT="${{{root_env}:-/autograder}}"
PYTHON="${{{python_env}:-{venv}/bin/python}}"
exec "$PYTHON" -m autograder.output.gradescope --root "$ROOT"
"""


# --- building the package ----------------------------------------------------------------------------

def pinned_requirements(distribution: str = DISTRIBUTION) -> list[str]:
    """``name==version`` for every installed dependency of ``distribution``, transitively (sorted).

    Gradescope then grades with the TensorFlow/Keras the thresholds were calibrated with.
    """
    pins: dict[str, str] = {}
    pending = [Requirement(r) for r in importlib.metadata.requires(distribution) or []]
    while pending:
        req = pending.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = req.name.lower().replace("_", "-")
        if name in pins or name in BUILD_TOOLS:
            continue
        try:
            pins[name] = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            continue
        pending += [Requirement(r) for r in importlib.metadata.requires(req.name) or []]
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def project_files() -> dict[str, Path]:
    """The project's source (``project/...`` in the zip), without the reference solutions."""
    checkout = Path(autograder.__file__).resolve().parents[1]
    files = {f"project/{name}": checkout / name for name in ("pyproject.toml", "README.md")}
    for name, path in files.items():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: `autograder gradescope` packs the project from a source checkout")
    package = checkout / "autograder"
    for path in package.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files[f"project/autograder/{path.relative_to(package).as_posix()}"] = path
    return files


def bundle_toml(assignment: Assignment) -> str:
    """assignment.toml as shipped: public tests beside it, no path to the master notebook (the solution)."""
    text = (assignment.root / "assignment.toml").read_text(encoding="utf-8")
    text = re.sub(r'(?m)^master_notebook = .*$', 'master_notebook = "not-shipped.ipynb"', text)
    return re.sub(r'(?m)^student_dir = .*$', 'student_dir = "public"', text)


def assignment_files(assignment: Assignment) -> dict[str, Path]:
    """The hidden bundle (``assignment/...``): what grading reads, nothing that holds a solution, and not the
    reference models (calibration's and new-term's input, never grading's)."""
    files: dict[str, Path] = {}
    for path in sorted(assignment.root.rglob("*")):
        relative = path.relative_to(assignment.root)
        if (path.is_file() and relative.as_posix() != "assignment.toml"
                and not {"generated", "__pycache__", REFERENCE_MODELS} & set(relative.parts)):
            files[f"assignment/{relative.as_posix()}"] = path
    public = assignment.student_dir / "tests"
    if not public.is_dir():
        raise AssignmentError(f"assignment.student_dir: no public tests in {public} (run `autograder assign`)")
    for path in sorted(public.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            files[f"assignment/public/tests/{path.relative_to(public).as_posix()}"] = path
    return files


def package_entries(assignment: Assignment, *, bundle_mnist: bool = True) -> dict[str, tuple[bytes, int]]:
    """Every entry of the zip: name -> (bytes, permission bits)."""
    texts = {
        "setup.sh": SETUP_SH.format(venv=VENV, url=MNIST_URL, sha256=KNOWN_SHA256["mnist.npz"]),
        "run_autograder": RUN_AUTOGRADER.format(root_env=ROOT_ENV, python_env=PYTHON_ENV, venv=VENV),
        "constraints.txt": "\n".join(pinned_requirements()) + "\n",
        "assignment/assignment.toml": bundle_toml(assignment),
        # the report checks leave out the template's own text: without it, its instructions would score
        f"assignment/public/{assignment.student_notebook}": assignment.student_template(),
    }
    entries = {name: (text.encode(), 0o755 if name in ("setup.sh", "run_autograder") else 0o644)
               for name, text in texts.items()}
    files = {**project_files(), **assignment_files(assignment)}
    if bundle_mnist:
        files["mnist/mnist.npz"] = keras_cache_source()  # verified against the original's SHA-256
    for name, path in files.items():
        entries[name] = (path.read_bytes(), 0o644)
    return entries


def write_zip(entries: dict[str, tuple[bytes, int]], out: Path) -> None:
    """Sorted entries, fixed timestamps and modes: byte-identical for the same entries."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name in sorted(entries):
            data, mode = entries[name]
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the modes below are kept
            info.external_attr = (stat.S_IFREG | mode) << 16
            zf.writestr(info, data)
    os.replace(tmp, out)


# --- grading inside Gradescope ------------------------------------------------------------------------

def check_visibility(check_name: str) -> str:
    """Accuracy checks carry the measured accuracy: shown once grades are published."""
    return PUBLISHED if check_name.endswith("_accuracy") else "visible"


def evidence_output(result: dict[str, Any]) -> str:
    lines = []
    for arch, model in sorted((result.get("models") or {}).items()):
        if model.get("accuracy") is None:
            lines.append(f"{arch}: not measured ({plain_text(model.get('error') or 'no model found', 300)})")
        else:
            lines.append(f"{arch}: {model['accuracy']:.4f} on the grader's hidden images (full credit at "
                         f"{model['threshold_full']:.4f}, none at {model['threshold_zero']:.4f})")
    return "\n".join(lines) or "No model was measured."


def integrity_output(result: dict[str, Any]) -> str:
    lines = [f"{item.get('question', '')} {item.get('check', '')}: {plain_text(item.get('reason'), 500)}".strip()
             for item in result.get("review") or []]
    for arch, rules in sorted((result.get("integrity") or {}).items()):
        for name, finding in sorted((rules or {}).items()):
            if finding.get("passed") is False:  # passed None: not measurable, already a review item
                lines.append(f"{arch} {name}: {plain_text(finding.get('message'), 500)}")
    return "\n".join(lines) or "No integrity flag and nothing to review."


def results_json(result: dict[str, Any]) -> dict[str, Any]:
    """Gradescope's results.json for one graded submission (the documented fields only)."""
    tests = []
    for qi, question in enumerate(result.get("questions") or [], start=1):
        for ci, check in enumerate(question.get("checks") or [], start=1):
            tests.append({
                "name": f"{question['id']} {plain_text(question.get('title'), 200)}: {check['name']}",
                "number": f"{qi}.{ci}", "score": float(check["score"]), "max_score": float(check["max_score"]),
                "status": "passed" if check.get("passed") else "failed",
                "output": plain_text(check.get("message")), "visibility": check_visibility(check["name"])})
    extra = len(tests)
    tests.append({"name": "Accuracy evidence (measured by the grader)", "number": f"{extra + 1}",
                  "score": 0.0, "max_score": 0.0, "output": evidence_output(result), "visibility": PUBLISHED})
    tests.append({"name": "Integrity review", "number": f"{extra + 2}", "score": 0.0, "max_score": 0.0,
                  "output": integrity_output(result), "visibility": PUBLISHED})
    return {"score": float(result["score"]), "output": plain_text(result.get("message")),
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests,
            "extra_data": {"status": result.get("status"), "reason": result.get("reason"),
                           "isolation": result.get("isolation"), "notes": result.get("notes") or [],
                           "export_errors": result.get("export_errors") or []}}


class NotGraded(Exception):
    """No grade could be computed: the set-up is broken or the grader failed on this submission, neither the
    student's doing. ``results.json`` is then not written: Gradescope shows the submission as "The autograder
    failed to execute correctly", with no score (never a 0), and the instructor can re-run it."""


def lock_down(root: Path) -> None:
    """Before any student code runs: the bundle, the metadata (names, e-mails, earlier results) and the
    results are root's alone, whatever isolation level is used."""
    for path in (root / "source", root / "results", root / "submission_metadata.json"):
        if path.exists():
            path.chmod(0o700 if path.is_dir() else 0o600)


def grade_submission(root: Path) -> dict[str, Any]:
    """Grade ``root/submission``'s notebook and write ``root/results/results.json``.

    Raises :class:`NotGraded` (and leaves no ``results.json``) when no grade could be computed.
    """
    results = root / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.unlink(missing_ok=True)  # an earlier run's file would be read as this run's grade
    lock_down(root)
    os.environ[ENV_VAR] = str(root / "source" / "mnist")
    try:
        result = grade_notebook(root, load_assignment(root / "source" / "assignment"))
    except SandboxUnavailable as exc:
        raise NotGraded(f"The grading sandbox could not be started: {exc}") from None
    except AssignmentError as exc:  # the package lacks something a score reads: no grade, never a wrong one
        raise NotGraded(f"The autograder package is incomplete: {exc}") from None
    if result.get("status") == "error":
        raise NotGraded("; ".join(["The grader failed on this submission", *(result.get("notes") or [])]))
    gradescope = results_json(result)
    atomic_write_text(results, json.dumps(gradescope, indent=2) + "\n")
    return gradescope


def grade_notebook(root: Path, assignment: Assignment) -> dict[str, Any]:
    """The result of ``root/submission``'s notebook (the one named like the template, if there are several)."""
    from autograder.pipeline.grade_one import base_result, grade_into, rejected_result

    submission = root / "submission"
    notebooks = find_notebooks(submission) if submission.is_dir() else []
    named = [nb for nb in notebooks if named_like(nb.name, assignment.student_notebook)]
    notebooks = named or notebooks
    # Results and artifacts stay root's; the jobs' directory must be traversable by the sandbox uids.
    with tempfile.TemporaryDirectory(prefix="autograder-gradescope-") as private, \
            tempfile.TemporaryDirectory(prefix="autograder-gradescope-jobs-") as jobs:
        Path(jobs).chmod(0o711)
        if len(notebooks) != 1:
            reason = "no_notebook" if not notebooks else "multiple_notebooks"
            return rejected_result(base_result(submission, assignment, None, None, True), assignment, reason,
                                   REASONS[reason])
        return grade_into(notebooks[0], assignment, Path(private) / "result.json", Path(private) / "artifacts",
                          work_root=jobs)


def main(argv: list[str] | None = None) -> int:
    """``run_autograder``'s entry point."""
    parser = argparse.ArgumentParser(prog="python -m autograder.output.gradescope")
    parser.add_argument("--root", type=Path, default=Path(os.environ.get(ROOT_ENV, "/autograder")))
    args = parser.parse_args(argv)
    try:
        gradescope = grade_submission(args.root)
    except NotGraded as exc:  # stdout is shown to the instructor only
        print(f"not graded (no results.json, so Gradescope records no score; re-run it once fixed): {exc}")
        return 1
    levels = {isolation.BUBBLEWRAP: "bubblewrap namespaces", isolation.CONTAINER_UID: "separate uid, no namespaces"}
    isolation_level = gradescope["extra_data"].get("isolation")
    # stdout is shown to the instructor only (stdout_visibility: hidden)
    print(f"score {gradescope['score']:g}; status {gradescope['extra_data']['status']}; "
          f"isolation: {levels.get(isolation_level, isolation_level)}")
    for note in gradescope["extra_data"].get("notes") or []:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
