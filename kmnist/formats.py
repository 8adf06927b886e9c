"""Reading the published file formats (gzip-compressed IDX, ``.npz``) into arrays, checked.

Shared by the loaders (:mod:`kmnist.data.load`) and the downloader's derived
files (:mod:`kmnist.downloader.derive`), so that neither imports the other.
NumPy is imported by the functions that need it.
"""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from .errors import VerificationError
from .verify import ZIP_ERRORS, NpyHeader, parse_idx_header, read_npy_header

if TYPE_CHECKING:
    from typing import TypeGuard  # Python 3.10: only for the checker, as 3.9 is supported

    import numpy as np
    from numpy.typing import NDArray

    Array = NDArray[np.uint8]

SIDE = 28  # KMNIST and K49 images are 28 x 28, like MNIST
IDX_MAGIC = {"images": 0x0803, "labels": 0x0801}  # unsigned bytes, 3 or 1 dimensions
# Deflate cannot compress better than 1032:1, so an IDX header that promises
# more bytes than that is lying; refusing it keeps a forged header from making
# us allocate terabytes before the data runs out.
DEFLATE_MAX_RATIO = 1032


def bad_structure(name: str, expected: str, got: str) -> VerificationError:
    """A file whose content is not the structure its format promises."""
    return VerificationError(name, "disk", "structure", expected, got)


def system_error(exc: BaseException) -> TypeGuard[OSError]:
    """An OSError the system raised (no permission, an I/O error), not a decoder's.

    gzip.BadGzipFile is an OSError without an errno; a file that cannot be
    opened or read has one. Only the decoders' errors say the structure is wrong.
    """
    return isinstance(exc, OSError) and exc.errno is not None


def read_idx(path: str | Path, *, ndim: int, name: str | None = None) -> Array:
    """Read a gzip-compressed IDX file of unsigned bytes with ``ndim`` dimensions.

    Checks the magic number, the dimensions (28 x 28 images) and that the
    payload is exactly as long as the header says: no more, no less.
    """

    name = name or str(path)
    want = f"IDX magic 0x{IDX_MAGIC['images' if ndim == 3 else 'labels']:08x}"
    try:
        with gzip.open(path, "rb") as g:
            head = g.read(4)
            if len(head) == 4 and head[:2] == b"\0\0":
                head += g.read(4 * head[3])
            try:
                header = parse_idx_header(head)
            except ValueError as exc:
                raise bad_structure(name, want, f"{exc} (first bytes {head[:4].hex()})") from None
            if len(header.shape) != ndim:
                raise bad_structure(name, want, f"{len(header.shape)} dimensions")
            if ndim == 3 and header.shape[1:] != (SIDE, SIDE):
                raise bad_structure(
                    name, f"{SIDE}x{SIDE} images", "x".join(map(str, header.shape[1:]))
                )
            if header.payload > DEFLATE_MAX_RATIO * os.path.getsize(path):
                raise bad_structure(name, "a header that fits the file", f"shape {header.shape}")
            out = _read_payload(g, header.payload, name)
    except (OSError, EOFError, zlib.error) as exc:
        if system_error(exc):
            raise  # the disk's or the permissions' problem, not the file's structure
        # gzip.BadGzipFile is an OSError; EOFError is a cut-off gzip stream.
        raise bad_structure(name, "a complete gzip file", f"{type(exc).__name__}: {exc}") from None
    return out.reshape(header.shape)


def read_npz(path: str | Path, *, ndim: int, name: str | None = None) -> Array:
    """Read the array ``arr_0`` of a published ``.npz``, refusing pickles and other dtypes.

    The .npy header is read and checked (dtype, shape, length) before the
    array is made: ``np.load`` decoded any dtype and shape first, so a 1.5 MB
    file of compressed float64 zeros took 1.5 GB before it was refused.
    """

    name = name or str(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if "arr_0.npy" not in names:
                raise bad_structure(name, "an .npz with arr_0", "no arr_0")
            # The published files hold arr_0 alone. Another member (np.savez of
            # two arrays) or a second arr_0.npy (zipfile reads the last one,
            # other readers the first) leaves which array is meant to chance.
            others = [n for n in names if n != "arr_0.npy"]
            if others or len(names) > 1:
                got = (
                    f"also {others[0]!r:.60}" if others else f"{len(names)} members named arr_0.npy"
                )
                raise bad_structure(name, "an .npz with arr_0 alone", got)
            info = z.getinfo("arr_0.npy")
            with z.open(info) as m:
                try:
                    header = read_npy_header(m)
                except ValueError as exc:
                    raise bad_structure(name, "a .npy array in arr_0", str(exc)) from None
                _check_npy(header, info, path, ndim=ndim, name=name)
                # Reading to the end also checks the member's CRC. A ZipExtFile
                # (io.BufferedIOBase) has readinto; typeshed says only IO[bytes].
                out = _read_payload(cast("_Stream", m), header.count, name)
    except ZIP_ERRORS as exc:
        if system_error(exc):
            raise  # the disk's or the permissions' problem, not the file's structure
        # Not a zip (a pickle, a bare .npy, an HTML page), an encrypted member,
        # a compression method zipfile lacks, a cut or corrupt stream.
        raise bad_structure(name, "a readable .npz", f"{type(exc).__name__}: {exc}") from None
    if header.fortran_order:
        result: Array = out.reshape(header.shape[::-1]).T
    else:
        result = out.reshape(header.shape)
    return result


def _check_npy(
    header: NpyHeader, info: zipfile.ZipInfo, path: str | Path, *, ndim: int, name: str
) -> None:
    """The array the header promises is the one expected, and fits the file."""
    if not header.is_bytes:
        raise bad_structure(name, "uint8", _dtype_name(header.descr))
    shape = header.shape
    if len(shape) != ndim or (ndim == 3 and shape[1:] != (SIDE, SIDE)):
        raise bad_structure(name, "N x 28 x 28" if ndim == 3 else "N", str(shape))
    data = info.file_size - header.offset
    if data != header.count:
        raise bad_structure(name, f"{header.count} bytes of data", f"{data} in arr_0.npy")
    if header.count > DEFLATE_MAX_RATIO * max(os.path.getsize(path), 1):
        raise bad_structure(name, "a header that fits the file", f"shape {shape}")


def _dtype_name(descr: str) -> str:
    """``float64`` for ``<f8``: the name NumPy says (its code, when NumPy does not know it)."""
    import numpy as np

    try:
        return str(np.dtype(descr))
    except (TypeError, ValueError):
        return repr(descr)[:60]


class _Stream(Protocol):
    """What both decompressors read through (a GzipFile, a zip member)."""

    def readinto(self, buffer: memoryview, /) -> int: ...

    def read(self, size: int = -1, /) -> bytes: ...


def _read_payload(stream: _Stream, size: int, name: str) -> Array:
    """Exactly ``size`` bytes of ``stream`` into one new array: no fewer, and nothing after."""
    import numpy as np

    out = np.empty(size, dtype=np.uint8)
    view = memoryview(out)  # type: ignore[arg-type]
    got = 0
    while got < size:
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    if got < size:
        raise bad_structure(name, f"{size} bytes of data", f"only {got} (truncated)")
    if stream.read(1):
        raise bad_structure(name, f"{size} bytes of data", "more (trailing bytes)")
    result: Array = out
    return result
