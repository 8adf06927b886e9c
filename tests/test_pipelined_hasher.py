"""PipelinedHasher: the same digest whichever thread hashes each buffer.

It hashes a buffer in the receiver's thread when another file is being
received (the cores are busy with receivers), and hands it to a thread of its
own when this file is alone (the hash then costs no wall time). Whatever the
order of hand-offs, resets and other files starting and finishing, the digest
is that of the bytes submitted since the last reset, in order.
"""

from __future__ import annotations

import hashlib
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmnist.catalogue.manifest import RemoteFile
from kmnist.verify import Hasher, PipelinedHasher

FILE = RemoteFile("kmnist/x.bin", None, sha256="0" * 64)


def feed(hasher: PipelinedHasher, data: bytes) -> None:
    """Submit ``data`` as a receiver does: into lent buffers, a buffer at a time."""
    while data:
        buf = hasher.buffer()
        n = min(len(buf), len(data))
        buf[:n] = data[:n]
        hasher.submit(buf, n)
        data = data[n:]


def test_alone_it_hashes_in_its_thread_and_beside_another_inline() -> None:
    alone = PipelinedHasher(Hasher(FILE), size=1024)
    try:
        feed(alone, b"a" * 5000)
        assert alone._thread is not None  # the hash goes to the second core
    finally:
        assert alone.finish().sha256 == hashlib.sha256(b"a" * 5000).hexdigest()
    first = PipelinedHasher(Hasher(FILE), size=1024)
    second = PipelinedHasher(Hasher(FILE), size=1024)
    try:
        feed(second, b"b" * 5000)
        assert second._thread is None  # hashed by the receiver: no thread, no hand-off
        assert second.size == 5000
    finally:
        assert second.finish().sha256 == hashlib.sha256(b"b" * 5000).hexdigest()
        first.finish()
        first.finish()  # twice, as FileJob's finally does: counted once
    assert PipelinedHasher._live == 0


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.binary(min_size=0, max_size=3000),  # bytes received
            st.just("reset"),  # the server started the file over
            st.just("other+"),  # another file starts being received
            st.just("other-"),  # one of them ends
        ),
        max_size=30,
    ),
    size=st.sampled_from([1, 7, 512, 4096]),
    depth=st.integers(1, 4),
)
def test_any_interleaving_gives_the_digest_of_the_bytes_since_the_last_reset(
    steps: list[bytes | str], size: int, depth: int
) -> None:
    others: list[PipelinedHasher] = []
    hasher = PipelinedHasher(Hasher(FILE), depth=depth, size=size)
    since_reset = b""
    try:
        for step in steps:
            if step == "reset":
                hasher.reset()
                since_reset = b""
            elif step == "other+":
                others.append(PipelinedHasher(Hasher(FILE), size=64))
            elif step == "other-":
                if others:
                    others.pop().finish()
            else:
                assert isinstance(step, bytes)
                feed(hasher, step)
                since_reset += step
            assert hasher.size == len(since_reset)
    finally:
        inner = hasher.finish()
        for other in others:
            other.finish()
    assert inner.sha256 == hashlib.sha256(since_reset).hexdigest()
    assert inner.size == len(since_reset)
    assert PipelinedHasher._live == 0


def test_files_received_at_once_each_get_their_own_digest() -> None:
    """Four receivers in four threads, each hashing inline or handing off as
    the others come and go: every digest is its own file's."""
    blobs = [bytes([i]) * (20_000 + 997 * i) for i in range(4)]
    digests: list[str | None] = [None] * 4
    start = threading.Barrier(4)

    def receive(i: int) -> None:
        hasher = PipelinedHasher(Hasher(FILE), size=700)
        try:
            start.wait(timeout=10)
            for k in range(0, len(blobs[i]), 1500):
                feed(hasher, blobs[i][k : k + 1500])
        finally:
            digests[i] = hasher.finish().sha256

    threads = [threading.Thread(target=receive, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert digests == [hashlib.sha256(b).hexdigest() for b in blobs]
    assert PipelinedHasher._live == 0


def test_a_hashing_thread_that_cannot_start_raises_and_loses_no_buffer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At the limit of threads (``ulimit -u``) the run says so in one line
    (tests/test_limits.py); the hasher must stay whole for ``finish``."""

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    hasher = PipelinedHasher(Hasher(FILE), depth=2, size=16)
    with monkeypatch.context() as m:
        m.setattr(threading.Thread, "start", refuse)
        buf = hasher.buffer()
        buf[:4] = b"abcd"
        with pytest.raises(RuntimeError, match="can't start new thread"):
            hasher.submit(buf, 4)
    assert hasher.size == 0  # not counted: not hashed
    assert hasher._free.qsize() == 2  # the buffer came back
    feed(hasher, b"efgh")  # and the thread starts when it can
    assert hasher.finish().sha256 == hashlib.sha256(b"efgh").hexdigest()
    assert PipelinedHasher._live == 0
