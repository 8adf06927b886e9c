"""One file from one mirror into its .part: one stream, or byte ranges on several connections.

Either way the bytes are hashed as they land, and a transfer cut in the
middle continues from the last byte written. What comes out is a Hasher that
has seen the whole .part; the caller verifies it and gives it its name.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable

from ..buffers import Lender, buffer
from ..errors import VerificationError
from ..storage import layout as storage
from ..storage.lock import held
from ..storage.partfile import SAVE_EVERY, PartFile
from ..urls import origin
from ..verify import Hasher, PipelinedHasher
from . import pieces
from .pieces import Board, Span
from .progress import NullFileProgress
from .retry import Attempts, GiveUp, RetryPolicy
from .transfer import Body, Refused, Transient

if TYPE_CHECKING:
    import requests

    from ..catalogue.manifest import Mirror, RemoteFile
    from .progress import FileProgress
    from .seams import Transport

# A connection's speed is taken over its first 2 MiB (defaults.FAST_CONNECTION
# says why), or over RATE_WINDOW when those take longer: waiting for all 2 MiB
# at 20 MB/s left the other connections of the budget idle for 0.1 s at the
# start of every run, and 30 ms already tell 20 MB/s from 50.
RATE_SAMPLE = 2 << 20
# How long a connection that would split a range waits at a time for one of
# the budget's connections to come free (a closing body wakes it sooner); it
# looks again whether anything is still worth splitting in between.
FREE_WAIT = 0.05  # seconds
RATE_WINDOW = 0.03  # seconds
# The hashing thread wakes for at least this much new prefix: one read and
# one sha256 call per MiB, not one per network chunk.
HASH_STEP = 1 << 20
# Written ranges are recorded (and counted for progress) every 256 KiB.
MARK_STEP = 256 << 10
# A response is read into a buffer lent while it is read: 256 KiB, as large as a read on
# loopback ever returned here (benchmarks/download_speed.py), and 2 MiB for 8.
PIECE_BUFFER = 256 << 10
# The most one write() hands the kernel. Larger writes get larger page-cache
# folios, taken from the large free blocks that a VM's host may have taken
# back (free page reporting): on the project's VM, 512 KiB writes made a
# third to all of the unthrottled runs 2x slower, in sys time copying into
# page cache, while curl (16 KiB writes) was not; 128 KiB still half of
# them, 64 KiB none (benchmarks/download_speed.py, 4 rounds each, in the
# company of curl and aria2c). The extra system calls cost ~10 ms for 430 MB.
WRITE_STEP = 64 << 10
# How often, at most, a writer looks whether its file's lock is still the one
# at the lock's name (an lstat, 2 us): a few hundred times a run, not thousands.
LOCK_CHECK_EVERY = 0.005  # seconds


class RangesStopped(Exception):
    """A later request of a segmented fetch was not answered with its range.

    The server honoured Range for the first piece, then sent the whole file
    (or another range): the job goes on in one stream, as for a server that
    never honoured ranges, instead of giving up on the mirror.
    """


class Cancelled(Exception):
    """The run was interrupted (Ctrl-C)."""


@dataclass(frozen=True)
class JobContext:
    """What a FileJob needs from the run it belongs to, and nothing more.

    Not the Downloader itself: a job sees the run's settings and the few
    calls it makes back (say something, track an open body, ask whether the
    run was cancelled), so that filejob does not depend on run.py.
    """

    session: Callable[[], requests.Session]  # the run's pool, created on first use
    connections: int
    piece: int
    fast_connection: float
    retry: RetryPolicy
    timeout: tuple[float, float]
    log: Callable[[str], None] | None  # told of every request (-v)
    note: Callable[[str], None]
    register: Callable[[Body], None]
    unregister: Callable[[Body], None]
    # Waits up to the seconds given for a connection to the host:port to be
    # free within the budget; True when one is.
    connection_free: Callable[[str, float], bool]
    opening: Callable[[str], contextlib.AbstractContextManager[None]]  # a request under way
    cancelled: Callable[[], bool]
    transport: Transport  # opens a URL: transfer.open_url unless the caller gave another
    # Read buffers for the run's ranged responses: as many stay mapped as were
    # ever read at once (at most the connections), not one per file's worker.
    buffers: Lender = field(default_factory=lambda: Lender(PIECE_BUFFER))


class FileJob:
    def __init__(self, context: JobContext, file: RemoteFile, target: Path, mirror: Mirror) -> None:
        self.context = context
        self.file = file
        self.mirror = mirror
        self.url = mirror.url(file)
        self.where = str(origin(self.url) or "?")  # host:port, as its bodies say
        self.bar: FileProgress = NullFileProgress()
        self.part = PartFile.load(target, file.size)
        self.resumed_from = self.part.have
        self.transferred = 0
        self._lock = threading.Lock()
        # The file's lock, held by the run around this job (None when the
        # caller takes none): its writes stop if it is taken away.
        self._held = held(storage.lock_path(target))
        self._lock_seen = 0.0  # when it was last seen to be ours (time.monotonic)
        self._sampled = threading.Event()  # RATE_SAMPLE bytes have arrived
        # What the job waits for, and since when: the run's watcher says so
        # when nothing has come for a few seconds (a stall must not look like
        # a hang). Updated per request and per counted chunk: O(1).
        self.waiting_for = f"waiting for {self.mirror.name}"
        self.last_activity = time.monotonic()
        self.noticed = False
        # The last body came Content-Encoding: gzip (the run may have to decode it).
        self.encoded = False
        # Bytes kept from before were dropped because the server answered a
        # Range request with the whole file: "resumed" would not be true.
        self.restarted = False
        self._got = 0  # bytes the current body wrote (for a Transient that ends it)

    def run(self) -> Hasher:
        """Fill the .part; return a Hasher that has seen all of it."""
        file, part = self.file, self.part
        storage.check_part(part.path)  # a link planted in its place: refused before any request
        if part.complete():
            return self._hash_existing()
        # A file too small to share goes on one connection: a second one would
        # only add a request's latency. Anything larger starts with its first
        # piece as a probe, and the probe's speed decides (_choose_connections):
        # a 3 MB file on a host that caps each connection gets two connections,
        # an 18 MB one all of them, while on a fast host both stay on one.
        one_stream = (
            self.mirror.is_local
            or self.context.connections == 1
            or (file.size is not None and file.size < 2 * min(self.context.piece, pieces.MIN_SPLIT))
        )
        return self._sequential(None) if one_stream else self._segmented()

    # -- what the run asks of a job -------------------------------------------

    @property
    def part_path(self) -> Path:
        """The ``.part`` file the job fills (verified, then promoted by the run)."""
        return self.part.path

    def show_progress(self, bar: FileProgress) -> None:
        """Count this job's bytes on ``bar`` from now on."""
        self.bar = bar

    def discard(self) -> None:
        """Forget every byte of the .part: they are not the published ones."""
        self.part.reset()

    def finished(self) -> None:
        """The .part was promoted to its final name: drop what tracked it."""
        self.part.finished()

    # -- one stream ----------------------------------------------------------

    def _sequential(self, first: Body | None, seen: Hasher | None = None) -> Hasher:
        """Append to a prefix .part, resuming with ``Range: bytes=N-`` after a cut.

        ``seen`` has hashed the first bytes of the .part already (the pieces
        fetched before a fast connection went on in one stream); only the rest
        of the prefix is read back.
        """
        part = self.part
        keep = part.as_prefix()
        if seen is None or seen.size > keep:
            seen = Hasher(self.file)
        hasher = PipelinedHasher(self._hash_existing(limit=keep, into=seen))
        try:
            return self._sequential_into(hasher, first).finish()
        finally:
            hasher.finish()

    def _sequential_into(self, hasher: PipelinedHasher, first: Body | None) -> PipelinedHasher:
        file = self.file
        attempts = Attempts(self.context.retry, self._say)
        body = first
        while True:
            self._check_cancel()
            offset = hasher.size
            if file.size is not None and offset == file.size and (offset or self.part.complete()):
                return hasher
            got = -1
            try:
                with _one_try(attempts):
                    if body is None:
                        body = self._open(offset, None)
                    got = self._stream(body, offset, hasher)
            finally:
                if body is not None:
                    self._close(body)
                    body = None
            if got == -1:
                continue  # the try failed and will be made again
            if file.size is None or got == 0 or self.encoded:
                # The server sent all it has (or a 416 after a whole .part, or
                # an encoded body, whose length is not the file's): the bytes decide.
                return hasher

    def _stream(self, body: Body, offset: int, hasher: PipelinedHasher) -> int:
        """Append one body to the .part. Returns bytes written; Transient on a cut."""
        self._check_size(body)
        if body.start != offset:
            # The server sent the whole file (200): what we had goes (the "wb"
            # below truncates the .part).
            hasher.reset()
            self.bar.reset(0)
            if offset and not self.restarted:
                self.restarted = True
                self._say("the server ignored Range: fetching it again from the start")
        # Never a byte past the published size (nor past a 206's range): a
        # body that goes on (no Content-Length, chunked, a 206 without one) is
        # not read past there, and the hash decides.
        limit = _room(self.file, body)
        with storage.open_part(self.part.path, "ab" if body.start else "wb", buffering=0) as fh:
            try:
                got = self._stream_into(fh, body, limit, hasher)
            except Transient as exc:
                exc.got = self._got
                raise
        if body.length is not None and got < body.length:
            cut = Transient(
                f"connection cut after {body.start + got} of {body.start + body.length} bytes"
            )
            cut.got = got
            raise cut
        size = self.file.size
        if body.length is None and size is not None and not self.encoded and got:
            end = body.start + got
            if end < size:
                # No Content-Length (close-delimited or chunked) and the body
                # ended short of the published size: a cut like any other, and
                # counted as a try. Returned as a success, it made the caller
                # ask again at once, without end when the server ignores Range.
                cut = Transient(f"connection closed after {end} of {size} bytes")
                cut.got = got
                raise cut
        return got

    def _stream_into(self, fh: BinaryIO, body: Body, limit: int, hasher: PipelinedHasher) -> int:
        """Read ``body`` into the hasher's buffers, writing each read as it lands.

        One copy from the socket into a buffer, one from the buffer into the
        file; the buffer goes to the hashing thread when full (or at the
        end), so that the thread wakes once per buffer, not per read.
        """
        self._got = got = 0
        buf = hasher.buffer()
        size = len(buf)
        filled = 0
        try:
            while got < limit:
                self._check_cancel()
                n = body.readinto(buf[filled : filled + min(size - filled, limit - got)])
                if not n:
                    break
                self._check_lock()
                _write_all(fh, buf[filled : filled + n], self.part.path)
                filled += n
                self._got = got = got + n
                self._count(n)
                if filled == size:
                    hasher.submit(buf, filled)
                    buf, filled = hasher.buffer(), 0
        finally:
            hasher.submit(buf, filled)  # what was written is hashed, whatever happens next
        return got

    # -- byte ranges on several connections ---------------------------------------

    def _segmented(self) -> Hasher:
        """Fill the gaps of the .part piece by piece, on up to ``connections`` connections.

        The first piece's request is the probe: its answer says whether the
        server honours ranges at all, and its speed how many connections help.
        """
        probe = self._open_first_piece()
        if not probe.ranged or probe.total is None:
            return self._one_stream_after(probe)
        self._check_size_or_close(probe)
        # Always, not only when the .part lacks its full size: a prefix .part
        # (left by a run on one connection) has no record until this writes it.
        self.part.allocate(probe.total)
        workers = _PieceWorkers(self, probe)
        hasher = Hasher(self.file)
        hash_thread = threading.Thread(
            target=self._hash_prefix, args=(hasher, workers.stop), daemon=True
        )
        hash_thread.start()
        try:
            rest_in_one_stream = workers.fetch()
        finally:
            if workers.errors or not self.part.complete():
                workers.stop.set()
                self.part.wake()
            self.part.save()
            hash_thread.join()
        if workers.errors:
            # RangesStopped alone means "the rest in one stream"; beside a real
            # failure it is not one (raised bare, it was a traceback).
            real = [e for e in workers.errors if not isinstance(e, RangesStopped)]
            if not real:
                self._say("the server stopped honouring byte ranges: the rest in one stream")
                return self._sequential(None, hasher)
            raise real[0]
        if rest_in_one_stream and not self.part.complete():
            return self._sequential(None, hasher)  # Range: bytes=<end of the prefix>-
        return hasher

    def _open_first_piece(self) -> Body:
        """Ask for the first missing piece (retried as any request is)."""
        part = self.part
        start = part.missing()[0][0] if part.size is not None else part.contiguous()
        gap_end = part.missing()[0][1] if part.size is not None else start + self.context.piece
        first_end = pieces.first_piece_end(start, gap_end, self.context.piece)
        attempts = Attempts(self.context.retry, self._say)
        probe: Body | None = None
        while probe is None:
            self._check_cancel()
            with _one_try(attempts):
                probe = self._open(start, first_end)
        return probe

    def _one_stream_after(self, probe: Body) -> Hasher:
        """No usable range support: one stream, from whatever the server sent."""
        if probe.ranged:
            self._close(probe)
            return self._sequential(None)
        return self._sequential(probe)

    def _check_size_or_close(self, body: Body) -> None:
        try:
            self._check_size(body)
        except BaseException:
            self._close(body)
            raise

    def _piece(
        self,
        span: Span,
        body: Body | None,
        board: Board,
        stop: threading.Event,
        fh: BinaryIO,
        buffers: Lender,
    ) -> None:
        """Fetch ``span`` into place through ``fh``, resuming within it after a cut.

        The span's end may move down while it is read (another connection took
        its second half): the read stops there, and the rest of the response
        goes with its connection. A read buffer is borrowed from ``buffers``
        while a response is read.
        """
        pos = span.start
        attempts = Attempts(self.context.retry, self._say)
        try:
            while pos < span.end and not stop.is_set():
                self._check_cancel()
                before = pos
                try:
                    with _one_try(attempts):
                        if body is None:
                            body = self._open(pos, span.end)
                        if not body.ranged or body.start != pos:
                            raise RangesStopped()
                        fh.seek(pos)
                        with buffers.lend() as buf:
                            pos, cut = self._write_range(fh, body, pos, span, board, buf)
                        if cut is None and pos < span.end and not _all_sent(body, pos):
                            cut = Transient(
                                f"connection cut at {pos} in {span.start}-{span.end - 1}"
                            )
                        if cut is not None:
                            cut.got = pos - before
                            raise cut
                finally:
                    if body is not None:
                        self._close(body)
                        body = None
        finally:
            board.done(span)
            if body is not None:
                self._close(body)
            self.part.save()

    def _write_range(
        self,
        fh: BinaryIO,
        body: Body,
        pos: int,
        span: Span,
        board: Board,
        view: memoryview,
    ) -> tuple[int, Transient | None]:
        """Write what ``body`` sends at ``pos``, never past the span's end, read into ``view``.

        Returns the new position, and the failure that ended the body early, if any.
        """
        marked = pos  # bytes up to here are recorded in the .part's record
        try:
            while want := board.claim(span, pos, len(view)):
                self._check_cancel()
                n = body.readinto(view[:want])
                if not n:
                    break
                self._check_lock()
                _write_all(fh, view[:n], self.part.path)
                pos += n
                # Recorded in batches: the bookkeeping per network chunk was a
                # measurable share of the CPU time at 64 KiB chunks.
                if pos - marked >= MARK_STEP:
                    self.part.mark(marked, pos)
                    self._count(pos - marked)
                    marked = pos
        except Transient as exc:
            return pos, exc
        finally:
            if pos > marked:
                self.part.mark(marked, pos)
                self._count(pos - marked)
        return pos, None

    def _hash_prefix(self, hasher: Hasher, stop: threading.Event) -> None:
        """Hash the .part as its contiguous prefix grows (a thread beside the receivers)."""
        part = self.part
        assert part.size is not None
        # Unbuffered: a buffered reader may keep bytes it read ahead of the
        # writers (zeros of the unwritten file) and serve them after a seek.
        buf = buffer(HASH_STEP)
        with storage.open_part(part.path, "rb", buffering=0) as fh:
            while hasher.size < part.size:
                # Woken at least every SAVE_EVERY to write the range record
                # when it is due: this thread runs as long as the receivers do.
                end = part.wait_contiguous(hasher.size, stop, step=HASH_STEP, timeout=SAVE_EVERY)
                part.save_due()
                if end <= hasher.size:
                    if stop.is_set():
                        return
                    continue
                fh.seek(hasher.size)
                hasher.feed(fh, end - hasher.size, buf)

    # -- helpers -------------------------------------------------------------

    def _open(self, offset: int, end: int | None) -> Body:
        self.waiting_for = f"waiting for {self.mirror.name} to answer"
        self.last_activity = time.monotonic()
        with self.context.opening(self.where):
            body = self.context.transport(
                self.url,
                offset,
                end=end,
                # None for a folder: no session made, requests not imported.
                session=self.context.session()
                if self.url.startswith(("http://", "https://"))
                else None,
                timeout=self.context.timeout,
                log=self.context.log,
            )
        self.waiting_for = f"no data from {self.mirror.name}"
        self.last_activity = time.monotonic()
        self.encoded = body.encoding == "gzip"
        self.context.register(body)
        return body

    def _say(self, text: str) -> None:
        self.context.note(f"{self.file.path}: {self.mirror.name}: {text}")

    def _close(self, body: Body) -> None:
        self.context.unregister(body)
        body.close()

    def _check_size(self, body: Body) -> None:
        size = self.file.size
        if body.total is not None and size is not None and body.total != size:
            from ..catalogue.manifest import KNOWN_STALE_SIZES

            # Named as --verify names the same bytes, from the size alone.
            known = KNOWN_STALE_SIZES.get((self.file.name, body.total))
            what = f", the size of {known}" if known else ""
            raise VerificationError(
                self.file.path,
                self.mirror.name,
                "size",
                f"{size} bytes",
                f"{body.total} bytes announced{what}",
            )

    def _check_cancel(self) -> None:
        if self.context.cancelled():
            raise Cancelled()

    def _check_lock(self) -> None:
        """Before each write: stop if the file's lock was taken away (LocalFileError).

        Checked after the read, not before it: a read may wait 30 s on a
        silent server, time enough for another process to take a new lock.
        At most one lstat per LOCK_CHECK_EVERY: after a long read always, and
        among reads in quick succession every few milliseconds.
        """
        if self._held is None:
            return
        now = time.monotonic()
        if now < self._lock_seen + LOCK_CHECK_EVERY:
            return  # an lstat per read cost up to 6,600 syscalls a run; a few per second do
        self._lock_seen = now
        if self._held.lost():
            storage.check_lock(self.part.target, self.file.path)

    def _count(self, n: int) -> None:
        with self._lock:
            self.last_activity = time.monotonic()
            self.noticed = False
            self.transferred += n
            if self.transferred >= RATE_SAMPLE and not self._sampled.is_set():
                self._sampled.set()
        self.bar.update(n)

    def _hash_existing(self, limit: int | None = None, into: Hasher | None = None) -> Hasher:
        """Hash the .part (its first ``limit`` bytes), after what ``into`` has seen of it."""
        hasher = into if into is not None else Hasher(self.file)
        want = None if limit is None else limit - hasher.size
        if storage.size_or_none(self.part.path) is not None and want != 0:
            with storage.open_part(self.part.path, "rb") as fh:
                fh.seek(hasher.size)
                hasher.feed(fh, want)
        return hasher


# gzip's worst case on bytes that do not compress (the .gz and .npz files):
# 5 bytes per 64 KiB stored block plus a header and trailer. An encoded body
# may exceed the published size by that much, and no more.
GZIP_SLACK = 1024


def _all_sent(body: Body, pos: int) -> bool:
    """The body ended where its Content-Range said it would (at ``pos``).

    A server may answer a range with less of it than asked (RFC 9110, 14.2),
    saying so: what it sent is whole, and the rest is a new request, not a
    retry. Each such answer moves ``pos`` on, so the loop over them ends.
    """
    return body.length is not None and body.length > 0 and pos == body.start + body.length


def _write_all(fh: BinaryIO, view: memoryview, path: Path) -> None:
    """Write all of ``view`` to an unbuffered file, WRITE_STEP at a time
    (a write may take only part)."""
    while view:
        n = fh.write(view[:WRITE_STEP])
        if not n:
            raise OSError(f"cannot write to {path}")
        view = view[n:]


def _room(file: RemoteFile, body: Body) -> int:
    """How many bytes ``body`` may write: up to the published size (or the
    ceiling of a file whose size was never published), and a range's end."""
    most = file.most_bytes
    room = most - body.start
    if body.encoding:
        room += most // 1000 + GZIP_SLACK
    if body.ranged and body.length is not None:
        room = min(room, body.length)
    return room


class _PieceWorkers:
    """The connections of one segmented download, and when all stop.

    The first worker gets the probe's body (the first piece); its speed over
    its first RATE_SAMPLE bytes, or RATE_WINDOW seconds, decides whether more
    connections are opened. Which range each reads next is the Board's.
    """

    def __init__(self, job: FileJob, probe: Body) -> None:
        self.job = job
        self.probe = probe
        self.board = Board(
            job.part.missing(),
            job.context.piece,
            job.context.connections,
            first_end=None if probe.length is None else probe.start + probe.length,
        )
        first = self.board.take()
        assert first is not None and first.start == probe.start
        self.first = first
        self.stop = threading.Event()  # every worker ends: a failure, or the job is over
        self.carry_on = threading.Event()  # the first worker goes on to further pieces
        self.errors: list[BaseException] = []  # handed to the job, the first one raised
        self.threads: list[threading.Thread] = []

    def fetch(self) -> bool:
        """Fetch the pieces. True when the rest should come in one stream instead."""
        self.threads = [
            threading.Thread(target=self._work, args=((self.first, self.probe),), daemon=True)
        ]
        rest_in_one_stream = False
        try:
            started = time.monotonic()
            self.threads[0].start()
            rate = self._first_rate(started)
            rest_in_one_stream = self._choose_connections(rate)
            for t in self.threads:
                t.join()
            if not self.errors and not rest_in_one_stream:
                # Whatever no worker took (the first one ended its piece before
                # it was told to go on): this thread fetches it.
                self._work()
        except BaseException:
            self.stop.set()
            for t in self.threads:
                if t.is_alive():
                    t.join()
            raise
        return rest_in_one_stream

    def _first_rate(self, started: float) -> float:
        """Bytes per second of the first connection, over its first RATE_SAMPLE
        bytes or RATE_WINDOW seconds, whichever comes first.

        Parallel connections help when one connection is the bottleneck (a
        capped or distant host); when one already outruns the disk and the
        hash (loopback, a fast LAN), more only compete for the CPU.
        """
        job = self.job
        deadline = started + RATE_WINDOW
        while self.threads[0].is_alive():
            left = deadline - time.monotonic()
            if left <= 0 or job._sampled.wait(min(left, 0.05)):
                break
        return job.transferred / max(time.monotonic() - started, 1e-6)

    def _choose_connections(self, rate: float) -> bool:
        """Open more connections, go on with one, or (True) take the rest in one stream."""
        job, first = self.job, self.first
        part = job.part
        # What is missing past the first piece (a gap may start inside it).
        rest = [(max(a, first.end), b) for a, b in part.missing() if b > first.end]
        if rate < job.context.fast_connection:
            self.carry_on.set()  # before the look below: the first worker sees one or the other
            first_goes_on = self.threads[0].is_alive()
            # As many as the bytes left can keep busy, pieces and split-off
            # halves, within the budget; the first connection is one of them.
            more = min(job.context.connections, self.board.room()) - first_goes_on
            added = [threading.Thread(target=self._work, daemon=True) for _ in range(more)]
            self.threads += added
            for t in added:
                t.start()
            return False
        if part.contiguous() >= first.start and rest == [(first.end, part.size)]:
            # Fast, and the rest is one gap to the end: after this piece it
            # comes in one request, hashed as it arrives.
            return True
        self.carry_on.set()  # fast, but with holes to fill: one connection, piece by piece
        return False

    def _work(self, initial: tuple[Span, Body] | None = None) -> None:
        """One connection: its initial piece (the probe's), then pieces from the board.

        The .part is opened once per connection, not per piece.
        """
        job, board, stop, buffers = self.job, self.board, self.stop, self.job.context.buffers
        probe = initial[1] if initial is not None else None
        try:
            span = initial[0] if initial is not None else self._next()
            if span is None:
                return
            with storage.open_part(job.part.path, "r+b", buffering=0) as fh:
                body, probe = probe, None  # _piece closes it from here on
                job._piece(span, body, board, stop, fh, buffers)
                if initial is not None and not self.carry_on.is_set():
                    return
                while not stop.is_set() and (span := self._next()) is not None:
                    job._piece(span, None, board, stop, fh, buffers)
        except BaseException as exc:  # handed to the job by _segmented
            self.errors.append(exc)
            self.stop.set()
        finally:
            if probe is not None and initial is not None:  # never reached _piece
                board.done(initial[0])
                job._close(probe)

    def _next(self) -> Span | None:
        board = self.board
        span = board.take(split=False)
        if span is not None or len(self.threads) == 1:
            return span  # alone (a fast connection filling holes), no range to split
        # Only a split is left. Its half is worth taking on a connection that
        # is free now: one that first waited for the pool would have stopped
        # the range's owner short for nothing but another request. A worker
        # that just ended a piece has freed its own.
        job = self.job
        while not self.stop.is_set() and board.splittable():
            job._check_cancel()
            if job.context.connection_free(job.where, FREE_WAIT):
                return board.take(split=True)
        return None


@contextlib.contextmanager
def _one_try(attempts: Attempts) -> Iterator[None]:
    """One try of a request: a Transient failure is counted (and waited out) and
    swallowed, so the caller tries again; a Refused one ends this mirror."""
    try:
        yield
    except Transient as exc:
        # A stall counts as fruitless even if it trickled a few bytes: otherwise
        # a server at 1 byte/s would be retried max_tries times.
        attempts.failed(exc, progressed=exc.got > 0 and not exc.stalled)
    except Refused as exc:
        raise GiveUp(str(exc)) from None
