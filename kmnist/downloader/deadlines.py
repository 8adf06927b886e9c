"""One thread that calls functions when their deadlines pass, unless cancelled first.

Each request of a run arms a deadline for its response headers
(transfer._HeaderDeadline). A ``threading.Timer`` per request started and
ended a thread each time: with the full set over a capped host, 184 threads,
about 9,000 context switches and 12,000 futex calls, 3.6 ms of CPU per
request all told (``perf stat``, benchmarks/download_speed.py's server).
Here one thread sleeps until the earliest deadline; arming one that is not
the earliest wakes nobody, and cancelling only marks it. Written here rather
than taken from a library: the standard library's ``sched`` blocks its
caller, and this is the one place that needs it.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import signal
import threading
import time
from typing import Callable

from ..signals import HANDLED


class Deadline:
    """An armed deadline: give it to ``Deadlines.cancel`` when what it guards is done."""

    __slots__ = ("action", "cancelled", "fired", "when")

    def __init__(self, when: float, action: Callable[[], None]) -> None:
        self.when = when
        self.action = action
        self.cancelled = False
        self.fired = False


class Deadlines:
    """Deadlines served by one daemon thread, started on first use (and again after a fork)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, action: Callable[[], None]) -> Deadline:
        """Call ``action`` (in the deadlines' thread) after ``seconds``, unless cancelled."""
        deadline = Deadline(time.monotonic() + seconds, action)
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="kmnist-deadlines", daemon=True
                )
                self._thread.start()
            earliest = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (deadline.when, next(self._order), deadline))
            if earliest is None or deadline.when < earliest:
                self._cond.notify()
        return deadline

    def cancel(self, deadline: Deadline) -> bool:
        """Disarm ``deadline``: True if it had not fired (its action will not run)."""
        with self._cond:
            if deadline.fired:
                return False
            deadline.cancelled = True
            return True

    def pending(self) -> int:
        """Deadlines armed and neither passed nor cancelled (for tests)."""
        with self._cond:
            return sum(not d.cancelled for _, _, d in self._heap)

    def _serve(self) -> None:
        # This thread outlives the run. Started while the command let its
        # signals through, it would take a SIGTERM sent after the command put
        # the default handler back (as it ends), and the process would die of
        # it. Signals are the main thread's business.
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
        while True:
            with self._cond:
                due = self._due()
                if due is None:
                    self._wait()
                    continue
                due.fired = True  # from here on, cancel() says it came too late
            # An action that fails must not end the thread, and with it every
            # later deadline; ours only shut a socket down.
            with contextlib.suppress(Exception):
                due.action()

    def _due(self) -> Deadline | None:
        """The earliest deadline if it has passed; cancelled ones are dropped on the way."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        if heap and heap[0][0] <= time.monotonic():
            return heapq.heappop(heap)[2]
        return None

    def _wait(self) -> None:
        heap = self._heap
        # Cancelled deadlines wait in the heap until they come up: with a
        # 30 s read timeout, at most what 30 s of requests armed.
        self._cond.wait(heap[0][0] - time.monotonic() if heap else None)

    def _after_fork(self) -> None:
        # The thread did not come along; what the parent armed is the parent's.
        self._cond = threading.Condition()
        self._heap = []
        self._thread = None


DEADLINES = Deadlines()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=DEADLINES._after_fork)
