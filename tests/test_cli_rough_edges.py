"""The rough edges of ``kmnist-download`` a new user meets, each by its output: -V, "did you
mean", --no-progress, --list narrowed by -d/-f/-s, aligned --dry-run columns, one unit system,
and a --preview target checked before anything is downloaded."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmnist import __version__
from kmnist.catalogue.manifest import DATASETS, select
from kmnist.cli.download import main

from .conftest import ROOT
from .server import FaultyServer

SIZE = re.compile(r"\d (\w*B)\b")  # "2.9 MiB", "151 B": the unit of each size shown


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0] and "usage:" not in err[0]
    return err[0]


# -- -V, did you mean ------------------------------------------------------------


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([flag])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"kmnist-download {__version__}"


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        # KMNIST and kanji are taken as they are (tests/test_names.py).
        ("kmnsit", "kmnist"),
        ("KMNSIT", "kmnist"),
        ("k94", "k49"),
        ("kanjii", "kkanji"),
        ("al", "all"),
    ],
)
def test_a_mistyped_dataset_gets_did_you_mean(
    typed: str, meant: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--dataset", typed, "--dir", str(tmp_path / "d")])
    assert info.value.code == 2
    line = one_error_line(capsys)
    assert line.endswith(f"invalid choice: {typed!r}; did you mean {meant!r}?"), line
    assert line.startswith("kmnist-download: error: argument --dataset/-d: ")
    assert not (tmp_path / "d").exists()


def test_an_unrelated_word_gets_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["-d", "cifar10"])
    assert info.value.code == 2
    assert one_error_line(capsys).endswith(
        "invalid choice: 'cifar10' (choose from kmnist, k49, kkanji, all)"
    )


def test_every_argparse_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--jobs", "0"], ["--split", "val"], ["--no-such-flag"], ["-d"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        assert one_error_line(capsys).startswith("kmnist-download: error: ")


# -- --list honours -d/-f/-s -----------------------------------------------------


def listed(capsys: pytest.CaptureFixture[str], *argv: str) -> set[str]:
    assert main(["--list", "--json", *argv]) == 0
    return {f["path"] for f in json.loads(capsys.readouterr().out)["files"]}


def test_list_is_narrowed_by_dataset_format_and_split(capsys: pytest.CaptureFixture[str]) -> None:
    every = {e.file.path for n, d in DATASETS.items() for f in d.formats for e in select(n, f)}
    assert listed(capsys) == every
    assert listed(capsys, "-d", "k49", "-s", "test") == {
        "k49/k49-test-imgs.npz",
        "k49/k49-test-labels.npz",
        "k49/k49_classmap.csv",
    }
    # -f alone: the datasets that have the format, in it.
    assert listed(capsys, "-f", "mnist", "-s", "train") == {
        "kmnist/train-images-idx3-ubyte.gz",
        "kmnist/train-labels-idx1-ubyte.gz",
        "kmnist/kmnist_classmap.csv",
    }
    assert listed(capsys, "-d", "kmnist", "-s", "test") == {
        e.file.path for f in ("npz", "mnist") for e in select("kmnist", f, "test")
    }
    assert listed(capsys, "-d", "kkanji", "-s", "test") == {"kkanji/kkanji.tar"}  # no splits


def test_list_as_text_is_narrowed_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list", "-d", "k49", "-s", "train"]) == 0
    table, rest = capsys.readouterr().out.split("\n\n", 1)
    assert [row.split()[3] for row in table.splitlines()[1:]] == [
        "k49/k49-train-imgs.npz",
        "k49/k49-train-labels.npz",
        "k49/k49_classmap.csv",
    ]
    # Only the datasets and formats listed are explained.
    explained = rest.split("mirrors")[0]
    assert "Kuzushiji-49" in explained and "Kuzushiji-MNIST" not in explained
    assert "IDX" not in explained


def test_list_with_a_format_the_dataset_lacks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list", "-d", "k49", "-f", "mnist"]) == 2
    assert "k49 has no 'mnist' format" in one_error_line(capsys)


# -- aligned --dry-run, one unit system ------------------------------------------


def test_dry_run_columns_are_aligned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "kmnist").mkdir()
    (tmp_path / "kmnist/kmnist-test-imgs.npz.part").write_bytes(b"x" * 1024)
    (tmp_path / "kmnist/kmnist-test-labels.npz").write_bytes(b"corrupt")
    argv = ["-d", "kmnist", "-d", "k49", "-s", "test", "--dir", str(tmp_path), "--dry-run"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    header, rows = lines[0], lines[1:-2]  # the totals and mirrors follow
    assert header.split() == ["action", "file", "size", "on", "disk"]
    assert len(rows) == 6
    # The file column starts, the size column ends and the on-disk column
    # starts at one place on every row, the header's.
    starts = {re.search(r"(?:kmnist|k49)/", r).start() for r in rows}  # type: ignore[union-attr]
    ends = {m.end() for r in rows for m in [re.search(r"\d (?:B|KiB|MiB)", r)] if m}
    disk = {r.index("  ", e) + 2 for r in rows for e in [re.search(r"\d (?:B|KiB|MiB)", r).end()]}  # type: ignore[union-attr]
    assert starts == {header.index("file")} and len(ends) == 1, rows
    assert ends == {header.index("size") + len("size")} and disk == {header.index("on disk")}
    assert rows[0].split()[0] == "resume" and rows[0].endswith("1.0 KiB of 2.9 MiB (.part)")
    assert rows[1].endswith("wrong size")
    assert all(r.endswith("nothing") for r in rows[2:]), rows


def test_one_unit_system_on_every_screen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--list"]) == 0
    assert main(["-d", "all", "--dir", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    units = set(SIZE.findall(out))
    assert units and units <= {"B", "KiB", "MiB", "GiB"}, units


def test_the_progress_bars_count_in_the_same_unit() -> None:
    from kmnist.downloader.progress import TqdmProgress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    env = os.environ.pop("TQDM_DISABLE", None)
    try:
        bars = TqdmProgress(3 * 2**20, file=screen)
        bar = bars.start("kmnist-test-imgs.npz", 3 * 2**20, 0)
        bar.update(2**20)
        bar.close()
        bars.close()
    finally:
        if env is not None:
            os.environ["TQDM_DISABLE"] = env
    text = screen.getvalue()
    # As the plan and the summary write them: "1.0 MiB/3.0 MiB", a speed in
    # KiB/s or MiB/s; never tqdm's "1.05M/3.15M" or "kiB/s".
    assert "1.0 MiB/3.0 MiB" in text, text
    assert re.search(r"\d (?:B|KiB|MiB|GiB)/s\]", text), text
    assert not re.search(r"\d[kKMG]i?B?/|kiB|MB/s|kB/s", text), text


@given(
    n=st.integers(0, 2**33),
    total=st.one_of(st.none(), st.integers(1, 2**33)),
    elapsed=st.floats(0.01, 1e5),
)
def test_every_bar_figure_is_a_size_as_the_summary_prints_it(
    n: int, total: int | None, elapsed: float
) -> None:
    from tqdm.auto import tqdm

    from kmnist.downloader.progress import _binary_bar
    from kmnist.units import size

    line = _binary_bar(tqdm).format_meter(n, total, elapsed, prefix="f.npz", ncols=200)
    assert f"{size(n)}/{size(total)}" in line
    figures = re.findall(r"(\d+(?:\.\d)?) ?([A-Za-z]+)(?=/| \[|\])", line)
    assert figures and all(unit in ("B", "KiB", "MiB", "GiB") for _, unit in figures), line


# -- --no-progress: bars off, summary kept ---------------------------------------


def run_on_a_terminal(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """The command with stderr on a pseudo-terminal (so that tqdm draws), stdout piped."""
    import fcntl
    import pty
    import struct
    import termios

    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    leader, follower = pty.openpty()
    # 24 x 100: a new pseudo-terminal is 0 columns wide, where tqdm draws nothing.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kmnist", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        cwd=cwd,
        env=env,
    )
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(leader)
    stdout = proc.stdout.read() if proc.stdout else b""
    return proc.wait(timeout=60), stdout.decode(), screen.decode(errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_no_progress_hides_the_bars_and_keeps_the_summary(realdata: Path, tmp_path: Path) -> None:
    base = ["-d", "kmnist", "-s", "test", "-m", str(realdata)]
    status, out, screen = run_on_a_terminal([*base, "--dir", "with"], tmp_path)
    assert status == 0, screen
    assert "total" in screen and "iB" in screen  # the bars are drawn on a terminal...
    assert "3 file(s) ready in with" in out
    status, out, screen = run_on_a_terminal([*base, "--dir", "without", "--no-progress"], tmp_path)
    assert status == 0, screen
    assert screen.strip() == ""  # ...and not with --no-progress
    assert "3 file(s) ready in without" in out  # the summary stays (--quiet drops it)
    assert (tmp_path / "without/kmnist/kmnist-test-imgs.npz").read_bytes() == (
        realdata / "kmnist/kmnist-test-imgs.npz"
    ).read_bytes()


# -- --preview: the target checked before anything is downloaded -----------------


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ("/nonexist/k.png", "no folder /nonexist"),
        ("grid.xyz", "unknown picture extension '.xyz'"),
        ("grid", "no extension"),
        ("is-a-file/k.png", "is-a-file is not a folder"),
    ],
)
def test_a_bad_preview_target_fails_before_the_download(
    target: str,
    needle: str,
    server: FaultyServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("PIL")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "is-a-file").write_text("mine")
    argv = ["-d", "kmnist", "-s", "test", "--dir", "data", "-m", server.url, "--preview", target]
    assert main(argv) == 2
    assert needle in one_error_line(capsys)
    assert server.requests == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["is-a-file"]


def test_a_font_without_kana_fails_before_the_download(
    server: FaultyServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("PIL")
    not_a_font = tmp_path / "x.ttf"
    not_a_font.write_bytes(b"no font")
    argv = ["-d", "kmnist", "--dir", str(tmp_path / "d"), "-m", server.url]
    assert main([*argv, "--preview", str(tmp_path / "g.png"), "--font", str(not_a_font)]) == 2
    assert "not a font file" in one_error_line(capsys)
    assert main([*argv, "--font", str(not_a_font)]) == 2
    assert "--font goes with --preview" in one_error_line(capsys)
    assert server.requests == [] and not (tmp_path / "d").exists()


def test_preview_jpg_gets_jpeg_bytes(
    realdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Image = pytest.importorskip("PIL.Image")
    grid = tmp_path / "grid.jpg"
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(tmp_path / "data"), "-m", str(realdata)]
    assert main([*argv, "--preview", str(grid)]) == 0
    assert f"wrote {grid}" in capsys.readouterr().out
    assert grid.read_bytes()[:3] == b"\xff\xd8\xff"
    with Image.open(grid) as im:
        assert im.format == "JPEG" and im.size[1] == 2 + 10 * (56 + 2)
    assert not (tmp_path / "grid.jpg.part").exists()


def test_help_mentions_the_new_flags() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "kmnist", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert r.returncode == 0
    for flag in ("-V, --version", "--no-progress", "--font PATH", "-d/-f/-s"):
        assert flag in r.stdout, flag


@pytest.mark.parametrize(
    ("option", "value"),
    [("--connections", "99999999999999999999"), ("--connections", "65"), ("-j", "1000000000")],
)
def test_a_huge_number_of_connections_or_jobs_is_a_usage_error(
    option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was taken: urllib3 filled a pool queue of that many slots, a process
    that grew by gigabytes and that a Ctrl-C could not stop."""
    with pytest.raises(SystemExit) as caught:
        # --dry-run: were the value taken, nothing would go on the network.
        main(["-d", "kmnist", "-s", "test", "--dir", str(tmp_path), "--dry-run", option, value])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert f"must be at most 64, not {value}" in err
    assert len(err.strip().splitlines()) <= 3  # argparse's usage lines and the one reason
    assert not list(tmp_path.iterdir())


def test_the_library_refuses_a_huge_number_of_connections(tmp_path: Path) -> None:
    import kmnist

    with pytest.raises(kmnist.KmnistError, match="connections must be from 1 to 64, not 100000"):
        kmnist.download_files([], tmp_path, connections=100_000)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
@pytest.mark.parametrize(
    "argv", [["--cite"], ["--list"], ["--list", "--json"], ["--help"], ["--version"]]
)
def test_a_stdout_that_cannot_be_written_is_said_as_such(argv: list[str], tmp_path: Path) -> None:
    """``> /dev/full``: it was "the data folder is on a full disk", with advice
    about .part files and --dir, for a command that touches no folder; --help
    and --version said nothing and exited 0 (argparse drops a write error)."""
    with open("/dev/full", "w") as full:
        r = subprocess.run(
            [sys.executable, "-m", "kmnist", *argv],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "KMNIST_DATA": str(tmp_path / "data")},
            timeout=60,
        )
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        "python -m kmnist: error: cannot write to standard output: no space left on device"
    ], r.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--check-mirrors", "--dry-run", "-d", "kmnist"], "--check-mirrors and --dry-run"),
        (["--verify", "--list"], "--verify and --list"),
        (["--list", "--cite"], "--cite and --list"),
        (["--cite", "--json"], "--json goes with --verify, --list or --check-mirrors"),
    ],
)
def test_two_modes_at_once_are_a_usage_error(
    argv: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One was silently ranked above the other: --check-mirrors --dry-run went
    on the network that --dry-run promises not to touch."""
    assert main([*argv, "--dir", str(tmp_path / "data"), "-m", "http://127.0.0.1:9/"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and said in err[0], err
    assert not (tmp_path / "data").exists()


def test_an_empty_path_is_a_usage_error_not_the_current_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as caught:
        main(["--dir", "", "-d", "kmnist", "-s", "test", "--dry-run"])
    assert caught.value.code == 2
    assert "argument --dir: is empty" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_verify_json_is_valid_utf8_for_a_folder_name_that_is_not(tmp_path: Path) -> None:
    """The raw 0xFF byte went out inside the JSON: no JSON reader took it."""
    folder = os.fsencode(tmp_path) + b"/bad\xffname"
    os.mkdir(folder)
    r = subprocess.run(
        [sys.executable, "-m", "kmnist", "--verify", "--json", "--dir", folder],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
        timeout=60,
    )
    doc = json.loads(r.stdout.decode("utf-8"))  # strict: valid UTF-8
    assert doc["root"].endswith("bad\udcffname")


@pytest.mark.parametrize("mode", [[], ["--dry-run"]])
def test_a_dir_under_a_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: list[str]
) -> None:
    # `--dir afile` was a usage error; `--dir afile/sub` planned a fetch into a
    # folder that can never be made, and a real run failed per file, exit 1.
    afile = tmp_path / "afile"
    afile.write_bytes(b"x")
    target = afile / "sub" / "deeper"
    argv = ["-d", "kmnist", "-f", "npz", "-s", "test", "--dir", str(target), "-m", str(tmp_path)]
    assert main([*argv, *mode]) == 2
    assert one_error_line(capsys) == (
        f"kmnist-download: error: --dir {target}: {afile} is a file, not a folder"
    )
    assert afile.read_bytes() == b"x"


@pytest.mark.parametrize("name", ["new\nline", "carriage\rreturn", "esc\x1b[31mape", "tab\there"])
def test_a_name_with_a_control_character_is_said_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    # Escaped, not printed raw: a newline split the one-line error in two, an
    # escape sequence coloured the terminal.
    afile = tmp_path / name
    afile.write_bytes(b"x")
    assert main(["-d", "kmnist", "-f", "npz", "--dir", str(afile), "--dry-run"]) == 2
    line = one_error_line(capsys)
    assert line.isprintable() and repr(name)[1:-1] in line
    # A mirror folder of that name that is not there: its line, and every
    # file's, one line each.
    missing = tmp_path / ("m" + name)
    argv = ["-d", "kmnist", "-f", "npz", "-s", "test", "--dir", str(tmp_path / "d"), "-q"]
    assert main([*argv, "-m", str(missing)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err and all(x.startswith("kmnist-download: ") and x.isprintable() for x in err)


def test_a_download_with_stderr_closed_runs_without_a_progress_bar(
    server: FaultyServer, realdata: Path, tmp_path: Path
) -> None:
    # cron, a daemon: `2>&-`. The progress bar failed on the missing stream,
    # and the run ended with exit 1 before a byte was fetched, saying nothing.
    from .test_cli import TEST_NPZ, _cmd

    for rel in TEST_NPZ:
        server.add(rel, (realdata / rel).read_bytes())
    argv = _cmd("-d", "kmnist", "-s", "test", "-f", "npz", "-m", server.url, "--dir", str(tmp_path))
    r = subprocess.run(
        ["sh", "-c", 'exec "$@" 2>&-', "sh", *argv], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout
    for rel in TEST_NPZ:
        assert (tmp_path / rel).read_bytes() == (realdata / rel).read_bytes()


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_flat_2018_files_never_take_the_place_of_the_verified_2019_ones(
    tmp_path: Path, realdata: Path, capsys: pytest.CaptureFixture[str], force: list[str]
) -> None:
    # Flat, both releases' MNIST-format files have one name, and the 2018 ones
    # have no published checksum: the 2019 file passed their structure check
    # (skipped as the 2018 file), or was replaced by it with --force.
    name = "t10k-labels-idx1-ubyte.gz"
    (tmp_path / name).write_bytes((realdata / "kmnist" / name).read_bytes())
    argv = ["-d", "kmnist", "-f", "mnist", "-s", "test", "--release", "2018", "--flat"]
    assert main([*argv, "--dir", str(tmp_path), "-m", str(tmp_path / "nowhere"), *force]) == 2
    line = one_error_line(capsys)
    assert f"{tmp_path / name} is the 2019 release's {name}, verified" in line
    assert "choose another --dir" in line
    assert (tmp_path / name).read_bytes() == (realdata / "kmnist" / name).read_bytes()


@pytest.mark.parametrize("mode", [["--cite"], ["--list"], ["-d", "kmnist", "--dry-run"]])
def test_a_mode_that_only_prints_says_so_when_stdout_is_closed(
    mode: list[str], tmp_path: Path
) -> None:
    # `>&-`: they printed nothing and exited 0, as if they had done their job.
    from .test_cli import _cmd

    argv = _cmd(*mode, "--dir", str(tmp_path))
    r = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", *argv], capture_output=True, text=True, timeout=60
    )
    assert (r.returncode, r.stderr.strip().splitlines()) == (
        1,
        ["kmnist-download: error: cannot write to standard output: it is closed"],
    )


def test_a_data_folder_with_a_newline_keeps_every_report_line_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # $KMNIST_DATA="a<newline>b": the totals line "... into a" and "b" came
    # as two lines of the plan, the second looking like a line of its own.
    folder = tmp_path / "a\nb"
    monkeypatch.setenv("KMNIST_DATA", str(folder))
    assert main(["-d", "k49", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2].endswith("to transfer into " + str(tmp_path) + "/a\\nb"), out
    assert all(line.startswith(("action", "fetch", "5 to", "mirrors")) for line in out), out
    assert not folder.exists()


@pytest.mark.parametrize("kind", ["file", "dangling link"])
@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "run"])
def test_a_dataset_folder_that_is_a_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, dry: bool
) -> None:
    # <dir>/kmnist a file: the dry run planned "fetch" into it, and the run
    # failed as a whole ("choose another folder with --dir"), the other
    # dataset's files not fetched either; the file is what to remove.
    at = tmp_path / "kmnist"
    if kind == "file":
        at.write_text("x")
    else:
        at.symlink_to(tmp_path / "nowhere")
    argv = ["-d", "k49", "-d", "kmnist", "-s", "test", "--dir", str(tmp_path)]
    argv += ["--dry-run"] if dry else ["-m", "http://127.0.0.1:9/", "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    what = "a file" if kind == "file" else "a link to nothing"
    assert err == [
        f"kmnist-download: error: {at} is {what}, not a folder: the kmnist files go in it; "
        "remove it, or choose another data folder"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kmnist"]


def test_load_and_the_baseline_name_a_dataset_folder_that_is_a_file(tmp_path: Path) -> None:
    # They said "missing <dir>/kmnist/...; pass download=True (or run
    # kmnist-download)", which then refused the file; the file is what to remove.
    import kmnist
    from kmnist.cli.baseline import main as baseline

    (tmp_path / "kmnist").write_text("x")
    with pytest.raises(kmnist.UsageError, match="kmnist is a file, not a folder: the kmnist files"):
        kmnist.load("kmnist", "test", root=tmp_path)
    assert baseline(["knn", "-d", "kmnist", "--dir", str(tmp_path)]) == 2
