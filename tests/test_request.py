"""Issue 13, phase B: verdicts as enums with words true for them; deciding writes nothing."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from kmnist.catalogue import manifest
from kmnist.catalogue.manifest import Entry, RemoteFile, Structure
from kmnist.cli import report
from kmnist.cli.download import main
from kmnist.downloader.outcome import Check, Outcome
from kmnist.downloader.run import Downloader, RetryPolicy

from .server import FaultyServer


def _idx(shape: tuple[int, ...]) -> bytes:
    """A gzipped IDX file of unsigned bytes (all zero) of ``shape``."""
    header = b"\x00\x00\x08" + bytes([len(shape)]) + b"".join(struct.pack(">I", n) for n in shape)
    count = 1
    for n in shape:
        count *= n
    return gzip.compress(header + bytes(count))


def _fetch(server: FaultyServer, root: Path, files: list[RemoteFile]) -> list[str]:
    d = Downloader(mirrors=[server.url], progress=False, retry=RetryPolicy(sleep=lambda s: None))
    results = d.fetch(files, root)
    return report.results(results, root, 0.0).splitlines()


def test_rerun_says_already_verified_only_for_published_checksums(
    server: FaultyServer, tmp_path: Path
) -> None:
    labels = _idx((10000,))
    unverified = RemoteFile(
        "2018/kmnist/t10k-labels-idx1-ubyte.gz", structure=Structure("idx", (10000,))
    )
    checked = RemoteFile("kmnist/blob.bin", 5, sha256=hashlib.sha256(b"hello").hexdigest())
    server.add(unverified.path, labels)
    server.add(checked.path, b"hello")
    first = _fetch(server, tmp_path, [unverified, checked])
    assert "checked: structure only (unverified)" in first[0]
    assert "checked: sha256" in first[1]
    again = _fetch(server, tmp_path, [unverified, checked])
    assert again[0].startswith("skipped") and "already verified" not in again[0]
    assert "already there, structure checked" in again[0]
    assert again[1].startswith("skipped") and "checked: already verified" in again[1]
    assert any("checked by structure only" in line for line in again)  # the closing note


def test_results_carry_enums(server: FaultyServer, tmp_path: Path) -> None:
    f = RemoteFile("kmnist/blob.bin", 5, md5=hashlib.md5(b"hello").hexdigest())
    server.add(f.path, b"hello")
    d = Downloader(mirrors=[server.url], progress=False)
    [r] = d.fetch([f], tmp_path)
    assert r.action is Outcome.FETCHED and r.checked is Check.MD5
    [r] = d.fetch([f], tmp_path)
    assert r.action is Outcome.SKIPPED and r.checked is Check.MD5


# -- --dry-run and --list write nothing ----------------------------------------

LABELS = "2018/kmnist/t10k-labels-idx1-ubyte.gz"
IMAGES = "2018/kmnist/t10k-images-idx3-ubyte.gz"
ARGV = ["--release", "2018", "-d", "kmnist", "-f", "mnist", "-s", "test"]


def _tree(root: Path) -> list[tuple[str, bool, int, int]]:
    """Every name below ``root`` (folders too) with its size and mtime."""
    out = []
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(folder, name)
            st = p.lstat()
            out.append((p.relative_to(root).as_posix(), p.is_dir(), st.st_size, st.st_mtime_ns))
    return sorted(out)


def _verified_unstamped(root: Path) -> None:
    # Structure-checked 2018 files, as another tool (or a copy) left them: no stamps.
    for rel, shape in ((LABELS, (10000,)), (IMAGES, (10000, 28, 28))):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(_idx(shape))


def _partial(root: Path) -> None:
    (root / IMAGES).parent.mkdir(parents=True)
    (root / (IMAGES + ".part")).write_bytes(_idx((10000, 28, 28))[:1000])


@pytest.mark.parametrize("fill", [lambda root: None, _verified_unstamped, _partial])
@pytest.mark.parametrize("extra", [["--dry-run"], ["--list"], ["--list", "--json"]])
def test_dry_run_and_list_leave_the_folder_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fill: object, extra: list[str]
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    fill(root)  # type: ignore[operator]
    before = _tree(root)
    assert main([*ARGV, "--dir", str(root), *extra]) == 0
    out = capsys.readouterr().out
    assert out  # it did print its plan or list
    assert _tree(root) == before


def test_dry_run_plans_to_skip_verified_files_it_does_not_stamp(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _verified_unstamped(tmp_path)
    assert main([*ARGV, "--dir", str(tmp_path), "--dry-run"]) == 0
    assert capsys.readouterr().out.count("skip ") == 2
    assert not (tmp_path / "2018" / "kmnist" / ".kmnist").exists()


def test_a_run_stamps_what_its_plan_verified(server: FaultyServer, tmp_path: Path) -> None:
    _verified_unstamped(tmp_path)
    files = [
        RemoteFile(LABELS, structure=Structure("idx", (10000,))),
        RemoteFile(IMAGES, structure=Structure("idx", (10000, 28, 28))),
    ]
    d = Downloader(mirrors=[server.url], progress=False)
    assert [r.action for r in d.fetch(files, tmp_path)] == [Outcome.SKIPPED] * 2
    stamps = sorted(p.name for p in (tmp_path / "2018/kmnist/.kmnist").iterdir())
    assert stamps == [IMAGES.rsplit("/")[-1] + ".verified", LABELS.rsplit("/")[-1] + ".verified"]
    assert server.requests == []


# -- the typed request and the seams ---------------------------------------------


def test_library_calls_name_every_keyword() -> None:
    import inspect

    import kmnist

    for fn in (kmnist.download, kmnist.download_files):
        params = inspect.signature(fn).parameters.values()
        assert not any(p.kind is p.VAR_KEYWORD for p in params), fn
        names = {p.name for p in params}
        for kw in ("mirrors", "progress", "force", "flat", "jobs", "connections", "timeout"):
            assert kw in names
        assert {"retry", "session", "log", "catalogue", "transport"} <= names


def test_options_are_frozen() -> None:
    import dataclasses

    from kmnist.downloader.request import DownloadOptions

    o = DownloadOptions(jobs=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.jobs = 3  # type: ignore[misc]
    assert o.downloader().jobs == 2


def _synthetic_catalogue(server: FaultyServer) -> tuple[tuple[Entry, ...], dict[str, bytes]]:
    """The manifest's KMNIST test entries (and class map) with other bytes, served."""
    entries, bodies = [], {}
    for e in manifest.ENTRIES:
        if (e.dataset, e.release) == ("kmnist", "2019") and e.split in ("test", None):
            body = os.urandom(200 + len(e.file.path))
            f = RemoteFile(e.file.path, len(body), sha256=hashlib.sha256(body).hexdigest())
            e = dataclasses.replace(e, file=f)
            server.add(f.path, body)
            bodies[f.path] = body
        entries.append(e)
    return tuple(entries), bodies


def test_download_takes_a_catalogue_and_a_transport(server: FaultyServer, tmp_path: Path) -> None:
    import kmnist
    from kmnist.downloader import transfer

    catalogue, bodies = _synthetic_catalogue(server)
    opened: list[str] = []

    def transport(url: str, offset: int, **kw: Any) -> transfer.Body:
        opened.append(url)
        return transfer.open_url(url, offset, **kw)

    paths = kmnist.download(
        "kmnist",
        "npz",
        "test",
        tmp_path,
        mirrors=[server.url],
        progress=False,
        catalogue=catalogue,
        transport=transport,
    )
    got = sorted(p.relative_to(tmp_path).as_posix() for p in paths)
    assert got == sorted(p for p in bodies if p.endswith((".npz", ".csv")))
    for rel in got:
        assert (tmp_path / rel).read_bytes() == bodies[rel]  # the catalogue's bytes, verified
    assert sorted(opened) == [f"{server.url}/{rel}" for rel in got]
    assert catalogue != manifest.ENTRIES  # nothing global was replaced


def test_derive_follows_the_catalogue_given(server: FaultyServer, tmp_path: Path) -> None:
    """A .npz no mirror has is built from the MNIST-format file of the catalogue in use."""
    labels = bytes(range(10)) * 1000
    idx = gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", len(labels)) + labels)
    entries = []
    for e in manifest.ENTRIES:
        if e.file.path == "kmnist/t10k-labels-idx1-ubyte.gz":
            e = dataclasses.replace(
                e,
                file=RemoteFile(e.file.path, len(idx), sha256=hashlib.sha256(idx).hexdigest()),
            )
        entries.append(e)
    server.add("kmnist/t10k-labels-idx1-ubyte.gz", idx)  # the .npz is not served
    [npz] = [e.file for e in entries if e.file.path == "kmnist/kmnist-test-labels.npz"]
    d = Downloader(mirrors=[server.url], progress=False, catalogue=tuple(entries), derive=True)
    results = d.fetch([npz], tmp_path)
    assert [r.action for r in results] == [Outcome.FETCHED, Outcome.DERIVED]
    assert (tmp_path / "kmnist/t10k-labels-idx1-ubyte.gz").read_bytes() == idx


def _npz_catalogue(root: Path) -> tuple[Entry, ...]:
    """KMNIST's test .npz files written below ``root`` as three images, and a catalogue of them."""
    import io

    import numpy as np

    arrays = {
        "kmnist/kmnist-test-imgs.npz": np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28),
        "kmnist/kmnist-test-labels.npz": np.array([0, 4, 9], dtype=np.uint8),
    }
    entries = []
    for e in manifest.ENTRIES:
        if e.file.path in arrays:
            buf = io.BytesIO()
            np.savez_compressed(buf, arr_0=arrays[e.file.path])
            body = buf.getvalue()
            (root / e.file.path).parent.mkdir(parents=True, exist_ok=True)
            (root / e.file.path).write_bytes(body)
            f = RemoteFile(e.file.path, len(body), sha256=hashlib.sha256(body).hexdigest())
            e = dataclasses.replace(e, file=f)
        entries.append(e)
    return tuple(entries)


def test_load_and_audit_take_a_catalogue(tmp_path: Path) -> None:
    import kmnist
    from kmnist.data.audit import Status, audit
    from kmnist.errors import VerificationError

    catalogue = _npz_catalogue(tmp_path)
    images, labels = kmnist.load("kmnist", "test", root=tmp_path, catalogue=catalogue)
    assert images.shape == (3, 28, 28) and list(labels) == [0, 4, 9]
    with pytest.raises(VerificationError):  # the manifest's checksums are not these files'
        kmnist.load("kmnist", "test", root=tmp_path)
    ask = {"root": tmp_path, "datasets": ["kmnist"], "format": "npz", "split": "test"}
    reports = {r.path: r.status for r in audit(**ask, catalogue=catalogue)}  # type: ignore[arg-type]
    assert reports["kmnist/kmnist-test-imgs.npz"] is Status.OK
    assert reports["kmnist/kmnist-test-labels.npz"] is Status.OK
    reports = {r.path: r.status for r in audit(**ask)}  # type: ignore[arg-type]
    assert reports["kmnist/kmnist-test-imgs.npz"] is Status.CORRUPT


def _renamed(dataset: str, release: str) -> tuple[Entry, ...]:
    """The manifest, with ``dataset``'s current files under names it does not know, in ``release``."""
    entries = []
    for e in manifest.ENTRIES:
        if (e.dataset, e.release) == (dataset, manifest.CURRENT_RELEASE):
            path = e.file.path.replace(f"{dataset}/", f"{dataset}/copy-")
            e = dataclasses.replace(e, release=release, file=dataclasses.replace(e.file, path=path))
        entries.append(e)
    return tuple(entries)


def test_check_mirrors_looks_releases_up_in_the_catalogue_given(server: FaultyServer) -> None:
    """A file's release (which says what a mirror carries) comes from the run's catalogue."""
    from kmnist.downloader.probe import Verdict, check_mirrors
    from kmnist.downloader.transfer import make_session

    catalogue = _renamed("kmnist", "2018")
    [f] = [e.file for e in catalogue if e.file.path == "kmnist/copy-kmnist-test-labels.npz"]
    only_2019 = manifest.Mirror("only-2019", server.url + "/{path}", releases=frozenset({"2019"}))
    http = make_session("kmnist-test", 1)
    try:
        ask: dict[str, Any] = {"session": http, "timeout": (5.0, 5.0)}
        # The catalogue files it under 2018, which this mirror does not carry: not asked.
        assert check_mirrors([f], [only_2019], catalogue=catalogue, **ask) == []
        assert server.requests == []
        # The manifest does not know the name, so it counts as the current release: asked.
        [probe] = check_mirrors([f], [only_2019], **ask)
    finally:
        http.close()
    assert probe.verdict is Verdict.MISSING and probe.status == 404


def test_the_failure_hint_names_the_datasets_of_the_catalogue_given(
    server: FaultyServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalogue = _renamed("k49", manifest.CURRENT_RELEASE)
    argv = ["-d", "k49", "-s", "test", "--dir", str(tmp_path), "-m", server.url, "-q"]
    assert main(argv, catalogue=catalogue) == 1  # the server has none of them
    err = capsys.readouterr().err.strip().splitlines()
    assert all("k49/copy-" in line for line in err[:-1])
    # The failed files are the catalogue's: the hint knows them as Kuzushiji-49's.
    assert err[-1].startswith("kmnist-download: hint: run the same command with --check-mirrors")
    assert "Kuzushiji-49 and Kuzushiji-Kanji exist only on the official host" in err[-1]
    assert not any(p.is_file() for p in (tmp_path / "k49").glob("copy-*"))
