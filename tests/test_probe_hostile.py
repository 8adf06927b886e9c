"""--check-mirrors against servers that answer badly: every row one line, valid JSON,
fair verdicts, no password shown, nothing written, and an exit status that follows
the rule (0 when every file has a mirror with the right size)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmnist.cli.download import main
from kmnist.downloader.probe import DETAIL_LIMIT, _bounded

from .server import SilentPort

SIZES = {
    "/kmnist/kmnist-test-imgs.npz": 3079479,
    "/kmnist/kmnist-test-labels.npz": 5304,
    "/kmnist/kmnist_classmap.csv": 151,
}
FILES = [p.lstrip("/") for p in SIZES]

Answer = Callable[[bytes], bytes]


class RawServer:
    """A server on 127.0.0.1 that sends whatever bytes ``answer(request head)`` returns.

    Keep-alive up to 200 requests a connection, then a close; every wait is bounded (10 s a
    read, the test's end for a stall).
    """

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self._listener.accept()
                self._held.append(conn)
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(10)
            buf = b""
            for _ in range(200):
                while b"\r\n\r\n" not in buf and len(buf) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                conn.sendall(self.answer(head))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        for s in [*self._held, self._listener]:
            with contextlib.suppress(OSError):
                s.close()


@pytest.fixture
def raw() -> Iterator[Callable[[Answer | bytes], RawServer]]:
    started: list[RawServer] = []

    def start(answer: Answer | bytes) -> RawServer:
        fn = answer if callable(answer) else (lambda _head, a=answer: a)
        started.append(RawServer(fn))
        return started[-1]

    try:
        yield start
    finally:
        for s in started:
            s.close()


def _path(head: bytes) -> bytes:
    return head.split(b" ")[1] if head.count(b" ") >= 2 else b"/"


def _right(head: bytes) -> bytes:
    """A well-behaved answer: one byte, and the published size."""
    size = SIZES.get(_path(head).decode("latin-1"), 10)
    return b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-0/%d\r\n" % size + (
        b"Content-Length: 1\r\n\r\nx"
    )


def _check(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *mirrors: str,
    timeout: str = "2",
) -> tuple[int, dict[str, list[dict[str, object]]], int, str]:
    """Run --check-mirrors in JSON and in text; return both exit codes' first, the probes
    by file, the text's exit code and the text. Asserts what holds for any server."""
    data = tmp_path / "data"
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(data), "--check-mirrors"]
    argv += ["--timeout", timeout]
    for m in mirrors:
        argv += ["-m", m]
    code = main([*argv, "--json"])
    doc = json.loads(capsys.readouterr().out)
    by: dict[str, list[dict[str, object]]] = {}
    for p in doc["probes"]:
        by.setdefault(str(p["file"]), []).append(p)
    assert doc["ok"] is (code == 0)
    text_code = main(argv)
    out = capsys.readouterr().out
    lines = out.splitlines()
    # A header, one row per probe, one closing line: no row split in two.
    assert len(lines) == 2 + len(doc["probes"]), out
    assert all(line.isprintable() for line in lines)
    assert not data.exists() or not any(data.rglob("*"))  # nothing written
    return code, by, text_code, out


def test_an_answer_that_is_not_http_is_failing_not_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: Callable[..., RawServer]
) -> None:
    """A bad status line, 101 headers, a 64 KiB line: the mirror answered.

    Before: "down" ("no connection") for the first file and "down (as above)"
    for every other file of that mirror, unasked.
    """
    answers = [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 206 OK\r\n" + b"X-A: 1\r\n" * 101 + b"Content-Length: 0\r\n\r\n",
        b"HTTP/1.1 206 " + b"a" * 70000 + b"\r\nContent-Length: 0\r\n\r\n",
    ]
    for answer in answers:
        server = raw(answer)
        code, by, text_code, out = _check(tmp_path, capsys, server.url)
        assert code == text_code == 1
        for f in FILES:
            (p,) = by[f]
            assert p["verdict"] == "failing", p
            assert p["reachable"] is True
            assert "as above" not in str(p["detail"])
            assert len(str(p["detail"])) <= DETAIL_LIMIT
            # In words, not Python's ('Connection aborted.', BadStatusLine(...)).
            assert "answered with something that is not HTTP" in str(p["detail"]), p
        assert "down" not in out


def test_a_redirect_to_a_silent_host_is_failing_not_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: Callable[..., RawServer]
) -> None:
    """The mirror answers with a redirect to a host that never speaks.

    Before: "down: no response from <the mirror> within 1 s", and the mirror's
    other files "down (as above)", unasked.
    """
    silent = SilentPort(dropping=False)
    try:
        where = f"127.0.0.1:{silent.port}"
        server = raw(
            lambda head: (
                b"HTTP/1.1 302 Found\r\nLocation: http://%s%s\r\n"
                b"Content-Length: 0\r\n\r\n" % (where.encode(), _path(head))
            )
        )
        code, by, _, _ = _check(tmp_path, capsys, server.url, timeout="1")
    finally:
        silent.close()
    assert code == 1
    for f in FILES:
        (p,) = by[f]
        assert p["verdict"] == "failing", p
        assert f"no response from {where} within 1 s" in str(p["detail"])
        assert "sent us" in str(p["detail"])


def test_a_redirect_loop_or_to_another_scheme_is_said_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: Callable[..., RawServer]
) -> None:
    """Before: requests' own words ("Exceeded 30 redirects.", "No connection
    adapters were found for 'ftp://...'")."""
    loop = raw(
        lambda head: (
            b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % _path(head)
        )
    )
    ftp = raw(
        b"HTTP/1.1 302 Found\r\nLocation: ftp://me:hunter2@127.0.0.1/x\r\nContent-Length: 0\r\n\r\n"
    )
    code, by, _, out = _check(tmp_path, capsys, loop.url, ftp.url)
    assert code == 1
    for f in FILES:
        looped, foreign = by[f]
        assert looped["verdict"] == foreign["verdict"] == "missing"
        assert looped["detail"] == "redirected more than 30 times (a redirect loop)"
        assert foreign["detail"] == (
            "sent to 'ftp://***@127.0.0.1/x', an address that is not http or https"
        )
    assert "hunter2" not in out


def test_a_size_header_that_says_no_size_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: Callable[..., RawServer]
) -> None:
    """Before: "size not announced" with no word of what was announced."""
    cases = {
        b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n": "Content-Length '-5'",
        b"HTTP/1.1 206 OK\r\nContent-Range: bytes 0-0/%d\r\nContent-Length: 1\r\n\r\nx"
        % 10**30: f"Content-Range 'bytes 0-0/{10**30}'",
    }
    for answer, said in cases.items():
        server = raw(answer)
        code, by, _, _ = _check(tmp_path, capsys, server.url)
        assert code == 1
        for f in FILES:
            (p,) = by[f]
            assert p["verdict"] == "no_size"
            assert p["announced_size"] is None
            assert str(p["detail"]).startswith(said), p


def test_a_folder_at_a_files_name_in_a_folder_mirror_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: "wrong size: announces 4096 bytes" (the folder's st_size)."""
    mirror = tmp_path / "mirror"
    for f in FILES:
        (mirror / f).mkdir(parents=True)
    code, by, _, _ = _check(tmp_path, capsys, str(mirror))
    assert code == 1
    for f in FILES:
        (p,) = by[f]
        assert p["verdict"] == "missing"
        assert p["detail"] == "not a regular file"
        assert p["announced_size"] is None


def test_hostile_answers_never_break_the_table_or_the_exit_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: Callable[..., RawServer]
) -> None:
    """A sweep: with a good mirror beside each bad one, exit 0; alone, exit 1."""
    bad = [
        b"HTTP/1.1 405 Method Not Allowed\r\nAllow: HEAD\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 404 Not\x1b[31m\x07 Found\x0b\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 404 " + b"A" * 5000 + b"\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 3079479\r\n\r\n<",
        b"HTTP/1.1 200 OK\r\nX-\xff: \xe3\x81\x82\r\nContent-Type: te\xffxt\r\n\r\n",
        b"HTTP/1.1 302 Found\r\nLocation: /\xff\xe3\x81\x82\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 999 \x1b]0;title\x07\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Len",  # closed mid-headers
    ]
    good = raw(_right)
    for answer in bad:
        server = raw(answer)
        code, by, text_code, out = _check(tmp_path, capsys, server.url)
        assert code == text_code == 1, out
        assert not any(p["verdict"] == "ok" for ps in by.values() for p in ps)
        code, by, text_code, out = _check(tmp_path, capsys, server.url, good.url)
        assert code == text_code == 0, out
        assert "every one of the 3 file(s) has a mirror" in out


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=2000),
    st.integers(min_value=10, max_value=400),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=20),
)
def test_a_reason_is_one_bounded_line_without_a_password(
    text: str, limit: int, secret: str
) -> None:
    got = _bounded(text, limit)
    assert got.isprintable()
    assert len(got) <= limit
    said = _bounded(f"{text[:50]} failed for http://me:PW{secret}@127.0.0.1/x", 10_000)
    assert f"PW{secret}@" not in said
