"""kmnist.transfer: reads that wait for a low-water mark never hold bytes back."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from kmnist import transfer
from kmnist.transfer import LOW_WATER, LOW_WATER_MARGIN, make_session, open_url

from .server import FaultyServer


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
    server: FaultyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 600,000 bytes arrive at once (a mark of 256 KiB is set), then nothing:
    # what is short of the mark must still reach us, within the patience, and
    # long before the read timeout would call it a stall.
    monkeypatch.setattr(transfer, "LOW_WATER_PATIENCE", 0.2)
    data = os.urandom(8 << 20)
    server.add("f.bin", data)
    server.fault("f.bin", "stall:600000")
    marks: list[int] = []
    set_mark = transfer.Body._set_low_water

    def spy(self: transfer.Body, n: int) -> int:
        marks.append(n)
        return set_mark(self, n)

    monkeypatch.setattr(transfer.Body, "_set_low_water", spy)
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
    assert max(marks) > 1 and marks[-1] == 1  # it waited for a mark, then took what was there


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
