"""What people hand the grader besides notebooks: CSV tables (:func:`read_csv_table`; the roster's is
:mod:`autograder.intake.roster`), overrides, extensions and times, each read in one place.

Every mistake in them is an :class:`InputError` whose message is one line naming the file, the line or
the column, and what was expected; the command line prints it and exits 2 without touching RESULTS. A
batch of submissions that cannot be used as a whole is a :class:`SubmissionsError`.

Deadlines (``--due``, an extension's ``due``): ISO 8601 only (:func:`parse_due`), e.g. ``2026-12-01``,
``2026-12-01T23:59`` or ``2026-12-01T23:59+01:00``; ``1.12.2026`` or ``12/1`` are refused, not guessed. A date
without a time means the END of that day (23:59:59); a time without a UTC offset is read in a named timezone
(``--timezone``, default the machine's own zone when it has a name), so a deadline never silently means
midnight at the start of the day or the grading server's clock.

Submission times (in results and LMS exports, :func:`parse_time`): ISO 8601 and the variants LMS exports
write; one without a UTC offset is local time.
"""
from __future__ import annotations

import csv
import os
import re
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

OVERRIDE_COLUMNS = ("student_id", "question", "score", "reason")
EXTENSION_COLUMNS = ("student_id", "due")


class InputError(ValueError):
    """A roster, overrides file, time or option given by a person is unusable (one-line message)."""


class SubmissionsError(InputError):
    """The batch of submissions as a whole cannot be used (missing, unreadable, an unsafe archive, no notebook in
    it); a bad roster or override table is a plain :class:`InputError`."""


def read_csv_table(path: str | Path, required: tuple[str, ...], optional: tuple[str, ...] = (),
                   what: str = "table") -> pd.DataFrame:
    """A CSV of strings (ids keep their leading zeros), header matched case-insensitively.

    The result has the ``required`` and ``optional`` columns (optional ones filled with "") plus any
    others the file has; cells are stripped.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such {what} file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read the {what}: {exc}") from exc
    if not rows:
        raise InputError(f"{path}: the {what} is empty; expected a header row with {', '.join(required)}")
    header = [name.strip().lower() for name in rows[0]]
    absent = [c for c in required if c not in header]
    if absent:
        raise InputError(f"{path}: the {what} has no {', '.join(absent)} column (found: "
                         f"{', '.join(h for h in header if h) or 'none'}); expected {', '.join(required)}"
                         + (f"[, {', '.join(optional)}]" if optional else ""))
    body = [[cell.strip() for cell in row] + [""] * (len(header) - len(row)) for row in rows[1:] if any(row)]
    table = pd.DataFrame([row[:len(header)] for row in body], columns=header, dtype=str)
    for column in optional:
        if column not in table.columns:
            table[column] = ""
    return table


def refuse_blank(path: str | Path, table: pd.DataFrame, column: str) -> None:
    """One line naming the first row whose ``column`` is blank."""
    for line, value in enumerate(table[column], start=2):
        if not value:
            raise InputError(f"{path}:{line}: {column} is blank")


def refuse_repeats(path: str | Path, table: pd.DataFrame, column: str, why: str = "") -> None:
    """One line naming the first value of ``column`` that two rows share (blank cells are not values)."""
    first: dict[str, str] = {}
    for line, (value, student_id) in enumerate(zip(table[column], table["student_id"]), start=2):
        row = f"{line}" if column == "student_id" else f"{line} (student_id {student_id!r})"
        if value and value in first:
            raise InputError(f"{path}: {column} {value!r} is listed more than once (lines {first[value]} "
                             f"and {row}){why}")
        first.setdefault(value, row)


def read_overrides(path: str | Path) -> pd.DataFrame:
    return read_csv_table(path, OVERRIDE_COLUMNS, what="overrides")


def read_extensions(path: str | Path, zone: ZoneInfo | None) -> pd.DataFrame:
    """Extensions (``--extensions``): ``student_id, due``, a deadline of the student's own (ISO 8601, read as
    :func:`parse_due` reads ``--due``); a blank or repeated student_id is refused."""
    table = read_csv_table(path, EXTENSION_COLUMNS, what="extensions")
    refuse_blank(path, table, "student_id")
    refuse_repeats(path, table, "student_id", "; a student has one extension")
    dues = [parse_due(due, zone or named_timezone(None), what=f"{path}:{line}: due")
            for line, due in enumerate(table["due"], start=2)]
    return table[list(EXTENSION_COLUMNS)].assign(due=pd.Series(dues, index=table.index, dtype=object))


def parse_time(value: Any, what: str = "time") -> datetime | None:
    """An instant as an aware datetime (None for an empty value); no UTC offset means local time.

    Accepts ISO 8601 and the variants LMS exports write (``2026-12-01 10:00:00.123456789 -08:00``).
    """
    if value is None or value == "" or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = pd.Timestamp(str(value).strip()).to_pydatetime(warn=False)
        except (ValueError, TypeError, OverflowError):
            raise InputError(f"{what} {value!r}: not a date and time (expected e.g. 2026-12-01T23:59 "
                             "or 2026-12-01T23:59+01:00)") from None
        if moment != moment:  # NaT
            raise InputError(f"{what} {value!r}: not a date and time")
    return moment if moment.tzinfo else moment.astimezone()


#: Where a Debian-like system names its own timezone (``/etc/localtime`` links into it).
ZONEINFO_DIRS = ("/usr/share/zoneinfo/", "/usr/lib/zoneinfo/")
END_OF_DAY = time(23, 59, 59)


def named_timezone(name: str | None) -> ZoneInfo:
    """The IANA timezone ``name`` (``--timezone``), or the machine's own when it has a name."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"--timezone {name!r}: not a timezone name (expected e.g. Europe/Berlin, "
                             "America/New_York or UTC)") from None
    local = os.environ.get("TZ", "").lstrip(":")
    if not local and os.path.islink("/etc/localtime"):
        target = os.path.realpath("/etc/localtime")
        local = next((target[len(root):] for root in ZONEINFO_DIRS if target.startswith(root)), "")
    try:
        return ZoneInfo(local or "")
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError("this machine's timezone has no name: pass --timezone (e.g. Europe/Berlin) for a "
                         "deadline without a UTC offset") from None


def parse_due(text: str, zone: ZoneInfo, what: str = "--due") -> datetime:
    """A deadline in ISO 8601 only, as an aware datetime.

    ``2026-12-01`` is the end of that day (23:59:59) in ``zone``; ``2026-12-01T23:59`` is that time in
    ``zone``; ``2026-12-01T23:59+01:00`` (or ``Z``) is that instant. Anything else is refused.
    """
    text = str(text).strip()
    expected = "e.g. 2026-12-01 for the end of that day, 2026-12-01T23:59 or 2026-12-01T23:59+01:00"
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(?:[T ][0-9:.,]+(?:Z|[+-]\d{2}(?::?\d{2})?)?)?", text):
        raise InputError(f"{what} {text!r}: not an ISO 8601 date ({expected})")
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), END_OF_DAY, tzinfo=zone)
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"{what} {text!r}: {exc} ({expected})") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def describe_due(due: datetime, zone: ZoneInfo | None = None) -> str:
    """How a deadline was read, e.g. ``2026-12-01 23:59:59 Europe/Berlin (UTC+01:00)``."""
    local = due.astimezone(zone) if zone is not None else due
    offset = local.utcoffset() or timedelta(0)
    sign, minutes = ("-" if offset < timedelta(0) else "+"), abs(int(offset.total_seconds())) // 60
    name = f"{zone.key} " if zone is not None else ""
    return f"{local:%Y-%m-%d %H:%M:%S} {name}(UTC{sign}{minutes // 60:02d}:{minutes % 60:02d})"


def as_utc(moment: datetime) -> str:
    """An aware datetime as the ISO text records keep (UTC, to the second)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")
