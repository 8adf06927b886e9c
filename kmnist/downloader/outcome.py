"""The run's verdicts: what happened to each file, and how its bytes were checked.

Enums, so that the summary, the notes under it and any JSON decide on
members rather than by searching text; their values are the words shown.
"""

from __future__ import annotations

import enum

from ..catalogue.manifest import RemoteFile


class Outcome(str, enum.Enum):
    """What a run did for one file."""

    FETCHED = "fetched"  # all of it transferred
    RESUMED = "resumed"  # the rest of a .part transferred
    SKIPPED = "skipped"  # already there and checked
    DERIVED = "derived"  # built from the verified MNIST-format file (no mirror had it)


class Check(str, enum.Enum):
    """How a file's bytes were checked."""

    SHA256 = "sha256"
    MD5 = "md5"
    STRUCTURE = "structure only (unverified)"  # 2018: no checksum was ever published
    NOTHING = "unverified"  # neither a checksum nor a structure is known
    DERIVED = "derived"  # its array equals the one of its verified source

    @property
    def verified(self) -> bool:
        """True when the bytes are the published ones (a checksum, or a verified source)."""
        return self in (Check.SHA256, Check.MD5, Check.DERIVED)


def check_of(file: RemoteFile) -> Check:
    """How a catalogued file is checked: by the strongest figure published for it."""
    if file.sha256:
        return Check.SHA256
    if file.md5:
        return Check.MD5
    return Check.STRUCTURE if file.structure is not None else Check.NOTHING


__all__ = ["Check", "Outcome", "check_of"]
