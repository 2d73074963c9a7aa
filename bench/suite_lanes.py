"""The test suite's two lanes, timed (``make bench-suite``): wall time, the CPU time of everything the run
started (the sandboxed notebooks included) and the load average around it.

    python bench/suite_lanes.py [--lane test|test-full] [--results FILE] [-- PYTEST ARGS ...]

Runs ``make test`` (or ``make test-full``) as it is, or ``pytest`` with the lane's environment and the given
arguments (one module, say), in a CPU-accounting cgroup of its own (the grader's job cgroups are made under
it, so their CPU time counts in it). On a machine shared with other work the wall time stretches with the
load; the CPU time much less, so compare CPU seconds between runs made under different loads. One row per run
is appended to the CSV.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

from autograder.run.sandbox import cgroup  # noqa: E402  (the grader's own cgroup reading)

FIELDS = ("lane", "command", "wall_seconds", "cpu_seconds", "summary", "loadavg_before", "loadavg_after",
          "recorded_at")


def cpu_clock() -> cgroup.Cgroup | None:
    """A new cgroup that counts the CPU time of the run and of everything it starts, or None where none can be
    made (then the CPU figure is left out)."""
    where = cgroup.hierarchy()
    if where is None or where.cpu is None:
        return None
    clock = where.cpu / f"bench-suite-{os.getpid()}"
    try:
        clock.mkdir()
    except OSError:
        return None
    return cgroup.Cgroup(where.version, where.memory, where.pids, cpu=clock)


def run(lane: str, pytest_args: list[str], results: Path) -> dict[str, str]:
    python = REPO / ".venv" / "bin" / "python"
    env = dict(os.environ)
    if lane == "test-full":
        env["AUTOGRADER_FULL"] = "1"
    command = [str(python), "-m", "pytest", *pytest_args] if pytest_args else ["make", lane]
    clock = cpu_clock()
    procs = clock.cpu / "cgroup.procs" if clock is not None else None
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              preexec_fn=(lambda: procs.write_text(str(os.getpid()))) if procs else None)
        wall = time.monotonic() - started
        cpu = clock.cpu_seconds() if clock is not None else None
    finally:
        if clock is not None:
            try:
                clock.cpu.rmdir()  # every process of the run has ended
            except OSError as error:  # a job cgroup of a killed grader still inside it
                print(f"left {clock.cpu} in place: {error.strerror}", file=sys.stderr)
    sys.stdout.write(done.stdout[-3000:])
    summary = next((line.strip("= ") for line in reversed(done.stdout.splitlines())
                    if re.search(r"\d+ (passed|failed)", line)), f"exit {done.returncode}")
    spelled = " ".join(command[1:] if pytest_args else command)
    if not pytest_args and env.get("PYTEST_ARGS"):  # the Makefile's default replaced: say so in the row
        spelled += f" PYTEST_ARGS='{env['PYTEST_ARGS']}'"
    row = {"lane": lane, "command": spelled, "wall_seconds": f"{wall:.1f}",
           "cpu_seconds": "" if cpu is None else f"{cpu:.1f}", "summary": summary,
           "loadavg_before": f"{load_before:.1f}", "loadavg_after": f"{os.getloadavg()[0]:.1f}",
           "recorded_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M")}
    new = not results.exists()
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lane", choices=("test", "test-full"), default="test")
    parser.add_argument("--results", type=Path, default=BENCH / "results" / "suite_lanes.csv")
    parser.add_argument("pytest_args", nargs="*", help="after --: run pytest with these instead of make")
    args = parser.parse_args()
    row = run(args.lane, args.pytest_args, args.results)
    print(f"{row['lane']}: {row['wall_seconds']} s wall, {row['cpu_seconds'] or '?'} s CPU, {row['summary']} "
          f"(load {row['loadavg_before']} -> {row['loadavg_after']})")
    return 0 if re.search(r"\d+ passed", row["summary"]) and "failed" not in row["summary"] else 1


if __name__ == "__main__":
    sys.exit(main())
