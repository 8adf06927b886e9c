"""The shipped class maps match the published CSVs and work offline."""

from __future__ import annotations

from pathlib import Path

import pytest

import kmnist
from kmnist.catalogue.classmap import format_codepoint, parse_codepoint, read_classmap_csv

from .conftest import REALDATA


def test_kmnist_classes_in_order() -> None:
    classes = kmnist.classmap("kmnist")
    assert "".join(c.char for c in classes) == "おきすつなはまやれを"
    assert [c.index for c in classes] == list(range(10))
    assert classes[0] == kmnist.CharClass(0, "U+304A", "お")


def test_k49_has_49_distinct_hiragana() -> None:
    classes = kmnist.classmap("k49")
    assert len(classes) == 49 and len({c.char for c in classes}) == 49
    assert classes[0].char == "あ" and classes[-1] == kmnist.CharClass(48, "U+309D", "ゝ")
    assert all(0x3041 <= parse_codepoint(c.codepoint) <= 0x309F for c in classes)


def test_every_kmnist_class_is_a_k49_class() -> None:
    k49 = {c.char for c in kmnist.classmap("k49")}
    assert {c.char for c in kmnist.classmap("kmnist")} <= k49


@pytest.mark.realdata
@pytest.mark.parametrize("dataset", ["kmnist", "k49"])
def test_shipped_map_equals_published_csv(dataset: str) -> None:
    csv_path = REALDATA / dataset / f"{dataset}_classmap.csv"
    if not csv_path.is_file():
        pytest.skip(f"published class map not found at {csv_path}")
    assert read_classmap_csv(csv_path) == kmnist.classmap(dataset)


def test_inconsistent_csv_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("index,codepoint,char\n0,U+304A,き\n", encoding="utf-8")
    with pytest.raises(ValueError, match="inconsistent"):
        read_classmap_csv(p)


def test_kanji_and_unknown() -> None:
    with pytest.raises(kmnist.UnsupportedFormat, match="load_kanji"):
        kmnist.classmap("kkanji")
    with pytest.raises(kmnist.UnknownDataset):
        kmnist.classmap("mnist")


@pytest.mark.parametrize("text", ["304A", "U+30", "U+110000", "U+XYZW"])
def test_codepoint_spelling(text: str) -> None:
    assert parse_codepoint(format_codepoint(0x20B9F)) == 0x20B9F
    with pytest.raises(ValueError):
        parse_codepoint(text)
