"""kmnist.datasets: PyTorch datasets that behave as torchvision's, on bytes on disk.

KMNIST runs on the real test split (both formats); K49, whose images are not
in ../shared/realdata, on crafted .npz files in the real layout; Kuzushiji-
Kanji on a crafted folder of 64 x 64 PNGs. Downloads go to FaultyServer
mirrors on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import kmnist
from kmnist.catalogue.classmap import classmap
from kmnist.data.kanji import KanjiIndex
from kmnist.data.kanjisplit import kanji_split

from .conftest import REALDATA, needs_realdata, no_part_files
from .server import FaultyServer

# Skipped without PyTorch by conftest; .ci/run's second step runs them.
needs_torch = pytest.mark.torch
# torchvision/datasets/mnist.py, class KMNIST, word for word.
TORCHVISION_KMNIST_CLASSES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]
NOT_FOUND = "Dataset not found. You can use download=True to download it"
TEST_FILES = {
    "npz": ("kmnist/kmnist-test-imgs.npz", "kmnist/kmnist-test-labels.npz"),
    "mnist": ("kmnist/t10k-images-idx3-ubyte.gz", "kmnist/t10k-labels-idx1-ubyte.gz"),
}


def link_real(root: Path, *rels: str) -> None:
    """The real files below ``root`` as symlinks: never copied."""
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(REALDATA / rel)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


# --- without torch ------------------------------------------------------------


def test_importing_the_module_imports_neither_torch_nor_numpy() -> None:
    code = (
        "import sys, kmnist, kmnist.datasets\n"
        "assert kmnist.datasets.DatasetNotFound\n"
        "print(sorted(m for m in ('torch', 'numpy', 'PIL') if m in sys.modules))"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_kmnist_datasets_is_reachable_after_a_bare_import() -> None:
    out = run_python("import kmnist, sys; kmnist.datasets; print('torch' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("blocked", "what"),
    [
        ("torch", "PyTorch"),
        # Pillow is the one missing only when PyTorch is there: without it, PyTorch is named first.
        pytest.param("PIL", "Pillow", marks=pytest.mark.torch),
    ],
)
def test_without_torch_one_line_says_what_to_install(blocked: str, what: str) -> None:
    # None in sys.modules makes "import torch" fail as if it were not installed.
    code = (
        f"import sys; sys.modules[{blocked!r}] = None\n"
        "import kmnist.datasets\n"
        "try:\n"
        "    from kmnist.datasets import KMNIST\n"
        "except kmnist.MissingDependency as exc:\n"
        "    print(exc)\n"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 1
    assert f"needs {what}, which is not installed" in lines[0]
    assert "pip install 'kmnist[torch]'" in lines[0]


def test_unknown_names_are_attribute_errors() -> None:
    import kmnist.datasets

    with pytest.raises(AttributeError, match="MNIST"):
        kmnist.datasets.MNIST  # noqa: B018


# --- the split of Kuzushiji-Kanji (pure, no torch) -----------------------------


def by_hash(code: str, names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: hashlib.sha256(f"{code}/{n}".encode()).digest())


def test_kanji_split_is_a_fifth_of_each_class_by_name_hash() -> None:
    sizes = {"U+4E00": 11, "U+4E8C": 5, "U+4E09": 4, "U+20B9F": 1}
    paths: list[Path] = []
    labels: list[int] = []
    for label, (code, n) in enumerate(sizes.items()):
        paths += [Path("/anywhere", code, f"{1000 + k}.png") for k in range(n)]
        labels += [label] * n
    index = KanjiIndex(tuple(paths), tuple(labels), ())
    train = kanji_split(index, train=True)
    test = kanji_split(index, train=False)
    assert sorted(train + test) == list(range(len(paths)))
    assert train == sorted(train) and test == sorted(test)
    for code, n in sizes.items():
        names = [p.name for p in paths if p.parent.name == code]
        want = set(by_hash(code, names)[: n // 5])
        assert {paths[i].name for i in test if paths[i].parent.name == code} == want
    assert len(test) == 2 + 1 + 0 + 0
    # Only names count: another root and another listing order give the same files.
    moved = KanjiIndex(
        tuple(Path("/elsewhere", p.parent.name, p.name) for p in paths[::-1]),
        tuple(labels[::-1]),
        (),
    )
    assert {moved.paths[i].name for i in kanji_split(moved, train=False)} == {
        paths[i].name for i in test
    }


# --- KMNIST on the real test split ----------------------------------------------


@needs_torch
@pytest.mark.realdata
@needs_realdata
@pytest.mark.parametrize("fmt", ["npz", "mnist"])
def test_kmnist_real_test_split(fmt: str, tmp_path: Path) -> None:
    import torch
    from PIL import Image

    from kmnist.datasets import KMNIST

    link_real(tmp_path, *TEST_FILES[fmt])
    ds = KMNIST(tmp_path, train=False)
    x, y = kmnist.load("kmnist", "test", root=tmp_path)
    assert len(ds) == 10000
    assert ds.data.dtype == torch.uint8 and tuple(ds.data.shape) == (10000, 28, 28)
    assert ds.targets.dtype == torch.int64 and tuple(ds.targets.shape) == (10000,)
    assert np.array_equal(ds.data.numpy(), x) and np.array_equal(ds.targets.numpy(), y)
    for i in (0, 1, 9999):
        image, target = ds[i]
        assert isinstance(image, Image.Image) and image.mode == "L" and image.size == (28, 28)
        assert type(target) is int and target == int(y[i])
        assert np.array_equal(np.asarray(image), x[i])
    assert sorted(set(ds.targets.tolist())) == list(range(10))


@needs_torch
@pytest.mark.realdata
@needs_realdata
def test_transforms_classes_and_repr(tmp_path: Path) -> None:
    import torch
    from torch.utils.data import DataLoader

    from kmnist.datasets import KMNIST

    def to_tensor(image: Any) -> torch.Tensor:
        return torch.from_numpy(np.array(image)).unsqueeze(0).float() / 255

    def name(target: int) -> str:
        return KMNIST.classes[target]

    link_real(tmp_path, *TEST_FILES["npz"])
    ds = KMNIST(str(tmp_path), train=False, transform=to_tensor, target_transform=name)
    image, label = ds[3]
    assert tuple(image.shape) == (1, 28, 28) and image.dtype == torch.float32
    assert torch.equal(image[0], ds.data[3].float() / 255)
    assert label == TORCHVISION_KMNIST_CLASSES[int(ds.targets[3])]
    assert KMNIST.classes == TORCHVISION_KMNIST_CLASSES == ds.classes
    assert ds.class_to_idx == {c: i for i, c in enumerate(TORCHVISION_KMNIST_CLASSES)}
    # torchvision's repr, quirk included: StandardTransform's own lines are not indented.
    assert repr(ds) == (
        "Dataset KMNIST\n"
        "    Number of datapoints: 10000\n"
        f"    Root location: {tmp_path}\n"
        "    Split: Test\n"
        "    StandardTransform\n"
        f"Transform: {to_tensor!r}\n"
        f"Target transform: {name!r}"
    )
    plain = KMNIST(tmp_path, train=False)
    assert repr(plain) == (
        f"Dataset KMNIST\n    Number of datapoints: 10000\n    Root location: {tmp_path}\n"
        "    Split: Test"
    )
    batch, _ = next(iter(DataLoader(ds, batch_size=64)))
    assert tuple(batch.shape) == (64, 1, 28, 28)


@needs_torch
def test_not_downloaded_is_torchvisions_error(tmp_path: Path) -> None:
    from kmnist.datasets import K49, KMNIST, DatasetNotFound, KuzushijiKanji

    for cls in (KMNIST, K49, KuzushijiKanji):
        with pytest.raises(RuntimeError, match=f"^{NOT_FOUND}") as info:
            cls(tmp_path / "data", train=True)
        assert isinstance(info.value, DatasetNotFound)
        assert isinstance(info.value, kmnist.NotDownloaded)
        assert "pass download=True" not in str(info.value)  # said once, in torchvision's words
    assert not (tmp_path / "data").exists()  # nothing written


@needs_torch
@pytest.mark.realdata
@needs_realdata
def test_download_true_through_the_given_mirrors(
    server: FaultyServer, cdn: FaultyServer, tmp_path: Path
) -> None:
    from kmnist.datasets import KMNIST

    for rel in (*TEST_FILES["npz"], "kmnist/kmnist_classmap.csv"):  # the map comes along
        server.add(rel, (REALDATA / rel).read_bytes())
        cdn.add(rel, (REALDATA / rel).read_bytes())
    # The first mirror serves other bytes for the images: the second one has to be used.
    server.always(TEST_FILES["npz"][0], "wrong")
    root = tmp_path / "data"
    ds = KMNIST(root, train=False, download=True, mirrors=[server.url, cdn.url], progress=False)
    assert len(ds) == 10000
    for rel in TEST_FILES["npz"]:
        assert (root / rel).read_bytes() == (REALDATA / rel).read_bytes()
    assert len(cdn.gets(TEST_FILES["npz"][0])) == 1
    assert not list(root.rglob("*.part"))
    # Already there and verified: torchvision's "not downloaded again", no request at all.
    before = len(server.requests) + len(cdn.requests)
    again = KMNIST(root, train=False, download=True, mirrors=[server.url], progress=False)
    assert len(again) == 10000 and len(server.requests) + len(cdn.requests) == before


@needs_torch
def test_download_true_that_cannot_fetch_is_a_download_error(
    server: FaultyServer, tmp_path: Path
) -> None:
    from kmnist.datasets import KMNIST

    # Nothing added to the server: every file is a 404.
    with pytest.raises(kmnist.KmnistError, match=r"kmnist-test-imgs\.npz"):
        KMNIST(tmp_path, train=False, download=True, mirrors=[server.url], progress=False)
    assert not (tmp_path / "kmnist/kmnist-test-imgs.npz").exists()
    assert no_part_files(tmp_path) == []


# --- K49 on crafted files in the real layout ------------------------------------------


def write_k49(root: Path, split: str, labels: list[int]) -> np.ndarray:
    images = np.arange(len(labels) * 28 * 28, dtype=np.uint64).reshape(-1, 28, 28) % 251
    images = images.astype(np.uint8)
    (root / "k49").mkdir(parents=True, exist_ok=True)
    np.savez_compressed(root / f"k49/k49-{split}-imgs.npz", images)
    np.savez_compressed(root / f"k49/k49-{split}-labels.npz", np.array(labels, np.uint8))
    return images


@needs_torch
def test_k49_on_crafted_files(tmp_path: Path) -> None:
    import torch
    from PIL import Image

    from kmnist.datasets import K49

    train_images = write_k49(tmp_path, "train", [0, 48, 44, 45, 3])
    write_k49(tmp_path, "test", [7, 8])
    ds = K49(tmp_path, train=True, verify=False, target_transform=lambda y: K49.classes[y])
    assert len(ds) == 5 and ds.data.dtype == torch.uint8 and ds.targets.dtype == torch.int64
    assert np.array_equal(ds.data.numpy(), train_images)
    image, _ = ds[1]
    assert isinstance(image, Image.Image) and image.mode == "L"
    assert np.array_equal(np.asarray(image), train_images[1])
    assert [ds[i][1] for i in range(5)] == ["a", "odoriji", "wi", "we", "e"]
    assert len(K49(tmp_path, train=False, verify=False)) == 2
    assert "Split: Train" in repr(ds)
    # With the published checksums on, crafted bytes are not the dataset.
    with pytest.raises(kmnist.VerificationError):
        K49(tmp_path, train=False)


@needs_torch
def test_k49_classes_follow_the_class_map() -> None:
    from kmnist.datasets import K49, KMNIST

    assert len(K49.classes) == 49 == len(set(K49.classes))
    chars = [c.char for c in classmap("k49")]
    # KMNIST's ten kana, named as torchvision names them, carry the same names in K49.
    for c, name in zip(classmap("kmnist"), KMNIST.classes):
        assert K49.classes[chars.index(c.char)] == name
    for name, char in (("n", "ん"), ("shi", "し"), ("fu", "ふ"), ("wo", "を")):
        assert K49.classes.index(name) == chars.index(char)


# --- Kuzushiji-Kanji on a crafted folder --------------------------------------------


def write_kanji(root: Path, sizes: dict[str, int]) -> dict[str, int]:
    """64 x 64 PNGs in <root>/kkanji/kkanji2/U+XXXX/; each image's pixels are one value."""
    from PIL import Image

    values = {}
    value = 0
    for code, n in sizes.items():
        folder = root / "kkanji/kkanji2" / code
        folder.mkdir(parents=True)
        for k in range(n):
            value += 3
            Image.new("L", (64, 64), value).save(folder / f"{k:04d}.png")
            values[f"{code}/{k:04d}.png"] = value
    return values


@needs_torch
def test_kanji_on_a_crafted_folder(tmp_path: Path) -> None:
    import torch
    from PIL import Image

    from kmnist.datasets import KuzushijiKanji

    sizes = {"U+4E8C": 6, "U+20B9F": 1, "U+4E00": 10}
    values = write_kanji(tmp_path, sizes)
    train = KuzushijiKanji(tmp_path, train=True, transform=np.asarray)
    test = KuzushijiKanji(tmp_path, train=False)
    # Sorted by code point as a number: U+20B9F comes last.
    assert train.classes == test.classes == ["U+4E00", "U+4E8C", "U+20B9F"]
    assert train.characters == ["一", "二", "𠮟"]
    assert len(train) + len(test) == 17 and len(test) == 10 // 5 + 6 // 5
    assert train.targets.dtype == torch.int64
    names = {f"{p.parent.name}/{p.name}" for p, _ in test.samples}
    assert names == {
        f"U+4E00/{n}" for n in by_hash("U+4E00", [f"{k:04d}.png" for k in range(10)])[:2]
    } | {f"U+4E8C/{by_hash('U+4E8C', [f'{k:04d}.png' for k in range(6)])[0]}"}
    assert not names & {f"{p.parent.name}/{p.name}" for p, _ in train.samples}
    for i in range(len(test)):
        image, label = test[i]
        path = test.samples[i][0]
        assert isinstance(image, Image.Image) and image.mode == "L" and image.size == (64, 64)
        assert set(np.asarray(image).ravel().tolist()) == {
            values[f"{path.parent.name}/{path.name}"]
        }
        assert test.classes[label] == path.parent.name
    pixels, label = train[0]
    assert pixels.shape == (64, 64) and label == int(train.targets[0])
    data = test.data
    assert data.dtype == torch.uint8 and tuple(data.shape) == (len(test), 64, 64)
    assert [int(d[0, 0]) for d in data] == [
        int(np.asarray(test[i][0])[0, 0]) for i in range(len(test))
    ]
    assert repr(test).splitlines()[1:] == [
        "    Number of datapoints: 3",
        f"    Root location: {tmp_path}",
        "    Split: Test",
    ]
    assert test.class_to_idx == {"U+4E00": 0, "U+4E8C": 1, "U+20B9F": 2}


@needs_torch
def test_kanji_image_of_the_wrong_size_names_the_file(tmp_path: Path) -> None:
    from PIL import Image

    from kmnist.datasets import KuzushijiKanji

    write_kanji(tmp_path, {"U+4E00": 1})
    bad = tmp_path / "kkanji/kkanji2/U+4E00/0000.png"
    Image.new("L", (32, 64), 0).save(bad)
    ds = KuzushijiKanji(tmp_path)
    with pytest.raises(kmnist.VerificationError, match=r"0000\.png.*expected 64x64, got 32x64"):
        ds[0]


@needs_torch
def test_kanji_download_true_uses_the_unpacked_folder_without_a_request(
    server: FaultyServer, tmp_path: Path
) -> None:
    from kmnist.datasets import KuzushijiKanji

    write_kanji(tmp_path, {"U+4E00": 2})
    ds = KuzushijiKanji(tmp_path, download=True, mirrors=[server.url], progress=False)
    assert len(ds) == 2 and server.requests == []


@needs_torch
@pytest.mark.realdata
@needs_realdata
def test_a_folder_torchvision_filled_is_read(tmp_path: Path) -> None:
    from kmnist.datasets import KMNIST

    # torchvision keeps the .gz files in <root>/KMNIST/raw beside what it unpacks.
    raw = tmp_path / "KMNIST" / "raw"
    raw.mkdir(parents=True)
    for rel in TEST_FILES["mnist"]:
        (raw / Path(rel).name).symlink_to(REALDATA / rel)
    ds = KMNIST(tmp_path, train=False)
    x, _ = kmnist.load("kmnist", "test", root=raw, format="mnist")
    assert np.array_equal(ds.data.numpy(), x)
    with pytest.raises(RuntimeError, match=NOT_FOUND):
        KMNIST(tmp_path, train=True)  # its train files are not there


@needs_torch
def test_kanji_download_true_fetches_and_unpacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fetch itself is tested elsewhere; here, what the dataset does around it.

    The real archive is 310 MB, so the download writes a crafted one and the
    archive's published sha256 is not checked; the unpacking is the real one.
    """
    import io
    import tarfile

    from PIL import Image

    import kmnist.data.kanji
    import kmnist.downloader
    from kmnist.datasets import KuzushijiKanji

    calls: list[tuple[str, dict[str, Any]]] = []

    def fake_download(name: str, **kw: Any) -> list[Path]:
        calls.append((name, kw))
        archive = kw["root"] / "kkanji" / "kkanji.tar"
        archive.parent.mkdir(parents=True)
        with tarfile.open(archive, "w") as tf:
            for code in ("U+4E00", "U+4E8C"):
                buf = io.BytesIO()
                Image.new("L", (64, 64), 7).save(buf, format="PNG")
                member = tarfile.TarInfo(f"kkanji2/{code}/0.png")
                member.size = len(buf.getvalue())
                tf.addfile(member, io.BytesIO(buf.getvalue()))
        return [archive]

    monkeypatch.setattr(kmnist.downloader, "download", fake_download)  # what the class calls
    monkeypatch.setattr(kmnist.data.kanji, "verify_path", lambda *a, **k: "sha256")
    # Two images, neither published count: a verified archive whose folder
    # matches it is fine, with no warning (issue 14).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = KuzushijiKanji(
            tmp_path, download=True, mirrors=["http://127.0.0.1:9/"], progress=False
        )
    assert calls == [
        ("kkanji", {"root": tmp_path, "mirrors": ["http://127.0.0.1:9/"], "progress": False})
    ]
    assert ds.classes == ["U+4E00", "U+4E8C"] and len(ds) == 2
    assert (tmp_path / "kkanji/kkanji2/U+4E8C/0.png").is_file()


@needs_torch
def test_datasets_pickle_for_worker_processes(tmp_path: Path) -> None:
    import pickle

    from kmnist.datasets import K49, KuzushijiKanji

    write_k49(tmp_path, "test", [1, 2, 3])
    write_kanji(tmp_path, {"U+4E00": 2})
    for ds in (K49(tmp_path, train=False, verify=False), KuzushijiKanji(tmp_path)):
        copy = pickle.loads(pickle.dumps(ds))  # what DataLoader's "spawn" workers receive
        assert type(copy) is type(ds) and len(copy) == len(ds)
        assert np.array_equal(np.asarray(copy[1][0]), np.asarray(ds[1][0]))
