"""Kuzushiji-Kanji: unpack the archive, check the result, list it.

The archive is a plain tar of ``kkanji2/U+XXXX/<id>.png``. It is unpacked by
:mod:`kmnist.safetar`, which trusts nothing in it, with every member
required to be inside ``kkanji2/``; the result is then counted against the
published figures.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .classmap import CharClass, parse_codepoint
from .errors import NotDownloaded, UnsafeArchive
from .manifest import select
from .safetar import safe_extract
from .verify import verify_path

__all__ = [
    "EXPECTED_CLASSES",
    "EXPECTED_IMAGES",
    "KanjiCheck",
    "KanjiIndex",
    "UnsafeArchive",
    "check_kanji",
    "extract_kanji",
    "kanji_paths",
    "load_kanji",
]

# The published figures of Kuzushiji-Kanji (the dataset's README and paper).
EXPECTED_IMAGES = 140_424
EXPECTED_CLASSES = 3_832
SIDE = 64
TOP = "kkanji2"  # the archive's top folder
CLASS_NAME = re.compile(r"U\+[0-9A-F]{4,6}")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A report lists this many examples of each kind of difference, then a count:
# one damaged archive can differ in 140,000 ways, nobody reads past the first few.
EXAMPLES = 5


@dataclass(frozen=True)
class KanjiCheck:
    """What an unpacked Kuzushiji-Kanji folder holds, against what it should."""

    folder: Path
    images: int
    classes: int
    expected_images: int
    expected_classes: int
    problems: tuple[str, ...]
    # Files that are neither images nor class folders (a .DS_Store, a README):
    # reported, but not a failure, since they change no image or label.
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        head = (
            f"{self.folder}: {self.images:,} PNG files in {self.classes:,} class folders "
            f"(expected {self.expected_images:,} in {self.expected_classes:,})"
        )
        verdict = ": ok" if self.ok else ": differs"
        return "\n  ".join([head + verdict, *self.problems, *self.notes])


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    """A folder's entries, sorted by name."""
    # os.scandir tells files from folders without a stat per entry, which
    # matters at 140,424 files.
    with os.scandir(folder) as it:
        return sorted(it, key=lambda e: e.name)


def png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None if it is not a PNG. No Pillow needed."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _examples(kind: str, items: list[str]) -> list[str]:
    if not items:
        return []
    more = f" (and {len(items) - EXAMPLES} more)" if len(items) > EXAMPLES else ""
    return [f"{kind}: {', '.join(items[:EXAMPLES])}{more}"]


def check_kanji(
    folder: str | Path,
    *,
    expected_images: int | None = None,
    expected_classes: int | None = None,
    side: int = SIDE,
) -> KanjiCheck:
    """Count and check the unpacked folder: PNGs of side x side in folders named by code point.

    The expected counts default to the published ones (:data:`EXPECTED_IMAGES`,
    :data:`EXPECTED_CLASSES`).
    """
    folder = Path(folder)
    if expected_images is None:
        expected_images = EXPECTED_IMAGES
    if expected_classes is None:
        expected_classes = EXPECTED_CLASSES
    if not folder.is_dir():
        return KanjiCheck(folder, 0, 0, expected_images, expected_classes, (f"no folder {folder}",))
    bad_names: list[str] = []
    stray: list[str] = []
    not_png: list[str] = []
    wrong_size: list[str] = []
    empty: list[str] = []
    images = classes = 0
    for entry in _scan(folder):
        if not entry.is_dir():
            stray.append(entry.name)
            continue
        if not CLASS_NAME.fullmatch(entry.name):
            bad_names.append(entry.name)
            continue
        classes += 1
        pngs = 0
        for f in _scan(Path(entry.path)):
            rel = f"{entry.name}/{f.name}"
            if not f.is_file() or not f.name.lower().endswith(".png"):
                stray.append(rel)
                continue
            size = png_size(Path(f.path))
            if size is None:
                not_png.append(rel)
            elif size != (side, side):
                wrong_size.append(f"{rel} is {size[0]}x{size[1]}")
            pngs += 1
        images += pngs
        if not pngs:
            empty.append(entry.name)
    problems = []
    if images != expected_images:
        problems.append(f"{images:,} PNG files, expected {expected_images:,}")
    if classes != expected_classes:
        problems.append(f"{classes:,} class folders, expected {expected_classes:,}")
    problems += _examples("folders not named by a code point (U+XXXX)", bad_names)
    problems += _examples("empty class folders", empty)
    problems += _examples(f"images that are not {side}x{side}", wrong_size)
    problems += _examples("files ending in .png that are not PNG images", not_png)
    notes = _examples("other files (ignored)", stray)
    return KanjiCheck(
        folder, images, classes, expected_images, expected_classes, tuple(problems), tuple(notes)
    )


def kanji_paths(root: str | Path) -> tuple[Path, Path]:
    """(archive, unpacked folder beside it) of Kuzushiji-Kanji below a data folder.

    ``<root>/kkanji/kkanji.tar``, or ``<root>/kkanji.tar`` where the original
    ``download_data.py`` left it (see :func:`kmnist.load.local_path`).
    """
    from .load import local_path

    (entry,) = select("kkanji")
    archive = local_path(Path(root), entry.file)
    folder = archive.parent / TOP
    flat = Path(root) / TOP
    if not archive.exists() and not folder.is_dir() and flat.is_dir():
        # Flat, and the archive deleted once unpacked (310 MB saved).
        return flat.parent / entry.file.name, flat
    return archive, folder


def extract_kanji(
    *,
    root: str | Path | None = None,
    archive: str | Path | None = None,
    verify: bool = True,
    force: bool = False,
    expected_images: int | None = None,
    expected_classes: int | None = None,
) -> KanjiCheck:
    """Unpack the archive (``root/kkanji/kkanji.tar``) safely beside it, then check the result.

    ``verify`` first checks the archive's published sha256, so that only the
    published bytes are unpacked; the member rules apply either way. A folder
    that is already there and checks ok is kept as it is, unless ``force``:
    the processes of a job array can all call this, one unpacks (they take a
    lock) and the others find its result. Returns the check; ``.ok`` is False,
    with ``.problems`` saying how, when the result is not the published
    140,424 images in 3,832 classes.
    """
    import shutil

    from .storage import data_root, file_lock

    root = data_root(root)

    default_archive, folder = kanji_paths(root)
    if archive is not None:
        archive = Path(archive)
        folder = archive.parent / TOP
    else:
        archive = default_archive

    def check() -> KanjiCheck:
        return check_kanji(
            folder, expected_images=expected_images, expected_classes=expected_classes
        )

    with file_lock(folder):
        if not force and folder.is_dir():
            before = check()
            if before.ok:
                return before
        if not archive.is_file():
            raise NotDownloaded(
                f"no archive at {archive}; run: kmnist-download --dataset kkanji --dir {root}"
            )
        if verify:
            (entry,) = select("kkanji")
            verify_path(entry.file, archive)
        # Left by a run that was killed; under the lock no other run is using them.
        for leftover in folder.parent.glob(".unpacking-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        safe_extract(archive, dest=folder.parent, top=TOP)
        return check()


@dataclass(frozen=True)
class KanjiIndex:
    """The unpacked Kanji images as file paths with integer labels.

    ``labels[i]`` is the class of ``paths[i]``: an index into ``classes``,
    which are sorted by code point.
    """

    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    classes: tuple[CharClass, ...]


def load_kanji(*, root: str | Path | None = None, folder: str | Path | None = None) -> KanjiIndex:
    """List the unpacked Kuzushiji-Kanji folder: paths, labels and classes by code point.

    Paths, not pixels: all 140,424 images decoded are 575 MB of memory and
    need Pillow, while most pipelines (``torchvision.datasets.ImageFolder``,
    ``tf.data``, a ``Dataset`` that opens one file per item) want paths and
    decode per batch. :func:`kmnist.kanji_arrays` decodes when wanted.
    """
    from .storage import data_root

    root = data_root(root)
    folder = Path(folder) if folder is not None else kanji_paths(root)[1]
    if not folder.is_dir():
        raise NotDownloaded(
            f"no unpacked Kanji folder at {folder}; run: "
            f"kmnist-download --dataset kkanji --extract --dir {root}"
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
