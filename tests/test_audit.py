"""The folder audit: one verdict per expected file, and its text and JSON renderings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from kmnist.catalogue.manifest import RemoteFile, entry_for
from kmnist.data.audit import (
    FileReport,
    Status,
    all_ok,
    audit,
    check_file,
    render_json,
    render_text,
)
from kmnist.errors import UnknownDataset, UnsupportedFormat

from .conftest import REALDATA, needs_realdata

TEST_NPZ = ["kmnist/kmnist-test-imgs.npz", "kmnist/kmnist-test-labels.npz"]


def put(root: Path, rel: str, source: Path) -> Path:
    """Place a real file under ``root/rel`` without copying it."""
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(source)
    return target


def statuses(reports: Sequence[FileReport]) -> dict[str, str]:
    return {r.path: r.status.value for r in reports}


def file_of(rel: str) -> RemoteFile:
    entry = entry_for(rel)
    assert entry is not None
    return entry.file


@pytest.mark.realdata
@needs_realdata
def test_genuine_files_are_ok(tmp_path: Path) -> None:
    for rel in [*TEST_NPZ, "kmnist/kmnist_classmap.csv"]:
        put(tmp_path, rel, REALDATA / rel)
    reports = audit(root=tmp_path, datasets=["kmnist"], split="test")
    assert statuses(reports) == {
        "kmnist/kmnist-test-imgs.npz": "ok",
        "kmnist/kmnist-test-labels.npz": "ok",
        "kmnist/kmnist_classmap.csv": "ok",
    }
    assert all_ok(reports)
    assert reports[0].detail == "sha256 matches" and reports[0].size == 3079479


@pytest.mark.realdata
@needs_realdata
def test_the_2018_test_images_are_recognised(tmp_path: Path) -> None:
    put(tmp_path, "kmnist/kmnist-test-imgs.npz", REALDATA / "v1/kmnist-test-imgs.npz")
    report = check_file(tmp_path, file_of("kmnist/kmnist-test-imgs.npz"))
    assert report.status is Status.STALE
    assert "2018" in report.detail and "download again" in report.detail


@pytest.mark.realdata
@needs_realdata
def test_a_cut_download_under_the_final_name_is_corrupt(tmp_path: Path) -> None:
    rel = "kmnist/t10k-images-idx3-ubyte.gz"
    put(tmp_path, rel, REALDATA / "broken/t10k-images-idx3-ubyte.gz.truncated")
    report = check_file(tmp_path, file_of(rel))
    assert report.status is Status.CORRUPT
    assert "wrong size: expected 3041136 bytes, got 32768 bytes" in report.detail
    assert "not a complete gzip file" in report.detail


def test_partial_missing_and_leftover(tmp_path: Path) -> None:
    (tmp_path / "kmnist").mkdir()
    (tmp_path / "kmnist/kmnist-test-imgs.npz.part").write_bytes(b"\0" * 1234)
    reports = audit(root=tmp_path, datasets=["kmnist"], split="test")
    by = {r.path: r for r in reports}
    part = by["kmnist/kmnist-test-imgs.npz"]
    assert part.status is Status.PARTIAL and part.size == 1234
    assert "1,234 of 3,079,479 bytes" in part.detail
    assert by["kmnist/kmnist-test-labels.npz"].status is Status.MISSING
    assert not all_ok(reports)


@pytest.mark.realdata
@needs_realdata
def test_leftover_part_next_to_a_good_file(tmp_path: Path) -> None:
    rel = "kmnist/kmnist-test-labels.npz"
    put(tmp_path, rel, REALDATA / rel)
    (tmp_path / (rel + ".part")).write_bytes(b"x")
    report = check_file(tmp_path, file_of(rel))
    assert report.status is Status.OK and "leftover" in report.detail


def test_well_formed_but_other_bytes(tmp_path: Path) -> None:
    rel = "kmnist/kmnist-test-labels.npz"
    (tmp_path / "kmnist").mkdir()
    np.savez(tmp_path / rel, np.zeros(10000, np.uint8))
    report = check_file(tmp_path, file_of(rel))
    assert report.status is Status.CORRUPT
    assert "well-formed npz file of shape (10000,)" in report.detail


def test_a_folder_in_place_of_a_file(tmp_path: Path) -> None:
    (tmp_path / "kmnist/kmnist-test-labels.npz").mkdir(parents=True)
    report = check_file(tmp_path, file_of("kmnist/kmnist-test-labels.npz"))
    assert report.status is Status.CORRUPT


@pytest.mark.realdata
@needs_realdata
def test_without_datasets_the_folder_says_what_it_holds(tmp_path: Path) -> None:
    for rel in ["kmnist/t10k-images-idx3-ubyte.gz", "kmnist/kmnist_classmap.csv"]:
        put(tmp_path, rel, REALDATA / rel)
    reports = audit(root=tmp_path)
    # Nothing was asked for: what is there is audited, and nothing is "missing".
    assert statuses(reports) == {
        "kmnist/t10k-images-idx3-ubyte.gz": "ok",
        "kmnist/kmnist_classmap.csv": "ok",
    }
    assert all_ok(reports)
    # Naming the dataset asks for its whole group: now the rest is missing.
    got = statuses(audit(root=tmp_path, datasets=["kmnist"]))
    assert got["kmnist/train-images-idx3-ubyte.gz"] == "missing"


def test_an_empty_folder_has_nothing_to_vouch_for(tmp_path: Path) -> None:
    assert audit(root=tmp_path) == ()
    assert not all_ok(())
    assert "nothing to verify" in render_text((), root=tmp_path)
    reports = audit(root=tmp_path, datasets=["all"])
    assert {r.path.split("/")[0] for r in reports} == {"kmnist", "k49", "kkanji"}
    assert all(r.status is Status.MISSING for r in reports)


def test_unpacked_kanji_folder_is_reported_only_when_there(tmp_path: Path) -> None:
    assert all(not r.path.endswith("kkanji2/") for r in audit(root=tmp_path))
    (tmp_path / "kkanji/kkanji2/U+4E00").mkdir(parents=True)
    reports = audit(root=tmp_path, datasets=["kkanji"])
    assert statuses(reports) == {"kkanji/kkanji.tar": "missing", "kkanji/kkanji2/": "corrupt"}
    assert "expected 140,424" in reports[-1].detail


def test_renderings(tmp_path: Path) -> None:
    (tmp_path / "kmnist").mkdir()
    (tmp_path / "kmnist/kmnist-test-imgs.npz.part").write_bytes(b"\0")
    reports = audit(root=tmp_path, datasets=["kmnist"], split="test")
    doc = json.loads(render_json(reports, root=tmp_path))
    assert doc["ok"] is False and doc["root"] == str(tmp_path)
    assert doc["counts"] == {"missing": 2, "partial": 1}
    assert doc["files"][0] == {
        "path": "kmnist/kmnist-test-imgs.npz",
        "status": "partial",
        "detail": "interrupted download: 1 of 3,079,479 bytes in kmnist-test-imgs.npz.part",
        "size": 1,
        "expected_size": 3079479,
        "built": False,
    }
    text = render_text(reports, root=tmp_path)
    assert text.splitlines()[0].split()[:2] == ["kmnist/kmnist-test-imgs.npz", "partial"]
    assert text.endswith("3 files: 2 missing, 1 partial: NOT all ok")


@pytest.mark.realdata
@needs_realdata
def test_flat_folder_of_the_original_script(tmp_path: Path) -> None:
    for name in ("kmnist-test-imgs.npz", "kmnist-test-labels.npz"):
        (tmp_path / name).symlink_to(REALDATA / "kmnist" / name)
    (tmp_path / "kmnist_classmap.csv").write_text("index,codepoint,char\n", encoding="utf-8")
    got = statuses(audit(root=tmp_path, split="test"))
    assert got == {
        "kmnist-test-imgs.npz": "ok",
        "kmnist-test-labels.npz": "ok",
        "kmnist_classmap.csv": "corrupt",
    }


def _unpacked(folder: Path) -> None:
    for code in ("U+4E00", "U+4E8C"):
        (folder / code).mkdir(parents=True)
        (folder / code / "a.png").write_bytes(
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + (64).to_bytes(4, "big") * 2 + b"\x08\0\0\0\0"
        )


@pytest.mark.parametrize("layout", ["kkanji/kkanji2", "kkanji2"])
def test_archive_deleted_after_unpacking_is_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    import kmnist.data.kanji

    monkeypatch.setattr(kmnist.data.kanji, "EXPECTED_IMAGES", 2)
    monkeypatch.setattr(kmnist.data.kanji, "EXPECTED_CLASSES", 2)
    _unpacked(tmp_path / layout)
    reports = audit(root=tmp_path)  # the folder alone says Kanji was begun
    assert statuses(reports) == {layout + "/": "ok"}
    assert "deleted after unpacking" in reports[0].detail
    assert all_ok(reports)


def test_kanji_folder_is_not_audited_when_other_datasets_are_asked(tmp_path: Path) -> None:
    _unpacked(tmp_path / "kkanji/kkanji2")
    reports = audit(root=tmp_path, datasets=["kmnist"], split="test")
    assert all(r.path.startswith("kmnist/") for r in reports)


def test_partial_ranged_download_counts_the_bytes_that_arrived(tmp_path: Path) -> None:
    """A ranged .part is allocated at full size; its .part.json says what arrived."""
    rel = "kmnist/kmnist-test-imgs.npz"
    part = tmp_path / (rel + ".part")
    part.parent.mkdir()
    part.write_bytes(b"\0" * 3079479)
    done = [[0, 1000], [2000000, 2000500]]
    (tmp_path / (rel + ".part.json")).write_text(json.dumps({"size": 3079479, "done": done}))
    report = check_file(tmp_path, file_of(rel))
    assert report.status is Status.PARTIAL and report.size == 1500
    assert "1,500 of 3,079,479 bytes" in report.detail


@pytest.mark.realdata
@needs_realdata
def test_a_named_dataset_is_audited_in_the_format_the_folder_has(tmp_path: Path) -> None:
    for rel in ["kmnist/t10k-images-idx3-ubyte.gz", "kmnist/t10k-labels-idx1-ubyte.gz"]:
        put(tmp_path, rel, REALDATA / rel)
    got = statuses(audit(root=tmp_path, datasets=["kmnist", "k49"], split="test"))
    assert got == {
        "kmnist/t10k-images-idx3-ubyte.gz": "ok",
        "kmnist/t10k-labels-idx1-ubyte.gz": "ok",
        "kmnist/kmnist_classmap.csv": "missing",
        # K49 was named but not begun: its default format is expected.
        "k49/k49-test-imgs.npz": "missing",
        "k49/k49-test-labels.npz": "missing",
        "k49/k49_classmap.csv": "missing",
    }


def test_named_all_in_the_2018_release_skips_what_it_lacks(tmp_path: Path) -> None:
    paths = statuses(audit(root=tmp_path, datasets=["all"], split="test", release="2018"))
    assert paths and all(p.startswith("2018/") for p in paths)
    assert not any("kkanji" in p for p in paths)


@pytest.mark.parametrize(
    ("datasets", "fmt", "error"),
    [(["emnist"], None, UnknownDataset), (["k49"], "mnist", UnsupportedFormat)],
)
def test_what_does_not_exist_is_a_usage_error(
    tmp_path: Path, datasets: list[str], fmt: str | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        audit(root=tmp_path, datasets=datasets, format=fmt)


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux's /proc")
def test_a_file_that_cannot_be_read_is_unreadable_not_corrupt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # /proc/self/mem fails every read at offset 0 with EIO, root or not: a
    # file whose bytes cannot be read. Nothing is known of them, so the verdict
    # is not "corrupt" (which sends a user to delete a copy that may be fine).
    from kmnist.cli.download import main

    rel = "kmnist/kmnist-test-labels.npz"
    (tmp_path / "kmnist").mkdir()
    (tmp_path / rel).symlink_to("/proc/self/mem")
    report = check_file(tmp_path, file_of(rel))
    assert report.status is Status.UNREADABLE
    assert report.detail == "cannot be read: input/output error"
    assert main(["--verify", "--dir", str(tmp_path)]) == 1
    [line] = capsys.readouterr().out.splitlines()[:1]
    assert line.split()[:2] == [rel, "unreadable"]


def test_verify_of_a_folder_of_2018_files_only_names_the_release(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It said "nothing to verify (download with --dataset, or name the folder
    # with --dir)" of the folder named with --dir: the release was the thing.
    from kmnist.cli.download import main

    folder = tmp_path / "2018" / "kmnist"
    folder.mkdir(parents=True)
    (folder / "kuzushiji10-test-labels.npz").write_bytes(b"any bytes")
    assert main(["--verify", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "nothing to verify (the 2018 release's files are here: add --release 2018)" in out
    assert "name the folder with --dir" not in out
    assert main(["--verify", "--dir", str(tmp_path), "--release", "2018"]) == 1
    assert "kuzushiji10-test-labels.npz" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--verify", "--dir", str(empty)]) == 1
    assert "(download with --dataset, or name the folder with --dir)" in capsys.readouterr().out
