"""The data after the download, at its edges: loaders, the Kanji split, datasets and previews.

Each test names what a caller passed and what they get now: one clear error
(a kmnist error, or a TypeError / ValueError with words) or the right
result, never a traceback from numpy, Pillow or pathlib, and never a printed
command that fetches somewhere other than where the call looked. No network:
every download goes to a closed port or a FaultyServer on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kmnist
from kmnist.errors import KmnistError

# --- the command a missing-files error prints runs where the call looked -------------


def printed_command(message: str) -> str:
    """The ``kmnist-download ...`` command at the end of ``message`` (up to a closing bracket)."""
    start = message.index("kmnist-download ")
    command = message[start:]
    return command[:-1] if command.endswith(")") else command


def shell_words(command: str) -> list[bytes]:
    """The words bash makes of ``command``, byte for byte (the program's name first)."""
    program = "kmnist-download() { printf '%s\\0' kmnist-download \"$@\"; }; "
    r = subprocess.run(
        ["bash", "-c", program + command], capture_output=True, timeout=30, check=True
    )
    return r.stdout.split(b"\0")[:-1]


def dir_given(words: list[bytes]) -> Path:
    """The data folder ``kmnist-download`` takes from these words: its own parser decides."""
    from kmnist.cli.download import build_parser

    args = build_parser().parse_args([os.fsdecode(w) for w in words[1:]])
    return Path(args.dir)


# Names a shell would split, expand or glob: spaces, ~, $, quotes, *, newlines,
# and bytes that are not UTF-8 (as Python reads them, surrogate-escaped).
FOLDER_NAMES = st.text(
    alphabet=st.sampled_from([*"ab ~$'\"*?\\;&|`!#\n\t-", "\udcff", "é"]),
    min_size=1,
    max_size=12,
).filter(lambda s: s.strip() and "\0" not in s and s not in (".", ".."))


def missing_message(call: str, root: Path) -> str:
    """What ``call`` says for a data folder that holds none of the files."""
    with pytest.raises(KmnistError) as excinfo:
        if call == "load":
            kmnist.load("kmnist", "test", root=root)
        elif call == "load_kanji":
            kmnist.load_kanji(root=root)
        else:
            kmnist.extract_kanji(root=root)
    return str(excinfo.value)


@pytest.mark.skipif(not os.path.exists("/bin/bash"), reason="needs bash to run the command")
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=FOLDER_NAMES, call=st.sampled_from(["load", "load_kanji", "extract_kanji"]))
def test_the_printed_command_names_the_folder_the_call_looked_in(
    tmp_path: Path, name: str, call: str
) -> None:
    # "run: kmnist-download --dataset kmnist --dir /data/my files" was printed
    # as it stood: two words to the shell (a usage error), a "~" the home
    # folder, a "$x" a variable: the command fetched elsewhere than the call looked.
    root = tmp_path / name
    words = shell_words(printed_command(missing_message(call, root)))
    assert words[0] == b"kmnist-download"
    assert dir_given(words) == root


@pytest.mark.parametrize("root", ["~/kuzushiji data", "-data"])
def test_a_relative_folder_is_printed_as_the_call_took_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root: str
) -> None:
    # kmnist.load takes "~" as a folder of that name, as pathlib does: the
    # printed command must too, or the shell sends the files to the home folder.
    monkeypatch.chdir(tmp_path)
    words = shell_words(printed_command(missing_message("load", Path(root))))
    assert dir_given(words) == Path(root)
    assert words[1:3] == [b"--dataset", b"kmnist"]


# --- the Kanji split: a partition, the same for any order, of any index -------------


def hand_built(sizes: list[int], names: list[str] | None = None) -> kmnist.KanjiIndex:
    """An index of ``sizes[c]`` images in class c, as a caller who filters one builds it."""
    from kmnist.catalogue.classmap import CharClass

    classes = [CharClass.of(c, 0x4E00 + c) for c in range(len(sizes))]
    paths, labels = [], []
    for c, n in enumerate(sizes):
        for k in range(n):
            name = names[k % len(names)] + str(k) if names else f"{k:04d}"
            paths.append(f"kkanji2/{classes[c].codepoint}/{name}.png")
            labels.append(c)
    return kmnist.KanjiIndex(paths, labels, classes)  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=23), max_size=8),
    names=st.lists(
        st.text(min_size=1, max_size=6).filter(lambda s: "/" not in s and "\0" not in s), max_size=3
    ),
    order=st.randoms(use_true_random=False),
)
def test_the_kanji_split_is_a_partition_whatever_the_order(
    sizes: list[int], names: list[str], order: object
) -> None:
    index = hand_built(sizes, names or None)
    train = kmnist.kanji_split(index, train=True)
    test = kmnist.kanji_split(index, train=False)
    assert sorted(train + test) == list(range(len(index.paths)))  # every image, once
    assert train == sorted(train) and test == sorted(test)
    for c, n in enumerate(sizes):
        # A fifth of each class (rounded down) to test: a class of 1 to 4 is train only.
        assert sum(index.labels[i] == c for i in test) == n // 5
    # The split follows the names, not the order the folder was listed in.
    shuffled = list(zip(index.paths, index.labels))
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    again = kmnist.KanjiIndex(
        tuple(p for p, _ in shuffled), tuple(y for _, y in shuffled), index.classes
    )
    tested = {again.paths[i] for i in kmnist.kanji_split(again, train=False)}
    assert tested == {index.paths[i] for i in test}


def test_an_index_kept_to_classes_with_enough_images_splits_and_decodes(tmp_path: Path) -> None:
    # What a low-shot study does: keep the classes with at least
    # five images. None left is an empty split, not an error from NumPy.
    index = hand_built([1, 7, 4])
    counts = {c: index.labels.count(c) for c in set(index.labels)}
    for least in (5, 100):
        kept = [i for i, y in enumerate(index.labels) if counts[y] >= least]
        sub = kmnist.KanjiIndex(
            [index.paths[i] for i in kept], [index.labels[i] for i in kept], index.classes
        )
        assert len(kmnist.kanji_split(sub, train=False)) == len(kept) // 5
        images, labels = kmnist.kanji_arrays(sub, indices=[])
        assert images.shape == (0, 64, 64) and labels.shape == (0,)


@pytest.mark.parametrize(
    ("paths", "labels", "classes", "error", "says"),
    [
        # Fewer labels than paths: the unlabelled image went to train, without a word.
        (
            ["a/U+4E00/0.png", "a/U+4E00/1.png"],
            [0],
            1,
            ValueError,
            "one label per path: 2 paths, 1 labels",
        ),
        # A label past the classes: an IndexError later, in whatever read classes[label].
        (["a/U+4E00/0.png"], [3], 1, ValueError, "labels[0] is 3, not one of the 1 classes"),
        ([Path("a/U+4E00/0.png")], [-1], 1, ValueError, "labels[0] is -1"),
        (["a/U+4E00/0.png"], [0.0], 1, TypeError, "labels[0] must be an integer, not float"),
        (["a/U+4E00/0.png"], [True], 1, TypeError, "labels[0] must be an integer, not bool"),
        ("a/U+4E00/0.png", [0], 1, TypeError, "paths must be a list of image paths"),
        ([7], [0], 1, TypeError, "paths[0]: a file is a str or an os.PathLike, not int 7"),
        (["a/U+4E00/0.png"], [0], ["U+4E00"], TypeError, "classes[0] must be a kmnist.CharClass"),
    ],
)
def test_a_hand_built_index_that_cannot_be_split_says_why(
    paths: object, labels: object, classes: object, error: type[Exception], says: str
) -> None:
    from kmnist.catalogue.classmap import CharClass

    if isinstance(classes, int):
        classes = [CharClass.of(c, 0x4E00 + c) for c in range(classes)]
    with pytest.raises(error) as excinfo:
        index = kmnist.KanjiIndex(paths, labels, classes)  # type: ignore[arg-type]
        kmnist.kanji_split(index, train=True)  # the old code got this far: and split it
        kmnist.kanji_arrays(index, indices=[])
    assert says in str(excinfo.value)


def test_a_hand_built_index_of_str_paths_and_numpy_labels_is_split() -> None:
    # str paths were "AttributeError: 'str' object has no attribute 'parent'"
    # from inside kanji_split; NumPy labels are what a filter on an array gives.
    import numpy as np

    index = hand_built([6])
    given = kmnist.KanjiIndex(
        [str(p) for p in index.paths], np.array(index.labels), list(index.classes)
    )
    assert all(isinstance(p, Path) for p in given.paths)
    assert all(type(y) is int for y in given.labels)
    assert kmnist.kanji_split(given, train=False) == kmnist.kanji_split(index, train=False)


# --- --preview and --font ------------------------------------------------------------

needs_pillow = pytest.mark.skipif(
    __import__("importlib").util.find_spec("PIL") is None, reason="Pillow is not installed"
)
SYSTEM_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def preview_argv(root: Path, font: str) -> list[str]:
    # A mirror on a closed port: a font check that let the run through would fail later, exit 1.
    return [
        "-d", "kmnist", "-s", "test", "--dir", str(root), "-m", "http://127.0.0.1:9/",
        "--preview", str(root / "grid.png"), "--font", font,
    ]  # fmt: skip


@needs_pillow
@pytest.mark.parametrize(
    ("make", "cause"),
    [
        ("missing", "there is no such file"),
        ("folder", "it is a folder"),
        ("pipe", "it is a pipe"),
        ("device", "it is a device"),
        ("garbage", None),
    ],
)
def test_a_font_that_cannot_be_read_says_why_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: str, cause: str | None
) -> None:
    # Each was "--font X: not a font file Pillow can read": the user looked
    # for another font when the path was mistyped or named a folder.
    from kmnist.cli.download import main

    font = tmp_path / "font.ttf"
    if make == "folder":
        font.mkdir()
    elif make == "pipe":
        os.mkfifo(font)
    elif make == "device":
        font = Path("/dev/zero")
    elif make == "garbage":
        font.write_bytes(b"\x00\x01\x00\x00" + b"\xff" * 4000)
    assert main(preview_argv(tmp_path, str(font))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    said = f"kmnist-download: error: --font {font}: not a font file Pillow can read"
    assert err.strip() == (said if cause is None else f"{said}: {cause}")
    assert not (tmp_path / "grid.png").exists()


@needs_pillow
@pytest.mark.skipif(not SYSTEM_FONT.is_file(), reason=f"no font at {SYSTEM_FONT}")
def test_a_font_this_user_may_not_read_says_so(tmp_path: Path) -> None:
    import shutil
    import sys

    from .test_unreadable import bound

    font = tmp_path / "locked.ttf"
    shutil.copyfile(SYSTEM_FONT, font)
    font.chmod(0)
    script = Path(sys.executable).with_name("kmnist-download")
    r = bound([str(script), *preview_argv(tmp_path, str(font))])
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (
        f"kmnist-download: error: --font {font}: not a font file Pillow can read: "
        "this user may not read it (permission denied)"
    )


@needs_pillow
@pytest.mark.parametrize(
    ("keyword", "value", "error", "says"),
    [
        ("per_class", 2.5, TypeError, "per_class must be an integer, not float 2.5"),
        ("per_class", "3", TypeError, "per_class must be an integer, not str '3'"),
        ("scale", True, TypeError, "scale must be an integer, not bool True"),
        # A canvas of 7 GB: a MemoryError after the arrays were read, or the OOM killer.
        ("scale", 300, ValueError, "make a picture of at least 92,424 x 84,022 pixels"),
        ("per_class", 10**7, ValueError, "more than the 89,478,485 Pillow reads back"),
    ],
)
def test_preview_sizes_are_checked_before_the_data_is_read(
    tmp_path: Path, keyword: str, value: object, error: type[Exception], says: str
) -> None:
    from kmnist.data.preview import preview

    # No data in root: an argument checked only after loading would be NotDownloaded.
    with pytest.raises(error) as excinfo:
        preview("kmnist", out=tmp_path / "grid.png", root=tmp_path, **{keyword: value})  # type: ignore[arg-type]
    assert says in str(excinfo.value)
    assert list(tmp_path.iterdir()) == []


@needs_pillow
def test_render_names_a_size_that_is_not_a_whole_number() -> None:
    # It was Pillow's "'float' object cannot be interpreted as an integer".
    import numpy as np

    from kmnist.data.preview import render

    images, labels = np.zeros((3, 28, 28), np.uint8), np.arange(3, dtype=np.uint8)
    with pytest.raises(TypeError, match=r"^per_class must be an integer, not float 2\.5$"):
        render(images, labels, dataset="kmnist", per_class=2.5)  # type: ignore[arg-type]
    assert render(images, labels, dataset="kmnist", per_class=1).size[1] == 2 + 10 * 58


# --- a right-shaped MNIST-format file of other bytes, with download=True -------------


def test_download_true_replaces_any_mnist_file_of_the_right_shape_that_is_not_the_current_one(
    tmp_path: Path, realdata: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The 2018 release's MNIST-format files have the current names and shapes
    # and no published checksum: by their structure they cannot be told from a
    # current file with changed pixels, or from Fashion-MNIST's (same names,
    # same shapes). So load(download=True) replaces whatever fails the hash at
    # <root>/kmnist, as it does the 2018 .npz (tests/test_load.py); it must
    # not refuse it as "the 2018 release's" (a fix tried here did).
    import gzip
    import math
    import struct

    from .server import FaultyServer

    names = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    server = FaultyServer().start()
    try:
        for name in (*names, "kmnist_classmap.csv"):
            server.add(f"kmnist/{name}", (realdata / "kmnist" / name).read_bytes())
        monkeypatch.setenv("KMNIST_MIRROR", server.url)
        folder = tmp_path / "kmnist"
        folder.mkdir()
        for name, shape in zip(names, [(10000, 28, 28), (10000,)]):
            head = struct.pack(">HBB", 0, 8, len(shape))
            head += b"".join(struct.pack(">I", d) for d in shape)
            (folder / name).write_bytes(gzip.compress(head + bytes(math.prod(shape))))
        x, y = kmnist.load("kmnist", "test", root=tmp_path, format="mnist", download=True)
    finally:
        server.stop()
    assert x.shape == (10000, 28, 28) and len(y) == 10000 and x.any()
    for name in names:
        assert (folder / name).read_bytes() == (realdata / "kmnist" / name).read_bytes()
