"""Kuzushiji-Kanji: the tar rules (kmnist.data.safetar) on crafted archives, the check, the loader."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

import kmnist
import kmnist.data.kanji
from kmnist.data.kanji import check_kanji, extract_kanji, load_kanji
from kmnist.data.load import kanji_arrays
from kmnist.data.safetar import UnsafeArchive, safe_extract

# Three classes, one outside the Basic Multilingual Plane: sorted as numbers,
# U+20B9F comes last; sorted as strings it would come first.
LAYOUT = {"U+4E00": 2, "U+4E8C": 1, "U+20B9F": 3}


def png(side: int = 64, shade: int = 0) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (side, side), shade).save(buf, format="PNG")
    return buf.getvalue()


def add_file(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def add_dir(tf: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tf.addfile(info)


def make_archive(
    path: Path, layout: dict[str, int] = LAYOUT, extra: list[tarfile.TarInfo] | None = None
) -> Path:
    """A small kkanji.tar with the published layout: kkanji2/U+XXXX/<n>.png."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tf:
        add_dir(tf, "kkanji2")
        for code, n in layout.items():
            add_dir(tf, f"kkanji2/{code}")
            for i in range(n):
                add_file(tf, f"kkanji2/{code}/{i:04d}.png", png(shade=10 * i))
        for info in extra or []:
            tf.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return path


def special(name: str, type_: bytes, linkname: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = linkname
    info.size = size
    return info


def archive_in(root: Path, **kw: object) -> Path:
    return make_archive(root / "kkanji" / "kkanji.tar", **kw)  # type: ignore[arg-type]


def test_good_archive_unpacks_and_checks(tmp_path: Path) -> None:
    archive_in(tmp_path)
    check = extract_kanji(root=tmp_path, verify=False, expected_images=6, expected_classes=3)
    assert check.ok, check.summary()
    assert (check.images, check.classes) == (6, 3)
    assert (tmp_path / "kkanji/kkanji2/U+20B9F/0002.png").is_file()
    assert "ok" in check.summary()


def test_counts_are_not_required_unless_asked(tmp_path: Path) -> None:
    """A folder that matches its archive is ok whatever the published counts say."""
    archive_in(tmp_path)
    check = extract_kanji(root=tmp_path, verify=False)
    assert check.ok, check.summary()
    assert check.expected_images is None and check.published is kmnist.data.kanji.Published.NEITHER
    assert "this folder matches neither image count, not the class count" in check.summary()


def test_member_count_that_is_off(tmp_path: Path) -> None:
    archive_in(tmp_path, layout={"U+4E00": 2, "U+4E8C": 0, "U+20B9F": 3})
    check = extract_kanji(root=tmp_path, verify=False, expected_images=6, expected_classes=3)
    assert not check.ok
    assert "5 PNG files, expected 6" in check.problems
    assert any("empty class folders: U+4E8C" in p for p in check.problems)


def test_verify_checks_the_published_hash_first(tmp_path: Path) -> None:
    archive_in(tmp_path)
    with pytest.raises(kmnist.VerificationError, match=r"kkanji/kkanji\.tar.*sha256"):
        extract_kanji(root=tmp_path)
    assert not (tmp_path / "kkanji" / "kkanji2").exists()


def test_missing_archive(tmp_path: Path) -> None:
    with pytest.raises(kmnist.NotDownloaded, match="--dataset kkanji"):
        extract_kanji(root=tmp_path)


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (special("../evil.png", tarfile.REGTYPE, size=3), "'..'"),
        (special("kkanji2/U+4E00/../../../evil.png", tarfile.REGTYPE, size=3), "'..'"),
        (special("/tmp/kmnist-evil.png", tarfile.REGTYPE, size=3), "absolute"),
        (special("C:/evil.png", tarfile.REGTYPE, size=3), "absolute"),
        (special("kkanji2/U+4E00/link.png", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (special("kkanji2/U+4E00/rel.png", tarfile.SYMTYPE, "0000.png"), "symbolic link"),
        (special("kkanji2/U+4E00/h.png", tarfile.LNKTYPE, "kkanji2/U+4E00/0000.png"), "hard link"),
        (special("kkanji2/dev", tarfile.CHRTYPE), "device"),
        (special("kkanji2/blk", tarfile.BLKTYPE), "device"),
        (special("kkanji2/fifo", tarfile.FIFOTYPE), "FIFO"),
    ],
    ids=["dotdot", "dotdot-deep", "absolute", "drive", "symlink-out", "symlink-in", "hardlink",
         "chardev", "blockdev", "fifo"],
)  # fmt: skip
def test_unsafe_member_refuses_the_whole_archive(
    tmp_path: Path, member: tarfile.TarInfo, reason: str
) -> None:
    archive = make_archive(tmp_path / "a.tar", extra=[member])
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchive, match=reason) as exc:
        safe_extract(archive, dest=dest)
    assert "nothing written" in str(exc.value)
    assert not dest.exists()  # refused before a single byte was written
    assert not (tmp_path / "evil.png").exists()


def test_existing_symlink_in_target_cannot_redirect(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "a.tar")
    dest, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    dest.mkdir()
    elsewhere.mkdir()
    (dest / "kkanji2").symlink_to(elsewhere)
    with pytest.raises(UnsafeArchive, match="outside"):
        safe_extract(archive, dest=dest)
    assert list(elsewhere.iterdir()) == []


# Python 3.12+ warns when extractall has no filter; here that is the point.
@pytest.mark.filterwarnings("ignore:Python 3.14 will:DeprecationWarning")
def test_without_tarfile_data_filter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pythons without the data filter rely on the same checks alone."""
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    setuid = special("kkanji2/U+4E00/s.png", tarfile.REGTYPE, size=3)
    setuid.mode = 0o4777
    good = make_archive(tmp_path / "good.tar", extra=[setuid])
    assert safe_extract(good, dest=tmp_path / "out") == 1 + 3 + 6 + 1
    assert (tmp_path / "out/kkanji2/U+4E00/s.png").stat().st_mode & 0o7777 == 0o755
    assert (tmp_path / "out/kkanji2/U+4E00/0000.png").stat().st_mode & 0o7777 == 0o644
    bad = make_archive(tmp_path / "bad.tar", extra=[special("../x", tarfile.REGTYPE, size=1)])
    with pytest.raises(UnsafeArchive):
        safe_extract(bad, dest=tmp_path / "out2")


def test_check_reports_each_kind_of_difference(tmp_path: Path) -> None:
    folder = tmp_path / "kkanji2"
    for code, n in LAYOUT.items():
        (folder / code).mkdir(parents=True)
        for i in range(n):
            (folder / code / f"{i}.png").write_bytes(png())
    (folder / "U+4E00" / "small.png").write_bytes(png(side=32))
    (folder / "U+4E00" / "fake.png").write_bytes(b"<html>not found</html>")
    (folder / "U+4E00" / "notes.txt").write_text("hi")
    (folder / "kanji-extra").mkdir()
    (folder / "README").write_text("hi")
    check = check_kanji(folder, expected_images=6, expected_classes=3)
    text = "\n".join(check.problems)
    assert check.notes[0] == "other files (ignored): README, U+4E00/notes.txt"
    assert "8 PNG files, expected 6" in text
    assert "folders not named by a code point (U+XXXX): kanji-extra" in text
    assert "U+4E00/small.png is 32x32" in text
    assert "not PNG images: U+4E00/fake.png" in text
    assert check_kanji(tmp_path / "nowhere").problems == (f"no folder {tmp_path / 'nowhere'}",)


def test_many_differences_are_summarised(tmp_path: Path) -> None:
    folder = tmp_path / "kkanji2"
    (folder / "U+4E00").mkdir(parents=True)
    for i in range(12):
        (folder / "U+4E00" / f"{i:02d}.png").write_bytes(png(side=8))
    check = check_kanji(folder, expected_images=12, expected_classes=1)
    (line,) = check.problems
    assert line.endswith("(and 7 more)")


def test_loader_lists_paths_labels_and_classes_by_code_point(tmp_path: Path) -> None:
    archive_in(tmp_path)
    extract_kanji(root=tmp_path, verify=False, expected_images=6, expected_classes=3)
    index = load_kanji(root=tmp_path)
    assert [c.codepoint for c in index.classes] == ["U+4E00", "U+4E8C", "U+20B9F"]
    assert [c.char for c in index.classes] == ["一", "二", "𠮟"]
    assert index.labels == (0, 0, 1, 2, 2, 2)
    assert [p.parent.name for p in index.paths] == ["U+4E00"] * 2 + ["U+4E8C"] + ["U+20B9F"] * 3
    x, y = kanji_arrays(index, indices=[0, 1, 5])
    assert x.shape == (3, 64, 64) and x.dtype.name == "uint8"
    assert y.tolist() == [0, 0, 2]
    assert int(x[1].max()) == 10  # the second image of U+4E00 was drawn with shade 10


def test_loader_without_folder(tmp_path: Path) -> None:
    with pytest.raises(kmnist.NotDownloaded, match="--extract"):
        load_kanji(root=tmp_path)


def test_decoding_a_bad_png_names_it(tmp_path: Path) -> None:
    (tmp_path / "kkanji2" / "U+4E00").mkdir(parents=True)
    (tmp_path / "kkanji2" / "U+4E00" / "a.png").write_bytes(b"not a png")
    index = load_kanji(folder=tmp_path / "kkanji2")
    with pytest.raises(kmnist.VerificationError, match=r"a\.png"):
        kanji_arrays(index)


def test_archive_cut_inside_a_member_leaves_nothing_half_done(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tf:
        for i in range(3):
            add_file(tf, f"kkanji2/U+4E00/{i}.png", bytes(range(256)) * 8)
        last = tf.getmembers()[-1]
    data = archive.read_bytes()
    archive.write_bytes(data[: last.offset_data + 100])  # a download cut mid-file
    dest = tmp_path / "out"
    with pytest.raises(kmnist.VerificationError, match="complete tar archive"):
        safe_extract(archive, dest=dest)
    assert not (dest / "kkanji2").exists()  # the two whole members were not moved in
    assert not dest.exists() or list(dest.iterdir()) == []  # no staging folder left behind


def test_archive_cut_between_members_shows_in_the_counts(tmp_path: Path) -> None:
    """tarfile reads a tar cut at a header boundary as a shorter whole one: the check tells."""
    archive = archive_in(tmp_path)
    with tarfile.open(archive) as tf:
        last = tf.getmembers()[-1]
    data = archive.read_bytes()
    archive.write_bytes(data[: last.offset])
    check = extract_kanji(root=tmp_path, verify=False, expected_images=6, expected_classes=3)
    assert "5 PNG files, expected 6" in check.problems


def test_foreign_file_is_not_an_archive(tmp_path: Path) -> None:
    page = tmp_path / "kkanji.tar"
    page.write_bytes(b"<html><body>404 Not Found</body></html>")
    with pytest.raises(kmnist.VerificationError, match="complete tar archive"):
        safe_extract(page, dest=tmp_path / "out")


def test_unpacking_again_replaces_the_old_folder(tmp_path: Path) -> None:
    stale = tmp_path / "kkanji/kkanji2/U+9999"
    stale.mkdir(parents=True)
    (stale / "junk.png").write_bytes(b"junk")
    archive_in(tmp_path)
    check = extract_kanji(root=tmp_path, verify=False, expected_images=6, expected_classes=3)
    assert check.ok, check.summary()
    assert not stale.exists()
    left = sorted(p.name for p in (tmp_path / "kkanji").iterdir() if p.name != ".kmnist")
    assert left == ["kkanji.tar", "kkanji2"]  # no staging folder, no old copy


def test_flat_archive_beside_the_other_files(tmp_path: Path) -> None:
    make_archive(tmp_path / "kkanji.tar")  # where the original download_data.py put it
    check = extract_kanji(root=tmp_path, verify=False, expected_images=6, expected_classes=3)
    assert check.ok and check.folder == tmp_path / "kkanji2"
    assert len(load_kanji(root=tmp_path).paths) == 6


def test_a_good_folder_is_kept_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive_in(tmp_path)
    counts = {"expected_images": 6, "expected_classes": 3}
    assert extract_kanji(root=tmp_path, verify=False, **counts).ok
    leftover = tmp_path / "kkanji" / ".unpacking-killed"  # a run killed mid-way
    leftover.mkdir()

    def no_unpacking(*a: object, **k: object) -> int:
        raise AssertionError("unpacked again")

    monkeypatch.setattr(kmnist.data.kanji, "safe_extract", no_unpacking)
    assert extract_kanji(root=tmp_path, verify=False, **counts).ok  # as in a job array
    monkeypatch.undo()
    assert leftover.exists()
    assert extract_kanji(root=tmp_path, verify=False, force=True, **counts).ok
    assert not leftover.exists()


def test_archive_elsewhere_is_unpacked_beside_it(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "downloads" / "kkanji.tar")
    check = extract_kanji(
        root=tmp_path / "data", archive=archive, verify=False, expected_images=6, expected_classes=3
    )
    assert check.ok and check.folder == tmp_path / "downloads" / "kkanji2"


def test_kanji_members_must_stay_in_kkanji2(tmp_path: Path) -> None:
    """A flat data folder holds other datasets beside the archive: none may be replaced."""
    mine = tmp_path / "kmnist" / "kmnist-test-labels.npz"
    mine.parent.mkdir()
    mine.write_bytes(b"the user's file")
    intruder = special("kmnist/kmnist-test-labels.npz", tarfile.REGTYPE, size=3)
    make_archive(tmp_path / "kkanji.tar", extra=[intruder])
    with pytest.raises(UnsafeArchive, match=r"outside kkanji2/"):
        extract_kanji(root=tmp_path, verify=False)
    assert mine.read_bytes() == b"the user's file"
    assert not (tmp_path / "kkanji2").exists()


def test_dot_slash_names_are_inside(tmp_path: Path) -> None:
    archive = tmp_path / "kkanji" / "kkanji.tar"
    archive.parent.mkdir()
    with tarfile.open(archive, "w") as tf:
        add_dir(tf, ".")
        add_file(tf, "./kkanji2/U+4E00/0.png", png())
    check = extract_kanji(root=tmp_path, verify=False, expected_images=1, expected_classes=1)
    assert check.ok, check.summary()


def test_stray_files_are_noted_but_do_not_fail(tmp_path: Path) -> None:
    folder = tmp_path / "kkanji2"
    (folder / "U+4E00").mkdir(parents=True)
    (folder / "U+4E00" / "0.png").write_bytes(png())
    (folder / ".DS_Store").write_bytes(b"\0")
    check = check_kanji(folder, expected_images=1, expected_classes=1)
    assert check.ok
    assert ": ok\n  other files (ignored): .DS_Store\n" in check.summary()
