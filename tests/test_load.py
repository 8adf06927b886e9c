"""kmnist.load: both formats to the same arrays, and clear errors for bad files."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kmnist
from kmnist.formats import read_idx, read_npz

from .conftest import REALDATA, needs_realdata


def idx_bytes(shape: tuple[int, ...], payload: bytes | None = None, magic_type: int = 8) -> bytes:
    n = 1
    for d in shape:
        n *= d
    head = bytes([0, 0, magic_type, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
    return head + (bytes(i % 251 for i in range(n)) if payload is None else payload)


def write_gz(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data))
    return path


def link_real(root: Path, *names: str) -> None:
    """Make ``root`` hold some real files without copying them (symlinks)."""
    for name in names:
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(REALDATA / name)


# --- the real files -----------------------------------------------------------


@pytest.mark.realdata
@needs_realdata
def test_both_formats_decode_to_identical_arrays() -> None:
    x_npz, y_npz = kmnist.load("kmnist", "test", root=REALDATA, format="npz")
    x_idx, y_idx = kmnist.load("kmnist", "test", root=REALDATA, format="mnist")
    assert x_npz.shape == (10000, 28, 28) and x_npz.dtype == np.uint8
    assert y_npz.shape == (10000,) and y_npz.dtype == np.uint8
    assert np.array_equal(x_npz, x_idx)
    assert np.array_equal(y_npz, y_idx)
    # Balanced: 1,000 test images per class.
    assert np.bincount(y_npz).tolist() == [1000] * 10


@pytest.mark.realdata
@needs_realdata
def test_default_format_is_whichever_is_complete(tmp_path: Path) -> None:
    link_real(tmp_path, "kmnist/t10k-images-idx3-ubyte.gz", "kmnist/t10k-labels-idx1-ubyte.gz")
    link_real(tmp_path, "kmnist/kmnist-test-labels.npz")  # NumPy is incomplete: no images
    x, y = kmnist.load("kmnist", "test", root=tmp_path)
    assert x.shape == (10000, 28, 28) and y.shape == (10000,)


@pytest.mark.realdata
@needs_realdata
def test_real_truncated_download_is_a_clear_error() -> None:
    with pytest.raises(kmnist.VerificationError, match=r"gzip|truncated"):
        read_idx(REALDATA / "broken" / "t10k-images-idx3-ubyte.gz.truncated", ndim=3)


@pytest.mark.realdata
@needs_realdata
def test_real_labels_decode(tmp_path: Path) -> None:
    y_train_idx = read_idx(REALDATA / "kmnist" / "train-labels-idx1-ubyte.gz", ndim=1)
    y_train_npz = read_npz(REALDATA / "kmnist" / "kmnist-train-labels.npz", ndim=1)
    assert np.array_equal(y_train_idx, y_train_npz) and len(y_train_idx) == 60000
    y49 = read_npz(REALDATA / "k49" / "k49-test-labels.npz", ndim=1)
    assert len(y49) == 38547 and int(y49.max()) == 48


@pytest.mark.realdata
@needs_realdata
def test_stale_2018_images_are_refused_by_verification(tmp_path: Path) -> None:
    (tmp_path / "kmnist").mkdir()
    (tmp_path / "kmnist" / "kmnist-test-imgs.npz").symlink_to(REALDATA / "v1/kmnist-test-imgs.npz")
    link_real(tmp_path, "kmnist/kmnist-test-labels.npz")
    with pytest.raises(kmnist.VerificationError, match=r"kmnist-test-imgs\.npz.*2018"):
        kmnist.load("kmnist", "test", root=tmp_path)
    # Well-formed, so without verification it decodes: the checksum is what tells.
    x, _ = kmnist.load("kmnist", "test", root=tmp_path, verify=False)
    assert x.shape == (10000, 28, 28)


# --- missing files and download=True -----------------------------------------


def test_missing_files_name_the_path_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(kmnist.NotDownloaded, match=r"kmnist-test-imgs\.npz.*download=True"):
        kmnist.load("kmnist", "test", root=tmp_path)


def test_data_folder_defaults_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(kmnist.NotDownloaded, match=r"data/kmnist/kmnist-test-imgs\.npz"):
        kmnist.load("kmnist", "test")
    monkeypatch.setenv("KMNIST_DATA", str(tmp_path / "shared"))
    with pytest.raises(kmnist.NotDownloaded, match=r"shared/kmnist/kmnist-test-imgs\.npz"):
        kmnist.load("kmnist", "test")


@pytest.mark.realdata
@needs_realdata
def test_load_from_the_environment_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KMNIST_DATA", str(REALDATA))
    x, y = kmnist.load("kmnist", "test")
    assert x.shape == (10000, 28, 28) and y.shape == (10000,)


@pytest.fixture
def realdata_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real files as the mirror: a local folder in the official layout, no network."""
    monkeypatch.setenv("KMNIST_MIRROR", str(REALDATA))
    monkeypatch.setenv("TQDM_DISABLE", "1")


@pytest.mark.realdata
@needs_realdata
@pytest.mark.usefixtures("realdata_mirror")
def test_download_true_fetches_what_is_missing(tmp_path: Path) -> None:
    link_real(tmp_path, "kmnist/kmnist-test-labels.npz")
    x, y = kmnist.load("kmnist", "test", root=tmp_path, download=True)
    assert x.shape == (10000, 28, 28) and len(y) == 10000
    fetched = tmp_path / "kmnist/kmnist-test-imgs.npz"
    assert fetched.is_file() and not fetched.is_symlink()
    assert (tmp_path / "kmnist/kmnist-test-labels.npz").is_symlink()  # left as it was
    assert not list(tmp_path.rglob("*.part"))


def test_download_true_that_cannot_fetch_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KMNIST_MIRROR", str(tmp_path / "empty-mirror"))
    with pytest.raises(kmnist.KmnistError, match="kmnist-test-imgs"):
        kmnist.load("kmnist", "test", root=tmp_path / "data", download=True)


# --- crafted bad IDX files ----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (idx_bytes((5, 28, 28))[:-100], "truncated"),
        (idx_bytes((5, 28, 28)) + b"\0", "trailing"),
        (idx_bytes((5, 32, 32)), "28x28"),
        (idx_bytes((5,)), "dimensions"),
        (idx_bytes((5, 28, 28), magic_type=0x0D), "element type"),
        (b"<html><body>503 Service Unavailable</body></html>", "magic"),
        (b"\0\0\x08", "magic|truncated"),
        (b"", "magic"),
        # A forged header that promises 4 GB of images in a tiny file.
        (idx_bytes((0xFFFFFFF, 28, 28), payload=b""), "fits the file"),
    ],
    ids=["short", "trailing", "32x32", "labels-as-images", "float", "html", "cut-header", "empty",
         "forged-count"],
)  # fmt: skip
def test_bad_idx_images(tmp_path: Path, data: bytes, match: str) -> None:
    path = write_gz(tmp_path / "x.gz", data)
    with pytest.raises(kmnist.VerificationError, match=match):
        read_idx(path, ndim=3)


def test_idx_that_is_not_gzip(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(idx_bytes((5, 28, 28)))  # someone gunzipped it but kept the name
    with pytest.raises(kmnist.VerificationError, match="gzip"):
        read_idx(path, ndim=3)


def test_cut_gzip_stream(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes((50, 28, 28)))[:-30])
    with pytest.raises(kmnist.VerificationError, match="gzip"):
        read_idx(path, ndim=3)


def test_good_crafted_idx_round_trips(tmp_path: Path) -> None:
    pixels = bytes(range(256)) * 49  # 12,544 = 16 x 28 x 28
    path = write_gz(tmp_path / "x.gz", idx_bytes((16, 28, 28), pixels))
    x = read_idx(path, ndim=3)
    assert x.shape == (16, 28, 28) and x.dtype == np.uint8
    assert x.tobytes() == pixels
    x[0, 0, 0] = 7  # writable, like the arrays np.load returns


# --- crafted bad npz files and pairs ------------------------------------------


def test_npz_refuses_pickles_and_other_dtypes(tmp_path: Path) -> None:
    np.savez(tmp_path / "obj.npz", np.array([object()] * 3, dtype=object))
    # Refused by its header, before a byte of the pickle is read.
    with pytest.raises(kmnist.VerificationError, match="expected uint8, got object"):
        read_npz(tmp_path / "obj.npz", ndim=1)
    np.savez(tmp_path / "f.npz", np.zeros((3, 28, 28), dtype=np.float32))
    with pytest.raises(kmnist.VerificationError, match="uint8"):
        read_npz(tmp_path / "f.npz", ndim=3)
    np.savez(tmp_path / "other.npz", x=np.zeros(3, dtype=np.uint8))
    with pytest.raises(kmnist.VerificationError, match="arr_0"):
        read_npz(tmp_path / "other.npz", ndim=1)
    (tmp_path / "html.npz").write_bytes(b"<html>Not Found</html>")
    with pytest.raises(kmnist.VerificationError, match="readable"):
        read_npz(tmp_path / "html.npz", ndim=1)


def test_truncated_npz(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "a.npz", np.arange(5000, dtype=np.uint8))
    data = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "a.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(kmnist.VerificationError, match="readable"):
        read_npz(tmp_path / "a.npz", ndim=1)


def _crafted_kmnist(root: Path, n_images: int, labels: list[int]) -> None:
    (root / "kmnist").mkdir(parents=True)
    np.savez(root / "kmnist/kmnist-test-imgs.npz", np.zeros((n_images, 28, 28), np.uint8))
    np.savez(root / "kmnist/kmnist-test-labels.npz", np.array(labels, np.uint8))


def test_counts_must_agree(tmp_path: Path) -> None:
    _crafted_kmnist(tmp_path, 5, [0, 1, 2, 3])
    with pytest.raises(kmnist.VerificationError, match="5 labels"):
        kmnist.load("kmnist", "test", root=tmp_path, verify=False)


def test_labels_must_name_a_class(tmp_path: Path) -> None:
    _crafted_kmnist(tmp_path, 2, [3, 10])
    with pytest.raises(kmnist.VerificationError, match="label 10"):
        kmnist.load("kmnist", "test", root=tmp_path, verify=False)


def test_verification_on_by_default(tmp_path: Path) -> None:
    _crafted_kmnist(tmp_path, 2, [3, 4])
    with pytest.raises(kmnist.VerificationError, match="size"):
        kmnist.load("kmnist", "test", root=tmp_path)


# --- requests that cannot be loaded -------------------------------------------


@pytest.mark.parametrize(
    ("dataset", "split", "fmt", "error"),
    [
        ("kkanji", "test", None, kmnist.UnsupportedFormat),
        ("emnist", "test", None, kmnist.UnknownDataset),
        ("kmnist", "all", None, kmnist.UnsupportedFormat),
        ("k49", "test", "mnist", kmnist.UnsupportedFormat),
    ],
)
def test_bad_requests(
    tmp_path: Path, dataset: str, split: str, fmt: str | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        kmnist.load(dataset, split, root=tmp_path, format=fmt)


def test_import_kmnist_does_not_import_numpy() -> None:
    code = "import sys, kmnist; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_load_stays_a_function_after_importing_its_module() -> None:
    import kmnist.data.load

    assert callable(kmnist.load) and kmnist.load.__module__ == "kmnist.data.load"
    assert callable(kmnist.classmap)


@pytest.mark.realdata
@needs_realdata
def test_flat_folder_of_the_original_script(tmp_path: Path) -> None:
    """The original download_data.py put every file in one folder, without <dataset>/."""
    for name in ("kmnist-test-imgs.npz", "kmnist-test-labels.npz"):
        (tmp_path / name).symlink_to(REALDATA / "kmnist" / name)
    x, y = kmnist.load("kmnist", "test", root=tmp_path)
    assert x.shape == (10000, 28, 28) and len(y) == 10000


def test_a_flat_whole_file_beats_an_interrupted_nested_part(tmp_path: Path) -> None:
    """``--flat`` once, then an interrupted nested run: the ``.part`` it left
    beside ``<root>/<dataset>/`` must not hide the whole file at ``<root>``."""
    np.savez(tmp_path / "k49-test-imgs.npz", np.zeros((3, 28, 28), np.uint8))
    np.savez(tmp_path / "k49-test-labels.npz", np.array([0, 30, 48], np.uint8))
    (tmp_path / "k49").mkdir()
    (tmp_path / "k49/k49-test-imgs.npz.part").write_bytes(b"PK\x03\x04 half")
    x, y = kmnist.load("k49", "test", root=tmp_path, verify=False)
    assert x.shape == (3, 28, 28) and y.tolist() == [0, 30, 48]
    # A folder where the flat file would be is no file: the nested name stays.
    (tmp_path / "k49-test-imgs.npz").unlink()
    (tmp_path / "k49-test-imgs.npz").mkdir()
    with pytest.raises(kmnist.KmnistError, match=r"k49-test-imgs\.npz"):
        kmnist.load("k49", "test", root=tmp_path, verify=False)


@pytest.mark.realdata
@needs_realdata
@pytest.mark.usefixtures("realdata_mirror")
def test_download_true_replaces_the_2018_images(tmp_path: Path) -> None:
    images = tmp_path / "kmnist/kmnist-test-imgs.npz"
    images.parent.mkdir()
    images.write_bytes((REALDATA / "v1/kmnist-test-imgs.npz").read_bytes())
    link_real(tmp_path, "kmnist/kmnist-test-labels.npz")
    with pytest.raises(kmnist.VerificationError, match="2018"):
        kmnist.load("kmnist", "test", root=tmp_path)
    x, _ = kmnist.load("kmnist", "test", root=tmp_path, download=True)
    assert images.read_bytes() == (REALDATA / "kmnist/kmnist-test-imgs.npz").read_bytes()
    assert x.shape == (10000, 28, 28)


def test_k49_labels_go_up_to_48(tmp_path: Path) -> None:
    (tmp_path / "k49").mkdir()
    np.savez(tmp_path / "k49/k49-test-imgs.npz", np.zeros((3, 28, 28), np.uint8))
    np.savez(tmp_path / "k49/k49-test-labels.npz", np.array([0, 30, 48], np.uint8))
    _, y = kmnist.load("k49", "test", root=tmp_path, verify=False)
    assert [kmnist.classmap("k49")[i].char for i in y] == ["あ", "ま", "ゝ"]
    np.savez(tmp_path / "k49/k49-test-labels.npz", np.array([0, 30, 49], np.uint8))
    with pytest.raises(kmnist.VerificationError, match="labels below 49"):
        kmnist.load("k49", "test", root=tmp_path, verify=False)
