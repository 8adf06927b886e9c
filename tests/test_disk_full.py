"""The disk fills up (or runs out of inodes) at a moment the test chooses.

A small tmpfs holds the data folder; a transport of the test's own fills the
rest of it (a filler file, or empty files until no inode is left) once the
mirror has sent a chosen number of bytes, so the full disk lands on the
``.part`` (one stream or ranged), on its range record (written on a clock as
well as at a piece's end), on the lock or on the stamp. Then the filler is
removed and the same call is made again: it must finish, fetching only what
no ``.part`` or record vouched for. Kanji extraction gets the same treatment
with the tmpfs sized to fill during the unpacking or its member index.

Skipped where this process may not mount a tmpfs (it needs root).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import random
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

import kmnist
from kmnist.catalogue.manifest import RemoteFile
from kmnist.downloader.retry import RetryPolicy
from kmnist.downloader.transfer import Body, open_url
from kmnist.errors import DiskFull, KmnistError
from kmnist.storage.partfile import PartFile

from .server import FaultyServer, Request
from .test_safety import tmpfs

DATA = random.Random(7).randbytes(3 << 20)
PATH = "kmnist/blob.bin"
FILE = RemoteFile(PATH, len(DATA), sha256=hashlib.sha256(DATA).hexdigest())
PIECE = 256 << 10

# A failure in a thread of the download (the one that hashes the .part and
# writes its range record on the clock) is a traceback on stderr: a failure here.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


def fill(disk: Path, *, inodes: bool) -> None:
    """Take what is left of ``disk``: its bytes (one filler file) or its inodes (empty files).

    Bounded: a tmpfs of a few MiB holds at most a few hundred 64 KiB writes,
    and the tmpfs of few inodes has at most a few hundred of them.
    """
    filler = disk / "filler"
    filler.mkdir(exist_ok=True)
    if inodes:
        for i in range(4096):
            try:
                (filler / str(i)).touch()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                return
        raise AssertionError("the inodes never ran out")
    block = b"\xa5" * (64 << 10)
    with contextlib.suppress(FileExistsError):
        (filler / "bytes").touch()
    with open(filler / "bytes", "ab", buffering=0) as fh:
        for _ in range(4096):
            try:
                fh.write(block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
        else:
            raise AssertionError("the disk never filled")
    # What a partial write left is taken too: a page at a time, then nothing.
    with open(filler / "bytes", "ab", buffering=0) as fh:
        for _ in range(64):
            try:
                fh.write(b"\xa5" * 4096)
            except OSError:
                break


class FillingTransport:
    """The real transport; once ``after`` body bytes have been read, the disk is filled."""

    def __init__(self, disk: Path, after: int | None, *, inodes: bool) -> None:
        self.disk = disk
        self.after = after
        self.inodes = inodes
        self.read = 0
        self.filled = False
        self._lock = threading.Lock()

    def __call__(self, url: str, offset: int, **kw: Any) -> Body:
        body = open_url(url, offset, **kw)
        real = body.readinto

        def readinto(buf: memoryview) -> int:
            n = real(buf)
            with self._lock:
                self.read += n
                if self.after is not None and not self.filled and self.read >= self.after:
                    self.filled = True
                    fill(self.disk, inodes=self.inodes)
            return n

        body.readinto = readinto  # type: ignore[method-assign]
        return body


def fetch(root: Path, url: str, transport: Any, connections: int) -> list[Path]:
    return kmnist.download_files(
        [FILE],
        root,
        mirrors=[url],
        progress=False,
        piece=PIECE,
        connections=connections,
        fast_connection=float("inf"),  # every connection opened: the ranged path
        retry=RetryPolicy(sleep=lambda s: None),
        transport=transport,
    )


def asked(requests: list[Request]) -> int:
    """Bytes the requests asked for (by their Range headers; none: the whole file).

    Not what the server counted as sent: a rate-limited answer of the run
    before may still be going out to a closed connection.
    """
    total = 0
    for r in requests:
        if r.range is None:
            total += len(DATA)
            continue
        first, _, last = r.range.removeprefix("bytes=").partition("-")
        total += (int(last) + 1 if last else len(DATA)) - int(first)
    return total


def leftovers(root: Path) -> list[str]:
    """What a failed run may not leave: temporaries of records, stamps, indexes, unpacking."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if ".json." in p.name
        or ".verified." in p.name
        or p.name.startswith(".unpacking-")
        or p.name.endswith(".tmp")
    )


# Seeded: the moment the disk fills (bytes the mirror has sent), the
# connections (1: one stream; 4: ranged), bytes or inodes.
SCENARIOS = [
    (after, connections, inodes)
    for after, connections, inodes in (
        (random.Random(seed).randrange(1, len(DATA)), c, i)
        for seed, (c, i) in enumerate([(c, i) for c in (1, 4) for i in (False, True)] * 3)
    )
]


# A guard: these passed before the fixes of this file as well. They pin the
# invariants (one DiskFull naming the file, no temporary, the rerun asks only
# for what no .part or record vouched for) over the whole write path.
@pytest.mark.parametrize(("after", "connections", "inodes"), SCENARIOS)
def test_a_disk_that_fills_at_any_moment_is_one_error_and_a_rerun_resumes(
    server: FaultyServer, tmp_path: Path, after: int, connections: int, inodes: bool
) -> None:
    server.add(PATH, DATA)
    if connections > 1:
        # Slow enough that the range record is written on the clock too (once
        # a second), not only at a piece's end.
        server.always(PATH, "rate:2000000")
    options = "size=8m,nr_inodes=64" if inodes else "size=5m"
    with tmpfs(tmp_path / "disk", options) as disk:
        root = disk / "data"
        target = root / PATH
        transport = FillingTransport(disk, after, inodes=inodes)
        try:
            fetch(root, server.url, transport, connections)
        except DiskFull as exc:
            text = str(exc)
            assert "\n" not in text and text.startswith(f"{PATH}: ")
            said = "no free inodes" if inodes else "the disk is full"
            assert said in text, text
            assert "run again to resume" in text
            assert isinstance(exc.__cause__, OSError)
            assert not target.exists()
        else:
            # No new inode was needed after the filler came (one stream):
            # the file arrived, verified.
            assert inodes, "the disk was full and yet the download succeeded"
            assert target.read_bytes() == DATA
        assert leftovers(root) == []
        # What the .part and its record vouch for, as the rerun will read them.
        missing = 0 if target.exists() else len(DATA) - PartFile.load(target, FILE.size).have
        shutil.rmtree(disk / "filler")
        before = len(server.requests)
        assert fetch(root, server.url, None, connections) == [target]
        assert target.read_bytes() == DATA
        # Only what no .part or record vouched for was asked for again.
        assert asked(server.requests[before:]) == missing
        assert leftovers(root) == [] and not list(root.rglob("*.part*"))


def test_the_range_record_written_on_the_clock_on_a_disk_out_of_inodes(
    server: FaultyServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Pieces that take over a second each: the record is due on the clock
    # (the hashing thread writes it) before any piece ends. Its temporary
    # needs an inode, and there is none: that was a traceback from the
    # thread ("Exception in thread ... OSError: [Errno 28]"), then the
    # workers' own failure at their piece's end.
    server.add(PATH, DATA)
    server.always(PATH, "rate:400000")
    with tmpfs(tmp_path / "disk", "size=8m,nr_inodes=64") as disk:
        root = disk / "data"
        target = root / PATH
        transport = FillingTransport(disk, 64 << 10, inodes=True)
        with pytest.raises(DiskFull) as caught:
            kmnist.download_files(
                [FILE],
                root,
                mirrors=[server.url],
                progress=False,
                piece=2 << 20,
                connections=2,
                fast_connection=float("inf"),
                retry=RetryPolicy(sleep=lambda s: None),
                transport=transport,
            )
        assert "no free inodes" in str(caught.value)
        assert "Traceback" not in capfd.readouterr().err
        assert leftovers(root) == [] and not target.exists()
        missing = len(DATA) - PartFile.load(target, FILE.size).have
        shutil.rmtree(disk / "filler")
        before = len(server.requests)
        server.always(PATH, "rate:100000000")
        assert fetch(root, server.url, None, 2) == [target]
        assert target.read_bytes() == DATA
        assert asked(server.requests[before:]) == missing


# -- Kuzushiji-Kanji: unpacking and its member index --------------------------

# Noise PNGs (they do not compress): the unpacked folder takes a few pages
# per member, so that a tmpfs of a chosen size fills part-way through.
KANJI = {"U+4E00": 6, "U+4E8C": 5, "U+20B9F": 6}


def kanji_archive(path: Path) -> Path:
    from .test_kanji import make_archive

    return make_archive(path, KANJI)


def _unpack(root: Path) -> kmnist.KanjiCheck:
    return kmnist.extract_kanji(root=root, verify=False)


# Sizes (KiB) below and around what the archive and its unpacked copy take,
# and inode counts from "no lock" to "no index": seeded, bounded.
KANJI_DISKS = sorted(
    {f"size={k}k" for k in random.Random(11).sample(range(28, 92, 4), 6)}
    | {f"size=1m,nr_inodes={n}" for n in random.Random(12).sample(range(7, 30), 5)}
)


@pytest.mark.parametrize("options", KANJI_DISKS)
def test_a_disk_that_fills_while_kanji_is_unpacked_is_one_diskfull(
    tmp_path: Path, options: str
) -> None:
    src = kanji_archive(tmp_path / "src" / "kkanji.tar")
    with tmpfs(tmp_path / "disk", options) as disk:
        root = disk / "data"
        (root / "kkanji").mkdir(parents=True)
        shutil.copy(src, root / "kkanji" / "kkanji.tar")
        try:
            check = _unpack(root)
        except KmnistError as exc:
            assert isinstance(exc, DiskFull), f"{type(exc).__name__}: {exc}"
            text = str(exc)
            said = "no free inodes" if "nr_inodes" in options else "the disk is full"
            assert said in text and "\n" not in text, text
            assert "kkanji" in text and "run again" in text
            assert ".part" not in text  # nothing of the kind is kept for a Kanji unpacking
            assert not (root / "kkanji" / "kkanji2").exists()
        else:
            assert check.ok, check.summary()
        assert leftovers(root) == []
        # Space back: the same call unpacks it, and checks.
        for p in disk.iterdir():
            if p.name.startswith("fill"):
                shutil.rmtree(p)
        subprocess.run(
            ["mount", "-o", "remount,size=4m,nr_inodes=4096", str(disk)], check=True, timeout=30
        )
        assert _unpack(root).ok
        assert leftovers(root) == []


def _no_inode_for_the_lock(tmp_path: Path, disk: Path) -> Path:
    root = disk / "data"
    (root / "kkanji").mkdir(parents=True)
    shutil.copy(kanji_archive(tmp_path / "src" / "kkanji.tar"), root / "kkanji" / "kkanji.tar")
    fill(disk, inodes=True)  # no inode left for the bookkeeping folder or the lock
    return root


def test_no_inode_for_the_kanji_lock_is_not_called_a_full_disk(tmp_path: Path) -> None:
    # It said "is on a full disk (no space left on device): free some space
    # and run again (the .part files are kept for resume)", of a file system
    # with bytes to spare and no .part at all.
    with tmpfs(tmp_path / "disk", "size=1m,nr_inodes=64") as disk:
        root = _no_inode_for_the_lock(tmp_path, disk)
        with pytest.raises(KmnistError) as caught:
            _unpack(root)
        text = str(caught.value)
        assert "no free inodes (file entries)" in text and "full disk" not in text, text
        assert "\n" not in text and "delete some files" in text
        assert not (root / "kkanji" / "kkanji2").exists() and leftovers(root) == []
        shutil.rmtree(disk / "filler")
        assert _unpack(root).ok


def test_no_inode_for_the_kanji_lock_is_a_diskfull(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "size=1m,nr_inodes=64") as disk:
        root = _no_inode_for_the_lock(tmp_path, disk)
        with pytest.raises(DiskFull):
            _unpack(root)
