"""Ask a folder "is my copy right?": one typed verdict per expected file, then text or JSON.

:func:`audit` only reads; :func:`render_text` and :func:`render_json` only
format. A file is ``ok`` (every published figure matches), ``missing``,
``partial`` (only an interrupted ``.part`` download is there), ``stale`` (the
bytes of an older release, recognised by hash), ``unreadable`` (the bytes
cannot be read: permissions, an I/O error) or ``corrupt`` (anything else).
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalogue import manifest
from ..catalogue.manifest import CURRENT_RELEASE, DATASETS, Entry, RemoteFile, select
from ..catalogue.names import dataset_name
from ..downloader.derive import check_derived, is_derived
from ..errors import LocalFileError, UsageError, VerificationError, one_line
from ..storage.layout import local_path, part_path
from ..storage.partfile import PartFile
from ..storage.root import data_root
from ..verify import known_stale, structure_of, verify_path

if TYPE_CHECKING:
    from collections.abc import Sequence


class Status(str, enum.Enum):
    OK = "ok"
    MISSING = "missing"
    PARTIAL = "partial"
    STALE = "stale"
    CORRUPT = "corrupt"
    # The bytes could not be read (permissions, an I/O error): nothing is
    # known of them, so they are not called corrupt.
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class FileReport:
    """The verdict on one expected file. ``path`` is relative to the audited folder."""

    path: str
    status: Status
    detail: str
    size: int | None = None  # bytes on disk: the file's, or the .part's when partial
    expected_size: int | None = None
    # Built from its MNIST-format file (no mirror had it): the published
    # array, not the published bytes, so its size is not expected_size.
    built: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status.value,
            "detail": self.detail,
            "size": self.size,
            "expected_size": self.expected_size,
            "built": self.built,
        }


def expected_entries(
    root: Path,
    datasets: Sequence[str] | None,
    format: str | None,
    split: str,
    release: str,
    catalogue: Sequence[Entry] | None = None,
) -> tuple[Entry, ...]:
    """The files to audit.

    With no dataset named: every file of ``release`` that is in the folder
    (final or ``.part``, nested or flat), and the Kanji archive's entry when
    its unpacked folder is there; nothing is "missing" then, since nothing
    was asked for. With datasets named (or ``"all"``): also the files of that
    selection that are not there, for each dataset in the formats the folder
    has begun (a group, a dataset in one format, is begun when any of its own
    files is there, or for Kuzushiji-Kanji its unpacked folder; class maps,
    shared by every format, do not count), in its default format if none.
    """
    from .kanji import kanji_paths

    # KMNIST, Kuzushiji-49: any case, or another library's name.
    named = list(dict.fromkeys(dataset_name(n, (*DATASETS, "all")) for n in datasets or ()))
    for name in named:
        if name != "all":
            select(name, format, split, release, entries=catalogue)  # UsageError names choices
    unpacked = kanji_paths(root)[1].is_dir()
    if not named:
        return tuple(
            e
            for e in (manifest.ENTRIES if catalogue is None else catalogue)
            if e.release == release
            and (format is None or e.format in (None, format))
            and (split == "all" or e.split in (None, split))
            and (_present(root, e.file) or (e.dataset == "kkanji" and unpacked))
        )
    chosen: dict[str, Entry] = {}
    for name in DATASETS if "all" in named else named:
        begun = False
        for fmt in [format] if format else DATASETS[name].formats:
            try:
                group = select(name, fmt, split, release, entries=catalogue)
            except UsageError:  # a dataset or format this release does not have
                continue
            kanji = name == "kkanji" and unpacked
            if kanji or any(e.format is not None and _present(root, e.file) for e in group):
                chosen.update((e.file.path, e) for e in group)
                begun = True
        if not begun:
            with contextlib.suppress(UsageError):  # "all": skip what the release lacks
                found = select(name, format, split, release, entries=catalogue)
                chosen.update((e.file.path, e) for e in found)
    return tuple(chosen.values())


def releases_here(
    root: Path, besides: str, catalogue: Sequence[Entry] | None = None
) -> tuple[str, ...]:
    """The other releases with a file (final or ``.part``) in ``root``: what --verify may want.

    ``--verify --dir D`` of a folder holding only the 2018 files said "nothing
    to verify (... name the folder with --dir)": the folder was named; the
    release was not.
    """
    found = {
        e.release
        for e in (manifest.ENTRIES if catalogue is None else catalogue)
        if e.release != besides and _present(root, e.file)
    }
    return tuple(sorted(found))


def _present(root: Path, file: RemoteFile) -> bool:
    path = local_path(root, file)
    return path.exists() or part_path(path).exists()


def check_file(
    root: Path, file: RemoteFile, *, catalogue: Sequence[Entry] | None = None
) -> FileReport:
    """The verdict on one file below ``root`` (nested or flat: see :func:`local_path`)."""
    path = local_path(root, file)
    rel = path.relative_to(root).as_posix()
    part = part_path(path)
    if not path.exists():
        odd = _not_ours(part)
        if odd is not None:
            # A link, a folder, a pipe or a hard link at the .part's name holds
            # no bytes of a download: it was "partial: 0 bytes" (a link) or "not
            # there" (a folder, a pipe), and a download refuses or replaces it.
            detail = f"not there; {part.name} is {odd}, not a download of ours: remove it"
            return FileReport(rel, Status.MISSING, detail, None, file.size)
        if part.is_file():
            # A ranged download allocates the .part at full size and records
            # which bytes arrived beside it; PartFile reads either kind.
            # tidy=False: an audit only reads (tidying deleted the range
            # record of a .part that is a link or a hard link).
            got = PartFile.load(path, file.size, tidy=False).have
            of = f" of {file.size:,}" if file.size else ""
            detail = f"interrupted download: {got:,}{of} bytes in {part.name}"
            on_disk = part.stat().st_size
            if file.size is not None and on_disk > file.size:
                # "0 of 5,304 bytes" for a .part of 10,000: bytes of something
                # else (another release, another file), which a download drops.
                detail = (
                    f"{part.name} holds {on_disk:,} bytes, more than the file's"
                    f" {file.size:,}: not a download of it, fetched afresh by the next run"
                )
            return FileReport(rel, Status.PARTIAL, detail, got, file.size)
        return FileReport(rel, Status.MISSING, "not there", None, file.size)
    if not path.is_file():
        return FileReport(rel, Status.CORRUPT, "not a regular file", None, file.size)
    size = path.stat().st_size
    leftover = f" (a leftover {part.name} can be deleted)" if part.exists() else ""
    try:
        # Unreadable first: a size check does not read, and would call a file
        # whose bytes no one can see "corrupt".
        with open(path, "rb") as fh:
            fh.read(1)
        # A file built locally (no mirror had it) is checked by its array, not its hash.
        built = is_derived(file, path, catalogue=catalogue)
        how = check_derived(file, path, catalogue=catalogue) if built else verify_path(file, path)
    except VerificationError as exc:
        return _failed(file, path, rel, size, exc)
    except OSError as exc:
        return _unreadable(rel, exc, size, file)
    return FileReport(rel, Status.OK, f"{how} matches{leftover}", size, file.size, built)


def _not_ours(part: Path) -> str | None:
    """What is at a .part's name when it is not a .part a download would resume; None if ours."""
    try:
        st = os.lstat(part)
    except OSError:
        return None  # nothing there (or nothing we can see)
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    if stat.S_ISDIR(st.st_mode):
        return "a folder"
    if not stat.S_ISREG(st.st_mode):
        return "a pipe" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
    if st.st_nlink > 1:
        return f"a file with {st.st_nlink - 1} other hard link(s)"
    return None


def _unreadable(rel: str, exc: OSError, size: int, file: RemoteFile) -> FileReport:
    why = (exc.strerror or type(exc).__name__).lower()
    return FileReport(rel, Status.UNREADABLE, f"cannot be read: {why}", size, file.size)


def _failed(
    file: RemoteFile, path: Path, rel: str, size: int, exc: VerificationError
) -> FileReport:
    """Stale when the bytes are a known older release, corrupt otherwise, saying which way."""
    try:
        stale = known_stale(file, path)
    except OSError as err:  # verify_path may refuse on size without reading
        return _unreadable(rel, err, size, file)
    if stale is not None:
        return FileReport(
            rel, Status.STALE, f"{stale}; delete it and download again", size, file.size
        )
    detail = f"wrong {exc.what}: expected {exc.expected}, got {exc.got}"
    if exc.what in ("size", "sha256", "md5"):
        detail += _shape_hint(path)
    return FileReport(rel, Status.CORRUPT, detail, size, file.size)


def _shape_hint(path: Path) -> str:
    """Whether the wrong bytes are at least a whole file of the right kind (another release?)."""
    kind = "npz" if path.suffix == ".npz" else "idx" if path.name.endswith("-ubyte.gz") else None
    if kind is None:
        return ""
    try:
        shape = structure_of(kind, path)
    except ValueError as exc:
        return f" ({exc})"
    return f" (a well-formed {kind} file of shape {shape}, but not the published bytes)"


def audit(
    *,
    root: str | Path | None = None,
    datasets: Sequence[str] | None = None,
    format: str | None = None,
    split: str = "all",
    release: str = CURRENT_RELEASE,
    catalogue: Sequence[Entry] | None = None,
) -> tuple[FileReport, ...]:
    """Check every expected file below ``root`` (default ``$KMNIST_DATA``, else ``data``).

    See :func:`expected_entries` for which files are expected; ``catalogue``
    is the entries they are looked up in (None: the manifest's).
    """
    root = data_root(root)
    entries = expected_entries(root, datasets, format, split, release, catalogue)
    reports = [check_file(root, e.file, catalogue=catalogue) for e in entries]
    if any(e.dataset == "kkanji" for e in entries):
        reports = _with_kanji_folder(root, reports, catalogue)
    return tuple(reports)


def _with_kanji_folder(
    root: Path, reports: list[FileReport], catalogue: Sequence[Entry] | None = None
) -> list[FileReport]:
    """Add the unpacked Kanji folder, when there is one: unpacking is optional.

    Once the folder checks ok, the archive is no longer needed, and deleting
    it (310 MB) does not make the copy wrong.
    """
    from .kanji import check_kanji, kanji_paths

    _, folder = kanji_paths(root)
    if not folder.is_dir():
        return reports
    rel = folder.relative_to(root).as_posix() + "/"
    try:
        check = check_kanji(folder)
    except LocalFileError as exc:  # a class folder or a PNG this user may not read
        return [*reports, FileReport(rel, Status.UNREADABLE, str(exc))]
    if not check.ok:
        return [*reports, FileReport(rel, Status.CORRUPT, "; ".join(check.problems))]
    detail = f"{check.images:,} images in {check.classes:,} classes"
    (entry,) = select("kkanji", entries=catalogue)
    tar = {entry.file.path, entry.file.name}  # nested or flat, wherever it was looked for
    kept = [r for r in reports if not (r.path in tar and r.status is Status.MISSING)]
    if len(kept) < len(reports):
        detail += f" ({entry.file.name} was deleted after unpacking; not needed)"
    return [*kept, FileReport(rel, Status.OK, detail)]


def all_ok(reports: Sequence[FileReport]) -> bool:
    """True when every report is ok (and there is at least one)."""
    return bool(reports) and all(r.status is Status.OK for r in reports)


def counts(reports: Sequence[FileReport]) -> dict[str, int]:
    return {s.value: n for s in Status if (n := sum(r.status is s for r in reports))}


def render_text(
    reports: Sequence[FileReport], *, root: str | Path = "data", elsewhere: Sequence[str] = ()
) -> str:
    """The report as lines; ``elsewhere``: releases with files here (see :func:`releases_here`)."""
    width = max((len(r.path) for r in reports), default=0)
    said = max([7, *(len(r.status.value) for r in reports)])  # wider only for "unreadable"
    lines = [f"{r.path:<{width}}  {r.status.value:<{said}}  {r.detail}" for r in reports]
    # The folder as one line: a --dir with a newline in its name split the
    # summary line in two.
    root = one_line(str(root))
    tally = ", ".join(f"{n} {s}" for s, n in counts(reports).items())
    if not reports:
        if elsewhere:
            flags = " or ".join(f"--release {r}" for r in elsewhere)
            hint = f"the {' and '.join(elsewhere)} release's files are here: add {flags}"
        else:
            hint = "download with --dataset, or name the folder with --dir"
        lines.append(f"{root}: no file of the datasets here: nothing to verify ({hint})")
        return "\n".join(lines)
    verdict = "all ok" if all_ok(reports) else "NOT all ok"
    files = "1 file" if len(reports) == 1 else f"{len(reports)} files"
    lines.append(f"{root}: {files}: {tally}: {verdict}")
    return "\n".join(lines)


def render_json(reports: Sequence[FileReport], *, root: str | Path = "data") -> str:
    doc = {
        "root": str(root),
        "ok": all_ok(reports),
        "counts": counts(reports),
        "files": [r.as_dict() for r in reports],
    }
    # ASCII: a folder name that is not UTF-8 is escaped (\udcff), so the output
    # stays valid UTF-8 (it was the raw byte, which no JSON reader takes).
    return json.dumps(doc, indent=2, ensure_ascii=True)
