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
from typing import TYPE_CHECKING

from ..errors import NotEnoughSpace, UnsafeArchive, VerificationError

if TYPE_CHECKING:
    import tarfile
    from collections.abc import Callable, Iterable, Sequence


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a member may not be unpacked, or None when it is a plain file or folder inside."""
    name = member.name
    if not name or "\0" in name:
        return f"{name!r}: empty or invalid name"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).anchor:
        return f"{name}: absolute path"
    if ".." in PurePosixPath(name).parts or ".." in PureWindowsPath(name).parts:
        return f"{name}: '..' in path"
    if member.issym():
        return f"{name}: symbolic link to {member.linkname}"
    if member.islnk():
        return f"{name}: hard link to {member.linkname}"
    if member.ischr() or member.isblk():
        return f"{name}: device file"
    if member.isfifo():
        return f"{name}: FIFO"
    if not (member.isreg() or member.isdir()):
        return f"{name}: not a regular file or folder (type {member.type!r})"
    return None


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

    dest = Path(dest)
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            problems = [p for p in map(member_problem, members) if p]
            problems += _not_under(top, members) if top else []
            problems = problems or _outside(dest, members)
            if problems:
                raise UnsafeArchive(str(archive), problems)
            dest.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=dest))
            try:
                if hasattr(tarfile, "data_filter"):  # 3.12; security releases of 3.8 to 3.11
                    tf.extractall(staging, members=members, filter="data")
                else:  # the checks above are the equivalent: plain files and folders, inside
                    tf.extractall(staging, members=[_plain(m) for m in members])
                if record is not None:
                    record(members)
                for entry in sorted(staging.iterdir()):
                    _move_into_place(entry, dest / entry.name)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except (tarfile.TarError, EOFError) as exc:
        raise VerificationError(
            str(archive), "disk", "structure", "a complete tar archive", f"{exc}"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise NotEnoughSpace(f"{dest}: disk full while unpacking {archive}") from None
        raise
    return len(members)


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
