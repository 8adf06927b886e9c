"""A mirror typed without http:// is a usage error that says the URL, not a missing folder.

``127.0.0.1:18931`` or ``mirror.example.org/kmnist`` was once taken for a
local folder: seven lines of "no such file" and exit 1. The classifier
(:func:`kmnist.inputs.schemeless_url`) is checked over drawn hosts, ports and
paths; every way a mirror comes in (--mirror, KMNIST_MIRROR, the mirror
question, the API) is checked to end in the same one line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kmnist
from kmnist.catalogue.manifest import RemoteFile, user_mirror
from kmnist.cli.download import main
from kmnist.cli.interactive import check_mirror
from kmnist.errors import KmnistError, UsageError
from kmnist.inputs import schemeless_url

LETTERS = "abcdefghijklmnopqrstuvwxyz"
label = st.text(LETTERS + "0123456789", min_size=1, max_size=12).filter(lambda s: not s.isdigit())
tld = st.text(LETTERS, min_size=2, max_size=6)
domain = st.builds(
    lambda labels, end: ".".join([*labels, end]), st.lists(label, min_size=1, max_size=3), tld
)
ipv4 = st.builds(lambda *o: ".".join(map(str, o)), *[st.integers(0, 255)] * 4)
host = st.one_of(domain, ipv4, st.just("localhost"), st.just("[::1]"), label)
port = st.integers(1, 65535)
segment = st.text(LETTERS + "0123456789-_.", min_size=1, max_size=10).filter(
    lambda s: s not in (".", "..")
)
path = st.lists(segment, max_size=3).map(lambda parts: "/".join(parts))


@given(host=host, port=port, path=path, slash=st.booleans())
def test_host_and_port_is_read_as_a_url(host: str, port: int, path: str, slash: bool) -> None:
    typed = f"{host}:{port}" + (f"/{path}" if path or slash else "")
    url = schemeless_url(typed)
    assert url is not None
    assert url.startswith(f"http://{host}:{port}/")
    assert url == "http://" + typed + ("" if "/" in typed else "/")


@given(host=st.one_of(domain, ipv4), path=path)
def test_a_dotted_name_with_a_path_is_read_as_a_url(host: str, path: str) -> None:
    assert schemeless_url(f"{host}/{path}") == f"http://{host}/{path}"


@given(
    start=st.sampled_from(["/", "./", "../", "~/", "~", "file:", "file://", "http://", "https://"]),
    host=host,
    port=port,
    path=path,
)
def test_what_is_clearly_a_path_or_a_url_is_never_rewritten(
    start: str, host: str, port: int, path: str
) -> None:
    assert schemeless_url(f"{start}{host}:{port}/{path}") is None
    assert schemeless_url(f"{start}{host}/{path}") is None


@given(first=label, rest=path)
def test_a_folder_name_without_a_dot_or_port_stays_a_folder(first: str, rest: str) -> None:
    # "data/kmnist", "mirror", "v12/x": the name of a folder, as before.
    assert schemeless_url(f"{first}/{rest}" if rest else first) is None


def test_an_existing_folder_named_like_a_host_stays_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mirror.example.org" / "kmnist").mkdir(parents=True)
    (tmp_path / "127.0.0.1:18931").mkdir()
    assert schemeless_url("mirror.example.org/kmnist") is None
    assert schemeless_url("127.0.0.1:18931") is None
    assert schemeless_url("other.example.org/kmnist") == "http://other.example.org/kmnist"


LINE = "did you mean http://127.0.0.1:18931/ ?"


def test_the_command_says_it_in_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["-d", "kmnist", "--dir", str(tmp_path), "--mirror", "127.0.0.1:18931"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("kmnist-download: error: --mirror '127.0.0.1:18931' has no http://")
    assert LINE in err
    assert list(tmp_path.iterdir()) == []  # nothing planned, nothing written


def test_kmnist_mirror_says_it_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KMNIST_MIRROR", "127.0.0.1:18931")
    assert main(["-d", "kmnist", "--dir", str(tmp_path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "$KMNIST_MIRROR" in err and LINE in err


def test_the_mirror_question_refuses_it() -> None:
    why = check_mirror("127.0.0.1:18931")
    assert why is not None and LINE in why


def test_the_api_raises_a_kmnist_error_with_the_same_words(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=re.escape(LINE)) as caught:
        kmnist.download("kmnist", root=tmp_path, mirrors=["127.0.0.1:18931"], progress=False)
    assert isinstance(caught.value, KmnistError)
    assert list(tmp_path.iterdir()) == []


def test_the_console_script_exits_2_without_a_traceback(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("kmnist-download")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "kmnist"]
    out = subprocess.run(
        [*argv, "-d", "kmnist", "--dir", str(tmp_path), "-m", "mirror.example.org/kmnist"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KMNIST_MIRROR": ""},
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "did you mean http://mirror.example.org/kmnist ?" in out.stderr


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("http://", "no host name"),
        ("https://", "no host name"),
        ("http:127.0.0.1:8801", "the // after the scheme is missing"),
        ("http:/127.0.0.1:8801", "the // after the scheme is missing"),
        ("file://", "names no folder"),
        ("file://otherhost/x", "names host 'otherhost'"),
    ],
)
def test_a_url_without_a_host_is_a_usage_error_not_a_folder(spec: str, said: str) -> None:
    """ "http://" lost its slashes to rstrip and was looked for as the folder
    "./http:", once per file; "http:host" was a folder too."""
    with pytest.raises(UsageError, match=re.escape(said)):
        user_mirror(spec)


def test_file_urls_follow_rfc_8089_and_schemes_any_case(tmp_path: Path) -> None:
    folder = tmp_path / "sp ace"
    folder.mkdir()
    assert user_mirror(f"file://localhost{folder}").url(_file()) == str(folder / "kmnist/x.npz")
    assert user_mirror(f"file://{str(folder).replace(' ', '%20')}").url(_file()) == str(
        folder / "kmnist/x.npz"
    )
    assert user_mirror("HTTP://127.0.0.1:1").url(_file()) == "http://127.0.0.1:1/kmnist/x.npz"


def _file() -> RemoteFile:
    return RemoteFile("kmnist/x.npz", 1)
