"""Mistyped names on the command line: one line that says what was meant.

argparse answers a mistyped choice with its usage (several lines) and the
whole list; a person who typed ``kmnsit`` wants to hear ``kmnist``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

# typing and pathlib cost ~5 ms of a 25 ms `--help` (benchmarks/startup.py):
# this module is on that path, so they are imported for the type checker only
# (mypy reads a module-level TYPE_CHECKING = False as typing's).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import NoReturn

# difflib's default: close enough for one swapped or missing letter
# ("kmnsit", "k94", "kanji" -> "kkanji"), not for an unrelated word.
CUTOFF = 0.6


def closest(text: str, names: Sequence[str]) -> str | None:
    """The name in ``names`` that ``text`` most likely misspells, or None."""
    import difflib  # only when something was mistyped: --help stays fast

    found = difflib.get_close_matches(text.strip().lower(), list(names), n=1, cutoff=CUTOFF)
    return found[0] if found else None


def choice(names: Sequence[str]) -> Callable[[str], str]:
    """An argparse ``type``: ``text`` when it is one of ``names``, else a suggestion."""

    def check(text: str) -> str:
        if text in names:
            return text
        guess = closest(text, names)
        hint = f"; did you mean {guess!r}?" if guess else f" (choose from {', '.join(names)})"
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r}{hint}")

    return check


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, as every other error of the command."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")
