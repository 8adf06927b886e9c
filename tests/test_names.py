"""Names, as users type them: any case, other libraries' spellings, and "did you mean".

Every choice of both commands (``kmnist-download``, ``kmnist-baseline``)
answers a typo in one line with a guess, exit 2; the names torchvision, TFDS
and the paper use are taken; every public function that takes a dataset name
raises a KmnistError subclass for an unknown one that lists only the names
that function takes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kmnist
from kmnist import baselines
from kmnist.catalogue.names import DATASET_NAMES, canonical
from kmnist.cli.baseline import main as baseline_main
from kmnist.cli.download import build_parser
from kmnist.cli.download import main as download_main
from kmnist.errors import KmnistError, UnknownDataset

# What other libraries and the paper call them.
OTHER_NAMES = {
    "KMNIST": "kmnist",  # torchvision.datasets.KMNIST
    "Kuzushiji-MNIST": "kmnist",  # the paper
    "kuzushiji_mnist": "kmnist",
    "K49": "k49",
    "Kuzushiji-49": "k49",
    "kuzushiji49": "k49",
    "Kuzushiji-Kanji": "kkanji",
    "kuzushiji_kanji": "kkanji",
    "KKANJI": "kkanji",
}


@pytest.mark.parametrize(("typed", "meant"), OTHER_NAMES.items())
def test_other_libraries_names_are_taken(typed: str, meant: str) -> None:
    args = build_parser().parse_args(["-d", typed])
    assert args.dataset == [meant]


@given(name=st.sampled_from(DATASET_NAMES), flips=st.lists(st.booleans(), min_size=6, max_size=6))
def test_any_case_is_the_same_name(name: str, flips: list[bool]) -> None:
    typed = "".join(c.upper() if flip else c for c, flip in zip(name, flips))
    assert canonical(typed, DATASET_NAMES) == name


DOWNLOAD_TYPOS = [
    (["-d", "kmnsit"], "argument --dataset/-d: invalid choice: 'kmnsit'; did you mean 'kmnist'?"),
    (["-d", "k94"], "did you mean 'k49'?"),
    (["-d", "kanjii"], "did you mean 'kkanji'?"),
    (
        ["-d", "kmnist", "-s", "tset"],
        "argument --split/-s: invalid choice: 'tset'; did you mean 'test'?",
    ),
    (
        ["-d", "kmnist", "-f", "npy"],
        "argument --format/-f: invalid choice: 'npy'; did you mean 'npz'?",
    ),
    (
        ["-d", "kmnist", "--release", "2091"],
        "argument --release: invalid choice: '2091'; did you mean",
    ),
]


@pytest.mark.parametrize(("argv", "said"), DOWNLOAD_TYPOS)
def test_kmnist_download_typos_get_a_guess_in_one_line(
    argv: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        download_main([*argv, "--dir", str(tmp_path), "--dry-run"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kmnist-download: error: ")
    assert said in err


BASELINE_USAGE = [
    (
        ["knn", "-d", "kmnsit"],
        "argument --dataset/-d: invalid choice: 'kmnsit'; did you mean 'kmnist'?",
    ),
    (["knnn", "-d", "kmnist"], "argument model: invalid choice: 'knnn'; did you mean 'knn'?"),
    (["knn"], "the following arguments are required: --dataset/-d"),
    (["knn", "-d", "kmnist", "--k", "0"], "argument --k: must be at least 1"),
    (["knn", "-d", "kkanji"], "invalid choice: 'kkanji'"),
]


@pytest.mark.parametrize(("argv", "said"), BASELINE_USAGE)
def test_kmnist_baseline_usage_errors_are_one_line_as_kmnist_downloads(
    argv: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        baseline_main([*argv, "--dir", str(tmp_path)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kmnist-baseline: error: "), err
    assert said in err
    assert "usage:" not in err


def test_kmnist_baseline_takes_other_names_and_any_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Past the parser: the files are missing, said in kmnist-baseline's line (exit 1).
    assert baseline_main(["KNN", "-d", "Kuzushiji-49", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kmnist-baseline: error: k49 test: missing ")


def test_the_installed_baseline_command_says_it_in_one_line(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("kmnist-baseline")
    if not script.exists():
        pytest.skip("kmnist-baseline is not installed in this environment")
    out = subprocess.run(
        [str(script), "knn", "-d", "kmnsit"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KMNIST_DATA": str(tmp_path)},
    )
    assert out.returncode == 2
    assert out.stderr == (
        "kmnist-baseline: error: argument --dataset/-d: invalid choice: 'kmnsit'; "
        "did you mean 'kmnist'?\n"
    )


# --- the library: a KmnistError that lists what the function takes -----------------------


def test_load_all_is_an_unknown_dataset_naming_only_what_load_takes(tmp_path: Path) -> None:
    with pytest.raises(UnknownDataset) as caught:
        kmnist.load("all", "test", root=tmp_path)
    assert str(caught.value) == "unknown dataset 'all' (choose from kmnist, k49)"


def test_load_guesses_a_typo(tmp_path: Path) -> None:
    with pytest.raises(
        UnknownDataset, match=r"did you mean 'kmnist'\? \(choose from kmnist, k49\)$"
    ):
        kmnist.load("kmnsit", "test", root=tmp_path)


def test_load_takes_other_names(realdata: Path) -> None:
    x, y = kmnist.load("KMNIST", "test", root=realdata)
    assert x.shape == (10000, 28, 28) and len(y) == 10000


@pytest.mark.parametrize(
    ("call", "accepted"),
    [
        (lambda name: kmnist.classmap(name), "kmnist, k49"),
        (lambda name: kmnist.info(name), "kmnist, k49, kkanji"),
        (
            lambda name: kmnist.download(name, root="/nonexistent/x", progress=False),
            "kmnist, k49, kkanji, all",
        ),
        (lambda name: baselines.knn(name, root="/nonexistent/x"), "kmnist, k49"),
        (lambda name: kmnist.load(name, "test", root="/nonexistent/x"), "kmnist, k49"),
    ],
    ids=["classmap", "info", "download", "knn", "load"],
)
@pytest.mark.parametrize("name", ["bogus", "kmnsit", "", None, 3])
def test_every_public_function_raises_a_kmnist_error_listing_what_it_takes(
    call: object, accepted: str, name: object
) -> None:
    with pytest.raises(UnknownDataset) as caught:
        call(name)  # type: ignore[operator]
    assert isinstance(caught.value, KmnistError)
    assert str(caught.value).endswith(f"(choose from {accepted})")


@pytest.mark.parametrize("typed", ["KMNIST", "Kuzushiji-49", "K49"])
def test_classmap_and_info_take_other_names(typed: str) -> None:
    meant = OTHER_NAMES[typed]
    assert kmnist.classmap(typed) == kmnist.classmap(meant)
    assert kmnist.info(typed) == kmnist.info(meant)
