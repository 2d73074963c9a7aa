"""Decisions are data: what TAs decided on each review item, in an SQLite file inside RESULTS.

``RESULTS/review/decisions.sqlite`` holds three tables:

* ``decisions``: the standing decision per item (one row; ``version`` counts its changes), with the
  result it was made on, the check and score it sets, the reason, the comment for the student, the
  evidence hash it was made on (:func:`autograder.output.workbench.queue.evidence_hash`), who and when;
* ``audit``: every change, never updated: who, when, the decision before and after (JSON), the reason;
* ``bank``: reusable comments for students.

The conflict rule: a change names the version of the decision its author saw (0: none). When another
TA decided the item in between, the change is refused (:class:`DecisionConflict`) and the page shows
the first decision; replacing it is a deliberate second change that names its version, and the audit
keeps both.

Every output reads decisions through :func:`adjustments`: accepted score decisions become override rows
in the shape ``gradebook.apply_overrides`` takes (``student_id, question, score, reason``), comments go
to the student page. A decision whose evidence changed since (a regrade moved its check, integrity
finding or file) is not applied: it waits for a second look. ``overrides.csv`` imports into the store
(one ``override`` decision per row) and exports from it.
"""
from __future__ import annotations

import json
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from autograder.intake.inputs import OVERRIDE_COLUMNS as CSV_OVERRIDE_COLUMNS, InputError
from autograder.output.intake_record import read_decisions
from autograder.output.latest import latest_keys
from autograder.output.workbench.queue import build_queue, evidence_hash, find_check, find_item, load_pairs

DB_PATH = Path("review") / "decisions.sqlite"
#: overrides.csv's columns, and the result the decision was made on (applied to that submission: the
#: roster may give its student another id than the result carries).
OVERRIDE_COLUMNS = [*CSV_OVERRIDE_COLUMNS, "submission"]
#: Actions and whether each needs a score / a reason.
ACTIONS = {"accept": (False, False), "score": (True, True), "override": (True, True),
           "clear": (False, True), "refer": (False, True), "comment": (False, False)}
LATE_PENALTY = "late_penalty"
SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    item TEXT PRIMARY KEY, result_key TEXT NOT NULL, student_id TEXT NOT NULL, action TEXT NOT NULL,
    question TEXT, "check" TEXT, score REAL, reason TEXT NOT NULL, comment TEXT NOT NULL,
    evidence TEXT NOT NULL, who TEXT NOT NULL, at TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, item TEXT NOT NULL, who TEXT NOT NULL, at TEXT NOT NULL,
    before TEXT, after TEXT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bank (
    id INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT UNIQUE NOT NULL, who TEXT NOT NULL, at TEXT NOT NULL);
"""


class DecisionError(InputError):
    """A decision that cannot be stored as asked (a person's mistake: one line)."""


class DecisionConflict(DecisionError):
    """Another TA decided the item since this one looked at it."""

    def __init__(self, current: Decision):
        super().__init__(f"{current.item}: already decided by {current.who} at {current.at} ({current.action}); "
                         "look at that decision before replacing it")
        self.current = current


@dataclass(frozen=True)
class Decision:
    item: str
    result_key: str
    student_id: str
    action: str
    question: str | None
    check: str | None
    score: float | None
    reason: str
    comment: str
    evidence: str
    who: str
    at: str
    version: int


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class DecisionStore:
    """The decisions of one RESULTS folder; the file is created by the first change, never by a read."""

    def __init__(self, results_root: str | Path):
        self.path = Path(results_root) / DB_PATH

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if write:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            connection.row_factory = sqlite3.Row
            if write:
                connection.executescript(SCHEMA)
                connection.execute("BEGIN IMMEDIATE")  # the version check and the write are one step
            yield connection
            if write:
                connection.execute("COMMIT")
        except BaseException:
            if write and connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        finally:
            connection.close()

    def all(self) -> dict[str, Decision]:
        if not self.path.is_file():
            return {}
        with self._connect() as db:
            return {row["item"]: Decision(**dict(row)) for row in db.execute("SELECT * FROM decisions")}

    def get(self, item: str) -> Decision | None:
        return self.all().get(item)

    def history(self, item: str) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        with self._connect() as db:
            return [{**dict(row), "before": json.loads(row["before"]) if row["before"] else None,
                     "after": json.loads(row["after"])}
                    for row in db.execute("SELECT * FROM audit WHERE item = ? ORDER BY id", (item,))]

    def decide(self, item: str, *, result_key: str, student_id: str, action: str, who: str, evidence: str,
               base_version: int, question: str | None = None, check: str | None = None,
               score: float | None = None, reason: str = "", comment: str = "") -> Decision:
        """Store a decision on ``item``, refused when it is not the version ``base_version`` its author saw."""
        if action not in ACTIONS:
            raise DecisionError(f"{item}: unknown action {action!r} (expected one of {', '.join(ACTIONS)})")
        needs_score, needs_reason = ACTIONS[action]
        if needs_score and score is None:
            raise DecisionError(f"{item}: a {action} decision needs a score")
        if needs_reason and not reason.strip():
            raise DecisionError(f"{item}: a {action} decision needs a reason")
        if not who.strip():
            raise DecisionError(f"{item}: say who decides (a TA name)")
        with self._connect(write=True) as db:
            row = db.execute("SELECT * FROM decisions WHERE item = ?", (item,)).fetchone()
            current = Decision(**dict(row)) if row else None
            if (current.version if current else 0) != base_version:
                raise DecisionConflict(current) if current else DecisionError(
                    f"{item}: the decision you replaced is gone; reload the page")
            decision = Decision(item=item, result_key=result_key, student_id=student_id, action=action,
                                question=question, check=check, score=score, reason=reason.strip(),
                                comment=comment.strip(), evidence=evidence, who=who.strip(), at=now(),
                                version=base_version + 1)
            values = asdict(decision)
            db.execute(f"INSERT OR REPLACE INTO decisions ({', '.join(map(_quoted, values))}) "
                       f"VALUES ({', '.join('?' * len(values))})", list(values.values()))
            db.execute("INSERT INTO audit (item, who, at, before, after, reason) VALUES (?, ?, ?, ?, ?, ?)",
                       (item, decision.who, decision.at, json.dumps(asdict(current)) if current else None,
                        json.dumps(values), decision.reason))
        return decision

    def bank(self) -> list[str]:
        if not self.path.is_file():
            return []
        with self._connect() as db:
            return [row["text"] for row in db.execute("SELECT text FROM bank ORDER BY text")]

    def add_to_bank(self, text: str, who: str) -> None:
        if text.strip():
            with self._connect(write=True) as db:
                db.execute("INSERT OR IGNORE INTO bank (text, who, at) VALUES (?, ?, ?)", (text.strip(), who, now()))


def _quoted(column: str) -> str:
    return f'"{column}"'


# --- what the outputs read ------------------------------------------------------------------------------

@dataclass
class Adjustments:
    """Accepted decisions as the outputs use them."""

    overrides: pd.DataFrame  # student_id, question, score, reason (gradebook.apply_overrides's shape)
    comments: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # result key -> [{question, text}]
    second_look: list[Decision] = field(default_factory=list)  # evidence changed since: not applied
    decided: int = 0
    items: int = 0


def adjustments(results_root: str | Path, results: Mapping[str, Mapping[str, Any]]) -> Adjustments:
    """The standing decisions of RESULTS turned into override rows and student comments.

    Score decisions on one check change its question's score by (new - graded); an ``override`` sets a
    question (or ``late_penalty``) outright. Only decisions on a student's latest result are applied
    (overrides are per student); a decision whose evidence changed since is held for a second look.
    """
    root = Path(results_root)
    store = DecisionStore(root)
    decisions = store.all()
    pairs = load_pairs(root)
    queue = {item.id: item for item in build_queue(results, pairs, read_decisions(root))}
    latest = latest_keys(results)
    deltas: dict[tuple[str, str], float] = defaultdict(float)
    absolute: dict[tuple[str, str], float] = {}
    reasons: dict[tuple[str, str], list[str]] = defaultdict(list)
    comments: dict[str, list[dict[str, str]]] = defaultdict(list)
    second_look: list[Decision] = []
    overriding: dict[tuple[str, str], Decision] = {}
    scoring: dict[tuple[str, str], Decision] = {}
    for decision in sorted(decisions.values(), key=lambda d: (d.at, d.item)):
        result = results.get(decision.result_key)
        item = find_item(decision.item, queue, results)
        current = evidence_hash(item, results, pairs, decision.check) if item else None
        if item is not None and item.intake is not None and current == decision.evidence:
            continue  # accepted or referred: no score, no comment, whether or not a result exists yet
        if result is None or (item is None and decision.action != "override") or (
                item is not None and current != decision.evidence):
            second_look.append(decision)
            continue
        if decision.comment:
            comments[decision.result_key].append({"question": decision.question or "", "text": decision.comment})
        student = str((result.get("submission") or {}).get("student_id") or decision.result_key)
        if latest.get(student) != decision.result_key or decision.score is None:
            continue
        if decision.action == "override":
            overriding[(decision.result_key, decision.question or "")] = decision
        elif decision.action == "score":
            scoring[(decision.result_key, decision.check or "")] = decision  # one check: the latest decision
    for (key, question), decision in overriding.items():
        absolute[(key, question)] = float(decision.score or 0.0)
        reasons[(key, question)].append(f"{decision.reason} ({decision.who})")
    for (key, name), decision in sorted(scoring.items(), key=lambda kv: (kv[1].at, kv[1].item)):
        question, check = find_check(results[key], name)
        target = (key, (question or {}).get("id") or decision.question or "")
        deltas[target] += float(decision.score or 0.0) - float((check or {}).get("score") or 0.0)
        reasons[target].append(f"{decision.reason} ({decision.who})")
    rows = []
    for target in sorted(set(deltas) | set(absolute)):
        key, question = target
        graded = next((float(q.get("score") or 0.0) for q in results[key].get("questions") or []
                       if q.get("id") == question), 0.0)
        score = absolute.get(target, graded) + (0.0 if target in absolute else deltas[target])
        rows.append({"student_id": str(results[key]["submission"]["student_id"]), "question": question,
                     "score": round(score, 4), "reason": "; ".join(reasons[target]), "submission": key})
    return Adjustments(overrides=pd.DataFrame(rows, columns=OVERRIDE_COLUMNS), comments=dict(comments),
                       second_look=second_look, decided=len(decisions.keys() & queue.keys()), items=len(queue))


def with_decisions(overrides: pd.DataFrame | None, results_root: str | Path,
                   results: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame | None:
    """``--overrides`` rows followed by the stored decisions' rows; a student and question set both ways
    to different scores is refused, never settled silently."""
    decided = adjustments(results_root, results).overrides
    if decided.empty:
        return overrides
    if overrides is None or overrides.empty:
        return decided
    given = {(str(s), str(q)): float(v) for s, q, v in zip(overrides["student_id"], overrides["question"],
                                                          pd.to_numeric(overrides["score"], errors="coerce"))}
    for row in decided.itertuples(index=False):
        if (row.student_id, row.question) in given and given[(row.student_id, row.question)] != row.score:
            raise DecisionError(f"--overrides gives {row.student_id} {row.question} "
                                f"{given[(row.student_id, row.question)]:g} but a review decision gives {row.score:g}; "
                                "drop the row or change the decision in `autograder review`")
    return pd.concat([overrides, decided], ignore_index=True)


def import_overrides(results_root: str | Path, results: Mapping[str, Mapping[str, Any]], overrides: pd.DataFrame,
                     question_points: Mapping[str, float], who: str) -> int:
    """One ``override`` decision per row of an overrides table (on the student's latest result); each is
    checked first, so a bad row stores nothing."""
    latest = latest_keys(results)
    planned = []
    for line, row in enumerate(overrides.itertuples(index=False), start=2):
        where = f"overrides line {line}"
        key = latest.get(str(row.student_id))
        if key is None:
            raise DecisionError(f"{where}: unknown student_id {row.student_id!r}")
        try:
            score = float(row.score)
        except ValueError:
            raise DecisionError(f"{where}: score {row.score!r} is not a number") from None
        if row.question != LATE_PENALTY and row.question not in question_points:
            raise DecisionError(f"{where}: unknown question {row.question!r}")
        upper = question_points.get(row.question, float("inf"))
        if not 0 <= score <= upper:
            raise DecisionError(f"{where}: score {score:g} outside 0..{upper:g}")
        planned.append((f"{key}~override~{row.question}", key, str(row.student_id), str(row.question), score,
                        str(row.reason) if str(row.reason) not in ("", "nan") else "imported from overrides.csv"))
    store = DecisionStore(results_root)
    existing = store.all()
    for item, key, student, question, score, reason in planned:
        current = existing.get(item)
        if current and current.score == score and current.reason == reason:
            continue  # importing the same file twice changes nothing
        store.decide(item, result_key=key, student_id=student, action="override", who=who, evidence="",
                     base_version=current.version if current else 0, question=question, score=score, reason=reason)
    return len(planned)


def export_overrides(results_root: str | Path, results: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """The override rows every output applies, as ``overrides.csv`` holds them."""
    return adjustments(results_root, results).overrides[list(CSV_OVERRIDE_COLUMNS)]
