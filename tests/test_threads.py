"""One process, many threads; forked children; the PyTorch datasets under concurrency.

What a notebook or a training script does around a download: calls in
several threads on one folder, a process forked while a thread holds a
file's lock, ranks of a DistributedDataParallel job each asking for the
dataset at once (``fork`` and ``spawn``), DataLoader workers, Ctrl-C while
workers are in flight. Every server is FaultyServer on 127.0.0.1; every
wait is bounded. Afterwards: each final file holds the served bytes, no
byte was fetched twice by one process, and no thread or lock is left.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kmnist
from kmnist.catalogue.manifest import RemoteFile
from kmnist.storage import lock as locks
from kmnist.storage.layout import lock_path

from .conftest import REALDATA, ROOT, no_part_files
from .server import FaultyServer

DEADLINE = 60.0  # seconds: only to catch a hang, never a measure of speed
SMALL = "kmnist/kmnist-test-labels.npz"
LARGE = "kmnist/kmnist-test-imgs.npz"


def data_of(path: str, size: int) -> bytes:
    return random.Random("threads:" + path).randbytes(size)


def remote(path: str, size: int) -> RemoteFile:
    return RemoteFile(path, size, sha256=hashlib.sha256(data_of(path, size)).hexdigest())


def serve(server: FaultyServer, sizes: dict[str, int]) -> list[RemoteFile]:
    for path, size in sizes.items():
        server.add(path, data_of(path, size))
    return [remote(p, n) for p, n in sizes.items()]


def lock_is_free(path: Path) -> bool:
    """Whether an exclusive flock on ``path`` can be had at once (from a file of our own)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def ours(before: set[threading.Thread]) -> list[str]:
    """Threads started since ``before`` that are the library's (not the server's)."""
    return sorted(
        t.name
        for t in set(threading.enumerate()) - before
        if t.is_alive() and "process_request" not in t.name and t.name != "kmnist-deadlines"
    )


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@contextlib.contextmanager
def ctrl_c_at_call(n: int, module_file: str) -> Iterator[list[int]]:
    """Raise KeyboardInterrupt as the ``n``-th call into C made by ``module_file`` returns.

    Where a real Ctrl-C is raised: Python runs the handler when a system
    call returns (a flock, an fstat, a close), between two lines of ours.
    Yields the count of such returns so far.
    """
    count = [0]

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "c_return" and frame.f_code.co_filename == module_file:
            count[0] += 1
            if count[0] == n:
                raise KeyboardInterrupt

    sys.setprofile(profile)
    try:
        yield count
    finally:
        sys.setprofile(None)


# --- a lock, interrupted -------------------------------------------------------------


@pytest.mark.parametrize("step", ["acquire", "release"])
def test_a_ctrl_c_while_a_lock_is_taken_or_given_up_never_leaves_it_held(
    step: str, tmp_path: Path
) -> None:
    # Every point where a Ctrl-C can land in FileLock.acquire / release, one
    # run each, until a run goes through uninterrupted. Before: a Ctrl-C just
    # after the flock (or during release) left the file open and locked, with
    # no one to close it: this process (a notebook's kernel) held the lock
    # until it ended, and every later run, its own included, waited on it.
    for n in range(1, 100):
        path = tmp_path / f"{step}-{n}.lock"
        lock = locks.FileLock(path)
        if step == "release":
            lock.acquire()
        fds = open_fds()
        interrupted = False
        try:
            with ctrl_c_at_call(n, locks.__file__):
                lock.acquire() if step == "acquire" else lock.release()
        except KeyboardInterrupt:
            interrupted = True
        if not interrupted:
            assert n > 1, "no call of the lock's was ever interrupted: the test tests nothing"
            if step == "acquire":
                assert lock.held and locks.held(path) is lock
                lock.release()
            return
        where = f"Ctrl-C at the {step}'s call #{n}"
        assert lock_is_free(path), f"{where}: the lock is still held by this process"
        assert not lock.held and locks.held(path) is None, f"{where}: the registry says held"
        assert open_fds() == fds - (step == "release"), f"{where}: a file descriptor leaked"
        lock.acquire()  # and it can be taken again
        lock.release()
    pytest.fail("the lock's calls never ran uninterrupted")


# --- forks ---------------------------------------------------------------------------

# A process that downloads in a thread, forks a child while the thread holds
# the file's lock (as a DataLoader or a process pool forks its workers), says
# the child's pid and waits to be killed. The child lives on, reporting what
# it inherited, until its standard input closes (bounded).
FORKER = """
import json, os, select, sys, threading, time
import kmnist
from kmnist.storage import lock as locks
file = kmnist.RemoteFile(*json.loads(sys.argv[1]))
root, url, lockfile = sys.argv[2], sys.argv[3], sys.argv[4]
threading.Thread(
    target=kmnist.download_files, args=([file], root), kwargs={"mirrors": [url], "progress": False},
    daemon=True,
).start()
for _ in range(3000):
    if locks.held(lockfile) is not None:
        break
    time.sleep(0.01)
pid = os.fork()
if pid == 0:
    held = locks.held(lockfile)
    print(json.dumps({"child": os.getpid(), "held": held is not None}), flush=True)
    select.select([sys.stdin], [], [], 60)
    os._exit(0)
time.sleep(60)
"""


def test_a_forked_child_does_not_keep_its_parents_lock_after_the_parent_dies(
    server: FaultyServer, tmp_path: Path
) -> None:
    [file] = serve(server, {SMALL: 50_000})
    server.fault(SMALL, "gate")  # the parent's request waits: its thread holds the lock
    root = tmp_path / "data"
    lockfile = lock_path(root / SMALL)
    spec = json.dumps([file.path, file.size, file.sha256])
    parent = subprocess.Popen(
        [sys.executable, "-c", FORKER, spec, str(root), server.url, str(lockfile)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    child = 0
    try:
        assert parent.stdout is not None
        said = json.loads(parent.stdout.readline())
        child = said["child"]
        for _ in range(int(DEADLINE / 0.01)):  # the parent's request has taken the gate
            if server.gets(SMALL):
                break
            time.sleep(0.01)
        parent.kill()  # killed while its thread held the lock (SIGKILL: no clean-up)
        parent.wait(DEADLINE)
        # Before: the lock stayed held by the child (the same open file), for as
        # long as the child lived: the next run said "waiting for another process
        # that is fetching it" and waited for a process that fetched nothing.
        assert lock_is_free(lockfile)
        # The child has no thread that fetches: it holds nothing, and says so.
        assert said["held"] is False
        before = set(threading.enumerate())
        [path] = kmnist.download_files([file], root, mirrors=[server.url], progress=False)
        assert path.read_bytes() == data_of(SMALL, 50_000)
        assert ours(before) == [] and locks.held(lockfile) is None
    finally:
        server.gate.set()
        if parent.stdin is not None:
            parent.stdin.close()  # the child ends when it sees this
        parent.kill()
        parent.wait(DEADLINE)
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)


def _fork_and_wait(work: Any) -> int:
    """Fork; the child runs ``work`` and exits 0 (1 on an error); the parent waits, bounded."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's
        code = 1
        try:
            work()
            code = 0
        finally:
            os._exit(code)
    for _ in range(int(DEADLINE / 0.05)):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1  # a hang


def test_a_fork_while_another_thread_takes_or_gives_up_a_lock_does_not_hang_the_child(
    tmp_path: Path,
) -> None:
    # The moment of the fork is another thread's inside the lock registry (it
    # takes or releases a lock: a download's worker). Before: the child
    # inherited the registry's guard locked, with no thread to release it,
    # and its first lock of any file waited for ever.
    inside, leave = threading.Event(), threading.Event()

    def another_thread() -> None:
        with locks._held_guard:
            inside.set()
            leave.wait(DEADLINE)

    t = threading.Thread(target=another_thread)
    t.start()
    try:
        assert inside.wait(DEADLINE)

        def take_a_lock() -> None:
            with locks.FileLock(tmp_path / "other.lock"):
                pass

        assert _fork_and_wait(take_a_lock) == 0  # -1: hung
    finally:
        leave.set()
        t.join(DEADLINE)


def test_a_forked_child_that_ends_a_lock_block_leaves_the_parents_lock_held(
    tmp_path: Path,
) -> None:
    # A process that forks inside ``with FileLock(...)``: the child, leaving
    # the block, must not unlock the open file it shares with the parent.
    # Before: its release unlocked it, under the parent, which went on
    # writing with another process free to take the same lock.
    path = tmp_path / "x.lock"
    lock = locks.FileLock(path)
    lock.acquire()
    try:

        def leave_the_block() -> None:
            lock.release()

        assert _fork_and_wait(leave_the_block) == 0
        assert not lock_is_free(path), "the child's release unlocked the parent's lock"
    finally:
        lock.release()
    assert lock_is_free(path)


def test_a_child_forked_while_a_thread_fetches_a_file_waits_for_it_then_finds_it(
    server: FaultyServer, tmp_path: Path
) -> None:
    # The child's own download of the same file waits for the parent's
    # thread and fetches nothing (so it did before), and the child's registry
    # of held locks is empty (it named the parent's lock, held by a thread
    # the child does not have).
    [file] = serve(server, {SMALL: 40_000})
    server.fault(SMALL, "gate")
    root = tmp_path / "data"
    lockfile = lock_path(root / SMALL)
    got: list[Any] = []
    t = threading.Thread(
        target=lambda: got.append(
            kmnist.download_files([file], root, mirrors=[server.url], progress=False)
        )
    )
    t.start()
    try:
        for _ in range(int(DEADLINE / 0.01)):
            if locks.held(lockfile) is not None:
                break
            time.sleep(0.01)
        r, w = os.pipe()

        def child_download() -> None:
            # No thread of the child fetches: nothing is held here.
            assert locks.held(lockfile) is None
            kmnist.download_files([file], root, mirrors=[server.url], progress=False)
            os.write(w, (root / SMALL).read_bytes()[:16])

        opener = threading.Timer(0.5, server.gate.set)  # the parent's request goes on
        opener.start()
        assert _fork_and_wait(child_download) == 0
        opener.join(DEADLINE)
        assert os.read(r, 16) == data_of(SMALL, 40_000)[:16]
        os.close(r)
        os.close(w)
    finally:
        server.gate.set()
        t.join(DEADLINE)
    assert got and (root / SMALL).read_bytes() == data_of(SMALL, 40_000)
    assert len(server.gets(SMALL)) == 1  # the child asked for nothing


# --- threads of one process ------------------------------------------------------


@pytest.mark.parametrize(
    "asked",
    [
        pytest.param([[SMALL, LARGE]] * 3, id="the same files"),
        pytest.param([[SMALL, LARGE], [LARGE], [SMALL, "k49/k49-test-labels.npz"]], id="overlap"),
    ],
)
def test_downloads_in_threads_on_one_folder_fetch_each_file_once(
    server: FaultyServer, tmp_path: Path, asked: list[list[str]]
) -> None:
    # Guard (passed before): a notebook's ThreadPoolExecutor of downloads.
    sizes = {SMALL: 30_000, LARGE: 1_500_000, "k49/k49-test-labels.npz": 20_000}
    files = {f.path: f for f in serve(server, sizes)}
    for path in sizes:
        server.always(path, "rate:3000000")  # slow enough for the calls to overlap
    root = tmp_path / "data"
    before = set(threading.enumerate())
    with concurrent.futures.ThreadPoolExecutor(len(asked)) as pool:
        calls = [
            pool.submit(
                kmnist.download_files,
                [files[p] for p in paths],
                root,
                mirrors=[server.url],
                progress=False,
            )
            for paths in asked
        ]
        results = [c.result(DEADLINE) for c in calls]
    assert [[p.relative_to(root).as_posix() for p in r] for r in results] == asked
    for path, size in sizes.items():
        if any(path in paths for paths in asked):
            assert (root / path).read_bytes() == data_of(path, size)
    assert server.body_bytes == sum(
        n for p, n in sizes.items() if any(p in paths for paths in asked)
    )
    assert no_part_files(root) == [] and ours(before) == [] and locks._held == {}


def test_a_reader_in_one_thread_never_sees_a_half_written_file(
    server: FaultyServer, tmp_path: Path
) -> None:
    # Guard (passed before): kmnist.load in a loop while another thread
    # fetches the same files again (force: each final name replaced under it).
    if not (REALDATA / "kmnist").is_dir():
        pytest.skip(f"real published files not found at {REALDATA}")
    names = (LARGE, SMALL, "kmnist/kmnist_classmap.csv")
    for rel in names:
        server.add(rel, (REALDATA / rel).read_bytes())
        server.always(rel, "rate:6000000")
    root = tmp_path / "data"
    kmnist.download("kmnist", split="test", root=root, mirrors=[server.url], progress=False)
    x0, y0 = kmnist.load("kmnist", "test", root=root)
    stop = threading.Event()
    errors: list[BaseException] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set() and reads[0] < 200:
            try:
                x, y = kmnist.load("kmnist", "test", root=root)
            except BaseException as exc:
                errors.append(exc)
                return
            assert (x == x0).all() and (y == y0).all()
            reads[0] += 1

    t = threading.Thread(target=reader)
    t.start()
    try:
        for _ in range(2):
            kmnist.download(
                "kmnist", split="test", root=root, mirrors=[server.url], progress=False, force=True
            )
    finally:
        stop.set()
        t.join(DEADLINE)
    assert errors == [] and reads[0] > 0
    for rel in names:
        assert (root / rel).read_bytes() == (REALDATA / rel).read_bytes()


# --- Ctrl-C while the workers are in flight ------------------------------------------


def test_a_ctrl_c_while_the_workers_are_started_stops_them(
    server: FaultyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C lands in the main thread while it starts the run's workers
    # (ThreadPoolExecutor.submit: the first worker already fetching). Before:
    # the pool's `with` waited for every worker to finish its file, not
    # stopped: Ctrl-C was honoured only when the whole download had ended.
    files = serve(server, {LARGE: 200_000, SMALL: 30_000})
    server.fault(LARGE, "gate")
    real_submit = concurrent.futures.ThreadPoolExecutor.submit
    submitted = [0]

    def submit(self: Any, *args: Any, **kwargs: Any) -> Any:
        future = real_submit(self, *args, **kwargs)
        submitted[0] += 1
        if submitted[0] == 2:
            for _ in range(int(DEADLINE / 0.01)):  # the first worker's request is waiting
                if server.gets(LARGE):
                    break
                time.sleep(0.01)
            raise KeyboardInterrupt
        return future

    monkeypatch.setattr(concurrent.futures.ThreadPoolExecutor, "submit", submit)
    # Only to end a hang: a stopped worker's request is never answered.
    opener = threading.Timer(10, server.gate.set)
    opener.start()
    root = tmp_path / "data"
    before = set(threading.enumerate())
    try:
        with pytest.raises(KeyboardInterrupt):
            kmnist.download_files(files, root, mirrors=[server.url], progress=False, jobs=2)
    finally:
        opener.cancel()
        server.gate.set()
    assert not (root / LARGE).exists(), "the worker was not stopped: it fetched the file"
    assert ours(before) == [] and locks._held == {}


# A download with a Ctrl-C (SIGINT, Python's own handler: a library call,
# not the command) sent at a seeded moment; prints what was left.
INTERRUPTED = """
import json, os, signal, sys, threading, time
import kmnist
from kmnist.storage import lock as locks
files = [kmnist.RemoteFile(*f) for f in json.loads(sys.argv[1])]
root, url, delay = sys.argv[2], sys.argv[3], float(sys.argv[4])
before = set(threading.enumerate())
threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    kmnist.download_files(files, root, mirrors=[url], progress=False)
    ended = "done"
    time.sleep(5)  # the Ctrl-C comes after the call
except KeyboardInterrupt:
    ended = "interrupted"
left = sorted(t.name for t in set(threading.enumerate()) - before
              if t.is_alive() and t.name != "kmnist-deadlines" and not t.name.startswith("Timer"))
print(json.dumps({"ended": ended, "threads": left, "held": sorted(locks._held)}))
"""


@pytest.mark.parametrize("seed", range(2))
def test_a_ctrl_c_at_any_moment_of_a_call_leaves_no_thread_lock_or_wrong_file(
    server: FaultyServer, tmp_path: Path, seed: int
) -> None:
    # Guard (passed before, except where the xfail above lands): the call
    # raises KeyboardInterrupt (or has ended), no thread of it runs on, no
    # lock is held, and a final file holds the served bytes.
    sizes = {LARGE: 1_200_000, SMALL: 30_000, "k49/k49-test-labels.npz": 20_000}
    files = serve(server, sizes)
    for path in sizes:
        server.always(path, "rate:4000000")
    delay = random.Random(seed).uniform(0.15, 0.4)
    root = tmp_path / "data"
    spec = json.dumps([[f.path, f.size, f.sha256] for f in files])
    out = subprocess.run(
        [sys.executable, "-c", INTERRUPTED, spec, str(root), server.url, str(delay)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    said = json.loads(out.stdout)
    assert said["threads"] == [] and said["held"] == [], said
    for path, size in sizes.items():
        if (root / path).exists():
            assert (root / path).read_bytes() == data_of(path, size)


# --- the PyTorch datasets -------------------------------------------------------


def _rank(root: str, url: str, queue: Any) -> None:
    try:
        from kmnist.datasets import KMNIST

        ds = KMNIST(root, train=False, download=True, mirrors=[url], progress=False)
        queue.put(("ok", len(ds)))
    except BaseException as exc:  # reported to the test, in words
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


@pytest.mark.torch
@pytest.mark.realdata
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_ranks_that_each_ask_for_kmnist_at_once_fetch_it_once(
    server: FaultyServer, tmp_path: Path, method: str
) -> None:
    # Guard (passed before): DistributedDataParallel's pattern, every rank
    # KMNIST(root, download=True) at once.
    if not (REALDATA / "kmnist").is_dir():
        pytest.skip(f"real published files not found at {REALDATA}")
    names = (LARGE, SMALL, "kmnist/kmnist_classmap.csv")
    for rel in names:
        server.add(rel, (REALDATA / rel).read_bytes())
        server.always(rel, "rate:4000000")
    root = tmp_path / "data"
    ctx = multiprocessing.get_context(method)
    queue = ctx.Queue()
    ranks = [ctx.Process(target=_rank, args=(str(root), server.url, queue)) for _ in range(3)]
    for p in ranks:
        p.start()
    try:
        said = [queue.get(timeout=DEADLINE) for _ in ranks]
    finally:
        for p in ranks:
            p.join(DEADLINE)
            if p.is_alive():
                p.kill()
    assert said == [("ok", 10000)] * 3
    assert [p.exitcode for p in ranks] == [0] * 3
    for rel in names:
        assert (root / rel).read_bytes() == (REALDATA / rel).read_bytes()
    # One rank fetched them: no request made twice. (Not body_bytes: a large
    # file's first piece asks for the rest too, and what the server had sent
    # past the next piece's start when it was closed is counted there.)
    asked = [(r.path, r.range) for r in server.requests]
    assert len(asked) == len(set(asked)) and len(server.gets(SMALL)) == 1, asked
    assert no_part_files(root) == []


@pytest.mark.torch
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_dataloader_with_workers_reads_every_kanji_image(tmp_path: Path, method: str) -> None:
    # Guard (passed before): workers each open PNGs of the split.
    from torch.utils.data import DataLoader

    from kmnist.datasets import KuzushijiKanji

    from .test_datasets import write_kanji

    values = write_kanji(tmp_path, {"U+4E00": 7, "U+4E8C": 6})
    ds = KuzushijiKanji(tmp_path, train=True, transform=first_pixel)
    loader = DataLoader(ds, batch_size=3, num_workers=2, multiprocessing_context=method)
    seen = [int(v) for images, _ in loader for v in images]
    assert seen == [values[f"{p.parent.name}/{p.name}"] for p, _ in ds.samples]


def first_pixel(image: Any) -> int:
    """A transform a spawned worker can unpickle (a lambda cannot be)."""
    return int(image.getpixel((0, 0)))
