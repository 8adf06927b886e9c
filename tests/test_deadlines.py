"""One thread for every request's header deadline: it fires, or is cancelled in time."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from kmnist.downloader.deadlines import Deadlines
from kmnist.signals import HANDLED


def test_a_deadline_fires_once_after_its_time() -> None:
    fired = threading.Event()
    calls: list[int] = []
    deadlines = Deadlines()

    def action() -> None:
        calls.append(1)
        fired.set()

    d = deadlines.arm(0.02, action)
    assert fired.wait(5)
    assert not deadlines.cancel(d)  # too late: it fired
    assert calls == [1] and deadlines.pending() == 0


def test_a_cancelled_deadline_never_fires() -> None:
    deadlines = Deadlines()
    never = threading.Event()
    later = threading.Event()
    d = deadlines.arm(0.01, never.set)
    assert deadlines.cancel(d)
    deadlines.arm(0.05, later.set)  # comes up after the cancelled one's time
    assert later.wait(5)
    assert not never.is_set()


def test_an_earlier_deadline_armed_later_wakes_the_thread() -> None:
    deadlines = Deadlines()
    late, early = threading.Event(), threading.Event()
    deadlines.arm(30, late.set)
    deadlines.arm(0.01, early.set)
    assert early.wait(5)  # not after the 30 s one
    assert not late.is_set()


def test_an_action_that_fails_does_not_stop_later_deadlines() -> None:
    deadlines = Deadlines()
    after = threading.Event()

    def boom() -> None:
        raise RuntimeError("boom")

    deadlines.arm(0.01, boom)
    deadlines.arm(0.03, after.set)
    assert after.wait(5)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_deadlines_work_in_a_forked_child() -> None:
    from kmnist.downloader.deadlines import DEADLINES

    DEADLINES.arm(30, lambda: None)  # the parent's thread is running
    pid = os.fork()
    if pid == 0:  # the child: its own thread, started on first use
        ok = threading.Event()
        DEADLINES.arm(0.01, ok.set)
        os._exit(0 if ok.wait(5) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_the_deadlines_thread_takes_none_of_the_signals_the_commands_handle() -> None:
    # It outlives the run: holding SIGTERM unblocked, it would be the thread
    # the kernel gives a late SIGTERM to, after the command put the default
    # handler back, and the process would die of it (exit -15).
    deadlines = Deadlines()
    seen: list[int] = []
    ran = threading.Event()

    def whoami() -> None:
        seen.append(threading.get_native_id())
        ran.set()

    deadlines.arm(0.0, whoami)
    assert ran.wait(5)
    status = Path(f"/proc/self/task/{seen[0]}/status").read_text()
    blocked = int(next(ln for ln in status.splitlines() if ln.startswith("SigBlk:")).split()[1], 16)
    for s in HANDLED:
        assert blocked & (1 << (s - 1)), f"{signal.Signals(s).name} is not blocked"
