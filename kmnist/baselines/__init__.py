"""The original paper's baselines, run on the files this package downloads.

Clanuwat et al. 2018 (arXiv:1812.01718) published, in the dataset's README,
a 4-nearest-neighbour baseline and a simple Keras CNN for Kuzushiji-MNIST
and Kuzushiji-49, and published them again after each re-release of the data
(:mod:`kmnist.baselines.published` holds them all, by release). :func:`knn` and
:func:`cnn` measure the same models here and return a :class:`Score`: the
measured figures, a :class:`Comparison` with the figure of the same release
that says whether the two can be held against each other, and what it takes
to repeat the run (settings, library versions, the input files' sha256).
The models themselves are in :mod:`kmnist.baselines.knn_model` (NumPy only) and
:mod:`kmnist.baselines.cnn_model` (PyTorch, optional).
"""

from __future__ import annotations

import contextlib
import enum
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalogue.names import dataset_name
from ..errors import NotDownloaded, UsageError
from . import provenance
from .published import CURRENT, METRIC, REPORTED, Release, Reported, reported

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from ..catalogue.manifest import Entry

__all__ = [
    "HOLDOUT",
    "METRIC",
    "REPORTED",
    "Comparison",
    "MissingInputs",
    "Protocol",
    "Release",
    "Reported",
    "Score",
    "Verdict",
    "accuracy",
    "balanced_accuracy",
    "cnn",
    "compare",
    "knn",
    "reported",
]

# Test images scored when a run uses the test split alone: the last 2,000 of
# KMNIST's 10,000 (its labels are in no order, so the last 2,000 hold every
# class about equally), the first 8,000 to learn from.
HOLDOUT = 2000

# PyTorch's threads, at most: more than any machine's cores. torch.set_num_threads
# crashed the process (SIGSEGV) at 100,000 and overflowed past 2**31.
MAX_THREADS = 1024

# The settings the published figures were measured with: another k or another
# training length is another model, not comparable with them.
PUBLISHED_SETTINGS: Mapping[str, Mapping[str, object]] = {
    "knn": {"k": 4},
    "cnn": {"epochs": 12, "batch_size": 128},
}


class Protocol(enum.Enum):
    """Which images a run learns from and which it scores."""

    PUBLISHED = "published split"  # the whole training split, then the whole test split
    SUBSET = "subset"  # the first N of each split
    TEST_SPLIT_ONLY = "test split only"  # part of the test split, then the rest of it


class Verdict(enum.Enum):
    """Whether a measured figure can be held against a published one."""

    COMPARABLE = "comparable"
    NOT_COMPARABLE = "not comparable"
    NONE_PUBLISHED = "none published"


@dataclass(frozen=True)
class Comparison:
    """A measured figure beside the one published for the same model, dataset and release."""

    verdict: Verdict
    published: Reported | None  # of the same release, whatever the verdict
    difference: float | None  # measured minus published, when comparable
    reasons: tuple[str, ...] = ()  # why not comparable (or why there is nothing to compare)


class MissingInputs(NotDownloaded):
    """A split's files are not in the folder: which dataset and split, and which paths."""

    def __init__(
        self, message: str, *, dataset: str, split: str, root: Path, missing: Sequence[Path]
    ):
        super().__init__(message)
        self.dataset = dataset
        self.split = split
        self.root = root
        self.missing = tuple(missing)


@dataclass(frozen=True)
class Score:
    """A baseline measured here, beside what was published for it, and how to run it again."""

    dataset: str
    model: str
    n_train: int
    n_test: int
    accuracy: float
    balanced_accuracy: float
    seconds: float  # training and predicting, not loading the files
    metric: str  # the one the paper used for this dataset
    comparison: Comparison
    protocol: Protocol = Protocol.PUBLISHED
    release: Release = CURRENT  # of the files measured on
    hyperparameters: Mapping[str, object] = field(default_factory=dict)
    seed: int | None = None  # None: the model has no randomness
    threads: int | None = None  # PyTorch's; None: not the figure's business (k-NN is exact)
    device: str = "cpu"
    versions: Mapping[str, str] = field(default_factory=dict)
    machine: Mapping[str, object] = field(default_factory=dict)
    inputs: Mapping[str, str] = field(default_factory=dict)  # sha256 by path below the data folder
    started: str = ""  # UTC, ISO 8601

    @property
    def measured(self) -> float:
        """The measured value in the paper's metric: what to hold against ``reported``."""
        return self.balanced_accuracy if self.metric == "balanced_accuracy" else self.accuracy

    @property
    def reported(self) -> Reported | None:
        """The figure published for this model and dataset on the same release, if any."""
        return self.comparison.published

    def summary(self) -> str:
        """Two lines: what was measured and how; then the published figure and the verdict."""
        where = ""
        if self.protocol is Protocol.TEST_SPLIT_ONLY:
            where = ", all from the test split"
        elif self.protocol is Protocol.SUBSET:
            where = ", the first of each split"
        settings = [f"{k}={v}" for k, v in self.hyperparameters.items() if k in ("k", "epochs")]
        if self.seed is not None:
            settings.append(f"seed {self.seed}")
        if self.threads is not None:
            settings.append(f"{self.threads} thread{'s' if self.threads != 1 else ''}")
        settings.append(self.device)
        label = f" ({self.protocol.value})" if self.protocol is not Protocol.PUBLISHED else ""
        first = (
            f"{self.model} {self.dataset}{label}: accuracy {self.accuracy:.2%}, "
            f"balanced accuracy {self.balanced_accuracy:.2%} "
            f"({self.n_train:,} train, {self.n_test:,} test{where}; {self.seconds:.1f} s; "
            f"{', '.join(settings)})"
        )
        return f"{first}\n{self._verdict_line()}"

    def _verdict_line(self) -> str:
        comparison = self.comparison
        published = comparison.published
        metric = self.metric.replace("_", " ")
        if published is None:
            return f"published: {'; '.join(comparison.reasons)}"
        figure = f"{published.value:.2%} {metric} on the {published.release.label}"
        if comparison.verdict is Verdict.COMPARABLE:
            assert comparison.difference is not None  # set for every comparable result
            return (
                f"published: {figure} ({published.source}); "
                f"difference {100 * comparison.difference:+.2f} points"
            )
        return f"not comparable with the published {figure}: {'; '.join(comparison.reasons)}"

    def as_json(self) -> dict[str, Any]:
        """Everything about the run as JSON-ready data: one object per run."""
        comparison = self.comparison
        published = None
        if comparison.published is not None:
            figure = comparison.published
            published = {
                "name": figure.name,
                "value": figure.value,
                "metric": figure.metric,
                "release": figure.release.value,
                "source": figure.source,
            }
        return {
            "model": self.model,
            "dataset": self.dataset,
            "release": self.release.value,
            "protocol": self.protocol.value,
            "metric": self.metric,
            "value": self.measured,
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "published": published,
            "difference": comparison.difference,
            "comparison": comparison.verdict.value,
            "comparison_reasons": list(comparison.reasons),
            "n_train": self.n_train,
            "n_test": self.n_test,
            "hyperparameters": dict(self.hyperparameters),
            "seed": self.seed,
            "threads": self.threads,
            "device": self.device,
            "versions": dict(self.versions),
            "machine": dict(self.machine),
            "inputs": dict(self.inputs),
            "seconds": self.seconds,
            "started": self.started,
        }


def compare(
    model: str,
    dataset: str,
    measured: float,
    *,
    protocol: Protocol,
    n_train: int,
    n_test: int,
    hyperparameters: Mapping[str, object],
    release: Release = CURRENT,
) -> Comparison:
    """Hold ``measured`` against the figure of the same release, or say why it cannot be."""
    published = reported(model, dataset, release)
    if published is None:
        why = f"none for {model} on {dataset} measured on the {release.label}"
        return Comparison(Verdict.NONE_PUBLISHED, None, None, (why,))
    reasons = []
    if protocol is Protocol.TEST_SPLIT_ONLY:
        reasons.append(
            f"not the paper's figure (learnt from {n_train:,} images of the test split and "
            f"scored its other {n_test:,}; the paper learns from the training split and "
            "scores the whole test split)"
        )
    elif protocol is Protocol.SUBSET:
        reasons.append(
            f"a subset ({n_train:,} training and {n_test:,} test images), "
            "not the whole splits the paper used"
        )
    for key, value in PUBLISHED_SETTINGS.get(model, {}).items():
        if key in hyperparameters and hyperparameters[key] != value:
            reasons.append(
                f"{key}={hyperparameters[key]}, where the published figure has {key}={value}"
            )
    if reasons:
        return Comparison(Verdict.NOT_COMPARABLE, published, None, tuple(reasons))
    return Comparison(Verdict.COMPARABLE, published, measured - published.value)


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
    holdout: int | None = None,
    progress: bool = False,
    catalogue: Sequence[Entry] | None = None,
) -> Score:
    """The 4-nearest-neighbour baseline: distance-weighted votes on raw pixels.

    What the paper's script got from scikit-learn's
    ``KNeighborsClassifier(n_neighbors=4, weights="distance")``, computed
    with NumPy alone (:mod:`kmnist.baselines.knn_model`). ``limit`` takes the first N training
    and test images, for a quick run. ``holdout`` uses the test split alone:
    it learns from its first images and scores its last ``holdout`` (not the
    paper's figure; the training split need not be on disk). ``progress``
    shows a bar on stderr. The predictions are exact, so they do not depend on
    the machine or its threads. ``catalogue``: the entries the files are looked
    up, checked and (with ``download``) fetched in (None: the manifest's).
    """
    from . import knn_model as model

    dataset = _check(dataset, limit, holdout)
    if k < 1:
        raise UsageError(f"k must be at least 1, not {k}")
    data = _data(dataset, _root(root), download, limit, holdout, catalogue)
    if data.n_train < k:
        raise UsageError(f"k={k} needs at least {k} training images, got {data.n_train}")
    started = provenance.utc_now()
    clock = time.monotonic()
    with _progress_bar(progress, data.n_train * len(data.test_x), "distances", "k-NN") as advance:
        pred = model.predict(data.train_x, data.train_y, data.test_x, k=k, progress=advance)
    return _score(
        "knn",
        dataset,
        data,
        pred,
        time.monotonic() - clock,
        hyperparameters={"k": k, "weights": "distance", "metric": "euclidean"},
        seed=None,
        threads=None,
        device="cpu",
        versions=provenance.versions("numpy"),
        started=started,
    )


def cnn(
    dataset: str,
    *,
    root: str | Path | None = None,
    epochs: int = 12,
    batch_size: int = 128,
    limit: int | None = None,
    holdout: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    threads: int | None = None,
    download: bool = False,
    progress: bool = False,
    catalogue: Sequence[Entry] | None = None,
) -> Score:
    """The "Keras Simple CNN Benchmark", in PyTorch (:mod:`.cnn_model`): 12 epochs by default.

    ``seed``, ``threads`` (PyTorch's intra-op threads; None: its default) and
    ``device`` make a run repeatable: the same three give the same figure on
    the same machine. ``limit``, ``holdout`` and ``catalogue`` as for :func:`knn`. Needs
    PyTorch; without it, a :class:`~kmnist.errors.MissingDependency` before any
    data is read, as is a device PyTorch cannot use.
    """
    from ..catalogue.classmap import CLASSMAPS
    from ..optional import import_torch
    from . import cnn_model as model

    dataset = _check(dataset, limit, holdout)
    if threads is not None and not 1 <= threads <= MAX_THREADS:
        raise UsageError(f"threads must be from 1 to {MAX_THREADS}, not {threads}")
    torch = import_torch("the CNN baseline")  # fail before reading 200 MB, not after
    model.resolve_device(torch, device)  # and before, a device it cannot use
    data = _data(dataset, _root(root), download, limit, holdout, catalogue)
    started = provenance.utc_now()
    clock = time.monotonic()
    with _progress_bar(progress, epochs * data.n_train, "img", "CNN") as advance:
        fit = model.fit_predict(
            data.train_x,
            data.train_y,
            data.test_x,
            classes=len(CLASSMAPS[dataset]),
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            device=device,
            threads=threads,
            progress=advance,
        )
    return _score(
        "cnn",
        dataset,
        data,
        fit.predictions,
        time.monotonic() - clock,
        hyperparameters={
            "epochs": epochs,
            "batch_size": batch_size,
            "optimizer": "Adadelta",
            "learning_rate": model.LEARNING_RATE,
            "rho": model.RHO,
            "epsilon": model.EPSILON,
            "initialiser": "glorot_uniform",
            "deterministic_algorithms": True,
        },
        seed=seed,
        threads=fit.threads,
        device=fit.device,
        versions=provenance.versions("numpy", "torch"),
        started=started,
    )


def _check(dataset: str, limit: int | None, holdout: int | None) -> str:
    """``dataset`` as named in METRIC (any case, or another library's name); the arguments checked.

    An unknown name's message lists only the datasets with a baseline.
    """
    name = dataset_name(dataset, tuple(METRIC))
    if limit is not None and limit < 1:
        raise UsageError(f"limit must be at least 1, not {limit}")
    if holdout is not None and holdout < 1:
        raise UsageError(f"holdout must be at least 1, not {holdout}")
    return name


def _root(root: str | Path | None) -> Path:
    from ..storage.root import data_root

    return data_root(root)


@dataclass(frozen=True)
class _Data:
    train_x: NDArray[np.uint8]
    train_y: NDArray[np.uint8]
    test_x: NDArray[np.uint8]
    test_y: NDArray[np.uint8]
    protocol: Protocol
    inputs: Mapping[str, str]

    @property
    def n_train(self) -> int:
        return len(self.train_x)


def _data(
    dataset: str,
    root: Path,
    download: bool,
    limit: int | None,
    holdout: int | None,
    catalogue: Sequence[Entry] | None,
) -> _Data:
    """The images to learn from and to score, which protocol that is, and the files' sha256."""
    from ..formats import bad_structure

    test_x, test_y, test_files = _split(dataset, "test", root, download, catalogue)
    if holdout is not None:
        if not len(test_x):
            raise bad_structure(f"{dataset} test", "at least one image", "none")
        x, y = test_x[:limit], test_y[:limit]
        if holdout >= len(x):
            raise UsageError(
                f"holdout {holdout} leaves none of the {len(x):,} test images to learn from"
            )
        cut = len(x) - holdout
        inputs = provenance.sha256_files(root, test_files)
        return _Data(x[:cut], y[:cut], x[cut:], y[cut:], Protocol.TEST_SPLIT_ONLY, inputs)
    train_x, train_y, train_files = _split(dataset, "train", root, download, catalogue)
    for split, images in (("train", train_x), ("test", test_x)):
        if not len(images):
            # Nothing to learn from was a ZeroDivisionError in the CNN, and
            # nothing to score a figure of 0.00% "comparable" with the paper's.
            raise bad_structure(f"{dataset} {split}", "at least one image", "none")
    cut_something = limit is not None and limit < max(len(train_x), len(test_x))
    return _Data(
        train_x[:limit],
        train_y[:limit],
        test_x[:limit],
        test_y[:limit],
        Protocol.SUBSET if cut_something else Protocol.PUBLISHED,
        provenance.sha256_files(root, [*train_files, *test_files]),
    )


def _split(
    dataset: str, split: str, root: Path, download: bool, catalogue: Sequence[Entry] | None
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], list[Path]]:
    """A split's arrays (verified by the loader) and the two files they came from."""
    from ..data.load import load
    from ..storage.layout import local_path

    try:
        x, y = load(dataset, split, root=root, download=download, catalogue=catalogue)
    except NotDownloaded as exc:
        pair = _pairs(dataset, split, catalogue)[0]  # the format a download would fetch
        missing = [p for p in (local_path(root, e.file) for e in pair) if not p.is_file()]
        raise MissingInputs(
            str(exc), dataset=dataset, split=split, root=root, missing=missing
        ) from None
    # The loader read the first format whose two files are both here.
    pairs = _pairs(dataset, split, catalogue)
    pair = next((p for p in pairs if all(local_path(root, e.file).is_file() for e in p)), pairs[0])
    return x, y, [local_path(root, e.file) for e in pair]


def _pairs(dataset: str, split: str, catalogue: Sequence[Entry] | None) -> list[tuple[Entry, ...]]:
    """The images and labels entries of a split, per format, in the loader's order."""
    from ..catalogue.manifest import CURRENT_RELEASE, DATASETS, select

    return [
        tuple(
            e
            for e in select(dataset, fmt, split, CURRENT_RELEASE, entries=catalogue)
            if e.kind in ("images", "labels")
        )
        for fmt in DATASETS[dataset].formats
    ]


@contextlib.contextmanager
def _progress_bar(
    show: bool, total: int, unit: str, desc: str
) -> Iterator[Callable[[int], None] | None]:
    """A tqdm bar on stderr (hidden when stderr is not a terminal), closed after the block.

    Yields what advances it, or None when no bar is shown.
    """
    if not show or sys.stderr is None:
        # None: stderr closed (2>&-), where tqdm's first write was an
        # AttributeError that ended a finished run with exit 1.
        yield None
        return
    from tqdm.auto import tqdm

    bar: Any = tqdm(total=total, unit=f" {unit}", unit_scale=True, desc=desc, disable=None)
    try:
        yield bar.update
    finally:
        bar.close()


def _score(
    model: str,
    dataset: str,
    data: _Data,
    pred: NDArray[np.int64],
    seconds: float,
    *,
    hyperparameters: Mapping[str, object],
    seed: int | None,
    threads: int | None,
    device: str,
    versions: Mapping[str, str],
    started: str,
) -> Score:
    acc = accuracy(data.test_y, pred)
    balanced = balanced_accuracy(data.test_y, pred)
    metric = METRIC[dataset]
    n_test = len(data.test_y)
    return Score(
        dataset=dataset,
        model=model,
        n_train=data.n_train,
        n_test=n_test,
        accuracy=acc,
        balanced_accuracy=balanced,
        seconds=seconds,
        metric=metric,
        comparison=compare(
            model,
            dataset,
            balanced if metric == "balanced_accuracy" else acc,
            protocol=data.protocol,
            n_train=data.n_train,
            n_test=n_test,
            hyperparameters=hyperparameters,
        ),
        protocol=data.protocol,
        hyperparameters=hyperparameters,
        seed=seed,
        threads=threads,
        device=device,
        versions=versions,
        machine=provenance.machine(),
        inputs=data.inputs,
        started=started,
    )
