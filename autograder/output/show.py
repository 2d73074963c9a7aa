"""``autograder show RESULTS [ID]``: the results as a TA reads them, in the terminal.

Without ID, one line per result (student, score, status, reason), then the intake decisions of the
latest ``grade`` (files picked and ignored, files not mapped to a student). With ID (a student id or a
result key), that result in full: each check with its student message and its TA-only detail, the
models found and their accuracy against the thresholds, the run (CPU work against the budget, wall time
beside it, stop reason and limit, failing cells numbered as Jupyter does), diagnoses, notes, intake decisions, and where its evidence is. Nothing is
written.
"""
from __future__ import annotations

from typing import Any, Sequence

from autograder.output.intake_record import Decision
from autograder.output.reading import failed_cells
from autograder.output.store import Store
from autograder.output.workbench.decisions import DecisionStore
from autograder.student_text import plain_text


def freshness(key: str, stale: dict[str, str] | None) -> str:
    """``STALE (run grade)`` or ``STALE (run regrade)`` (:meth:`Store.staleness`); "" when current or unknown."""
    return f"STALE (run {stale[key]})" if stale and key in stale else ""


def overview(results: dict[str, dict[str, Any]], stale: dict[str, str] | None,
             decisions: Sequence[Decision] = ()) -> str:
    lines = [f"{'student':<14} {'name':<22} {'score':>12}  {'status':<9} {'reason':<14} key"]
    for key, r in results.items():
        submission = r.get("submission") or {}
        lines.append(f"{plain_text(submission.get('student_id'))[:14]:<14} "
                     f"{plain_text(submission.get('student_name'))[:22]:<22} "
                     f"{r.get('score', 0):>5.4g} / {r.get('max_score', 0):<4.4g}  {r.get('status', ''):<9} "
                     f"{r.get('reason') or '':<14} {key} {freshness(key, stale)}".rstrip())
    if decisions:
        lines += ["", f"intake decisions ({len(decisions)}):", *(f"  {d.line()}" for d in decisions)]
    return "\n".join(lines)


def run_line(execution: dict[str, Any]) -> str:
    """The run against its budget, which counts CPU work (seconds of computing, about wall seconds on an idle
    machine); the wall clock beside it, only a backstop. A result graded before that has only wall time."""
    budget, wall = execution.get("budget_seconds", 0), execution.get("seconds", 0)
    if "cpu_seconds" in execution:
        clock = f", counted by {plain_text(execution['cpu_clock'], 20)}" if execution.get("cpu_clock") else ""
        spent = f"{execution['cpu_seconds']:.0f} s of CPU work of the {budget:.0f} s budget{clock}; {wall:.0f} s wall"
    else:
        spent = f"{wall:.0f} s wall of the {budget:.0f} s budget (graded before CPU work was counted)"
    stopped = execution.get("stopped") or "-"
    if execution.get("stopped_by"):
        stopped += f" (limit: {plain_text(execution['stopped_by'], 20)})"
    return f"run: {spent}, stopped: {stopped}, peak {execution.get('peak_rss_mb', 0):.0f} MB"


def describe(key: str, r: dict[str, Any], store: Store, stale: dict[str, str] | None,
             decisions: Sequence[Decision] = ()) -> str:
    submission, execution = r.get("submission") or {}, r.get("execution") or {}
    out = [f"{plain_text(submission.get('student_id'), 100)}  {plain_text(submission.get('student_name'), 200)}"
           f"  ({key}) {freshness(key, stale)}".rstrip(),
           f"score {r.get('score', 0):.4g} / {r.get('max_score', 0):.4g}   status {r.get('status')}"
           + (f" ({r['reason']})" if r.get("reason") else "") + f"   {plain_text(r.get('message'), 300)}",
           f"submitted {submission.get('submitted_at') or '-'}{'  LATE' if submission.get('late') else ''}"
           f"   graded {(r.get('grader') or {}).get('graded_at', '-')}   sandboxed {r.get('sandboxed')}",
           "", "questions:"]
    for q in r.get("questions") or []:
        out.append(f"  {q['id']:<4} {plain_text(q.get('title'), 40):<40} {q.get('score', 0):>6.4g} / "
                   f"{q.get('max_score', 0):<4.4g} {q.get('status', '')}")
        for c in q.get("checks") or []:
            out.append(f"         {plain_text(c.get('name'), 30):<30} {c.get('score', 0):>6.4g} / "
                       f"{c.get('max_score', 0):<4.4g} {plain_text(c.get('status'), 14):<14} "
                       f"{plain_text(c.get('message'), 200)}")
            if c.get("detail"):
                out.append(f"{'':<9}TA: {plain_text(c.get('detail'), 500)}")
    if r.get("models"):
        out += ["", "models:"]
        for arch, m in r["models"].items():
            accuracy = m.get("accuracy")
            out.append(f"  {arch:<10} {plain_text(m.get('variable'), 30) or '-':<18} found by "
                       f"{m.get('found_by') or '-':<10} accuracy "
                       f"{'-' if accuracy is None else f'{accuracy:.4f}'} (full at {m.get('threshold_full')}, "
                       f"zero at {m.get('threshold_zero')})" + (f"  error: {plain_text(m['error'], 200)}"
                                                                 if m.get("error") else ""))
    if execution:
        out += ["", run_line(execution)]
        for cell in failed_cells(r):
            out.append(f"  cell [{cell['number']}] {cell['status']}: {cell['error']}"
                       + (f"\n      at: {cell['line']}" if cell["line"] else ""))
    for d in r.get("diagnoses") or []:
        out.append(f"  diagnosis {plain_text(d.get('code'), 60)}: {plain_text(d.get('title'), 200)}")
    for note in r.get("notes") or []:
        out.append(f"  note: {plain_text(note, 300)}")
    for error in r.get("export_errors") or []:  # the student's kernel wrote these: shown as text, judged by no one
        out.append(f"  export error: {plain_text(error, 300)}")
    for decision in decisions:
        if decision.concerns(submission):
            out.append(f"  intake: {decision.line()}")
    for decision in DecisionStore(store.root).all().values():  # what TAs decided in `autograder review`
        if decision.result_key == key or decision.item.startswith(f"pair~{key}~") or decision.item.endswith(f"~{key}"):
            out.append(f"  review: {decision.item}: {decision.action}"
                       + (f" {decision.score:g}" if decision.score is not None else "")
                       + f" by {plain_text(decision.who, 80)} at {decision.at}: {plain_text(decision.reason, 300)}")
    files = [store.result(key), store.artifacts(key) / "executed.ipynb", store.log_path(key)]
    out += ["", "files: " + "  ".join(str(p) for p in files if p.exists())]
    return "\n".join(out)
