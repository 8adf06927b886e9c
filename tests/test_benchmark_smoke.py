"""The benchmark harness still runs (its figures are not checked here: no timing in tests)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT


def test_download_speed_quick_run(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "download_speed.py"),
            "--quick",
            "--tools", "ours",
            "--scenario", "unthrottled",
            "--scenario", "rerun",
            "--workdir", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    # Ours ran (a wall time, not "skipped") and its one run checked out.
    assert re.search(r"^\| ours \| kmnist\.download_files .*\| [0-9.]+ \|.* 1/1 \|$", out, re.M)
    # A re-run on the complete folder asked for nothing.
    assert "[rerun 1/1] ours" in out + r.stderr
    assert "requests 0 body 0" in out + r.stderr


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
