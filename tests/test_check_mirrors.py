"""--check-mirrors against good, dead, stale and 404 mirrors; and secrets that stay secret."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from kmnist.cli.download import main

from .conftest import StartServer
from .server import FaultyServer

TEST_FILES = (
    "kmnist/kmnist-test-imgs.npz",
    "kmnist/kmnist-test-labels.npz",
    "kmnist/kmnist_classmap.csv",
)


def _dead() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_check_mirrors_table_json_and_exit(
    realdata: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    start_server: StartServer,
) -> None:
    good, stale, empty = (start_server() for _ in range(3))
    for rel in TEST_FILES:
        good.add(rel, (realdata / rel).read_bytes())
    stale.add(TEST_FILES[0], (realdata / "v1/kmnist-test-imgs.npz").read_bytes())
    dead = _dead()
    base = [
        "-d",
        "kmnist",
        "-s",
        "test",
        "--dir",
        str(tmp_path),
        "--check-mirrors",
        "--timeout",
        "2",
    ]
    mirrors = ["-m", dead, "-m", stale.url, "-m", empty.url]
    assert main([*base, *mirrors, "--json"]) == 1  # no mirror has the right test images
    doc = json.loads(capsys.readouterr().out)
    by = {(p["mirror"], p["file"]): p for p in doc["probes"]}
    assert doc["ok"] is False
    assert by[(dead, TEST_FILES[0])]["verdict"] == "down"
    assert by[(dead, TEST_FILES[0])]["reachable"] is False
    assert "refused" in by[(dead, TEST_FILES[0])]["detail"]
    assert by[(stale.url, TEST_FILES[0])]["verdict"] == "wrong_size"
    assert by[(stale.url, TEST_FILES[0])]["announced_size"] == 3069285
    assert by[(stale.url, TEST_FILES[0])]["published_size"] == 3079479
    assert by[(empty.url, TEST_FILES[1])]["status"] == 404
    assert f"HTTP 404 for {empty.url}/{TEST_FILES[1]}" in by[(empty.url, TEST_FILES[1])]["detail"]
    # Adding the good mirror: every file is served, exit 0; a table in text.
    assert main([*base, *mirrors, "-m", good.url]) == 0
    out = capsys.readouterr().out
    assert "every one of the 3 file(s) has a mirror" in out
    assert any(
        line.startswith(good.url) and TEST_FILES[0] in line and line.endswith("ok")
        for line in out.splitlines()
    )
    # Nothing was downloaded: one byte asked of each.
    assert all(r.range == "bytes=0-0" for r in good.requests)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_credentials_are_never_printed(
    realdata: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    server: FaultyServer,
) -> None:
    secret = "s3cr3t-pa55"
    for rel in TEST_FILES:
        server.add(rel, (realdata / rel).read_bytes())
    server.always(TEST_FILES[2], "404")
    url = server.url.replace("http://", f"http://user:{secret}@")
    dead = _dead().replace("http://", f"http://me:{secret}@")
    common = ["-d", "kmnist", "-s", "test", "--dir", str(tmp_path), "--timeout", "2"]
    outputs = []
    for argv in (
        [*common, "-m", url, "--dry-run"],
        ["--list", "-m", url],
        ["--list", "--json", "-m", url],
        [*common, "-m", url, "--check-mirrors", "--json", "-v"],
        [*common, "-m", url, "--check-mirrors"],
        [*common, "-m", dead, "-m", url, "-v"],  # errors: a dead mirror and a 404
    ):
        main(argv)
        cap = capsys.readouterr()
        outputs.append(cap.out + cap.err)
    joined = "\n".join(outputs)
    assert secret not in joined
    assert "***@" in joined  # the mirror is still named, without its password
    assert "HTTP 404 for http://***@127.0.0.1" in outputs[3]  # --check-mirrors' detail
    # -v logs the GET with its URL; the error line names the mirror, without its password.
    assert re.search(r"GET http://\*\*\*@127\.0\.0\.1:\d+/\S+( bytes=\S+)?: 404,", outputs[5])
    error = (
        r"error: \S+: could not be fetched: .*http://\*\*\*@127\.0\.0\.1:\d+/?: HTTP 404 Not Found"
    )
    assert re.search(error, outputs[5])
    # The credentials were used all the same: the files arrived.
    assert (tmp_path / TEST_FILES[1]).is_file()


def test_a_redirect_to_a_dead_host_or_an_unusable_address_is_that_file_only(
    realdata: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    start_server: StartServer,
) -> None:
    """The mirror answers: a file it sends to a dead host, or to an address that
    cannot be parsed, is not "down" for the others (and is no traceback)."""
    mirror = start_server()
    for rel in TEST_FILES:
        mirror.add(rel, (realdata / rel).read_bytes())
    dead = _dead()
    mirror.always(TEST_FILES[0], f"redirect:{dead}/")
    mirror.always(TEST_FILES[1], "redirect:http://[::1")
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(tmp_path), "--check-mirrors"]
    assert main([*argv, "-m", mirror.url, "--timeout", "2", "--json"]) == 1
    by = {p["file"]: p for p in json.loads(capsys.readouterr().out)["probes"]}
    assert by[TEST_FILES[0]]["verdict"] == "failing"
    assert f"connection to {dead.removeprefix('http://')} refused" in by[TEST_FILES[0]]["detail"]
    assert by[TEST_FILES[1]]["verdict"] == "missing"
    assert "cannot be used" in by[TEST_FILES[1]]["detail"]
    assert by[TEST_FILES[2]]["verdict"] == "ok"
