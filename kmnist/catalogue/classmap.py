"""Which character each label is: the class maps of KMNIST and K49, shipped as data.

The published ``*_classmap.csv`` files are 151 and 697 bytes of fixed facts,
so they live here and work offline; ``tests/test_classmap.py`` checks them
against the downloaded CSVs. Only code points are stored; the character is
derived from them, so the two can never disagree.
"""

from __future__ import annotations

import csv
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


def parse_codepoint(text: str) -> int:
    """``"U+304A"`` -> ``0x304A``; ValueError for anything else."""
    if not text.startswith("U+") or not 4 <= len(text) - 2 <= 6:
        raise ValueError(f"not a code point: {text!r}")
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


def read_classmap_csv(path: str | Path) -> tuple[CharClass, ...]:
    """Read a published ``index,codepoint,char`` CSV, checking that each row agrees with itself."""
    rows: list[CharClass] = []
    with open(path, encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.DictReader(f)):
            index, code = int(row["index"]), parse_codepoint(row["codepoint"])
            if index != n or chr(code) != row["char"]:
                raise ValueError(f"{path}: row {n} is inconsistent: {row}")
            rows.append(CharClass.of(index, code))
    return tuple(rows)
