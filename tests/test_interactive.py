"""The interactive flow: pure helpers, then every path driven with prompt_toolkit's
pipe input and a dummy output (as questionary's own tests do), downloading from
the local test server, and the refusal to prompt without a terminal."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmnist.catalogue import manifest
from kmnist.catalogue.manifest import (
    CURRENT_RELEASE,
    DATASETS,
    FORMATS,
    Entry,
    RemoteFile,
    files_of,
    select,
)
from kmnist.cli import interactive, report
from kmnist.cli.download import build_parser, main
from kmnist.cli.interactive import (
    Request,
    check_folder,
    check_mirror,
    dataset_options,
    format_options,
    go_ahead_question,
    load_hint,
    on_disk,
    plain_style,
    size_text,
    source_options,
    split_options,
)
from kmnist.cli.report import size
from kmnist.downloader.plan import make_plan

from .conftest import ROOT, no_part_files
from .server import FaultyServer

DOWN = "\x1b[B"
ENTER = "\r"
SPACE = " "
CTRL_C = "\x03"
CTRL_D = "\x04"
CTRL_U = "\x15"  # erase the line typed so far (the folder prompt starts with ./data)

PROG = "download_data.py"
# /proc takes no new files, not even from root (the tests may run as root, for
# whom permission bits mean nothing).
UNWRITABLE = Path("/proc/kmnist-test-folder")


@dataclasses.dataclass(frozen=True)
class Synthetic:
    """A catalogue of small random files under the real names, and their bytes by path."""

    catalogue: tuple[Entry, ...]
    data: dict[str, bytes]

    def drive(self, *keys: str) -> int:
        """:func:`drive` with this catalogue passed to the command."""
        return drive(*keys, catalogue=self.catalogue)


@pytest.fixture
def synthetic(server: FaultyServer) -> Synthetic:
    """The current release with small random files under the real names, served by ``server``.

    The real image files are too big to keep for tests, and the flow's default
    (every split) needs them; the manifest's shape, names and checks stay.
    The catalogue is passed to the command (its seam), not patched in.
    """
    data: dict[str, bytes] = {}
    entries = []
    for i, e in enumerate(manifest.ENTRIES):
        if e.release != CURRENT_RELEASE:
            entries.append(e)
            continue
        body = os.urandom(1000 + 37 * i)
        f = RemoteFile(
            e.file.path,
            None if e.file.size is None else len(body),
            sha256=hashlib.sha256(body).hexdigest(),
        )
        entries.append(dataclasses.replace(e, file=f))
        server.add(e.file.path, body)
        data[e.file.path] = body
    return Synthetic(tuple(entries), data)


@pytest.fixture
def served(
    synthetic: Synthetic, server: FaultyServer, monkeypatch: pytest.MonkeyPatch
) -> Synthetic:
    """``synthetic``, with ``KMNIST_MIRROR`` naming the server (what the source question offers first)."""
    monkeypatch.setenv("KMNIST_MIRROR", server.url)
    return synthetic


@pytest.fixture
def at_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The flow as if on a terminal, in an empty working folder (so ./data is ours)."""
    monkeypatch.setattr(interactive, "on_terminal", lambda: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def drive(*keys: str, catalogue: Sequence[Entry] | None = None) -> int:
    """Run ``download_data.py`` (no arguments) in-process, answering with ``keys``.

    ``catalogue`` is passed to the command (None: the manifest's).

    The input is closed after the keys, so a flow that asks one question more
    than the test answers stops at once (as Ctrl-D would) instead of hanging.
    """
    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        inp.send_text("".join(keys))
        inp.close()
        return main([], prog=PROG, catalogue=catalogue)


def pasted(out: str) -> str:
    """``out`` with each printed command on one line again, as a shell reads it after `` \\``."""
    return out.replace(" \\\n    ", " ")


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def fetched(root: Path) -> set[str]:
    """Data files, without the downloader's bookkeeping (locks, stamps in .kmnist/)."""
    return {f for f in files_under(root) if not any(p.startswith(".") for p in Path(f).parts)}


# -- pure helpers -------------------------------------------------------------


def test_dataset_options_come_from_the_manifest(tmp_path: Path) -> None:
    options = dataset_options(tmp_path)
    assert [o.value for o in options] == list(DATASETS)
    for o, ds in zip(options, DATASETS.values()):
        assert ds.title in o.title and o.description == ds.description
    kmnist_bytes = sum(e.file.size or 0 for e in select("kmnist", "npz"))
    assert size(kmnist_bytes) in options[0].title
    # Kuzushiji-Kanji's size is unpublished: the publisher's "310MB", in MiB like the rest.
    assert "about 296 MiB" in options[2].title
    assert [o.checked for o in options] == [True, False, False]
    assert "[" not in "".join(o.title for o in options)  # nothing is on disk


def test_every_choice_fits_80_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = Path(interactive.default_dir())  # where the first question looks
    for e in select("all"):  # every dataset there, so every title carries its mark
        (data / e.file.path).parent.mkdir(parents=True, exist_ok=True)
        (data / e.file.path).write_bytes(b"\0" * (e.file.size or 1))
    every_format = {n: DATASETS[n].formats[-1] for n in DATASETS}
    options = [
        *dataset_options(data),
        *(o for n in DATASETS for o in format_options(n)),
        *split_options(list(DATASETS), every_format),
        *source_options({}),
    ]
    assert all("[in ./data" in o.title for o in options[:3])
    for o in options:
        # questionary draws " » ● " before a title and "  Description: " before a description.
        assert len(o.title) + 5 <= 80, o.title
        assert len(f"  Description: {o.description or ''}") <= 80, o.description


def test_on_disk_is_judged_by_size(tmp_path: Path) -> None:
    assert on_disk("kmnist", tmp_path) is None
    for e in select("kmnist", "mnist"):
        target = tmp_path / e.file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"\0" * (e.file.size or 0))
    assert on_disk("kmnist", tmp_path) == f"in {tmp_path} (mnist), sizes match"
    assert f"[in {tmp_path} (mnist), sizes match]" in dataset_options(tmp_path)[0].title
    (tmp_path / "kmnist/train-images-idx3-ubyte.gz").write_bytes(b"short")
    assert on_disk("kmnist", tmp_path) == f"partly in {tmp_path}"
    (tmp_path / "kkanji").mkdir()
    (tmp_path / "kkanji/kkanji.tar").write_bytes(b"any size: none was published")
    assert on_disk("kkanji", tmp_path) == f"in {tmp_path}, not checked yet"


def test_format_and_split_options() -> None:
    assert [o.value for o in format_options("kmnist")] == ["npz", "mnist"]
    titles = " ".join(o.title for o in format_options("kmnist"))
    assert "drop-in for MNIST tools" in titles and "np.load(f)['arr_0']" in titles
    assert all(FORMATS[o.value] in o.title for o in format_options("kmnist"))
    assert [o.value for o in format_options("k49")] == ["npz"]
    test_bytes = sum(e.file.size or 0 for e in select("kmnist", "npz", "test"))
    assert size(test_bytes) in split_options(["kmnist"], {"kmnist": "npz"})[2].title


def test_kanji_is_named_beside_each_split_not_added_to_it() -> None:
    # "test only" with Kanji ticked showed ~324 MB: the archive, not the split.
    alone = split_options(["kmnist"], {"kmnist": "npz"})
    splits = split_options(["kmnist", "kkanji"], {"kmnist": "npz", "kkanji": "tar"})
    assert [o.value for o in splits] == ["all", "train", "test"]
    assert [o.title for o in splits] == [o.title for o in alone]
    assert "about" not in "".join(o.title for o in splits)
    assert all(o.description is None for o in alone)
    assert {o.description for o in splits} == {
        "plus Kuzushiji-Kanji (about 296 MiB), whole whatever the split"
    }
    test_only = splits[2].title.split()
    assert (
        test_only[-2:]
        == size(sum(e.file.size or 0 for e in select("kmnist", "npz", "test"))).split()
    )


def test_one_unit_on_every_screen(tmp_path: Path) -> None:
    every_format = {n: DATASETS[n].formats[-1] for n in DATASETS}
    texts = [
        o.title
        for o in (
            *dataset_options(tmp_path),
            *(o for n in DATASETS for o in format_options(n)),
            *split_options(list(DATASETS), every_format),
        )
    ]
    texts += [str(o.description) for o in split_options(list(DATASETS), every_format)]
    plan = make_plan(files_of((*select("kmnist", "npz", "test"), *select("kkanji"))), tmp_path)
    texts += [go_ahead_question(plan), report.plan(plan, tmp_path, [])]
    joined = "\n".join(texts)
    assert re.findall(r"\d (\w*B)\b", joined)  # sizes are there...
    assert set(re.findall(r"\d (\w*B)\b", joined)) <= {"B", "KiB", "MiB", "GiB"}  # ...in one system


def test_source_options() -> None:
    assert [o.value for o in source_options({})] == ["builtin", "typed"]
    assert "codh-https, codh-http" in str(source_options({})[0].description)
    assert "gcs-2018" not in str(source_options({})[0].description)  # the 2018 release only
    with_env = source_options({"KMNIST_MIRROR": " http://a  /b "})
    assert [o.value for o in with_env] == ["env", "builtin", "typed"]
    assert with_env[0].title == "KMNIST_MIRROR: http://a /b"


def test_check_folder(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert check_folder(str(f)) == f"{f} is a file, not a folder"
    assert check_folder(str(f / "sub")) == f"{f} is a file, so {f / 'sub'} cannot be made"
    assert check_folder("  ") is not None
    assert check_folder(str(tmp_path / "new" / "deeper")) is None
    assert not (tmp_path / "new").exists()  # checked, not made
    assert check_folder(str(tmp_path)) is None
    if Path("/proc").is_dir():
        assert (
            check_folder(str(UNWRITABLE)) == f"{UNWRITABLE} cannot be made: /proc is not writable"
        )


def test_check_mirror(tmp_path: Path) -> None:
    assert "unsupported mirror" in str(check_mirror("ftp://example.org/k"))
    assert check_mirror(str(tmp_path / "nowhere")) == f"no folder {tmp_path / 'nowhere'}"
    assert check_mirror(str(tmp_path)) is None
    assert check_mirror(f"file://{tmp_path}") is None
    assert check_mirror("https://mirror.example.org/kuzushiji") is None
    assert check_mirror("") is not None


def test_commands_say_the_same_as_the_answers() -> None:
    assert Request.default().commands("kmnist-download") == [
        "kmnist-download --dataset kmnist --format npz --split all --dir data"
    ]
    mixed = Request(
        ("kmnist", "k49", "kkanji"),
        {"kmnist": "mnist", "k49": "npz", "kkanji": "tar"},
        "test",
        Path("my data"),
        ("http://m/k",),
    )
    assert mixed.commands(PROG) == [
        "download_data.py --dataset k49 --dataset kkanji --split test --dir 'my data' --mirror http://m/k",
        "download_data.py --dataset kmnist --format mnist --split test --dir 'my data' --mirror http://m/k",
    ]
    # Each command is valid for the command's own parser and, together, they
    # name exactly the files the flow fetches.
    via_flags = []
    for argv in mixed.argvs():
        args = build_parser(PROG).parse_args(argv)
        via_flags += select(args.dataset, args.format, args.split)
    assert sorted(e.file.path for e in via_flags) == sorted(e.file.path for e in mixed.entries())
    builtin = dataclasses.replace(Request.default(), builtin=True)
    assert builtin.commands("k")[0].startswith("KMNIST_MIRROR= k --dataset kmnist")


@settings(max_examples=200, deadline=None)
@given(
    root=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1
    ),
    folder_mirror=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00:"), min_size=1
    ),
)
def test_commands_give_back_any_folder_and_mirror_as_typed(root: str, folder_mirror: str) -> None:
    # A folder called "-x" (or "--dir") was written "--dir -x", which the
    # parser reads as two options: every value must come back as it was typed.
    req = Request(("kmnist",), {"kmnist": "npz"}, "test", Path(root), (folder_mirror,))
    for argv, line in zip(req.argvs(), req.commands(PROG)):
        assert shlex.split(line)[1:] == argv
        args = build_parser(PROG).parse_args(argv)
        assert (str(args.dir), args.mirror) == (str(Path(root)), [folder_mirror])


def test_the_last_question_counts_files_and_bytes(tmp_path: Path) -> None:
    kmnist_test = select("kmnist", "npz", "test")
    plan = make_plan(files_of(kmnist_test), tmp_path)
    assert go_ahead_question(plan) == f"Download 3 file(s), {size_text(kmnist_test)}?"
    with_kanji = make_plan(files_of((*kmnist_test, *select("kkanji"))), tmp_path)
    assert go_ahead_question(with_kanji) == "Download 4 file(s), about 299 MiB?"


def test_the_last_question_when_files_are_there(realdata: Path, tmp_path: Path) -> None:
    kmnist_test = files_of(select("kmnist", "npz", "test"))
    (tmp_path / "kmnist").mkdir()
    for f in kmnist_test:
        (tmp_path / f.path).write_bytes((realdata / f.path).read_bytes())
    assert (
        go_ahead_question(make_plan(kmnist_test, tmp_path))
        == "Everything is already there and verified. Go on?"
    )
    (tmp_path / "kmnist/kmnist-test-labels.npz").write_bytes(b"not the published bytes")
    assert go_ahead_question(make_plan(kmnist_test, tmp_path)) == "Download 1 file(s), 5.2 KiB?"


def test_load_hint_lines_load_the_real_files(realdata: Path) -> None:
    import numpy as np

    for fmt in ("npz", "mnist"):
        lines = load_hint(select("kmnist", fmt, "test"), realdata)
        assert len(lines) == 2
        code = "\n".join(line[13:] for line in lines)  # what follows the "load with:" label
        scope: dict[str, object] = {}
        exec(code, scope)
        x = scope["x"]
        assert isinstance(x, np.ndarray) and x.shape == (10000, 28, 28) and x.dtype == np.uint8
    tar = load_hint(select("kkanji"), Path("data"))
    assert tar == [
        "unpack with: import kmnist; kmnist.extract_kanji(root='data')",
        "             kanji = kmnist.load_kanji(root='data')  # paths and labels",
    ]
    # The 80-column promise is about the default folder; a long path the
    # user typed (like this checkout's realdata path) may wrap.
    short = load_hint(select("kmnist", "npz", "test"), Path("data"))
    assert all(len(line) <= 80 for line in tar + short)


def test_plain_style_only_with_no_color() -> None:
    assert plain_style({}) is None
    assert plain_style({"NO_COLOR": ""}) is None  # https://no-color.org: set and not empty
    style = plain_style({"NO_COLOR": "1"})
    assert style is not None
    assert all("fg:" not in rule and "bg:" not in rule for _, rule in style.style_rules)


# -- the flow, driven through pipe input --------------------------------------


def test_enter_through_the_defaults(
    at_terminal: Path,
    served: Synthetic,
    server: FaultyServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # datasets, format, split, folder, source, go ahead: Enter each time.
    assert served.drive(ENTER * 6) == 0
    data = at_terminal / "data"
    want = {e.file.path for e in select("kmnist", "npz")}
    assert fetched(data) == want
    for path in want:
        assert (data / path).read_bytes() == served.data[path]
    out = pasted(capsys.readouterr().out)
    assert "5 to fetch" in out and f"mirrors: {server.url}" in out
    assert (
        f"download_data.py --dataset kmnist --format npz --split all --dir data --mirror {server.url}"
        in out
    )
    assert "5 file(s) ready in data" in out
    assert out.rstrip().splitlines()[-2:] == [
        "load with:   import kmnist",
        "             x, y = kmnist.load('kmnist', 'train', root='data')",
    ]
    # Again: the plan finds every file verified, and nothing is fetched.
    requests = len(server.requests)
    assert served.drive(ENTER * 6) == 0
    assert len(server.requests) == requests
    out = pasted(capsys.readouterr().out)
    assert "5 to skip; 0 B to transfer" in out and "5 file(s) ready in data" in out


def test_the_folder_offered_is_the_environment_one(
    at_terminal: Path,
    served: Synthetic,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KMNIST_DATA", str(at_terminal / "shared"))
    assert served.drive(ENTER * 6) == 0
    assert fetched(at_terminal / "shared") == {e.file.path for e in select("kmnist", "npz")}
    assert not (at_terminal / "data").exists()
    assert f"--dir {at_terminal / 'shared'}" in pasted(capsys.readouterr().out)


def test_every_choice_away_from_the_defaults(
    at_terminal: Path,
    synthetic: Synthetic,
    server: FaultyServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dest = at_terminal / "elsewhere" / "kuzushiji"
    assert (
        synthetic.drive(
            DOWN + SPACE + DOWN + SPACE + ENTER,  # add K49 and Kuzushiji-Kanji to KMNIST
            DOWN + ENTER,  # KMNIST in MNIST format (K49 has only one: not asked)
            DOWN + DOWN + ENTER,  # test only
            "n",  # do not unpack the Kanji archive (these bytes are random)
            CTRL_U + str(dest) + ENTER,
            DOWN + ENTER,  # another mirror (no KMNIST_MIRROR: built-in, then typed)
            server.url + ENTER,
            "y",
        )
        == 0
    )
    want = {
        e.file.path
        for e in (
            *select("kmnist", "mnist", "test"),
            *select("k49", "npz", "test"),
            *select("kkanji"),
        )
    }
    assert fetched(dest) == want
    assert "kmnist/t10k-images-idx3-ubyte.gz" in want and "kkanji/kkanji.tar" in want
    for path in want:
        assert (dest / path).read_bytes() == synthetic.data[path]
    assert not (at_terminal / "data").exists()
    out = pasted(capsys.readouterr().out)
    assert f"--dataset k49 --dataset kkanji --split test --dir {dest} --mirror {server.url}" in out
    assert f"--dataset kmnist --format mnist --split test --dir {dest}" in out
    assert "--extract" not in out
    # The hint loads the first dataset fetched, in the split chosen.
    assert out.splitlines()[-1].endswith(
        f"x, y = kmnist.load('kmnist', 'test', root='{dest.as_posix()}')"
    )


def test_a_typed_folder_is_a_mirror(
    at_terminal: Path, realdata: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        drive(
            DOWN + SPACE + ENTER,  # Kuzushiji-MNIST and Kuzushiji-49
            DOWN + ENTER,  # MNIST format for Kuzushiji-MNIST
            ENTER,  # both splits: realdata lacks the big image files...
            ENTER,
            DOWN + ENTER,
            str(realdata) + ENTER,
            "n",  # ...so the plan is checked, and nothing fetched
        )
        == 0
    )
    out = pasted(capsys.readouterr().out)
    want = [*select("kmnist", "mnist"), *select("k49", "npz")]
    # Ten files: the plan is shown per dataset, to stay on a 24-row screen.
    assert re.search(r"(?m)^fetch +kmnist +5 +20\.3 MiB$", out), out
    assert re.search(r"(?m)^fetch +k49 +5 +73\.7 MiB$", out), out
    assert f"{len(want)} to fetch" in out and f"mirrors: {realdata}" in out
    assert "--dataset kmnist --format mnist" in out
    assert not (at_terminal / "data").exists()


def test_kanji_alone_asks_no_format_and_no_split(
    at_terminal: Path,
    served: Synthetic,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert served.drive(SPACE + DOWN + DOWN + SPACE + ENTER, "n", ENTER, ENTER, "y") == 0
    assert fetched(at_terminal / "data") == {"kkanji/kkanji.tar"}
    out = pasted(capsys.readouterr().out)
    assert "unpublished size" in out and "kmnist.extract_kanji(root='data')" in out


def test_choosing_nothing_is_refused_and_asked_again(
    at_terminal: Path,
    served: Synthetic,
) -> None:
    k49 = {e.file.path for e in select("k49", "npz", "test")}
    # Unticking KMNIST leaves nothing: Enter is refused; tick K49 instead.
    assert (
        served.drive(SPACE + ENTER + DOWN + SPACE + ENTER, DOWN + DOWN + ENTER, ENTER, ENTER, "y")
        == 0
    )
    assert fetched(at_terminal / "data") == k49


def test_a_file_or_unwritable_folder_is_refused_and_asked_again(
    at_terminal: Path,
    served: Synthetic,
) -> None:
    a_file = at_terminal / "notes.txt"
    a_file.write_text("mine")
    refused = [CTRL_U + str(a_file) + ENTER]
    if Path("/proc").is_dir():
        refused.append(CTRL_U + str(UNWRITABLE) + ENTER)
    good = at_terminal / "good"
    assert (
        served.drive(
            ENTER, ENTER, DOWN + DOWN + ENTER, *refused, CTRL_U + str(good) + ENTER, ENTER, "y"
        )
        == 0
    )
    assert fetched(good) == {e.file.path for e in select("kmnist", "npz", "test")}
    assert a_file.read_text() == "mine"
    assert not (at_terminal / "data").exists()


def test_a_bad_mirror_is_refused_and_asked_again(
    at_terminal: Path, synthetic: Synthetic, server: FaultyServer
) -> None:
    assert (
        synthetic.drive(
            ENTER,
            ENTER,
            DOWN + DOWN + ENTER,
            ENTER,
            DOWN + ENTER,
            "ftp://example.org/kuzushiji" + ENTER,  # refused: not http, https or a folder
            CTRL_U + str(at_terminal / "no-such-folder") + ENTER,  # refused: no such folder
            CTRL_U + server.url + ENTER,
            "y",
        )
        == 0
    )
    assert fetched(at_terminal / "data") == {e.file.path for e in select("kmnist", "npz", "test")}


def test_the_plan_shows_what_is_skipped_and_resumed(
    at_terminal: Path,
    served: Synthetic,
    server: FaultyServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = at_terminal / "data"
    labels, images = "kmnist/kmnist-test-labels.npz", "kmnist/kmnist-test-imgs.npz"
    (data / "kmnist").mkdir(parents=True)
    (data / labels).write_bytes(served.data[labels])
    (data / (images + ".part")).write_bytes(served.data[images][:500])
    assert served.drive(ENTER, ENTER, DOWN + DOWN + ENTER, ENTER, ENTER, ENTER) == 0
    out = pasted(capsys.readouterr().out)
    assert f"skip     {labels}" in out
    assert re.search(rf"(?m)^resume   {images}  +1\.2 KiB  500 B of 1\.2 KiB \(\.part\)$", out)
    assert "1 to fetch, 1 to resume, 1 to skip" in out
    assert (data / images).read_bytes() == served.data[images]
    assert server.gets("/" + labels) == []
    assert [r.range for r in server.gets("/" + images)] == ["bytes=500-"]
    assert no_part_files(data) == []


def test_a_file_no_mirror_has_fails_as_the_command_does(
    at_terminal: Path,
    served: Synthetic,
    server: FaultyServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    images = "kmnist/kmnist-train-imgs.npz"
    server.always(images, "404")
    assert served.drive(ENTER * 6) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if " error: " in line]
    assert len(err) == 1 and images in err[0] and "HTTP 404" in err[0]
    data = at_terminal / "data"
    assert not (data / images).exists() and no_part_files(data) == []
    # The other files of the request were fetched and verified all the same,
    # and so was the MNIST-format file the missing one could have been built
    # from: the derive step follows the catalogue in use (its synthetic bytes
    # are no IDX file, so nothing was built).
    source = "kmnist/train-images-idx3-ubyte.gz"
    assert fetched(data) == {e.file.path for e in select("kmnist", "npz")} - {images} | {source}


def test_declining_fetches_nothing_and_says_how_to_do_it_later(
    at_terminal: Path,
    served: Synthetic,
    server: FaultyServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert served.drive(ENTER * 5, "n") == 0
    assert server.requests == []
    assert not (at_terminal / "data").exists()
    out = pasted(capsys.readouterr().out)
    assert "Nothing was downloaded" in out
    assert out.rstrip().endswith(
        f"download_data.py --dataset kmnist --format npz --split all --dir data --mirror {server.url}"
    )


def test_built_in_mirrors_can_be_chosen_over_kmnist_mirror(
    at_terminal: Path,
    server: FaultyServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KMNIST_MIRROR", server.url)
    # Declined at the end, so no built-in mirror is ever contacted.
    assert drive(ENTER * 4, DOWN + ENTER, "n") == 0
    out = pasted(capsys.readouterr().out)
    # Only the built-in mirrors that carry these (NumPy) files, in order.
    assert "mirrors: codh-https, codh-http, wayback\n" in out
    assert f"KMNIST_MIRROR= {interactive.launcher(PROG)} --dataset kmnist" in out
    assert server.requests == []


# Keys that reach each question, then Ctrl-C there.
TO_EACH_QUESTION = {
    "datasets": "",
    "format": ENTER,
    "split": ENTER * 2,
    "folder": ENTER * 3,
    "source": ENTER * 4,
    "typed mirror": ENTER * 4 + DOWN + ENTER,
    "go ahead": ENTER * 5,
    "unpack": DOWN + DOWN + SPACE + ENTER + ENTER * 2,  # Kanji ticked: asked after the split
}


@pytest.mark.parametrize("where", list(TO_EACH_QUESTION))
def test_ctrl_c_at_any_question_exits_130_with_one_line(
    where: str,
    at_terminal: Path,
    server: FaultyServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert drive(TO_EACH_QUESTION[where], CTRL_C) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert err[0].endswith("interrupted; nothing was downloaded")
    assert files_under(at_terminal) == set()
    assert server.requests == []


def test_ctrl_d_at_the_folder_question_stops_like_ctrl_c(at_terminal: Path) -> None:
    assert drive(ENTER * 3, CTRL_U + CTRL_D) == 130
    assert files_under(at_terminal) == set()


def test_without_a_terminal_it_names_the_flags_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([], prog="kmnist-download") == 2  # pytest's stdin is no terminal
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    # kmnist-download when PATH finds it, else the interpreter with -m kmnist.
    again = interactive.launcher("kmnist-download")
    assert f"{again} --dataset kmnist --format npz --split all --dir data" in err[0]
    assert f"(every flag: {again} --help)" in err[0]
    assert files_under(tmp_path) == set()


@pytest.mark.parametrize("stdin", ["closed", "devnull"])
def test_download_data_py_without_a_terminal_exits_2_at_once(stdin: str, tmp_path: Path) -> None:
    if stdin == "closed" and sys.platform == "win32":
        pytest.skip("closes stdin with a POSIX shell")
    # "closed": no fd 0 at all, so sys.stdin is None in the child.
    cmd = [sys.executable, str(ROOT / "download_data.py")]
    if stdin == "closed":
        r = subprocess.run(
            ["sh", "-c", 'exec "$@" <&-', "sh", *cmd],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    else:
        r = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in r.stderr
    assert "download_data.py --dataset kmnist --format npz --split all --dir data" in err[0]
    assert files_under(tmp_path) == set()


def test_questionary_is_not_imported_for_the_command() -> None:
    code = (
        "import sys, kmnist.cli.download\n"
        "kmnist.cli.download.build_parser().format_help()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('questionary', 'prompt_toolkit')))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_every_answer_line_fits_in_80_columns(
    at_terminal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After an answer, questionary leaves "? <question> <chosen title>" on
    # screen. Every question is recorded as the flow really asks it, with
    # every title it offers.
    import questionary

    asked: list[str] = []
    for kind in ("checkbox", "select"):
        real = getattr(questionary, kind)

        def record(message: str, *args: Any, _real: Any = real, **kw: Any) -> Any:
            asked.extend(f"? {message} {c.title}" for c in kw["choices"])
            return _real(message, *args, **kw)

        monkeypatch.setattr(questionary, kind, record)
    # The defaults (Kuzushiji-MNIST, the one dataset with a format question),
    # then Ctrl-C at the folder question.
    assert drive(ENTER * 3, CTRL_C) == 130
    assert any("Format of Kuzushiji-MNIST?" in line for line in asked)
    assert any("Which split?" in line for line in asked)
    too_long = [line for line in asked if len(line) > 80]
    assert too_long == []


# -- the "next time" line runs as printed -------------------------------------


def test_launcher_names_what_the_shell_can_run() -> None:
    venv = "/home/u/venv/bin/python"
    on_path = {"python": venv, "kmnist-download": "/home/u/venv/bin/kmnist-download"}
    nothing: dict[str, str] = {}

    def launcher(prog: str, where: dict[str, str], argv0: str = "x") -> str:
        return interactive.launcher(prog, argv0=argv0, python=venv, which=where.get)

    assert launcher("kmnist-download", on_path) == "kmnist-download"
    assert launcher("kmnist-download", nothing) == f"{venv} -m kmnist"
    assert launcher("python -m kmnist", on_path) == "python -m kmnist"  # never one quoted word
    assert launcher("python -m kmnist", nothing) == f"{venv} -m kmnist"
    # download_data.py is not executable: the interpreter runs it, from where it was given.
    assert launcher("download_data.py", on_path, "download_data.py") == "python download_data.py"
    assert (
        launcher("download_data.py", nothing, "../my kmnist/download_data.py")
        == f"{venv} '../my kmnist/download_data.py'"
    )
    # A python on PATH that is another interpreter (no kmnist there) is not named.
    other = {"python": "/usr/bin/python", "python3": venv}
    assert launcher("python -m kmnist", other) == "python3 -m kmnist"


def test_without_a_terminal_python_m_kmnist_is_not_quoted_as_one_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([], prog="python -m kmnist") == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert "'python -m kmnist'" not in err
    assert re.search(r"for example: \S*python3? -m kmnist --dataset kmnist ", err), err


def printed_command(err: str) -> str:
    """The command a no-terminal message suggests."""
    found = re.search(r"for example: (.*?)  \(every flag", err)
    assert found, err
    return found.group(1)


@pytest.mark.parametrize("entry", ["download_data.py", "python -m kmnist", "kmnist-download"])
@pytest.mark.parametrize("path", ["venv first", "venv absent"])
def test_the_suggested_command_runs_as_printed(entry: str, path: str, tmp_path: Path) -> None:
    # As a user starts each entry point without a terminal; then the command it
    # printed is pasted into a shell (with --dry-run: no network), from the same folder.
    bindir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k not in ("KMNIST_MIRROR", "KMNIST_DATA")}
    others = [p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != bindir]
    env["PATH"] = os.pathsep.join([str(bindir), *others] if path == "venv first" else others)
    if entry == "download_data.py":
        start = [sys.executable, str(ROOT / "download_data.py")]
    elif entry == "python -m kmnist":
        start = [sys.executable, "-m", "kmnist"]
    else:
        exe = bindir / "kmnist-download"
        if not exe.is_file():
            pytest.skip(f"kmnist-download is not installed in {bindir}")
        start = [str(exe)]

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        """``argv`` as the user runs it: no terminal, from ``tmp_path``, with ``env``."""
        return subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env=env,
        )

    r = run(start)
    assert r.returncode == 2, r.stderr
    command = printed_command(r.stderr)
    words = shlex.split(command)
    if entry == "kmnist-download" and path == "venv first":
        assert words[0] == "kmnist-download"
    elif path == "venv first":
        assert words[0] in ("python", "python3")
    else:
        assert Path(words[0]).parent == bindir  # a venv not on PATH: named in full
    again = run(["sh", "-c", command + " --dry-run"])
    assert again.returncode == 0, (command, again.stderr)
    assert "5 to fetch" in again.stdout and "into data" in again.stdout
    found = re.search(r"\(every flag: (.*)\)$", r.stderr.strip())
    assert found, r.stderr
    usage = run(["sh", "-c", found.group(1)])
    assert usage.returncode == 0 and "--dataset" in usage.stdout, (found.group(1), usage.stderr)
    assert files_under(tmp_path) == set()


# -- unpacking the Kanji archive ----------------------------------------------


def test_kanji_chosen_is_offered_unpacking_and_gets_it(
    at_terminal: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("PIL")
    from .test_cli_load import kanji_mirror

    mirror, catalogue = kanji_mirror(at_terminal / "m", monkeypatch)
    assert (
        drive(
            SPACE + DOWN + DOWN + SPACE + ENTER,  # Kuzushiji-Kanji alone
            ENTER,  # unpack it: yes, the default
            ENTER,  # ./data
            DOWN + ENTER,  # a typed mirror
            str(mirror) + ENTER,
            "y",
            catalogue=catalogue,
        )
        == 0
    )
    data = at_terminal / "data"
    assert (data / "kkanji/kkanji.tar").is_file()
    assert (data / "kkanji/kkanji2/U+4E8C/c.png").is_file()  # what --extract unpacks
    out = pasted(capsys.readouterr().out)
    assert "3 PNG files in 2 class folders: ok" in out
    assert (
        f"--dataset kkanji --format tar --extract --split all --dir data --mirror {mirror}" in out
    )
    assert out.rstrip().splitlines()[-2:] == [
        "load with:   import kmnist",
        "             kanji = kmnist.load_kanji(root='data')  # paths and labels",
    ]


def test_a_request_to_unpack_is_the_commands_extract() -> None:
    req = Request(("kmnist", "kkanji"), {"kmnist": "mnist", "kkanji": "tar"}, extract=True)
    argvs = req.argvs()
    assert [("--extract" in a, "kkanji" in a) for a in argvs] == [(True, True), (False, False)]
    for argv in argvs:  # each is a command the parser and its checks accept
        args = build_parser(PROG).parse_args(argv)
        assert args.extract == ("kkanji" in args.dataset)


def test_a_failure_after_the_questions_points_at_the_command_they_printed(
    at_terminal: Path,
    served: Synthetic,
    server: FaultyServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # There is no "same command" to run again with --check-mirrors after the
    # questions: the hint names the one the flow printed ("the same as:").
    server.always("kmnist/kmnist_classmap.csv", "404")
    assert served.drive(ENTER * 6) == 1
    captured = capsys.readouterr()
    out, err = pasted(captured.out), captured.err.splitlines()
    assert "the same as:" in out and f"--dir data --mirror {server.url}" in out
    [hint] = [line for line in err if ": hint: " in line]
    assert "run the command above with --check-mirrors" in hint
    assert "the same command" not in captured.err
