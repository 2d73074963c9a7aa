"""Who copied whom: a similarity report across a batch, from stored artifacts only.

Pipeline: load each student's latest graded submission (its sanitized notebook and the grader's stored
evidence) -> three signals per pair of students -> pairs over a signal's threshold -> ``pairs.csv``
and ``index.html``. No notebook is executed, nothing reaches students and no points change: the report
is for a TA to read and decide.

Signals, each with what it means:

* **Code**: the code cells, tokenised by copydetect (names, strings and comments folded, so renamed
  variables still match) and winnowed (MOSS's fingerprints); the student template's own fingerprints
  are removed first, so the code every student was given does not count. Fingerprints form sets, so
  reordered cells still match. The score is the share of one notebook's fingerprinted code that
  stands in the other (the larger of the two shares), with the matched regions highlighted.
* **Prose**: the markdown cells as word 2-shingles (lower case, stop words dropped, numbers kept: a
  copied report keeps its accuracies), the template's shingles removed, so shared headings and
  instructions do not count. MinHash LSH (datasketch) finds candidate pairs; the score is the exact
  containment of the smaller report's shingles in the other's.
* **Models**: two students who trained independently never make identical predictions on the
  grader's secret evaluation images, while the same weights or the same run do. Per architecture,
  the number of images on which two students' models disagree is compared with the fewest
  disagreements any two reference models trained with different seeds show (``calibration.json``
  ``agreement.min_disagreements``); identical weight hashes (computed in the prediction sandbox) are
  the same model outright. Only models that learned something are compared (accuracy at least
  ``MIN_MODEL_ACCURACY``): two broken models that predict one class agree without copying.

Scale: code pairs come from an inverted index of fingerprints (only pairs sharing fingerprints are
compared), prose pairs from LSH, model pairs all-pairs with numpy (a few hundred vectors of 5,000
bytes); ``bench/`` measures 300 submissions.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd
import copydetect.utils
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import highlight_overlap
from datasketch import MinHash, MinHashLSH
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from autograder.assignment import ARCHITECTURE_TITLES, ARCHITECTURES, Assignment
from autograder.output.gradebook import csv_text
from autograder.output.latest import latest_keys
from autograder.output.store import Store, open_results
from autograder.results import atomic_write_text
from autograder.score.artifacts import EVIDENCE_JSON, stored_evidence
from autograder.student_text import plain_text

#: copydetect's noise threshold (k) and window (guarantee threshold - noise threshold + 1), in
#: characters of tokenised code: its defaults, which MOSS-style winnowing was tuned with.
CODE_K, CODE_WINDOW = 25, 6
#: Share of a notebook's own code (template removed) found in another's that flags the pair.
CODE_THRESHOLD = 0.5
#: Code with fewer fingerprinted tokens than this is too little to judge (an empty template).
MIN_CODE_TOKENS = 200
PROSE_SHINGLE = 2
PROSE_PERMUTATIONS = 128
#: Containment of one report's shingles (template removed) in another's that flags the pair.
PROSE_THRESHOLD = 0.3
MIN_PROSE_SHINGLES = 20
#: Models under this accuracy are not compared: constant or broken models agree without copying.
MIN_MODEL_ACCURACY = 0.5
#: With no calibration figure, flag at most this share of disagreements (5 of 5,000 images).
FALLBACK_DISAGREEMENT_SHARE = 0.001
#: A pair is flagged when it disagrees on fewer images than this share of the honest minimum.
HONEST_MARGIN = 0.25
EVAL_SET = "eval"
#: Pairs shown in detail on the page; pairs.csv lists them all.
PAGE_PAIRS = 100
STOP_WORDS = frozenset("""a an and are as at be been but by for from has have in into is it its of on or
that the their then there these this to was we were which with our i my us than also can so not""".split())

_WORD = re.compile(r"[a-z]+|\d+(?:[.,]\d+)?")
_env = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=True,
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


# --- what is compared -------------------------------------------------------------------------------

@dataclass
class Entry:
    """One student's latest graded submission, as far as similarity needs it."""

    key: str
    student_id: str
    student_name: str
    code: str
    prose: str
    predictions: dict[str, np.ndarray] = field(default_factory=dict)  # arch -> class ids on EVAL_SET
    weights: dict[str, str] = field(default_factory=dict)  # arch -> weights_sha256


def notebook_text(nb: Any) -> tuple[str, str]:
    """(code, prose): the code cells and the markdown cells, each joined in order."""
    cells = nb.get("cells", [])
    code = "\n\n".join(c.get("source", "") for c in cells if c.get("cell_type") == "code")
    prose = "\n\n".join(c.get("source", "") for c in cells if c.get("cell_type") == "markdown")
    return code, prose


def _latest_keys(results: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(latest_keys({key: r for key, r in results.items() if r.get("status") == "graded"}).values())


def _models(artifacts: Path, result: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Evaluation-set predictions and weight hashes of the models that learned something, read from the
    stored evidence with the reader regrading uses."""
    learned = [arch for arch in ARCHITECTURES
               if ((result.get("models") or {}).get(arch) or {}).get("accuracy") is not None
               and result["models"][arch]["accuracy"] >= MIN_MODEL_ACCURACY]
    if not (artifacts / EVIDENCE_JSON).is_file():
        return {}, {}
    models = stored_evidence(artifacts).models
    kept = [models[arch] for arch in learned if arch in models]
    predictions = {model.arch: model.predictions[EVAL_SET] for model in kept if EVAL_SET in model.predictions}
    weights = {model.arch: model.weights_sha256 for model in kept if model.weights_sha256}
    return predictions, weights


def load_entries(store: Store) -> list[Entry]:
    """Each student's latest graded submission with its stored notebook and evidence."""
    results = store.load()
    entries = []
    for key in _latest_keys(results):
        artifacts = store.artifacts(key)
        notebook = artifacts / "submission.ipynb"
        if not notebook.is_file():
            continue
        code, prose = notebook_text(nbformat.read(notebook, as_version=4))
        predictions, weights = _models(artifacts, results[key])
        who = results[key]["submission"]
        entries.append(Entry(key, str(who["student_id"]), str(who.get("student_name") or ""), code, prose,
                             predictions, weights))
    return entries


# --- code ---------------------------------------------------------------------------------------------

def _stable_kgram_hashes(string: str, k: int) -> np.ndarray:
    return np.array([int.from_bytes(hashlib.blake2b(string[i:i + k].encode(), digest_size=8).digest(), "little",
                                    signed=True) for i in range(len(string) - k + 1)], dtype=np.int64)


@contextlib.contextmanager
def _stable_hashes() -> Iterator[None]:
    """copydetect hashes k-grams with Python's ``hash()``, which is salted per process, so winnowing keeps
    different fingerprints in every run; blake2b makes the report the same run after run."""
    salted, copydetect.utils.hashed_kgrams = copydetect.utils.hashed_kgrams, _stable_kgram_hashes
    try:
        yield
    finally:
        copydetect.utils.hashed_kgrams = salted


def code_fingerprint(code: str, boilerplate: np.ndarray | None = None) -> CodeFingerprint:
    with _stable_hashes():
        return CodeFingerprint("submission.py", CODE_K, CODE_WINDOW, boilerplate=boilerplate,
                               fp=io.StringIO(code))


@dataclass(frozen=True)
class CodeMatch:
    similarity: float  # the larger share of one notebook's code found in the other
    highlighted: tuple[str, str]  # each side's code as HTML, matched regions in <mark>


def code_matches(entries: list[Entry], template_code: str) -> dict[tuple[int, int], CodeMatch]:
    """Pairs whose code shares more than CODE_THRESHOLD, found through shared fingerprints."""
    boilerplate = np.array(sorted(code_fingerprint(template_code).hashes), dtype=np.int64)
    prints = [code_fingerprint(e.code, boilerplate) for e in entries]
    owners: dict[int, list[int]] = defaultdict(list)
    for i, fp in enumerate(prints):
        if fp.token_coverage >= MIN_CODE_TOKENS:
            for h in fp.hashes:
                owners[h].append(i)
    shared: Counter[tuple[int, int]] = Counter()
    for holders in owners.values():
        if len(holders) <= 50:  # a fingerprint half the class shares is an idiom, not a copy
            shared.update(combinations(holders, 2))
    matches = {}
    for (i, j), count in shared.items():
        if count / min(len(prints[i].hashes), len(prints[j].hashes)) < CODE_THRESHOLD / 2:
            continue  # cannot reach the threshold: skip the exact comparison
        _, (share_i, share_j), (slices_i, slices_j) = compare_files(prints[i], prints[j])
        similarity = float(max(share_i, share_j))
        if similarity >= CODE_THRESHOLD:
            left = highlight_overlap(prints[i].raw_code, slices_i, "<mark>", "</mark>", escape_html=True)[0]
            right = highlight_overlap(prints[j].raw_code, slices_j, "<mark>", "</mark>", escape_html=True)[0]
            matches[(i, j)] = CodeMatch(similarity, (left, right))
    return matches


# --- prose --------------------------------------------------------------------------------------------

def shingles(text: str, template: frozenset[str] = frozenset()) -> frozenset[str]:
    words = [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]
    grams = {" ".join(words[i:i + PROSE_SHINGLE]) for i in range(len(words) - PROSE_SHINGLE + 1)}
    return frozenset(grams - template)


def prose_matches(entries: list[Entry], template_prose: str) -> dict[tuple[int, int], tuple[float, list[str]]]:
    """Pairs whose reports share more than PROSE_THRESHOLD of their own shingles, with examples."""
    template = shingles(template_prose)
    sets = [shingles(e.prose, template) for e in entries]
    lsh = MinHashLSH(threshold=PROSE_THRESHOLD / 3, num_perm=PROSE_PERMUTATIONS)
    sketches = {}
    for i, grams in enumerate(sets):
        if len(grams) < MIN_PROSE_SHINGLES:
            continue
        sketch = MinHash(num_perm=PROSE_PERMUTATIONS, seed=1)
        sketch.update_batch([g.encode() for g in sorted(grams)])
        sketches[i] = sketch
        lsh.insert(str(i), sketch)
    matches = {}
    for i, sketch in sketches.items():
        for other in lsh.query(sketch):
            j = int(other)
            if j <= i:
                continue
            common = sets[i] & sets[j]
            containment = len(common) / min(len(sets[i]), len(sets[j]))
            if containment >= PROSE_THRESHOLD:
                matches[(i, j)] = (containment, sorted(common)[:12])
    return matches


# --- models -------------------------------------------------------------------------------------------

def disagreement_limits(calibration: dict[str, Any], images: int) -> dict[str, int]:
    """Per architecture, the fewest disagreements on ``images`` images that still look independent."""
    limits = {}
    for arch in ARCHITECTURES:
        honest = ((calibration.get("architectures", {}).get(arch) or {}).get("agreement") or {}).get(
            "min_disagreements")
        fallback = max(1, int(FALLBACK_DISAGREEMENT_SHARE * images))
        limits[arch] = max(fallback, int(HONEST_MARGIN * honest)) if honest else fallback
    return limits


@dataclass(frozen=True)
class ModelMatch:
    arch: str
    disagreements: int  # images on which the two models predict differently
    images: int
    same_weights: bool


def model_matches(entries: list[Entry], calibration: dict[str, Any]) -> dict[tuple[int, int], list[ModelMatch]]:
    """Pairs whose models of one architecture agree beyond independent training, or share weights."""
    matches: dict[tuple[int, int], list[ModelMatch]] = defaultdict(list)
    for arch in ARCHITECTURES:
        holders = [i for i, e in enumerate(entries) if arch in e.predictions]
        if len(holders) < 2:
            continue
        images = min(len(entries[i].predictions[arch]) for i in holders)
        stack = np.stack([entries[i].predictions[arch][:images] for i in holders])
        limit = disagreement_limits(calibration, images)[arch]
        for a, i in enumerate(holders[:-1]):
            differ = (stack[a + 1:] != stack[a]).sum(axis=1)
            for b in np.flatnonzero(differ <= limit):
                j = holders[a + 1 + b]
                same = entries[i].weights.get(arch) is not None and \
                    entries[i].weights.get(arch) == entries[j].weights.get(arch)
                matches[(i, j)].append(ModelMatch(arch, int(differ[b]), images, same))
    for i, j in combinations(range(len(entries)), 2):  # same weights, even where predictions are absent
        for arch, sha in entries[i].weights.items():
            if entries[j].weights.get(arch) == sha and not any(m.arch == arch for m in matches.get((i, j), [])):
                matches[(i, j)].append(ModelMatch(arch, 0, 0, True))
    return dict(matches)


# --- the report ---------------------------------------------------------------------------------------

@dataclass
class Pair:
    a: Entry
    b: Entry
    code: CodeMatch | None = None
    prose: tuple[float, list[str]] | None = None
    models: list[ModelMatch] = field(default_factory=list)

    @property
    def signals(self) -> list[str]:
        return [name for name, present in (("code", self.code), ("prose", self.prose), ("models", self.models))
                if present]

    @property
    def rank_key(self) -> tuple[float, ...]:
        """Most signals first, then the strongest evidence: shared models, then code, then prose."""
        return (-len(self.signals), -len(self.models), -(self.code.similarity if self.code else 0.0),
                -(self.prose[0] if self.prose else 0.0))


def find_pairs(entries: list[Entry], assignment: Assignment) -> list[Pair]:
    template = nbformat.reads(assignment.student_template(), as_version=4)
    template_code, template_prose = notebook_text(template)
    pairs: dict[tuple[int, int], Pair] = {}

    def pair(ij: tuple[int, int]) -> Pair:
        return pairs.setdefault(ij, Pair(entries[ij[0]], entries[ij[1]]))

    for ij, match in code_matches(entries, template_code).items():
        pair(ij).code = match
    for ij, match in prose_matches(entries, template_prose).items():
        pair(ij).prose = match
    for ij, match in model_matches(entries, assignment.calibration()).items():
        pair(ij).models = match
    return sorted(pairs.values(), key=lambda p: p.rank_key)


def pairs_frame(pairs: list[Pair]) -> pd.DataFrame:
    rows = []
    for rank, p in enumerate(pairs, 1):
        rows.append({
            "rank": rank, "student_a": p.a.student_id, "name_a": p.a.student_name,
            "student_b": p.b.student_id, "name_b": p.b.student_name, "signals": " ".join(p.signals),
            "code_similarity": round(p.code.similarity, 3) if p.code else None,
            "prose_containment": round(p.prose[0], 3) if p.prose else None,
            "shared_models": " ".join(f"{m.arch}:{'same-weights' if m.same_weights else f'{m.disagreements}/{m.images}'}"
                                      for m in p.models),
            "submission_a": p.a.key, "submission_b": p.b.key})
    return pd.DataFrame(rows, columns=["rank", "student_a", "name_a", "student_b", "name_b", "signals",
                                       "code_similarity", "prose_containment", "shared_models",
                                       "submission_a", "submission_b"])


def write_report(results_dir: str | Path, out: str | Path, assignment: Assignment) -> list[Pair]:
    """``out/pairs.csv`` (ranked) and ``out/index.html``; returns the flagged pairs."""
    out = Path(out)
    entries = load_entries(open_results(results_dir))
    pairs = find_pairs(entries, assignment)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "pairs.csv", csv_text(pairs_frame(pairs)))
    page = {"title": assignment.title, "compared": len(entries), "pairs": pairs[:PAGE_PAIRS],
            "more": max(0, len(pairs) - PAGE_PAIRS),
            "titles": ARCHITECTURE_TITLES, "thresholds": {
                "code": CODE_THRESHOLD, "prose": PROSE_THRESHOLD, "model_accuracy": MIN_MODEL_ACCURACY,
                "margin": HONEST_MARGIN}}
    atomic_write_text(out / "index.html", _env.get_template("similarity.html.j2").render(
        page=page, plain=plain_text))
    return pairs
