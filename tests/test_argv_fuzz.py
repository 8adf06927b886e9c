"""Every command line, fuzzed: any argv ends in one line and an exit status (hypothesis).

The flags are read from the commands' own argparse parsers, so a flag added
later is fuzzed too; their values are hostile ones (empty, blank, control
characters, Japanese, huge and tiny numbers, ``nan``, ``-0``, values that
start with a dash), given as ``--flag value``, ``--flag=value`` or an
abbreviation, with ``--`` separators and stray words among them.

``main(argv)`` runs in-process (as ``kmnist-download``, ``python -m kmnist``,
``download_data.py`` and ``kmnist-baseline`` name themselves), in a fresh
folder where the only mirrors are a closed port on 127.0.0.1 or an empty
folder; ``offline_sandbox`` fails the test on a lookup or connection to any
other host. A few runs of the real entry points in a subprocess check the same.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from kmnist.cli import baseline, download
from kmnist.cli.common import MAX_TIMEOUT, MIN_TIMEOUT
from kmnist.errors import KmnistError
from kmnist.storage.root import data_root

from .conftest import ROOT
from .test_inputs_props import DEAD, offline_sandbox

PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "kmnist-download": download.build_parser,
    "kmnist-baseline": baseline.build_parser,
}
# The same main under the three names it is started by.
DOWNLOAD_PROGS = ("kmnist-download", "python -m kmnist", "download_data.py")

# An empty folder in the sandbox: a mirror with nothing in it.
EMPTY = "empty-mirror"
HOSTILE = [
    "", " ", "\t", "\x01", "\x7f", "\x1b[31m", "\u200b", "カナ", "é", "a\udcffb",
    "１", "٣", " 4 ", "4\n", "-1", "-0", "0", "+3", "3.0", "1_0", "0x10", "1e-300", "1e-5",
    "0.5", "0.999", "1", "1.5", "2", "64", "65", "1024", "1025", "86400", "86401", "1e308",
    "1e400", "nan", "-nan", "inf", "-inf", "9" * 30, "9" * 5000, "-x", "--", "-d", "--dir",
    "=", "a=b", "x" * 300, "a/" * 300, "/dev/null", "/proc/kmnist", ".", "..", DEAD, EMPTY,
    "out.png", "p.jpg", "http://127.0.0.1:9/x", "file:///nonexistent",
]  # fmt: skip


def _relative(text: str) -> str:
    # A random value is kept inside the sandbox: "/" or "~" as --dir would be
    # the user's own choice of a folder outside it.
    return "x" + text if text.startswith(("/", "~")) else text


values = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12).map(_relative))


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The parser's options, but --help and --version (they only print)."""
    return [
        a
        for a in parser._actions
        if a.option_strings and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))
    ]


@st.composite
def _word_group(draw: st.DrawFn, parser: argparse.ArgumentParser) -> list[str]:
    """One option as a user might type it, or a stray word."""
    kind = draw(st.sampled_from(["option"] * 8 + ["--", "stray"]))
    if kind == "--":
        return ["--"]
    if kind == "stray":
        return [draw(values)]
    action = draw(st.sampled_from(_options(parser)))
    flag = draw(st.sampled_from(action.option_strings))
    if flag.startswith("--") and draw(st.booleans()):
        flag = flag[: draw(st.integers(3, len(flag)))]  # an abbreviation (allow_abbrev)
    if action.nargs == 0:
        return [flag]
    # Often a value the option takes, so that runs get past argparse too.
    choices = [str(c) for c in action.choices or ()] or ["1", "2", "test", DEAD, EMPTY]
    value = draw(st.one_of(st.sampled_from(choices), values))
    if flag.startswith("--") and draw(st.booleans()):
        return [f"{flag}={value}"]
    return [flag, value]


@st.composite
def argvs(draw: st.DrawFn, command: str) -> list[str]:
    parser = PARSERS[command]()
    if command == "kmnist-download":
        start = [[], ["-d", "kmnist", "-s", "test"], ["-d", "k49", "-s", "test", "--dry-run"]]
    else:
        start = [["knn", "-d", "kmnist"], ["cnn", "-d", "k49"], ["knn", "-d", "kmnist", "--k", "1"]]
    groups = draw(st.lists(_word_group(parser), max_size=5))
    return draw(st.sampled_from(start)) + [w for g in groups for w in g]


def _tree(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _data_folder(command: str, argv: list[str], sandbox: Path) -> Path | None:
    """Where the run may write: its data folder; None when its arguments are refused."""
    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            args = PARSERS[command]().parse_args(argv)
            folder = data_root(args.dir)
        except (SystemExit, KmnistError):
            return None
    return folder if folder.is_absolute() else sandbox / folder


def _main(command: str, prog: str) -> Callable[[list[str]], int]:
    run = download.main if command == "kmnist-download" else baseline.main
    return lambda argv: run(argv, prog=prog)


def _check_run(
    command: str,
    prog: str,
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str, str]:
    """Run ``argv`` in a sandbox and check what holds for every command line."""
    with offline_sandbox({}) as sandbox:
        os.environ["HOME"] = str(sandbox / "home")
        (sandbox / EMPTY).mkdir()
        before = _tree(sandbox)
        try:
            status = _main(command, prog)(argv)
        except SystemExit as exc:  # argparse's own way out: its errors, --help, --version
            status = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        written = _tree(sandbox) - before
        allowed = _data_folder(command, argv, sandbox)
    event(f"{command}: exit {status}")
    said = f"argv={argv!r}\nstderr={err!r}"
    assert status in (0, 1, 2), said
    assert "Traceback" not in out + err, said
    lines = err.splitlines()
    if status == 2:
        # A usage error is one line, without argparse's usage (none of the
        # project's usage errors prints it).
        assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), said
    elif status == 1:
        assert err.strip() or out.strip(), said  # why: an error, or a report on stdout
    assert all(line.isprintable() for line in lines), said  # one line each, escaped
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == len(set(errors)), said  # nothing said twice
    # The data folder, and the folders it is made in (mkdir -p of --dir).
    outside = [
        p for p in written if allowed is None or not (_inside(p, allowed) or p in allowed.parents)
    ]
    assert outside == [], f"{said}\nwritten outside the data folder: {outside}"
    return status, out, err


COMMON_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("prog", DOWNLOAD_PROGS)
@COMMON_SETTINGS
@given(argv=argvs("kmnist-download"))
@example(argv=["-d", "kmnist", "-s", "test", "--timeout=--"])
@example(argv=["-d", "kmnist", "-s", "test", "--dry-run", "--dir=--", "--jobs=--"])
@example(argv=["-d", "kmnist", "-s", "test", "--dry-run", "--"])
@example(argv=["-d", "kmnist", "-s", "test", "--timeout", "1e-300"])
@example(argv=["-d", "kmnist", "-s", "test", "--dir", DEAD + "/data"])
def test_any_download_command_line_is_a_line_and_a_status(
    prog: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _check_run("kmnist-download", prog, argv, capsys)


@COMMON_SETTINGS
@given(argv=argvs("kmnist-baseline"))
@example(argv=["knn", "-d", "kmnist", "--test-split-only", "--limit=--"])
@example(argv=["knn", "-d", "kmnist", "--dir=--", "--"])
@example(argv=["knn", "-d", "kmnist", "--download", "--dir", DEAD])
def test_any_baseline_command_line_is_a_line_and_a_status(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _check_run("kmnist-baseline", "kmnist-baseline", argv, capsys)


# -- what the fuzz found -------------------------------------------------------


def _valued_options() -> list[tuple[str, str]]:
    return [
        (command, a.option_strings[0])
        for command, build in PARSERS.items()
        for a in _options(build())
        if a.nargs is None
    ]


REQUIRED = {"kmnist-download": ["-d", "kmnist", "-s", "test"], "kmnist-baseline": ["knn"]}


@pytest.mark.parametrize(("command", "flag"), _valued_options())
def test_two_dashes_after_the_equals_sign_are_the_value(
    command: str, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # "--timeout=--" gave the option an empty list (Python < 3.12.3 took the
    # value for the separator), and the run a traceback.
    parser = PARSERS[command]()
    action = next(a for a in _options(parser) if flag in a.option_strings)
    try:
        required = REQUIRED[command]
        if command == "kmnist-baseline" and flag != "--dataset":
            required = [*required, "-d", "kmnist"]
        args = parser.parse_args([*required, f"{flag}=--"])
    except SystemExit as exc:
        assert exc.code == 2
        [line] = capsys.readouterr().err.splitlines()
        assert "'--'" in line, line  # the value named, as any other refused value
        return
    value = getattr(args, action.dest)
    if isinstance(value, list):  # --mirror and --dataset append
        value = value[-1]
    assert str(value) == "--"


@pytest.mark.parametrize("prog", DOWNLOAD_PROGS)
def test_a_last_double_dash_ends_the_options(prog: str, capsys: pytest.CaptureFixture[str]) -> None:
    # "--" is the end of the options (POSIX): with nothing after it, nothing is wrong.
    argv = ["-d", "kmnist", "-s", "test", "--dry-run", "--"]
    with offline_sandbox({}):
        assert download.main(argv, prog=prog) == 0
    assert capsys.readouterr().err == ""
    # What follows it is refused, named without the "--" (which was not the fault).
    with offline_sandbox({}), pytest.raises(SystemExit) as stop:
        download.main(["--", "-d", "kmnist"], prog=prog)
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"{prog}: error: unrecognized arguments: -d kmnist\n"


@pytest.mark.parametrize(("word", "shown"), [("", "''"), (" ", "' '"), ("a b", "'a b'")])
def test_an_unrecognized_blank_word_is_shown_quoted(
    word: str, shown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # It read "unrecognized arguments: " and then nothing to see.
    with offline_sandbox({}), pytest.raises(SystemExit) as stop:
        download.main(["-d", "kmnist", "--dry-run", word])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err == f"kmnist-download: error: unrecognized arguments: {shown}\n"


@settings(max_examples=60, deadline=None)
@given(
    seconds=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=0, max_value=2 * MIN_TIMEOUT),
        st.sampled_from([1e-300, 5e-324, -0.0, 0.999999, 1.0, 86400.0, 86400.000001]),
    ),
    spelt=st.sampled_from(["{!r}", "{:.17g}", "{:e}"]),
)
def test_a_timeout_is_one_second_to_a_day(seconds: float, spelt: str) -> None:
    # 1e-300 was taken: every mirror gave "no response within 1e-300 s", and
    # the hint pointed at the mirrors. The floor is aria2c's, and TCP's first
    # retransmission of a lost packet (1 s).
    text = spelt.format(seconds)
    parser = download.build_parser()
    try:
        got = parser.parse_args(["--timeout", text]).timeout
    except SystemExit as exc:
        assert exc.code == 2
        assert not MIN_TIMEOUT <= float(text) <= MAX_TIMEOUT  # NaN is refused too
        return
    assert MIN_TIMEOUT <= got <= MAX_TIMEOUT
    assert got == float(text)


def test_a_timeout_below_a_second_is_one_line_naming_the_range(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with offline_sandbox({}), pytest.raises(SystemExit) as stop:
        download.main(["-d", "kmnist", "-s", "test", "--timeout", "1e-300"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == (
        "kmnist-download: error: argument --timeout: must be 1 to 86400 seconds (a day), "
        "not '1e-300'\n"
    )


@pytest.mark.parametrize(
    ("argv", "env", "said"),
    [
        (["--dir", "http://user:pw@127.0.0.1:9/kmnist"], {}, "argument --dir: 'http://***@"),
        (["--dir", "file:///data"], {}, "argument --dir: 'file:///data' is a URL"),
        (["--preview", "https://127.0.0.1:9/p.png"], {}, "argument --preview: 'https://"),
        ([], {"KMNIST_DATA": "https://127.0.0.1:9/x"}, "$KMNIST_DATA 'https://127.0.0.1:9/x'"),
    ],
)
def test_a_url_given_for_a_folder_is_a_usage_error(
    argv: list[str], env: dict[str, str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # --dir http://host/x made a folder "http:" (pathlib reads "//" as "/")
    # and downloaded into it; the questions already refused a URL there.
    with offline_sandbox(env) as sandbox:
        status: object
        try:
            status = download.main(["-d", "kmnist", "-s", "test", *argv])
        except SystemExit as exc:
            status = exc.code
        assert list(sandbox.iterdir()) == []
    assert status == 2
    [line] = capsys.readouterr().err.splitlines()
    assert said in line and "is a URL: " in line and "on this machine" in line, line
    assert "pw" not in line


def test_the_library_refuses_a_url_for_its_root_too() -> None:
    import kmnist

    with pytest.raises(KmnistError, match=r"root 'https://\*\*\*@h/x' is a URL: the data folder"):
        kmnist.load("kmnist", "test", root="https://u:pw@h/x")


# -- the real entry points -----------------------------------------------------


def _entry(name: str) -> list[str]:
    if name == "download_data.py":
        return [sys.executable, str(ROOT / "download_data.py")]
    if name == "python -m kmnist":
        return [sys.executable, "-m", "kmnist"]
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed beside {sys.executable}")
    return [found]


@pytest.mark.parametrize(
    ("entry", "argv", "status", "needle"),
    [
        ("kmnist-download", ["-d", "kmnist", "--timeout=--"], 2, "invalid timeout value: '--'"),
        ("python -m kmnist", ["-d", "kmnist", "--jobs=--"], 2, "invalid number value: '--'"),
        ("download_data.py", ["-d", "kmnist", "--timeout", "0.5"], 2, "not '0.5'"),
        ("kmnist-download", ["-d", "kmnist", "-s", "test", "--dry-run", "--"], 0, None),
        ("kmnist-baseline", ["knn", "-d", "kmnist", "--limit=--"], 2, "'--'"),
        ("kmnist-baseline", ["knn", "-d", "kmnist", "--", ""], 2, "arguments: ''"),
    ],
)
def test_the_entry_points_say_it_in_one_line(
    entry: str, argv: Sequence[str], status: int, needle: str | None, tmp_path: Path
) -> None:
    env = {**os.environ, "KMNIST_MIRROR": DEAD, "HOME": str(tmp_path)}
    env.pop("KMNIST_DATA", None)
    r = subprocess.run(
        [*_entry(entry), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == status, r.stderr
    assert "Traceback" not in r.stderr
    if needle is None:
        assert r.stderr == ""
    else:
        [line] = r.stderr.splitlines()
        assert needle in line and line.startswith(f"{entry}: error: "), line
    assert [p.name for p in tmp_path.iterdir()] == []  # not even the data folder


# -- the questions on a terminal that cannot draw them ---------------------------


def test_a_dumb_terminal_is_told_the_flags_instead_of_shown_escape_codes(tmp_path: Path) -> None:
    # TERM=dumb (Emacs' M-x shell): the menus were drawn with cursor movements
    # such a terminal prints as text, and arrows could not move in them.
    if sys.platform == "win32":
        pytest.skip("pseudo-terminals are POSIX")
    pexpect = pytest.importorskip("pexpect")
    env = {k: v for k, v in os.environ.items() if k not in ("KMNIST_MIRROR", "KMNIST_DATA")}
    env.update(TERM="dumb", PROMPT_TOOLKIT_NO_CPR="1", KMNIST_MIRROR=DEAD)
    child = pexpect.spawn(
        sys.executable,
        [str(ROOT / "download_data.py")],
        cwd=str(tmp_path),
        env=env,
        dimensions=(24, 80),
        encoding="utf-8",
        timeout=30,
    )
    try:
        found = child.expect(["Which datasets", "error: .*\r\n"])
        said = child.after
        if found == 1:
            child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert found == 1, "the questions were drawn on a dumb terminal"
    assert child.exitstatus == 2
    line = said.strip()
    assert "TERM=dumb" in line and "\x1b" not in line
    assert "download_data.py --dataset kmnist --format npz --split all --dir data" in line
    assert [p.name for p in tmp_path.iterdir()] == []
