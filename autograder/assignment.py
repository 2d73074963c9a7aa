"""Load and validate an assignment directory (``assignment.toml`` + calibration + hidden tests).

A bad file fails fast with an ``AssignmentError`` naming the key, e.g.
``assignment.toml: questions[2].checks[0].points: expected a number, got 'ten'``.
"""
from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARCHITECTURES = ("mlp", "cnn", "simple_rnn", "lstm", "gru")
#: The grader's own code that turns stored evidence into points (Phase B). It is part of the bundle
#: hash, so a scoring fix is noticed like a rubric change: results scored by older code are regraded.
GRADER_ROOT = Path(__file__).resolve().parent
#: Where ``autograder new-term`` keeps a term's private evaluation seed and the calibration measured on
#: it. The folder ignores itself in git (its own .gitignore), and when it holds a seed, that seed and
#: that calibration replace the committed ones (the committed seed is a public demo seed).
TERM_DIR = "term"
TERM_SEED = "evaluation_seed.txt"
TERM_CALIBRATION = "calibration.json"
SCORING_CODE = ("assignment.py", "accuracy.py", "architecture.py", "artifacts.py", "checks.py", "data.py",
                "grade.py", "hidden.py", "integrity.py", "report.py", "inside/contract.py")
ARCHITECTURE_TITLES = {"mlp": "MLP", "cnn": "CNN", "simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


class AssignmentError(ValueError):
    """The assignment definition is invalid; the message names the offending key."""


@dataclass(frozen=True)
class Check:
    test: str
    points: float


@dataclass(frozen=True)
class Question:
    id: str
    title: str
    checks: tuple[Check, ...]

    @property
    def points(self) -> float:
        return sum(c.points for c in self.checks)


@dataclass(frozen=True)
class ReportSection:
    title: str
    aliases: tuple[str, ...]
    min_words: int


@dataclass(frozen=True)
class Execution:
    wall_budget_seconds: float = 600
    cell_timeout_seconds: float = 420
    memory_mb: int = 4096
    on_error: str = "continue"
    max_submission_mb: float = 25
    max_output_mb: float = 2
    threads: int = 2  # TensorFlow/BLAS threads per notebook: fixed, so scores do not depend on -j


@dataclass(frozen=True)
class Threshold:
    """Accuracy credit: 1 at or above ``full``, 0 at or below ``zero``, linear in between."""

    full: float
    zero: float

    def credit(self, accuracy: float) -> float:
        if accuracy >= self.full:
            return 1.0
        if accuracy <= self.zero:
            return 0.0
        return (accuracy - self.zero) / (self.full - self.zero)


@dataclass(frozen=True)
class Assignment:
    root: Path
    name: str
    title: str
    master_notebook: Path
    student_dir: Path
    student_notebook: str
    execution: Execution
    evaluation_size: int
    evaluation_max_shift: int
    evaluation_seed_file: Path
    calibration_file: Path
    threshold_margin: float
    threshold_span: float
    models: dict[str, str]
    probes: dict[str, str]
    param_budget_factor: float  # a model may have this many times its reference's parameters
    questions: tuple[Question, ...]
    report_sections: tuple[ReportSection, ...]
    claim_tolerance: float
    table_architectures: tuple[str, ...]
    min_insight_words: int
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def max_score(self) -> float:
        return sum(q.points for q in self.questions)

    @property
    def hidden_dir(self) -> Path:
        return self.root / "hidden"

    @property
    def private_term(self) -> bool:
        """True once ``autograder new-term`` has set a private seed; False: the public demo seed is used."""
        return self.evaluation_seed_file.parent == self.root / TERM_DIR

    def evaluation_seed(self) -> int:
        """The seed of the hidden evaluation set (lines starting with ``#`` are comments)."""
        try:
            lines = [line.strip() for line in self.evaluation_seed_file.read_text().splitlines()]
            return int(next(line for line in lines if line and not line.startswith("#")))
        except (OSError, ValueError, StopIteration) as exc:
            raise AssignmentError(f"evaluation.seed_file: cannot read an integer seed from "
                                  f"{self.evaluation_seed_file}: {exc}") from exc

    def calibration(self) -> dict[str, Any]:
        try:
            return json.loads(self.calibration_file.read_text())
        except (OSError, ValueError) as exc:
            fix = "`autograder new-term --force`" if self.private_term else "`autograder calibrate`"
            raise AssignmentError(f"thresholds.calibration_file: cannot read {self.calibration_file}: {exc}"
                                  f" (run {fix})") from exc

    def thresholds(self, calibration: dict[str, Any] | None = None) -> dict[str, Threshold]:
        """Per-architecture accuracy thresholds derived from the calibration (read if not given)."""
        archs = (calibration if calibration is not None else self.calibration()).get("architectures", {})
        out = {}
        for arch in ARCHITECTURES:
            if arch not in archs:
                raise AssignmentError(f"{self.calibration_file.name}: architectures.{arch} is missing")
            full = archs[arch]["eval_accuracy"]["min"] - self.threshold_margin
            out[arch] = Threshold(full=round(full, 4), zero=round(full - self.threshold_span, 4))
        return out

    def param_budgets(self, calibration: dict[str, Any]) -> dict[str, int]:
        """Most parameters a model of each architecture may have: ``param_budget_factor`` x the reference's."""
        archs = calibration.get("architectures", {})
        budgets = {}
        for arch in ARCHITECTURES:
            params = archs.get(arch, {}).get("params")
            if not isinstance(params, int) or params <= 0:
                raise AssignmentError(f"{self.calibration_file.name}: architectures.{arch}.params is missing")
            budgets[arch] = int(self.param_budget_factor * params)
        return budgets

    def bundle_sha256(self) -> str:
        """Hash of everything that decides a score: config, calibration, hidden tests, seed, scoring code.

        Results carry it so that a changed rubric, threshold or scoring fix is noticed (and regraded).
        """
        digest = hashlib.sha256()
        files = [self.root / "assignment.toml", self.calibration_file, self.evaluation_seed_file]
        files += sorted(self.hidden_dir.glob("*.py"))
        files += [GRADER_ROOT / name for name in SCORING_CODE]
        for path in files:
            if path.is_file():
                digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()


def _get(table: dict, key: str, kind: type | tuple, where: str, default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise AssignmentError(f"assignment.toml: {where}{key}: missing")
        return default
    value = table[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds).replace("float", "number")
        raise AssignmentError(f"assignment.toml: {where}{key}: expected {names}, got {value!r}")
    return value


def _known_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise AssignmentError(f"assignment.toml: {where}{unknown[0]}: unknown key (allowed: {sorted(allowed)})")


NUMBER = (int, float)


def load_assignment(path: str | Path) -> Assignment:
    """Read ``assignment.toml`` from a directory (or the file itself) and validate every key."""
    path = Path(path)
    if not path.exists():
        raise AssignmentError(f"{path}: no such assignment folder (pass --assignment DIR)")
    root = path if path.is_dir() else path.parent
    toml_path = root / "assignment.toml"
    try:
        raw = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AssignmentError(f"{toml_path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise AssignmentError(f"{toml_path}: not valid TOML: {exc}") from exc
    _known_keys(raw, {"assignment", "execution", "evaluation", "thresholds", "models", "probes",
                      "architecture", "questions", "report"}, "")

    meta = _get(raw, "assignment", dict, "")
    execution = _get(raw, "execution", dict, "", {})
    _known_keys(execution, set(Execution.__dataclass_fields__), "execution.")
    exec_values = {k: _get(execution, k, str if k == "on_error" else NUMBER, "execution.")
                   for k in execution}
    if exec_values.get("on_error", "continue") not in ("continue", "stop"):
        raise AssignmentError("assignment.toml: execution.on_error: expected 'continue' or 'stop'")
    evaluation = _get(raw, "evaluation", dict, "")
    thresholds = _get(raw, "thresholds", dict, "")
    models = _get(raw, "models", dict, "")
    for arch in ARCHITECTURES:
        _get(models, arch, str, "models.")
    _known_keys(models, set(ARCHITECTURES), "models.")
    architecture = _get(raw, "architecture", dict, "", {})
    _known_keys(architecture, {"param_budget_factor"}, "architecture.")
    probes = _get(raw, "probes", dict, "")
    for key in probes:
        _get(probes, key, str, "probes.")

    questions = []
    seen: set[str] = set()
    for qi, q in enumerate(_get(raw, "questions", list, "")):
        where = f"questions[{qi}]."
        if not isinstance(q, dict):
            raise AssignmentError(f"assignment.toml: questions[{qi}]: expected a table")
        _known_keys(q, {"id", "title", "checks"}, where)
        qid = _get(q, "id", str, where)
        if qid in seen:
            raise AssignmentError(f"assignment.toml: {where}id: duplicate question id {qid!r}")
        seen.add(qid)
        checks = []
        for ci, c in enumerate(_get(q, "checks", list, where)):
            cwhere = f"{where}checks[{ci}]."
            if not isinstance(c, dict):
                raise AssignmentError(f"assignment.toml: {cwhere[:-1]}: expected a table")
            _known_keys(c, {"test", "points"}, cwhere)
            points = _get(c, "points", NUMBER, cwhere)
            if points < 0:
                raise AssignmentError(f"assignment.toml: {cwhere}points: must be >= 0, got {points}")
            checks.append(Check(test=_get(c, "test", str, cwhere), points=float(points)))
        questions.append(Question(id=qid, title=_get(q, "title", str, where), checks=tuple(checks)))

    report = _get(raw, "report", dict, "")
    sections = []
    for si, s in enumerate(_get(report, "sections", list, "report.")):
        where = f"report.sections[{si}]."
        _known_keys(s, {"title", "aliases", "min_words"}, where)
        sections.append(ReportSection(title=_get(s, "title", str, where),
                                      aliases=tuple(_get(s, "aliases", list, where, [])),
                                      min_words=int(_get(s, "min_words", int, where, 0))))
    table_archs = tuple(_get(report, "table_architectures", list, "report.", list(ARCHITECTURES)))
    for arch in table_archs:
        if arch not in ARCHITECTURES:
            raise AssignmentError(f"assignment.toml: report.table_architectures: unknown architecture {arch!r}")

    seed_file = (root / _get(evaluation, "seed_file", str, "evaluation.")).resolve()
    calibration_file = (root / _get(thresholds, "calibration_file", str, "thresholds.")).resolve()
    if (root / TERM_DIR / TERM_SEED).is_file():  # a term's private seed, with the calibration made on it
        seed_file = (root / TERM_DIR / TERM_SEED).resolve()
        calibration_file = (root / TERM_DIR / TERM_CALIBRATION).resolve()
    return Assignment(
        root=root.resolve(),
        name=_get(meta, "name", str, "assignment."),
        title=_get(meta, "title", str, "assignment.", ""),
        master_notebook=(root / _get(meta, "master_notebook", str, "assignment.")).resolve(),
        student_dir=(root / _get(meta, "student_dir", str, "assignment.")).resolve(),
        student_notebook=_get(meta, "student_notebook", str, "assignment."),
        execution=Execution(**exec_values),
        evaluation_size=_get(evaluation, "size", int, "evaluation."),
        evaluation_max_shift=_get(evaluation, "max_shift", int, "evaluation.", 2),
        evaluation_seed_file=seed_file,
        calibration_file=calibration_file,
        threshold_margin=float(_get(thresholds, "margin", NUMBER, "thresholds.")),
        threshold_span=float(_get(thresholds, "span", NUMBER, "thresholds.")),
        models=dict(models),
        probes=dict(probes),
        param_budget_factor=float(_get(architecture, "param_budget_factor", NUMBER, "architecture.", 10)),
        questions=tuple(questions),
        report_sections=tuple(sections),
        claim_tolerance=float(_get(report, "claim_tolerance", NUMBER, "report.", 0.01)),
        table_architectures=table_archs,
        min_insight_words=int(_get(report, "min_insight_words", int, "report.", 80)),
        raw=raw,
    )
