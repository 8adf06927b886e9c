"""The preview picture, checked on its pixels: a row per class, the modern character (or its
romanised name) first, grid lines between cells, the format its extension names."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import kmnist
from kmnist.catalogue.romaji import romaji
from kmnist.data.preview import (
    GAP,
    PAPER,
    Layout,
    check_target,
    japanese_font,
    missing_glyphs,
    preview,
    render,
)
from kmnist.errors import MissingDependency, UsageError

from .conftest import REALDATA

needs_realdata = pytest.mark.skipif(
    not (REALDATA / "kmnist" / "kmnist-test-imgs.npz").is_file(),
    reason=f"real published files not found at {REALDATA}",
)
Image = pytest.importorskip("PIL.Image")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # Latin, no kana


@pytest.fixture(scope="module")
def jp_font() -> Path:
    font = japanese_font("k49")  # K49's 49 kana include KMNIST's 10
    if font is None:
        pytest.skip("no Japanese font on this machine (fontconfig found none with the kana)")
    return font


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def label_cell(p: np.ndarray, layout: Layout, row: int) -> np.ndarray:
    left, top, right, bottom = layout.label(row)
    return p[top:bottom, left:right]


def sample_cell(p: np.ndarray, layout: Layout, row: int, col: int) -> np.ndarray:
    x, y = layout.origin(row, col)
    return p[y : y + layout.cell, x : x + layout.cell]


def layout_of(p: np.ndarray, rows: int, per_class: int, scale: int = 2) -> Layout:
    """The layout whose size is the picture's (the label column's width depends on the text)."""
    cell = 28 * scale
    label_width = p.shape[1] - 2 * GAP - per_class * (cell + GAP)
    layout = Layout(rows, per_class, scale, label_width)
    assert layout.size == (p.shape[1], p.shape[0])
    return layout


def is_line(a: np.ndarray) -> bool:
    """Grey enough to show against both the black samples and the white labels."""
    return bool(((a > 40) & (a < 215)).all()) and len(np.unique(a)) == 1


def assert_grid(p: np.ndarray, layout: Layout) -> None:
    """A grid line of GAP pixels above every row and left of every column."""
    for row in range(layout.rows + 1):
        top = row * (layout.cell + GAP)
        assert is_line(p[top : top + GAP, :]), f"no grid line above row {row}"
    columns = [0, GAP + layout.label_width]
    columns += [layout.origin(0, c)[0] + layout.cell for c in range(layout.per_class)]
    for x in columns:
        assert is_line(p[:, x : x + GAP]), f"no grid line at x={x}"


def assert_rows(p: np.ndarray, layout: Layout, x: np.ndarray, y: np.ndarray) -> None:
    """Row r holds the first images of class r, enlarged; its label cell differs from all."""
    labels = [label_cell(p, layout, r) for r in range(layout.rows)]
    for r in range(layout.rows):
        first = np.flatnonzero(y == r)[: layout.per_class]
        for col, i in enumerate(first):
            want = np.kron(x[i], np.ones((layout.scale, layout.scale), np.uint8))
            assert np.array_equal(sample_cell(p, layout, r, col), want)
        # The label cell: white paper with dark ink, unlike any sample and any other label.
        cell = labels[r]
        assert (cell == PAPER).mean() > 0.5 and (cell < 128).sum() > 10, f"row {r}: no text"
        assert all(
            not np.array_equal(cell[:, : layout.cell], sample_cell(p, layout, r, c))
            for c in range(len(first))
        )
        assert not any(np.array_equal(cell, labels[o]) for o in range(layout.rows) if o != r)


def crafted_k49(per_class: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """49 classes of distinct random images, shuffled so that the picks are not in order."""
    rng = np.random.default_rng(49)
    y = np.repeat(np.arange(49), per_class + 1)
    rng.shuffle(y)
    return rng.integers(1, 256, (len(y), 28, 28), dtype=np.uint8), y


# -- the real KMNIST test split -------------------------------------------------


@pytest.mark.realdata
@needs_realdata
def test_kmnist_without_a_font_has_romanised_labels_and_a_grid(tmp_path: Path) -> None:
    out = preview("kmnist", out=tmp_path / "grid.png", root=REALDATA, romanised=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    p = pixels(out)
    layout = layout_of(p, rows=10, per_class=10)
    x, y = kmnist.load("kmnist", "test", root=REALDATA)
    assert_grid(p, layout)
    assert_rows(p, layout, x, y)
    assert not (tmp_path / "grid.png.part").exists()


@pytest.mark.realdata
@needs_realdata
def test_kmnist_with_a_japanese_font_draws_the_characters(tmp_path: Path, jp_font: Path) -> None:
    drawn = pixels(preview("kmnist", out=tmp_path / "jp.png", root=REALDATA, font=jp_font))
    named = pixels(preview("kmnist", out=tmp_path / "ro.png", root=REALDATA, romanised=True))
    layout = layout_of(drawn, rows=10, per_class=10)
    x, y = kmnist.load("kmnist", "test", root=REALDATA)
    assert_grid(drawn, layout)
    assert_rows(drawn, layout, x, y)  # ten different glyphs: no "missing glyph" boxes
    romanised = layout_of(named, rows=10, per_class=10)
    for r in range(10):
        assert not np.array_equal(
            label_cell(drawn, layout, r), label_cell(named, romanised, r)[:, : layout.label_width]
        )


@pytest.mark.realdata
@needs_realdata
def test_no_font_found_means_romanised_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without fc-match and fc-list on PATH, fontconfig finds nothing.
    monkeypatch.setenv("PATH", str(tmp_path))
    assert japanese_font("kmnist") is None
    found = pixels(preview("kmnist", out=tmp_path / "a.png", root=REALDATA))
    named = pixels(preview("kmnist", out=tmp_path / "b.png", root=REALDATA, romanised=True))
    assert np.array_equal(found, named)


@pytest.mark.realdata
@needs_realdata
def test_size_follows_per_class_and_scale(tmp_path: Path) -> None:
    out = preview(
        "kmnist", out=tmp_path / "s.png", root=REALDATA, per_class=3, scale=1, romanised=True
    )
    p = pixels(out)
    layout = layout_of(p, rows=10, per_class=3, scale=1)
    assert layout.label_width >= 28
    assert_grid(p, layout)


# -- K49 on crafted images -------------------------------------------------------


def test_k49_has_49_rows_with_romanised_names() -> None:
    x, y = crafted_k49()
    p = np.asarray(render(x, y, dataset="k49", per_class=4))
    layout = layout_of(p, rows=49, per_class=4)
    assert_grid(p, layout)
    assert_rows(p, layout, x, y)
    assert len(set(romaji("k49"))) == 49


def test_k49_has_49_rows_with_the_characters(jp_font: Path) -> None:
    x, y = crafted_k49()
    p = np.asarray(render(x, y, dataset="k49", per_class=3, font=jp_font))
    layout = layout_of(p, rows=49, per_class=3)
    assert layout.label_width == layout.cell  # a square cell, as in the paper's figure
    assert_grid(p, layout)
    assert_rows(p, layout, x, y)


def test_a_class_with_fewer_images_leaves_black_cells() -> None:
    x, y = crafted_k49(per_class=1)  # two images of each class
    p = np.asarray(render(x, y, dataset="k49", per_class=3))
    layout = layout_of(p, rows=49, per_class=3)
    for r in (0, 48):
        assert sample_cell(p, layout, r, 1).any()
        assert not sample_cell(p, layout, r, 2).any()


# -- the font ------------------------------------------------------------------


def test_the_romanised_names_are_torchvisions_for_kmnist() -> None:
    assert romaji("kmnist") == ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
    names = romaji("k49")
    assert names[:5] == ("a", "i", "u", "e", "o") and names[-3:] == ("wo", "n", "odoriji")
    assert set(romaji("kmnist")) <= set(names)
    with pytest.raises(kmnist.UnsupportedFormat):
        romaji("kkanji")


def test_a_latin_font_is_found_to_lack_the_kana() -> None:
    if not DEJAVU.is_file():
        pytest.skip(f"{DEJAVU} not installed")
    assert missing_glyphs(DEJAVU, "おきa") == "おき"
    with pytest.raises(UsageError, match=r"no glyph for お \(U\+304A\)"):
        japanese_font("kmnist", DEJAVU)


def test_a_japanese_font_has_every_kana(jp_font: Path) -> None:
    assert missing_glyphs(jp_font, "".join(c.char for c in kmnist.classmap("k49"))) == ""
    assert japanese_font("kmnist", jp_font) == jp_font


def test_a_file_that_is_no_font_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "font.ttf"
    fake.write_bytes(b"not a font")
    assert missing_glyphs(fake, "お") is None
    with pytest.raises(UsageError, match="not a font file"):
        japanese_font("kmnist", fake)
    with pytest.raises(UsageError, match="not a font file"):
        japanese_font("kmnist", tmp_path / "missing.otf")


# -- the target ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt", "magic"),
    [
        ("grid.png", "PNG", b"\x89PNG"),
        ("grid.jpg", "JPEG", b"\xff\xd8\xff"),
        ("grid.JPEG", "JPEG", b"\xff\xd8\xff"),
        ("grid.bmp", "BMP", b"BM"),
        ("grid.gif", "GIF", b"GIF8"),
    ],
)
@pytest.mark.realdata
@needs_realdata
def test_the_format_follows_the_extension(
    name: str, fmt: str, magic: bytes, tmp_path: Path
) -> None:
    out = preview("kmnist", out=tmp_path / name, root=REALDATA, per_class=2, romanised=True)
    assert out.read_bytes().startswith(magic)
    with Image.open(out) as im:
        assert im.format == fmt


@pytest.mark.realdata
@needs_realdata
def test_a_link_planted_at_the_part_name_is_not_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "grid.png.part").symlink_to(outside)
    (tmp_path / "pics" / "grid.png").symlink_to(outside)
    out = preview("kmnist", out=tmp_path / "pics" / "grid.png", root=REALDATA, per_class=1)
    assert outside.read_text() == "keep me"
    assert not out.is_symlink() and out.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (tmp_path / "pics").iterdir()) == ["grid.png"]


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("grid.xyz", "unknown picture extension '.xyz'"),
        ("grid", "no extension"),
        ("grid.txt", "unknown picture extension '.txt'"),
    ],
)
def test_an_unknown_extension_is_refused(name: str, needle: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=needle) as info:
        preview("kmnist", out=tmp_path / name, root=tmp_path)
    assert ".png" in str(info.value) and ".jpg" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_target_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    (tmp_path / "dir.png").mkdir()
    cases = {
        tmp_path / "nonexist" / "k.png": "no folder",
        a_file / "k.png": "is not a folder",
        tmp_path / "dir.png": "it is a folder",
    }
    if Path("/proc").is_dir():  # takes no new file, even from root
        cases[Path("/proc/k.png")] = "the folder /proc is not writable"
    for out, needle in cases.items():
        with pytest.raises(UsageError, match=needle):
            check_target(out)
    assert a_file.read_text() == "mine"
    assert check_target(tmp_path / "ok.jpg") == "JPEG"
    # Nothing was written, and the probe left nothing behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.png", "file"]


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
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        preview("kmnist", out=tmp_path / "g.png", root=tmp_path, per_class=0)
    with pytest.raises(kmnist.UnsupportedFormat):
        preview("kkanji", out=tmp_path / "g.png", root=tmp_path)


@pytest.mark.realdata
@needs_realdata
def test_the_command_without_a_japanese_font_says_so_once_and_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kmnist.cli.download import main

    # Without fc-match and fc-list on PATH, fontconfig finds nothing.
    monkeypatch.setenv("PATH", str(tmp_path))
    data = tmp_path / "data"
    for rel in ("kmnist/kmnist-test-imgs.npz", "kmnist/kmnist-test-labels.npz"):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).symlink_to(REALDATA / rel)
    out = tmp_path / "grid.png"
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(data), "--preview", str(out)]
    argv += ["-m", str(REALDATA), "--no-progress"]
    assert main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    notes = [line for line in err if "Japanese font" in line]
    assert notes == [
        "kmnist-download: note: no Japanese font found, so the preview's labels are the "
        "romanised names (o, ki, su, ...); for the characters install one (Debian/Ubuntu: "
        "apt install fonts-noto-cjk) or give --font PATH"
    ], err
    named = pixels(preview("kmnist", out=tmp_path / "b.png", root=REALDATA, romanised=True))
    assert np.array_equal(pixels(out), named)
    # --quiet: errors only.
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().err == ""
