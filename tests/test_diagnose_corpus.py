"""One card per real root cause on a corpus of failing notebooks run for real (tests/diagnosis_corpus.py):
knock-ons, knock-ons of knock-ons and failures downstream of a failed data load are grouped under
their root, and "most likely a bug in that cell" is said only of a cell whose inputs all came from
cells that ran."""
from __future__ import annotations

import pytest

from autograder.score.diagnose.matcher import diagnose
from diagnosis_corpus import CORPUS, LIMITS, run_corpus_notebook

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def diagnosed(tmp_path_factory) -> dict[str, list[dict]]:
    root = tmp_path_factory.mktemp("corpus")
    return {name: diagnose(run_corpus_notebook(cells, root / name), None, LIMITS) for name, cells in CORPUS.items()}


def cells_with_role(name: str, *roles: str) -> list[int]:
    return [index for index, (_, role) in enumerate(CORPUS[name]) if set(role.split("+")) & set(roles)]


@pytest.mark.parametrize("name", CORPUS)
def test_each_real_root_cause_gets_one_card_with_its_knock_ons_under_it(diagnosed, name):
    diagnoses = diagnosed[name]
    roots = [d for d in diagnoses if d["caused_by"] is None]

    assert [d["cell"] for d in roots] == cells_with_role(name, "root", "note")
    assert sorted(i for d in roots for i in d["dependents"]) == cells_with_role(name, "knock_on")


def test_the_corpus_has_as_many_cards_as_real_root_causes(diagnosed):
    failures = len({(name, d["cell"]) for name, ds in diagnosed.items() for d in ds if d["cell_status"] == "error"})
    cards = sum(d["caused_by"] is None for ds in diagnosed.values() for d in ds)

    assert (failures, cards) == (27, 15)  # 22 on main: 9 knock-ons stood alone, 2 real bugs hid under others


def test_a_card_that_names_its_cause_is_never_a_root(diagnosed):
    for diagnoses in diagnosed.values():
        for d in diagnoses:
            if d["because"] is not None:
                [root] = [r for r in diagnoses if r["caused_by"] is None and d["cell"] in r["dependents"]]
                assert d["caused_by"] == root["cell"], d


def test_most_likely_a_bug_only_where_every_input_came_from_cells_that_ran(diagnosed):
    said = {(name, d["cell"]) for name, ds in diagnosed.items() for d in ds
            if d["caused_by"] is None and "most likely a bug in that cell" in d["advice"]}

    # in chains, x was bound in cell 8 before its failing line; cell 10 is a syntax error
    assert said == {("old_apis", 7), ("chains", 7), ("chains", 8), ("chains", 9)}


def test_each_knock_on_says_which_cell_and_name_it_follows_from(diagnosed):
    def because(name: str, cell: int) -> str:
        return next(d["because"] for d in diagnosed[name] if d["cell"] == cell)

    # through a cell that ran: it copied the labels that cell 2 failed to convert
    assert because("chains", 3) == ("It uses `y_val`, made from `y_train`, which cell 2 should have defined, "
                                    "but cell 2 failed.")
    assert because("chains", 11) == "It reads `x_train.npy`, which cell 11 should have written, but cell 11 failed."
    assert because("chains", 6) == "It uses `centred_flat`, which cell 6 should have defined, but cell 6 failed."
    assert because("old_apis", 6) == "It uses `dump`, which cell 3 should have defined, but cell 3 failed."
    assert because("old_apis", 8) == "It needs `scikeras`, which the install in cell 9 cannot add in the grader."
    assert because("downloads", 2) == "It uses `test`, which the download in cell 2 cannot fetch in the grader."
    assert because("downloads", 7) == "It reads `emnist.npz`, which the download in cell 6 cannot fetch in the grader."
    assert because("downloads", 9) == "It uses `images`, which cell 9 did not finish loading: cell 9 failed."
    assert because("downloads", 11) == ("It reads `mnist_train.csv`, which the download in cell 11 cannot fetch "
                                        "in the grader.")  # an empty file, not a missing one
    assert because("downloads", 13) == ("It reads `digits/x.npy`, which the download in cell 13 cannot fetch "
                                        "in the grader.")  # a file the archive would have held
    chain_root = {d["cell"]: d for d in diagnosed["chains"]}[4]
    assert chain_root["dependents"] == [5, 6]  # the knock-on of a knock-on is under the root
