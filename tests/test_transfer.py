"""kmnist.downloader.transfer: reads that wait for a low-water mark never hold bytes back."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

import kmnist
from kmnist.downloader import transfer
from kmnist.downloader.transfer import LOW_WATER, LOW_WATER_MARGIN, make_session, open_url

from .conftest import StartServer
from .server import CERT, FaultyServer


@pytest.mark.parametrize(
    ("rate", "left", "mark"),
    [
        (20e6, 10 << 20, LOW_WATER),  # 20 MB/s: 5 MB in the wait, capped at LOW_WATER
        (200e3, 10 << 20, 32 << 10),  # 200 kB/s: 50 kB in the wait, down to a power of two
        (40e3, 10 << 20, 1),  # too slow for a mark to help
        (20e6, LOW_WATER_MARGIN + (20 << 10), 16 << 10),  # near the end: below what is left
        (20e6, LOW_WATER_MARGIN, 1),
    ],
)
def test_the_mark_follows_the_speed_and_what_is_left(rate: float, left: int, mark: int) -> None:
    assert transfer._low_water(rate, left) == mark


def read_until(body: transfer.Body, want: int, into: list[bytes]) -> None:
    got = 0
    for chunk in body.chunks():
        into.append(chunk)
        got += len(chunk)
        if got >= want:
            return


@pytest.mark.skipif(not transfer._SO_RCVLOWAT, reason="no SO_RCVLOWAT here")
def test_bytes_short_of_the_mark_are_read_when_the_server_stalls(
    server: FaultyServer, monkeypatch: pytest.MonkeyPatch, low_water_marks: list[int]
) -> None:
    # 600,000 bytes arrive at once (a mark of 256 KiB is set), then nothing:
    # what is short of the mark must still reach us, within the patience, and
    # long before the read timeout would call it a stall.
    monkeypatch.setattr(transfer, "LOW_WATER_PATIENCE", 0.2)
    data = os.urandom(8 << 20)
    server.add("f.bin", data)
    server.fault("f.bin", "stall:600000")
    with make_session("test", 2) as session:
        body = open_url(f"{server.url}/f.bin", 0, session=session, timeout=(5, 60))
        chunks: list[bytes] = []
        t = threading.Thread(target=read_until, args=(body, 600000, chunks), daemon=True)
        t.start()
        t.join(30)
        alive = t.is_alive()
        body.abort()
    assert not alive, f"only {sum(map(len, chunks))} of 600000 bytes were read"
    assert b"".join(chunks) == data[:600000]
    # It waited for a mark, then took what was there.
    assert max(low_water_marks) > 1 and low_water_marks[-1] == 1


def test_a_pooled_connection_is_reused_after_a_marked_body(
    server: FaultyServer, tmp_path: Path
) -> None:
    # The mark is reset before the connection goes back to the pool: the next
    # response on it must not wait for bytes that will not come.
    data = os.urandom(4 << 20)
    server.add("f.bin", data)
    with make_session("test", 1) as session:
        for start, end in [(0, 3 << 20), (3 << 20, 4 << 20), (0, 100)]:
            body = open_url(f"{server.url}/f.bin", start, end=end, session=session, timeout=(5, 10))
            try:
                assert b"".join(body.chunks()) == data[start:end]
            finally:
                body.close()
    assert len({r.client_port for r in server.requests}) == 1  # one connection, kept alive


@pytest.fixture
def tls_server(monkeypatch: pytest.MonkeyPatch, start_server: StartServer) -> FaultyServer:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(CERT))  # read once per session
    return start_server(tls=True)


@pytest.mark.skipif(not transfer._SO_RCVLOWAT, reason="no SO_RCVLOWAT here")
@pytest.mark.parametrize("size", [6 << 20, 20 << 20])  # one stream; byte ranges
def test_over_tls_every_mark_is_met(
    tls_server: FaultyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    # Over TLS the socket carries records, and OpenSSL may hold part of one:
    # the margin below what is left must keep every mark reachable, or each
    # body would end on a wait for bytes that never come. With a patience far
    # longer than any healthy transfer, a mark not met is a wrong mark.
    monkeypatch.setattr(transfer, "LOW_WATER_PATIENCE", 20.0)
    waits: list[bool] = []
    ready = transfer.Body._ready

    def spy(self: transfer.Body, timeout: float) -> bool:
        waits.append(ready(self, timeout))
        return waits[-1]

    monkeypatch.setattr(transfer.Body, "_ready", spy)
    data = os.urandom(size)
    server = tls_server
    server.add("kmnist/f.bin", data)
    f = kmnist.RemoteFile("kmnist/f.bin", size, sha256=hashlib.sha256(data).hexdigest())
    kmnist.download_files([f], tmp_path, mirrors=[server.url], progress=False, connections=2)
    assert (tmp_path / "kmnist/f.bin").read_bytes() == data
    assert server.url.startswith("https://")
    assert len(waits) > 10 and all(waits)  # marks were set, and every one was met


@pytest.mark.parametrize("bundle", [False, True], ids=["no-bundle-set", "another-bundle-set"])
def test_a_certificate_that_is_not_trusted_is_said_in_words(
    start_server: StartServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bundle: bool
) -> None:
    """The test server's self-signed certificate, without its CA bundle: the
    reason was "TLS with host failed (SSLError)", OpenSSL's words dropped.
    With a bundle set that lacks it, the advice was to set one."""
    import certifi

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    if bundle:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    server = start_server(tls=True)
    server.add("kmnist/f.bin", b"x" * 10)
    f = kmnist.RemoteFile("kmnist/f.bin", 10, sha256=hashlib.sha256(b"x" * 10).hexdigest())
    with pytest.raises(kmnist.KmnistError) as caught:
        kmnist.download_files(
            [f], tmp_path, mirrors=[server.url], progress=False, timeout=(2.0, 2.0)
        )
    said = str(caught.value)
    assert "its certificate is not trusted (self-signed certificate)" in said, said
    if bundle:
        assert "$REQUESTS_CA_BUNDLE does not hold the CA that signed it" in said, said
        assert "give its bundle" not in said
    else:
        assert "give its bundle in $REQUESTS_CA_BUNDLE" in said, said
    assert not (tmp_path / "kmnist/f.bin").exists()
