"""A tar archive's member index (names and sizes), kept beside its unpacked folder to check it by.

The index is the archive's own account of what it holds, so checking a
folder against it needs no published figure: every member there with the
same size, nothing missing, nothing added. Written when the archive is
unpacked, it lets a later check do without the archive (310 MB for
Kuzushiji-Kanji, which users delete once unpacked).
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..errors import UnsafePath
from .safetar import unreadable

if TYPE_CHECKING:
    import tarfile

FORMAT = 1
SUFFIX = ".members.json"


class BadIndex(Exception):
    """An index file that cannot be trusted: unreadable, a link, edited by hand."""


@dataclass(frozen=True)
class MemberIndex:
    """What an archive put below its top folder, by POSIX path relative to that folder.

    ``sha256`` is the archive's checksum when it was verified before being
    unpacked, else None; ``archive`` its file name, for messages.
    """

    files: Mapping[str, int]  # path -> size in bytes
    folders: frozenset[str]
    archive: str
    sha256: str | None = None

    @property
    def digest(self) -> str:
        """sha256 of the sorted listing: what an edit of the index file would have to keep."""
        h = hashlib.sha256()
        for name, size in sorted(self.files.items()):
            h.update(f"f\t{name}\t{size}\n".encode("utf-8", "surrogateescape"))
        for name in sorted(self.folders):
            h.update(f"d\t{name}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()

    def all_folders(self) -> frozenset[str]:
        """The folders listed, and those implied by a file's path (tars may omit them)."""
        implied = {
            "/".join(parts[:i])
            for name in self.files
            for parts in [name.split("/")]
            for i in range(1, len(parts))
        }
        return self.folders | implied


def from_members(
    members: Iterable[tarfile.TarInfo], *, top: str, archive: str, sha256: str | None = None
) -> MemberIndex:
    """The index of the members inside ``top`` (as :mod:`kmnist.data.safetar` unpacked them).

    Names are normalised as extraction does (``./`` and repeated slashes
    dropped); a name that appears twice counts once, with its last size,
    since the later member overwrote the earlier on disk.
    """
    files: dict[str, int] = {}
    folders: set[str] = set()
    for m in members:
        parts = PurePosixPath(m.name).parts
        if len(parts) < 2 or parts[0] != top:
            continue  # the top folder itself, or "." (safetar refused anything else)
        rel = "/".join(parts[1:])
        if m.isdir():
            folders.add(rel)
            files.pop(rel, None)
        else:
            files[rel] = m.size
            folders.discard(rel)
    return MemberIndex(files, frozenset(folders), archive, sha256)


def read_archive(archive: Path, *, top: str) -> MemberIndex:
    """The index of an archive on disk, from its headers alone (no member is unpacked)."""
    import tarfile

    try:
        with tarfile.open(archive, "r:*") as tf:
            return from_members(tf.getmembers(), top=top, archive=archive.name)
    except (tarfile.TarError, EOFError) as exc:
        raise unreadable(archive, exc) from None


def index_path(folder: Path) -> Path:
    """Where the index of ``folder`` is kept: with the package's other bookkeeping beside it."""
    from ..storage.layout import meta_path

    return meta_path(folder, SUFFIX)


def write_index(path: Path, index: MemberIndex) -> None:
    """Write ``index`` to ``path`` atomically, never through a symbolic link."""
    doc = {
        "format": FORMAT,
        "archive": index.archive,
        "sha256": index.sha256,
        "digest": index.digest,
        "folders": sorted(index.folders),
        "files": sorted(index.files.items()),
    }
    # Compact: 140,000 members make about 4 MB this way, twice that indented.
    text = json.dumps(doc, separators=(",", ":"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # left by a killed run of this pid; O_EXCL below needs it gone
    # O_EXCL refuses a name that exists, a symbolic link included; os.replace
    # then swaps the name itself, never what a link there points to.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_index(path: Path) -> MemberIndex:
    """The index written by :func:`write_index`. Raises FileNotFoundError or :class:`BadIndex`."""
    from ..storage.safeopen import open_fd

    if path.is_symlink():  # open_fd refuses it too, where the system has O_NOFOLLOW
        raise BadIndex(f"{path} is a symbolic link")
    try:
        # Not a plain os.open: a FIFO planted here would block the check
        # (--verify, --extract) forever, and a folder fails only when read.
        fd = open_fd(path, os.O_RDONLY, what="member index")
    except FileNotFoundError:
        raise
    except UnsafePath:
        raise BadIndex(f"{path} is not a regular file") from None
    except OSError as exc:
        raise BadIndex(f"{path}: {exc.strerror}") from None
    with os.fdopen(fd, encoding="utf-8", errors="surrogateescape") as f:
        text = f.read()
    try:
        doc = json.loads(text)
        if doc["format"] != FORMAT:
            raise BadIndex(f"{path}: format {doc['format']!r}, this kmnist reads {FORMAT}")
        files = {str(name): int(size) for name, size in doc["files"]}
        index = MemberIndex(
            files, frozenset(map(str, doc["folders"])), str(doc["archive"]), doc["sha256"]
        )
        recorded = doc["digest"]
    # OverflowError: int(1e400); RecursionError: [[[...]]] nested past Python's limit.
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:
        raise BadIndex(f"{path}: not an index this kmnist wrote ({type(exc).__name__})") from None
    if recorded != index.digest:
        raise BadIndex(f"{path}: its listing does not match its own digest (edited?)")
    return index


class Kind(enum.Enum):
    FILE = "a file"
    FOLDER = "a folder"
    OTHER = "neither file nor folder"  # a symbolic link, a FIFO: no archive member is


@dataclass(frozen=True)
class Found:
    """What a folder holds, by POSIX path relative to it; links are listed, never followed."""

    files: Mapping[str, int]
    folders: frozenset[str]
    others: Mapping[str, str] = field(default_factory=dict)  # path -> what it is

    def kind(self, name: str) -> Kind | None:
        if name in self.files:
            return Kind.FILE
        if name in self.folders:
            return Kind.FOLDER
        return Kind.OTHER if name in self.others else None


def scan(folder: Path) -> Found:
    """Every entry below ``folder``, with file sizes; symbolic links are entries, not followed."""
    files: dict[str, int] = {}
    folders: set[str] = set()
    others: dict[str, str] = {}
    todo = [("", folder)]
    # Bounded: each folder is visited once, and links are never followed.
    while todo:
        prefix, path = todo.pop()
        with os.scandir(path) as it:
            entries = list(it)
        for e in entries:
            rel = prefix + e.name
            if e.is_symlink():
                others[rel] = f"a symbolic link to {os.readlink(e.path)}"
            elif e.is_dir(follow_symlinks=False):
                folders.add(rel)
                todo.append((rel + "/", Path(e.path)))
            elif e.is_file(follow_symlinks=False):
                files[rel] = e.stat(follow_symlinks=False).st_size
            else:
                others[rel] = "a device, FIFO or socket"
    return Found(files, frozenset(folders), others)


@dataclass(frozen=True)
class Differences:
    """How a folder differs from an archive's index; each list sorted by path."""

    missing: tuple[str, ...] = ()  # in the archive, not in the folder
    resized: tuple[str, ...] = ()  # "path: N bytes in the archive, M here"
    retyped: tuple[str, ...] = ()  # "path: a file in the archive, a folder here"
    added: tuple[str, ...] = ()  # in the folder, not in the archive

    @property
    def none(self) -> bool:
        return not (self.missing or self.resized or self.retyped or self.added)


def compare(index: MemberIndex, found: Found) -> Differences:
    """Name by name: what the archive has that the folder lacks, and the reverse."""
    folders = index.all_folders()
    missing, resized, retyped = [], [], []
    for name in sorted([*index.files, *folders]):
        want = Kind.FILE if name in index.files else Kind.FOLDER
        got = found.kind(name)
        if got is None:
            missing.append(name)
        elif got is not want:
            what = found.others.get(name, got.value)
            retyped.append(f"{name}: {want.value} in the archive, {what} here")
        elif want is Kind.FILE and found.files[name] != index.files[name]:
            resized.append(
                f"{name}: {index.files[name]:,} bytes in the archive, {found.files[name]:,} here"
            )
    added = sorted(
        n
        for n in [*found.files, *found.folders, *found.others]
        if n not in index.files and n not in folders
    )
    return Differences(tuple(missing), tuple(resized), tuple(retyped), tuple(added))
