"""kmnist: the Kuzushiji datasets on disk, verified, from any working mirror.

The heavy modules (requests, numpy) are imported by the functions that need
them, so that ``import kmnist`` and ``kmnist-download --help`` stay instant.
"""

from __future__ import annotations

from ._version import __version__

# The exceptions are plain classes (the standard library's enum only): cheap.
from .errors import (
    DatasetNotFound,
    DiskFull,
    DownloadError,
    DownloadsFailed,
    ExitStatus,
    FolderError,
    KmnistError,
    LocalFileError,
    MissingDependency,
    NotDownloaded,
    NotEnoughSpace,
    UnknownDataset,
    UnsafeArchive,
    UnsupportedFormat,
    UsageError,
    VerificationError,
)

# typing and pathlib cost ~5 ms of a 25 ms `--help` (benchmarks/startup.py):
# this module is on that path, so they are imported for the type checker only
# (mypy reads a module-level TYPE_CHECKING = False as typing's).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from . import datasets
    from .catalogue.classmap import CharClass, classmap
    from .catalogue.info import DatasetInfo, info
    from .catalogue.manifest import BUILTIN_MIRRORS, DATASETS, Mirror, RemoteFile, Structure
    from .data.kanji import KanjiCheck, KanjiIndex, check_kanji, extract_kanji, load_kanji
    from .data.kanjisplit import kanji_split
    from .data.load import kanji_arrays, load
    from .downloader import download, download_files

# Everything else is looked up on first use (PEP 562), so that a command that
# needs none of it (``kmnist-download --help``) does not pay for it: the
# catalogue's dataclasses, the loaders' hashing and zip readers, the Kanji
# archive's tarfile (~25 ms), and requests with the first download. No module
# of the package shares a name with these (the modules live in subpackages),
# so importing one never rebinds an attribute here.
_LAZY = {
    "BUILTIN_MIRRORS": "catalogue.manifest",
    "DATASETS": "catalogue.manifest",
    "Mirror": "catalogue.manifest",
    "RemoteFile": "catalogue.manifest",
    "Structure": "catalogue.manifest",
    "CharClass": "catalogue.classmap",
    "classmap": "catalogue.classmap",
    "DatasetInfo": "catalogue.info",
    "info": "catalogue.info",
    "load": "data.load",
    "kanji_arrays": "data.load",
    "KanjiCheck": "data.kanji",
    "KanjiIndex": "data.kanji",
    "check_kanji": "data.kanji",
    "extract_kanji": "data.kanji",
    "load_kanji": "data.kanji",
    "kanji_split": "data.kanjisplit",
    "download": "downloader",
    "download_files": "downloader",
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


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "BUILTIN_MIRRORS",
    "DATASETS",
    "CharClass",
    "DatasetInfo",
    "DatasetNotFound",
    "DiskFull",
    "DownloadError",
    "DownloadsFailed",
    "ExitStatus",
    "FolderError",
    "KanjiCheck",
    "KanjiIndex",
    "KmnistError",
    "LocalFileError",
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
