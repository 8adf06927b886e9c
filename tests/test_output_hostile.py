"""What ``kmnist-download`` prints, to streams that misbehave: a standard error
that is full, closed or a pipe whose reader left, a terminal from one to
twenty columns wide, ``TERM=dumb``, and tqdm's own ``TQDM_*`` settings set
wrong.

Everything runs against tests/server.py's FaultyServer on 127.0.0.1. The
runs in a process use the real published files (skipped without them); the
in-process ones need no files at all.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmnist.cli.download import main
from kmnist.downloader import progress

from .server import FaultyServer

TEST_NPZ = [
    "kmnist/kmnist-test-imgs.npz",
    "kmnist/kmnist-test-labels.npz",
    "kmnist/kmnist_classmap.csv",
]
# A generous bound, to catch a hang only: these runs take about a second.
DEADLINE = 60
CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _cmd(*args: str) -> list[str]:
    exe = shutil.which("kmnist-download", path=str(Path(sys.executable).parent))
    return [exe, *args] if exe else [sys.executable, "-m", "kmnist", *args]


def _env(**extra: str) -> dict[str, str]:
    """The environment of a child: no mirror or folder of the developer's, no tqdm setting.

    Nor PYTHONUNBUFFERED: a user's standard error has a buffer, and a line it
    refused (2>/dev/full) failed again at the interpreter's exit, exit 120;
    unbuffered, as on a developer's machine that sets it, nothing showed it.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TQDM_")
        and k not in ("KMNIST_MIRROR", "KMNIST_DATA", "PYTHONUNBUFFERED")
    }
    env.update(extra)
    return env


@pytest.fixture
def mirror(server: FaultyServer, realdata: Path) -> FaultyServer:
    """A local mirror of the real published files."""
    server.add_tree(realdata)
    return server


def _fetch(mirror: FaultyServer, root: Path, *extra: str) -> list[str]:
    return _cmd("-d", "kmnist", "-f", "npz", "-s", "test", "--dir", str(root), *extra)


def _arrived(root: Path, realdata: Path) -> None:
    for rel in TEST_NPZ:
        assert (root / rel).read_bytes() == (realdata / rel).read_bytes()
    assert not list(root.rglob("*.part"))


needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")


# -- a standard error that cannot be written --------------------------------------


@needs_dev_full
@pytest.mark.parametrize(
    "extra",
    [["-v"], ["-v", "-q"], ["-v", "--no-progress"], ["first mirror 404"]],
    ids=["verbose", "verbose-quiet", "verbose-no-progress", "note"],
)
def test_what_is_said_while_it_runs_never_fails_the_download(
    mirror: FaultyServer, realdata: Path, tmp_path: Path, extra: list[str]
) -> None:
    # `-v 2>/dev/full`, or a mirror left behind ("trying the next mirror")
    # said to it: the download failed with "the disk is full while writing
    # kmnist-test-imgs.npz (65,000 MiB free)", the .part files left.
    mirrors = ["-m", mirror.url]
    if extra == ["first mirror 404"]:
        extra, mirrors = [], ["-m", mirror.url + "/nothere", *mirrors]
    argv = _fetch(mirror, tmp_path, *mirrors, *extra)
    with open("/dev/full", "w") as full:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=full, timeout=DEADLINE, env=_env())
    assert r.returncode == 0, r.stdout
    _arrived(tmp_path, realdata)


class Unwritable(io.TextIOBase):
    """A standard error whose every write fails as ``exc`` says (a full disk, a gone reader)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.tries = 0

    def write(self, text: str) -> int:
        self.tries += 1
        raise self.exc

    def flush(self) -> None:
        pass


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        BrokenPipeError(errno.EPIPE, "Broken pipe"),
        ValueError("I/O operation on closed file."),
    ],
    ids=["full", "pipe", "closed"],
)
@pytest.mark.parametrize(
    ("argv", "status"),
    [
        (["--cite", "--json"], 2),
        (["-d", "kmnist", "--dry-run", "--dir", "{file}"], 2),
        (["-d", "kmnist", "-s", "test", "--dir", "{dir}", "-m", "{dead}", "--no-progress"], 1),
        (["--verify", "--dir", "{dir}/nothing"], 1),
    ],
    ids=["usage", "dir-a-file", "run-fails", "verify-nothing"],
)
def test_an_error_that_cannot_be_said_keeps_its_exit_status(
    exc: BaseException,
    argv: list[str],
    status: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `--cite --json 2>/dev/full`: the error line raised OSError out of
    # main(), a traceback (into the full stream) and exit 1, not 2.
    (tmp_path / "afile").write_text("x")
    words = {"{file}": str(tmp_path / "afile"), "{dir}": str(tmp_path / "d"), "{dead}": ""}
    words["{dead}"] = "http://127.0.0.1:9/"  # the discard port: nothing listens
    argv = [_fill(a, words) for a in argv]
    err = Unwritable(exc)
    monkeypatch.setattr(sys, "stderr", err)
    assert main(argv) == status
    assert err.tries >= 1  # it did try to say it
    assert capsys.readouterr().out == ""  # and not on standard output instead


def test_ctrl_c_that_cannot_be_said_still_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The "interrupted" line into a full standard error: OSError, exit 1.
    from kmnist.cli import download

    def interrupted(*args: object, **kwargs: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "run", interrupted)
    err = Unwritable(OSError(errno.ENOSPC, "No space left on device"))
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["-d", "kmnist", "--dir", str(tmp_path)]) == 130
    assert err.tries == 1


def _fill(arg: str, words: dict[str, str]) -> str:
    for k, v in words.items():
        arg = arg.replace(k, v)
    return arg


# -- a standard error that is closed (2>&-) -------------------------------------------


@pytest.mark.parametrize(
    "mode",
    [["--check-mirrors", "--json"], ["--check-mirrors"], []],
    ids=["check-mirrors-json", "check-mirrors", "run"],
)
def test_the_request_log_never_lands_on_standard_output(
    mirror: FaultyServer, realdata: Path, tmp_path: Path, mode: list[str]
) -> None:
    # `-v 2>&-`: with no standard error, tqdm.write(file=None) wrote every
    # request line to standard output, into the JSON a script parses there.
    argv = _fetch(mirror, tmp_path, "-m", mirror.url, "-v", *mode)
    r = subprocess.run(
        ["sh", "-c", 'exec "$@" 2>&-', "sh", *argv],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env=_env(),
    )
    assert r.returncode == 0, r.stdout
    assert "GET " not in r.stdout, r.stdout
    if "--json" in mode:
        assert json.loads(r.stdout)["ok"] is True
    if not mode:
        _arrived(tmp_path, realdata)


# -- tqdm's own settings, set wrong ---------------------------------------------------


@pytest.mark.parametrize(
    "setting",
    ["TQDM_MININTERVAL=x", "TQDM_NCOLS=abc", "TQDM_DELAY=soon", "TQDM_SMOOTHING=abc"],
)
@pytest.mark.parametrize("extra", [[], ["-v", "-q"]], ids=["bars", "verbose-quiet"])
def test_a_tqdm_setting_tqdm_cannot_read_is_one_line_and_the_files_arrive(
    mirror: FaultyServer, realdata: Path, tmp_path: Path, setting: str, extra: list[str]
) -> None:
    # TQDM_MININTERVAL=x: tqdm raised ValueError when imported, a traceback
    # and exit 1 before a byte was fetched, terminal or not.
    name, value = setting.split("=")
    r = subprocess.run(
        _fetch(mirror, tmp_path, "-m", mirror.url, *extra),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env=_env(**{name: value}),
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    said = [line for line in r.stderr.splitlines() if "TQDM_" in line]
    if "-q" in extra:
        assert said == [], r.stderr
    else:
        assert len(said) == 1, r.stderr
        assert f"{name}={value!r}" in said[0] and "no progress bars" in said[0]
    _arrived(tmp_path, realdata)


# -- a real terminal: odd sizes, TERM=dumb, TQDM_ASCII --------------------------------

pexpect = pytest.importorskip("pexpect") if sys.platform != "win32" else None


def _on_a_terminal(
    mirror: FaultyServer, root: Path, *, rows: int = 24, cols: int = 80, **env: str
) -> tuple[int, str]:
    """The command on a pseudo-terminal of ``cols`` columns; its exit status and what it drew."""
    assert pexpect is not None
    # Slow enough for the bars to be drawn a few times between start and end.
    mirror.always(TEST_NPZ[0], "rate:6000000")
    argv = _fetch(mirror, root, "-m", mirror.url)
    child = pexpect.spawn(
        argv[0],
        argv[1:],
        env=_env(**{"TERM": "xterm", **env}),
        dimensions=(rows, cols),
        encoding="utf-8",
        timeout=DEADLINE,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.signalstatus is None
    return int(child.exitstatus), str(child.before)


def _drawn(text: str) -> list[str]:
    """What the bars drew: each piece of text between two carriage returns or newlines,
    escape sequences taken out, up to the summary (whose lines are text, not redrawn)."""
    bars = text.split("fetched  ", 1)[0]
    return [CSI.sub("", piece) for piece in re.split(r"[\r\n]", bars) if piece.strip()]


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
@pytest.mark.parametrize("cols", [1, 2, 3, 5, 8, 13, 20])
def test_a_narrow_terminal_gets_bars_that_fit_it(
    mirror: FaultyServer, realdata: Path, tmp_path: Path, cols: int
) -> None:
    # One column: tqdm drew "total:   0% 0/3084934 [00:00<?, ?B/s]" (raw
    # byte counts, untrimmed), which a 1-column terminal wraps into 37 rows,
    # redrawn one row up each time.
    status, text = _on_a_terminal(mirror, tmp_path, cols=cols)
    assert status == 0, text
    assert "Traceback" not in text
    too_wide = [piece for piece in _drawn(text) if len(piece) > cols]
    assert too_wide == [], text
    _arrived(tmp_path, realdata)


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_a_dumb_terminal_gets_one_bar_without_cursor_movement(
    mirror: FaultyServer, realdata: Path, tmp_path: Path
) -> None:
    # TERM=dumb (Emacs' M-x shell): a bar per file moved the cursor up with
    # ESC [ A, which such a terminal prints as it is, "^[[A" on every line.
    status, text = _on_a_terminal(mirror, tmp_path, TERM="dumb")
    assert status == 0, text
    assert "\x1b" not in text, repr(text[:400])
    assert any(piece.startswith("total:") for piece in _drawn(text)), text
    _arrived(tmp_path, realdata)


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
@pytest.mark.parametrize("value", ["1", "x", "", "#"])
def test_tqdm_ascii_of_one_character_draws_bars_not_a_traceback(
    mirror: FaultyServer, realdata: Path, tmp_path: Path, value: str
) -> None:
    # TQDM_ASCII=1: tqdm took "1" for a set of bar characters, one long, and
    # divided by zero in the middle of the download (exit 1, .part files left).
    status, text = _on_a_terminal(mirror, tmp_path, TQDM_ASCII=value)
    assert status == 0, text
    assert "Traceback" not in text
    _arrived(tmp_path, realdata)


# -- guard tests: the JSON contract (these passed before; they keep it) ---------------


@pytest.mark.parametrize(
    ("mode", "keys"),
    [
        (["--list", "--json"], {"files", "mirrors"}),
        (["--check-mirrors", "--json"], {"ok", "files", "probes"}),
        (["--verify", "--json"], {"root", "ok", "counts", "files"}),
    ],
    ids=["list", "check-mirrors", "verify"],
)
def test_json_modes_print_one_document_and_nothing_else(
    mode: list[str],
    keys: set[str],
    server: FaultyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [*mode, "-d", "kmnist", "-s", "test", "--dir", str(tmp_path), "-m", server.url, "-v"]
    main(argv)
    out = capsys.readouterr().out
    doc: Any = json.loads(out)  # the whole of standard output: one document
    assert set(doc) == keys


# -- any TQDM_* setting, in-process ----------------------------------------------------

# The parameters tqdm reads from TQDM_<NAME> (tqdm 4.70, std.py tqdm.__init__).
TQDM_PARAMETERS = [
    "desc", "total", "leave", "file", "ncols", "mininterval", "maxinterval", "miniters",
    "ascii", "disable", "unit", "unit_scale", "dynamic_ncols", "smoothing", "bar_format",
    "initial", "position", "postfix", "unit_divisor", "write_bytes", "lock_args", "nrows",
    "colour", "delay",
]  # fmt: skip
ODD_VALUES = st.one_of(
    st.sampled_from(["", "0", "1", "-1", "x", "nan", "inf", "-inf", "1e309", "True", "#"]),
    st.text(st.characters(blacklist_characters="\x00", codec="utf-8"), max_size=4),
)


class FakeTerminal(io.StringIO):
    """A terminal as tqdm sees one (isatty), of a width nobody knows."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def fresh_tqdm(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A way to import tqdm again under other TQDM_* settings, put back afterwards."""
    saved = {k: v for k, v in sys.modules.items() if k == "tqdm" or k.startswith("tqdm.")}

    def reimport(env: dict[str, str]) -> None:
        for k in [k for k in os.environ if k.startswith("TQDM_")]:
            monkeypatch.delenv(k)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        for k in [k for k in sys.modules if k == "tqdm" or k.startswith("tqdm.")]:
            del sys.modules[k]
        monkeypatch.setattr(progress, "_loaded", [])

    yield reimport
    for k in [k for k in sys.modules if k == "tqdm" or k.startswith("tqdm.")]:
        del sys.modules[k]
    sys.modules.update(saved)


# The fixture sets every example's environment afresh.
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(env=st.dictionaries(st.sampled_from(TQDM_PARAMETERS), ODD_VALUES, max_size=3))
def test_any_tqdm_setting_draws_bars_or_says_why_not(fresh_tqdm: Any, env: dict[str, str]) -> None:
    # TQDM_MININTERVAL=x failed tqdm's import, TQDM_ASCII=1 divided by zero
    # while drawing: each a traceback in the middle of a download.
    import warnings

    fresh_tqdm({f"TQDM_{k.upper()}": v for k, v in env.items()})
    screen = FakeTerminal()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm's own about an unknown colour
        bars = progress.TqdmProgress(300, file=screen)
        one = bars.start("kmnist/a.npz", 200, 0)
        two = bars.start("kmnist/b.npz", None, 0)
        for _ in range(3):
            one.update(50)
            two.update(7)
        bars.note("a mirror\nleft behind")
        one.reset(0)
        one.close()
        two.close()
        bars.close()
    assert "a mirror\\nleft behind" in screen.getvalue()
