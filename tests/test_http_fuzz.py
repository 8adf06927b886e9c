"""A server that answers with anything: hypothesis writes each HTTP answer.

A raw-socket server on 127.0.0.1 (not http.server: that one only sends what
HTTP allows) plays a script of answers, one per request, built from odd
status lines, header sets, bodies and connection behaviour. Whatever it
says, a download returns or raises a KmnistError within a bounded time, a
final file holds exactly the published bytes or does not exist, nothing is
written outside the data folder, and a failure is said in words: the file
named, no Python repr, no ``b'...'``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import re
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kmnist
from kmnist.catalogue.manifest import ENTRIES, Entry, RemoteFile
from kmnist.downloader.run import RetryPolicy
from kmnist.errors import KmnistError

# Every run, and every connection the server serves, ends within this: a
# deadline to catch a hang, never a timing to pass.
HANG = 60.0

# --- the server -------------------------------------------------------------


@dataclass
class Asked:
    """A request as the server read it."""

    path: str
    range: tuple[int, int | None] | None  # (first, last) or (first, None)
    raw: bytes


@dataclass
class Answer:
    """One answer: the bytes to send, then what to do with the connection.

    ``then``: ``keep`` (read the next request), ``close``, ``reset`` (RST).
    ``make`` builds the bytes from the request, when they depend on it.
    """

    data: bytes = b""
    then: str = "close"
    make: Callable[[Asked], bytes] | None = None
    desc: str = ""  # what hypothesis chose, for a failure's report
    delay: float = 0.0  # seconds before it is sent (to order answers, never to time them)

    def __repr__(self) -> str:
        return f"Answer({self.desc or self.data[:80]!r}, then={self.then!r})"

    def bytes_for(self, asked: Asked) -> bytes:
        return self.make(asked) if self.make is not None else self.data


_RANGE = re.compile(rb"^range:[ \t]*bytes=(\d+)-(\d*)[ \t]*$", re.I | re.M)
_PATH = re.compile(rb"^GET (\S+) HTTP/1\.[01]\r\n")


class RawServer:
    """Answers each request with the next scripted Answer; then ``fallback``."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.script: list[Answer] = []
        self.fallback = Answer(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "close")
        self.asked: list[Asked] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def play(self, script: list[Answer], fallback: Answer | None = None) -> None:
        with self.lock:
            self.script = list(script)
            self.asked = []
            if fallback is not None:
                self.fallback = fallback

    def _next(self, asked: Asked) -> Answer:
        with self.lock:
            self.asked.append(asked)
            return self.script.pop(0) if self.script else self.fallback

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with self.lock:
                self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(HANG)
        buf = b""
        try:
            for _ in range(200):  # requests on one connection: bounded
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data or len(buf) > 1 << 20:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                m = _PATH.match(head + b"\r\n")
                r = _RANGE.search(head)
                asked = Asked(
                    path=m.group(1).decode("latin-1") if m else "",
                    range=(int(r.group(1)), int(r.group(2)) if r.group(2) else None) if r else None,
                    raw=head,
                )
                answer = self._next(asked)
                out = answer.bytes_for(asked)
                if answer.delay and self.stopping.wait(answer.delay):
                    return
                if answer.then == "reset":
                    conn.sendall(out)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                conn.sendall(out)
                if answer.then != "keep":
                    return
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def stop(self) -> None:
        self.stopping.set()
        self.sock.close()
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                c.close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def raw() -> Iterator[RawServer]:
    s = RawServer()
    try:
        yield s
    finally:
        s.stop()


# --- answers ----------------------------------------------------------------

DATA = hashlib.shake_256(b"kmnist fuzz").digest(3000)
BIG = hashlib.shake_256(b"kmnist fuzz big").digest(40000)


def remote(path: str, data: bytes) -> RemoteFile:
    return RemoteFile(path, len(data), sha256=hashlib.sha256(data).hexdigest())


def _slice(data: bytes, asked: Asked) -> tuple[int, int]:
    """The (first, end) the request asks of ``data`` (the whole of it without Range)."""
    if asked.range is None:
        return 0, len(data)
    first, last = asked.range
    end = len(data) if last is None else min(last + 1, len(data))
    return min(first, len(data)), end


def chunked(body: bytes, sizes: list[int] | None = None, trailer: bytes = b"") -> bytes:
    out = b""
    pos = 0
    for n in sizes or [len(body)]:
        piece = body[pos : pos + n]
        pos += len(piece)
        if piece:
            out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    if pos < len(body):
        out += b"%x\r\n" % (len(body) - pos) + body[pos:] + b"\r\n"
    return out + b"0\r\n" + trailer + b"\r\n"


STATUSES = st.one_of(
    st.sampled_from([200, 206, 204, 304, 416, 301, 302, 303, 307, 308, 404, 410, 500, 503, 429]),
    st.integers(min_value=100, max_value=999),
)
VERSIONS = st.sampled_from(
    [b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"HTTP/0.9", b"http/1.1", b"ICY", b""]
)
REASONS = st.one_of(
    st.sampled_from([b"OK", b"", b"Partial Content", b"\x1b[2J", b"\xff\xfe", b"ok ok ok"]),
    st.binary(max_size=20).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
)
ODD_VALUES = st.sampled_from(
    [
        b"",
        b"-5",
        b"+12",
        b"\xb2",
        b"1e3",
        b"99999999999999999999999",
        b" 12 ",
        b"0x10",
        b"abc",
        b"Wed, 21 Oct 2015 07:28:00 GMT",
        b"Wed, 31 Feb 99999 07:28:00 GMT",
        b"3600",
        b"1",
    ]
)
LOCATIONS = st.sampled_from(
    [
        None,
        b"",
        b"/same",  # replaced by the file's own path: a loop
        b"relative",
        b"//",
        b"http://[::1",
        b"ftp://user:pw@127.0.0.1/x",
        b"http://127.0.0.1:1/x",
        b"\xff\xfe/x",
        b"/\xc3\xa9t\xc3\xa9",
        b"http://127.0.0.1:0/",
        b"?q",
        b"#frag",
    ]
)


@st.composite
def answers(draw: st.DrawFn, data: bytes, ranged: bool = False) -> Answer:
    """Any answer to a request for ``data`` (hypothesis picks every part)."""
    lines: list[bytes] = []
    # 1xx before the real answer.
    informational = st.lists(st.sampled_from([100, 102, 103, 199]), min_size=1, max_size=2)
    for code in draw(st.one_of(st.just([]), st.just([]), st.just([]), informational)):
        lines.append(b"HTTP/1.1 %d Info\r\nX-Info: 1\r\n\r\n" % code)
    prefix = b"".join(lines)
    version = draw(VERSIONS)
    status = draw(STATUSES)
    reason = draw(REASONS)
    body_kind = draw(
        st.sampled_from(
            ["right", "right", "whole", "wrong", "short", "long", "html", "gzip", "none"]
        )
    )
    length_kind = draw(
        st.sampled_from(["right", "right", "none", "less", "more", "dup", "conflict", "odd"])
    )
    range_kind = draw(st.sampled_from(["right", "none", "off", "garbage", "star", "total"]))
    te_kind = draw(
        st.sampled_from(["none", "none", "chunked", "broken", "huge", "trailer", "both"])
    )
    encoding = draw(
        st.sampled_from([None, None, b"gzip", b"deflate", b"br", b"identity", b"x-garbage"])
    )
    location = draw(LOCATIONS)
    extra = draw(
        st.lists(
            st.sampled_from(
                [
                    b"X-Odd: \xff\xfe\x80",
                    b"X-Fold: a\r\n b",
                    b" folded-first-line",
                    b"X-Long: " + b"a" * 70000,
                    b"X-Long: " + b"b" * 9000,
                    b"Content-Type: text/html",
                    b"Content-Type: application/octet-stream",
                    b"Connection: close",
                    b"Connection: keep-alive",
                    b"No colon here",
                    b": empty name",
                ]
            ),
            max_size=3,
        )
    )
    retry_after = draw(st.one_of(st.none(), ODD_VALUES))
    then = draw(
        st.sampled_from(["close", "close", "keep", "reset", "midbody", "nothing", "rst0", "rstmid"])
    )
    piece = draw(st.integers(min_value=0, max_value=len(data)))

    def make(asked: Asked) -> bytes:
        if then in ("nothing", "rst0"):
            return b""
        first, end = _slice(data, asked)
        if body_kind == "right":
            body = data[first:end]
        elif body_kind == "whole":
            first, end = 0, len(data)
            body = data
        elif body_kind == "wrong":
            body = bytes(b ^ 0x55 for b in data[first:end])
        elif body_kind == "short":
            body = data[first : max(first, end - 1 - piece % 100)]
        elif body_kind == "long":
            body = data[first:end] + b"extra" * (1 + piece % 50)
        elif body_kind == "html":
            body = b"<!DOCTYPE html><html><body>Not here</body></html>"
        elif body_kind == "gzip":
            body = gzip.compress(data[first:end])
        else:
            body = b""
        head = [version + b" %d " % status + reason]
        n = len(body)
        if length_kind == "right":
            head.append(b"Content-Length: %d" % n)
        elif length_kind == "less":
            head.append(b"Content-Length: %d" % max(0, n - 7))
        elif length_kind == "more":
            head.append(b"Content-Length: %d" % (n + 7))
        elif length_kind == "dup":
            head += [b"Content-Length: %d" % n, b"Content-Length: %d" % n]
        elif length_kind == "conflict":
            head += [b"Content-Length: %d" % n, b"Content-Length: %d" % (n + 1)]
        elif length_kind == "odd":
            head.append(b"Content-Length: " + draw_odd)
        last = first + max(n, 1) - 1
        if range_kind == "right":
            head.append(b"Content-Range: bytes %d-%d/%d" % (first, last, len(data)))
        elif range_kind == "off":
            head.append(b"Content-Range: bytes %d-%d/%d" % (first + 1, last + 1, len(data)))
        elif range_kind == "garbage":
            head.append(b"Content-Range: bytes \xff-\xfe/x")
        elif range_kind == "star":
            head.append(b"Content-Range: bytes */%d" % len(data))
        elif range_kind == "total":
            head.append(b"Content-Range: bytes %d-%d/%d" % (first, last, len(data) + 100))
        if te_kind == "chunked":
            head.append(b"Transfer-Encoding: chunked")
            body = chunked(body, [1 + piece % 700] * 8)
        elif te_kind == "broken":
            head.append(b"Transfer-Encoding: chunked")
            body = b"zz\r\n" + body
        elif te_kind == "huge":
            head.append(b"Transfer-Encoding: chunked")
            body = b"ffffffffffffffffffff\r\n" + body
        elif te_kind == "trailer":
            head.append(b"Transfer-Encoding: chunked")
            body = chunked(body, trailer=b"X-Trailer: 1\r\nContent-Length: 5\r\n")
        elif te_kind == "both":
            head.append(b"Transfer-Encoding: gzip, chunked")
            body = chunked(body)
        if encoding is not None:
            head.append(b"Content-Encoding: " + encoding)
        if location is not None:
            head.append(b"Location: " + (asked.path.encode() if location == b"/same" else location))
        if retry_after is not None:
            head.append(b"Retry-After: " + retry_after)
        head += extra
        out = prefix + b"\r\n".join(head) + b"\r\n\r\n" + body
        if then in ("midbody", "rstmid"):
            out = out[: len(out) - max(1, len(body) // 2)]
        return out

    draw_odd = draw(ODD_VALUES)
    desc = (
        f"info={prefix!r} {version!r} {status} {reason!r} body={body_kind} length={length_kind}"
        f" odd={draw_odd!r} range={range_kind} te={te_kind} ce={encoding!r} loc={location!r}"
        f" ra={retry_after!r} extra={[e[:20] for e in extra]!r} then={then} piece={piece}"
    )
    how = {"midbody": "close", "nothing": "close", "rst0": "reset", "rstmid": "reset"}
    return Answer(then=how.get(then, then), make=make, desc=desc)


# --- the checks -------------------------------------------------------------

# Python in a message: a bytes repr, an exception's repr or its bare class
# name in parentheses ("cut (IncompleteBody)"), an object, a traceback.
_REPR = re.compile(
    r"\bb'|\bb\"|\w+Error\(|\w+Exception\(|\([A-Z]\w*(Error|Exception|Read|Body|Line)\)"
    r"|<\w[\w.]* object at|Traceback"
)


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def check_said_in_words(exc: KmnistError, f: RemoteFile) -> None:
    text = str(exc)
    assert f.name in text, text
    assert not _REPR.search(text), text
    assert "\n" not in text.strip(), text


def fetch_within(
    tmp: Path, f: RemoteFile, data: bytes, url: str, **kwargs: object
) -> tuple[Path | None, KmnistError | None]:
    """download_files in a thread, with a deadline only to catch a hang."""
    root = tmp / "data"
    outcome: list[object] = []

    def go() -> None:
        try:
            outcome.append(
                kmnist.download_files(
                    [f],
                    root,
                    mirrors=[url],
                    progress=False,
                    retry=RetryPolicy(max_tries=4, sleep=lambda s: None),
                    **{"timeout": (2.0, 2.0), **kwargs},  # type: ignore[arg-type]
                )
            )
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(HANG)
    assert not t.is_alive(), "HANG: the download did not end"
    [result] = outcome
    final = root / f.path
    if isinstance(result, KmnistError):
        assert not final.exists() or final.read_bytes() == data
        return None, result
    if isinstance(result, BaseException):
        raise result
    assert result == [final]
    assert final.read_bytes() == data
    return final, None


def check_nothing_outside(tmp: Path, before: set[str]) -> None:
    outside = {p for p in _tree(tmp) if not p.startswith("data")}
    assert outside == before


# --- the fuzz ---------------------------------------------------------------

# What the server says once the script is played: the file as it should be,
# a refusal, or the script's last answer again (so that a fault's words are
# the last ones, and the ones a failure reports).
THEN = st.sampled_from(["right", "404", "again"])


def afterwards(then: str, script: list[Answer], data: bytes) -> Answer:
    if then == "right":
        return right_answer(data)
    return script[-1] if then == "again" else NOT_FOUND


_count = iter(range(10**9))


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(script=st.lists(answers(DATA), min_size=1, max_size=3), then=THEN)
def test_any_answer_ends_in_the_file_or_one_error_in_words(
    raw: RawServer, tmp_path_factory: pytest.TempPathFactory, script: list[Answer], then: str
) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    before = _tree(tmp)
    f = remote(f"kmnist/small{next(_count)}.bin", DATA)
    raw.play(script, fallback=afterwards(then, script, DATA))
    _, error = fetch_within(tmp, f, DATA, raw.url)
    if error is not None:
        check_said_in_words(error, f)
    check_nothing_outside(tmp, before)


# The bytes a well-behaved server sends for DATA.
OK = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(DATA) + DATA
NOT_FOUND = Answer(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")


def right_answer(data: bytes) -> Answer:
    """What a server that honours Range sends for ``data``, on a kept-alive connection."""

    def make(asked: Asked) -> bytes:
        if asked.range is None:
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data) + data
        first, end = _slice(data, asked)
        return (
            b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\n"
            b"Content-Length: %d\r\n\r\n"
            % (first, end - 1, len(data), end - first)
            + data[first:end]
        )

    return Answer(then="keep", make=make, desc="right")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    script=st.lists(st.one_of(answers(BIG), st.just(right_answer(BIG))), min_size=1, max_size=6),
    then=THEN,
)
def test_any_answer_to_byte_ranges_ends_in_the_file_or_one_error_in_words(
    raw: RawServer, tmp_path_factory: pytest.TempPathFactory, script: list[Answer], then: str
) -> None:
    # 40,000 bytes in pieces of 4 KiB on 4 connections: each request a Range,
    # and each answer to one fuzzed (pieces.py: a file of two pieces or more
    # is fetched in ranges; fast_connection out of reach opens them all).
    tmp = tmp_path_factory.mktemp("ranges")
    before = _tree(tmp)
    f = remote(f"kmnist/big{next(_count)}.bin", BIG)
    raw.play(script, fallback=afterwards(then, script, BIG))
    _, error = fetch_within(tmp, f, BIG, raw.url, piece=4096, connections=4, fast_connection=1e12)
    if error is not None:
        check_said_in_words(error, f)
    check_nothing_outside(tmp, before)


# --- faults found, one test each ------------------------------------------------


@pytest.mark.parametrize(
    "before",
    [
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
        b"HTTP/1.1 102 Processing\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n",
        b"HTTP/1.1 199 Misc\r\nX: y\r\n\r\n" * 3,
    ],
    ids=["103", "102", "100-then-103", "three-199"],
)
def test_informational_answers_before_the_answer_are_skipped(
    raw: RawServer, tmp_path: Path, before: bytes
) -> None:
    """RFC 9110 (15.2): a client parses and ignores 1xx answers before the final one.

    http.client skips a 100 alone: a 103 Early Hints was taken for the answer,
    and the file failed with "HTTP 103 Early Hints".
    """
    f = remote("kmnist/early.bin", DATA)
    raw.play([Answer(before + OK)], fallback=NOT_FOUND)
    final, error = fetch_within(tmp_path, f, DATA, raw.url)
    assert error is None and final is not None
    assert len(raw.asked) == 1


def test_endless_informational_answers_are_not_http(raw: RawServer, tmp_path: Path) -> None:
    f = remote("kmnist/early.bin", DATA)
    raw.play([Answer(b"HTTP/1.1 103 Early Hints\r\n\r\n" * 50 + OK)] * 8, fallback=NOT_FOUND)
    final, error = fetch_within(tmp_path, f, DATA, raw.url)
    assert final is None and error is not None
    assert "answered with something that is not HTTP" in str(error)


# A 302 whose body is cut, after a Content-Encoding its bytes do not decode
# with: requests reads a redirect's body to reuse the connection, fails to
# decode it, reads the rest raw, and lets urllib3's ProtocolError out bare.
CUT_REDIRECT = Answer(
    b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Encoding: deflate\r\n"
    b"Content-Length: 3000\r\n\r\n" + b"x" * 1500
)


def test_a_redirect_whose_body_is_cut_is_a_kmnist_error_not_a_traceback(
    raw: RawServer, tmp_path: Path
) -> None:
    f = remote("kmnist/redirected.bin", DATA)
    raw.play([], fallback=CUT_REDIRECT)
    final, error = fetch_within(tmp_path, f, DATA, raw.url)
    assert final is None and error is not None
    check_said_in_words(error, f)
    assert "cut in the middle of a redirect's body" in str(error)


def test_a_redirect_whose_body_is_cut_is_one_row_of_check_mirrors(
    raw: RawServer, tmp_path: Path
) -> None:
    """The installed command, in a process of its own: no traceback, exit 1."""
    import os
    import shutil
    import subprocess

    raw.play([], fallback=CUT_REDIRECT)
    command = shutil.which("kmnist-download")
    assert command is not None
    argv = [command, "--check-mirrors", "-d", "kmnist", "-s", "test", "-f", "npz"]
    done = subprocess.run(
        [*argv, "-m", raw.url, "--timeout", "5", "--dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=HANG,
        env={**os.environ, "KMNIST_DATA": str(tmp_path / "d")},
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "ProtocolError" not in done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if "kmnist/" in line and raw.url in line]
    assert len(rows) == 3
    assert all("failing: connection to" in r and "a redirect's body" in r for r in rows)
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    ("fallback", "said"),
    [
        (
            Answer(
                then="keep",
                make=lambda a: (
                    b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n"
                    % a.path.encode()
                ),
            ),
            "redirected more than 30 times (a redirect loop)",
        ),
        (
            Answer(
                b"HTTP/1.1 302 Found\r\nLocation: ftp://user:pw@127.0.0.1/x\r\n"
                b"Content-Length: 0\r\n\r\n"
            ),
            "sent to 'ftp://***@127.0.0.1/x', an address that is not http or https",
        ),
        (
            Answer(b"HTTP/1.1 302 Found\r\nLocation: /\xff\xfe\r\nContent-Length: 0\r\n\r\n"),
            "an address it answered with cannot be used (it is not UTF-8 text)",
        ),
    ],
    ids=["loop", "ftp", "not-utf8"],
)
def test_a_redirect_that_cannot_be_followed_is_said_in_words_by_a_download(
    raw: RawServer, tmp_path: Path, fallback: Answer, said: str
) -> None:
    """It was requests' and Python's words: "Exceeded 30 redirects.", "No connection
    adapters were found for 'ftp://***@...'", "'utf-8' codec can't decode byte 0xff
    in position 1: invalid start byte" (--check-mirrors already said the first two)."""
    f = remote("kmnist/moved.bin", DATA)
    raw.play([], fallback=fallback)
    final, error = fetch_within(tmp_path, f, DATA, raw.url)
    assert final is None and error is not None
    check_said_in_words(error, f)
    assert said in str(error) and "pw" not in str(error)


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (Answer(b"", then="reset"), "reset by the server before it answered"),
        (Answer(OK[:500], then="reset"), "reset by the server in the middle of the body"),
        (Answer(OK[:500]), "cut in the middle of the body"),
        (
            Answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(DATA)[:400]),
            "cut in the middle of the body",
        ),
        (
            Answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + DATA),
            "sent the body in chunks not framed as HTTP frames them",
        ),
        (
            Answer(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"1" * 70000
                + b"\r\n"
                + DATA
            ),
            "sent the body in chunks not framed as HTTP frames them",
        ),
    ],
    ids=["reset-before", "reset-mid-body", "cut", "cut-chunked", "chunk-size-zz", "chunk-line-70k"],
)
def test_a_lost_connection_or_a_broken_body_is_said_in_words(
    raw: RawServer, tmp_path: Path, answer: Answer, said: str
) -> None:
    """It was Python's: "failed (('Connection aborted.', ConnectionResetError(104,
    'Connection reset by peer')))", "cut (ProtocolError)", "cut (IncompleteBody)"."""
    f = remote("kmnist/lost.bin", DATA)
    raw.play([], fallback=answer)
    final, error = fetch_within(tmp_path, f, DATA, raw.url)
    assert final is None and error is not None
    check_said_in_words(error, f)
    assert said in str(error) and "(after 4 tries)" in str(error)
    assert not re.search(r"\((\w+Error|Incomplete\w+)\)", str(error)), str(error)


def test_ranges_refused_then_a_failure_is_a_kmnist_error(raw: RawServer, tmp_path: Path) -> None:
    """The first piece answered with its range, the next request with the whole
    file (the server stopped honouring ranges), every other request a 404: one
    worker's RangesStopped and another's refusal. The RangesStopped was raised,
    not a KmnistError: a traceback from the command."""
    f = remote("kmnist/stopped.bin", BIG)
    whole = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BIG) + BIG
    # The whole file comes a second late, so that every worker has asked by
    # then, and the refusals a second later still: the RangesStopped is the
    # first error of the workers, and another is under way, whatever the
    # order of their requests.
    late = dataclasses.replace(NOT_FOUND, delay=2.0)
    raw.play([right_answer(BIG), Answer(whole, delay=1.0)], fallback=late)
    final, error = fetch_within(
        tmp_path,
        f,
        BIG,
        raw.url,
        piece=4096,
        connections=4,
        fast_connection=1e12,
        timeout=(10.0, 10.0),  # the late answers are answers, not stalls
    )
    assert final is None and error is not None
    check_said_in_words(error, f)


# --- the command ------------------------------------------------------------

# The three files of `-d kmnist -s test -f npz`, given the same 2,000 bytes in
# the catalogue (the command's seam): any answer fuzzed for one fits all three.
SMALL = hashlib.shake_256(b"kmnist fuzz command").digest(2000)


def small_catalogue() -> tuple[Entry, ...]:
    wanted = {"kmnist-test-imgs.npz", "kmnist-test-labels.npz", "kmnist_classmap.csv"}
    out = []
    for e in ENTRIES:
        if e.dataset == "kmnist" and e.release == "2019" and e.file.name in wanted:
            small = dataclasses.replace(
                e.file, size=len(SMALL), sha256=hashlib.sha256(SMALL).hexdigest(), md5=None
            )
            e = dataclasses.replace(e, file=small)
        out.append(e)
    return tuple(out)


CATALOGUE = small_catalogue()
ASKED = [e.file.path for e in CATALOGUE if e.file.size == len(SMALL)]
_LINE = re.compile(r"kmnist-download: (error|hint): ")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(script=st.lists(answers(SMALL), min_size=1, max_size=4), then=THEN)
def test_the_command_ends_in_a_status_and_lines_of_its_own(
    raw: RawServer,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    script: list[Answer],
    then: str,
) -> None:
    import io

    import kmnist.downloader.run as run
    from kmnist.cli.download import main

    # The command's back-off, without its sleeps (a Retry-After of 60 s is honoured).
    monkeypatch.setattr(run, "RetryPolicy", lambda: RetryPolicy(sleep=lambda s: None))
    tmp = tmp_path_factory.mktemp("command")
    before = _tree(tmp)
    raw.play(script, fallback=afterwards(then, script, SMALL))
    argv = ["-d", "kmnist", "-s", "test", "-f", "npz", "--no-derive", "-q"]
    argv += ["-m", raw.url, "--dir", str(tmp / "data"), "--timeout", "2"]
    status: list[int] = []
    err = io.StringIO()

    def go() -> None:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status.append(main(argv, catalogue=CATALOGUE))

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(HANG)
    assert not t.is_alive(), "HANG: the command did not end"
    [rc] = status
    lines = err.getvalue().splitlines()
    assert rc in (0, 1), lines
    assert all(_LINE.match(line) for line in lines), lines
    assert not _REPR.search(err.getvalue()), lines
    errors = [line for line in lines if line.startswith("kmnist-download: error: ")]
    assert (rc == 1) == bool(errors)
    assert len(ASKED) == 3
    for path in ASKED:
        final = tmp / "data" / path
        if final.exists():
            assert final.read_bytes() == SMALL
        else:
            assert any(path in line for line in errors), (path, lines)
    check_nothing_outside(tmp, before)
