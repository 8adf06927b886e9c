"""A folder as a mirror (``--mirror /path``, ``file://``), attacked from outside.

The docs say "a copy's folder works too". A copy's folder may hold, under a
file's name, a named pipe, a link to a device or to nothing, a file this
user may not read; its ``file://`` URL may spell a name with ``%XX``
escapes (braces, bytes that are not UTF-8). Each is one line naming the
mirror and the file, in words, exit 1 (or the file from the next mirror),
or a usage error (exit 2) for a URL that names no folder; never a hang,
a traceback, or a folder of another name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmnist.catalogue.manifest import ENTRIES, user_mirror
from kmnist.cli.download import main
from kmnist.errors import UsageError

from .conftest import REALDATA, needs_realdata, no_part_files

BOUNDED = 60  # seconds: a hang fails, not a slow machine
TEST_NPZ = ("kmnist-test-imgs.npz", "kmnist-test-labels.npz", "kmnist_classmap.csv")
ARGV = ["-d", "kmnist", "-s", "test", "-f", "npz", "--no-derive", "--no-progress"]


def _copy(tmp_path: Path) -> Path:
    """A mirror folder holding the real KMNIST test .npz files (a copy: it is changed)."""
    mirror = tmp_path / "copy"
    (mirror / "kmnist").mkdir(parents=True)
    for name in TEST_NPZ:
        shutil.copyfile(REALDATA / "kmnist" / name, mirror / "kmnist" / name)
    return mirror


def _errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if ": error: " in line]


def _run(argv: list[str], prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """The command in a child, killed after BOUNDED seconds (a hang fails the test)."""
    try:
        return subprocess.run(
            [*prefix, sys.executable, "-m", "kmnist", *argv],
            capture_output=True,
            text=True,
            timeout=BOUNDED,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:  # the child is killed by run()
        pytest.fail(f"HANG: no end within {BOUNDED} s; stderr: {exc.stderr!r}")


@needs_realdata
def test_a_named_pipe_in_a_folder_mirror_is_refused_without_a_hang(tmp_path: Path) -> None:
    # Before: open() of the FIFO waited for a writer for good; the run said
    # "waiting for <mirror> to answer" and hung (SIGTERM did not end it).
    mirror = _copy(tmp_path)
    fifo = mirror / "kmnist" / "kmnist_classmap.csv"
    fifo.unlink()
    os.mkfifo(fifo)
    data = tmp_path / "data"
    r = _run([*ARGV, "-m", str(mirror), "--dir", str(data)])
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 1, r.stderr
    (line,) = _errors(r.stderr)
    assert "kmnist/kmnist_classmap.csv" in line and str(mirror) in line
    assert "named pipe (FIFO), not a file" in line
    assert not (data / "kmnist" / "kmnist_classmap.csv").exists()
    assert (data / "kmnist" / "kmnist-test-imgs.npz").is_file()  # the others fetched
    assert not no_part_files(data)


@needs_realdata
@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("/dev/zero", "is a character device, not a file"),
        ("/dev/urandom", "is a character device, not a file"),
        ("nothing-there", "is a link to "),
        ("folder", "is a folder, not a file"),
    ],
)
def test_a_link_to_a_device_to_nothing_or_a_folder_is_said_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str, words: str
) -> None:
    # Before: a device was "wrong size (expected 5304 bytes, got 0 bytes
    # announced)" and a dangling link "no such file", for a name that is there.
    if target.startswith("/dev/") and not os.path.exists(target):
        pytest.skip(f"{target} not here")
    mirror = _copy(tmp_path)
    link = mirror / "kmnist" / "kmnist-test-labels.npz"
    link.unlink()
    if target == "folder":
        (tmp_path / "folder").mkdir()
        target = str(tmp_path / "folder")
    link.symlink_to(target)
    data = tmp_path / "data"
    assert main([*ARGV, "-m", str(mirror), "--dir", str(data)]) == 1
    err = capsys.readouterr().err
    (line,) = _errors(err)
    assert line.startswith("kmnist-download: error: kmnist/kmnist-test-labels.npz:"), line
    assert str(mirror) in line and words in line, line
    assert "wrong size" not in line and "no such file" not in line
    assert not (data / "kmnist" / "kmnist-test-labels.npz").exists()
    assert not no_part_files(data)


@needs_realdata
def test_a_file_this_user_may_not_read_is_refused_at_once_in_words(tmp_path: Path) -> None:
    # Before: "[Errno 13] Permission denied: '<path>'", retried four times
    # with back-off (3.5 s), then "(after 4 tries)".
    from .test_unreadable import _prefix

    prefix = _prefix()
    if isinstance(prefix, str):
        pytest.skip(prefix)
    mirror = _copy(tmp_path)
    (mirror / "kmnist" / "kmnist-test-labels.npz").chmod(0)
    data = tmp_path / "data"
    r = _run([*ARGV, "-m", str(mirror), "--dir", str(data)], prefix)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 1, r.stderr
    (line,) = _errors(r.stderr)
    assert "kmnist/kmnist-test-labels.npz" in line and str(mirror) in line
    assert "this user may not read it (permission denied)" in line, line
    assert "Errno" not in r.stderr and "trying again" not in r.stderr and "tries" not in line
    assert not (data / "kmnist" / "kmnist-test-labels.npz").exists()
    assert (data / "kmnist" / "kmnist-test-imgs.npz").is_file()


@needs_realdata
def test_a_file_that_grows_while_it_is_copied_gives_the_size_it_had(tmp_path: Path) -> None:
    # A fault (it failed before): the read stops at the size at open.
    from kmnist.downloader.transfer import open_url

    path = tmp_path / "growing"
    path.write_bytes(b"a" * 1000)
    body = open_url(str(path), 0, session=None)
    with path.open("ab") as fh:
        fh.write(b"b" * 5000)
    got = b"".join(body.chunks(300))
    body.close()
    assert got == b"a" * 1000 and body.length == 1000


# A folder name's bytes: any but "/" and NUL, braces, %, ?, #, spaces and
# bytes that are not UTF-8 among them.
_NAME_BYTES = st.binary(min_size=1, max_size=10).filter(
    lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b"..")
) | st.sampled_from([b"{", b"}", b"{name}", b"{path}", b"a b", b"\xff", b"%41", b"x?y", b"#"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=_NAME_BYTES, prefix=st.sampled_from(["file://", "file://localhost", "FILE://", "file:"])
)
def test_a_file_url_names_the_folder_its_escapes_spell(name: bytes, prefix: str) -> None:
    # Before: %7B or %7D was a template's brace (a ValueError traceback, or
    # {name} a field); %FF was U+FFFD, a folder of another name; "file:/x"
    # a folder named "file:" here.
    folder = b"/srv/k/" + name
    url = prefix + quote(folder, safe="/")
    file = ENTRIES[0].file
    try:
        mirror = user_mirror(url)
    except UsageError as exc:
        # Only a name no filesystem here takes may be refused.
        assert len(name) > 255 or "too long" in str(exc), str(exc)
        return
    assert mirror.is_local
    assert os.fsencode(mirror.url(file)) == folder + b"/" + file.path.encode()


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("file:relative/folder", "a file: URL names a folder from /"),
        ("file:///srv/kmnist?x=1", "no query or fragment ('?'"),
        ("file:///srv/kmnist#top", "no query or fragment ('#'"),
    ],
)
def test_a_file_url_that_names_no_folder_is_a_usage_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    spec: str,
    words: str,
) -> None:
    # Before: "file:relative/folder" and the ? or # were taken into the
    # folder's name: "mirror 1 (...) could not be reached: no such folder".
    monkeypatch.chdir(tmp_path)
    assert main([*ARGV, "-m", spec, "--dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and repr(spec) in err[0], err
    assert not (tmp_path / "data").exists()


@needs_realdata
def test_the_short_file_url_form_names_its_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # RFC 8089's "file:/path": before, a folder named "file:" here, "no such folder".
    mirror = _copy(tmp_path)
    data = tmp_path / "data"
    assert main([*ARGV, "-m", "file:" + quote(str(mirror)), "--dir", str(data)]) == 0
    for name in TEST_NPZ:
        assert (data / "kmnist" / name).read_bytes() == (mirror / "kmnist" / name).read_bytes()


@needs_realdata
def test_the_data_folder_as_its_own_mirror_keeps_only_verified_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A fault (it failed before): --mirror D --dir D, with a complete file,
    # a .part and a corrupt file. The complete one is kept, the others are
    # refused by their hash (the mirror is the same bytes), no final name
    # holds other bytes, and nothing is left beside them.
    d = _copy(tmp_path)
    folder = d / "kmnist"
    imgs = folder / "kmnist-test-imgs.npz"
    (folder / "kmnist-test-imgs.npz.part").write_bytes(imgs.read_bytes()[:100_000])
    imgs.unlink()
    labels = folder / "kmnist-test-labels.npz"
    corrupt = bytearray(labels.read_bytes())
    corrupt[100] ^= 0xFF
    labels.write_bytes(bytes(corrupt))
    assert main([*ARGV, "-m", str(d), "--dir", str(d)]) == 1
    err = _errors(capsys.readouterr().err)
    assert len(err) == 2, err
    assert (folder / "kmnist_classmap.csv").read_bytes() == (
        REALDATA / "kmnist" / "kmnist_classmap.csv"
    ).read_bytes()
    assert not imgs.exists()
    # The corrupt file was never under a final name as verified: --verify says so.
    assert main(["--verify", "--dir", str(d), "-d", "kmnist", "-s", "test", "-f", "npz"]) == 1


@needs_realdata
def test_check_mirrors_says_a_file_this_user_may_not_read_is_not_ok(tmp_path: Path) -> None:
    from .test_unreadable import _prefix

    prefix = _prefix()
    if isinstance(prefix, str):
        pytest.skip(prefix)
    mirror = _copy(tmp_path)
    (mirror / "kmnist" / "kmnist-test-labels.npz").chmod(0)
    argv = ["-d", "kmnist", "-s", "test", "-f", "npz", "--check-mirrors"]
    r = _run([*argv, "-m", str(mirror), "--dir", str(tmp_path / "data")], prefix)
    assert "Traceback" not in r.stderr, r.stderr
    row = next(line for line in r.stdout.splitlines() if "kmnist-test-labels.npz" in line)
    assert not row.rstrip().endswith("ok"), row
    assert r.returncode == 1
