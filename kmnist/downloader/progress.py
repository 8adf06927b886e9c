"""Progress display: a parameter, never a global. tqdm on stderr, or nothing."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, Protocol

from ..errors import one_line

logger = logging.getLogger("kmnist")


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


class TqdmProgress:
    """One total bar (bytes, rate, ETA) above a bar per file being fetched."""

    def __init__(self, total: int | None, initial: int = 0, *, file: Any = None) -> None:
        from tqdm.auto import tqdm

        self._tqdm = tqdm = _binary_bar(tqdm)
        self._lock = threading.Lock()
        self._out = file if file is not None else sys.stderr
        # disable=None: tqdm hides itself when the stream is not a terminal.
        self._total = tqdm(
            total=total,
            initial=initial,
            unit="B",  # sizes and speed in MiB as every other screen: see _binary_bar
            desc="total",
            file=self._out,
            disable=None,
            dynamic_ncols=True,
        )

    def _total_update(self, n: int) -> None:
        with self._lock:
            self._total.update(n)

    def start(self, label: str, total: int | None, initial: int) -> FileProgress:
        bar = self._tqdm(
            total=total,
            initial=initial,
            unit="B",
            desc=label,
            file=self._out,
            disable=None,
            leave=False,
            dynamic_ncols=True,
        )
        return _TqdmFile(self, bar)

    def note(self, text: str) -> None:
        logger.info(text)
        # Above the bars, not through them; one line whatever a name holds.
        self._tqdm.write(one_line(text), file=self._out)

    def close(self) -> None:
        self._total.close()
