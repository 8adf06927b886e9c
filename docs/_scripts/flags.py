"""The flag tables of docs/command.md, written from the commands' own argparse parsers.

``python docs/_scripts/flags.py --write`` rewrites the tables between their
markers; without ``--write`` it exits 1 when a table differs from the parser
(tests/test_docs_reference.py fails the same way, naming this command).
A table is generated rather than written by hand so that a flag added to a
parser cannot be left out of the reference.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "command.md"


def _parsers() -> dict[str, Callable[[], argparse.ArgumentParser]]:
    from kmnist.cli import baseline, download

    return {"kmnist-download": download.build_parser, "kmnist-baseline": baseline.build_parser}


def _cell(text: str) -> str:
    # One line; a bare | would end the cell, a <root> would be read as HTML.
    text = " ".join(text.split()).replace("|", "\\|")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _argument(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.choices is not None:
        return "{" + ",".join(str(c) for c in action.choices) + "}"
    metavar = action.metavar or (action.dest.upper() if action.option_strings else action.dest)
    return metavar if isinstance(metavar, str) else " ".join(metavar)


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if action.help in (None, argparse.SUPPRESS):
        return ""
    # The help as --help prints it: %(default)s and the like filled in.
    return _cell(parser._get_formatter()._expand_help(action))


def table(parser: argparse.ArgumentParser) -> str:
    """The markdown table of every argument of ``parser``, in the parser's order."""
    rows = ["| flag | argument | what it does |", "|---|---|---|"]
    for action in parser._actions:
        names = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}`"
        arg = _argument(action)
        rows.append(f"| {names} | {f'`{_cell(arg)}`' if arg else ''} | {_help(parser, action)} |")
    return "\n".join(rows)


def flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of ``parser`` (``--dataset``, ``-d``, ...) and its positionals."""
    return {s for a in parser._actions for s in (a.option_strings or [a.dest])}


def markers(command: str) -> tuple[str, str]:
    return f"<!-- flags of {command}: start -->", f"<!-- flags of {command}: end -->"


def generated(page: str) -> str:
    """``page`` with each command's table rewritten from its parser."""
    for command, build in _parsers().items():
        start, end = markers(command)
        pattern = re.compile(re.escape(start) + r"\n(?:.*?\n)?" + re.escape(end), re.S)
        found = pattern.search(page)
        if found is None:
            raise SystemExit(f"{PAGE}: no markers {start!r} ... {end!r}")
        # By slicing, not re.sub: a table's text is not a replacement template.
        page = f"{page[: found.start()]}{start}\n{table(build())}\n{end}{page[found.end() :]}"
    return page


def main(argv: list[str]) -> int:
    text = PAGE.read_text(encoding="utf-8")
    new = generated(text)
    if "--write" in argv:
        PAGE.write_text(new, encoding="utf-8")
        return 0
    if new != text:
        print(f"{PAGE} differs from the parsers: run python docs/_scripts/flags.py --write")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
