"""kmnist: the Kuzushiji datasets on disk, verified, from any working mirror.

The heavy modules (requests, numpy) are imported by the functions that need
them, so that ``import kmnist`` and ``kmnist-download --help`` stay instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

# load, classmap and info are imported here, not in wrapper functions, because each
# shares its name with its module: importing kmnist.load lazily would rebind
# the attribute ``kmnist.load`` to the module after the first call. Their own
# heavy imports (numpy) stay inside the functions.
from .classmap import CharClass, classmap
from .errors import (
    DownloadError,
    DownloadsFailed,
    KmnistError,
    MissingDependency,
    NotDownloaded,
    NotEnoughSpace,
    UnknownDataset,
    UnsafeArchive,
    UnsupportedFormat,
    UsageError,
    VerificationError,
)
from .info import DatasetInfo, info
from .load import kanji_arrays, load
from .manifest import BUILTIN_MIRRORS, DATASETS, Mirror, RemoteFile, Structure

if TYPE_CHECKING:
    from collections.abc import Sequence

    from . import datasets
    from .kanji import KanjiCheck, KanjiIndex, check_kanji, extract_kanji, load_kanji
    from .kanjisplit import kanji_split

# The Kanji archive's names are looked up on first use (PEP 562): tarfile and
# the archive checks cost ~25 ms that a download or a load never needs.
_LAZY = {
    "KanjiCheck": "kanji",
    "KanjiIndex": "kanji",
    "check_kanji": "kanji",
    "extract_kanji": "kanji",
    "load_kanji": "kanji",
    "kanji_split": "kanjisplit",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "datasets":  # kmnist.datasets after a bare "import kmnist"; torch stays out
        return importlib.import_module(".datasets", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kmnist' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once found, an ordinary attribute
    return value


__version__ = "0.1.0"

__all__ = [
    "BUILTIN_MIRRORS",
    "DATASETS",
    "CharClass",
    "DatasetInfo",
    "DownloadError",
    "DownloadsFailed",
    "KanjiCheck",
    "KanjiIndex",
    "KmnistError",
    "Mirror",
    "MissingDependency",
    "NotDownloaded",
    "NotEnoughSpace",
    "RemoteFile",
    "Structure",
    "UnknownDataset",
    "UnsafeArchive",
    "UnsupportedFormat",
    "UsageError",
    "VerificationError",
    "__version__",
    "check_kanji",
    "classmap",
    "datasets",
    "download",
    "download_files",
    "extract_kanji",
    "info",
    "kanji_arrays",
    "kanji_split",
    "load",
    "load_kanji",
]


def download_files(
    files: Sequence[RemoteFile],
    root: str | Path,
    *,
    mirrors: Sequence[str | Mirror] | None = None,
    progress: bool = True,
    force: bool = False,
    flat: bool = False,
    **options: Any,
) -> list[Path]:
    """Fetch ``files`` into ``root/<path>``, verified; return their final paths.

    ``flat`` puts each into ``root/<name>`` instead. ``mirrors`` are base URLs
    (http, https, ``file://``), URL templates with ``{path}`` or ``{name}``,
    plain folders, or :class:`Mirror` objects; by default ``KMNIST_MIRROR`` or
    the built-in list. Raises a :class:`KmnistError` subclass when a file
    cannot be had.
    """
    from .fetch import Downloader

    d = Downloader(mirrors=mirrors, progress=progress, **options)
    return [r.target for r in d.fetch(list(files), Path(root), force=force, flat=flat)]


def download(
    dataset: str | Sequence[str],
    format: str | None = None,
    split: str = "all",
    root: str | Path | None = None,
    *,
    release: str = "2019",
    mirrors: Sequence[str | Mirror] | None = None,
    progress: bool = True,
    force: bool = False,
    flat: bool = False,
    **options: Any,
) -> list[Path]:
    """Fetch a dataset (``"kmnist"``, ``"k49"``, ``"kkanji"`` or ``"all"``) into ``root``.

    ``format`` is ``"npz"`` (default where it exists) or ``"mnist"``; class maps
    always come along. ``root`` defaults to ``$KMNIST_DATA``, else ``data``.
    The files go in ``root/<dataset>/``, or straight into ``root`` if ``flat``
    (torchvision's ``KMNIST`` reads ``<its root>/KMNIST/raw`` flat).
    Returns the final paths of the files.
    """
    from .manifest import files_of, select
    from .storage import data_root

    names = [dataset] if isinstance(dataset, str) else list(dataset)
    entries = select(names, format, split, release)
    return download_files(
        files_of(entries),
        data_root(root),
        mirrors=mirrors,
        progress=progress,
        force=force,
        flat=flat,
        **options,
    )
