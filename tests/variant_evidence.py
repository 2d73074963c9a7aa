"""The variant corpus's executed evidence, kept as a golden file (issue 25): executed once, scored often.

Executing the corpus's notebooks (Phase A) is most of the suite's time, yet a change to scoring, the report
checks or the gradebook never changes what they produce. So each variant's evidence is kept under
``tests/fixtures/variants/evidence/<variant>/`` with the key it was produced under: the evidence key of the
corpus's test assignment (:meth:`Assignment.evidence_key`: the code that runs and exports a notebook, the
evaluation settings and seed, the TensorFlow/Keras versions), the notebook's bytes and the batch's job count.
When it matches, the corpus test re-scores the stored evidence with today's scoring code
(:func:`autograder.pipeline.batch.regrade_all`), which executes nothing; when it does not, that variant is
executed for real and the test says why in one line.

Each stored variant holds what ``regrade`` reads, as the grader wrote it: ``result.json`` and, under
``artifacts/``, the evidence (JSON, and the predicted classes as a small .npz), the printed numbers, the
sanitized submission and the assignment's evidence key; beside them ``evidence_key.json``, the variant's key.

    python -m tests.variant_evidence check     # exit 1 and one line when any stored evidence is not current
    python -m tests.variant_evidence refresh   # execute what is not current, store it, drop removed variants

(``make refresh-evidence`` runs the second; ``.ci/run`` runs the full lane when the first fails.)

The other expensive end-to-end fixtures that only feed scoring (:data:`FIXTURES`: one notebook each, built by
its test module and graded by ``grade_one``) are kept the same way under ``tests/fixtures/evidence/<fixture>/``
(:func:`graded_fixture`), with the executed notebook too; their key also holds what grading computes and
``regrade`` does not compute again (:data:`NOT_RESCORED`). ``check`` and ``refresh`` cover them as well.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import re
import shutil
import sys
import tempfile
import tomllib
import warnings
from pathlib import Path

import nbformat

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
if str(TESTS) not in sys.path:  # run as `python -m tests.variant_evidence` too
    sys.path.insert(0, str(TESTS))

from autograder.assignment import (GRADER_ROOT, Assignment, Key, grader_files, load_assignment,  # noqa: E402
                                   save_evidence_key, stored_evidence_key)
from autograder.intake.notebook import PRINTED_FILE  # noqa: E402
from autograder.output.store import Store  # noqa: E402
from autograder.pipeline.batch import RETRIED_STOPS, grade_batch, regrade_all  # noqa: E402
from autograder.pipeline.grade_one import grade_into, regrade  # noqa: E402
from autograder.results import read_result  # noqa: E402
from autograder.score.artifacts import EVIDENCE_ARRAYS, EVIDENCE_JSON  # noqa: E402
from notebooks import SMALL_CALIBRATION  # noqa: E402

VARIANTS_DIR = TESTS / "fixtures" / "variants"
STORE = VARIANTS_DIR / "evidence"
KEY = tomllib.loads((VARIANTS_DIR / "ranges.toml").read_text())
VARIANTS: dict[str, dict] = KEY["variants"]
VARIANT_JOBS, VARIANT_THREADS = 2, 1  # the corpus's batch: two notebooks at once, one thread each
#: What ``regrade`` reads from a result's artifacts (and the key they were produced under); the executed
#: notebook and the logs are not kept.
SCORED_FILES = (EVIDENCE_JSON, EVIDENCE_ARRAYS, PRINTED_FILE, "submission.ipynb", "evidence_key.json")
RESULT_FILE = "result.json"
#: Set to 1 (``make test-full``) to execute every variant whatever is stored.
FULL_ENV = "AUTOGRADER_FULL"


def full_lane() -> bool:
    return os.environ.get(FULL_ENV, "") not in ("", "0")


# --- the corpus's assignment ------------------------------------------------------------------------

def small_assignment(where: Path) -> Assignment:
    """The real MNIST assignment with test-sized thresholds, hidden set and budgets.

    Same questions, hidden tests and rubric; only calibration.json (thresholds for slice-trained models),
    the hidden set size (1,000) and the budgets (5 minutes, 2 GiB) differ, so sandboxed runs stay short.
    """
    root = where / "mnist"
    shutil.copytree(REPO / "assignments" / "mnist", root, ignore=shutil.ignore_patterns("generated"))
    (root / "calibration.json").write_text(json.dumps(SMALL_CALIBRATION))
    toml = (root / "assignment.toml").read_text()
    toml = toml.replace('"../../', f'"{REPO}/')
    # 300 s: a one-epoch notebook needs about 60 s alone, but several times that on the shared 2-core
    # machine under load (its setup cell alone took 80 s), and predictions share the same budget.
    for key, value in {"size": "1000", "wall_budget_seconds": "300", "cell_timeout_seconds": "240",
                       "memory_mb": "2048"}.items():
        toml = re.sub(rf"(?m)^{key} = \S+", f"{key} = {value}", toml)
    (root / "assignment.toml").write_text(toml)
    return load_assignment(root)


def variant_assignment(small: Assignment, where: Path) -> Assignment:
    """The small test assignment with the thresholds the key assumes and budgets for a 5-model notebook.

    Only what sets the thresholds (the calibrated minimum accuracy on the evaluation images, and the span
    from full to zero credit), the execution budgets and the thread count change; everything else stays as it is.
    """
    root = where / "mnist"
    shutil.copytree(small.root, root)
    calibration = json.loads((root / "calibration.json").read_text())
    for arch, threshold in KEY["thresholds"].items():
        figures = calibration["architectures"][arch]["eval_accuracy"]
        figures["min"] = round(threshold["full"] + small.threshold_margin, 4)
    (root / "calibration.json").write_text(json.dumps(calibration))
    spans = {round(t["full"] - t["zero"], 4) for t in KEY["thresholds"].values()}
    assert len(spans) == 1, "the key's thresholds need one span (full - zero) for all architectures"
    toml = (root / "assignment.toml").read_text()
    # One thread per notebook for the batch's two jobs: threads x jobs = the machine's two cores, the rule
    # `grade` itself picks jobs by (22 variants: 852 s instead of 986 s with two threads each).
    for key, value in {"wall_budget_seconds": "600", "cell_timeout_seconds": "420", "memory_mb": "3072",
                       "threads": str(VARIANT_THREADS), "span": str(spans.pop())}.items():
        toml, count = re.subn(rf"(?m)^{key} = \S+", f"{key} = {value}", toml)
        assert count == 1, key
    (root / "assignment.toml").write_text(toml)
    assignment = load_assignment(root)
    for arch, threshold in assignment.thresholds().items():
        expected = KEY["thresholds"][arch]
        assert abs(threshold.full - expected["full"]) < 1e-6 and abs(threshold.zero - expected["zero"]) < 1e-6, arch
    return assignment


# --- keys -------------------------------------------------------------------------------------------

def variant_key(name: str, assignment: Assignment) -> Key:
    """What produced a variant's evidence: the assignment's evidence key, the notebook's bytes, the batch's jobs."""
    return Key.of({**assignment.evidence_key().parts, "notebook": digest((VARIANTS_DIR / f"{name}.ipynb").read_bytes()),
                   "jobs": str(VARIANT_JOBS)})


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def stale_variants(names: list[str], assignment: Assignment) -> dict[str, list[str]]:
    """Variant -> what changed since its evidence was stored (in words), for every one that must execute."""
    stale = {}
    for name in names:
        stored = stored_evidence_key(STORE / name)
        current = variant_key(name, assignment)
        if stored is None or not (STORE / name / RESULT_FILE).is_file():
            stale[name] = ["no stored evidence"]
        elif stored.sha256 != current.sha256:
            stale[name] = current.changes_since(stored.parts) or ["the key"]
    return stale


def stale_line(stale: dict[str, list[str]], total: int) -> str:
    """One line: how many variants execute for real, and what changed."""
    changes = sorted({change for changed in stale.values() for change in changed})
    shown = ", ".join(changes[:4]) + (", ..." if len(changes) > 4 else "")
    return (f"variant corpus: stored evidence of {len(stale)} of {total} variants is not current ({shown}): "
            f"executing them (`make refresh-evidence` stores them)")


def removed_variants() -> list[str]:
    """Stored evidence of variants the corpus no longer has."""
    return sorted(path.name for path in STORE.iterdir() if path.is_dir() and path.name not in VARIANTS) \
        if STORE.is_dir() else []


# --- scoring and executing --------------------------------------------------------------------------

def score_stored(names: list[str], assignment: Assignment, out: Path) -> dict[str, dict]:
    """Copy the stored evidence of ``names`` into a RESULTS folder at ``out`` and re-score it with today's
    scoring code (``regrade_all``: nothing executes); variant -> result."""
    store = Store(out)
    for name in names:  # the variant's name is its key (any folder name will do for re-scoring)
        store.result(name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(STORE / name / RESULT_FILE, store.result(name))
        shutil.copytree(STORE / name / "artifacts", store.artifacts(name))
    report = regrade_all(out, assignment)
    assert not report.not_rescored and not report.passed_over, report.passed_over
    return results_by_variant(out)


def execute(names: list[str], assignment: Assignment, out: Path) -> dict[str, dict]:
    """Grade ``names`` for real in one sandboxed batch of two workers; variant -> result."""
    submissions = out.parent / f"{out.name}-submissions"
    submissions.mkdir(parents=True)
    for name in names:
        shutil.copy(VARIANTS_DIR / f"{name}.ipynb", submissions / f"{name}.ipynb")
    grade_batch(submissions, assignment.root, out, jobs=VARIANT_JOBS, progress=False)
    return results_by_variant(out)


def results_by_variant(out: Path) -> dict[str, dict]:
    results = [read_result(path) for path in (out / "results").glob("*.json")]
    return {result["submission"]["student_id"]: result for result in results}


def store_evidence(out: Path, assignment: Assignment) -> list[str]:
    """Keep each executed variant's result and scored artifacts from the RESULTS folder ``out`` (as the
    grader wrote them); returns the variants stored. A result the machine decided (the grader failed, or a
    stop that ``--retry-failed`` would re-run: a busy machine's budget, memory) is not evidence of the
    notebook and is not kept."""
    store = Store(out)
    stored = []
    for key in store.keys():
        result = read_result(store.result(key))
        if result["status"] == "error" or (result.get("execution") or {}).get("stopped") in RETRIED_STOPS:
            continue
        name = result["submission"]["student_id"]
        target = STORE / name
        shutil.rmtree(target, ignore_errors=True)
        (target / "artifacts").mkdir(parents=True)
        shutil.copy(store.result(key), target / RESULT_FILE)
        for file in SCORED_FILES:
            if (store.artifacts(key) / file).is_file():
                shutil.copy(store.artifacts(key) / file, target / "artifacts" / file)
        reviewable(target / "artifacts" / EVIDENCE_JSON)
        save_evidence_key(variant_key(name, assignment), target)
        stored.append(name)
    return stored


def reviewable(path: Path) -> None:
    """The grader writes its evidence JSON on one line; kept indented, a refresh's diff says what moved."""
    path.write_text(json.dumps(json.loads(path.read_text()), indent=1, sort_keys=True) + "\n")


# --- the other end-to-end fixtures that only feed scoring ----------------------------------------------

FIXTURE_STORE = TESTS / "fixtures" / "evidence"
#: Fixture -> "module.function" building its notebook (the test module that reads it). Each is graded by
#: ``grade_one`` with the small test assignment (:func:`small_assignment`); its tests read the result only.
FIXTURES: dict[str, str] = {
    "grade_full": "test_grade.full_notebook",
    "grade_mlp_only": "test_grade.mlp_only_notebook",
    "grade_unfilled_template": "test_grade.unfilled_template_notebook",
    "diagnosis_broken": "test_diagnosis_e2e.broken_notebook",
    "diagnosis_lost_model": "test_diagnosis_e2e.lost_model_notebook",
}
#: What grading computes that ``regrade`` does not compute again (the run's reason, the failed cells'
#: diagnoses, in ``finish``): a stored fixture's key holds these files too, so a change to them executes it.
NOT_RESCORED = ("pipeline/grade_one.py", "score/diagnose/")
#: A fixture's tests read its executed notebook as well as what ``regrade`` reads.
FIXTURE_FILES = (*SCORED_FILES, "executed.ipynb")


def fixture_notebook(name: str) -> nbformat.NotebookNode:
    """Fixture ``name``'s notebook, built by its test module, with fixed cell ids (its bytes are its key)."""
    module, _, function = FIXTURES[name].rpartition(".")
    nb = getattr(importlib.import_module(module), function)()
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index}"
    return nb


def fixture_key(notebook: Path, assignment: Assignment) -> Key:
    """What produced a fixture's result: the assignment's evidence key, the notebook's bytes, and the grader's
    files whose output ``regrade`` keeps as it was (:data:`NOT_RESCORED`)."""
    kept = {f"code:{path}": digest((GRADER_ROOT / path).read_bytes()) for path in sorted(grader_files())
            if path.startswith(NOT_RESCORED)}
    return Key.of({**assignment.evidence_key().parts, "notebook": digest(notebook.read_bytes()), **kept})


def stale_fixture(name: str, notebook: Path, assignment: Assignment) -> list[str]:
    """What changed since fixture ``name``'s result was stored (in words); empty when it is current."""
    stored = stored_evidence_key(FIXTURE_STORE / name)
    if stored is None or not (FIXTURE_STORE / name / RESULT_FILE).is_file():
        return ["no stored evidence"]
    current = fixture_key(notebook, assignment)
    return [] if stored.sha256 == current.sha256 else current.changes_since(stored.parts) or ["the key"]


def graded_fixture(name: str, assignment: Assignment, result_path: Path, artifacts: Path) -> dict:
    """Fixture ``name``'s notebook graded into ``result_path`` and ``artifacts`` (``grade_into``'s layout; the
    notebook is written to a folder beside the result's): its stored result re-scored by today's scoring code (``regrade``,
    nothing executes) when its key is current, else graded for real (always under ``make test-full``), and the
    test says why in one line (a warning)."""
    notebook = write_fixture(name, result_path.parent.parent / "fixture-notebooks")
    stale = ["make test-full"] if full_lane() else stale_fixture(name, notebook, assignment)
    if stale:
        if not full_lane():
            warnings.warn(f"end-to-end fixture {name}: stored evidence not current ({', '.join(stale[:4])}): "
                          "grading it (`make refresh-evidence` stores it)", stacklevel=2)
        return grade_into(notebook, assignment, result_path, artifacts)
    result_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURE_STORE / name / RESULT_FILE, result_path)
    shutil.copytree(FIXTURE_STORE / name / "artifacts", artifacts, dirs_exist_ok=True)
    return regrade(result_path, artifacts, assignment)


def refresh_fixtures(names: list[str], assignment: Assignment, where: Path) -> list[str]:
    """Grade fixtures ``names`` for real and store their results; returns those not stored (the grader failed,
    or the machine stopped the run)."""
    failed = []
    for name in names:
        result_path, artifacts = where / name / RESULT_FILE, where / name / "artifacts"
        notebook = write_fixture(name, where / name)
        result = grade_into(notebook, assignment, result_path, artifacts)
        if result["status"] == "error" or (result.get("execution") or {}).get("stopped") in RETRIED_STOPS:
            failed.append(name)
            continue
        target = FIXTURE_STORE / name
        shutil.rmtree(target, ignore_errors=True)
        (target / "artifacts").mkdir(parents=True)
        shutil.copy(result_path, target / RESULT_FILE)
        for file in FIXTURE_FILES:
            if (artifacts / file).is_file():
                shutil.copy(artifacts / file, target / "artifacts" / file)
        reviewable(target / "artifacts" / EVIDENCE_JSON)
        save_evidence_key(fixture_key(notebook, assignment), target)
    return failed


def stale_fixtures(assignment: Assignment, where: Path) -> dict[str, list[str]]:
    """Fixture -> what changed since its result was stored, for every one that is not current."""
    stale = {name: stale_fixture(name, write_fixture(name, where / name), assignment) for name in FIXTURES}
    return {name: changed for name, changed in stale.items() if changed}


def removed_fixtures() -> list[str]:
    """Stored results of fixtures that no longer exist."""
    return sorted(path.name for path in FIXTURE_STORE.iterdir() if path.is_dir() and path.name not in FIXTURES) \
        if FIXTURE_STORE.is_dir() else []


def write_fixture(name: str, folder: Path) -> Path:
    """Fixture ``name``'s notebook written to ``folder`` (as ``<name>.ipynb``)."""
    folder.mkdir(parents=True, exist_ok=True)
    notebook = folder / f"{name}.ipynb"
    nbformat.write(fixture_notebook(name), notebook)
    return notebook


# --- command line -----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.variant_evidence", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("check", "refresh"))
    parser.add_argument("--all", action="store_true", help="refresh: execute every variant and fixture, current or not")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="variant-evidence-") as tmp:
        where = Path(tmp)
        for folder in ("small", "variants", "fixtures"):
            (where / folder).mkdir()
        small = small_assignment(where / "small")
        assignment = variant_assignment(small, where / "variants")
        names = list(VARIANTS)
        stale = {name: ["--all"] for name in names} if args.all else stale_variants(names, assignment)
        stale_fixed = {name: ["--all"] for name in FIXTURES} if args.all else stale_fixtures(small, where / "fixtures")
        removed, removed_fixed = removed_variants(), removed_fixtures()
        if args.command == "check":
            if stale or removed:
                print(stale_line(stale, len(names)) if stale else
                      f"variant corpus: stored evidence of removed variants: {', '.join(removed)}")
                return 1
            if stale_fixed or removed_fixed:
                print(fixtures_line(stale_fixed) if stale_fixed else
                      f"end-to-end fixtures: stored evidence of removed fixtures: {', '.join(removed_fixed)}")
                return 1
            print(f"variant corpus: the stored evidence of all {len(names)} variants is current; "
                  f"so is that of the {len(FIXTURES)} end-to-end fixtures")
            return 0
        for name in removed:
            shutil.rmtree(STORE / name)
        for name in removed_fixed:
            shutil.rmtree(FIXTURE_STORE / name)
        missing = []
        if stale:
            print(stale_line(stale, len(names)), flush=True)
            execute(list(stale), assignment, where / "results")
            stored = store_evidence(where / "results", assignment)
            missing = sorted(set(stale) - set(stored))
        if stale_fixed:
            print(fixtures_line(stale_fixed) + ": grading them", flush=True)
            missing += refresh_fixtures(list(stale_fixed), small, where / "graded")
        if missing:  # their earlier evidence (if any) was already replaced or is stale: run refresh again
            print(f"not stored (no result, the grader failed or the machine stopped it): {', '.join(missing)}; "
                  "run `make refresh-evidence` again", file=sys.stderr)
            return 2
        print(f"variant corpus: stored {len(stale)} variant(s), removed {len(removed)}; "
              f"{sum(1 for p in STORE.iterdir() if p.is_dir())} stored; end-to-end fixtures: stored "
              f"{len(stale_fixed)}, removed {len(removed_fixed)}")
    return 0


def fixtures_line(stale: dict[str, list[str]]) -> str:
    """One line: which end-to-end fixtures are not current, and what changed."""
    changes = sorted({change for changed in stale.values() for change in changed})
    return (f"end-to-end fixtures: stored evidence of {', '.join(stale)} is not current "
            f"({', '.join(changes[:4])}{', ...' if len(changes) > 4 else ''})")


if __name__ == "__main__":
    sys.exit(main())
