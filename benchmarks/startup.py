"""How long kmnist's command takes to start, against a bare ``import argparse``.

Runs, as whole processes, in one run on one machine:

  python -c pass                  reference: the interpreter alone
  python -c "import argparse"     the baseline every ratio is taken against
  argparse printing its own --help
                                  reference: python -c "import argparse;
                                  argparse.ArgumentParser().parse_args(['--help'])"
  python -c "import kmnist"
  kmnist-download --help          the console script next to sys.executable
  python -m kmnist --help
  kmnist-download --list
  kmnist-download -V

Each case runs once as a warm-up (its exit status and output checked), then
--reps rounds (default 20), every round in its own shuffled order (seeded, so
that no case always runs in the wake of the same one). Prints a Markdown table
of medians, minima and maxima of wall time (perf_counter around the process)
and CPU time (user+sys of the process, from wait4), each case's ratio to the
baseline, and the issue's target as PASS/FAIL: ``kmnist-download --help`` at
most 2x ``python -c "import argparse"``. Then, from ``python -X importtime``,
the modules ``--help`` imports beyond those argparse imports, heaviest first,
so that a regression names its cause.

kmnist is byte-compiled first, as ``pip install`` does: with
PYTHONDONTWRITEBYTECODE set (as on this machine) every run would otherwise
compile the package again, which no user of an installed kmnist pays.

Nothing touches the network: the cases run in an empty temporary folder,
without $KMNIST_DATA, and none of them downloads. About 5 s with the defaults.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# The target: --help at most this many times a bare `import argparse`.
TARGET_RATIO = 2.0
BASELINE = 'python -c "import argparse"'
TARGET_CASE = "kmnist-download --help"
# Reference: argparse printing a help of its own (it imports shutil, textwrap
# and gettext's locale machinery only when it formats one).
ARGPARSE_HELP = "argparse printing its own --help"
ARGPARSE_HELP_CODE = "import argparse; argparse.ArgumentParser().parse_args(['--help'])"
# Runs of `python -X importtime` whose per-module times are medianed.
IMPORTTIME_RUNS = 5


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]
    expect: str  # a regular expression the warm-up's stdout must match
    role: str = ""  # "baseline", "reference" or "" (kmnist)


def console_script(python: Path) -> Path:
    """``kmnist-download`` as installed next to ``python``."""
    for name in ("kmnist-download", "kmnist-download.exe"):
        if (python.parent / name).exists():
            return python.parent / name
    raise SystemExit(f"startup.py: no kmnist-download next to {python} (pip install -e .)")


def make_cases(python: Path, script: Path) -> list[Case]:
    py = str(python)
    return [
        Case("python -c pass", (py, "-c", "pass"), r"^$", "reference"),
        Case(BASELINE, (py, "-c", "import argparse"), r"^$", "baseline"),
        Case(ARGPARSE_HELP, (py, "-c", ARGPARSE_HELP_CODE), r"^usage: ", "reference"),
        Case('python -c "import kmnist"', (py, "-c", "import kmnist"), r"^$"),
        Case(TARGET_CASE, (str(script), "--help"), r"^usage: kmnist-download"),
        Case(
            "python -m kmnist --help", (py, "-m", "kmnist", "--help"), r"^usage: python -m kmnist"
        ),
        Case("kmnist-download --list", (str(script), "--list"), r"kmnist/kmnist-train-imgs"),
        Case("kmnist-download -V", (str(script), "-V"), r"^kmnist-download \d"),
    ]


def fresh_venv(folder: Path) -> tuple[Path, Path]:
    """A throwaway venv that sees this kmnist the way a pip-installed one is seen.

    An editable install (``pip install -e``) puts a finder in site-packages
    that every start of this venv's Python imports, pathlib and urllib.parse
    with it: about 7 ms in every case, the baseline's too, and modules that
    kmnist would otherwise import itself already loaded. Here kmnist's folder
    and this environment's site-packages are plain sys.path entries (a .pth
    of paths: no code runs), and the console script is this one's with the
    new interpreter on its first line. Returns (python, console script).
    """
    import sysconfig

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    paths = []
    for name in ("kmnist", "kmnist_entry"):
        spec = importlib.util.find_spec(name)
        if spec and spec.origin:
            top = Path(spec.origin).parent
            paths.append(str(top.parent if name == "kmnist" else top))
    paths.append(sysconfig.get_paths()["purelib"])  # the dependencies, for what needs them
    (site / "kmnist-startup-bench.pth").write_text("\n".join(dict.fromkeys(paths)) + "\n")
    installed = console_script(Path(sys.executable))
    body = installed.read_text().split("\n", 1)[1]
    script = folder / "bin" / "kmnist-download"
    script.write_text(f"#!{python}\n{body}")
    script.chmod(0o755)
    return python, script


def editable_finder() -> str | None:
    """The editable install's finder module that site runs at every start, if any."""
    import sysconfig

    for pth in Path(sysconfig.get_paths()["purelib"]).glob("__editable__*.pth"):
        if pth.read_text().startswith("import "):
            return pth.name
    return None


def child_env() -> dict[str, str]:
    """This environment without proxies and without a data folder named."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.pop("KMNIST_DATA", None)
    return env


def compile_ours() -> None:
    """Byte-compile kmnist and the console scripts' entry module, as ``pip install`` does."""
    import compileall
    import py_compile

    spec = importlib.util.find_spec("kmnist")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if not compileall.compile_dir(folder, quiet=1):
            log(f"could not byte-compile {folder}: every run pays for compiling it")
    entry = importlib.util.find_spec("kmnist_entry")
    if entry and entry.origin and entry.origin.endswith(".py"):
        py_compile.compile(entry.origin, quiet=1)


# --------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float


def run_once(argv: tuple[str, ...], cwd: Path, env: dict[str, str]) -> tuple[Run, int]:
    """One process, stdout and stderr discarded: its wall and CPU time, and exit status."""
    t0 = time.perf_counter()
    p = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        cwd=cwd, env=env,
    )  # fmt: skip
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return Run(wall, ru.ru_utime + ru.ru_stime), p.returncode


def warm_up(case: Case, cwd: Path, env: dict[str, str]) -> str | None:
    """Run the case once; None when it exits 0 with the output it should have."""
    r = subprocess.run(case.argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=60)
    if r.returncode != 0:
        tail = r.stderr.strip().splitlines()
        return f"exit {r.returncode}: {tail[-1][:200] if tail else 'no message'}"
    if not re.search(case.expect, r.stdout, re.M):
        return f"unexpected output: {r.stdout[:120]!r}"
    return None


@dataclass(frozen=True)
class Stats:
    median: float
    min: float
    max: float


def stats(xs: list[float]) -> Stats:
    if not xs:
        nan = float("nan")
        return Stats(nan, nan, nan)
    return Stats(statistics.median(xs), min(xs), max(xs))


def measure_all(
    cases: list[Case], reps: int, seed: int, cwd: Path, env: dict[str, str]
) -> dict[str, list[Run]]:
    """reps rounds, each case once a round, in an order shuffled per round."""
    rng = random.Random(seed)
    runs: dict[str, list[Run]] = {c.name: [] for c in cases}
    for rnd in range(reps):
        order = list(cases)
        rng.shuffle(order)
        for case in order:
            run, rc = run_once(case.argv, cwd, env)
            if rc != 0:
                raise RuntimeError(f"{case.name}: exit {rc} in round {rnd + 1}")
            runs[case.name].append(run)
    return runs


# ----------------------------------------------------------------------- imports


@dataclass(frozen=True)
class Imported:
    module: str
    self_us: float
    cumulative_us: float
    imported_by: str  # the module whose import caused this one ("" at top level)


def importtime(
    python: Path, argv: tuple[str, ...], cwd: Path, env: dict[str, str]
) -> dict[str, Imported]:
    """Every module one run imports, from ``-X importtime``'s tree on stderr."""
    if argv[0] == str(python):
        argv = argv[1:]
    r = subprocess.run(
        [str(python), "-X", "importtime", *argv],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=60,
    )  # fmt: skip
    # "import time:   self |  cumulative | <2 spaces per level>name"; a child is
    # printed before its parent, so a line's parent is the next line one level up.
    rows: list[tuple[int, str, int, int]] = []
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if m:
            rows.append((len(m.group(3)) // 2, m.group(4), int(m.group(1)), int(m.group(2))))
    out: dict[str, Imported] = {}
    for i, (level, name, self_us, cum_us) in enumerate(rows):
        parent = next((n for lv, n, _, _ in rows[i + 1 :] if lv == level - 1), "") if level else ""
        out.setdefault(name, Imported(name, self_us, cum_us, parent))
    return out


def imports_beyond(
    python: Path, case: Case, baselines: list[Case], runs: int, cwd: Path, env: dict[str, str]
) -> list[Imported]:
    """Modules case imports that no baseline does, medians of runs, heaviest (self) first."""
    ours = [importtime(python, case.argv, cwd, env) for _ in range(runs)]
    base: set[str] = set()
    for b in baselines:
        base |= set(importtime(python, b.argv, cwd, env))
    result = []
    for name in (n for n in ours[0] if n not in base):
        seen = [r[name] for r in ours if name in r]
        result.append(
            Imported(
                name,
                statistics.median(i.self_us for i in seen),
                statistics.median(i.cumulative_us for i in seen),
                seen[0].imported_by,
            )
        )
    return sorted(result, key=lambda i: -i.self_us)


# ------------------------------------------------------------------------ report


def fmt_ms(s: float) -> str:
    return f"{1000 * s:.1f}"


def build(args: argparse.Namespace, argv_shown: list[str]) -> dict[str, Any]:
    compile_ours()
    env = child_env()
    with tempfile.TemporaryDirectory(prefix="kmnist-startup-") as tmp:
        cwd = Path(tmp) / "cwd"
        cwd.mkdir()
        if args.fresh_venv:
            python, script = fresh_venv(Path(tmp) / "venv")
            finder = None
        else:
            python = Path(sys.executable)
            script = console_script(python)
            finder = editable_finder()
        cases = make_cases(python, script)
        errors = {c.name: why for c in cases if (why := warm_up(c, cwd, env)) is not None}
        if errors:
            return {"errors": errors}
        load_before = os.getloadavg()
        started = time.time()
        runs = measure_all(cases, args.reps, args.seed, cwd, env)
        took = time.time() - started
        load_after = os.getloadavg()
        by_name = {c.name: c for c in cases}
        extra = imports_beyond(
            python,
            by_name[TARGET_CASE],
            [by_name[BASELINE], by_name[ARGPARSE_HELP]],
            min(args.reps, IMPORTTIME_RUNS),
            cwd,
            env,
        )
        leftover = sorted(p.name for p in cwd.iterdir())
    base_wall = stats([r.wall for r in runs[BASELINE]]).median
    base_cpu = stats([r.cpu for r in runs[BASELINE]]).median
    pass_wall = stats([r.wall for r in runs["python -c pass"]]).median
    rows: list[dict[str, Any]] = []
    for c in cases:
        wall = stats([r.wall for r in runs[c.name]])
        cpu = stats([r.cpu for r in runs[c.name]])
        rows.append(
            {
                "case": c.name,
                "role": c.role,
                "argv": list(c.argv),
                "runs": len(runs[c.name]),
                "wall_s": asdict(wall),
                "cpu_s": asdict(cpu),
                "wall_over_pass_s": wall.median - pass_wall,
                "wall_ratio": wall.median / base_wall,
                "cpu_ratio": cpu.median / base_cpu,
            }
        )
    target = next(r for r in rows if r["case"] == TARGET_CASE)
    return {
        "command": shlex.join(["python", "benchmarks/startup.py", *argv_shown]),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "environment": "fresh venv" if args.fresh_venv else "this one",
        "editable_finder": finder,
        "reps": args.reps,
        "seed": args.seed,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "seconds": took,
        "cases": rows,
        "target": {
            "case": TARGET_CASE,
            "baseline": BASELINE,
            "max_ratio": TARGET_RATIO,
            "ratio": target["wall_ratio"],
            "pass": target["wall_ratio"] <= TARGET_RATIO,
        },
        "imports_beyond_argparse": [asdict(i) for i in extra],
        "files_left_in_working_folder": leftover,
    }


def markdown(res: dict[str, Any], top: int) -> str:
    if "errors" in res:
        return "\n".join(f"- {name}: {why}" for name, why in res["errors"].items())
    la, lb = res["load_average_before"], res["load_average_after"]
    lines = [
        "## kmnist start-up",
        "",
        f"Command: `{res['command']}`",
        "",
        f"{res['when']}; {res['cores']} cores; Python {res['python']}; load average "
        f"{la[0]:.2f} {la[1]:.2f} {la[2]:.2f} before, {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f} after. "
        f"One warm-up, then {res['reps']} rounds, each in a shuffled order (seed {res['seed']}); "
        "wall time around the whole process, CPU time user+sys of the process (wait4); "
        'milliseconds. Ratios are of medians, to `python -c "import argparse"`.',
        "",
        "Environment: "
        + (
            "a throwaway venv that sees kmnist through a plain path, as a pip-installed "
            "kmnist is seen (`--fresh-venv`)."
            if res["environment"] == "fresh venv"
            else "this interpreter's own"
            + (
                f"; its `{res['editable_finder']}` runs an editable-install finder at every "
                "start (pathlib, urllib.parse: in every row, the baseline's too; "
                "`--fresh-venv` measures without it)."
                if res["editable_finder"]
                else "."
            )
        ),
        "",
        "| case | wall median | min | max | CPU median | over `-c pass` | wall / argparse "
        "| CPU / argparse |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["cases"]:
        w, c = r["wall_s"], r["cpu_s"]
        name = f"`{r['case']}`" + (f" ({r['role']})" if r["role"] else "")
        lines.append(
            f"| {name} | {fmt_ms(w['median'])} | {fmt_ms(w['min'])} | {fmt_ms(w['max'])} "
            f"| {fmt_ms(c['median'])} | {fmt_ms(r['wall_over_pass_s'])} "
            f"| {r['wall_ratio']:.2f} | {r['cpu_ratio']:.2f} |"
        )
    t = res["target"]
    lines += [
        "",
        f"- {'PASS' if t['pass'] else 'FAIL'}: `{t['case']}` at most {t['max_ratio']:g}x "
        f"`{t['baseline']}` (wall, medians): {t['ratio']:.2f}x",
        "",
        f"Modules `{TARGET_CASE}` imports beyond those argparse imports, printing a help "
        f"of its own or not (`python -X importtime`, medians of up to {IMPORTTIME_RUNS} runs, "
        'heaviest self time first; microseconds; "while running": imported by a '
        "function call, not by another module's import):",
        "",
        "| module | self | cumulative | imported by |",
        "|---|---:|---:|---|",
    ]
    extra = res["imports_beyond_argparse"]
    for i in extra[:top]:
        lines.append(
            f"| {i['module']} | {i['self_us']:.0f} | {i['cumulative_us']:.0f} "
            f"| {i['imported_by'] or 'while running'} |"
        )
    if len(extra) > top:
        rest = sum(i["self_us"] for i in extra[top:])
        lines.append(f"| {len(extra) - top} more | {rest:.0f} | | |")
    lines += [
        "",
        f"{len(extra)} modules in all, {sum(i['self_us'] for i in extra) / 1000:.1f} ms "
        "of self time under importtime (which slows imports down).",
    ]
    if res["files_left_in_working_folder"]:
        lines.append(
            "- the cases left files in their empty working folder: "
            + ", ".join(res["files_left_in_working_folder"])
        )
    lines.append(f"\nMeasured runs took {res['seconds']:.0f} s.")
    return "\n".join(lines)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="startup.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--reps", type=int, default=20, help="measured rounds (default 20)")
    ap.add_argument("--seed", type=int, default=13, help="seed of the rounds' orders (default 13)")
    ap.add_argument("--top", type=int, default=25, help="modules listed (default 25)")
    ap.add_argument(
        "--fresh-venv",
        action="store_true",
        help="run the cases in a throwaway venv that sees kmnist through a plain path, "
        "as a pip-installed kmnist is seen (no editable-install finder at start-up)",
    )
    ap.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    ap.add_argument("--output", type=Path, help="also write the Markdown report here")
    args = ap.parse_args(argv)
    if args.reps < 1:
        ap.error("--reps must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    res = build(args, argv if argv is not None else sys.argv[1:])
    text = markdown(res, args.top)
    print(json.dumps(res, indent=1) if args.json else text)
    if args.output:
        args.output.write_text(text + "\n")
    return 1 if "errors" in res else 0


if __name__ == "__main__":
    sys.exit(main())
