"""``autograder gradescope``: the Gradescope autograder zip (setup.sh, run_autograder, the hidden bundle)."""
from __future__ import annotations

import argparse
from pathlib import Path

from autograder.assignment import load_assignment
from autograder.output.gradescope import package_entries, write_zip
from autograder.output.store import check_writable


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", type=Path, help="assignment directory (assignment.toml, hidden/)")
    parser.add_argument("-o", "--out", type=Path, default=Path("autograder.zip"),
                        help="the zip to upload to Gradescope")
    parser.add_argument("--download-mnist", action="store_true",
                        help="leave MNIST out of the zip; setup.sh downloads and verifies it when the image is built")


def run(args: argparse.Namespace) -> int:
    check_writable([args.out])
    assignment = load_assignment(args.assignment)
    entries = package_entries(assignment, bundle_mnist=not args.download_mnist)
    assignment.warn_if_public_seed("packaging for Gradescope")
    write_zip(entries, args.out)
    size = args.out.stat().st_size / 2**20
    print(f"{args.out}: {len(entries)} files, {size:.1f} MB; upload it as the assignment's autograder "
          "(Ubuntu 24.04 base image)")
    return 0
