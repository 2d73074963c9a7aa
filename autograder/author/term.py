"""``autograder new-term``: make the hidden evaluation set private again before a term starts.

The committed ``hidden/evaluation_seed.txt`` is a public demo seed: anyone who reads the repository can
rebuild the evaluation images from it. ``new-term``

1. draws a fresh seed from the operating system's CSPRNG into ``<assignment>/term/evaluation_seed.txt``
   (mode 0600; ``term/`` holds a ``.gitignore`` of ``*``, so git never tracks it, whatever the
   repository's own ignore rules say);
2. re-measures the thresholds on the new evaluation images from the reference models stored at
   calibration (``<assignment>/reference_models/``), without training, by running
   ``autograder calibrate --from-models DIR --out <assignment>/term/calibration.json``;
3. prints the new thresholds.

From then on the assignment reads its seed and calibration from ``term/`` (see
:mod:`autograder.assignment`); results graded before are stale: the seed is part of the evidence key, so `grade` executes them again
(`regrade` refuses them).
If the measurement fails, the previous term files are put back.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from autograder.assignment import GRADER_ROOT, TERM_CALIBRATION, TERM_DIR, TERM_SEED, AssignmentError
from autograder.results import atomic_write_text


def new_term(root: Path, models: Path) -> None:
    """Private seed and its calibration into ``root/term/``; the previous ones come back on failure."""
    term = root / TERM_DIR
    term.mkdir(mode=0o700, exist_ok=True)
    (term / ".gitignore").write_text("# autograder new-term: private to this machine, never committed\n*\n")
    seed_path, calibration_path = term / TERM_SEED, term / TERM_CALIBRATION
    previous = {path: path.read_bytes() for path in (seed_path, calibration_path) if path.is_file()}
    calibration_path.unlink(missing_ok=True)  # never a calibration measured on another seed
    atomic_write_text(seed_path, f"{secrets.randbelow(2**63 - 1) + 1}\n")
    os.chmod(seed_path, 0o600)
    try:
        measure_reference_models(root, models, calibration_path)
    except BaseException:
        for path in (seed_path, calibration_path):
            path.unlink(missing_ok=True)
        for path, data in previous.items():
            path.write_bytes(data)
        raise


def measure_reference_models(root: Path, models: Path, out: Path) -> None:
    """``autograder calibrate --from-models``: each stored model scored on the current evaluation set."""
    staged = out.with_name(out.name + ".new")
    command = [sys.executable, "-m", "autograder", "calibrate", "--assignment", str(root),
               "--from-models", str(models), "--out", str(staged)]
    # Run from this checkout, so the calibrate that runs is the code that will score.
    done = subprocess.run(command, cwd=GRADER_ROOT.parent, capture_output=True, text=True)
    sys.stderr.write(done.stdout + done.stderr)  # calibrate's report, beside new-term's own lines
    if done.returncode != 0 or not staged.is_file():
        staged.unlink(missing_ok=True)
        raise AssignmentError(f"`{' '.join(command[1:])}` failed (exit {done.returncode}); the previous "
                              "term files are back in place")
    os.replace(staged, out)
