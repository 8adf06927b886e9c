"""kmnist.storage.lock: one exclusive lock per file, across threads and processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kmnist.storage.layout import lock_path
from kmnist.storage.lock import FileLock

from .server import FaultyServer
from .test_cli import _cmd

HOLD = (
    "import sys, time\n"
    "from kmnist.storage.lock import FileLock\n"
    "with FileLock(sys.argv[1]):\n"
    "    print('held', flush=True)\n"
    "    sys.stdin.read()\n"  # until the test closes our stdin
)


def hold_in_another_process(path: Path) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stdout.readline() == "held\n"
    return p


def test_two_threads_take_turns(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    events: list[str] = []
    first = FileLock(path)
    first.acquire()

    def second() -> None:
        with FileLock(path):
            events.append("second has it")

    t = threading.Thread(target=second)
    t.start()
    t.join(0.3)  # not a timing check: it must still be waiting, however long we wait
    events.append("first lets go")
    first.release()
    t.join(30)
    assert events == ["first lets go", "second has it"]
    assert path.exists()  # never removed: see release()


def test_another_process_holding_it_makes_us_wait_until_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = hold_in_another_process(path)
    try:
        asked = []

        def cancelled() -> bool:
            asked.append(1)
            return len(asked) >= 3  # looked twice and found it held, then gave up

        with pytest.raises(InterruptedError, match="gave up waiting"):
            FileLock(path, cancelled).acquire()
        assert len(asked) == 3
    finally:
        holder.communicate("", timeout=30)
    # Released with the process: ours now at once.
    with FileLock(path) as lock:
        assert lock.held
    assert not lock.held


def test_one_lock_object_is_not_reentrant(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "x.lock")
    with lock, pytest.raises(RuntimeError, match="already locked"):
        lock.acquire()


def test_ctrl_c_while_another_process_holds_the_file(server: FaultyServer, tmp_path: Path) -> None:
    # Before kmnist.storage.lock, a run waiting for another process's lock did not
    # stop on Ctrl-C: filelock's wait ignored the cancelled run.
    server.add("kmnist/kmnist-test-imgs.npz", b"x" * 3079479)
    target = tmp_path / "kmnist/kmnist-test-imgs.npz"
    lock = lock_path(target)
    lock.parent.mkdir(parents=True)
    holder = hold_in_another_process(lock)
    try:
        p = subprocess.Popen(
            _cmd("-d", "kmnist", "-f", "npz", "-s", "test", "--dir", str(tmp_path),
                 "-m", server.url, "-q"),
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        # The other file of the split arrives; this one waits for the lock.
        labels = tmp_path / "kmnist/kmnist-test-labels.npz.part"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not server.requests and not labels.exists():
            time.sleep(0.05)
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
        assert p.returncode == 130, err
        assert "Traceback" not in err
        assert not target.exists()
        assert all(r.path != "/kmnist/kmnist-test-imgs.npz" for r in server.requests)
    finally:
        holder.communicate("", timeout=30)
