"""What a caller may pass in instead of the built-in: the catalogue and the transport.

As pooch takes a ``registry=`` and a ``downloader=``: a catalogue is the
entries a run looks files up in (the manifest's by default), a transport is
what opens one URL (:func:`kmnist.downloader.transfer.open_url` by default).
Tests and embedders pass their own instead of replacing module globals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Callable, Optional, Protocol

from ..catalogue.manifest import Entry

if TYPE_CHECKING:
    import requests

    from .transfer import Body

# The entries a run may use; None: the manifest's (kmnist.catalogue.manifest.ENTRIES).
Catalogue = Optional[Sequence[Entry]]


class Transport(Protocol):
    """Opens ``url`` for bytes ``[offset, end)`` (``end`` None: to the end), as ``open_url``."""

    def __call__(
        self,
        url: str,
        offset: int,
        *,
        end: int | None,
        session: requests.Session | None,  # None for a folder's path
        timeout: tuple[float, float],
        log: Callable[[str], None] | None,
    ) -> Body: ...


__all__ = ["Catalogue", "Transport"]
