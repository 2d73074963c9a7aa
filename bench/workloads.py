"""What the benchmarks grade: notebooks, assignment copies, an otter autograder zip, and the tools' command lines.

Every tool (our grader, ``jupyter nbconvert``, ``otter run``) is started the same way, as
``python bench/peak_rss.py OUT -m MODULE ARGS`` with the same environment, so their wall times include
the same interpreter start-up and their peak memory is measured identically.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
if "AUTOGRADER_MNIST_DIR" not in os.environ and (SHARED_MNIST / "mnist.npz").is_file():
    os.environ["AUTOGRADER_MNIST_DIR"] = str(SHARED_MNIST)  # as the Makefile and tests/conftest.py do

from autograder.assignment import load_assignment  # noqa: E402
from autograder.data import provision_keras_cache  # noqa: E402

def _load_test_notebooks():
    """tests/notebooks.py, the small homework builder the tests use (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_test_notebooks", REPO / "tests" / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


notebooks = _load_test_notebooks()
PYTHON = sys.executable
PEAK_RSS = Path(__file__).resolve().parent / "peak_rss.py"
OTTER_HIDDEN_TESTS = Path(__file__).resolve().parent / "otter_hidden"
REFERENCE_NOTEBOOK = REPO / "reference_solutions" / "mnist_homework.ipynb"

# Thresholds for slice-trained models, as the tests use: they change scores, never timings.
SMALL_CALIBRATION = notebooks.SMALL_CALIBRATION

TRIVIAL_SOURCE = """\
import tensorflow as tf
import keras
from keras import layers
mlp_model = keras.Sequential([keras.Input((28, 28)), layers.Flatten(), layers.Dense(10, activation="softmax")])
"""

# ~100 MB of stdout in 1 MiB writes: the grader must drop what is over its cap while it streams.
FLOOD_SOURCE = """\
import sys
line = "x" * 1023 + "\\n"
for _ in range({megabytes}):
    sys.stdout.write(line * 1024)
    sys.stdout.flush()
"""


def notebook_of(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def trivial_notebook() -> nbformat.NotebookNode:
    """Imports TensorFlow and defines a tiny model, no training: what grading costs on top of nothing."""
    return notebook_of(TRIVIAL_SOURCE)


def flood_notebook(megabytes: int) -> nbformat.NotebookNode:
    return notebook_of(FLOOD_SOURCE.format(megabytes=megabytes))


def small_homework(archs: tuple[str, ...], train_size: int) -> nbformat.NotebookNode:
    """The real contract on a slice, one epoch (tests/notebooks.py)."""
    return notebooks.homework(archs, train_size=train_size)


def write_notebook(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def assignment_copy(target: Path, *, small: bool, evaluation_size: int | None = None, repo: Path = REPO) -> Path:
    """The MNIST assignment copied to ``target``; ``small`` gives test-sized budgets (tests/conftest.py).

    The real calibration.json is used when it exists; otherwise slice thresholds stand in (timings do
    not depend on thresholds, only scores do). ``repo`` is the checkout whose assignment is copied.
    """
    root = target / "mnist"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(repo / "assignments" / "mnist", root, ignore=shutil.ignore_patterns("generated"))
    if small or not (root / "calibration.json").is_file():
        (root / "calibration.json").write_text(json.dumps(SMALL_CALIBRATION))
    toml = (root / "assignment.toml").read_text().replace('"../../', f'"{repo}/')
    settings = {"wall_budget_seconds": "300", "cell_timeout_seconds": "240", "memory_mb": "3072"} if small else {}
    if evaluation_size is not None:
        settings["size"] = str(evaluation_size)
    for key, value in settings.items():
        toml = re.sub(rf"(?m)^{key} = \S+", f"{key} = {value}", toml)
    (root / "assignment.toml").write_text(toml)
    return root


def has_real_calibration(assignment: Path) -> bool:
    """Whether this copy was made with the course's calibration.json rather than the stand-in."""
    return json.loads((assignment / "calibration.json").read_text()).get("note") != SMALL_CALIBRATION["note"]


def tool_env(keras_home: Path) -> dict[str, str]:
    """One environment for every tool: the offline Keras cache and the grader's thread settings.

    PYTHONPATH names this checkout, so the grader measured is the one beside this script.
    """
    threads = str(load_assignment(REPO / "assignments" / "mnist").execution.threads)
    env = dict(os.environ, KERAS_HOME=str(keras_home), TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0",
               OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env.pop("JPY_PARENT_PID", None)
    return env


def keras_home(scratch: Path) -> Path:
    home = scratch / "keras"
    if not (home / "datasets" / "mnist.npz").is_file():
        provision_keras_cache(home)
    return home


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    returncode: int
    log: Path
    cpu_seconds: float = float("nan")  # user + system of the tool's own process (see run_tool)


def run_tool(module: str, args: list[str], *, env: dict[str, str], log: Path, cwd: Path | None = None) -> Run:
    """``python -m module args`` under the peak-RSS wrapper; wall time measured from here.

    (Not CPU time: the watchdog SIGKILLs a sandbox's PID namespace, whose processes are then reaped
    by no ancestor, so their CPU never reaches our RUSAGE_CHILDREN.)
    """
    rss_file = log.with_suffix(".rss")
    log.parent.mkdir(parents=True, exist_ok=True)
    started, cpu_before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "wb") as out:
        proc = subprocess.run([PYTHON, str(PEAK_RSS), str(rss_file), "-m", module, *args], stdout=out,
                              stderr=subprocess.STDOUT, env=env, cwd=cwd or REPO)
    seconds, cpu_after = time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    peak = float(rss_file.read_text()) if rss_file.is_file() else float("nan")
    return Run(seconds=seconds, peak_rss_mb=peak, returncode=proc.returncode, log=log, cpu_seconds=cpu)


def grade_one(notebook: Path, assignment: Path, out: Path, env: dict[str, str]) -> tuple[Run, dict]:
    shutil.rmtree(out, ignore_errors=True)
    run = run_tool("autograder", ["grade-one", str(notebook), "--assignment", str(assignment), "--out", str(out)],
                   env=env, log=out.with_suffix(".log"))
    result_path = out / "result.json"
    if run.returncode != 0 or not result_path.is_file():
        raise RuntimeError(f"grade-one failed ({run.returncode}); see {run.log}")
    return run, json.loads(result_path.read_text())


def nbconvert(notebook: Path, out: Path, env: dict[str, str]) -> Run:
    """Plain execution, the student's own run: no sandbox, no export, no prediction, no tests."""
    shutil.rmtree(out, ignore_errors=True)
    run = run_tool("nbconvert", ["--to", "notebook", "--execute", str(notebook), "--output-dir", str(out),
                                 "--ExecutePreprocessor.timeout=-1"], env=env, log=out.with_suffix(".log"))
    if run.returncode != 0:
        raise RuntimeError(f"nbconvert failed ({run.returncode}); see {run.log}")
    return run


def otter_zip(scratch: Path, env: dict[str, str]) -> Path:
    """otter's autograder zip: the public tests otter-assign wrote plus hidden tests equal to ours."""
    tests = scratch / "otter-tests"
    shutil.rmtree(tests, ignore_errors=True)
    shutil.copytree(REPO / "student_template" / "tests", tests)
    for hidden in OTTER_HIDDEN_TESTS.glob("*.py"):
        shutil.copy(hidden, tests / hidden.name)
    target = scratch / "otter-autograder.zip"
    target.unlink(missing_ok=True)
    subprocess.run([PYTHON, "-m", "otter", "generate", "-t", str(tests), "-o", str(target),
                    "--no-config", "--no-requirements", "--no-environment"],
                   cwd=scratch, env=env, check=True, capture_output=True)
    return target


def otter_run(notebook: Path, autograder_zip: Path, out: Path, env: dict[str, str]) -> tuple[Run, dict]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run = run_tool("otter", ["run", "-a", str(autograder_zip), "-o", str(out), "--no-logo", str(notebook)],
                   env=env, log=out.with_suffix(".log"))
    results = out / "results.json"
    if run.returncode != 0 or not results.is_file():
        raise RuntimeError(f"otter run failed ({run.returncode}); see {run.log}")
    return run, json.loads(results.read_text())


def grade_batch(source: Path, assignment: Path, out: Path, env: dict[str, str], *, jobs: int = 1,
                scheduler: str | None = None) -> Run:
    shutil.rmtree(out, ignore_errors=True)
    args = ["grade", str(source), "--assignment", str(assignment), "--out", str(out), "--jobs", str(jobs)]
    if scheduler:
        args += ["--scheduler", scheduler]
    run = run_tool("autograder", args, env=env, log=out.with_suffix(".log"))
    if run.returncode != 0:
        raise RuntimeError(f"autograder grade failed ({run.returncode}); see {run.log}")
    return run


def regrade(results: Path, assignment: Path, env: dict[str, str]) -> Run:
    run = run_tool("autograder", ["regrade", str(results), "--assignment", str(assignment)], env=env,
                   log=results.with_suffix(".regrade.log"))
    if run.returncode != 0:
        raise RuntimeError(f"autograder regrade failed ({run.returncode}); see {run.log}")
    return run


def similarity_batch(results: Path, count: int, seed: int = 0) -> Path:
    """``count`` stored submissions for the similarity report, without grading any of them.

    Every student writes their own code and report (random Keras-like statements and sentences over a
    shared vocabulary, so idioms recur across the class), one in ten copies another student's notebook,
    and each model's evaluation-set predictions are the true labels with the student's own random errors
    (3-10 %). The report compares every pair; this measures what a class of ``count`` costs.
    """
    import hashlib

    import numpy as np

    from autograder.assignment import ARCHITECTURES
    from autograder.pipeline.grade_one import base_result
    from autograder.results import write_result
    from autograder.score.artifacts import Evidence, ModelEvidence, save_evidence

    rng = np.random.default_rng(seed)
    template = nbformat.read(REPO / "student_template" / "mnist_homework.ipynb", as_version=4)
    assignment = load_assignment(REPO / "assignments" / "mnist")
    labels = rng.integers(0, 10, size=5000).astype(np.int8)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, int(rng.integers(3, 9)))) for _ in range(2000)] + [
        "accuracy", "model", "layers", "training", "cnn", "lstm", "gru"]
    layer_names = ["Dense", "Conv2D", "MaxPooling2D", "Dropout", "LSTM", "GRU", "SimpleRNN", "Flatten"]

    def statement() -> str:
        layer, units = layer_names[rng.integers(len(layer_names))], int(rng.integers(8, 512))
        kind = rng.integers(4)
        if kind == 0:
            return f"h{rng.integers(9)} = layers.{layer}({units}, activation='{['relu', 'tanh', 'elu'][rng.integers(3)]}')(h{rng.integers(9)})"
        if kind == 1:
            return f"model.fit(x_train[:{units * 10}], y_train[:{units * 10}], epochs={rng.integers(1, 9)}, batch_size={units})"
        if kind == 2:
            return f"for i in range({units}):\n    acc[i % {rng.integers(2, 11)}] += {rng.random():.3f}"
        return f"print('{' '.join(words[j] for j in rng.integers(0, len(words), 4))}', {units})"

    shutil.rmtree(results, ignore_errors=True)
    (results / "results").mkdir(parents=True)
    notebooks = []
    for index in range(count):
        if index % 10 == 9:  # a copy of an earlier student's notebook
            nb = notebooks[int(rng.integers(len(notebooks)))]
        else:
            nb = nbformat.from_dict(json.loads(json.dumps(template)))
            for cell in nb.cells:
                if cell.cell_type == "code" and "TODO" in cell.source:
                    cell.source = "\n".join(statement() for _ in range(int(rng.integers(8, 16))))
                elif cell.cell_type == "markdown" and cell.source.startswith("_Replace this text"):
                    cell.source = ". ".join(" ".join(words[j] for j in rng.integers(0, len(words), 12))
                                            for _ in range(15))
        notebooks.append(nb)
        key = f"student{index:03d}-bench"
        artifacts = results / "artifacts" / key
        artifacts.mkdir(parents=True)
        nbformat.write(nb, artifacts / "submission.ipynb")
        models = {}
        for arch in ARCHITECTURES:
            wrong = rng.random(len(labels)) < rng.uniform(0.03, 0.10)
            predicted = np.where(wrong, (labels + 1 + rng.integers(0, 9, len(labels))) % 10, labels).astype(np.int8)
            models[arch] = ModelEvidence(arch, found=True, variable=f"{arch}_model", found_by="name",
                                        weights_sha256=hashlib.sha256(f"{index}-{arch}".encode()).hexdigest(),
                                        predictions={"eval": predicted})
        save_evidence(Evidence(models=models, data={}, validation={}, confusion=[], best_model="cnn", fits=[],
                               problems=[]), artifacts)  # as grading stores it
        result = base_result(artifacts / "submission.ipynb", assignment, None,
                             {"student_id": f"s{index:03d}", "student_name": f"Student {index}"}, sandboxed=True)
        result["models"] = {arch: {"found": True, "variable": f"{arch}_model", "found_by": "name",
                                   "class_name": "Sequential", "subclassed": False, "error": None, "params": None,
                                   "param_budget": 10_000_000, "input": {}, "fed": {}, "training": {},
                                   "accuracy": 0.9, "public_accuracy": 0.9, "threshold_full": 0.96,
                                   "threshold_zero": 0.9}
                            for arch in ARCHITECTURES}
        write_result(results / "results" / f"{key}.json", result)
    return results


def similarity(results: Path, out: Path, env: dict[str, str]) -> Run:
    run = run_tool("autograder", ["similarity", str(results), "--assignment", str(REPO / "assignments" / "mnist"),
                                  "--out", str(out)], env=env, log=out.with_suffix(".log"))
    if run.returncode != 0:
        raise RuntimeError(f"autograder similarity failed ({run.returncode}); see {run.log}")
    return run


def review_batch(results: Path, count: int) -> Path:
    """``count`` stored results for the review workbench: the test fixtures' results (tests/fixtures/results:
    complete, partial with items to review, rejected, late, hostile text) copied round-robin under new
    students, written with the grader's writer, each with its stored confusion matrix and executed notebook,
    and a similarity pair for every tenth student."""
    import numpy as np

    from autograder.output.gradebook import csv_text
    from autograder.output.similarity import CodeMatch, Entry, Pair, pairs_frame
    from autograder.results import write_result

    fixtures = sorted((REPO / "tests" / "fixtures" / "results").glob("*.json"))
    assignment = load_assignment(REPO / "assignments" / "mnist")
    notebook = nbformat.read(REPO / "student_template" / "mnist_homework.ipynb", as_version=4)
    matrix = np.diag([970, 1120, 1000, 990, 960, 880, 940, 1010, 950, 990]).astype(np.int64)
    shutil.rmtree(results, ignore_errors=True)
    (results / "results").mkdir(parents=True)
    pairs, entries = [], []
    for index in range(count):
        result = json.loads(fixtures[index % len(fixtures)].read_text())
        key = f"s{index:03d}-{fixtures[index % len(fixtures)].stem}"
        result["submission"].update(student_id=f"s{index:03d}", sha256=f"{index:064x}")
        result["assignment"].update(name=assignment.name, bundle_sha256=assignment.scoring_key().sha256,
                                    evidence_sha256=assignment.evidence_key().sha256, root=str(assignment.root))
        write_result(results / "results" / f"{key}.json", result)
        artifacts = results / "artifacts" / key
        artifacts.mkdir(parents=True)
        np.savez_compressed(artifacts / "predictions.npz", **{"confusion.0": matrix})
        nbformat.write(notebook, artifacts / "executed.ipynb")
        entries.append(Entry(key=key, student_id=f"s{index:03d}", student_name="", code="", prose=""))
        if index % 10 == 9:
            pairs.append(Pair(entries[-2], entries[-1], code=CodeMatch(0.9, ("", ""))))
    (results / "similarity").mkdir()
    (results / "similarity" / "pairs.csv").write_text(csv_text(pairs_frame(pairs)))
    return results


def review_timings(results: Path, requests: int) -> dict[str, list[float]]:
    """Seconds per answer of the review workbench served on 127.0.0.1 (uvicorn, in this process): the
    queue's first load (every result read), the queue after it, and item pages of each kind."""
    import http.cookiejar
    import re as regex
    import threading
    import urllib.request

    from autograder.output.store import open_results
    from autograder.output.workbench.app import open_socket, server
    from autograder.output.workbench.evidence import confusion_picture

    confusion_picture.cache_clear()  # each repeat sees every page for the first time again
    assignment = load_assignment(REPO / "assignments" / "mnist")
    sock = open_socket("127.0.0.1", 0)
    web, url = server(open_results(results), assignment, sock, "bench")
    thread = threading.Thread(target=web.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not web.started:
        time.sleep(0.05)
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    base = url.split("?")[0]

    def timed(address: str) -> tuple[float, str]:
        started = time.perf_counter()
        with opener.open(address) as answer:
            body = answer.read().decode()
        return time.perf_counter() - started, body

    try:
        first, page = timed(url)
        items = regex.findall(r'href="/item/([^"?]+)', page)
        by_kind = {}
        for item in items:  # one item of each kind: a check, an integrity flag, claims, intake, a pair
            by_kind.setdefault(item.split("~")[0] == "pair" and "pair" or item.split("~")[1], item)
        timings: dict[str, list[float]] = {"queue_first_s": [first], "queue_s": [], "item_s": [],
                                           "items_listed": [float(len(items))]}
        # First views (the confusion matrix drawn, the report read), one item per kind.
        timings["item_first_s"] = [timed(f"{base}item/{item}")[0] for item in by_kind.values()]
        for _ in range(requests):
            timings["queue_s"].append(timed(base)[0])
            for item in by_kind.values():
                timings["item_s"].append(timed(f"{base}item/{item}")[0])
        return timings
    finally:
        web.should_exit = True
        thread.join(timeout=30)
