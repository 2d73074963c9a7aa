"""Intake: every malformed kind of file gets a reason and a message; good notebooks come out clean."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.intake.notebook import PRINTED_FILE, find_notebooks, load_printed, read_notebook, save_printed
from autograder.results import REASONS
from autograder.intake.printed import MAX_PRINTED, MAX_PRINTED_TEXT


def good_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Architectures\nWe compare five networks."),
                nbformat.v4.new_code_cell("import numpy as np\nx = np.zeros(3)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def write(tmp_path: Path, content: bytes | str | dict | list, name: str = "submission.ipynb") -> Path:
    path = tmp_path / name
    if isinstance(content, (dict, list)):
        content = json.dumps(content)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def notebook_dict(nb: nbformat.NotebookNode | None = None) -> dict:
    return json.loads(nbformat.writes(nb or good_notebook()))


def assert_rejected(result, reason: str, *words: str) -> None:
    assert not result.ok and result.notebook is None
    assert result.reason == reason and reason in REASONS
    for word in words:
        assert word.lower() in result.message.lower(), result.message


def test_good_notebook_is_accepted_with_its_sha256(tmp_path, assignment):
    path = write(tmp_path, nbformat.writes(good_notebook()))
    result = read_notebook(path, assignment)
    assert result.ok and result.reason is None
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [c.source for c in result.notebook.cells] == [c.source for c in good_notebook().cells]
    nbformat.validate(result.notebook)


@pytest.mark.parametrize("content, words", [
    (b"print('hello')\n", ["not valid json", "line 1"]),
    (b"", ["empty"]),
    (b"   \n", ["empty"]),
])
def test_not_json(tmp_path, assignment, content, words):
    assert_rejected(read_notebook(write(tmp_path, content), assignment), "invalid_notebook", *words)


def test_truncated_json(tmp_path, assignment):
    text = nbformat.writes(good_notebook())
    result = read_notebook(write(tmp_path, text[: len(text) // 2]), assignment)
    assert_rejected(result, "invalid_notebook", "cut off")


def zip_bytes(tmp_path: Path) -> bytes:
    archive = tmp_path / "nb.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("notebook.ipynb", nbformat.writes(good_notebook()))
    return archive.read_bytes()


@pytest.mark.parametrize("kind, words", [
    ("zip", ["zip archive renamed to .ipynb"]),
    ("pdf", ["pdf document renamed"]),
    ("png", ["png image renamed"]),
    ("html", ["html"]),
    ("utf16", ["utf-16"]),
])
def test_other_formats_renamed_to_ipynb_are_named(tmp_path, assignment, kind, words):
    content = {
        "zip": lambda: zip_bytes(tmp_path),
        "pdf": lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
        "png": lambda: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        "html": lambda: b"<!DOCTYPE html>\n<html><body>notebook</body></html>",
        "utf16": lambda: nbformat.writes(good_notebook()).encode("utf-16"),
    }[kind]()
    assert_rejected(read_notebook(write(tmp_path, content), assignment), "invalid_notebook", *words)


def test_non_utf8_bytes(tmp_path, assignment):
    content = nbformat.writes(good_notebook()).replace("five", "fünf").encode("latin-1")
    result = read_notebook(write(tmp_path, content), assignment)
    assert_rejected(result, "invalid_notebook", "not utf-8", "0xfc")


def test_utf8_byte_order_mark_is_tolerated(tmp_path, assignment):
    result = read_notebook(write(tmp_path, b"\xef\xbb\xbf" + nbformat.writes(good_notebook()).encode()), assignment)
    assert result.ok
    assert any("byte-order mark" in note for note in result.notes)


@pytest.mark.parametrize("content, words", [
    ([1, 2, 3], ["json list"]),
    ("\"just a string\"", ["json string"]),
    ({"hello": "world"}, ["no 'cells'"]),
    ({"nbformat": 4, "nbformat_minor": 5, "metadata": {}}, ["no 'cells' list"]),
    ({"nbformat": "4", "cells": []}, ["'nbformat' version"]),
])
def test_wrong_shape_json(tmp_path, assignment, content, words):
    assert_rejected(read_notebook(write(tmp_path, content), assignment), "invalid_notebook", *words)


@pytest.mark.parametrize("major", [2, 5])
def test_other_nbformat_majors_are_unsupported(tmp_path, assignment, major):
    document = notebook_dict()
    document["nbformat"] = major
    result = read_notebook(write(tmp_path, document), assignment)
    assert_rejected(result, "unsupported_nbformat", f"version {major}")


def test_nbformat3_is_upgraded_and_accepted(tmp_path, assignment):
    v3 = {
        "nbformat": 3, "nbformat_minor": 0,
        "metadata": {"name": "hw"},
        "worksheets": [{"metadata": {}, "cells": [
            {"cell_type": "heading", "level": 1, "metadata": {}, "source": "Results"},
            {"cell_type": "code", "language": "python", "collapsed": False, "metadata": {},
             "input": ["x = 1\n", "y = 2"], "prompt_number": 4,
             "outputs": [{"output_type": "stream", "stream": "stdout", "text": "All tests passed!"}]},
        ]}],
    }
    result = read_notebook(write(tmp_path, v3), assignment)
    assert result.ok, result.message
    assert result.notebook.nbformat == 4 and result.notebook.nbformat_minor == nbformat.v4.nbformat_minor
    assert [(c.cell_type, c.source) for c in result.notebook.cells] == [("markdown", "# Results"),
                                                                      ("code", "x = 1\ny = 2")]
    assert result.notebook.cells[1].outputs == [] and result.notebook.cells[1].execution_count is None
    assert "upgraded from nbformat 3 to 4" in result.notes


@pytest.mark.parametrize("break_cell, path", [
    (lambda cell: cell.update(cell_type="banana"), "cells[1]"),
    (lambda cell: cell.update(source=42), "cells[1].source"),
    (lambda cell: cell.pop("outputs"), "cells[1]"),
])
def test_schema_invalid_cells_name_the_first_error_path(tmp_path, assignment, break_cell, path):
    document = notebook_dict()
    break_cell(document["cells"][1])
    result = read_notebook(write(tmp_path, document), assignment)
    assert_rejected(result, "invalid_notebook", f"at {path}:")


def test_repairable_schema_problems_are_repaired_by_nbformat(tmp_path, assignment):
    document = notebook_dict()
    document["cells"][1]["id"] = document["cells"][0]["id"]  # duplicate cell id
    document["metadata"]["kernelspec"] = {"name": 7}  # invalid: display_name missing, name not a string
    result = read_notebook(write(tmp_path, document), assignment)
    assert result.ok, result.message
    ids = [c.id for c in result.notebook.cells]
    assert len(set(ids)) == len(ids)
    assert any("repaired" in note for note in result.notes)


def test_deeply_nested_json_is_refused_without_recursion_error(tmp_path, assignment):
    result = read_notebook(write(tmp_path, "[" * 100_000 + "]" * 100_000), assignment)
    assert_rejected(result, "invalid_notebook", "nested 100000 levels")
    nested_in_a_cell = notebook_dict()
    nested_in_a_cell["cells"][1]["metadata"]["x"] = json.loads("[" * 500 + "]" * 500)
    result = read_notebook(write(tmp_path, nested_in_a_cell), assignment)
    assert_rejected(result, "invalid_notebook", "nested")


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path, assignment):
    nb = good_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("[" * 5000 + " \\\" {{{{ "))
    assert read_notebook(write(tmp_path, nbformat.writes(nb)), assignment).ok


def test_oversized_file_is_refused_before_reading(tmp_path, assignment):
    tiny = dataclasses.replace(assignment, execution=dataclasses.replace(assignment.execution,
                                                                         max_submission_mb=0.001))
    path = write(tmp_path, nbformat.writes(good_notebook()) + " " * 2000)
    result = read_notebook(path, tiny)
    assert_rejected(result, "too_large", "limit is 0.001 mb")
    assert result.sha256 is None  # the bytes were never read


def test_missing_file_is_a_rejection_not_a_crash(tmp_path, assignment):
    assert_rejected(read_notebook(tmp_path / "nope.ipynb", assignment), "invalid_notebook", "could not be read")


def test_tampered_metadata_is_replaced_by_the_instructors(tmp_path, assignment):
    nb = good_notebook()
    nb.metadata = nbformat.NotebookNode({
        "kernelspec": {"name": "evil-kernel", "display_name": "Evil", "language": "python"},
        "otter": {"tests": {"q1": "passed"}}, "widgets": {"state": {}},
    })
    nb.cells[1].metadata = nbformat.NotebookNode({"tags": ["raises-exception", "mine"], "execution": {"iopub.status.idle": "2024-01-01T00:00:00Z"}})
    result = read_notebook(write(tmp_path, nbformat.writes(nb)), assignment)
    assert result.ok
    instructor = nbformat.read(assignment.master_notebook, as_version=4).metadata.kernelspec
    assert result.notebook.metadata == {"kernelspec": instructor, "language_info": {"name": "python"}}
    assert result.notebook.cells[1].metadata == {"tags": ["mine"]}
    assert any("'evil-kernel' ignored" in note for note in result.notes)


def test_fake_all_tests_passed_outputs_are_cleared(tmp_path, assignment):
    nb = good_notebook()
    nb.cells[1].execution_count = 7
    nb.cells[1].outputs = [
        nbformat.v4.new_output("stream", text="q1 results: All tests passed!\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": "Score: 100/100"}, execution_count=7),
    ]
    result = read_notebook(write(tmp_path, nbformat.writes(nb)), assignment)
    assert result.ok
    code = result.notebook.cells[1]
    assert code.outputs == [] and code.execution_count is None
    assert any("claiming that tests passed in 1 cell" in note for note in result.notes)
    assert any("cleared outputs" in note for note in result.notes)


def test_grader_test_cells_are_removed_and_check_cells_kept(tmp_path, assignment):
    nb = good_notebook()
    tagged = nbformat.v4.new_code_cell("assert mlp_model is not None")
    tagged.metadata["tags"] = ["hidden-test"]
    nbgrader = nbformat.v4.new_code_cell("assert True")
    nbgrader.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "t1", "points": 2}
    student_answer = nbformat.v4.new_code_cell("mlp_model = build()")
    student_answer.metadata["nbgrader"] = {"grade": True, "solution": True, "grade_id": "a1", "points": 2}
    nb.cells += [
        nbformat.v4.new_raw_cell("# BEGIN TESTS"),
        nbformat.v4.new_code_cell("assert x.shape == (3,)"),
        nbformat.v4.new_code_cell("# HIDDEN\nassert x.sum() == 0"),
        nbformat.v4.new_raw_cell("# END TESTS"),
        tagged, nbgrader, student_answer,
        nbformat.v4.new_code_cell("x = 2\n### BEGIN HIDDEN TESTS\nassert x == 2\n### END HIDDEN TESTS"),
        nbformat.v4.new_code_cell('""" # BEGIN TEST CONFIG\npoints: 1\n""" # END TEST CONFIG\nassert 1'),
        nbformat.v4.new_code_cell('grader.check("q1")'),
        nbformat.v4.new_code_cell("# hidden layer sizes\nhidden = 128"),
    ]
    result = read_notebook(write(tmp_path, nbformat.writes(nb)), assignment)
    assert result.ok
    assert [c.source for c in result.notebook.cells] == [
        nb.cells[0].source, nb.cells[1].source, "mlp_model = build()", 'grader.check("q1")',
        "# hidden layer sizes\nhidden = 128"]
    assert "removed 8 grader test cell(s)" in result.notes


def test_markdown_attachments_are_dropped(tmp_path, assignment):
    nb = good_notebook()
    nb.cells[0].attachments = {"plot.png": {"image/png": "iVBORw0KGgo="}}
    result = read_notebook(write(tmp_path, nbformat.writes(nb)), assignment)
    assert result.ok and "attachments" not in result.notebook.cells[0]
    assert any("attachments" in note for note in result.notes)


def test_old_v4_minor_is_brought_to_current_with_cell_ids(tmp_path, assignment):
    document = notebook_dict()
    document["nbformat_minor"] = 2
    for cell in document["cells"]:
        del cell["id"]
    result = read_notebook(write(tmp_path, document), assignment)
    assert result.ok
    assert result.notebook.nbformat_minor == nbformat.v4.nbformat_minor
    assert all(cell.get("id") for cell in result.notebook.cells)


def test_find_notebooks_ignores_clutter(tmp_path):
    # Exactly one notebook per student is the collection step's rule (tests/test_submissions.py).
    folder = tmp_path / "student"
    for name in ("hw.ipynb", ".ipynb_checkpoints/hw-checkpoint.ipynb", "__MACOSX/._hw.ipynb", ".hidden.ipynb"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(nbformat.writes(good_notebook()))
    assert find_notebooks(folder) == [folder / "hw.ipynb"]
    (folder / "sub").mkdir()
    (folder / "sub" / "copy.ipynb").write_text(nbformat.writes(good_notebook()))
    assert find_notebooks(folder) == [folder / "hw.ipynb", folder / "sub" / "copy.ipynb"]


# --- the submitted outputs, kept as untrusted evidence for the report's claims ------------------------

def notebook_with_outputs() -> nbformat.NotebookNode:
    nb = good_notebook()
    fit_log = ("Epoch 7/7\n\r 1/430 ━━━━ 0s - accuracy: 0.6250 - loss: 1.2\r 2/430 ━━━━ 0s - accuracy: 0.7812 - loss: 1.1"
               "\r430/430 ━━━━ 5s 11ms/step - accuracy: 0.9750 - loss: 0.5811 - val_accuracy: 0.9702\n"
               "313/313 ━━━━ 1s 2ms/step - accuracy: 0.9763 - loss: 0.0761\n")
    nb.cells += [
        nbformat.v4.new_code_cell("rnn_model.fit(x_train, y_train)\nrnn_model.evaluate(x_test, y_test)", outputs=[
            nbformat.v4.new_output("stream", text=fit_log),
            nbformat.v4.new_output("execute_result", data={"text/plain": "[0.0761, 0.9763]"}, execution_count=3)]),
        nbformat.v4.new_code_cell("for name, m in models.items():\n    print(name, m.evaluate(x_test, y_test))",
                                  outputs=[nbformat.v4.new_output("stream", text=[
                                      "MLP test accuracy: 97.94 %\n", "CNN test accuracy: 0.9911\n",
                                      "GRU test accuracy: 0.4241 (one epoch)\n", "LSTM test accuracy: 0.08\n",
                                      "Train accuracy: 0.9990\n", "Trained 6 epochs in 42.5 s with 235146 params\n"])]),
    ]
    return nb


def test_the_submitted_outputs_accuracies_are_kept_before_the_outputs_are_cleared(tmp_path, assignment):
    result = read_notebook(write(tmp_path, nbformat.writes(notebook_with_outputs())), assignment)
    assert result.ok and all(c.get("outputs", []) == [] for c in result.notebook.cells)
    kept = {(p.architecture, round(p.value, 4), p.cell) for p in result.printed}
    # The recurrent cell's numbers belong to the SimpleRNN its code names; the loop's lines name their own
    # model. Not kept: progress frames a carriage return overwrote, a Keras progress line's bare (running
    # training) accuracy, training accuracies, losses, times and parameter counts.
    assert kept == {("simple_rnn", 0.9702, 2), ("simple_rnn", 0.9763, 2),
                    ("mlp", 0.9794, 3), ("cnn", 0.9911, 3), ("gru", 0.4241, 3)}  # a weak model's, not under chance
    assert any(p.text == "MLP test accuracy: 97.94 %" for p in result.printed)
    assert any("untrusted evidence" in note for note in result.notes)
    assert read_notebook(write(tmp_path, nbformat.writes(good_notebook()), "plain.ipynb"), assignment).printed == ()


def test_printed_evidence_is_capped_and_keeps_the_last_numbers(tmp_path, assignment):
    nb = good_notebook()
    flood = "x" * 200_000 + "".join(f"val_accuracy: 0.{i:06d}\n" for i in range(590_000, 600_000))
    nb.cells.append(nbformat.v4.new_code_cell("history = model.fit(x, y)", outputs=[
        nbformat.v4.new_output("stream", text=flood),
        nbformat.v4.new_output("stream", text="Test accuracy: 0.9876 with a very long line " + "y" * 5000)]))
    result = read_notebook(write(tmp_path, nbformat.writes(nb)), assignment)
    assert result.ok and len(result.printed) == MAX_PRINTED
    assert result.printed[-2].value == pytest.approx(0.599999)  # the end of each output is read: its last numbers
    assert result.printed[-1].value == pytest.approx(0.9876) and len(result.printed[-1].text) <= MAX_PRINTED_TEXT


def test_printed_evidence_round_trips_through_its_file_and_a_tampered_file_loses_only_bad_entries(tmp_path,
                                                                                                  assignment):
    result = read_notebook(write(tmp_path, nbformat.writes(notebook_with_outputs())), assignment)
    path = tmp_path / PRINTED_FILE
    save_printed(result.printed, path)
    assert load_printed(path) == result.printed
    assert load_printed(tmp_path / "missing.json") == ()
    path.write_text(json.dumps([{"value": 0.98, "architecture": "cnn", "text": "ok", "cell": 1},
                                {"value": 7, "architecture": "cnn", "text": "too big", "cell": 1},
                                {"value": 0.98, "architecture": "transformer", "text": "unknown", "cell": 1},
                                {"value": "0.98", "architecture": None, "text": "a string", "cell": 1},
                                {"value": 0.98, "architecture": None, "text": "z" * 10_000, "cell": 2}, "junk"]))
    assert [(p.architecture, p.text[:5], len(p.text)) for p in load_printed(path)] == [
        ("cnn", "ok", 2), (None, "zzzzz", MAX_PRINTED_TEXT)]
    path.write_text("{not json")
    assert load_printed(path) == ()
