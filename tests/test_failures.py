"""Issue 19, items 1, 2 and 6 (failure output): each failure said once, in order, in true words."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kmnist.catalogue import manifest
from kmnist.cli.download import main
from kmnist.downloader.outcome import Outcome
from kmnist.downloader.run import Downloader
from kmnist.storage import layout

from .conftest import loopback_only, no_part_files
from .server import FaultyServer

UNRESOLVABLE = "http://nonexistent.invalid/kmnist/"
IMGS = "kmnist/kmnist-test-imgs.npz"
LABELS = "kmnist/kmnist-test-labels.npz"
PUBLISHED = {e.file.path: e.file for e in manifest.ENTRIES}


def _err(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def test_a_mirror_that_is_down_is_said_once_first_and_each_file_points_to_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", loopback_only(socket.getaddrinfo))
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(tmp_path), "-m", UNRESOLVABLE, "-q"]
    assert main(argv) == 1
    err = _err(capsys)
    # The mirror once, first, with its URL and the reason in words.
    assert err[0].startswith(f"kmnist-download: error: mirror 1 ({UNRESOLVABLE}) could not")
    assert "nonexistent.invalid" in err[0]
    assert sum("nonexistent.invalid" in line for line in err) == 1
    files = err[1:-1]
    assert len(files) == 3 and all("mirror 1 above" in line for line in files)
    assert {line.split(": ")[2] for line in files} == {IMGS, LABELS, "kmnist/kmnist_classmap.csv"}
    # Nested causes flattened: the build's source in the same line, said once.
    [imgs] = [line for line in files if f": {IMGS}:" in line]
    assert imgs.count("could not be fetched") == 2 and imgs.count("t10k-images") == 1
    assert "could not be built from" not in imgs and "(see above)" not in imgs
    # The hint: nothing that was just tried, failed or replaced by --mirror.
    assert err[-1].startswith("kmnist-download: hint: ")
    assert "-f mnist" not in err[-1] and "CDN" not in err[-1] and "wayback" not in err[-1]


@pytest.mark.parametrize("kind", ["missing", "a file"])
def test_a_folder_mirror_that_is_not_there_is_said_once_and_each_file_points_to_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    # A typo in --mirror /path: the folder is not there, so no file of it can
    # be. Said once, as a host that does not answer is (it was "no such file"
    # once per file, each time with "trying the next mirror").
    root = tmp_path / "copy"
    if kind == "a file":
        root.write_bytes(b"not a folder")
    data = tmp_path / "data"
    argv = ["-d", "kmnist", "-s", "test", "-f", "npz", "--dir", str(data), "-q"]
    assert main([*argv, "-m", str(root), "-m", str(root)]) == 1
    err = _err(capsys)
    why = "no such folder" if kind == "missing" else "not a folder"
    assert err[0] == (
        f"kmnist-download: error: mirror 1 ({root}) could not be reached: {why}; "
        "not tried again in this run"
    )
    assert sum(str(root) in line for line in err) == 1  # given twice, said once
    files = err[1:-1]
    assert len(files) == 3 and all(": could not be fetched: mirror 1 above" in x for x in files)
    assert not list(data.rglob("*.part"))


@pytest.mark.parametrize("extra", [["--no-derive"], []])
def test_no_network_the_hint_says_so_and_suggests_no_other_format(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
) -> None:
    # The built-in list, no network: every built-in mirror found down at once.
    monkeypatch.setattr(socket, "getaddrinfo", loopback_only(socket.getaddrinfo))
    argv = ["-d", "kmnist", "-s", "test", "-f", "npz", "--dir", str(tmp_path), "-q", *extra]
    assert main(argv) == 1
    err = _err(capsys)
    mirrors = [line for line in err if ": error: mirror " in line]
    assert len(mirrors) == len({line.split(" (")[1] for line in mirrors})  # each once
    # Nothing could be reached: the network is the problem, not the format.
    assert "no mirror could be reached" in err[-1] and "-f mnist" not in err[-1]
    assert bool(extra) or "nor built from the MNIST-format file" in "\n".join(err)


def test_the_hint_suggests_the_mnist_format_when_the_cdn_copies_were_not_tried(
    realdata: Path, tmp_path: Path, server: FaultyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from kmnist.cli.failures import hint
    from kmnist.errors import DownloadError, Refusal

    # The built-in list, the official host refusing the file, the CDNs not asked (they
    # do not carry .npz files) and no build tried (--no-derive): -f mnist is new.
    official = Refusal("codh-https", "HTTP 404")
    failure = DownloadError(IMGS, ["codh-https: HTTP 404"], refusals=(official,))
    assert "-f mnist" in hint([failure], mirrors=manifest.BUILTIN_MIRRORS)
    # Once the build was tried (the MNIST files fetched or failed), it is not.
    failure.not_built = DownloadError("kmnist/t10k-images-idx3-ubyte.gz", [])
    assert "-f mnist" not in hint([failure], mirrors=manifest.BUILTIN_MIRRORS)
    # A user's list replaced the CDN copies: not suggested either.
    failure.not_built = None
    mine = [manifest.user_mirror(server.url)]
    assert "-f mnist" not in hint([failure], mirrors=mine)


# -- true words -------------------------------------------------------------------


def test_resumed_only_after_a_206_else_fetched_again_from_the_start(
    realdata: Path, tmp_path: Path, server: FaultyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    body = (realdata / LABELS).read_bytes()
    server.add_tree(realdata)
    file = PUBLISHED[LABELS]
    target = tmp_path / LABELS
    target.parent.mkdir(parents=True)
    layout.part_path(target).write_bytes(body[:2000])
    [r] = Downloader(mirrors=[server.url], progress=False).fetch([file], tmp_path)
    assert r.action is Outcome.RESUMED and r.note is None
    assert server.gets("/" + LABELS)[0].range == "bytes=2000-"
    # The same .part, a server that ignores Range: all of it came again.
    target.unlink()
    layout.part_path(target).write_bytes(body[:2000])
    server.always(LABELS, "norange")
    argv = ["-d", "kmnist", "-s", "test", "-f", "npz", "--dir", str(tmp_path), "-m", server.url]
    assert main([*argv, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"resumed  {LABELS}" not in out and f"fetched  {LABELS}" in out
    assert f"note: {LABELS}: fetched again from the start (the server ignored Range)" in out
    assert target.read_bytes() == body and no_part_files(tmp_path) == []


def test_a_stale_mirror_is_told_as_the_2018_release_at_download_time(
    realdata: Path, tmp_path: Path, server: FaultyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add(IMGS, (realdata / "v1/kmnist-test-imgs.npz").read_bytes())
    argv = ["-d", "kmnist", "-s", "test", "-f", "npz", "--dir", str(tmp_path), "-m", server.url]
    assert main([*argv, "--no-derive", "-q"]) == 1
    [line] = [x for x in _err(capsys) if f": {IMGS}:" in x]
    assert "the 2018 (v1) release of kmnist-test-imgs.npz" in line  # as --verify names it
    assert "(announced)" not in line


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (404, "HTTP 404 Not Found"),
        (410, "HTTP 410 Gone"),
        (403, "HTTP 403 Forbidden"),
        (599, "HTTP 599"),
    ],
)
def test_a_refusal_says_the_status_in_standard_words_and_the_url_only_where_the_mirror_does_not(
    tmp_path: Path,
    server: FaultyServer,
    capsys: pytest.CaptureFixture[str],
    status: int,
    said: str,
) -> None:
    # Two mirrors refuse the same file: one named by its URL (the line already
    # spells where the file was asked), one given as a {name} template (it does
    # not). The phrase is the standard one, never the server's own words.
    server.always(LABELS, f"status:{status}")
    by_url = server.url + "/"
    by_name = server.url + "/kmnist/{name}"
    argv = ["-d", "kmnist", "-s", "test", "-f", "npz", "--dir", str(tmp_path), "--no-derive"]
    assert main([*argv, "-m", by_url, "-m", by_name, "-q"]) == 1
    err = _err(capsys)
    [line] = [x for x in err if f": {LABELS}:" in x]
    asked = f"{server.url}/{LABELS}"
    assert f"{by_url}: {said};" in line  # its URL is not said again
    assert line.endswith(f"{by_name}: {said} for {asked}")  # said, once
    assert line.count(asked) == 1
    assert "Whatever" not in line and "\x1b" not in line
    assert not no_part_files(tmp_path)


def test_the_same_mirror_given_twice_is_asked_once(tmp_path: Path, server: FaultyServer) -> None:
    # Through the API, as through the flags: the same place (a URL, or a
    # folder and its file:// URL) is one mirror, asked once per file.
    from kmnist.catalogue.manifest import RemoteFile
    from kmnist.errors import DownloadError

    file = RemoteFile("kmnist/absent.bin", 10, sha256="0" * 64)
    with pytest.raises(DownloadError) as caught:
        Downloader(mirrors=[server.url, server.url + "/"], progress=False).fetch([file], tmp_path)
    assert len(server.gets(file.path)) == 1
    assert str(caught.value).count("HTTP 404") == 1
    folder = tmp_path / "copy"
    folder.mkdir()
    d = Downloader(mirrors=[str(folder), folder.as_uri()], progress=False)
    assert len(d.mirrors) == 1
