"""``kmnist-download --verify/--json/--extract/--preview`` in-process through ``main(argv)``."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import sys
import tarfile
from pathlib import Path

import pytest

import kmnist.catalogue.manifest
import kmnist.data.kanji
from kmnist.catalogue.manifest import Entry
from kmnist.cli.download import main

from .conftest import ROOT

TEST_NPZ = ["kmnist/kmnist-test-imgs.npz", "kmnist/kmnist-test-labels.npz"]


def fetch_test_npz(realdata: Path, root: Path) -> None:
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(root), "-m", str(realdata), "-q"]
    assert main(argv) == 0


# --- --verify and --json ------------------------------------------------------


def test_verify_a_good_download(
    realdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fetch_test_npz(realdata, tmp_path)
    capsys.readouterr()
    assert main(["--verify", "-d", "kmnist", "-s", "test", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("3 files: 3 ok: all ok")


def test_verify_json_names_the_bad_file(
    realdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fetch_test_npz(realdata, tmp_path)
    images = tmp_path / "kmnist/kmnist-test-imgs.npz"
    data = bytearray(images.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed
    images.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["--verify", "--json", "--dir", str(tmp_path)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    bad = [f for f in doc["files"] if f["status"] != "ok"]
    # Without --dataset the files that are there are audited; nothing is "missing".
    assert {f["path"]: f["status"] for f in bad} == {"kmnist/kmnist-test-imgs.npz": "corrupt"}
    assert main(["--verify", "--json", "-d", "kmnist", "--dir", str(tmp_path)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert {f["path"]: f["status"] for f in doc["files"] if f["status"] != "ok"} == {
        "kmnist/kmnist-train-imgs.npz": "missing",
        "kmnist/kmnist-train-labels.npz": "missing",
        "kmnist/kmnist-test-imgs.npz": "corrupt",
    }


def test_verify_an_empty_folder_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--verify", "--dir", str(tmp_path)]) == 1
    assert "nothing to verify" in capsys.readouterr().out
    assert main(["--verify", "--dir", str(tmp_path / "nothing")]) == 1
    assert "nothing: no such folder" in capsys.readouterr().err


def test_the_readme_example_is_what_verify_prints(
    realdata: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    readme = (ROOT / "docs" / "command.md").read_text(encoding="utf-8")
    block = re.search(r"\$ kmnist-download --verify --dir data\n(.*?)```", readme, re.S)
    assert block, "docs/command.md has no --verify example"
    data = tmp_path / "data" / "kmnist"
    data.mkdir(parents=True)
    (data / "kmnist-train-imgs.npz").symlink_to(realdata / "v1/kmnist-test-imgs.npz")
    (data / "kmnist-train-labels.npz.part").write_bytes(b"\0" * 1000)
    for name in ("kmnist-test-imgs.npz", "kmnist_classmap.csv"):
        (data / name).symlink_to(realdata / "kmnist" / name)
    monkeypatch.chdir(tmp_path)
    assert main(["--verify", "--dir", "data"]) == 1
    assert capsys.readouterr().out == block.group(1)


@pytest.mark.parametrize(
    "argv",
    [
        ["--json", "-d", "kmnist"],
        ["--verify", "--extract", "-d", "kkanji"],
        ["--extract", "-d", "kmnist"],
        ["--preview", "g.png", "-d", "kkanji"],
        ["--preview", "g.png", "-d", "kmnist", "-d", "k49"],
        ["--preview", "g.png"],
    ],
)
def test_usage_errors(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--dir", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before anything was fetched


# --- --preview ----------------------------------------------------------------


def test_preview_downloads_then_draws(
    realdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    grid = tmp_path / "grid.png"
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(tmp_path / "data"), "-m", str(realdata)]
    assert main([*argv, "--preview", str(grid)]) == 0
    assert f"wrote {grid}" in capsys.readouterr().out
    with Image.open(grid) as im:
        assert im.format == "PNG" and im.size[1] == 2 + 10 * (56 + 2)  # a row per class


def test_preview_without_pillow_fails_before_downloading(
    realdata: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(tmp_path), "-m", str(realdata)]
    assert main([*argv, "--preview", str(tmp_path / "g.png")]) == 1
    assert "pip install 'kmnist[preview]'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


# --- --extract ----------------------------------------------------------------


def kanji_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: tarfile.TarInfo | None = None
) -> tuple[Path, tuple[Entry, ...]]:
    """A folder mirror serving a crafted kkanji.tar, and a catalogue that expects it."""
    from PIL import Image

    png = io.BytesIO()
    Image.new("L", (64, 64), 0).save(png, format="PNG")
    archive = tmp_path / "mirror" / "kkanji" / "kkanji.tar"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w") as tf:
        for name in ("kkanji2/U+4E00/a.png", "kkanji2/U+4E00/b.png", "kkanji2/U+4E8C/c.png"):
            info = tarfile.TarInfo(name)
            info.size = len(png.getvalue())
            tf.addfile(info, io.BytesIO(png.getvalue()))
        if extra is not None:
            tf.addfile(extra)
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    entries = tuple(
        dataclasses.replace(e, file=dataclasses.replace(e.file, sha256=sha256))
        if e.file.path == "kkanji/kkanji.tar"
        else e
        for e in kmnist.catalogue.manifest.ENTRIES
    )
    monkeypatch.setattr(kmnist.data.kanji, "EXPECTED_IMAGES", 3)
    monkeypatch.setattr(kmnist.data.kanji, "EXPECTED_CLASSES", 2)
    return archive.parent.parent, entries


def test_extract_after_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror, catalogue = kanji_mirror(tmp_path, monkeypatch)
    data = tmp_path / "data"
    assert (
        main(
            ["-d", "kkanji", "--extract", "--dir", str(data), "-m", str(mirror)],
            catalogue=catalogue,
        )
        == 0
    )
    assert "3 PNG files in 2 class folders: ok" in capsys.readouterr().out
    assert (data / "kkanji/kkanji2/U+4E8C/c.png").is_file()
    # The unpacked folder is part of what --verify checks from then on.
    assert main(["--verify", "--dir", str(data)], catalogue=catalogue) == 0
    assert re.search(r"(?m)^kkanji/kkanji2/ +ok ", capsys.readouterr().out)


def test_extract_refuses_an_archive_with_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tarfile.TarInfo("kkanji2/U+4E00/evil.png")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    mirror, catalogue = kanji_mirror(tmp_path, monkeypatch, extra=link)
    data = tmp_path / "data"
    assert (
        main(
            ["-d", "kkanji", "--extract", "--dir", str(data), "-m", str(mirror), "-q"],
            catalogue=catalogue,
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "refused to unpack" in err and "symbolic link to /etc/passwd" in err
    assert not (data / "kkanji" / "kkanji2").exists()


def test_extract_reports_a_published_count_that_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Information, not failure: the folder matches the verified archive (issue 14)."""
    mirror, catalogue = kanji_mirror(tmp_path, monkeypatch)
    monkeypatch.setattr(kmnist.data.kanji, "EXPECTED_IMAGES", 4)
    assert (
        main(
            ["-d", "kkanji", "--extract", "--dir", str(tmp_path / "d"), "-m", str(mirror)],
            catalogue=catalogue,
        )
        == 0
    )
    assert "this folder matches neither image count" in capsys.readouterr().out


def test_installed_script_verify_json(realdata: Path, tmp_path: Path) -> None:
    """The console script as a user runs it: JSON on stdout, exit status from the audit."""
    import shutil
    import subprocess

    exe = shutil.which("kmnist-download", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "kmnist"]
    fetch_test_npz(realdata, tmp_path)
    argv = ["--verify", "--json", "-d", "kmnist", "-s", "test", "--dir", str(tmp_path)]
    r = subprocess.run([*cmd, *argv], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counts"] == {"ok": 3}
    (tmp_path / TEST_NPZ[1]).unlink()
    r = subprocess.run([*cmd, *argv], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and json.loads(r.stdout)["counts"] == {"ok": 2, "missing": 1}
