"""Issue 18: a checksum is never replaced, and building an .npz is the last resort, told truthfully.

Each point on the real published files (../shared/realdata), served by a
loopback mirror that misbehaves as asked.
"""

from __future__ import annotations

import contextlib
import errno
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import kmnist
from kmnist.catalogue import manifest
from kmnist.catalogue.manifest import RemoteFile
from kmnist.cli.download import main
from kmnist.errors import DiskFull, DownloadsFailed, KmnistError
from kmnist.storage import layout

from .conftest import no_part_files
from .server import FaultyServer

IMGS = "kmnist/kmnist-test-imgs.npz"
LABELS = "kmnist/kmnist-test-labels.npz"
MNIST = ("kmnist/t10k-images-idx3-ubyte.gz", "kmnist/t10k-labels-idx1-ubyte.gz")
CLASSMAP = "kmnist/kmnist_classmap.csv"
PUBLISHED = {e.file.path: e.file for e in manifest.ENTRIES}


def _serve(server: FaultyServer, realdata: Path, *, npz: str | None) -> None:
    """The MNIST-format files and the class map; the .npz: published, 2018, or none."""
    for rel in (*MNIST, CLASSMAP):
        server.add(rel, (realdata / rel).read_bytes())
    if npz is not None:
        server.add(LABELS, (realdata / LABELS).read_bytes())
        src = "v1/kmnist-test-imgs.npz" if npz == "2018" else IMGS
        server.add(IMGS, (realdata / src).read_bytes())


def _finals(root: Path) -> list[str]:
    """Every file below ``root`` but the bookkeeping folder."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and layout.META_DIR not in p.parts
    )


def _argv(root: Path, url: str, *more: str) -> list[str]:
    return ["-d", "kmnist", "-s", "test", "--dir", str(root), "-m", url, "--no-progress", *more]


# -- 1. download_files returns the bytes asked for, or fails ---------------------


@pytest.mark.parametrize(
    ("path", "sha256", "npz"),
    [
        (IMGS, "0" * 64, "published"),  # another checksum, on a mirror that has the file
        (IMGS, None, None),  # the published checksum, on a mirror without the .npz
        (LABELS, "1" * 64, "published"),
    ],
)
def test_download_files_never_builds_nor_returns_other_bytes(
    realdata: Path, tmp_path: Path, server: FaultyServer, path: str, sha256: str | None, npz: str
) -> None:
    _serve(server, realdata, npz=npz)
    published = PUBLISHED[path]
    asked = RemoteFile(path, published.size, sha256=sha256 or published.sha256)
    with pytest.raises(KmnistError):
        kmnist.download_files([asked], tmp_path, mirrors=[server.url], progress=False)
    assert _finals(tmp_path) == []  # no final file, no MNIST-format file fetched for a build
    assert not server.gets("/" + MNIST[0]) and not server.gets("/" + MNIST[1])


# -- 2. a stale .part is fetched again from byte 0 on the same mirror -------------


def test_a_stale_part_is_fetched_again_from_byte_0_not_built(
    realdata: Path, tmp_path: Path, server: FaultyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve(server, realdata, npz="published")
    part = layout.part_path(tmp_path / IMGS)
    part.parent.mkdir(parents=True)
    part.write_bytes((realdata / "v1/kmnist-test-imgs.npz").read_bytes()[:3_000_000])
    assert main(_argv(tmp_path, server.url)) == 0
    out = capsys.readouterr().out
    assert (tmp_path / IMGS).read_bytes() == (realdata / IMGS).read_bytes()
    ranges = [r.range for r in server.gets("/" + IMGS)]
    # Resumed (the rest, as one range), then from byte 0.
    assert (ranges[0] or "").startswith("bytes=3000000-")
    assert ranges[-1] is None or ranges[-1].startswith("bytes=0-")
    assert "derived" not in out and "fetched again from byte 0" in out
    assert not server.gets("/" + MNIST[0])  # nothing was built
    assert no_part_files(tmp_path) == []


# -- 3. a built .npz is replaced by the published one ----------------------------


def test_a_built_npz_is_replaced_by_the_published_one_on_a_rerun(
    realdata: Path,
    tmp_path: Path,
    server: FaultyServer,
    start_server: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _serve(server, realdata, npz=None)
    assert main(_argv(tmp_path, server.url)) == 0
    assert "derived  kmnist/kmnist-test-imgs.npz" in capsys.readouterr().out
    built = (tmp_path / IMGS).read_bytes()
    assert built != (realdata / IMGS).read_bytes()
    # --dry-run says the built file will be fetched again.
    assert main(_argv(tmp_path, server.url, "--dry-run")) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if IMGS in line)
    assert row.startswith("refetch") and row.endswith("built, not the published file")
    # Still no mirror with the .npz: the built file is kept, and it says why.
    assert main(_argv(tmp_path, server.url)) == 0
    out = capsys.readouterr().out
    assert "kept the file built from t10k-images-idx3-ubyte.gz earlier" in out
    assert (tmp_path / IMGS).read_bytes() == built
    # A mirror that has it now: the published bytes replace the built ones.
    _serve(server, realdata, npz="published")
    assert main(_argv(tmp_path, server.url)) == 0
    out = capsys.readouterr().out
    assert f"note: {IMGS}: replaced the built file with the published one" in out
    for rel in (IMGS, LABELS):
        assert (tmp_path / rel).read_bytes() == (realdata / rel).read_bytes()
    assert main(["--verify", "-d", "kmnist", "-s", "test", "--dir", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    imgs = next(f for f in doc["files"] if f["path"] == IMGS)
    assert imgs["status"] == "ok" and "derived" not in imgs["detail"]


# -- 4. why the .npz was refused, per mirror -----------------------------------------


def test_the_reason_a_mirror_npz_was_refused_is_said_before_it_is_built(
    realdata: Path,
    tmp_path: Path,
    server: FaultyServer,
    start_server: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _serve(server, realdata, npz="2018")  # a stale mirror
    other = start_server()  # type: ignore[operator]
    other.add(IMGS, b"")
    other.always(IMGS, "429:0")  # a rate-limited one
    assert main(_argv(tmp_path, server.url, "-m", other.url)) == 0
    out = capsys.readouterr().out
    [note] = [line for line in out.splitlines() if line.startswith(f"note: {IMGS}:")]
    assert "built from t10k-images-idx3-ubyte.gz" in note
    assert f"{server.url}: wrong size" in note and "the 2018 (v1) release" in note
    assert f"{other.url}: " in note and "429" in note
    assert "no reachable mirror had" not in out
    assert (tmp_path / LABELS).read_bytes() == (realdata / LABELS).read_bytes()  # fetched


# -- 5. --no-derive / derive=False: the published bytes or a failure ------------------


def test_no_derive_asks_for_the_published_bytes_or_a_failure(
    realdata: Path, tmp_path: Path, server: FaultyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve(server, realdata, npz="2018")
    assert main(_argv(tmp_path, server.url, "--no-derive")) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "the 2018 (v1) release" in err
    assert not (tmp_path / IMGS).exists() and not (tmp_path / MNIST[0]).exists()
    assert no_part_files(tmp_path) == []
    with pytest.raises(KmnistError):
        kmnist.download(
            "kmnist",
            "npz",
            "test",
            tmp_path / "api",
            mirrors=[server.url],
            progress=False,
            derive=False,
        )
    assert not (tmp_path / "api" / IMGS).exists()
    # The same call with derive on (the default) builds it.
    paths = kmnist.download(
        "kmnist", "npz", "test", tmp_path / "api", mirrors=[server.url], progress=False
    )
    assert tmp_path / "api" / IMGS in paths


# -- 6. no orphan bookkeeping; a full disk is one error naming the file ---------------


def test_no_range_record_outlives_a_build(
    realdata: Path, tmp_path: Path, server: FaultyServer
) -> None:
    _serve(server, realdata, npz=None)
    target = tmp_path / IMGS
    part = layout.part_path(target)
    part.parent.mkdir(parents=True)
    size = PUBLISHED[IMGS].size
    assert size is not None
    # What a ranged try that was cut leaves: a full-size .part and its record.
    part.write_bytes((realdata / IMGS).read_bytes()[: 1 << 20].ljust(size, b"\0"))
    record = part.with_name(part.name + ".json")
    record.write_text(json.dumps({"size": size, "done": [[0, 1 << 20]]}))
    kmnist.download("kmnist", "npz", "test", tmp_path, mirrors=[server.url], progress=False)
    assert not record.exists() and not part.exists()
    assert not [p for p in tmp_path.rglob("*.json*")]


@contextlib.contextmanager
def _small_disk(folder: Path, size: str) -> Iterator[bool]:
    """A tmpfs of ``size`` at ``folder`` if this process may mount one (True), else nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        mounted = (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                capture_output=True,
                timeout=30,
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        mounted = False
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def _full_at(monkeypatch: pytest.MonkeyPatch, after: int, suffix: str = ".part") -> None:
    """No tmpfs: writes to a ``*suffix`` file fail with ENOSPC past ``after`` bytes (the storage seam)."""
    real = layout.open_part

    def open_part(path: Path, mode: str, *, buffering: int = -1):  # type: ignore[no-untyped-def]
        fh = real(path, mode, buffering=buffering)
        if mode == "rb" or not path.name.endswith(suffix):
            return fh
        write = fh.write

        def full(data):  # type: ignore[no-untyped-def]
            if fh.tell() + len(data) > after:
                raise OSError(errno.ENOSPC, "No space left on device")
            return write(data)

        fh.write = full  # type: ignore[method-assign]
        return fh

    monkeypatch.setattr(layout, "open_part", open_part)


def test_a_full_disk_on_the_ranged_api_path_is_one_error_naming_the_file(
    realdata: Path, tmp_path: Path, server: FaultyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve(server, realdata, npz="published")
    root = tmp_path / "disk"
    # The disk fills after the run's own free-space check (another writer).
    monkeypatch.setattr(layout, "ensure_space", lambda folder, needed: None)
    with _small_disk(root, "2m") as mounted:
        if not mounted:
            _full_at(monkeypatch, 2 << 20)
        with pytest.raises(DiskFull) as caught:
            kmnist.download_files(
                [PUBLISHED[IMGS]],
                root,
                mirrors=[server.url],
                progress=False,
                piece=256 << 10,
                connections=4,
                fast_connection=float("inf"),  # every connection opened: the ranged path
            )
        assert IMGS in str(caught.value) and "MiB more needed" in str(caught.value)
        assert not (root / IMGS).exists()
        left = _finals(root)
        # The .part stays to resume; its record only beside it; no temporary file.
        assert all(p in (f"{IMGS}.part", f"{IMGS}.part.json") for p in left)
        assert f"{IMGS}.part.json" not in left or f"{IMGS}.part" in left


def test_a_full_disk_while_building_is_one_error_and_no_half_file(
    realdata: Path, tmp_path: Path, server: FaultyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve(server, realdata, npz=None)
    root = tmp_path / "disk"
    monkeypatch.setattr(layout, "ensure_space", lambda folder, needed: None)
    # Room for the MNIST-format images (2.9 MiB), not for them and the built .npz.
    with _small_disk(root, "4m") as mounted:
        if not mounted:
            _full_at(monkeypatch, 1 << 20, ".npz.part")  # the build's, not the source's
        with pytest.raises(KmnistError) as caught:
            kmnist.download("kmnist", "npz", "test", root, mirrors=[server.url], progress=False)
        failures = (
            caught.value.failures if isinstance(caught.value, DownloadsFailed) else [caught.value]
        )
        assert any(isinstance(f, DiskFull) and IMGS in str(f) for f in failures)
        assert not (root / IMGS).exists() and no_part_files(root) == []
