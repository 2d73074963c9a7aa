"""A RESULTS folder on disk: where each result and its evidence live, and whether it can be trusted.

Two layouts are read alike, so every reporting verb (``regrade``, ``gradebook``, ``feedback``, ``show``)
takes either::

    RESULTS/results/<key>.json, RESULTS/artifacts/<key>/, RESULTS/logs/<key>.log, RESULTS/batch.json
                                                          (``autograder grade``)
    OUT/result.json, OUT/artifacts/                       (``autograder grade-one``; key = OUT's name)

A missing path, a folder holding no results and a folder that is not a RESULTS folder are refused with
one line (:class:`ResultsError`), never read as "0 results".

A result is current when it was produced under the assignment's evidence key and scored under its
scoring key (:meth:`autograder.assignment.Assignment.evidence_key`, ``scoring_key``).
:meth:`Store.evidence_changes` says what changed when the evidence key differs (only ``grade``, running
the notebook again, cures it); a different scoring key is cured by ``regrade``. Reports refuse to mix
stale results with current ones (:func:`require_current`). The reports written from a RESULTS folder
(gradebook, exports, feedback pages) are recorded in ``RESULTS/reports.json``; when results change
(``regrade``, ``grade``) those files are removed (:meth:`Store.remove_reports`), so no page from before
stays where it could be taken for current.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder.assignment import Assignment, Key, load_assignment, stored_evidence_key
from autograder.intake.inputs import InputError
from autograder.results import atomic_write_text, read_result

SINGLE_RESULT = "result.json"
REPORTS_RECORD = "reports.json"
DEFAULT_ASSIGNMENT = Path("assignments/mnist")


class ResultsError(InputError):
    """RESULTS is missing, empty, foreign, or its results cannot be used as they are."""


@dataclass(frozen=True)
class Store:
    """Paths of a RESULTS folder (batch layout) or of a ``grade-one`` output folder (single layout)."""

    root: Path
    single: bool = False

    def result(self, key: str) -> Path:
        return self.root / SINGLE_RESULT if self.single else self.root / "results" / f"{key}.json"

    def artifacts(self, key: str) -> Path:
        return self.root / "artifacts" if self.single else self.root / "artifacts" / key

    def log_path(self, key: str) -> Path:
        return self.root / "logs" / f"{key}.log"

    def log(self, key: str, line: str) -> None:
        """One grading event of ``key``: appended to its log file, and shown under ``-v``."""
        logging.getLogger("autograder").info("%s: %s", key, line)
        path = self.log_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")

    def keys(self) -> list[str]:
        if self.single:
            return [self.root.name] if (self.root / SINGLE_RESULT).is_file() else []
        return [path.stem for path in sorted((self.root / "results").glob("*.json"))]

    def load(self) -> dict[str, dict[str, Any]]:
        """Every result, by key, in key order; an unreadable one is refused by name."""
        results = {}
        for key in self.keys():
            try:
                results[key] = read_result(self.result(key))
            except (OSError, ValueError) as exc:
                raise ResultsError(f"{self.result(key)}: cannot be read ({exc}); delete it and run "
                                   "`autograder grade` again to re-grade that submission") from exc
        return results

    def evidence_changes(self, key: str, result: dict[str, Any], current: Key) -> list[str]:
        """What changed since the result's evidence was produced, in words; [] when it is current."""
        recorded = (result.get("assignment") or {}).get("evidence_sha256")
        if recorded == current.sha256:
            return []
        stored = stored_evidence_key(self.artifacts(key))
        if recorded is None or (stored is not None and stored.sha256 == recorded):
            return current.changes_since(stored.parts if stored else None) or ["the evidence key"]
        return ["the evidence settings"]  # no stored key beside it (e.g. rejected before anything ran)

    def staleness(self, results: dict[str, dict[str, Any]], assignment: Assignment) -> dict[str, str]:
        """Each result that is not current, with the verb that cures it: ``grade`` or ``regrade``."""
        evidence, scoring = assignment.evidence_key(), assignment.scoring_key().sha256
        verbs = {}
        for key, result in results.items():
            if self.evidence_changes(key, result, evidence):
                verbs[key] = "grade"
            elif (result.get("assignment") or {}).get("bundle_sha256") != scoring:
                verbs[key] = "regrade"
        return verbs

    def record_reports(self, paths: list[Path]) -> None:
        """Remember report files written from these results (see :meth:`remove_reports`)."""
        written = sorted({*self.recorded_reports(), *(str(Path(p).resolve()) for p in paths)})
        atomic_write_text(self.root / REPORTS_RECORD, json.dumps(written, indent=1) + "\n")

    def recorded_reports(self) -> list[str]:
        try:
            recorded = json.loads((self.root / REPORTS_RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return [p for p in recorded if isinstance(p, str)] if isinstance(recorded, list) else []

    def remove_reports(self) -> list[Path]:
        """Delete the recorded report files (results changed since they were written); returns those removed."""
        removed = []
        for name in self.recorded_reports():
            path = Path(name)
            if path.is_file() and not path.is_symlink():
                path.unlink()
                removed.append(path)
        (self.root / REPORTS_RECORD).unlink(missing_ok=True)
        return removed


def open_results(path: str | Path) -> Store:
    """The RESULTS folder at ``path``, refused with one line when it holds no results."""
    root = Path(path)
    if not root.exists():
        raise ResultsError(f"{root}: no such folder")
    if not root.is_dir():
        raise ResultsError(f"{root}: not a folder (expected the RESULTS folder of `autograder grade` "
                           "or the --out folder of `autograder grade-one`)")
    if (root / SINGLE_RESULT).is_file():
        return Store(root.resolve(), single=True)
    store = Store(root.resolve())
    if store.keys():
        return store
    if (root / "results").is_dir() or (root / "batch.json").is_file():
        raise ResultsError(f"{root}: holds no results yet (did `autograder grade` stop before the first "
                           "submission finished?)")
    raise ResultsError(f"{root}: not a RESULTS folder (no results/*.json from `autograder grade`, "
                       "no result.json from `autograder grade-one`)")


def check_output_folder(path: str | Path, marks: tuple[str, ...] = ("results", "batch.json")) -> Path:
    """A folder grading may write into: absent, empty, or an earlier output (holding one of ``marks``)."""
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise ResultsError(f"{root}: exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not any((root / mark).exists() for mark in marks):
        raise ResultsError(f"{root}: exists, is not empty and is not an earlier output of the grader; "
                           "choose another --out")
    return root


def recorded_assignment(results: dict[str, dict[str, Any]]) -> Path | None:
    """The assignment folder the results say they were graded (or last regraded) with, newest first."""
    def when(result: dict[str, Any]) -> str:
        grader = result.get("grader") or {}
        return max(grader.get("graded_at") or "", grader.get("regraded_at") or "")

    for result in sorted(results.values(), key=when, reverse=True):
        root = (result.get("assignment") or {}).get("root")
        if root:
            return Path(root)
    return None


def resolve_assignment(flag: str | Path | None, results: dict[str, dict[str, Any]] | None = None) -> Assignment:
    """``--assignment`` if given, else the folder the results record, else ./assignments/mnist.

    Results of another assignment (by name) are refused: a gradebook must not mix rubrics.
    """
    results = results or {}
    if flag is not None:
        assignment = load_assignment(flag)
    else:
        recorded = recorded_assignment(results)
        if recorded is not None and not (recorded / "assignment.toml").is_file():
            raise ResultsError(f"the results were graded with the assignment in {recorded}, which is not "
                               "there any more; pass --assignment DIR")
        candidate = recorded or DEFAULT_ASSIGNMENT
        if not (candidate / "assignment.toml").is_file():
            raise ResultsError(f"no assignment in {candidate.resolve()} (the default, relative to the current "
                               "folder); pass --assignment DIR")
        assignment = load_assignment(candidate)
    names = {(r.get("assignment") or {}).get("name") for r in results.values()} - {None}
    foreign = names - {assignment.name}
    if foreign:
        raise ResultsError(f"the results are for assignment {sorted(foreign)[0]!r}, not {assignment.name!r} "
                           f"({assignment.root}); pass the right --assignment DIR")
    return assignment


def require_current_evidence(store: Store, results: dict[str, dict[str, Any]], assignment: Assignment) -> None:
    """Refuse, with one line naming what changed, when any result's evidence is out of date: only ``grade``
    (executing the notebooks again) cures that, never ``regrade``."""
    evidence = assignment.evidence_key()
    rerun = {key: changed for key, result in results.items()
             if (changed := store.evidence_changes(key, result, evidence))}
    if rerun:
        what = sorted({change for changed in rerun.values() for change in changed})
        first = next(iter(rerun))
        raise ResultsError(f"{len(rerun)} of {len(results)} results come from evidence produced under other "
                           f"settings ({', '.join(what[:4])}{', ...' if len(what) > 4 else ''} changed), e.g. "
                           f"{first}: regrade cannot cure that; run `autograder grade SUBMISSIONS -o {store.root}` "
                           "to execute them again")


def require_current(store: Store, results: dict[str, dict[str, Any]], assignment: Assignment) -> None:
    """Refuse to report results that are not current next to current ones, naming the verb that cures them."""
    require_current_evidence(store, results, assignment)
    verbs = store.staleness(results, assignment)
    if verbs:
        first = next(iter(verbs))
        raise ResultsError(
            f"{len(verbs)} of {len(results)} results were scored under another version of the assignment "
            f"(rubric, thresholds, hidden tests, calibration or the grader's scoring code changed), e.g. {first}: "
            f"run `autograder regrade {store.root}` first")


def check_writable(paths: list[Path]) -> None:
    """Refuse, before anything is written, a file to write that is a folder or lies under a file."""
    for path in map(Path, paths):
        if path.is_dir():
            raise ResultsError(f"{path}: is a folder, so the file cannot be written there; choose another --out")
        check_report_folder(path.parent)


def check_report_folder(path: str | Path) -> Path:
    """A folder a report may write into: a folder, or absent with nothing but folders above it."""
    root = Path(path)
    for folder in (root, *root.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ResultsError(f"{folder}: exists and is not a folder; choose another --out")
            break
    return root
