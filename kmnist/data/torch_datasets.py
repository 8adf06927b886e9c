"""The dataset classes behind :mod:`kmnist.datasets`; importing this module imports torch.

They follow torchvision's ``MNIST`` (``torchvision/datasets/mnist.py``) and
``VisionDataset``: the same constructor, attributes, items and repr. The
bytes come from this package's loaders (:func:`kmnist.load`,
:func:`kmnist.load_kanji`), so they are checked against the published
checksums, and from its downloader, so ``mirrors=`` works where
torchvision's single host does not.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..catalogue.manifest import Mirror, check_mirrors
from ..catalogue.romaji import romaji
from ..errors import DatasetNotFound, KmnistError, NotDownloaded, VerificationError, unreadable
from ..formats import system_error
from ..inputs import (
    check_callable,
    check_flag,
    check_folder,
    check_folder_exists,
    check_index,
    download_command,
)
from ..storage.root import data_root
from .kanji import SIDE as KANJI_SIDE

Transform = Optional[Callable[[Any], Any]]
Mirrors = Optional[Sequence["str | Mirror"]]

# Where torchvision's own datasets keep the files below the same root: a
# folder it filled is read as it is (it keeps the .gz files beside what it
# unpacks), so switching from torchvision needs no second download.
TORCHVISION_FOLDERS = {"kmnist": "KMNIST"}
# torchvision's words, so that code matching them keeps working.
NOT_FOUND = "Dataset not found. You can use download=True to download it"


def _as_given(mirrors: Sequence[str | Mirror]) -> Sequence[str | Mirror]:
    """``mirrors`` checked (:func:`check_mirrors`), passed on as given when a list or tuple."""
    checked = check_mirrors(mirrors)
    return mirrors if isinstance(mirrors, (list, tuple)) else checked or ()


class StandardTransform:
    """``transform`` and ``target_transform`` together, printed as torchvision prints them."""

    def __init__(self, transform: Transform = None, target_transform: Transform = None) -> None:
        self.transform = transform
        self.target_transform = target_transform

    def __call__(self, image: Any, target: Any) -> tuple[Any, Any]:
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __repr__(self) -> str:
        body = [type(self).__name__]
        heads = ("Transform: ", "Target transform: ")
        for head, t in zip(heads, (self.transform, self.target_transform)):
            if t is not None:
                lines = repr(t).splitlines()
                body += [head + lines[0]] + [" " * len(head) + line for line in lines[1:]]
        return "\n".join(body)


class _Vision(Dataset[tuple[Any, Any]]):
    """What torchvision's ``VisionDataset`` does: root, transforms, repr."""

    _repr_indent = 4
    classes: list[str]

    def __init__(self, root: str | Path | None, transform: Transform, target_transform: Transform):
        if root is not None:
            check_folder(root, "root")  # named "root", not --dir, in the message
        # As torchvision: a string root may start with "~". None: $KMNIST_DATA, else ./data.
        self.root = data_root(os.path.expanduser(root) if isinstance(root, str) else root)
        check_folder_exists(self.root, "root")
        # Here rather than at the first item: "'int' object is not callable"
        # from inside a DataLoader worker named neither argument.
        check_callable(transform, "transform")
        check_callable(target_transform, "target_transform")
        self.transform = transform
        self.target_transform = target_transform
        self.transforms: StandardTransform | None = None
        if transform is not None or target_transform is not None:
            self.transforms = StandardTransform(transform, target_transform)
        self.train = True
        self.targets = torch.empty(0, dtype=torch.int64)

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    def _image(self, index: int) -> Image.Image:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """``(image, target)``: a PIL image of mode "L" and the class index, transformed."""
        # One integer, from the end when negative: a slice, a list or a bool
        # gave PIL's "Cannot handle this data type", 10**20 an overflow.
        index = check_index(index, len(self), f"{type(self).__name__} index")
        image: Any = self._image(index)
        target: Any = int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __len__(self) -> int:
        return len(self.targets)

    def extra_repr(self) -> str:
        return f"Split: {'Train' if self.train else 'Test'}"

    def __repr__(self) -> str:
        body = [f"Number of datapoints: {len(self)}", f"Root location: {self.root}"]
        body += self.extra_repr().splitlines()
        if self.transforms is not None:
            body += [repr(self.transforms)]
        lines = [f"Dataset {type(self).__name__}"] + [" " * self._repr_indent + b for b in body]
        return "\n".join(lines)


class _Arrays(_Vision):
    """KMNIST and K49: all images in memory, as torchvision's MNIST has them."""

    name: ClassVar[str]  # this package's name of the dataset

    def __init__(
        self,
        root: str | Path | None = None,
        train: bool = True,
        transform: Transform = None,
        target_transform: Transform = None,
        download: bool = False,
        *,
        mirrors: Mirrors = None,
        format: str | None = None,
        verify: bool = True,
        progress: bool = True,
    ) -> None:
        super().__init__(root, transform, target_transform)
        # train="test" or "false" is true: the training split, without a word.
        self.train = check_flag(train, "train")
        if mirrors is not None:
            mirrors = _as_given(mirrors)
        images, labels = _arrays(
            self.name,
            "train" if self.train else "test",
            root=self.root,
            format=format,
            download=download,
            mirrors=mirrors,
            verify=verify,
            progress=progress,
        )
        self.data = torch.from_numpy(images)  # uint8, N x 28 x 28
        self.targets = torch.from_numpy(labels.astype(np.int64))

    def _image(self, index: int) -> Image.Image:
        return Image.fromarray(self.data[index].numpy())


def _arrays(
    dataset: str,
    split: str,
    *,
    root: Path,
    format: str | None,
    download: bool,
    mirrors: Mirrors,
    verify: bool,
    progress: bool,
) -> tuple[Any, Any]:
    """The arrays from disk; with ``download``, fetched first when missing or not verified."""
    from ..downloader import download as fetch
    from .load import load

    try:
        return load(dataset, split, root=root, format=format, verify=verify)
    except NotDownloaded as exc:
        raw = root / TORCHVISION_FOLDERS.get(dataset, "") / "raw"
        if dataset in TORCHVISION_FOLDERS and format in (None, "mnist") and raw.is_dir():
            try:
                return load(dataset, split, root=raw, format="mnist", verify=verify)
            except NotDownloaded:
                pass
        if not download:
            # load's own advice already says "pass download=True": once is enough.
            detail = str(exc).replace("; pass download=True or run:", "; or run:")
            raise DatasetNotFound(f"{NOT_FOUND} ({detail})") from None
    except VerificationError:
        if not download:
            raise
    # The plan skips what is verified and replaces what is not.
    fetch(dataset, format=format, split=split, root=root, mirrors=mirrors, progress=progress)
    return load(dataset, split, root=root, format=format, verify=False)


class KMNIST(_Arrays):
    """Kuzushiji-MNIST: 10 classes of 28 x 28 images, 60,000 to train and 10,000 to test.

    Built as torchvision's ``KMNIST``: the same constructor, ``data`` (a
    ``uint8`` tensor, N x 28 x 28), ``targets`` (``int64``), ``classes``,
    ``class_to_idx``, items as ``(PIL image of mode "L", int)`` with the
    transforms applied. The files come through this package: checked against
    the published checksums, from any mirror. A ``root/KMNIST/raw`` that
    torchvision filled is read too, when ``root/kmnist`` lacks the files.

    Args:
        root: the data folder; the files are read from ``root/kmnist/``.
            ``None``: ``$KMNIST_DATA``, else ``data``.
        train: the train split, else the test split.
        transform: applied to each image.
        target_transform: applied to each label.
        download: fetch the files when missing (or not the published bytes).
        mirrors: where from (``None``: ``$KMNIST_MIRROR`` or the built-in list).
        format: ``"npz"`` or ``"mnist"``; ``None``: whichever is there, NumPy first.
        verify: check the published checksums before decoding, as
            [kmnist.load][kmnist.data.load.load] does.
        progress: show a progress bar while downloading.

    Raises:
        DatasetNotFound: files missing and ``download`` false: a
            ``RuntimeError`` with torchvision's message, and a
            [NotDownloaded][kmnist.errors.NotDownloaded].
        VerificationError: files there but not the published bytes.
        MissingDependency: PyTorch or Pillow is not installed.
        TypeError: an argument of the wrong type (``train="test"``, a
            transform that is not callable, ``mirrors`` as one string), or
            an item asked for by anything but one integer; IndexError: an
            item past either end.

    Examples:
        >>> from kmnist.datasets import KMNIST
        >>> test_set = KMNIST("data", train=False, download=True, progress=False)
        >>> len(test_set), test_set.classes[:3]
        (10000, ['o', 'ki', 'su'])
    """

    name = "kmnist"
    # A list on the class, as torchvision has it: KMNIST.classes needs no files.
    classes = list(romaji("kmnist"))  # noqa: RUF012


class K49(_Arrays):
    """Kuzushiji-49: 49 classes of 28 x 28 images, 232,365 to train and 38,547 to test.

    Arguments, attributes and errors as [KMNIST][kmnist.data.torch_datasets.KMNIST]'s;
    the files are read from ``root/k49/`` (NumPy format only). ``classes``
    are romanised by this package (torchvision has no K49): ``a``, ``i``,
    ``u``, ... ``wi``, ``we``, ``wo``, ``n`` and ``odoriji`` for the
    iteration mark.
    """

    name = "k49"
    classes = list(romaji("k49"))  # noqa: RUF012


class KuzushijiKanji(_Vision):
    """Kuzushiji-Kanji: 3,832 classes of 64 x 64 images, read from disk one at a time.

    The labels are the class folders: ``classes[i]`` is ``"U+XXXX"``, sorted
    by code point, the same list for both splits, and ``characters[i]`` its
    character. ``samples`` lists ``(path, label)`` as torchvision's
    ``ImageFolder`` does; ``data`` decodes every image of the split on first
    use (the whole archive is 575 MB of pixels). The split is this package's
    own, since the authors published none: see
    [kanji_split][kmnist.data.kanjisplit.kanji_split].

    Args:
        root: the data folder; the unpacked archive is ``root/kkanji/kkanji2``.
            ``None``: ``$KMNIST_DATA``, else ``data``.
        train: the train split, else the test split.
        transform: applied to each image (PIL, mode "L").
        target_transform: applied to each label.
        download: fetch the archive and unpack it when the folder is missing.
        mirrors: where from (``None``: ``$KMNIST_MIRROR`` or the built-in list).
        progress: show a progress bar while downloading.

    Raises:
        DatasetNotFound: the folder is missing and ``download`` is false.
        UnsafeArchive: the archive holds a member that may not be unpacked.
        MissingDependency: PyTorch or Pillow is not installed.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        train: bool = True,
        transform: Transform = None,
        target_transform: Transform = None,
        download: bool = False,
        *,
        mirrors: Mirrors = None,
        progress: bool = True,
    ) -> None:
        from .kanji import load_kanji
        from .kanjisplit import kanji_split

        super().__init__(root, transform, target_transform)
        self.train = check_flag(train, "train")
        if mirrors is not None:
            mirrors = _as_given(mirrors)
        _unpacked(self.root, download=download, mirrors=mirrors, progress=progress)
        self._index = load_kanji(root=self.root)
        self._chosen = kanji_split(self._index, train=self.train)
        self.samples = [(self._index.paths[i], self._index.labels[i]) for i in self._chosen]
        self.targets = torch.tensor([label for _, label in self.samples], dtype=torch.int64)
        self.classes = [c.codepoint for c in self._index.classes]
        self.characters = [c.char for c in self._index.classes]

    @functools.cached_property
    def data(self) -> torch.Tensor:
        """Every image of the split, uint8 N x 64 x 64 (decoded on first use, then kept)."""
        from .load import kanji_arrays

        images, _ = kanji_arrays(self._index, indices=self._chosen)
        return torch.from_numpy(images)

    def _image(self, index: int) -> Image.Image:
        path = self.samples[index][0]
        try:
            with Image.open(path) as im:
                # The size from the header, before a pixel is decoded: a PNG
                # that claims 10,000 x 10,000 is refused without 100 MB for it.
                if im.size != (KANJI_SIDE, KANJI_SIDE):
                    got = "x".join(map(str, im.size))
                    raise VerificationError(
                        str(path), "disk", "structure", f"{KANJI_SIDE}x{KANJI_SIDE}", got
                    )
                return im.convert("L")
        # PIL.UnidentifiedImageError is an OSError. DecompressionBombError is
        # a header that claims more pixels than Pillow agrees to decode, its
        # Warning the same below twice as many, raised where warnings are errors.
        except (OSError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            if system_error(exc):  # not the PNG's bytes: this user may not read them
                raise unreadable(path, exc) from exc
            raise VerificationError(
                str(path), "disk", "structure", "a PNG image", f"{type(exc).__name__}: {exc}"
            ) from None


def _unpacked(root: Path, *, download: bool, mirrors: Mirrors, progress: bool) -> None:
    """Make sure the unpacked Kanji folder is there: fetch and unpack it if asked to."""
    from ..downloader import download as fetch
    from .kanji import extract_kanji, kanji_paths

    _, folder = kanji_paths(root)
    if folder.is_dir():
        return
    if not download:
        raise DatasetNotFound(
            f"{NOT_FOUND} (no unpacked Kanji folder at {folder}; or run: "
            f"{download_command('--dataset', 'kkanji', '--extract', root=root)})"
        )
    fetch("kkanji", root=root, mirrors=mirrors, progress=progress)
    check = extract_kanji(root=root)
    if not check.ok:
        # The archive's bytes were verified and the folder is checked against
        # the archive's own index (not a published count): a difference here
        # is real damage, named file by file in the summary.
        raise KmnistError(f"the unpacked Kanji folder is not right: {check.summary()}")
