"""The console scripts' entry: hold Ctrl-C, SIGTERM and SIGHUP, then import kmnist.

A module of its own, outside the ``kmnist`` package, because importing
anything inside the package runs ``kmnist/__init__.py`` first (tens of
milliseconds), and a Ctrl-C during those imports ended in a traceback. The
signals are held (blocked) here, before that, and answered in one line by
each command's ``main`` once it can (``kmnist.cli.common.orderly``; see
``kmnist/signals.py``).

Held as this module is imported, when a console script imports it: before
the script's next line, and through nothing but built-in modules. ``signal``
itself imports ``enum`` (about 2 ms, in which a Ctrl-C was a traceback from
this file); ``_signal`` is the C module under it, already in the interpreter.
What runs before this module's first line (Python's start-up, ``site``, the
script's own ``import re``) is not ours to hold.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # no stub; see above
import sys

# The console scripts pip writes for the entry points below (on Windows
# "-script.py"); another importer (a test, python -c) holds nothing on import.
SCRIPTS = ("kmnist-download", "kmnist-baseline")


def _hold() -> None:
    if hasattr(_signal, "pthread_sigmask"):
        names = ("SIGINT", "SIGTERM", "SIGHUP")
        _signal.pthread_sigmask(
            _signal.SIG_BLOCK, {getattr(_signal, n) for n in names if hasattr(_signal, n)}
        )


def _started_as_script(argv0: str) -> bool:
    name = argv0.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in ("-script.pyw", "-script.py", ".exe"):
        name = name.removesuffix(suffix)
    return name in SCRIPTS


def _mend_import_lock() -> None:
    # kmnist.signals.mend_import_lock, for the same reason: a Ctrl-C that
    # Python's start-up caught inside importlib can leave the global import
    # lock held, and every import in a worker thread would wait for it forever.
    import _imp  # built in, as _signal

    for _ in range(64):
        if not _imp.lock_held():
            return
        try:
            _imp.release_lock()
        except RuntimeError:
            return


if sys.argv and _started_as_script(sys.argv[0]):
    _hold()
    _mend_import_lock()


def download() -> int:
    """``kmnist-download``."""
    _hold()
    from kmnist.cli.download import main

    return main()


def baseline() -> int:
    """``kmnist-baseline``."""
    _hold()
    from kmnist.cli.baseline import main

    return main()
