"""Failing notebooks in the shapes seen in public student notebooks, for the knock-on grouping of
diagnoses: each is run for real (the sandboxed kernel, no TensorFlow), so every error, message and
traceback is the one the grader records.

Each notebook is a list of (source, role): role is "root" for a cell whose failure is a cause of its
own, "note" for a cell that runs but is the cause of later failures (its note is their card),
"knock_on" for a failure that follows from an earlier one, "ok" for a cell that runs; "note+knock_on"
is a cell whose failure follows from its own note.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

from autograder.assignment import Execution
from autograder.run import kernel_session
from autograder.run.job import Job
from autograder.run.sandbox.spec import Limits, SandboxSpec

IMPORTS = "import numpy as np\nimport pandas as pd"
DATA = "rng = np.random.default_rng(0)\nx_train = rng.random((200, 784))\ny_train = rng.integers(0, 10, 200)"

#: Old APIs that no longer import, and the cells that then use the names they should have bound.
OLD_APIS = [
    (IMPORTS, "ok"),
    ("from sklearn.metrics import plot_confusion_matrix\nimport numpy as np", "root"),
    ("from sklearn.externals.joblib import *", "root"),
    (DATA, "ok"),
    ("from sklearn.linear_model import LogisticRegression\n"
     "clf = LogisticRegression(max_iter=20).fit(x_train[:50], y_train[:50])", "ok"),
    ("plot_confusion_matrix(clf, x_train, y_train)", "knock_on"),
    ("dump(clf, 'clf.pkl')", "knock_on"),  # a name the failed star import should have bound
    ("scores = x_train @ np.ones(10)", "root"),  # a bug of its own: np was imported in cell 1 as well
    ("!pip install -q scikeras\nfrom scikeras.wrappers import KerasClassifier", "note+knock_on"),  # its own install
    ("search = KerasClassifier(model=None)", "knock_on"),
]

#: A preprocessing cell fails halfway; a cell that runs copies the stale labels; the next cell fails on
#: them. Then a chain: a failure, a cell using its name, a cell using that one's.
CHAINS = [
    (IMPORTS + "\n" + DATA, "ok"),
    ("x_train = x_train.reshape(-1, 28, 28)\ny_train = to_categorical(y_train, 10)", "root"),
    ("y_val = y_train[:50]", "ok"),
    ("print('classes:', y_val.shape[1])", "knock_on"),  # IndexError: the labels were never one-hot
    ("pixels = x_train.reshape(len(x_train), -1)\nmean_image = pixels.mean(axis=O)\ncentred = pixels - mean_image",
     "root"),
    ("centred_flat = centred.reshape(len(centred), -1)", "knock_on"),
    ("norms = np.linalg.norm(centred_flat, axis=1)", "knock_on"),
    ("x = np.arange(10)\ngrid = x.reshape(3, 4)", "root"),  # a genuine bug: every input came from cells that ran
    ("score = x @ np.ones(5)", "root"),  # another: x was bound before cell 8's failing line
    ("print(centred.shape]", "root"),  # Python cannot read it: nothing ran, so nothing it reads is to blame
    ("np.save('features/x_train.npy', x_train)", "root"),  # a folder the grader does not have
    ("x_saved = np.load('features/x_train.npy')", "knock_on"),  # the file cell 11 should have written
]

#: Data that cannot be downloaded in the grader, and every later cell that uses it.
DOWNLOADS = [
    (IMPORTS, "ok"),
    ("try:\n    test = pd.read_csv('https://example.org/mnist/mnist_test.csv')\n"
     "except Exception as error:\n    print('download failed:', error)\n    test = pd.DataFrame()", "note"),
    ("y_test = test['label'].values", "knock_on"),  # KeyError: the download gave an empty table
    ("x_test = test.drop(columns='label').values.reshape(-1, 28, 28) / 255.0", "knock_on"),
    ("print(x_test.shape, y_test.shape)", "knock_on"),
    ("import urllib.request\nurllib.request.urlretrieve('https://example.org/emnist.npz', 'emnist.npz')\n"
     "extra = np.load('emnist.npz')", "root"),
    ("x_extra = extra['x']", "knock_on"),
    ("letters = np.load('emnist.npz')['y']", "knock_on"),  # the file the failed download should have fetched
    ("import os\nimages = []\nfor name in sorted(os.listdir('digits')):\n"
     "    images.append(np.load(os.path.join('digits', name)))", "root"),
    ("x_more = np.stack(images)", "knock_on"),  # ValueError: the load failed, the list stayed empty
    ("!wget -q https://example.org/mnist/mnist_train.csv -O mnist_train.csv", "note"),
    ("train = pd.read_csv('mnist_train.csv')", "knock_on"),  # EmptyDataError: wget -O leaves an empty file
    ("!wget -q https://example.org/digits.zip\n!unzip -q digits.zip -d digits", "note"),
    ("x_digits = np.load('digits/x.npy')", "knock_on"),  # a file the archive would have held
]

CORPUS = {"old_apis": OLD_APIS, "chains": CHAINS, "downloads": DOWNLOADS}
LIMITS = {"budget": 120, "cell_timeout": 60, "limit_mb": 2048}


def run_corpus_notebook(cells: list[tuple[str, str]], job_root: Path) -> list[dict]:
    """The executed cells of one notebook, as the result's ``execution.cells`` holds them."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source, _ in cells])
    job = Job(job_root, SandboxSpec(limits=Limits(wall_seconds=LIMITS["budget"], memory_mb=LIMITS["limit_mb"])),
              config=Execution())
    job.prepare()
    record = kernel_session.run_notebook(nb, job, budget=LIMITS["budget"], cell_timeout=LIMITS["cell_timeout"],
                                         on_error="continue", models={}, probes={}, max_output_bytes=2**20,
                                         bubblewrap=True)
    assert record.stopped is None, record.stopped
    return record.as_dict()["cells"]
