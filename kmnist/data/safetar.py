"""Unpack a tar archive without trusting it.

Before a single byte is written every member is checked: a relative path
without ``..``; a regular file or a directory, nothing else (no symbolic or
hard links, devices or FIFOs); optionally, inside one top folder; and
nothing that would land outside the target once existing symlinks there are
resolved. Then tarfile's own ``data`` filter extracts it, where this Python
has one, as a second line of defence; where it has not, the checks above
are the equivalent, and metadata is cleaned as that filter would.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import DiskFull, NotEnoughSpace, UnsafeArchive, VerificationError

if TYPE_CHECKING:
    import tarfile
    from collections.abc import Callable, Iterable, Sequence

_T = TypeVar("_T")


# The published archive's members are kkanji2/U+XXXX/<id>.png: 3 parts, under
# 40 bytes. These limits are far above that and below what fails mid-way with
# an error naming no member: os.makedirs recurses once per part (Python stops
# at 1,000 frames), Linux refuses a path over 4,096 bytes (the hidden staging
# folder and the data folder come before the member's), and most file systems
# a name over 255 bytes.
MAX_PARTS = 32
MAX_PATH_BYTES = 1024
MAX_NAME_BYTES = 255


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a member may not be unpacked, or None when it is a plain file or folder inside."""
    name = member.name
    if not name or "\0" in name:
        return f"{_shown(repr(name))}: empty or invalid name"
    shown = _shown(name)
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).anchor:
        return f"{shown}: absolute path"
    if ".." in PurePosixPath(name).parts or ".." in PureWindowsPath(name).parts:
        return f"{shown}: '..' in path"
    too_long = _too_long(name)
    if too_long:
        return f"{shown}: {too_long}"
    if member.issym():
        return f"{shown}: symbolic link to {_shown(member.linkname)}"
    if member.islnk():
        return f"{shown}: hard link to {_shown(member.linkname)}"
    if member.ischr() or member.isblk():
        return f"{shown}: device file"
    if member.isfifo():
        return f"{shown}: FIFO"
    if not (member.isreg() or member.isdir()):
        return f"{shown}: not a regular file or folder (type {member.type!r})"
    return None


def _too_long(name: str) -> str | None:
    """Why ``name`` is too deep or too long to unpack (see MAX_PARTS), or None."""
    parts = PurePosixPath(name).parts
    if len(parts) > MAX_PARTS:
        return f"{len(parts):,} parts deep (at most {MAX_PARTS})"
    try:
        # The bytes os functions will be given: what the limits are in.
        size = len(os.fsencode(name))
    except UnicodeEncodeError:
        return "a name this system's file names cannot spell"
    if size > MAX_PATH_BYTES:
        return f"a path of {size:,} bytes (at most {MAX_PATH_BYTES:,})"
    longest = max((len(os.fsencode(part)) for part in parts), default=0)
    if longest > MAX_NAME_BYTES:
        return f"a name of {longest:,} bytes in it (at most {MAX_NAME_BYTES})"
    return None


def _shown(name: str) -> str:
    """``name``, cut short when long: a refusal should not print 4,000 characters of it."""
    return name if len(name) <= 80 else f"{name[:50]}...{name[-25:]}"


def _outside(dest: Path, members: Iterable[tarfile.TarInfo]) -> list[str]:
    """Members whose target, with existing symlinks in ``dest`` resolved, is not inside it."""
    base = os.path.realpath(dest)
    problems = []
    for m in members:
        target = os.path.realpath(os.path.join(base, m.name))
        if os.path.commonpath([base, target]) != base:
            problems.append(f"{m.name}: would land outside {dest} (at {target})")
    return problems


def _plain(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """What the ``data`` filter does to metadata: no setuid or group/other write, our owner.

    Without it, a root process would chown every file to the archive's owners.
    """
    executable = member.isdir() or member.mode & 0o100
    member.mode = 0o755 if executable else 0o644
    if hasattr(os, "getuid"):  # POSIX; Windows has no owners to set
        member.uid, member.gid = os.getuid(), os.getgid()
    member.uname = member.gname = ""
    return member


def _not_under(top: str, members: Iterable[tarfile.TarInfo]) -> list[str]:
    problems = []
    for m in members:
        name = m.name[2:] if m.name.startswith("./") else m.name
        if name not in (".", "", top, top + "/") and not name.startswith(top + "/"):
            problems.append(f"{m.name}: outside {top}/")
    return problems


def safe_extract(
    archive: str | Path,
    *,
    dest: str | Path,
    top: str | None = None,
    record: Callable[[Sequence[tarfile.TarInfo]], None] | None = None,
) -> int:
    """Unpack ``archive`` into ``dest`` after checking every member; return how many.

    Raises :class:`UnsafeArchive` listing the refused members, before anything
    is written, when any member breaks the rules in this module's docstring,
    or, with ``top``, is not inside the folder of that name. The members are
    unpacked into a hidden folder in ``dest`` and each top-level entry is
    moved into place only once all are out, so an interrupted or failed run
    never leaves half a folder under the final name; an entry that was
    already there is replaced, which is why ``top`` matters: without it an
    archive could replace any folder beside it.

    ``record``, when given, is called with the members once all are out and
    before the first moves into place: what it writes (an index of the
    members) exists before the folder it describes, so no run, however
    interrupted, leaves that folder without it.
    """
    import shutil
    import tarfile
    import tempfile

    broken: tuple[type[BaseException], ...] = (tarfile.TarError, EOFError, *_stream_errors())
    dest = Path(dest)
    full: _Full | None = None
    members: list[tarfile.TarInfo] = []
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            problems = [p for p in map(member_problem, members) if p]
            problems += _not_under(top, members) if top else []
            problems = problems or _outside(dest, members)
            if problems:
                raise UnsafeArchive(str(archive), problems)
            full = _Full(dest, top)
            full.watch(dest.mkdir, parents=True, exist_ok=True)
            staging = Path(full.watch(tempfile.mkdtemp, prefix=".unpacking-", dir=dest))
            try:
                try:
                    if hasattr(tarfile, "data_filter"):  # 3.12; security releases of 3.8 to 3.11
                        tf.extractall(staging, members=members, filter="data")
                    else:  # the checks above are the equivalent: plain files and folders, inside
                        tf.extractall(staging, members=[_plain(m) for m in members])
                except OSError as exc:
                    full.seen(exc)
                    clash = _clash(archive, staging, exc)
                    if clash is None:
                        raise
                    raise clash from None
                _read_to_the_end(tf)
                if record is not None:
                    full.watch(record, members)
                for entry in sorted(staging.iterdir()):
                    _move_into_place(entry, dest / entry.name)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except broken as exc:
        raise unreadable(archive, exc) from None
    except OSError as exc:
        if exc.errno is None:  # a decompressor's (bz2's "Invalid data stream"), not the disk's
            raise unreadable(archive, exc) from None
        error = full.error(archive, exc, members) if full is not None else None
        if error is None:
            raise
        raise error from exc
    return len(members)


class _Full:
    """Whether an unpacking failed for a full disk, or for want of inodes, said once it is over.

    Inodes are counted when the write fails: once the hidden staging folder
    is removed they are free again, and the disk would read as merely full
    (it said "disk full" of a file system with bytes to spare).
    """

    def __init__(self, dest: Path, top: str | None) -> None:
        self.dest = dest
        self.top = top
        self.inodes = False

    def seen(self, exc: OSError) -> None:
        from ..storage.folders import out_of_inodes

        if exc.errno == errno.ENOSPC and out_of_inodes(self.dest):
            self.inodes = True

    def watch(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        try:
            return fn(*args, **kwargs)
        except OSError as exc:
            self.seen(exc)
            raise

    def error(
        self, archive: str | Path, exc: OSError, members: Sequence[tarfile.TarInfo]
    ) -> DiskFull | None:
        """One DiskFull naming the folder and the archive; None for any other OSError."""
        from ..storage.folders import FULL_CAUSES, free_bytes

        if exc.errno not in FULL_CAUSES:
            return None
        folder = self.dest / self.top if self.top else self.dest
        free = free_bytes(self.dest)  # the staging folder is gone: its bytes are free again
        if self.inodes:
            why, remedy, more = (
                "the file system has no free inodes (file entries)",
                "delete some files",
                None,
            )
        else:
            size = sum(m.size for m in members if m.isreg())
            why, remedy = FULL_CAUSES[exc.errno], "free some space"
            more = size - free if free is not None and size > free else None
        return UnpackingDiskFull(str(folder), str(archive), more, free, why, remedy)


class UnpackingDiskFull(DiskFull):
    """DiskFull said of an unpacking: nothing of it is kept, so a rerun starts it over."""

    def __init__(
        self, path: str, archive: str, needed: int | None, free: int | None, why: str, remedy: str
    ) -> None:
        self._set(path, needed, free)
        NotEnoughSpace.__init__(
            self,
            f"{path}: {why} while unpacking {archive} into it ({self.figures()}); nothing of "
            f"it was kept: {remedy} or choose another folder with --dir, then run again",
        )


def _stream_errors() -> tuple[type[Exception], ...]:
    """What the decompressors raise of a broken stream, past tarfile's wrapping.

    tarfile turns a stream it cannot start into a ReadError, but a stream
    broken after its first members reaches the caller as the decompressor's
    own error (``zlib.error``, ``_lzma.LZMAError``); gzip's and bz2's are
    OSErrors without an errno, told apart from the disk's by that. Imported
    here, not at the top: only an unpacking needs them, and a Python built
    without lzma has none to raise.
    """
    import zlib

    errors: list[type[Exception]] = [zlib.error]
    try:
        import lzma
    except ImportError:  # pragma: no cover - a Python without _lzma
        pass
    else:
        errors.append(lzma.LZMAError)
    return tuple(errors)


def _read_to_the_end(tf: tarfile.TarFile) -> None:
    """Read a compressed archive's stream to its end, where its last check is.

    tarfile stops at the archive's end-of-archive blocks, before gzip's
    trailer: a deflate stream with flipped bits decodes to other bytes
    without an error, and only the CRC-32 at the end says so (``tar xzf``
    reads on and says "crc error"; this unpacked the wrong bytes as if they
    were the archive's). xz and bz2 check each block, the last one at its
    end. In 1 MiB reads, so a long tail costs time, never memory.
    """
    stream = tf.fileobj
    if stream is None or type(stream).__module__ not in ("gzip", "bz2", "lzma"):
        return  # a plain tar: nothing past its end vouches for what came before
    while stream.read(1 << 20):
        pass


def unreadable(archive: str | Path, exc: BaseException) -> VerificationError:
    """The error for an archive tarfile cannot read, in one line.

    Opened with ``r:*``, tarfile says what each compression it tried said, a
    line each (``- method gz: ReadError('not a gzip file')``); an error
    message is one line, so they are joined.
    """
    head, *tried = str(exc).splitlines() or [""]
    got = f"{head.rstrip(':')} ({'; '.join(t.lstrip('- ') for t in tried)})" if tried else head
    return VerificationError(str(archive), "disk", "structure", "a complete tar archive", got)


# Errors two members cause between them, found only while unpacking: no member
# is wrong alone. Said as a refusal naming the member (tarfile names the path
# in the hidden staging folder, which means nothing to the user).
_CLASHES = {
    errno.EISDIR: "a file where the archive has a folder of that name",
    errno.EEXIST: "a folder where the archive has a file of that name",
    errno.ENOTDIR: "below a member that is a file, not a folder",
}


def _clash(archive: str | Path, staging: Path, exc: OSError) -> UnsafeArchive | None:
    """``exc`` as a refusal naming the member, when two members clashed; None for other errors."""
    reason = _CLASHES.get(exc.errno or 0)
    if reason is None or not isinstance(exc.filename, str):
        return None
    member = os.path.relpath(exc.filename, staging)
    if member.startswith(".."):  # not one of the archive's paths
        return None
    return UnsafeArchive(str(archive), [f"{_shown(Path(member).as_posix())}: {reason}"])


def _move_into_place(new: Path, target: Path) -> None:
    """Put ``new`` at ``target`` (same file system), replacing what was there."""
    import shutil

    if not os.path.lexists(target):
        os.replace(new, target)
        return
    old = target.with_name(f".{target.name}.replaced-{os.getpid()}")
    os.replace(target, old)
    os.replace(new, target)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    else:
        old.unlink()
