"""Hashes and structure checks: is this the published file?"""

from __future__ import annotations

import ast
import hashlib
import queue
import struct
import threading
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from .buffers import buffer
from .catalogue.manifest import KNOWN_STALE, KNOWN_STALE_SIZES, RemoteFile, Structure
from .errors import VerificationError

# 1 MiB reads: large enough that per-call overhead vanishes next to sha256
# (about 1.8 GB/s on one core here), small enough to keep memory flat.
CHUNK = 1 << 20
# The buffers a download reads into and hashes from (three per file being
# streamed): 512 KiB makes one hashing wake-up per 512 KiB, and keeps four
# files at once within 6 MiB (issue 21: peak RSS at most 40 MB).
PIPE_BUFFER = 512 << 10


class Hasher:
    """The digests a file is checked by.

    sha256 always (it is also how KNOWN_STALE recognises old bytes); md5 only
    where no sha256 was published, since a second hash of the same bytes
    adds CPU time and no certainty.
    """

    def __init__(self, file: RemoteFile) -> None:
        self.file = file
        self.reset()

    def reset(self) -> None:
        """Forget every byte seen (the server started the file over)."""
        file = self.file
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False) if file.md5 and not file.sha256 else None
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        self._sha256.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        self.size += len(data)

    def feed(
        self, f: BinaryIO, limit: int | None = None, buf: bytearray | memoryview | None = None
    ) -> None:
        """Hash ``limit`` bytes (or all) of an open file from its position.

        ``buf`` is a reusable read buffer, for callers that feed often.
        """
        view = memoryview(buf) if buf is not None else buffer(CHUNK)
        size = len(view)
        left = limit
        while left is None or left > 0:
            want = size if left is None else min(size, left)
            n = f.readinto(view[:want])  # type: ignore[attr-defined]
            if not n:
                break
            self.update(view[:n])
            if left is not None:
                left -= n

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def md5(self) -> str | None:
        return self._md5.hexdigest() if self._md5 is not None else None


class PipelinedHasher:
    """A Hasher fed from a thread of its own when that saves wall time, with
    buffers it lends and takes back.

    The receiver reads into a buffer it got from ``buffer()``, writes it to
    the file, and hands it over with ``submit``. When this is the only file
    being received, the hashing thread hashes it and lends it out again:
    hashlib releases the GIL on large buffers, as socket reads and file
    writes do, so on a second core the hash costs no wall time, and neither
    side waits for the other until all ``depth`` buffers are with the hasher.
    When other files are being received too, their receivers keep the cores
    busy, and the receiver hashes the buffer itself, while it is still in
    that core's cache: each hand-off to a thread is a GIL transfer and a
    futex wake among the run's other threads, and a buffer read on the other
    core. Over the full set unthrottled this took 0.08 s off both the wall
    and the CPU time (benchmarks/README.md, fifth pass). No bytes object is made per read,
    memory stays at ``depth`` buffers, and the thread (started on the first
    buffer it takes) wakes once per buffer, not per network read. ``size``
    counts what was handed over; ``finish`` waits for the rest and returns
    the Hasher.
    """

    # Pipelined hashers not yet finished, in this process: more than one
    # means another file is being received beside this one.
    _live = 0
    _live_lock = threading.Lock()

    def __init__(self, inner: Hasher, depth: int = 3, size: int = PIPE_BUFFER) -> None:
        self.inner = inner
        self.file = inner.file
        self.size = inner.size
        self._depth = depth
        self._out = 0  # buffers lent to the receiver (only its thread counts them)
        # (buffer, bytes to hash); None: finish.
        self._todo: queue.SimpleQueue[tuple[memoryview, int] | None] = queue.SimpleQueue()
        self._free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
        for _ in range(depth):
            self._free.put(buffer(size))
        self._thread: threading.Thread | None = None
        self._finished = False
        with PipelinedHasher._live_lock:
            PipelinedHasher._live += 1

    def _run(self) -> None:
        while True:
            item = self._todo.get()
            if item is None:
                return
            buf, n = item
            self.inner.update(buf[:n])
            self._free.put(buf)  # after the update: a free buffer is a hashed one

    def buffer(self) -> memoryview:
        """A buffer to read into (waits while every buffer is being hashed)."""
        buf = self._free.get()
        self._out += 1
        return buf

    def submit(self, buf: memoryview, n: int) -> None:
        """Hash the first ``n`` bytes of ``buf`` (from ``buffer()``), then lend it again."""
        inline = PipelinedHasher._live > 1 and self._idle()
        self._out -= 1
        if not n:
            self._free.put(buf)
            return
        if inline:
            # Another file is being received: hashed here, in order, since the
            # thread has nothing left of this file.
            self.inner.update(buf[:n])
            self._free.put(buf)
        else:
            if self._thread is None:
                thread = threading.Thread(target=self._run, daemon=True)
                try:
                    thread.start()  # RuntimeError at the limit of threads: the run says it
                except BaseException:
                    self._free.put(buf)
                    raise
                self._thread = thread
            self._todo.put((buf, n))
        self.size += n

    def _idle(self) -> bool:
        """Every buffer not with the receiver (``buf`` in ``submit`` included) is
        back: nothing is waiting to be hashed."""
        return self._free.qsize() + self._out == self._depth

    def _drain(self) -> None:
        """Wait until the thread has hashed everything handed to it."""
        if self._thread is None:
            return
        taken = [self._free.get() for _ in range(self._depth - self._out)]
        for buf in taken:
            self._free.put(buf)

    def reset(self) -> None:
        self._drain()
        self.inner.reset()
        self.size = 0

    def finish(self) -> Hasher:
        if not self._finished:
            self._finished = True
            with PipelinedHasher._live_lock:
                PipelinedHasher._live -= 1
            if self._thread is not None:
                self._todo.put(None)
                self._thread.join()
        return self.inner


def check_digests(hasher: Hasher, source: str) -> None:
    """Raise VerificationError unless size and every published hash match."""
    file = hasher.file
    if file.size is not None and hasher.size != file.size:
        raise VerificationError(
            file.path, source, "size", f"{file.size} bytes", f"{hasher.size} bytes"
        )
    if file.sha256 is not None and hasher.sha256 != file.sha256:
        got = hasher.sha256
        if got in KNOWN_STALE:
            got += f" ({KNOWN_STALE[got]})"
        raise VerificationError(file.path, source, "sha256", file.sha256, got)
    if file.md5 is not None and file.sha256 is None and hasher.md5 != file.md5:
        got = hasher.md5 or ""
        if hasher.sha256 in KNOWN_STALE:
            got += f" ({KNOWN_STALE[hasher.sha256]})"
        raise VerificationError(file.path, source, "md5", file.md5, got)


def hash_path(file: RemoteFile, path: Path) -> Hasher:
    hasher = Hasher(file)
    with open(path, "rb") as fh:
        hasher.feed(fh)
    return hasher


def known_stale(file: RemoteFile, path: Path) -> str | None:
    """Which older release the bytes at ``path`` are, when they are one of them.

    Hashed only when the size is such a release's (of any name: the 2018
    test images saved as the train images are recognised too): after a
    wrong size, a 20 GB (sparse) file was hashed in full to learn it was none.
    """
    if path.stat().st_size not in {size for _, size in KNOWN_STALE_SIZES}:
        return None
    return KNOWN_STALE.get(hash_path(file, path).sha256)


def expectation(file: RemoteFile) -> str:
    """What a file is checked against, as one string (for verification stamps)."""
    return f"{file.size}:{file.sha256}:{file.md5}:{file.structure}"


def verify_path(file: RemoteFile, path: Path, source: str = "disk") -> str:
    """Check a file on disk; return how it was checked. Raises VerificationError."""
    if file.size is not None:
        actual = path.stat().st_size
        if actual != file.size:  # cheap refusal before reading anything
            raise VerificationError(
                file.path, source, "size", f"{file.size} bytes", f"{actual} bytes"
            )
    if file.verified:
        check_digests(hash_path(file, path), source)
        return "sha256" if file.sha256 else "md5"
    if file.structure is not None:
        check_structure(file, path, source)
        return "structure (no published checksum)"
    return "nothing (no checksum, no structure known)"


# --- structure checks, for files of which no checksum was ever published ---

IDX_TYPES = {0x08: 1}  # unsigned byte, the only element type the datasets use


@dataclass(frozen=True)
class IdxHeader:
    """An IDX file's header: its element type's code and its dimensions."""

    dtype_code: int
    shape: tuple[int, ...]

    @property
    def offset(self) -> int:
        return 4 + 4 * len(self.shape)

    @property
    def payload(self) -> int:
        n = IDX_TYPES.get(self.dtype_code, 1)
        for d in self.shape:
            n *= d
        return n


def parse_idx_header(head: bytes) -> IdxHeader:
    """Parse the header of an (uncompressed) IDX file; ValueError if it is not one."""
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise ValueError("not an IDX file (bad magic number)")
    dtype_code, ndim = head[2], head[3]
    if dtype_code not in IDX_TYPES:
        raise ValueError(f"unsupported IDX element type 0x{dtype_code:02x}")
    if not 1 <= ndim <= 4 or len(head) < 4 + 4 * ndim:
        raise ValueError("truncated IDX header")
    shape = struct.unpack(f">{ndim}I", head[4 : 4 + 4 * ndim])
    return IdxHeader(dtype_code, tuple(shape))


def idx_shape(path: Path) -> tuple[int, ...]:
    """Shape of a gzip IDX file, after checking that its payload is all there."""
    import gzip  # here: a download never needs it, and it is 2 ms of start-up

    try:
        with gzip.open(path, "rb") as g:
            head = g.read(4)
            head += g.read(4 * head[3]) if len(head) == 4 else b""
            header = parse_idx_header(head)
            got = 0
            while True:
                chunk = g.read(CHUNK)
                if not chunk:
                    break
                got += len(chunk)
    # zlib.error: a deflate stream broken mid-way ("invalid distance too far back").
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"not a complete gzip file ({exc})") from None
    if got != header.payload:
        raise ValueError(f"payload is {got} bytes, header says {header.payload}")
    return header.shape


# What zipfile raises for an archive it cannot read: not a zip, an encrypted
# member (RuntimeError), a compression method it lacks (NotImplementedError),
# a cut or corrupt deflate stream (EOFError, zlib.error).
ZIP_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    zlib.error,
    RuntimeError,
    NotImplementedError,
)
NPY_MAGIC = b"\x93NUMPY"
# numpy's own cap on a .npy header (np.load's max_header_size): the header is
# a Python literal, and literal_eval on 300 MB of it took a GB of memory.
NPY_MAX_HEADER = 10_000


@dataclass(frozen=True)
class NpyHeader:
    """A .npy array's header: its dtype, its order and its dimensions."""

    descr: str
    fortran_order: bool
    shape: tuple[int, ...]
    offset: int  # bytes before the first data byte

    @property
    def is_bytes(self) -> bool:
        """Of uint8, the dtype of every published array (any byte order says the same)."""
        return self.descr in ("|u1", "<u1", ">u1")

    @property
    def count(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def read_npy_header(stream: IO[bytes]) -> NpyHeader:
    """The header of the .npy array ``stream`` is at the start of; ValueError for anything else.

    Read as numpy.lib.format reads it (versions 1 to 3), with its limit on
    the header's length, and every field checked before any array is made:
    a dict of exactly ``descr`` (a string: no structured dtypes),
    ``fortran_order`` (a bool) and ``shape`` (non-negative ints). The stream
    is left at the first data byte.
    """
    head = _exactly(stream, 8)
    if head[:6] != NPY_MAGIC:
        raise ValueError("not a .npy array (no \\x93NUMPY at its start)")
    major = head[6]
    if major not in (1, 2, 3):
        raise ValueError(f"a .npy format version {major}, not 1, 2 or 3")
    width = 2 if major == 1 else 4
    size = int.from_bytes(_exactly(stream, width), "little")
    if size > NPY_MAX_HEADER:
        raise ValueError(f"a .npy header of {size:,} bytes (at most {NPY_MAX_HEADER:,})")
    raw = _exactly(stream, size)
    try:
        meta = ast.literal_eval(raw.decode("utf-8" if major == 3 else "latin-1"))
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        raise ValueError("a .npy header that is not a Python literal") from None
    if not isinstance(meta, dict) or set(meta) != {"descr", "fortran_order", "shape"}:
        raise ValueError("a .npy header without exactly descr, fortran_order and shape")
    descr, fortran, shape = meta["descr"], meta["fortran_order"], meta["shape"]
    if not isinstance(descr, str):
        raise ValueError(f"a .npy dtype that is not a plain one ({descr!r:.60})")
    if not isinstance(fortran, bool):
        raise ValueError(f"a .npy fortran_order that is not a bool ({fortran!r:.60})")
    if not isinstance(shape, tuple) or not all(type(d) is int and 0 <= d < 1 << 63 for d in shape):
        raise ValueError(f"a .npy shape that is not a tuple of sizes ({shape!r:.60})")
    return NpyHeader(descr, fortran, shape, 8 + width + size)


def _exactly(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ValueError(f"a .npy header cut short ({len(data)} of {n} bytes)")
    return data


def npz_shape(path: Path, member: str = "arr_0") -> tuple[int, ...]:
    """Shape of ``member`` in an .npz, after checking every zip CRC and the data's length."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
            if bad is not None:
                raise ValueError(f"member {bad} is corrupt")
            name = member + ".npy"
            if name not in z.namelist():
                listed = ", ".join(z.namelist()[:5])
                raise ValueError(f"no array {member!r} (has {listed or 'nothing'})")
            info = z.getinfo(name)
            with z.open(info) as m:
                header = read_npy_header(m)
    except ZIP_ERRORS as exc:
        raise ValueError(f"not a readable .npz ({type(exc).__name__}: {exc})") from None
    if not header.is_bytes:
        # Every published array is of bytes; anything else (a pickle's "|O")
        # is not the structure, whatever its shape.
        raise ValueError(f"a .npy array of dtype {header.descr!r:.40}, not uint8")
    if info.file_size - header.offset != header.count:
        raise ValueError(
            f"{info.file_size - header.offset} bytes of data, the header says {header.count}"
        )
    return header.shape


def structure_of(kind: str, path: Path) -> tuple[int, ...]:
    if kind == "idx":
        return idx_shape(path)
    if kind == "npz":
        return npz_shape(path)
    raise ValueError(f"unknown structure kind {kind!r}")


def check_structure(file: RemoteFile, path: Path, source: str) -> None:
    expected: Structure | None = file.structure
    if expected is None:
        return
    try:
        shape = structure_of(expected.kind, path)
    except ValueError as exc:
        raise VerificationError(
            file.path, source, "structure", f"{expected.kind} {expected.shape}", str(exc)
        ) from None
    if shape != expected.shape:
        raise VerificationError(file.path, source, "shape", str(expected.shape), str(shape))
