"""An exclusive lock on a file, shared by every process (and thread) on the machine.

Why not the ``filelock`` package: it did the job, but its import grew to
40 ms (4.x) and 100 ms (3.32, which pulls in asyncio and sqlite3) on the
machine the benchmark runs on; a whole download of the full set takes 0.8 s.
What kmnist needs is one blocking exclusive lock, which the operating system
gives directly: ``flock`` on POSIX (also what filelock uses there), a byte
lock with ``msvcrt.locking`` on Windows.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Callable

from .safeopen import open_fd

# How often a waiting process looks again. A waiter polls rather than blocks
# in the kernel so that Ctrl-C (and a cancelled run) can stop it.
POLL = 0.05
# A wait longer than this is announced (``waiting``): a run that waits for
# another process must not look like a hang.
WAIT_NOTICE = 1.0
# How many times a lock whose file was removed or replaced under us is taken
# again at its name before giving up: once is the rule (``rm`` of a lock file
# as we took it); a name replaced on every try is someone at work against us.
RETAKE = 50

# The locks this process holds, by absolute path: a writer asks whether the
# lock of the file it writes is still the file at its name (see ``lost``).
# Process-wide because a lock is: flock belongs to an open file, and every
# thread of a run that writes a .part holds it through the run's one lock.
_held: dict[str, FileLock] = {}
_held_guard = threading.Lock()


def held(path: str | Path) -> FileLock | None:
    """The lock this process holds at ``path``, if any."""
    with _held_guard:
        return _held.get(os.path.abspath(path))


class FileLock:
    """``with FileLock(path):`` holds an exclusive lock on ``path`` (created if missing).

    Locks are per open file, not per process: two threads of one process
    exclude each other as two processes do. ``cancelled`` is asked while
    waiting; when it returns true, the wait ends with ``InterruptedError``.
    """

    def __init__(self, path: str | Path, cancelled: Callable[[], bool] | None = None) -> None:
        self.path = Path(path)
        self._cancelled = cancelled
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the file locked
        self._key = os.path.abspath(self.path)  # its name in the registry of held locks
        # Called once when the lock has been held by someone else for WAIT_NOTICE.
        self.waiting: Callable[[], None] | None = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this FileLock")
        began = time.monotonic()
        told = [self.waiting is None]
        # Taken once per hold: the same key at release, should the working folder change.
        self._key = os.path.abspath(self.path)
        for _ in range(RETAKE):
            # Not through a link: a lock planted as a link to a file elsewhere
            # would otherwise be created (or locked) there. Refused: UnsafePath.
            fd = open_fd(self.path, os.O_RDWR | os.O_CREAT, what="lock file")
            try:
                self._wait_for(fd, began, told)
                st = os.fstat(fd)
                self._ident = (st.st_dev, st.st_ino)
                if not self.lost():
                    with _held_guard:
                        self._fd = fd
                        _held[self._key] = self
                    return
            except BaseException:
                # Ctrl-C lands where it lands, after the flock too: the lock
                # goes with its file, or this process held it until it ended
                # (a notebook's kernel: every later run waited on it for good).
                try:
                    self._forget()
                finally:
                    os.close(fd)
                raise
            # The file we waited on was removed (or replaced) meanwhile: a
            # process that opens the name now locks another file, so holding
            # this one excludes nobody. The lock is the file at the name.
            self._ident = None
            os.close(fd)
        from ..errors import UnsafePath

        raise UnsafePath(
            f"{self.path}: this lock file was replaced {RETAKE} times while it was "
            "being taken: something removes kmnist's locks; stop it and run again"
        )

    def _wait_for(self, fd: int, began: float, told: list[bool]) -> None:
        while not _try_lock(fd):
            if self._cancelled is not None and self._cancelled():
                raise InterruptedError(f"gave up waiting for {self.path}")
            if not told[0] and time.monotonic() - began >= WAIT_NOTICE:
                told[0] = True
                assert self.waiting is not None
                self.waiting()
            time.sleep(POLL)

    def lost(self) -> bool:
        """Whether the file locked is no longer the one at the lock's name.

        Someone removed it (``rm *.lock``, the ``.kmnist/`` folder deleted to
        clear stamps) or put another file there: a process starting now
        takes a lock of its own at that name and writes the same .part.
        What writes under this lock stops then (a corrupt final file
        otherwise: both processes' bytes in one .part, each hashing only its own).
        """
        if self._ident is None:
            return False
        try:
            st = os.lstat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return True
        except OSError:
            return False  # cannot look (a permission): no sign of another lock
        return (st.st_dev, st.st_ino) != self._ident

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        # Each step in a finally: a Ctrl-C after the unlock must not keep the
        # file open, nor one after the close leave this lock in the registry.
        try:
            _unlock(fd)
        finally:
            try:
                # The lock file itself stays: removing it while another process
                # waits on it would let two processes each hold "the" lock.
                os.close(fd)
            finally:
                self._forget()

    def _forget(self) -> None:
        """Out of the registry of held locks; ``lost`` no longer asks."""
        with _held_guard:
            self._fd = None
            self._ident = None
            # No call between the look and the removal: nowhere for a Ctrl-C to land.
            if self._key in _held and _held[self._key] is self:
                del _held[self._key]


def _after_fork_in_child() -> None:
    """A forked child holds none of its parent's locks, and its registry says so.

    The child inherits each lock's open file, and flock belongs to the open
    file: held by the child too, until the child closed it, even after the
    parent had died (a DataLoader worker, a pool process forked while a
    download thread held a lock kept every later run waiting). The files are
    closed, not unlocked: an unlock here would release the parent's lock
    under the parent. The guard is new: the fork may have come while another
    thread of the parent held it, and no thread of the child would release it.
    """
    global _held_guard
    _held_guard = threading.Lock()
    inherited = list(_held.values())
    _held.clear()
    for lock in inherited:
        fd, lock._fd, lock._ident = lock._fd, None, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
