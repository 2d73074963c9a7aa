"""Gradebook: one row per student from the result JSONs, then exports for otter, Canvas and Gradescope.

Pipeline: load results -> one row per submission -> roster (missing / not on roster) -> manual
overrides -> late penalty -> latest submission per student -> write CSV/JSON files atomically.

``gradebook.csv`` columns, always in this order::

    student_id, student_name, q1..qN (assignment order), raw_total, late_penalty, override_note,
    total, max_score, percent, status, reason, review, submitted_at, late

``raw_total`` is the sum of the question scores (overrides included); ``total = raw_total - late_penalty``;
``percent`` is ``100 * total / max_score``. ``review`` lists the models the notebook trained that
earned nothing, as ``arch: code`` (codes in :data:`autograder.review.REVIEW_REASONS`). ``status`` is the result's status (graded / rejected /
error), ``missing`` for a roster student without a result, or ``not_on_roster`` for a result whose
student is not in the roster. When a student has several results, the latest ``submitted_at`` counts.

Late policy (``--late-policy``), applied to ``raw_total``:

* ``none``              no penalty (the default);
* ``zero``              any late submission scores 0;
* ``10%/day,max=50%``   10% of the points per started day late, at most 50% (``/hour`` works too;
  without ``max=`` the penalty can reach 100%).

Lateness is ``submitted_at - --due``; a submission without a timestamp (or without ``--due``) counts
as one unit late when its result says ``late``. A ``--due`` without a UTC offset is local time.

Overrides CSV (``--overrides``), columns ``student_id, question, score, reason``: ``question`` is a
question id (the score replaces the graded one) or ``late_penalty`` (replaces the computed penalty in
points, e.g. 0 for an excused extension). Each one is listed in ``override_note``.

Exports written next to ``gradebook.csv``:

* ``final_grades.csv``: otter-grader's layout (``otter grade``): ``file``, one column per question,
  ``total_points_earned``, ``percent_correct`` (a fraction), ``grading_status``; the first row holds the
  points possible (``file = points-per-question``). ``file`` is the submission key (result file stem).
* ``canvas_grades.csv``: Canvas gradebook import: ``Student, ID, SIS User ID, SIS Login ID, Section``
  and one assignment column. Canvas matches an existing assignment by a header ``Assignment Name (id)``
  (``--canvas-assignment-id``); a header without ``(id)`` makes Canvas create a new assignment. The
  second row is Canvas's ``Points Possible`` row. Optional roster columns ``canvas_id``, ``login`` and
  ``section`` fill ``ID``, ``SIS Login ID`` and ``Section``; ``SIS User ID`` is the ``student_id``.
* ``gradescope/<key>/results.json``: one Gradescope autograder result per submission, each check a
  visible test carrying its student-facing message (never its TA-only ``detail``).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from nbconvert.filters import strip_ansi
# otter-grader's own column names, so final_grades.csv keeps its layout.
from otter.grade.utils import POINTS_POSSIBLE_LABEL as OTTER_POINTS_ROW
from otter.grade.utils import SCORES_DICT_FILE_KEY as OTTER_FILE
from otter.grade.utils import SCORES_DICT_GRADING_STATUS_KEY as OTTER_STATUS
from otter.grade.utils import SCORES_DICT_PERCENT_CORRECT_KEY as OTTER_PERCENT
from otter.grade.utils import SCORES_DICT_TOTAL_POINTS_KEY as OTTER_TOTAL

from autograder.assignment import Assignment, load_assignment
from autograder.results import atomic_write_text, read_result

SUMMARY_COLUMNS = ["raw_total", "late_penalty", "override_note", "total", "max_score", "percent",
                   "status", "reason", "review", "submitted_at", "late"]
#: Columns holding text a student may control, in the CSVs a spreadsheet will open.
STUDENT_TEXT_COLUMNS = ("student_name", "Student")
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
STUDENT_TEXT_LIMIT = 2000
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def gradebook_columns(assignment: Assignment) -> list[str]:
    return ["student_id", "student_name", *(q.id for q in assignment.questions), *SUMMARY_COLUMNS]


# --- reading results ------------------------------------------------------------------------------

def load_results(results_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Every ``RESULTS/results/<key>.json``, by key, in key order."""
    paths = sorted((Path(results_dir) / "results").glob("*.json"))
    return {path.stem: read_result(path) for path in paths}


def plain_text(value: Any, limit: int = STUDENT_TEXT_LIMIT) -> str:
    """Student-controlled text made inert for display: no ANSI codes or control characters, bounded.

    HTML escaping is the template's job (autoescape); this removes what escaping does not.
    """
    text = _CONTROL_CHARS.sub("", strip_ansi("" if value is None else str(value)))
    return text if len(text) <= limit else text[:limit] + " … [truncated]"


# --- late policy ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LatePolicy:
    """A share of the points lost per started ``unit`` late, capped at ``cap``."""

    rate: float = 0.0
    unit: timedelta = timedelta(days=1)
    cap: float = 1.0

    @classmethod
    def parse(cls, text: str) -> LatePolicy:
        text = text.strip().lower()
        if text == "none":
            return cls()
        if text == "zero":
            return cls(rate=1.0)
        match = re.fullmatch(r"(\d+(?:\.\d+)?)%/(day|hour)(?:,\s*max=(\d+(?:\.\d+)?)%)?", text)
        if not match:
            raise ValueError(f"late policy {text!r}: expected 'none', 'zero' or like '10%/day,max=50%'")
        rate, unit, cap = match.groups()
        return cls(rate=float(rate) / 100, unit=timedelta(**{f"{unit}s": 1}),
                   cap=min(float(cap) / 100, 1.0) if cap else 1.0)

    def fraction(self, units_late: int) -> float:
        return min(self.rate * units_late, self.cap)


def parse_time(value: str | None) -> datetime | None:
    """An ISO timestamp as an aware datetime; one without an offset is taken as local time."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.astimezone()


def units_late(submitted_at: str | None, late_flag: bool, due: datetime | None, unit: timedelta) -> int:
    submitted = parse_time(submitted_at)
    if due is None or submitted is None:
        return int(bool(late_flag))
    return max(0, math.ceil((submitted - due) / unit))


# --- building the gradebook -----------------------------------------------------------------------

def submission_rows(results: dict[str, dict[str, Any]], assignment: Assignment) -> pd.DataFrame:
    """One row per result: question scores as graded, plus who, when and how it went."""
    rows = []
    for key, result in results.items():
        submission = result.get("submission") or {}
        scores = {q["id"]: float(q.get("score") or 0.0) for q in result.get("questions") or []}
        rows.append({
            "student_id": str(submission.get("student_id") or key),
            "student_name": submission.get("student_name") or "",
            **{q.id: scores.get(q.id, 0.0) for q in assignment.questions},
            "status": result.get("status") or "error",
            "result_status": result.get("status") or "error",
            "reason": result.get("reason") or "",
            "review": "; ".join(f"{r['arch']}: {r['code']}" for r in result.get("review") or []),
            "submitted_at": submission.get("submitted_at") or "",
            "late": bool(submission.get("late")),
            "graded_at": (result.get("grader") or {}).get("graded_at") or "",
            "submission": key,
        })
    return pd.DataFrame(rows, columns=[*gradebook_columns(assignment)[:2 + len(assignment.questions)],
                                       "status", "result_status", "reason", "review", "submitted_at", "late",
                                       "graded_at", "submission"])


def apply_roster(rows: pd.DataFrame, roster: pd.DataFrame, assignment: Assignment) -> pd.DataFrame:
    """Flag results from unknown students, add roster students without a result, take roster names."""
    repeated = roster["student_id"][roster["student_id"].duplicated()]
    if len(repeated):
        raise ValueError(f"roster: student_id {repeated.iloc[0]!r} is listed more than once")
    on_roster = rows["student_id"].isin(roster["student_id"])
    rows.loc[~on_roster, "status"] = "not_on_roster"
    names = roster.set_index("student_id")["name"]
    rows.loc[on_roster, "student_name"] = rows.loc[on_roster, "student_id"].map(names)
    absent = roster[~roster["student_id"].isin(rows["student_id"])]
    missing = pd.DataFrame({
        "student_id": absent["student_id"], "student_name": absent["name"],
        **{q.id: 0.0 for q in assignment.questions},
        "status": "missing", "result_status": "", "reason": "", "review": "", "submitted_at": "", "late": False,
        "graded_at": "", "submission": "",
    })
    return pd.concat([rows, missing], ignore_index=True) if len(missing) else rows


def apply_overrides(rows: pd.DataFrame, overrides: pd.DataFrame, assignment: Assignment) -> pd.DataFrame:
    """Replace question scores (or the late penalty) and say so in ``override_note``."""
    maxima = {q.id: q.points for q in assignment.questions}
    rows["override_note"] = ""
    rows["penalty_override"] = math.nan
    for line, override in enumerate(overrides.itertuples(index=False), start=2):
        where = f"overrides line {line}"
        target = rows["student_id"] == str(override.student_id)
        if not target.any():
            raise ValueError(f"{where}: unknown student_id {override.student_id!r}")
        try:
            score = float(override.score)
        except ValueError:
            raise ValueError(f"{where}: score {override.score!r} is not a number") from None
        if override.question == "late_penalty":
            if score < 0:
                raise ValueError(f"{where}: a late penalty cannot be negative")
            rows.loc[target, "penalty_override"] = score
            old = "computed"
        elif override.question in maxima:
            if not 0 <= score <= maxima[override.question]:
                raise ValueError(f"{where}: score {score} outside 0..{maxima[override.question]:g}")
            old = ", ".join(f"{v:g}" for v in rows.loc[target, override.question].unique())
            rows.loc[target, override.question] = score
        else:
            raise ValueError(f"{where}: unknown question {override.question!r} "
                             f"(expected one of {sorted(maxima)} or 'late_penalty')")
        note = f"{override.question}: {old} -> {score:g} ({override.reason})"
        rows.loc[target, "override_note"] = rows.loc[target, "override_note"].map(
            lambda previous: f"{previous}; {note}" if previous else note)
    return rows


def apply_totals(rows: pd.DataFrame, assignment: Assignment, due: datetime | None,
                 policy: LatePolicy) -> pd.DataFrame:
    question_ids = [q.id for q in assignment.questions]
    units = [units_late(s, f, due, policy.unit) for s, f in zip(rows["submitted_at"], rows["late"])]
    rows["late"] = [u > 0 for u in units]
    rows["raw_total"] = rows[question_ids].sum(axis=1).round(4)
    computed = (rows["raw_total"] * [policy.fraction(u) for u in units]).round(2)
    rows["late_penalty"] = rows["penalty_override"].fillna(computed).clip(upper=rows["raw_total"])
    rows["total"] = (rows["raw_total"] - rows["late_penalty"]).round(4)
    rows["max_score"] = assignment.max_score
    rows["percent"] = (100 * rows["total"] / assignment.max_score).round(2)
    return rows.drop(columns="penalty_override")


def build_submissions(results: dict[str, dict[str, Any]], assignment: Assignment, *,
                      roster: pd.DataFrame | None = None, overrides: pd.DataFrame | None = None,
                      due: datetime | None = None, policy: LatePolicy = LatePolicy()) -> pd.DataFrame:
    """Every submission (and every missing roster student), scored.

    Gradebook columns, then ``result_status`` (the result's own status, which ``not_on_roster`` hides),
    ``graded_at`` and ``submission`` (the result key, empty for a missing student).
    """
    rows = submission_rows(results, assignment)
    if roster is not None:
        rows = apply_roster(rows, roster, assignment)
    if overrides is None:
        overrides = pd.DataFrame(columns=["student_id", "question", "score", "reason"])
    rows = apply_overrides(rows, overrides, assignment)
    rows = apply_totals(rows, assignment, due, policy)
    return rows[[*gradebook_columns(assignment), "result_status", "graded_at", "submission"]]


def latest_per_student(submissions: pd.DataFrame) -> pd.DataFrame:
    """The gradebook proper: each student's latest submission (by submitted_at, then graded_at)."""
    def instants(column: str) -> pd.Series:
        return pd.to_datetime(submissions[column].map(parse_time), utc=True)

    ordered = submissions.assign(_submitted=instants("submitted_at"), _graded=instants("graded_at")).sort_values(
        ["student_id", "_submitted", "_graded", "submission"], kind="stable", na_position="first")
    latest = ordered.drop_duplicates("student_id", keep="last")
    return latest.drop(columns=["_submitted", "_graded"]).reset_index(drop=True)


# --- exports --------------------------------------------------------------------------------------

def otter_final_grades(gradebook: pd.DataFrame, assignment: Assignment) -> pd.DataFrame:
    question_ids = [q.id for q in assignment.questions]
    submitted = gradebook[gradebook["submission"] != ""]
    points = {OTTER_FILE: OTTER_POINTS_ROW, **{q.id: q.points for q in assignment.questions},
              OTTER_TOTAL: assignment.max_score, OTTER_PERCENT: 1, OTTER_STATUS: "--"}
    graded = pd.DataFrame({
        OTTER_FILE: submitted["submission"],
        **{qid: submitted[qid] for qid in question_ids},
        OTTER_TOTAL: submitted["total"],
        OTTER_PERCENT: (submitted["total"] / assignment.max_score).round(4),
        OTTER_STATUS: [otter_status(s, r) for s, r in zip(submitted["result_status"], submitted["reason"])],
    })
    return pd.concat([pd.DataFrame([points]), graded], ignore_index=True)


def otter_status(result_status: str, reason: str) -> str:
    """otter writes "Completed" or the error that stopped grading."""
    return "Completed" if result_status == "graded" else f"{result_status}: {reason}"


def canvas_grades(gradebook: pd.DataFrame, roster: pd.DataFrame | None, assignment: Assignment,
                  canvas_assignment_id: str | None) -> pd.DataFrame:
    title = assignment.title or assignment.name
    column = f"{title} ({canvas_assignment_id})" if canvas_assignment_id else title
    extra = (roster.set_index("student_id") if roster is not None else pd.DataFrame()).reindex(
        gradebook["student_id"], columns=["canvas_id", "login", "section"]).fillna("")
    students = pd.DataFrame({
        "Student": gradebook["student_name"].to_numpy(), "ID": extra["canvas_id"].to_numpy(),
        "SIS User ID": gradebook["student_id"].to_numpy(), "SIS Login ID": extra["login"].to_numpy(),
        "Section": extra["section"].to_numpy(), column: gradebook["total"].to_numpy(),
    })
    points = pd.DataFrame([{"Student": "    Points Possible", column: assignment.max_score}])
    return pd.concat([points, students], ignore_index=True)[[*CANVAS_COLUMNS, column]].fillna("")


def gradescope_result(result: dict[str, Any], row: pd.Series) -> dict[str, Any]:
    """Gradescope's results.json: the (penalised, overridden) score, each check a visible test."""
    tests = [{"name": f"{q['id']} {plain_text(q.get('title'), 200)}: {check['name']}",
              "score": check["score"], "max_score": check["max_score"],
              "output": plain_text(check.get("message")), "visibility": "visible"}
             for q in result.get("questions") or [] for check in q.get("checks") or []]
    lines = [plain_text(result.get("message"))]
    if row["late_penalty"]:
        lines.append(f"Late penalty: -{row['late_penalty']:g} points.")
    if row["override_note"]:
        lines.append(f"Adjusted by your instructor: {row['override_note']}")
    return {"score": float(row["total"]), "output": "\n".join(line for line in lines if line),
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def csv_text(frame: pd.DataFrame) -> str:
    """CSV for spreadsheets: names are plain text that cannot start a formula (CSV injection)."""
    def inert(value: str) -> str:
        text = plain_text(value, 200)
        return "'" + text if text[:1] in ("=", "+", "-", "@") else text
    frame = frame.copy()
    for column in set(STUDENT_TEXT_COLUMNS) & set(frame.columns):
        frame[column] = frame[column].map(inert)
    return frame.to_csv(index=False, lineterminator="\n")


def write_gradebook(results_dir: str | Path, output: str | Path, assignment: Assignment, *,
                    roster: pd.DataFrame | None = None, overrides: pd.DataFrame | None = None,
                    due: datetime | None = None, policy: LatePolicy = LatePolicy(),
                    canvas_assignment_id: str | None = None) -> list[Path]:
    """Write gradebook.csv (at ``output``) and the exports beside it; returns the paths written."""
    results = load_results(results_dir)
    submissions = build_submissions(results, assignment, roster=roster, overrides=overrides,
                                    due=due, policy=policy)
    gradebook = latest_per_student(submissions)
    output = Path(output)
    written = {
        output: csv_text(gradebook[gradebook_columns(assignment)]),
        output.with_name("final_grades.csv"): csv_text(otter_final_grades(gradebook, assignment)),
        output.with_name("canvas_grades.csv"): csv_text(
            canvas_grades(gradebook, roster, assignment, canvas_assignment_id)),
    }
    for _, row in submissions[submissions["submission"] != ""].iterrows():
        path = output.parent / "gradescope" / row["submission"] / "results.json"
        written[path] = json.dumps(gradescope_result(results[row["submission"]], row), indent=2) + "\n"
    for path, text in written.items():
        atomic_write_text(path, text)
    return list(written)


def read_table(path: str | Path, required: list[str]) -> pd.DataFrame:
    """A CSV of strings (ids keep their leading zeros) that must hold the ``required`` columns."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    table.columns = table.columns.str.strip()
    absent = [c for c in required if c not in table.columns]
    if absent:
        raise ValueError(f"{path}: missing column(s) {absent}; expected at least {required}")
    return table


# --- command line ---------------------------------------------------------------------------------

def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", metavar="RESULTS", help="directory holding results/<key>.json")
    parser.add_argument("-o", "--output", metavar="CSV",
                        help="gradebook CSV; exports go beside it (default: RESULTS/gradebook.csv)")
    parser.add_argument("--assignment", default="assignments/mnist", help="assignment directory")
    parser.add_argument("--roster", metavar="CSV", help="columns student_id, name[, email, canvas_id, "
                                                        "login, section]")
    parser.add_argument("--overrides", metavar="CSV", help="columns student_id, question, score, reason")
    parser.add_argument("--due", metavar="ISO", help="deadline, e.g. 2026-12-01T23:59 (local time) "
                                                     "or 2026-12-01T23:59+01:00")
    parser.add_argument("--late-policy", default="none",
                        help="'none', 'zero', or like '10%%/day,max=50%%' (per started day or hour)")
    parser.add_argument("--canvas-assignment-id", metavar="ID",
                        help="Canvas assignment id, so the column reads 'Title (ID)'")


def run(args: argparse.Namespace) -> int:
    try:
        policy = LatePolicy.parse(args.late_policy)
        due = parse_time(args.due)
        assignment = load_assignment(args.assignment)
        roster = read_table(args.roster, ["student_id", "name"]) if args.roster else None
        overrides = (read_table(args.overrides, ["student_id", "question", "score", "reason"])
                     if args.overrides else None)
        output = Path(args.output or Path(args.results) / "gradebook.csv")
        paths = write_gradebook(args.results, output, assignment, roster=roster, overrides=overrides,
                                due=due, policy=policy, canvas_assignment_id=args.canvas_assignment_id)
    except (ValueError, OSError) as exc:
        print(f"autograder gradebook: {exc}", file=sys.stderr)
        return 2
    gradebook = pd.read_csv(output, dtype={"student_id": str})
    counts = gradebook["status"].value_counts().to_dict()
    print(f"{len(gradebook)} students {counts}; mean {gradebook['percent'].mean():.1f}%")
    print(f"wrote {output} and {len(paths) - 1} exports beside it")
    return 0
