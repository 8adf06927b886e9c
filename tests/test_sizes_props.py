"""Any size of file, empty included, arrives whole under its final name: over HTTP
(one stream or shared connections) and from a local folder, then skipped on a rerun."""

from __future__ import annotations

import hashlib
import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmnist.catalogue.manifest import RemoteFile
from kmnist.downloader.outcome import Outcome
from kmnist.downloader.run import Downloader, RetryPolicy
from kmnist.errors import DownloadError

from .conftest import _running, no_part_files
from .server import FaultyServer

# Sizes at the edges the downloader cares about (nothing, one byte, a buffer,
# the 1 MiB piece, the 2 MiB threshold of sharing), or anything small.
EDGES = [0, 1, 2, 4095, 4096, 4097, 2**19, 2**20 - 1, 2**20, 2**20 + 1, 2**21 - 1, 2**21]
SIZES = st.one_of(st.sampled_from(EDGES), st.integers(min_value=0, max_value=5000))
_names = itertools.count()


@pytest.fixture(scope="module")
def mirror() -> Iterator[FaultyServer]:
    yield from _running()


def _file(size: int) -> tuple[RemoteFile, bytes]:
    data = hashlib.shake_256(str(size).encode()).digest(size) if size else b""
    path = f"kmnist/f{next(_names)}.bin"
    return RemoteFile(path, size, sha256=hashlib.sha256(data).hexdigest()), data


def _downloader(mirror: str, connections: int) -> Downloader:
    return Downloader(
        mirrors=[mirror],
        progress=False,
        connections=connections,
        retry=RetryPolicy(max_tries=2, sleep=lambda s: None),
    )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(size=SIZES, connections=st.sampled_from([1, 8]), local=st.booleans())
def test_a_file_of_any_size_arrives_whole_and_is_skipped_on_a_rerun(
    mirror: FaultyServer, size: int, connections: int, local: bool
) -> None:
    f, data = _file(size)
    with tempfile.TemporaryDirectory() as tmp:
        root, copy = Path(tmp) / "data", Path(tmp) / "copy"
        if local:
            (copy / f.path).parent.mkdir(parents=True)
            (copy / f.path).write_bytes(data)
        else:
            mirror.add(f.path, data)
        where = str(copy) if local else mirror.url
        [first] = _downloader(where, connections).fetch([f], root)
        assert first.action is Outcome.FETCHED
        assert (root / f.path).read_bytes() == data and not no_part_files(root)
        [again] = _downloader(where, connections).fetch([f], root)
        assert again.action is Outcome.SKIPPED


@pytest.mark.parametrize("local", [False, True], ids=["http", "folder"])
def test_an_empty_file_the_mirror_does_not_have_is_not_made_up(
    mirror: FaultyServer, tmp_path: Path, local: bool
) -> None:
    # Its bytes are known from its size alone, but a mirror that does not
    # carry it is not taken to have given it.
    f, _ = _file(0)
    copy = tmp_path / "copy"
    copy.mkdir()
    with pytest.raises(DownloadError):
        _downloader(str(copy) if local else mirror.url, 1).fetch([f], tmp_path / "data")
    assert not (tmp_path / "data" / f.path).exists() and not no_part_files(tmp_path)
    shutil.rmtree(copy)
