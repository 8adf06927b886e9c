"""The preview picture: its size, what is in each cell, and a clear message without Pillow."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import kmnist
from kmnist.preview import MissingDependency, preview

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
needs_realdata = pytest.mark.skipif(
    not (REALDATA / "kmnist" / "kmnist-test-imgs.npz").is_file(),
    reason=f"real published files not found at {REALDATA}",
)
Image = pytest.importorskip("PIL.Image")


@pytest.mark.realdata
@needs_realdata
def test_grid_of_kmnist(tmp_path: Path) -> None:
    out = preview("kmnist", out=tmp_path / "grid.png", root=REALDATA)
    with Image.open(out) as im:
        assert im.format == "PNG"
        # 10 rows of 10 cells of 56 px (28 x 2) with 2 px gaps, after an 80 px label column.
        assert im.size == (80 + 10 * 58 + 2, 10 * 58 + 2)
        pixels = np.asarray(im.convert("L"))
    x, y = kmnist.load("kmnist", "test", root=REALDATA)
    for cls in (0, 9):
        first = int(np.flatnonzero(y == cls)[0])
        top, left = 2 + cls * 58, 80 + 2
        cell = pixels[top : top + 56, left : left + 56]
        assert np.array_equal(cell, np.kron(x[first], np.ones((2, 2), np.uint8)))
        assert pixels[top : top + 56, :80].max() > 0  # the row's label was drawn
    assert not (tmp_path / "grid.png.part").exists()


@pytest.mark.realdata
@needs_realdata
def test_size_follows_per_class_and_scale(tmp_path: Path) -> None:
    out = preview("kmnist", out=tmp_path / "small.png", root=REALDATA, per_class=3, scale=1)
    with Image.open(out) as im:
        assert im.size == (80 + 3 * 30 + 2, 10 * 30 + 2)


def test_without_pillow_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)  # makes "from PIL import ..." fail
    with pytest.raises(MissingDependency, match=r"pip install 'kmnist\[preview\]'"):
        preview("kmnist", out=tmp_path / "grid.png", root=tmp_path)
    assert not (tmp_path / "grid.png").exists()


def test_without_data(tmp_path: Path) -> None:
    with pytest.raises(kmnist.NotDownloaded):
        preview("kmnist", out=tmp_path / "grid.png", root=tmp_path)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        preview("kmnist", out=tmp_path / "g.png", root=tmp_path, per_class=0)
    with pytest.raises(kmnist.UnsupportedFormat):
        preview("kkanji", out=tmp_path / "g.png", root=tmp_path)
