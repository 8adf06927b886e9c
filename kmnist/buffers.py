"""Read buffers of anonymous memory, mapped and given back whole.

A bytearray of 256 KiB or more comes from malloc, which after the first one
serves it from the arena of the thread that asked and keeps the pages when
it is freed: with a thread per connection, each kept a buffer's worth (peak
RSS 42 MB for the full set, issue 21's target is 40). A mapping is zeroed by
the kernel page by page as it is touched (no memset) and unmapped when the
last view of it goes.
"""

from __future__ import annotations

import mmap


def buffer(size: int) -> memoryview:
    """``size`` writable bytes, for reads into and hashing from."""
    return memoryview(mmap.mmap(-1, size))
