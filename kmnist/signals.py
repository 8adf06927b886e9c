"""Ctrl-C, SIGTERM and SIGHUP end a run in order: one line, the .part files kept, exit 128+N.

SIGINT raises KeyboardInterrupt as Python's own handler does; SIGTERM (kill,
a batch scheduler's time limit) and SIGHUP (the terminal closed) raise
:class:`~kmnist.errors.Stopped`, a KeyboardInterrupt, so every clean-up that
Ctrl-C gets (workers stopped, .part files and range records saved, no final
name touched) runs for them too. A second signal while that clean-up runs
ends the process at once, as aria2c's second Ctrl-C does.

Standard library only, and importable without the package's heavy modules:
the entry points block these signals before anything else is imported
(:func:`block_early`), and :func:`orderly_stop` installs the handlers and lets
a signal that arrived in the meantime through, so that even a Ctrl-C during
start-up gives one line rather than a traceback from an import.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from .errors import Stopped

HANDLED: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

_received: list[int] = []  # signals seen during the current orderly_stop
_deferred = 0  # depth of deferred() sections entered by the main thread
_pending: int | None = None  # a signal that arrived inside one, or while disarmed
# True while the code that reports an interrupted run in one line is ready to
# catch what the handler raises (between let_through() and disarm()). Outside
# that, a signal is only noted: in a process with other threads, a signal that
# one of them received runs the handler in the main thread whatever its mask.
_armed = False


def block_early() -> None:
    """Hold these signals until :func:`orderly_stop` can handle them (start of an entry point)."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)


def _raise_for(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Stopped(signum, signal.Signals(signum).name)


def _handler(signum: int, frame: FrameType | None) -> None:
    global _pending
    _received.append(signum)
    if len(_received) > 1:
        # The first signal's clean-up is under way and the user insists.
        name = signal.Signals(signum).name
        os.write(2, f"kmnist: {name} again: stopping at once\n".encode())
        os._exit(128 + signum)
    if _deferred or not _armed:
        _pending = signum  # raised when the section ends, or at let_through()
        return
    _raise_for(signum)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A few statements that a signal must not cut in two (create a file, then own its removal).

    Only the main thread is ever interrupted by a signal handler, so only its
    sections count; in other threads this does nothing.
    """
    global _deferred, _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1
        if not _deferred and _armed and _pending is not None:
            signum, _pending = _pending, None
            _raise_for(signum)


def let_through() -> None:
    """Arm the handler and unblock the signals: one held back since start-up is raised now.

    Called first inside the ``try`` that reports an interrupted run, so that
    a signal from start-up ends in the same one line as any other.
    """
    global _armed, _pending
    if threading.current_thread() is not threading.main_thread():
        return
    _armed = True
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)
    if _pending is not None and not _deferred:
        signum, _pending = _pending, None
        _raise_for(signum)


def disarm() -> None:
    """From here on a signal is only noted: the run is over and is being reported."""
    global _armed
    _armed = False


@contextlib.contextmanager
def orderly_stop() -> Iterator[None]:
    """Handle the signals in HANDLED for the duration; restore what was there before.

    Does nothing outside the main thread (where Python cannot install
    handlers). The signals stay blocked if they were (see :func:`let_through`).
    """
    global _pending, _armed
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _armed = False
    masking = hasattr(signal, "pthread_sigmask")
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, []) if masking else None
    previous = {s: signal.getsignal(s) for s in HANDLED}
    del _received[:]
    _pending = None
    for s in HANDLED:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        _armed = False
        # Held while the old handlers go back: a signal in between would
        # otherwise meet Python's default handler and print a traceback.
        if masking:
            signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
