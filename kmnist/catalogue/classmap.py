"""Which character each label is: the class maps of KMNIST and K49, shipped as data.

The published ``*_classmap.csv`` files are 151 and 697 bytes of fixed facts,
so they live here and work offline; ``tests/test_classmap.py`` checks them
against the downloaded CSVs. Only code points are stored; the character is
derived from them, so the two can never disagree.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnsupportedFormat
from .names import DATASET_NAMES, canonical, dataset_name


@dataclass(frozen=True)
class CharClass:
    """One class: its label ``index``, its Unicode ``codepoint`` ("U+304A") and ``char``."""

    index: int
    codepoint: str
    char: str

    @classmethod
    def of(cls, index: int, code: int) -> CharClass:
        return cls(index, format_codepoint(code), chr(code))


def format_codepoint(code: int) -> str:
    """``0x304A`` -> ``"U+304A"``, the spelling the CSVs and the Kanji folders use."""
    return f"U+{code:04X}"


# "U+" and 4 to 6 hexadecimal digits, ASCII only: int(text, 16) alone also took
# "U+-304" (a negative code point), "U+ 304A", "U+30_4A" and Arabic-Indic digits.
_CODEPOINT = re.compile(r"U\+[0-9A-Fa-f]{4,6}", re.ASCII)


def parse_codepoint(text: str) -> int:
    """``"U+304A"`` -> ``0x304A``; ValueError for anything else."""
    if not isinstance(text, str) or not _CODEPOINT.fullmatch(text):
        raise ValueError(f"not a code point: {text!r:.40}")
    code = int(text[2:], 16)
    if code > 0x10FFFF:
        raise ValueError(f"not a code point: {text!r}")
    return code


# From kmnist/kmnist_classmap.csv (sha256 88ba4be4...), in label order.
_KMNIST = (0x304A, 0x304D, 0x3059, 0x3064, 0x306A, 0x306F, 0x307E, 0x3084, 0x308C, 0x3092)

# From k49/k49_classmap.csv (sha256 95f5a2cf...), in label order: the 46 kana
# of the gojuon order (with ゐ and ゑ), then ん and the iteration mark ゝ.
_K49 = (
    0x3042, 0x3044, 0x3046, 0x3048, 0x304A, 0x304B, 0x304D, 0x304F, 0x3051, 0x3053,
    0x3055, 0x3057, 0x3059, 0x305B, 0x305D, 0x305F, 0x3061, 0x3064, 0x3066, 0x3068,
    0x306A, 0x306B, 0x306C, 0x306D, 0x306E, 0x306F, 0x3072, 0x3075, 0x3078, 0x307B,
    0x307E, 0x307F, 0x3080, 0x3081, 0x3082, 0x3084, 0x3086, 0x3088, 0x3089, 0x308A,
    0x308B, 0x308C, 0x308D, 0x308F, 0x3090, 0x3091, 0x3092, 0x3093, 0x309D,
)  # fmt: skip

CLASSMAPS: dict[str, tuple[CharClass, ...]] = {
    "kmnist": tuple(CharClass.of(i, c) for i, c in enumerate(_KMNIST)),
    "k49": tuple(CharClass.of(i, c) for i, c in enumerate(_K49)),
}


def classmap(dataset: str) -> tuple[CharClass, ...]:
    """The classes of ``dataset`` in label order: ``classmap("kmnist")[y].char``.

    The class maps ship with the package, so this works offline.
    Kuzushiji-Kanji has no shipped map: its 3,832 classes are the folder
    names of the unpacked archive, listed by
    [kmnist.load_kanji][kmnist.data.kanji.load_kanji].

    Args:
        dataset: ``"kmnist"`` or ``"k49"``.

    Returns:
        One [CharClass][kmnist.catalogue.classmap.CharClass] per label.

    Raises:
        UnsupportedFormat: ``"kkanji"``, which has no shipped map.
        UnknownDataset: any other name.

    Examples:
        >>> " ".join(c.char for c in kmnist.classmap("kmnist"))
        'お き す つ な は ま や れ を'
        >>> kmnist.classmap("kmnist")[2]
        CharClass(index=2, codepoint='U+3059', char='す')
    """
    if canonical(dataset, DATASET_NAMES) == "kkanji":
        raise UnsupportedFormat(
            "kkanji has no shipped class map: its classes are the folders of the "
            "unpacked archive; use kmnist.load_kanji(root=...).classes"
        )
    return CLASSMAPS[dataset_name(dataset, tuple(CLASSMAPS))]


# The published class maps are 151 and 697 bytes; a "class map" a thousand
# times larger is not one, and is refused before it is read.
CSV_MAX_BYTES = 1 << 20
CSV_HEADER = ["index", "codepoint", "char"]


def read_classmap_csv(path: str | Path) -> tuple[CharClass, ...]:
    """Read a published ``index,codepoint,char`` CSV, checking that each row agrees with itself.

    Every fault is one ValueError line naming the file (an OSError when it
    cannot be read at all): a missing column was a KeyError, a short row an
    AttributeError, a field past csv's limit a ``csv.Error``. A UTF-8
    byte-order mark, as spreadsheet programs write, is allowed.
    """
    rows: list[CharClass] = []
    # utf-8-sig: the header of a CSV saved with a BOM was "\ufeffindex".
    with open(path, encoding="utf-8-sig", newline="") as f:
        size = os.fstat(f.fileno()).st_size
        if size > CSV_MAX_BYTES:
            raise ValueError(f"{path}: {size:,} bytes, not a class map (at most {CSV_MAX_BYTES:,})")
        try:
            reader = csv.reader(f)
            header = next(reader, None)
            if header != CSV_HEADER:
                got = "nothing" if header is None else repr(header)[:80]
                raise ValueError(f"{path}: expected the header index,codepoint,char, got {got}")
            for row in reader:
                if row:  # a blank line, as csv.DictReader skips them
                    rows.append(_row(path, len(rows), row))
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"{path}: not UTF-8 text (a byte 0x{exc.object[exc.start]:02x} in it)"
            ) from None
        except csv.Error as exc:
            raise ValueError(f"{path}: not a readable CSV ({exc})") from None
    return tuple(rows)


def _row(path: str | Path, n: int, row: list[str]) -> CharClass:
    """Row ``n`` (its label) as a class, or a ValueError saying how it is wrong."""
    shown = repr(row)[:80]
    if len(row) != len(CSV_HEADER):
        raise ValueError(f"{path}: row {n} has {len(row)} fields, not 3: {shown}")
    index, codepoint, char = row
    try:
        code = parse_codepoint(codepoint)
    except ValueError:
        raise ValueError(
            f"{path}: row {n}: {codepoint!r:.40} is not a code point (U+XXXX)"
        ) from None
    # ASCII digits only: int() also took " 0", "0_0" and other scripts' digits.
    if not (index.isascii() and index.isdigit()) or int(index) != n or chr(code) != char:
        raise ValueError(f"{path}: row {n} is inconsistent: {shown}")
    return CharClass.of(n, code)
