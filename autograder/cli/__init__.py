"""``autograder`` command line: one subcommand per verb, each in its own module of this package.

The module is named after the verb (``grade-one`` -> ``autograder/cli/grade_one.py``) and exposes
``configure(parser)`` (adds its arguments) and ``run(args) -> int``; it only reads the arguments and
calls the phase packages. The list below is the only place that names the verbs, in the order ``--help``
shows them.

Habits every verb shares: ``-o/--out`` names the output (folder, or the file for ``calibrate`` and
``gradescope``); ``-q`` prints only errors and ``-v`` adds what the grader does, step by step; ``-q``,
``-v`` and ``--mnist-dir`` work before or after the verb; an unknown option after a verb prints that
verb's usage; a person's mistake (a missing path, a bad roster, a corrupt zip, an unknown option value)
is one line on stderr and exit code 2, with nothing written. ``--version`` names the grader's version
and the bundle of ``./assignments/mnist`` (the hash each result records).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import logging
import os
import sys

from autograder import __version__
from autograder.assignment import AssignmentError, load_assignment
from autograder.data import DataError
from autograder.intake.inputs import InputError

#: (verb, one-line help); the verb's module is autograder.cli.<verb with "_" for "-">
VERBS: list[tuple[str, str]] = [
    ("new-term", "before a term: a fresh private evaluation seed and thresholds re-measured from the stored "
                 "reference models"),
    ("assign", "master notebook -> student template, public tests and hidden bundle"),
    ("calibrate", "train the reference models to set accuracy thresholds"),
    ("grade-one", "grade one notebook: sandboxed run, export, hidden tests, result.json"),
    ("grade", "grade a folder, zip, Canvas or Gradescope download of submissions"),
    ("regrade", "re-score stored results after a threshold, rubric or scoring-code change (a new seed: grade)"),
    ("show", "print the results, or one student's result, as a TA reads it"),
    ("gradebook", "gradebook CSV (roster, overrides, late policy) and otter/Canvas/Gradescope exports"),
    ("feedback", "HTML feedback page per student and an instructor summary page"),
    ("demo", "grade the bundled example submissions end to end (gradebook + feedback)"),
    ("similarity", "rank pairs of students by shared code, report prose and trained models"),
    ("review", "the TA review workbench: every item a person must decide, with its evidence, in a browser"),
    ("gradescope", "build a Gradescope autograder zip (setup.sh, run_autograder, hidden bundle)"),
]
#: Errors that are the user's to fix: one line, exit 2, never a traceback.
USER_ERRORS = (InputError, AssignmentError, DataError)


def add_common(parser: argparse.ArgumentParser, after_verb: bool = False) -> None:
    """-v, -q and --mnist-dir, before the verb and after it."""
    # After the verb the flags default to "not given", so they do not undo the same flags given before it.
    unset = {"default": argparse.SUPPRESS} if after_verb else {}
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="count", **(unset or {"default": 0}),
                       help="say what the grader does, step by step (-vv: more)")
    group.add_argument("-q", "--quiet", action="store_true", **unset, help="print errors only")
    parser.add_argument("--mnist-dir", metavar="DIR", **unset,
                        help="directory holding mnist.npz or the four IDX .gz files "
                             "(default: $AUTOGRADER_MNIST_DIR, then the Keras cache, then a download)")


def version_text() -> str:
    """The grader's version and the keys of the assignment it would grade with (./assignments/mnist): the
    evidence key (what produces the evidence) and the scoring key (what turns it into points)."""
    from autograder.output.store import DEFAULT_ASSIGNMENT  # the reporting package, only when asked
    try:
        assignment = load_assignment(DEFAULT_ASSIGNMENT)
        bundle = (f"assignment {assignment.name}: evidence key {assignment.evidence_key().sha256[:16]}, "
                  f"scoring key {assignment.scoring_key().sha256[:16]} ({DEFAULT_ASSIGNMENT})")
    except (AssignmentError, OSError) as exc:
        bundle = f"assignment bundle: none readable in ./{DEFAULT_ASSIGNMENT} ({str(exc).splitlines()[0][:200]})"
    return f"autograder {__version__}\n{bundle}"


class VersionAction(argparse.Action):
    """``--version``: like argparse's, with the assignment bundle (computed only when asked)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the grader's version and the assignment's evidence and scoring keys, then exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(version_text())
        parser.exit()


def positive_int(text: str) -> int:
    """argparse type for counts: a clear usage error for 0, negatives and words."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """All verbs are listed; only the one being run is imported (each pulls in its own libraries)."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="autograder",
        description="Grade Keras/MNIST homework notebooks in a sandbox, with hidden tests.")
    parser.add_argument("--version", action=VersionAction)
    add_common(parser)
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    chosen = next((arg for arg in argv if arg in {verb for verb, _ in VERBS}), None)
    for verb, help_text in VERBS:
        verb_parser = sub.add_parser(verb, help=help_text, description=help_text)
        if verb != chosen:
            continue
        add_common(verb_parser, after_verb=True)  # after the verb too, as people type it
        module = importlib.import_module(f"{__name__}.{verb.replace('-', '_')}")
        module.configure(verb_parser)
        verb_parser.set_defaults(run=module.run)
    parser.set_defaults(verb_parsers=sub.choices)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # after the verb: the usage of the verb they were typing, not the list of verbs
        after_verb = unknown[0] not in argv[:argv.index(args.verb)]
        (args.verb_parsers[args.verb] if after_verb else parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.mnist_dir:
        # One setting for every stage, the sandbox provisioning included.
        os.environ["AUTOGRADER_MNIST_DIR"] = os.path.abspath(args.mnist_dir)
    level = logging.ERROR if args.quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)
    try:
        with contextlib.redirect_stdout(io.StringIO()) if args.quiet else contextlib.nullcontext():
            return args.run(args) or 0
    except USER_ERRORS as exc:  # set-up problems and people's mistakes: a clear line, not a traceback
        print(f"autograder {args.verb}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `autograder show ... | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
