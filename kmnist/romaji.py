"""Romanised names of the kana classes, as torchvision names KMNIST's.

torchvision's ``KMNIST.classes`` is ``["o", "ki", "su", "tsu", "na", "ha",
"ma", "ya", "re", "wo"]``: Hepburn, with を as "wo". Nobody publishes such
names for K49, so they are derived here from the class map's characters by
the same rules. Two choices keep every name unique, as ``class_to_idx``
needs: the obsolete ゐ and ゑ are "wi" and "we" (not "i" and "e", which い
and え already are), and ゝ, the one class that is not a syllable, is
"iteration mark" (the authors' own words for it).
"""

from __future__ import annotations

from .classmap import classmap

_ROWS = (
    ("あいうえお", ("a", "i", "u", "e", "o")),
    ("かきくけこ", ("ka", "ki", "ku", "ke", "ko")),
    ("さしすせそ", ("sa", "shi", "su", "se", "so")),
    ("たちつてと", ("ta", "chi", "tsu", "te", "to")),
    ("なにぬねの", ("na", "ni", "nu", "ne", "no")),
    ("はひふへほ", ("ha", "hi", "fu", "he", "ho")),
    ("まみむめも", ("ma", "mi", "mu", "me", "mo")),
    ("やゆよ", ("ya", "yu", "yo")),
    ("らりるれろ", ("ra", "ri", "ru", "re", "ro")),
    ("わゐゑを", ("wa", "wi", "we", "wo")),
    ("んゝ", ("n", "iteration mark")),
)

ROMAJI: dict[str, str] = {char: name for chars, names in _ROWS for char, name in zip(chars, names)}


def romanised(dataset: str) -> tuple[str, ...]:
    """The romanised class names of ``"kmnist"`` or ``"k49"``, in label order."""
    return tuple(ROMAJI[c.char] for c in classmap(dataset))
