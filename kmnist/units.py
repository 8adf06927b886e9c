"""Sizes as people read them, in one unit system: binary (KiB, MiB), as ``du -h`` and ``df -h``.

The plan, the summary, ``--list``, the questions and the progress bars all
print sizes and speeds through :func:`size`, so that a figure on one screen
can be compared with another. Standard library only.
"""

from __future__ import annotations


def size(n: float | None) -> str:
    """Human size in binary units: ``3.0 MiB``; ``?`` when unknown."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
