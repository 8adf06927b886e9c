"""The typed request (what to fetch, where, how) that the command, questions and API build.

Frozen and built by keyword; nothing here imports requests or the thread
pool (the Downloader is imported when a request is carried out), so the
command can build one without paying for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..catalogue.manifest import Entry, Mirror, RemoteFile
from .defaults import CONNECTIONS, FAST_CONNECTION, JOBS, PIECE, TIMEOUT

if TYPE_CHECKING:
    import requests

    from .progress import Progress
    from .retry import RetryPolicy
    from .run import Downloader, Result
    from .seams import Transport


@dataclass(frozen=True)
class DownloadOptions:
    """How to download: every setting of a run, with the command's defaults.

    ``mirrors``: base URLs, URL templates, folders or :class:`Mirror` objects
    (None: ``KMNIST_MIRROR`` or the built-in list). ``progress``: a bar on
    stderr, or a :class:`Progress` of the caller's. ``timeout``: (connect,
    read) seconds. ``catalogue`` and ``transport`` are the seams (see
    :mod:`kmnist.downloader.seams`): None, the manifest and ``open_url``.
    """

    mirrors: tuple[str | Mirror, ...] | None = None
    progress: bool | Progress = True
    force: bool = False  # fetch again even what is verified
    flat: bool = False  # root/<name> rather than root/<path>
    jobs: int = JOBS
    connections: int = CONNECTIONS
    timeout: tuple[float, float] = TIMEOUT
    retry: RetryPolicy | None = None
    session: requests.Session | None = None  # a caller's session stays the caller's to close
    piece: int = PIECE
    fast_connection: float = FAST_CONNECTION
    log: Callable[[str], None] | None = None  # told of every request (-v)
    catalogue: Sequence[Entry] | None = None
    transport: Transport | None = None
    # Build a catalogued KMNIST .npz from its MNIST-format file when no mirror
    # gives the published one. Off unless the dataset path (kmnist.download,
    # the command, the questions) turns it on: download_files returns the
    # bytes asked for or fails.
    derive: bool = False

    def downloader(self) -> Downloader:
        """A Downloader with these settings."""
        from .run import Downloader

        return Downloader(
            mirrors=self.mirrors,
            progress=self.progress,
            jobs=self.jobs,
            connections=self.connections,
            timeout=self.timeout,
            retry=self.retry,
            session=self.session,
            piece=self.piece,
            fast_connection=self.fast_connection,
            log=self.log,
            catalogue=self.catalogue,
            transport=self.transport,
            derive=self.derive,
        )


@dataclass(frozen=True)
class DownloadRequest:
    """What to fetch (``files``), where (``root``), and how (``options``)."""

    files: tuple[RemoteFile, ...]
    root: Path
    options: DownloadOptions = field(default_factory=DownloadOptions)


def fetch(request: DownloadRequest) -> list[Result]:
    """Carry out a request: plan, then fetch what the plan says; the results in its order."""
    o = request.options
    return o.downloader().fetch(request.files, request.root, force=o.force, flat=o.flat)


__all__ = ["DownloadOptions", "DownloadRequest", "fetch"]
