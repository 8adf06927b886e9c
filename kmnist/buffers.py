"""Read buffers of anonymous memory, mapped and given back whole.

A bytearray of 256 KiB or more comes from malloc, which after the first one
serves it from the arena of the thread that asked and keeps the pages when
it is freed: with a thread per connection, each kept a buffer's worth (peak
RSS 42 MB for the full set, issue 21's target is 40). A mapping is zeroed by
the kernel page by page as it is touched (no memset) and unmapped when the
last view of it goes.
"""

from __future__ import annotations

import contextlib
import mmap
import threading
from collections.abc import Iterator


def buffer(size: int) -> memoryview:
    """``size`` writable bytes, for reads into and hashing from."""
    return memoryview(mmap.mmap(-1, size))


class Lender:
    """Buffers of one size, lent while a read is under way and kept for the next.

    A connection that waits for its turn (for a pooled connection, or for a
    retry) holds none: with a buffer per connection for the life of a file,
    workers waiting on the pool kept theirs resident (peak RSS 41 MB for the
    full set). Reused, a buffer costs its page faults once, not per piece.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._free: list[memoryview] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def lend(self) -> Iterator[memoryview]:
        with self._lock:
            buf = self._free.pop() if self._free else None
        if buf is None:
            buf = buffer(self.size)
        try:
            yield buf
        finally:
            with self._lock:
                self._free.append(buf)
