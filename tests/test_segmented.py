"""Large files in byte ranges over several connections, stitched into one .part."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from kmnist.catalogue.manifest import RemoteFile
from kmnist.downloader import filejob, pieces
from kmnist.downloader.run import Downloader, RetryPolicy
from kmnist.errors import DownloadError
from kmnist.storage.layout import part_path
from kmnist.storage.partfile import PartFile, state_path
from kmnist.verify import Hasher

from .conftest import StartServer, no_part_files
from .server import FaultyServer

PIECE = 256 << 10
DATA = os.urandom(13 * PIECE + 777)  # 14 pieces, the last one ragged
PATH = "kkanji/kkanji.tar"
SHA = hashlib.sha256(DATA).hexdigest()


def remote(*, size: bool = True) -> RemoteFile:
    return RemoteFile(PATH, len(DATA) if size else None, sha256=SHA)


def downloader(
    *urls: str,
    retry: RetryPolicy | None = None,
    connections: int = 4,
    fast_connection: float = float("inf"),  # always open more: no timing in tests
    piece: int = PIECE,
) -> Downloader:
    return Downloader(
        mirrors=list(urls),
        progress=False,
        piece=piece,
        connections=connections,
        retry=retry or RetryPolicy(sleep=lambda s: None),
        fast_connection=fast_connection,
    )


@pytest.fixture
def served(server: FaultyServer) -> FaultyServer:
    server.add(PATH, DATA)
    return server


def ranges(server: FaultyServer) -> list[tuple[int, int]]:
    out = []
    for r in server.gets(PATH):
        assert r.range is not None, "every request of a segmented fetch names its range"
        first, last = r.range.removeprefix("bytes=").split("-")
        out.append((int(first), int(last)))
    return sorted(out)


@pytest.mark.parametrize("known_size", [True, False])
def test_ranges_are_stitched_into_the_right_bytes(
    served: FaultyServer, tmp_path: Path, known_size: bool
) -> None:
    served.always(PATH, "delay:0.05")  # long enough for the connections to overlap
    [r] = downloader(served.url).fetch([remote(size=known_size)], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    assert r.checked == "sha256" and r.transferred == len(DATA)
    # Closed ranges that tile the file exactly: nothing twice, nothing missed.
    got = ranges(served)
    assert got[0][0] == 0 and got[-1][1] == len(DATA) - 1
    assert all(a[1] + 1 == b[0] for a, b in zip(got, got[1:]))
    assert served.body_bytes == len(DATA)
    assert 1 < served.max_active <= 4
    assert no_part_files(tmp_path) == [] and not state_path(tmp_path / PATH).exists()


def test_a_connection_fast_enough_stays_alone(served: FaultyServer, tmp_path: Path) -> None:
    served.always(PATH, "delay:0.05")
    downloader(served.url, fast_connection=0).fetch([remote()], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    assert served.max_active == 1
    assert len({r.client_port for r in served.gets(PATH)}) == 1  # one connection, kept alive
    # The first piece, then the rest in one request, hashed as it arrives.
    assert [r.range for r in served.gets(PATH)] == [f"bytes=0-{PIECE - 1}", f"bytes={PIECE}-"]
    assert served.body_bytes == len(DATA)


def test_the_first_piece_is_read_back_once_when_the_rest_comes_in_one_stream(
    served: FaultyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first piece lands by position and is hashed from disk; the stream
    # that follows is hashed from memory. The hash of that piece carries over:
    # reading it back a second time cost 8 MiB per large file.
    from_disk: list[int] = []
    feed = Hasher.feed

    def counting_feed(self: Hasher, *args: object, **kwargs: object) -> None:
        before = self.size
        feed(self, *args, **kwargs)  # type: ignore[arg-type]
        from_disk.append(self.size - before)

    monkeypatch.setattr(Hasher, "feed", counting_feed)
    monkeypatch.setattr(filejob, "HASH_STEP", 16 << 10)  # hash within the small first piece
    [r] = downloader(served.url, fast_connection=0).fetch([remote()], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA and r.checked == "sha256"
    assert sum(from_disk) == PIECE


def test_a_fast_connection_fills_the_holes_of_an_earlier_run_piece_by_piece(
    served: FaultyServer, tmp_path: Path
) -> None:
    target = tmp_path / PATH
    part_path(target).parent.mkdir(parents=True)
    done = [(0, PIECE), (5 * PIECE, 6 * PIECE)]
    buf = bytearray(len(DATA))
    for s, e in done:
        buf[s:e] = DATA[s:e]
    part_path(target).write_bytes(bytes(buf))
    state_path(target).write_text(json.dumps({"size": len(DATA), "done": [list(r) for r in done]}))
    downloader(served.url, fast_connection=0).fetch([remote()], tmp_path)
    assert target.read_bytes() == DATA
    assert served.body_bytes == len(DATA) - 2 * PIECE  # the piece already there stays
    assert served.max_active == 1


def test_ranges_follow_a_redirect_to_another_host(
    server: FaultyServer, cdn: FaultyServer, tmp_path: Path
) -> None:
    cdn.add(PATH, DATA)
    cdn.always(PATH, "delay:0.05")
    server.always(PATH, f"redirect:{cdn.url}")
    downloader(server.url).fetch([remote()], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    got = ranges(cdn)  # every piece's Range reached the host the file is on
    assert got[0][0] == 0 and got[-1][1] == len(DATA) - 1
    assert all(a[1] + 1 == b[0] for a, b in zip(got, got[1:]))
    assert cdn.body_bytes == len(DATA) and cdn.max_active > 1


def test_connection_budget_holds_with_segments(served: FaultyServer, tmp_path: Path) -> None:
    served.always(PATH, "delay:0.05")
    downloader(served.url, connections=2).fetch([remote()], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    assert served.max_active == 2


def test_a_range_cut_midway_resumes_within_the_range(served: FaultyServer, tmp_path: Path) -> None:
    served.fault(PATH, "delay:0", "cut:1000", "delay:0", "cut:100000")
    downloader(served.url).fetch([remote()], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    assert served.body_bytes == len(DATA)  # the cut ranges continued from their last byte
    starts = [s for s, _ in ranges(served)]
    assert any(s % PIECE for s in starts), "a retry asked for the rest of a piece"


def test_a_range_that_keeps_failing_moves_to_the_next_mirror(
    tmp_path: Path, start_server: StartServer
) -> None:
    a, b = start_server(), start_server()
    a.add(PATH, DATA)
    b.add(PATH, DATA)
    a.fault(PATH, "delay:0", *["503"] * 50)
    [r] = downloader(a.url, b.url).fetch([remote()], tmp_path)
    assert r.mirror == b.url
    assert (tmp_path / PATH).read_bytes() == DATA
    # What mirror a delivered before it failed was kept, not fetched again.
    assert a.body_bytes + b.body_bytes == len(DATA)


def test_server_without_range_support_gets_one_connection(
    served: FaultyServer, tmp_path: Path
) -> None:
    served.always(PATH, "norange")
    downloader(served.url).fetch([remote()], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    assert len(served.gets(PATH)) == 1  # the probe's 200 carried the whole file
    assert served.max_active == 1


def test_a_server_that_honours_ranges_only_at_first_gets_one_stream(
    served: FaultyServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The first piece comes as a 206; every later request gets a 200 with the
    # whole file. One connection would have worked: giving up on the mirror
    # there failed the file where curl or wget would have fetched it.
    served.always(PATH, "rangeonce")
    served.always(PATH, "delay:0.05")  # the other connections open before the first ends
    [r] = downloader(served.url, retry=RetryPolicy(max_tries=3, sleep=lambda s: None)).fetch(
        [remote()], tmp_path
    )
    assert (tmp_path / PATH).read_bytes() == DATA and r.checked == "sha256"
    assert r.mirror == served.url
    assert no_part_files(tmp_path) == [] and not state_path(tmp_path / PATH).exists()
    # The first 206, the 200s that showed ranges had stopped (closed unread),
    # then one stream: bounded, not a request per piece.
    assert len(served.gets(PATH)) <= 1 + 4 + 1


@pytest.mark.parametrize("fast_connection", [0, float("inf")])
def test_an_honest_short_206_is_asked_again_for_the_rest_not_counted_as_a_cut(
    served: FaultyServer, tmp_path: Path, fast_connection: float
) -> None:
    # RFC 9110 lets a server send less than the range asked for, saying so in
    # Content-Range: what it sent is whole, and the rest is another request.
    served.always(PATH, "rangecap:100000")
    retry = RetryPolicy(attempts=2, max_tries=3, sleep=lambda s: None)
    [r] = downloader(served.url, retry=retry, fast_connection=fast_connection).fetch(
        [remote()], tmp_path
    )
    assert (tmp_path / PATH).read_bytes() == DATA and r.checked == "sha256"
    assert served.body_bytes == len(DATA)  # nothing twice
    assert no_part_files(tmp_path) == []


def test_resume_of_a_segmented_part_fetches_only_what_is_missing(
    served: FaultyServer, tmp_path: Path
) -> None:
    # First run: the mirror cuts connections and we give up at the first failure,
    # as a killed run would leave things: a full-size .part and its record.
    served.fault(PATH, "delay:0", "delay:0", "cut:70000", "cut:5000")
    with pytest.raises(DownloadError):
        downloader(
            served.url, retry=RetryPolicy(attempts=1, max_tries=1, sleep=lambda s: None)
        ).fetch([remote()], tmp_path)
    target = tmp_path / PATH
    assert not target.exists()
    assert part_path(target).stat().st_size == len(DATA)
    have = PartFile.load(target, len(DATA)).have
    assert 0 < have < len(DATA)
    record = json.loads(state_path(target).read_text())
    assert record["size"] == len(DATA)
    # Second run: only the missing bytes travel.
    before = served.body_bytes
    plan = downloader(served.url).plan([remote()], tmp_path)
    assert [(s.action.value, s.have) for s in plan] == [("resume", have)]
    [r] = downloader(served.url).fetch([remote()], tmp_path)
    assert r.action == "resumed" and r.transferred == len(DATA) - have
    assert served.body_bytes - before == len(DATA) - have
    assert target.read_bytes() == DATA
    assert not state_path(target).exists()


def test_crafted_record_with_holes(served: FaultyServer, tmp_path: Path) -> None:
    target = tmp_path / PATH
    part = part_path(target)
    part.parent.mkdir(parents=True)
    done = [(0, PIECE), (3 * PIECE, 5 * PIECE + 123), (len(DATA) - 10, len(DATA))]
    buf = bytearray(len(DATA))
    for s, e in done:
        buf[s:e] = DATA[s:e]
    part.write_bytes(bytes(buf))
    state_path(target).write_text(json.dumps({"size": len(DATA), "done": [list(r) for r in done]}))
    downloader(served.url).fetch([remote()], tmp_path)
    assert target.read_bytes() == DATA
    assert served.body_bytes == len(DATA) - sum(e - s for s, e in done)


@pytest.mark.parametrize(
    "record", ["not json", '{"size": 5, "done": [[0, 5]]}', '{"size": 1, "done": [[0, 99]]}']
)
def test_record_that_does_not_match_is_not_trusted(
    served: FaultyServer, tmp_path: Path, record: str
) -> None:
    target = tmp_path / PATH
    part_path(target).parent.mkdir(parents=True)
    part_path(target).write_bytes(b"\0" * len(DATA))
    state_path(target).write_text(record)
    downloader(served.url).fetch([remote()], tmp_path)
    assert target.read_bytes() == DATA


def test_wrong_bytes_in_ranges_are_all_discarded(tmp_path: Path, start_server: StartServer) -> None:
    bad, good = start_server(), start_server()
    bad.add(PATH, DATA)
    good.add(PATH, DATA)
    bad.always(PATH, "wrong")  # every range starts with 64 flipped bytes
    [r] = downloader(bad.url, good.url).fetch([remote()], tmp_path)
    assert r.mirror == good.url
    assert (tmp_path / PATH).read_bytes() == DATA
    assert good.body_bytes == len(DATA)  # nothing from the bad mirror was kept


def test_wrong_total_in_content_range_is_refused(served: FaultyServer, tmp_path: Path) -> None:
    f = RemoteFile(PATH, len(DATA) + 1, sha256=SHA)
    with pytest.raises(DownloadError, match="wrong size"):
        downloader(served.url).fetch([f], tmp_path)
    assert len(served.gets(PATH)) == 1
    assert not (tmp_path / PATH).exists() and no_part_files(tmp_path) == []


def test_the_last_ranges_are_split_so_the_connections_end_together(
    served: FaultyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Four pieces of 1 MiB (the last one short) on four capped connections:
    # the connection with the short piece ends first, and takes the second
    # half of what another still has to read, and so on.
    monkeypatch.setattr(pieces, "MIN_SPLIT", 64 << 10)
    served.always(PATH, "rate:2000000")
    d = downloader(served.url, piece=1 << 20)
    [r] = d.fetch([remote()], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA and r.checked == "sha256"
    # A split shows as a request inside the range of an earlier one (which
    # stopped short of its end): otherwise the ranges tile the file.
    got = ranges(served)
    splits = sum(b[0] <= a[1] for a, b in zip(got, got[1:]))
    assert splits, f"no range was split: {got}"
    # A split drops what was in flight on the connection it shortened: a few
    # 64 KiB sends, not the rest of its range.
    assert served.body_bytes <= len(DATA) + splits * (256 << 10)
    assert served.max_active <= 4
    assert no_part_files(tmp_path) == []


def test_a_slow_first_connection_brings_the_others_before_its_sample_is_in(
    server: FaultyServer, tmp_path: Path
) -> None:
    # At 4 MB/s the first 2 MiB (RATE_SAMPLE) take half a second: the other
    # connections are opened after RATE_WINDOW, with far less served.
    data = os.urandom(8 << 20)
    server.add(PATH, data)
    server.always(PATH, "rate:4000000")
    d = downloader(server.url, piece=2 << 20, fast_connection=50e6)
    [r] = d.fetch([RemoteFile(PATH, len(data), sha256=hashlib.sha256(data).hexdigest())], tmp_path)
    assert r.checked == "sha256"
    first, second = server.gets(PATH)[:2]
    assert first.range == f"bytes=0-{(2 << 20) - 1}"
    assert second.served_before < filejob.RATE_SAMPLE
    assert server.max_active > 1


def test_requests_do_not_start_a_thread_each(
    served: FaultyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The response-header deadline of every request is kept by one thread
    # (deadlines.py), not a Timer thread per request.
    import threading

    started: list[str] = []
    start = threading.Thread.start

    def counted(self: threading.Thread) -> None:
        started.append(self.name)
        start(self)

    monkeypatch.setattr(threading.Thread, "start", counted)
    downloader(served.url, piece=64 << 10).fetch([remote()], tmp_path)  # about 40 requests
    requests = len(served.gets(PATH))
    assert requests >= 30
    # The run's threads (a job, its connections, its hasher) and the test
    # server's (one per connection), not one per request.
    assert len(started) < 20, started


@pytest.mark.parametrize(
    "faults",
    [
        ("delay:0", "delay:0", "delay:0", "delay:0", "cut:100000"),  # a split-off range is cut
        ("delay:0", "cut:300000", "503", "delay:0", "delay:0", "cut:65536"),
        ("cut:70000",),  # the probe is cut
    ],
)
def test_splits_and_cuts_together_still_give_every_byte_once(
    served: FaultyServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    faults: tuple[str, ...],
) -> None:
    monkeypatch.setattr(pieces, "MIN_SPLIT", 64 << 10)
    served.always(PATH, "rate:2000000")
    served.fault(PATH, *faults)
    d = downloader(served.url, piece=1 << 20)
    [r] = d.fetch([remote()], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA and r.checked == "sha256"
    # Every request after the first is a piece, a split-off half, or the rest
    # of a range after a cut: each costs at most what was in flight.
    assert served.body_bytes <= len(DATA) + len(served.gets(PATH)) * (256 << 10)
    assert no_part_files(tmp_path) == [] and not state_path(tmp_path / PATH).exists()


def test_a_file_smaller_than_two_pieces_is_shared_when_one_connection_is_slow(
    server: FaultyServer, tmp_path: Path
) -> None:
    # 6 MiB with the default 8 MiB pieces: one piece. On a host that caps each
    # connection, the rest of it is split between the budget's connections
    # (halves of at least MIN_SPLIT), as aria2c does with -k1M; before, any
    # file under two pieces came on one connection.
    data = os.urandom(6 << 20)
    server.add(PATH, data)
    server.always(PATH, "rate:4000000")
    d = Downloader(
        mirrors=[server.url],
        progress=False,
        connections=4,
        retry=RetryPolicy(sleep=lambda s: None),
    )
    [r] = d.fetch([RemoteFile(PATH, len(data), sha256=hashlib.sha256(data).hexdigest())], tmp_path)
    assert (tmp_path / PATH).read_bytes() == data and r.checked == "sha256"
    gets = server.gets(PATH)
    assert gets[0].range == f"bytes=0-{len(data) - 1}"  # the probe: the whole file
    assert server.max_active >= 3, [g.range for g in gets]
    # Each split drops what was in flight on the shortened connection, no more.
    assert server.body_bytes <= len(data) + len(gets) * (256 << 10)
    assert no_part_files(tmp_path) == []


def test_a_file_smaller_than_two_pieces_stays_on_a_fast_connection(
    server: FaultyServer, tmp_path: Path
) -> None:
    data = os.urandom(6 << 20)
    server.add(PATH, data)
    d = Downloader(
        mirrors=[server.url],
        progress=False,
        connections=4,
        retry=RetryPolicy(sleep=lambda s: None),
        fast_connection=0,  # any speed is fast enough: no timing in tests
    )
    [r] = d.fetch([RemoteFile(PATH, len(data), sha256=hashlib.sha256(data).hexdigest())], tmp_path)
    assert (tmp_path / PATH).read_bytes() == data and r.checked == "sha256"
    assert [g.range for g in server.gets(PATH)] == [f"bytes=0-{len(data) - 1}"]
    assert server.max_active == 1 and server.body_bytes == len(data)


def test_a_file_too_small_to_split_is_one_plain_request(
    server: FaultyServer, tmp_path: Path
) -> None:
    data = os.urandom((2 << 20) - 1)  # under two MIN_SPLIT halves
    server.add(PATH, data)
    server.always(PATH, "rate:4000000")
    d = Downloader(mirrors=[server.url], progress=False, retry=RetryPolicy(sleep=lambda s: None))
    d.fetch([RemoteFile(PATH, len(data), sha256=hashlib.sha256(data).hexdigest())], tmp_path)
    assert [g.range for g in server.gets(PATH)] == [None]


def test_a_split_waits_for_a_connection_no_request_under_way_will_take() -> None:
    # The run's count behind _PieceWorkers._next: a connection is free for a
    # split only when the bodies open and the requests being made to that
    # host leave one of the budget; a closing body wakes the waiter.
    import threading

    from kmnist.downloader.transfer import Body

    d = Downloader(mirrors=["http://h/"], progress=False, connections=2)

    def body(where: str) -> Body:
        return Body(0, 1, 1, lambda n: b"", lambda: None, where=where)

    a, b = body("h:80"), body("h:80")
    d.register(a)
    assert d.connection_free("h:80", 0)
    with d.opening("h:80"):  # a request waiting for the pool takes the second
        assert not d.connection_free("h:80", 0)
    d.register(b)
    assert not d.connection_free("h:80", 0)
    assert d.connection_free("other:80", 0)  # another host's budget
    threading.Timer(0.05, d.unregister, args=(a,)).start()
    # Woken by the close: a missed wake-up would outlast the test's timeout.
    assert d.connection_free("h:80", 600)


KILL_SCRIPT = """
import sys
from pathlib import Path
from kmnist.catalogue.manifest import RemoteFile
from kmnist.downloader.run import Downloader
url, root, size, sha = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
d = Downloader(mirrors=[url], progress=False, piece=4 << 20, connections=2,
               fast_connection=float("inf"))
list(d.fetch([RemoteFile("kkanji/big.bin", size, sha256=sha)], Path(root)))
"""


def test_a_killed_process_keeps_the_record_of_what_arrived_within_a_second(
    server: FaultyServer, tmp_path: Path
) -> None:
    """SIGKILL (the OOM killer, a scheduler's hard limit) runs no finally.

    The range record was written only when a range ended: with 4 MiB ranges at
    1 MB/s per connection, a process killed after 3 s had recorded nothing of
    the 3 MB it had written, and a resume fetched them again. It is now saved
    at least once a second while bytes arrive.
    """
    import signal
    import subprocess
    import sys
    import time

    from .conftest import ROOT

    data = os.urandom(12 << 20)
    server.add("kkanji/big.bin", data)
    server.always("kkanji/big.bin", "rate:1000000")
    sha = hashlib.sha256(data).hexdigest()
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, server.url, str(tmp_path), str(len(data)), sha],
        cwd=ROOT,
    )
    record = state_path(tmp_path / "kkanji/big.bin")
    try:
        time.sleep(3.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    done = json.loads(record.read_text())["done"]
    recorded = sum(e - s for s, e in done)
    assert recorded >= 1 << 20, done  # 2 connections x 1 MB/s for ~3 s, less a second each
    part = part_path(tmp_path / "kkanji/big.bin").read_bytes()
    for s, e in done:  # never a byte recorded that is not there
        assert part[s:e] == data[s:e]
