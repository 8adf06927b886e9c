"""Hostile .npz files: refused by their .npy header before any array is made, in one error.

``np.load`` decoded any dtype and any shape before the loader looked at
them, and ``--verify`` parsed a header of any length with ``literal_eval``:
a 1.5 MB file took 1.5 GB, a 300 KB one 900 MB, and six malformed headers
were tracebacks. Every reader of the format (``read_npz`` for arrays,
``npz_shape`` for --verify's structure checks) now goes through one header
parser, checked here by property as well as by the cases that broke it.
"""

from __future__ import annotations

import io
import os
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kmnist
from kmnist.catalogue.manifest import entry_for
from kmnist.cli.download import main
from kmnist.data.kanji import KanjiIndex
from kmnist.data.load import kanji_arrays
from kmnist.errors import VerificationError
from kmnist.formats import read_npz
from kmnist.verify import NPY_MAX_HEADER, Hasher, npz_shape, read_npy_header

IMGS = "kmnist/kmnist-test-imgs.npz"


def npy(arr: np.ndarray) -> bytes:
    b = io.BytesIO()
    np.save(b, arr, allow_pickle=True)
    return b.getvalue()


def raw_npy(header: str, payload: bytes = b"", major: int = 1) -> bytes:
    """A .npy of any header text, as numpy.lib.format lays one out."""
    h = header.encode("latin-1")
    width = 2 if major == 1 else 4
    h += b" " * ((64 - (8 + width + len(h) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY" + bytes([major, 0]) + len(h).to_bytes(width, "little") + h + payload


def npz(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return b.getvalue()


def flags(data: bytes, bit: int = 0, method: int | None = None) -> bytes:
    """``data`` with every zip header's flag ``bit`` set (0x1: encrypted) or its method changed."""
    b = bytearray(data)
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = b.find(sig)
        while i != -1:
            struct.pack_into("<H", b, i + at, struct.unpack_from("<H", b, i + at)[0] | bit)
            if method is not None:
                struct.pack_into("<H", b, i + at + 2, method)
            i = b.find(sig, i + 4)
    return bytes(b)


GOOD = npz({"arr_0.npy": npy(np.zeros((10, 28, 28), np.uint8))})
U1 = "{'descr': '|u1', 'fortran_order': False, 'shape': %s, }"
CASES = {
    "encrypted": flags(GOOD, bit=0x1),
    "a compression method zipfile lacks": flags(GOOD, method=99),
    "a header that is a list": npz({"arr_0.npy": raw_npy("[1, 2, 3]")}),
    "a shape of None": npz({"arr_0.npy": raw_npy(U1 % "None")}),
    "a shape that is an int": npz({"arr_0.npy": raw_npy(U1 % "5")}),
    "a shape of -1": npz({"arr_0.npy": raw_npy(U1 % "(-1, 28, 28)")}),
    "a shape of floats": npz({"arr_0.npy": raw_npy(U1 % "(1.5, 28, 28)")}),
    "the magic alone": npz({"arr_0.npy": b"\x93NUMPY"}),
    "format version 9": npz({"arr_0.npy": b"\x93NUMPY\x09\x00" + raw_npy(U1 % "(1,)")[8:]}),
    "a bare .npy under the .npz name": npy(np.zeros((10, 28, 28), np.uint8)),
    "arr_0 that is not a .npy": npz({"arr_0.npy": b"hello world, not npy"}),
    "a shape of 2**40 images": npz({"arr_0.npy": raw_npy(U1 % "(1099511627776, 28, 28)")}),
    "a shape of 16 GB": npz({"arr_0.npy": raw_npy(U1 % "(20000000, 28, 28)")}),
    "fewer bytes than the shape": npz({"arr_0.npy": raw_npy(U1 % "(10, 28, 28)", bytes(100))}),
    "more bytes than the shape": npz({"arr_0.npy": raw_npy(U1 % "(1, 28, 28)", bytes(785))}),
    "a structured dtype": npz({"arr_0.npy": npy(np.zeros(3, dtype=[("a", "u1")]))}),
    "a pickle": npz({"arr_0.npy": npy(np.array([object()] * 3, dtype=object))}),
    "garbage": os.urandom(5000),
    "empty": b"",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_malformed_npz_is_one_verification_error(case: str, tmp_path: Path) -> None:
    path = tmp_path / "kmnist-test-imgs.npz"
    path.write_bytes(CASES[case])
    with pytest.raises(VerificationError) as caught:
        read_npz(path, ndim=3, name=IMGS)
    assert "\n" not in str(caught.value) and str(caught.value).startswith(IMGS)
    with pytest.raises(ValueError):
        npz_shape(path)


@pytest.mark.parametrize("case", sorted(CASES))
def test_verify_says_a_malformed_npz_is_corrupt_in_one_line(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --verify decodes a file that fails its checksum for a hint of its shape:
    # six of these headers were a traceback there.
    (tmp_path / "kmnist").mkdir()
    (tmp_path / IMGS).write_bytes(CASES[case])
    assert main(["--verify", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr()
    [line] = [x for x in out.out.splitlines() if x.startswith(IMGS)]
    assert line.split()[1] == "corrupt" and "Traceback" not in out.err


def test_a_float64_bomb_is_refused_by_its_header_without_decoding_it(tmp_path: Path) -> None:
    # 100 MB of float64 zeros compress to about 100 KB: np.load made the
    # whole array before the dtype was looked at.
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("arr_0.npy", "w") as m:
        m.write(raw_npy(U1.replace("|u1", "<f8") % "(16000, 28, 28)"))
        for _ in range(100):
            m.write(bytes(16000 * 28 * 28 * 8 // 100))
    tracemalloc.start()
    try:
        with pytest.raises(VerificationError, match="expected uint8, got float64"):
            read_npz(path, ndim=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20, f"{peak / 2**20:.0f} MiB traced"


def test_a_header_longer_than_numpys_own_limit_is_not_parsed(tmp_path: Path) -> None:
    # 20 MB of header compress to 20 KB; literal_eval on it took GBs.
    path = tmp_path / "bighead.npz"
    size = 20 << 20
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("arr_0.npy", "w") as m:
        m.write(b"\x93NUMPY\x02\x00" + size.to_bytes(4, "little"))
        m.write((U1 % "(1,)").encode().ljust(size))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=f"at most {NPY_MAX_HEADER:,}"):
            npz_shape(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20


@settings(max_examples=300, deadline=None)
@given(
    shape=st.lists(st.integers(0, 5), max_size=4).map(tuple),
    dtype=st.sampled_from(["u1", "<i4", ">f8", "<u2", "b1"]),
    fortran=st.booleans(),
)
def test_the_header_parser_reads_what_numpy_writes(
    shape: tuple[int, ...], dtype: str, fortran: bool
) -> None:
    arr = np.zeros(shape, dtype=dtype, order="F" if fortran else "C")
    data = npy(arr)
    stream = io.BytesIO(data)
    header = read_npy_header(stream)
    assert header.shape == arr.shape and np.dtype(header.descr) == arr.dtype
    assert header.fortran_order == (fortran and arr.ndim > 1 and not arr.flags.c_contiguous)
    assert stream.tell() == header.offset == len(data) - arr.nbytes


@settings(max_examples=400, deadline=None)
@given(
    st.binary(max_size=300)
    | st.text(st.characters(max_codepoint=255), max_size=200).map(lambda t: raw_npy(t))
)
def test_the_header_parser_raises_only_value_error_on_any_bytes(data: bytes) -> None:
    try:
        header = read_npy_header(io.BytesIO(data))
    except ValueError:
        return
    assert all(type(d) is int and d >= 0 for d in header.shape)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 255), min_size=784, max_size=784 * 3))
def test_a_fortran_ordered_array_loads_as_numpy_loads_it(pixels: list[int]) -> None:
    n = len(pixels) // 784
    arr = np.asfortranarray(np.array(pixels[: n * 784], np.uint8).reshape(n, 28, 28))
    b = io.BytesIO()
    np.savez(b, arr)
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"kmnist-fortran-{os.getpid()}.npz"
    path.write_bytes(b.getvalue())
    try:
        got = read_npz(path, ndim=3)
    finally:
        path.unlink()
    assert np.array_equal(got, arr)


def test_a_wrong_size_is_not_hashed_to_look_for_an_older_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sparse 20 GB file under a published name: the size says it is no
    # release at all, and hashing it took a minute per look.
    (tmp_path / "kmnist").mkdir()
    with open(tmp_path / IMGS, "wb") as fh:
        fh.truncate(20 << 30)
    (tmp_path / "kmnist/kmnist-test-labels.npz").write_bytes(b"x")
    hashed: list[int] = []
    feed = Hasher.feed

    def counting(self: Hasher, *args: object, **kwargs: object) -> None:
        before = self.size
        feed(self, *args, **kwargs)  # type: ignore[arg-type]
        hashed.append(self.size - before)

    monkeypatch.setattr(Hasher, "feed", counting)
    with pytest.raises(VerificationError, match="wrong size"):
        kmnist.load("kmnist", "test", root=tmp_path, format="npz")
    assert main(["--verify", "--dir", str(tmp_path), "-f", "npz", "-d", "kmnist"]) == 1
    assert sum(hashed) == 0


@pytest.mark.parametrize("kind", ["folder", "pipe", "dangling"])
def test_something_else_at_a_files_name_is_said_as_such_not_missing(
    tmp_path: Path, kind: str
) -> None:
    # "missing: pass download=True" sent the user to a download that cannot
    # replace a folder or a pipe.
    entry = entry_for(IMGS)
    assert entry is not None
    (tmp_path / "kmnist").mkdir()
    path = tmp_path / IMGS
    if kind == "folder":
        path.mkdir()
    elif kind == "pipe":
        os.mkfifo(path)
    else:
        path.symlink_to(tmp_path / "nowhere")
    want = {"folder": "a folder", "pipe": "a pipe", "dangling": "a link to nothing"}[kind]
    with pytest.raises(VerificationError, match=f"expected a regular file, got {want}"):
        kmnist.load("kmnist", "test", root=tmp_path, format="npz")


def test_a_png_that_claims_too_many_pixels_is_one_verification_error(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    png = tmp_path / "0000.png"
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    index = KanjiIndex((png,), (0,), ())
    with pytest.raises(VerificationError, match="DecompressionBombError"):
        kanji_arrays(index)
