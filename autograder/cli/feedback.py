"""``autograder feedback``: an HTML page per student and a summary page for instructors, graded under the
policy ``autograder gradebook`` recorded, so each page shows the grade Canvas gets."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from autograder.cli.gradebook import add_policy_arguments, given_options, policy_from
from autograder.intake.inputs import InputError
from autograder.output.feedback import write_feedback
from autograder.output.policy import POLICY_FILE, GradingPolicy, changes, edited_sources, read_policy
from autograder.output.store import check_report_folder, open_results, resolve_assignment


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", metavar="RESULTS",
                        help="RESULTS folder of `autograder grade` (or the --out folder of `grade-one`)")
    parser.add_argument("-o", "--out", metavar="DIR", help="output folder (default: RESULTS/feedback)")
    parser.add_argument("--assignment", metavar="DIR",
                        help="assignment folder (default: the one the results were graded with)")
    add_policy_arguments(parser)  # accepted when they agree with the recorded policy (scripts that repeat them)


def run(args: argparse.Namespace) -> int:
    store = open_results(args.results)
    assignment = resolve_assignment(args.assignment, store.load())
    out_dir = check_report_folder(Path(args.out or store.root / "feedback"))
    recorded = read_policy(store.root)
    options = given_options(args)
    if options:
        differences = changes(recorded, policy_from(args, recorded or GradingPolicy()))
        if differences and recorded is None:
            raise InputError(f"no grading policy recorded in {store.root} yet: give {' '.join(options)} to "
                             f"`autograder gradebook {args.results}` first; feedback then shows the grades it "
                             "recorded (the same as the exports)")
        if differences:
            raise InputError(f"{' '.join(options)}: not the grading policy `autograder gradebook` recorded in "
                             f"{store.root / POLICY_FILE} ({'; '.join(differences)}): change the policy with "
                             f"`autograder gradebook {args.results} {' '.join(options)} ...`, then run feedback "
                             "again, so the pages and the exports carry the same grades")
    paths = write_feedback(store.root, out_dir, assignment, recorded)
    log = logging.getLogger("autograder")
    if recorded is None:
        log.warning("note: no grading policy recorded in %s yet (`autograder gradebook` records it): the pages show "
                    "the graded scores, without roster, overrides or late penalties", store.root)
    for line in edited_sources(recorded or GradingPolicy()):
        log.warning("note: %s", line)
    print(f"wrote {len(paths) - 1} student pages and {out_dir / 'index.html'}")
    return 0
