"""Baselines that can be repeated and checked: the k-NN against scikit-learn on real
images, the CNN twice with the same seed and threads, the JSON record of a run,
and the test-split-only route through ``kmnist-baseline``."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kmnist
from kmnist import baselines
from kmnist.baselines import knn_model as knnmod
from kmnist.cli.baseline import main

TEST_FILES = ("kmnist/kmnist-test-imgs.npz", "kmnist/kmnist-test-labels.npz")


@pytest.fixture
def kmnist_test(realdata: Path) -> tuple[np.ndarray, np.ndarray]:
    x, y = kmnist.load("kmnist", "test", root=realdata)
    return x, y


def torch_or_skip():  # type: ignore[no-untyped-def]
    """PyTorch, in a test marked ``torch`` (conftest skips those without it)."""
    import torch

    return torch


# --- k-NN -------------------------------------------------------------------------------


@pytest.mark.realdata
def test_knn_on_the_real_test_split_is_scikit_learns(
    kmnist_test: tuple[np.ndarray, np.ndarray],
) -> None:
    """The first 8,000 real test images learnt, the last 2,000 classified, by both."""
    neighbors = pytest.importorskip("sklearn.neighbors", reason="scikit-learn is not installed")
    metrics = pytest.importorskip("sklearn.metrics")
    x, y = kmnist_test
    train, labels, test = x[:8000].reshape(8000, -1), y[:8000], x[8000:].reshape(2000, -1)
    # As the paper's script: raw uint8 pixels, 4 neighbours weighted by 1/distance.
    reference = neighbors.KNeighborsClassifier(n_neighbors=4, weights="distance")
    want = reference.fit(train, labels).predict(test)
    got = knnmod.predict(x[:8000], labels, x[8000:])
    assert np.array_equal(got, want)
    assert baselines.accuracy(y[8000:], got) == metrics.accuracy_score(y[8000:], want)
    assert baselines.balanced_accuracy(y[8000:], got) == pytest.approx(
        metrics.balanced_accuracy_score(y[8000:], want)
    )


# --- the CNN, twice ---------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.torch
def test_cnn_same_seed_and_threads_same_predictions(
    kmnist_test: tuple[np.ndarray, np.ndarray],
) -> None:
    torch = torch_or_skip()
    from kmnist.baselines import cnn_model as cnn

    x, y = kmnist_test
    threads_before = torch.get_num_threads()
    deterministic_before = torch.are_deterministic_algorithms_enabled()

    def fit(seed: int) -> cnn.Fit:
        return cnn.fit_predict(
            x[:800], y[:800], x[9500:], classes=10, epochs=1, seed=seed, threads=1
        )

    first, second, other = fit(7), fit(7), fit(8)
    assert np.array_equal(first.predictions, second.predictions)
    assert first.epoch_losses == second.epoch_losses
    assert (first.threads, first.device) == (1, "cpu")
    # Not a constant: another seed starts from other weights and another order.
    assert other.epoch_losses != first.epoch_losses
    # PyTorch's process-wide settings are the caller's again afterwards.
    assert torch.get_num_threads() == threads_before
    assert torch.are_deterministic_algorithms_enabled() == deterministic_before


@pytest.mark.realdata
@pytest.mark.torch
def test_cli_cnn_twice_gives_the_same_figure(
    realdata: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch_or_skip()
    argv = ["cnn", "-d", "kmnist", "--dir", str(realdata), "--test-split-only", "--limit", "900"]
    argv += ["--holdout", "300", "--epochs", "1", "--seed", "11", "--threads", "1", "--json"]
    runs = []
    for _ in range(2):
        assert main(argv) == 0
        runs.append(json.loads(capsys.readouterr().out))
    first, second = runs
    for key in ("seconds", "started"):  # the only fields a repeat may change
        first.pop(key), second.pop(key)
    assert first == second
    assert (first["seed"], first["threads"], first["device"]) == (11, 1, "cpu")
    assert first["hyperparameters"]["epochs"] == 1
    assert first["hyperparameters"]["deterministic_algorithms"] is True
    assert "torch" in first["versions"]


@pytest.mark.torch
def test_cnn_device_without_cuda_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch = torch_or_skip()
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    from kmnist.baselines import cnn_model as cnn

    with pytest.raises(kmnist.UsageError, match="sees no CUDA device on this machine; use cpu"):
        cnn.resolve_device(torch, "cuda:0")
    # Said before any data is looked for: the folder is empty, the error is not NotDownloaded.
    assert main(["cnn", "-d", "kmnist", "--dir", str(tmp_path), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("kmnist-baseline: error: device cuda: PyTorch ")


# --- test split only, through the command, and its JSON ---------------------------------


@pytest.mark.realdata
def test_cli_test_split_only_runs_with_only_the_test_split(
    realdata: Path, kmnist_test: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    # ../shared/realdata/kmnist has no training images: the published split cannot run.
    assert not (realdata / "kmnist/kmnist-train-imgs.npz").exists()
    assert main(["knn", "-d", "kmnist", "--dir", str(realdata), "--test-split-only"]) == 0
    first, second = capsys.readouterr().out.splitlines()
    x, y = kmnist_test
    want = baselines.accuracy(y[8000:], knnmod.predict(x[:8000], y[:8000], x[8000:]))
    assert first.startswith(f"knn kmnist (test split only): accuracy {want:.2%}, ")
    assert "(8,000 train, 2,000 test, all from the test split; " in first
    assert second.startswith(
        "not comparable with the published 92.10% accuracy on the February 2019 data "
        "(the current release): not the paper's figure (learnt from 8,000 images of the "
        "test split and scored its other 2,000; "
    )


@pytest.mark.realdata
def test_cli_json_record_of_a_run(realdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["knn", "-d", "kmnist", "--dir", str(realdata), "--test-split-only"]
    assert main([*argv, "--holdout", "500", "--k", "3", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one object per run, on one line
    record = json.loads(out)
    assert set(record) == {
        "model", "dataset", "release", "protocol", "metric", "value", "accuracy",
        "balanced_accuracy", "published", "difference", "comparison", "comparison_reasons",
        "n_train", "n_test", "hyperparameters", "seed", "threads", "device", "versions",
        "machine", "inputs", "seconds", "started",
    }  # fmt: skip
    assert (record["model"], record["dataset"], record["release"]) == ("knn", "kmnist", "2019-02")
    assert (record["protocol"], record["metric"]) == ("test split only", "accuracy")
    assert (record["n_train"], record["n_test"]) == (9500, 500)
    assert record["value"] == record["accuracy"] and 0.8 < record["value"] <= 1
    assert record["published"] == {
        "name": "4-Nearest Neighbour Baseline",
        "value": 0.921,
        "metric": "accuracy",
        "release": "2019-02",
        "source": baselines.reported("knn", "kmnist").source,  # type: ignore[union-attr]
    }
    assert record["comparison"] == "not comparable" and record["difference"] is None
    assert record["comparison_reasons"][1] == "k=3, where the published figure has k=4"
    assert record["hyperparameters"] == {"k": 3, "weights": "distance", "metric": "euclidean"}
    assert (record["seed"], record["threads"], record["device"]) == (None, None, "cpu")
    assert record["versions"]["numpy"] == np.__version__
    assert record["versions"]["kmnist"] == kmnist.__version__
    assert record["machine"]["cpus"] >= 1
    assert record["inputs"] == {
        rel: hashlib.sha256((realdata / rel).read_bytes()).hexdigest() for rel in TEST_FILES
    }
    assert record["seconds"] > 0 and record["started"].endswith("Z")


@pytest.mark.realdata
def test_holdout_must_leave_images_to_learn_from(
    realdata: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["knn", "-d", "kmnist", "--dir", str(realdata), "--test-split-only", "--limit", "50"]
    assert main([*argv, "--holdout", "50"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "kmnist-baseline: error: --test-split-only scores the last 50 test images (--holdout),"
        " which leaves none of the 50 that --limit keeps to learn from: give --holdout below"
        " --limit, or a larger --limit\n"
    )
    # Not given, the default (2,000) is named as such, not as if typed.
    assert main(argv) == 2
    assert "(--holdout's default)" in capsys.readouterr().err
    assert main([*argv, "--holdout", "48"]) == 2  # 2 left, k=4 needs 4
    assert "k=4 needs at least 4 training images, got 2" in capsys.readouterr().err


@pytest.mark.realdata
def test_cli_threads_limit_the_knns_blas(realdata: Path) -> None:
    """--threads reaches NumPy's BLAS: the command sets it before NumPy loads."""
    pytest.importorskip("threadpoolctl", reason="threadpoolctl (scikit-learn's) is not installed")
    code = (
        "import sys, threadpoolctl\n"
        "from kmnist.cli.baseline import main\n"
        "assert 'numpy' not in sys.modules\n"
        f"argv = ['knn', '-d', 'kmnist', '--dir', {str(realdata)!r}, '--test-split-only',\n"
        "        '--limit', '300', '--holdout', '100', '--threads', '1']\n"
        "rc = main(argv)\n"
        "blas = [p for p in threadpoolctl.threadpool_info() if p['user_api'] == 'blas']\n"
        "print(rc, sorted({p['num_threads'] for p in blas}))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "0 [1]"
