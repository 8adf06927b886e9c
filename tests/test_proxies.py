"""The network the environment sets (proxies, a CA bundle): every byte through it, or one reason.

An HTTP proxy (CONNECT tunnels and absolute-form GETs) and a SOCKS5 proxy on
127.0.0.1 (tests/server.py) relay to FaultyServers; each proxy counts what
it carried, so a request that went around it is seen.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests.adapters

from kmnist.catalogue.manifest import RemoteFile
from kmnist.downloader import transfer
from kmnist.downloader.run import Downloader, RetryPolicy
from kmnist.errors import DownloadError

from .conftest import StartServer, no_part_files
from .server import CERT, FaultyServer, HttpProxy, Socks5Proxy

DATA = os.urandom(5 << 20)  # over 2 MiB: asked for in ranges, on several connections
PATH = "kmnist/blob.bin"
FILE = RemoteFile(PATH, len(DATA), sha256=hashlib.sha256(DATA).hexdigest())


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Socks5Proxy]:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    transfer._origin_proxies.cache_clear()  # read per origin, once: this test's environment
    p = Socks5Proxy()
    yield p
    p.close()
    transfer._origin_proxies.cache_clear()


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])  # h: the proxy resolves the name
def test_a_socks_proxy_carries_every_request_and_the_file_arrives_whole(
    proxy: Socks5Proxy,
    server: FaultyServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scheme: str,
) -> None:
    pytest.importorskip("socks", reason="PySocks (the test extra) is not installed")
    server.add(PATH, DATA)
    # Capped, so that more connections join in: each of them through the proxy.
    server.always(PATH, "rate:4000000")
    monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("socks5", scheme))
    d = Downloader(mirrors=[server.url], progress=False, connections=4)
    d.fetch([FILE], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    assert no_part_files(tmp_path) == []
    gets = len(server.gets(PATH))
    assert gets > 1  # ranges on several connections...
    assert 1 < len(proxy.tunnels) <= gets  # ...each made through the proxy, none around it
    assert {port for _, port in proxy.tunnels} == {int(server.url.rsplit(":", 1)[1])}


def test_a_socks_proxy_without_pysocks_is_one_clear_reason(
    proxy: Socks5Proxy, server: FaultyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As requests behaves when PySocks is not installed.
    def missing(*args: object, **kwargs: object) -> object:
        raise requests.exceptions.InvalidSchema("Missing dependencies for SOCKS support.")

    monkeypatch.setattr(requests.adapters, "SOCKSProxyManager", missing)
    server.add(PATH, DATA)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    d = Downloader(
        mirrors=[server.url], progress=False, retry=RetryPolicy(attempts=2, sleep=lambda s: None)
    )
    with pytest.raises(DownloadError) as caught:
        d.fetch([FILE], tmp_path)
    said = str(caught.value)
    assert "a SOCKS one, which needs PySocks: pip install 'requests[socks]'" in said, said
    assert not (tmp_path / PATH).exists()
    assert server.gets(PATH) == [] and proxy.tunnels == []


@pytest.fixture
def http_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpProxy]:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    transfer._origin_proxies.cache_clear()
    p = HttpProxy()
    yield p
    p.close()
    transfer._origin_proxies.cache_clear()


def test_an_http_proxy_carries_every_request_to_an_http_mirror(
    http_proxy: HttpProxy, server: FaultyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.add(PATH, DATA)
    server.always(PATH, "rate:4000000")
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url)
    Downloader(mirrors=[server.url], progress=False, connections=4).fetch([FILE], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    gets = len(server.gets(PATH))
    assert gets > 1  # ranges on several connections, every one of them passed on by the proxy
    assert http_proxy.forwarded.count(f"GET /{PATH}") == gets


def test_an_https_mirror_is_reached_through_the_proxys_tunnels(
    http_proxy: HttpProxy,
    start_server: StartServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tls = start_server(tls=True)
    tls.add(PATH, DATA)
    tls.always(PATH, "rate:4000000")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(CERT))  # read once per session
    monkeypatch.setenv("HTTPS_PROXY", http_proxy.url)
    Downloader(mirrors=[tls.url], progress=False, connections=4).fetch([FILE], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    port = int(tls.url.rsplit(":", 1)[1])
    # Every connection to the mirror is a tunnel through the proxy.
    assert 1 < len(http_proxy.tunnels) <= len(tls.gets(PATH))
    assert set(http_proxy.tunnels) == {("127.0.0.1", port)}


def test_no_proxy_names_a_mirror_reached_directly(
    http_proxy: HttpProxy, server: FaultyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.add(PATH, DATA)
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    Downloader(mirrors=[server.url], progress=False).fetch([FILE], tmp_path)
    assert (tmp_path / PATH).read_bytes() == DATA
    assert http_proxy.forwarded == [] and http_proxy.tunnels == []


@pytest.mark.parametrize("name", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_a_ca_bundle_that_does_not_exist_is_one_usage_line_before_anything(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # requests raised it per request as an OSError, which the run took for
    # its data folder's failure ("the data folder: Could not find a suitable
    # TLS CA certificate bundle"), once per file.
    from kmnist.cli.download import main

    for other in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(other, raising=False)
    missing = tmp_path / "no-such-ca.pem"
    monkeypatch.setenv(name, str(missing))
    root = tmp_path / "data"
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(root), "-m", "https://127.0.0.1:9/", "-q"]
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"kmnist-download: error: ${name} names {str(missing)!r}, which does not exist: give"
        " the path of a CA bundle (a file or a folder), or unset it to use the bundled"
        " certificates"
    ]
    assert not root.exists()
    # --check-mirrors says the same...
    assert main(["--check-mirrors", *argv[:-1]]) == 2
    assert capsys.readouterr().err.count(f"${name} names") == 1
    # ...and a run from folders alone needs no CA bundle: it fails for its own reason.
    (tmp_path / "empty-copy").mkdir()
    argv[argv.index("https://127.0.0.1:9/")] = str(tmp_path / "empty-copy")
    assert main(argv) == 1
    assert f"${name}" not in capsys.readouterr().err


@pytest.mark.parametrize("value", ["::::", "http://[::1", "http://127.0.0.1:99999", "\udcff"])
def test_a_proxy_variable_that_is_not_a_url_is_one_usage_line_before_anything(
    value: str,
    tmp_path: Path,
    proxy: Socks5Proxy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It was urllib3's own words ("Failed to parse: ...") once per file, exit 1."""
    from kmnist.cli.download import main

    monkeypatch.setenv("http_proxy", value)
    root = tmp_path / "data"
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(root), "-m", "http://127.0.0.1:9/", "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("kmnist-download: error: $http_proxy is "), err
    assert "which is not a proxy URL" in err[0]
    assert not root.exists()


def test_a_proxy_that_refuses_is_named_and_the_hint_points_at_it(
    tmp_path: Path,
    proxy: Socks5Proxy,
    server: FaultyServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The mirror was blamed ("connection to <mirror> failed (ProxyError)") and
    the hint said to pick another mirror."""
    import socket

    from kmnist.cli.download import main

    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("http_proxy", dead)
    root = tmp_path / "data"
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(root), "-m", server.url, "--timeout", "2"]
    assert main([*argv, "--no-progress"]) == 1
    err = capsys.readouterr().err
    where = server.url.removeprefix("http://")
    assert f"the proxy {dead} failed on the way to {where}: refused" in err, err
    assert "$no_proxy" in err.splitlines()[-1]
    assert "give one you can reach" not in err
