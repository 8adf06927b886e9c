"""A .part file and the record of which of its bytes have arrived.

A plain .part holds a prefix: its size says how much is there. A .part
fetched in byte ranges over several connections is allocated at full size and
filled out of order, so its size says nothing; the ranges written are then
recorded beside it in ``<name>.part.json``. That record only ever lags behind
the bytes (it is updated after they are written), so a resume may refetch a
little, but never trusts bytes that are not there.
"""

from __future__ import annotations

import bisect
import json
import os
import threading
import time
from pathlib import Path

from ..errors import UnsafePath
from . import layout as storage
from . import safeopen

STATE_SUFFIX = ".json"

# A .part filled in ranges has its record rewritten at least this often while
# bytes arrive, not only when a range ends: ranges are 8-16 MiB, and a process
# killed (SIGKILL, the OOM killer, a batch scheduler's hard limit) lost up to a
# range per connection, a whole 3 MB file in one audit. One small atomic file
# write a second costs nothing next to the bytes.
SAVE_EVERY = 1.0


def state_path(target: Path) -> Path:
    return storage.part_path(target).with_name(storage.part_path(target).name + STATE_SUFFIX)


class PartFile:
    """Thread-safe record of the valid byte ranges of one .part."""

    def __init__(self, target: Path, size: int | None, done: list[tuple[int, int]]) -> None:
        self.target = target
        self.path = storage.part_path(target)
        self.state = state_path(target)
        self.size = size
        self._done = _merge(done)
        self._cond = threading.Condition()
        self._want = 0  # the prefix end the hashing thread waits for
        # Whether the record is in use (the .part filled in ranges, at full
        # size); saves are serialised with the changes that drop the record,
        # so that a late periodic save never brings back one that was dropped.
        self._ranged = False  # set by the first save (allocate, a range's end)
        self._save_lock = threading.Lock()
        self._next_save = 0.0
        self._unsaved = False  # bytes marked since the record was last written

    # -- reading the disk ----------------------------------------------------

    @classmethod
    def load(cls, target: Path, size: int | None, *, tidy: bool = True) -> PartFile:
        """What is usable of an existing .part for a file of ``size`` bytes (None: unknown).

        ``tidy``: drop the range record of a .part that is gone (or is a link,
        a folder, a hard link: not ours to resume). Only under the file's lock;
        a plan only looks (it dropped the record that a run in another process,
        or the next one, would resume from, even under --dry-run).
        """
        part_size = storage.size_or_none(storage.part_path(target))
        if part_size is None:
            if tidy:
                storage.discard(state_path(target))
            return cls(target, size, [])
        if os.path.lexists(state_path(target)):
            recorded = _read_state(state_path(target))
            if recorded is not None:
                rsize, ranges = recorded
                if (size is None or rsize == size) and part_size <= rsize:
                    # A .part shorter than its record: a run killed between
                    # recording the file's size and giving the .part that size
                    # (allocate), or between cutting a .part to its prefix and
                    # dropping the record (as_prefix). What it holds is still
                    # recorded rightly; nothing past its end is there.
                    return cls(target, rsize, _clip(ranges, part_size))
            # A record that is unreadable or does not match the .part (another
            # size, another release) cannot say which bytes are good: trust none.
            return cls(target, size, [])
        if size is not None and part_size > size:
            return cls(target, size, [])
        return cls(target, size, [(0, part_size)] if part_size else [])

    # -- questions -----------------------------------------------------------

    @property
    def have(self) -> int:
        with self._cond:
            return sum(e - s for s, e in self._done)

    def contiguous(self) -> int:
        """Bytes from offset 0 with no gap."""
        with self._cond:
            return self._done[0][1] if self._done and self._done[0][0] == 0 else 0

    def missing(self) -> list[tuple[int, int]]:
        """The ranges still to fetch (needs a known size)."""
        assert self.size is not None
        with self._cond:
            gaps, at = [], 0
            for s, e in self._done:
                if s > at:
                    gaps.append((at, s))
                at = max(at, e)
            if at < self.size:
                gaps.append((at, self.size))
            return gaps

    def complete(self) -> bool:
        """Whether the .part holds the whole file (an empty file: once the .part exists,
        so that a mirror is still asked for it and the final name has a file to take)."""
        if self.size == 0:
            return storage.size_or_none(self.path) is not None
        return self.size is not None and self.contiguous() == self.size

    # -- changes -------------------------------------------------------------

    def mark(self, start: int, end: int) -> None:
        """Record that ``[start, end)`` is written."""
        with self._cond:
            done = self._done
            prefix = done[0][1] if done and done[0][0] == 0 else 0
            # The common case, once per chunk received: a range grows at its end.
            i = bisect.bisect_right(done, (start, end)) - 1
            if (
                i >= 0
                and done[i][0] <= start <= done[i][1]
                and (i + 1 == len(done) or end < done[i + 1][0])
            ):
                done[i] = (done[i][0], max(done[i][1], end))
            else:
                self._done = _merge([*done, (start, end)])
            # Wake the hashing thread only when the prefix reaches what it
            # waits for: one wake-up per MiB, not one per network chunk.
            if start <= prefix and self._done[0][0] == 0 and self._done[0][1] >= self._want:
                self._cond.notify_all()
            due = False
            self._unsaved = True
            if self._ranged:
                now = time.monotonic()
                due = now >= self._next_save
                if due:
                    self._next_save = now + SAVE_EVERY
        if due:
            self._save(periodic=True)

    def wait_contiguous(
        self,
        beyond: int,
        stop: threading.Event,
        *,
        step: int = 1,
        poll: float = 0.2,
        timeout: float | None = None,
    ) -> int:
        """Block until the contiguous prefix reaches ``beyond + step`` or the end.

        Returns the prefix's end (``beyond`` when ``stop`` was set first, or
        when ``timeout`` seconds passed first).
        """
        end_by = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._want = beyond + step if self.size is None else min(beyond + step, self.size)
            while not stop.is_set() and (end_by is None or time.monotonic() < end_by):
                end = self._done[0][1] if self._done and self._done[0][0] == 0 else 0
                if end >= self._want:
                    return end
                self._cond.wait(poll)
            return beyond

    def wake(self) -> None:
        """Wake a thread in ``wait_contiguous`` now (its ``stop`` was just set).

        Setting the Event alone left the hashing thread asleep until its next
        poll: up to 0.2 s of wall time per large file over loopback, where
        the rest of a file comes in one stream after its first piece.
        """
        with self._cond:
            self._cond.notify_all()

    def allocate(self, size: int) -> None:
        """Give the .part its full size, so ranges can be written anywhere in it.

        The record is written first, and always: a .part of full size without
        one reads as a whole prefix, holes and all (a run killed at the wrong
        moment had the next one hash zeros and fetch the whole file again);
        and a prefix .part resumed in ranges had no record at all until its
        first range ended, so a SIGKILL before that lost every byte of it.
        """
        self.size = size
        self.save()
        with storage.open_part(self.path, "ab") as fh:
            if os.fstat(fh.fileno()).st_size != size:
                fh.truncate(size)

    def save(self) -> None:
        """Write the record atomically (a crash leaves the old one or the new one).

        Through a temporary ``<name>.json.<pid>.<random>`` that is removed
        whatever happens (a full disk, a signal): none is left behind. A link
        at the record's name is replaced, its target untouched.
        """
        self._save(periodic=False)

    def save_due(self) -> None:
        """Write the record if bytes were marked since it was last written, SAVE_EVERY ago.

        Called on a clock, not only by ``mark``: bytes that came in a burst
        and then a stall (a server gone silent for the 30 s of a read
        timeout) were marked within a second of the last save, and nothing
        arrived after them to save them; a process killed in the stall lost them.
        """
        with self._cond:
            due = self._ranged and self._unsaved and time.monotonic() >= self._next_save
        if not due:
            return
        try:
            self._save(periodic=True)
        except OSError:
            # A full disk (or no inode left for the temporary): the record
            # stays as it was, lagging, never lying, and is tried again on the
            # next tick. Raised here, in the hashing thread, it was a
            # traceback on stderr and a thread that hashed no more; the save
            # at a piece's end (or the job's) raises it in the job instead.
            with self._cond:
                self._unsaved = True

    def _save(self, *, periodic: bool) -> None:
        if self.size is None:
            return
        with self._save_lock:
            if periodic and not self._ranged:
                return  # the record was dropped meanwhile: not brought back
            self._ranged = True  # from now on, saved while bytes arrive too
            self._next_save = time.monotonic() + SAVE_EVERY
            with self._cond:
                data = {"size": self.size, "done": [list(r) for r in self._done]}
                self._unsaved = False
            safeopen.replace_text(self.state, json.dumps(data))

    def _drop_record(self) -> None:
        with self._save_lock:
            self._ranged = False
            storage.discard(self.state)
            # A run killed while it replaced the record left a temporary that no
            # later save removes if the rest comes in one stream (no save at all).
            safeopen.clear_leftovers(self.state)

    def as_prefix(self) -> int:
        """Turn into a plain prefix .part (for a sequential fetch): keep the contiguous bytes."""
        keep = self.contiguous()
        if os.path.lexists(self.path):
            with storage.open_part(self.path, "r+b") as fh:
                fh.truncate(keep)
        self._drop_record()
        with self._cond:
            self._done = [(0, keep)] if keep else []
        return keep

    def reset(self) -> None:
        """Forget everything: the bytes are not the right ones."""
        storage.discard(self.path)
        self._drop_record()
        with self._cond:
            self._done = []

    def finished(self) -> None:
        """The .part has been promoted: drop the record."""
        self._drop_record()


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(r for r in ranges if r[1] > r[0]):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _clip(ranges: list[tuple[int, int]], end: int) -> list[tuple[int, int]]:
    """``ranges`` without what lies at or past ``end``."""
    return [(s, min(e, end)) for s, e in ranges if s < end]


def _read_state(path: Path) -> tuple[int, list[tuple[int, int]]] | None:
    try:
        data = json.loads(safeopen.read_text(path))
        size = int(data["size"])
        ranges = [(int(s), int(e)) for s, e in data["done"]]
    # A link in its place is not a record of ours; nor is 1e400 (OverflowError)
    # or JSON nested past Python's recursion limit.
    except (OSError, ValueError, KeyError, TypeError, OverflowError, RecursionError, UnsafePath):
        return None
    if any(not 0 <= s < e <= size for s, e in ranges):
        return None
    return size, ranges
