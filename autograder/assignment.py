"""Load and validate an assignment directory (``assignment.toml`` + calibration + hidden tests).

The file is checked against ``schemas/assignment.schema.json``; a bad file fails fast with an
``AssignmentError`` naming the key, e.g.
``assignment.toml: questions[2].checks[0].points: expected a number, got 'ten'``. Defaults of optional
keys live here (:class:`Execution` and :func:`load_assignment`) and are documented in the shipped
``assignments/mnist/assignment.toml``.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import nbformat

# The five architectures are defined once, in the contract the sandbox shares (standard library only).
from autograder.run.inside.contract import ARCHITECTURE_TITLES, ARCHITECTURES

#: The grader's own package; its files are split between the two keys below by :data:`GRADER_FILES`.
GRADER_ROOT = Path(__file__).resolve().parent
#: Where ``autograder new-term`` keeps a term's private evaluation seed and the calibration measured on
#: it. The folder ignores itself in git (its own .gitignore), and when it holds a seed, that seed and
#: that calibration replace the committed ones (the committed seed is a public demo seed).
TERM_DIR = "term"
TERM_SEED = "evaluation_seed.txt"
TERM_CALIBRATION = "calibration.json"
#: Where ``autograder calibrate`` stores the reference models it trained (committed with the assignment), for
#: ``new-term`` to measure on a new seed; grading never reads them, so the Gradescope package leaves them out.
REFERENCE_MODELS = "reference_models"

EVIDENCE, SCORING, NEITHER = "evidence", "scoring", "neither"
#: Every file of the grader's package, by the key it belongs to: a file goes to the FIRST pattern that
#: matches it (``Path.glob`` patterns, relative to the package), so a new module is covered by its
#: package's line. ``evidence``: what produces the evidence (what runs in the sandboxes, how the notebook
#: is prepared, how the export becomes stored evidence, the evaluation images); a change means the
#: notebooks must run again. ``scoring``: what turns stored evidence into points; a change is cured by
#: ``regrade``. ``neither``: what decides no score (commands, reports, batch orchestration, authoring,
#: which file is whose). tests/test_assignment.py checks that every file is claimed.
GRADER_FILES: tuple[tuple[str, str], ...] = (
    ("run/**/*.py", EVIDENCE),  # the sandboxes, the kernel run, inside/ (export, predict, probes, contract)
    ("intake/notebook.py", EVIDENCE),  # the notebook that runs: sanitized, test cells dropped
    ("intake/printed.py", EVIDENCE),  # the numbers its outputs printed, found before they are cleared, stored
    ("vocabulary.py", EVIDENCE),  # the architecture names and numbers printed.py finds (the report reads them too)
    ("score/artifacts.py", EVIDENCE),  # the export read and validated into the stored evidence
    ("pipeline/evidence.py", EVIDENCE),  # Phase A for one notebook
    ("data.py", EVIDENCE),  # the evaluation images the models predict
    ("score/diagnose/**/*", NEITHER),  # diagnoses and their table: advice, not points
    ("score/**/*.py", SCORING),  # with lost_models (the review list and reason) and notebook_code (read by it)
    ("pipeline/grade_one.py", SCORING),
    ("assignment.py", SCORING),  # thresholds, parameter budgets (execution defaults and the kernelspec enter the
    # evidence key as values)
    ("intake/**/*", NEITHER),  # which file is whose (submissions, archives, layouts, roster); overrides, times (inputs)
    ("pipeline/**/*", NEITHER),  # batch: what to grade, where, in parallel
    ("output/**/*", NEITHER),  # store, gradebook, feedback, show, ...
    ("cli/**/*", NEITHER), ("author/**/*", NEITHER), ("schemas/*", NEITHER),
    ("results.py", NEITHER), ("student_text.py", NEITHER), ("__init__.py", NEITHER), ("__main__.py", NEITHER),
)
#: Tables of assignment.toml that shape what a notebook produces (the evidence key); the others score.
EVIDENCE_TABLES = ("execution", "evaluation", "models", "probes")
#: Beside each result's artifacts: the evidence key they were produced under (see :func:`save_evidence_key`).
EVIDENCE_KEY_FILE = "evidence_key.json"
#: Words for the parts of the keys, so a refusal can say what changed.
KEY_PART_WORDS = {"seed": "the evaluation seed", "evaluation": "the [evaluation] settings",
                  "execution": "the [execution] settings", "export_names": "the [models]/[probes] names",
                  "public_tests": "the public tests", "kernelspec": "the master notebook's kernel",
                  "tensorflow": "the TensorFlow version", "keras": "the Keras version",
                  "assignment.toml": "assignment.toml", "calibration": "the calibration",
                  "student_notebook": "the student template notebook"}
#: The kernel a notebook runs in when the instructor's notebook names none.
DEFAULT_KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


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
    (:class:`autograder.run.sandbox.spec.Limits` takes its own from here); assignments/mnist/assignment.toml
    documents each key."""

    # Time is counted in seconds of the notebook's own CPU work (its sandbox's CPU time / threads), so a
    # notebook stops at the same point at any -j and any load; the key names are the historical ones.
    wall_budget_seconds: float = 600  # the whole notebook
    cell_timeout_seconds: float = 420  # any one cell
    wall_backstop_factor: float = 2  # wall clock may run this many times what one busy thread needs for
    # either limit (limit x threads): the end of a cell that waits (sleeps, blocks) or a starved machine
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

    def warn_if_public_seed(self, doing: str = "grading") -> None:
        """Grading (or packaging) with the committed demo seed is fine for the demo and tests, not for a real term."""
        if not self.private_term:
            logging.getLogger("autograder").warning(
                "warning: %s with the public demo seed (%s is in git, so the evaluation images are not "
                "secret); run `autograder new-term` before a real term", doing, self.evaluation_seed_file)

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

    def student_template(self) -> str:
        """The notebook handed to students (``autograder assign`` writes it), as text. The report checks and
        the similarity report leave out its own text, so a template that cannot be read is an error: read
        as empty, its instructions would count as every student's report."""
        path = self.student_dir / self.student_notebook
        try:
            return path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise AssignmentError(f"assignment.student_dir: cannot read the student template {path}: {exc} "
                                  "(run `autograder assign`)") from exc

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

    def evidence_key(self) -> "Key":
        """What produced a result's evidence: the evaluation seed and settings, the ``[execution]``,
        ``[models]`` and ``[probes]`` tables (defaults included), the public tests and the kernel the
        notebook runs in, TensorFlow's and Keras's versions, and the grader's ``evidence`` files
        (:data:`GRADER_FILES`). Stored beside the artifacts; when it changes the notebook must run
        again (``grade`` does, ``regrade`` refuses). MNIST itself is in neither key: every copy is checked
        against the original download's SHA-256 (:mod:`autograder.data`)."""
        parts = {"seed": _digest(str(self.evaluation_seed()).encode()),
                 "evaluation": _json_digest(self.raw.get("evaluation", {})),
                 "execution": _json_digest(dataclasses.asdict(self.execution)),
                 "export_names": _json_digest({"models": self.models, "probes": self.probes}),
                 "public_tests": _json_digest(_tree_digests(self.student_dir / "tests")),
                 "kernelspec": _json_digest(instructor_kernelspec.__wrapped__(self.master_notebook)),  # uncached
                 **package_versions(), **_code_digests(EVIDENCE)}
        return Key.of(parts)

    def scoring_key(self) -> "Key":
        """What turns stored evidence into points: assignment.toml's other tables, the calibration, the
        hidden tests, the student template notebook (the report check compares against it) and the
        grader's ``scoring`` files (:data:`GRADER_FILES`). Results carry it (``bundle_sha256``); when it
        changes, ``regrade`` re-scores them from their evidence."""
        toml = {name: table for name, table in self.raw.items() if name not in EVIDENCE_TABLES}
        parts = {"assignment.toml": _json_digest(toml), "calibration": _file_digest(self.calibration_file),
                 "student_notebook": _file_digest(self.student_dir / self.student_notebook),
                 **{f"hidden/{path.name}": _file_digest(path) for path in sorted(self.hidden_dir.glob("*.py"))},
                 **_code_digests(SCORING)}
        return Key.of(parts)


@dataclass(frozen=True)
class Key:
    """A key: the SHA-256 of its parts (name -> short digest or version), kept so a change can be named."""

    sha256: str
    parts: dict[str, str]

    @classmethod
    def of(cls, parts: dict[str, str]) -> "Key":
        return cls(_json_digest(parts, full=True), parts)

    def changes_since(self, old_parts: dict[str, str] | None) -> list[str]:
        """In words, what differs between ``old_parts`` (a stored key's) and this key's."""
        if not old_parts:
            return ["the evidence key was not recorded (graded by an older grader)"]
        names = sorted(name for name in old_parts.keys() | self.parts.keys()
                       if old_parts.get(name) != self.parts.get(name))
        return [KEY_PART_WORDS.get(name, name.removeprefix("code:")) for name in names]


def grader_files() -> dict[str, str]:
    """Every file of the grader's package (relative path) with its key: the first :data:`GRADER_FILES`
    pattern that matches it wins; a file no pattern claims is missing here (a test checks there is none)."""
    claimed: dict[str, str] = {}
    for pattern, key in GRADER_FILES:
        for path in sorted(GRADER_ROOT.glob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts:
                claimed.setdefault(path.relative_to(GRADER_ROOT).as_posix(), key)
    return claimed


def _code_digests(key: str) -> dict[str, str]:
    return {f"code:{name}": _file_digest(GRADER_ROOT / name) for name, owner in grader_files().items() if owner == key}


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """TensorFlow's and Keras's versions: the sandboxes run in the grader's environment."""
    versions = {}
    for part, distributions in (("tensorflow", ("tensorflow", "tensorflow-cpu")), ("keras", ("keras",))):
        found = []
        for name in distributions:
            try:
                found.append(importlib.metadata.version(name))
            except importlib.metadata.PackageNotFoundError:
                pass
        versions[part] = found[0] if found else "not installed"
    return versions


@functools.lru_cache(maxsize=4)
def instructor_kernelspec(master_notebook: Path) -> dict:
    """The kernelspec of the instructor's notebook, or python3 when it has none (or is not there yet): the
    kernel every submitted notebook runs in (intake replaces the submitted one)."""
    try:
        kernelspec = nbformat.read(master_notebook, as_version=4).metadata.get("kernelspec")
    except (OSError, ValueError):
        return dict(DEFAULT_KERNELSPEC)
    return dict(kernelspec) if kernelspec and kernelspec.get("name") else dict(DEFAULT_KERNELSPEC)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _json_digest(value: Any, full: bool = False) -> str:
    digest = hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
    return digest if full else digest[:16]


def _file_digest(path: Path) -> str:
    """A file's digest; a missing file is a value of its own ("missing"), never skipped."""
    return _digest(path.read_bytes()) if path.is_file() else "missing"


def _tree_digests(folder: Path) -> dict[str, str]:
    return {path.relative_to(folder).as_posix(): _file_digest(path) for path in sorted(folder.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts}


def save_evidence_key(key: Key, artifacts: Path) -> None:
    """Write the evidence key beside a result's artifacts (by the grader, outside any sandbox)."""
    (artifacts / EVIDENCE_KEY_FILE).write_text(json.dumps({"sha256": key.sha256, "parts": key.parts}, indent=1,
                                                          sort_keys=True))


def stored_evidence_key(artifacts: Path) -> Key | None:
    """The evidence key stored beside ``artifacts``, or None when there is none (or it is unreadable)."""
    try:
        stored = json.loads((artifacts / EVIDENCE_KEY_FILE).read_text())
        return Key(str(stored["sha256"]), {str(k): str(v) for k, v in stored["parts"].items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


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
