"""The command reference lists every flag, and the README stays short with links that resolve."""

from __future__ import annotations

import argparse
import importlib.util
import re
from types import ModuleType

from hypothesis import given
from hypothesis import strategies as st

from .conftest import ROOT


def _flags_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_flags", ROOT / "docs/_scripts/flags.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FLAGS = _flags_script()
README_MAX_LINES = 150


def documented(page: str, command: str) -> set[str]:
    """The flags named in the first column of ``command``'s table in ``page``."""
    start, end = FLAGS.markers(command)
    table = page.split(start, 1)[1].split(end, 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row.split(" | ")[0])}


def missing(page: str, command: str, parser: argparse.ArgumentParser) -> set[str]:
    return FLAGS.flags(parser) - documented(page, command)


def test_every_flag_of_both_commands_is_in_the_reference() -> None:
    page = (ROOT / "docs" / "command.md").read_text(encoding="utf-8")
    for command, build in FLAGS._parsers().items():
        parser = build()
        assert missing(page, command, parser) == set(), f"{command}: not in docs/command.md"
        assert documented(page, command) == FLAGS.flags(parser), f"{command}: a stale row"
        assert len(FLAGS.flags(parser)) >= 10
    # The help texts too: the tables are the parsers', not a hand-made copy.
    assert FLAGS.generated(page) == page, "run: python docs/_scripts/flags.py --write"


@given(st.from_regex(r"--[a-z][a-z0-9]{1,12}(-[a-z0-9]{1,8})?", fullmatch=True))
def test_a_flag_added_to_a_parser_is_found_missing(name: str) -> None:
    page = (ROOT / "docs" / "command.md").read_text(encoding="utf-8")
    for command, build in FLAGS._parsers().items():
        parser = build()
        if name in FLAGS.flags(parser):
            continue
        parser.add_argument(name, action="store_true", help="new")
        assert missing(page, command, parser) == {name}
        # ... and the generated table would have it.
        assert f"| `{name}` |" in FLAGS.table(parser)


def _slug(heading: str) -> str:
    # Python-Markdown's toc slugify, as MkDocs uses it.
    text = re.sub(r"[^\w\s-]", "", heading.strip("# ").lower())
    return re.sub(r"[-\s]+", "-", text).strip("-")


def test_readme_is_short_and_every_link_resolves() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count("\n") <= README_MAX_LINES
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert len(local) >= 10
    for link in local:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.exists(), f"README.md links to {path}, which is not there"
        if anchor:
            headings = re.findall(r"(?m)^#+ .*$", target.read_text(encoding="utf-8"))
            assert anchor in {_slug(h) for h in headings}, f"README.md: no #{anchor} in {path}"


def test_the_slug_is_the_one_mkdocs_makes() -> None:
    assert _slug("## How many images?") == "how-many-images"
    assert _slug("## Dataset facts and citation") == "dataset-facts-and-citation"
    assert _slug("### When the official host is down") == "when-the-official-host-is-down"
