"""Kuzushiji-Kanji against hostile bytes on disk: planted FIFOs, crafted names, PNG headers.

Each case ends in a one-line KmnistError, a problem in the check, or a usage
error: never a block, a traceback, or the hidden staging folder's name.
Anything that could block runs in a subprocess with a timeout.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import tarfile
import warnings
import zlib
from pathlib import Path

import pytest

import kmnist
from kmnist.data.kanji import check_kanji, extract_kanji, load_kanji
from kmnist.data.kanjisplit import kanji_split, split_key
from kmnist.data.safetar import safe_extract
from kmnist.data.tarindex import index_path, read_archive

from .test_kanji import archive_in, special
from .test_kanji_index import unpacked

# Generous: these take about a second; a hang is what they guard against.
BLOCKED = 20


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """``kmnist-download ARGV`` in a subprocess, so a block is a timeout, not a stuck suite."""
    code = "import sys; from kmnist.cli.download import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=BLOCKED
    )


def nothing_unpacked(root: Path) -> bool:
    """No folder, no index, no staging folder left: what "nothing written" means."""
    kkanji = root / "kkanji"
    return (
        not (kkanji / "kkanji2").exists()
        and not index_path(kkanji / "kkanji2").exists()
        and not list(kkanji.glob(".unpacking-*"))
    )


# -- the member index --------------------------------------------------------------


def test_a_fifo_in_place_of_the_member_index_is_not_trusted_and_does_not_block(
    tmp_path: Path,
) -> None:
    folder, _ = unpacked(tmp_path)
    index = index_path(folder)
    index.unlink()
    os.mkfifo(index)
    done = run_cli("--verify", "--dir", str(tmp_path))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "the index of the archive cannot be trusted" in done.stdout
    assert f"{index} is not a regular file" in done.stdout
    # Unpacking again replaces it with an index, without blocking on it first.
    code = (
        "import sys; from kmnist.data.kanji import extract_kanji; "
        "print(extract_kanji(root=sys.argv[1], verify=False).ok)"
    )
    again = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=BLOCKED,
    )
    assert again.stdout.strip() == "True", again.stderr
    assert index.is_file() and check_kanji(folder).ok


def test_a_folder_in_place_of_the_member_index_is_not_trusted(tmp_path: Path) -> None:
    folder, _ = unpacked(tmp_path)
    index = index_path(folder)
    index.unlink()
    index.mkdir()
    check = check_kanji(folder)
    assert not check.ok
    assert any(f"{index} is not a regular file" in p for p in check.problems), check.summary()


@pytest.mark.parametrize(
    "text",
    [
        '{"format": 1, "files": [["a", 1e400]], "folders": [], "archive": "x", "sha256": ""}',
        "[" * 100_000 + "]" * 100_000,
        '{"a": ' * 50_000 + "1" + "}" * 50_000,
    ],
    ids=["a size of 1e400", "arrays nested 100,000 deep", "objects nested 50,000 deep"],
)
def test_hostile_json_in_the_member_index_is_not_trusted(tmp_path: Path, text: str) -> None:
    # int(1e400) and json's recursion limit were a traceback out of --verify.
    folder, _ = unpacked(tmp_path)
    index_path(folder).write_text(text)
    check = check_kanji(folder)
    assert not check.ok
    assert any("not an index this kmnist wrote" in p for p in check.problems), check.summary()


# -- the font of the preview -------------------------------------------------------


def test_a_fifo_given_as_the_font_is_a_usage_error_and_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "font.ttf"
    os.mkfifo(fifo)
    done = run_cli(
        "--dataset", "kmnist", "--split", "test", "--dir", str(tmp_path),
        "--preview", str(tmp_path / "out.png"), "--font", str(fifo),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"--font {fifo}: not a font file Pillow can read" in done.stderr
    assert "Traceback" not in done.stderr


# -- the split ---------------------------------------------------------------------


def test_a_png_name_that_is_not_utf8_is_split_by_its_bytes(tmp_path: Path) -> None:
    from .test_kanji import png

    folder = tmp_path / "kkanji" / "kkanji2" / "U+4E00"
    folder.mkdir(parents=True)
    for i in range(5):
        (folder / f"{i:04d}.png").write_bytes(png())
    # A name only bytes can spell, as a tar from another system may hold.
    with open(os.path.join(os.fsencode(folder), b"\xff\xfe.png"), "wb") as f:
        f.write(png())
    index = load_kanji(root=tmp_path)
    train, test = kanji_split(index, train=True), kanji_split(index, train=False)
    assert sorted(train + test) == list(range(6)) and len(test) == 1
    odd = next(p for p in index.paths if p.name.startswith("\udcff"))
    assert split_key(odd) == hashlib.sha256(b"U+4E00/\xff\xfe.png").digest()
    # Names that are UTF-8 keep the key they always had: the split does not move.
    for name in ("0000.png", "一の字.png"):
        want = hashlib.sha256(f"U+4E00/{name}".encode()).digest()
        assert split_key(Path("/x/U+4E00", name)) == want


# -- members the file system cannot hold -------------------------------------------

DEEP = "kkanji2/" + "d/" * 2100 + "x.png"  # 2,102 parts: os.makedirs recurses per part
LONG = "kkanji2/" + "/".join(["x" * 200] * 6) + "/x.png"  # 1,219 bytes, in 8 parts
LONG_PART = "kkanji2/U+4E00/" + "a" * 300 + ".png"  # over a file name's 255 bytes


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (DEEP, "2,102 parts deep"),
        (LONG, "a path of 1,219 bytes"),
        (LONG_PART, "a name of 304 bytes"),
    ],
    ids=["deep", "long-path", "long-part"],
)
def test_a_member_too_deep_or_too_long_is_refused_before_anything_is_written(
    tmp_path: Path, name: str, reason: str
) -> None:
    archive_in(tmp_path, extra=[special(name, tarfile.REGTYPE, size=3)])
    with pytest.raises(kmnist.UnsafeArchive, match=reason) as exc:
        extract_kanji(root=tmp_path, verify=False)
    text = str(exc.value)
    assert "nothing written" in text and ".unpacking-" not in text
    assert len(text) < 600  # the name is cut short, not printed 4,000 characters long
    assert nothing_unpacked(tmp_path)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("kkanji2/U+4E8C", "a file where the archive has a folder of that name"),
        ("kkanji2/U+4E00/0000.png/x.png", "below a member that is a file, not a folder"),
    ],
    ids=["file-over-folder", "file-under-file"],
)
def test_a_member_that_clashes_with_another_names_the_member_not_the_staging_folder(
    tmp_path: Path, name: str, reason: str
) -> None:
    archive_in(tmp_path, extra=[special(name, tarfile.REGTYPE, size=3)])
    with pytest.raises(kmnist.UnsafeArchive) as exc:
        extract_kanji(root=tmp_path, verify=False)
    text = str(exc.value)
    assert f"{name}: {reason}" in text, text
    assert ".unpacking-" not in text and "nothing written" in text
    assert nothing_unpacked(tmp_path)


# -- what the check says -----------------------------------------------------------


def test_control_characters_in_a_member_name_cannot_forge_a_line_of_the_report(
    tmp_path: Path,
) -> None:
    forged = "kkanji2/EVIL\nkmnist-download: all ok \x1b[31mRED\x1b[0m"
    archive_in(tmp_path, extra=[special(forged, tarfile.DIRTYPE)])
    check = extract_kanji(root=tmp_path, verify=False)
    assert not check.ok
    lines = check.summary().split("\n")
    assert len(lines) == 1 + len(check.problems) + len(check.notes)
    assert all(line.isprintable() for line in lines)
    assert r"EVIL\nkmnist-download: all ok \x1b[31mRED\x1b[0m" in check.summary()
    # --verify prints the problems joined on one line: escaped there as well.
    assert all(p.isprintable() for p in check.problems)


@pytest.mark.parametrize("content", [b"", b"\x01" * 10_000], ids=["empty", "garbage"])
def test_an_archive_that_is_no_tar_at_all_is_said_in_one_line(
    tmp_path: Path, content: bytes
) -> None:
    archive = tmp_path / "kkanji" / "kkanji.tar"
    archive.parent.mkdir()
    archive.write_bytes(content)
    with pytest.raises(kmnist.VerificationError, match="complete tar archive") as exc:
        safe_extract(archive, dest=tmp_path / "out")
    assert "\n" not in str(exc.value) and "method gz" in str(exc.value)
    with pytest.raises(kmnist.VerificationError) as again:
        read_archive(archive, top="kkanji2")
    assert "\n" not in str(again.value)


# -- decoding an image -------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A PNG that is all header: it claims width x height pixels and holds none."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.torch
@pytest.mark.parametrize(
    # Pillow refuses over twice its MAX_IMAGE_PIXELS (89 million) and warns
    # above it; a program that turns warnings into errors gets the warning raised.
    "side",
    [20_000, 10_000],
    ids=["bomb-error", "bomb-warning-as-error"],
)
def test_a_png_claiming_too_many_pixels_is_a_verification_error(tmp_path: Path, side: int) -> None:
    from PIL import Image

    from kmnist.datasets import KuzushijiKanji

    folder = tmp_path / "kkanji" / "kkanji2" / "U+4E00"
    folder.mkdir(parents=True)
    (folder / "0000.png").write_bytes(png_header(side, side))
    ds = KuzushijiKanji(tmp_path, train=True)  # one image: training only
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(kmnist.VerificationError, match=r"0000\.png.*expected"):
            ds[0]
