"""Smoke of the benchmark script: one cheap figure end to end, raw CSV and report row read back."""
from __future__ import annotations

import csv
import subprocess
import sys

import pytest


def run_quick(repo, tmp_path, figure: str) -> tuple[list[dict[str, str]], str]:
    """``bench/run.py --quick --only FIGURE`` into tmp_path: the figure's CSV rows and the rendered report."""
    results, report = tmp_path / "results", tmp_path / "BENCHMARKS.md"
    subprocess.run([sys.executable, str(repo / "bench" / "run.py"), "--quick", "--only", figure,
                    "--results", str(results), "--report", str(report)], check=True, cwd=tmp_path,
                   capture_output=True, timeout=300)
    with open(results / f"{figure}.csv", newline="") as fh:
        return list(csv.DictReader(fh)), report.read_text()


@pytest.mark.slow
def test_quick_regrade_writes_csv_and_report_row(repo, tmp_path):
    rows, text = run_quick(repo, tmp_path, "regrade")
    measures = {row["measure"]: float(row["value"]) for row in rows}
    assert measures["submissions"] == 3  # quick mode re-scores three stored copies
    assert 0 < measures["regrade_s"] < measures["reexecute_estimate_s"]
    assert {row["mode"] for row in rows} == {"quick"}

    row = next(line for line in text.splitlines() if line.startswith("| 4. regrade"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == f'{measures["regrade_s"]:.2f} s'
    assert cells[4] == "<= 60" and cells[5] == "yes"
    assert "- cores: " in text and "- TensorFlow: " in text
    assert "| 1. grade-one" not in text  # figures that did not run have no row


@pytest.mark.slow
def test_quick_similarity_figure_grades_nothing_and_reports_its_row(repo, tmp_path):
    """The similarity workload writes results the grader would accept (each write is schema-checked)."""
    rows, text = run_quick(repo, tmp_path, "similarity")
    measures = {row["measure"]: float(row["value"]) for row in rows}
    assert measures["submissions"] == 12 and measures["similarity_s"] > 0
    assert any(line.startswith("| 7. similarity report") for line in text.splitlines())


@pytest.mark.slow
def test_quick_review_figure_serves_the_queue_and_items_and_reports_its_rows(repo, tmp_path):
    """The review workload's results are written by the grader's writer (schema-checked) and every
    fixture kind of item is asked for."""
    rows, text = run_quick(repo, tmp_path, "review")
    measures = {row["measure"]: float(row["value"]) for row in rows}
    assert measures["results"] == 12 and measures["items_listed"] > 12 and measures["item_s"] > 0
    assert sum(line.startswith("| 8. ") for line in text.splitlines()) == 5


BUSY_CHILD = """\
import subprocess
import sys

def test_work_in_a_child_process():
    # a grandchild of the benchmark, as a sandboxed notebook is: its CPU time must count
    subprocess.run([sys.executable, "-c", "import time\\nend = time.process_time() + 1.5\\n"
                    "while time.process_time() < end: pass"], check=True)
"""


def test_suite_lane_figure_counts_the_cpu_time_of_what_the_run_starts(repo, tmp_path):
    """``bench/suite_lanes.py -- PYTEST_ARGS``: one CSV row with pytest's summary, wall and CPU seconds and the load."""
    (tmp_path / "test_busy.py").write_text(BUSY_CHILD)
    results = tmp_path / "suite_lanes.csv"
    subprocess.run([sys.executable, str(repo / "bench" / "suite_lanes.py"), "--results", str(results), "--",
                    "-p", "no:cacheprovider", "-q", str(tmp_path / "test_busy.py")], check=True, capture_output=True,
                   timeout=300)
    with open(results, newline="") as fh:
        [row] = list(csv.DictReader(fh))
    assert row["lane"] == "test" and row["summary"].startswith("1 passed")
    assert float(row["cpu_seconds"]) >= 1.5  # the grandchild's busy loop, counted in the run's cgroup
    assert float(row["wall_seconds"]) >= 1.5 and float(row["loadavg_before"]) >= 0
