"""The console scripts' entry: hold Ctrl-C, SIGTERM and SIGHUP, then import kmnist.

A module of its own, outside the ``kmnist`` package, because importing
anything inside the package runs ``kmnist/__init__.py`` first (tens of
milliseconds), and a Ctrl-C during those imports ended in a traceback. The
signals are held (blocked) here, before that, and answered in one line by
each command's ``main`` once it can (``kmnist.cli.common.orderly``; see
``kmnist/signals.py``). Standard library only.
"""

from __future__ import annotations

import signal


def _hold() -> None:
    if hasattr(signal, "pthread_sigmask"):
        names = ("SIGINT", "SIGTERM", "SIGHUP")
        signal.pthread_sigmask(
            signal.SIG_BLOCK, [getattr(signal, n) for n in names if hasattr(signal, n)]
        )


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
