"""Proxies that misbehave: each failure said once, of the proxy, with a hint that points at it.

A scripted proxy on 127.0.0.1 answers CONNECT (or an absolute-form GET) as
a test asks: a 407, a 403, a 502, bytes that are not HTTP, a close, silence,
or its answer a byte at a time. The mirror behind it is never reached.
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
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmnist.catalogue.manifest import RemoteFile
from kmnist.downloader import transfer
from kmnist.downloader.run import Downloader, RetryPolicy
from kmnist.errors import KmnistError, UsageError

from .conftest import StartServer
from .server import FaultyServer

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
SECRET = "s3cret-Pw"
DATA = b"k" * 5000
FILE = RemoteFile("kmnist/blob.bin", len(DATA), sha256=hashlib.sha256(DATA).hexdigest())


class ScriptedProxy:
    """A listener that reads a request head and answers with ``reply`` (bytes), then closes.

    ``reply`` None: silent until closed. ``trickle``: the reply a byte every
    that many seconds. ``at_once``: the reply to the first bytes, whatever
    they are (a plain-HTTP proxy's 400 to a TLS handshake). ``heads`` keeps
    each request's first line and Proxy-Authorization header.
    """

    def __init__(self, reply: bytes | None, *, trickle: float = 0.0, at_once: bool = False) -> None:
        self.reply, self.trickle, self.at_once = reply, trickle, at_once
        self.heads: list[str] = []
        self._done = threading.Event()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, userinfo: str = "", scheme: str = "http") -> str:
        return f"{scheme}://{userinfo}127.0.0.1:{self.port}"

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, contextlib.suppress(OSError):
            client.settimeout(30)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536 and not (head and self.at_once):
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            lines = head.decode("latin-1").split("\r\n")
            auth = [x for x in lines if x.lower().startswith("proxy-authorization:")]
            self.heads.append(" | ".join([lines[0], *auth]))
            if self.reply is None:
                self._done.wait(30)
            elif self.trickle:
                for byte in self.reply:  # at most len(reply) * trickle seconds
                    if self._done.wait(self.trickle):
                        return
                    client.sendall(bytes([byte]))
            else:
                client.sendall(self.reply)
                client.shutdown(socket.SHUT_WR)
                self._done.wait(0.5)  # let the client read it before the close

    def close(self) -> None:
        self._done.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    transfer._origin_proxies.cache_clear()  # read per origin, once: this test's environment
    yield
    transfer._origin_proxies.cache_clear()


@contextlib.contextmanager
def scripted(
    reply: bytes | None, *, trickle: float = 0.0, at_once: bool = False
) -> Iterator[ScriptedProxy]:
    p = ScriptedProxy(reply, trickle=trickle, at_once=at_once)
    try:
        yield p
    finally:
        p.close()


def _status(code: int, phrase: str) -> bytes:
    return f"HTTP/1.1 {code} {phrase}\r\nContent-Length: 0\r\n\r\n".encode()


AUTH_407 = (
    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
    b'Proxy-Authenticate: Basic realm="corp"\r\nContent-Length: 0\r\n\r\n'
)

# An https mirror behind the proxy: every connection is a CONNECT tunnel. Port
# 9 (discard): a request that went around the proxy would be refused, not served.
MIRROR = "https://127.0.0.1:9/"


def _run(
    argv_tail: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[str]]:
    from kmnist.cli.download import main

    root = tmp_path / "data"
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(root), "--no-progress", *argv_tail]
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    finals = [p for p in root.rglob("*") if p.is_file() and ".kmnist" not in p.parts]
    assert finals == []  # nothing came, nothing under a final name (nor a .part)
    return code, err.splitlines()


CONNECT_ANSWERS = [
    # (answer, userinfo in the proxy URL, words the reason must hold)
    (AUTH_407, "", "it asks for a user name and password (HTTP 407 Proxy Authentication Required): give them in $https_proxy, as http://user:password@host:port"),
    (AUTH_407, f"user:{SECRET}@", "it refused the user name and password $https_proxy gives (HTTP 407 Proxy Authentication Required)"),
    (AUTH_407, "user@", "it asks for a password (HTTP 407 Proxy Authentication Required), and $https_proxy gives a user name without one, so none is sent"),
    (_status(403, "Forbidden"), "", "it refused the tunnel: HTTP 403 Forbidden"),
    (_status(502, "Bad Gateway"), "", "it answered CONNECT with HTTP 502 Bad Gateway: it could not reach the mirror itself"),
    (b"SSH-2.0-OpenSSH_9.6\r\n", "", "it answered CONNECT with something that is not HTTP"),
    (b"", "", "it closed the connection without answering CONNECT"),
    (None, "", "no whole answer to CONNECT within 1 s"),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "userinfo", "words"), CONNECT_ANSWERS)
def test_a_proxy_that_refuses_the_tunnel_is_named_once_with_what_to_change(
    answer: bytes | None,
    userinfo: str,
    words: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It was "failed on the way to ...: ProxyError" for every status (or the mirror
    blamed: "answered with something that is not HTTP", "no response from
    127.0.0.1:9 within 1 s"), with a hint to pick another mirror."""
    with scripted(answer) as proxy:
        monkeypatch.setenv("https_proxy", proxy.url(userinfo))
        code, err = _run(["-m", MIRROR, "--timeout", "1"], tmp_path, capsys)
        assert proxy.heads and all(h.startswith("CONNECT 127.0.0.1:9 ") for h in proxy.heads)
    assert code == 1
    shown = proxy.url("***@" if userinfo else "")
    reason = f"the proxy {shown} failed on the way to 127.0.0.1:9: {words}"
    said = [line for line in err if reason in line]
    assert len(said) == 1, err  # the mirror down once, each file pointing up to it
    assert SECRET not in "\n".join(err)
    assert err[-1].startswith("kmnist-download: hint: the proxy that $https_proxy"), err
    assert not any("--mirror" in line or "--check-mirrors" in line for line in err), err


def test_a_proxy_that_trickles_its_answer_to_connect_is_held_to_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """http.client reads the answer to CONNECT line by line, each read under the
    socket's timeout only: a byte every 0.2 s held the run for good."""
    endless = b"HTTP/1.1 200 Connection established\r\nX-Pad: " + b"a" * 400
    ended = threading.Event()
    failure: list[BaseException] = []

    def fetch() -> None:
        d = Downloader(
            mirrors=[MIRROR],
            progress=False,
            timeout=(1.0, 1.0),
            retry=RetryPolicy(sleep=lambda s: None),
        )
        try:
            d.fetch([FILE], tmp_path)
        except BaseException as exc:  # handed to the test's thread
            failure.append(exc)
        finally:
            ended.set()

    with scripted(endless, trickle=0.2) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        worker = threading.Thread(target=fetch, daemon=True)
        began = time.monotonic()
        worker.start()
        # The old code ended only with the proxy's 90 s of bytes.
        assert ended.wait(30), "the run still waits on the proxy's answer"
        spent = time.monotonic() - began
    assert spent < 30
    assert len(failure) == 1 and isinstance(failure[0], KmnistError), failure
    assert "no whole answer to CONNECT within 1 s" in str(failure[0])
    assert not (tmp_path / FILE.path).exists()


def test_a_407_from_a_plain_http_proxy_is_the_proxys_not_the_mirrors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An http mirror is asked through the proxy with a GET: the 407 was taken for
    the mirror's answer, "HTTP 407 Proxy Authentication Required" once per file,
    and the hint said to try another mirror."""
    with scripted(AUTH_407) as proxy:
        monkeypatch.setenv("http_proxy", proxy.url(f"user:{SECRET}@"))
        code, err = _run(["-m", "http://127.0.0.1:9/", "--timeout", "2"], tmp_path, capsys)
        assert proxy.heads and all(h.startswith("GET http://127.0.0.1:9/") for h in proxy.heads)
        assert all("Proxy-Authorization: Basic " in h for h in proxy.heads)
    assert code == 1
    reason = "it refused the user name and password $http_proxy gives"
    assert len([line for line in err if reason in line]) == 1, err
    assert SECRET not in "\n".join(err)
    assert "$no_proxy" in err[-1] and "--mirror" not in err[-1], err


def test_check_mirrors_says_the_proxys_refusal_as_the_proxys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--check-mirrors said "ProxyError" (a tunnel) and "missing: HTTP 407 for <url>" (a GET)."""
    from kmnist.cli.download import main

    with scripted(AUTH_407) as proxy:
        monkeypatch.setenv("https_proxy", proxy.url())
        monkeypatch.setenv("http_proxy", proxy.url())
        argv = ["--check-mirrors", "-d", "kmnist", "-s", "test", "--dir", str(tmp_path)]
        code = main([*argv, "-m", MIRROR, "-m", "http://127.0.0.1:9/", "--timeout", "1"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    rows = [line for line in out.splitlines() if "127.0.0.1:9/" in line]
    assert rows and all(" down: the proxy http://127.0.0.1:" in r for r in rows), out
    assert all("it asks for a user name and password" in r for r in rows), out
    assert "ProxyError" not in out and "missing" not in out


def test_a_socks_proxy_that_refuses_or_is_no_socks_proxy_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """It was "connection to <mirror> refused" (or "timed out"), and the hint said
    no mirror could be reached: give another."""
    pytest.importorskip("socks", reason="PySocks (the test extra) is not installed")
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with scripted(None) as silent:
        for proxy, words in (
            (f"socks5://127.0.0.1:{dead}", "refused"),
            (f"socks5h://127.0.0.1:{dead}", "refused"),
            (silent.url(scheme="socks5"), "no SOCKS answer within 1 s (is it a SOCKS proxy?)"),
        ):
            monkeypatch.setenv("http_proxy", proxy)
            transfer._origin_proxies.cache_clear()
            d = Downloader(
                mirrors=["http://127.0.0.1:9/"],
                progress=False,
                timeout=(1.0, 1.0),
                retry=RetryPolicy(sleep=lambda s: None),
            )
            with pytest.raises(KmnistError) as caught:
                d.fetch([FILE], tmp_path)
            assert f"the proxy {proxy} failed on the way to 127.0.0.1:9: {words}" in str(
                caught.value
            )


def test_an_https_proxy_url_for_a_plain_http_proxy_says_to_write_http(
    monkeypatch: pytest.MonkeyPatch, server: FaultyServer, tmp_path: Path
) -> None:
    """urllib3 knows ("Your proxy appears to only use HTTP"); the run said "ProxyError"."""
    with scripted(_status(400, "Bad Request"), at_once=True) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url(scheme="https"))
        d = Downloader(
            mirrors=[server.url], progress=False, retry=RetryPolicy(sleep=lambda s: None)
        )
        with pytest.raises(KmnistError) as caught:
            d.fetch([FILE], tmp_path)
    assert "it speaks plain HTTP, not TLS: write its URL with http:// in $HTTP_PROXY" in str(
        caught.value
    )
    assert server.requests == []


def test_the_api_names_the_proxy_and_leaves_no_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import kmnist

    with scripted(_status(403, "Forbidden")) as proxy:
        monkeypatch.setenv("https_proxy", proxy.url())
        with pytest.raises(KmnistError) as caught:
            kmnist.download(
                "kmnist", "npz", "test", tmp_path, mirrors=[MIRROR], progress=False,
                timeout=(1.0, 1.0), retry=RetryPolicy(sleep=lambda s: None),
            )  # fmt: skip
    said = str(caught.value)
    assert "failed on the way to 127.0.0.1:9: it refused the tunnel: HTTP 403 Forbidden" in said
    assert [p for p in tmp_path.rglob("*") if p.is_file() and ".kmnist" not in p.parts] == []


@settings(max_examples=40, deadline=None)
@given(password=st.text(min_size=1, max_size=12))
def test_a_proxy_password_requests_cannot_send_is_a_usage_error_that_hides_it(
    password: str,
) -> None:
    """requests sends a proxy's credentials in Latin-1: "パス" raised UnicodeEncodeError
    at every request, said as "an address it answered with cannot be used (it is
    not UTF-8 text)" of every file, the mirror blamed."""
    value = f"http://user:{quote(password, safe='')}@127.0.0.1:3128"
    sendable = True
    try:
        password.encode("latin-1")
    except UnicodeEncodeError:
        sendable = False
    os.environ["http_proxy"] = value
    try:
        if sendable:
            transfer.check_proxy_environment()
        else:
            with pytest.raises(UsageError) as caught:
                transfer.check_proxy_environment()
            said = str(caught.value)
            assert "password has characters outside Latin-1" in said
            assert quote(password, safe="") not in said and "\n" not in said
    finally:
        del os.environ["http_proxy"]


def test_a_proxy_password_outside_latin1_is_one_usage_line_before_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kmnist.cli.download import main

    monkeypatch.setenv("https_proxy", "http://user:パス@127.0.0.1:3128")
    root = tmp_path / "data"
    assert main(["-d", "kmnist", "-s", "test", "--dir", str(root), "-m", MIRROR]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "kmnist-download: error: $https_proxy is 'http://***@127.0.0.1:3128', which is not a"
        " proxy URL (its password has characters outside Latin-1, which requests cannot send"
        " to a proxy): give http://host:port (or socks5://host:port), or unset it"
    ]
    assert not root.exists()


def test_tls_that_fails_through_a_tunnel_says_the_proxy_was_on_the_way(
    tmp_path: Path, start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A certificate this machine does not trust, met through a proxy's tunnel
    # (a proxy that inspects TLS shows its own): it was "TLS with <mirror>
    # failed: ...", the mirror's fault alone, and nothing said a proxy was there.
    from .server import HttpProxy

    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)  # the test CA not trusted
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    transfer._origin_proxies.cache_clear()
    proxy = HttpProxy()
    tls = start_server(tls=True)
    tls.add(FILE.path, DATA)
    try:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        with pytest.raises(KmnistError) as caught:
            Downloader(mirrors=[tls.url], progress=False, retry=RetryPolicy(attempts=1)).fetch(
                [FILE], tmp_path
            )
    finally:
        proxy.close()
        transfer._origin_proxies.cache_clear()
    said = str(caught.value)
    where = tls.url.removeprefix("https://")
    assert f"TLS with {where} through the proxy {proxy.url} failed:" in said, said
    assert proxy.tunnels, "the handshake went through the proxy's tunnel"
    assert "(after 1 try)" in said, said  # it was "after 1 tries"
    assert not (tmp_path / FILE.path).exists()
