"""The edge that both commands (``kmnist-download``, ``kmnist-baseline``) share.

Argument types, and the end of a run that failed: one line on stderr per
failure, never a traceback, and the exit status from
:func:`kmnist.errors.exit_status`, the one place that decides it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Union

from .errors import DownloadsFailed, KmnistError, exit_status

# What a command reports in one line; anything else is a bug, and keeps its traceback.
Failure = Union[KeyboardInterrupt, KmnistError, OSError]


def positive(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def fail(prog: str, exc: Failure, *, interrupted: str = "interrupted") -> int:
    """Say what ended the run, one line per failure; return the exit status.

    ``interrupted`` is what Ctrl-C gets (a command may say how to go on).
    An OSError is a folder that cannot be created, read or written: the
    user's to fix, so its message is enough.
    """
    if isinstance(exc, KeyboardInterrupt):
        print(f"{prog}: {interrupted}", file=sys.stderr)
    else:
        failures = exc.failures if isinstance(exc, DownloadsFailed) else [exc]
        for f in failures:
            print(f"{prog}: error: {f}", file=sys.stderr)
    return exit_status(exc)
