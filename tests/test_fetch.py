"""The downloader's rules, each shown on bytes on disk against a misbehaving server."""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import struct
from pathlib import Path

import pytest

import kmnist
from kmnist.catalogue.manifest import Mirror, RemoteFile, Structure
from kmnist.downloader.run import Downloader, RetryPolicy
from kmnist.errors import DownloadError, DownloadsFailed, VerificationError
from kmnist.storage import layout
from kmnist.storage.layout import part_path
from kmnist.verify import expectation, verify_path

from .conftest import StartServer, no_part_files
from .server import FaultyServer

DATA = os.urandom(3 * 2**20 + 12345)  # several 1 MiB chunks and a ragged end
PATH = "kmnist/blob.bin"


def remote(data: bytes = DATA, path: str = PATH, *, size: bool = True) -> RemoteFile:
    return RemoteFile(path, len(data) if size else None, sha256=hashlib.sha256(data).hexdigest())


def fetch(
    server_or_mirrors: FaultyServer | list[str],
    root: Path,
    files: list[RemoteFile] | None = None,
    retry: RetryPolicy | None = None,
    **kw: object,
) -> list[kmnist.downloader.run.Result]:
    mirrors = server_or_mirrors if isinstance(server_or_mirrors, list) else [server_or_mirrors.url]
    d = Downloader(
        mirrors=mirrors, progress=False, retry=retry or RetryPolicy(sleep=lambda s: None), **kw
    )  # type: ignore[arg-type]
    return d.fetch(files or [remote()], root)


def starts(server: FaultyServer, path: str = PATH) -> list[int | None]:
    """Where each request for ``path`` asked to start (None: no Range)."""
    return [
        None if q.range is None else int(q.range.removeprefix("bytes=").split("-")[0])
        for q in server.gets(path)
    ]


# One stream (a Range only to resume), and the default: a file of 2 MiB or
# more is first asked for as a range, the probe that tells whether ranges
# work and how fast one connection is (filejob.run); on loopback the whole
# file then comes over that one connection. Each resumes at the same byte.
ONE_STREAM_OR_PROBE = pytest.mark.parametrize("connections", [1, 8], ids=["one-stream", "probe"])


@pytest.fixture
def served(server: FaultyServer) -> FaultyServer:
    server.add(PATH, DATA)
    return server


def test_fetches_and_verifies_into_final_name(served: FaultyServer, tmp_path: Path) -> None:
    [r] = fetch(served, tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    assert r.action == "fetched" and r.checked == "sha256" and r.transferred == len(DATA)
    assert no_part_files(tmp_path) == []
    [req] = served.requests
    assert req.user_agent == f"kmnist/{kmnist.__version__}"
    assert req.accept_encoding == "identity"
    assert req.range == f"bytes=0-{len(DATA) - 1}"  # the probe: the whole file


def test_503_then_ok_is_retried_with_backoff(
    served: FaultyServer, tmp_path: Path, retry: RetryPolicy, sleeps: list[float]
) -> None:
    served.fault(PATH, "503", "503")
    fetch(served, tmp_path, retry=retry)
    assert (tmp_path / PATH).read_bytes() == DATA
    assert len(served.gets(PATH)) == 3
    assert sleeps == [0.5, 1.0]  # capped exponential backoff, injected sleep


def test_429_honours_retry_after(
    served: FaultyServer, tmp_path: Path, retry: RetryPolicy, sleeps: list[float]
) -> None:
    served.fault(PATH, "429:7")
    fetch(served, tmp_path, retry=retry)
    assert sleeps == [7.0]
    assert (tmp_path / PATH).read_bytes() == DATA


def test_long_retry_after_moves_to_next_mirror(
    tmp_path: Path,
    retry: RetryPolicy,
    sleeps: list[float],
    start_server: StartServer,
) -> None:
    a, b = start_server(), start_server()
    a.add(PATH, DATA)
    b.add(PATH, DATA)
    a.always(PATH, "429:3600")
    [r] = fetch([a.url, b.url], tmp_path, retry=retry)
    assert r.mirror == b.url and sleeps == []


@ONE_STREAM_OR_PROBE
def test_connection_cut_mid_body_resumes_from_last_byte(
    served: FaultyServer, tmp_path: Path, connections: int
) -> None:
    cut = 1_500_000
    served.fault(PATH, f"cut:{cut}")
    [r] = fetch(served, tmp_path, connections=connections)
    assert (tmp_path / PATH).read_bytes() == DATA
    assert starts(served) == [None if connections == 1 else 0, cut]
    assert served.body_bytes == len(DATA)  # not one byte fetched twice
    assert r.transferred == len(DATA)


@ONE_STREAM_OR_PROBE
def test_a_redirect_to_another_host_keeps_range_and_resume(
    server: FaultyServer, cdn: FaultyServer, tmp_path: Path, connections: int
) -> None:
    # Hugging Face and the Wayback Machine answer 302 with the file's real
    # place. The Range of a resume must reach that host, and a cut there
    # resumes through the redirect again.
    cdn.add(PATH, DATA)
    server.always(PATH, f"redirect:{cdn.url}")
    cdn.fault(PATH, "cut:1000000")
    part = part_path(tmp_path / PATH)
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA[:1000])
    [r] = fetch(server, tmp_path, connections=connections)
    assert (tmp_path / PATH).read_bytes() == DATA and r.action == "resumed"
    assert r.transferred == len(DATA) - 1000
    assert starts(server) == starts(cdn) == [1000, 1001000]
    assert cdn.body_bytes == len(DATA) - 1000


def test_a_redirect_to_an_html_page_is_refused(
    server: FaultyServer, cdn: FaultyServer, tmp_path: Path
) -> None:
    cdn.add(PATH, DATA)
    cdn.always(PATH, "html")  # a login or error page where the file should be
    server.always(PATH, f"redirect:{cdn.url}")
    with pytest.raises(DownloadError, match="HTML page"):
        fetch(server, tmp_path)
    assert no_part_files(tmp_path) == [] and not (tmp_path / PATH).exists()


def test_flat_puts_files_straight_into_the_folder(served: FaultyServer, tmp_path: Path) -> None:
    [path] = kmnist.download_files(
        [remote()], tmp_path, mirrors=[served.url], progress=False, flat=True
    )
    assert path == tmp_path / "blob.bin" and path.read_bytes() == DATA
    assert not (tmp_path / "kmnist").exists()
    # Two files of one name would land on each other: refused before anything runs.
    twins = [remote(), remote(path="k49/blob.bin")]
    with pytest.raises(kmnist.UsageError, match="would both be"):
        kmnist.download_files(twins, tmp_path / "x", mirrors=[served.url], flat=True)
    assert not (tmp_path / "x").exists() and len(served.requests) == 1


@ONE_STREAM_OR_PROBE
def test_part_from_an_earlier_run_is_resumed(
    served: FaultyServer, tmp_path: Path, connections: int
) -> None:
    part = part_path(tmp_path / PATH)
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA[:1000])
    [r] = fetch(served, tmp_path, connections=connections)
    assert r.action == "resumed"
    assert (tmp_path / PATH).read_bytes() == DATA
    assert starts(served) == [1000]
    assert served.body_bytes == len(DATA) - 1000


def test_ignored_range_starts_over(served: FaultyServer, tmp_path: Path) -> None:
    served.always(PATH, "norange")
    part = part_path(tmp_path / PATH)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 5000)  # not even the right bytes: must not survive
    fetch(served, tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA


@ONE_STREAM_OR_PROBE
def test_206_from_another_offset_starts_over(
    served: FaultyServer, tmp_path: Path, connections: int
) -> None:
    served.fault(PATH, "badrange")
    part = part_path(tmp_path / PATH)
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA[:4096])
    fetch(served, tmp_path, connections=connections)
    assert (tmp_path / PATH).read_bytes() == DATA
    assert starts(served) == [4096, None]


def test_416_on_a_whole_part_verifies_it(served: FaultyServer, tmp_path: Path) -> None:
    f = remote(size=False)  # size unknown (like the Kanji tar): we must ask
    part = part_path(tmp_path / PATH)
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA)
    [r] = fetch(served, tmp_path, [f])
    assert (tmp_path / PATH).read_bytes() == DATA
    assert (served.gets(PATH)[0].range or "").startswith(f"bytes={len(DATA)}-")
    assert served.body_bytes == 0 and r.transferred == 0


def test_whole_part_of_known_size_needs_no_request(served: FaultyServer, tmp_path: Path) -> None:
    part = part_path(tmp_path / PATH)
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA)
    fetch(served, tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    assert served.requests == []


def test_wrong_bytes_move_to_next_mirror_at_once(tmp_path: Path, start_server: StartServer) -> None:
    bad, good = start_server(), start_server()
    bad.add(PATH, DATA)
    good.add(PATH, DATA)
    bad.always(PATH, "wrong")
    [r] = fetch([bad.url, good.url], tmp_path)
    assert r.mirror == good.url
    assert len(bad.gets(PATH)) == 1  # a wrong hash is never retried on the same mirror
    assert (tmp_path / PATH).read_bytes() == DATA


def test_wrong_bytes_everywhere_leave_no_file(served: FaultyServer, tmp_path: Path) -> None:
    served.always(PATH, "wrong")
    with pytest.raises(DownloadError) as info:
        fetch(served, tmp_path)
    msg = str(info.value)
    assert PATH in msg and served.url in msg and "sha256" in msg
    assert remote().sha256 in msg  # expected
    assert hashlib.sha256(bytes(b ^ 0xFF for b in DATA[:64]) + DATA[64:]).hexdigest() in msg  # got
    assert not (tmp_path / PATH).exists()
    assert no_part_files(tmp_path) == []


def test_html_page_with_200_is_refused(served: FaultyServer, tmp_path: Path) -> None:
    served.always(PATH, "html")
    with pytest.raises(DownloadError, match="HTML"):
        fetch(served, tmp_path)
    assert not (tmp_path / PATH).exists()


def test_wrong_announced_size_is_refused_before_the_body(
    served: FaultyServer, tmp_path: Path
) -> None:
    f = RemoteFile(PATH, len(DATA) + 1, sha256=remote().sha256)
    with pytest.raises(DownloadError, match="wrong size"):
        fetch(served, tmp_path, [f])
    assert len(served.gets(PATH)) == 1  # a wrong size is not retried on the same mirror
    assert not (tmp_path / PATH).exists() and no_part_files(tmp_path) == []


def test_content_encoding_gzip_label_keeps_bytes_as_sent(
    server: FaultyServer, tmp_path: Path
) -> None:
    # A .gz served with Content-Encoding: gzip must not be un-gzipped on the way.
    gz = gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"\x01\x02\x03")
    server.add("kmnist/x.gz", gz)
    server.always("kmnist/x.gz", "gzip")
    fetch(server, tmp_path, [remote(gz, "kmnist/x.gz")])
    assert (tmp_path / "kmnist/x.gz").read_bytes() == gz


@ONE_STREAM_OR_PROBE
def test_stalled_body_times_out_and_resumes(
    served: FaultyServer, tmp_path: Path, connections: int
) -> None:
    served.fault(PATH, "stall:100000")
    fetch(served, tmp_path, timeout=(2.0, 0.5), connections=connections)
    assert (tmp_path / PATH).read_bytes() == DATA
    if connections == 1:
        assert starts(served) == [None, 100000]
    else:
        # The stalled probe was slow: others took part of its range, and it
        # resumed at its last byte.
        assert starts(served)[0] == 0 and 100000 in starts(served)
        assert served.body_bytes <= len(DATA) + len(served.gets(PATH)) * (256 << 10)


def test_404_moves_to_next_mirror(tmp_path: Path, start_server: StartServer) -> None:
    a, b = start_server(), start_server()
    b.add(PATH, DATA)
    [r] = fetch([a.url, b.url], tmp_path)
    assert r.mirror == b.url and len(a.gets(PATH)) == 1


def test_rerun_makes_no_request_and_force_refetches(served: FaultyServer, tmp_path: Path) -> None:
    fetch(served, tmp_path)
    n = len(served.requests)
    [r] = fetch(served, tmp_path)
    assert r.action == "skipped" and len(served.requests) == n
    d = Downloader(mirrors=[served.url], progress=False)
    d.fetch([remote()], tmp_path, force=True)
    assert len(served.requests) == n + 1


def test_corrupt_final_file_is_refetched(served: FaultyServer, tmp_path: Path) -> None:
    target = tmp_path / PATH
    target.parent.mkdir(parents=True)
    target.write_bytes(b"\0" * len(DATA))
    plan = Downloader(mirrors=[served.url], progress=False).plan([remote()], tmp_path)
    assert [s.action.value for s in plan] == ["refetch"]
    fetch(served, tmp_path)
    assert target.read_bytes() == DATA


def test_partial_mirror_is_asked_only_for_what_it_carries(
    tmp_path: Path, start_server: StartServer
) -> None:
    a, b = start_server(), start_server()
    other = remote(b"other bytes", "kmnist/other.bin")
    for s in (a, b):
        s.add(PATH, DATA)
        s.add(other.path, b"other bytes")
    partial = Mirror("partial", a.url + "/{path}", carries=frozenset({other.path}))
    d = Downloader(mirrors=[partial, b.url], progress=False, jobs=1)
    rs = d.fetch([remote(), other], tmp_path)
    assert [r.mirror for r in rs] == [b.url, "partial"]
    assert a.gets(PATH) == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_mirror_is_skipped_for_the_rest_of_the_run(
    served: FaultyServer, tmp_path: Path, retry: RetryPolicy, sleeps: list[float]
) -> None:
    other = remote(b"second file", "kmnist/second.bin")
    served.add(other.path, b"second file")
    dead = f"http://127.0.0.1:{_closed_port()}"
    rs = fetch([dead, served.url], tmp_path, [remote(), other], retry=retry, jobs=1)
    assert [r.mirror for r in rs] == [served.url, served.url]
    # One retry for a connection that cannot be made, for the first file only.
    assert len(sleeps) == retry.unreachable_attempts - 1 == 1


def test_flat_template_and_local_folder_mirrors(served: FaultyServer, tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "blob.bin").write_bytes(DATA)
    fetch([str(flat) + "/{name}"], tmp_path / "a")
    assert (tmp_path / "a" / PATH).read_bytes() == DATA
    tree = tmp_path / "tree" / "kmnist"
    tree.mkdir(parents=True)
    (tree / "blob.bin").write_bytes(DATA)
    fetch(["file://" + str(tmp_path / "tree")], tmp_path / "b")
    assert (tmp_path / "b" / PATH).read_bytes() == DATA


def test_connection_budget_per_host(server: FaultyServer, tmp_path: Path) -> None:
    files = []
    for i in range(4):
        data = os.urandom(200_000)
        server.add(f"kmnist/f{i}", data)
        server.always(f"kmnist/f{i}", "delay:0.3")
        files.append(remote(data, f"kmnist/f{i}"))
    fetch(server, tmp_path, files, jobs=4, connections=1)
    assert server.max_active == 1
    server.max_active = 0
    fetch(server, tmp_path / "again", files, jobs=4, connections=4)
    assert server.max_active > 1  # the same run without the budget does overlap


def test_one_failed_file_does_not_stop_the_others(served: FaultyServer, tmp_path: Path) -> None:
    missing = remote(b"nowhere", "kmnist/missing.bin")
    other = remote(b"there", "kmnist/there.bin")
    served.add(other.path, b"there")
    with pytest.raises(DownloadError, match=r"missing\.bin"):
        fetch(served, tmp_path, [remote(), missing, other])
    assert (tmp_path / PATH).read_bytes() == DATA
    assert (tmp_path / other.path).read_bytes() == b"there"
    with pytest.raises(DownloadsFailed):
        fetch(served, tmp_path, [remote(b"a", "kmnist/a"), remote(b"b", "kmnist/b")])


def _idx(labels: bytes) -> bytes:
    return gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", len(labels)) + labels)


def test_unverified_release_is_checked_by_structure(server: FaultyServer, tmp_path: Path) -> None:
    good = _idx(bytes(range(10)) * 1000)
    f = RemoteFile("2018/kmnist/t10k-labels-idx1-ubyte.gz", structure=Structure("idx", (10000,)))
    server.add(f.path, good)
    [r] = fetch(server, tmp_path, [f])
    assert r.checked == "structure only (unverified)"
    assert (tmp_path / f.path).read_bytes() == good
    short = RemoteFile("2018/kmnist/short.gz", structure=Structure("idx", (10000,)))
    server.add(short.path, _idx(bytes(10) * 10))
    with pytest.raises(DownloadError, match="shape"):
        fetch(server, tmp_path, [short])
    truncated = RemoteFile("2018/kmnist/cut.gz", structure=Structure("idx", (10000,)))
    server.add(truncated.path, good[: len(good) // 2])
    with pytest.raises(DownloadError, match="structure"):
        fetch(server, tmp_path, [truncated])
    assert not (tmp_path / short.path).exists() and not (tmp_path / truncated.path).exists()


def test_remote_file_paths_must_stay_inside_the_folder() -> None:
    for bad in ("/etc/passwd", "../x", "kmnist/../../x", ""):
        with pytest.raises(kmnist.UsageError):
            RemoteFile(bad)


def test_verification_error_names_mirror_file_expected_and_got() -> None:
    e = VerificationError("kmnist/a", "mirror-x", "sha256", "aaa", "bbb")
    assert str(e) == "kmnist/a from mirror-x: wrong sha256: expected aaa, got bbb"


def test_stale_bytes_are_named_when_recognised(realdata: Path, tmp_path: Path) -> None:
    from kmnist.catalogue.manifest import entry_for

    f = entry_for("kmnist/kmnist-test-imgs.npz")
    assert f is not None
    stale = tmp_path / "stale.npz"
    stale.write_bytes((realdata / "v1/kmnist-test-imgs.npz").read_bytes())
    unsized = RemoteFile(f.file.path, None, sha256=f.file.sha256)
    with pytest.raises(VerificationError, match=r"2018 \(v1\) release"):
        verify_path(unsized, stale)


def test_verified_stamp_spares_rehashing_until_the_file_changes(
    served: FaultyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kmnist.downloader import plan

    fetch(served, tmp_path)
    target = tmp_path / PATH
    assert list((target.parent / ".kmnist").iterdir()), "lock and stamp live in the hidden folder"
    assert sorted(p.name for p in target.parent.iterdir()) == [".kmnist", "blob.bin"]

    def no_hashing(*a: object, **k: object) -> str:
        raise AssertionError("hashed a file whose stamp still matches")

    monkeypatch.setattr(plan, "verify_path", no_hashing)
    d = Downloader(mirrors=[served.url], progress=False)
    assert [s.action.value for s in d.plan([remote()], tmp_path)] == ["skip"]
    monkeypatch.undo()
    # Rewriting the file (same size, other bytes) changes its mtime: hashed again.
    os.utime(target, ns=(0, 0))
    target.write_bytes(bytes(len(DATA)))
    assert [s.action.value for s in d.plan([remote()], tmp_path)] == ["refetch"]
    # A stamp made for other figures (another release of the manifest) is not trusted.
    fetch(served, tmp_path)
    other = RemoteFile(PATH, len(DATA), sha256="0" * 64)
    assert [s.action.value for s in d.plan([other], tmp_path)] == ["refetch"]


@pytest.mark.parametrize("force", [False, True], ids=["wrong-file", "force"])
def test_a_wrong_file_replaced_by_another_process_meanwhile_is_not_fetched_again(
    served: FaultyServer, tmp_path: Path, force: bool
) -> None:
    # Eight jobs of a cluster find the same wrong file and plan to replace
    # it; the first to hold the lock does. The others, once they hold it,
    # found it replaced (and stamped) but fetched it again anyway.
    target = tmp_path / PATH
    target.parent.mkdir(parents=True)
    target.write_bytes(bytes(len(DATA)))
    d = Downloader(mirrors=[served.url], progress=False)
    plan = d.plan([remote()], tmp_path, force=force)
    assert [s.action.value for s in plan] == ["refetch"]
    # "Another process" (Downloader._finish): the published bytes, then their stamp.
    target.write_bytes(DATA)
    layout.write_stamp(target, expectation(remote()))
    asked = len(served.gets(PATH))
    [r] = d.run(plan)
    assert target.read_bytes() == DATA
    if force:  # --force fetches whatever is there
        assert r.action == "fetched" and len(served.gets(PATH)) > asked
    else:
        assert r.action == "skipped" and len(served.gets(PATH)) == asked


def test_md5_alone_pins_a_file_without_sha256(server: FaultyServer, tmp_path: Path) -> None:
    # K49's image files: only md5 and size were ever published.
    f = RemoteFile(PATH, len(DATA), md5=hashlib.md5(DATA).hexdigest())
    server.add(PATH, DATA)
    [r] = fetch(server, tmp_path, [f])
    assert r.checked == "md5" and (tmp_path / PATH).read_bytes() == DATA
    server.always(PATH, "wrong")
    with pytest.raises(DownloadError, match="wrong md5"):
        fetch(server, tmp_path / "again", [f])


def test_a_host_that_times_out_is_left_with_all_its_mirrors(
    served: FaultyServer,
    tmp_path: Path,
    retry: RetryPolicy,
    sleeps: list[float],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A connect timeout cannot be made to happen on loopback, so this one
    # failure is simulated at the transfer layer; everything else is real.
    from kmnist.downloader import transfer
    from kmnist.downloader.transfer import Transient

    port = served.url.rsplit(":", 1)[1]
    dead_https, dead_http = (
        f"http://127.0.0.1:{_closed_port()}",
        f"http://127.0.0.1:{_closed_port()}",
    )
    real_open = transfer.open_url
    asked: list[str] = []

    def open_url(url: str, offset: int, **kw: object) -> transfer.Body:
        asked.append(url)
        if url.startswith(dead_https):
            raise Transient("ConnectTimeoutError", host_down=True)
        return real_open(url, offset, **kw)  # type: ignore[arg-type]

    other = remote(b"second file", "kmnist/second.bin")
    served.add(other.path, b"second file")
    alive = f"http://localhost:{port}"  # the same server under another host name
    with caplog.at_level("INFO", logger="kmnist"):
        rs = fetch(
            [dead_https, dead_http, alive],
            tmp_path,
            [remote(), other],
            retry=retry,
            jobs=1,
            transport=open_url,  # the seam: no module global replaced
        )
    assert [r.mirror for r in rs] == [alive, alive]
    # Health is per scheme, host and port: the same host's other port is still
    # tried (a network that drops 443 may pass 80), once per run like the first.
    assert len([u for u in asked if u.startswith(dead_http)]) == 2
    assert len([u for u in asked if u.startswith(dead_https)]) == 2  # one retry, first file only
    assert sleeps == [0.5, 0.5]
    assert (
        f"{PATH}: {dead_https}: ConnectTimeoutError (after 2 tries); trying the next mirror"
        in caplog.text
    )
