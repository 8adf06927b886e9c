"""The summary table: each column as wide as its own cells, whatever another row says.

One row that says "derived from ..." once padded every other row with about
90 spaces before its time.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from kmnist.catalogue.manifest import RemoteFile
from kmnist.cli.report import _table, results
from kmnist.downloader.outcome import Check, Outcome
from kmnist.downloader.run import Result


def result(root: Path, name: str, outcome: Outcome, check: Check, mirror: str | None) -> Result:
    target = root / "kmnist" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"x" * 3000)
    return Result(RemoteFile(f"kmnist/{name}", 3000), target, outcome, mirror, 3000, 1.25, check)


def test_a_derived_row_widens_no_other_row(tmp_path: Path) -> None:
    rows = [
        result(tmp_path, "kmnist-test-imgs.npz", Outcome.DERIVED, Check.DERIVED, "mnist files"),
        result(tmp_path, "kmnist-test-labels.npz", Outcome.FETCHED, Check.SHA256, "codh-https"),
        result(tmp_path, "kmnist_classmap.csv", Outcome.FETCHED, Check.SHA256, "codh-https"),
    ]
    lines = results(rows, tmp_path, 2.0).splitlines()[:3]
    assert "derived from" in lines[0]
    # The time ends, and the check starts, at one place on every row; the
    # long words are the last column, so the other rows end where their words do.
    assert len({line.index("1.2 s") for line in lines}) == 1
    assert len({line.index("checked: ") for line in lines}) == 1
    assert lines[1].endswith("checked: sha256") and lines[2].endswith("checked: sha256")
    assert len(lines[1]) < len(lines[0]) - 40, lines


cells = st.text(st.characters(codec="ascii", categories=["L", "N"]), max_size=30)


@given(
    st.integers(1, 5).flatmap(
        lambda k: st.lists(
            st.lists(cells, min_size=k, max_size=k).map(tuple), min_size=1, max_size=6
        )
    )
)
def test_each_column_is_as_wide_as_its_own_widest_cell(rows: list[tuple[str, ...]]) -> None:
    lines = _table(rows)
    width = len(rows[0])
    for i, (row, line) in enumerate(zip(rows, lines)):
        # Where each cell starts: the sum of the widths of the columns before it.
        start = 0
        for col in range(width):
            assert line[start : start + len(row[col])] == row[col], (i, col, line)
            start += max(len(r[col]) for r in rows) + 2
        assert line == line.rstrip()
        assert not re.search(r"\s$", line)


def test_the_plan_by_dataset_gives_the_kanji_archive_its_stated_size(tmp_path: Path) -> None:
    # Its size was never published: the per-dataset plan (the questions'
    # screen) says the stated one, as the questions did, not "?".
    from kmnist.catalogue.manifest import BUILTIN_MIRRORS, select
    from kmnist.cli.report import plan_by_dataset
    from kmnist.downloader.plan import make_plan

    entries = [*select("kkanji", "tar", "all"), *select("kmnist", "npz", "test")]
    p = make_plan([e.file for e in entries], tmp_path)
    text = plan_by_dataset(p, tmp_path, BUILTIN_MIRRORS)
    [kanji] = [line for line in text.splitlines() if " kkanji " in line]
    assert kanji.rstrip().endswith("about 296 MiB") and "?" not in kanji
    [kmnist] = [line for line in text.splitlines() if " kmnist " in line]
    assert kmnist.rstrip().endswith("MiB") and "about" not in kmnist
