"""The fault table (docs/safety.md) stays true: every row names a test that exists, and the totals add up."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

from .conftest import ROOT

# The table moved from README.md to its page of the documentation (issue 20).
PAGE = ROOT / "docs" / "safety.md"
COLUMNS = ["fault", "what the user sees", "on disk afterwards", "test"]
MIN_ROWS = 40
# The word a row uses for each bad outcome, and the name of its total.
MARKS = {
    "final files corrupt": "CORRUPT FINAL",
    "verified files lost": "LOST VERIFIED",
    "tracebacks": "TRACEBACK",
    "hangs": "HANG",
}


def _cells(line: str) -> list[str]:
    # A cell may hold an escaped pipe (\|); only bare pipes separate cells.
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def fault_table(text: str) -> tuple[list[list[str]], dict[str, int]]:
    """The rows of the table under "## Fault table", and its totals line."""
    section = text.split("\n## Fault table\n", 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| fault "))
    assert _cells(lines[head]) == COLUMNS
    rows = []
    for line in lines[head + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(_cells(line))
    [totals_line] = [line for line in lines if line.startswith("Totals:")]
    totals = {k.strip(): int(v) for k, v in re.findall(r"([a-z ]+): (\d+)", totals_line)}
    return rows, totals


@cache
def _test_names(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text())
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.name.startswith("test_")
    )


def problems(text: str, root: Path = ROOT) -> list[str]:
    """What is wrong with the table in ``text`` (empty when it is right)."""
    rows, totals = fault_table(text)
    out = []
    if len(rows) < MIN_ROWS:
        out.append(f"{len(rows)} rows, fewer than {MIN_ROWS}")
    for row in rows:
        if len(row) != len(COLUMNS) or not all(row):
            out.append(f"not four filled cells: {row}")
            continue
        m = re.fullmatch(r"`?(tests/[\w/]+\.py)::(test_\w+)`?", row[3])
        if m is None:
            out.append(f"not tests/<file>.py::<test>: {row[3]!r}")
            continue
        file, name = root / m.group(1), m.group(2)
        if not file.is_file():
            out.append(f"no such file: {m.group(1)}")
        elif name not in _test_names(file):
            out.append(f"no def {name} in {m.group(1)}")
    if totals.get("faults tried") != len(rows):
        out.append(f"faults tried says {totals.get('faults tried')}, the table has {len(rows)}")
    for total, mark in MARKS.items():
        counted = sum(mark in " ".join(row[1:3]) for row in rows)
        if totals.get(total) != counted:
            out.append(f"{total} says {totals.get(total)}, the rows say {counted}")
    return out


def test_the_readme_fault_table_is_true() -> None:
    assert problems(PAGE.read_text()) == []


def test_the_goal_totals_are_zero() -> None:
    _, totals = fault_table(PAGE.read_text())
    assert {k: totals[k] for k in MARKS} == dict.fromkeys(MARKS, 0)


def test_the_check_catches_what_it_should() -> None:
    text = PAGE.read_text()
    rows, _ = fault_table(text)
    first = "| " + " | ".join(rows[0]) + " |"
    # A row naming a test that is not there, or a file that is not there.
    gone = text.replace(first, first.replace("::test_", "::test_gone_"), 1)
    assert any("no def test_gone_" in p for p in problems(gone))
    nofile = text.replace(first, first.replace("tests/test_", "tests/nope_"), 1)
    assert any("no such file" in p for p in problems(nofile))
    # A row added without raising the count, and a bad outcome not counted.
    extra = text.replace(first, first + "\n" + first, 1)
    assert any("faults tried says" in p for p in problems(extra))
    bad = text.replace(first, first.replace(" | ", " | TRACEBACK ", 1), 1)
    assert any("tracebacks says 0" in p for p in problems(bad))
    # Too few rows.
    lines = text.splitlines()
    keep = [ln for ln in lines if not (ln.startswith("| ") and "::test_" in ln)]
    assert any("fewer than 40" in p for p in problems("\n".join(keep) + "\n"))
