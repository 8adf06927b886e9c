"""SIGINT, SIGTERM and SIGHUP at any moment: one line, exit 128+N, bytes on disk still right.

Real processes (the installed console script) against a local mirror of the
real files that answers slowly, signalled after a random delay drawn with a
fixed seed; afterwards every final file must hold the published bytes, no
temporary record may be left, and a second run must finish the job.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kmnist.cli.download import main
from kmnist.signals import block_early
from kmnist.storage.layout import lock_path
from kmnist.storage.lock import FileLock

from .conftest import ROOT
from .server import FaultyServer, SilentPort
from .test_cli import TEST_NPZ, _cmd

EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}
SAID = {
    signal.SIGINT: "interrupted; run the same command again to resume",
    signal.SIGTERM: "stopped by SIGTERM; the .part files are kept",
    signal.SIGHUP: "stopped by SIGHUP; the .part files are kept",
}
REPEATS = 12
# What CPython's start-up prints when a Ctrl-C lands while it checks whether
# the script's path is an import path entry; it then runs the script anyway.
# What CPython prints when it catches a KeyboardInterrupt of its own start-up
# and goes on (nothing of ours has run yet): while it checks the script's
# folder as an import path, and in an import lock's weakref callback.
PYTHON_CARRIED_ON = (
    "Failed checking if argv[0] is an import path entry",
    "Exception ignored in: <function _get_module_lock.<locals>.cb",
)


@pytest.fixture
def mirror(server: FaultyServer, realdata: Path) -> FaultyServer:
    server.add_tree(realdata)
    # Slow enough that a signal can land in the transfer as well as before it.
    server.always(TEST_NPZ[0], "delay:0.2")
    return server


def _frames_of_ours(err: str) -> list[str]:
    return [
        line
        for line in err.splitlines()
        if line.strip().startswith("File ") and re.search(r"[/\\]kmnist[/\\]|kmnist_entry", line)
    ]


def _check_folder(root: Path, realdata: Path) -> None:
    """Whatever the moment: final names hold the published bytes, no temporary file is left."""
    for p in root.rglob("*"):
        assert ".part.json." not in p.name, f"temporary record left: {p}"
        assert not re.search(r"\.verified\.\d+\.", p.name), f"temporary stamp left: {p}"
    for rel in TEST_NPZ:
        final = root / rel
        if final.exists():
            assert final.read_bytes() == (realdata / rel).read_bytes(), f"{rel} is not verified"
        part = root / (rel + ".part")
        if part.exists() and not (root / (rel + ".part.json")).exists():
            # A prefix .part holds the first bytes of the file, nothing else.
            have = part.read_bytes()
            assert have == (realdata / rel).read_bytes()[: len(have)]


def test_signals_at_random_moments(mirror: FaultyServer, realdata: Path, tmp_path: Path) -> None:
    rng = random.Random(20261201)
    before_us = 0
    for i in range(REPEATS):
        sig = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)[i % 3]
        # Half in start-up (imports, argparse, the plan), half in the transfer.
        delay = rng.uniform(0.0, 0.12) if i % 2 else rng.uniform(0.12, 0.5)
        root = tmp_path / f"run{i}"
        argv = ["-d", "kmnist", "-s", "test", "--dir", str(root), "-m", mirror.url, "-q"]
        p = subprocess.Popen(_cmd(*argv), stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
        what = f"run {i}: {sig.name} after {delay * 1000:.0f} ms: exit {p.returncode}: {err!r}"
        assert not _frames_of_ours(err), what
        if "Traceback" in err or p.returncode == -sig:
            # Python's own start-up, before the first line of kmnist_entry:
            # no code of ours ran, nothing of ours is on disk.
            before_us += 1
            assert not root.exists(), what
            continue
        if p.returncode == 0:
            assert err == "", what  # done before the signal came
        else:
            assert p.returncode == EXIT[sig], what
            [line] = err.splitlines()
            assert SAID[sig] in line, what
        _check_folder(root, realdata)
        # And the next run finishes the job from what was kept.
        r = subprocess.run(_cmd(*argv), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        _check_folder(root, realdata)
        assert all((root / rel).exists() for rel in TEST_NPZ)
    assert before_us < REPEATS, "every signal landed before our code: the test tested nothing"


def test_a_signal_held_during_start_up_is_answered_in_one_line() -> None:
    # What kmnist_entry does: hold the signals, import the package (a signal
    # arrives meanwhile), and let main() answer it.
    code = (
        "import os, signal, sys, kmnist_entry\n"
        "kmnist_entry._hold()\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "sys.argv = ['kmnist-download', '--version']\n"
        "sys.exit(kmnist_entry.download())\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert r.returncode == 143, r.stderr
    assert r.stderr.splitlines() == [
        "kmnist-download: stopped by SIGTERM; the .part files are kept: "
        "run the same command again to resume"
    ]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_kmnist_baseline_answers_a_signal_in_one_line(sig: signal.Signals, tmp_path: Path) -> None:
    """kmnist-baseline goes through the same entry and the same orderly end as kmnist-download."""
    code = (
        "import os, signal, sys, kmnist_entry\n"
        "kmnist_entry._hold()\n"
        f"os.kill(os.getpid(), {int(sig)})\n"
        f"sys.argv = ['kmnist-baseline', 'knn', '--dataset', 'kmnist', '--dir', {str(tmp_path)!r}]\n"
        "sys.exit(kmnist_entry.baseline())\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    said = "interrupted" if sig == signal.SIGINT else f"stopped by {sig.name}"
    # Nothing is downloaded without --download, so there is nothing to resume.
    assert (r.returncode, r.stderr.splitlines()) == (EXIT[sig], [f"kmnist-baseline: {said}"])


def test_in_process_a_pending_ctrl_c_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    old = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    try:
        block_early()
        # To this thread: held by its mask until main() lets it through.
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        assert main(["--version"]) == 130  # answered before argparse could print
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    assert capsys.readouterr().err.strip().splitlines() == [
        "kmnist-download: interrupted; run the same command again to resume"
    ]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_waiting_for_another_process_lock(
    sig: signal.Signals, mirror: FaultyServer, tmp_path: Path
) -> None:
    target = tmp_path / TEST_NPZ[0]
    lock = lock_path(target)
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom kmnist.storage.lock import FileLock\n"
         "with FileLock(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()\n",
         str(lock)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        argv = ["-d", "kmnist", "-s", "test", "--dir", str(tmp_path), "-m", mirror.url, "-q"]
        p = subprocess.Popen(_cmd(*argv), stderr=subprocess.PIPE, text=True)
        labels = tmp_path / TEST_NPZ[1]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not labels.exists():
            time.sleep(0.02)  # the other files arrive; the images wait for the lock
        p.send_signal(sig)
        _, err = p.communicate(timeout=30)
        assert p.returncode == EXIT[sig], err
        assert err.splitlines() == [
            f"kmnist-download: {SAID[sig]}: run the same command again to resume"
        ]
        assert not target.exists()
        assert all(r.path != "/" + TEST_NPZ[0] for r in mirror.requests)
    finally:
        holder.communicate("", timeout=30)
    with FileLock(lock):  # the lock file is still a lock: nothing broke it
        pass


def test_a_signal_inside_a_deferred_section_waits_for_its_end() -> None:
    # Creating a temporary file and owning its removal must not be cut in two.
    from kmnist.signals import deferred, let_through, orderly_stop

    done = []
    with orderly_stop(), pytest.raises(KeyboardInterrupt):
        let_through()
        with deferred():
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
            time.sleep(0.01)  # the handler runs here, and must not raise
            done.append("the section finished")
        done.append("not reached")
    assert done == ["the section finished"]


def test_kmnist_entry_holds_the_signals_as_a_console_script_imports_it() -> None:
    # Held on import, before the script's next line, through built-in modules
    # only; another importer (this test, python -c) keeps its Ctrl-C.
    code = (
        "import sys; sys.argv[0] = {argv0!r}\n"
        "import kmnist_entry, signal\n"
        "print(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))\n"
    )
    for argv0, held in (("/venv/bin/kmnist-download", "True"), ("-c", "False")):
        r = subprocess.run(
            [sys.executable, "-c", code.format(argv0=argv0)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (r.returncode, r.stdout.strip()) == (0, held), r.stderr
    source = (ROOT / "kmnist_entry.py").read_text()
    top = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert top == [
        "from __future__ import annotations",
        "import _signal  # type: ignore[import-not-found]  # no stub; see above",
        "import sys",
    ]


def test_ctrl_c_every_5_ms_of_start_up_is_one_line_or_before_our_first_line(
    mirror: FaultyServer, realdata: Path, tmp_path: Path
) -> None:
    """SIGINT at 5, 10, ..., 50 ms after the console script starts (and later
    while none of those has landed in our code, as on a loaded machine).

    Once kmnist_entry's first line has run, the answer is one line and 130.
    Before it, Python's own start-up (site, the .pth files) and the script's
    ``import re`` run; a Ctrl-C there is Python's to answer (killed by
    SIGINT, sometimes with a traceback), and it is allowed only with no frame
    of ours in it and nothing written.
    """
    reached = 0
    # On a loaded machine start-up can outlast 50 ms: later signals, until one
    # lands in our code (bounded: the last is 0.8 s in, well inside the run).
    for ms in [*range(5, 55, 5), 75, 100, 150, 200, 300, 500, 800]:
        if ms > 50 and reached:
            break
        root = tmp_path / f"at{ms}"
        argv = ["-d", "kmnist", "-s", "test", "--dir", str(root), "-m", mirror.url, "-q"]
        p = subprocess.Popen(_cmd(*argv), stderr=subprocess.PIPE, text=True)
        time.sleep(ms / 1000)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        what = f"SIGINT after {ms} ms: exit {p.returncode}: {err!r}"
        assert not _frames_of_ours(err), what
        if p.returncode == 130:
            reached += 1
            assert err == "kmnist-download: interrupted; run the same command again to resume\n"
        elif p.returncode == 0 and any(said in err for said in PYTHON_CARRIED_ON):
            # Python's start-up caught the Ctrl-C itself, said so, and went
            # on: the command then ran to the end (seen in CI at 25 ms, and
            # here at 10 ms in an import lock's callback).
            assert "KeyboardInterrupt" in err, what
            for rel in TEST_NPZ:
                assert (root / rel).read_bytes() == (realdata / rel).read_bytes(), what
        else:
            assert p.returncode in (-signal.SIGINT, 1), what  # Python's start-up
            assert err == "" or "KeyboardInterrupt" in err, what
            assert not root.exists(), what
    assert reached, "every Ctrl-C landed before our first line: the test tested nothing"


class _Code:
    co_filename = "<frozen importlib._bootstrap>"


class _ImportlibFrame:
    """Where the handler would find itself inside importlib's bookkeeping."""

    f_code = _Code()


def test_a_signal_landing_inside_importlib_is_sent_again_and_counted_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Raised there, the exception would be swallowed ("Exception ignored in
    # ... cb") and could leave the global import lock held: a hang at the
    # next import in a worker thread. The handler sends it again instead, to
    # land at the next instruction outside importlib.
    from kmnist import signals

    sent: list[int] = []
    with signals.orderly_stop():
        signals.let_through()
        with monkeypatch.context() as m:
            m.setattr(signals, "_send_again_soon", sent.append)
            signals._handler(signal.SIGINT, _ImportlibFrame())  # type: ignore[arg-type]
        assert sent == [signal.SIGINT]  # sent again, not raised there
        assert signals._received == []  # not counted: a second Ctrl-C still ends it at once
        # Sent for real (from another thread, a moment later: signal.raise_signal
        # ran the handler again at once, inside the same importlib callback), it
        # lands outside importlib, here, and is raised.
        with pytest.raises(KeyboardInterrupt):
            signals._send_again_soon(signal.SIGINT)
            for _ in range(2000):  # bounded: 1 ms, then the next instruction
                time.sleep(0.001)
    assert "again" not in capsys.readouterr().err


def test_a_ctrl_c_whose_exception_was_swallowed_still_ends_the_command_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A __del__ (or any weakref callback) running where the signal lands
    # swallows what the handler raises; the command still answers it.
    from kmnist.cli.common import orderly

    swallowed: list[type[BaseException] | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: swallowed.append(u.exc_type))

    class Finalised:
        def __del__(self) -> None:
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
            for _ in range(100_000):  # the handler runs in here, and its exception is lost
                pass

    def body() -> int:
        Finalised()  # dropped at once: __del__ runs, the Ctrl-C lands inside it
        return 0

    status = orderly("kmnist-download", body, failed=lambda exc: 1, resumable=True)
    assert swallowed == [KeyboardInterrupt]  # Python swallowed it...
    assert status == 130  # ...and the command answered it all the same, in one line
    assert capsys.readouterr().err.splitlines() == [
        "kmnist-download: interrupted; run the same command again to resume"
    ]


def test_the_download_loop_raises_a_swallowed_ctrl_c_while_a_server_is_silent(
    mirror: FaultyServer, tmp_path: Path
) -> None:
    # The swallowed Ctrl-C ends the run while it waits, not once the server
    # speaks (never, here: the read timeout, 60 s, is the test's bound).
    from kmnist import signals
    from kmnist.catalogue.manifest import ENTRIES
    from kmnist.downloader.run import Downloader

    mirror.always(TEST_NPZ[0], "delay:600")
    d = Downloader(mirrors=[mirror.url], progress=False, timeout=(5.0, 60.0))
    files = [e.file for e in ENTRIES if e.file.path == TEST_NPZ[0]]

    def swallowed_ctrl_c() -> None:
        # What a swallowed exception leaves: the handler raised, nobody reported it.
        deadline = time.monotonic() + 30
        while not mirror.gets(TEST_NPZ[0]) and time.monotonic() < deadline:
            time.sleep(0.01)
        signals._owed = signal.SIGINT

    with signals.orderly_stop(), pytest.raises(KeyboardInterrupt):
        signals.let_through()
        threading.Thread(target=swallowed_ctrl_c, daemon=True).start()
        d.fetch(files, tmp_path)
    assert not (tmp_path / TEST_NPZ[0]).exists()


def test_ctrl_c_while_a_server_is_silent_ends_the_command_at_once(
    mirror: FaultyServer, tmp_path: Path
) -> None:
    # The request waiting for its answer is shut down: no wait for the server
    # (silent for 600 s) nor for the read timeout (60 s; the test's bound is 30 s).
    mirror.always(TEST_NPZ[0], "delay:600")
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(tmp_path), "-m", mirror.url, "-q"]
    p = subprocess.Popen(_cmd(*argv, "--timeout", "60"), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not mirror.gets(TEST_NPZ[0]) and time.monotonic() < deadline:
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert (p.returncode, err.splitlines()) == (
        130,
        ["kmnist-download: interrupted; run the same command again to resume"],
    )
    assert not (tmp_path / TEST_NPZ[0]).exists()


def test_a_leaked_import_lock_is_released_before_any_thread_needs_it() -> None:
    # What Python's start-up can leave after a Ctrl-C inside importlib: the
    # global import lock held. Without the mend, the thread's import waits forever.
    code = (
        "import _imp; _imp.acquire_lock()\n"
        "import sys; sys.argv[0] = '/venv/bin/kmnist-download'\n"
        "import kmnist_entry, threading\n"
        "t = threading.Thread(target=__import__, args=('json',), daemon=True)\n"
        "t.start(); t.join(10)\n"
        "print('imported' if not t.is_alive() else 'stuck')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout.strip()) == (0, "imported"), r.stderr


@pytest.mark.parametrize(
    ("how", "scheme", "proxied"),
    [
        ("dropping", "http", False),  # connect() waits: the host drops our SYNs
        ("accepting", "https", False),  # connected; the TLS handshake waits
        ("accepting", "https", True),  # connected to the proxy; its CONNECT answer waits
    ],
)
def test_ctrl_c_while_a_connection_is_being_made_ends_the_run_at_once(
    how: str, scheme: str, proxied: bool, tmp_path: Path
) -> None:
    # Timeouts of 600 s, the test's bound 30 s: the socket being connected is
    # shut down by the stop, not left to its timeout.
    if how == "dropping" and not Path("/proc/net/tcp").exists():
        pytest.skip("tells a connect under way from /proc/net/tcp (Linux)")
    port = SilentPort(dropping=how == "dropping")
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    if proxied:
        env["HTTPS_PROXY"] = f"http://127.0.0.1:{port.port}"
        url = "https://kmnist-mirror.invalid/"  # the proxy would resolve it: no lookup here
    else:
        url = f"{scheme}://127.0.0.1:{port.port}/"
    code = (
        "import kmnist\n"
        "f = kmnist.RemoteFile('kmnist/blob.bin', 10, sha256='0' * 64)\n"
        f"kmnist.download_files([f], {str(tmp_path)!r}, mirrors=[{url!r}],"
        " progress=False, timeout=(600.0, 600.0))\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True, env=env)
    try:
        err = _ctrl_c_once(p, port.waited_on, "the run never reached the silent port")
    finally:
        port.close()
    assert err.rstrip().endswith("KeyboardInterrupt"), err
    assert "Error" not in err.replace("KeyboardInterrupt", ""), err
    assert not (tmp_path / "kmnist" / "blob.bin").exists()


def test_ctrl_c_while_a_host_name_is_being_looked_up_ends_the_command_at_once(
    tmp_path: Path,
) -> None:
    # A resolver that never answers (getaddrinfo cannot be interrupted; glibc
    # gives up after its own timeouts): the command answers the Ctrl-C, not
    # the resolver. The lookup is replaced inside the process; no DNS is asked.
    asked = tmp_path / "asked"
    code = (
        "import pathlib, socket, sys, time\n"
        "def never(*args, **kwargs):\n"
        f"    pathlib.Path({str(asked)!r}).touch()\n"
        "    time.sleep(600)\n"
        "socket.getaddrinfo = never\n"
        "from kmnist.cli.download import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(tmp_path / "data"), "-q"]
    argv += ["-m", "http://kmnist-mirror.invalid/"]
    p = subprocess.Popen([sys.executable, "-c", code, *argv], stderr=subprocess.PIPE, text=True)
    err = _ctrl_c_once(p, asked.exists, "the run never looked the name up")
    assert (p.returncode, err.splitlines()) == (
        130,
        ["kmnist-download: interrupted; run the same command again to resume"],
    )


def test_ctrl_c_while_check_mirrors_waits_for_a_silent_mirror_ends_at_once(
    tmp_path: Path,
) -> None:
    # Read timeout 60 s, the test's bound 30 s: the probes waiting for an
    # answer are shut down, and leaving their thread pool waits for nothing.
    port = SilentPort(dropping=False)
    argv = ["--check-mirrors", "-d", "kmnist", "--timeout", "60", "-q"]
    argv += ["-m", f"http://127.0.0.1:{port.port}/"]
    p = subprocess.Popen(_cmd(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        err = _ctrl_c_once(p, port.waited_on, "the check never reached the silent mirror")
    finally:
        port.close()
    # Nothing is kept to resume: the line does not say to run it again.
    assert (p.returncode, err.splitlines()) == (130, ["kmnist-download: interrupted"])


def _ctrl_c_once(p: subprocess.Popen[str], reached: Callable[[], bool], never: str) -> str:
    """SIGINT to ``p`` once ``reached()`` (within 30 s); its stderr, within 30 s more."""
    try:
        deadline = time.monotonic() + 30
        while not reached() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reached(), never
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
        return err
    finally:
        p.kill()


@pytest.mark.parametrize("prog", ["kmnist-download", "kmnist-baseline"])
def test_a_second_signal_during_the_clean_up_ends_at_once_in_the_commands_words(
    prog: str,
) -> None:
    # The first signal starts the orderly end; a second one while it runs
    # ends the process at once, as aria2c's second Ctrl-C does. Its line
    # starts as the command's other lines do (it said "kmnist:").
    code = (
        "import os, signal, sys, time\n"
        "from kmnist.cli.common import orderly\n"
        "def body():\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(5)\n"
        "    finally:\n"
        "        os.kill(os.getpid(), signal.SIGTERM)  # the user insists, mid clean-up\n"
        "        time.sleep(5)\n"
        "    return 0\n"
        f"sys.exit(orderly({prog!r}, body, failed=lambda e: 1, resumable=True))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert (r.returncode, r.stderr.splitlines()) == (
        143,
        [f"{prog}: SIGTERM again: stopping at once"],
    )
