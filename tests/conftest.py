from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from kmnist.downloader.run import RetryPolicy

from .server import FaultyServer

ROOT = Path(__file__).resolve().parents[1]
REALDATA = ROOT.parent / "shared" / "realdata"
# For a test that reads the published files directly (the ``realdata`` fixture
# is the same check for a test that takes the folder as an argument).
needs_realdata = pytest.mark.skipif(
    not (REALDATA / "kmnist").is_dir(), reason=f"real published files not found at {REALDATA}"
)

HAS_TORCH = importlib.util.find_spec("torch") is not None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``torch`` skip without PyTorch: README's command needs only '.[test]'.

    .ci/run runs that command first, then installs PyTorch and runs
    ``pytest -m torch``: a test that needs PyTorch carries the mark, or the
    hook below fails it.
    """
    if HAS_TORCH:
        return
    skip = pytest.mark.skip(reason="PyTorch is not installed (pip install 'kmnist[torch]')")
    for item in items:
        if item.get_closest_marker("torch"):
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A test that skips for want of PyTorch without the ``torch`` mark is a failure.

    Otherwise neither of .ci/run's two steps would run it.
    """
    outcome = yield
    report = outcome.get_result()
    if (
        report.skipped
        and not item.get_closest_marker("torch")
        and "torch" in str(report.longrepr).lower()
        and "pytorch is not installed" in str(report.longrepr).lower()
    ):
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} skips without PyTorch: mark it @pytest.mark.torch"


@pytest.fixture(autouse=True)
def _no_env_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's KMNIST_MIRROR or KMNIST_DATA must not leak into tests.
    monkeypatch.delenv("KMNIST_MIRROR", raising=False)
    monkeypatch.delenv("KMNIST_DATA", raising=False)


def _running() -> Iterator[FaultyServer]:
    s = FaultyServer().start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def server() -> Iterator[FaultyServer]:
    yield from _running()


@pytest.fixture
def cdn() -> Iterator[FaultyServer]:
    """A second host, where a mirror's redirects lead."""
    yield from _running()


# Starts one more server: for a test that needs more hosts than server and cdn.
StartServer = Callable[..., FaultyServer]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Start further servers (``start_server(tls=True)`` for HTTPS); each is stopped after the test."""
    started: list[FaultyServer] = []

    def start(*, tls: bool = False) -> FaultyServer:
        started.append(FaultyServer(tls=tls).start())
        return started[-1]

    try:
        yield start
    finally:
        for running in started:
            running.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def retry(sleeps: list[float]) -> RetryPolicy:
    """Retries without waiting, recording the waits they would have made."""
    return RetryPolicy(sleep=sleeps.append)


@pytest.fixture
def low_water_marks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every low-water mark a Body sets on its socket, in order (it still sets them)."""
    from kmnist.downloader import transfer

    marks: list[int] = []
    set_mark = transfer.Body._set_low_water

    def spy(self: transfer.Body, n: int) -> int:
        marks.append(n)
        return set_mark(self, n)

    monkeypatch.setattr(transfer.Body, "_set_low_water", spy)
    return marks


# Another user's file, outside the data folder: what a planted link points at.
OUTSIDE = b"another user's file: must not change\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside the data folder holding OUTSIDE: it must come out as it went in."""
    f = tmp_path / "outside" / "precious.txt"
    f.parent.mkdir()
    f.write_bytes(OUTSIDE)
    return f


@pytest.fixture
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"real published files not found at {REALDATA}")
    return REALDATA


def no_part_files(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*.part")] if root.exists() else []


os.environ.setdefault("TQDM_DISABLE", "1")


def loopback_only(real: Any) -> Any:
    """``socket.getaddrinfo`` that answers for loopback alone and refuses every other name.

    As a resolver that cannot find a host answers (EAI_NONAME), and without
    asking one: no test may reach a DNS server.
    """

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "localhost", b"127.0.0.1", None):
            raise socket.gaierror(socket.EAI_NONAME, f"test: no lookups of {host!r}")
        return real(host, *args, **kwargs)

    return guarded
