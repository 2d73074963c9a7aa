"""A/B of two grader checkouts on the trivial notebook, interleaved, for "what changed this number".

    git worktree add /tmp/before <commit>
    python bench/ab_checkouts.py /tmp/before . --repeats 4 --out bench/results/ab_prediction_overlap.csv

Each repeat grades the notebook with both checkouts back to back (alternating which goes first) and
records the wall time and the grader's own timings (cells, predict, total).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
from pathlib import Path

import workloads as w


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="autograder-ab-"))
    env = w.tool_env(w.keras_home(scratch))
    notebook = w.write_notebook(w.trivial_notebook(), scratch / "trivial.ipynb")
    checkouts = {"before": args.before.resolve(), "after": args.after.resolve()}
    assignments = {version: w.assignment_copy(scratch / version, small=True, evaluation_size=1000, repo=root)
                   for version, root in checkouts.items()}  # each checkout grades its own assignment
    rows = []
    for repeat in range(args.repeats):
        for version in ("before", "after") if repeat % 2 == 0 else ("after", "before"):
            out = scratch / f"out-{version}"
            run = w.run_tool("autograder", ["grade-one", str(notebook), "--assignment", str(assignments[version]),
                                            "--out", str(out)],
                             env=dict(env, PYTHONPATH=str(checkouts[version])), log=scratch / f"{version}.log",
                             cwd=checkouts[version])
            timings = json.loads((out / "result.json").read_text())["timings"]
            rows.append({"version": version, "repeat": repeat, "wall_s": round(run.seconds, 3),
                         "cells_s": timings["cells"], "predict_s": timings["predict"], "total_s": timings["total"],
                         "loadavg_1m": round(os.getloadavg()[0], 2)})
            print(rows[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
