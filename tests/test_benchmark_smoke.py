"""The benchmark harness still runs (its figures are not checked here: no timing in tests)."""

from __future__ import annotations

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
