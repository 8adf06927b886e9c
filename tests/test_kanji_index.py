"""Kuzushiji-Kanji checked against the archive's own member index, not a published count (issue 14).

The crafted archives hold a few class folders, so their counts differ from
both published figures (140,424 and 140,426): a folder that matches its
verified archive must still check ok, and a folder changed after unpacking
must be caught, file by file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kmnist
import kmnist.catalogue.manifest
import kmnist.data.kanji
from kmnist.catalogue.manifest import Entry, RemoteFile
from kmnist.cli.download import main
from kmnist.data.kanji import Basis, Published, check_kanji, extract_kanji
from kmnist.data.safetar import safe_extract
from kmnist.data.tarindex import index_path, read_index

from .server import FaultyServer
from .test_kanji import archive_in, make_archive, png


def published(archive: Path) -> RemoteFile:
    """The catalogue entry a verified archive would have: its checksum, as the manifest gives it."""
    return RemoteFile("kkanji/kkanji.tar", sha256=hashlib.sha256(archive.read_bytes()).hexdigest())


def unpacked(tmp_path: Path) -> tuple[Path, RemoteFile]:
    """A crafted archive (6 images in 3 classes), verified and unpacked: (folder, its entry)."""
    entry = published(archive_in(tmp_path))
    check = extract_kanji(root=tmp_path, published=entry)
    assert check.ok, check.summary()
    return check.folder, entry


def test_verified_archive_unpacks_to_a_folder_that_checks_ok(tmp_path: Path) -> None:
    folder, entry = unpacked(tmp_path)
    check = check_kanji(folder)
    assert check.ok, check.summary()
    assert (check.images, check.classes) == (6, 3)  # neither published figure
    assert check.basis is Basis.INDEX and check.sha256 == entry.sha256
    assert check.published is Published.NEITHER
    text = check.summary()
    assert "140,424 images (this package's notes) or 140,426 (the authors' README)" in text
    assert f"its sha256 {entry.sha256[:16]}... verified first" in text  # type: ignore[index]
    # The index on disk: every member by name and size, beside the folder, not in it.
    index = read_index(tmp_path / "kkanji" / ".kmnist" / "kkanji2.members.json")
    assert index.files == {
        f"{code}/{i:04d}.png": len(png(shade=10 * i))
        for code, n in {"U+4E00": 2, "U+4E8C": 1, "U+20B9F": 3}.items()
        for i in range(n)
    }
    assert index.folders == {"U+4E00", "U+4E8C", "U+20B9F"} and index.sha256 == entry.sha256
    assert sorted(p.name for p in folder.iterdir()) == ["U+20B9F", "U+4E00", "U+4E8C"]


def test_an_archive_that_is_not_the_published_one_is_not_unpacked(tmp_path: Path) -> None:
    archive_in(tmp_path)
    wrong = RemoteFile("kkanji/kkanji.tar", sha256="0" * 64)
    with pytest.raises(kmnist.VerificationError, match="sha256"):
        extract_kanji(root=tmp_path, published=wrong)
    assert not (tmp_path / "kkanji" / "kkanji2").exists()
    assert not index_path(tmp_path / "kkanji" / "kkanji2").exists()


@pytest.mark.parametrize(
    ("figure", "match", "phrase"),
    [
        ("EXPECTED_IMAGES", Published.NOTES, "matches the notes' figure"),
        ("AUTHORS_IMAGES", Published.AUTHORS, "matches the authors' figure"),
    ],
)
def test_the_matching_published_figure_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figure: str, match: Published, phrase: str
) -> None:
    folder, _ = unpacked(tmp_path)
    monkeypatch.setattr(kmnist.data.kanji, figure, 6)  # as if this folder held that many
    check = check_kanji(folder)
    assert check.ok and check.published is match
    assert f"this folder {phrase}, not the class count" in check.summary()


def _delete(f: Path) -> None:
    (f / "U+20B9F" / "0001.png").unlink()


def _add_png(f: Path) -> None:
    (f / "U+4E8C" / "9999.png").write_bytes(png())


def _add_class(f: Path) -> None:
    (f / "U+5B57").mkdir()
    (f / "U+5B57" / "0000.png").write_bytes(png())


def _resize(f: Path) -> None:
    (f / "U+4E00" / "0001.png").write_bytes(png(shade=10) + b"\0")  # still a 64x64 PNG


def _same_size_other_kind(f: Path) -> None:
    (f / "U+4E00" / "0000.png").unlink()
    (f / "U+4E00" / "0000.png").mkdir()


def _link(f: Path) -> None:
    (f / "U+4E00" / "link.png").symlink_to(f / "U+4E00" / "0000.png")


def _delete_class(f: Path) -> None:
    for p in (f / "U+4E8C").iterdir():
        p.unlink()
    (f / "U+4E8C").rmdir()


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (_delete, "missing (in kkanji.tar, not in the folder): U+20B9F/0001.png"),
        (_add_png, "added (not in kkanji.tar): U+4E8C/9999.png"),
        (_add_class, "added (not in kkanji.tar): U+5B57, U+5B57/0000.png"),
        (_resize, "changed size: U+4E00/0001.png: {n} bytes in the archive, {n1} here"),
        (_same_size_other_kind, "changed kind: U+4E00/0000.png: a file in the archive, a folder here"),
        (_link, "added (not in kkanji.tar): U+4E00/link.png"),
        (_delete_class, "missing (in kkanji.tar, not in the folder): U+4E8C, U+4E8C/0000.png"),
    ],
    ids=["deleted", "added-png", "added-class", "resized", "file-to-folder", "symlink", "class-gone"],
)  # fmt: skip
def test_a_change_after_unpacking_is_reported_by_name(
    tmp_path: Path, change: Callable[[Path], None], line: str
) -> None:
    folder, entry = unpacked(tmp_path)
    change(folder)
    check = check_kanji(folder)
    assert not check.ok
    n = len(png(shade=10))
    assert line.format(n=n, n1=n + 1) in check.problems, check.summary()
    # The archive is still there: unpacking again repairs it.
    repaired = extract_kanji(root=tmp_path, published=entry)
    assert repaired.ok, repaired.summary()
    assert (folder / "U+20B9F" / "0001.png").is_file() and not (folder / "U+5B57").exists()


def test_a_file_no_loader_reads_is_a_note_not_a_failure(tmp_path: Path) -> None:
    folder, _ = unpacked(tmp_path)
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # what macOS's Finder leaves
    check = check_kanji(folder)
    assert check.ok, check.summary()
    assert "other files added (not in kkanji.tar; ignored): .DS_Store" in check.notes


def test_the_archive_is_not_needed_once_the_index_is_recorded(tmp_path: Path) -> None:
    folder, _ = unpacked(tmp_path)
    (tmp_path / "kkanji" / "kkanji.tar").unlink()  # 310 MB saved
    assert check_kanji(folder).ok
    (folder / "U+4E00" / "0000.png").unlink()
    assert (
        "missing (in kkanji.tar, not in the folder): U+4E00/0000.png"
        in check_kanji(folder).problems
    )


def test_a_second_run_does_not_unpack_again(tmp_path: Path) -> None:
    folder, entry = unpacked(tmp_path)
    member = folder / "U+4E00" / "0000.png"
    index = index_path(folder)
    before = (member.stat().st_ino, index.stat().st_ino, index.stat().st_mtime_ns)
    again = extract_kanji(root=tmp_path, published=entry)
    assert again.ok and again.basis is Basis.INDEX
    # Unpacking creates every file anew beside the old ones, so a new inode would show it.
    assert (member.stat().st_ino, index.stat().st_ino, index.stat().st_mtime_ns) == before
    forced = extract_kanji(root=tmp_path, published=entry, force=True)
    assert forced.ok and member.stat().st_ino != before[0]  # the observation can fail


def _drop_entry(p: Path) -> None:
    doc = json.loads(p.read_text())
    doc["files"] = doc["files"][1:]  # one member fewer, the digest left as it was
    p.write_text(json.dumps(doc))


def _garble(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:100])


def _symlink(p: Path) -> None:
    elsewhere = p.parent.parent / "elsewhere.json"
    elsewhere.write_text("someone else's file")
    p.unlink()
    p.symlink_to(elsewhere)


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_drop_entry, "does not match its own digest (edited?)"),
        (_garble, "not an index this kmnist wrote"),
        (_symlink, "is a symbolic link"),
    ],
    ids=["entry-dropped", "cut", "symlink"],
)
def test_a_tampered_index_is_not_trusted(
    tmp_path: Path, tamper: Callable[[Path], None], reason: str
) -> None:
    folder, entry = unpacked(tmp_path)
    index = index_path(folder)
    tamper(index)
    check = check_kanji(folder)
    assert not check.ok
    assert any(
        "index of the archive cannot be trusted" in p and reason in p for p in check.problems
    )
    assert check.basis is Basis.ARCHIVE  # the folder itself was still compared, with the archive
    repaired = extract_kanji(root=tmp_path, published=entry)
    assert repaired.ok and repaired.basis is Basis.INDEX, repaired.summary()
    assert not index.is_symlink()
    if tamper is _symlink:  # written beside the link, not through it
        assert (tmp_path / "kkanji" / "elsewhere.json").read_text() == "someone else's file"


def test_a_folder_from_an_older_kmnist_is_checked_against_the_archive_and_kept(
    tmp_path: Path,
) -> None:
    folder, entry = unpacked(tmp_path)
    index = index_path(folder)
    index.unlink()  # as an older kmnist left it
    check = check_kanji(folder)
    assert check.ok and check.basis is Basis.ARCHIVE, check.summary()
    assert "no index of the archive beside the folder (unpacked by an older kmnist)" in check.notes
    member = folder / "U+4E00" / "0000.png"
    inode = member.stat().st_ino
    adopted = extract_kanji(root=tmp_path, published=entry)
    assert adopted.ok and adopted.basis is Basis.INDEX and adopted.sha256 == entry.sha256
    assert member.stat().st_ino == inode  # kept, not unpacked again
    assert read_index(index).sha256 == entry.sha256
    # Without the index, a damaged old folder is still caught against the archive.
    index.unlink()
    member.unlink()
    assert (
        "missing (in kkanji.tar, not in the folder): U+4E00/0000.png"
        in check_kanji(folder).problems
    )


def test_a_folder_from_an_older_kmnist_without_the_archive_falls_back_to_the_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = unpacked(tmp_path)
    index_path(folder).unlink()
    (tmp_path / "kkanji" / "kkanji.tar").unlink()
    check = check_kanji(folder)
    assert check.basis is Basis.COUNTS and not check.ok
    assert (
        "expected 140,424 (this package's notes) or 140,426 (the authors' README)"
        in (check.problems[0])
    )
    # Either published figure will do: which one is right is not known.
    for figure in ("EXPECTED_IMAGES", "AUTHORS_IMAGES"):
        with monkeypatch.context() as m:
            m.setattr(kmnist.data.kanji, figure, 6)
            m.setattr(kmnist.data.kanji, "EXPECTED_CLASSES", 3)
            assert check_kanji(folder).ok, figure
    with pytest.raises(kmnist.NotDownloaded, match=r"differs from its archive .*no archive at"):
        extract_kanji(root=tmp_path)


def test_the_index_exists_before_the_folder_moves_into_place(tmp_path: Path) -> None:
    """So no interruption can leave a new folder beside no index or an old one."""
    archive = make_archive(tmp_path / "a.tar")
    dest = tmp_path / "out"
    seen = []

    def record(members: object) -> None:
        seen.append((len(members), (dest / "kkanji2").exists()))  # type: ignore[arg-type]

    assert safe_extract(archive, dest=dest, top="kkanji2", record=record) == 10
    assert seen == [(10, False)]
    assert (dest / "kkanji2" / "U+4E00" / "0000.png").is_file()


def test_an_index_is_never_written_through_a_link(tmp_path: Path) -> None:
    archive_in(tmp_path)
    outside = tmp_path / "precious.txt"
    outside.write_text("not yours")
    index = index_path(tmp_path / "kkanji" / "kkanji2")
    index.parent.mkdir(parents=True)
    index.symlink_to(outside)
    assert extract_kanji(root=tmp_path, verify=False).ok
    assert outside.read_text() == "not yours"
    assert not index.is_symlink() and read_index(index).sha256 is None


# --- the command: kmnist-download -d kkanji --extract against a local server --------


def serve_crafted_archive(
    tmp_path: Path, server: FaultyServer
) -> tuple[Path, str, tuple[Entry, ...]]:
    """A mirror serving a crafted kkanji.tar, and a catalogue with its checksum.

    Returns (data folder, sha256, catalogue).
    """
    archive = make_archive(tmp_path / "crafted.tar")
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    server.add("kkanji/kkanji.tar", archive.read_bytes())
    entries = tuple(
        dataclasses.replace(e, file=dataclasses.replace(e.file, sha256=sha256))
        if e.file.path == "kkanji/kkanji.tar"
        else e
        for e in kmnist.catalogue.manifest.ENTRIES
    )
    return tmp_path / "data", sha256, entries


def test_command_extract_with_unpublished_counts_exits_0_and_keeps_the_folder(
    tmp_path: Path,
    server: FaultyServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data, sha256, catalogue = serve_crafted_archive(tmp_path, server)
    argv = ["-d", "kkanji", "--extract", "--dir", str(data), "-m", server.url]
    assert main(argv, catalogue=catalogue) == 0
    out = capsys.readouterr().out
    assert "6 PNG files in 3 class folders: ok" in out
    assert "this folder matches neither image count" in out
    assert f"its sha256 {sha256[:16]}... verified first" in out
    member = data / "kkanji" / "kkanji2" / "U+4E00" / "0000.png"
    inode = member.stat().st_ino
    assert main(argv, catalogue=catalogue) == 0  # again: the archive is verified, the folder kept
    assert member.stat().st_ino == inode
    assert len(server.gets("/kkanji/kkanji.tar")) == 1
    # Damage it: --verify names the file, --extract repairs it from the archive.
    member.unlink()
    capsys.readouterr()
    assert main(["--verify", "--dir", str(data)], catalogue=catalogue) == 1
    assert re.search(
        r"kkanji/kkanji2/ +corrupt .*missing .*U\+4E00/0000\.png", capsys.readouterr().out
    )
    assert main(argv, catalogue=catalogue) == 0
    assert member.is_file()
    assert main(["--verify", "--dir", str(data)], catalogue=catalogue) == 0


def test_command_extract_of_a_changed_folder_without_the_archive(
    tmp_path: Path,
    server: FaultyServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The archive deleted, a member added: the download fetches it again, the unpack repairs."""
    data, _, catalogue = serve_crafted_archive(tmp_path, server)
    argv = ["-d", "kkanji", "--extract", "--dir", str(data), "-m", server.url, "-q"]
    assert main(argv, catalogue=catalogue) == 0
    (data / "kkanji" / "kkanji.tar").unlink()
    extra = data / "kkanji" / "kkanji2" / "U+4E8C" / "extra.png"
    extra.write_bytes(png())
    assert main(["--verify", "--dir", str(data)], catalogue=catalogue) == 1
    assert "added (not in kkanji.tar): U+4E8C/extra.png" in capsys.readouterr().out
    assert main(argv, catalogue=catalogue) == 0
    assert not extra.exists()
    assert len(server.gets("/kkanji/kkanji.tar")) == 2


# --- the index itself, on any names a tar may hold ------------------------------

NAME = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters='/\\:*?"<>|'
    ),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", "..") and s.strip() == s)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    layout=st.dictionaries(st.tuples(NAME, NAME), st.binary(max_size=40), min_size=1, max_size=6),
    pick=st.integers(min_value=0),
)
def test_index_matches_what_is_unpacked_and_names_what_goes(
    tmp_path_factory: pytest.TempPathFactory, layout: dict[tuple[str, str], bytes], pick: int
) -> None:
    """Whatever the names (any script, spaces, dots): unpacked equals indexed; a deletion is named."""
    from kmnist.data.tarindex import compare, from_members, scan, write_index

    base = tmp_path_factory.mktemp("prop")
    archive = base / "a.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tf:
        for (folder, name), data in layout.items():
            info = tarfile.TarInfo(f"./top//{folder}/{name}")  # as sloppy as tars come
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    index_file = base / "top.members.json"

    def record(members: Sequence[tarfile.TarInfo]) -> None:
        write_index(index_file, from_members(members, top="top", archive="a.tar"))

    safe_extract(archive, dest=base, top="top", record=record)
    index = read_index(index_file)
    assert index.files == {f"{d}/{n}": len(v) for (d, n), v in layout.items()}
    assert compare(index, scan(base / "top")).none
    gone = sorted(index.files)[pick % len(index.files)]
    (base / "top" / gone).unlink()
    assert compare(index, scan(base / "top")).missing == (gone,)


def test_a_folder_from_another_archive_than_the_published_one_is_replaced(tmp_path: Path) -> None:
    folder, _ = unpacked(tmp_path)
    newer = make_archive(tmp_path / "kkanji" / "kkanji.tar", layout={"U+5B57": 2})
    check = extract_kanji(root=tmp_path, published=published(newer))
    assert check.ok and (check.images, check.classes) == (2, 1), check.summary()
    assert sorted(p.name for p in folder.iterdir()) == ["U+5B57"]
