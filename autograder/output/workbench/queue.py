"""The review queue: every item a person must decide, built from the stored results and similarity pairs.

One item per thing the grader handed to a person, each with a stable id (the same results give the
same ids, so a decision finds its item again after a restart or a regrade)::

    kind          from                                                id
    needs_review  a check the grader could not judge (result review)  <key>~check~<check>
    grader_error  a check the grader failed on                        <key>~check~<check>
    integrity     a failed integrity rule (no accuracy points)        <key>~integrity~<arch>~<rule>
    model         a trained model that earned nothing (lost_models)   <key>~model~<arch>
    claims        report claims that lost points                      <key>~check~report_claims
    intake        a submission intake refused                         <key>~intake
    error         a result the grader itself failed on                <key>~error
    similarity    a pair over a threshold (similarity/pairs.csv)      pair~<key a>~<key b>
    intake_choice an intake decision (batch.json): a notebook picked  intake~<student>~<file>
                  among several, files ignored, a file not mapped
                  to a roster student

A pair and an intake decision are accepted, cleared or referred with a note; neither changes a score
(an intake decision's item shows the result it led to, when there is one, whose own items do).

Each item names the check a score decision sets by default (an integrity flag or a lost model: its
architecture's accuracy check). :func:`evidence_hash` fingerprints what a decision was made on: the
item's own record in the result and the check it scores (or the pair's figures); when a regrade changes
any of it, the decision is marked for a second look instead of being applied.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from autograder.assignment import ARCHITECTURE_TITLES
from autograder.output.intake_record import Decision as IntakeDecision
from autograder.output.rule_titles import RULE_TITLES
from autograder.score.integrity import RULES
from autograder.score.lost_models import REVIEW_REASONS
from autograder.student_text import plain_text

#: Kinds in the order the queue lists them, with the words a TA reads.
KINDS: dict[str, str] = {
    "needs_review": "check the grader could not judge",
    "grader_error": "check the grader failed on",
    "integrity": "integrity flag",
    "model": "trained model that earned nothing",
    "claims": "report claims",
    "intake": "refused at intake",
    "error": "grader error",
    "similarity": "similarity pair",
    "intake_choice": "intake decision",
}
INTAKE_CHOICE = "intake_choice"
CLAIMS_CHECK = "report_claims"
REPORT_CHECK_PREFIX = "report_"  # the report question's checks, scored section by section in rubric mode
PAIRS_CSV = Path("similarity") / "pairs.csv"
PAIR_FIGURES = ("signals", "code_similarity", "prose_containment", "shared_models")


@dataclass(frozen=True)
class Item:
    """One thing a person must decide. ``key`` is the result it belongs to (``pair``: both keys)."""

    id: str
    kind: str
    key: str
    student_id: str
    student_name: str
    question: str | None
    check: str | None
    arch: str | None
    title: str
    why: str
    pair: tuple[str, str] | None = None
    rule: str | None = None
    intake: tuple[tuple[str, str], ...] | None = None  # an intake decision's evidence: (label, text) rows


def build_queue(results: Mapping[str, Mapping[str, Any]], pairs: list[dict[str, str]] | None = None,
                intake: list[IntakeDecision] | None = None) -> list[Item]:
    """Every item of every result (in key order), then the similarity pairs (in rank order), then the
    intake decisions of ``RESULTS/batch.json`` (:func:`autograder.output.intake_record.read_decisions`)."""
    items: list[Item] = []
    for key, result in results.items():
        items.extend(result_items(key, result))
    for pair in pairs or []:
        a, b = pair["submission_a"], pair["submission_b"]
        if a in results and b in results:
            items.append(Item(
                id=f"pair~{a}~{b}", kind="similarity", key=a, pair=(a, b),
                student_id=f"{pair['student_a']} / {pair['student_b']}",
                student_name=plain_text(f"{pair.get('name_a', '')} / {pair.get('name_b', '')}", 200, one_line=True),
                question=None, check=None, arch=None, title=f"similar: {pair.get('signals', '')}",
                why=plain_text(", ".join(f"{name}={pair[name]}" for name in PAIR_FIGURES if pair.get(name)), 400)))
    items.extend(intake_item(decision, results) for decision in intake or [])
    return items


def intake_item(decision: IntakeDecision, results: Mapping[str, Mapping[str, Any]]) -> Item:
    """One intake decision as a review item, attached to the result it led to (``key`` empty: none yet)."""
    view = decision.view()
    key = next((k for k in sorted(results) if decision.concerns(results[k].get("submission") or {})), "")
    submission = (results.get(key) or {}).get("submission") or {}
    evidence = (("file", view["file"]), ("outcome", view["graded"]),
                ("ignored", ", ".join(view["ignored"]) or "nothing"), ("why", "; ".join(view["notes"]) or "—"))
    return Item(id=f"intake~{decision.student_id or 'unmapped'}~{decision.source_name}", kind=INTAKE_CHOICE, key=key,
                student_id=view["student"], student_name=plain_text(submission.get("student_name"), 200, one_line=True),
                question=None, check=None, arch=None, title=view["graded"],
                why=plain_text("; ".join(view["notes"]) or view["graded"], 400), intake=evidence)


def result_items(key: str, result: Mapping[str, Any]) -> list[Item]:
    submission = result.get("submission") or {}
    who = {"key": key, "student_id": plain_text(submission.get("student_id") or key, 100, one_line=True),
           "student_name": plain_text(submission.get("student_name"), 200, one_line=True)}
    question_of = {c.get("name"): q.get("id") for q in result.get("questions") or [] for c in q.get("checks") or []}
    status = result.get("status")
    if status == "rejected":
        return [Item(id=f"{key}~intake", kind="intake", question=None, check=None, arch=None,
                     title=f"refused: {result.get('reason')}", why=plain_text(result.get("message"), 400), **who)]
    items = []
    if status == "error":
        items.append(Item(id=f"{key}~error", kind="error", question=None, check=None, arch=None,
                          title="the grader failed on this notebook",
                          why=plain_text("; ".join(result.get("notes") or []) or result.get("message"), 400), **who))
    for entry in result.get("review") or []:
        kind = entry.get("kind")
        if kind in ("needs_review", "grader_error"):
            check = entry.get("check")
            items.append(Item(id=f"{key}~check~{check}", kind=kind, question=entry.get("question"), check=check,
                              arch=None, title=f"{entry.get('question')} {check}",
                              why=plain_text(entry.get("reason"), 400), **who))
        elif kind == "model":
            arch = entry.get("arch")
            check = f"{arch}_accuracy"
            items.append(Item(id=f"{key}~model~{arch}", kind="model", question=question_of.get(check),
                              check=check if check in question_of else None, arch=arch,
                              title=f"{ARCHITECTURE_TITLES.get(arch, arch)}: {entry.get('code')}",
                              why=REVIEW_REASONS.get(entry.get("code"), plain_text(entry.get("text"), 400)), **who))
    for arch, rules in (result.get("integrity") or {}).items():
        for rule in [r for r in RULES if r in (rules or {})]:
            finding = rules[rule] or {}
            if finding.get("passed") is False:
                check = f"{arch}_accuracy"
                items.append(Item(id=f"{key}~integrity~{arch}~{rule}", kind="integrity", rule=rule,
                                  question=question_of.get(check), check=check if check in question_of else None,
                                  arch=arch, title=f"{ARCHITECTURE_TITLES.get(arch, arch)}: {RULE_TITLES.get(rule, rule)}",
                                  why=plain_text(finding.get("message"), 400), **who))
    claims = next((c for q in result.get("questions") or [] for c in q.get("checks") or []
                   if c.get("name") == CLAIMS_CHECK), None)
    listed = {item.id for item in items}
    if (status == "graded" and claims and claims.get("status") in ("partial", "failed")
            and f"{key}~check~{CLAIMS_CHECK}" not in listed):
        items.append(Item(id=f"{key}~check~{CLAIMS_CHECK}", kind="claims", question=question_of.get(CLAIMS_CHECK),
                          check=CLAIMS_CHECK, arch=None, title="report accuracy claims",
                          why=plain_text(claims.get("message"), 400), **who))
    return items


def report_checks(result: Mapping[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(question, check) of each report check (``report_*``): the rubric's sections."""
    return [(q, c) for q in result.get("questions") or [] for c in q.get("checks") or []
            if str(c.get("name", "")).startswith(REPORT_CHECK_PREFIX)]


def rubric_item(key: str, result: Mapping[str, Any], check: str) -> Item | None:
    """The rubric-mode item for one report check (``<key>~rubric~<check>``), scored outside the queue."""
    question, _ = find_check(result, check)
    if question is None or not check.startswith(REPORT_CHECK_PREFIX):
        return None
    submission = result.get("submission") or {}
    return Item(id=f"{key}~rubric~{check}", kind="rubric", key=key, question=question.get("id"), check=check,
                arch=None, student_id=plain_text(submission.get("student_id") or key, 100, one_line=True),
                student_name=plain_text(submission.get("student_name"), 200, one_line=True),
                title=f"report rubric: {check}", why="scored by rubric")


def find_item(item_id: str, queue: Mapping[str, Item], results: Mapping[str, Mapping[str, Any]]) -> Item | None:
    """An item of the queue, or a rubric item (which the queue does not list)."""
    if item_id in queue:
        return queue[item_id]
    key, marker, check = item_id.rpartition("~")[0].rpartition("~")[0], "~rubric~", item_id.rpartition("~")[2]
    if item_id == f"{key}{marker}{check}" and key in results:
        return rubric_item(key, results[key], check)
    return None


def load_pairs(root: Path) -> list[dict[str, str]]:
    """The ranked pairs of ``RESULTS/similarity/pairs.csv`` (none when similarity has not run)."""
    path = root / PAIRS_CSV
    if not path.is_file():
        return []
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.to_dict("records")


def find_check(result: Mapping[str, Any], name: str | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(question, check) of the result holding the check called ``name``."""
    for question in result.get("questions") or []:
        for check in question.get("checks") or []:
            if check.get("name") == name:
                return question, check
    return None, None


def evidence_hash(item: Item, results: Mapping[str, Mapping[str, Any]], pairs: list[dict[str, str]],
                  check: str | None = None) -> str:
    """sha256 of what a decision on ``item`` rests on: the submitted file, the item's own record in the
    result, and the check it scores (``check``, default the item's); for a pair, its figures and both
    files. A regrade that moves any of it changes the hash."""
    def part(key: str) -> dict[str, Any]:
        result = results.get(key) or {}
        question, scored = find_check(result, check or item.check)
        arch = item.arch
        return {
            "file": (result.get("submission") or {}).get("sha256"),
            "status": [result.get("status"), result.get("reason")],
            "question": question and {k: question.get(k) for k in ("id", "score", "max_score")},
            "check": scored and {k: scored.get(k) for k in ("name", "score", "max_score", "status", "detail")},
            "integrity": ((result.get("integrity") or {}).get(arch) or {}).get(item.rule) if arch and item.rule else None,
            "model": {k: ((result.get("models") or {}).get(arch) or {}).get(k)
                      for k in ("accuracy", "threshold_full", "threshold_zero", "error")} if arch else None,
            "review": [r for r in result.get("review") or [] if (item.check and r.get("check") == item.check)
                       or (arch and r.get("arch") == arch)],
        }

    if item.intake is not None:  # the decision as recorded, and the file it led to
        basis: Any = {"intake": item.intake, "file": part(item.key)["file"] if item.key else None}
    elif item.pair:
        figures = next(({k: p.get(k) for k in PAIR_FIGURES} for p in pairs
                        if (p.get("submission_a"), p.get("submission_b")) == item.pair), None)
        basis = {"pair": figures, "files": [(results.get(k) or {}).get("submission", {}).get("sha256")
                                                 for k in item.pair]}
    else:
        basis = part(item.key)
    return hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()
