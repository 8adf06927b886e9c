"""Fetch planned files: mirrors in order, retries, locks, verification, rename.

The rule this module keeps: a final name only ever holds verified bytes.
Bytes arrive in ``<name>.part``, are hashed as they are written, and are
renamed onto ``<name>`` only after size and every published hash match.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Union

from . import storage
from .errors import DownloadError, DownloadsFailed, KmnistError, VerificationError
from .manifest import CURRENT_RELEASE, Mirror, RemoteFile, entry_for, mirrors_from, user_mirror
from .plan import Action, Plan, Step, make_plan
from .progress import FileProgress, NullProgress, Progress, TqdmProgress
from .transfer import DEFAULT_TIMEOUT, Body, Refused, Transient, make_session, open_url
from .verify import Hasher, check_digests, check_structure, verify_path

if TYPE_CHECKING:
    import requests


@dataclass(frozen=True)
class RetryPolicy:
    """How long to insist on one mirror before moving to the next.

    ``attempts`` counts tries in a row that brought no new byte; a try that
    made progress (a connection cut mid-body) starts the count again, bounded
    by ``max_tries`` so that a server that cuts every body cannot hold us
    forever. Backoff doubles from ``backoff`` up to ``cap`` seconds; a
    ``Retry-After`` longer than ``max_retry_after`` sends us to the next mirror.
    """

    attempts: int = 4
    max_tries: int = 20
    backoff: float = 0.5
    cap: float = 8.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, fruitless: int, retry_after: float | None) -> float | None:
        """Seconds to wait before the next try, or None to give up on this mirror."""
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return float(min(self.cap, self.backoff * 2 ** max(fruitless - 1, 0)))


@dataclass(frozen=True)
class Result:
    """What happened to one file."""

    file: RemoteFile
    target: Path
    action: str  # "fetched", "resumed", "skipped"
    mirror: str | None
    transferred: int
    seconds: float
    checked: str  # "sha256", "md5", "structure only (unverified)", ...


class Cancelled(KmnistError):
    pass


class _GiveUp(Exception):
    """This mirror is done for this file (the reason goes into the error)."""

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


MirrorSpec = Union[str, Mirror]


class Downloader:
    """Fetches files into a folder from a list of mirrors.

    ``jobs`` files are fetched at once, and no host gets more than
    ``connections`` connections from us.
    """

    def __init__(
        self,
        *,
        mirrors: Sequence[MirrorSpec] | None = None,
        progress: bool | Progress = True,
        jobs: int = 4,
        connections: int = 4,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
    ) -> None:
        if jobs < 1 or connections < 1:
            raise KmnistError("jobs and connections must be at least 1")
        self.mirrors = _mirrors(mirrors)
        self.show_progress = progress
        self.jobs = jobs
        self.connections = connections
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._session = session
        self._dead: set[str] = set()
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._open: set[Body] = set()
        self._progress: Progress = NullProgress()

    # -- planning ---------------------------------------------------------

    def plan(self, files: Sequence[RemoteFile], root: Path, *, force: bool = False) -> Plan:
        return make_plan(list(files), root, force=force)

    def mirrors_for(self, file: RemoteFile) -> list[Mirror]:
        entry = entry_for(file.path)
        release = entry.release if entry else CURRENT_RELEASE
        return [m for m in self.mirrors if m.has(file, release)]

    # -- acting -----------------------------------------------------------

    def fetch(
        self, files: Sequence[RemoteFile], root: Path, *, force: bool = False
    ) -> list[Result]:
        return self.run(self.plan(files, root, force=force))

    def run(self, plan: Plan) -> list[Result]:
        """Carry out a plan. Files that fail do not stop the others."""
        steps = list(plan)
        if steps:
            storage.ensure_space(steps[0].target.parent, plan.todo_bytes)
        self._progress = self._make_progress(plan)
        results: dict[int, Result] = {}
        failures: list[KmnistError] = []
        try:
            with ThreadPoolExecutor(max_workers=min(self.jobs, max(len(steps), 1))) as pool:
                futures = {pool.submit(self._one, s): i for i, s in enumerate(steps)}
                try:
                    pending = set(futures)
                    while pending:
                        done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
                        for fut in done:
                            exc = fut.exception()
                            if exc is None:
                                results[futures[fut]] = fut.result()
                            elif isinstance(exc, KmnistError):
                                failures.append(exc)
                            else:
                                raise exc
                except BaseException:
                    # Ctrl-C or a bug: stop every worker now. Their .part files
                    # stay, so the next run resumes; no final name is touched.
                    self._abort()
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        finally:
            self._progress.close()
            if self._session is not None:
                self._session.close()
                self._session = None
        if failures:
            if len(failures) == 1:
                raise failures[0]
            raise DownloadsFailed(failures)
        return [results[i] for i in sorted(results)]

    def _make_progress(self, plan: Plan) -> Progress:
        if isinstance(self.show_progress, bool):
            if not self.show_progress:
                return NullProgress()
            total = None if plan.unknown_sizes else plan.todo_bytes
            return TqdmProgress(total)
        return self.show_progress

    def _abort(self) -> None:
        self._cancel.set()
        with self._lock:
            bodies = list(self._open)
        for b in bodies:  # unblocks a worker waiting on a socket
            with contextlib.suppress(Exception):  # best effort while shutting down
                b.abort()

    @property
    def session(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                from . import __version__

                self._session = make_session(f"kmnist/{__version__}", self.connections)
            return self._session

    def _one(self, step: Step) -> Result:
        start = time.monotonic()
        if step.action is Action.SKIP:
            return Result(step.file, step.target, "skipped", None, 0, 0.0, "already verified")
        with storage.file_lock(step.target):
            # Another process may have fetched it while we waited for the lock.
            if step.action is not Action.REFETCH and step.target.exists():
                try:
                    how = verify_path(step.file, step.target)
                    return Result(step.file, step.target, "skipped", None, 0, 0.0, how)
                except (VerificationError, OSError):
                    pass
            return self._from_mirrors(step, start)

    def _from_mirrors(self, step: Step, start: float) -> Result:
        file = step.file
        reasons: list[str] = []
        mirrors = self.mirrors_for(file)
        for mirror in mirrors:
            if mirror.name in self._dead:
                reasons.append(f"{mirror.name}: unreachable")
                continue
            try:
                return self._from_mirror(step, mirror, start)
            except VerificationError as exc:
                # Other bytes than the published ones: an old release, a page,
                # a broken copy. Never retried here; the next mirror may be right.
                storage.discard(storage.part_path(step.target))
                reasons.append(
                    f"{mirror.name}: wrong {exc.what} (expected {exc.expected}, got {exc.got})"
                )
            except _GiveUp as exc:
                if exc.unreachable:
                    with self._lock:
                        self._dead.add(mirror.name)
                reasons.append(f"{mirror.name}: {exc}")
        raise DownloadError(file.path, reasons)

    def _from_mirror(self, step: Step, mirror: Mirror, start: float) -> Result:
        file, target = step.file, step.target
        part = storage.part_path(target)
        url = mirror.url(file)
        policy = self.retry
        tries = fruitless = transferred = 0
        resumed_from: int | None = None
        hasher: Hasher | None = None
        bar = self._progress.start(file.name, file.size, storage.size_or_none(part) or 0)
        try:
            while True:
                if self._cancel.is_set():
                    raise Cancelled("cancelled")
                offset = storage.size_or_none(part) or 0
                if file.size is not None and offset > file.size:
                    offset = _truncate(part, bar)
                if hasher is None or hasher.size != offset:
                    hasher = _hash_prefix(file, part, offset)
                if resumed_from is None:
                    resumed_from = offset
                if offset and file.size is not None and offset == file.size:
                    # The .part is whole (a run stopped before its rename).
                    return self._finish(
                        step, mirror, hasher, part, start, transferred, resumed_from
                    )
                tries += 1
                try:
                    got = self._transfer(url, part, offset, file, mirror, hasher, bar)
                except Transient as exc:
                    got = exc.got
                    transferred += got
                    fruitless = 0 if got else fruitless + 1
                    wait_s = policy.delay(max(fruitless, 1), exc.retry_after)
                    if fruitless >= policy.attempts or tries >= policy.max_tries or wait_s is None:
                        raise _GiveUp(
                            f"{exc} (after {tries} tries)", unreachable=exc.unreachable
                        ) from None
                    policy.sleep(wait_s)
                    continue
                except Refused as exc:
                    raise _GiveUp(str(exc)) from None
                transferred += got
                # Whatever the server sent (all of it, or nothing more after a
                # 416), the bytes in the .part now decide.
                return self._finish(step, mirror, hasher, part, start, transferred, resumed_from)
        finally:
            bar.close()

    def _transfer(
        self,
        url: str,
        part: Path,
        offset: int,
        file: RemoteFile,
        mirror: Mirror,
        hasher: Hasher,
        bar: FileProgress,
    ) -> int:
        """One request: append what the server sends to ``part``. Returns bytes written."""
        body = open_url(url, offset, session=self.session, timeout=self.timeout)
        with self._lock:
            self._open.add(body)
        got = 0
        try:
            if body.total is not None and file.size is not None and body.total != file.size:
                raise VerificationError(
                    file.path,
                    mirror.name,
                    "size",
                    f"{file.size} bytes",
                    f"{body.total} bytes (announced)",
                )
            if body.start != offset:
                # The server sent the whole file (200): throw away what we had.
                _truncate(part, bar)
                hasher.reset()
            with open(part, "ab" if body.start else "wb") as fh:
                try:
                    for chunk in body.chunks():
                        if self._cancel.is_set():
                            raise Cancelled("cancelled")
                        fh.write(chunk)
                        hasher.update(chunk)
                        bar.update(len(chunk))
                        got += len(chunk)
                except Transient as exc:
                    exc.got = got
                    raise
            if body.length is not None and got < body.length:
                cut = Transient(
                    f"connection cut after {body.start + got} of {body.start + body.length} bytes"
                )
                cut.got = got
                raise cut
            return got
        except Cancelled:
            raise
        except Transient:
            if self._cancel.is_set():
                raise Cancelled("cancelled") from None
            raise
        finally:
            with self._lock:
                self._open.discard(body)
            body.close()

    def _finish(
        self,
        step: Step,
        mirror: Mirror,
        hasher: Hasher,
        part: Path,
        start: float,
        transferred: int,
        resumed_from: int | None,
    ) -> Result:
        file = step.file
        check_digests(hasher, mirror.name)
        if file.verified:
            how = "sha256" if file.sha256 else "md5"
        else:
            check_structure(file, part, mirror.name)
            how = "structure only (unverified)" if file.structure else "unverified"
        storage.promote(part, step.target)
        action = "resumed" if resumed_from else "fetched"
        return Result(
            file, step.target, action, mirror.name, transferred, time.monotonic() - start, how
        )


def _mirrors(specs: Sequence[MirrorSpec] | None) -> tuple[Mirror, ...]:
    if specs is None:
        return mirrors_from(None)
    out = tuple(m if isinstance(m, Mirror) else user_mirror(m) for m in specs)
    if not out:
        raise KmnistError("no mirrors given")
    return out


def _truncate(part: Path, bar: FileProgress) -> int:
    with open(part, "wb"):
        pass
    bar.reset(0)
    return 0


def _hash_prefix(file: RemoteFile, part: Path, offset: int) -> Hasher:
    """A hasher that has seen the first ``offset`` bytes already in ``part``."""
    h = Hasher(file)
    if offset:
        with open(part, "rb") as fh:
            h.feed(fh, offset)
    return h
