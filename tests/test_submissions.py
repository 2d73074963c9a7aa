"""Batch input: folders, zips, Canvas and Gradescope layouts, roster mapping, one submission per student."""
from __future__ import annotations

import csv
import stat
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from autograder.intake.archives import ZipLimits
from autograder.intake.inputs import InputError, SubmissionsError
from autograder.intake.submissions import collect

NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def make_files(root: Path, names: dict[str, str] | list[str]) -> Path:
    items = names.items() if isinstance(names, dict) else ((n, NOTEBOOK) for n in names)
    for name, text in items:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def by_id(submissions):
    return {s.student_id: s for s in submissions}


def write_roster(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([("student_id", "name", "email"), *rows])
    return path


def test_folder_of_notebooks_uses_file_stems(tmp_path):
    root = make_files(tmp_path / "batch", ["alice.ipynb", "bob.ipynb", ".DS_Store", "__MACOSX/._alice.ipynb"])
    subs = collect(root)
    assert [(s.student_id, s.path.name, s.problems) for s in subs] == [("alice", "alice.ipynb", []),
                                                                      ("bob", "bob.ipynb", [])]
    assert not any(s.late for s in subs)


def test_student_folders_with_zero_or_two_notebooks(tmp_path):
    root = make_files(tmp_path / "batch", ["carol/hw.ipynb", "carol/.ipynb_checkpoints/hw-checkpoint.ipynb",
                                           "dave/hw.ipynb", "dave/hw_final.ipynb", "erin/answers.pdf"])
    subs = by_id(collect(root))
    assert subs["carol"].path == root / "carol" / "hw.ipynb" and subs["carol"].reason is None
    assert subs["dave"].path is None and subs["dave"].reason == "multiple_notebooks"
    assert "hw.ipynb, hw_final.ipynb" in subs["dave"].problems[0]
    assert subs["erin"].path is None and subs["erin"].reason == "no_notebook"


def test_a_notebook_is_preferred_over_other_files_of_the_same_student(tmp_path):
    root = make_files(tmp_path / "batch", {"frank.ipynb": NOTEBOOK, "frank.pdf": "%PDF", "gina.docx": "x"})
    subs = by_id(collect(root))
    assert subs["frank"].path.name == "frank.ipynb"
    assert any("frank.pdf" in p for p in subs["frank"].problems)
    assert subs["gina"].reason == "no_notebook" and subs["gina"].path is None


def make_zip(path: Path, members: dict[str, str], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def test_zip_of_a_folder_is_extracted_into_the_workdir(tmp_path):
    archive = make_zip(tmp_path / "batch.zip", {"hw2/alice.ipynb": NOTEBOOK, "hw2/bob.ipynb": NOTEBOOK,
                                                "__MACOSX/hw2/._bob.ipynb": "junk"})
    subs = collect(archive, workdir=tmp_path / "work")
    assert [s.student_id for s in subs] == ["alice", "bob"]
    assert all(s.path.is_file() and (tmp_path / "work") in s.path.parents for s in subs)
    assert not list((tmp_path / "work").rglob("__MACOSX"))


@pytest.mark.parametrize("evil", ["../escape.ipynb", "hw2/../../escape.ipynb", "/abs/escape.ipynb",
                                  "C:/windows/escape.ipynb", "..\\escape.ipynb"])
def test_zip_with_path_traversal_is_refused(tmp_path, evil):
    archive = make_zip(tmp_path / "batch.zip", {"alice.ipynb": NOTEBOOK, evil: NOTEBOOK})
    with pytest.raises(SubmissionsError, match="outside the archive"):
        collect(archive, workdir=tmp_path / "work")
    assert not (tmp_path / "escape.ipynb").exists()
    assert not list((tmp_path / "work").rglob("*.ipynb"))  # nothing half-extracted is left


def test_zip_with_a_symlink_is_refused(tmp_path):
    archive = make_zip(tmp_path / "batch.zip", {"alice.ipynb": NOTEBOOK}, symlinks={"bob.ipynb": "/etc/passwd"})
    with pytest.raises(SubmissionsError, match="symbolic link"):
        collect(archive, workdir=tmp_path / "work")


def test_zip_bomb_caps(tmp_path):

    archive = make_zip(tmp_path / "bomb.zip", {"a.ipynb": "0" * 50_000, "b.ipynb": "0" * 50_000})
    with pytest.raises(SubmissionsError, match="unpack"):
        collect(archive, workdir=tmp_path / "work", zip_limits=ZipLimits(bytes=60_000))
    with pytest.raises(SubmissionsError, match="2 entries"):
        collect(archive, workdir=tmp_path / "work2", zip_limits=ZipLimits(members=1))
    assert len(collect(archive, workdir=tmp_path / "work3")) == 2  # the defaults let a class's zip through


def test_zip_needs_a_workdir_and_garbage_is_refused(tmp_path):
    archive = make_zip(tmp_path / "batch.zip", {"alice.ipynb": NOTEBOOK})
    with pytest.raises(SubmissionsError, match="workdir"):
        collect(archive)
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(SubmissionsError, match="folder or a .zip"):
        collect(tmp_path / "notes.txt")


def test_canvas_names_late_flag_and_resubmissions(tmp_path):
    root = make_files(tmp_path / "canvas", [
        "doejane_12345_67890_hw2.ipynb",
        "doejane_12345_67999_hw2-1.ipynb",     # re-submitted: Canvas appends -1, newer file id
        "smithjohn_LATE_22222_70000_mnist_homework.ipynb",
        "leeann_33333_71000_report.pdf",
    ])
    subs = by_id(collect(root))
    assert set(subs) == {"12345", "22222", "33333"}
    jane = subs["12345"]
    assert jane.path.name == "doejane_12345_67999_hw2-1.ipynb" and jane.student_name == "doejane"
    assert not jane.late and any("kept the newest" in p for p in jane.problems)
    assert subs["22222"].late and subs["22222"].path.name.endswith("mnist_homework.ipynb")
    assert subs["33333"].path is None and subs["33333"].reason == "no_notebook"
    assert any("report.pdf is not a notebook" in p for p in subs["33333"].problems)


def test_canvas_names_mapped_to_the_roster(tmp_path):
    root = make_files(tmp_path / "canvas", ["doejane_12345_67890_hw2.ipynb", "smithjohn_LATE_22222_70000_hw2.ipynb",
                                            "nobodyhere_44444_71000_hw2.ipynb", "stray.ipynb"])
    roster = write_roster(tmp_path / "roster.csv", [("S001", "Jane Doe", "jdoe@uni.edu"),
                                                    ("S002", "Smith, John", "js@uni.edu")])
    subs = collect(root, roster=roster)
    mapped = by_id(s for s in subs if s.student_id)
    assert mapped["S001"].student_name == "Jane Doe" and mapped["S001"].path.name.startswith("doejane")
    assert mapped["S002"].late and mapped["S002"].student_name == "Smith, John"
    unmapped = [s for s in subs if s.student_id is None]
    assert sorted(s.source_name for s in unmapped) == ["nobodyhere_44444_71000_hw2.ipynb", "stray.ipynb"]
    assert all(any("not on the roster" in p for p in s.problems) for s in unmapped)
    assert all(s.path is not None for s in unmapped)  # reported with their file, never dropped


GRADESCOPE_YML = """\
submission_1001:
  :submitters:
  - :name: Jane Doe
    :sid: 'S001'
    :email: jdoe@uni.edu
  :created_at: 2024-03-01 10:00:00.123456789 -08:00
  :score: 0.0
  :status: processed
submission_1002:
  :submitters:
  - :name: Pat Pair
    :sid: 'S003'
    :email: pat@uni.edu
  - :name: Quinn Pair
    :sid: 'S004'
    :email: quinn@uni.edu
  :created_at: 2024-03-03 09:00:00.000000000 -08:00
  :status: processed
  :late: true
submission_1003:
  :submitters:
  - :name: Jane Doe
    :sid: 'S001'
    :email: jdoe@uni.edu
  :created_at: 2024-03-02 10:00:00.000000000 -08:00
  :score: !ruby/object:BigDecimal 18:0.0
  :status: processed
submission_1004:
  :submitters:
  - :name: Rae Empty
    :sid: 'S005'
  :created_at: 2024-03-01 08:00:00.000000000 -08:00
"""


def make_gradescope(root: Path) -> Path:
    make_files(root, {"submission_metadata.yml": GRADESCOPE_YML,
                      "submission_1001/hw.ipynb": NOTEBOOK, "submission_1002/mnist_homework.ipynb": NOTEBOOK,
                      "submission_1003/hw.ipynb": NOTEBOOK, "submission_1003/README.md": "notes",
                      "submission_1004/answers.py": "print(1)", "submission_9999/hw.ipynb": NOTEBOOK})
    return root


def test_gradescope_export_with_metadata(tmp_path):
    root = make_gradescope(tmp_path / "export")
    subs = collect(root)
    mapped = by_id(s for s in subs if s.student_id)
    assert set(mapped) == {"S001", "S003", "S004", "S005"}
    jane = mapped["S001"]
    assert jane.path == root / "submission_1003" / "hw.ipynb"  # the newer of her two submissions
    assert jane.submitted_at == "2024-03-02T10:00:00-08:00" and not jane.late
    assert any("kept the newest (submission_1003)" in p for p in jane.problems)
    assert mapped["S003"].path == mapped["S004"].path == root / "submission_1002" / "mnist_homework.ipynb"
    assert mapped["S003"].late and mapped["S004"].student_name == "Quinn Pair"
    assert mapped["S005"].reason == "no_notebook" and mapped["S005"].path is None
    [orphan] = [s for s in subs if s.student_id is None]
    assert orphan.source_name == "submission_9999" and "not listed" in orphan.problems[0]


def test_gradescope_due_date_marks_late(tmp_path):
    root = make_gradescope(tmp_path / "export")
    due = datetime(2024, 3, 1, 18, 30, tzinfo=timezone.utc)  # 10:30 in -08:00
    subs = by_id(collect(root, due=due))
    assert subs["S001"].late  # 2024-03-02 is after the due date
    assert not subs["S005"].late  # 08:00 -08:00 is before it


def test_gradescope_zip_with_roster_reports_unmapped(tmp_path):
    root = make_gradescope(tmp_path / "export")
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in root.rglob("*"):
            zf.write(path, Path("assignment_42_export") / path.relative_to(root))
    roster = write_roster(tmp_path / "roster.csv", [("900", "Jane Doe", "JDOE@uni.edu"),  # found by email
                                                    ("S003", "Pat Pair", "pat@uni.edu"),
                                                    ("S004", "Quinn Pair", "other@uni.edu")])
    subs = collect(archive, workdir=tmp_path / "work", roster=roster)
    mapped = by_id(s for s in subs if s.student_id)
    assert set(mapped) == {"900", "S003", "S004"}
    assert mapped["900"].path.parent.name == "submission_1003"
    unmapped = sorted((s.source_name, s.problems[-1]) for s in subs if s.student_id is None)
    assert [name for name, _ in unmapped] == ["submission_1004", "submission_9999"]
    assert "not on the roster" in unmapped[0][1] and "'S005'" in unmapped[0][1]


def test_roster_maps_folder_stems_by_id_email_and_login(tmp_path):
    root = make_files(tmp_path / "batch", ["S001.ipynb", "jdoe.ipynb", "smithjohn.ipynb", "twin.ipynb"])
    roster = write_roster(tmp_path / "roster.csv", [("S001", "Ann Ames", "ann@uni.edu"),
                                                    ("S002", "Jane Doe", "jdoe@uni.edu"),
                                                    ("S003", "John Smith", "js@uni.edu"),
                                                    ("S004", "Twin One", "twin@uni.edu"),
                                                    ("S005", "Twin Two", "twin@other.edu")])
    subs = collect(root, roster=roster)
    assert {s.student_id: s.source_name for s in subs if s.student_id} == {
        "S001": "S001.ipynb", "S002": "jdoe.ipynb", "S003": "smithjohn.ipynb"}
    [ambiguous] = [s for s in subs if s.student_id is None]
    assert ambiguous.source_name == "twin.ipynb" and "several roster students" in ambiguous.problems[0]


def test_two_files_mapped_to_one_student_without_timestamps_are_not_guessed(tmp_path):
    root = make_files(tmp_path / "batch", ["S002.ipynb", "jdoe.ipynb"])
    roster = write_roster(tmp_path / "roster.csv", [("S002", "Jane Doe", "jdoe@uni.edu")])
    [jane] = collect(root, roster=roster)
    assert jane.student_id == "S002" and jane.path is None and jane.reason == "multiple_notebooks"


def test_roster_without_student_id_column_is_an_error(tmp_path):
    root = make_files(tmp_path / "batch", ["alice.ipynb"])
    (tmp_path / "roster.csv").write_text("id,name\n1,Alice\n")
    with pytest.raises(InputError, match="no student_id column"):
        collect(root, roster=tmp_path / "roster.csv")


def test_gradescope_metadata_cannot_point_outside_the_export(tmp_path):
    make_files(tmp_path, {"outside/hw.ipynb": NOTEBOOK})
    root = make_files(tmp_path / "export", {"submission_metadata.yml":
                                            "../outside:\n  :submitters:\n  - :name: Mal\n    :sid: 'S9'\n"
                                            "submission_1:\n  :submitters:\n  - :name: Ann\n    :sid: 'S1'\n",
                                            "submission_1/hw.ipynb": NOTEBOOK})
    _, mal = collect(root)  # sorted by student id: S1, S9
    assert mal.student_id == "S9" and mal.path is None and mal.reason == "no_notebook"
    assert "no such folder" in mal.problems[0]


# --- issue 22: the right notebook for the right student -------------------------------------------

def write_canvas_roster(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([("student_id", "name", "canvas_id"), *rows])
    return path


def test_canvas_files_are_mapped_by_canvas_id_never_by_student_id(tmp_path):
    # Bob's institution id is Alice's Canvas id: Canvas files are matched by canvas_id, so each gets their own.
    root = make_files(tmp_path / "canvas", ["smithalice_12345_902_mnist_homework.ipynb",
                                            "jonesbob_67890_501_mnist_homework.ipynb"])
    roster = write_canvas_roster(tmp_path / "roster.csv", [("S-100", "Alice Smith", "12345"),
                                                           ("12345", "Bob Jones", "67890")])
    subs = by_id(collect(root, roster=roster))
    assert set(subs) == {"S-100", "12345"}
    assert subs["S-100"].path.name == "smithalice_12345_902_mnist_homework.ipynb"
    assert subs["S-100"].student_name == "Alice Smith" and subs["S-100"].canvas_id == "12345"
    assert subs["12345"].path.name == "jonesbob_67890_501_mnist_homework.ipynb"
    assert subs["12345"].student_name == "Bob Jones" and subs["12345"].canvas_id == "67890"


def test_a_canvas_file_is_not_given_to_a_student_whose_canvas_id_is_another(tmp_path):
    root = make_files(tmp_path / "canvas", ["jonesbob_55555_501_mnist_homework.ipynb",
                                            "smithalice_12345_502_mnist_homework.ipynb"])
    roster = write_canvas_roster(tmp_path / "roster.csv", [("S-100", "Alice Smith", "12345"),
                                                           ("S-200", "Bob Jones", "67890")])
    [alice, stranger] = collect(root, roster=roster)
    assert alice.student_id == "S-100"
    assert stranger.student_id is None and "not on the roster" in stranger.problems[0]  # login says Bob, id says no


def test_a_roster_without_canvas_ids_is_read_as_listing_canvas_ids_unless_the_login_disagrees(tmp_path):
    root = make_files(tmp_path / "canvas", ["martinalice_1001_5001_mnist_homework.ipynb",
                                            "smithalice_12345_902_mnist_homework.ipynb"])
    roster = write_roster(tmp_path / "roster.csv", [("1001", "Alice Martin", "amartin@uni.edu"),
                                                    ("12345", "Bob Jones", "bob@uni.edu"),
                                                    ("S-100", "Alice Smith", "asmith@uni.edu")])
    subs = collect(root, roster=roster)
    mapped = by_id(s for s in subs if s.student_id)
    assert set(mapped) == {"1001"}  # the demo's roster: student ids are Canvas ids
    [doubtful] = [s for s in subs if s.student_id is None]
    assert doubtful.source_name.startswith("smithalice_12345") and "add a canvas_id column" in doubtful.problems[0]


@pytest.mark.parametrize("rows, words", [
    ([("S1", "Ann", "111"), ("S2", "Ben", "111")],
     ["canvas_id '111'", "lines 2 (student_id 'S1') and 3 (student_id 'S2')"]),
    ([("S1", "Ann", "111"), ("S1", "Ben", "222")], ["student_id 'S1'", "lines 2 and 3"]),
])
def test_an_ambiguous_roster_is_refused_naming_the_rows(tmp_path, rows, words):
    root = make_files(tmp_path / "canvas", ["annx_111_1_mnist_homework.ipynb"])
    roster = write_canvas_roster(tmp_path / "roster.csv", rows)
    with pytest.raises(InputError, match="listed more than once") as refused:
        collect(root, roster=roster)
    assert all(word in str(refused.value) for word in words) and "\n" not in str(refused.value)


def test_two_notebooks_in_one_canvas_submission_grade_the_one_named_like_the_template(tmp_path):
    root = make_files(tmp_path / "canvas", [
        "doejane_12345_100_mnist_homework.ipynb", "doejane_12345_200_scratch.ipynb",
        "roeann_22222_300_MNIST-Homework.ipynb", "roeann_22222_400_mnist_homework-1.ipynb",
        "roeann_22222_500_notes.ipynb",
        "leebo_33333_600_a.ipynb", "leebo_33333_700_b.ipynb"])
    subs = by_id(collect(root, notebook_name="mnist_homework.ipynb"))
    jane = subs["12345"]
    assert jane.path.name == "doejane_12345_100_mnist_homework.ipynb"
    assert jane.ignored == ["doejane_12345_200_scratch.ipynb"]
    assert "kept the one named like the template (doejane_12345_100_mnist_homework.ipynb)" in jane.problems[0]
    ann = subs["22222"]  # two named like the template: the newer of those two
    assert ann.path.name == "roeann_22222_400_mnist_homework-1.ipynb"
    assert ann.ignored == ["roeann_22222_300_MNIST-Homework.ipynb", "roeann_22222_500_notes.ipynb"]
    assert "kept the newest of those named like the template" in ann.problems[0]
    bo = subs["33333"]  # none named like the template: the newest, as before
    assert bo.path.name == "leebo_33333_700_b.ipynb" and bo.ignored == ["leebo_33333_600_a.ipynb"]


def test_a_student_folder_with_a_scratch_notebook_grades_the_one_named_like_the_template(tmp_path):
    root = make_files(tmp_path / "batch", ["carol/mnist_homework.ipynb", "carol/scratch.ipynb",
                                           "dave/hw.ipynb", "dave/hw_final.ipynb"])
    subs = by_id(collect(root, notebook_name="mnist_homework.ipynb"))
    assert subs["carol"].path == root / "carol" / "mnist_homework.ipynb"
    assert subs["carol"].ignored == ["carol/scratch.ipynb"]
    assert subs["dave"].path is None and subs["dave"].reason == "multiple_notebooks"  # no guess between two


def test_a_folder_without_notebooks_is_refused_not_graded_as_students_named_after_its_files(tmp_path):
    root = make_files(tmp_path / "batch", {"report.pdf": "%PDF", "notes.txt": "hi", "ada/answers.py": "x = 1"})
    with pytest.raises(SubmissionsError, match="holds no notebook, only ada, notes.txt, report.pdf"):
        collect(root)
