"""This package's train/test split of Kuzushiji-Kanji (the authors never published one).

The rule, stable across machines, file systems and Python versions because
it depends only on the file names: within each class folder, order the
files by the SHA-256 of ``"U+XXXX/<file name>"`` (UTF-8; a name that is not
UTF-8 by its bytes on disk); the first ``n // 5`` of a class of ``n`` are the
test split, the rest the training split. So every class with five or more
images has a fifth of them (rounded down) in test, and the rare classes, with
fewer than five, are in training only.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .kanji import KanjiIndex

# One in five to test: the 6:1 of KMNIST would leave even fewer rare classes
# in test, and 5 is the split most low-shot benchmarks use (80/20).
TEST_EVERY = 5


def split_key(path: Path) -> bytes:
    """The sort key of one image: the SHA-256 of its class folder and name."""
    return hashlib.sha256(_name_bytes(f"{path.parent.name}/{path.name}")).digest()


def _name_bytes(name: str) -> bytes:
    """``name`` in UTF-8; a name that is not UTF-8 on disk gives its bytes on disk.

    Python reads such a name (``\xff.png`` from a tar made elsewhere) with
    lone surrogates, which plain UTF-8 refuses to encode; surrogateescape
    gives the original bytes back. Not ``os.fsencode``, which uses the
    locale's encoding: the key is the name's UTF-8 whatever the locale, so
    the split of ordinary names stays where it was.
    """
    try:
        return name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no byte decodes to: only made by hand
        return name.encode("utf-8", "surrogatepass")


def kanji_split(index: KanjiIndex, *, train: bool) -> list[int]:
    """Indices into ``index.paths`` of the training or the test split, in order.

    ``kmnist.kanji_arrays(index, indices=kanji_split(index, train=False))``
    decodes the test split without PyTorch.
    """
    from ..inputs import check_flag
    from .kanji import KanjiIndex

    if not isinstance(index, KanjiIndex):
        raise TypeError(
            "index must be a kmnist.KanjiIndex (from kmnist.load_kanji), "
            f"not {type(index).__name__}"
        )
    # train="test" was true: the training split, without a word.
    train = check_flag(train, "train")
    paths = index.paths
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(index.labels):
        by_class[label].append(i)
    test: set[int] = set()
    for members in by_class.values():
        ranked = sorted(members, key=lambda i: split_key(paths[i]))
        test.update(ranked[: len(ranked) // TEST_EVERY])
    return [i for i in range(len(paths)) if (i in test) != train]
