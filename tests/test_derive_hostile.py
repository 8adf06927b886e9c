"""The fallback build, attacked from outside: hostile mirrors, layouts, flags and interruptions.

A KMNIST ``.npz`` may be built from its MNIST-format file only as a last
resort, said out loud, never masking a mirror's wrong bytes, and a later run
replaces it by the published one. Mirrors here are loopback servers
(tests/server.py) serving the real published files (../shared/realdata) or
wrong ones: another release, another split, an HTML page, half a file.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kmnist
from kmnist.catalogue import manifest
from kmnist.cli.download import main
from kmnist.downloader import run as run_module
from kmnist.downloader.run import RetryPolicy
from kmnist.errors import KmnistError, VerificationError
from kmnist.storage import layout

from .conftest import REALDATA, needs_realdata, no_part_files
from .server import FaultyServer

IMGS = "kmnist/kmnist-test-imgs.npz"
LABELS = "kmnist/kmnist-test-labels.npz"
MNIST_IMGS = "kmnist/t10k-images-idx3-ubyte.gz"
MNIST_LABELS = "kmnist/t10k-labels-idx1-ubyte.gz"
CLASSMAP = "kmnist/kmnist_classmap.csv"
FILES = (IMGS, LABELS, MNIST_IMGS, MNIST_LABELS, CLASSMAP)
NPZ = (IMGS, LABELS)
PUBLISHED = {e.file.path: e.file for e in manifest.ENTRIES}

pytestmark = needs_realdata


def _real(rel: str) -> bytes:
    return (REALDATA / rel).read_bytes()


def _mnist_only(server: FaultyServer) -> None:
    """As the CDN copies: the MNIST format and the class map, no .npz."""
    for rel in (MNIST_IMGS, MNIST_LABELS, CLASSMAP):
        server.add(rel, _real(rel))


def _argv(root: Path, *mirrors: str, more: tuple[str, ...] = ()) -> list[str]:
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(root), "--no-progress", *more]
    for m in mirrors:
        argv += ["-m", m]
    return argv


def _verify(root: Path, *more: str) -> list[str]:
    return ["--verify", "-d", "kmnist", "-s", "test", "--dir", str(root), *more]


def _row(out: str, rel: str) -> str:
    [row] = [line for line in out.splitlines() if line.startswith(rel + " ")]
    return row


def _built(root: Path, server: FaultyServer, capsys: pytest.CaptureFixture[str]) -> None:
    """Both test .npz files built from the MNIST format (no mirror has them)."""
    assert main(_argv(root, server.url)) == 0
    out = capsys.readouterr().out
    assert f"derived  {IMGS}" in out and f"derived  {LABELS}" in out


# -- a build is said once -------------------------------------------------------------


def test_a_build_is_said_once_with_the_progress_shown(
    tmp_path: Path, server: FaultyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _mnist_only(server)
    server.add(IMGS, _real("v1/kmnist-test-imgs.npz"))  # a stale mirror
    # No --no-progress: the default run, in a log or a terminal.
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(tmp_path), "-m", server.url]
    assert main(argv) == 0
    both = "".join(capsys.readouterr())
    for said in ("built from t10k-images-idx3-ubyte.gz instead", "the 2018 (v1) release"):
        assert both.count(said) == 1, both


# -- --verify and kmnist.load of a built file: in words true for it ----------------------


def test_verify_of_a_built_file_says_matches_once(
    tmp_path: Path, server: FaultyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _mnist_only(server)
    _built(tmp_path, server, capsys)
    assert main(_verify(tmp_path)) == 0
    row = _row(capsys.readouterr().out, IMGS)
    assert row.split()[1] == "ok" and "derived from t10k-images-idx3-ubyte.gz" in row
    assert row.count("matches") == 1, row  # it said "... sha256 matches) matches"
    assert main(_verify(tmp_path, "--json")) == 0
    doc = json.loads(capsys.readouterr().out)
    detail = next(f["detail"] for f in doc["files"] if f["path"] == IMGS)
    assert detail.startswith("derived from") and detail.count("matches") == 1, detail


def test_verify_json_says_which_files_were_built(
    tmp_path: Path, server: FaultyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # A script had only the words "derived from" in `detail` to tell a built
    # file (whose size is not expected_size) from a published one.
    _mnist_only(server)
    _built(tmp_path, server, capsys)
    assert main(_verify(tmp_path, "--json")) == 0
    files = {f["path"]: f for f in json.loads(capsys.readouterr().out)["files"]}
    assert files[IMGS]["built"] is True and files[LABELS]["built"] is True
    assert files[IMGS]["size"] != files[IMGS]["expected_size"]
    assert files[MNIST_LABELS]["built"] is False and files[CLASSMAP]["built"] is False


def test_a_built_file_whose_source_changed_names_the_source_not_itself(
    tmp_path: Path, server: FaultyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _mnist_only(server)
    _built(tmp_path, server, capsys)
    source = tmp_path / MNIST_LABELS
    data = bytearray(source.read_bytes())
    data[-6] ^= 0x40  # same size, other bytes: its CRC (bit rot, an edit)
    source.write_bytes(bytes(data))
    published = PUBLISHED[MNIST_LABELS].sha256
    assert published is not None
    assert main(_verify(tmp_path)) == 1
    row = _row(capsys.readouterr().out, LABELS)
    # It said "wrong sha256: expected <the source's sha256>, got ... (a well-formed
    # npz file ..., but not the published bytes)": figures of another file, as the npz's.
    assert row.split()[1] == "corrupt"
    assert "sha256 of its source t10k-labels-idx1-ubyte.gz" in row, row
    assert "well-formed npz" not in row
    with pytest.raises(VerificationError) as caught:
        kmnist.load("kmnist", "test", root=tmp_path, format="npz")
    said = str(caught.value)
    assert said.startswith(LABELS) and "of its source t10k-labels-idx1-ubyte.gz" in said
    assert "\n" not in said and published in said


def test_a_built_file_whose_source_is_gone_says_so_in_words(
    tmp_path: Path, server: FaultyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _mnist_only(server)
    _built(tmp_path, server, capsys)
    (tmp_path / MNIST_LABELS).unlink()
    assert main(_verify(tmp_path)) == 1
    row = _row(capsys.readouterr().out, LABELS)
    # It said "wrong source: expected t10k-labels-idx1-ubyte.gz beside it, got not
    # there to compare with".
    assert "not there to compare with" not in row
    assert "t10k-labels-idx1-ubyte.gz, the file it was built from" in row, row
    assert "run the download again" in row
    # ...and the next download fetches the source again and keeps the built file.
    assert main(_argv(tmp_path, server.url)) == 0
    assert main(_verify(tmp_path)) == 0


@pytest.mark.torch
def test_the_torch_dataset_on_a_built_file_whose_source_is_gone(
    tmp_path: Path, server: FaultyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from kmnist.datasets import KMNIST

    _mnist_only(server)
    _built(tmp_path, server, capsys)
    assert len(KMNIST(tmp_path, train=False)) == 10_000  # a built file loads
    (tmp_path / MNIST_IMGS).unlink()
    with pytest.raises(VerificationError, match="the file it was built from"):
        KMNIST(tmp_path, train=False)
    # download=True fetches the source again, and keeps the built file.
    ds = KMNIST(tmp_path, train=False, download=True, mirrors=[server.url], progress=False)
    assert len(ds) == 10_000 and (tmp_path / MNIST_IMGS).is_file()


# -- building off, over a file built before -------------------------------------------------


def test_no_derive_over_a_built_file_says_the_built_file_is_left(
    tmp_path: Path, server: FaultyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _mnist_only(server)
    _built(tmp_path, server, capsys)
    built = (tmp_path / IMGS).read_bytes()
    assert main(_argv(tmp_path, server.url, more=("--no-derive",))) == 1
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith(f"kmnist-download: error: {IMGS}:")]
    # It said only "could not be fetched: ... 404": the user took the folder for
    # one without the file, while the built one was still under its name.
    assert len(lines) == 1, err
    assert "built from t10k-images-idx3-ubyte.gz by an earlier run is left" in lines[0]
    assert "Traceback" not in err and err.count(IMGS) == 1
    assert (tmp_path / IMGS).read_bytes() == built  # not removed, not replaced


# -- a source without a published checksum builds nothing ------------------------------------


def _other_labels_of_the_same_size(real: bytes) -> bytes:
    """A valid gzip IDX of labels, one label changed, padded to ``real``'s size (FEXTRA)."""
    payload = bytearray(gzip.decompress(real))
    payload[8] = (payload[8] + 1) % 10  # the first label
    body = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = body.compress(bytes(payload)) + body.flush()
    tail = struct.pack("<II", zlib.crc32(payload), len(payload))
    extra = len(real) - (10 + 2 + len(deflated) + len(tail))
    assert extra >= 4
    header = b"\x1f\x8b\x08\x04" + b"\0" * 4 + b"\x02\xff"  # FEXTRA, mtime 0
    field = b"XX" + struct.pack("<H", extra - 4) + b"\0" * (extra - 4)
    out = header + struct.pack("<H", extra) + field + deflated + tail
    assert len(out) == len(real) and gzip.decompress(out) == bytes(payload)
    return out


def test_a_source_with_no_published_checksum_is_never_built_from(
    tmp_path: Path, server: FaultyServer
) -> None:
    # A catalogue of the caller's whose MNIST-format entries carry a size and
    # no hash: the mirror's labels file of that size, one label changed, was
    # taken, and a .npz "derived" (verified, said the summary) from it.
    real = _real(MNIST_LABELS)
    server.add(MNIST_LABELS, _other_labels_of_the_same_size(real))
    server.add(CLASSMAP, _real(CLASSMAP))
    entries = []
    for e in manifest.ENTRIES:
        if e.dataset == "kmnist" and e.format == "mnist" and e.release == "2019":
            e = dataclasses.replace(e, file=dataclasses.replace(e.file, sha256=None, md5=None))
        entries.append(e)
    with pytest.raises(KmnistError):
        kmnist.download(
            "kmnist",
            "npz",
            "test",
            tmp_path,
            mirrors=[server.url],
            progress=False,
            catalogue=entries,
        )
    assert not (tmp_path / LABELS).exists() and not (tmp_path / IMGS).exists()
    assert no_part_files(tmp_path) == []


# -- a gzip whose deflate stream is broken (its structure checked) ------------------------


def _broken_deflate(real: bytes) -> bytes:
    """``real`` with one bit flipped mid-stream: zlib says "invalid distance too far back"."""
    data = bytearray(real)
    data[len(data) // 2] ^= 0x40
    with pytest.raises(zlib.error):
        gzip.decompress(bytes(data))  # not an OSError, not an EOFError
    return bytes(data)


def test_a_2018_mnist_file_with_a_broken_deflate_stream_is_one_line_not_a_traceback(
    tmp_path: Path, server: FaultyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The 2018 files have no checksum: their structure is the check, and a
    # mirror's broken gzip ended the whole run with zlib's traceback.
    server.add("2018/" + MNIST_LABELS, _broken_deflate(_real(MNIST_LABELS)))
    argv = _argv(tmp_path, server.url, more=("-f", "mnist", "--release", "2018"))
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "t10k-labels-idx1-ubyte.gz" in err
    assert not (tmp_path / "2018" / MNIST_LABELS).exists()


def test_verify_of_a_source_with_a_broken_deflate_stream_is_a_row_not_a_traceback(
    tmp_path: Path, server: FaultyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _mnist_only(server)
    _built(tmp_path, server, capsys)
    source = tmp_path / MNIST_LABELS
    source.write_bytes(_broken_deflate(source.read_bytes()))
    assert main(_verify(tmp_path)) == 1
    out = capsys.readouterr().out
    assert _row(out, MNIST_LABELS).split()[1] == "corrupt"
    assert "of its source t10k-labels-idx1-ubyte.gz" in _row(out, LABELS)


# -- what kmnist.download returns after a build -------------------------------------------


def test_download_returns_the_files_asked_for_after_a_build(
    tmp_path: Path, server: FaultyServer
) -> None:
    _mnist_only(server)
    paths = kmnist.download("kmnist", "npz", "test", tmp_path, mirrors=[server.url], progress=False)
    # As without a build: the files of the selection, in its order (the
    # docstring's own example: the two .npz and the class map).
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [IMGS, LABELS, CLASSMAP]


# -- a build killed, then run again (guard) -----------------------------------------------------

_KILLED_MID_BUILD = """
import os, signal, sys
import numpy as np
def savez_compressed(fh, **arrays):
    fh.write(b"PK\\x03\\x04" + b"half a zip" * 500)
    fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)
np.savez_compressed = savez_compressed
from kmnist.cli.download import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("then", ["no npz anywhere", "the published npz now"])
def test_a_build_killed_midway_leaves_no_final_file_and_a_rerun_mends_it(
    tmp_path: Path, server: FaultyServer, capsys: pytest.CaptureFixture[str], then: str
) -> None:
    # Guard (passes on the code as found): SIGKILL cannot be caught, so the
    # half-written .part of a build stays; it must never become a final file.
    _mnist_only(server)
    argv = _argv(tmp_path, server.url, more=("-q",))
    env = {**os.environ, "TQDM_DISABLE": "1"}
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_BUILD, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert killed.returncode == -9, killed.stderr
    assert not (tmp_path / IMGS).exists() and not (tmp_path / LABELS).exists()
    if then == "the published npz now":
        for rel in NPZ:
            server.add(rel, _real(rel))
    assert main(_argv(tmp_path, server.url)) == 0
    out = capsys.readouterr().out
    for rel in NPZ:
        if then == "the published npz now":
            assert (tmp_path / rel).read_bytes() == _real(rel)
        else:
            assert f"derived  {rel}" in out
    assert no_part_files(tmp_path) == []
    assert main(_verify(tmp_path, "-f", "npz")) == 0


# -- the class: mirrors of every kind, in every order ---------------------------------------

# What a mirror does with one file.
KINDS = ("absent", "good", "wrong", "html", "half", "other", "flip", "404")
# The other file of the same kind: another split, another release, another dataset.
OTHER = {
    IMGS: "v1/kmnist-test-imgs.npz",
    LABELS: "kmnist/kmnist-train-labels.npz",
    MNIST_IMGS: MNIST_LABELS,
    MNIST_LABELS: "kmnist/train-labels-idx1-ubyte.gz",
    CLASSMAP: "k49/k49_classmap.csv",
}
mirror_kinds = st.fixed_dictionaries({rel: st.sampled_from(KINDS) for rel in FILES})


def _serve(server: FaultyServer, kinds: dict[str, str]) -> None:
    server.files.clear()
    server._always.clear()
    for rel, kind in kinds.items():
        if kind == "absent":
            continue
        data = _real(rel)
        if kind == "half":
            data = data[: len(data) // 2]
        elif kind == "other":
            data = _real(OTHER[rel])
        elif kind == "flip":
            flipped = bytearray(data)
            flipped[len(data) // 2] ^= 0x40
            data = bytes(flipped)
        server.add(rel, data)
        if kind in ("wrong", "html", "404"):
            server.always(rel, kind)


@pytest.fixture(scope="module")
def mirrors() -> Iterator[list[FaultyServer]]:
    servers = [FaultyServer().start() for _ in range(3)]
    try:
        yield servers
    finally:
        for s in servers:
            s.stop()


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    kinds=st.lists(mirror_kinds, min_size=1, max_size=3),
    flags=st.sampled_from([(), ("--no-derive",), ("--flat",), ("--force",)]),
)
def test_whatever_the_mirrors_serve_a_final_file_is_published_or_declared_built(
    mirrors: list[FaultyServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    kinds: list[dict[str, str]],
    flags: tuple[str, ...],
) -> None:
    # Guard for the class (passes on the code as found): every run ends in
    # published bytes or a build that says so, built only when no mirror gave
    # the published file, never with --no-derive; exit 0 exactly when every
    # file is there; one line per failure; no half-built file left.
    monkeypatch.setattr(run_module, "RetryPolicy", lambda: RetryPolicy(sleep=lambda s: None))
    used = mirrors[: len(kinds)]
    for server, k in zip(used, kinds):
        _serve(server, k)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        code = main(_argv(root, *(s.url for s in used), more=flags))
        out, err = capsys.readouterr()
        everything = _check_run(root, code, out, err, kinds, used, flags)
    assert (code == 0) == everything


def _check_run(
    root: Path,
    code: int,
    out: str,
    err: str,
    kinds: list[dict[str, str]],
    used: list[FaultyServer],
    flags: tuple[str, ...],
) -> bool:
    """The invariants of one run; whether every file asked for is there."""
    assert code in (0, 1) and "Traceback" not in err
    assert len(err.splitlines()) == len(set(err.splitlines()))
    everything = True
    for rel in (IMGS, LABELS, CLASSMAP):
        shown = Path(rel).name if "--flat" in flags else rel
        final = root / shown
        someone_has_it = any(k[rel] == "good" for k in kinds)
        if not final.exists():
            everything = False
            assert not someone_has_it, (rel, out, err)
            continue
        assert not layout.part_path(final).exists()  # no half-built file beside it
        if hashlib.sha256(final.read_bytes()).hexdigest() == PUBLISHED[rel].sha256:
            continue
        # Other bytes: only a declared build, as a last resort, with building on.
        assert rel in NPZ and not someone_has_it and "--no-derive" not in flags
        assert f"derived  {shown}" in out
        note = next(x for x in out.splitlines() if x.startswith(f"note: {shown}: "))
        assert all(server.url in note for server in used)  # every mirror's reason, named
    return everything
