"""Arrays from files on disk: KMNIST and K49 as NumPy ``(images, labels)``.

NumPy is imported inside the functions, never at module level, so that
``import kmnist`` (which imports this module to export :func:`load`) stays
instant. Both published formats decode to the same arrays: images ``uint8``
N x 28 x 28 and labels ``uint8`` N, as published.
"""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from .classmap import CLASSMAPS
from .errors import NotDownloaded, UnsupportedFormat, VerificationError
from .manifest import CURRENT_RELEASE, DATASETS, KNOWN_STALE, Entry, RemoteFile, select
from .storage import data_root, part_path
from .verify import hash_path, parse_idx_header, verify_path

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    from numpy.typing import NDArray

    from .kanji import KanjiIndex

    Array = NDArray[np.uint8]

SPLITS = ("train", "test")
SIDE = 28  # KMNIST and K49 images are 28 x 28, like MNIST
IDX_MAGIC = {"images": 0x0803, "labels": 0x0801}  # unsigned bytes, 3 or 1 dimensions
# Deflate cannot compress better than 1032:1, so an IDX header that promises
# more bytes than that is lying; refusing it keeps a forged header from making
# us allocate terabytes before the data runs out.
DEFLATE_MAX_RATIO = 1032


def load(
    dataset: str,
    split: str,
    *,
    root: str | Path | None = None,
    format: str | None = None,
    download: bool = False,
    verify: bool = True,
) -> tuple[Array, Array]:
    """Return ``(images, labels)`` of ``dataset`` (``"kmnist"`` or ``"k49"``), ``split``.

    ``root`` is the data folder: by default ``$KMNIST_DATA``, else ``data``.
    ``format`` is ``"npz"`` or ``"mnist"``; by default whichever is complete in
    ``root`` (NumPy first), and NumPy when neither is. ``verify`` checks sizes
    and published checksums before decoding (milliseconds next to the
    decompression itself); either way the structure is checked, so a
    truncated or foreign file is a :class:`VerificationError` that names it,
    never a reshape error. ``download=True`` fetches what is missing, and
    also replaces what fails verification, through :func:`kmnist.download`.
    """
    root = data_root(root)
    entries = _entries(dataset, split, format, root)
    try:
        return _read(dataset, split, entries, root, verify=verify)
    except (NotDownloaded, VerificationError):
        if not download:
            raise
    from . import download as fetch  # the public function; its plan skips what is verified

    fetch(dataset, format=entries[0].format, split=split, root=root)
    # Every file is now one the download verified (or skipped as verified).
    return _read(dataset, split, entries, root, verify=False)


def _read(
    dataset: str, split: str, entries: list[Entry], root: Path, *, verify: bool
) -> tuple[Array, Array]:
    missing = [e for e in entries if not local_path(root, e.file).is_file()]
    if missing:
        names = ", ".join(str(root / e.file.path) for e in missing)
        raise NotDownloaded(
            f"{dataset} {split}: missing {names}; pass download=True "
            f"or run: kmnist-download --dataset {dataset} --dir {root}"
        )
    by_kind = {e.kind: e for e in entries}
    images = read_array(by_kind["images"], root, verify=verify)
    labels = read_array(by_kind["labels"], root, verify=verify)
    _check_pair(dataset, split, images, labels, by_kind["labels"].file.path)
    return images, labels


def local_path(root: Path, file: RemoteFile) -> Path:
    """Where a catalogued file is below ``root``.

    ``<root>/<dataset>/<name>`` is the layout of this package and of the
    official host; the original ``download_data.py`` left the files flat in
    one folder, so ``<root>/<name>`` is looked at too. The former when
    neither is there (or only its ``.part`` is).
    """
    nested = root / file.path
    flat = root / file.name
    if nested.exists() or part_path(nested).exists() or not flat.exists():
        return nested
    return flat


def _entries(dataset: str, split: str, format: str | None, root: Path) -> list[Entry]:
    """The images and labels entries to read: the asked format, or the first complete one."""
    if dataset == "kkanji":
        raise UnsupportedFormat(
            "kkanji is a folder of 64x64 PNG files, not arrays: use kmnist.load_kanji()"
        )
    if split not in SPLITS:
        raise UnsupportedFormat(f"unknown split {split!r} for load (choose from train, test)")
    select(dataset, format, split)  # raises UnknownDataset / UnsupportedFormat, naming choices
    formats = [format] if format else list(DATASETS[dataset].formats)
    candidates = [_pair(dataset, f, split) for f in formats]
    for pair in candidates:
        if all(local_path(root, e.file).is_file() for e in pair):
            return pair
    return candidates[0]


def _pair(dataset: str, format: str, split: str) -> list[Entry]:
    chosen = select(dataset, format, split, CURRENT_RELEASE)
    return [e for e in chosen if e.kind in ("images", "labels")]


def read_array(entry: Entry, root: Path, *, verify: bool = True) -> Array:
    """Decode one catalogued file (IDX or NumPy) into its array, checking its structure."""
    path = local_path(root, entry.file)
    if verify:
        from .derive import check_derived, is_derived

        try:
            if is_derived(entry.file, path):  # built from the MNIST file: arrays compared
                check_derived(entry.file, path)
            else:
                verify_path(entry.file, path)
        except VerificationError as exc:
            raise _with_stale_note(exc, entry, path) from None
    ndim = 3 if entry.kind == "images" else 1
    if entry.format == "mnist":
        return read_idx(path, ndim=ndim, name=entry.file.path)
    return read_npz(path, ndim=ndim, name=entry.file.path)


def _with_stale_note(exc: VerificationError, entry: Entry, path: Path) -> VerificationError:
    """Say so when the wrong bytes are a known older release (a size check stops before hashing)."""
    note = KNOWN_STALE.get(hash_path(entry.file, path).sha256)
    if note is None or note in exc.got:
        return exc
    got = f"{exc.got} ({note}; delete it and download again)"
    return VerificationError(exc.path, exc.source, exc.what, exc.expected, got)


def _bad(name: str, expected: str, got: str) -> VerificationError:
    return VerificationError(name, "disk", "structure", expected, got)


def read_idx(path: str | Path, *, ndim: int, name: str | None = None) -> Array:
    """Read a gzip-compressed IDX file of unsigned bytes with ``ndim`` dimensions.

    Checks the magic number, the dimensions (28 x 28 images) and that the
    payload is exactly as long as the header says: no more, no less.
    """
    import numpy as np

    name = name or str(path)
    want = f"IDX magic 0x{IDX_MAGIC['images' if ndim == 3 else 'labels']:08x}"
    try:
        with gzip.open(path, "rb") as g:
            head = g.read(4)
            if len(head) == 4 and head[:2] == b"\0\0":
                head += g.read(4 * head[3])
            try:
                header = parse_idx_header(head)
            except ValueError as exc:
                raise _bad(name, want, f"{exc} (first bytes {head[:4].hex()})") from None
            if len(header.shape) != ndim:
                raise _bad(name, want, f"{len(header.shape)} dimensions")
            if ndim == 3 and header.shape[1:] != (SIDE, SIDE):
                raise _bad(name, f"{SIDE}x{SIDE} images", "x".join(map(str, header.shape[1:])))
            if header.payload > DEFLATE_MAX_RATIO * os.path.getsize(path):
                raise _bad(name, "a header that fits the file", f"shape {header.shape}")
            out = np.empty(header.payload, dtype=np.uint8)
            view = memoryview(out)  # type: ignore[arg-type]
            got = 0
            while got < header.payload:
                n = g.readinto(view[got:])
                if not n:
                    break
                got += n
            if got < header.payload:
                raise _bad(name, f"{header.payload} bytes of data", f"only {got} (truncated)")
            if g.read(1):
                raise _bad(name, f"{header.payload} bytes of data", "more (trailing bytes)")
    except (OSError, EOFError, zlib.error) as exc:
        # gzip.BadGzipFile is an OSError; EOFError is a cut-off gzip stream.
        raise _bad(name, "a complete gzip file", f"{type(exc).__name__}: {exc}") from None
    return out.reshape(header.shape)


def read_npz(path: str | Path, *, ndim: int, name: str | None = None) -> Array:
    """Read the array ``arr_0`` of a published ``.npz``, refusing pickles and other dtypes."""
    import numpy as np

    name = name or str(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files") or "arr_0" not in z.files:
                raise _bad(name, "an .npz with arr_0", "no arr_0")
            arr = z["arr_0"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        # ValueError: not a NumPy file at all (np.load would need a pickle).
        raise _bad(name, "a readable .npz", f"{type(exc).__name__}: {exc}") from None
    if arr.dtype != np.uint8:
        raise _bad(name, "uint8", str(arr.dtype))
    if arr.ndim != ndim or (ndim == 3 and arr.shape[1:] != (SIDE, SIDE)):
        raise _bad(name, "N x 28 x 28" if ndim == 3 else "N", str(arr.shape))
    result: Array = arr
    return result


def _check_pair(dataset: str, split: str, images: Array, labels: Array, labels_name: str) -> None:
    if len(images) != len(labels):
        raise _bad(f"{dataset} {split}", f"{len(images)} labels", f"{len(labels)}")
    classes = len(CLASSMAPS[dataset])
    if len(labels) and int(labels.max()) >= classes:
        raise _bad(labels_name, f"labels below {classes}", f"label {int(labels.max())}")


def kanji_arrays(
    index: KanjiIndex, *, indices: Sequence[int] | None = None
) -> tuple[Array, NDArray[np.int64]]:
    """Decode Kanji PNGs (all, or ``indices`` of ``index.paths``) into arrays.

    Images are ``uint8`` N x 64 x 64; labels ``int64``, since 3,832 classes do
    not fit in a byte. Needs Pillow. All of them take 575 MB: pass
    ``indices`` for a subset.
    """
    import numpy as np

    from .kanji import SIDE
    from .preview import import_pillow

    image_mod = import_pillow("decoding the Kanji PNGs")
    chosen = list(range(len(index.paths))) if indices is None else list(indices)
    out = np.empty((len(chosen), SIDE, SIDE), dtype=np.uint8)
    for k, i in enumerate(chosen):
        path = index.paths[i]
        try:
            with image_mod.open(path) as im:
                pixels = np.asarray(im.convert("L"))
        except OSError as exc:  # PIL.UnidentifiedImageError is an OSError
            raise _bad(str(path), "a PNG image", f"{type(exc).__name__}: {exc}") from None
        if pixels.shape != (SIDE, SIDE):
            raise _bad(str(path), f"{SIDE}x{SIDE}", "x".join(map(str, pixels.shape[::-1])))
        out[k] = pixels
    labels = np.asarray([index.labels[i] for i in chosen], dtype=np.int64)
    return out, labels
