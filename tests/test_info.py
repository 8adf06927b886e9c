"""kmnist.info and ``kmnist-download --cite``: the figures, the licence and the citation."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kmnist
from kmnist.catalogue.info import ATTRIBUTION, BIBTEX
from kmnist.cli.download import main

from .conftest import REALDATA

ROOT = Path(__file__).resolve().parents[1]
# The authors' words (README of rois-codh/kmnist, "License"), joined onto one line.
AUTHORS_ATTRIBUTION = (
    '"KMNIST Dataset" (created by CODH), adapted from "Kuzushiji Dataset" '
    "(created by NIJL and others), doi:10.20676/00000341"
)
AUTHORS = "Tarin Clanuwat and Mikel Bober-Irizar and Asanobu Kitamoto and Alex Lamb and Kazuaki Yamamoto and David Ha"


def parse_bibtex(text: str) -> list[tuple[str, str, dict[str, str]]]:
    """(type, key, fields) of each entry; text outside entries is a comment, as in BibTeX."""
    entries = []
    pos = 0
    while (at := text.find("@", pos)) != -1:
        head = re.compile(r"@(\w+)\s*\{\s*([^,\s]+)\s*,").match(text, at)
        assert head, f"no entry head at {text[at : at + 30]!r}"
        depth, i = 1, text.index("{", at) + 1
        while depth:  # bounded by the text's length: index() raises at its end
            nxt = min(j for j in (text.find("{", i), text.find("}", i)) if j != -1)
            depth += 1 if text[nxt] == "{" else -1
            i = nxt + 1
        body = text[head.end() : i - 1]
        fields = {}
        for m in re.finditer(r"(\w+)\s*=\s*\{((?:[^{}]|\{[^{}]*\})*)\}\s*,?", body):
            fields[m.group(1).lower()] = m.group(2)
        rest = re.sub(r"(\w+)\s*=\s*\{((?:[^{}]|\{[^{}]*\})*)\}\s*,?", "", body)
        assert rest.strip() == "", f"unparsed: {rest!r}"
        entries.append((head.group(1).lower(), head.group(2), fields))
        pos = i
    return entries


def test_the_bibtex_is_one_entry_with_the_required_fields() -> None:
    assert BIBTEX.count("{") == BIBTEX.count("}")
    ((kind, key, fields),) = parse_bibtex(BIBTEX)
    assert (kind, key) == ("online", "clanuwat2018deep")
    assert fields["author"] == AUTHORS
    assert fields["title"] == "Deep Learning for Classical Japanese Literature"
    assert fields["year"] == "2018" and fields["date"] == "2018-12-03"
    assert fields["eprinttype"] == "arXiv" and fields["eprint"] == "cs.CV/1812.01718"


def test_attribution_is_the_authors_line() -> None:
    assert ATTRIBUTION == AUTHORS_ATTRIBUTION


@pytest.mark.parametrize(
    ("name", "train", "test", "total", "classes", "side"),
    [
        ("kmnist", 60_000, 10_000, 70_000, 10, 28),
        ("k49", 232_365, 38_547, 270_912, 49, 28),
        ("kkanji", None, None, 140_426, 3_832, 64),
    ],
)
def test_info_figures(
    name: str, train: int | None, test: int | None, total: int, classes: int, side: int
) -> None:
    i = kmnist.info(name)
    assert isinstance(i, kmnist.DatasetInfo)
    assert (i.name, i.train, i.test, i.total, i.num_classes) == (name, train, test, total, classes)
    assert i.image_size == (side, side)
    assert i.license == "CC BY-SA 4.0"
    assert i.license_url == "https://creativecommons.org/licenses/by-sa/4.0/"
    assert i.homepage == "http://codh.rois.ac.jp/kmnist/index.html.en"
    assert i.repository == "https://github.com/rois-codh/kmnist"
    assert i.bibtex == BIBTEX and i.attribution == AUTHORS_ATTRIBUTION
    assert i.title == kmnist.DATASETS[name].title
    if train is not None and test is not None:
        assert train + test == total
    with pytest.raises(dataclasses.FrozenInstanceError):
        i.total = 0  # type: ignore[misc]


def test_info_classes_are_the_romanised_class_maps() -> None:
    assert list(kmnist.info("kmnist").classes) == [
        "o",
        "ki",
        "su",
        "tsu",
        "na",
        "ha",
        "ma",
        "ya",
        "re",
        "wo",
    ]
    k49 = kmnist.info("k49").classes
    assert len(k49) == len(kmnist.classmap("k49")) == len(set(k49))
    assert k49[:5] == ("a", "i", "u", "e", "o") and k49[-1] == "odoriji"
    assert kmnist.info("kkanji").classes == ()


def test_info_of_an_unknown_dataset() -> None:
    with pytest.raises(kmnist.UnknownDataset, match="kmnist, k49, kkanji"):
        kmnist.info("mnist")


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "split", "rel"),
    [
        ("kmnist", "train", "kmnist/kmnist-train-labels.npz"),
        ("kmnist", "test", "kmnist/kmnist-test-labels.npz"),
        ("k49", "train", "k49/k49-train-labels.npz"),
        ("k49", "test", "k49/k49-test-labels.npz"),
    ],
)
def test_counts_are_those_of_the_real_label_files(name: str, split: str, rel: str) -> None:
    path = REALDATA / rel
    if not path.is_file():
        pytest.skip(f"{path} not available")
    with np.load(path) as z:
        labels = z["arr_0"]
    assert len(labels) == getattr(kmnist.info(name), split)
    assert int(labels.max()) + 1 == kmnist.info(name).num_classes


def test_cite_prints_the_bibtex_and_the_attribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["--cite"]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    assert out.out.startswith(BIBTEX + "\n")
    assert AUTHORS_ATTRIBUTION in out.out
    # The whole output is a valid .bib file: one entry, the rest comments.
    assert [key for _, key, _ in parse_bibtex(out.out)] == ["clanuwat2018deep"]
    assert os.listdir(tmp_path) == []  # no data folder made, nothing fetched


def test_cite_as_an_installed_command(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("kmnist-download")
    if not script.is_file():
        pytest.skip(f"console script not installed beside {sys.executable}")
    out = subprocess.run(
        [str(script), "--cite"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert out.returncode == 0 and out.stdout.startswith("@online{clanuwat2018deep,")


def test_readme_cites_the_same_bibtex_and_attribution() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Citation\n", 1)[1].split("\n## ", 1)[0]
    assert f"```bibtex\n{BIBTEX}\n```" in section
    assert f"> {AUTHORS_ATTRIBUTION}\n" in section  # one line, to copy as it is
    assert "kmnist-download --cite" in section
