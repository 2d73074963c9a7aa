"""``autograder gradebook``: the gradebook CSV (roster, overrides, late policy) and the otter/Canvas/Gradescope
exports; the grading policy it was given is recorded in ``RESULTS/policy.json`` for every other output.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from autograder.intake.inputs import InputError, named_timezone, parse_due
from autograder.output.gradebook import build_submissions, lateness_note, write_gradebook
from autograder.output.policy import POLICY_FILE, GradingPolicy, changes, edited_sources, read_policy, updated
from autograder.output.store import check_report_folder, open_results, resolve_assignment

POLICY_OPTIONS = ("roster", "overrides", "extensions", "due", "timezone", "late_policy", "missing_as_zero")


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """What turns graded scores into the grade a student gets. ``gradebook`` records them; ``feedback``
    accepts them only when they agree with the record."""
    parser.add_argument("--roster", metavar="CSV", help="columns student_id[, name, email, canvas_id, "
                                                        "login, section] (see README)")
    parser.add_argument("--overrides", metavar="CSV", help="columns student_id, question, score, reason")
    parser.add_argument("--extensions", metavar="CSV", help="columns student_id, due: a deadline of the "
                                                            "student's own, written as --due is")
    parser.add_argument("--due", metavar="ISO", help="deadline in ISO 8601: 2026-12-01 (the end of that day, "
                                                     "23:59:59), 2026-12-01T23:59 (in --timezone) or "
                                                     "2026-12-01T23:59+01:00; needs a --late-policy. Canvas "
                                                     "downloads carry no times, so their LATE mark is used instead")
    parser.add_argument("--timezone", metavar="NAME", help="IANA timezone a deadline without a UTC offset is "
                                                           "read in, e.g. Europe/Berlin (default: this machine's)")
    parser.add_argument("--late-policy", help="'none', 'zero', or like '10%%/day,max=50%%' (per started day or hour)")
    parser.add_argument("--missing-as-zero", action=argparse.BooleanOptionalAction, default=None,
                        help="give roster students without a submission 0 points (default: blank, no grade)")


def given_options(args: argparse.Namespace) -> list[str]:
    return [f"--{name.replace('_', '-')}" for name in POLICY_OPTIONS if getattr(args, name) is not None]


def policy_from(args: argparse.Namespace, recorded: GradingPolicy) -> GradingPolicy:
    """``recorded`` with the options given in their place; every input is read before anything is written
    (each mistake: one line, exit 2)."""
    if args.timezone and not args.due and recorded.due is not None:  # the record keeps the instant, not the text
        raise InputError("--timezone changes how a deadline is read: give --due again with it")
    zone = None
    if args.timezone or args.due or args.extensions:
        zone = named_timezone(args.timezone or recorded.timezone)
    return updated(recorded, roster=args.roster, overrides=args.overrides, extensions=args.extensions,
                   due=parse_due(args.due, zone) if args.due else None, zone=zone,
                   late_policy=args.late_policy, missing_as_zero=args.missing_as_zero,
                   canvas_assignment_id=getattr(args, "canvas_assignment_id", None))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", metavar="RESULTS",
                        help="RESULTS folder of `autograder grade` (or the --out folder of `grade-one`)")
    parser.add_argument("-o", "--out", metavar="DIR",
                        help="folder for gradebook.csv and the exports (default: RESULTS)")
    parser.add_argument("--assignment", metavar="DIR",
                        help="assignment folder (default: the one the results were graded with)")
    add_policy_arguments(parser)
    parser.add_argument("--reset-policy", action="store_true",
                        help=f"forget the policy recorded in RESULTS/{POLICY_FILE}; only the options given now count")
    parser.add_argument("--canvas-assignment-id", metavar="ID",
                        help="the Canvas assignment's id (the number in its URL), so canvas_grades.csv "
                             "updates that assignment; without it Canvas creates a new column on import "
                             "(recorded with the policy, like the options above)")


def run(args: argparse.Namespace) -> int:
    store = open_results(args.results)
    assignment = resolve_assignment(args.assignment, store.load())
    output = check_report_folder(Path(args.out or store.root)) / "gradebook.csv"
    recorded = None if args.reset_policy else read_policy(store.root)
    policy = policy_from(args, recorded or GradingPolicy())
    paths = write_gradebook(store.root, output, assignment, policy)
    for line in policy.describe():
        print(line)
    changed = changes(recorded, policy)
    print(f"policy recorded in {store.root / POLICY_FILE}" + (f"; changed: {'; '.join(changed)}" if changed
                                                              else " (unchanged)"))
    note = lateness_note(build_submissions(store.load(), assignment, policy), policy)
    notes = [note] if note else []
    notes += edited_sources(policy)  # a file given now was just read: only older ones can differ
    if not policy.canvas_assignment_id:
        notes.append("no --canvas-assignment-id: importing canvas_grades.csv creates a new assignment in Canvas")
    for line in notes:  # shown unless -q
        logging.getLogger("autograder").warning("note: %s", line)
    gradebook = pd.read_csv(output, dtype={"student_id": str})
    counts = gradebook["status"].value_counts().to_dict()
    print(f"{len(gradebook)} students {counts}; mean {gradebook['percent'].mean():.1f}%")
    print(f"wrote {output} and {len(paths) - 1} exports beside it")
    return 0
