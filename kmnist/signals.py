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
import time
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
_owed: int | None = None  # a signal raised by the handler and not yet reported
_prog = "kmnist"  # the command that says the second signal's line (orderly_stop's prog)


def block_early() -> None:
    """Hold these signals until :func:`orderly_stop` can handle them (start of an entry point)."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)


def _raise_for(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Stopped(signum, signal.Signals(signum).name)


# importlib's own code: a frame of it is never where a signal's exception is raised.
IMPORT_MACHINERY = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


def _handler(signum: int, frame: FrameType | None) -> None:
    global _pending, _owed
    if (
        _armed
        and not _deferred
        and frame is not None
        and frame.f_code.co_filename in IMPORT_MACHINERY
    ):
        # Raised in importlib's bookkeeping (the weakref callback that drops a
        # module lock, say), the exception is swallowed ("Exception ignored
        # in ... cb") and can leave the global import lock held: the run goes
        # on, deaf to the Ctrl-C, until a worker thread imports anything and
        # waits for that lock forever. Sent again instead, from another thread
        # a moment later: it lands at the first instruction outside importlib
        # (it is not a second signal). Not signal.raise_signal here: that runs
        # this handler again at once, inside this frame, and its exception
        # went into importlib all the same ("Exception ignored in ... cb").
        _send_again_soon(signum)
        return
    _received.append(signum)
    if len(_received) > 1:
        # The first signal's clean-up is under way and the user insists.
        name = signal.Signals(signum).name
        os.write(2, f"{_prog}: {name} again: stopping at once\n".encode(errors="replace"))
        os._exit(128 + signum)
    if _deferred or not _armed:
        _pending = signum  # raised when the section ends, or at let_through()
        return
    # Owed until the command reports it (disarm): should this exception be
    # swallowed all the same (a __del__, another weakref callback), the run's
    # own waits raise it again (raise_owed).
    _owed = signum
    _raise_for(signum)


def _send_again_soon(signum: int) -> None:
    global _owed
    kill = getattr(signal, "pthread_kill", None)
    main = threading.main_thread().ident
    if kill is None or main is None:
        _owed = signum  # raised by the run's next wait (raise_owed)
        return

    def send() -> None:
        time.sleep(0.001)  # the importlib callback has returned by then
        kill(main, signum)

    threading.Thread(target=send, name="kmnist-signal-again", daemon=True).start()


def raise_owed() -> None:
    """Raise again a signal whose exception was swallowed where the handler ran.

    Called by the main thread where it waits (the download's loop over its
    workers, the end of a command): a signal is never lost there.
    """
    if (
        _armed
        and _owed is not None
        and not _deferred
        and threading.current_thread() is threading.main_thread()
    ):
        _raise_for(_owed)


def mend_import_lock() -> None:
    """Release the global import lock if this thread holds it with nothing being imported.

    For a process's first lines, while the main thread is the only one: a
    Ctrl-C that Python's own start-up caught inside importlib (printed as
    "Exception ignored in: <function _get_module_lock.<locals>.cb") can leave
    that lock held, and every import another thread made later would wait
    for it forever. No module's code runs under it, so held here it is held
    by mistake. (``kmnist_entry`` carries a copy: it cannot import this package.)
    """
    import _imp

    for _ in range(64):  # it is re-entrant: once per leaked acquisition
        if not _imp.lock_held():
            return
        try:
            _imp.release_lock()
        except RuntimeError:  # another thread's: not ours to release
            return


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
    global _armed, _owed
    _armed = False
    _owed = None


@contextlib.contextmanager
def orderly_stop(prog: str = "kmnist") -> Iterator[None]:
    """Handle the signals in HANDLED for the duration; restore what was there before.

    Does nothing outside the main thread (where Python cannot install
    handlers). The signals stay blocked if they were (see :func:`let_through`).
    ``prog`` starts the line a second signal gets, as every other line of
    the command starts.
    """
    global _pending, _armed, _owed, _prog
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _prog = prog
    _armed = False
    _owed = None
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
