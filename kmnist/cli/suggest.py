"""Mistyped names on the command line: one line that says what was meant.

argparse answers a mistyped choice with its usage (several lines) and the
whole list; a person who typed ``kmnsit`` wants to hear ``kmnist``. Both
commands (``kmnist-download``, ``kmnist-baseline``) build their parsers
from this module, so their usage errors read the same.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from ..catalogue.names import canonical, closest

# typing and pathlib cost ~5 ms of a 25 ms `--help` (benchmarks/startup.py):
# this module is on that path, so they are imported for the type checker only
# (mypy reads a module-level TYPE_CHECKING = False as typing's).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import NoReturn

    from _typeshed import SupportsWrite


def choice(names: Sequence[str], aliases: dict[str, str] | None = None) -> Callable[[str], str]:
    """An argparse ``type``: the name ``text`` means (any case, or an alias), else a suggestion.

    Give the same ``names`` as ``choices=`` too: argparse shows them in
    ``--help`` and checks what this returns against them.
    """
    options = tuple(names)

    def check(text: str) -> str:
        found = canonical(text, options, aliases)
        if found is not None:
            return found
        guess = closest(text, options, aliases)
        hint = f"; did you mean {guess!r}?" if guess else f" (choose from {', '.join(options)})"
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r}{hint}")

    return check


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, as every other error of the command."""

    def error(self, message: str) -> NoReturn:
        from ..errors import one_line

        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        # A "--" left over is the end of the options (POSIX guideline 10), not
        # an argument: "kmnist-download -d kmnist --" was "unrecognized
        # arguments: --". What follows it is still refused, without the "--".
        if "--" in extras:
            extras.remove("--")
        return parsed, extras

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            import shlex

            # Quoted as a shell reads them: an empty or blank word showed as
            # nothing at all after "unrecognized arguments:".
            self.error("unrecognized arguments: " + " ".join(shlex.quote(w) for w in extras))
        return parsed

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> object:
        # "--timeout=--" (or "-j--"): before Python 3.12.3 argparse took the
        # value "--" for its separator, dropped it and gave the option an
        # empty list, which the run met as a traceback ('<' not supported
        # between list and float). The value is "--", as later Pythons say
        # (CPython gh-109475), and as option_words prints a folder named "--".
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            value = self._get_value(action, "--")
            self._check_value(action, value)
            return value
        return super()._get_values(action, arg_strings)

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        # --help and --version write to standard output, and argparse drops
        # a write error: "--help > /dev/full" said nothing and exited 0.
        import sys

        if not message or file is None or file is sys.stderr:
            super()._print_message(message, file)
            return
        try:
            file.write(message)
            flush = getattr(file, "flush", None)
            if flush is not None:
                flush()
        except OSError as exc:
            from .common import stdout_failed

            raise SystemExit(stdout_failed(self.prog, exc)) from None
