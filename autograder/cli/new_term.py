"""``autograder new-term``: a fresh private evaluation seed, and thresholds re-measured on it."""
from __future__ import annotations

import argparse
from pathlib import Path

from autograder.assignment import REFERENCE_MODELS, TERM_CALIBRATION, TERM_DIR, TERM_SEED, load_assignment
from autograder.author.term import new_term
from autograder.intake.inputs import InputError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--assignment", default="assignments/mnist", metavar="DIR",
                        help="assignment folder (default: %(default)s)")
    parser.add_argument("--reference-models", metavar="DIR",
                        help=f"reference models stored at calibration (default: ASSIGNMENT/{REFERENCE_MODELS})")
    parser.add_argument("--force", action="store_true",
                        help="replace the private seed of a term already set up (its results become stale)")


def run(args: argparse.Namespace) -> int:
    assignment = load_assignment(args.assignment)
    models = Path(args.reference_models or assignment.root / REFERENCE_MODELS)
    if not models.is_dir() or not any(models.iterdir()):
        raise InputError(f"{models}: no stored reference models; `autograder calibrate` stores them "
                         "(or pass --reference-models DIR)")
    term = assignment.root / TERM_DIR
    seed_path, calibration_path = term / TERM_SEED, term / TERM_CALIBRATION
    if seed_path.exists() and not args.force:
        raise InputError(f"{seed_path}: this assignment already has a private seed for a term; pass --force "
                         "to draw a new one (results graded under the old one become stale)")
    new_term(assignment.root, models)
    updated = load_assignment(assignment.root)
    print(f"new private evaluation seed in {seed_path} (not tracked by git)")
    print(f"thresholds re-measured from {models} into {calibration_path}:")
    for arch, threshold in updated.thresholds().items():
        print(f"  {arch:>10}: full credit at {threshold.full:.4f}, zero at {threshold.zero:.4f}")
    return 0
