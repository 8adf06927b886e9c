"""Where bytes live: .part files, per-file locks, atomic promotion, free space."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable

from ..errors import NotEnoughSpace, UnsafePath
from . import safeopen
from .lock import FileLock

if TYPE_CHECKING:
    from ..catalogue.manifest import RemoteFile

PART_SUFFIX = ".part"
LOCK_SUFFIX = ".lock"


def part_path(target: Path) -> Path:
    """The file that receives bytes until they are verified."""
    return target.with_name(target.name + PART_SUFFIX)


META_DIR = ".kmnist"


def meta_dir(target: Path) -> Path:
    """The bookkeeping folder beside ``target``, created; a link in its place is refused."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return safeopen.safe_dir(target.parent / META_DIR, what="bookkeeping folder")


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
    meta_dir(target)
    return FileLock(lock_path(target), cancelled)


def check_lock(target: Path, name: str | None = None) -> None:
    """Raise LocalFileError if this process held ``target``'s lock and it was taken away.

    A no-op when this process does not hold it (a plan, a caller without locks).
    ``name``: the file as the run's other lines name it (its catalogue path).
    """
    from .lock import held

    lock = held(lock_path(target))
    if lock is not None and lock.lost():
        from ..errors import LocalFileError

        raise LocalFileError(
            str(target) if name is None else name,
            f"its lock {lock.path} was removed or replaced while this process held it, so "
            "another process may be writing the same .part: this one stopped writing it; "
            "leave kmnist's .kmnist folders alone while it runs, and run the same command again",
        )


def size_or_none(path: Path) -> int | None:
    """The size of a regular file at ``path``; None when there is none.

    A link (or a FIFO, a device) where a .part belongs holds no bytes of ours:
    it counts as absent, and writing the .part later refuses it. Nor does a
    file with another hard link: its bytes are another name's too, and the
    fetch drops this name before it writes (:func:`check_part`).
    """
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) and st.st_nlink == 1 else None


def check_part(path: Path) -> None:
    """Make ``path`` safe to fill: refuse a link or a FIFO (UnsafePath), drop a hard link."""
    if os.path.lexists(path) and not safeopen.is_regular(path):
        raise safeopen.refuse_link(path, ".part file")
    _drop_shared(path)


def _drop_shared(path: Path) -> None:
    """Remove the name ``path`` if it is a regular file with another hard link.

    Written through, such a .part writes into the other name's file, which
    may be outside the data folder (``ln ~victim/file x.part``). Dropped
    rather than refused, as a symbolic link is: a hard link is also what a
    snapshot of the folder makes of every file (``cp -al``, ``rsync
    --link-dest``), a .part mid-download included; the name is ours, removing
    it leaves the other name's bytes as they are, and the fetch starts afresh.
    A hard link planted after this is still refused by ``safeopen.open_fd``.
    """
    with contextlib.suppress(OSError):  # gone, or not ours to remove: open_fd refuses it
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            path.unlink()


def open_part(path: Path, mode: str, *, buffering: int = -1) -> BinaryIO:
    """Open a .part (mode rb, r+b, wb or ab) without following a link planted in its place."""
    if mode != "rb":
        path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "wb":
        _drop_shared(path)  # an empty file is asked for: a fresh one is that
    return safeopen.open_file(path, mode, buffering=buffering, what=".part file")


def promote(part: Path, target: Path) -> None:
    """Give verified bytes their final name, atomically.

    A link at the final name is replaced by the file (the link's target is
    not touched); a .part that is not a regular file is never promoted.
    """
    if not safeopen.is_regular(part):
        raise safeopen.refuse_link(part, ".part file")
    check_lock(target)  # another process may be writing this .part: never promoted
    # os.replace is atomic on POSIX and Windows when both names are in one
    # folder, which is why the .part lives beside its target.
    try:
        os.replace(part, target)
    except OSError as exc:
        if os.path.isdir(target) and not os.path.islink(target):
            # The system's error names the .part, which is whole and kept: the
            # folder at the final name is what the user has to remove.
            raise IsADirectoryError(
                errno.EISDIR,
                "is a folder, where the verified file goes: remove it and run again",
                str(target),
            ) from exc
        raise


def discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def ensure_space(folder: Path, needed: int) -> None:
    """Refuse to start what cannot finish for lack of disk space (or of a writable folder)."""
    from .folders import check_writable

    if needed <= 0:
        return
    probe = check_writable(folder)
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
# After a file is verified, what the filesystem says of it is recorded with
# what it was checked against; while all of it still matches, it is not hashed
# again (as make trusts mtimes, but stricter). The record holds size and mtime,
# which an in-place edit can restore (``touch -r``, ``os.utime``), and also
# st_ctime_ns, st_dev and st_ino, which it cannot: any write, chmod or utime
# sets ctime to "now", and a file put in its place has another inode.
# What a stamp cannot vouch for: bytes changed beneath the filesystem (bit rot,
# a raw write to the device, a restored disk image or a clock set back by root
# so that ctime comes out equal), and filesystems that do not keep ctime (some
# FUSE and SMB mounts report 0 or the mtime). ``kmnist-download --verify`` and
# ``kmnist.load`` always hash.

STAMP_SUFFIX = ".verified"


def _figures(st: os.stat_result) -> dict[str, int]:
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "dev": st.st_dev,
        "ino": st.st_ino,
    }


def write_stamp(target: Path, expect: str, *, as_seen: os.stat_result | None = None) -> bool:
    """Record that ``target`` was verified against ``expect``. False when it could not be.

    A stamp only spares a later hash: in a folder kmnist may read but not
    write (a read-only copy of the data), verification still holds without it.
    ``as_seen``: the file as it was when it was hashed; no stamp if it changed since.
    """
    try:
        st = target.stat()
        if as_seen is not None and _figures(st) != _figures(as_seen):
            return False
        path = meta_dir(target) / (target.name + STAMP_SUFFIX)
        safeopen.replace_text(path, json.dumps({**_figures(st), "expect": expect}))
    except (OSError, UnsafePath):
        return False
    return True


def has_stamp(target: Path, expect: str) -> bool:
    if os.path.islink(target.parent / META_DIR):
        return False  # a stamp read through a planted folder vouches for nothing
    try:
        stamp = json.loads(safeopen.read_text(meta_path(target, STAMP_SUFFIX)))
        st = target.stat()
    except (OSError, ValueError, RecursionError, UnsafePath):
        return False  # no stamp, an unreadable one (nested past the limit), or a link: hash again
    return bool(
        isinstance(stamp, dict)
        and stamp.get("expect") == expect
        and all(stamp.get(k) == v for k, v in _figures(st).items())
    )


def check_folders_between(root: Path, target: Path) -> None:
    """UsageError when a folder of the layout (``<root>/kmnist``) is there as a file.

    A dry run planned "fetch" into it, a run failed as a whole on the first
    file's folder telling the user to choose another --dir (the other
    datasets' files not fetched either), and ``load`` said "missing, pass
    download=True": the file is what to remove.
    """
    from ..errors import UsageError
    from ..inputs import not_a_folder

    for folder in reversed(target.parents):
        if folder == root or root not in folder.parents:
            continue
        kind = not_a_folder(folder)
        if kind is not None:
            raise UsageError(
                f"{folder} is {kind}, not a folder: the {folder.relative_to(root).as_posix()}"
                " files go in it; remove it, or choose another data folder"
            )


def local_path(root: Path, file: RemoteFile) -> Path:
    """Where a catalogued file is below ``root``.

    ``<root>/<dataset>/<name>`` is the layout of this package and of the
    official host; the original ``download_data.py`` left the files flat in
    one folder, so ``<root>/<name>`` is looked at too. The former when
    neither is there. A file flat beats a ``.part`` nested: an interrupted
    run beside a whole file (``--flat`` once, nested once) made
    ``kmnist.load`` say "missing" of a verified file.
    """
    nested = root / file.path
    flat = root / file.name
    if nested.exists() or not flat.exists():
        return nested
    if part_path(nested).exists() and not flat.is_file():
        return nested  # a folder or a pipe flat is no file to take instead
    return flat
