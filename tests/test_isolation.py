"""The container-uid level's hand-over and clean-up, without TensorFlow (seconds)."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from autograder.run import isolation
from autograder.run.sandbox.spec import SandboxSpec

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the container-uid level runs as root")


def uid_isolation(tmp_path: Path, uid: int) -> tuple[isolation.UidIsolation, SimpleNamespace]:
    job = SimpleNamespace(export=tmp_path / "export")
    job.export.mkdir()
    os.chown(job.export, uid, uid)
    return isolation.UidIsolation(SandboxSpec(uid=uid), tmp_path), job


def test_end_kernel_kills_the_kernel_uid_then_hands_the_export_over_without_touching_linked_files(tmp_path):
    uid = 249_977
    jail, job = uid_isolation(tmp_path, uid)
    outside = tmp_path / "outside.txt"
    outside.write_text("root's")
    outside.chmod(0o600)
    os.link(outside, job.export / "linked.txt")  # what a hard link to a file outside the export looks like
    (job.export / "model.keras").write_bytes(b"x")
    os.chown(job.export / "model.keras", uid, uid)
    daemon = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                               "sh", "-c", "sleep 300 & sleep 300"], start_new_session=True)
    deadline = time.monotonic() + 30
    while len(isolation.processes_of(uid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(isolation.processes_of(uid)) >= 2

    jail.end_kernel(job)
    daemon.wait(timeout=30)

    assert isolation.processes_of(uid) == []
    assert not (job.export / "linked.txt").exists()
    assert stat.S_IMODE(outside.stat().st_mode) == 0o600 and outside.stat().st_uid == 0
    model = (job.export / "model.keras").stat()
    assert (model.st_uid, model.st_gid, stat.S_IMODE(model.st_mode)) == (0, jail.uid("predict"), 0o640)


def test_end_removes_what_the_uids_left_in_shared_places_and_nothing_else(tmp_path):
    uid = 249_978
    jail, _ = uid_isolation(tmp_path, uid)
    theirs, ours = Path("/tmp") / f"agx-isolation-test-{os.getpid()}", tmp_path / "ours"
    subprocess.run(["setpriv", f"--reuid={jail.uid('classes')}", f"--regid={jail.uid('classes')}", "--clear-groups",
                    "touch", str(theirs)], check=True)
    ours.write_text("kept")
    jail.end()
    assert not theirs.exists() and ours.exists()


def test_hide_closes_a_directory_to_other_users():
    base = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's tmp_path is closed to other users already
    try:
        base.chmod(0o755)
        folder = base / "hidden"
        folder.mkdir(mode=0o755)
        (folder / "seed.txt").write_text("42")
        (folder / "seed.txt").chmod(0o644)
        assert isolation.readable_by_others(folder / "seed.txt")
        isolation.hide([folder])
        assert stat.S_IMODE(folder.stat().st_mode) == 0o750
        assert not isolation.readable_by_others(folder / "seed.txt")
    finally:
        shutil.rmtree(base)
