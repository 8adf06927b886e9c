"""Through the proxy the environment names: every byte through it, or one clear reason.

A SOCKS5 proxy on 127.0.0.1 (tests/server.py) relays to a FaultyServer; the
proxy counts its tunnels, so a request that went around it is seen.
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

from .conftest import no_part_files
from .server import FaultyServer, Socks5Proxy

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
