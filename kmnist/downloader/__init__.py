"""The downloader: bytes from mirrors onto disk, verified; the library's two calls.

Everything below is imported by the functions that use it, so that
``import kmnist`` and ``kmnist-download --help`` stay free of requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..catalogue.manifest import Mirror, RemoteFile


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
    from .run import Downloader

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
    from ..catalogue.manifest import files_of, select
    from ..storage.root import data_root

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


__all__ = ["download", "download_files"]
