"""Where bytes live: .part files, per-file locks, atomic promotion, free space."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable

from .errors import NotEnoughSpace
from .lock import FileLock

PART_SUFFIX = ".part"
LOCK_SUFFIX = ".lock"

# The folder used when none is named. One folder for every script and job
# (a cluster's shared data disk, a scratch volume) is the common wish that
# TFDS_DATA_DIR and TORCH_HOME serve elsewhere; without it, ./data as the
# original script had.
DATA_ENV = "KMNIST_DATA"
DEFAULT_DATA = "data"


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """``root`` when given, else ``$KMNIST_DATA``, else ``data`` in the working folder."""
    if root is not None:
        return Path(root)
    env = os.environ.get(DATA_ENV, "").strip()
    return Path(env).expanduser() if env else Path(DEFAULT_DATA)


def part_path(target: Path) -> Path:
    """The file that receives bytes until they are verified."""
    return target.with_name(target.name + PART_SUFFIX)


META_DIR = ".kmnist"


def meta_path(target: Path, suffix: str) -> Path:
    """Bookkeeping for ``target`` (its lock, its verification stamp).

    In a hidden folder beside it: on the same filesystem as the data (a lock in
    /tmp would not be seen by another machine sharing an NFS data folder), and
    out of the way of ``ls``.
    """
    return target.parent / META_DIR / (target.name + suffix)


def lock_path(target: Path) -> Path:
    # Never removed: removing a lock file that another process is waiting on
    # lets two processes hold "the" lock.
    return meta_path(target, LOCK_SUFFIX)


def file_lock(target: Path, cancelled: Callable[[], bool] | None = None) -> FileLock:
    """A lock that serialises every process fetching ``target``.

    A wait for it ends (``InterruptedError``) once ``cancelled()`` is true.
    """
    lock = lock_path(target)
    lock.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(lock, cancelled)


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


# -- verification stamps ------------------------------------------------------
# Hashing the full set again takes longer than the rest of a re-run together.
# After a file is verified, its size, mtime and inode are recorded with what it
# was checked against; while all of these still match, it is not hashed again
# (as make trusts mtimes). Anything that rewrites the file changes its mtime.
# ``kmnist-download --verify`` always hashes.

STAMP_SUFFIX = ".verified"


def write_stamp(target: Path, expect: str) -> None:
    st = target.stat()
    path = meta_path(target, STAMP_SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(
        json.dumps(
            {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino, "expect": expect}
        )
    )
    os.replace(tmp, path)


def has_stamp(target: Path, expect: str) -> bool:
    try:
        stamp = json.loads(meta_path(target, STAMP_SUFFIX).read_text())
        st = target.stat()
    except (OSError, ValueError):
        return False
    return bool(
        stamp.get("expect") == expect
        and stamp.get("size") == st.st_size
        and stamp.get("mtime_ns") == st.st_mtime_ns
        and stamp.get("ino") == st.st_ino
    )
