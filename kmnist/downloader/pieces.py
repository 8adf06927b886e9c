"""Which byte range each connection of a segmented download reads next.

The missing ranges are cut into pieces, handed out in order to whichever
connection is free (as aria2c does with its pieces), so that the contiguous
prefix grows steadily and the hash keeps pace. When no piece is left, a free
connection takes the second half of what another connection still has to
read, again and again, so that all of them end within about one
``MIN_SPLIT`` of each other instead of one piece apart: capped at 20 MB/s, an
8 MiB piece is 0.4 s, and the last round of whole pieces left connections
idle for 0.1-0.2 s of a 3 s run (benchmarks/download_speed.py, capped).

The connection that is cut short stops at its new end and drops the rest of
its response (HTTP/1.1 cannot stop a body midway without closing the
connection): at most what was already in flight on it, a few hundred KiB,
is received twice. aria2c splits its segments the same way.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

# A range is split only when both halves are at least this long: 1 MiB is
# 50 ms at 20 MB/s, long against the request it costs (about 1 ms of CPU and
# a round trip), short against a piece.
MIN_SPLIT = 1 << 20
# Split points fall on page boundaries.
ALIGN = 4096


@dataclass(eq=False)  # identity: spans are kept in a set while read
class Span:
    """``[start, end)`` of the file, read by one connection.

    ``end`` moves down when another connection takes the second half.
    Bytes below ``claimed`` are being read, or were read, by the owner.
    """

    start: int
    end: int
    claimed: int = field(init=False)

    def __post_init__(self) -> None:
        self.claimed = self.start


class Board:
    """The pieces of one file not yet taken, and those being read.

    Thread-safe: every connection of the file asks it for its next span and
    claims each read from it, so that a split never takes bytes a read has
    already asked for.
    """

    def __init__(
        self,
        missing: list[tuple[int, int]],
        piece: int,
        connections: int = 1,
        *,
        first_end: int | None = None,
        min_split: int | None = None,
        align: int = ALIGN,
    ) -> None:
        self.min_split = MIN_SPLIT if min_split is None else min_split
        self.align = align
        self._queue = deque(Span(a, b) for a, b in cut(missing, piece, connections, first_end))
        self._reading: set[Span] = set()
        self._lock = threading.Lock()
        self.splits = 0  # how many times a range was split (tests read it)

    def queued(self) -> int:
        """Pieces not taken yet."""
        return len(self._queue)

    def room(self) -> int:
        """How many connections the bytes not claimed yet could keep busy.

        Each queued piece and each range being read counts once, or as many
        times as it holds MIN_SPLIT, since splitting can share it that far.
        """
        with self._lock:
            spans = [*self._queue, *self._reading]
            return sum(max(1, (s.end - s.claimed) // self.min_split) for s in spans)

    def splittable(self) -> bool:
        """Whether a range being read is long enough to give half away."""
        with self._lock:
            return any(s.end - s.claimed >= 2 * self.min_split for s in self._reading)

    def take(self, *, split: bool = True) -> Span | None:
        """The next piece; when none is left, the second half of the longest
        range still being read (``split``); None when there is nothing worth it."""
        with self._lock:
            span: Span | None = None
            if self._queue:
                span = self._queue.popleft()
            elif split:
                span = self._split()
            if span is not None:
                self._reading.add(span)
            return span

    def claim(self, span: Span, pos: int, want: int) -> int:
        """How many bytes from ``pos`` the owner of ``span`` may read now (at most ``want``).

        0 when ``pos`` has reached the span's end, which may have moved down.
        """
        with self._lock:
            n = max(0, min(want, span.end - pos))
            span.claimed = max(span.claimed, pos + n)
            return n

    def done(self, span: Span) -> None:
        """The owner stopped reading ``span`` (finished, failed or stopped)."""
        with self._lock:
            self._reading.discard(span)

    def _split(self) -> Span | None:
        longest = max(self._reading, key=lambda s: s.end - s.claimed, default=None)
        if longest is None:
            return None
        left = longest.end - longest.claimed
        half = (left // 2) // self.align * self.align
        if half < self.min_split or left - half < self.min_split:
            return None
        mid = longest.end - half
        taken = Span(mid, longest.end)
        longest.end = mid
        self.splits += 1
        return taken


def first_piece_end(start: int, gap_end: int, piece: int) -> int:
    """Where the probe's range ends: ``piece`` bytes on, or the gap's end when
    less than two pieces are left (a second request would only split what
    the probe's connection can read on its own, or what others split off)."""
    return gap_end if gap_end - start < 2 * piece else start + piece


def cut(
    missing: list[tuple[int, int]],
    piece: int,
    connections: int = 1,
    first_end: int | None = None,
) -> list[tuple[int, int]]:
    """The missing ranges cut into pieces, in order.

    The first piece is the one the probe asked for: up to ``first_end`` when
    given (the probe's range, asked before the size was known), else
    ``first_piece_end``'s. With several connections, the
    pieces are twice as long until the last ``connections`` pieces' worth:
    a request costs about 2 ms of CPU all told (requests, the pool, the
    record), and 16 MiB pieces took the full set's capped CPU from 1.07x to
    1.01x aria2c's plus the hash; at the end, short pieces keep what is
    received out of order, and read back for the hash after the last byte,
    to one round of ``piece`` (16 MiB pieces cost 0.04 s of wall time there).
    """
    large = 2 * piece if connections > 1 else piece
    tail = connections * piece
    left = sum(b - a for a, b in missing)
    pieces: list[tuple[int, int]] = []
    for gap_start, gap_end in missing:
        at = gap_start
        while at < gap_end:
            if not pieces:
                end = first_piece_end(at, gap_end, piece) if first_end is None else first_end
                end = min(max(end, at + 1), gap_end)
            else:
                end = min(at + (large if left - large >= tail else piece), gap_end)
            pieces.append((at, end))
            left -= end - at
            at = end
    return pieces
