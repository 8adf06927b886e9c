"""Where bytes live: .part files, per-file locks, atomic promotion, free space."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import NotEnoughSpace

if TYPE_CHECKING:
    from filelock import BaseFileLock

PART_SUFFIX = ".part"
LOCK_SUFFIX = ".lock"


def part_path(target: Path) -> Path:
    """The file that receives bytes until they are verified."""
    return target.with_name(target.name + PART_SUFFIX)


def lock_path(target: Path) -> Path:
    # Hidden, beside the target: the lock must be on the same filesystem as
    # the data (a lock in /tmp would not be seen by another machine sharing an
    # NFS data folder), and it is never removed, because removing a lock file
    # another process is waiting on lets two processes hold "the" lock.
    return target.with_name("." + target.name + LOCK_SUFFIX)


def file_lock(target: Path, timeout: float = -1) -> BaseFileLock:
    """A lock that serialises every process fetching ``target``."""
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_path(target)), timeout=timeout)


def size_or_none(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def promote(part: Path, target: Path) -> None:
    """Give verified bytes their final name, atomically."""
    # os.replace is atomic on POSIX and Windows when both names are in one
    # folder, which is why the .part lives beside its target.
    os.replace(part, target)


def discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def ensure_space(folder: Path, needed: int) -> None:
    """Refuse to start what cannot finish for lack of disk space."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed > free:
        raise NotEnoughSpace(
            f"{folder}: {_mib(needed)} needed but only {_mib(free)} free; "
            "free some space or choose another folder with --dir"
        )


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"
