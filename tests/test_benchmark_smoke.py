"""The benchmark harness still runs (its figures are not checked here: no timing in tests)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT


def _download_speed(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """benchmarks/download_speed.py --quick with ``args``, its data in ``workdir``."""
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "download_speed.py"),
            "--quick",
            *args,
            "--workdir", str(workdir),
        ],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip


def test_download_speed_quick_run(tmp_path: Path) -> None:
    r = _download_speed(
        tmp_path, "--tools", "ours", "--scenario", "unthrottled", "--scenario", "rerun"
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    # Ours ran (a wall time, not "skipped") and its one run checked out.
    assert re.search(r"^\| ours \| kmnist\.download_files .*\| [0-9.]+ \|.* 1/1 \|$", out, re.M)
    # A re-run on the complete folder asked for nothing.
    assert "[rerun 1/1] ours" in out + r.stderr
    assert "requests 0 body 0" in out + r.stderr


@pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("aria2c")), reason="needs curl and aria2c"
)
def test_download_speed_floor_and_verifying_peer(tmp_path: Path) -> None:
    """The rows issue 21 added compute: aria2c verifying, hashlib, the floor, and a
    verdict line per target, in both full-set scenarios."""
    r = _download_speed(
        tmp_path,
        "--tools", "ours,curl,aria2c-budget,aria2c-verify",
        "--scenario", "unthrottled",
        "--scenario", "capped",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    unthrottled, capped = r.stdout.split("### unthrottled")[1].split("### capped")
    number = r" [0-9]+\.[0-9]+ "
    for part in (unthrottled, capped):
        # aria2c verified every file (its runs checked out), hashlib hashed them all.
        assert re.search(r"^\| aria2c-verify \| .*sha-256 per file.*\| 1/1 \|$", part, re.M)
        assert re.search(rf"^\| hashlib \| .*\|{number}\|{number}\|.* 1/1 \|$", part, re.M)
        floor = re.search(rf"^\| floor \| [^|]+ \|({number})\|({number})\|", part, re.M)
        assert floor, part
        assert float(floor.group(2)) > 0
        assert re.search(r"ahead of aria2c, verifying, in wall and CPU: ours", part)
        assert re.search(r"peak RSS at most 40 MB", part)
        # The start-up of Python and requests, measured beside the tools, and
        # ours less it: the table's figures minus that row's.
        start = re.search(rf"^\| python-requests \| [^|]+ \|({number})\|({number})\|", part, re.M)
        ours = re.search(rf"^\| ours \| [^|]+ \|({number})\|({number})\|", part, re.M)
        assert start and ours, part
        less = re.search(
            r"\(not a target\) Python and requests alone start in ([0-9.]+) s wall, "
            r"([0-9.]+) s CPU .* Ours less that: wall ([0-9.-]+) s, .*; CPU ([0-9.-]+) s",
            part,
        )
        assert less, part
        for i in (1, 2):
            assert float(less.group(i)) == float(start.group(i)) > 0
            mine = float(ours.group(i)) - float(start.group(i))
            assert abs(float(less.group(i + 2)) - mine) <= 0.011
    assert "CPU at most 1.15x the floor (curl's + the hash)" in unthrottled
    assert "wall at most 1.2x curl's" in unthrottled
    assert "CPU at most 1.0x the floor (aria2c's + the hash)" in capped
    assert "wall at most 1.05x the budget floor" in capped
    # The capped floor's wall is the budget's limit: bytes / (8 x 20 MB/s).
    files = re.search(r"15 files, ([0-9,]+) bytes", r.stdout)
    assert files
    total = int(files.group(1).replace(",", ""))
    floor_wall = re.search(rf"^\| floor \| [^|]+ \|({number})\|", capped, re.M)
    assert floor_wall and float(floor_wall.group(1)) == round(total / (8 * 20e6), 2)


def _startup(*extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "startup.py"), "--reps", "1", *extra],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_startup_prints_its_table_and_names_the_imports() -> None:
    r = _startup()
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    # Every case ran: a row of numbers each, the baseline's ratio 1.00.
    for case in (
        "`python -c pass`",
        '`python -c "import argparse"` (baseline)',
        '`python -c "import kmnist"`',
        "`kmnist-download --help`",
        "`python -m kmnist --help`",
        "`kmnist-download --list`",
        "`kmnist-download -V`",
    ):
        # "over `-c pass`" is a difference of two noisy medians: below 0 on a busy machine.
        assert re.search(rf"^\| {re.escape(case)}.*?( \| -?[0-9.]+){{7}} \|$", out, re.M), case
    assert re.search(
        r'^\| `python -c "import argparse"` \(baseline\) .*\| 1\.00 \| 1\.00 \|$', out, re.M
    )
    # The target is checked, whichever way it goes on this machine.
    assert re.search(r"^- (PASS|FAIL): `kmnist-download --help` at most 2x", out, re.M)
    # The imports beyond argparse's are kmnist's own causes: the package is
    # among them, argparse (and what its help pulls in) is not.
    imports = out.split("imports beyond those argparse imports", 1)[1]
    assert re.search(r"^\| kmnist \| \d+ \| \d+ \| ", imports, re.M)
    assert re.search(r"^\| kmnist\.cli\.download \| ", imports, re.M)
    for theirs in ("argparse", "gettext", "shutil", "textwrap"):
        assert not re.search(rf"^\| {theirs} \|", imports, re.M), theirs


def test_startup_json_in_a_fresh_venv() -> None:
    r = _startup("--json", "--fresh-venv")
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    assert res["environment"] == "fresh venv"
    assert res["editable_finder"] is None
    cases = {c["case"]: c for c in res["cases"]}
    assert len(cases) == 8
    assert all(c["runs"] == 1 and c["wall_s"]["median"] > 0 for c in cases.values())
    assert cases['python -c "import argparse"']["wall_ratio"] == 1.0
    assert res["target"]["pass"] == (res["target"]["ratio"] <= 2.0)
    modules = {i["module"] for i in res["imports_beyond_argparse"]}
    assert "kmnist.cli.download" in modules
    assert "argparse" not in modules
    # --list and the rest wrote nothing into their working folder.
    assert res["files_left_in_working_folder"] == []
