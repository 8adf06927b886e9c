"""The public Python API on hostile or odd arguments: one clear line, never an internal error.

Each test names what a caller passed and what they now get: the package's
own exceptions, or a TypeError / ValueError / IndexError whose one line says
which argument was wrong and what is accepted. No network: every call here
fails (or succeeds) before a mirror would be asked.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kmnist
from kmnist.catalogue.classmap import format_codepoint, parse_codepoint, read_classmap_csv
from kmnist.data.kanji import check_kanji, extract_kanji

# --- helpers -------------------------------------------------------------------


def crafted_kmnist(root: Path, n: int = 3) -> Path:
    """Tiny KMNIST test files (NumPy format): load with verify=False."""
    (root / "kmnist").mkdir(parents=True, exist_ok=True)
    images = np.arange(n * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(n, 28, 28)
    np.savez(root / "kmnist/kmnist-test-imgs.npz", images)
    np.savez(root / "kmnist/kmnist-test-labels.npz", np.arange(n, dtype=np.uint8) % 10)
    return root


def crafted_kanji(root: Path, sizes: dict[str, int]) -> Path:
    from PIL import Image

    for code, n in sizes.items():
        folder = root / "kkanji/kkanji2" / code
        folder.mkdir(parents=True)
        for k in range(n):
            Image.new("L", (64, 64), k).save(folder / f"{k:04d}.png")
    return root


def one_line_error(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and "\r" not in message, message
    return message


# --- the data folder: types, names, what is there ------------------------------


def _loaders(root: object) -> list[tuple[str, Callable[[], object]]]:
    return [
        ("load", lambda: kmnist.load("kmnist", "test", root=root, verify=False)),  # type: ignore[arg-type]
        ("load_kanji", lambda: kmnist.load_kanji(root=root)),  # type: ignore[arg-type]
        ("extract_kanji", lambda: kmnist.extract_kanji(root=root)),  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize("root", [1, 1.5, float("nan"), True, ["data"], object()])
@pytest.mark.parametrize("which", ["load", "load_kanji", "extract_kanji"])
def test_a_root_that_is_no_path_is_a_type_error_naming_root(root: object, which: str) -> None:
    call = dict(_loaders(root))[which]
    with pytest.raises(TypeError) as excinfo:
        call()
    message = one_line_error(excinfo)
    # os.fspath's own "expected str, bytes or os.PathLike object, not int"
    # named neither the argument nor the value.
    assert message.startswith("root: a folder is a str or an os.PathLike, not ")
    assert type(root).__name__ in message


@pytest.mark.parametrize(("root", "says"), [(b"data", "as text"), ("a\0b", "NUL"), ("  ", "empty")])
def test_a_bad_root_is_named_root_not_the_commands_flag(root: object, says: str) -> None:
    for _, call in _loaders(root):
        with pytest.raises(kmnist.UsageError) as excinfo:
            call()
        message = one_line_error(excinfo)
        assert message.startswith("root") and "--dir" not in message and says in message


def _not_a_folder(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "data"
    if kind == "a file":
        path.write_bytes(b"x")
    elif kind == "a pipe":
        os.mkfifo(path)
    else:
        path.symlink_to(tmp_path / "gone")
    return path


@pytest.mark.parametrize("kind", ["a file", "a pipe", "a link to nothing"])
def test_a_root_that_is_not_a_folder_says_so(tmp_path: Path, kind: str) -> None:
    """Not "missing <root>/kmnist/...; pass download=True": no download puts files below a file."""
    root = _not_a_folder(tmp_path, kind)
    for _, call in _loaders(root):
        with pytest.raises(kmnist.UsageError) as excinfo:
            call()
        assert f"is {kind}, not a folder" in one_line_error(excinfo)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # nothing written


def test_missing_files_are_one_line_when_the_folder_has_a_newline(tmp_path: Path) -> None:
    root = tmp_path / "two\nlines"
    root.mkdir()
    with pytest.raises(kmnist.NotDownloaded) as excinfo:
        kmnist.load("kmnist", "test", root=root)
    assert "two\\nlines" in one_line_error(excinfo)
    with pytest.raises(kmnist.NotDownloaded) as excinfo:
        kmnist.load_kanji(root=root)
    assert "two\\nlines" in one_line_error(excinfo)
    with pytest.raises(kmnist.NotDownloaded) as excinfo:
        kmnist.extract_kanji(root=root)
    assert "two\\nlines" in one_line_error(excinfo)


# --- load's other arguments ------------------------------------------------------


@pytest.mark.parametrize("fmt", [0, False, [], 1, b"npz"])
def test_a_format_that_is_not_a_name_is_a_type_error(tmp_path: Path, fmt: object) -> None:
    """0, False and [] were taken as "whichever is there"; 1 as "no 1 format"."""
    crafted_kmnist(tmp_path)
    with pytest.raises(TypeError) as excinfo:
        kmnist.load("kmnist", "test", root=tmp_path, format=fmt, verify=False)  # type: ignore[arg-type]
    assert "format must be 'npz', 'mnist' or None" in one_line_error(excinfo)


def test_an_empty_format_is_not_whichever_is_there(tmp_path: Path) -> None:
    crafted_kmnist(tmp_path)
    with pytest.raises(kmnist.UnsupportedFormat, match=r"unknown format '' \(choose from npz"):
        kmnist.load("kmnist", "test", root=tmp_path, format="", verify=False)


@pytest.mark.parametrize(
    ("split", "guess"), [("TEST", "test"), (" train", "train"), ("tset", "test")]
)
def test_a_near_miss_split_is_named_with_a_guess(tmp_path: Path, split: str, guess: str) -> None:
    with pytest.raises(kmnist.UnsupportedFormat) as excinfo:
        kmnist.load("kmnist", split, root=tmp_path)
    assert f"did you mean {guess!r}?" in one_line_error(excinfo)


@pytest.mark.parametrize(
    ("catalogue", "says"),
    [
        ([1], r"catalogue\[0\] must be a kmnist.catalogue.manifest.Entry, not int 1"),
        (["kmnist"], r"catalogue\[0\] must be .*, not str 'kmnist'"),
        ("kmnist", "catalogue must be a list of .*, not one str 'kmnist'"),
        (5, "catalogue must be a list of .*, not int 5"),
    ],
)
def test_a_catalogue_of_other_things_is_a_type_error(
    tmp_path: Path, catalogue: object, says: str
) -> None:
    """Not "AttributeError: 'int' object has no attribute 'dataset'" from the manifest."""
    crafted_kmnist(tmp_path)
    with pytest.raises(TypeError, match=says):
        kmnist.load("kmnist", "test", root=tmp_path, verify=False, catalogue=catalogue)  # type: ignore[arg-type]


def test_a_catalogue_generator_is_read_once_for_all_look_ups(tmp_path: Path) -> None:
    from kmnist.catalogue.manifest import ENTRIES

    crafted_kmnist(tmp_path)
    x, y = kmnist.load("kmnist", "test", root=tmp_path, verify=False, catalogue=iter(ENTRIES))  # type: ignore[arg-type]
    assert x.shape == (3, 28, 28) and y.tolist() == [0, 1, 2]


# --- .npz files of the right name and the wrong members --------------------------


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_an_npz_with_another_array_is_refused(tmp_path: Path) -> None:
    """np.savez(f, images, other): which array is meant? Not arr_0 by chance."""
    crafted_kmnist(tmp_path)
    labels = tmp_path / "kmnist/kmnist-test-labels.npz"
    np.savez(labels, np.array([0, 1, 2], np.uint8), np.array([9, 9, 9], np.uint8))
    with pytest.raises(kmnist.VerificationError) as excinfo:
        kmnist.load("kmnist", "test", root=tmp_path, verify=False)
    assert "expected an .npz with arr_0 alone, got also 'arr_1.npy'" in one_line_error(excinfo)


def test_an_npz_with_two_members_named_arr_0_is_refused(tmp_path: Path) -> None:
    """zipfile reads the last of two same-named members, other readers the first."""
    crafted_kmnist(tmp_path)
    labels = tmp_path / "kmnist/kmnist-test-labels.npz"
    labels.unlink()
    with zipfile.ZipFile(labels, "w") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("arr_0.npy", _npy(np.array([0, 1, 2], np.uint8)))
        z.writestr("arr_0.npy", _npy(np.array([5, 5, 5], np.uint8)))
    with pytest.raises(kmnist.VerificationError) as excinfo:
        kmnist.load("kmnist", "test", root=tmp_path, verify=False)
    assert "got 2 members named arr_0.npy" in one_line_error(excinfo)


# --- the PyTorch datasets ---------------------------------------------------------


@pytest.fixture
def kmnist_test_set(tmp_path: Path) -> Any:
    from kmnist.datasets import KMNIST

    return KMNIST(crafted_kmnist(tmp_path), train=False, verify=False)


@pytest.mark.torch
@pytest.mark.parametrize("index", [3, -4, 10**20, -(10**20)])
def test_dataset_index_out_of_range_says_the_range(kmnist_test_set: Any, index: int) -> None:
    """10**20 was "ValueError: Overflow when unpacking long long"."""
    with pytest.raises(IndexError) as excinfo:
        kmnist_test_set[index]
    assert one_line_error(excinfo) == (
        f"KMNIST index {index} is out of range for 3 items (from -3 to 2)"
    )


def _odd_indices() -> list[object]:
    import torch

    return [
        True,
        None,
        1.0,
        "1",
        slice(0, 2),
        [0, 1],
        np.array([0, 1]),
        torch.tensor([1]),
        torch.tensor(1.0),
    ]


@pytest.mark.torch
def test_dataset_index_that_is_not_one_integer_is_a_type_error(kmnist_test_set: Any) -> None:
    """A slice, a list or True gave PIL's "Cannot handle this data type: (1, 1, 28), |u1"."""
    for index in _odd_indices():
        with pytest.raises(TypeError) as excinfo:
            kmnist_test_set[index]
        assert one_line_error(excinfo).startswith("KMNIST index must be one integer, not ")


@pytest.mark.torch
def test_dataset_takes_numpy_and_tensor_integers(kmnist_test_set: Any) -> None:
    import torch

    for index in (np.int64(-1), np.uint8(2), torch.tensor(2), np.array(2)):
        _, target = kmnist_test_set[index]
        assert target == 2


@pytest.mark.torch
@pytest.mark.parametrize("keyword", ["transform", "target_transform"])
def test_a_transform_that_is_not_callable_fails_at_once(tmp_path: Path, keyword: str) -> None:
    from kmnist.datasets import KMNIST

    with pytest.raises(TypeError) as excinfo:
        KMNIST(crafted_kmnist(tmp_path), train=False, verify=False, **{keyword: "to_tensor"})
    assert one_line_error(excinfo) == f"{keyword} must be a callable or None, not str 'to_tensor'"


@pytest.mark.torch
def test_a_transform_that_raises_is_the_callers_own_error(tmp_path: Path) -> None:
    from kmnist.datasets import KMNIST

    def broken(image: object) -> object:
        raise ZeroDivisionError("the caller's bug")

    ds = KMNIST(crafted_kmnist(tmp_path), train=False, verify=False, transform=broken)
    with pytest.raises(ZeroDivisionError, match="the caller's bug"):
        ds[0]


@pytest.mark.torch
@pytest.mark.parametrize("train", ["test", "false", None, 2, [], float("nan")])
def test_train_must_say_true_or_false(tmp_path: Path, train: object) -> None:
    """train="test" was true: the training split, without a word."""
    from kmnist.datasets import KMNIST

    with pytest.raises(TypeError) as excinfo:
        KMNIST(crafted_kmnist(tmp_path), train=train, verify=False)  # type: ignore[arg-type]
    assert one_line_error(excinfo).startswith("train must be True or False, not ")


@pytest.mark.torch
def test_train_as_numpy_bool_or_0_is_the_test_split(tmp_path: Path) -> None:
    from kmnist.datasets import KMNIST

    root = crafted_kmnist(tmp_path)
    for train in (np.False_, 0):
        ds = KMNIST(root, train=train, verify=False)  # type: ignore[arg-type]
        assert ds.train is False and len(ds) == 3


@pytest.mark.torch
@pytest.mark.parametrize("mirrors", ["https://example.org/kmnist", b"http://x", 5])
def test_mirrors_must_be_a_list(tmp_path: Path, mirrors: object) -> None:
    """A string was read as one mirror per character: "mirror h: no such folder", ..."""
    from kmnist.datasets import KMNIST

    with pytest.raises(TypeError) as excinfo:
        KMNIST(tmp_path, train=False, download=True, mirrors=mirrors, progress=False)  # type: ignore[arg-type]
    assert one_line_error(excinfo).startswith("mirrors must be a list of mirrors")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.torch
def test_dataset_root_of_wrong_type_or_not_a_folder(tmp_path: Path) -> None:
    from kmnist.datasets import KMNIST, KuzushijiKanji

    a_file = _not_a_folder(tmp_path, "a file")
    for cls in (KMNIST, KuzushijiKanji):
        with pytest.raises(
            TypeError, match=r"^root: a folder is a str or an os.PathLike, not int 1$"
        ):
            cls(1)  # type: ignore[arg-type]
        with pytest.raises(kmnist.UsageError, match="is a file, not a folder"):
            # A folder mirror that is not there: even a regression never goes online.
            cls(a_file, download=True, mirrors=[str(tmp_path / "no-mirror")], progress=False)


@pytest.mark.torch
def test_kanji_dataset_index(tmp_path: Path) -> None:
    from kmnist.datasets import KuzushijiKanji

    ds = KuzushijiKanji(crafted_kanji(tmp_path, {"U+4E00": 6}), train=False)
    assert len(ds) == 1
    with pytest.raises(IndexError, match=r"^KuzushijiKanji index 1 is out of range for 1 items"):
        ds[1]
    with pytest.raises(TypeError, match=r"^KuzushijiKanji index must be one integer, not slice"):
        ds[0:1]  # was AttributeError: 'tuple' object has no attribute 'read'


# --- the Kanji API ---------------------------------------------------------------


def test_load_kanji_of_an_empty_folder_name_is_not_the_working_folder(tmp_path: Path) -> None:
    """folder="" listed the working folder: an empty index, without a word."""
    with pytest.raises(kmnist.UsageError, match=r"^folder is empty: name a folder$"):
        kmnist.load_kanji(root=tmp_path, folder="")


@pytest.mark.parametrize("index", [None, "kkanji", [1, 2]])
def test_kanji_split_and_arrays_need_an_index(index: object) -> None:
    for call in (
        lambda: kmnist.kanji_split(index, train=True),  # type: ignore[arg-type]
        lambda: kmnist.kanji_arrays(index),  # type: ignore[arg-type]
    ):
        with pytest.raises(TypeError, match=r"^index must be a kmnist.KanjiIndex"):
            call()


def test_kanji_split_train_must_say_true_or_false(tmp_path: Path) -> None:
    index = kmnist.load_kanji(root=crafted_kanji(tmp_path, {"U+4E00": 5}))
    with pytest.raises(TypeError, match=r"^train must be True or False, not str 'false'$"):
        kmnist.kanji_split(index, train="false")  # type: ignore[arg-type]
    assert len(kmnist.kanji_split(index, train=False)) == 1


@pytest.mark.parametrize(
    ("indices", "error", "says"),
    [
        ([5], IndexError, r"^indices\[0\] 5 is out of range for 5 items \(from -5 to 4\)$"),
        ([0, 10**20], IndexError, r"^indices\[1\] 100000000000000000000 is out of range"),
        ([1.5], TypeError, r"^indices\[0\] must be one integer, not float 1.5$"),
        ([True], TypeError, r"^indices\[0\] must be one integer, not bool True$"),
        ("01", TypeError, r"^indices must be a list of integers, not one str '01'"),
        (3, TypeError, r"^indices must be a list of integers, not int 3$"),
    ],
)
def test_kanji_arrays_indices(
    tmp_path: Path, indices: object, error: type[Exception], says: str
) -> None:
    """[5] of 5 was "IndexError: tuple index out of range", 10**20 "cannot fit 'int'"."""
    index = kmnist.load_kanji(root=crafted_kanji(tmp_path, {"U+4E00": 5}))
    with pytest.raises(error, match=says):
        kmnist.kanji_arrays(index, indices=indices)  # type: ignore[arg-type]
    images, labels = kmnist.kanji_arrays(index, indices=[np.int64(-1), 0])
    assert images.shape == (2, 64, 64) and images[0].max() == 4 and labels.tolist() == [0, 0]


@pytest.mark.parametrize(
    ("keywords", "error", "says"),
    [
        ({"expected_images": "8"}, TypeError, r"^expected_images must be an integer, not str '8'$"),
        ({"expected_classes": 2.0}, TypeError, r"^expected_classes must be an integer, not float"),
        ({"expected_images": -1}, ValueError, r"^expected_images must be at least 0, not -1$"),
        ({"side": 0}, ValueError, r"^side must be at least 1, not 0$"),
        ({"archive": 1}, TypeError, r"^archive: a file is a str or an os.PathLike, not int 1$"),
    ],
)
def test_check_kanji_arguments(
    tmp_path: Path, keywords: dict[str, Any], error: type[Exception], says: str
) -> None:
    """expected_images="8" was "ValueError: Cannot specify ',' with 's'."."""
    folder = crafted_kanji(tmp_path, {"U+4E00": 1}) / "kkanji/kkanji2"
    with pytest.raises(error, match=says):
        check_kanji(folder, **keywords)


@pytest.mark.parametrize(
    ("keywords", "error", "says"),
    [
        ({"published": 1}, TypeError, r"^published must be a kmnist.RemoteFile or None, not int$"),
        ({"archive": ""}, kmnist.UsageError, r"^archive is empty: name a file$"),
        ({"expected_images": "x"}, TypeError, r"^expected_images must be an integer"),
    ],
)
def test_extract_kanji_arguments(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    keywords: dict[str, Any],
    error: type[Exception],
    says: str,
) -> None:
    """published=1 was "AttributeError: 'int' object has no attribute 'sha256'".

    archive="" was the working folder: a lock file was left there, in
    .kmnist/kkanji2.lock, outside the data folder.
    """
    root, cwd = tmp_path / "data", tmp_path / "cwd"
    root.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    with pytest.raises(error, match=says):
        extract_kanji(root=root, **keywords)
    assert list(root.iterdir()) == [] and list(cwd.iterdir()) == []


# --- class-map CSVs ---------------------------------------------------------------

GOOD_CSV = "index,codepoint,char\n0,U+304A,お\n1,U+304D,き\n"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"a,b\n1,2\n", "expected the header index,codepoint,char, got ['a', 'b']"),
        (b"index,codepoint\n0,U+304A\n", "expected the header index,codepoint,char"),
        (b"", "expected the header index,codepoint,char, got nothing"),
        (b"index,codepoint,char\n0\n", "row 0 has 1 fields, not 3"),
        (b"index,codepoint,char\n0,U+304A,\xe9\n", "not UTF-8 text (a byte 0xe9 in it)"),
        (b"index,codepoint,char\n0,U+304A," + b"x" * 200_000 + b"\n", "not a readable CSV"),
        (b"index,codepoint,char\n0,U+-304,x\n", "'U+-304' is not a code point"),
        ("index,codepoint,char\n0_0,U+304A,お\n".encode(), "row 0 is inconsistent"),
        ("index,codepoint,char,x\n0,U+304A,お,1\n".encode(), "expected the header"),
        (b"index,codepoint,char\n" + b"0,U+0041,A\n" * 100_000, "not a class map"),
    ],
)
def test_hostile_class_map_csv_is_one_value_error(
    tmp_path: Path, content: bytes, says: str
) -> None:
    """A missing column was a KeyError, a short row an AttributeError, a long field csv.Error."""
    path = tmp_path / "kmnist_classmap.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError) as excinfo:
        read_classmap_csv(path)
    message = one_line_error(excinfo)
    assert says in message and len(message) < 300


def test_class_map_csv_with_a_byte_order_mark_reads(tmp_path: Path) -> None:
    """Saved by a spreadsheet: the header was "\\ufeffindex", and the row a KeyError."""
    path = tmp_path / "kmnist_classmap.csv"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD_CSV.replace("\n", "\r\n").encode() + b"\r\n")
    assert read_classmap_csv(path) == kmnist.classmap("kmnist")[:2]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=200).map(lambda t: (GOOD_CSV + t).encode()))
def test_class_map_csv_never_raises_anything_but_value_error(content: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "map.csv"
        path.write_bytes(content)
        try:
            rows = read_classmap_csv(path)
        except ValueError as exc:
            assert "\n" not in str(exc)
            return
    assert [c.index for c in rows] == list(range(len(rows)))
    assert all(chr(parse_codepoint(c.codepoint)) == c.char for c in rows)


@given(st.integers(min_value=0, max_value=0x10FFFF))
def test_parse_codepoint_round_trips(code: int) -> None:
    assert parse_codepoint(format_codepoint(code)) == code


@settings(max_examples=500)
@given(
    st.text(max_size=12)
    | st.text(alphabet="0123456789ABCDEFabcdef -_+x\u0663\uff13", max_size=8).map(
        lambda t: "U+" + t
    )
)
def test_parse_codepoint_takes_only_u_plus_ascii_hex(text: str) -> None:
    """int(text, 16) also took "U+-304", "U+ 304A", "U+30_4A" and non-ASCII digits."""
    try:
        code = parse_codepoint(text)
    except ValueError:
        return
    assert text.startswith("U+") and 4 <= len(text) - 2 <= 6
    assert all(c in "0123456789ABCDEFabcdef" for c in text[2:])
    assert 0 <= code <= 0x10FFFF and code == int(text[2:], 16)


@pytest.mark.parametrize("text", ["U+-304", "U+ 304A", "U+30_4A", "U+\u0663\u0660\u0664A", None])
def test_parse_codepoint_refuses(text: object) -> None:
    with pytest.raises(ValueError, match=r"^not a code point"):
        parse_codepoint(text)  # type: ignore[arg-type]


def _error_classes(base: type[kmnist.KmnistError]) -> list[type[kmnist.KmnistError]]:
    out = [base]
    for sub in base.__subclasses__():
        out += _error_classes(sub)
    return out


def test_every_kmnist_error_is_one_line_whatever_its_message_holds(tmp_path: Path) -> None:
    # A path with a newline in a VerificationError split the message (and a
    # log line, a notebook's output) in two: the commands escaped what they
    # printed, the library did not.
    root = tmp_path / "two\nlines"
    (root / "kmnist").mkdir(parents=True)
    os.mkfifo(root / "kmnist" / "kmnist-test-imgs.npz")
    (root / "kmnist" / "kmnist-test-labels.npz").write_bytes(b"x")
    with pytest.raises(kmnist.VerificationError) as info:
        kmnist.load("kmnist", "test", root=root, verify=False)
    assert "two\\nlines" in str(info.value) and "\n" not in str(info.value)
    assert info.value.args[0].count("\n") == 1  # the text itself is kept, escaped only when shown


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_a_kmnist_error_of_any_text_is_one_printable_line(text: str) -> None:
    for cls in _error_classes(kmnist.KmnistError):
        try:
            exc = cls(text)
        except TypeError:
            continue  # a subclass built from other arguments (a path and reasons)
        shown = str(exc)
        assert shown.isprintable() and len(shown.splitlines()) <= 1


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"format": "NPZ"}, "has no 'NPZ' format in the 2019 release; did you mean 'npz'?"),
        ({"format": "np"}, "did you mean 'npz'?"),
        ({"split": "TEST"}, "unknown split 'TEST'; did you mean 'test'?"),
    ],
)
def test_download_guesses_a_near_miss_format_or_split(
    tmp_path: Path, change: dict[str, str], said: str
) -> None:
    # The command takes "-f NPZ"; the library, exact as torchvision, named
    # the choices but not the one meant.
    with pytest.raises(kmnist.UsageError) as info:
        kmnist.download("kmnist", root=tmp_path, progress=False, **change)  # type: ignore[arg-type]
    assert said in str(info.value)
    assert list(tmp_path.iterdir()) == []
