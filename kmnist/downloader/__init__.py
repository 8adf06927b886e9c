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
    from .request import DownloadOptions
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

    Each file is streamed into a ``.part`` beside its final name, checked
    against its size and checksum, and only then renamed; a ``.part`` left by
    an interrupted run is resumed, and a file already there and verified is
    not fetched again. Mirrors are tried in order, each for the files it
    carries.

    The contract: exactly ``files``, in order, each with the size and hashes
    given, or an error and no new final file. Nothing is ever built in place
    of a file (see [download][kmnist.downloader.download] for that), and no
    other path is returned.

    Args:
        files: what to fetch: each a [RemoteFile][kmnist.catalogue.manifest.RemoteFile],
            with a path relative to a mirror's base and to ``root``.
        root: the destination folder, made if missing.
        mirrors: base URLs (http, https, ``file://``), URL templates with
            ``{path}`` or ``{name}``, plain folders, or
            [Mirror][kmnist.catalogue.manifest.Mirror] objects, tried in order.
            ``None``: ``$KMNIST_MIRROR`` when set, else the built-in list.
        progress: a bar on stderr; ``False`` for none, or a ``Progress`` of yours.
        force: fetch again even files that are there and verified.
        flat: put each file in ``root/<name>`` rather than ``root/<path>``.
        jobs: files fetched at once.
        connections: connections to any one host, at most.
        timeout: (connect, read) seconds for each try.
        retry: what is retried and how long to wait
            (``kmnist.downloader.retry.RetryPolicy``).
        session: a ``requests.Session`` of yours (yours to close).
        piece: the byte range asked for at once when a large file is split
            over several connections (twice that until the last round).
        fast_connection: bytes per second above which a large file comes over
            one connection rather than several.
        log: called with one line per request (what ``kmnist-download -v`` prints).
        catalogue: the entries to look files up in, instead of the manifest.
        transport: what opens a URL, instead of the built-in
            ``kmnist.downloader.transfer.open_url``.

    Returns:
        The final path of each file, in the order of ``files``.

    Raises:
        DownloadError: one file could not be had from any mirror (the reason
            from each mirror is in the message).
        DownloadsFailed: several files could not be had.
        NotEnoughSpace: the files cannot fit on the disk; nothing was fetched.
        DiskFull: the disk filled up (``ENOSPC``) or a quota was reached
            (``EDQUOT``) while a file was written; names the file and the
            space still needed (a ``NotEnoughSpace``).
        KmnistError: any other expected failure (a folder that cannot be
            written, a path that would leave ``root``), as a subclass.
        TypeError: an argument of the wrong type (``files`` or ``mirrors``
            as one string, ``jobs="4"``), named in the message; nothing is
            fetched. ValueError: one out of range (``piece=0``, a NaN or
            negative timeout).

    Examples:
        >>> f = kmnist.RemoteFile(
        ...     "kmnist/kmnist-test-labels.npz",
        ...     5304,
        ...     sha256="660f13a4705431ea2a6391c41ecbe384cd0d932c595a101ec4f3b8989e785046",
        ... )
        >>> [path] = kmnist.download_files([f], "data", progress=False)
        >>> path.as_posix()
        'data/kmnist/kmnist-test-labels.npz'
    """
    from ..catalogue.manifest import check_catalogue, check_mirrors
    from .request import DownloadOptions

    options = DownloadOptions(
        mirrors=check_mirrors(mirrors),
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
        catalogue=check_catalogue(catalogue),
        transport=transport,
        derive=False,  # the contract: the bytes asked for, or an error
    )
    return _fetch(files, root, options)


def _fetch(files: Sequence[RemoteFile], root: str | Path, options: DownloadOptions) -> list[Path]:
    """Run ``options`` over ``files`` into ``root``: the final paths, in order."""
    from ..inputs import check_folder
    from .request import DownloadRequest, check_files, fetch

    request = DownloadRequest(check_files(files), check_folder(root, "root"), options)
    # The files asked for, in their order: a build also fetches its
    # MNIST-format sources, and its results come last.
    targets = {r.file: r.target for r in fetch(request)}
    return [targets[f] for f in request.files if f in targets]


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
    """Fetch a dataset (``"kmnist"``, ``"k49"``, ``"kkanji"`` or ``"all"``) into ``root``, verified.

    The class maps of Kuzushiji-MNIST and Kuzushiji-49 always come along. The
    files go in ``root/<dataset>/``, or straight into ``root`` with
    ``flat=True`` (torchvision's ``KMNIST`` reads ``<its root>/KMNIST/raw``
    flat). The keywords after ``release`` are
    [download_files][kmnist.downloader.download_files]'s, with the same
    defaults as ``kmnist-download``.

    Args:
        dataset: a name, ``"all"``, or several names.
        format: ``"npz"`` (the default where a dataset has it), ``"mnist"``
            (Kuzushiji-MNIST only) or ``"tar"`` (Kuzushiji-Kanji).
        split: ``"train"``, ``"test"`` or ``"all"``; the Kanji archive has no
            split and comes whole with any.
        root: the data folder; ``None``: ``$KMNIST_DATA``, else ``data``.
        release: ``"2019"`` (current, checked against published checksums) or
            ``"2018"`` (the first release, checked by structure only).
        catalogue: also where the dataset is looked up.
        derive: when no mirror gives a Kuzushiji-MNIST ``.npz`` (every mirror
            that lists it tried from byte 0), build it from the verified
            MNIST-format file of the same split, as a last resort that the
            output and the file's stamp say out loud (``kmnist.load`` and
            ``--verify`` check it by its array). ``False``: the published
            bytes or a failure, as ``kmnist-download --no-derive``.

    Returns:
        The final path of each file.

    Raises:
        UnknownDataset: no such dataset (a [UsageError][kmnist.errors.UsageError]).
        UnsupportedFormat: the dataset has no such format.
        DownloadError: a file could not be had from any mirror.
        DownloadsFailed: several files could not be had.
        NotEnoughSpace: the files cannot fit on the disk.
        DiskFull: the disk filled up while a file was written or built.
        TypeError: an argument of the wrong type, named in the message, as
            in [download_files][kmnist.downloader.download_files]; ValueError:
            one out of range.

    Examples:
        >>> paths = kmnist.download("kmnist", split="test", root="data", progress=False)
        >>> sorted(p.name for p in paths)
        ['kmnist-test-imgs.npz', 'kmnist-test-labels.npz', 'kmnist_classmap.csv']
    """
    from ..catalogue.manifest import check_catalogue, check_mirrors, files_of, select
    from ..inputs import check_folder
    from ..storage.root import data_root
    from .request import DownloadOptions

    # A name, or several; anything else (None, a number: the annotation ignored)
    # goes to select() as a name, which says in an UnknownDataset it knows none such.
    names: list[str] = list(dataset) if isinstance(dataset, (list, tuple)) else [dataset]  # type: ignore[list-item]
    catalogue = check_catalogue(catalogue)
    entries = select(names, format, split, release, entries=catalogue)
    options = DownloadOptions(
        mirrors=check_mirrors(mirrors),
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
    # Named "root" (not --dir) in a message about a library call's argument.
    return _fetch(
        files_of(entries), data_root(None if root is None else check_folder(root, "root")), options
    )


__all__ = ["download", "download_files"]
