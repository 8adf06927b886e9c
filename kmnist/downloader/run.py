"""Fetch planned files: mirrors in order, retries, locks, verification, rename.

The rule this module keeps: a final name only ever holds verified bytes.
Bytes arrive in ``<name>.part``, are hashed as they are written, and are
renamed onto ``<name>`` only after size and every published hash match.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
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
    once_each,
    user_mirror,
)
from ..errors import (
    DiskFull,
    DownloadError,
    DownloadsFailed,
    FolderError,
    KmnistError,
    LocalFileError,
    Refusal,
    VerificationError,
)
from ..signals import raise_owed
from ..storage import layout as storage
from ..storage.folders import disk_full
from ..storage.partfile import PartFile
from ..urls import Origin, origin, redact
from ..verify import Hasher, check_digests, check_structure, expectation
from .defaults import (
    CONNECTIONS,
    FAST_CONNECTION,
    JOBS,
    MAX_CONNECTIONS,
    MAX_JOBS,
    PIECE,
    TIMEOUT,
)
from .derive import build, check_derived, is_derived, source_of
from .filejob import Cancelled, FileJob, JobContext
from .outcome import Check, Outcome, check_of
from .plan import Action, Plan, Step, decide, inspect, make_plan, stamp, verify_final
from .progress import NullProgress, Progress, TqdmProgress
from .retry import GiveUp, RetryPolicy
from .seams import Catalogue, Transport
from .transfer import (
    Body,
    Waiting,
    check_network_environment,
    make_session,
    open_url,
    waiting_in,
)

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
    # Worth a line under the summary: how a file was built and why, that a
    # built one was replaced, that a server ignored Range.
    note: str | None = None


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
        derive: bool = False,
    ) -> None:
        for name, value, most in (
            ("jobs", jobs, MAX_JOBS),
            ("connections", connections, MAX_CONNECTIONS),
        ):
            if not 1 <= value <= most:
                raise KmnistError(f"{name} must be from 1 to {most}, not {value}")
        self.mirrors = _mirrors(mirrors)
        self.show_progress = progress
        self.jobs = jobs
        self.connections = connections
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.piece = piece
        self.fast_connection = fast_connection
        self.catalogue = catalogue  # None: the manifest's entries
        # Build a catalogued KMNIST .npz from its MNIST-format file when no
        # mirror gives the published one: the dataset path's choice
        # (kmnist.download, the command), never download_files'.
        self.derive = derive
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
        self._freed = threading.Condition(self._lock)  # a body closed: a connection is free
        self._opening: dict[str, int] = {}  # requests under way (waiting for the pool), by host
        self._waiting = Waiting()  # their sockets while no answer came: an abort shuts them
        self._progress: Progress = NullProgress()
        # Set by a caller that prints each Result's note in a summary (the
        # command): a build, said there, is not said live as well.
        self.summarised = False
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
            connection_free=self.connection_free,
            opening=self.opening,
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
        if steps and any(not m.is_local for m in self.mirrors):
            # A bad $REQUESTS_CA_BUNDLE or $https_proxy: one line now, not one per file.
            check_network_environment()
        if steps:
            storage.ensure_space(steps[0].target.parent, plan.todo_bytes)
        self._progress = self._make_progress(plan)
        derived: list[Result] = []
        try:
            results, failures = self._fetch_steps(steps)
            if failures and self.derive:
                # A NumPy file no mirror gave may be built from the MNIST one.
                derived, failures = self._derive_failed(plan, failures)
            elif failures:
                self._say_built_left(plan, failures)
        finally:
            self._progress.close()
            self._close_own_session()
        completed = results + derived
        if failures:
            raise self._run_failed(failures, completed)
        return completed

    def _fetch_steps(self, steps: list[Step]) -> tuple[list[Result], list[KmnistError]]:
        """Every step, ``jobs`` at a time: the results and the failures, in the plan's order.

        The plan's order, not the order they ended in: the same run is told
        the same way every time.
        """
        results: dict[int, Result] = {}
        failures: dict[int, KmnistError] = {}
        prefix = f"kmnist-run-{id(self):x}"
        pool = ThreadPoolExecutor(
            max_workers=min(self.jobs, max(len(steps), 1)), thread_name_prefix=prefix
        )
        futures: dict[Future[Result], int] = {}
        try:
            # Submitted inside the try: a Ctrl-C in the first milliseconds
            # lands in submit (Thread.start waits for each worker to start),
            # and the workers already started fetched their whole files
            # before the caller heard of it.
            for i in _largest_first(steps):
                futures[pool.submit(self._fetch_step, steps[i])] = i
            self._collect(futures, results, failures)
        except BaseException:
            # Ctrl-C or a bug: stop every worker now. Their .part files
            # stay, so the next run resumes; no final name is touched.
            self._abort()
            pool.shutdown(wait=True, cancel_futures=True)
            # A worker whose start the Ctrl-C interrupted is not in the
            # pool's list, and went on fetching and holding its file's lock.
            for t in threading.enumerate():
                if t.name.startswith(prefix) and t is not threading.current_thread():
                    t.join()
            raise
        pool.shutdown(wait=True)
        return [results[i] for i in sorted(results)], [failures[i] for i in sorted(failures)]

    def _collect(
        self,
        futures: dict[Future[Result], int],
        results: dict[int, Result],
        failures: dict[int, KmnistError],
    ) -> None:
        """Wait for the futures, watching for stalls; a bug (not a KmnistError) is raised."""
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            raise_owed()  # a Ctrl-C swallowed where it landed is not lost
            self._watch()
            for fut in done:
                exc = fut.exception()
                if exc is None:
                    results[futures[fut]] = fut.result()
                elif isinstance(exc, KmnistError):
                    failures[futures[fut]] = exc
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
        error.mirrors = self.mirrors  # what was tried: the hint suggests nothing of it
        return error

    def _derive_failed(
        self, plan: Plan, failures: list[KmnistError]
    ) -> tuple[list[Result], list[KmnistError]]:
        """Build what can be built of the files that no mirror gave.

        Only a catalogued KMNIST .npz (path, size and hashes the catalogue's),
        and only after every mirror that lists it was tried from byte 0.
        Returns the results of the built files (and of the sources fetched for
        them), and the failures that remain.
        """
        steps = {s.file.path: s for s in plan}
        done: list[Result] = []
        left: list[KmnistError] = []
        for f in failures:
            step = steps.get(f.path) if isinstance(f, DownloadError) else None
            src = source_of(step.file, catalogue=self.catalogue) if step is not None else None
            if step is None or src is None or not isinstance(f, DownloadError):
                left.append(f)
                continue
            try:
                done += self._build(step, src, f)
            except DiskFull as exc:
                left.append(exc)  # the disk, not the mirrors: said as such, on its own
            except KmnistError as exc:
                f.not_built = exc  # said with the file's own failure, flattened
                left.append(f)
        return done, left

    def _say_built_left(self, plan: Plan, failures: list[KmnistError]) -> None:
        """Building off, a file built by an earlier run stays: said in its failure's line.

        It is not removed (it holds the published array, and the user may be
        using it), nor passed off as fetched: "could not be fetched" alone
        left the user believing nothing was under the final name.
        """
        built = {s.file.path: s for s in plan if s.built}
        for f in failures:
            step = built.get(f.path) if isinstance(f, DownloadError) else None
            if not isinstance(f, DownloadError) or step is None or not step.target.exists():
                continue
            src = source_of(step.file, catalogue=self.catalogue)
            name = src.name if src is not None else "its MNIST-format file"
            f.not_built = KmnistError(
                f"building is off; the file built from {name} by an earlier run is left"
                " as it was, not the published bytes"
            )

    def _build(self, step: Step, src: RemoteFile, failure: DownloadError) -> list[Result]:
        """``step``'s file built from ``src`` (fetched first), or kept if built before."""
        started = time.monotonic()
        file, target = step.file, step.target
        why = refused(failure)
        source = target.with_name(src.name)
        fetched = self._fetch_step(_step_for(src, source, self.catalogue))
        out = [fetched] if fetched.action is not Outcome.SKIPPED else []
        # Built under the file's lock, as a fetch writes it: the .part is the
        # same name, and another process fetching or building this file wrote
        # into it after it was promoted (a corrupt final file).
        with self._holding(step):
            if step.built and is_derived(file, target, catalogue=self.catalogue):
                with contextlib.suppress(VerificationError):
                    check_derived(file, target, catalogue=self.catalogue)
                    note = f"{why}; kept the file built from {src.name} earlier"
                    self._say_built(f"{file.path}: {note}")
                    seconds = time.monotonic() - started
                    kept = Result(
                        file, target, Outcome.SKIPPED, None, 0, seconds, Check.DERIVED, note
                    )
                    return [*out, kept]
            meanwhile = self._there_meanwhile(step)
            if meanwhile is not None:
                return [*out, meanwhile]  # another process fetched or built it
            try:
                build(file, target, source, catalogue=self.catalogue)
            except OSError as exc:
                full = disk_full(file.path, target, file.size, exc)
                if full is None:
                    raise
                raise full from exc
            check_derived(file, target, catalogue=self.catalogue)
        # Each mirror's reason first, then what was done about it.
        note = f"{why}; built from {src.name} instead (the same array, not the published bytes)"
        self._say_built(f"{file.path}: {note}")
        seconds = time.monotonic() - started
        return [*out, Result(file, target, Outcome.DERIVED, None, 0, seconds, Check.DERIVED, note)]

    def _say_built(self, text: str) -> None:
        """A build, said live: all a library caller sees; the command's summary says it instead."""
        if not self.summarised:
            self.note(text)

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
            # No stderr at all (2>&-, a daemon): nowhere to draw, and tqdm
            # failed on it, which ended the run before a byte was fetched.
            if not self.show_progress or sys.stderr is None:
                return NullProgress()
            total = None if plan.unknown_sizes else plan.todo_bytes
            return TqdmProgress(total)
        return self.show_progress

    def _abort(self) -> None:
        self._cancel.set()
        self._waiting.abort()  # requests no server has answered yet
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
        try:
            return self._under_lock(step, start)
        except OSError as exc:
            # A full disk anywhere on the write path (the lock, the .part, its
            # record): one DiskFull naming the file, not a bare OSError.
            full = disk_full(step.file.path, step.target, _still_needed(step), exc)
            if full is not None:
                raise full from exc
            # Anything else is this file's: the others go on (it ended the
            # whole run, as if it were a bug).
            from ..storage.folders import explain, named

            where = named(exc)
            if _refused_by_folder(exc) and where is not None and os.path.isdir(where):
                # A folder's (the bookkeeping folder, the dataset's): met alike
                # by each of its files, and said once, not once per file.
                raise FolderError(explain(exc)) from exc
            raise LocalFileError(step.file.path, explain(exc)) from exc

    def _under_lock(self, step: Step, start: float) -> Result:
        """Fetch ``step``'s file holding its lock (another process may be fetching it)."""
        with self._holding(step):
            meanwhile = self._there_meanwhile(step)
            if meanwhile is not None:
                return meanwhile
            return self._from_mirrors(step, start)

    @contextlib.contextmanager
    def _holding(self, step: Step) -> Iterator[None]:
        """Hold ``step``'s file lock: whatever writes its .part or its final name does."""
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
            yield
        finally:
            lock.release()

    def _there_meanwhile(self, step: Step) -> Result | None:
        """The file as another process left it while we waited for the lock, if verified."""
        if not step.target.exists():
            return None
        if step.action is Action.REFETCH:
            # Planned over a wrong (or built) final file: a process that held
            # the lock before us may have replaced it with the published
            # bytes, and stamped them; each of 8 jobs fetched it once more.
            # The stamp alone decides (the file was found wrong: no hash), and
            # --force fetches whatever is there.
            if step.forced or not storage.has_stamp(step.target, expectation(step.file)):
                return None
            check = check_of(step.file)
            return Result(step.file, step.target, Outcome.SKIPPED, None, 0, 0.0, check)
        try:
            final = verify_final(step.file, step.target, catalogue=self.catalogue)
            stamp(step.file, step.target, final.stamp)
        except (VerificationError, OSError):
            return None
        return Result(step.file, step.target, Outcome.SKIPPED, None, 0, 0.0, final.check)

    def _from_mirrors(self, step: Step, start: float) -> Result:
        file = step.file
        refusals: list[Refusal] = []
        mirrors = self.mirrors_for(file)
        for i, mirror in enumerate(mirrors):
            key = _key(mirror)
            if key not in self._down and (why := _folder_missing(mirror)):
                with self._lock:
                    self._down.setdefault(key, (mirror.name, why))
            if key in self._down:
                refusals.append(Refusal(mirror.name, self._down[key][1], down=True))
                continue
            try:
                return self._from_mirror_from_zero(step, mirror, start)
            except VerificationError as exc:
                # Other bytes than the published ones: an old release, a page,
                # a broken copy. Never retried here; the next mirror may be right.
                refusal = Refusal(
                    mirror.name,
                    _at(mirror, file, f"wrong {exc.what} (expected {exc.expected}, got {exc.got})"),
                )
            except GiveUp as exc:
                reason = str(exc) if exc.unreachable else _at(mirror, file, str(exc))
                refusal = Refusal(mirror.name, reason, down=exc.unreachable)
                if exc.unreachable:
                    # Remembered for the rest of the run: a dead origin costs
                    # its timeouts once, not once per file.
                    with self._lock:
                        said = key in self._down
                        self._down.setdefault(key, (mirror.name, str(exc)))
                    if said:
                        # Another job, at the same moment, found it down and
                        # said so: the same line once per file running.
                        refusals.append(refusal)
                        continue
            refusals.append(refusal)
            if i + 1 < len(mirrors):
                self._progress.note(
                    f"{file.path}: {mirror.name}: {refusal.reason}; trying the next mirror"
                )
        unreachable = all(_key(m) in self._down for m in mirrors)
        reasons = [f"{r.mirror}: {'down (see above)' if r.down else r.reason}" for r in refusals]
        raise DownloadError(
            file.path,
            reasons,
            unreachable=bool(mirrors) and unreachable,
            refusals=tuple(refusals),
        )

    def _from_mirror_from_zero(self, step: Step, mirror: Mirror, start: float) -> Result:
        """One mirror; if bytes kept from before did not verify, once more from byte 0.

        The fault may be the old ``.part`` (another release, another run's
        garbage), not the mirror: the mirror is judged on its own bytes.
        """
        kept = PartFile.load(step.target, step.file.size).have
        try:
            return self._from_mirror(step, mirror, start)
        except VerificationError as exc:
            if not kept:
                raise
            self.note(
                f"{step.file.path}: the {kept:,} bytes kept from an earlier try did not verify "
                f"(wrong {exc.what}); fetching it again from byte 0 from {mirror.name}"
            )
        result = self._from_mirror(step, mirror, start)
        again = (
            f"the {kept:,} bytes kept from an earlier try did not verify; fetched again from byte 0"
        )
        return dataclasses.replace(result, note=result.note or again)

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
        with self._freed:
            self._open.discard(body)
            self._freed.notify_all()

    def connection_free(self, where: str, timeout: float) -> bool:
        """Whether a connection to ``where`` (host:port) is free that no
        request under way will take: fewer bodies open and requests being
        made than ``connections``. Waits up to ``timeout`` seconds for one."""

        def free() -> bool:
            busy = sum(b.where == where for b in self._open) + self._opening.get(where, 0)
            return busy < self.connections

        with self._freed:
            return self._freed.wait_for(free, timeout)

    @contextlib.contextmanager
    def opening(self, where: str) -> Iterator[None]:
        """Count a request to ``where`` as under way while it is made (and
        let an abort shut it down while it waits for its answer)."""
        with self._lock:
            self._opening[where] = self._opening.get(where, 0) + 1
        try:
            with waiting_in(self._waiting):
                yield
        finally:
            with self._freed:
                self._opening[where] -= 1
                self._freed.notify_all()

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
        # "resumed" only when the server honoured Range (206).
        resumed = job.resumed_from > 0 and not job.restarted
        action = Outcome.RESUMED if resumed else Outcome.FETCHED
        note = None
        if step.built:
            note = "replaced the built file with the published one"
        elif job.resumed_from and job.restarted:
            note = "fetched again from the start (the server ignored Range)"
        seconds = time.monotonic() - start
        return Result(file, step.target, action, mirror.name, job.transferred, seconds, check, note)


def _at(mirror: Mirror, file: RemoteFile, reason: str) -> str:
    """``reason``, with the URL asked when the mirror's name does not already spell it.

    A mirror given as a URL is named by it, and the error line names the
    file: saying ``http://h/kmnist/x.npz`` after ``kmnist/x.npz: http://h/``
    would say it twice. A built-in mirror (``codh-https``) or a template with
    ``{name}`` does not spell it, so its URL is said. A mirror found down is
    said once, on its own line, and never reaches here.
    """
    url = redact(mirror.url(file))
    if url == mirror.name.rstrip("/") + "/" + file.path:  # user_mirror's own layout
        return reason
    return f"{reason} for {url}"


def _folder_missing(mirror: Mirror) -> str | None:
    """Why a folder mirror cannot serve any file: its folder is not there.

    Down for the run and said once, as a host that does not answer is, not
    "no such file" once per file (a typo in ``--mirror`` said nine times).
    """
    if not mirror.is_local:
        return None
    base = mirror.template.split("{", 1)[0]
    folder = base if base.endswith(("/", os.sep)) else os.path.dirname(base)
    if not folder or os.path.isdir(folder):
        return None
    return "no such folder" if not os.path.lexists(folder.rstrip("/" + os.sep)) else "not a folder"


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
        self.refusals = (Refusal(name, reason, down=True),)
        self.unreachable = True
        self.not_built = None
        self.whole_mirror = True


def refused(failure: DownloadError) -> str:
    """Why no mirror gave a file, in one clause (for the note that it was built instead)."""
    if not failure.refusals:
        return "no mirror in the list carries it"
    return "; ".join(f"{r.mirror}: {r.reason}" for r in failure.refusals)


def _still_needed(step: Step) -> int | None:
    """Bytes of ``step``'s file not yet in its .part (None: its size was never published)."""
    if step.file.size is None:
        return None
    try:
        return step.file.size - PartFile.load(step.target, step.file.size, tidy=False).have
    except OSError:
        return step.file.size


# What a full disk or a reached quota looks like on every write of the path.
def _refused_by_folder(exc: OSError) -> bool:
    """A folder that may not be written (not a folder where a file goes: that is the file's)."""
    return exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)


def _mirrors(specs: Sequence[MirrorSpec] | None) -> tuple[Mirror, ...]:
    if specs is None:
        return mirrors_from(None)
    # Named as the library's caller named them: "mirrors", not --mirror.
    out = once_each(m if isinstance(m, Mirror) else user_mirror(m, "mirrors") for m in specs)
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
