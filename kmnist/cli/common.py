"""The edge that both commands (``kmnist-download``, ``kmnist-baseline``) share.

Argument types, and the end of a run that failed: one line on stderr per
failure, never a traceback, and the exit status from
:func:`kmnist.errors.exit_status`, the one place that decides it.
"""

from __future__ import annotations

import argparse
import errno
import sys

from ..errors import DownloadsFailed, ExitStatus, KmnistError, exit_status, one_line
from ..storage.root import DATA_ENV, DEFAULT_DATA

# typing and pathlib cost ~5 ms of a 25 ms `--help` (benchmarks/startup.py):
# this module is on that path, so they are imported for the type checker only
# (mypy reads a module-level TYPE_CHECKING = False as typing's).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any, TextIO, Union

# A read that stalls longer than a day is not a network being slow; past
# about 2**31 seconds the sockets underneath cannot even hold the value.
MAX_TIMEOUT = 86400.0
# Below a second, one lost packet is a dead mirror: TCP waits 1 s before it
# sends a lost SYN again (RFC 6298), and 1 s is aria2c's floor too. 1e-300
# was taken, every mirror "gave no response within 1e-300 s", and the hint
# sent the user to --check-mirrors and other mirrors.
MIN_TIMEOUT = 1.0
# What a command reports in one line; anything else is a bug, and keeps its traceback.
if TYPE_CHECKING:
    Failure = Union[KeyboardInterrupt, KmnistError, OSError]


def path(text: str) -> Path:
    """argparse type of a file or folder: a Path, with pathlib imported only when one is given."""
    from pathlib import Path

    if not text:
        # Path("") is ".": --dir '' downloaded into the current folder.
        raise argparse.ArgumentTypeError("is empty: name a file or folder")
    from ..inputs import is_url, not_a_path

    if is_url(text):  # said here, before Path makes "http://h" a folder "http:/h"
        raise argparse.ArgumentTypeError(not_a_path(text, "file or folder"))
    return Path(text)


def option_words(flag: str, value: str) -> list[str]:
    """The words that give ``flag`` its ``value`` in a command line we print:
    ``flag value``, or ``flag=value`` when the value starts with a dash, which
    argparse would take for an option (a folder named ``-x``)."""
    return [f"{flag}={value}"] if value.startswith("-") else [flag, value]


def positive(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        # The value named, as argparse names a bad choice: int() takes " 4 ", "-0", "１".
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text!r}")
    return value


def at_most(limit: int) -> Callable[[str], int]:
    """argparse type: an integer from 1 to ``limit``."""

    def bounded(text: str) -> int:
        value = positive(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"must be at most {limit}, not {text}")
        return value

    bounded.__name__ = "number"  # argparse: "invalid number value: 'x'"
    return bounded


def timeout(text: str) -> float:
    """argparse type for --timeout: seconds, from 1 to 86400 (a day)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(text) from None  # argparse: "invalid timeout value: 'x'"
    if not MIN_TIMEOUT <= value <= MAX_TIMEOUT:  # NaN too
        raise argparse.ArgumentTypeError(
            f"must be {MIN_TIMEOUT:.0f} to {MAX_TIMEOUT:.0f} seconds (a day), not {text!r}"
        )
    return value


timeout.__name__ = "timeout"  # argparse names the type in its message


def add_dir(p: argparse.ArgumentParser, what: str) -> None:
    """``--dir``: None when not given; the command resolves it with ``storage.root.data_root``."""
    p.add_argument(
        "--dir", type=path, help=f"{what} (default: ${DATA_ENV} if set, else ./{DEFAULT_DATA})"
    )


def fail(prog: str, exc: Failure, *, interrupted: str = "interrupted") -> int:
    """Say what ended the run, one line per failure; return the exit status.

    ``interrupted`` is what Ctrl-C (or SIGTERM, SIGHUP) gets (a command may
    say how to go on). An OSError is a folder that cannot be created, read or
    written: the user's to fix, said in words by :func:`kmnist.storage.folders.explain`.
    """
    if isinstance(exc, KeyboardInterrupt):
        say(f"{prog}: {one_line(interrupted)}")
    else:
        from ..storage.folders import explain

        failures = exc.failures if isinstance(exc, DownloadsFailed) else [exc]
        said: set[str] = set()
        for f in failures:
            line = one_line(explain(f) if isinstance(f, OSError) else str(f))
            if line not in said:  # a folder's problem, met by each of its files: once
                said.add(line)
                say(f"{prog}: error: {line}")
    return exit_status(exc)


def say(line: str) -> None:
    """Print ``line`` on standard error, if it can be: never fail for want of it.

    2>&- (no stream): nowhere to say it; print(file=None) wrote it to
    standard output instead, into the figure or the JSON a script reads
    there. A full disk (2>/dev/full), a reader that left (2>&1 | head) or a
    stream closed under us: the line is lost, and the run ends as it would
    have, with its own exit status (an OSError out of here was a traceback
    and exit 1, for a usage error too).
    """
    stream = sys.stderr
    if stream is None:
        return
    import contextlib

    with contextlib.suppress(OSError, ValueError):
        print(line, file=stream, flush=True)


def orderly(
    prog: str,
    body: Callable[[], int],
    *,
    failed: Callable[[KmnistError | OSError], int],
    resumable: bool | Callable[[], bool],
) -> int:
    """Run a command's ``body`` so that every way it ends is one line and a status.

    Ctrl-C, SIGTERM and SIGHUP (held by the entry point until now, see
    :mod:`kmnist.signals`) are let through here and answered in one line,
    exit 130, 143 or 129; ``failed`` says what an expected failure gets.
    ``resumable``: the command keeps .part files, so the line says how to
    go on (a function: asked when the signal comes, once the arguments say
    what the command does). argparse's own errors still exit 2 through SystemExit.
    """

    def again(said: str) -> str:
        keeps = resumable() if callable(resumable) else resumable
        return said if keeps else ""

    for stream in (sys.stdout, sys.stderr):
        _as_bytes_where_unencodable(stream)
    try:
        return _orderly(prog, body, failed, again)
    finally:
        _settle_stderr()


def _orderly(
    prog: str,
    body: Callable[[], int],
    failed: Callable[[KmnistError | OSError], int],
    again: Callable[[str], str],
) -> int:
    from ..errors import Stopped, StoppedAtQuestion
    from ..signals import disarm, let_through, orderly_stop, raise_owed

    with orderly_stop(prog):
        try:
            try:
                let_through()
                status = body()
                raise_owed()  # a Ctrl-C whose exception was swallowed on the way
                if sys.stdout is not None:
                    GuardedOutput(sys.stdout).flush()  # here, not at exit: one line if it fails
                return status
            finally:
                disarm()  # a signal while the outcome is reported is only noted
        except KeyboardInterrupt as exc:
            if isinstance(exc, StoppedAtQuestion):
                return fail(prog, exc, interrupted="interrupted; nothing was downloaded")
            if isinstance(exc, Stopped):
                kept = again("; the .part files are kept: run the same command again to resume")
                return fail(prog, exc, interrupted=f"stopped by {exc.name}{kept}")
            return fail(
                prog,
                exc,
                interrupted="interrupted" + again("; run the same command again to resume"),
            )
        except (KmnistError, OSError) as exc:
            if isinstance(exc, OutputFailed):
                return stdout_failed(prog, exc)
            return failed(exc)
        except (MemoryError, RuntimeError, ImportError) as exc:
            # The machine's limits, not a bug: said in words, with the run
            # already stopped in order (the downloader stops its workers and
            # keeps the .part files on any exception, as for Ctrl-C).
            line = out_of_resources(exc)
            if line is None:
                raise  # a real bug keeps its traceback
            kept = again("; the .part files are kept: run the same command again to resume")
            say(f"{prog}: error: {one_line(line)}{kept}")
            return ExitStatus.FAILURE


# What Python says when pthread_create fails (EAGAIN: RLIMIT_NPROC, a
# container's pids.max, the kernel's threads-max), 3.8 to 3.13.
_NO_THREAD = "can't start new thread"
# What the dynamic loader says when a library cannot be mapped for want of
# address space (ulimit -v): numpy's import fails so, before any array exists.
_NO_MAP = ("failed to map segment", "cannot allocate memory")


def out_of_resources(exc: BaseException) -> str | None:
    """One line for a limit of the machine that ended a run, or None when ``exc`` is a bug.

    A MemoryError from NumPy (``ulimit -v``, a cgroup's memory), a thread
    that could not start, a library that could not be mapped: each was a
    traceback, from every command.
    """
    if isinstance(exc, MemoryError):
        what = str(exc).strip()
        return f"out of memory{': ' + what if what else ''}{_memory_limit()}"
    if isinstance(exc, RuntimeError) and str(exc).startswith(_NO_THREAD):
        return (
            "cannot start another thread: this user has reached its limit of processes and "
            "threads (ulimit -u, or a container's pids limit): stop other programs or raise "
            "the limit"
        )
    if isinstance(exc, ImportError):
        chain: list[BaseException] = []
        cause: BaseException | None = exc
        while cause is not None and len(chain) < 8:  # numpy's ImportError wraps the loader's
            chain.append(cause)
            cause = cause.__cause__ or cause.__context__
        for inner in reversed(chain):  # the loader's own words, not numpy's page of advice
            if any(w in str(inner).lower() for w in _NO_MAP):
                # "libstdc++.so.6: failed to map segment from shared object"
                name = str(inner).split(":")[0].strip() or "a library"
                return f"out of memory: {name} could not be loaded{_memory_limit()}"
    return None


def _memory_limit() -> str:
    """``; this process may use at most 195.3 MiB (ulimit -v): raise it...``, or what to do."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        unlimited = soft == resource.RLIM_INFINITY
    except (ImportError, OSError, ValueError, AttributeError):  # Windows has no resource
        unlimited = True
    if unlimited:
        return "; close other programs and run again"
    from ..units import size

    return f"; this process may use at most {size(soft)} (ulimit -v): raise it and run again"


# The codec error handler of the commands' streams (see _as_bytes_where_unencodable).
AS_BYTES = "kmnist.as-bytes"


def _bytes_escaped(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    chunk = exc.object[exc.start : exc.end]
    try:
        raw = chunk.encode("utf-8", "surrogateescape")  # a name's bytes, as on disk
    except UnicodeEncodeError:  # a surrogate no byte decodes to: only made by hand
        raw = chunk.encode("utf-8", "surrogatepass")
    return "".join(f"\\x{b:02x}" for b in raw), exc.end


def _as_bytes_where_unencodable(stream: object) -> None:
    """Make ``stream`` print what its encoding lacks as the bytes of a file name: ``\\xc3\\xa9``.

    Under LANG=C or PYTHONIOENCODING=ascii Python's backslashreplace printed
    ``/data/é`` as ``/data/\\xe9``, and a byte that is not UTF-8 as
    ``\\udcff``: folders of other names, where ``$'...'`` gives these bytes back.
    A stream that can say everything (UTF-8) is left as it is.
    """
    import codecs

    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is None or getattr(stream, "errors", None) not in ("strict", "backslashreplace"):
        return
    try:
        codecs.lookup_error(AS_BYTES)
    except LookupError:
        codecs.register_error(AS_BYTES, _bytes_escaped)
    import contextlib

    # Closed, or a pending write that fails now: left as it is.
    with contextlib.suppress(OSError, ValueError):
        reconfigure(errors=AS_BYTES)


def stdout_failed(prog: str, exc: OSError) -> ExitStatus:
    """Say that standard output could not be written (nothing for a closed pipe); exit 1."""
    _silence_stdout()
    if exc.errno != errno.EPIPE:  # EPIPE: the reader left
        why = (exc.strerror or "failed").lower()
        say(f"{prog}: error: cannot write to standard output: {why}")
    return ExitStatus.FAILURE


class OutputFailed(OSError):
    """Writing standard output failed: a full disk (``> /dev/full``), a closed pipe."""


class GuardedOutput:
    """A text stream whose write errors are :class:`OutputFailed`, told apart from a folder's.

    An OSError from ``print`` names no file, and was taken for the data
    folder's: "the data folder is on a full disk" for ``--cite > /dev/full``.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise OutputFailed(exc.errno, exc.strerror) from exc

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise OutputFailed(exc.errno, exc.strerror) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _settle_stderr() -> None:
    """Flush standard error now; what it cannot take (2>/dev/full, a reader gone) is dropped.

    A line that standard error refused stays in its buffer (when it is not
    unbuffered: PYTHONUNBUFFERED unset, as for most users), and the
    interpreter's own flush at exit failed on it again: exit 120, not the
    command's status (`-v 2>/dev/full` after a download that succeeded).
    """
    import os

    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.flush()
    except (OSError, ValueError):
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, stream.fileno())
            os.close(null)
        except (OSError, ValueError, AttributeError):
            pass


def _silence_stdout() -> None:
    """Point stdout at the null device: the interpreter's own flush at exit
    then adds no second message about the same failure."""
    import os

    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass
