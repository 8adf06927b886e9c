"""Why a data folder cannot be used, in words: read-only, not ours to write, not a folder, no disk.

An ``OSError`` from the disk says ``[Errno 30] Read-only file system: '...'``;
:func:`explain` turns it into one line that names the folder, the cause and
what to do. :func:`check_writable` asks before a download starts, so that no
mirror is contacted for bytes that could not be kept.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import DiskFull, FolderError

_CHOOSE = "choose another folder with --dir (or $KMNIST_DATA)"

# What to say for each errno a folder gives; the rest keep the system's words.
_CAUSES: dict[int, tuple[str, str]] = {
    errno.EROFS: ("is on a read-only filesystem", _CHOOSE),
    errno.EACCES: (
        "is not writable by this user (permission denied)",
        f"ask its owner for write access, or {_CHOOSE}",
    ),
    errno.EPERM: ("cannot be written (operation not permitted)", _CHOOSE),
    errno.ENOTDIR: ("is not a folder (it, or a folder above it, is a file)", _CHOOSE),
    errno.ENOSPC: (
        "is on a full disk (no space left on device)",
        f"free some space and run again (the .part files are kept for resume), or {_CHOOSE}",
    ),
    errno.EDQUOT: (
        "is over its disk quota",
        f"free some space and run again (the .part files are kept for resume), or {_CHOOSE}",
    ),
    errno.ENAMETOOLONG: ("has a name too long for its filesystem", "choose a shorter path"),
    errno.ELOOP: ("goes through too many symbolic links", "choose a folder without a link loop"),
    # A folder at a name kmnist writes or reads as a file (a final name, a
    # .part, a lock): the folder is what to remove, not --dir to change.
    errno.EISDIR: ("is a folder, where kmnist keeps a file", "remove it and run again"),
}


# A write beyond RLIMIT_FSIZE (Python ignores SIGXFSZ) or the filesystem's
# largest file: said of the file being written, which the error does not name.
_TOO_LARGE = (
    "is larger than this process may write (its file size limit, ulimit -f, or the "
    "largest file of its filesystem): raise the limit, or choose another folder with --dir"
)


# EMFILE: this process's limit (ulimit -n); ENFILE: the whole system's.
_TOO_MANY_OPEN = (
    "this process has as many files open as it may (its limit, ulimit -n): raise it, or run "
    "with fewer --connections and --jobs; the .part files are kept"
)
_TOO_MANY_OPEN_SYSTEM = (
    "the system has as many files open as it may (fs.file-max): close other programs and "
    "run again; the .part files are kept"
)


def named(exc: OSError) -> str | None:
    """The path :func:`explain` names for ``exc``: its own, or the folder it was to go in."""
    path = exc.filename
    if path is None or exc.errno == errno.EFBIG:
        return None if path is None else str(path)
    path = os.fsdecode(path)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and not os.path.lexists(path):
        # A name being made (a lock, a .part, a temporary folder): the folder it
        # goes in is what cannot be written, and what to name.
        return os.path.dirname(path) or path
    return path


def explain(exc: OSError) -> str:
    """One line for an OSError from the data folder: which path, why, and what to do."""
    if exc.errno == errno.EFBIG:
        return f"{exc.filename if exc.filename is not None else 'the file'} {_TOO_LARGE}"
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        # The process's (or the system's) limit, not the file it names: a
        # temporary name in "Too many open files" sent the user to that file.
        return _TOO_MANY_OPEN if exc.errno == errno.EMFILE else _TOO_MANY_OPEN_SYSTEM
    path = named(exc) or "the data folder"
    if exc.errno == errno.ENOSPC and _out_of_inodes(path):
        # Bytes free, no file entry left: "is on a full disk" sent the user
        # to free space that was there.
        return (
            f"{path} is on a file system with no free inodes (file entries): delete some "
            f"files there and run again, or {_CHOOSE}"
        )
    cause = _CAUSES.get(exc.errno or 0)
    if cause is None:
        return f"{path}: {exc.strerror or exc}"
    what, todo = cause
    return f"{path} {what}: {todo}"


# What a full disk or quota is called, by errno (a download, an unpacking).
FULL_CAUSES = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is reached"}


def disk_full(name: str, target: Path, needed: int | None, exc: OSError) -> DiskFull | None:
    """A full disk (or quota, or no inode left) while ``target`` was written, as one DiskFull.

    None for any other OSError. ``name`` is the file as the run names it;
    ``needed``, the bytes it still needs, when known.
    """
    if exc.errno not in FULL_CAUSES:
        return None
    # The nearest folder that exists: the file's own may not be made yet.
    folder = next((p for p in target.parents if p.is_dir()), target.parent)
    free = free_bytes(folder)
    if exc.errno == errno.ENOSPC and out_of_inodes(folder):
        # Bytes free, no file entry left: "0.0 MiB more needed, 17.1 MiB
        # free" said the opposite of what is wrong.
        why = "the file system has no free inodes (file entries)"
        return DiskFull(name, None, free, why, remedy="delete some files")
    return DiskFull(name, needed, free, FULL_CAUSES[exc.errno])


def _out_of_inodes(path: str) -> bool:
    return out_of_inodes(_existing(Path(path)))


def out_of_inodes(folder: Path) -> bool:
    """True when the file system of ``folder`` has bytes but no file entry left to give."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs on Windows
        return False
    # f_files 0: a file system that keeps no count (btrfs), never "out".
    return st.f_files > 0 and st.f_favail == 0


def free_bytes(folder: Path) -> int | None:
    """Bytes free on the file system of ``folder`` (or its nearest existing parent)."""
    near = next((p for p in (folder, *folder.parents) if p.is_dir()), folder)
    try:
        return shutil.disk_usage(near).free
    except OSError:
        return None


def _existing(folder: Path) -> Path:
    """The folder, or its nearest ancestor that exists (where it would be created)."""
    probe = folder
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    return probe


def _pseudo(path: Path) -> bool:
    """True for /proc, /sys and their kind: a filesystem with no blocks to store bytes in."""
    try:
        st = os.statvfs(path)
    except (OSError, AttributeError):  # no statvfs on Windows
        return False
    return st.f_blocks == 0


def check_writable(folder: Path) -> Path:
    """Make sure bytes can be written into ``folder`` (created later if missing).

    Returns the folder or the ancestor it would be created in. Raises a
    FolderError saying what is wrong and what to do.
    """
    probe = _existing(folder)
    if not probe.is_dir():
        where = "" if probe == folder else f" (so {folder} cannot be created)"
        raise FolderError(f"{probe} is not a folder{where}: {_CHOOSE}")
    if _pseudo(probe):
        raise FolderError(
            f"{folder}: {probe} is on a pseudo-filesystem (like /proc or /sys) that cannot "
            f"store files: {_CHOOSE}"
        )
    rdonly = getattr(os, "ST_RDONLY", 0)
    try:
        readonly = bool(rdonly and os.statvfs(probe).f_flag & rdonly)
    except (OSError, AttributeError):
        readonly = False
    if readonly:
        raise FolderError(f"{probe} is on a read-only filesystem: {_CHOOSE}")
    if not os.access(probe, os.W_OK | os.X_OK):
        what, todo = _CAUSES[errno.EACCES]
        raise FolderError(f"{probe} {what}: {todo}")
    return probe


def can_write_in(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` now (one is, and removed at once)."""
    # A real file answers the question; os.access does not (it says yes to
    # root, and knows nothing of read-only mounts or ACLs).
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def check_readable(folder: Path) -> None:
    """For --verify: the folder must exist and be a folder (a typo is not "all missing")."""
    if not os.path.lexists(folder):
        raise FolderError(
            f"{folder}: no such folder; check the path given with --dir (or $KMNIST_DATA)"
        )
    if not folder.is_dir():
        raise FolderError(f"{folder} is not a folder: give the data folder with --dir")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise FolderError(
            f"{folder} is not readable by this user (permission denied): ask its owner "
            "for read access"
        )
