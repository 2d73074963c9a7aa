"""``autograder assign``: the master notebook becomes the student template, public tests and hidden bundle."""
from __future__ import annotations

import argparse
import os

from autograder.assignment import load_assignment
from autograder.author.authoring import assign


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", nargs="?", default="assignments/mnist", metavar="DIR",
                        help="assignment directory holding assignment.toml (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    assignment = load_assignment(args.assignment)
    for path in assign(assignment):
        print(f"wrote {os.path.relpath(path)}")
    return 0
