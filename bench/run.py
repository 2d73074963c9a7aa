"""Benchmarks of the grader (``make bench``): each figure against its baseline, in the same run.

    python bench/run.py [--quick] [--repeats N] [--only FIG ...] [--results DIR] [--report FILE] [--render-only]

Raw numbers go to ``DIR/<figure>.csv`` (one row per repeat and measure). The report is rendered from
every CSV in DIR, so ``--only`` refreshes one figure and keeps the others' last numbers. Summaries are
hyperfine-style: the median over repeats and the min-max spread, with ratios and differences taken per
repeat (subject and baseline ran back to back) before the median, so machine noise mostly cancels.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import figures
import workloads

BENCH = Path(__file__).resolve().parent
FINDINGS = BENCH / "findings.md"  # hand-written: where the time goes and what changed each number
FIELDS = ("figure", "repeat", "measure", "value", "unit", "mode", "loadavg_1m", "recorded_at")
NOTES = """\
## Notes

- **Baselines.** Figure 1 and 2: the same notebook run by `jupyter nbconvert --to notebook --execute`
  with the same Keras cache and thread settings (the student's own run: no sandbox, no export, no
  prediction, no tests). Figure 3: `otter run` (otter-grader's non-container path) on the same notebook,
  with the public tests otter-assign wrote plus hidden tests equal to ours (`bench/otter_hidden/`).
  Figure 4: re-executing every submission instead (one real grading x 100, an estimate). Figure 5: the
  same batch with one worker. Figure 6: nbconvert's peak RSS on the same flooding notebook.
- **What otter does not do in that mode.** `otter run` executes the student's notebook in the grader's
  own process tree with the grader's rights: no sandbox (files, network, other processes are all
  reachable), no memory, disk, process or wall-clock limits, no cap on printed output, and the hidden
  tests run in the student's interpreter on the student's objects, which the student's code can patch.
  It does not produce plain-data evidence for regrading either: a threshold change means re-running.
- **Wall times** include interpreter start-up for every tool: each is run as `python -m MODULE` under
  `bench/peak_rss.py`, which also records the process's own peak RSS (not its children's).
- **Spread** is min-max over repeats; a single repeat shows no spread.
"""


def _version(metadata, *names: str) -> str:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def machine() -> dict[str, str]:
    from importlib import metadata

    import psutil

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    os_name = platform.platform()
    release = Path("/etc/os-release")
    if release.is_file():
        fields = dict(line.split("=", 1) for line in release.read_text().splitlines() if "=" in line)
        os_name = f'{fields.get("PRETTY_NAME", "").strip(chr(34))} ({platform.release()})'
    return {"CPU": cpu, "cores": str(os.cpu_count()), "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
            "OS": os_name, "Python": platform.python_version(), "TensorFlow": _version(metadata, "tensorflow-cpu", "tensorflow"),
            "Keras": _version(metadata, "keras"),
            "date": dt.datetime.now().astimezone().isoformat(timespec="minutes"),
            "load average (1/5/15 min) at report time": " / ".join(f"{x:.1f}" for x in os.getloadavg())}


def run_figure(name: str, ctx: figures.Context, repeats: int, results: Path) -> Path:
    rows = []

    def rec(repeat: int, measure: str, value: float, unit: str) -> None:
        rows.append({"figure": name, "repeat": repeat, "measure": measure, "value": f"{value:.4f}", "unit": unit,
                     "mode": "quick" if ctx.quick else "full", "loadavg_1m": f"{os.getloadavg()[0]:.2f}",
                     "recorded_at": dt.datetime.now().astimezone().isoformat(timespec="seconds")})

    figures.FIGURES[name](ctx, repeats, rec)
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{name}.csv"
    with open(path, "w", newline="") as fh:  # written only once the figure completed
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_raw(results: Path) -> dict[str, list[dict[str, str]]]:
    raw = {}
    for name in figures.FIGURES:
        path = results / f"{name}.csv"
        if path.is_file():
            with open(path, newline="") as fh:
                raw[name] = list(csv.DictReader(fh))
    return raw


def by_repeat(rows: list[dict[str, str]], measure: str) -> dict[int, float]:
    return {int(r["repeat"]): float(r["value"]) for r in rows if r["measure"] == measure}


def compared(row: figures.Row, ours: float, base: float | None) -> float:
    if row.compare == "ratio":
        return ours / base
    if row.compare == "difference":
        return ours - base
    if row.compare == "speedup":
        return base / ours
    return ours


def spread(values: list[float], digits: int = 2) -> str:
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def load_range(rows: list[dict[str, str]]) -> str:
    """The machine's 1-minute load average while the figure ran (others share these cores)."""
    loads = [float(r["loadavg_1m"]) for r in rows]
    return f"{min(loads):.1f}-{max(loads):.1f}"


def summary_rows(raw: dict[str, list[dict[str, str]]]) -> list[list[str]]:
    table = []
    for row in figures.ROWS:
        rows = raw.get(row.figure)
        if not rows:
            continue
        ours = by_repeat(rows, row.ours)
        base = by_repeat(rows, row.baseline) if row.baseline else {}
        repeats = sorted(r for r in ours if not row.baseline or r in base)
        if not repeats:
            continue
        results = [compared(row, ours[r], base.get(r)) for r in repeats]
        compare_name = {"ratio": "ratio", "difference": "difference", "speedup": "speed-up", "value": "value"}
        verdict = "-"
        if row.target:
            op, limit = row.target
            value = statistics.median(results)
            verdict = "yes" if (value <= limit if op == "<=" else value >= limit) else "**no**"
        table.append([row.label, f"{spread([ours[r] for r in repeats])} {row.unit}",
                      f"{spread([base[r] for r in repeats])} {row.unit}" if row.baseline else "-",
                      f"{compare_name[row.compare]} {spread(results)}" if row.compare != "value" else "-",
                      f"{row.target[0]} {row.target[1]:g}" if row.target else "-", verdict,
                      f"{len(repeats)}, {rows[0]['mode']}, load {load_range(rows)}"])
    return table


def render(raw: dict[str, list[dict[str, str]]], info: dict[str, str]) -> str:
    header = ["figure", "ours", "baseline", "ratio / difference", "target", "met?", "repeats, mode, load"]
    lines = ["# Benchmarks", "",
             "Generated by `make bench` (`bench/run.py`); raw numbers in `bench/results/*.csv`. "
             "Median over repeats, min-max in parentheses.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in summary_rows(raw)]
    dates = sorted({rows[0]["recorded_at"][:16] for rows in raw.values() if rows})
    lines += ["", "## Machine", ""] + [f"- {key}: {value}" for key, value in info.items()]
    if dates:
        lines.append(f"- figures recorded: {', '.join(dates)}")
    if any(r["measure"] == "real_calibration" and float(r["value"]) == 0 for r in raw.get("overhead", [])):
        lines.append("- figure 1 graded with placeholder thresholds (assignments/mnist/calibration.json did not "
                     "exist yet): timings are unaffected, the score is not meaningful")
    findings = FINDINGS.read_text() if FINDINGS.is_file() else ""
    return "\n".join(lines) + "\n\n" + findings + ("\n" if findings else "") + NOTES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run of every figure at tiny sizes")
    parser.add_argument("--repeats", type=int, help="repeats per figure (default: 1 for the reference "
                                                    "notebook, 1-3 for the others)")
    parser.add_argument("--only", action="append", choices=list(figures.FIGURES), metavar="FIG",
                        help=f"run only this figure (repeatable): {', '.join(figures.FIGURES)}")
    parser.add_argument("--results", type=Path, default=BENCH / "results", help="directory of the raw CSVs")
    parser.add_argument("--report", type=Path, default=BENCH.parent / "BENCHMARKS.md", help="markdown report")
    parser.add_argument("--keep-scratch", action="store_true", help="keep the scratch directory (for debugging)")
    parser.add_argument("--render-only", action="store_true", help="rewrite the report from the CSVs, run nothing")
    args = parser.parse_args(argv)
    if args.render_only:
        args.report.write_text(render(read_raw(args.results), machine()))
        return 0

    scratch = Path(tempfile.mkdtemp(prefix="autograder-bench-"))
    env = workloads.tool_env(workloads.keras_home(scratch))
    ctx = figures.Context(scratch=scratch, quick=args.quick, env=env)
    failed = []
    try:
        for name in args.only or list(figures.FIGURES):
            repeats = args.repeats or (1 if args.quick else figures.DEFAULT_REPEATS[name])
            print(f"[bench] {name}: {repeats} repeat(s){' (quick)' if args.quick else ''}", flush=True)
            try:
                path = run_figure(name, ctx, repeats, args.results)
            except Exception as exc:  # one broken figure keeps its last CSV; the others still run
                failed.append(name)
                print(f"[bench] {name}: FAILED: {type(exc).__name__}: {exc}", flush=True)
                continue
            print(f"[bench] {name}: wrote {path}", flush=True)
    finally:
        if not args.keep_scratch:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
    args.report.write_text(render(read_raw(args.results), machine()))
    print(f"[bench] wrote {args.report}")
    if failed:
        print(f"[bench] failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
