"""The typed request (what to fetch, where, how) that the command, questions and API build.

Frozen and built by keyword; nothing here imports requests or the thread
pool (the Downloader is imported when a request is carried out), so the
command can build one without paying for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..catalogue.manifest import Entry, Mirror, RemoteFile
from ..inputs import check_callable, check_count, check_sequence, described
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

    def __post_init__(self) -> None:
        _check_options(self)

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


def check_files(files: object) -> tuple[RemoteFile, ...]:
    """``download_files``' ``files``: a list of RemoteFile, as a tuple; else a TypeError.

    A string was read as one file per character, and a path or None got
    "'str' object has no attribute 'path'" from deep in the plan.
    """
    checked = check_sequence(files, "files", "kmnist.RemoteFile")
    for n, f in enumerate(checked):
        if not isinstance(f, RemoteFile):
            raise TypeError(f"files[{n}] must be a kmnist.RemoteFile, not {described(f)}")
    return tuple(f for f in checked if isinstance(f, RemoteFile))


def _seconds(value: object, source: str) -> None:
    """A positive, finite number of seconds (a bool, NaN, 0 or inf is no timeout)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{source} must be a number of seconds, not {described(value)}")
    if not 0 < value < math.inf:
        raise ValueError(f"{source} must be a positive, finite number of seconds, not {value!r}")


def _is_retry_policy(value: object) -> bool:
    from .retry import RetryPolicy  # only when one is given: it imports the transfer code

    return isinstance(value, RetryPolicy)


def _check_options(o: DownloadOptions) -> None:
    """Every setting of the right type and range, named as the caller named it.

    The library's keywords reach here unchecked: ``jobs="4"`` got "'<=' not
    supported", ``progress="yes"`` "'str' object has no attribute 'close'" at
    the end of a run, a NaN timeout or ``piece=0`` went on to the network.
    """
    if not isinstance(o.progress, bool) and not all(
        callable(getattr(o.progress, m, None)) for m in ("start", "note", "close")
    ):
        raise TypeError(
            f"progress must be True, False or a kmnist Progress, not {described(o.progress)}"
        )
    check_count(o.jobs, "jobs", minimum=1)
    check_count(o.connections, "connections", minimum=1)
    check_count(o.piece, "piece", minimum=1)
    if not isinstance(o.timeout, (tuple, list)) or len(o.timeout) != 2:
        raise TypeError(
            f"timeout must be (connect, read) seconds, a tuple of two, not {described(o.timeout)}"
        )
    _seconds(o.timeout[0], "timeout[0] (connect)")
    _seconds(o.timeout[1], "timeout[1] (read)")
    fast = o.fast_connection
    if isinstance(fast, bool) or not isinstance(fast, (int, float)):
        raise TypeError(f"fast_connection must be bytes per second, not {described(fast)}")
    if not fast >= 0:  # NaN too
        raise ValueError(f"fast_connection must be 0 or more bytes per second, not {fast!r}")
    if o.retry is not None and not _is_retry_policy(o.retry):
        raise TypeError(f"retry must be a kmnist RetryPolicy or None, not {described(o.retry)}")
    check_callable(o.log, "log")
    check_callable(o.transport, "transport")


def fetch(request: DownloadRequest) -> list[Result]:
    """Carry out a request: plan, then fetch what the plan says; the results in its order."""
    o = request.options
    return o.downloader().fetch(request.files, request.root, force=o.force, flat=o.flat)


__all__ = [
    "DownloadOptions",
    "DownloadRequest",
    "check_files",
    "fetch",
]
