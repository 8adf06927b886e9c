"""Open kmnist's own files in a data folder without following symbolic links.

A data folder may be shared (a cluster's data disk, a group's scratch
volume): anyone who can write there can plant ``x.part -> ~victim/.bashrc``.
Every file kmnist writes in the folder (``.part``, range records, locks,
stamps) is therefore opened with ``O_NOFOLLOW``, and must turn out to be a
regular file: a link is refused with :class:`UnsafePath`, and its target is
never opened. One opened to be written must have no other hard link either
(``ln ~victim/file x.part`` is another name for the victim's bytes).
Replacing files (stamps, range records) go through a fresh temporary name
created with ``O_EXCL`` and ``os.replace``, which replaces a link (symbolic or
hard) at the final name with a regular file and leaves the other name alone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, cast

from ..errors import UnsafePath
from ..signals import deferred

# O_NOFOLLOW is POSIX; Windows has no symlinks an unprivileged user can
# plant in a folder, and no flag for it.
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# A planted FIFO would block an open for writing until someone reads it.
NONBLOCK = getattr(os, "O_NONBLOCK", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)

_MODES = {
    "rb": os.O_RDONLY,
    "r+b": os.O_RDWR,
    "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
}


def refuse_link(path: Path, what: str = "file") -> UnsafePath:
    """The error for a link (or other non-file) where kmnist keeps its own ``what``."""
    try:
        target = os.readlink(path)
    except OSError:
        return UnsafePath(
            f"{path}: refused: this {what} is not a regular file; "
            "kmnist only writes regular files in its folder: remove it and run again"
        )
    return UnsafePath(
        f"{path}: refused: this {what} is a symbolic link (to {target}); kmnist never "
        "writes through a link in its folder, and left the link and its target as they "
        "are: remove the link and run again"
    )


def open_fd(
    path: Path, flags: int, *, what: str = "file", mode: int = 0o644, one_name: bool = False
) -> int:
    """``os.open`` that refuses a symbolic link or anything but a regular file.

    ``one_name``: also refuse a file with another hard link, for a file whose
    bytes are written (a lock's never are).
    """
    # Truncation is done after the regular-file check: O_TRUNC on a planted
    # FIFO or device is not what we mean to do to it.
    trunc = flags & os.O_TRUNC
    try:
        fd = os.open(path, (flags & ~os.O_TRUNC) | NOFOLLOW | NONBLOCK | CLOEXEC, mode)
    except OSError as exc:
        # Linux says ELOOP for a link under O_NOFOLLOW, FreeBSD EMLINK.
        if exc.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):
            raise refuse_link(path, what) from None
        # A socket cannot be opened at all (ENXIO, "No such device or
        # address", said of a file the user can see): named as what it is.
        if (
            exc.errno in (errno.ENXIO, errno.EOPNOTSUPP)
            and os.path.lexists(path)
            and not is_regular(path)
        ):
            raise refuse_link(path, what) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise refuse_link(path, what)
        if one_name and st.st_nlink > 1:
            # A hard link is another name for the same bytes, possibly outside
            # the folder (ln ~victim/file x.part, where fs.protected_hardlinks is
            # off): writing here writes there. A .part found so is dropped
            # before the fetch (layout.check_part); one linked since is refused.
            raise UnsafePath(
                f"{path}: refused: this {what} has {st.st_nlink - 1} other hard link(s); "
                "kmnist never writes into a file another name shares: remove it and run again"
            )
        if NONBLOCK:
            os.set_blocking(fd, True)
        if trunc:
            os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file(path: Path, mode: str, *, buffering: int = -1, what: str = "file") -> BinaryIO:
    """``open(path, mode)`` for binary ``mode`` in rb, r+b, wb, ab, without following links."""
    fd = open_fd(path, _MODES[mode], what=what, one_name=mode != "rb")
    return cast(BinaryIO, os.fdopen(fd, mode, buffering=buffering))


# Records and stamps are a few KB at most: a planted file of GBs in their
# place is not read into memory to find that out.
MAX_TEXT = 1 << 20


def read_text(path: Path) -> str:
    """A small file's text; a link is refused (``UnsafePath`` is an error, not an OSError).

    ValueError for one over MAX_TEXT bytes or not UTF-8, as for text that is no record.
    """
    with open_file(path, "rb") as fh:
        data = fh.read(MAX_TEXT + 1)
    if len(data) > MAX_TEXT:
        raise ValueError(f"{path}: over {MAX_TEXT:,} bytes, no record of ours")
    return data.decode()


def is_regular(path: Path) -> bool:
    """True when ``path`` itself (not what a link points to) is a regular file."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def replace_text(path: Path, text: str) -> None:
    """Write ``path`` atomically: a crash or a full disk leaves the old file or the new one.

    The temporary file is ``<name>.<pid>.<random>`` beside it, created with
    O_EXCL (so never a planted file or link), and removed on any failure, so
    a full disk leaves nothing behind. The rename replaces a link at ``path``
    by a regular file; the link's target is not touched.
    """
    clear_leftovers(path)
    # A signal must not land between creating the temporary file and owning
    # its removal (see kmnist.signals.deferred).
    with deferred():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.{os.getpid()}.")
        try:
            if hasattr(os, "fchmod"):
                # mkstemp makes 0600; others sharing the folder may read it, as
                # they could the files written before (the rename needs no more).
                os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(text.encode())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def clear_leftovers(path: Path) -> None:
    """Remove ``<name>.<pid>.<random>`` temporaries of ``path`` left by dead processes.

    A process killed (SIGKILL, the OOM killer) between mkstemp and the rename
    leaves one, which nothing else ever removes. Only those whose pid is not
    running, this process's own included: a live process may be about to
    rename its own. That makes it safe without the file's lock, which range
    records are written under and stamps not always (a plan records what it
    checked): a dead process writes nothing. A pid is this machine's only: on
    a folder shared over NFS, another machine's stamp may lose its temporary,
    which costs that machine one hash later (write_stamp gives up quietly).
    """
    # mkstemp's random part: 8 of "a-z0-9_" (tempfile._RandomNameSequence).
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)\.[a-z0-9_]{8}")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        m = pattern.fullmatch(name)
        if m is not None and not _alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(path.parent / name)


def _alive(pid: int) -> bool:
    if sys.platform == "win32":
        return True  # os.kill there terminates the process, whatever the signal: not asked
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OverflowError, OSError):
        return True  # another user's process (EPERM), or no pid we can ask about: kept
    return True


def safe_dir(path: Path, *, what: str = "folder") -> Path:
    """Create kmnist's own folder ``path`` (one level), refusing a link in its place."""
    with contextlib.suppress(FileExistsError):
        path.mkdir()
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise refuse_link(path, what)
    if not stat.S_ISDIR(st.st_mode):
        # Not refuse_link's words: "is not a regular file" is upside down for a folder.
        kind = "a file" if stat.S_ISREG(st.st_mode) else "a FIFO, socket or device"
        raise UnsafePath(
            f"{path}: refused: this {what} is {kind}, not a folder: remove it and run again"
        )
    return path
