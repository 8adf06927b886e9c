"""The romanised name of each class: what a label reads as without a Japanese font.

Modified Hepburn, as torchvision's ``KMNIST.classes`` spells the ten kana of
Kuzushiji-MNIST (``o, ki, su, tsu, na, ha, ma, ya, re, wo``). The table is keyed
by the character, so each dataset's names are derived from its class map
(:mod:`kmnist.classmap`) and can never be listed in another order than its labels.
"""

from __future__ import annotations

from .classmap import classmap

# Every kana of Kuzushiji-49 (Kuzushiji-MNIST's ten are among them). ゐ and ゑ,
# obsolete today, keep their historical readings "wi" and "we" so that no two
# classes share a name (they are read "i" and "e" now, like い and え); を is
# "wo" as in torchvision. ゝ is no syllable but the mark that repeats the one
# before it; its Japanese name, "odoriji", is what a reader calls it.
ROMAJI: dict[str, str] = {
    "あ": "a", "い": "i", "う": "u", "え": "e", "お": "o",
    "か": "ka", "き": "ki", "く": "ku", "け": "ke", "こ": "ko",
    "さ": "sa", "し": "shi", "す": "su", "せ": "se", "そ": "so",
    "た": "ta", "ち": "chi", "つ": "tsu", "て": "te", "と": "to",
    "な": "na", "に": "ni", "ぬ": "nu", "ね": "ne", "の": "no",
    "は": "ha", "ひ": "hi", "ふ": "fu", "へ": "he", "ほ": "ho",
    "ま": "ma", "み": "mi", "む": "mu", "め": "me", "も": "mo",
    "や": "ya", "ゆ": "yu", "よ": "yo",
    "ら": "ra", "り": "ri", "る": "ru", "れ": "re", "ろ": "ro",
    "わ": "wa", "ゐ": "wi", "ゑ": "we", "を": "wo",
    "ん": "n", "ゝ": "odoriji",
}  # fmt: skip


def romaji(dataset: str) -> tuple[str, ...]:
    """The romanised class names of ``dataset`` (``"kmnist"`` or ``"k49"``), in label order.

    ``romaji("kmnist")[y]`` names label ``y``. Unknown datasets (and
    Kuzushiji-Kanji, whose 3,832 classes are folders) raise what
    :func:`kmnist.catalogue.classmap.classmap` raises.
    """
    return tuple(ROMAJI[c.char] for c in classmap(dataset))
