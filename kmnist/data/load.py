"""Arrays from files on disk: KMNIST and K49 as NumPy ``(images, labels)``.

NumPy is imported inside the functions, never at module level, so that
``import kmnist`` (which imports this module to export :func:`load`) stays
instant. Both published formats decode to the same arrays: images ``uint8``
N x 28 x 28 and labels ``uint8`` N, as published.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..catalogue.classmap import CLASSMAPS
from ..catalogue.manifest import CURRENT_RELEASE, DATASETS, Entry, check_catalogue, select
from ..catalogue.names import (
    DATASET_ALIASES,
    DATASET_NAMES,
    canonical,
    closest,
    dataset_name,
    unknown,
)
from ..errors import NotDownloaded, UnsupportedFormat, VerificationError, unreadable
from ..formats import bad_structure, read_idx, read_npz, system_error
from ..inputs import (
    check_folder,
    check_folder_exists,
    check_index,
    check_sequence,
    download_command,
    kind_at,
)
from ..storage.layout import check_folders_between, local_path
from ..storage.root import data_root
from ..verify import known_stale, verify_path

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    from numpy.typing import NDArray

    from .kanji import KanjiIndex

    Array = NDArray[np.uint8]

SPLITS = ("train", "test")


def load(
    dataset: str,
    split: str,
    *,
    root: str | Path | None = None,
    format: str | None = None,
    download: bool = False,
    verify: bool = True,
    catalogue: Sequence[Entry] | None = None,
) -> tuple[Array, Array]:
    """Return ``(images, labels)`` of ``dataset`` (``"kmnist"`` or ``"k49"``), ``split``.

    Images are ``uint8``, N x 28 x 28, white strokes on black; labels are
    ``uint8``, as published. Files are looked for in ``root/<dataset>/`` and
    then flat in ``root``, where the original ``download_data.py`` (and
    ``--flat``) left them.

    Args:
        dataset: ``"kmnist"`` or ``"k49"``.
        split: ``"train"`` or ``"test"``.
        root: the data folder; ``None``: ``$KMNIST_DATA``, else ``data``.
        format: ``"npz"`` or ``"mnist"``; ``None``: whichever is complete in
            ``root`` (NumPy first), and NumPy when neither is.
        download: fetch what is missing, and replace what fails verification,
            through [kmnist.download][kmnist.downloader.download].
        verify: check sizes and published checksums before decoding
            (milliseconds next to the decompression itself). The structure
            is checked either way.
        catalogue: the entries to look the files up in (``None``: the manifest's).

    Returns:
        ``(images, labels)``, two NumPy arrays of the same length.

    Raises:
        NotDownloaded: a file is missing and ``download`` is false.
        VerificationError: a file is truncated, foreign or not the published
            bytes (named in the message), never a reshape error.
        LocalFileError: a file this user may not read (another user's copy,
            mode 000), or that the disk fails to read: named, with what to do.
        UnknownDataset: not ``"kmnist"`` or ``"k49"``.
        UsageError: ``root`` is not a folder a filesystem could hold, or is
            a file (a pipe, a dead link) rather than a folder.
        TypeError: ``root``, ``format`` or ``catalogue`` of the wrong type,
            named in the message.

    Examples:
        >>> x, y = kmnist.load("kmnist", "test", download=True)
        >>> x.shape, x.dtype.name, y.shape
        ((10000, 28, 28), 'uint8', (10000,))
    """
    # Named "root" (not --dir) in a message about a library call's argument.
    root = data_root(check_folder(root, "root") if root is not None else None)
    check_folder_exists(root, "root")
    catalogue = check_catalogue(catalogue)
    dataset = _loadable(dataset)
    entries = _entries(dataset, split, format, root, catalogue)
    try:
        return _read(dataset, split, entries, root, verify=verify, catalogue=catalogue)
    except (NotDownloaded, VerificationError):
        if not download:
            raise
    from ..downloader import (
        download as fetch,  # the public function; its plan skips what is verified
    )

    fetch(dataset, format=entries[0].format, split=split, root=root, catalogue=catalogue)
    # Every file is now one the download verified (or skipped as verified).
    return _read(dataset, split, entries, root, verify=False, catalogue=catalogue)


def _read(
    dataset: str,
    split: str,
    entries: list[Entry],
    root: Path,
    *,
    verify: bool,
    catalogue: Sequence[Entry] | None = None,
) -> tuple[Array, Array]:
    for e in entries:
        path = local_path(root, e.file)
        if path == root / e.file.path:  # not the flat layout's <root>/<name>
            check_folders_between(root, path)  # <root>/kmnist a file: not "missing"
        if os.path.lexists(path) and not path.is_file():
            # Not "missing, pass download=True": a download would not replace it.
            raise bad_structure(str(path), "a regular file", kind_at(path) or "nothing")
    missing = [e for e in entries if not local_path(root, e.file).is_file()]
    if missing:
        names = ", ".join(str(root / e.file.path) for e in missing)
        # One line when shown (KmnistError.__str__): a folder with a newline in its name.
        raise NotDownloaded(
            f"{dataset} {split}: missing {names}; pass download=True "
            f"or run: {download_command('--dataset', dataset, root=root)}"
        )
    by_kind = {e.kind: e for e in entries}
    images = read_array(by_kind["images"], root, verify=verify, catalogue=catalogue)
    labels = read_array(by_kind["labels"], root, verify=verify, catalogue=catalogue)
    _check_pair(dataset, split, images, labels, by_kind["labels"].file.path)
    return images, labels


def _loadable(dataset: object) -> str:
    """``dataset`` as a name load takes (kmnist, k49: any case, or another library's name).

    An unknown name lists only those two; Kuzushiji-Kanji is pointed to its own loader.
    """
    if canonical(dataset, DATASET_NAMES, DATASET_ALIASES) == "kkanji":
        raise UnsupportedFormat(
            "kkanji is a folder of 64x64 PNG files, not arrays: use kmnist.load_kanji()"
        )
    return dataset_name(dataset, tuple(CLASSMAPS))


def _entries(
    dataset: str,
    split: str,
    format: str | None,
    root: Path,
    catalogue: Sequence[Entry] | None = None,
) -> list[Entry]:
    """The images and labels entries to read: the asked format, or the first complete one."""
    if dataset == "kkanji":
        raise UnsupportedFormat(
            "kkanji is a folder of 64x64 PNG files, not arrays: use kmnist.load_kanji()"
        )
    if split not in SPLITS:
        guess = closest(split, SPLITS)  # "Test", " test": named, not guessed at
        hint = f"; did you mean {guess!r}?" if guess else ""
        raise UnsupportedFormat(
            f"unknown split {split!r:.60} for load{hint} (choose from {', '.join(SPLITS)})"
        )
    if format is not None and not isinstance(format, str):
        # 0, False or [] were taken as "whichever is there", and 1 was named
        # "kmnist has no 1 format": a format is a name.
        raise TypeError(
            f"format must be 'npz', 'mnist' or None, not {type(format).__name__} {format!r:.60}"
        )
    if format == "":
        raise UnsupportedFormat(unknown("format", format, DATASETS[dataset].formats))
    # Raises UnknownDataset / UnsupportedFormat, naming the choices.
    select(dataset, format, split, entries=catalogue)
    formats = [format] if format else list(DATASETS[dataset].formats)
    candidates = [_pair(dataset, f, split, catalogue) for f in formats]
    for pair in candidates:
        if all(local_path(root, e.file).is_file() for e in pair):
            return pair
    return candidates[0]


def _pair(dataset: str, format: str, split: str, catalogue: Sequence[Entry] | None) -> list[Entry]:
    chosen = select(dataset, format, split, CURRENT_RELEASE, entries=catalogue)
    return [e for e in chosen if e.kind in ("images", "labels")]


def read_array(
    entry: Entry, root: Path, *, verify: bool = True, catalogue: Sequence[Entry] | None = None
) -> Array:
    """Decode one catalogued file (IDX or NumPy) into its array, checking its structure."""
    path = local_path(root, entry.file)
    try:
        return _read_array(entry, path, verify=verify, catalogue=catalogue)
    except OSError as exc:  # not the file's bytes: this user may not read them
        # The file refused may be another (the MNIST file a built .npz is checked against).
        raise unreadable(exc.filename or path, exc) from exc


def _read_array(
    entry: Entry, path: Path, *, verify: bool, catalogue: Sequence[Entry] | None
) -> Array:
    if verify:
        from ..downloader.derive import check_derived, is_derived

        try:
            # Built from the MNIST file: arrays compared.
            if is_derived(entry.file, path, catalogue=catalogue):
                check_derived(entry.file, path, catalogue=catalogue)
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
    note = known_stale(entry.file, path)
    if note is None or note in exc.got:
        return exc
    got = f"{exc.got} ({note}; delete it and download again)"
    return VerificationError(exc.path, exc.source, exc.what, exc.expected, got)


def _check_pair(dataset: str, split: str, images: Array, labels: Array, labels_name: str) -> None:
    if len(images) != len(labels):
        raise bad_structure(f"{dataset} {split}", f"{len(images)} labels", f"{len(labels)}")
    classes = len(CLASSMAPS[dataset])
    if len(labels) and int(labels.max()) >= classes:
        raise bad_structure(labels_name, f"labels below {classes}", f"label {int(labels.max())}")


def kanji_arrays(
    index: KanjiIndex, *, indices: Sequence[int] | None = None
) -> tuple[Array, NDArray[np.int64]]:
    """Decode Kanji PNGs (all, or ``indices`` of ``index.paths``) into arrays.

    Images are ``uint8`` N x 64 x 64; labels ``int64``, since 3,832 classes do
    not fit in a byte. Needs Pillow. All of them take 575 MB: pass
    ``indices`` for a subset.
    """
    import numpy as np

    from ..optional import import_pillow
    from .kanji import SIDE, KanjiIndex

    if not isinstance(index, KanjiIndex):
        raise TypeError(
            "index must be a kmnist.KanjiIndex (from kmnist.load_kanji), "
            f"not {type(index).__name__}"
        )
    n = len(index.paths)
    if indices is None:
        chosen = list(range(n))
    else:
        # Checked before Pillow is asked for: "tuple index out of range" named
        # neither the index nor how many images there are.
        chosen = [
            check_index(i, n, f"indices[{k}]")
            for k, i in enumerate(check_sequence(indices, "indices", "integers"))
        ]
    image_mod = import_pillow("decoding the Kanji PNGs")
    out = np.empty((len(chosen), SIDE, SIDE), dtype=np.uint8)
    for k, i in enumerate(chosen):
        path = index.paths[i]
        try:
            with image_mod.open(path) as im:
                # The size from the header, before a pixel is decoded: a PNG
                # that claims 9,000 x 9,000 is refused without 81 MB for it.
                if im.size != (SIDE, SIDE):
                    raise bad_structure(str(path), f"{SIDE}x{SIDE}", "x".join(map(str, im.size)))
                out[k] = np.asarray(im.convert("L"))
        # PIL.UnidentifiedImageError is an OSError. DecompressionBombError is a
        # header that claims more pixels than Pillow agrees to decode, its
        # Warning the same below twice as many, raised where warnings are errors.
        except (
            OSError,
            image_mod.DecompressionBombError,
            image_mod.DecompressionBombWarning,
        ) as exc:
            if system_error(exc):  # not the PNG's bytes: this user may not read them
                raise unreadable(path, exc) from exc
            raise bad_structure(str(path), "a PNG image", f"{type(exc).__name__}: {exc}") from None
    labels = np.asarray([index.labels[i] for i in chosen], dtype=np.int64)
    return out, labels
