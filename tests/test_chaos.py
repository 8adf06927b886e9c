"""Many processes on one data folder, some of them killed, stopped or robbed of their lock.

Every process here is the command (``kmnist.cli.download.main``) in a real
subprocess, fetching from the in-process FaultyServer a catalogue of
seeded random files (so that sizes and stalls can be chosen freely); each
is sent SIGKILL, SIGTERM, SIGINT or SIGSTOP at moments chosen from what the
server has sent. Afterwards: no process hangs, each says at most one line
per problem with exit 0, 1, 130 or 143, no final file is corrupt, and a
plain rerun completes, fetching only the bytes that were not yet recorded.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kmnist.downloader.filejob import MARK_STEP
from kmnist.storage.layout import lock_path, part_path
from kmnist.storage.partfile import PartFile, state_path

from .conftest import ROOT
from .server import FaultyServer

# The command with a catalogue of seeded files: `python -c DRIVER <spec> argv...`,
# where spec is JSON {path: [size, kind]}. Self-contained (no import of this
# test module, hypothesis or pytest), so a process starts in a few tenths of
# a second; signals are held until main() answers them, as the console
# script holds them.
DRIVER = """
import sys
from kmnist.signals import block_early
block_early()
import hashlib, json, random
from kmnist.catalogue.manifest import Entry, RemoteFile
from kmnist.cli.download import main
spec = json.loads(sys.argv[1])
entries = []
for path, (size, kind) in spec.items():
    data = random.Random("chaos:" + path).randbytes(size)
    f = RemoteFile(path, size, sha256=hashlib.sha256(data).hexdigest())
    entries.append(Entry(f, "kmnist", "2019", "npz", "test", kind))
sys.exit(main(sys.argv[2:], catalogue=tuple(entries)))
"""

IMAGES = "kmnist/kmnist-test-imgs.npz"
LABELS = "kmnist/kmnist-test-labels.npz"
# Exit statuses a process may end with: done, failed, Ctrl-C, SIGTERM; and
# killed by SIGKILL (what Popen reports for it).
EXITS = {0, 1, 130, 143, -signal.SIGKILL}
DEADLINE = 60.0  # seconds: only to catch a hang, never a measure of speed


def data_of(path: str, size: int) -> bytes:
    return random.Random("chaos:" + path).randbytes(size)


class Fleet:
    """The server, the folder and the processes of one scenario."""

    def __init__(self, server: FaultyServer, root: Path, spec: dict[str, int]) -> None:
        self.server = server
        self.root = root
        self.spec = spec
        self.procs: list[subprocess.Popen[str]] = []
        for path, size in spec.items():
            server.add(path, data_of(path, size))

    def argv(self, *extra: str, root: Path | None = None, url: str | None = None) -> list[str]:
        spec = json.dumps(
            {p: [n, "images" if "imgs" in p else "labels"] for p, n in self.spec.items()}
        )
        return [
            sys.executable, "-c", DRIVER, spec,
            "-d", "kmnist", "-f", "npz", "-s", "test",
            "--dir", str(self.root if root is None else root),
            "-m", url or self.server.url, *extra,
        ]  # fmt: skip

    def start(self, *extra: str, root: Path | None = None) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            self.argv(*extra, root=root),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.procs.append(p)
        return p

    def finish(self) -> list[tuple[int, str]]:
        """Each process's exit status and stderr; a process still running at the deadline is a hang."""
        out = []
        for p in self.procs:
            try:
                _, err = p.communicate(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
                pytest.fail(f"HANG: a process did not end within {DEADLINE} s: {err}")
            out.append((p.returncode, getattr(p, "_peeked", "") + err))
        return out

    def kill_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.communicate()

    def rerun(self, fresh: FaultyServer) -> subprocess.CompletedProcess[str]:
        """The same command once more, against a server without faults."""
        for path, size in self.spec.items():
            fresh.add(path, data_of(path, size))
        return subprocess.run(
            self.argv(url=fresh.url), capture_output=True, text=True, cwd=ROOT, timeout=DEADLINE
        )

    def recorded(self, path: str) -> int:
        """Bytes of ``path`` a resume may keep: what its .part (and its record) vouch for."""
        target = self.root / path
        if target.exists():
            return self.spec[path]
        return PartFile.load(target, self.spec[path], tidy=False).have

    def check_final_files(self) -> None:
        for path, size in self.spec.items():
            target = self.root / path
            if target.exists():
                assert target.read_bytes() == data_of(path, size), f"CORRUPT FINAL {path}"

    def leftovers(self) -> list[str]:
        """Anything in the folder but final files, locks and stamps."""
        finals = {self.root / p for p in self.spec}
        return sorted(
            str(f.relative_to(self.root))
            for f in self.root.rglob("*")
            if f.is_file() and f not in finals and f.suffix not in (".lock", ".verified")
        )


def wait_for(condition: object, what: str, deadline: float = 20.0) -> bool:
    """Poll ``condition()`` until true or ``deadline`` seconds pass; False then."""
    assert callable(condition)
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return False


def record_have(target: Path) -> int:
    """Bytes the range record beside ``target``'s .part vouches for (0 without one)."""
    try:
        return sum(e - s for s, e in json.loads(state_path(target).read_text())["done"])
    except (OSError, ValueError, KeyError):
        return 0


def one_line_each(results: list[tuple[int, str]]) -> None:
    for status, err in results:
        assert status in EXITS, (status, err)
        assert "Traceback" not in err, err
        errors = [line for line in err.splitlines() if "error:" in line or "stopped" in line]
        assert len(errors) <= 2, err  # the error and, at most, its hint


# -- the range record when a process is killed ----------------------------------


def test_bytes_that_arrived_before_a_stall_are_recorded_before_a_kill(
    server: FaultyServer, tmp_path: Path
) -> None:
    """A burst, then silence: the record said nothing of the burst until the
    range ended (30 s later, at the read timeout); SIGKILL then lost all of it."""
    size = 24 << 20
    fleet = Fleet(server, tmp_path, {IMAGES: size})
    server.fault(IMAGES, "stall:3000000")  # the first piece: 3 MB, then silence
    target = tmp_path / IMAGES
    p = fleet.start("--timeout", "60")
    try:
        arrived = wait_for(lambda: server.body_bytes >= 3000000, "the burst")
        assert arrived, fleet.procs[0].stderr
        wait_for(lambda: record_have(target) >= 3000000 - MARK_STEP, "the record")
    finally:
        p.send_signal(signal.SIGKILL)
        fleet.kill_all()
    have = fleet.recorded(IMAGES)
    assert have >= 3000000 - MARK_STEP  # all but the last chunk, not yet counted
    fresh = FaultyServer().start()
    try:
        r = fleet.rerun(fresh)
        assert r.returncode == 0, r.stderr
        assert fresh.body_bytes == size - have
    finally:
        fresh.stop()
    fleet.check_final_files()
    assert fleet.leftovers() == []


def test_a_prefix_resumed_on_several_connections_then_killed_is_not_fetched_again(
    server: FaultyServer, tmp_path: Path
) -> None:
    """A .part left by a run on one connection, resumed on several, SIGKILLed
    before any range ended: no record was written (the .part already had its
    size in the record's eyes), so the next run took the holes for bytes,
    failed the hash and fetched the whole file again, saying that "the bytes
    kept from an earlier try did not verify"."""
    size = 24 << 20
    prefix = 3 << 20
    fleet = Fleet(server, tmp_path, {IMAGES: size})
    target = tmp_path / IMAGES
    target.parent.mkdir(parents=True)
    part_path(target).write_bytes(data_of(IMAGES, size)[:prefix])
    # Each connection gets 400 KB of its range, then silence: slow enough
    # that more connections are opened, each leaving a hole behind its bytes.
    server.always(IMAGES, "stall:400000")
    p = fleet.start("--connections", "8", "--timeout", "60")
    try:
        wait_for(lambda: server.body_bytes >= 3 * 400000, "three pieces")
        wait_for(lambda: record_have(target) >= prefix + 3 * (400000 - MARK_STEP), "record")
    finally:
        p.send_signal(signal.SIGKILL)
        fleet.kill_all()
    have = fleet.recorded(IMAGES)
    assert have >= prefix + 3 * (400000 - MARK_STEP)
    fresh = FaultyServer().start()
    try:
        r = fleet.rerun(fresh)
        assert r.returncode == 0, r.stderr
        assert "did not verify" not in r.stderr + r.stdout
        assert fresh.body_bytes == size - have
    finally:
        fresh.stop()
    fleet.check_final_files()
    assert fleet.leftovers() == []


# -- a lock file removed while it is held -------------------------------------------


@pytest.mark.parametrize("connections", ["1", "8"], ids=["one-stream", "ranges"])
def test_a_lock_file_removed_while_held_never_gives_a_corrupt_file(
    server: FaultyServer, tmp_path: Path, connections: str
) -> None:
    """``rm data/kmnist/.kmnist/*.lock`` (or of the whole ``.kmnist/``) while a
    run fetches: a second run took a new lock at the same name, and both
    wrote the same .part. The first one's hash was of its own stream, so it
    promoted (and stamped) a .part that held the other's bytes as well: a
    corrupt final file, verified."""
    size = 2 << 20
    fleet = Fleet(server, tmp_path, {IMAGES: size})
    server.always(IMAGES, "rate:700000")
    first = fleet.start("--connections", connections)
    assert wait_for(lambda: server.body_bytes >= 500000, "the first bytes")
    lock_path(tmp_path / IMAGES).unlink()
    fleet.start("--connections", connections)
    results = fleet.finish()
    one_line_each(results)
    fleet.check_final_files()
    assert any(status == 0 for status, _ in results), results
    assert first.returncode in (0, 1)
    fresh = FaultyServer().start()
    try:
        r = fleet.rerun(fresh)
        assert r.returncode == 0, r.stderr
    finally:
        fresh.stop()
    fleet.check_final_files()
    assert fleet.leftovers() == []


def test_a_lock_file_removed_while_another_process_waits_on_it_is_taken_anew(
    server: FaultyServer, tmp_path: Path
) -> None:
    """A holds the lock, B waits on it, the lock file is removed, C takes a new
    one and fetches. When A let go, B held the removed file's lock, which
    excluded nobody: B wrote the .part beside C. B now takes the lock at the
    name again, waits for C, and finds the file verified."""
    size = 3 << 20
    fleet = Fleet(server, tmp_path, {IMAGES: size})
    server.always(IMAGES, "rate:400000")
    target = tmp_path / IMAGES
    first = fleet.start("--connections", "1")
    assert wait_for(lambda: server.body_bytes >= 300000, "the first bytes")
    waiter = fleet.start("--connections", "1")
    assert wait_for(lambda: "waiting for another process" in _peek(waiter), "the waiter", 30)
    lock_path(target).unlink()
    third = fleet.start("--connections", "1")
    results = fleet.finish()
    one_line_each(results)
    fleet.check_final_files()
    assert first.returncode == 1 and "was removed or replaced" in results[0][1], results[0]
    assert waiter.returncode == 0, results[1]
    assert third.returncode == 0, results[2]
    assert target.read_bytes() == data_of(IMAGES, size)
    assert fleet.leftovers() == []


def test_a_socket_at_the_lock_is_refused_in_words(server: FaultyServer, tmp_path: Path) -> None:
    """It said `No such device or address` (the errno of opening a socket),
    naming nothing to do; a FIFO or a folder there was already refused in words."""
    import socket

    fleet = Fleet(server, tmp_path, {IMAGES: 100_000})
    lock = lock_path(tmp_path / IMAGES)
    lock.parent.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX) as planted:
        planted.bind(str(lock))
        fleet.start()
        [(status, err)] = fleet.finish()
    assert status == 1, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "this lock file is not a regular file" in err and "remove it" in err, err
    assert "No such device" not in err
    assert not (tmp_path / IMAGES).exists()


def test_a_wait_for_another_process_is_said_with_no_progress(
    server: FaultyServer, tmp_path: Path
) -> None:
    """`--no-progress` (a job array's log) drops the bars; the help says the plan,
    the summary and errors are still printed. A run waiting for another
    process's lock said nothing at all, for as long as the other held it:
    a silent hang to whoever reads the log."""
    fleet = Fleet(server, tmp_path, {IMAGES: 1 << 20})
    server.always(IMAGES, "rate:300000")
    holder = fleet.start("--connections", "1")
    try:
        assert wait_for(lambda: server.body_bytes >= 100000, "the holder's first bytes")
        holder.send_signal(signal.SIGSTOP)
        waiter = fleet.start("--no-progress")
        said = wait_for(lambda: "waiting for another process" in _peek(waiter), "the notice", 5)
        waiter.send_signal(signal.SIGTERM)
        waiter.wait(timeout=DEADLINE)
    finally:
        holder.send_signal(signal.SIGCONT)
    fleet.finish()
    assert said, _peek(waiter)


# -- guard tests: these passed before the faults above were fixed ---------------------


def test_a_stopped_process_holding_the_lock_is_waited_for_in_words(
    server: FaultyServer, tmp_path: Path
) -> None:
    """Guard. SIGSTOP on the process that holds a file's lock (a job
    suspended by its scheduler): the others say that they wait for another
    process, SIGTERM and Ctrl-C end them in one line, and once the stopped
    one goes on it finishes the file."""
    size = 2 << 20
    fleet = Fleet(server, tmp_path, {IMAGES: size})
    server.always(IMAGES, "rate:300000")
    holder = fleet.start("--connections", "1")
    assert wait_for(lambda: server.body_bytes >= 200000, "the holder's first bytes")
    holder.send_signal(signal.SIGSTOP)
    try:
        waiters = [fleet.start("--connections", "1") for _ in range(2)]
        logs: list[str] = []

        def both_said_so() -> bool:
            # stderr is a pipe: read what each has said so far without waiting.
            logs[:] = [_peek(w) for w in waiters]
            return all("waiting for another process that is fetching it" in x for x in logs)

        said = wait_for(both_said_so, "the waiters' notice", deadline=30)
        waiters[0].send_signal(signal.SIGTERM)
        waiters[1].send_signal(signal.SIGINT)
        ends = [w.wait(timeout=DEADLINE) for w in waiters]
    finally:
        holder.send_signal(signal.SIGCONT)
    results = fleet.finish()
    assert said, logs
    assert ends == [143, 130], results
    for _, err in results[1:]:
        closing = [line for line in err.splitlines() if "waiting for" not in line]
        assert len(closing) == 1 and "Traceback" not in err, err
    assert holder.returncode == 0, results[0]
    fleet.check_final_files()
    assert (tmp_path / IMAGES).exists()
    assert fleet.leftovers() == []


def _peek(p: subprocess.Popen[str]) -> str:
    """What ``p`` has written to its stderr pipe so far (kept for later readers)."""
    import fcntl

    assert p.stderr is not None
    fd = p.stderr.fileno()
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    try:
        chunk = os.read(fd, 1 << 16)
    except BlockingIOError:
        chunk = b""
    finally:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)
    seen = getattr(p, "_peeked", "") + chunk.decode(errors="replace")
    p._peeked = seen  # type: ignore[attr-defined]
    return seen


def test_one_folder_by_three_spellings_is_fetched_once(
    server: FaultyServer, tmp_path: Path
) -> None:
    """Guard. `--dir data`, `--dir link-to-data` and `--dir data/kmnist --flat`
    name the same files: one lock each, so the file is fetched once."""
    size = 3 << 20
    data = tmp_path / "data"
    data.mkdir()
    link = tmp_path / "link"
    link.symlink_to(data)
    fleet = Fleet(server, data, {IMAGES: size, LABELS: 50_000})
    server.always(IMAGES, "delay:0.3")  # so that the runs overlap
    server.always(LABELS, "delay:0.3")
    fleet.start()
    fleet.start(root=link)
    fleet.start("--flat", root=data / "kmnist")
    results = fleet.finish()
    assert [s for s, _ in results] == [0, 0, 0], results
    one_line_each(results)
    fleet.check_final_files()
    assert server.body_bytes == size + 50_000
    assert fleet.leftovers() == []


def test_a_part_from_the_future_is_resumed(server: FaultyServer, tmp_path: Path) -> None:
    """Guard. A .part (and its range record) whose mtime is a year ahead (a
    clock set wrong on another machine of a shared folder): resumed, not
    refetched, and no stamp vouches for a file written since."""
    size = 4 << 20
    fleet = Fleet(server, tmp_path, {IMAGES: size})
    target = tmp_path / IMAGES
    target.parent.mkdir(parents=True)
    part_path(target).write_bytes(data_of(IMAGES, size)[: 1 << 20])
    ahead = time.time() + 365 * 86400
    os.utime(part_path(target), (ahead, ahead))
    fleet.start()
    [(status, err)] = fleet.finish()
    assert status == 0, err
    assert server.body_bytes == size - (1 << 20)
    fleet.check_final_files()
    assert fleet.leftovers() == []


# -- many processes, signals at random moments ------------------------------------

SCENARIOS = 6
SEED = int(os.environ.get("KMNIST_CHAOS_SEED", "20261206"))
SIGNALS = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGSTOP]


@pytest.mark.parametrize("scenario", range(SCENARIOS))
def test_processes_killed_at_random_moments(
    server: FaultyServer, tmp_path: Path, scenario: int
) -> None:
    """2-5 processes on one folder; 1-4 signals at moments drawn from a seeded
    random.Random (the seed is in every failure message: KMNIST_CHAOS_SEED
    replays it). A stopped process is continued, or killed once the others
    end or wait for it. Then a plain rerun completes, fetching exactly what
    no .part vouched for."""
    seed = SEED + scenario
    rng = random.Random(seed)
    why = f"seed {seed} (KMNIST_CHAOS_SEED={SEED}, scenario {scenario})"
    spec = {IMAGES: rng.choice([3, 4, 5]) << 20, LABELS: rng.randrange(50_000, 400_000)}
    fleet = Fleet(server, tmp_path, spec)
    server.always(IMAGES, f"rate:{rng.choice([1_000_000, 2_000_000, 4_000_000])}")
    if rng.random() < 0.5:
        server.fault(IMAGES, "cut:700000")  # a first connection cut short
    for _ in range(rng.randint(2, 5)):
        fleet.start("--connections", rng.choice(["1", "4", "8"]), "-j", rng.choice(["1", "4"]))
        time.sleep(rng.uniform(0, 0.5))
    stopped: set[int] = set()
    began = time.monotonic()
    for _ in range(rng.randint(1, 4)):
        at = rng.uniform(0.2, 3.0)
        time.sleep(max(0.0, began + at - time.monotonic()))
        i = rng.randrange(len(fleet.procs))
        sig = rng.choice(SIGNALS)
        if fleet.procs[i].poll() is None:
            fleet.procs[i].send_signal(sig)
            if sig == signal.SIGSTOP:
                stopped.add(i)
    resume = rng.random() < 0.5
    try:
        if resume:
            for i in stopped:
                fleet.procs[i].send_signal(signal.SIGCONT)
        else:
            # The others end, or wait for a lock a stopped one holds: then
            # they are ended as a user would, with SIGTERM.
            others = [p for i, p in enumerate(fleet.procs) if i not in stopped]
            wait_for(lambda: all(p.poll() is not None for p in others), "the others", 15)
            for p in others:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in others:
                p.wait(timeout=DEADLINE)
            for i in stopped:
                fleet.procs[i].send_signal(signal.SIGKILL)
                fleet.procs[i].send_signal(signal.SIGCONT)
        results = fleet.finish()
    finally:
        fleet.kill_all()
    for status, err in results:
        assert status in EXITS, (why, status, err)
        assert "Traceback" not in err, (why, err)
        closing = [line for line in err.splitlines() if ": error:" in line or "stopped by" in line]
        assert len(closing) <= 2, (why, err)
    fleet.check_final_files()
    server.stop()
    recorded = {path: fleet.recorded(path) for path in spec}
    fresh = FaultyServer().start()
    try:
        r = fleet.rerun(fresh)
        assert r.returncode == 0, (why, r.stderr)
        assert "did not verify" not in r.stdout + r.stderr, (why, r.stdout)
        assert fresh.body_bytes == sum(spec[p] - recorded[p] for p in spec), (why, recorded)
    finally:
        fresh.stop()
    fleet.check_final_files()
    assert all((tmp_path / p).exists() for p in spec), why
    assert fleet.leftovers() == [], why
