"""The class roster: read once, refused when ambiguous (:func:`read_roster`), and matched to the batch's
submissions (:func:`map_to_roster`).

Roster CSV (``--roster``, used by ``grade`` to map files to students and by ``gradebook`` / ``feedback``):
a header row, then one student per row. Columns are matched case-insensitively; only ``student_id`` is
required::

    student_id   the institution's id (written to Canvas's "SIS User ID")
    name         full name, e.g. "Ada Lovelace" or "Lovelace, Ada"
    email        used to match Gradescope submitters and Canvas logins
    canvas_id    the Canvas user id (Canvas's "ID"); a Canvas download's files are mapped by
                 it (and fill it in where it is blank)
    login        Canvas's "SIS Login ID"
    section      Canvas's "Section"

Each submission is mapped to a roster student: a Canvas file by the roster's ``canvas_id`` (never by
``student_id``, which is another id space), any other by ``student_id``; then by Canvas-style login or
email, then by name; a unique match is required, and a Canvas file is never mapped to a student whose
``canvas_id`` is another. A roster without any ``canvas_id`` is taken to list Canvas ids as
``student_id`` (as the demo's does), unless the file's login, email or name points at another student.
What cannot be mapped is kept with ``student_id=None`` and a problem string, never dropped.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

from autograder.intake.inputs import read_csv_table, refuse_blank, refuse_repeats
from autograder.intake.layouts import Candidate, squash

ROSTER_COLUMNS = ("student_id", "name", "email", "canvas_id", "login", "section")


def read_roster(path: str | Path) -> pd.DataFrame:
    """The class roster (columns :data:`ROSTER_COLUMNS`), refused when it is ambiguous.

    Ambiguous: a blank student_id, a student_id on two rows, or a canvas_id on two rows (one Canvas
    account cannot be two students). A value that is one row's canvas_id and another's student_id is
    not: Canvas files are matched by canvas_id, everything else by student_id.
    """
    roster = read_csv_table(path, ROSTER_COLUMNS[:1], ROSTER_COLUMNS[1:], what="roster")
    refuse_blank(path, roster, "student_id")
    refuse_repeats(path, roster, "student_id")
    refuse_repeats(path, roster, "canvas_id", "; one Canvas account cannot be two students")
    return roster


def name_forms(name: str) -> set[str]:
    """A name as written and in Canvas's login style (family name first)."""
    if "," in name:
        family, given = name.split(",", 1)
    else:
        *given_parts, family = name.split() or [""]
        given = " ".join(given_parts)
    return {squash(given + family), squash(family + given)} - {""}


def canvas_id_of(student: Any) -> str:
    return str(getattr(student, "canvas_id", "") or "")


def map_to_roster(candidates: list[Candidate], roster: pd.DataFrame) -> list[Candidate]:
    """Each candidate's submission given its roster student, or ``student_id=None`` and why (module doc)."""
    students = list(roster.itertuples(index=False))
    by_id = {s.student_id: s for s in students}
    by_canvas = {canvas_id_of(s): s for s in students if canvas_id_of(s)}
    by_email = defaultdict(list)
    by_login = defaultdict(list)
    by_name = defaultdict(list)
    for student in students:
        if student.email:
            by_email[student.email.lower()].append(student)
            by_login[squash(student.email.split("@")[0])].append(student)
        for form in name_forms(student.name or ""):
            by_login[form].append(student)
            by_name[form].append(student)
    for candidate in candidates:
        who = candidate.identity
        named = [
            ("login", by_login.get(squash(who.login), []) if who.login else []),
            ("email", by_email.get(who.email.lower(), []) if who.email else []),
            ("name", by_name.get(squash(who.name), []) if who.name else []),
        ]
        if who.canvas_id and by_canvas:  # a student whose Canvas id is another did not upload this file
            named = [(how, [s for s in found if canvas_id_of(s) in ("", who.canvas_id)]) for how, found in named]
        # Canvas ids are looked up among the roster's Canvas ids; only a roster that has none is taken to
        # list Canvas ids as its student ids.
        canvas_ids = by_canvas if by_canvas else by_id
        lookups = [("Canvas id", [canvas_ids[who.canvas_id]] if who.canvas_id in canvas_ids else []),
                   ("id", [by_id[who.id]] if who.id in by_id else []), *named]
        submission = candidate.submission
        matches = next(((how, found) for how, found in lookups if found), None)
        by_other = next(((how, found) for how, found in named if found), None)
        described = ", ".join(f"{k} {v!r}" for k, v in (("Canvas id", who.canvas_id), ("id", who.id),
                                                         ("login", who.login), ("name", who.name),
                                                         ("email", who.email)) if v)
        if (matches and matches[0] == "Canvas id" and not by_canvas and by_other
                and matches[1][0].student_id not in {s.student_id for s in by_other[1]}):
            problem = (f"its Canvas id is student_id {matches[1][0].student_id!r} on the roster but its "
                       f"{by_other[0]} is another student's ({described}); add a canvas_id column to the roster")
        elif matches and len({s.student_id for s in matches[1]}) == 1:
            student = matches[1][0]
            submission.student_id, submission.student_name = student.student_id, student.name or None
            continue
        elif matches:
            problem = f"matches several roster students by {matches[0]} ({described})"
        else:
            problem = f"not on the roster ({described or submission.source_name})"
        submission.student_id = None
        submission.problems.append(problem)
    return candidates
