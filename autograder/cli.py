"""``autograder`` command line: one subcommand per verb, each defined in its own module.

A verb module exposes ``configure(parser)`` (adds its arguments) and ``run(args) -> int``; the list
below is the only place that names them, in the order ``--help`` shows them.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

#: (verb, module, one-line help)
VERBS: list[tuple[str, str, str]] = [
    ("assign", "autograder.authoring", "master notebook -> student template, public tests and hidden bundle"),
    ("calibrate", "autograder.calibrate", "train the reference models to set accuracy thresholds"),
    ("grade-one", "autograder.grade", "grade one notebook: sandboxed run, export, hidden tests, result.json"),
    ("gradebook", "autograder.gradebook", "gradebook CSV (roster, overrides, late policy) and otter/Canvas/Gradescope exports"),
    ("feedback", "autograder.feedback", "HTML feedback page per student and an instructor summary page"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autograder",
        description="Grade Keras/MNIST homework notebooks in a sandbox, with hidden tests.")
    parser.add_argument("--mnist-dir", metavar="DIR",
                        help="directory holding mnist.npz or the four IDX .gz files "
                             "(default: $AUTOGRADER_MNIST_DIR, then the Keras cache, then a download)")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    for verb, module_name, help_text in VERBS:
        module = importlib.import_module(module_name)
        verb_parser = sub.add_parser(verb, help=help_text, description=help_text)
        module.configure(verb_parser)
        verb_parser.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.mnist_dir:
        # One setting for every stage, the sandbox provisioning included.
        os.environ["AUTOGRADER_MNIST_DIR"] = os.path.abspath(args.mnist_dir)
    return args.run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
