"""When the network misbehaves: never a hang, an overfilled disk, silence or a crash.

Every case runs against real servers on 127.0.0.1 with a short timeout and a
working mirror after the faulty one; pytest's timeout bounds each case.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kmnist.catalogue.manifest import RemoteFile
from kmnist.downloader import transfer
from kmnist.downloader.progress import FileProgress, NullFileProgress
from kmnist.downloader.run import Downloader, RetryPolicy
from kmnist.errors import DownloadError, KmnistError
from kmnist.storage.layout import lock_path, part_path
from kmnist.storage.lock import FileLock

from .conftest import StartServer, loopback_only, no_part_files
from .server import FaultyServer, SilentPort

DATA = os.urandom(300_000)
PATH = "kmnist/blob.bin"
FILE = RemoteFile(PATH, len(DATA), sha256=hashlib.sha256(DATA).hexdigest())
SHORT = (1.0, 1.0)  # connect and read timeouts: each case ends in seconds


class Notes:
    """A Progress that records what the user would be told."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def start(self, label: str, total: int | None, initial: int) -> FileProgress:
        return NullFileProgress()

    def note(self, text: str) -> None:
        self.lines.append(text)

    def close(self) -> None:
        pass


def run(
    mirrors: list[str], root: Path, files: list[RemoteFile] | None = None, **kw: object
) -> tuple[list[object], Notes]:
    notes = Notes()
    kw.setdefault("retry", RetryPolicy(attempts=2, sleep=lambda s: None))
    kw.setdefault("timeout", SHORT)
    d = Downloader(mirrors=mirrors, progress=notes, **kw)  # type: ignore[arg-type]
    return list(d.fetch(files or [FILE], root)), notes


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A port that accepts connections (the kernel does) and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    try:
        yield f"http://127.0.0.1:{s.getsockname()[1]}"
    finally:
        s.close()


@pytest.fixture
def good(server: FaultyServer) -> FaultyServer:
    server.add(PATH, DATA)
    return server


def test_blackholed_port_then_working_port_arrives(
    blackhole: str, good: FaultyServer, tmp_path: Path
) -> None:
    rs, notes = run([blackhole, good.url], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    assert [r.mirror for r in rs] == [good.url]  # type: ignore[attr-defined]
    # Said in plain words, with where it waited and for how long.
    said = "\n".join(notes.lines)
    assert f"no response from {blackhole.split('//')[1]} within 1 s" in said


def test_a_host_that_drops_our_connects_times_out_in_words(
    good: FaultyServer, tmp_path: Path
) -> None:
    # A firewall that drops packets: connect() itself waits, for the connect timeout.
    silent = SilentPort(dropping=True)
    try:
        rs, notes = run([f"http://127.0.0.1:{silent.port}", good.url], tmp_path)
    finally:
        silent.close()
    assert (tmp_path / PATH).read_bytes() == DATA
    assert [r.mirror for r in rs] == [good.url]  # type: ignore[attr-defined]
    said = "\n".join(notes.lines)
    assert f"connection to 127.0.0.1:{silent.port} timed out after 1 s" in said, said


@pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="tells a connect under way from /proc/net/tcp"
)
def test_a_stopped_run_connects_no_more_and_stops_a_connect_under_way() -> None:
    silent = SilentPort(dropping=True)
    where = ("127.0.0.1", silent.port)
    try:
        # Aborted before: refused at once, whatever the timeout.
        stopped = transfer.Waiting()
        stopped.abort()
        with pytest.raises(ConnectionAbortedError):
            transfer._connected_socket(where, 600.0, None, None, stopped, lambda held: None)
        # Aborted while connect() waits: woken at once, the timeout (600 s) not waited out.
        waiting = transfer.Waiting()
        threading.Thread(target=_abort_once_connecting, args=(silent, waiting), daemon=True).start()
        with pytest.raises(ConnectionResetError):
            transfer._connected_socket(where, 600.0, None, None, waiting, lambda held: None)
    finally:
        silent.close()


def test_a_lookup_is_left_behind_by_a_stop_and_says_what_the_resolver_said(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = socket.getaddrinfo
    asked = threading.Event()
    release = threading.Event()

    def hung(*args: object, **kwargs: object) -> object:
        asked.set()
        release.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "the resolver gave up")

    monkeypatch.setattr(socket, "getaddrinfo", hung)
    try:
        waiting = transfer.Waiting()
        threading.Timer(0.0, lambda: asked.wait(30) and waiting.abort()).start()
        with pytest.raises(ConnectionAbortedError, match=r"looking up kmnist-mirror\.invalid"):
            transfer._addresses("kmnist-mirror.invalid", 80, socket.AF_INET, waiting)
        # Not stopped: the resolver's own answer, in the connecting thread.
        release.set()
        with pytest.raises(socket.gaierror, match="gave up"):
            transfer._addresses("kmnist-mirror.invalid", 80, socket.AF_INET, transfer.Waiting())
    finally:
        release.set()
    # An address needs no resolver: it is not given a thread of its own.
    callers: list[str] = []

    def recorded(*args: object, **kwargs: object) -> object:
        callers.append(threading.current_thread().name)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", recorded)
    assert transfer._addresses("127.0.0.1", 80, socket.AF_INET, transfer.Waiting())
    assert callers == [threading.current_thread().name]


def _abort_once_connecting(silent: SilentPort, waiting: transfer.Waiting) -> None:
    for _ in range(3000):  # 30 s at most
        if silent.waited_on():
            break
        time.sleep(0.01)
    waiting.abort()


def test_a_connection_made_for_a_run_keeps_urllib3s_socket_options(
    good: FaultyServer,
) -> None:
    # The socket is made by us while a run can stop it: as urllib3 makes it
    # (TCP_NODELAY, its default option), and the duplicate kept for the stop is closed.
    session = transfer.make_session("test", 1)
    waiting = transfer.Waiting()
    with transfer.waiting_in(waiting):
        body = transfer.open_url(f"{good.url}/{PATH}", 0, session=session, timeout=SHORT)
    try:
        sock = body._sock
        assert sock is not None
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert waiting._socks == set()
        buf = memoryview(bytearray(len(DATA)))
        got = 0
        while n := body.readinto(buf[got:]):
            got += n
        assert bytes(buf[:got]) == DATA
    finally:
        body.close()
        session.close()


def test_a_host_that_does_not_resolve_is_said_in_words(
    good: FaultyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The resolver answers as one that cannot find the name (no DNS is asked).
    monkeypatch.setattr(socket, "getaddrinfo", loopback_only(socket.getaddrinfo))
    rs, notes = run(["http://kmnist-mirror.invalid/", good.url], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    assert [r.mirror for r in rs] == [good.url]  # type: ignore[attr-defined]
    said = "\n".join(notes.lines)
    assert "could not resolve host kmnist-mirror.invalid" in said, said
    assert "NameResolutionError" not in said and "HTTPConnectionPool" not in said


@pytest.mark.parametrize("form", ["nolength", "chunked", "206"])
def test_a_body_that_never_ends_is_cut_at_the_published_size(
    form: str, server: FaultyServer, tmp_path: Path
) -> None:
    server.add(PATH, DATA)
    server.always(PATH, f"endless:{form}")
    if form == "206":
        # A resume asks for a range; the 206 that answers it never ends.
        target = tmp_path / PATH
        target.parent.mkdir(parents=True)
        part_path(target).write_bytes(DATA[:1000])
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:  # the .part's size while the body flows
        p = part_path(tmp_path / PATH)
        while not stop.wait(0.005):
            try:
                seen.append(p.stat().st_size)
            except FileNotFoundError:
                continue  # not made yet, or renamed to the final name just now

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        run([server.url], tmp_path)
    finally:
        stop.set()
        t.join()
    assert (tmp_path / PATH).read_bytes() == DATA  # the hash decided: the first bytes are the file
    assert max(seen, default=0) <= len(DATA)
    assert server.body_bytes < server.ENDLESS_CAP  # we hung up; the server did not run dry


def test_a_one_byte_per_second_trickle_is_a_stall(
    server: FaultyServer,
    good: FaultyServer,
    tmp_path: Path,
    start_server: StartServer,
) -> None:
    slow = start_server()
    slow.add(PATH, DATA)
    slow.always(PATH, "trickle:0.2")
    rs, notes = run([slow.url, good.url], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    assert [r.mirror for r in rs] == [good.url]  # type: ignore[attr-defined]
    said = "\n".join(notes.lines)
    assert "stalled" in said and "under 1024 B/s" in said and "trying the next mirror" in said


def test_headers_sent_a_byte_at_a_time_time_out(
    good: FaultyServer, tmp_path: Path, start_server: StartServer
) -> None:
    slow = start_server()
    slow.add(PATH, DATA)
    slow.always(PATH, "slowheaders:0.2")  # each byte well within the read timeout
    rs, notes = run([slow.url, good.url], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    assert [r.mirror for r in rs] == [good.url]  # type: ignore[attr-defined]
    assert "no response from" in "\n".join(notes.lines)


@pytest.mark.parametrize("value", ["²", "-1", "1e3", "Fri, 31 Feb 2026 00:00:00 GMT", "9" * 40])
def test_an_odd_retry_after_never_ends_the_run(
    value: str, server: FaultyServer, good: FaultyServer, tmp_path: Path
) -> None:
    server.add(PATH, DATA)
    server.fault(PATH, f"429:{value}")
    sleeps: list[float] = []
    rs, _ = run([server.url, good.url], tmp_path, retry=RetryPolicy(sleep=sleeps.append))
    assert (tmp_path / PATH).read_bytes() == DATA
    # Unparsable: treated as absent, so the ordinary back-off applies, on the same mirror.
    assert [r.mirror for r in rs] == [server.url] and sleeps == [0.5]  # type: ignore[attr-defined]


def test_waits_are_announced_back_off_silence_and_lock(
    server: FaultyServer, tmp_path: Path
) -> None:
    server.add(PATH, DATA)
    # A back-off of a second or more, a server that thinks for 3.5 s, and the
    # lock held by "another process" for 1.5 s: each is said while it lasts.
    server.fault(PATH, "503", "503", "delay:3.5")
    held = FileLock(lock_path(tmp_path / PATH))
    (tmp_path / PATH).parent.joinpath(".kmnist").mkdir(parents=True)
    held.acquire()
    threading.Timer(1.5, held.release).start()
    _, notes = run(
        [server.url],
        tmp_path,
        timeout=(5.0, 10.0),
        retry=RetryPolicy(sleep=lambda s: None),
    )
    said = "\n".join(notes.lines)
    assert f"{PATH}: waiting for another process that is fetching it" in said
    assert f"{PATH}: {server.url}: HTTP 503 Service Unavailable; trying again in 1 s" in said
    assert f"{PATH}: waiting for {server.url} to answer for 3 s" in said
    assert (tmp_path / PATH).read_bytes() == DATA


def test_a_really_gzipped_body_is_decoded_when_that_matches(
    server: FaultyServer, tmp_path: Path
) -> None:
    server.add(PATH, DATA)
    server.always(PATH, "gzipbody")
    run([server.url], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    assert no_part_files(tmp_path) == []


def test_a_gz_file_labelled_gzip_arrives_as_it_is(server: FaultyServer, tmp_path: Path) -> None:
    import gzip

    packed = gzip.compress(DATA)
    f = RemoteFile("kmnist/x.gz", len(packed), sha256=hashlib.sha256(packed).hexdigest())
    server.add(f.path, packed)
    server.always(f.path, "gzipbody")  # encoded again on the wire: decoding once gives the file
    d = Downloader(mirrors=[server.url], progress=False, timeout=SHORT)
    d.fetch([f], tmp_path)
    assert (tmp_path / f.path).read_bytes() == packed


def test_a_file_of_unpublished_size_is_cut_at_its_ceiling(
    server: FaultyServer, cdn: FaultyServer, tmp_path: Path
) -> None:
    """The Kanji archive has no published size: a body that never ends stops at its ceiling."""
    ceiling = len(DATA) + 50_000
    unknown = RemoteFile("kkanji/blob.tar", None, sha256=FILE.sha256, ceiling=ceiling)
    server.add(unknown.path, DATA)
    server.always(unknown.path, "endless:chunked")  # the file, then 0xA5 bytes without end
    cdn.add(unknown.path, DATA)
    rs, notes = run([server.url, cdn.url], tmp_path, files=[unknown], connections=1)
    # Exactly `ceiling` bytes were kept and hashed: the file and the first
    # 50,000 bytes of what followed. The hash refused them; the next mirror
    # gave the file.
    kept = hashlib.sha256(DATA + b"\xa5" * 50_000).hexdigest()
    assert any(f"got {kept}" in line for line in notes.lines), notes.lines
    assert (tmp_path / unknown.path).read_bytes() == DATA
    assert [r.mirror for r in rs] == [cdn.url]  # type: ignore[attr-defined]
    assert server.body_bytes < server.ENDLESS_CAP


@pytest.mark.parametrize("form", ["nolength", "chunked"])
def test_a_body_without_length_that_ends_short_is_a_cut_and_counted(
    form: str, server: FaultyServer, tmp_path: Path
) -> None:
    """A 200 with no Content-Length that ends cleanly before the published size.

    It was taken as the whole answer and asked for again at once, without a
    try counted: with a server that ignores Range, requests without end.
    """
    server.add(PATH, DATA)
    server.always(PATH, f"short:{form}:4096")
    policy = RetryPolicy(attempts=2, max_tries=5, sleep=lambda s: None)
    with pytest.raises(DownloadError, match="connection closed after 4096 of 300000 bytes"):
        run([server.url], tmp_path, retry=policy)
    assert len(server.gets(PATH)) <= 5  # max_tries, not thousands
    assert not (tmp_path / PATH).exists()


def test_a_redirect_to_a_dead_host_fails_that_file_only_and_names_that_host(
    server: FaultyServer, tmp_path: Path
) -> None:
    """The mirror answered: only the file it sent elsewhere fails, and the
    message names the host that refused, not the mirror (which the run used to
    take for down, for every file)."""
    other = RemoteFile("kmnist/other.bin", len(DATA) // 2, sha256=_sha(DATA[: len(DATA) // 2]))
    server.add(PATH, DATA)
    server.add(other.path, DATA[: len(DATA) // 2])
    dead = _refused_url()
    server.always(PATH, f"redirect:{dead}/")
    with pytest.raises(KmnistError) as caught:
        run([server.url], tmp_path, files=[FILE, other], jobs=1)
    said = str(caught.value)
    refused = dead.removeprefix("http://")
    assert (
        f"connection to {refused} refused (where {server.url.removeprefix('http://')} sent us)"
        in said
    ), said
    assert "not tried again" not in said
    assert (tmp_path / other.path).read_bytes() == DATA[: len(DATA) // 2]
    assert not (tmp_path / PATH).exists()


@pytest.mark.parametrize("location", ["http://[::1", "http://\u00e9.invalid"])
def test_a_redirect_to_an_address_that_cannot_be_parsed_is_one_refusal(
    location: str, start_server: StartServer, tmp_path: Path
) -> None:
    """requests raises a bare ValueError (UnicodeDecodeError for a byte that is
    not UTF-8): it ended the whole run with a traceback. Now this mirror refuses
    the file and the next one gives it."""
    bad, good = start_server(), start_server()
    bad.add(PATH, DATA)
    good.add(PATH, DATA)
    bad.always(PATH, f"redirect:{location}")
    _, notes = run([bad.url, good.url], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    said = "\n".join(notes.lines)
    assert "an address it answered with cannot be used" in said, said


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _refused_url() -> str:
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_mirror_found_down_by_several_files_at_once_is_said_once(
    server: FaultyServer, tmp_path: Path
) -> None:
    # Four files start together and all find the first mirror down: the
    # live line "<file>: <mirror>: <why>; trying the next mirror" came once
    # per file, the same reason four times, before the summary said it again.
    from kmnist.downloader.transfer import Transient

    dead = "http://dead.invalid"
    files = []
    for n in range(4):
        body = os.urandom(1000 + n)
        f = RemoteFile(f"kmnist/f{n}.bin", len(body), sha256=hashlib.sha256(body).hexdigest())
        server.add(f.path, body)
        files.append(f)
    together = threading.Barrier(4, timeout=5)  # all four try the dead mirror at once

    def open_url(url: str, offset: int, **kw: object) -> transfer.Body:
        if url.startswith(dead):
            with contextlib.suppress(threading.BrokenBarrierError):
                together.wait()
            raise Transient("could not resolve host dead.invalid", host_down=True)
        return transfer.open_url(url, offset, **kw)  # type: ignore[arg-type]

    results, notes = run([dead, server.url], tmp_path, files, jobs=4, transport=open_url)
    assert [r.mirror for r in results] == [server.url] * 4  # type: ignore[attr-defined]
    said = [line for line in notes.lines if "dead.invalid" in line]
    assert len(said) == 1, said
    assert said[0].endswith("trying the next mirror")
