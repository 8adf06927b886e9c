"""The paper's "Keras Simple CNN Benchmark", ported to PyTorch layer for layer.

The original (``benchmarks/kuzushiji_mnist_cnn.py`` of rois-codh/kmnist, 2018,
itself Keras' ``mnist_cnn.py`` example): Conv2D(32, 3x3, relu), Conv2D(64,
3x3, relu), MaxPooling 2x2, Dropout 0.25, Flatten, Dense(128, relu), Dropout
0.5, Dense(classes, softmax); categorical cross-entropy; Adadelta; batches
of 128, shuffled every epoch; 12 epochs; pixels scaled to [0, 1].

What the port keeps from Keras where PyTorch's defaults differ:

- Adadelta with Keras 2.2's defaults, lr=1.0, rho=0.95, epsilon=1e-7
  (``keras.optimizers.Adadelta()`` as the script called it in 2018; PyTorch's
  are rho=0.9, eps=1e-6, and tf.keras from 2.3 on took lr=0.001, which
  trains far slower). The update rule itself is the same in both.
- Glorot-uniform weights and zero biases, Keras' initialisers (PyTorch's
  default is a scaled Kaiming-uniform).
- The last batch of an epoch is used even when it is short, as Keras does.

Softmax followed by cross-entropy is one ``CrossEntropyLoss`` on the logits:
the same function, computed without the softmax's rounding. The flatten
order differs (Keras flattens height, width, channels), which only permutes
the dense layer's inputs. PyTorch is imported only when a model is trained,
and through :func:`kmnist.optional.import_torch`, so that a missing PyTorch is one clear
error and ``kmnist-baseline --help`` stays instant.

Repeatable runs: one seed for the initial weights, dropout and the shuffle
(its own generator); a fixed number of threads, since a float sum split over
other threads is rounded otherwise (the same seed gave 94.20% on 2 threads and
94.35% on 1: docs/figures/baseline-runs.json); and PyTorch's deterministic
kernels. PyTorch's global settings are put back as they were after the run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..errors import UsageError
from ..optional import import_torch

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

# Keras 2.2's Adadelta defaults (keras/optimizers.py; epsilon=None meant
# K.epsilon(), 1e-7), which the 2018 script used by calling Adadelta().
LEARNING_RATE = 1.0
RHO = 0.95
EPSILON = 1e-7
PREDICT_BATCH = 1024  # no gradients kept, so larger batches cost little memory
# cuBLAS is deterministic only with a fixed workspace, set before CUDA starts;
# this is the value PyTorch's reproducibility notes give.
CUBLAS_WORKSPACE = ":4096:8"
DEVICE = re.compile(r"cpu|cuda(:\d+)?")


@dataclass(frozen=True)
class Fit:
    """What a training run gives: a class per test image, and how the loss went."""

    predictions: NDArray[np.int64]
    epoch_losses: tuple[float, ...]  # mean training loss of each epoch, per image
    threads: int  # PyTorch's intra-op threads during the run
    device: str


def fit_predict(
    train_x: NDArray[np.uint8],
    train_y: NDArray[np.integer],
    test_x: NDArray[np.uint8],
    *,
    classes: int,
    epochs: int = 12,
    batch_size: int = 128,
    seed: int = 0,
    device: str = "cpu",
    threads: int | None = None,
    deterministic: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Fit:
    """Train the simple CNN on ``train_x`` (N x 28 x 28 uint8) and classify ``test_x``.

    ``threads`` is PyTorch's number of intra-op threads (None: its default);
    ``deterministic`` asks for its deterministic kernels. The same seed, threads,
    device, data and library versions give the same predictions.
    ``progress`` is called with the number of images of each batch trained on.
    """
    torch = import_torch("the CNN baseline")
    import numpy as np

    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be at least 1")
    if threads is not None and threads < 1:
        raise ValueError("threads must be at least 1")
    dev = resolve_device(torch, device)
    with _settings(torch, seed=seed, threads=threads, deterministic=deterministic, device=dev):
        shuffle = torch.Generator().manual_seed(seed)
        model = build_model(torch, classes).to(dev)
        optimiser = torch.optim.Adadelta(model.parameters(), lr=LEARNING_RATE, rho=RHO, eps=EPSILON)
        loss_fn = torch.nn.CrossEntropyLoss()
        # uint8 until a batch is taken: K49's training set as float32 would be 730 MB.
        images = torch.from_numpy(np.ascontiguousarray(train_x))
        labels = torch.from_numpy(np.asarray(train_y, dtype=np.int64))
        n = len(images)
        losses = []
        for _ in range(epochs):
            model.train()
            order = torch.randperm(n, generator=shuffle)
            total = 0.0
            for i in range(0, n, batch_size):
                batch = order[i : i + batch_size]
                x = _scaled(images[batch], dev)
                y = labels[batch].to(dev)
                optimiser.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                optimiser.step()
                total += float(loss.item()) * len(batch)
                if progress is not None:
                    progress(len(batch))
            losses.append(total / n)
        predictions = _predict(torch, model, test_x, dev)
        used = int(torch.get_num_threads())
    return Fit(predictions, tuple(losses), used, str(dev))


def resolve_device(torch: Any, name: str) -> Any:
    """``torch.device(name)`` for ``cpu``, ``cuda`` or ``cuda:N``; else a UsageError saying why."""
    if not DEVICE.fullmatch(name):
        raise UsageError(f"unknown device {name!r} (choose cpu, cuda or cuda:N)")
    if name != "cpu":
        if not torch.cuda.is_available():
            raise UsageError(
                f"device {name}: PyTorch {torch.__version__} sees no CUDA device on this "
                "machine; use cpu"
            )
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise UsageError(
                f"device {name}: PyTorch sees {torch.cuda.device_count()} CUDA device(s)"
            )
    return torch.device(name)


@contextmanager
def _settings(
    torch: Any, *, seed: int, threads: int | None, deterministic: bool, device: Any
) -> Iterator[None]:
    """Seed, threads and deterministic kernels for one run; PyTorch's own put back after it."""
    old_threads = torch.get_num_threads()
    old_deterministic = torch.are_deterministic_algorithms_enabled()
    old_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    old_benchmark = torch.backends.cudnn.benchmark
    if deterministic and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        # warn_only: an operation with no deterministic kernel (none in this
        # model on the CPU) says so on stderr rather than ending a long run.
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
        torch.backends.cudnn.benchmark = False  # autotuning may pick other kernels per run
        torch.manual_seed(seed)  # the weights' initial values and dropout, on every device
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_deterministic, warn_only=old_warn_only)
        torch.backends.cudnn.benchmark = old_benchmark


def build_model(torch: Any, classes: int) -> Any:
    """The Keras model's layers as a ``torch.nn.Sequential``, with Keras' initial weights."""
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=3),  # 28 -> 26
        nn.ReLU(),
        nn.Conv2d(32, 64, kernel_size=3),  # 26 -> 24
        nn.ReLU(),
        nn.MaxPool2d(2),  # 24 -> 12
        nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(64 * 12 * 12, 128),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, classes),  # softmax is in the loss, and argmax does not need it
    )
    for layer in model:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)  # Keras' glorot_uniform
            nn.init.zeros_(layer.bias)
    return model


def _scaled(images: Any, device: Any) -> Any:
    """uint8 N x 28 x 28 -> float32 N x 1 x 28 x 28 in [0, 1], as the script's ``/= 255``."""
    return images.to(device).unsqueeze(1).float() / 255


def _predict(torch: Any, model: Any, test_x: NDArray[np.uint8], device: Any) -> NDArray[np.int64]:
    import numpy as np

    model.eval()  # dropout off
    images = torch.from_numpy(np.ascontiguousarray(test_x))
    out = np.empty(len(images), dtype=np.int64)
    with torch.no_grad():
        for i in range(0, len(images), PREDICT_BATCH):
            logits = model(_scaled(images[i : i + PREDICT_BATCH], device))
            out[i : i + len(logits)] = logits.argmax(dim=1).cpu().numpy()
    return out
