"""Load and validate an assignment directory (``assignment.toml`` + calibration + hidden tests).

The file is checked against ``schemas/assignment.schema.json``; a bad file fails fast with an
``AssignmentError`` naming the key, e.g.
``assignment.toml: questions[2].checks[0].points: expected a number, got 'ten'``. Defaults of optional
keys live here (:class:`Execution` and :func:`load_assignment`) and are documented in the shipped
``assignments/mnist/assignment.toml``.
"""
from __future__ import annotations

import functools
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

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
SCORING_CODE = ("assignment.py", "score/accuracy.py", "score/architecture.py", "score/artifacts.py",
                "score/checks.py", "data.py", "pipeline/grade_one.py", "score/hidden.py",
                "score/integrity.py", "score/report.py", "run/inside/contract.py", "run/inside/sketch.py")
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
    """The ``[execution]`` table: budgets and limits of the sandboxed run. These defaults are the only ones
    (sandbox.Limits takes its own from here); assignments/mnist/assignment.toml documents each key."""

    wall_budget_seconds: float = 600  # the whole notebook
    cell_timeout_seconds: float = 420  # any one cell
    memory_mb: int = 4096  # everything a sandbox starts, tmpfs files included
    on_error: str = "continue"  # or "stop" at the first failing cell
    max_submission_mb: float = 25  # checked before the file is parsed
    max_output_mb: float = 2  # outputs kept per notebook; the rest is dropped while streaming
    threads: int = 2  # TensorFlow/BLAS threads per sandbox: fixed, so scores do not depend on -j
    export_seconds: float = 120  # the export step, even when the student's budget ran out
    kernel_start_seconds: float = 60  # for the kernel to answer its first message
    watchdog_grace_seconds: float = 30  # the kernel's hard kill comes this long after budget + start,
    # so the softer stops (cell timeout, interrupt, end of budget) act first and the export still runs
    predict_model_seconds: float = 120  # one model's predictions on every image set
    predict_max_seconds: float = 600  # all models of one notebook, whatever its own budget left
    home_mb: int = 1024  # the sandbox's private tmpfs home and /tmp, each
    export_mb: int = 1024  # disk a job may fill in the directories it writes back
    file_size_mb: int = 512  # any one file written (RLIMIT_FSIZE)
    processes: int = 512  # pids.max and RLIMIT_NPROC: counts threads, and TensorFlow starts dozens


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
    allow_pretrained_weights: bool = False  # [integrity]: weights brought in (transfer learning) may earn points
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


SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "assignment.schema.json"
_TYPE_NAMES = {"number": "a number", "integer": "an integer", "string": "a string", "array": "a list",
               "object": "a table", "boolean": "true or false"}


@functools.lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))


def _key_path(path: Any) -> str:
    """``questions[2].checks[0].points`` from the error's path."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def _schema_problem(error: jsonschema.ValidationError) -> str:
    """One line naming the key and what is wrong with it."""
    where, value, rule = _key_path(error.absolute_path), error.instance, error.validator_value
    if error.validator == "required":
        missing = next(key for key in rule if key not in value)
        return f"{where + '.' if where else ''}{missing}: missing"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(value) - set(allowed))[0]
        return f"{where + '.' if where else ''}{unknown}: unknown key (allowed: {allowed})"
    if error.validator == "type":
        return f"{where}: expected {_TYPE_NAMES.get(rule, rule)}, got {value!r}"
    if error.validator == "enum":
        return f"{where}: expected one of {', '.join(map(repr, rule))}, got {value!r}"
    bounds = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    if error.validator in bounds:
        return f"{where}: must be {bounds[error.validator]} {rule}, got {value!r}"
    return f"{where}: {error.message}"


def validate_config(raw: dict[str, Any]) -> None:
    """Check ``raw`` (a parsed assignment.toml) against the schema; the first problem is raised by key."""
    error = jsonschema.exceptions.best_match(_validator().iter_errors(raw))
    if error is not None:
        raise AssignmentError(f"assignment.toml: {_schema_problem(error)}")
    ids = [q["id"] for q in raw["questions"]]
    for index, qid in enumerate(ids):
        if qid in ids[:index]:
            raise AssignmentError(f"assignment.toml: questions[{index}].id: duplicate question id {qid!r}")


def read_toml(path: Path, error: type[Exception]) -> dict[str, Any]:
    """A TOML file as a dict; a file that cannot be read or parsed raises ``error`` naming it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from exc


def load_assignment(path: str | Path) -> Assignment:
    """Read ``assignment.toml`` from a directory (or the file itself) and validate every key."""
    path = Path(path)
    if not path.exists():
        raise AssignmentError(f"{path}: no such assignment folder (pass --assignment DIR)")
    root = path if path.is_dir() else path.parent
    toml_path = root / "assignment.toml"
    raw = read_toml(toml_path, AssignmentError)
    validate_config(raw)
    meta, evaluation, thresholds, report = raw["assignment"], raw["evaluation"], raw["thresholds"], raw["report"]
    questions = tuple(Question(id=q["id"], title=q["title"],
                               checks=tuple(Check(test=c["test"], points=float(c["points"])) for c in q["checks"]))
                      for q in raw["questions"])
    sections = tuple(ReportSection(title=s["title"], aliases=tuple(s.get("aliases", [])),
                                   min_words=int(s.get("min_words", 0))) for s in report["sections"])

    seed_file = (root / evaluation["seed_file"]).resolve()
    calibration_file = (root / thresholds["calibration_file"]).resolve()
    if (root / TERM_DIR / TERM_SEED).is_file():  # a term's private seed, with the calibration made on it
        seed_file = (root / TERM_DIR / TERM_SEED).resolve()
        calibration_file = (root / TERM_DIR / TERM_CALIBRATION).resolve()
    return Assignment(
        root=root.resolve(),
        name=meta["name"],
        title=meta.get("title", ""),
        master_notebook=(root / meta["master_notebook"]).resolve(),
        student_dir=(root / meta["student_dir"]).resolve(),
        student_notebook=meta["student_notebook"],
        execution=Execution(**raw.get("execution", {})),
        evaluation_size=evaluation["size"],
        evaluation_max_shift=evaluation.get("max_shift", 2),
        evaluation_seed_file=seed_file,
        calibration_file=calibration_file,
        threshold_margin=float(thresholds["margin"]),
        threshold_span=float(thresholds["span"]),
        models=dict(raw["models"]),
        probes=dict(raw["probes"]),
        param_budget_factor=float(raw.get("architecture", {}).get("param_budget_factor", 10)),
        questions=questions,
        report_sections=sections,
        claim_tolerance=float(report.get("claim_tolerance", 0.01)),
        table_architectures=tuple(report.get("table_architectures", ARCHITECTURES)),
        min_insight_words=int(report.get("min_insight_words", 80)),
        allow_pretrained_weights=bool(raw.get("integrity", {}).get("allow_pretrained_weights", False)),
        raw=raw,
    )
