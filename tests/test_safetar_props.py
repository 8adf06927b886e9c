"""Any tar archive, however made or broken, against the unpacker: files inside, or one refusal.

``extract_kanji(archive=..., verify=False)`` hands safetar an archive no
checksum vouches for, so its header parser (tarfile's, fed by the
decompressors) meets whatever bytes are there. Three spaces of archives:
members built with hostile names, types, links and metadata; valid archives
with bytes flipped in their headers or compressed streams; and archives cut
short. After each, whatever happened:

- the result is a member count, or one KmnistError whose message is one line
  (never zlib's or lzma's own exception, never an OSError traceback);
- nothing was written outside the target folder (the folder beside it, and a
  folder a planted link points to, are untouched);
- no link, device or FIFO is in the target, and no hidden staging folder is left;
- a refusal wrote nothing in the target.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmnist.data.safetar import safe_extract
from kmnist.errors import KmnistError

TOP = "top"
COMPRESSIONS = ("", "gz", "bz2", "xz")

# Names that reach the checks' edges: parents, absolute and Windows forms,
# other tops, doubled separators, and names tarfile itself may rewrite.
_PARTS = st.sampled_from(
    [
        "top",
        "..",
        ".",
        "",
        "a",
        "b.png",
        "C:",
        "c:\\x",
        "\\",
        "..\\..",
        "top2",
        " ",
        "\u00e9",
        "x" * 300,
    ]
)
_NAMES = st.one_of(
    st.lists(_PARTS, min_size=1, max_size=5).map("/".join),
    st.lists(_PARTS, min_size=1, max_size=4).map(lambda p: "top/" + "/".join(p)),
    st.text(min_size=0, max_size=40),
)
_TYPES = st.sampled_from(
    [
        tarfile.REGTYPE,
        tarfile.AREGTYPE,
        tarfile.DIRTYPE,
        tarfile.SYMTYPE,
        tarfile.LNKTYPE,
        tarfile.CHRTYPE,
        tarfile.BLKTYPE,
        tarfile.FIFOTYPE,
        tarfile.CONTTYPE,
        b"V",  # a volume label, a GNU type tarfile keeps as is
        b"Z",  # no type at all
    ]
)


@st.composite
def _members(draw: st.DrawFn) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    out = []
    for _ in range(draw(st.integers(1, 6))):
        info = tarfile.TarInfo(draw(_NAMES))
        info.type = draw(_TYPES)
        info.mode = draw(st.integers(0, 0o7777))
        info.mtime = draw(st.integers(-(2**33), 2**33))
        info.uid = draw(st.integers(0, 2**21 - 1))
        info.gid = draw(st.integers(0, 2**21 - 1))
        if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
            info.linkname = draw(st.sampled_from(["/etc/passwd", "..", "../outside", "top/a", "a"]))
        data = draw(st.binary(max_size=64)) if info.type in tarfile.REGULAR_TYPES else None
        if data is not None:
            info.size = len(data)
        out.append((info, data))
    return out


def _archive(members: list[tuple[tarfile.TarInfo, bytes | None]], compression: str) -> bytes:
    buf = io.BytesIO()
    fmt = tarfile.PAX_FORMAT  # any name and number fit; the others refuse some at write time
    with tarfile.open(fileobj=buf, mode=f"w:{compression}", format=fmt) as tf:  # type: ignore[call-overload]  # one of the four write modes
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _valid(compression: str) -> bytes:
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for i in range(4):
        folder = tarfile.TarInfo(f"{TOP}/U+{i:04X}")
        folder.type = tarfile.DIRTYPE
        folder.mode = 0o755
        members.append((folder, None))
        for j in range(3):
            png = tarfile.TarInfo(f"{TOP}/U+{i:04X}/{j}.png")
            content = bytes([i, j]) * 300
            png.size = len(content)
            members.append((png, content))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=f"w:{compression}", format=tarfile.GNU_FORMAT) as tf:  # type: ignore[call-overload]  # as above
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


VALID = {c: _valid(c) for c in COMPRESSIONS}


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``folder`` (links not followed): its kind and size."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st_ = os.lstat(path)
            found[os.path.relpath(path, folder)] = (stat.S_IFMT(st_.st_mode), st_.st_size)
    return found


def _unpack_and_check(work: Path, data: bytes, *, top: str | None = TOP) -> None:
    """Unpack ``data`` into ``work/data`` with the invariants of the module docstring."""
    dest = work / "data"
    beside = work / "beside"
    elsewhere = work / "elsewhere"
    for folder in (dest, beside, elsewhere):
        folder.mkdir(parents=True)
    (beside / "keep.txt").write_text("mine")
    # A link a careless unpacker would write through: data/a -> ../elsewhere
    os.symlink(elsewhere, dest / "a")
    archive = work / "archive.tar"
    archive.write_bytes(data)
    before_beside, before_elsewhere, before_dest = _tree(beside), _tree(elsewhere), _tree(dest)

    try:
        count = safe_extract(archive, dest=dest, top=top)
    except KmnistError as exc:
        message = str(exc)
        assert message and "\n" not in message, message
        assert "Traceback" not in message
        refused = True
    else:
        assert count >= 0
        refused = False

    assert _tree(beside) == before_beside
    assert _tree(elsewhere) == before_elsewhere
    assert not any(p.name.startswith(".unpacking-") for p in dest.iterdir())
    after = _tree(dest)
    if refused:
        assert after == before_dest
    for rel, (kind, _) in after.items():
        if rel == "a":  # the link planted above, left as it was
            continue
        assert kind in (stat.S_IFREG, stat.S_IFDIR), (rel, oct(kind))
        if top is not None:
            assert rel == TOP or rel.startswith(TOP + os.sep), rel


SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(
    members=_members(), compression=st.sampled_from(COMPRESSIONS), top=st.sampled_from([TOP, None])
)
def test_any_members_unpack_inside_or_are_refused(
    tmp_path_factory: pytest.TempPathFactory,
    members: list[tuple[tarfile.TarInfo, bytes | None]],
    compression: str,
    top: str | None,
) -> None:
    try:
        data = _archive(members, compression)
    except (ValueError, UnicodeError, OverflowError, tarfile.HeaderError):
        return  # tarfile would not write it; the mutations below cover unwritable headers
    _unpack_and_check(tmp_path_factory.mktemp("members"), data, top=top)


@SETTINGS
@given(
    compression=st.sampled_from(COMPRESSIONS),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=6),
)
def test_bytes_flipped_anywhere_unpack_inside_or_are_refused(
    tmp_path_factory: pytest.TempPathFactory,
    compression: str,
    flips: list[tuple[float, int]],
) -> None:
    data = bytearray(VALID[compression])
    for where, mask in flips:
        # Half the flips land in the first 1,536 bytes: the first headers and,
        # compressed, the stream's header and first block.
        span = len(data) if where > 0.5 else min(len(data), 1536)
        data[int(where * (span - 1))] ^= mask
    _unpack_and_check(tmp_path_factory.mktemp("flipped"), bytes(data))


@SETTINGS
@given(compression=st.sampled_from(COMPRESSIONS), keep=st.floats(0, 1, exclude_max=True))
def test_an_archive_cut_short_unpacks_inside_or_is_refused(
    tmp_path_factory: pytest.TempPathFactory, compression: str, keep: float
) -> None:
    data = VALID[compression]
    _unpack_and_check(tmp_path_factory.mktemp("cut"), data[: int(keep * len(data))])


@pytest.mark.parametrize("compression", ["gz", "xz", "bz2"])
def test_a_broken_compressed_stream_is_one_line_naming_the_archive(
    tmp_path: Path, compression: str
) -> None:
    # A stream broken past its first members: zlib.error ("invalid block
    # type") and _lzma.LZMAError ("Corrupt input data") came out of the
    # unpacker as themselves, a traceback in place of a refusal.
    data = bytearray(VALID[compression])
    for offset in range(len(data) // 2, len(data) - 64, 97):
        data[offset] ^= 0x5A
    archive = tmp_path / f"kkanji.tar.{compression}"
    archive.write_bytes(bytes(data))
    with pytest.raises(KmnistError) as caught:
        safe_extract(archive, dest=tmp_path / "data", top=TOP)
    message = str(caught.value)
    assert str(archive) in message and "\n" not in message, message
    assert not (tmp_path / "data" / TOP).exists()
