"""The edge that both commands (``kmnist-download``, ``kmnist-baseline``) share.

Argument types, and the end of a run that failed: one line on stderr per
failure, never a traceback, and the exit status from
:func:`kmnist.errors.exit_status`, the one place that decides it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Union

from .errors import DownloadsFailed, KmnistError, exit_status
from .storage import DATA_ENV, DEFAULT_DATA

# What a command reports in one line; anything else is a bug, and keeps its traceback.
Failure = Union[KeyboardInterrupt, KmnistError, OSError]


def positive(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_dir(p: argparse.ArgumentParser, what: str) -> None:
    """``--dir``: None when not given; the command resolves it with ``storage.data_root``."""
    p.add_argument(
        "--dir", type=Path, help=f"{what} (default: ${DATA_ENV} if set, else ./{DEFAULT_DATA})"
    )


def fail(prog: str, exc: Failure, *, interrupted: str = "interrupted") -> int:
    """Say what ended the run, one line per failure; return the exit status.

    ``interrupted`` is what Ctrl-C (or SIGTERM, SIGHUP) gets (a command may
    say how to go on). An OSError is a folder that cannot be created, read or
    written: the user's to fix, said in words by :func:`kmnist.folders.explain`.
    """
    if isinstance(exc, KeyboardInterrupt):
        print(f"{prog}: {interrupted}", file=sys.stderr)
    else:
        from .folders import explain

        failures = exc.failures if isinstance(exc, DownloadsFailed) else [exc]
        for f in failures:
            line = explain(f) if isinstance(f, OSError) else str(f)
            print(f"{prog}: error: {line}", file=sys.stderr)
    return exit_status(exc)
