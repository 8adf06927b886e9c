"""download_files and download on arguments of the wrong type or range: one line naming the argument.

The library's keywords reached the plan, the pool or the network unchecked:
``files="abc"`` was three files, ``mirrors="/srv/mirror"`` one mirror per
character, ``progress="yes"`` an AttributeError at the end of the run, a NaN
timeout went on to the network. Each is now a TypeError or ValueError (or the
UsageError a bad folder name is), before any request and any write.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kmnist
from kmnist.catalogue.manifest import RemoteFile

from .conftest import _running
from .server import FaultyServer

DATA = b"three bytes and more"
FILE = RemoteFile("kmnist/x.bin", len(DATA), sha256=hashlib.sha256(DATA).hexdigest())


@pytest.fixture(scope="module")
def one_server() -> Iterator[FaultyServer]:
    """One server for the module: each case only checks that it is never asked."""
    yield from _running()


CASES: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"files": [None]}, TypeError, "files[0] must be a kmnist.RemoteFile, not NoneType None"),
    ({"files": "abc"}, TypeError, "files must be a list of kmnist.RemoteFile, not one str"),
    ({"files": FILE}, TypeError, "files must be a list of kmnist.RemoteFile"),
    ({"root": None}, TypeError, "root: a folder is a str or an os.PathLike, not NoneType"),
    ({"root": 1}, TypeError, "root: a folder is a str or an os.PathLike, not int 1"),
    ({"root": b"/tmp"}, kmnist.UsageError, "root b'/tmp': give the folder as text"),
    ({"mirrors": "/srv/mirror"}, TypeError, "mirrors must be a list of mirrors"),
    ({"mirrors": [1]}, TypeError, "mirrors[0] must be a URL, a folder or a kmnist.Mirror"),
    ({"progress": "yes"}, TypeError, "progress must be True, False or a kmnist Progress"),
    ({"progress": None}, TypeError, "progress must be True, False or a kmnist Progress"),
    ({"jobs": "4"}, TypeError, "jobs must be an integer, not str '4'"),
    ({"jobs": 1.5}, TypeError, "jobs must be an integer, not float 1.5"),
    ({"jobs": True}, TypeError, "jobs must be an integer, not bool True"),
    ({"connections": None}, TypeError, "connections must be an integer"),
    ({"connections": 0}, ValueError, "connections must be at least 1, not 0"),
    ({"timeout": 5}, TypeError, "timeout must be (connect, read) seconds, a tuple of two"),
    ({"timeout": (1,)}, TypeError, "a tuple of two, not tuple (1,)"),
    ({"timeout": (math.nan, 1)}, ValueError, "timeout[0] (connect) must be a positive, finite"),
    ({"timeout": (1, math.inf)}, ValueError, "timeout[1] (read) must be a positive, finite"),
    ({"timeout": (1, -1)}, ValueError, "timeout[1] (read) must be a positive, finite"),
    ({"timeout": ("x", 1)}, TypeError, "timeout[0] (connect) must be a number of seconds"),
    ({"timeout": (True, 1)}, TypeError, "timeout[0] (connect) must be a number of seconds"),
    ({"piece": 0}, ValueError, "piece must be at least 1, not 0"),
    ({"piece": "8M"}, TypeError, "piece must be an integer"),
    ({"fast_connection": math.nan}, ValueError, "fast_connection must be 0 or more"),
    ({"fast_connection": -1}, ValueError, "fast_connection must be 0 or more"),
    ({"fast_connection": "fast"}, TypeError, "fast_connection must be bytes per second"),
    ({"catalogue": [1]}, TypeError, "catalogue[0] must be a kmnist.catalogue.manifest.Entry"),
    ({"catalogue": "kmnist"}, TypeError, "catalogue must be a list of"),
    ({"transport": 1}, TypeError, "transport must be a callable or None, not int 1"),
    ({"log": "-v"}, TypeError, "log must be a callable or None"),
    ({"retry": 3}, TypeError, "retry must be a kmnist RetryPolicy or None, not int 3"),
]


@pytest.mark.parametrize(("change", "error", "said"), CASES, ids=[str(c[0]) for c in CASES])
def test_a_wrong_argument_is_named_before_any_request_or_write(
    one_server: FaultyServer,
    tmp_path: Path,
    change: dict[str, Any],
    error: type[Exception],
    said: str,
) -> None:
    server = one_server
    server.add(FILE.path, DATA)
    kw: dict[str, Any] = {
        "files": [FILE],
        "root": tmp_path / "data",
        "mirrors": [server.url],
        "progress": False,
        **change,
    }
    files, root = kw.pop("files"), kw.pop("root")
    cwd = os.getcwd()
    os.chdir(tmp_path)  # a root of None or "" must not reach the working folder either
    try:
        with pytest.raises(error) as info:
            kmnist.download_files(files, root, **kw)
    finally:
        os.chdir(cwd)
    assert said in str(info.value)
    assert "\n" not in str(info.value)
    assert server.gets() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"mirrors": "/srv/mirror"}, "mirrors must be a list of mirrors"),
        ({"root": 1}, "root: a folder is a str or an os.PathLike, not int 1"),
        ({"catalogue": [None]}, "catalogue[0] must be a kmnist.catalogue.manifest.Entry"),
        ({"timeout": (0, 1)}, "timeout[0] (connect) must be a positive, finite"),
    ],
)
def test_download_names_its_arguments_too(
    tmp_path: Path, change: dict[str, Any], said: str
) -> None:
    with pytest.raises((TypeError, ValueError), match=r".*") as info:
        kmnist.download("kmnist", split="test", **{"root": tmp_path, "progress": False, **change})
    assert said in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_right_arguments_of_other_shapes_still_work(server: FaultyServer, tmp_path: Path) -> None:
    # A generator of files and of mirrors, a list timeout, a PathLike mirror
    # folder: accepted as before, read once.
    server.add(FILE.path, DATA)
    mirror = tmp_path / "copy"
    (mirror / "kmnist").mkdir(parents=True)
    (mirror / FILE.path).write_bytes(DATA)
    paths = kmnist.download_files(
        (f for f in [FILE]),
        tmp_path / "a",
        mirrors=(m for m in [mirror]),
        progress=False,
        timeout=[5, 10],  # type: ignore[arg-type]
    )
    assert [p.read_bytes() for p in paths] == [DATA]
    paths = kmnist.download_files([FILE], str(tmp_path / "b"), mirrors=[server.url], progress=False)
    assert [p.read_bytes() for p in paths] == [DATA]


@pytest.mark.parametrize(
    ("mirror", "said"),
    [
        ("http://u:secret@127.0.0.1:0/", "mirrors 'http://***@127.0.0.1:0/': port 0 is no port"),
        ("http://a,http://b", "give one mirror per item of the list, not ','"),
        ("~nosuchuser/x", "no user 'nosuchuser' here"),
    ],
)
def test_a_library_mirror_gets_the_commands_checks_without_its_password(
    tmp_path: Path, mirror: str, said: str
) -> None:
    # The checks of --mirror and $KMNIST_MIRROR lived in mirrors_from alone:
    # the library's mirrors= (and the questions) went to port 80 for port 0,
    # made a folder named "~nosuchuser", and quoted the password.
    with pytest.raises(kmnist.UsageError) as info:
        kmnist.download_files([FILE], tmp_path / "data", mirrors=[mirror], progress=False)
    assert said in str(info.value) and "secret" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
