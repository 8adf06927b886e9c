"""PyTorch datasets of Kuzushiji-MNIST, Kuzushiji-49 and Kuzushiji-Kanji, as torchvision's.

``from kmnist.datasets import KMNIST`` then ``KMNIST(root, train=False,
download=True)``: the constructor, ``.data``, ``.targets``, ``.classes``,
``class_to_idx``, items as ``(PIL image of mode "L", int)`` and the repr are
torchvision's; the files come through this package (any mirror,
``mirrors=``, verified) and live in its layout (``root/kmnist/...``).

PyTorch is an optional extra. This module is cheap to import: torch (and
Pillow, NumPy) are imported when a dataset class is first looked up, by
:func:`__getattr__` (PEP 562), so that is where a missing torch is reported,
in one line that says what to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# DatasetNotFound lives with the other errors, so that the torch classes can
# raise it without importing this facade (which imports them).
from .errors import DatasetNotFound, MissingDependency

if TYPE_CHECKING:
    from .data.torch_datasets import K49, KMNIST, KuzushijiKanji

__all__ = ["K49", "KMNIST", "DatasetNotFound", "KuzushijiKanji"]

_CLASSES = ("KMNIST", "K49", "KuzushijiKanji")
INSTALL = "pip install 'kmnist[torch]' (or: pip install torch pillow)"


def __getattr__(name: str) -> Any:
    if name not in _CLASSES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for needed, what in (("torch", "PyTorch"), ("PIL", "Pillow")):
        try:
            __import__(needed)
        except ImportError:
            raise MissingDependency(
                f"kmnist.datasets.{name} needs {what}, which is not installed: {INSTALL}"
            ) from None
    from .data import torch_datasets

    value = getattr(torch_datasets, name)
    globals()[name] = value  # once found, an ordinary attribute
    return value
