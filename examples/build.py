"""Build the example submissions `make demo` grades, from the student template and the master's solutions.

Four students, as a Canvas bulk download names them (``login[_LATE]_userid_fileid_name``):

- alice: everything done, trained briefly (1-2 epochs, so the demo stays short), an honest report;
- bob: preprocessing, MLP and CNN only, and a report without insights;
- carol: Keras 2 habits (``lr=``, ``!pip install``, ``np_utils``) break her MLP, SimpleRNN and LSTM cells:
  what ran is graded, the rest diagnosed;
- dave: late, MLP and CNN and LSTM done, with a report that overstates the MLP;
- carol's report copies the reference's numbers, which her own notebook does not reach.

Run ``python examples/build.py`` to regenerate them (the output is deterministic).
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "student_template" / "mnist_homework.ipynb"
MASTER = ROOT / "reference_solutions" / "mnist_homework.ipynb"
OUT = ROOT / "examples" / "submissions"
DEMO_EPOCHS = 'EPOCHS = {"mlp": 2, "cnn": 1, "simple_rnn": 1, "lstm": 1, "gru": 1}'
SOLUTION = re.compile(r"# BEGIN SOLUTION NO PROMPT\n(.*?)# END SOLUTION", re.S)


def master_solutions() -> tuple[list[str], list[str]]:
    """The solution code of every TODO cell, in order, and the model report's markdown cells."""
    master = nbformat.read(MASTER, as_version=4)
    code = [m.group(1).rstrip() for c in master.cells if c.cell_type == "code"
            for m in [SOLUTION.search(c.source)] if m]
    report, inside = [], False
    for cell in master.cells:
        if cell.cell_type == "raw" and cell.source.startswith("# BEGIN SOLUTION"):
            inside = True
        elif cell.cell_type == "raw" and cell.source.startswith("# END SOLUTION"):
            inside = False
        elif inside and cell.cell_type == "markdown":
            report.append(cell.source)
    return code, report


def filled(answers: dict[int, str], report: list[str]) -> nbformat.NotebookNode:
    """The template with TODO cell ``i`` replaced by ``answers[i]`` and the report placeholder by ``report``."""
    nb = nbformat.read(TEMPLATE, as_version=4)
    cells, todo = [], 0
    for cell in nb.cells:
        if cell.cell_type == "code" and "# TODO" in cell.source:
            if todo in answers:  # the lines above the TODO (say, loading the data) stay
                cell.source = cell.source[:cell.source.index("# TODO")] + answers[todo]
            todo += 1
        elif cell.cell_type == "code" and "EPOCHS = {" in cell.source:
            cell.source = re.sub(r"EPOCHS = \{[^}]*\}", DEMO_EPOCHS, cell.source)
        elif cell.cell_type == "markdown" and cell.source.startswith("_Replace this text with your report"):
            cells += [nbformat.v4.new_markdown_cell(text) for text in report]
            continue
        cells.append(cell)
    nb.cells = cells
    for index, cell in enumerate(nb.cells):
        cell.id = f"cell-{index}"
    return nb


#: Test accuracies as the students' own (briefly trained) notebooks measured them, for their reports.
MEASURED = {"MLP": 0.9697, "CNN": 0.9785, "SimpleRNN": 0.9324, "LSTM": 0.9385, "GRU": 0.9256}
CONFUSION = 6  # the TODO cells: preprocessing, MLP, CNN, SimpleRNN, LSTM, GRU, confusion matrix
MODEL_VARIABLES = {"mlp": "mlp_model", "cnn": "cnn_model", "simple_rnn": "rnn_model", "lstm": "lstm_model",
                   "gru": "gru_model"}
INSIGHTS = """## Insights

With only one or two epochs each, the CNN is still the most accurate network: its shared 3x3 filters and
pooling find strokes wherever they are, while the MLP sees every pixel as an unrelated input and needs more
data and epochs to learn the same shapes. The gated LSTM and GRU beat the plain SimpleRNN, whose state
forgets the top rows of a digit before it reaches the bottom, but they were the slowest to train per epoch
on the CPU because each of the 28 steps waits for the previous one. The confusion matrix shows the usual
mix-ups between 4 and 9 and between 3 and 5. More epochs would help every model, the recurrent ones most."""


def results_table(rows: dict[str, float]) -> str:
    lines = "\n".join(f"| {name} | {accuracy:.4f} | - | - |" for name, accuracy in rows.items())
    return ("## Results\n\nTest accuracy on the 10,000 MNIST test images, as my notebook measured it:\n\n"
            "| Model | Test accuracy | Parameters | Training time (s) |\n|---|---|---|---|\n" + lines)


def confusion_cell(code: list[str], archs: tuple[str, ...]) -> str:
    """The master's q7 solution, over the models this student built."""
    trained = ", ".join(f'"{arch}": {MODEL_VARIABLES[arch]}' for arch in archs)
    return re.sub(r"trained = \{[^}]*\}", "trained = {" + trained + "}", code[CONFUSION])


def examples() -> dict[str, nbformat.NotebookNode]:
    code, report = master_solutions()
    everything = dict(enumerate(code))
    architectures, master_results, _ = report
    carol = dict(everything)
    carol[1] = code[1].replace("keras.optimizers.Adam(1e-3)", "keras.optimizers.Adam(lr=1e-3)")
    carol[3] = "!pip install opencv-python\nimport cv2\n" + code[3]
    carol[4] = "from keras.utils import np_utils\n" + code[4]
    bob = {0: code[0], 1: code[1], 2: code[2], CONFUSION: confusion_cell(code, ("mlp", "cnn"))}
    dave = {0: code[0], 1: code[1], 2: code[2], 4: code[4], CONFUSION: confusion_cell(code, ("mlp", "cnn", "lstm"))}
    overstated = {"MLP": 0.9990, "CNN": MEASURED["CNN"], "LSTM": MEASURED["LSTM"]}
    return {
        "alice_1001_5001_mnist_homework.ipynb": filled(everything, [architectures, results_table(MEASURED), INSIGHTS]),
        "bob_1002_5002_mnist_homework.ipynb": filled(bob, [architectures, results_table(
            {"MLP": MEASURED["MLP"], "CNN": MEASURED["CNN"]})]),
        "carol_1003_5003_mnist_homework.ipynb": filled(carol, [architectures, master_results, INSIGHTS]),
        "dave_LATE_1004_5004_mnist_homework.ipynb": filled(dave, [architectures, results_table(overstated),
                                                                  INSIGHTS]),
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, nb in examples().items():
        nbformat.write(nb, OUT / name)
        print(OUT / name)


if __name__ == "__main__":
    main()
