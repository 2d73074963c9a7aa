"""``autograder gradebook``: the gradebook CSV (roster, overrides, late policy) and the otter/Canvas/Gradescope
exports.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from autograder.intake.inputs import parse_time, read_overrides, read_roster
from autograder.output.gradebook import (GradingPolicy, LatePolicy, build_submissions, lateness_note,
                                         write_gradebook)
from autograder.output.store import open_results, resolve_assignment


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """What turns graded scores into the grade a student gets; ``gradebook`` and ``feedback`` share it."""
    parser.add_argument("--roster", metavar="CSV", help="columns student_id[, name, email, canvas_id, "
                                                        "login, section] (see README)")
    parser.add_argument("--overrides", metavar="CSV", help="columns student_id, question, score, reason")
    parser.add_argument("--due", metavar="ISO", help="deadline, e.g. 2026-12-01T23:59 (local time) "
                                                     "or 2026-12-01T23:59+01:00; Canvas downloads carry no "
                                                     "times, so their LATE mark is used instead")
    parser.add_argument("--late-policy", default="none",
                        help="'none', 'zero', or like '10%%/day,max=50%%' (per started day or hour)")


def policy_from(args: argparse.Namespace) -> GradingPolicy:
    """Read every policy input before anything is written (each mistake: one line, exit 2)."""
    return GradingPolicy(roster=read_roster(args.roster) if args.roster else None,
                         overrides=read_overrides(args.overrides) if args.overrides else None,
                         due=parse_time(args.due, "--due"), late=LatePolicy.parse(args.late_policy))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", metavar="RESULTS",
                        help="RESULTS folder of `autograder grade` (or the --out folder of `grade-one`)")
    parser.add_argument("-o", "--out", metavar="DIR",
                        help="folder for gradebook.csv and the exports (default: RESULTS)")
    parser.add_argument("--assignment", metavar="DIR",
                        help="assignment folder (default: the one the results were graded with)")
    add_policy_arguments(parser)
    parser.add_argument("--missing-as-zero", action="store_true",
                        help="give roster students without a submission 0 points (default: blank, no grade)")
    parser.add_argument("--canvas-assignment-id", metavar="ID",
                        help="the Canvas assignment's id (the number in its URL), so canvas_grades.csv "
                             "updates that assignment; without it Canvas creates a new column on import")


def run(args: argparse.Namespace) -> int:
    policy = policy_from(args)
    store = open_results(args.results)
    assignment = resolve_assignment(args.assignment, store.load())
    output = Path(args.out or store.root) / "gradebook.csv"
    paths = write_gradebook(store.root, output, assignment, roster=policy.roster, overrides=policy.overrides,
                            due=policy.due, policy=policy.late, canvas_assignment_id=args.canvas_assignment_id,
                            missing_as_zero=args.missing_as_zero)
    note = policy.due and lateness_note(build_submissions(store.load(), assignment, due=policy.due,
                                                          policy=policy.late), policy.due, policy.late)
    notes = [note] if note else []
    if not args.canvas_assignment_id:
        notes.append("no --canvas-assignment-id: importing canvas_grades.csv creates a new assignment in Canvas")
    for line in notes:  # shown unless -q
        logging.getLogger("autograder").warning("note: %s", line)
    gradebook = pd.read_csv(output, dtype={"student_id": str})
    counts = gradebook["status"].value_counts().to_dict()
    print(f"{len(gradebook)} students {counts}; mean {gradebook['percent'].mean():.1f}%")
    print(f"wrote {output} and {len(paths) - 1} exports beside it")
    return 0
