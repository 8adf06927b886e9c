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
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Union

from ..catalogue.manifest import (
    CURRENT_RELEASE,
    Mirror,
    RemoteFile,
    entry_for,
    mirrors_from,
    user_mirror,
)
from ..errors import DownloadError, DownloadsFailed, KmnistError, VerificationError
from ..storage import layout as storage
from ..urls import Origin, origin
from ..verify import Hasher, check_digests, check_structure, expectation
from .defaults import CONNECTIONS, FAST_CONNECTION, JOBS, PIECE, TIMEOUT
from .derive import build, check_derived, source_of
from .filejob import Cancelled, FileJob, JobContext
from .outcome import Check, Outcome, check_of
from .plan import Action, Plan, Step, decide, inspect, make_plan, stamp, verify_final
from .progress import NullProgress, Progress, TqdmProgress
from .retry import GiveUp, RetryPolicy
from .seams import Catalogue, Transport
from .transfer import Body, make_session, open_url

__all__ = ["Check", "Downloader", "Outcome", "Result", "RetryPolicy"]

if TYPE_CHECKING:
    import requests


@dataclass(frozen=True)
class Result:
    """What happened to one file."""

    file: RemoteFile
    target: Path
    action: Outcome
    mirror: str | None
    transferred: int
    seconds: float
    checked: Check


MirrorSpec = Union[str, Mirror]

# A job that has received nothing for this long is announced (which file,
# which mirror, what it waits for, until when): within a few seconds, as the
# issue of a silent bar at 0% asked, and not for every short pause.
STALL_NOTICE = 3.0


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
        jobs: int = JOBS,
        connections: int = CONNECTIONS,
        timeout: tuple[float, float] = TIMEOUT,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        piece: int = PIECE,
        fast_connection: float = FAST_CONNECTION,
        log: Callable[[str], None] | None = None,
        catalogue: Catalogue = None,
        transport: Transport | None = None,
    ) -> None:
        if jobs < 1 or connections < 1:
            raise KmnistError("jobs and connections must be at least 1")
        self.mirrors = _mirrors(mirrors)
        self.show_progress = progress
        self.jobs = jobs
        self.connections = connections
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.piece = piece
        self.fast_connection = fast_connection
        self.catalogue = catalogue  # None: the manifest's entries
        self._session = session
        self._own_session = session is None  # a caller's session is the caller's to close
        # Where no connection could be made, per scheme, host and port (a folder:
        # per mirror), with the reason: skipped for the rest of the run, and
        # reported once rather than once per file.
        self._down: dict[Origin | str, tuple[str, str]] = {}
        self._jobs: set[FileJob] = set()  # jobs under way, for the stall watcher
        self.log = log  # told of every request (-v)
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._open: set[Body] = set()
        self._progress: Progress = NullProgress()
        # What each FileJob of this run is given instead of the Downloader:
        # the settings above, and the few calls a job makes back.
        self._job_context = JobContext(
            session=lambda: self.session,
            connections=connections,
            piece=piece,
            fast_connection=fast_connection,
            retry=self.retry,
            timeout=timeout,
            log=log,
            note=self.note,
            register=self.register,
            unregister=self.unregister,
            cancelled=lambda: self.cancelled,
            transport=transport or open_url,
        )

    # -- planning ---------------------------------------------------------

    def plan(
        self,
        files: Sequence[RemoteFile],
        root: str | Path,
        *,
        force: bool = False,
        flat: bool = False,
    ) -> Plan:
        return make_plan(list(files), Path(root), force=force, flat=flat, catalogue=self.catalogue)

    def mirrors_for(self, file: RemoteFile) -> list[Mirror]:
        entry = entry_for(file.path, entries=self.catalogue)
        release = entry.release if entry else CURRENT_RELEASE
        return [m for m in self.mirrors if m.has(file, release)]

    # -- acting -----------------------------------------------------------

    def fetch(
        self,
        files: Sequence[RemoteFile],
        root: str | Path,
        *,
        force: bool = False,
        flat: bool = False,
    ) -> list[Result]:
        return self.run(self.plan(files, root, force=force, flat=flat))

    def run(self, plan: Plan) -> list[Result]:
        """Carry out a plan. Files that fail do not stop the others."""
        steps = list(plan)
        if steps:
            storage.ensure_space(steps[0].target.parent, plan.todo_bytes)
        self._progress = self._make_progress(plan)
        derived: list[Result] = []
        try:
            results, failures = self._fetch_steps(steps)
            if failures:
                # A NumPy file no mirror gave may be built from the MNIST one.
                derived, failures = self._derive_failed(plan, failures)
        finally:
            self._progress.close()
            self._close_own_session()
        completed = results + derived
        if failures:
            raise self._run_failed(failures, completed)
        return completed

    def _fetch_steps(self, steps: list[Step]) -> tuple[list[Result], list[KmnistError]]:
        """Every step, ``jobs`` at a time: the results in the plan's order, and the failures."""
        results: dict[int, Result] = {}
        failures: list[KmnistError] = []
        with ThreadPoolExecutor(max_workers=min(self.jobs, max(len(steps), 1))) as pool:
            futures = {pool.submit(self._fetch_step, steps[i]): i for i in _largest_first(steps)}
            try:
                self._collect(futures, results, failures)
            except BaseException:
                # Ctrl-C or a bug: stop every worker now. Their .part files
                # stay, so the next run resumes; no final name is touched.
                self._abort()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return [results[i] for i in sorted(results)], failures

    def _collect(
        self,
        futures: dict[Future[Result], int],
        results: dict[int, Result],
        failures: list[KmnistError],
    ) -> None:
        """Wait for the futures, watching for stalls; a bug (not a KmnistError) is raised."""
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            self._watch()
            for fut in done:
                exc = fut.exception()
                if exc is None:
                    results[futures[fut]] = fut.result()
                elif isinstance(exc, KmnistError):
                    failures.append(exc)
                else:
                    raise exc

    def _close_own_session(self) -> None:
        if self._session is not None and self._own_session:
            self._session.close()
            self._session = None

    def _run_failed(self, failures: list[KmnistError], completed: list[Result]) -> KmnistError:
        """The error a run with failures raises: the mirrors found down first."""
        failures = self._down_mirrors() + failures
        error = failures[0] if len(failures) == 1 else DownloadsFailed(failures)
        error.completed = tuple(completed)
        return error

    def _derive_failed(
        self, plan: Plan, failures: list[KmnistError]
    ) -> tuple[list[Result], list[KmnistError]]:
        """Build what can be built of the files that no mirror gave.

        Returns the results of the derived files (and of the sources fetched for
        them), and the failures that remain.
        """
        steps = {s.file.path: s for s in plan}
        done: list[Result] = []
        left: list[KmnistError] = []
        for f in failures:
            step = steps.get(f.path) if isinstance(f, DownloadError) else None
            src = source_of(step.file, catalogue=self.catalogue) if step is not None else None
            if step is None or src is None:
                left.append(f)
                continue
            started = time.monotonic()
            source = step.target.with_name(src.name)
            self.note(f"{step.file.path}: no mirror gave it; building it from {src.path}")
            try:
                fetched = self._fetch_step(_step_for(src, source, self.catalogue))
                build(step.file, step.target, source, catalogue=self.catalogue)
                check_derived(step.file, step.target, catalogue=self.catalogue)
            except KmnistError as exc:
                left.append(f)
                self.note(f"{step.file.path}: could not be built from {src.path}: {exc}")
                continue
            if fetched.action is not Outcome.SKIPPED:
                done.append(fetched)
            seconds = time.monotonic() - started
            done.append(
                Result(step.file, step.target, Outcome.DERIVED, None, 0, seconds, Check.DERIVED)
            )
        return done, left

    def _down_mirrors(self) -> list[KmnistError]:
        """One error per mirror found down: its reason once, not in every file's line."""
        with self._lock:
            down = list(self._down.values())
        return [MirrorDown(name, reason) for name, reason in down]

    def _watch(self) -> None:
        """Say what a job that receives nothing waits for, once per silence."""
        now = time.monotonic()
        with self._lock:
            jobs = list(self._jobs)
        for job in jobs:
            quiet = now - job.last_activity
            if quiet >= STALL_NOTICE and not job.noticed:
                job.noticed = True
                self.note(
                    f"{job.file.path}: {job.waiting_for} for {quiet:.0f} s "
                    f"(a try ends after {self.timeout[1]:g} s without enough data)"
                )

    def note(self, text: str) -> None:
        """Say something to the user while the run goes on (nothing with --quiet)."""
        self._progress.note(text)

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
                from .._version import __version__

                self._session = make_session(f"kmnist/{__version__}", self.connections)
            return self._session

    def _fetch_step(self, step: Step) -> Result:
        """One step: skipped, or fetched under its lock from the first mirror that gives it."""
        start = time.monotonic()
        if step.action is Action.SKIP:
            # Acting, not planning: the check the plan made is recorded now.
            stamp(step.file, step.target, step.stamp)
            check = step.check or check_of(step.file)
            return Result(step.file, step.target, Outcome.SKIPPED, None, 0, 0.0, check)
        lock = storage.file_lock(step.target, lambda: self.cancelled)
        lock.waiting = lambda: self.note(
            f"{step.file.path}: waiting for another process that is fetching it (lock {lock.path})"
        )
        try:
            lock.acquire()
        except InterruptedError:
            # Ctrl-C while another process holds this file: nothing of ours to keep.
            raise Cancelled() from None
        try:
            # Another process may have fetched it while we waited for the lock.
            if step.action is not Action.REFETCH and step.target.exists():
                try:
                    final = verify_final(step.file, step.target, catalogue=self.catalogue)
                    stamp(step.file, step.target, final.stamp)
                    return Result(
                        step.file, step.target, Outcome.SKIPPED, None, 0, 0.0, final.check
                    )
                except (VerificationError, OSError):
                    pass
            return self._from_mirrors(step, start)
        finally:
            lock.release()

    def _from_mirrors(self, step: Step, start: float) -> Result:
        file = step.file
        reasons: list[str] = []
        mirrors = self.mirrors_for(file)
        for i, mirror in enumerate(mirrors):
            key = _key(mirror)
            if key in self._down:
                reasons.append(f"{mirror.name}: down (see above)")
                continue
            try:
                return self._from_mirror(step, mirror, start)
            except VerificationError as exc:
                # Other bytes than the published ones: an old release, a page,
                # a broken copy. Never retried here; the next mirror may be right.
                reason = f"wrong {exc.what} (expected {exc.expected}, got {exc.got})"
            except GiveUp as exc:
                reason = str(exc)
                if exc.unreachable:
                    # Remembered for the rest of the run: a dead origin costs
                    # its timeouts once, not once per file.
                    with self._lock:
                        self._down.setdefault(key, (mirror.name, reason))
                    reason = "down (see above)"
            reasons.append(f"{mirror.name}: {reason}")
            if i + 1 < len(mirrors):
                shown = self._down[key][1] if key in self._down else reason
                self._progress.note(f"{file.path}: {mirror.name}: {shown}; trying the next mirror")
        unreachable = all(_key(m) in self._down for m in mirrors)
        raise DownloadError(file.path, reasons, unreachable=bool(mirrors) and unreachable)

    def _from_mirror(self, step: Step, mirror: Mirror, start: float) -> Result:
        job = FileJob(self._job_context, step.file, step.target, mirror)
        bar = self._progress.start(step.file.name, step.file.size, job.resumed_from)
        job.show_progress(bar)
        with self._lock:
            self._jobs.add(job)
        try:
            hasher = job.run()
            return self._finish(step, mirror, hasher, job, start)
        except VerificationError:
            job.discard()  # other bytes than the published ones: none of them is kept
            raise
        finally:
            with self._lock:
                self._jobs.discard(job)
            bar.close()

    # -- what FileJob needs from the run ---------------------------------------

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def register(self, body: Body) -> None:
        with self._lock:
            self._open.add(body)

    def unregister(self, body: Body) -> None:
        with self._lock:
            self._open.discard(body)

    def _finish(
        self, step: Step, mirror: Mirror, hasher: Hasher, job: FileJob, start: float
    ) -> Result:
        file = step.file
        try:
            check_digests(hasher, mirror.name)
        except VerificationError:
            # A server that gzip-encoded the body anyway: the raw bytes are not
            # the file; the decoded ones may be. Whichever matches is kept.
            from .decode import gunzip_part

            if not job.encoded or not gunzip_part(job.part_path, file):
                raise
        check = check_of(file)
        if not check.verified:
            check_structure(file, job.part_path, mirror.name)
        storage.promote(job.part_path, step.target)
        storage.write_stamp(step.target, expectation(file))
        job.finished()
        action = Outcome.RESUMED if job.resumed_from else Outcome.FETCHED
        seconds = time.monotonic() - start
        return Result(file, step.target, action, mirror.name, job.transferred, seconds, check)


def _key(mirror: Mirror) -> Origin | str:
    """What fails together: a URL's scheme, host and port; a folder is its own."""
    if mirror.is_local:
        return mirror.name
    return origin(mirror.template.replace("{", "").replace("}", "")) or mirror.name


class MirrorDown(DownloadError):
    """A mirror that could not be connected to: said once for every file it would serve."""

    def __init__(self, name: str, reason: str) -> None:
        KmnistError.__init__(self, f"mirror {name}: {reason}; not tried again in this run")
        self.path = name
        self.reasons = [reason]
        self.unreachable = True


def _mirrors(specs: Sequence[MirrorSpec] | None) -> tuple[Mirror, ...]:
    if specs is None:
        return mirrors_from(None)
    out = tuple(m if isinstance(m, Mirror) else user_mirror(m) for m in specs)
    if not out:
        raise KmnistError("no mirrors given")
    return out


def _largest_first(steps: list[Step]) -> list[int]:
    """The steps' indexes, largest file first (an unpublished size counts as largest).

    The biggest file is the critical path, and the small ones fill in around it.
    """
    return sorted(range(len(steps)), key=lambda i: -(steps[i].file.size or float("inf")))


def _step_for(file: RemoteFile, target: Path, catalogue: Catalogue) -> Step:
    state = inspect(file, target, catalogue=catalogue)
    action, have = decide(file, state)
    return Step(file, target, action, have, note=state.problem)
