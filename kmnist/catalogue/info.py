"""What a dataset is and how to credit it: counts, classes, size, licence, citation.

Fixed facts, so no network and no files are needed. The BibTeX and the
attribution line are the dataset authors' own, word for word, from the
README of github.com/rois-codh/kmnist ("Citing Kuzushiji-MNIST" and
"License"); TensorFlow Datasets prints the same BibTeX for its ``kmnist``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .manifest import DATASETS
from .names import dataset_name

LICENSE = "CC BY-SA 4.0"
LICENSE_URL = "https://creativecommons.org/licenses/by-sa/4.0/"
HOMEPAGE = "http://codh.rois.ac.jp/kmnist/index.html.en"
REPOSITORY = "https://github.com/rois-codh/kmnist"
PAPER = "https://arxiv.org/abs/1812.01718"

BIBTEX = """\
@online{clanuwat2018deep,
  author       = {Tarin Clanuwat and Mikel Bober-Irizar and Asanobu Kitamoto and Alex Lamb and Kazuaki Yamamoto and David Ha},
  title        = {Deep Learning for Classical Japanese Literature},
  date         = {2018-12-03},
  year         = {2018},
  eprintclass  = {cs.CV},
  eprinttype   = {arXiv},
  eprint       = {cs.CV/1812.01718},
}"""  # noqa: E501 (the authors' lines, unwrapped)

# CC BY-SA 4.0 requires attribution; the authors suggest this line (they give
# one, for "the KMNIST dataset", and it covers the family they publish).
ATTRIBUTION = (
    '"KMNIST Dataset" (created by CODH), adapted from "Kuzushiji Dataset" '
    "(created by NIJL and others), doi:10.20676/00000341"
)

# The authors' README: Kuzushiji-MNIST 60,000 / 10,000 (6k / 1k per class),
# Kuzushiji-49 232,365 / 38,547; the files of the 2019 release hold exactly
# these (tests/test_info.py counts the label files). Kuzushiji-Kanji has no
# published split, and its count is the authors' README's 140,426 (another
# source says 140,424; neither was checked against the archive here). The
# unpacked folder is checked against the archive's own index, not this figure.
_FIGURES: dict[str, tuple[int | None, int | None, int, int, int]] = {
    # dataset: (train, test, total, classes, side)
    "kmnist": (60_000, 10_000, 70_000, 10, 28),
    "k49": (232_365, 38_547, 270_912, 49, 28),
    "kkanji": (None, None, 140_426, 3_832, 64),
}


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset's facts, and the citation and attribution its authors ask for.

    Attributes:
        name: ``"kmnist"``, ``"k49"`` or ``"kkanji"``.
        title: its full name (``"Kuzushiji-MNIST"``).
        train: images in the train split; ``None`` where no split was published.
        test: images in the test split; ``None`` likewise.
        total: images in all.
        num_classes: how many classes.
        classes: the romanised class names in label order (torchvision's
            style, ``"o"``, ``"ki"``, ...); empty for Kuzushiji-Kanji, whose
            3,832 classes are the code points of the unpacked archive's folders.
        image_size: (height, width) of its grayscale images.
        license: the data's licence (CC BY-SA 4.0), with ``license_url``.
        homepage: the dataset's page; ``repository`` and ``paper`` likewise.
        bibtex: the BibTeX the authors ask for (what ``--cite`` prints).
        attribution: the attribution line the licence asks for.
    """

    name: str
    title: str
    train: int | None
    test: int | None
    total: int
    num_classes: int
    classes: tuple[str, ...]
    image_size: tuple[int, int]  # (height, width), grayscale
    license: str
    license_url: str
    homepage: str
    repository: str
    paper: str
    bibtex: str
    attribution: str


def info(dataset: str) -> DatasetInfo:
    """Facts about ``"kmnist"``, ``"k49"`` or ``"kkanji"``, and how to cite it.

    Reads nothing from disk or network: the figures are the published ones.

    Args:
        dataset: ``"kmnist"``, ``"k49"`` or ``"kkanji"``.

    Returns:
        A frozen [DatasetInfo][kmnist.catalogue.info.DatasetInfo].

    Raises:
        UnknownDataset: any other name.

    Examples:
        >>> k49 = kmnist.info("k49")
        >>> k49.train, k49.test, k49.num_classes, k49.image_size
        (232365, 38547, 49, (28, 28))
        >>> print(k49.bibtex.splitlines()[0])
        @online{clanuwat2018deep,
    """
    from .romaji import romaji

    dataset = dataset_name(dataset, tuple(_FIGURES))
    train, test, total, num_classes, side = _FIGURES[dataset]
    return DatasetInfo(
        name=dataset,
        title=DATASETS[dataset].title,
        train=train,
        test=test,
        total=total,
        num_classes=num_classes,
        classes=romaji(dataset) if dataset != "kkanji" else (),
        image_size=(side, side),
        license=LICENSE,
        license_url=LICENSE_URL,
        homepage=HOMEPAGE,
        repository=REPOSITORY,
        paper=PAPER,
        bibtex=BIBTEX,
        attribution=ATTRIBUTION,
    )


def citation() -> str:
    """The BibTeX, then the attribution line as a BibTeX comment: a valid ``.bib`` file."""
    return f"{BIBTEX}\n\n% Attribution ({LICENSE}, as the authors suggest):\n% {ATTRIBUTION}"
