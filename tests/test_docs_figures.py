"""Every accuracy on the Baselines page is a published figure or one of the recorded runs.

docs/figures/baseline-runs.json holds each run whole (kmnist-baseline's
--json: figures, date, machine, versions, inputs) with its command; the
page's "Measured here" table must say what those runs say, and the page
may give no other figure of its own.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict

from kmnist.baselines import published

from .conftest import ROOT

PAGE = ROOT / "docs" / "baselines.md"
RUNS = ROOT / "docs" / "figures" / "baseline-runs.json"


def recorded() -> dict[str, list[dict[str, object]]]:
    """The recorded results, by command."""
    by_command: dict[str, list[dict[str, object]]] = defaultdict(list)
    for run in json.loads(RUNS.read_text(encoding="utf-8"))["runs"]:
        by_command[run["command"]].append(run["result"])
    return dict(by_command)


def percent(value: object) -> str:
    assert isinstance(value, float)
    return f"{value:.2%}"


def test_each_run_says_what_was_run_when_and_where() -> None:
    runs = json.loads(RUNS.read_text(encoding="utf-8"))["runs"]
    assert len(runs) >= 3
    for run in runs:
        result = run["result"]
        assert run["command"].startswith(
            f"kmnist-baseline {result['model']} -d {result['dataset']}"
        )
        assert ("--threads 2" in run["command"]) == (result["threads"] == 2)
        assert result["started"].startswith("20") and result["machine"]["cpus"] >= 1
        assert set(result["inputs"]) == {
            "kmnist/kmnist-test-imgs.npz",
            "kmnist/kmnist-test-labels.npz",
        }


def test_the_measured_table_is_the_recorded_runs() -> None:
    page = PAGE.read_text(encoding="utf-8")
    for command, results in recorded().items():
        # The same command gave the same figure every time it was run.
        assert len({r["accuracy"] for r in results}) == 1, command
        rows = [line for line in page.splitlines() if line.startswith(f"| `{command}` |")]
        assert len(rows) == 1, f"no one row for {command}"
        cells = [c.strip() for c in rows[0].strip("|").split(" | ")]
        assert cells[1] == str(len(results)), f"{command}: {cells[1]} runs, recorded {len(results)}"
        got = re.findall(r"([\d.]+%) accuracy \(([\d.]+%) balanced\)", cells[2])
        assert got == [(percent(results[0]["accuracy"]), percent(results[0]["balanced_accuracy"]))]


def test_no_figure_on_the_page_comes_from_nowhere() -> None:
    page = PAGE.read_text(encoding="utf-8")
    known = {round(r.value * 100, 2) for r in published.REPORTED}
    for results in recorded().values():
        for r in results:
            known |= {round(float(r[k]) * 100, 2) for k in ("accuracy", "balanced_accuracy")}  # type: ignore[arg-type]
    figures = {float(x) for x in re.findall(r"(\d+\.\d+)%", page)}
    assert len(figures) > 10
    assert sorted(figures - known) == []
