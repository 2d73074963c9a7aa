"""A zip of submissions, extracted safely (:func:`safe_extract`).

A member that is absolute, climbs out with ``..`` or is a symbolic link refuses the whole archive; the
member count and the total size are capped against zip bombs, before extracting (what the archive
declares) and while extracting (what it really unpacks to); ``__MACOSX`` folders are skipped. A refused
or damaged archive leaves nothing half-extracted behind.
"""
from __future__ import annotations

import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from autograder.intake.inputs import SubmissionsError


@dataclass(frozen=True)
class ZipLimits:
    """What a zip of submissions may unpack to (zip bombs are refused before and while extracting)."""

    members: int = 20_000
    bytes: int = 8 * 2**30  # 300 students x 25 MB, with room to spare


def safe_extract(archive: Path, workdir: Path, limits: ZipLimits = ZipLimits()) -> Path:
    """Extract ``archive`` into a fresh folder under ``workdir``, refusing anything unsafe."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > limits.members:
                raise SubmissionsError(f"{archive.name}: {len(members)} entries (limit {limits.members})")
            declared = sum(m.file_size for m in members)
            if declared > limits.bytes:
                raise SubmissionsError(f"{archive.name}: would unpack to {declared / 2**30:.1f} GiB "
                                       f"(limit {limits.bytes / 2**30:.0f} GiB)")
            workdir.mkdir(parents=True, exist_ok=True)
            dest = Path(tempfile.mkdtemp(prefix=f"{archive.stem}-", dir=workdir)).resolve()
            try:
                extract_members(zf, members, dest, archive.name, limits.bytes)
            except BaseException:
                shutil.rmtree(dest, ignore_errors=True)  # no half-extracted batch left behind
                raise
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # damaged headers or damaged data
        raise SubmissionsError(f"{archive.name}: the zip file is corrupt ({exc}); download it again") from exc
    except (zipfile.LargeZipFile, NotImplementedError, RuntimeError, OSError) as exc:
        raise SubmissionsError(f"{archive.name}: cannot be extracted ({exc})") from exc
    return dest


def extract_members(zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], dest: Path, archive_name: str,
                    max_bytes: int) -> None:
    budget = max_bytes  # counted while copying too: the declared sizes could lie
    for member in members:
        target = member_target(member, dest, archive_name)
        if target is None:
            continue
        if member.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(member) as src, target.open("wb") as out:
            budget -= copy_capped(src, out, budget)
        if budget < 0:
            raise SubmissionsError(f"{archive_name}: unpacks to more than {max_bytes / 2**30:.0f} GiB")


def member_target(member: zipfile.ZipInfo, dest: Path, archive_name: str) -> Path | None:
    """Where a member goes under ``dest``; None for clutter. Unsafe members refuse the archive."""
    name = member.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise SubmissionsError(f"{archive_name}: entry {member.filename!r} points outside the archive; "
                               "refusing the whole archive")
    if stat.S_ISLNK(member.external_attr >> 16):
        raise SubmissionsError(f"{archive_name}: entry {member.filename!r} is a symbolic link; "
                               "refusing the whole archive")
    if not parts or "__MACOSX" in parts:
        return None
    target = dest.joinpath(*parts).resolve()
    if not target.is_relative_to(dest):
        raise SubmissionsError(f"{archive_name}: entry {member.filename!r} points outside the archive")
    return target


def copy_capped(src, out, budget: int, chunk: int = 1 << 20) -> int:
    """Copy at most ``budget`` + 1 bytes; return how many were copied."""
    copied = 0
    while copied <= budget and (data := src.read(min(chunk, budget + 1 - copied))):
        out.write(data)
        copied += len(data)
    return copied
