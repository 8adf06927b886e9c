"""The downloader: bytes from mirrors onto disk, verified; the library's two calls.

Everything below is imported by the functions that use it, so that
``import kmnist`` and ``kmnist-download --help`` stay free of requests.
"""

from __future__ import annotations

from .defaults import CONNECTIONS, FAST_CONNECTION, JOBS, PIECE, TIMEOUT

# typing and pathlib cost ~5 ms of a 25 ms `--help` (benchmarks/startup.py):
# this module is on that path, so they are imported for the type checker only
# (mypy reads a module-level TYPE_CHECKING = False as typing's).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path
    from typing import Callable

    import requests

    from ..catalogue.manifest import Entry, Mirror, RemoteFile
    from .progress import Progress
    from .retry import RetryPolicy
    from .seams import Transport


def download_files(
    files: Sequence[RemoteFile],
    root: str | Path,
    *,
    mirrors: Sequence[str | Mirror] | None = None,
    progress: bool | Progress = True,
    force: bool = False,
    flat: bool = False,
    jobs: int = JOBS,
    connections: int = CONNECTIONS,
    timeout: tuple[float, float] = TIMEOUT,
    retry: RetryPolicy | None = None,
    session: requests.Session | None = None,
    piece: int = PIECE,
    fast_connection: float = FAST_CONNECTION,
    log: Callable[[str], None] | None = None,
    catalogue: Sequence[Entry] | None = None,
    transport: Transport | None = None,
) -> list[Path]:
    """Fetch ``files`` into ``root/<path>``, verified; return their final paths.

    ``flat`` puts each into ``root/<name>`` instead. ``mirrors`` are base URLs
    (http, https, ``file://``), URL templates with ``{path}`` or ``{name}``,
    plain folders, or :class:`Mirror` objects; by default ``KMNIST_MIRROR`` or
    the built-in list. ``jobs`` files at once, at most ``connections`` per
    host; ``timeout`` is (connect, read) seconds. ``catalogue`` (the entries
    to look files up in) and ``transport`` (what opens a URL) replace the
    built-in ones. Raises a :class:`KmnistError` subclass when a file cannot
    be had. Never anything else: exactly ``files``, in order, each with the
    size and hashes given, or an error and no new final file.
    """
    return _fetch(
        files,
        root,
        mirrors=mirrors,
        progress=progress,
        force=force,
        flat=flat,
        jobs=jobs,
        connections=connections,
        timeout=timeout,
        retry=retry,
        session=session,
        piece=piece,
        fast_connection=fast_connection,
        log=log,
        catalogue=catalogue,
        transport=transport,
        derive=False,
    )


def _fetch(
    files: Sequence[RemoteFile],
    root: str | Path,
    *,
    mirrors: Sequence[str | Mirror] | None,
    progress: bool | Progress,
    force: bool,
    flat: bool,
    jobs: int,
    connections: int,
    timeout: tuple[float, float],
    retry: RetryPolicy | None,
    session: requests.Session | None,
    piece: int,
    fast_connection: float,
    log: Callable[[str], None] | None,
    catalogue: Sequence[Entry] | None,
    transport: Transport | None,
    derive: bool,
) -> list[Path]:
    from .request import DownloadOptions, DownloadRequest, fetch

    options = DownloadOptions(
        mirrors=None if mirrors is None else tuple(mirrors),
        progress=progress,
        force=force,
        flat=flat,
        jobs=jobs,
        connections=connections,
        timeout=timeout,
        retry=retry,
        session=session,
        piece=piece,
        fast_connection=fast_connection,
        log=log,
        catalogue=catalogue,
        transport=transport,
        derive=derive,
    )
    from pathlib import Path

    return [r.target for r in fetch(DownloadRequest(tuple(files), Path(root), options))]


def download(
    dataset: str | Sequence[str],
    format: str | None = None,
    split: str = "all",
    root: str | Path | None = None,
    *,
    release: str = "2019",
    mirrors: Sequence[str | Mirror] | None = None,
    progress: bool | Progress = True,
    force: bool = False,
    flat: bool = False,
    jobs: int = JOBS,
    connections: int = CONNECTIONS,
    timeout: tuple[float, float] = TIMEOUT,
    retry: RetryPolicy | None = None,
    session: requests.Session | None = None,
    piece: int = PIECE,
    fast_connection: float = FAST_CONNECTION,
    log: Callable[[str], None] | None = None,
    catalogue: Sequence[Entry] | None = None,
    transport: Transport | None = None,
    derive: bool = True,
) -> list[Path]:
    """Fetch a dataset (``"kmnist"``, ``"k49"``, ``"kkanji"`` or ``"all"``) into ``root``.

    ``format`` is ``"npz"`` (default where it exists) or ``"mnist"``; class maps
    always come along. ``root`` defaults to ``$KMNIST_DATA``, else ``data``.
    The files go in ``root/<dataset>/``, or straight into ``root`` if ``flat``
    (torchvision's ``KMNIST`` reads ``<its root>/KMNIST/raw`` flat). The other
    keywords are :func:`download_files`'s; ``catalogue`` is also where the
    dataset is looked up. Returns the final paths of the files.

    ``derive``: when no mirror gives a KMNIST ``.npz`` (every mirror that
    lists it tried from byte 0), build it from the verified MNIST-format file
    of the same split (its stamp says so; ``kmnist.load`` and ``--verify``
    check it by its array). False: the published bytes or a failure.
    """
    from ..catalogue.manifest import files_of, select
    from ..storage.root import data_root

    # A name, or several; anything else (None, a number: the annotation ignored)
    # goes to select() as a name, which says in an UnknownDataset it knows none such.
    names: list[str] = list(dataset) if isinstance(dataset, (list, tuple)) else [dataset]  # type: ignore[list-item]
    entries = select(names, format, split, release, entries=catalogue)
    return _fetch(
        files_of(entries),
        data_root(root),
        mirrors=mirrors,
        progress=progress,
        force=force,
        flat=flat,
        jobs=jobs,
        connections=connections,
        timeout=timeout,
        retry=retry,
        session=session,
        piece=piece,
        fast_connection=fast_connection,
        log=log,
        catalogue=catalogue,
        transport=transport,
        derive=derive,
    )


__all__ = ["download", "download_files"]
