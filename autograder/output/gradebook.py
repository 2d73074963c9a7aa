"""Gradebook: one row per student from the result JSONs, then exports for otter, Canvas and Gradescope.

Pipeline: load results -> one row per submission -> roster (missing / not on roster) -> manual
overrides -> late penalty -> latest submission per student -> write CSV/JSON files atomically.

``gradebook.csv`` columns, always in this order::

    student_id, student_name, q1..qN (assignment order), raw_total, late_penalty, override_note,
    total, max_score, percent, status, reason, needs_review, flagged, review, submitted_at, late

``raw_total`` is the sum of the question scores (overrides included); ``total = raw_total - late_penalty``;
``percent`` is ``100 * total / max_score``. ``review`` lists the models the notebook trained that
earned nothing, as ``arch: code`` (codes in :data:`autograder.score.lost_models.REVIEW_REASONS`). ``status`` is the result's status (graded / rejected /
error), ``missing`` for a roster student without a result, or ``not_on_roster`` for a result whose
student is not in the roster. When a student has several results, the latest ``submitted_at`` counts.
``needs_review`` counts the checks a person must look at (status ``needs_review``: 0 points pending a
human); ``flagged`` lists the architectures whose model failed an integrity rule.
A missing student's scores are left blank (no grade yet, in every export) unless ``--missing-as-zero``
or an override gives them points. So are those of a result the grader failed on (``status`` error, reason
``grader_error``): never a number, and no Gradescope ``results.json``, unless an override gives points.
Results are matched to roster rows by ``student_id``, else by the Canvas id, login or email the roster
lists, so a roster keyed differently from the results never lists one student twice.

Every output (this gradebook, its exports, the feedback pages) takes the grading policy recorded in
``RESULTS/policy.json`` (:mod:`autograder.output.policy`): roster, overrides, extensions, deadline, late
policy and missing-as-zero, so no two outputs ever disagree about a grade.

Late policy (``--late-policy``), applied to ``raw_total``:

* ``none``              no penalty (the default);
* ``zero``              any late submission scores 0;
* ``10%/day,max=50%``   10% of the points per started day late, at most 50% (``/hour`` works too;
  without ``max=`` the penalty can reach 100%).

Lateness is ``submitted_at - --due`` (or the student's own deadline from ``--extensions``, columns
``student_id, due``); a submission without a timestamp (or without a deadline) counts as one unit late
when its result says ``late``. A Canvas bulk download carries no submission times,
only Canvas's ``LATE`` mark in the file name, so ``--due`` cannot apply to it: each LATE submission is
one unit late (the command says so). Times are read by :func:`autograder.intake.inputs.parse_time`.

Overrides CSV (``--overrides``), columns ``student_id, question, score, reason``: ``question`` is a
question id (the score replaces the graded one) or ``late_penalty`` (replaces the computed penalty in
points, e.g. 0 for an excused extension). Each one is listed in ``override_note``.

Exports written next to ``gradebook.csv``:

* ``final_grades.csv``: as ``otter grade`` writes it (``otter.grade.utils.merge_scores_to_df``):
  ``file``, the question columns in sorted order, ``total_points_earned`` (the sum of the question
  columns), ``percent_correct`` (a fraction), ``grading_status``; the first row holds the points possible
  (``file = points-per-question``), the others are sorted by ``file``, the submitted notebook's name.
  Then one column otter does not have, ``late_penalty`` (points). Roster students without a submission
  are listed with an empty ``file``.
* ``canvas_grades.csv``: Canvas's gradebook import format: ``Student, ID, SIS User ID, SIS Login ID,
  Section`` and one assignment column. ``ID`` is the Canvas user id (from a Canvas bulk download's file
  names, or the roster's ``canvas_id``); ``SIS User ID`` is the ``student_id`` when it is not that
  Canvas id; ``login`` and ``section`` roster columns fill the next two. Canvas updates an existing
  assignment when the header reads ``Assignment Name (id)`` (``--canvas-assignment-id``, the number in
  the assignment's URL); without it Canvas creates a new assignment column. The second row is Canvas's
  ``Points Possible`` row. A missing student's cell is blank (Canvas leaves the grade alone) unless
  ``--missing-as-zero``.

Every text cell of every CSV is made inert for spreadsheets: control characters removed and a ``'``
put before a leading ``=``, ``+``, ``-``, ``@``, tab or carriage return (CSV formula injection).
* ``gradescope/<key>/results.json``: one Gradescope autograder result per submission, each check a
  visible test carrying its student-facing message (never its TA-only ``detail``).
"""
from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
# otter-grader's own column names, so final_grades.csv keeps its layout.
from otter.grade.utils import POINTS_POSSIBLE_LABEL as OTTER_POINTS_ROW
from otter.grade.utils import SCORES_DICT_FILE_KEY as OTTER_FILE
from otter.grade.utils import SCORES_DICT_GRADING_STATUS_KEY as OTTER_STATUS
from otter.grade.utils import SCORES_DICT_PERCENT_CORRECT_KEY as OTTER_PERCENT
from otter.grade.utils import SCORES_DICT_TOTAL_POINTS_KEY as OTTER_TOTAL

from autograder.assignment import Assignment
from autograder.intake.inputs import InputError, describe_due, parse_time
from autograder.output.latest import latest_per_student, submitted_file
from autograder.output.policy import GradingPolicy, read_policy, write_policy
from autograder.output.store import check_writable, open_results, require_current
from autograder.output.workbench.decisions import Adjustments, adjustments, with_decisions
from autograder.results import atomic_write_text
from autograder.student_text import plain_text

SUMMARY_COLUMNS = ["raw_total", "late_penalty", "override_note", "total", "max_score", "percent",
                   "status", "reason", "needs_review", "flagged", "review", "submitted_at", "late"]
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
#: What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def gradebook_columns(assignment: Assignment) -> list[str]:
    return ["student_id", "student_name", *(q.id for q in assignment.questions), *SUMMARY_COLUMNS]


# --- late policy ----------------------------------------------------------------------------------

def units_late(submitted_at: str | None, late_flag: bool, due: datetime | None, unit: timedelta) -> int:
    submitted = parse_time(submitted_at, "submitted_at")
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
            "needs_review": sum(c.get("status") == "needs_review"
                                for q in result.get("questions") or [] for c in q.get("checks") or []),
            "flagged": ", ".join(arch for arch, rules in (result.get("integrity") or {}).items()
                                 if any((rule or {}).get("passed") is False for rule in (rules or {}).values())),
            "review": "; ".join(f"{r['arch']}: {r['code']}" for r in result.get("review") or []
                                if r.get("kind") == "model"),
            "submitted_at": submission.get("submitted_at") or "",
            "late": bool(submission.get("late")),
            "graded_at": (result.get("grader") or {}).get("graded_at") or "",
            "submission": key,
            "file": submitted_file(submission),
            "canvas_id": str(submission.get("canvas_id") or ""),
        })
    return pd.DataFrame(rows, columns=[*gradebook_columns(assignment)[:2 + len(assignment.questions)],
                                       "status", "result_status", "reason", "needs_review", "flagged", "review",
                                       "submitted_at", "late", "graded_at", "submission", "file", "canvas_id"])


def roster_keys(roster: pd.DataFrame) -> dict[str, str]:
    """Every key a result may carry for a roster student -> that student's ``student_id``: the id itself
    first, then the Canvas id, login and email (case-insensitive) the roster lists."""
    keys: dict[str, str] = {}
    for column in [c for c in ("canvas_id", "login", "email") if c in roster]:
        for key, student_id in zip(roster[column], roster["student_id"]):
            if key:
                keys.setdefault(key.lower(), student_id)
    keys.update({student_id.lower(): student_id for student_id in roster["student_id"]})
    return keys


def roster_student(student_id: str, canvas_id: str, keys: dict[str, str], canvas_users: dict[str, str]) -> str:
    """The roster student a result belongs to. A Canvas user id is matched against the roster's
    ``canvas_id`` only; a result graded without a roster carries that id as its ``student_id`` too, and then
    the Canvas id decides (another student's SIS id may be the same number). A result whose own id and
    Canvas id name two different roster students is refused: either would be a silent wrong grade."""
    by_canvas = canvas_users.get(canvas_id) if canvas_id else None
    by_id = keys.get(student_id.lower())
    if by_canvas and by_id and by_canvas != by_id and student_id != canvas_id:
        raise InputError(f"the result of student {student_id!r} came from Canvas user {canvas_id!r}, whom the roster "
                         f"lists as {by_canvas!r}: fix the roster's canvas_id or student_id")
    return by_canvas or by_id or student_id


def apply_roster(rows: pd.DataFrame, roster: pd.DataFrame, assignment: Assignment) -> pd.DataFrame:
    """Match results to roster students, flag results from unknown students, add roster students without a
    result, take roster names."""
    keys = roster_keys(roster)
    canvas_users = dict(zip(roster["canvas_id"], roster["student_id"])) if "canvas_id" in roster else {}
    canvas_users.pop("", None)
    rows["student_id"] = [roster_student(student_id, canvas_id, keys, canvas_users)
                          for student_id, canvas_id in zip(rows["student_id"], rows["canvas_id"])]
    on_roster = rows["student_id"].isin(roster["student_id"])
    rows.loc[~on_roster, "status"] = "not_on_roster"
    names = roster.set_index("student_id")["name"]
    rows.loc[on_roster, "student_name"] = rows.loc[on_roster, "student_id"].map(names)
    absent = roster[~roster["student_id"].isin(rows["student_id"])]
    missing = pd.DataFrame({
        "student_id": absent["student_id"], "student_name": absent["name"],
        **{q.id: 0.0 for q in assignment.questions},
        "status": "missing", "result_status": "", "reason": "", "needs_review": 0, "flagged": "", "review": "",
        "submitted_at": "", "late": False, "graded_at": "", "submission": "", "file": "", "canvas_id": "",
    })
    return pd.concat([rows, missing], ignore_index=True) if len(missing) else rows


def apply_overrides(rows: pd.DataFrame, overrides: pd.DataFrame, assignment: Assignment) -> pd.DataFrame:
    """Replace question scores (or the late penalty) and say so in ``override_note``. A row naming a
    ``submission`` (a review decision: the result it was made on) applies to that submission, whatever
    student id the roster gives it; the others (``overrides.csv``) to the student's rows."""
    maxima = {q.id: q.points for q in assignment.questions}
    rows["override_note"] = ""
    rows["penalty_override"] = math.nan
    for line, override in enumerate(overrides.itertuples(index=False), start=2):
        where = f"overrides line {line}"
        submission = getattr(override, "submission", None)
        target = (rows["submission"] == submission if isinstance(submission, str) and submission
                  else rows["student_id"] == str(override.student_id))
        if not target.any():
            raise InputError(f"{where}: unknown student_id {override.student_id!r}")
        try:
            score = float(override.score)
        except ValueError:
            raise InputError(f"{where}: score {override.score!r} is not a number") from None
        if override.question == "late_penalty":
            if score < 0:
                raise InputError(f"{where}: a late penalty cannot be negative")
            rows.loc[target, "penalty_override"] = score
            old = "computed"
        elif override.question in maxima:
            if not 0 <= score <= maxima[override.question]:
                raise InputError(f"{where}: score {score} outside 0..{maxima[override.question]:g}")
            old = ", ".join(f"{v:g}" for v in rows.loc[target, override.question].unique())
            rows.loc[target, override.question] = score
        else:
            raise InputError(f"{where}: unknown question {override.question!r} "
                             f"(expected one of {sorted(maxima)} or 'late_penalty')")
        note = f"{override.question}: {old} -> {score:g} ({override.reason})"
        rows.loc[target, "override_note"] = rows.loc[target, "override_note"].map(
            lambda previous: f"{previous}; {note}" if previous else note)
    return rows


def deadlines(rows: pd.DataFrame, policy: GradingPolicy) -> list[datetime | None]:
    """Each row's deadline: the student's extension, else ``--due``; an extension for nobody is refused."""
    own: dict[str, datetime] = {}
    if policy.extensions is not None:
        own = dict(zip(policy.extensions["student_id"], policy.extensions["due"]))
        unknown = sorted(set(own) - set(rows["student_id"]))
        if unknown:
            raise InputError(f"extensions: unknown student_id {unknown[0]!r}")
    return [own.get(student_id, policy.due) for student_id in rows["student_id"]]


def refuse_late_marks_against_extensions(rows: pd.DataFrame, dues: list[datetime | None],
                                         policy: GradingPolicy) -> None:
    """A Canvas download marks a submission LATE against the course's deadline and gives no time, so whether it
    was late against a student's own deadline cannot be told: refused, unless the late penalty is overridden."""
    if not policy.late.active:
        return
    for (_, row), due in zip(rows.iterrows(), dues):
        if (row["late"] and not row["submitted_at"] and due != policy.due and math.isnan(row["penalty_override"])):
            raise InputError(f"student {row['student_id']!r} has an extension, but their submission is only marked "
                             "LATE by the course site (no time): set their late_penalty in --overrides")


def apply_totals(rows: pd.DataFrame, assignment: Assignment, policy: GradingPolicy) -> pd.DataFrame:
    question_ids = [q.id for q in assignment.questions]
    dues = deadlines(rows, policy)
    refuse_late_marks_against_extensions(rows, dues, policy)
    units = [units_late(s, f, due, policy.late.unit) for s, f, due in zip(rows["submitted_at"], rows["late"], dues)]
    rows["late"] = [u > 0 for u in units]
    rows["units_late"] = units
    rows["deadline"] = [describe_due(due, policy.zone()) if due else "" for due in dues]
    rows["raw_total"] = rows[question_ids].sum(axis=1).round(4)
    computed = (rows["raw_total"] * [policy.late.fraction(u) for u in units]).round(2)
    rows["late_penalty"] = rows["penalty_override"].fillna(computed).clip(upper=rows["raw_total"])
    rows["total"] = (rows["raw_total"] - rows["late_penalty"]).round(4)
    rows["max_score"] = assignment.max_score
    rows["percent"] = (100 * rows["total"] / assignment.max_score).round(2)
    # The grader failed on it (status error): no grade, never a number, whatever --missing-as-zero says.
    ungraded = (rows["result_status"] == "error") & (rows["override_note"] == "")
    if not policy.missing_as_zero:  # no submission and no override: no grade yet, not a zero
        ungraded |= (rows["status"] == "missing") & (rows["override_note"] == "")
    rows.loc[ungraded, [*question_ids, "raw_total", "late_penalty", "total", "percent"]] = math.nan
    return rows.drop(columns="penalty_override")


#: Columns of :func:`build_submissions` after the gradebook's own.
SUBMISSION_COLUMNS = ["result_status", "graded_at", "submission", "file", "canvas_id", "units_late", "deadline"]


def build_submissions(results: dict[str, dict[str, Any]], assignment: Assignment,
                      policy: GradingPolicy = GradingPolicy()) -> pd.DataFrame:
    """Every submission (and every missing roster student), scored under ``policy``.

    Gradebook columns, then ``result_status`` (the result's own status, which ``not_on_roster`` hides),
    ``graded_at``, ``submission`` (the result key, empty for a missing student), ``file`` (the submitted
    notebook's name), ``canvas_id``, ``units_late`` (started days or hours) and ``deadline`` (the one
    that applied, as read).
    """
    rows = submission_rows(results, assignment)
    if policy.roster is not None:
        rows = apply_roster(rows, policy.roster, assignment)
    overrides = policy.overrides
    if overrides is None:
        overrides = pd.DataFrame(columns=["student_id", "question", "score", "reason"])
    rows = apply_overrides(rows, overrides, assignment)
    rows = apply_totals(rows, assignment, policy)
    return rows[[*gradebook_columns(assignment), *SUBMISSION_COLUMNS]]


def with_review(policy: GradingPolicy, results_root: Path,
                results: dict[str, dict[str, Any]]) -> tuple[GradingPolicy, Adjustments]:
    """``policy`` with the standing decisions of the review workbench added to its overrides (a contradiction
    between the two is refused), and those decisions (comments, queue progress). Every output grades
    under the first, so no output leaves a TA's decision out; the recorded policy stays without them."""
    decided = with_decisions(policy.overrides, results_root, results)
    return dataclasses.replace(policy, overrides=decided), adjustments(results_root, results)


def lateness_note(submissions: pd.DataFrame, policy: GradingPolicy) -> str | None:
    """Say when ``--due`` cannot apply: submissions without a time (a Canvas download) use the LATE mark."""
    untimed = submissions[(submissions["submission"] != "") & (submissions["submitted_at"] == "")]
    if policy.due is None or untimed.empty:
        return None
    unit = policy.late.unit_name
    return (f"--due cannot apply to {len(untimed)} submission(s) without a submission time (a Canvas bulk "
            f"download has none): each one Canvas marked LATE counts as one started {unit} late, "
            f"the others as on time")


# --- exports --------------------------------------------------------------------------------------

def otter_final_grades(gradebook: pd.DataFrame, assignment: Assignment) -> pd.DataFrame:
    """``final_grades.csv`` as ``otter grade`` lays it out, plus a ``late_penalty`` column at the end."""
    question_ids = sorted(q.id for q in assignment.questions)  # otter sorts the question columns
    points = {OTTER_FILE: OTTER_POINTS_ROW, **{q.id: q.points for q in assignment.questions},
              OTTER_TOTAL: assignment.max_score, OTTER_PERCENT: 1, OTTER_STATUS: "--", "late_penalty": ""}
    rows = pd.DataFrame({
        OTTER_FILE: gradebook["file"],
        **{qid: gradebook[qid] for qid in question_ids},
        OTTER_TOTAL: gradebook["raw_total"],
        OTTER_PERCENT: gradebook["raw_total"] / assignment.max_score,
        OTTER_STATUS: [otter_status(s, r, sid) for s, r, sid in
                       zip(gradebook["result_status"], gradebook["reason"], gradebook["student_id"])],
        "late_penalty": gradebook["late_penalty"],
    }).sort_values(OTTER_FILE, kind="stable")
    return pd.concat([pd.DataFrame([points]), rows], ignore_index=True)[
        [OTTER_FILE, *question_ids, OTTER_TOTAL, OTTER_PERCENT, OTTER_STATUS, "late_penalty"]]


def otter_status(result_status: str, reason: str, student_id: str) -> str:
    """otter writes "Completed" or the error that stopped grading."""
    if not result_status:
        return f"missing: no submission from {student_id}"
    return "Completed" if result_status == "graded" else f"{result_status}: {reason}"


def canvas_grades(gradebook: pd.DataFrame, roster: pd.DataFrame | None, assignment: Assignment,
                  canvas_assignment_id: str | None) -> pd.DataFrame:
    """Canvas's import CSV; a Canvas user or SIS id that would appear twice is refused, never written."""
    title = assignment.title or assignment.name
    column = f"{title} ({canvas_assignment_id})" if canvas_assignment_id else title
    extra = (roster.set_index("student_id") if roster is not None else pd.DataFrame()).reindex(
        gradebook["student_id"], columns=["canvas_id", "login", "section"]).fillna("")
    canvas_id = extra["canvas_id"].where(extra["canvas_id"] != "", gradebook["canvas_id"].to_numpy()).to_numpy()
    student_id = gradebook["student_id"].to_numpy()
    students = pd.DataFrame({
        "Student": gradebook["student_name"].to_numpy(), "ID": canvas_id,
        "SIS User ID": [sid if sid != cid else "" for sid, cid in zip(student_id, canvas_id)],
        "SIS Login ID": extra["login"].to_numpy(), "Section": extra["section"].to_numpy(),
        column: gradebook["total"].to_numpy(),
    })
    for key in ("ID", "SIS User ID", "SIS Login ID"):
        named = students[students[key] != ""]
        twice = named[named[key].duplicated(keep=False)]
        if len(twice):
            raise InputError(f"canvas_grades.csv would list {key} {twice[key].iloc[0]!r} twice (gradebook students "
                             f"{', '.join(map(repr, gradebook['student_id'][twice.index]))}): give the roster the "
                             "results' ids, or their canvas_id, login or email")
    points = pd.DataFrame([{"Student": "    Points Possible", column: assignment.max_score}])
    return pd.concat([points, students], ignore_index=True)[[*CANVAS_COLUMNS, column]].fillna("")


def lateness_text(row: pd.Series, policy: GradingPolicy) -> str:
    """How late, by which deadline, under which policy: "2 days late (deadline ...); late policy: ..."."""
    units = int(row["units_late"])
    if not units or not policy.late.active:
        return ""
    unit = policy.late.unit_name
    how_late = (f"{units} started {unit}{'s' if units > 1 else ''} late"
                + (f" (deadline {row['deadline']})" if row["deadline"] and row["submitted_at"] else
                   " (marked late by the course site, which gives no submission time)"))
    return f"{how_late}; late policy: {policy.late.describe()}"


def gradescope_result(result: dict[str, Any], row: pd.Series, policy: GradingPolicy = GradingPolicy(),
                      comments: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """Gradescope's results.json: the (penalised, overridden) score, each check a visible test, and the
    comments TAs left in the review workbench."""
    tests = [{"name": f"{q['id']} {plain_text(q.get('title'), 200)}: {check['name']}",
              "score": check["score"], "max_score": check["max_score"],
              "output": plain_text(check.get("message")), "visibility": "visible"}
             for q in result.get("questions") or [] for check in q.get("checks") or []]
    lines = [plain_text(result.get("message"))]
    if row["late_penalty"]:
        lateness = lateness_text(row, policy)
        lines.append(f"Late penalty: -{row['late_penalty']:g} points" + (f": {lateness}." if lateness else "."))
    if row["override_note"]:
        lines.append(f"Adjusted by your instructor: {row['override_note']}")
    lines += [f"Comment from your instructor: {plain_text(c['text'])}" for c in comments or []]
    return {"score": float(row["total"]), "output": "\n".join(line for line in lines if line),
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def inert_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: control characters removed, no formula start."""
    if not isinstance(value, str):
        return value
    text = plain_text(value)
    if set(text) == {"-"}:  # dashes only (otter's "--") cannot be a formula
        return text
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(frame: pd.DataFrame) -> str:
    """CSV for spreadsheets: every text cell made inert (CSV injection), whoever wrote it."""
    return frame.map(inert_cell).to_csv(index=False, lineterminator="\n")


def write_gradebook(results_dir: str | Path, output: str | Path, assignment: Assignment,
                    policy: GradingPolicy | None = None) -> list[Path]:
    """Write gradebook.csv (at ``output``) and the exports beside it; returns the paths written.

    ``policy`` is recorded in ``RESULTS/policy.json`` with the exports, for the feedback pages to read;
    without one, the recorded policy is used (none recorded: no roster, overrides or late policy).
    ``results_dir`` is a RESULTS folder or a ``grade-one`` output folder; results that are not current
    are refused, naming ``grade`` or ``regrade`` (:func:`require_current`). Every file is checked writable
    and every export built before the first is written. The files written are recorded, so a later regrade
    removes them.
    """
    store = open_results(results_dir)
    results = store.load()
    require_current(store, results, assignment)
    recording = policy is not None
    policy = policy if policy is not None else read_policy(store.root) or GradingPolicy()
    decided, review = with_review(policy, store.root, results)
    submissions = build_submissions(results, assignment, decided)
    gradebook = latest_per_student(submissions)
    output = Path(output)
    written = {
        output: csv_text(gradebook[gradebook_columns(assignment)]),
        output.with_name("final_grades.csv"): csv_text(otter_final_grades(gradebook, assignment)),
        output.with_name("canvas_grades.csv"): csv_text(
            canvas_grades(gradebook, policy.roster, assignment, policy.canvas_assignment_id)),
    }
    for _, row in submissions[(submissions["submission"] != "") & submissions["total"].notna()].iterrows():
        path = output.parent / "gradescope" / row["submission"] / "results.json"
        written[path] = json.dumps(gradescope_result(results[row["submission"]], row, policy,
                                                     review.comments.get(row["submission"], [])), indent=2) + "\n"
    check_writable(list(written))
    for path, text in written.items():
        atomic_write_text(path, text)
    if recording:
        write_policy(store.root, policy)
    store.record_reports(list(written))  # a later regrade or grade removes them
    return list(written)
