"""``autograder calibrate``: train the reference models (or measure stored ones) and write the thresholds."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from autograder.assignment import REFERENCE_MODELS, load_assignment
from autograder.author.calibrate import measure, train
from autograder.data import HOMEWORK_TRAIN_SIZE
from autograder.output.store import check_writable
from autograder.results import atomic_write_text


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--assignment", default="assignments/mnist", metavar="DIR",
                        help="assignment directory (default: %(default)s)")
    parser.add_argument("--from-models", metavar="DIR",
                        help="measure the models stored in DIR ({arch}-seed{n}.keras) without training")
    parser.add_argument("--models-dir", metavar="DIR",
                        help=f"where training saves the models (default: the assignment's {REFERENCE_MODELS}/)")
    parser.add_argument("--seeds", type=int, default=3, metavar="N",
                        help="train every architecture with seeds 0..N-1 (default: %(default)s)")
    parser.add_argument("--train-size", type=int, default=HOMEWORK_TRAIN_SIZE, metavar="N",
                        help="train on the first N of the homework's training images (default: all %(default)s)")
    parser.add_argument("--epochs-scale", type=float, default=1.0, metavar="F",
                        help="multiply every recipe's epochs by F, at least 1 epoch (default: %(default)s)")
    parser.add_argument("-o", "--out", metavar="FILE",
                        help="where to write the calibration (default: the assignment's calibration_file)")


def run(args: argparse.Namespace) -> int:
    assignment = load_assignment(args.assignment)
    out = Path(args.out) if args.out else assignment.calibration_file
    check_writable([out])  # before half an hour of training, not after
    if args.from_models:
        models_dir = Path(args.from_models)
    else:
        models_dir = Path(args.models_dir) if args.models_dir else assignment.root / REFERENCE_MODELS
        train(models_dir, seeds=list(range(args.seeds)), train_size=args.train_size,
              epochs_scale=args.epochs_scale, progress=print_progress)
    calibration = measure(assignment, models_dir, progress=print_progress)
    atomic_write_text(out, json.dumps(calibration, indent=2) + "\n")
    print(f"wrote {out}")
    for arch, figures in calibration["architectures"].items():
        print(f"{arch:>10}: eval {figures['eval_accuracy']['mean']:.4f} (min {figures['eval_accuracy']['min']:.4f})"
              f"  train sample {figures['train_sample_accuracy']['mean']:.4f}"
              f"  distorted {figures['distorted_accuracy']['mean']:.4f}  {figures['params']:,} params")
    return 0


def print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
