"""``autograder`` command line: one subcommand per verb, each defined in its own module.

A verb module exposes ``configure(parser)`` (adds its arguments) and ``run(args) -> int``; a module
holding several verbs is named ``module:name`` and exposes ``configure_<name>`` and ``run_<name>``. The
list below is the only place that names them, in the order ``--help`` shows them.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from autograder.assignment import AssignmentError
from autograder.data import DataError

#: (verb, module, one-line help)
VERBS: list[tuple[str, str, str]] = [
    ("assign", "autograder.authoring", "master notebook -> student template, public tests and hidden bundle"),
    ("calibrate", "autograder.calibrate", "train the reference models to set accuracy thresholds"),
    ("grade-one", "autograder.grade", "grade one notebook: sandboxed run, export, hidden tests, result.json"),
    ("grade", "autograder.batch:grade", "grade a folder, zip, Canvas or Gradescope download of submissions"),
    ("regrade", "autograder.batch:regrade", "re-score stored results after a threshold or rubric change"),
    ("gradebook", "autograder.gradebook", "gradebook CSV (roster, overrides, late policy) and otter/Canvas/Gradescope exports"),
    ("demo", "autograder.demo", "grade the bundled example submissions end to end (gradebook + feedback)"),
    ("feedback", "autograder.feedback", "HTML feedback page per student and an instructor summary page"),
    ("gradescope", "autograder.gradescope", "build a Gradescope autograder zip (setup.sh, run_autograder, hidden bundle)"),
]


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """All verbs are listed; only the one being run is imported (each pulls in its own libraries)."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="autograder",
        description="Grade Keras/MNIST homework notebooks in a sandbox, with hidden tests.")
    parser.add_argument("--mnist-dir", metavar="DIR",
                        help="directory holding mnist.npz or the four IDX .gz files "
                             "(default: $AUTOGRADER_MNIST_DIR, then the Keras cache, then a download)")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    chosen = next((arg for arg in argv if arg in {verb for verb, _, _ in VERBS}), None)
    for verb, target, help_text in VERBS:
        verb_parser = sub.add_parser(verb, help=help_text, description=help_text)
        if verb != chosen:
            continue
        module_name, _, name = target.partition(":")
        module = importlib.import_module(module_name)
        suffix = f"_{name}" if name else ""
        getattr(module, f"configure{suffix}")(verb_parser)
        verb_parser.set_defaults(run=getattr(module, f"run{suffix}"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    if args.mnist_dir:
        # One setting for every stage, the sandbox provisioning included.
        os.environ["AUTOGRADER_MNIST_DIR"] = os.path.abspath(args.mnist_dir)
    try:
        return args.run(args) or 0
    except (AssignmentError, DataError) as exc:  # set-up problems: a clear line, not a traceback
        print(f"autograder {args.verb}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
