"""Progress display: a parameter, never a global. tqdm on stderr, or nothing."""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any, Protocol

from ..errors import one_line

logger = logging.getLogger("kmnist")

# What tqdm's own TQDM_ASCII may say, read as tqdm's documentation means it:
# a yes or no. tqdm takes any other string for the characters a bar is drawn
# with, and one character ("1") divides by zero in the middle of a download.
_ASCII_WORDS: dict[str, bool | None] = {"": None, "0": None, "false": None, "no": None, "off": None}
_ASCII_WORDS.update({"1": True, "true": True, "yes": True, "on": True})


class FileProgress(Protocol):
    def update(self, n: int) -> None: ...

    def reset(self, initial: int) -> None: ...

    def close(self) -> None: ...


class Progress(Protocol):
    def start(self, label: str, total: int | None, initial: int) -> FileProgress: ...

    def note(self, text: str) -> None:
        """Say something worth knowing while it runs (a mirror left behind)."""

    def close(self) -> None: ...


class NullFileProgress:
    def update(self, n: int) -> None:
        pass

    def reset(self, initial: int) -> None:
        pass

    def close(self) -> None:
        pass


class NullProgress:
    """Shows nothing (``--quiet``, ``progress=False``)."""

    def start(self, label: str, total: int | None, initial: int) -> FileProgress:
        return NullFileProgress()

    def note(self, text: str) -> None:
        # Silent on the terminal (--quiet, progress=False); a library user
        # can still see it through logging.
        logger.info(text)

    def close(self) -> None:
        pass


class NotesOnly(NullProgress):
    """No bars; what is said while the run goes on still is, one line each (``--no-progress``).

    ``--no-progress`` was ``progress=False``: a run waiting for a suspended
    job's lock, or for a server that answered 503, said nothing for as long
    as it waited, in the very logs the flag is for.
    """

    def __init__(self, out: Any = None) -> None:
        self._out = out

    def note(self, text: str) -> None:
        logger.info(text)
        write_line(one_line(text), self._out if self._out is not None else sys.stderr)


_loaded: list[tuple[Any, str]] = []  # tqdm's class, or None and why not: looked for once


def load_tqdm() -> tuple[Any, str]:
    """tqdm's class, or None and one line saying why it cannot be had.

    tqdm reads its ``TQDM_*`` environment variables when it is imported, and
    one it cannot convert (``TQDM_MININTERVAL=x``, ``TQDM_NCOLS=abc``) fails
    the import: a traceback, and not a byte fetched, for a progress bar.
    """
    if not _loaded:
        try:
            from tqdm.auto import tqdm
        except (ValueError, TypeError, ArithmeticError) as exc:
            settings = ", ".join(
                f"{k}={v!r}" for k, v in sorted(os.environ.items()) if k.startswith("TQDM_")
            )
            why = f"no progress bars: tqdm cannot read {settings or 'its settings'} ({exc})"
            _loaded.append((None, one_line(why)))
        else:
            _loaded.append((tqdm, ""))
    return _loaded[0]


def write_line(text: str, stream: Any) -> None:
    """``text`` as a line of ``stream`` (standard error), above any bar; never an error.

    Nothing when there is no stream (2>&-): tqdm.write(file=None) writes to
    standard output, into what a script reads there. A stream that cannot
    take it (a full disk, a reader gone) loses the line, and the download
    goes on (it failed, and the error was taken for a full data folder).
    """
    if stream is None:
        return
    tqdm, _ = load_tqdm()
    try:
        if tqdm is None:
            print(text, file=stream, flush=True)
        else:
            tqdm.write(text, file=stream)
    except (OSError, ValueError):
        pass


def _ascii() -> bool | str | None:
    """tqdm's ``ascii=`` from ``TQDM_ASCII``: a yes or no, or a set of at least two characters."""
    value = os.environ.get("TQDM_ASCII")
    if value is None:
        return None
    word = value.strip().lower()
    if word in _ASCII_WORDS:
        return _ASCII_WORDS[word]
    return value if len(value) >= 2 else True


class _TqdmFile:
    def __init__(self, owner: TqdmProgress, bar: Any) -> None:
        self._owner = owner
        self._bar = bar

    def update(self, n: int) -> None:
        self._bar.update(n)
        self._owner._total_update(n)

    def reset(self, initial: int) -> None:
        # A restart from byte 0 (a server that ignored Range, a bad copy):
        # take back what was counted so the total stays honest.
        back = self._bar.n - initial
        self._bar.n = initial
        self._bar.refresh()
        self._owner._total_update(-back)

    def close(self) -> None:
        self._bar.close()


def _binary_bar(base: Any) -> Any:
    """``base`` (a tqdm class) whose sizes and speed read as every other screen: ``2.9 MiB``.

    tqdm's own scaling prints ``477k/2.94M`` and ``kiB/s``, and scales the
    speed by 1000 whatever ``unit_divisor`` says (tqdm 4.70, std.py
    format_meter: ``format_sizeof(rate)`` takes no divisor). Its bars format
    themselves through ``self.format_meter(**self.format_dict)``, so the
    figures are put in here, as text, with :func:`kmnist.units.size`.
    """
    from ..units import size

    class BinaryBar(base):  # type: ignore[misc]
        @staticmethod
        def format_meter(n: float, total: float | None, elapsed: float, **kw: Any) -> str:
            if kw.get("ncols") == 0:
                # One column (tqdm keeps the last free): nothing fits. tqdm drew
                # its whole line, with raw byte counts, wrapped into 40 rows.
                return ""
            rate = kw.get("rate")
            if rate is None and elapsed:
                rate = (n - kw.get("initial", 0)) / elapsed
            speed = f"{size(rate)}/s" if rate else "? B/s"
            figures = f"{size(n)}/{size(total)}".replace("{", "{{").replace("}", "}}")
            if total:
                kw["bar_format"] = (
                    "{l_bar}{bar}| " + figures + " [{elapsed}<{remaining}, " + speed + "]"
                )
            else:
                desc = f"{kw['prefix']}: " if kw.get("prefix") else ""
                kw["bar_format"] = (
                    desc.replace("{", "{{").replace("}", "}}")
                    + figures
                    + " [{elapsed}, "
                    + speed
                    + "]"
                )
            kw["unit_scale"] = False
            return str(base.format_meter(n, total, elapsed, **kw))

    return BinaryBar


class _TotalOnly:
    """A file's share of the total bar, without a bar of its own (``TERM=dumb``)."""

    def __init__(self, owner: TqdmProgress, initial: int) -> None:
        self._owner = owner
        self._n = initial

    def update(self, n: int) -> None:
        self._n += n
        self._owner._total_update(n)

    def reset(self, initial: int) -> None:
        back, self._n = self._n - initial, initial
        self._owner._total_update(-back)

    def close(self) -> None:
        pass


class TqdmProgress:
    """One total bar (bytes, rate, ETA) above a bar per file being fetched.

    Without tqdm to be had (a ``TQDM_*`` setting it cannot read), one line
    says why, and nothing is drawn. On a terminal that cannot move its
    cursor (``TERM=dumb``: Emacs' shell), the total bar alone: a bar per
    file moves up a line with ``ESC [ A``, which such a terminal prints.
    """

    def __init__(self, total: int | None, initial: int = 0, *, file: Any = None) -> None:
        self._lock = threading.Lock()
        self._out = file if file is not None else sys.stderr
        self._dumb = os.environ.get("TERM") == "dumb"
        # Given here, so that tqdm's TQDM_* variables do not set them:
        # TQDM_WRITE_BYTES=0 is bool("0"), True, and bytes to a text stream a
        # TypeError; TQDM_LOCK_ARGS=0 another; TQDM_ASCII=1 see _ascii.
        self._pinned: dict[str, Any] = {
            "ascii": _ascii(),
            "write_bytes": False,
            "lock_args": None,
        }
        tqdm, why = load_tqdm()
        self._tqdm: Any = None
        self._total: Any = None
        if tqdm is None:
            write_line(why, self._out)
            return
        self._tqdm = tqdm = _binary_bar(tqdm)
        # disable=None: tqdm hides itself when the stream is not a terminal.
        self._total = tqdm(
            total=total,
            initial=initial,
            unit="B",  # sizes and speed in MiB as every other screen: see _binary_bar
            desc="total",
            file=self._out,
            disable=None,
            dynamic_ncols=True,
            **self._pinned,
        )

    def _total_update(self, n: int) -> None:
        if self._total is None:
            return
        with self._lock:
            self._total.update(n)

    def start(self, label: str, total: int | None, initial: int) -> FileProgress:
        if self._tqdm is None:
            return NullFileProgress()
        if self._dumb:
            return _TotalOnly(self, initial)
        bar = self._tqdm(
            total=total,
            initial=initial,
            unit="B",
            desc=label,
            file=self._out,
            disable=None,
            leave=False,
            dynamic_ncols=True,
            **self._pinned,
        )
        return _TqdmFile(self, bar)

    def note(self, text: str) -> None:
        logger.info(text)
        # Above the bars, not through them; one line whatever a name holds.
        write_line(one_line(text), self._out)

    def close(self) -> None:
        if self._total is not None:
            self._total.close()
