"""Undo a Content-Encoding: gzip that a server applied to a file anyway.

We ask for ``identity`` and keep the raw bytes, since most servers that label
a ``.gz`` with ``Content-Encoding: gzip`` send the file itself. A few really
compress the body; then the raw bytes fail the checksum and the decoded ones
pass it. Whichever matches the published checksum is kept.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zlib
from pathlib import Path

from ..catalogue.manifest import RemoteFile
from ..errors import VerificationError
from ..signals import deferred
from ..storage import layout as storage
from ..verify import CHUNK, Hasher, check_digests


def gunzip_part(part: Path, file: RemoteFile) -> bool:
    """Replace ``part`` by its gzip-decoded bytes if those are the published file.

    Never writes more than the published size plus one byte (a bomb stops
    there). Returns False, leaving ``part`` as it was, when they are not.
    """
    if file.size is None and not file.verified:
        return False  # nothing to tell the right bytes by
    limit = None if file.size is None else file.size + 1
    hasher = Hasher(file)
    # The decoded bytes go to a fresh name made with O_EXCL (mkstemp), never
    # to a fixed one: a link planted at "<part>.gunzip" was written through,
    # outside the data folder. The .part itself is opened without following
    # a link (storage.open_part), as everywhere else.
    tmp: Path | None = None
    ok = False
    try:
        with deferred():  # no signal between making the file and owning its removal
            fd, name = tempfile.mkstemp(dir=part.parent, prefix=part.name + ".gunzip.")
            tmp = Path(name)
        with os.fdopen(fd, "wb") as dst, storage.open_part(part, "rb") as src:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing only
            while not inflater.eof:
                data = src.read(CHUNK)
                if not data:
                    return False  # cut short
                out = inflater.decompress(data, CHUNK)
                while True:
                    dst.write(out)
                    hasher.update(out)
                    if limit is not None and hasher.size >= limit:
                        return False
                    if not inflater.unconsumed_tail:
                        break
                    out = inflater.decompress(inflater.unconsumed_tail, CHUNK)
        check_digests(hasher, "decoded")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the .part it replaces was 0644
        os.replace(tmp, part)
        ok = True
    except (OSError, zlib.error, VerificationError):
        return False
    finally:
        if not ok and tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return True
