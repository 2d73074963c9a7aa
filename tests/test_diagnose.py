"""The diagnosis table and diagnose(): every pattern's own example, plus the behaviour around it."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from autograder.assignment import load_assignment
from autograder.run.kernel_session import CellRecord
from autograder.score.diagnose.matcher import diagnose
from autograder.score.diagnose.table import DiagnosisTableError, load_table
from autograder.score.notebook_code import cell_names

REPO = Path(__file__).resolve().parents[1]
# Instructor tables kept with an assignment are tested with the built-in one, pattern by pattern.
EXTRA_TABLES = tuple(sorted(REPO.glob("assignments/*/diagnoses.toml")))
TABLE = load_table(*EXTRA_TABLES)
LIMITS = {"budget": 600, "cell_timeout": 420, "limit_mb": 4096}
EXECUTION = load_assignment(REPO / "assignments" / "mnist").execution
ASSIGNMENT_LIMITS = {"budget": EXECUTION.wall_budget_seconds, "cell_timeout": EXECUTION.cell_timeout_seconds,
                     "limit_mb": EXECUTION.memory_mb}


def cell(index: int, source: str = "", status: str = "ok", ename: str | None = None, evalue: str = "",
         seconds: float = 1.0) -> dict:
    error = {"ename": ename, "evalue": evalue, "traceback": []} if ename else None
    return {"index": index, "source": source, "status": status, "seconds": seconds, "error": error}


def codes(diagnoses: list[dict]) -> list[tuple[int | None, str]]:
    return [(d["cell"], d["code"]) for d in diagnoses]


def write_table(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "extra.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.mark.parametrize("pattern", TABLE, ids=lambda p: p.code)
def test_each_pattern_example_gets_exactly_that_pattern(pattern):
    example = pattern.example
    status = example.get("status", "error" if "ename" in example else "ok")
    notebook = [cell(0, example.get("source", ""), status, example.get("ename"), example.get("evalue", ""),
                     example.get("seconds", 1.0))]

    diagnoses = diagnose(notebook, example.get("stopped"), ASSIGNMENT_LIMITS, TABLE)

    assert codes(diagnoses) == [(None if pattern.before_first_cell else 0, pattern.code)]
    assert diagnoses[0]["category"] == pattern.category
    assert "{" not in diagnoses[0]["advice"] + diagnoses[0]["title"]  # every placeholder was filled


def test_the_table_covers_every_failure_category_seen_in_real_notebooks():
    categories = {p.category for p in TABLE}
    assert {"keras_api_drift", "tf1_api", "colab_only", "missing_package", "no_network", "missing_file",
            "time_budget", "memory", "kernel_died", "error"} <= categories


def test_unknown_error_quotes_type_message_and_cell_as_short_plain_text():
    evalue = "\x1b[0;31mshapes (32,10) and (784,) not aligned\x1b[0m\x00\x07 " + "detail " * 200
    notebook = [cell(0, "import numpy as np"), cell(1, "", "ok"),
                cell(2, "y = x @ w", "error", "\x1b[0;31mShapeMismatch\x1b[0m", evalue)]

    [diagnosis] = diagnose(notebook, None, LIMITS)

    assert (diagnosis["code"], diagnosis["cell"], diagnosis["cell_status"]) == ("unknown_error", 2, "error")
    assert diagnosis["title"] == "ShapeMismatch in cell 3"
    assert "`ShapeMismatch: shapes (32,10) and (784,) not aligned detail detail" in diagnosis["advice"]
    assert "…" in diagnosis["advice"]
    assert "detail " * 60 not in diagnosis["advice"]  # the message was cut at about 300 characters
    assert not any(ch in diagnosis["advice"] for ch in "\x1b\x00\x07\n")


def test_pip_install_is_called_out_and_points_at_the_import_error_two_cells_later():
    notebook = [cell(0, "!pip install opencv-python"), cell(1, "import numpy as np"),
                cell(2, "import cv2", "error", "ModuleNotFoundError", "No module named 'cv2'")]

    diagnoses = diagnose(notebook, None, LIMITS)

    assert codes(diagnoses) == [(0, "shell_pip_install"), (2, "missing_package_cv2")]
    assert "no network" in diagnoses[0]["advice"]
    assert diagnoses[0]["advice"].endswith("The first error that follows from it is in cell 3.")


def test_a_silently_skipped_tensorflow_version_cell_points_at_the_name_error_it_causes():
    # ipykernel reports an unknown magic without an error output, so the executor records the cell as ok.
    notebook = [cell(0, "%tensorflow_version 2.x\nimport keras"), cell(1, "x = 1"),
                cell(2, "keras.utils.set_random_seed(0)", "error", "NameError", "name 'keras' is not defined")]

    diagnoses = diagnose(notebook, None, LIMITS)

    assert codes(diagnoses) == [(0, "colab_tensorflow_version_line"), (2, "name_not_defined")]
    assert "cell 3" in diagnoses[0]["advice"]


def test_download_note_without_a_later_error_has_no_pointer_and_comments_are_ignored():
    notebook = [cell(0, "!wget https://example.com/extra.npz"), cell(1, "# !pip install tqdm\nx = 1")]

    diagnoses = diagnose(notebook, None, LIMITS)

    assert codes(diagnoses) == [(0, "shell_download")]
    assert "first error" not in diagnoses[0]["advice"]


def test_a_download_cell_that_fails_gets_one_no_network_diagnosis_not_two():
    notebook = [cell(0, "!pip install gdown\nimport gdown", "error", "ModuleNotFoundError", "No module named 'gdown'")]

    assert codes(diagnose(notebook, None, LIMITS)) == [(0, "no_network_gdown")]


def test_cells_that_did_not_run_get_no_diagnosis():
    notebook = [cell(0, "x = 1"), cell(1, "!pip install cv2", "not_run"), cell(2, "1/0", "not_run")]

    assert diagnose(notebook, None, LIMITS) == []


def test_cell_timeout_says_which_cell_how_long_and_the_budgets():
    limits = {"budget": 900, "cell_timeout": 300, "limit_mb": 4096}
    notebook = [cell(0, "import keras"), cell(1, "model.fit(x, y, epochs=100)", "timeout", seconds=301.4)]

    [diagnosis] = diagnose(notebook, None, limits)

    assert (diagnosis["code"], diagnosis["cell"], diagnosis["cell_status"]) == ("cell_timeout", 1, "timeout")
    assert diagnosis["title"] == "Cell 2 took too long"
    assert "after 301 s" in diagnosis["advice"]
    assert "at most 300 s" in diagnosis["advice"] and "900 s" in diagnosis["advice"]


def test_wall_budget_replaces_the_timeout_of_the_cell_it_stopped():
    notebook = [cell(0, "mlp.fit(...)", seconds=200.2), cell(1, "cnn.fit(...)", seconds=350.1),
                cell(2, "gru.fit(...)", "timeout", seconds=55.0), cell(3, "evaluate()", "not_run")]

    [diagnosis] = diagnose(notebook, "wall_budget", LIMITS)

    assert (diagnosis["code"], diagnosis["cell"]) == ("wall_budget", 2)
    assert "600 s" in diagnosis["advice"] and "about 605 s" in diagnosis["advice"]
    assert "cell 3" in diagnosis["advice"]


def test_a_cell_cut_short_by_the_remaining_budget_is_a_wall_budget_stop():
    # The executor gives the last cell only what is left of the notebook's budget (here 600 - 550 s).
    notebook = [cell(0, "mlp.fit(...)", seconds=550.0), cell(1, "gru.fit(...)", "timeout", seconds=50.4),
                cell(2, "evaluate()", "not_run")]

    [diagnosis] = diagnose(notebook, None, LIMITS)

    assert (diagnosis["code"], diagnosis["cell"]) == ("wall_budget", 1)
    assert "600 s" in diagnosis["advice"] and "about 600 s" in diagnosis["advice"]


def test_a_cell_stopped_by_the_cpu_budget_is_a_budget_stop_whatever_its_wall_time():
    # Graded on a busy machine: the cells took longer in wall time than their CPU work; the limits count the work.
    stopped = {"ename": "CellTimeoutError", "evalue": "cell stopped", "traceback": []}
    notebook = [CellRecord(0, "mlp.fit(...)", "ok", seconds=700.0, cpu_seconds=550.0).as_dict(),
                CellRecord(1, "gru.fit(...)", "timeout", seconds=480.0, cpu_seconds=50.4, limit="cpu_budget",
                           error=stopped).as_dict(),
                CellRecord(2, "evaluate()", "not_run").as_dict()]

    [diagnosis] = diagnose(notebook, None, LIMITS)

    assert (diagnosis["code"], diagnosis["cell"]) == ("wall_budget", 1)
    assert "600 s" in diagnosis["advice"] and "about 600 s" in diagnosis["advice"]


def test_a_cell_stopped_by_its_own_cpu_limit_reports_its_cpu_work():
    stopped = {"ename": "CellTimeoutError", "evalue": "cell stopped", "traceback": []}
    notebook = [CellRecord(0, "model.fit(x, y, epochs=100)", "timeout", seconds=30.0, cpu_seconds=420.6,
                           limit="cell_cpu", error=stopped).as_dict()]

    [diagnosis] = diagnose(notebook, None, LIMITS)

    assert diagnosis["code"] == "cell_timeout" and "after 421 s" in diagnosis["advice"]


def test_a_kernel_that_never_started_is_not_blamed_on_a_cell():
    for notebook in ([], [cell(0, "import keras", "not_run")]):
        [diagnosis] = diagnose(notebook, "kernel_died", LIMITS)

        assert (diagnosis["code"], diagnosis["cell"], diagnosis["cell_status"]) == ("kernel_failed_to_start", None, None)
        assert "tell your instructor" in diagnosis["advice"]


def test_memory_limit_names_the_limit_and_the_cell():
    limits = {**LIMITS, "limit_mb": 2048}
    notebook = [cell(0, "x = np.repeat(x_train, 50, axis=0)", "error", "DeadKernelError", "Kernel died"),
                cell(1, "model.fit(x, y)", "not_run")]

    [diagnosis] = diagnose(notebook, "memory", limits)

    assert (diagnosis["code"], diagnosis["category"], diagnosis["cell"]) == ("memory_limit", "memory", 0)
    assert "2048 MB" in diagnosis["advice"] and "cell 1" in diagnosis["advice"]


def test_kernel_death_names_the_cell_and_keeps_earlier_errors():
    notebook = [cell(0, "import cv2", "error", "ModuleNotFoundError", "No module named 'cv2'"),
                cell(1, "model.fit(x, y)", "error", "DeadKernelError", "Kernel died"),
                cell(2, "print(1)", "not_run")]

    diagnoses = diagnose(notebook, "kernel_died", LIMITS)

    assert codes(diagnoses) == [(0, "missing_package_cv2"), (1, "kernel_died")]
    assert diagnoses[1]["title"] == "Python crashed in cell 2"
    assert "4096 MB" in diagnoses[1]["advice"]


def test_an_unknown_stop_reason_is_reported_next_to_the_cell_error():
    notebook = [cell(0, "1/0", "error", "ZeroDivisionError", "division by zero"), cell(1, "", "not_run")]

    diagnoses = diagnose(notebook, "cell_error", LIMITS)

    assert codes(diagnoses) == [(0, "unknown_error"), (0, "stopped_other")]
    assert "(cell_error)" in diagnoses[1]["advice"]


GOOD_ENTRY = {"code": '"my_pattern"', "category": '"missing_package"', "title": '"t"', "advice": '"a"',
              "example": '{ ename = "X" }'}


@pytest.mark.parametrize("change, complaint", [
    ({"evalu": '"x"'}, "pattern[0] (my_pattern): Additional properties are not allowed ('evalu' was unexpected)"),
    ({"evalue": '"No module named (cv2"'}, "pattern[0] (my_pattern): evalue: bad regex 'No module named (cv2'"),
    ({"evalue": "'(?P<module>\\w+)'", "title": '"{modul}"'},
     "pattern[0] (my_pattern): title: unknown placeholder {modul} (allowed: budget, cell, ename, evalue, limit_mb, module,"),
    ({"on": '"later"'}, "pattern[0] (my_pattern): on: 'later' is not one of"),
    ({"on": '"timeout"', "ename": '"X"'}, "pattern[0] (my_pattern): ename: a pattern with on = 'timeout' can only"),
    ({"pointer": '"see cell {later_cell}"'}, "pattern[0] (my_pattern): pointer: only a pattern with on = 'source'"),
    ({"code": '"Bad Code"'}, "pattern[0] (Bad Code): code: 'Bad Code' does not match"),
])
def test_a_bad_table_entry_is_rejected_naming_the_entry_and_key(tmp_path, change, complaint):
    entry = {**GOOD_ENTRY, **change}
    path = write_table(tmp_path, "[[pattern]]\n" + "".join(f"{key} = {value}\n" for key, value in entry.items()))

    with pytest.raises(DiagnosisTableError) as caught:
        load_table(path)

    assert str(caught.value).startswith(f"{path}: ")
    assert complaint in str(caught.value)


def test_the_good_entry_of_the_rejection_tests_loads(tmp_path):
    path = write_table(tmp_path, "[[pattern]]\n" + "".join(f"{key} = {value}\n" for key, value in GOOD_ENTRY.items()))

    assert load_table(path)[0].code == "my_pattern"


def test_a_duplicate_code_in_one_table_is_rejected(tmp_path):
    entry = '[[pattern]]\ncode = "twice"\ncategory = "x"\ntitle = "t"\nadvice = "a"\nexample = {}\n'
    path = write_table(tmp_path, entry + entry)

    with pytest.raises(DiagnosisTableError, match="code 'twice' is used by more than one pattern"):
        load_table(path)


def test_an_instructor_table_overrides_and_goes_before_the_built_in_one(tmp_path):
    path = write_table(tmp_path, """
        [[pattern]]
        code = "missing_package_cv2"
        category = "missing_package"
        ename = "ModuleNotFoundError"
        evalue = "'cv2'"
        title = "No OpenCV here"
        advice = "Use skimage from the course image instead (cell {cell})."
        example = { source = "import cv2", ename = "ModuleNotFoundError", evalue = "No module named 'cv2'" }

        [[pattern]]
        code = "course_data_file"
        category = "missing_file"
        ename = "FileNotFoundError"
        evalue = "course_data"
        title = "The course data file is not submitted"
        advice = "Do not load course_data.npz; use keras.datasets.mnist.load_data()."
        example = { ename = "FileNotFoundError", evalue = "[Errno 2] No such file or directory: 'course_data.npz'" }
        """)
    table = load_table(path)
    notebook = [cell(0, "import cv2", "error", "ModuleNotFoundError", "No module named 'cv2'"),
                cell(1, "np.load('course_data.npz')", "error", "FileNotFoundError",
                     "[Errno 2] No such file or directory: 'course_data.npz'"),
                cell(2, "np.load('other.npz')", "error", "FileNotFoundError",
                     "[Errno 2] No such file or directory: 'other.npz'")]

    diagnoses = diagnose(notebook, None, LIMITS, table)

    assert codes(diagnoses) == [(0, "missing_package_cv2"), (1, "course_data_file"), (2, "missing_file")]
    assert diagnoses[0]["advice"] == "Use skimage from the course image instead (cell 1)."
    assert [p.code for p in table].count("missing_package_cv2") == 1
    assert table[0].code == "course_data_file" and table[-1].code == load_table()[-1].code


# One old Colab-era notebook, written here from failure shapes seen in real student notebooks: each
# entry is (source, status, ename, evalue) with the messages Keras 3 / TensorFlow 2 really give.
# Between code cells sit markdown cells (the schema's index counts them; Jupyter's numbers do not).
OLD_NOTEBOOK = [
    ("!pip install keras-tuner", "ok", None, ""),
    ("import numpy as np\nimport tensorflow as tf\nfrom tensorflow import keras\nfrom keras import backend as K\n"
     "from keras.models import Sequential\nfrom keras.layers import Dense, Conv2D, AveragePooling2D, Flatten",
     "ok", None, ""),
    ("from keras.utils import np_utils", "error", "ImportError",
     "cannot import name 'np_utils' from 'keras.utils' (/usr/lib/python3/site-packages/keras/utils/__init__.py)"),
    ("import keras_tuner as kt", "error", "ModuleNotFoundError", "No module named 'keras_tuner'"),
    ("import util", "error", "ModuleNotFoundError", "No module named 'util'"),
    ("(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()\n"
     "x_train = x_train.reshape(-1, 28, 28, 1).astype('float32') / 255", "ok", None, ""),
    ("y_train = np_utils.to_categorical(y_train, 10)\ny_test = np_utils.to_categorical(y_test, 10)",
     "error", "NameError", "name 'np_utils' is not defined"),
    ("x_train, x_val = util.split(x_train)", "error", "NameError", "name 'util' is not defined"),
    ("lenet = Sequential([Conv2D(6, 5, activation='relu', input_shape=(28, 28, 1)), AveragePooling2D(),\n"
     "                    Flatten(), Dense(10, activation='softmax')])", "error", "TypeError",
     "AveragePooling2D.__init__() missing 1 required positional argument: 'pool_size'"),
    ("lenet.compile('adam', 'categorical_crossentropy', metrics=['accuracy'])\n"
     "checkpoint = keras.callbacks.ModelCheckpoint('lenet.keras', save_best_only=True)",
     "error", "NameError", "name 'lenet' is not defined"),
    ("history = lenet.fit(x_train, y_train, epochs=3, callbacks=[checkpoint])", "error", "NameError",
     "name 'lenet' is not defined"),
    ("def build(hp):\n    units = hp.Int('units', 32, 256)\n    return Sequential([Flatten(), Dense(units), Dense(10)])\n"
     "tuner = kt.RandomSearch(build, objective='val_accuracy', max_trials=3)", "error", "NameError",
     "name 'kt' is not defined"),
    ("ckpt = keras.callbacks.ModelCheckpoint('weights.best.hdf5', save_best_only=True)", "error", "ValueError",
     "The filepath provided must end in `.keras` (Keras model format). Received: filepath=weights.best.hdf5"),
    ("mlp = Sequential([Flatten(input_shape=(28, 28, 1)), Dense(128, activation='relu'), Dense(10)])\n"
     "mlp.compile('adam', 'sparse_categorical_crossentropy', metrics=['accuracy'])", "ok", None, ""),
    ("mlp.save('models/mlp.keras')", "error", "FileNotFoundError",
     "[Errno 2] No such file or directory: 'models/mlp.keras'"),
    ("from sklearn.metrics import plot_confusion_matrix", "error", "ImportError",
     "cannot import name 'plot_confusion_matrix' from 'sklearn.metrics' (/usr/lib/python3/site-packages/sklearn/metrics/__init__.py)"),
    ("plot_confusion_matrix(mlp, x_test, y_test)", "error", "NameError", "name 'plot_confusion_matrix' is not defined"),
    ("hidden = K.function([mlp.input], [mlp.layers[1].output])", "error", "AttributeError",
     "module 'keras.backend' has no attribute 'function'"),
    ("tf.compat.v1.disable_eager_execution()", "ok", None, ""),
    ("mlp.fit(x_train, y_train, epochs=1)", "error", "RuntimeError",
     "`tf.data.Dataset` only supports Python-style iteration in eager mode or within tf.function."),
    ("y_pred = mlp.predict(x_test).argmax(axis=1)", "error", "RuntimeError",
     "`tf.data.Dataset` only supports Python-style iteration in eager mode or within tf.function."),
    ("x_extra = np.load('mnist_extra.npy')", "error", "FileNotFoundError",
     "[Errno 2] No such file or directory: 'mnist_extra.npy'"),
    ("!wget -q https://example.org/data/emnist-digits.npz", "ok", None, ""),
    ("extra = np.load('emnist-digits.npz')", "error", "FileNotFoundError",
     "[Errno 2] No such file or directory: 'emnist-digits.npz'"),
    ("cnn = Sequential([Conv2D(32, 3, activation='relu'), AveragePooling2D(), Flatten(), Dense(10)])",
     "error", "TypeError", "AveragePooling2D.__init__() missing 1 required positional argument: 'pool_size'"),
]


def old_notebook() -> list[dict]:
    return [cell(2 * number + 1, source, status, ename, evalue)  # a markdown cell before each code cell
            for number, (source, status, ename, evalue) in enumerate(OLD_NOTEBOOK)]


def test_a_notebook_of_real_failure_shapes_gets_one_card_per_root_cause_with_the_right_cause():
    diagnoses = diagnose(old_notebook(), None, LIMITS)
    number = {d["cell"]: d["cell_number"] for d in diagnoses}
    cards = [(d["cell_number"], d["code"], [number[i] for i in d["dependents"]])
             for d in diagnoses if d["caused_by"] is None]

    # Jupyter numbers: the n-th code cell is In [n] (entry n - 1 of OLD_NOTEBOOK).
    assert cards == [
        (1, "shell_pip_install", [4, 12]),  # keras_tuner not installable, then kt used
        (3, "keras3_np_utils", [7]),
        (5, "local_module_not_submitted", [8]),
        (9, "keras3_pooling_size", [10, 11, 25]),  # lenet used twice; the same problem again in cnn
        (13, "keras3_checkpoint_extension", []),
        (15, "missing_folder", []),  # a write into a folder the grader does not have
        (16, "sklearn_plot_confusion_matrix", [17]),
        (18, "keras3_backend_function", []),
        (19, "tf1_disable_eager_execution", [20, 21]),
        (22, "missing_file", []),  # a read of a file that was not submitted
        (23, "shell_download", [24]),
    ]
    by_number = {d["cell_number"]: d for d in diagnoses}
    assert by_number[1]["advice"].endswith("The first error that follows from it is in cell 4.")
    assert by_number[23]["advice"].endswith("The first error that follows from it is in cell 24.")
    assert by_number[7]["because"] == "It uses `np_utils`, which cell 3 should have defined, but cell 3 failed."
    assert by_number[4]["because"] == "It needs `keras_tuner`, which the install in cell 1 cannot add in the grader."
    assert by_number[12]["caused_by"] == by_number[1]["cell"]  # through cell 4, to the root
    assert by_number[24]["because"] == ("It reads `emnist-digits.npz`, which the download in cell 23 cannot "
                                        "fetch in the grader.")
    assert by_number[25]["because"] == "The same problem as in cell 9."
    assert by_number[20]["because"].startswith("It follows from cell 19: disable_eager_execution()")
    assert by_number[9]["title"] == "AveragePooling2D needs a pool_size in Keras 3"
    assert "Cell 15 writes" in by_number[15]["advice"]


def test_a_cell_that_reads_a_name_a_failed_cell_should_have_redefined_is_a_knock_on():
    # The CNN cell reuses the name `model`; it fails, so the next cell trains the old MLP on images.
    notebook = [cell(0, "model = keras.Sequential([layers.Flatten(), layers.Dense(10)])"),
                cell(1, "model = keras.Sequential([layers.Conv2D(8, 3, input_shape=(28, 28, 1)), layers.AveragePooling2D()])",
                     "error", "TypeError", "AveragePooling2D.__init__() missing 1 required positional argument: 'pool_size'"),
                cell(2, "model.fit(x_train[..., None], y_train)", "error", "ValueError",
                     "Input 0 of layer \"dense\" is incompatible with the layer: expected axis -1 of input shape to have value 784"),
                cell(3, "for i in range(3):\n    print(i)", "error", "ZeroDivisionError", "division by zero")]

    diagnoses = diagnose(notebook, None, LIMITS)

    assert [(d["cell"], d["code"], d["caused_by"]) for d in diagnoses] == [
        (1, "keras3_pooling_size", None), (2, "unknown_error", 1), (3, "unknown_error", None)]
    assert diagnoses[0]["dependents"] == [2]


def test_a_name_used_before_the_cell_that_defines_it_is_its_own_root_cause():
    notebook = [cell(0, "model.fit(x, y)", "error", "NameError", "name 'model' is not defined"),
                cell(1, "model = keras.Sequential()"),
                cell(2, "model.summary()\nmodel.fit(x, y)")]

    [diagnosis] = diagnose(notebook, None, LIMITS)

    assert (diagnosis["code"], diagnosis["caused_by"], diagnosis["dependents"]) == ("name_not_defined", None, [])


@pytest.mark.parametrize("source, binds, uses", [
    ("%tensorflow_version 2.x\nimport tensorflow as tf\nfrom keras import layers as L", {"tf", "L"}, set()),
    ("x = x / 255\ny = [v for v in x]\ndef f(a):\n    b = a + c\n    return b", {"x", "y", "f"}, {"x", "c"}),
    ("print 'accuracy', acc\nmodel = build(k)", {"model"}, {"build", "k"}),  # Python 2: lines that parse
    ("!pip install -q opencv-python scikit-learn==1.0 'keras-tuner>=1.0'", set(), set()),
])
def test_cell_names_reads_what_a_cell_defines_and_uses(source, binds, uses):
    names = cell_names(source)

    assert (set(names.binds), set(names.uses) - {"get_ipython"}) == (binds, uses)


def test_cell_names_reads_each_statement_with_its_lines():
    names = cell_names("import numpy as np\nfrom util import *\nx = np.load(path)\ny = (x.mean()\n     + offset)")

    assert [(s.first, s.last, s.kind, set(s.binds)) for s in names.statements] == [
        (1, 1, "import", {"np"}), (2, 2, "star_import", set()), (3, 3, "code", {"x"}), (4, 5, "code", {"y"})]
    assert set(names.statements[3].reads) == {"x", "offset"} and set(names.statements[3].uses) == {"offset"}
    assert names.uses_until(3) == {"path"} and names.uses_until(None) == names.uses == {"path", "offset"}


def test_cell_names_reads_installed_modules_and_fetched_files():
    assert cell_names("%pip install -q opencv-python scikit-learn==1.0 keras-tuner>=1.0").installs == {
        "cv2", "sklearn", "keras_tuner"}
    assert cell_names("!wget https://x.org/a/mnist.npz -O digits.npz\n!unzip extra.zip\n"
                      "!curl -O https://x.org/t10k-labels-idx1-ubyte").files == {
        "mnist.npz", "digits.npz", "extra.zip", "t10k-labels-idx1-ubyte"}


def test_a_hostile_cell_source_cannot_break_the_name_reading():
    deep = "x = " + "(" * 5_000 + ")" * 5_000 + "\ny = 1"
    assert cell_names(deep).binds == {"y"}  # the nesting is refused, the readable line still counts
    long = "z = 1\n" + "#" * 30_000 + "\nw = 2"
    assert cell_names(long).binds == {"z"}  # only its first 20,000 characters are read


def test_names_a_failed_cell_defined_before_its_failing_line_are_not_blamed_on_it():
    imports = cell(0, "import numpy as np\nimport cv2\nimport pandas as pd", "error", "ModuleNotFoundError",
                   "No module named 'cv2'")
    imports["error"]["traceback"] = ["\x1b[31mModuleNotFoundError\x1b[39m  Traceback (most recent call last)",
                                     "\x1b[36mCell\x1b[39m \x1b[32mIn[1]\x1b[39m\x1b[32m, line 2\x1b[39m\n----> 2 import cv2"]
    helper = cell(4, "def load():\n    return 1\nimport skimage\ndata = load()", "error", "ModuleNotFoundError",
                  "No module named 'skimage'")  # the kept traceback lost its own frame: all its names count
    helper["error"]["traceback"] = ["Cell In[2], line 7, in build()\n----> 7 import skimage"]
    notebook = [imports,
                cell(1, "ratio = np.mean(x) / 0", "error", "ZeroDivisionError", "division by zero"),  # np exists
                cell(2, "frame = pd.DataFrame(x)", "error", "NameError", "name 'pd' is not defined"),
                cell(3, "img = cv2.resize(x, (32, 32))", "error", "NameError", "name 'cv2' is not defined"),
                helper, cell(5, "print(load() / 0)", "error", "ZeroDivisionError", "division by zero")]

    diagnoses = diagnose(notebook, None, LIMITS)

    assert [(d["cell"], d["caused_by"]) for d in diagnoses] == [(0, None), (1, None), (2, 0), (3, 0), (4, None),
                                                                (5, 4)]
