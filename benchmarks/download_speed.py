"""How fast kmnist downloads, side by side with curl, aria2c and pooch, in one run.

Creates files of the real names and sizes of the current release (random,
incompressible bytes; the Kanji archive as 310,000,000 bytes), serves them from a
loopback HTTP/1.1 server in a process of its own (unthrottled, or capped per
connection), and runs every tool as a subprocess, round-robin (each round in a
shuffled order), several rounds.
Prints Markdown tables of medians (wall time, CPU time, peak RSS), each tool's
ratio to ours, and a PASS/FAIL line per target.

Scenarios:
  unthrottled  full set over loopback, no cap
  capped       full set, each connection capped at --rate bytes/s
  resume       the server cuts the connection at half of the Kanji archive once;
               ours must finish (in the same run, or a second one) fetching at
               most the file size plus 1 MiB of it
  rerun        ours again on a complete folder: no body requests, under 0.5 s
  profile      (only when asked) ours once, unthrottled, under py-spy: where
               its threads spend their time (pip install py-spy)

Tools: ours (kmnist.download_files, through benchmarks/_run_tool.py), curl (one
process, files one after another on one connection; and --parallel at our
connection budget), aria2c (at our connection budget, and at -j5 -x8 -s8),
aria2c at our budget again with the sha256 of every file (verifying, as ours
does), pooch.retrieve per file with its known sha256; and, only when named in
--tools, minimal (a plain Python client, as a reference). Each table ends with a
"floor" row: the least a verifying client can spend (see floor_row). A tool that is not installed is
reported as skipped. curl and aria2c come from Debian's packages:

  apt-get install -y curl aria2        # pooch: pip install pooch

Repetitions: 9 in the unthrottled scenario, where a run takes under a second
and the same tool's wall time moves by 10% from one run to the next on a shared
2-core machine; 3 elsewhere. --reps sets both.

Time: a full run (all scenarios, 430 MB, 20 MB/s cap) takes about 6 minutes
on 2 cores (332-358 s on 2026-12-04), most of it curl and pooch in the
capped scenario (about 22 s a run each); the first run also writes the 430 MB of test data
(a few seconds; kept in --workdir). --quick (files 1/20 of the size, one
repetition) takes well under 30 s.

Only 127.0.0.1 is ever contacted: proxy variables are removed from the tools'
environment.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import random
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # the worktree's kmnist, for the manifest's names and sizes

# Repetitions of the unthrottled scenario (see the help text).
UNTHROTTLED_REPS = 9

# The Kanji archive's size was never published; "about 310 MB" says the data README.
KANJI_SIZE = 310_000_000
MIB = 1 << 20
SCENARIOS = ("unthrottled", "capped", "resume", "rerun")
# Not part of a default run: one profiled run of ours, for finding where time goes.
EXTRA_SCENARIOS = ("profile",)
# The cut in the resume scenario: this file, at half its size.
CUT_FILE = "kkanji/kkanji.tar"


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class File:
    path: str
    size: int
    sha256: str


def release_files(quick: bool) -> list[tuple[str, int]]:
    """Paths and sizes of the current release, from the manifest."""
    from kmnist.catalogue.manifest import CURRENT_RELEASE, ENTRIES

    out = []
    for e in ENTRIES:
        if e.release != CURRENT_RELEASE:
            continue
        size = e.file.size if e.file.size is not None else KANJI_SIZE
        if quick and size >= MIB:
            size //= 20  # quick: same names and shape of the set, 1/20 of the bytes
        out.append((e.file.path, size))
    return out


def make_data(workdir: Path, quick: bool) -> tuple[Path, list[File]]:
    """Random files of the given sizes, made once and kept in ``workdir``."""
    root = workdir / ("data-quick" if quick else "data-full")
    index = root / "index.json"
    wanted = release_files(quick)
    if index.exists():
        known = {f["path"]: f for f in json.loads(index.read_text())}
        if all(
            p in known
            and known[p]["size"] == s
            and (root / p).is_file()
            and (root / p).stat().st_size == s
            for p, s in wanted
        ):
            return root, [File(p, s, known[p]["sha256"]) for p, s in wanted]
    log(f"writing {sum(s for _, s in wanted) / 1e6:.0f} MB of random test data to {root}")
    files = []
    for path, size in wanted:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        with open(target, "wb") as f:
            left = size
            while left:
                block = os.urandom(min(left, 4 * MIB))
                h.update(block)
                f.write(block)
                left -= len(block)
        files.append(File(path, size, h.hexdigest()))
    index.write_text(json.dumps([f.__dict__ for f in files], indent=1))
    return root, files


def settle(root: Path, files: list[File], scratch: Path) -> None:
    """Get the machine into the state every measured run will find.

    Writes back what is dirty and reads the test data once, so that the first
    run neither competes with writeback nor reads from disk; then writes as
    many bytes as a run will, and deletes them. On this VM the first 430 MB
    written into page cache that no file used recently cost 1.3 s instead of
    0.15 s (the host backing guest memory on first touch, most likely); after
    a delete the kernel hands the same pages out again, as it does between
    runs, where every destination is deleted.
    """
    os.sync()
    for f in files:
        with open(root / f.path, "rb") as fh:
            while fh.read(16 * MIB):
                pass
    block = os.urandom(4 * MIB)
    with open(scratch, "wb") as fh:
        for _ in range(sum(f.size for f in files) // len(block) + 1):
            fh.write(block)
    scratch.unlink()


def check_output(dest: Path, files: list[File], *, hashes: bool) -> str | None:
    """None when every file is in place with the right size (and hash); else what is wrong."""
    for f in files:
        p = dest / f.path
        try:
            size = p.stat().st_size
        except FileNotFoundError:
            return f"{f.path} missing"
        if size != f.size:
            return f"{f.path} has {size} bytes, not {f.size}"
        if hashes:
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                while block := fh.read(4 * MIB):
                    h.update(block)
            if h.hexdigest() != f.sha256:
                return f"{f.path} has other bytes (sha256 {h.hexdigest()[:12]}...)"
    return None


# ------------------------------------------------------------------------- server


class Server:
    """benchmarks/_server.py in a process of its own; stops when we close its stdin."""

    def __init__(self, root: Path, *, timeout: float = 10.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_server.py"), "--root", str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=clean_env(),
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError("the benchmark server did not start")
        self.port = int(line.split()[1])
        self.base = f"http://127.0.0.1:{self.port}"

    def ctl(self, what: str, **params: Any) -> dict[str, Any]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        url = f"{self.base}/__ctl/{what}" + (f"?{query}" if query else "")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=10) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def cpu(self) -> float:
        """User+system seconds the server process has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def compile_ours() -> None:
    """Byte-compile kmnist, as ``pip install`` does.

    A checkout installed with ``pip install -e`` is compiled on first import,
    unless PYTHONDONTWRITEBYTECODE is set (as it is on some CI machines):
    then every run would compile the package again, about 30 ms that no user
    of an installed kmnist pays.
    """
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("kmnist")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if not compileall.compile_dir(folder, quiet=1):
            log(f"could not byte-compile {folder}: ours pays for compiling on every run")


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


# -------------------------------------------------------------------------- tools


@dataclass
class Ctx:
    base: str
    files: list[File]
    data: Path  # the served files, hashed in place for the floor
    spec: Path
    budget: int
    ours_options: dict[str, Any]
    workdir: Path


@dataclass
class Tool:
    name: str
    describe: str
    build: Callable[[Ctx, Path], list[str]]
    missing: Callable[[], str | None]
    python: bool = False  # prints {"inner_wall": s} on stdout
    optional: bool = False  # only when named in --tools


def _python_can_import(code: str) -> str | None:
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        cwd=HERE,  # the import path _run_tool.py sees, not the caller's folder
    )
    if r.returncode == 0:
        return None
    lines = r.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit {r.returncode}"


def ours_missing() -> str | None:
    # An empty call imports whatever download_files needs and contacts nothing.
    why = _python_can_import(
        "import kmnist, tempfile; kmnist.download_files("
        "[], tempfile.mkdtemp(), mirrors=['http://127.0.0.1:9'], progress=False)"
    )
    return None if why is None else f"skipped: kmnist.download_files not importable ({why})"


def pooch_missing() -> str | None:
    why = _python_can_import("import pooch")
    return None if why is None else "skipped (pip install pooch)"


def program_missing(program: str, package: str) -> Callable[[], str | None]:
    def check() -> str | None:
        return None if shutil.which(program) else f"skipped (apt-get install {package})"

    return check


def ours_cmd(ctx: Ctx, dest: Path) -> list[str]:
    return [
        sys.executable,
        str(HERE / "_run_tool.py"),
        "ours",
        str(ctx.spec),
        str(dest),
        ctx.base,
        json.dumps(ctx.ours_options),
    ]


def minimal_cmd(ctx: Ctx, dest: Path) -> list[str]:
    return [
        sys.executable,
        str(HERE / "_run_tool.py"),
        "minimal",
        str(ctx.spec),
        str(dest),
        ctx.base,
    ]


def pooch_cmd(ctx: Ctx, dest: Path) -> list[str]:
    return [sys.executable, str(HERE / "_run_tool.py"), "pooch", str(ctx.spec), str(dest), ctx.base]


def curl_cmd(parallel: bool) -> Callable[[Ctx, Path], list[str]]:
    def build(ctx: Ctx, dest: Path) -> list[str]:
        argv = [
            "curl",
            "--silent",
            "--show-error",
            "--fail",
            "--create-dirs",
            "--connect-timeout",
            "10",
            "--max-time",
            "600",
        ]
        if parallel:
            argv += ["--parallel", "--parallel-max", str(ctx.budget)]
        for f in ctx.files:
            argv += ["-o", str(dest / f.path), f"{ctx.base}/{f.path}"]
        return argv

    return build


def aria2c_cmd(which: str) -> Callable[[Ctx, Path], list[str]]:
    def build(ctx: Ctx, dest: Path) -> list[str]:
        # One input file lists every URL with its folder and name.
        listing = dest.parent / f"{dest.name}.aria2-input"
        with open(listing, "w") as fh:
            for f in ctx.files:
                folder, _, name = f.path.rpartition("/")
                fh.write(f"{ctx.base}/{f.path}\n  dir={dest / folder}\n  out={name}\n")
                if which == "verify":
                    fh.write(f"  checksum=sha-256={f.sha256}\n")
        verify = ["--check-integrity=true"] if which == "verify" else []
        if which in ("budget", "verify"):
            # All of the budget on one file at a time, split down to aria2c's
            # smallest piece (1 MiB): its best use of that many connections here,
            # where one file is 72% of the bytes.
            knobs = ["-j1", f"-x{ctx.budget}", f"-s{ctx.budget}", "-k1M"]
        else:
            knobs = ["-j5", "-x8", "-s8"]
        return [
            "aria2c",
            "-i",
            str(listing),
            *knobs,
            *verify,
            "--file-allocation=none",
            "--allow-overwrite=true",
            "--auto-file-renaming=false",
            "--console-log-level=error",
            "--summary-interval=0",
            "--download-result=hide",
            "--connect-timeout=10",
            "--timeout=30",
            "--max-tries=3",
        ]

    return build


def budget_knobs(budget: int) -> str:
    return f"-j1 -x{budget} -s{budget} -k1M"


def make_tools(budget: int) -> list[Tool]:
    return [
        Tool(
            "ours", "kmnist.download_files (verifies sha256)", ours_cmd, ours_missing, python=True
        ),
        Tool(
            "curl",
            "curl, one process, files one after another",
            curl_cmd(False),
            program_missing("curl", "curl"),
        ),
        Tool(
            "curl-parallel",
            f"curl --parallel --parallel-max {budget}",
            curl_cmd(True),
            program_missing("curl", "curl"),
        ),
        Tool(
            "aria2c-budget",
            f"aria2c {budget_knobs(budget)} ({budget} connections)",
            aria2c_cmd("budget"),
            program_missing("aria2c", "aria2"),
        ),
        Tool(
            "aria2c-verify",
            f"aria2c {budget_knobs(budget)}, sha-256 per file, --check-integrity=true",
            aria2c_cmd("verify"),
            program_missing("aria2c", "aria2"),
        ),
        Tool(
            "aria2c-fast",
            "aria2c -j5 -x8 -s8 (up to 40 connections)",
            aria2c_cmd("fast"),
            program_missing("aria2c", "aria2"),
        ),
        Tool(
            "minimal",
            "reference: plain Python, 1 connection, sha256 inline",
            minimal_cmd,
            lambda: None,
            python=True,
            optional=True,
        ),
        Tool(
            "pooch", "pooch.retrieve per file, known sha256", pooch_cmd, pooch_missing, python=True
        ),
    ]


# ---------------------------------------------------------------------- measuring


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float  # peak resident set of the process, in MB (10^6 bytes)
    rc: int
    inner: float | None = None  # seconds inside the library (Python tools)
    error: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    server_cpu: float = 0.0
    other_cpu: float = float("nan")  # CPU used meanwhile by neither the tool nor the server
    sys_cpu: float = float("nan")  # the kernel's part of ``cpu`` (printed per run, for diagnosis)
    started: float = float("nan")  # time.monotonic() just before the tool's process began
    # Seconds from the process's start to its first request reaching the server
    # (interpreter, imports, planning): set from the server's stats.
    first_request: float | None = None

    @property
    def after_first_request(self) -> float | None:
        """Seconds from the first request to the process's exit."""
        return None if self.first_request is None else self.wall - self.first_request


def machine_busy() -> float:
    """CPU seconds all cores have spent not idle since boot (nan without /proc/stat).

    What grows during a run, less the tool's and the server's own CPU time, is
    what else the machine did meanwhile. On 2 shared cores a neighbour on the
    second core slows a tool that uses both (ours) and not one that uses one
    (curl); the "other CPU" column shows when that happened.
    """
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    # guest time is already counted in user; steal is time the host took away.
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# ru_maxrss of a child started from this process is useless: Linux carries the
# peak RSS of the mm that calls execve (ours, via vfork, about 35 MB) into the
# new program's figure. GNU time forks from a 2 MB process, so its %M is the
# tool's own peak.
GNU_TIME = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)


def measure(argv: list[str], *, timeout: float, log_to: Path, server: Server) -> Run:
    """Run argv; its wall time, CPU time (user+sys, from wait4) and peak RSS."""
    rss_file = log_to.with_suffix(".rss")
    if GNU_TIME:
        argv = [GNU_TIME, "-f", "%M", "-o", str(rss_file), "--", *argv]
    with (
        open(log_to.with_suffix(".out"), "wb") as out,
        open(log_to.with_suffix(".err"), "wb") as err,
    ):
        os.sync()  # the previous run's writes must not be flushed during this one
        cpu0 = server.cpu()
        busy0 = machine_busy()
        started = time.monotonic()
        t0 = time.perf_counter()
        p = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=clean_env(),
            start_new_session=True,
            cwd=log_to.parent,
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            os.killpg(p.pid, signal.SIGKILL)  # the tool too, not only GNU time

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        server_cpu = server.cpu() - cpu0
        busy = machine_busy() - busy0
    rss_kib = ru.ru_maxrss
    if GNU_TIME:
        try:
            rss_kib = int(rss_file.read_text().split()[-1])
        except (OSError, ValueError, IndexError):
            rss_kib = 0
    cpu = ru.ru_utime + ru.ru_stime
    run = Run(
        wall,
        cpu,
        rss_kib * 1024 / 1e6,
        p.returncode,
        server_cpu=server_cpu,
        # Clock ticks are 10 ms: small negatives are rounding.
        other_cpu=max(0.0, busy - cpu - server_cpu) if busy == busy else busy,
        sys_cpu=ru.ru_stime,
        started=started,
    )
    if killed.is_set():
        run.error = f"timed out after {timeout:g} s"
    elif p.returncode != 0:
        tail = log_to.with_suffix(".err").read_text(errors="replace").strip().splitlines()
        run.error = f"exit {p.returncode}: " + (tail[-1][:200] if tail else "no message")
    text = log_to.with_suffix(".out").read_text(errors="replace").strip()
    if text.startswith("{"):
        with contextlib.suppress(ValueError, KeyError):
            run.inner = json.loads(text.splitlines()[-1])["inner_wall"]
    return run


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# ---------------------------------------------------------------------- scenarios


@dataclass
class Outcome:
    tool: Tool
    skipped: str | None = None
    runs: list[Run] = field(default_factory=list)

    @property
    def ok(self) -> list[Run]:
        return [r for r in self.runs if r.error is None]

    def med(self, attr: str) -> float:
        return median([getattr(r, attr) for r in self.ok if getattr(r, attr) is not None])


def full_set(
    name: str,
    rate: float,
    tools: list[Tool],
    skipped: dict[str, str],
    ctx: Ctx,
    server: Server,
    args: argparse.Namespace,
) -> dict[str, Outcome]:
    server.ctl("config", rate=rate)
    extra = [HASHLIB] if "ours" in skipped else [HASHLIB, STARTUP]
    outcomes = {t.name: Outcome(t, skipped.get(t.name)) for t in [*tools, *extra]}
    active = [t for t in tools if t.name not in skipped]
    reps = args.unthrottled_reps if name == "unthrottled" else args.reps
    for rep in range(reps):
        # Every tool once per repetition, in an order shuffled each time (seeded:
        # the same order on every run of the script). A rotation would keep the
        # cycle: ours ran after pooch in 8 of 9 repetitions, always in the
        # wake of the heaviest run.
        order = list(active)
        random.Random(rep).shuffle(order)
        for tool in order:
            dest = fresh(ctx.workdir / "dest" / tool.name)
            server.ctl("reset")
            run = measure(
                tool.build(ctx, dest),
                timeout=args.timeout,
                log_to=ctx.workdir / "logs" / f"{name}-{tool.name}-{rep}",
                server=server,
            )
            run.stats = server.ctl("stats")
            if run.stats.get("first_request") is not None:
                run.first_request = run.stats["first_request"] - run.started
            if run.error is None:
                # Sizes every time; every byte once per tool and scenario, so
                # that a fast tool is also a correct one (outside the timing).
                run.error = check_output(dest, ctx.files, hashes=rep == 0)
            outcomes[tool.name].runs.append(run)
            log(
                f"[{name} {rep + 1}/{reps}] {tool.name:14s} wall {run.wall:7.2f} s  "
                f"cpu {run.cpu:6.2f} s (sys {run.sys_cpu:4.2f})  rss {run.rss_mb:5.0f} MB  "
                f"server cpu {run.server_cpu:5.2f} s  other cpu {run.other_cpu:5.2f} s"
                + (f"  ERROR {run.error}" if run.error else "")
            )
            shutil.rmtree(dest, ignore_errors=True)
        # The hash's share of the floor, measured beside the tools in every round.
        run = hash_files(ctx)
        outcomes[HASHLIB.name].runs.append(run)
        log(
            f"[{name} {rep + 1}/{reps}] {HASHLIB.name:14s} wall {run.wall:7.2f} s  "
            f"cpu {run.cpu:6.2f} s"
        )
        if STARTUP.name in outcomes:
            # The start-up that any client keeping requests pays, beside ours.
            run = measure(
                STARTUP.build(ctx, ctx.workdir),
                timeout=args.timeout,
                log_to=ctx.workdir / "logs" / f"{name}-{STARTUP.name}-{rep}",
                server=server,
            )
            outcomes[STARTUP.name].runs.append(run)
            log(
                f"[{name} {rep + 1}/{reps}] {STARTUP.name:14s} wall {run.wall:7.2f} s  "
                f"cpu {run.cpu:6.2f} s"
            )
    return outcomes


# Not a downloader: hashlib.sha256 over the served files (in page cache), in
# the harness's own process, for the hash's part of the floor.
HASHLIB = Tool(
    "hashlib",
    "hashlib.sha256 over the same files (no network; in the harness)",
    lambda ctx, dest: [],
    lambda: None,
)


# Not a downloader either: the interpreter that runs ours, importing requests
# and nothing else. Issue 21 keeps requests, so no client of ours can start
# faster than this; the "(not a target)" lines take it out of ours' figures to
# show what is left above the floor.
STARTUP = Tool(
    "python-requests",
    "python -c 'import requests' (no network; start-up any client keeping requests pays)",
    lambda ctx, dest: [sys.executable, "-c", "import requests"],
    lambda: None,
)


def hash_files(ctx: Ctx) -> Run:
    """Wall and CPU time of sha256 over every served file (1 MiB reads into one buffer)."""
    buf = bytearray(MIB)
    view = memoryview(buf)
    t0, c0 = time.perf_counter(), time.process_time()
    for f in ctx.files:
        h = hashlib.sha256()
        with open(ctx.data / f.path, "rb", buffering=0) as fh:
            while n := fh.readinto(buf):
                h.update(view[:n])
        if h.hexdigest() != f.sha256:
            return Run(0.0, 0.0, float("nan"), 1, error=f"{f.path}: sha256 differs")
    return Run(time.perf_counter() - t0, time.process_time() - c0, float("nan"), 0)


@dataclass(frozen=True)
class Floor:
    """The least a verifying client can spend in a scenario (issue 21).

    Wall: curl's unthrottled (one process receiving and writing; the hash fits
    on the second core), the budget's limit when capped (bytes / (connections x
    rate)). CPU: what the fastest plain client of the scenario spends (curl
    unthrottled, aria2c at the same connections when capped) plus sha256 over
    the same bytes, measured in the same run.
    """

    wall: float
    cpu: float
    describe: str


def floor_of(name: str, outcomes: dict[str, Outcome], ctx: Ctx, rate: float) -> Floor | None:
    hashed = outcomes.get(HASHLIB.name)
    if hashed is None or not hashed.ok:
        return None
    if name == "capped" and rate:
        base = outcomes.get("aria2c-budget")
        if base is None or base.skipped or not base.ok:
            return None
        total = sum(f.size for f in ctx.files)
        return Floor(
            total / (ctx.budget * rate),
            base.med("cpu") + hashed.med("cpu"),
            f"wall: bytes / ({ctx.budget} x {rate / 1e6:g} MB/s); CPU: aria2c-budget's + hashlib's",
        )
    base = outcomes.get("curl")
    if base is None or base.skipped or not base.ok:
        return None
    return Floor(
        base.med("wall"),
        base.med("cpu") + hashed.med("cpu"),
        "wall: curl's; CPU: curl's + hashlib's",
    )


def fmt(x: float, unit: str = "", digits: int = 2) -> str:
    return "n/a" if x != x else f"{x:.{digits}f}{unit}"


def table(outcomes: dict[str, Outcome], floor: Floor | None = None) -> list[str]:
    ours = outcomes.get("ours")
    ow = ours.med("wall") if ours else float("nan")
    oc = ours.med("cpu") if ours else float("nan")
    lines = [
        "| tool | what | wall s | CPU s | peak RSS MB | wall tool/ours | CPU tool/ours | "
        "first request s | requests | connections opened | server CPU s | other CPU s | runs ok |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes.values():
        if o.skipped:
            lines.append(f"| {o.tool.name} | {o.tool.describe} | {o.skipped} |||||||||||")
            continue
        w, c = o.med("wall"), o.med("cpu")
        reqs = median([r.stats["requests"] for r in o.ok if r.stats])
        conns = median([r.stats["connections"] for r in o.ok if r.stats])
        errors = {r.error for r in o.runs if r.error}
        lines.append(
            f"| {o.tool.name} | {o.tool.describe} | {fmt(w)} | {fmt(c)}"
            f" | {fmt(o.med('rss_mb'), '', 0)}"
            f" | {fmt(w / ow)} | {fmt(c / oc)} | {fmt(o.med('first_request'), '', 3)}"
            f" | {fmt(reqs, '', 0)} | {fmt(conns, '', 0)}"
            f" | {fmt(o.med('server_cpu'))} | {fmt(o.med('other_cpu'))}"
            f" | {len(o.ok)}/{len(o.runs)}"
            + (f" ({'; '.join(sorted(errors))})" if errors else "")
            + " |"
        )
    if floor is not None:
        lines.append(
            f"| floor | {floor.describe} | {fmt(floor.wall)} | {fmt(floor.cpu)} | |"
            f" {fmt(floor.wall / ow)} | {fmt(floor.cpu / oc)} | | | | | | |"
        )
    # The spread, beside the medians: on a shared VM a run's kernel time can
    # double for minutes at a time (the host's doing, not the tool's), and
    # a reader comparing machines needs to see it.
    spread = [
        f"{o.tool.name} {fmt(min(r.wall for r in o.ok))}-{fmt(max(r.wall for r in o.ok))} s"
        + (
            f" (sys {fmt(min(sy))}-{fmt(max(sy))} s)"
            if (sy := [r.sys_cpu for r in o.ok if r.sys_cpu == r.sys_cpu])
            else ""
        )
        for o in outcomes.values()
        if not o.skipped and o.ok and o.tool not in (HASHLIB, STARTUP)
    ]
    if spread:
        lines.append("")
        lines.append(
            "Spread of the runs, wall (and the kernel's part of the CPU): "
            + "; ".join(spread)
            + "."
        )
    if ours and ours.ok and ours.med("inner") == ours.med("inner"):
        lines.append("")
        lines.append(
            f"ours: {fmt(ours.med('inner'))} s of the {fmt(ow)} s wall are spent inside "
            f"kmnist.download_files; the rest is interpreter start-up and imports."
        )
    return lines


# Set by --quick: the targets are about the full set, where start-up is small
# next to the bytes; on 1/20 of them a verdict would mean nothing.
QUICK = False


def verdict(ok: bool, text: str) -> str:
    if QUICK:
        return f"- (quick run, not a verdict: {'pass' if ok else 'fail'}) {text}"
    return f"- {'PASS' if ok else 'FAIL'}: {text}"


def targets_full(name: str, outcomes: dict[str, Outcome], floor: Floor | None) -> list[str]:
    """PASS/FAIL per target of issue 21 (and of the earlier issues still held)."""
    ours = outcomes["ours"]
    if ours.skipped or not ours.ok:
        return [f"- targets not checked: ours {ours.skipped or 'failed every run'}"]
    ow, oc, orss = ours.med("wall"), ours.med("cpu"), ours.med("rss_mb")
    out = []

    def against(tool: str) -> Outcome | None:
        o = outcomes.get(tool)
        return o if o and not o.skipped and o.ok else None

    def at_most(what: str, mine: float, factor: float, theirs: float | None, who: str) -> None:
        if theirs is None:
            out.append(f"- not checked: {what} at most {factor}x {who} (a tool is missing)")
            return
        out.append(
            verdict(
                mine <= factor * theirs,
                f"{what} at most {factor}x {who}: ours {mine:.2f} s, {theirs:.2f} s, "
                f"ratio {mine / theirs:.2f}",
            )
        )

    def med(tool: str, attr: str) -> float | None:
        o = against(tool)
        return o.med(attr) if o else None

    capped = name == "capped"
    if not capped:
        at_most("wall", ow, 1.2, med("curl", "wall"), "curl's")
        at_most("CPU", oc, 1.15, floor.cpu if floor else None, "the floor (curl's + the hash)")
        curl_wall = med("curl", "wall")
        if floor and curl_wall:
            out += without_startup(outcomes, ow, oc, curl_wall, "curl's wall", floor.cpu)
    else:
        at_most("CPU", oc, 1.0, floor.cpu if floor else None, "the floor (aria2c's + the hash)")
        at_most("wall", ow, 1.05, floor.wall if floor else None, "the budget floor")
        after, before = ours.med("after_first_request"), ours.med("first_request")
        if floor and after == after:
            # Not a target: where the wall time above the floor goes.
            out.append(
                f"- (not a target) ours from its first request to its exit: {after:.2f} s, "
                f"{after / floor.wall:.2f}x the budget floor; before its first request "
                f"(interpreter, imports, plan): {before:.2f} s"
            )
        if floor:
            out += without_startup(outcomes, ow, oc, floor.wall, "the budget floor", floor.cpu)
        at_most("wall", ow, 1.1, med("aria2c-budget", "wall"), "aria2c's at the same budget")
        curl = against("curl")
        if curl:
            cw = curl.med("wall")
            out.append(
                verdict(
                    cw >= 5 * ow,
                    f"at least 5x faster than curl: curl {cw:.2f} s / ours {ow:.2f} s "
                    f"= {cw / ow:.2f}x",
                )
            )
    peer = against("aria2c-verify")
    if peer is None:
        out.append("- not checked: ahead of aria2c, verifying (aria2c missing)")
    else:
        pw, pc = peer.med("wall"), peer.med("cpu")
        out.append(
            verdict(
                ow < pw and oc < pc,
                f"ahead of aria2c, verifying, in wall and CPU: ours {ow:.2f} s / {oc:.2f} s, "
                f"aria2c {pw:.2f} s / {pc:.2f} s",
            )
        )
    out.append(verdict(orss <= 40, f"peak RSS at most 40 MB: ours {orss:.0f} MB"))
    return out


def without_startup(
    outcomes: dict[str, Outcome],
    wall: float,
    cpu: float,
    wall_base: float,
    wall_what: str,
    cpu_floor: float,
) -> list[str]:
    """Not a target: ours' wall and CPU less the start-up of Python and requests,
    both measured in this run, against the same yardsticks as the targets."""
    start = outcomes.get(STARTUP.name)
    if start is None or not start.ok:
        return []
    sw, sc = start.med("wall"), start.med("cpu")
    return [
        f"- (not a target) Python and requests alone start in {sw:.2f} s wall, "
        f"{sc:.2f} s CPU (`python -c 'import requests'`, this run). Ours less that: "
        f"wall {wall - sw:.2f} s, {(wall - sw) / wall_base:.2f}x {wall_what}; "
        f"CPU {cpu - sc:.2f} s, {(cpu - sc) / cpu_floor:.2f}x the floor"
    ]


def scenario_resume(
    ctx: Ctx, server: Server, args: argparse.Namespace, skipped: dict[str, str]
) -> tuple[list[str], Path | None]:
    lines = ["### resume: connection cut at half of the Kanji archive, unthrottled", ""]
    if "ours" in skipped:
        return [*lines, f"ours {skipped['ours']}"], None
    cut = next((f for f in ctx.files if f.path == CUT_FILE), None)
    if cut is None:
        return [*lines, f"not run: {CUT_FILE} is not in the set"], None
    server.ctl("config", rate=0)
    dest = fresh(ctx.workdir / "dest" / "resume")
    server.ctl("reset")
    server.ctl("cut", path=cut.path, after=cut.size // 2)
    runs = []
    for attempt in range(2):  # the first run may give up on the cut; a second resumes
        run = measure(
            ours_cmd(ctx, dest),
            timeout=args.timeout,
            log_to=ctx.workdir / "logs" / f"resume-{attempt}",
            server=server,
        )
        runs.append(run)
        log(
            f"[resume run {attempt + 1}] ours wall {run.wall:.2f} s rc {run.rc}"
            + (f" ERROR {run.error}" if run.error else "")
        )
        if run.error is None:
            break
    stats = server.ctl("stats")
    got = stats["by_path"].get(cut.path, {"bytes": 0, "requests": 0})
    bad = check_output(dest, ctx.files, hashes=True)
    total = sum(f.size for f in ctx.files)
    lines += [
        "| run | exit | wall s | CPU s | error |",
        "|---|---:|---:|---:|---|",
        *(
            f"| {i + 1} | {r.rc} | {r.wall:.2f} | {r.cpu:.2f} | {r.error or ''} |"
            for i, r in enumerate(runs)
        ),
        "",
        f"cuts made: {stats['cuts']}; {cut.path}: {got['bytes']:,} body bytes served in "
        f"{got['requests']} requests for a {cut.size:,}-byte file "
        f"(excess {got['bytes'] - cut.size:+,}); whole set: {stats['body_bytes']:,} of {total:,} "
        f"bytes; folder afterwards: {bad or 'complete and verified'}.",
        "",
        verdict(
            runs[-1].error is None
            and bad is None
            and stats["cuts"] == 1
            and got["bytes"] <= cut.size + MIB,
            f"after a cut at half of the Kanji archive, bytes fetched of it at most size + "
            f"1 MiB: {got['bytes']:,} <= {cut.size + MIB:,}"
            + ("" if len(runs) == 1 else " (needed a second run)"),
        ),
    ]
    return lines, (dest if bad is None else None)


def scenario_rerun(
    ctx: Ctx,
    server: Server,
    args: argparse.Namespace,
    skipped: dict[str, str],
    complete: Path | None,
) -> list[str]:
    lines = ["### rerun: ours again on a complete folder", ""]
    if "ours" in skipped:
        return [*lines, f"ours {skipped['ours']}"]
    server.ctl("config", rate=0)
    if complete is None:
        complete = fresh(ctx.workdir / "dest" / "rerun")
        run = measure(
            ours_cmd(ctx, complete),
            timeout=args.timeout,
            log_to=ctx.workdir / "logs" / "rerun-setup",
            server=server,
        )
        bad = run.error or check_output(complete, ctx.files, hashes=False)
        if bad:
            return [*lines, f"could not make a complete folder: {bad}"]
    runs = []
    for rep in range(args.reps):
        server.ctl("reset")
        run = measure(
            ours_cmd(ctx, complete),
            timeout=args.timeout,
            log_to=ctx.workdir / "logs" / f"rerun-{rep}",
            server=server,
        )
        run.stats = server.ctl("stats")
        runs.append(run)
        log(
            f"[rerun {rep + 1}/{args.reps}] ours wall {run.wall:.2f} s requests "
            f"{run.stats['requests']} body {run.stats['body_requests']}"
            + (f" ERROR {run.error}" if run.error else "")
        )
    ok = [r for r in runs if r.error is None]
    wall = median([r.wall for r in ok])
    inner = median([r.inner for r in ok if r.inner is not None])
    body = max((r.stats["body_requests"] for r in runs), default=0)
    lines += [
        "| wall s | inside download_files s | CPU s | peak RSS MB | requests | HEAD "
        "| body requests | "
        "body bytes | runs ok |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {fmt(wall)} | {fmt(inner)} | {fmt(median([r.cpu for r in ok]))} | "
        f"{fmt(median([r.rss_mb for r in ok]), '', 0)} | "
        f"{max((r.stats['requests'] for r in runs), default=0)} | "
        f"{max((r.stats['head_requests'] for r in runs), default=0)} | {body} | "
        f"{max((r.stats['body_bytes'] for r in runs), default=0)} | {len(ok)}/{len(runs)} |",
        "",
        verdict(
            len(ok) == len(runs) and body == 0 and wall < 0.5,
            f"re-run on a complete folder: no body requests ({body}), under 0.5 s ({fmt(wall)} s)",
        ),
    ]
    errors = {r.error for r in runs if r.error}
    if errors:
        lines.append(f"- errors: {'; '.join(sorted(errors))}")
    return lines


def scenario_profile(
    ctx: Ctx, server: Server, args: argparse.Namespace, skipped: dict[str, str]
) -> list[str]:
    """One run of ours, unthrottled, under py-spy (every thread, idle time included)."""
    lines = ["### profile: ours once, unthrottled, sampled by py-spy", ""]
    if "ours" in skipped:
        return [*lines, f"ours {skipped['ours']}"]
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.path.exists(spy):
        return [*lines, "not run: py-spy is not installed (pip install py-spy)"]
    server.ctl("config", rate=0)
    dest = fresh(ctx.workdir / "dest" / "profile")
    raw = ctx.workdir / "logs" / "profile.raw"
    argv = [
        spy,
        "record",
        "--rate",
        "500",
        "--idle",
        "--threads",
        "--format",
        "raw",
        "--nonblocking",
        "-o",
        str(raw),
        "--",
        *ours_cmd(ctx, dest),
    ]
    run = measure(
        argv, timeout=args.timeout, log_to=ctx.workdir / "logs" / "profile", server=server
    )
    if run.error or not raw.exists():
        return [*lines, f"py-spy failed: {run.error or 'no output'}"]
    self_time: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    threads: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        head, *rest = stack.split(";")
        frames = [head.split(": ", 1)[-1], *(_frame(f) for f in rest)]  # "thread (12): Name"
        threads[frames[0]] = threads.get(frames[0], 0) + n
        self_time[frames[-1]] = self_time.get(frames[-1], 0) + n
        for f in set(frames[1:]):
            inclusive[f] = inclusive.get(f, 0) + n
    if not total:
        return [*lines, "py-spy recorded no samples"]

    def top(d: dict[str, int], k: int, keep: Callable[[str], bool] = lambda f: True) -> list[str]:
        rows = sorted(((v, f) for f, v in d.items() if keep(f)), reverse=True)[:k]
        return [f"| {100 * v / total:5.1f}% | `{f}` |" for v, f in rows]

    lines += [
        f"{total} samples at 500 Hz over all threads (idle included), wall {run.wall:.2f} s "
        f"(slower than unprofiled). Raw stacks: `{raw}`.",
        "",
        "Threads: "
        + ", ".join(
            f"{t} {100 * v / total:.0f}%" for t, v in sorted(threads.items(), key=lambda x: -x[1])
        ),
        "",
        "| share of samples | where the samples were (leaf frame) |",
        "|---:|---|",
        *top(self_time, 15),
        "",
        "| share of samples | inclusive, kmnist functions |",
        "|---:|---|",
        *top(inclusive, 15, lambda f: "kmnist/" in f),
    ]
    return lines


def _frame(f: str) -> str:
    """ "read (socket.py:706)" -> "read (socket.py)": one line per function, not per line."""
    name, _, where = f.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python"):
        if marker in path:
            path = path.split(marker, 1)[1]
    if "/kmnist/" in path:
        path = "kmnist/" + path.split("/kmnist/", 1)[1]
    return f"{name} ({path})" if where else name


# --------------------------------------------------------------------------- main


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def version_of(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return " ".join(r.stdout.split()[:3]) if r.stdout else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def ours_connections(fallback: int = 4) -> int:
    """How many connections kmnist.download_files opens by default, so that the
    baselines get the same budget without anyone keeping two numbers in step."""
    try:
        import inspect

        from kmnist.downloader.run import Downloader

        default = inspect.signature(Downloader).parameters["connections"].default
        return int(default) if isinstance(default, int) else fallback
    except (ImportError, KeyError, ValueError, TypeError):
        return fallback


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="download_speed.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS + EXTRA_SCENARIOS,
        help="run only this scenario (repeatable; default: all but profile, "
        "which runs ours once under py-spy)",
    )
    ap.add_argument(
        "--tools",
        help="comma-separated subset of: ours, curl, curl-parallel, "
        "aria2c-budget, aria2c-verify, aria2c-fast, pooch, and minimal (a plain Python "
        "client; only when named)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: files 1/20 of the real sizes, one repetition",
    )
    ap.add_argument(
        "--reps",
        type=int,
        help=f"repetitions per tool (default {UNTHROTTLED_REPS} unthrottled, 3 elsewhere; "
        "1 with --quick)",
    )
    ap.add_argument(
        "--rate",
        type=float,
        default=20e6,
        help="per-connection cap of the capped scenario, bytes/s (default 20e6)",
    )
    ap.add_argument(
        "--budget",
        type=int,
        default=ours_connections(),
        help="our connection budget; curl --parallel and aria2c-budget use as many "
        "(default: kmnist's own default, %(default)s)",
    )
    ap.add_argument(
        "--ours-option",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="extra keyword for kmnist.download_files, e.g. connections=4",
    )
    ap.add_argument("--timeout", type=float, default=300, help="seconds per tool run (default 300)")
    ap.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "kmnist-bench",
        help="test data (kept), destinations and logs (default /tmp/kmnist-bench)",
    )
    ap.add_argument("--output", type=Path, help="also write the Markdown report here")
    args = ap.parse_args(argv)
    # Runs under a second are the noisiest: the unthrottled scenario gets more
    # of them (about 10 s per repetition for all tools, most of it pooch).
    args.unthrottled_reps = args.reps or (1 if args.quick else UNTHROTTLED_REPS)
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    return args


def main(argv: list[str] | None = None) -> int:
    global QUICK
    args = parse_args(argv)
    QUICK = args.quick
    scenarios = args.scenario or list(SCENARIOS)
    options = {}
    for item in args.ours_option:
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    args.workdir.mkdir(parents=True, exist_ok=True)
    fresh(args.workdir / "logs")
    data, files = make_data(args.workdir, args.quick)
    settle(data, files, args.workdir / "scratch.bin")
    compile_ours()
    spec = args.workdir / ("spec-quick.json" if args.quick else "spec-full.json")
    spec.write_text(json.dumps([f.__dict__ for f in files]))

    tools = make_tools(args.budget)
    if args.tools:
        names = args.tools.split(",")
        tools = [t for t in tools if t.name in names or t.name == "ours"]
    else:
        tools = [t for t in tools if not t.optional]
    skipped = {t.name: why for t in tools if (why := t.missing()) is not None}
    total = sum(f.size for f in files)
    started = time.time()
    argv_shown = argv if argv is not None else sys.argv[1:]
    report = [
        "## kmnist download speed",
        "",
        f"Command: `{shlex.join(['python', 'benchmarks/download_speed.py', *argv_shown])}`",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores; "
        f"Python {platform.python_version()}; {version_of(['curl', '--version'])}; "
        f"{version_of(['aria2c', '--version'])}. {len(files)} files, {total:,} bytes "
        f"({'quick: 1/20 of the real sizes' if args.quick else 'real names and sizes'}); "
        + (
            f"{args.unthrottled_reps} repetitions unthrottled, {args.reps} elsewhere"
            if args.unthrottled_reps != args.reps
            else f"{args.reps} repetitions"
        )
        + ", round-robin, each round in a shuffled order; medians."
        f" Connection budget {args.budget}; "
        f"cap {args.rate / 1e6:g} MB/s per connection in the capped scenario. Wall and CPU "
        f"(user+sys) and peak RSS are of the tool's process"
        + (
            " (RSS by GNU time)"
            if GNU_TIME
            else " (no GNU time: RSS includes the harness's ~35 MB)"
        )
        + "; the server runs in a process of its own.",
        "",
    ]
    for name, why in skipped.items():
        log(f"{name}: {why}")
    with Server(data) as server:
        ctx = Ctx(server.base, files, data, spec, args.budget, options, args.workdir)
        complete: Path | None = None
        for name in SCENARIOS + EXTRA_SCENARIOS:
            if name not in scenarios:
                continue
            if name in ("unthrottled", "capped"):
                rate = 0.0 if name == "unthrottled" else args.rate
                outcomes = full_set(name, rate, tools, skipped, ctx, server, args)
                floor = floor_of(name, outcomes, ctx, rate)
                title = "no cap" if not rate else f"{rate / 1e6:g} MB/s per connection"
                report += [
                    f"### {name}: full set, {title}",
                    "",
                    *table(outcomes, floor),
                    "",
                    *targets_full(name, outcomes, floor),
                    "",
                ]
            elif name == "resume":
                lines, complete = scenario_resume(ctx, server, args, skipped)
                report += [*lines, ""]
            elif name == "rerun":
                report += [*scenario_rerun(ctx, server, args, skipped, complete), ""]
            else:
                report += [*scenario_profile(ctx, server, args, skipped), ""]
    shutil.rmtree(args.workdir / "dest", ignore_errors=True)
    report.append(f"Run took {time.time() - started:.0f} s.")
    text = "\n".join(report)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
