"""Any argv and environment: one line and an exit status, never a traceback (hypothesis).

``main()`` runs in-process on random flags and values, with KMNIST_MIRROR and
KMNIST_DATA drawn too. Nothing leaves the machine: every mirror that could be
drawn is a dead loopback port, a folder, or text that is not a URL, and name
lookups and connections to anything but 127.0.0.1 fail the test.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import kmnist.downloader.run
from kmnist.catalogue import manifest
from kmnist.cli.download import main
from kmnist.downloader.run import RetryPolicy
from kmnist.errors import UsageError

from .conftest import loopback_only

DEAD = "http://127.0.0.1:9"

FLAGS = [
    "--dataset", "-d", "--format", "-f", "--split", "-s", "--dir", "--flat", "--mirror",
    "-m", "--release", "--list", "--dry-run", "--force", "--verify", "--json", "--extract",
    "--preview", "--quiet", "-q", "--jobs", "-j", "--connections", "--timeout", "--version",
]  # fmt: skip
# Values that broke something once, or are at an edge, and ordinary ones.
TRICKY = [
    "kmnist", "k49", "kkanji", "all", "npz", "mnist", "tar", "test", "train", "2018", "2019",
    "0", "-1", "1", "nan", "inf", "-inf", "1e400", "1e308", "99999999999999999999", "0x10",
    "{", "}", "{0}", "{foo}", "{path}", "{name}", "{path!r}", "{path:>9}", "{{path}}",
    DEAD, DEAD + "/{name}", "http://[::1", "http://[::1]:9/", "http://127.0.0.1:99999/",
    "http://:9/", "http://", "https://", "ftp://127.0.0.1/", "file://", "file:///nonexistent",
    "http://127.0.0.1:9/a b", "http://127.0.0.1:9/\x00", "/proc/kmnist", "/dev/null",
    "/", ".", "..", "", " ", "a\x00b", "x" * 300, "a/" * 600, "\udcff", "\x1b[31m",
    "~", "~nobody/x", "-", "--", "out.png", "/nonexistent/p.png",
]  # fmt: skip
values = st.one_of(st.sampled_from(TRICKY), st.text(max_size=20))
VALUED = ["-d", "-f", "-s", "--dir", "-m", "--release", "--preview", "-j", "--connections",
          "--timeout"]  # fmt: skip
SWITCHES = ["--flat", "--list", "--dry-run", "--force", "--verify", "--json", "--extract", "-q"]
# Mostly well-formed: a flag with a value, so that runs get past argparse and
# the values reach the code that uses them; sometimes anything at all.
options = st.one_of(
    st.tuples(st.sampled_from(VALUED), values).map(list),
    st.sampled_from(SWITCHES).map(lambda f: [f]),
    st.lists(st.one_of(st.sampled_from(FLAGS), values), max_size=2),
)
argvs = st.tuples(
    st.sampled_from([[], ["-d", "kmnist", "-s", "test"], ["-d", "k49", "-s", "test", "-q"]]),
    st.lists(options, max_size=4),
).map(lambda t: t[0] + [x for o in t[1] for x in o])
envs = st.fixed_dictionaries({}, optional={"KMNIST_MIRROR": values, "KMNIST_DATA": values})


def _connect_guard(real: Any) -> Any:
    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] != "127.0.0.1":
            raise AssertionError(f"a connection left the machine: {address!r}")
        return real(self, address)

    return guarded


@contextlib.contextmanager
def offline_sandbox(env: dict[str, str]) -> Iterator[Path]:
    """A fresh working folder and environment; no sleeps, no network beyond 127.0.0.1."""
    base = {"KMNIST_MIRROR": DEAD, "TQDM_DISABLE": "1"}
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        old = Path.cwd()
        os.chdir(folder)
        stack.callback(os.chdir, old)
        clean = {k: v for k, v in os.environ.items() if k not in ("KMNIST_MIRROR", "KMNIST_DATA")}
        stack.enter_context(mock.patch.dict(os.environ, {**clean, **base, **env}, clear=True))
        stack.enter_context(
            mock.patch.object(socket, "getaddrinfo", loopback_only(socket.getaddrinfo))
        )
        stack.enter_context(
            mock.patch.object(socket.socket, "connect", _connect_guard(socket.socket.connect))
        )
        stack.enter_context(
            mock.patch.object(
                kmnist.downloader.run,
                "RetryPolicy",
                lambda **k: RetryPolicy(sleep=lambda s: None, **k),
            )
        )
        yield folder


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """main(argv): its status, stdout and stderr."""
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own way out: --help, --version, its errors
        status = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return status, out, err


# Function-scoped fixtures: capsys is read and emptied in every example, and
# each example makes its own folder, so nothing carries over between them.
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(argv=argvs, env=envs)
def test_any_argv_and_environment_end_in_a_line_and_a_status(
    argv: list[str], env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    if any("\x00" in v for v in env.values()):
        return  # no process can be given such an environment
    with offline_sandbox(env):
        status, out, err = run_main(argv, capsys)
    event(f"exit {status}")
    assert status in (0, 1, 2), (argv, env, err)
    assert "Traceback" not in err + out, (argv, env, err)
    if status != 0:  # said why: an error line, or --verify's report
        assert err.strip() or out.strip(), (argv, env)


@settings(max_examples=150, deadline=None)
@given(spec=values)
@example(spec="~\x00")  # expanduser looked the user "\0" up: ValueError
def test_a_mirror_is_a_mirror_or_a_usage_error(spec: str) -> None:
    try:
        m = manifest.user_mirror(spec)
    except UsageError as exc:
        assert str(exc).startswith("--mirror")
        return
    url = m.url(manifest.RemoteFile("kmnist/x.npz"))
    assert "kmnist/x.npz" in url or "x.npz" in url


@pytest.mark.parametrize(
    ("argv", "env", "needle"),
    [
        (["-d", "kmnist", "-m", "{"], {}, "--mirror '{'"),
        (["-d", "kmnist", "-m", "}"], {}, "--mirror '}'"),
        (["-d", "kmnist", "-m", "http://h/{0}"], {}, "unknown field '{0}'"),
        (["-d", "kmnist", "-m", "http://h/{foo}"], {}, "unknown field '{foo}'"),
        (["-d", "kmnist", "-m", "http://[::1"], {}, "--mirror 'http://[::1'"),
        (["-d", "kmnist", "-m", "http://h:port/"], {}, "not a valid URL"),
        (["-d", "kmnist", "-m", "http:///x"], {}, "no host name"),
        (["-d", "kmnist"], {"KMNIST_MIRROR": "{foo}"}, "$KMNIST_MIRROR '{foo}'"),
        (["-d", "kmnist", "--dry-run"], {"KMNIST_DATA": "a\x01b/" * 300}, "$KMNIST_DATA is"),
        (["-d", "kmnist", "--dry-run", "--dir", "a/" * 2000], {}, "2,000 folders deep"),
        (["-d", "kmnist", "--dry-run", "--dir", "x" * 300], {}, "longer than 255 bytes"),
        (["-d", "kmnist", "--dry-run", "--dir", "a\x00b"], {}, "NUL"),
    ],
)
def test_bad_values_are_usage_errors_that_name_them(
    argv: list[str], env: dict[str, str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with offline_sandbox(env) as folder:
        status, _, err = run_main(argv, capsys)
        assert list(folder.iterdir()) == []  # nothing acted on
    assert status == 2, err
    [line] = err.strip().splitlines()
    assert needle in line and "Traceback" not in line


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "-inf", "1e400", "1e9", "soon"])
def test_timeouts_that_are_not_a_positive_finite_number(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with offline_sandbox({}):
        status, _, err = run_main(["-d", "kmnist", "--dry-run", f"--timeout={value}"], capsys)
    assert status == 2
    assert "argument --timeout" in err and repr(value) in err and "Traceback" not in err


@pytest.mark.parametrize("path", ["", "kmnist/a\x00b", ".", "/etc/passwd", "../x", "a\\b"])
def test_api_paths_outside_or_impossible_are_usage_errors(path: str) -> None:
    with pytest.raises(UsageError):
        manifest.RemoteFile(path)


def test_api_folders_are_checked_as_the_flags_are(tmp_path: Path) -> None:
    import kmnist

    with pytest.raises(UsageError, match="NUL"):
        kmnist.download("kmnist", root="a\x00b", mirrors=[DEAD])
    with pytest.raises(UsageError, match="folders deep"):
        kmnist.download("kmnist", root="a/" * 2000, mirrors=[DEAD])
    f = manifest.RemoteFile("kmnist/x.bin")
    # Named as the caller named it: the argument "root".
    with pytest.raises(UsageError, match=r"root .*NUL byte"):
        kmnist.download_files([f], "a\x00b", mirrors=[DEAD], progress=False)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_one_line_is_one_printable_line_and_keeps_printable_text(text: str) -> None:
    from kmnist.errors import one_line

    line = one_line(text)
    assert line.isprintable() and len(line.splitlines()) <= 1
    if text.isprintable():
        assert line == text  # Japanese, spaces and the like untouched
    # Nothing lost: each character is there, as itself or escaped.
    assert len(line) >= len(text)
