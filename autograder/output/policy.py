"""The grading policy: what turns graded scores into the grade a student gets, recorded once per RESULTS.

The roster, the overrides, the extensions, the deadline (with the timezone it was read in), the late
policy, missing-as-zero and the Canvas assignment id (which column the Canvas import updates) are recorded in ``RESULTS/policy.json`` by ``autograder gradebook`` (written
atomically, together with the exports). The gradebook, every export and the feedback pages read that
record, so the page a student reads and the grade Canvas imports are the same to the cent.

``gradebook`` with policy options updates the record field by field (an option not given keeps its
recorded value; ``--reset-policy`` starts from nothing) and says what changed. ``feedback`` never
changes it: policy options given to ``feedback`` must agree with the record, else it refuses and
names the ``gradebook`` command that changes it.

The record keeps the rows of each CSV it was given (roster, overrides, extensions), with the file's
name and SHA-256, so the grades do not change when a file is edited later; a file that changed since
is pointed out (:func:`edited_sources`).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from autograder.intake.inputs import InputError, as_utc, describe_due, read_extensions, read_overrides
from autograder.intake.roster import read_roster
from autograder.results import atomic_write_text

POLICY_FILE = "policy.json"
POLICY_SCHEMA = 1
TABLES = ("roster", "overrides", "extensions")


@dataclass(frozen=True)
class LatePolicy:
    """A share of the points lost per started ``unit`` late, capped at ``cap``; ``text`` as it was given."""

    rate: float = 0.0
    unit: timedelta = timedelta(days=1)
    cap: float = 1.0
    text: str = field(default="none", compare=False)

    @classmethod
    def parse(cls, text: str) -> LatePolicy:
        text = text.strip().lower()
        if text == "none":
            return cls()
        if text == "zero":
            return cls(rate=1.0, text=text)
        match = re.fullmatch(r"(\d+(?:\.\d+)?)%/(day|hour)(?:,\s*max=(\d+(?:\.\d+)?)%)?", text)
        if not match:
            raise InputError(f"late policy {text!r}: expected 'none', 'zero' or like '10%/day,max=50%'")
        rate, unit, cap = match.groups()
        if float(rate) > 100 or (cap and float(cap) > 100):
            raise InputError(f"late policy {text!r}: a share above 100% of the points cannot be taken")
        return cls(rate=float(rate) / 100, unit=timedelta(**{f"{unit}s": 1}),
                   cap=float(cap) / 100 if cap else 1.0, text=text)

    @property
    def unit_name(self) -> str:
        return "hour" if self.unit == timedelta(hours=1) else "day"

    @property
    def active(self) -> bool:
        return self.rate > 0

    def fraction(self, units_late: int) -> float:
        return min(self.rate * units_late, self.cap)

    def describe(self) -> str:
        """In a student's words, e.g. "10% of the points per started day late, at most 50%"."""
        if not self.active:
            return "no late penalty"
        if self.rate >= 1:
            return "a late submission scores 0"
        cap = f", at most {100 * self.cap:g}%" if self.cap < 1 else ""
        return f"{100 * self.rate:g}% of the points per started {self.unit_name} late{cap}"


@dataclass(frozen=True, eq=False)
class GradingPolicy:
    """Everything between the graded score and the grade given (tables are CSVs read by ``intake.inputs``)."""

    roster: pd.DataFrame | None = None
    overrides: pd.DataFrame | None = None
    extensions: pd.DataFrame | None = None  # student_id, due (aware datetime): a deadline of their own
    due: datetime | None = None
    timezone: str | None = None  # the IANA zone the deadline was read in, for showing it
    late: LatePolicy = LatePolicy()
    missing_as_zero: bool = False
    canvas_assignment_id: str | None = None  # the Canvas column canvas_grades.csv updates (None: a new one)
    sources: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> {"file", "sha256"}

    def zone(self) -> ZoneInfo | None:
        return ZoneInfo(self.timezone) if self.timezone else None

    def due_text(self) -> str | None:
        return describe_due(self.due, self.zone()) if self.due else None

    def describe(self) -> list[str]:
        """One line per part of the policy, as ``gradebook`` prints it."""
        lines = [f"due: {self.due_text() or 'none'}", f"late policy: {self.late.text} ({self.late.describe()})"]
        for name in TABLES:
            table = getattr(self, name)
            if table is not None:
                source = self.sources.get(name, {}).get("file")
                lines.append(f"{name}: {len(table)} row(s)" + (f" from {source}" if source else ""))
        lines.append(f"missing as zero: {'yes' if self.missing_as_zero else 'no'}")
        lines.append(f"canvas assignment id: {self.canvas_assignment_id or 'none'}")
        return lines

    def check(self) -> None:
        """A deadline without a late policy changes no grade: refused rather than silently ignored."""
        if (self.due is not None or self.extensions is not None) and not self.late.active:
            what = "--due" if self.due is not None else "--extensions"
            raise InputError(f"{what} without a late policy changes no grade: add --late-policy "
                             "(e.g. '10%/day,max=50%' or 'zero')")


# --- reading the options --------------------------------------------------------------------------

def source_of(path: str | Path) -> dict[str, str]:
    path = Path(path)
    return {"file": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def updated(recorded: GradingPolicy, *, roster: str | None = None, overrides: str | None = None,
            extensions: str | None = None, due: datetime | None = None, zone: ZoneInfo | None = None,
            late_policy: str | None = None, missing_as_zero: bool | None = None,
            canvas_assignment_id: str | None = None) -> GradingPolicy:
    """``recorded`` with every option given (not None) put in its place; every input is read here, before
    anything is written. ``--late-policy none`` without a new ``--due`` drops the recorded deadline and
    extensions, which a policy without lateness cannot use."""
    given: dict[str, Any] = {}
    sources = dict(recorded.sources)
    for name, path, reader in (("roster", roster, read_roster), ("overrides", overrides, read_overrides),
                               ("extensions", extensions, lambda p: read_extensions(p, zone or recorded.zone()))):
        if path is not None:
            given[name] = reader(path)
            sources[name] = source_of(path)
    if late_policy is not None:
        given["late"] = LatePolicy.parse(late_policy)
        if not given["late"].active and due is None:  # what was recorded for lateness; given now: refused below
            given["due"] = None
            if extensions is None:
                given["extensions"] = None
                sources.pop("extensions", None)
    if due is not None:
        given["due"] = due
    if zone is not None:
        given["timezone"] = zone.key
    if missing_as_zero is not None:
        given["missing_as_zero"] = missing_as_zero
    if canvas_assignment_id is not None:
        given["canvas_assignment_id"] = canvas_assignment_id
    policy = replace(recorded, **given, sources=sources)
    policy.check()
    return policy


# --- the record -----------------------------------------------------------------------------------

def to_record(policy: GradingPolicy) -> dict[str, Any]:
    def table(name: str) -> dict[str, Any] | None:
        frame = getattr(policy, name)
        if frame is None:
            return None
        if name == "extensions":
            frame = frame.assign(due=frame["due"].map(as_utc))
        return {**policy.sources.get(name, {}), "rows": frame.to_dict("records")}

    return {"schema_version": POLICY_SCHEMA, "due": as_utc(policy.due) if policy.due else None,
            "timezone": policy.timezone, "late_policy": policy.late.text,
            "missing_as_zero": policy.missing_as_zero, "canvas_assignment_id": policy.canvas_assignment_id,
            **{name: table(name) for name in TABLES}}


def from_record(record: dict[str, Any]) -> GradingPolicy:
    def table(name: str) -> pd.DataFrame | None:
        entry = record.get(name)
        if entry is None:
            return None
        frame = pd.DataFrame(entry["rows"], dtype=str)
        if name == "extensions":
            frame["due"] = frame["due"].map(datetime.fromisoformat)
        return frame

    return GradingPolicy(**{name: table(name) for name in TABLES},
                         due=datetime.fromisoformat(record["due"]) if record.get("due") else None,
                         timezone=record.get("timezone"), late=LatePolicy.parse(record.get("late_policy") or "none"),
                         missing_as_zero=bool(record.get("missing_as_zero")),
                         canvas_assignment_id=record.get("canvas_assignment_id"),
                         sources={name: {k: v for k, v in record[name].items() if k != "rows"}
                                  for name in TABLES if record.get(name)})


def read_policy(root: str | Path) -> GradingPolicy | None:
    """The policy recorded in the RESULTS folder ``root``, or None when none was recorded yet."""
    path = Path(root) / POLICY_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("schema_version") != POLICY_SCHEMA:
            raise ValueError(f"schema_version {record.get('schema_version')!r}, expected {POLICY_SCHEMA}")
        return from_record(record)
    except (OSError, ValueError, KeyError, TypeError, InputError) as exc:
        raise InputError(f"{path}: the recorded grading policy cannot be read ({exc}); run `autograder gradebook "
                         f"{Path(root)} --reset-policy` with the policy options to record it again") from None


def write_policy(root: str | Path, policy: GradingPolicy) -> Path:
    path = Path(root) / POLICY_FILE
    atomic_write_text(path, json.dumps(to_record(policy), indent=1, sort_keys=True) + "\n")
    return path


def changes(before: GradingPolicy | None, after: GradingPolicy) -> list[str]:
    """What differs between two policies, one line per field, e.g. "late_policy: none -> 10%/day"."""
    old, new = to_record(before or GradingPolicy()), to_record(after)
    lines = []
    for key in new:
        if key in TABLES:  # the rows count, not where the file was
            same = (old[key] or {}).get("rows") == (new[key] or {}).get("rows")
        else:
            same = old[key] == new[key]
        if same:
            continue
        if key in TABLES:
            def count(entry: Any) -> str:
                return "none" if entry is None else f"{len(entry['rows'])} row(s)" + (
                    f" from {entry['file']}" if entry.get("file") else "")
            lines.append(f"{key}: {count(old[key])} -> {count(new[key])}")
        elif key == "due":
            lines.append(f"due: {before.due_text() if before and before.due else 'none'} -> "
                         f"{after.due_text() or 'none'}")
        else:
            lines.append(f"{key}: {'none' if old[key] is None else old[key]} -> {new[key]}")
    return lines


def edited_sources(policy: GradingPolicy) -> list[str]:
    """Recorded CSVs whose file has changed since: the record (not the file) is what counts."""
    notes = []
    for name, source in policy.sources.items():
        path = Path(source.get("file", ""))
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() != source.get("sha256"):
            notes.append(f"{path} changed since its {name} rows were recorded; the recorded rows count until "
                         f"`autograder gradebook` is given --{name} again")
    return notes
