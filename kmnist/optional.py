"""The optional extras (Pillow, PyTorch), imported when first needed, with one clear error.

A module of its own because the loaders, the preview, the PyTorch datasets and
the CNN baseline all need them, and none of those should import another just
for this.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependency


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


def import_torch(purpose: str) -> ModuleType:
    """``torch``, or a :class:`MissingDependency` that says how to install it.

    Imported by name, not by an import statement, so that mypy checks this
    package the same way whether or not PyTorch is installed.
    """
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise MissingDependency(
            f"{purpose} needs PyTorch, which is not installed: pip install torch"
        ) from None


__all__ = ["import_pillow", "import_torch"]
