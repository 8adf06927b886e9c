"""A picture of a dataset like the paper's figure: a row per class, its modern character, samples.

The first cell of each row is the modern character, drawn with a Japanese
font when this machine has one (found through fontconfig, or given), else
its romanised name (:mod:`kmnist.catalogue.romaji`); the row's samples follow. Pillow
is an optional extra (``pip install 'kmnist[preview]'``), imported only when
a picture is checked or made.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalogue.classmap import classmap
from ..catalogue.names import DATASET_ALIASES, DATASET_NAMES, canonical
from ..catalogue.romaji import romaji
from ..errors import UsageError
from ..inputs import check_count, check_folder, kind_at
from ..optional import import_pillow
from ..storage.folders import can_write_in

if TYPE_CHECKING:
    from PIL.Image import Image

CELL = 28  # KMNIST and K49 images are 28 x 28
GAP = 2  # width of the grid lines between cells (and around the picture)
# Mid grey: a line shows against the black of the samples and the white of the labels.
GRID = 128
BACKGROUND = 0  # an empty sample cell: black, like the images' own background
PAPER = 255  # the label cells: dark ink on white, as the modern characters are printed
INK = 0
PAD = 4  # pixels between a romanised name and its cell's edges
# A code point no font draws (plane 16 private use): what a font renders for
# it is its "missing glyph" box, which a character it lacks also gets.
NO_SUCH_GLYPH = "\U0010fffd"
FC_TIMEOUT = 10.0  # seconds; fc-list answers from its cache in milliseconds


@dataclass(frozen=True)
class Layout:
    """Where things go: ``rows`` classes, a label cell, then ``per_class`` samples each."""

    rows: int
    per_class: int
    scale: int = 2
    label_width: int = CELL * 2

    @property
    def cell(self) -> int:
        return CELL * self.scale

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels: every cell has a grid line on each side."""
        width = GAP + self.label_width + GAP + self.per_class * (self.cell + GAP)
        return width, GAP + self.rows * (self.cell + GAP)

    def label(self, row: int) -> tuple[int, int, int, int]:
        """The label cell of ``row``: (left, top, right, bottom), right and bottom exclusive."""
        top = GAP + row * (self.cell + GAP)
        return GAP, top, GAP + self.label_width, top + self.cell

    def origin(self, row: int, col: int) -> tuple[int, int]:
        """Top left of sample ``col`` of ``row``."""
        return (
            2 * GAP + self.label_width + col * (self.cell + GAP),
            GAP + row * (self.cell + GAP),
        )


# -- the target: checked before anything is downloaded ------------------------


def picture_format(out: str | Path) -> str:
    """Pillow's name of the format ``out``'s extension names (``PNG``, ``JPEG``, ...).

    A UsageError when there is no extension or Pillow cannot write that one:
    a picture's bytes always match its name.
    """
    image_mod = import_pillow("the preview")
    image_mod.init()  # registers every plugin, so that every extension is known
    writable = {
        ext: fmt for ext, fmt in image_mod.registered_extensions().items() if fmt in image_mod.SAVE
    }
    ext = Path(out).suffix.lower()
    if ext in writable:
        return str(writable[ext])
    common = ", ".join(
        e for e in (".png", ".jpg", ".webp", ".gif", ".bmp", ".tif") if e in writable
    )
    what = f"unknown picture extension {ext!r}" if ext else "no extension"
    raise UsageError(f"cannot write the preview to {out}: {what}; name it {common}")


def check_target(out: str | Path) -> str:
    """Refuse a preview path that cannot be written; return the picture's format.

    The folder must exist and take a new file, and the extension must name
    a format Pillow writes: so that a typo fails at once, not after the download.
    """
    out = Path(out)
    fmt = picture_format(out)
    folder = out.parent
    prefix = f"cannot write the preview to {out}"
    if out.is_dir():
        raise UsageError(f"{prefix}: it is a folder")
    if not folder.exists():
        raise UsageError(f"{prefix}: no folder {folder}")
    if not folder.is_dir():
        raise UsageError(f"{prefix}: {folder} is not a folder")
    if not can_write_in(folder):
        raise UsageError(f"{prefix}: the folder {folder} is not writable")
    return fmt


# -- the font -----------------------------------------------------------------


def fontconfig_candidates() -> list[Path]:
    """Font files fontconfig says cover Japanese: its best match first, then the rest."""
    found: list[Path] = []
    for cmd in (
        ["fc-match", "-f", "%{file}\n", ":lang=ja"],
        ["fc-list", "-f", "%{file}\n", ":lang=ja"],
    ):
        if shutil.which(cmd[0]) is None:
            return found
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=FC_TIMEOUT)
        except (OSError, subprocess.SubprocessError):
            return found
        for line in (
            sorted(set(r.stdout.splitlines())) if cmd[0] == "fc-list" else r.stdout.splitlines()
        ):
            path = Path(line.strip())
            if line.strip() and path not in found:
                found.append(path)
    return found


def missing_glyphs(path: str | Path, chars: str) -> str | None:
    """The characters of ``chars`` the font at ``path`` has no glyph for; None if it cannot be read.

    fontconfig's ``:lang=ja`` falls back to any font when none covers
    Japanese (DejaVu Sans, say), so a candidate is checked glyph by glyph:
    a character drawn as the font's missing-glyph box, or as nothing, is missing.
    """
    font = _truetype(path, CELL)
    if font is None:
        return None
    box = _ink(font, NO_SUCH_GLYPH)
    return "".join(c for c in chars if not _ink(font, c)[1] or _ink(font, c) == box)


def _ink(font: Any, char: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(char)
    return mask.size, bytes(mask)


def _truetype(path: str | Path, size: int) -> Any:
    # FreeType opens what it is given: a FIFO would block it until someone
    # writes, a device would be read without end. A link to a font is fine.
    if not _is_file(path):
        return None
    try:
        from PIL import ImageFont

        return ImageFont.truetype(str(path), size)
    except (ImportError, OSError, ValueError):  # no FreeType, not a font, no such file
        return None


def _why_not(path: Path) -> str:
    """Why a font path cannot be a font, when the cause is not its bytes: ``": it is a folder"``.

    A missing file, a folder, a pipe and a file this user may not read were
    all "not a font file Pillow can read", which sent the user to look for
    another font rather than at the path.
    """
    kind = kind_at(path)
    if kind is None:
        return ": there is no such file" if not os.path.lexists(path) else ""
    if kind != "a file":
        return f": it is {kind}"
    if not os.access(path, os.R_OK):
        return ": this user may not read it (permission denied)"
    return ""


def _is_file(path: str | Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):  # no such file; a NUL in the name
        return False


# Said once when no font draws the characters: why the labels are Latin, and
# what gives the characters (Debian's and Ubuntu's package of Noto CJK).
NO_JAPANESE_FONT = (
    "no Japanese font found, so the preview's labels are the romanised names "
    "(o, ki, su, ...); for the characters install one (Debian/Ubuntu: apt install "
    "fonts-noto-cjk) or give --font PATH"
)


def japanese_font(
    dataset: str, font: str | Path | None = None, *, source: str = "--font"
) -> Path | None:
    """The font that draws every character of ``dataset``: ``font`` when given, else one found.

    A given ``font`` that cannot be read or lacks a character is a
    UsageError naming what is wrong (``source``: the flag or argument it came
    from); when none is given and fontconfig finds none that covers the
    classes, None (the labels are romanised then).
    """
    chars = "".join(c.char for c in classmap(dataset))
    if font is not None:
        font = check_folder(font, source, kind="file")  # 3 was the open descriptor 3
        missing = missing_glyphs(font, chars)
        if missing is None:
            raise UsageError(f"{source} {font}: not a font file Pillow can read{_why_not(font)}")
        if missing:
            raise UsageError(
                f"{source} {font}: no glyph for {missing[0]} (U+{ord(missing[0]):04X}); "
                "give a Japanese font, such as Noto Sans CJK"
            )
        return font
    for candidate in fontconfig_candidates():
        if missing_glyphs(candidate, chars) == "":
            return candidate
    return None


# -- the picture --------------------------------------------------------------


def render(
    images: Any,
    labels: Any,
    *,
    dataset: str,
    per_class: int = 10,
    scale: int = 2,
    font: str | Path | None = None,
) -> Image:
    """The picture of ``images`` (N x 28 x 28 uint8) by ``labels``, as a greyscale image.

    Row ``y`` is class ``y`` of ``dataset``: its label cell, then its first
    ``per_class`` images (black cells where a class has fewer). ``font`` is
    a Japanese font to draw the modern characters with; without one each
    label is the class's romanised name.
    """
    per_class, scale = _check_layout(per_class, scale, len(classmap(dataset)))
    image_mod = import_pillow("the preview")
    from PIL import ImageDraw

    classes = classmap(dataset)
    picks: list[list[int]] = [[] for _ in classes]
    for i, y in enumerate(labels.tolist()):
        if 0 <= y < len(picks) and len(picks[y]) < per_class:
            picks[y].append(i)

    cell = CELL * scale
    glyphs = _truetype(font, round(cell * 0.8)) if font is not None else None
    if glyphs is not None:
        texts: Sequence[str] = [c.char for c in classes]
        label_font = glyphs
    else:
        texts = romaji(dataset)
        label_font = _latin_font(round(cell * 0.4))
    probe = ImageDraw.Draw(image_mod.new("L", (1, 1)))
    widest = max(
        _text_box(probe, t, label_font)[2] - _text_box(probe, t, label_font)[0] for t in texts
    )
    layout = Layout(len(classes), per_class, scale, max(cell, widest + 2 * PAD))

    canvas: Image = image_mod.new("L", layout.size, GRID)
    draw = ImageDraw.Draw(canvas)
    for row, text in enumerate(texts):
        left, top, right, bottom = layout.label(row)
        draw.rectangle((left, top, right - 1, bottom - 1), fill=PAPER)
        x0, y0, x1, y1 = _text_box(draw, text, label_font)
        at = (
            left + (right - left - (x1 - x0)) // 2 - x0,
            top + (bottom - top - (y1 - y0)) // 2 - y0,
        )
        draw.text(at, text, fill=INK, font=label_font)
        for col in range(per_class):
            x, y = layout.origin(row, col)
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=BACKGROUND)
        for col, i in enumerate(picks[row]):
            tile = image_mod.frombytes("L", (CELL, CELL), images[i].tobytes())
            canvas.paste(tile.resize((cell, cell), image_mod.NEAREST), layout.origin(row, col))
    return canvas


def _check_layout(per_class: object, scale: object, rows: int) -> tuple[int, int]:
    """``per_class`` and ``scale`` as whole numbers of at least 1 that make a readable picture.

    A float was a TypeError from inside Pillow, and ``scale=300`` a canvas of
    7 GB: a MemoryError after the arrays were loaded, or the OOM killer.
    The limit is the most pixels Pillow opens without a DecompressionBombWarning,
    so that the picture written can be read back.
    """
    per_class = check_count(per_class, "per_class", minimum=1)
    scale = check_count(scale, "scale", minimum=1)
    image_mod = import_pillow("the preview")
    limit = image_mod.MAX_IMAGE_PIXELS or 89_478_485  # None: the check turned off; Pillow's own
    # The label cells are at least a cell wide: the picture is at least this big.
    width, height = Layout(rows, per_class, scale, CELL * scale).size
    if width * height > limit:
        raise ValueError(
            f"per_class={per_class} and scale={scale} make a picture of at least "
            f"{width:,} x {height:,} pixels, more than the {limit:,} Pillow reads back: "
            "choose smaller ones"
        )
    return per_class, scale


def _latin_font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # scalable since Pillow 10.1
    except TypeError:
        return ImageFont.load_default()  # older Pillow: its small bitmap font


def _text_box(draw: Any, text: str, font: Any) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    return int(x0), int(y0), int(x1), int(y1)


def preview(
    dataset: str = "kmnist",
    *,
    out: str | Path,
    root: str | Path | None = None,
    split: str = "test",
    format: str | None = None,
    per_class: int = 10,
    scale: int = 2,
    font: str | Path | None = None,
    romanised: bool = False,
    download: bool = False,
) -> Path:
    """Write a picture of ``dataset`` to ``out``, in the format its extension names.

    A row per class: the modern character (with ``font``, or a Japanese font
    fontconfig finds; its romanised name when there is none, or with
    ``romanised=True``), then the first ``per_class`` images of that class.
    The test split is the default because it is the smaller download. The
    target is checked (:func:`check_target`) before the data is read, and the
    picture is written whole or not at all. Returns the path written.
    """
    check_count(per_class, "per_class", minimum=1)
    check_count(scale, "scale", minimum=1)
    # KMNIST, Kuzushiji-49 as well; an unknown name (or kkanji) is classmap's to refuse.
    dataset = canonical(dataset, DATASET_NAMES, DATASET_ALIASES) or dataset
    fmt = check_target(out)  # before loading 50 MB of arrays for nothing
    _check_layout(per_class, scale, len(classmap(dataset)))
    face = None if romanised else japanese_font(dataset, font, source="font")

    from .load import load

    images, labels = load(dataset, split, root=root, format=format, download=download)
    canvas = render(images, labels, dataset=dataset, per_class=per_class, scale=scale, font=face)
    out = Path(out)
    part = out.with_name(out.name + ".part")
    # A stale .part (or a link planted there) is removed, not written through:
    # O_EXCL makes a new file or fails, and never follows a link.
    part.unlink(missing_ok=True)
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as f:
            canvas.save(f, format=fmt)
        os.replace(part, out)  # a picture under the final name is always a whole one
    finally:
        part.unlink(missing_ok=True)
    return out
