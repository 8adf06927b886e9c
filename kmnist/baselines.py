"""The original paper's baselines, run on the files this package downloads.

Clanuwat et al. 2018 (arXiv:1812.01718) published, in the dataset's README,
a 4-nearest-neighbour baseline and a simple Keras CNN for Kuzushiji-MNIST
and Kuzushiji-49, with figures for each. :data:`REPORTED` holds those
figures; :func:`knn` and :func:`cnn` measure the same models here and return
a :class:`Score` that carries the published figure beside the measured one.
The models themselves are in :mod:`kmnist.knn` (NumPy only) and
:mod:`kmnist.cnn` (PyTorch, optional).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import UnknownDataset, UsageError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

SOURCE = "Clanuwat et al. 2018, arXiv:1812.01718 (benchmark table of rois-codh/kmnist)"

# "For MNIST and Kuzushiji-MNIST we use a standard accuracy metric, while
# Kuzushiji-49 is evaluated using balanced accuracy (so that all classes
# have equal weight)." K49's classes range from 392 to 6,000 training images.
METRIC: Mapping[str, str] = MappingProxyType({"kmnist": "accuracy", "k49": "balanced_accuracy"})


@dataclass(frozen=True)
class Reported:
    """One published figure: ``value`` (a fraction) of ``model`` on ``dataset``'s test set."""

    model: str  # "knn", "cnn", or the name of a model this package does not run
    name: str  # as the table names it
    dataset: str
    metric: str  # "accuracy" or "balanced_accuracy"
    value: float
    source: str = SOURCE


def _row(model: str, name: str, kmnist: float, k49: float) -> tuple[Reported, Reported]:
    return (
        Reported(model, name, "kmnist", METRIC["kmnist"], kmnist),
        Reported(model, name, "k49", METRIC["k49"], k49),
    )


# The table as published (its MNIST column left out: MNIST is not ours to load).
REPORTED: tuple[Reported, ...] = (
    *_row("knn", "4-Nearest Neighbour Baseline", 0.9156, 0.8601),
    *_row("cnn", "Keras Simple CNN Benchmark", 0.9512, 0.8925),
    *_row("preact-resnet18", "PreActResNet-18", 0.9782, 0.9664),
    *_row("preact-resnet18-input-mixup", "PreActResNet-18 + Input Mixup", 0.9841, 0.9704),
    *_row("preact-resnet18-manifold-mixup", "PreActResNet-18 + Manifold Mixup", 0.9883, 0.9733),
)


def reported(model: str, dataset: str) -> Reported | None:
    """The published figure of ``model`` on ``dataset``, if there is one."""
    return next((r for r in REPORTED if r.model == model and r.dataset == dataset), None)


@dataclass(frozen=True)
class Score:
    """A baseline measured here, beside what the paper reported for it."""

    dataset: str
    model: str
    n_train: int
    n_test: int
    accuracy: float
    balanced_accuracy: float
    seconds: float  # training and predicting, not loading the files
    reported: Reported | None
    metric: str  # the one the paper used for this dataset

    @property
    def measured(self) -> float:
        """The measured value in the paper's metric: what to hold against ``reported``."""
        return self.balanced_accuracy if self.metric == "balanced_accuracy" else self.accuracy

    def summary(self) -> str:
        """One line: model, dataset, both metrics, and the paper's figure."""
        paper = "none published"
        if self.reported is not None:
            paper = f"{self.reported.value:.2%} {self.metric.replace('_', ' ')}"
        return (
            f"{self.model} {self.dataset}: accuracy {self.accuracy:.2%}, "
            f"balanced accuracy {self.balanced_accuracy:.2%} "
            f"({self.n_train:,} train, {self.n_test:,} test, {self.seconds:.1f} s); "
            f"paper: {paper}"
        )


def accuracy(y_true: NDArray[Any], y_pred: NDArray[Any]) -> float:
    """The fraction of predictions that are right."""
    import numpy as np

    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(y_true == y_pred)) if len(y_true) else 0.0


def balanced_accuracy(y_true: NDArray[Any], y_pred: NDArray[Any]) -> float:
    """The mean, over the classes present in ``y_true``, of the fraction of each recognised.

    As scikit-learn's ``balanced_accuracy_score``: every class counts the same
    however many test images it has; a class that is only ever predicted,
    never true, has no recall and is left out.
    """
    import numpy as np

    y_true, y_pred = _pair(y_true, y_pred)
    if not len(y_true):
        return 0.0
    classes, inverse = np.unique(y_true, return_inverse=True)
    right = np.bincount(inverse, weights=(y_true == y_pred), minlength=len(classes))
    return float(np.mean(right / np.bincount(inverse, minlength=len(classes))))


def _pair(y_true: NDArray[Any], y_pred: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    import numpy as np

    t, p = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if t.shape != p.shape:
        raise ValueError(f"{len(t)} true labels but {len(p)} predictions")
    return t, p


def knn(
    dataset: str,
    *,
    root: str | Path | None = None,
    k: int = 4,
    download: bool = False,
    limit: int | None = None,
    progress: bool = False,
) -> Score:
    """The 4-nearest-neighbour baseline: distance-weighted votes on raw pixels.

    What the paper's script got from scikit-learn's
    ``KNeighborsClassifier(n_neighbors=4, weights="distance")``, computed
    with NumPy alone (:mod:`kmnist.knn`). ``limit`` takes the first N training
    and test images, for a quick run. ``progress`` shows a bar on stderr.
    """
    from . import knn as model

    _check(dataset, limit)
    train_x, train_y, test_x, test_y = _load(dataset, root, download, limit)
    if len(train_x) < k:
        raise UsageError(f"k={k} needs at least {k} training images, got {len(train_x)}")
    started = time.monotonic()
    bar = _bar(progress, len(train_x) * len(test_x), "distances", "k-NN")
    try:
        pred = model.predict(
            train_x, train_y, test_x, k=k, progress=None if bar is None else bar.update
        )
    finally:
        if bar is not None:
            bar.close()
    return _score("knn", dataset, train_x, test_y, pred, time.monotonic() - started)


def cnn(
    dataset: str,
    *,
    root: str | Path | None = None,
    epochs: int = 12,
    batch_size: int = 128,
    limit: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    download: bool = False,
    progress: bool = False,
) -> Score:
    """The "Keras Simple CNN Benchmark", in PyTorch (:mod:`kmnist.cnn`): 12 epochs by default.

    Needs PyTorch; without it, a :class:`~kmnist.preview.MissingDependency`
    before any data is read.
    """
    from . import cnn as model
    from .classmap import CLASSMAPS

    _check(dataset, limit)
    model.import_torch("the CNN baseline")  # fail before reading 200 MB, not after
    train_x, train_y, test_x, test_y = _load(dataset, root, download, limit)
    started = time.monotonic()
    bar = _bar(progress, epochs * len(train_x), "img", "CNN")
    try:
        fit = model.fit_predict(
            train_x,
            train_y,
            test_x,
            classes=len(CLASSMAPS[dataset]),
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            device=device,
            progress=None if bar is None else bar.update,
        )
    finally:
        if bar is not None:
            bar.close()
    return _score("cnn", dataset, train_x, test_y, fit.predictions, time.monotonic() - started)


def _check(dataset: str, limit: int | None) -> None:
    if dataset not in METRIC:
        raise UnknownDataset(
            f"no baseline for dataset {dataset!r} (choose from {', '.join(METRIC)})"
        )
    if limit is not None and limit < 1:
        raise UsageError(f"limit must be at least 1, not {limit}")


def _load(
    dataset: str, root: str | Path | None, download: bool, limit: int | None
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8]]:
    from .load import load

    train_x, train_y = load(dataset, "train", root=root, download=download)
    test_x, test_y = load(dataset, "test", root=root, download=download)
    return train_x[:limit], train_y[:limit], test_x[:limit], test_y[:limit]


def _bar(show: bool, total: int, unit: str, desc: str) -> Any:
    """A tqdm bar on stderr (hidden when stderr is not a terminal), or None."""
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=f" {unit}", unit_scale=True, desc=desc, disable=None)


def _score(
    model: str,
    dataset: str,
    train_x: NDArray[np.uint8],
    test_y: NDArray[np.uint8],
    pred: NDArray[np.int64],
    seconds: float,
) -> Score:
    return Score(
        dataset=dataset,
        model=model,
        n_train=len(train_x),
        n_test=len(test_y),
        accuracy=accuracy(test_y, pred),
        balanced_accuracy=balanced_accuracy(test_y, pred),
        seconds=seconds,
        reported=reported(model, dataset),
        metric=METRIC[dataset],
    )
