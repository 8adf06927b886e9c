"""The catalogue's names as plain strings: the datasets, formats, splits and releases.

Apart from :mod:`kmnist.catalogue.manifest` (whose frozen dataclasses cost
the dataclasses module and its imports) so that ``kmnist-download --help``
shows the choices without loading the catalogue. The manifest takes its
names from here; tests/test_architecture.py checks that its datasets and
formats are these.
"""

from __future__ import annotations

CURRENT_RELEASE = "2019"
RELEASES = ("2019", "2018")
SPLITS = ("train", "test", "all")
DATASET_NAMES = ("kmnist", "k49", "kkanji")  # the catalogue's order
FORMAT_NAMES = ("mnist", "npz", "tar")  # sorted
# Mirrors from the environment: whitespace-separated, replacing the built-in list.
MIRROR_ENV = "KMNIST_MIRROR"

# The names other libraries and the paper give the datasets, accepted as
# ours: torchvision's KMNIST, TFDS's kmnist, the paper's Kuzushiji-MNIST,
# Kuzushiji-49 and Kuzushiji-Kanji (any case, with or without "-", "_" or a
# space; see fold).
DATASET_ALIASES = {
    "kuzushijimnist": "kmnist",
    "kuzushiji49": "k49",
    "kuzushijikanji": "kkanji",
    "kanji": "kkanji",
}
# difflib's default: close enough for one swapped or missing letter
# ("kmnsit", "k94", "tset"), not for an unrelated word.
CUTOFF = 0.6


def fold(text: str) -> str:
    """``text`` as names are compared: lower case, without "-", "_" or spaces."""
    return "".join(c for c in text.strip().lower() if c not in "-_ ")


def canonical(
    text: object, names: tuple[str, ...], aliases: dict[str, str] | None = None
) -> str | None:
    """The one of ``names`` that ``text`` names (in any case, or by an alias), or None."""
    if not isinstance(text, str):
        return None
    folded = fold(text)
    for name in names:
        if fold(name) == folded:
            return name
    target = (aliases or {}).get(folded)
    return target if target in names else None


def closest(
    text: object, names: tuple[str, ...], aliases: dict[str, str] | None = None
) -> str | None:
    """The one of ``names`` that ``text`` most likely misspells, or None."""
    if not isinstance(text, str):
        return None
    import difflib  # only when something was mistyped: --help stays fast

    spelled = {fold(n): n for n in names}
    spelled.update((k, v) for k, v in (aliases or {}).items() if v in names)
    found = difflib.get_close_matches(fold(text), list(spelled), n=1, cutoff=CUTOFF)
    return spelled[found[0]] if found else None


def unknown(
    what: str, text: object, names: tuple[str, ...], aliases: dict[str, str] | None = None
) -> str:
    """The line for a name that is none of ``names``: a guess when there is one, and the choices."""
    guess = closest(text, names, aliases)
    hint = f"; did you mean {guess!r}?" if guess else ""
    return f"unknown {what} {text!r}{hint} (choose from {', '.join(names)})"


def dataset_name(text: object, accepted: tuple[str, ...]) -> str:
    """``text`` as one of ``accepted`` (the datasets the caller can take), or UnknownDataset.

    The message lists only ``accepted``: what the caller takes, not the catalogue.
    """
    found = canonical(text, accepted, DATASET_ALIASES)
    if found is None:
        from ..errors import UnknownDataset

        raise UnknownDataset(unknown("dataset", text, accepted, DATASET_ALIASES))
    return found
