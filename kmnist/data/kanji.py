"""Kuzushiji-Kanji: unpack the archive, check the result, list it.

The archive is a plain tar of ``kkanji2/U+XXXX/<id>.png``. It is unpacked by
:mod:`kmnist.data.safetar`, which trusts nothing in it, with every member
required to be inside ``kkanji2/``; the archive's member index (names and
sizes, :mod:`kmnist.data.tarindex`) is recorded beside the folder, and the folder
is checked against that index, file by file. The published image counts
disagree (140,424 and 140,426) and neither has been confirmed against the
archive, so they are reported, never required.
"""

from __future__ import annotations

import enum
import errno
import functools
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar, cast

from ..catalogue.classmap import CharClass, parse_codepoint
from ..catalogue.manifest import RemoteFile, select
from ..errors import (
    FolderError,
    KmnistError,
    NotDownloaded,
    UnsafeArchive,
    VerificationError,
    one_line,
    unreadable,
)
from ..formats import system_error
from ..inputs import (
    check_count,
    check_folder,
    check_folder_exists,
    check_sequence,
    described,
    download_command,
)
from ..verify import verify_path
from .safetar import safe_extract
from .tarindex import (
    BadIndex,
    Found,
    MemberIndex,
    compare,
    from_members,
    index_path,
    read_archive,
    read_index,
    scan,
    write_index,
)

if TYPE_CHECKING:
    import tarfile
    from collections.abc import Sequence


__all__ = [
    "AUTHORS_IMAGES",
    "EXPECTED_CLASSES",
    "EXPECTED_IMAGES",
    "Basis",
    "KanjiCheck",
    "KanjiIndex",
    "Published",
    "UnsafeArchive",
    "check_kanji",
    "extract_kanji",
    "kanji_paths",
    "load_kanji",
]

# The published figures of Kuzushiji-Kanji. Two sources, two image counts,
# neither checked against a copy of the archive: information, not a test.
# The notes this package was built from (../shared/realdata/README.md), which
# cite no source for it:
EXPECTED_IMAGES = 140_424
# The dataset authors' README (github.com/rois-codh/kmnist): "3832 Kanji
# characters, containing 140,426 images".
AUTHORS_IMAGES = 140_426
EXPECTED_CLASSES = 3_832  # both sources
SIDE = 64
TOP = "kkanji2"  # the archive's top folder
CLASS_NAME = re.compile(r"U\+[0-9A-F]{4,6}")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A report lists this many examples of each kind of difference, then a count:
# one damaged archive can differ in 140,000 ways, nobody reads past the first few.
EXAMPLES = 5


class Basis(enum.Enum):
    """What the folder's files were compared with."""

    INDEX = "index"  # the archive's member index, recorded when it was unpacked
    ARCHIVE = "archive"  # no index recorded: the archive beside the folder, read again
    COUNTS = "counts"  # no index, no archive: the structure and the published counts only
    NOTHING = "nothing"  # no folder


class Published(enum.Enum):
    """Which published image count the folder's count equals."""

    NOTES = "notes"
    AUTHORS = "authors"
    NEITHER = "neither"


@dataclass(frozen=True)
class KanjiCheck:
    """What an unpacked Kuzushiji-Kanji folder holds, against the archive it came from.

    ``expected_images`` and ``expected_classes`` are requirements only when
    the caller set them; ``published`` says which published count the folder
    matched, as information. ``basis`` says what the files were compared
    with, ``sha256`` the archive's checksum when it was verified before the
    folder was unpacked.
    """

    folder: Path
    images: int
    classes: int
    expected_images: int | None
    expected_classes: int | None
    problems: tuple[str, ...]
    # What changes no image or label (a .DS_Store, a README, what was checked
    # against): reported, never a failure.
    notes: tuple[str, ...] = ()
    basis: Basis = Basis.COUNTS
    published: Published = Published.NEITHER
    sha256: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        head = f"{self.folder}: {self.images:,} PNG files in {self.classes:,} class folders"
        if self.expected_images is not None or self.expected_classes is not None:
            want = [
                f"{n:,}" if n is not None else "any"
                for n in (self.expected_images, self.expected_classes)
            ]
            head += f" (expected {want[0]} in {want[1]})"
        verdict = ": ok" if self.ok else ": differs"
        # One line per problem, each escaped: a member named "x\nall ok" or
        # with a terminal escape in it must not forge a line or colour one.
        lines = [head + verdict, *self.problems, *self.notes]
        return "\n  ".join(map(one_line, lines))


_F = TypeVar("_F", bound=Callable[..., Any])


def _disk_error(exc: OSError) -> KmnistError:
    """One line for what the disk refused: a file or folder this user may not read, or write.

    A full disk (or quota, or no inode left) is a DiskFull, as from a download,
    so that ``except kmnist.DiskFull`` catches it wherever it happens.
    """
    from ..storage.folders import disk_full, explain

    full = disk_full(str(exc.filename or "the data folder"), Path(exc.filename or "."), None, exc)
    if full is not None:
        return full
    path = exc.filename
    if path is not None and os.path.lexists(path):
        need = os.R_OK | (os.X_OK if os.path.isdir(path) else 0)
        denied = exc.errno in (errno.EACCES, errno.EPERM) and not os.access(path, need)
        if denied or exc.errno == errno.EIO:
            return unreadable(path, exc)
    return FolderError(explain(exc))


def _said_in_words(fn: _F) -> _F:
    """A public function of this module whose OSErrors are one line (a KmnistError).

    A Kanji folder or archive this user may not read was a PermissionError
    traceback from the library and, from the command, advice to get write access.
    """

    @functools.wraps(fn)
    def said(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OSError as exc:
            if not system_error(exc):
                raise
            raise _disk_error(exc) from exc

    return cast("_F", said)


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    """A folder's entries, sorted by name."""
    # os.scandir tells files from folders without a stat per entry, which
    # matters at about 140,000 files.
    with os.scandir(folder) as it:
        return sorted(it, key=lambda e: e.name)


def png_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None if it is not a PNG. No Pillow needed."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _examples(kind: str, items: Sequence[str]) -> list[str]:
    if not items:
        return []
    more = f" (and {len(items) - EXAMPLES} more)" if len(items) > EXAMPLES else ""
    return [f"{kind}: {', '.join(items[:EXAMPLES])}{more}"]


def _is_image(name: str) -> bool:
    return name.lower().endswith(".png")


@dataclass(frozen=True)
class _Structure:
    images: int
    classes: int
    problems: list[str]
    stray: list[str]


def _structure(folder: Path, found: Found, side: int) -> _Structure:
    """PNGs of side x side, in folders named by code point: what any copy must look like."""
    bad_names: list[str] = []
    stray: list[str] = []
    not_png: list[str] = []
    wrong_size: list[str] = []
    pngs: dict[str, int] = {}
    base = str(folder)
    for name in sorted(found.folders | found.files.keys() | found.others.keys()):
        parts = name.split("/")
        if len(parts) == 1:
            if name not in found.folders:
                stray.append(name)
            elif CLASS_NAME.fullmatch(name):
                pngs.setdefault(name, 0)
            else:
                bad_names.append(name)
        elif len(parts) == 2 and parts[0] in pngs:
            if name not in found.files or not _is_image(name):
                stray.append(name)
                continue
            pngs[parts[0]] += 1
            size = png_size(os.path.join(base, name))  # str: Path / costs 0.7 s at 140,000
            if size is None:
                not_png.append(name)
            elif size != (side, side):
                wrong_size.append(f"{name} is {size[0]}x{size[1]}")
    problems = _examples("folders not named by a code point (U+XXXX)", bad_names)
    problems += _examples("empty class folders", [c for c, n in pngs.items() if not n])
    problems += _examples(f"images that are not {side}x{side}", wrong_size)
    problems += _examples("files ending in .png that are not PNG images", not_png)
    return _Structure(sum(pngs.values()), len(pngs), problems, stray)


def _against(index: MemberIndex, found: Found) -> tuple[list[str], list[str], set[str]]:
    """(problems, notes, added): the folder against the archive's index, by name.

    An added file that no loader reads (not a .png, not a folder or link: a
    .DS_Store a file browser left) changes no image or label, so it is a
    note; anything else that differs is a problem.
    """
    difference = compare(index, found)
    harmless = [n for n in difference.added if n in found.files and not _is_image(n)]
    harmful = [n for n in difference.added if n not in harmless]
    problems = _examples(f"missing (in {index.archive}, not in the folder)", difference.missing)
    problems += _examples("changed size", difference.resized)
    problems += _examples("changed kind", difference.retyped)
    problems += _examples(f"added (not in {index.archive})", harmful)
    notes = _examples(f"other files added (not in {index.archive}; ignored)", harmless)
    return problems, notes, set(difference.added)


def _index_of(
    folder: Path, archive: Path
) -> tuple[MemberIndex | None, Basis, list[str], list[str]]:
    """The archive's member index to check ``folder`` by, with what it was, problems and notes.

    The one recorded beside the folder; failing that, the archive's own,
    read from its headers.
    """
    problems: list[str] = []
    notes: list[str] = []
    try:
        return read_index(index_path(folder)), Basis.INDEX, problems, notes
    except FileNotFoundError:
        notes.append("no index of the archive beside the folder (unpacked by an older kmnist)")
    except BadIndex as exc:
        problems.append(
            f"the index of the archive cannot be trusted: {exc}; unpack again with "
            "kmnist-download --dataset kkanji --extract --force"
        )
    if archive.is_file():
        try:
            return read_archive(archive, top=TOP), Basis.ARCHIVE, problems, notes
        except VerificationError as exc:
            notes.append(f"{archive.name} could not be read: {exc}")
    return None, Basis.COUNTS, problems, notes


def _published(images: int) -> Published:
    # Read at call time, so that tests can set the figures.
    if images == EXPECTED_IMAGES:
        return Published.NOTES
    if images == AUTHORS_IMAGES:
        return Published.AUTHORS
    return Published.NEITHER


def _published_note(images: int, classes: int) -> str:
    which = {
        Published.NOTES: "the notes' figure",
        Published.AUTHORS: "the authors' figure",
        Published.NEITHER: "neither image count",
    }[_published(images)]
    if classes != EXPECTED_CLASSES:
        which += ", not the class count"
    return (
        f"published figures (information; neither confirmed against the archive): "
        f"{EXPECTED_IMAGES:,} images (this package's notes) or {AUTHORS_IMAGES:,} (the "
        f"authors' README), in {EXPECTED_CLASSES:,} classes (both); this folder matches {which}"
    )


@_said_in_words
def check_kanji(
    folder: str | Path,
    *,
    expected_images: int | None = None,
    expected_classes: int | None = None,
    side: int = SIDE,
    archive: str | Path | None = None,
) -> KanjiCheck:
    """Check the unpacked folder against the archive it came from, file by file.

    Every member of the archive must be there with its size, and nothing
    else but files no loader reads; the images must be PNGs of side x side
    in folders named by code point. The archive's member index is the one
    recorded beside the folder when it was unpacked. A folder unpacked by an
    older kmnist has none: it is compared with the archive itself
    (``archive``, default ``kkanji.tar`` beside the folder) or, without one,
    by its structure and the published counts, the only evidence left. Else
    the published counts are information, and a count is required only when
    the caller names it (``expected_images``, ``expected_classes``).
    """
    folder = check_folder(folder, "folder")
    _check_expected(expected_images, expected_classes)
    side = check_count(side, "side", minimum=1)
    if archive is not None:
        archive = check_folder(archive, "archive", kind="file")
    if not folder.is_dir():
        return KanjiCheck(
            folder,
            0,
            0,
            expected_images,
            expected_classes,
            (f"no folder {folder}",),
            basis=Basis.NOTHING,
        )
    found = scan(folder)
    shape = _structure(folder, found, side)
    archive_path = Path(archive) if archive is not None else folder.parent / "kkanji.tar"
    index, basis, problems, notes = _index_of(folder, archive_path)
    counts = []
    if expected_images is not None and shape.images != expected_images:
        counts.append(f"{shape.images:,} PNG files, expected {expected_images:,}")
    if expected_classes is not None and shape.classes != expected_classes:
        counts.append(f"{shape.classes:,} class folders, expected {expected_classes:,}")
    published = _published(shape.images)
    if index is None:
        stray = shape.stray
        unasked = expected_images is None and expected_classes is None
        if unasked and (published is Published.NEITHER or shape.classes != EXPECTED_CLASSES):
            counts.append(
                f"{shape.images:,} PNG files in {shape.classes:,} class folders, expected "
                f"{EXPECTED_IMAGES:,} (this package's notes) or {AUTHORS_IMAGES:,} (the "
                f"authors' README) in {EXPECTED_CLASSES:,}: without the archive or its index, "
                "the counts are all the folder can be checked by"
            )
        notes.append("checked by its structure and the published counts only: no archive")
    else:
        against, added_notes, added = _against(index, found)
        problems += against
        notes += added_notes
        stray = [s for s in shape.stray if s not in added]
        if basis is Basis.ARCHIVE:
            how = f"the member index read from {archive_path} (its checksum not checked here)"
        elif index.sha256:
            how = (
                f"the member index of {index.archive}, recorded when it was unpacked "
                f"(its sha256 {index.sha256[:16]}... verified first)"
            )
        else:
            how = (
                f"the member index of {index.archive}, recorded when it was unpacked "
                "(its checksum not verified: unpacked with verify=False)"
            )
        notes.append(f"checked against {how}")
    notes.append(_published_note(shape.images, shape.classes))
    # Escaped here too, not only in summary(): --verify joins the problems
    # into its own report line.
    return KanjiCheck(
        folder,
        shape.images,
        shape.classes,
        expected_images,
        expected_classes,
        tuple(map(one_line, (*counts, *shape.problems, *problems))),
        tuple(map(one_line, (*_examples("other files (ignored)", stray), *notes))),
        basis,
        published,
        index.sha256 if index is not None else None,
    )


def kanji_paths(root: str | Path) -> tuple[Path, Path]:
    """(archive, unpacked folder beside it) of Kuzushiji-Kanji below a data folder.

    ``<root>/kkanji/kkanji.tar``, or ``<root>/kkanji.tar`` where the original
    ``download_data.py`` left it (see ``kmnist.storage.layout.local_path``).
    """
    from ..storage.layout import local_path

    (entry,) = select("kkanji")
    archive = local_path(Path(root), entry.file)
    folder = archive.parent / TOP
    flat = Path(root) / TOP
    if not archive.exists() and not folder.is_dir() and flat.is_dir():
        # Flat, and the archive deleted once unpacked (310 MB saved).
        return flat.parent / entry.file.name, flat
    return archive, folder


@_said_in_words
def extract_kanji(
    *,
    root: str | Path | None = None,
    archive: str | Path | None = None,
    verify: bool = True,
    force: bool = False,
    expected_images: int | None = None,
    expected_classes: int | None = None,
    published: RemoteFile | None = None,
) -> KanjiCheck:
    """Unpack the archive (``root/kkanji/kkanji.tar``) safely beside it, then check the result.

    ``verify`` first checks the archive against ``published`` (default: the
    catalogue's ``kkanji/kkanji.tar`` and its sha256), so that only the
    published bytes are unpacked; the member rules apply either way. The
    archive's member index is recorded beside the folder, and the result is
    checked against it (``check_kanji``). A folder that is already there
    and checks ok is kept as it is, unless ``force``: the processes of a job
    array can all call this, one unpacks (they take a lock) and the others
    find its result. A folder unpacked by an older kmnist, which has no
    index, is kept too when it matches the archive, whose index is then
    recorded. Returns the check; ``.ok`` is False, with ``.problems`` saying
    how, when the folder differs from the archive.
    """
    import shutil

    from ..storage.layout import file_lock

    root = _root(root)
    _check_expected(expected_images, expected_classes)
    if published is not None and not isinstance(published, RemoteFile):
        raise TypeError(
            f"published must be a kmnist.RemoteFile or None, not {type(published).__name__}"
        )

    default_archive, folder = kanji_paths(root)
    if archive is not None:
        # "" was the folder we are in ("no archive at ."), a NUL a ValueError.
        archive = check_folder(archive, "archive", kind="file")
        folder = archive.parent / TOP
    else:
        archive = default_archive
    tar = archive
    file = published if published is not None else select("kkanji")[0].file

    def check() -> KanjiCheck:
        return check_kanji(
            folder, expected_images=expected_images, expected_classes=expected_classes, archive=tar
        )

    def verified() -> str | None:
        """The archive's sha256 once it is checked against the published one; None unchecked."""
        if not verify:
            return None
        verify_path(file, tar)
        return file.sha256

    with file_lock(folder):
        before = None
        if not force and folder.is_dir():
            before = check()
            # A folder from another archive than the published one (a catalogue
            # that changed its checksum since) is replaced, however intact.
            stale = verify and before.sha256 not in (None, file.sha256)
            if before.ok and before.basis is not Basis.ARCHIVE and not stale:
                return before
            if before.ok and not stale:
                # Unpacked by an older kmnist and the same as the archive: record
                # the archive's index rather than unpack 310 MB again.
                index = read_archive(tar, top=TOP)
                write_index(index_path(folder), replace(index, sha256=verified()))
                return check()
        if not tar.is_file():
            damaged = (
                f"{folder} differs from its archive ({before.problems[0]}) and there is "
                if before is not None
                else "there is "
            )
            raise NotDownloaded(
                f"{damaged}no archive at {tar} to unpack; run: "
                f"{download_command('--dataset', 'kkanji', '--extract', root=root)}"
            )
        sha256 = verified()
        # Left by a run that was killed; under the lock no other run is using them.
        for leftover in folder.parent.glob(".unpacking-*"):
            shutil.rmtree(leftover, ignore_errors=True)

        def record(members: Sequence[tarfile.TarInfo]) -> None:
            index = from_members(members, top=TOP, archive=tar.name, sha256=sha256)
            write_index(index_path(folder), index)

        safe_extract(tar, dest=folder.parent, top=TOP, record=record)
        return check()


def _root(root: str | os.PathLike[str] | None) -> Path:
    """The data folder of a library call: ``root`` checked (and named so), else the default."""
    from ..storage.root import data_root

    path = data_root(check_folder(root, "root") if root is not None else None)
    check_folder_exists(path, "root")
    return path


def _check_expected(images: object, classes: object) -> None:
    """The counts a caller requires: None or a whole number ("8" ended in a format error)."""
    for name, value in (("expected_images", images), ("expected_classes", classes)):
        if value is not None:
            check_count(value, name)


@dataclass(frozen=True)
class KanjiIndex:
    """The unpacked Kanji images as file paths with integer labels.

    ``labels[i]`` is the class of ``paths[i]``: an index into ``classes``,
    which are sorted by code point. One built by hand (to keep part of an
    index) may give lists, str paths and NumPy labels; one label per path,
    none negative nor past ``classes`` (when given), else a ValueError (a
    TypeError for a value of the wrong type) naming the first that is not.
    """

    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    classes: tuple[CharClass, ...]

    def __post_init__(self) -> None:
        # A caller who keeps part of an index (the classes with enough images,
        # a subset) builds one by hand: paths as str were an AttributeError
        # deep in kanji_split, fewer labels than paths a split that put the
        # unlabelled images in train, a label past the classes an IndexError
        # later. Lists and NumPy labels are taken, as tuples of Path and int.
        paths = tuple(
            # check_folder says what is wrong with a value of any type (an int, bytes).
            p if isinstance(p, Path) else check_folder(p, f"paths[{k}]", kind="file")  # type: ignore[arg-type]
            for k, p in enumerate(check_sequence(self.paths, "paths", "image paths"))
        )
        labels = check_sequence(self.labels, "labels", "class indices")
        if not all(type(x) is int for x in labels):
            labels = tuple(check_count(x, f"labels[{k}]") for k, x in enumerate(labels))
        classes = check_sequence(self.classes, "classes", "kmnist.CharClass")
        for k, c in enumerate(classes):
            if not isinstance(c, CharClass):
                raise TypeError(f"classes[{k}] must be a kmnist.CharClass, not {described(c)}")
        if len(labels) != len(paths):
            raise ValueError(
                f"a KanjiIndex needs one label per path: {len(paths):,} paths, "
                f"{len(labels):,} labels"
            )
        # No classes (a caller who only splits, or decodes) bounds the labels by nothing.
        top = len(classes) if classes else None
        outside = [k for k, x in enumerate(labels) if x < 0 or (top is not None and x >= top)]  # type: ignore[operator]
        if outside:
            k = outside[0]
            which = f"one of the {top:,} classes (0 to {top - 1})" if top else "a class index"
            raise ValueError(f"labels[{k}] is {labels[k]}, not {which}")
        object.__setattr__(self, "paths", paths)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "classes", classes)


@_said_in_words
def load_kanji(*, root: str | Path | None = None, folder: str | Path | None = None) -> KanjiIndex:
    """List the unpacked Kuzushiji-Kanji folder: paths, labels and classes by code point.

    Paths, not pixels: all 140,000-odd images decoded are 575 MB of memory and
    need Pillow, while most pipelines (``torchvision.datasets.ImageFolder``,
    ``tf.data``, a ``Dataset`` that opens one file per item) want paths and
    decode per batch. ``kmnist.kanji_arrays`` decodes when wanted.
    """
    root = _root(root)
    # "" was the folder we are in: an empty index of it, without a word.
    folder = check_folder(folder, "folder") if folder is not None else kanji_paths(root)[1]
    if not folder.is_dir():
        raise NotDownloaded(
            f"no unpacked Kanji folder at {folder}; run: "
            f"{download_command('--dataset', 'kkanji', '--extract', root=root)}"
        )
    # By code point as a number: as strings, U+20B9F would sort before U+4E00.
    dirs = sorted(
        (parse_codepoint(d.name), Path(d.path))
        for d in _scan(folder)
        if d.is_dir() and CLASS_NAME.fullmatch(d.name)
    )
    paths: list[Path] = []
    labels: list[int] = []
    for index, (_, d) in enumerate(dirs):
        files = [d / f.name for f in _scan(d) if f.name.lower().endswith(".png") and f.is_file()]
        paths += files
        labels += [index] * len(files)
    classes = tuple(CharClass.of(i, code) for i, (code, _) in enumerate(dirs))
    return KanjiIndex(tuple(paths), tuple(labels), classes)
