"""``autograder assign``: deterministic output, a clean student template, and public checks that work.

The slow tests execute notebooks with nbclient: the untouched template (every check must fail with its
message, yet the notebook must run top to bottom) and the reference solution on a small slice of MNIST
(every check must pass).
"""
from __future__ import annotations

import ast
import dataclasses
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.assignment import ARCHITECTURES, ARCHITECTURE_TITLES, load_assignment
from autograder.author.authoring import GENERATED_DIR, assign, percentage_points
from autograder.data import provision_keras_cache
from reference_solutions.architectures import BUILDERS, RECIPES

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = load_assignment(REPO / "assignments" / "mnist")
TEMPLATE = ASSIGNMENT.student_dir
GENERATED = ASSIGNMENT.hidden_dir / GENERATED_DIR
QUESTIONS = [question.id for question in ASSIGNMENT.questions]
MODEL_QUESTIONS = {"mlp": "q2", "cnn": "q3", "simple_rnn": "q4", "lstm": "q5", "gru": "q6"}


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(path.relative_to(directory)): path.read_bytes()
            for path in sorted(directory.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def fresh_output(tmp_path_factory) -> dict[str, dict[str, dict[str, bytes]]]:
    """Run assign twice into a scratch copy of the assignment; snapshot both runs."""
    root = tmp_path_factory.mktemp("assign")
    shutil.copytree(ASSIGNMENT.hidden_dir, root / "hidden", ignore=shutil.ignore_patterns(GENERATED_DIR))
    scratch = dataclasses.replace(ASSIGNMENT, root=root, student_dir=root / "student_template")
    runs = {}
    for run in ("first", "second"):
        assign(scratch)
        runs[run] = {"student": snapshot(scratch.student_dir), "hidden": snapshot(root / "hidden" / GENERATED_DIR)}
    return runs


def test_assign_is_deterministic(fresh_output):
    assert fresh_output["first"] == fresh_output["second"]


def test_committed_template_is_what_assign_writes(fresh_output):
    assert snapshot(TEMPLATE) == fresh_output["first"]["student"], "run `make assign` and commit student_template/"
    assert snapshot(GENERATED) == fresh_output["first"]["hidden"], "run `make assign` and commit hidden/generated/"


def test_template_holds_only_what_students_get():
    files = sorted(snapshot(TEMPLATE))
    assert files == sorted(["README.md", ASSIGNMENT.student_notebook] + [f"tests/{q}.py" for q in QUESTIONS])


def test_template_holds_no_hidden_tests_seed_calibration_or_solutions():
    seed = str(ASSIGNMENT.evaluation_seed())
    hidden_functions = [f"def {name}(" for path in ASSIGNMENT.hidden_dir.glob("*.py")
                        for name in re.findall(r"^def (\w+)\(", path.read_text(), flags=re.M)]
    solution_lines = ["# BEGIN SOLUTION", "x_train_full.astype", "mlp_model.fit(", "tf.math.confusion_matrix(",
                      "| MLP | 0.9"]
    for name, content in snapshot(TEMPLATE).items():
        text = content.decode("utf-8")
        assert seed not in text, name
        assert "eval_accuracy" not in text and "calibration.json" not in text, name
        for marker in hidden_functions + solution_lines:
            assert marker not in text, f"{name} contains {marker!r}"


def test_public_tests_follow_the_assignment():
    for arch, question in MODEL_QUESTIONS.items():
        assert f"def test_{arch}_model({ASSIGNMENT.models[arch]})" in (TEMPLATE / "tests" / f"{question}.py").read_text()
    report_test = (TEMPLATE / "tests" / "q8.py").read_text()
    assert ASSIGNMENT.student_notebook in report_test
    for section in ASSIGNMENT.report_sections:
        assert f"'{section.title}': (" in report_test
        assert all(f"'{alias}'" in report_test for alias in section.aliases)
        assert re.search(rf"'{section.title}': \(\([^)]*\), {section.min_words}\)", report_test), section.title


def test_assign_is_a_cli_verb_with_the_makefile_default():
    from autograder.cli import assign, build_parser

    args = build_parser(["assign"]).parse_args(["assign"])
    assert args.run is assign.run and args.assignment == "assignments/mnist"


def test_percentage_points_reads_naturally():
    assert percentage_points(0.01) == "1 percentage point"
    assert percentage_points(0.15) == "15 percentage points"
    assert percentage_points(0.005) == "0.5 percentage points"


def test_readme_states_the_budget_and_rubric_from_the_assignment():
    readme = (TEMPLATE / "README.md").read_text()
    execution = ASSIGNMENT.execution
    # the time limits count CPU work: the README says so, not "minutes" as if on the clock
    assert f"at most {execution.wall_budget_seconds / 60:g} minutes of computing**" in readme
    assert f"at most {execution.cell_timeout_seconds / 60:g} minutes" in readme
    assert (f"{execution.wall_budget_seconds / 60:g} minutes of computing take about "
            f"{execution.wall_budget_seconds / 60:g} minutes on\nan idle machine with {execution.threads} cores") in readme
    assert f"minus\n   {percentage_points(ASSIGNMENT.threshold_margin)}," in readme
    assert f"{percentage_points(ASSIGNMENT.threshold_span)} lower" in readme
    for question in ASSIGNMENT.questions:
        for check in question.checks:
            assert f"| {question.id} | {question.title} | {check.test.replace('_', ' ')} | {check.points:g} |" in readme
    assert f"**{ASSIGNMENT.max_score:g}**" in readme


def test_template_starts_with_the_otter_grader():
    notebook = nbformat.read(TEMPLATE / ASSIGNMENT.student_notebook, as_version=4)
    first_code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert "import otter" in first_code.source and "grader = otter.Notebook(" in first_code.source
    sources = [cell.source for cell in notebook.cells]
    assert [q for q in QUESTIONS if f'grader.check("{q}")' in sources] == QUESTIONS
    assert "grader.check_all()" in sources


# ---------------------------------------------------------------- the master notebook

MASTER = nbformat.read(ASSIGNMENT.master_notebook, as_version=4)


def master_code() -> list[str]:
    return [cell.source for cell in MASTER.cells if cell.cell_type == "code"]


def test_master_trains_with_the_reference_recipes():
    setup = next(source for source in master_code() if "EPOCHS = " in source)
    assignments = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(setup).body
                   if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                   and node.targets[0].id in ("EPOCHS", "BATCH_SIZE")}
    assert assignments["EPOCHS"] == {arch: recipe.epochs for arch, recipe in RECIPES.items()}
    assert {assignments["BATCH_SIZE"]} == {recipe.batch_size for recipe in RECIPES.values()}
    assert all(recipe.learning_rate == 1e-3 for recipe in RECIPES.values())
    for arch in ARCHITECTURES:
        compile_call = f'{ASSIGNMENT.models[arch]}.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_'
        assert sum(compile_call in source for source in master_code()) == 1, arch


def layer_configs(model) -> list[tuple[str, dict]]:
    return [(type(layer).__name__, {k: v for k, v in layer.get_config().items() if k != "name"})
            for layer in model.layers]


def test_master_builds_the_reference_architectures():
    import keras
    from keras import layers

    for arch in ARCHITECTURES:
        variable = ASSIGNMENT.models[arch]
        statements = [node for source in master_code() for node in ast.parse(source).body
                      if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == variable
                      and "keras.Sequential" in ast.unparse(node.value)]
        assert len(statements) == 1, f"{variable}: expected one keras.Sequential assignment in the master"
        namespace = {"keras": keras, "layers": layers}
        exec(ast.unparse(statements[0]), namespace)
        assert layer_configs(namespace[variable]) == layer_configs(BUILDERS[arch]()), arch


def test_master_report_table_matches_what_it_measured():
    measured = {}
    for cell in MASTER.cells:
        match = re.search(r'^results\["(\w+)"\]$', cell.source, flags=re.M) if cell.cell_type == "code" else None
        if match and cell.outputs:
            measured[match.group(1)] = ast.literal_eval(cell.outputs[-1]["data"]["text/plain"])
    assert sorted(measured) == sorted(ARCHITECTURES), "execute the master notebook and keep its outputs"
    report = "\n".join(cell.source for cell in MASTER.cells if cell.cell_type == "markdown")
    for arch, row in measured.items():
        line = re.search(rf"^\| {ARCHITECTURE_TITLES[arch]} \|(.*)\|$", report, flags=re.M)
        assert line, f"no table row for {arch}"
        accuracy, params, seconds = (cell.strip().replace(",", "") for cell in line.group(1).split("|"))
        assert (float(accuracy), int(params), float(seconds)) == (
            row["test_accuracy"], row["parameters"], row["training_seconds"]), arch


# ---------------------------------------------------------------- executing notebooks

CHECK_ALL_QUESTIONS = f"""
import json
outcomes = {{}}
for question in {QUESTIONS!r}:
    result = grader.check(question)
    outcomes[question] = {{"passed": result.passed_all,
                           "messages": [case.message for case in result.test_case_results]}}
with open("public_checks.json", "w") as fh:
    json.dump(outcomes, fh)
"""


def execute(notebook: nbformat.NotebookNode, directory: Path, monkeypatch) -> dict[str, dict]:
    """Run ``notebook`` in ``directory`` beside the public tests; return each question's check outcome."""
    shutil.copytree(TEMPLATE / "tests", directory / "tests")
    nbformat.write(notebook, directory / ASSIGNMENT.student_notebook)  # the report check reads the saved file
    monkeypatch.setenv("KERAS_HOME", str(provision_keras_cache(directory / "keras_home").parents[1]))
    notebook.cells.append(nbformat.v4.new_code_cell(CHECK_ALL_QUESTIONS))
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(directory)}}).execute()
    return json.loads((directory / "public_checks.json").read_text())


EXPECTED_FAILURES = {
    "q1": "x_train should be a NumPy array, but it is NoneType: complete the TODO in Question 1",
    "q2": "mlp_model is not built yet: complete the TODO in this question",
    "q3": "cnn_model is not built yet",
    "q4": "rnn_model is not built yet",
    "q5": "lstm_model is not built yet",
    "q6": "gru_model is not built yet",
    "q7": "best_model_name should be one of ('mlp', 'cnn', 'simple_rnn', 'lstm', 'gru'), but it is None",
    "q8": "the report has no 'Architectures' section: start it with a Markdown heading line such as '## Architectures'",
}


@pytest.mark.slow
def test_untouched_template_runs_and_each_check_fails_with_its_message(tmp_path, monkeypatch):
    notebook = nbformat.read(TEMPLATE / ASSIGNMENT.student_notebook, as_version=4)
    outcomes = execute(notebook, tmp_path, monkeypatch)  # raises if any cell fails
    assert sorted(outcomes) == sorted(EXPECTED_FAILURES)
    for question, message in EXPECTED_FAILURES.items():
        assert not outcomes[question]["passed"], question
        assert message in "\n".join(outcomes[question]["messages"]), outcomes[question]


SMALL_DATA = """
# Test only: a slice of the training data and one epoch per model keep this run short (the public checks
# ask for a trained model, not an accurate one), and the five models are evaluated on 1,000 test images.
x_train, y_train, x_val, y_val = x_train[:512], y_train[:512], x_val[:256], y_val[:256]
EPOCHS = dict.fromkeys(EPOCHS, 1)
whole_test_set = x_test, y_test
x_test, y_test = x_test[:1000], y_test[:1000]
"""
#: Before the confusion matrix: the whole test set again, as the checks of q1 and q7 require.
WHOLE_TEST_SET = "x_test, y_test = whole_test_set  # test only"


@pytest.mark.slow
def test_reference_solution_passes_every_public_check(tmp_path, monkeypatch):
    notebook = nbformat.read(GENERATED / ASSIGNMENT.student_notebook, as_version=4)  # solutions + check cells
    preprocessing = next(i for i, cell in enumerate(notebook.cells) if "x_train, y_train = " in cell.source)
    notebook.cells.insert(preprocessing + 1, nbformat.v4.new_code_cell(SMALL_DATA))
    confusion = next(i for i, cell in enumerate(notebook.cells) if "best_model_name = max(" in cell.source)
    notebook.cells.insert(confusion, nbformat.v4.new_code_cell(WHOLE_TEST_SET))
    outcomes = execute(notebook, tmp_path, monkeypatch)
    assert sorted(outcomes) == sorted(QUESTIONS)
    failing = {q: outcome["messages"] for q, outcome in outcomes.items() if not outcome["passed"]}
    assert not failing
