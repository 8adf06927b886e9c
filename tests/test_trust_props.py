"""download_files' contract, over random requests: exactly the files asked for, or an error.

A loopback mirror serves the small published files and the MNIST-format ones
a .npz could be built from; each request mixes genuine files, files asked for
with another sha256 or another size, and files the mirror does not have.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kmnist
from kmnist.catalogue import manifest
from kmnist.catalogue.manifest import RemoteFile
from kmnist.downloader.run import RetryPolicy
from kmnist.errors import DownloadsFailed, KmnistError
from kmnist.storage import layout

from .conftest import REALDATA
from .server import FaultyServer

# Small published files (the large image files would make each example slow).
SERVED = (
    "kmnist/kmnist-test-labels.npz",
    "kmnist/kmnist-train-labels.npz",
    "kmnist/kmnist_classmap.csv",
    "kmnist/t10k-labels-idx1-ubyte.gz",  # what kmnist-test-labels.npz can be built from
    "kmnist/train-labels-idx1-ubyte.gz",
    "k49/k49-test-labels.npz",
    "k49/k49_classmap.csv",
)
# Catalogued, never served: a request for them must fail, and nothing be built.
ABSENT = ("kmnist/kmnist-test-imgs.npz", "k49/k49-train-labels.npz")
PUBLISHED = {e.file.path: e.file for e in manifest.ENTRIES}

pytestmark = pytest.mark.skipif(
    not (REALDATA / "kmnist").is_dir(), reason=f"real published files not found at {REALDATA}"
)


@pytest.fixture(scope="module")
def mirror() -> Iterator[FaultyServer]:
    server = FaultyServer().start()
    for rel in SERVED:
        server.add(rel, (REALDATA / rel).read_bytes())
    try:
        yield server
    finally:
        server.stop()


def _variant(path: str, kind: str, sha: str) -> tuple[RemoteFile, bool]:
    """The file asked for, and whether the mirror's bytes are it."""
    f = PUBLISHED[path]
    assert f.size is not None
    if kind == "sha256":
        return RemoteFile(path, f.size, sha256=sha), sha == f.sha256
    if kind == "size":
        return RemoteFile(path, f.size + 1, sha256=f.sha256), False
    if kind == "smaller":
        return RemoteFile(path, f.size - 1, sha256=f.sha256), False
    return f, path in SERVED


requests = st.lists(
    st.tuples(
        st.sampled_from(SERVED + ABSENT),
        st.sampled_from(["genuine", "sha256", "size", "smaller"]),
        st.text("0123456789abcdef", min_size=64, max_size=64),
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda t: t[0],
)


@settings(max_examples=25, deadline=None)
@given(asked=requests)
def test_download_files_returns_exactly_what_was_asked_or_fails(
    mirror: FaultyServer, asked: list[tuple[str, str, str]]
) -> None:
    files = [_variant(*a) for a in asked]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        try:
            paths = kmnist.download_files(
                [f for f, _ in files],
                root,
                mirrors=[mirror.url],
                progress=False,
                retry=RetryPolicy(sleep=lambda s: None),
            )
        except KmnistError as exc:
            assert not all(good for _, good in files)
            failed = exc.failures if isinstance(exc, DownloadsFailed) else [exc]
            assert failed and all(isinstance(f, KmnistError) for f in failed)
            for f, good in files:
                target = root / f.path
                if good:  # fetched all the same, verified
                    assert target.read_bytes() == (REALDATA / f.path).read_bytes()
                else:
                    assert not target.exists()
        else:
            assert all(good for _, good in files)
            assert paths == [root / f.path for f, _ in files]
            for f, _ in files:
                assert (root / f.path).read_bytes() == (REALDATA / f.path).read_bytes()
        # Nothing else: no MNIST-format file fetched for a build, no leftovers.
        asked_paths = {f.path for f, good in files if good}
        on_disk = {
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and layout.META_DIR not in p.parts
        }
        assert on_disk <= asked_paths
