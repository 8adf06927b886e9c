"""A picture of a dataset: one row of sample images per class, labelled.

Like the figure in the dataset's own README. Pillow is an optional extra
(``pip install 'kmnist[preview]'``), imported only when a picture is made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from .classmap import classmap
from .errors import MissingDependency

CELL = 28  # KMNIST and K49 images are 28 x 28
GAP = 2  # pixels between cells, so that neighbouring strokes do not merge
# Wide enough for "48 U+309D" in Pillow's built-in font (about 6 px a character)
# with a margin; fixed, so the picture's size never depends on a font.
LABEL_WIDTH = 80
BACKGROUND = 0  # black, like the images' own background
INK = 255


def import_pillow(purpose: str) -> ModuleType:
    """``PIL.Image``, or a :class:`MissingDependency` that says how to install it."""
    try:
        from PIL import Image
    except ImportError:
        raise MissingDependency(
            f"{purpose} needs Pillow, which is not installed: "
            "pip install 'kmnist[preview]' (or pip install pillow)"
        ) from None
    return Image


@dataclass(frozen=True)
class Layout:
    """Where things go in the picture: ``rows`` classes of ``per_class`` cells each."""

    rows: int
    per_class: int
    scale: int = 2

    @property
    def cell(self) -> int:
        return CELL * self.scale

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        width = LABEL_WIDTH + self.per_class * (self.cell + GAP) + GAP
        return width, self.rows * (self.cell + GAP) + GAP

    def origin(self, row: int, col: int) -> tuple[int, int]:
        return LABEL_WIDTH + GAP + col * (self.cell + GAP), GAP + row * (self.cell + GAP)


def preview(
    dataset: str = "kmnist",
    *,
    out: str | Path,
    root: str | Path | None = None,
    split: str = "test",
    format: str | None = None,
    per_class: int = 10,
    scale: int = 2,
    download: bool = False,
) -> Path:
    """Write a PNG to ``out`` with the first ``per_class`` images of each class in a row.

    Each row is labelled with the class index and code point (the characters
    themselves would need a Japanese font, which Pillow does not ship). The
    test split is the default because it is the smaller download. Returns
    the path written.
    """
    if per_class < 1 or scale < 1:
        raise ValueError("per_class and scale must be at least 1")
    image_mod = import_pillow("the preview")  # before loading 50 MB of arrays for nothing
    from PIL import ImageDraw, ImageFont

    from .load import load

    classes = classmap(dataset)
    images, labels = load(dataset, split, root=root, format=format, download=download)
    picks: list[list[int]] = [[] for _ in classes]
    for i, y in enumerate(labels.tolist()):
        if len(picks[y]) < per_class:
            picks[y].append(i)

    layout = Layout(len(classes), per_class, scale)
    canvas = image_mod.new("L", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for row, c in enumerate(classes):
        _, y = layout.origin(row, 0)
        draw.text(
            (GAP + 2, y + layout.cell // 2 - 6), f"{c.index:>2} {c.codepoint}", fill=INK, font=font
        )
        for col, i in enumerate(picks[row]):
            tile = image_mod.frombytes("L", (CELL, CELL), images[i].tobytes())
            tile = tile.resize((layout.cell, layout.cell), image_mod.NEAREST)
            canvas.paste(tile, layout.origin(row, col))

    out = Path(out)
    part = out.with_name(out.name + ".part")
    canvas.save(part, format="PNG")
    os.replace(part, out)  # a picture under the final name is always a whole one
    return out
