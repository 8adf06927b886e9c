"""What the command and the questions share: plan, (confirm), run, summary; then unpack.

``kmnist-download`` (:mod:`kmnist.cli.download`) and the questions
(:mod:`kmnist.cli.interactive`) both build a
:class:`~kmnist.downloader.request.DownloadRequest` and end in :func:`download`,
so that neither imports the other and no argparse namespace is made up for
the questions. Everything heavy is imported by the functions.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

from ..downloader.defaults import TIMEOUT as DEFAULT_TIMEOUT
from ..errors import ExitStatus, KmnistError, UsageError

# typing and pathlib cost ~5 ms of a 25 ms `--help` (benchmarks/startup.py):
# this module is on that path, so they are imported for the type checker only
# (mypy reads a module-level TYPE_CHECKING = False as typing's).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Callable, TextIO

    from ..catalogue.manifest import Entry, Mirror
    from ..downloader.plan import Plan
    from ..downloader.request import DownloadRequest
    from ..downloader.run import Result

# The command's name in the lines it prints while a run goes on (-v).
PROG = "kmnist-download"
# Seconds a read may stall before a try is retried (--timeout's default): the library's.
TIMEOUT = DEFAULT_TIMEOUT[1]


def timeouts(read: float) -> tuple[float, float]:
    """--timeout SECONDS as (connect, read): a connection is given at most 10 s of it."""
    return (min(DEFAULT_TIMEOUT[0], read), read)


def download(
    request: DownloadRequest,
    *,
    out: TextIO,
    quiet: bool = False,
    dry_run: bool = False,
    confirm: Callable[[Plan, Sequence[Mirror]], bool] | None = None,
) -> list[Result] | None:
    """Plan ``request``, then fetch its files and print the summary.

    The command and the interactive flow both end here. Returns None when
    nothing was run: ``--dry-run`` (the plan is printed instead) or ``confirm``,
    shown the plan, said no. ``quiet``: no summary (the request's options
    say whether there is a progress bar).
    """
    from ..downloader.plan import Action
    from ..downloader.run import Result
    from . import report

    root = request.root
    _check_can_be_a_folder(root)
    if not dry_run:
        request = fit_to_open_files(request, quiet=quiet)
    downloader = request.options.downloader()
    plan = downloader.plan(
        request.files, root, force=request.options.force, flat=request.options.flat
    )
    # The mirrors this plan can use, in order (not the 2018 ones for 2019 files).
    useful = [
        m for m in downloader.mirrors if any(m in downloader.mirrors_for(s.file) for s in plan)
    ]
    if dry_run:
        print(report.plan(plan, root, useful), file=out)
        return None
    if confirm is not None and not confirm(plan, useful):
        return None
    if any(s.action is not Action.SKIP for s in plan):
        from ..storage.folders import check_writable

        check_writable(root)  # before any mirror is asked for bytes it could not keep
    started = time.monotonic()
    downloader.summarised = not quiet  # a build is said in the summary, not twice
    try:
        results = downloader.run(plan)
    except KmnistError as exc:
        # What did arrive is worth saying before the errors are.
        if exc.completed and not quiet:
            done = [r for r in exc.completed if isinstance(r, Result)]
            seconds = time.monotonic() - started
            print(report.results(done, root, seconds), file=out)
        raise
    if not quiet:
        seconds = time.monotonic() - started
        print(report.results(results, root, seconds), file=out)
    return results


# Files a run holds open, beyond those open when it starts (measured on
# Linux, loopback, December 2026): each connection a socket and its own
# descriptor of the .part it writes; each file at once its lock and .part;
# a few more for a range record or a stamp being replaced and the hasher.
# A run of 4 files on 16 connections peaked at 41 open, standard streams included.
FILES_PER_CONNECTION = 2
FILES_PER_JOB = 2
FILES_SPARE = 4


def files_needed(jobs: int, connections: int, open_now: int) -> int:
    """How many files a run of ``jobs`` files on ``connections`` connections may hold open."""
    return open_now + FILES_SPARE + FILES_PER_JOB * jobs + FILES_PER_CONNECTION * connections


def fit_to_open_files(request: DownloadRequest, *, quiet: bool = False) -> DownloadRequest:
    """``request`` with as many connections and files at once as this process may open.

    Under ``ulimit -n 16`` a run on 8 connections failed with "Too many open
    files" (a temporary file named in the error), and a connection refused so
    made the mirror "unreachable" and the hint blame the network. The soft
    limit is raised first, as far as the hard one allows (as Go's runtime and
    aria2c's --rlimit-nofile do); what still does not fit is fetched on fewer
    connections, said in one note.
    """
    from dataclasses import replace

    options = request.options
    open_now = _open_files()
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # no such limit here (Windows)
        return request
    if open_now is None or soft == resource.RLIM_INFINITY:
        return request
    jobs, connections = options.jobs, options.connections
    need = files_needed(jobs, connections, open_now)
    if need <= soft:
        return request
    if hard == resource.RLIM_INFINITY or hard > soft:
        raised = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (OSError, ValueError):
            pass
    while files_needed(jobs, connections, open_now) > soft and (jobs > 1 or connections > 1):
        if connections > jobs:
            connections -= 1
        else:
            jobs -= 1
    if (jobs, connections) == (options.jobs, options.connections):
        return request
    if not quiet:
        from .common import say

        say(
            f"{PROG}: note: this process may have only {soft} files open at once (ulimit -n), "
            f"so it fetches {jobs} file(s) at a time on {connections} connection(s) "
            f"(not {options.jobs} on {options.connections}); raise the limit for more speed"
        )
    return replace(request, options=replace(options, jobs=jobs, connections=connections))


def _open_files() -> int | None:
    """How many files this process has open now; None where that cannot be known."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return None


def request_log(verbose: bool) -> Callable[[str], None] | None:
    """-v: one line per request on stderr, above any progress bar."""
    if not verbose:
        return None

    def log(line: str) -> None:
        from ..downloader.progress import write_line

        # Above any bar; nowhere with 2>&- (never on standard output, where
        # the JSON of --check-mirrors goes), and never a failed download for
        # a log line that a full or closed standard error could not take.
        write_line(f"{PROG}: {line}", sys.stderr)

    return log


def extract(
    *,
    root: Path,
    force: bool,
    quiet: bool,
    out: TextIO,
    catalogue: Sequence[Entry] | None = None,
) -> int:
    """Unpack the Kanji archive in ``root`` (what ``--extract`` runs); say how it went.

    ``catalogue``: where the archive's published checksum is looked up (None: the manifest).
    """
    from ..catalogue.manifest import select
    from ..data.kanji import extract_kanji

    published = None if catalogue is None else select("kkanji", entries=catalogue)[0].file
    check = extract_kanji(root=root, force=force, published=published)
    if check.ok and not quiet:
        print(check.summary(), file=out)
    elif not check.ok:
        from .common import say

        say(check.summary())  # with 2>&-, nowhere: not into standard output
    return ExitStatus.OK if check.ok else ExitStatus.FAILURE


__all__ = ["download", "extract", "fit_to_open_files", "request_log", "timeouts"]


def _check_can_be_a_folder(root: Path) -> None:
    """--dir is a folder, or can become one: no file on the way to it.

    ``--dir afile/sub`` could never be made; the plan of a dry run said it
    would fetch into it, and a real run failed once per file, exit 1.
    """
    for place in (root, *root.parents):
        if place.is_dir():
            return
        if os.path.lexists(place):
            what = "a file, not a folder" if place.is_file() else "not a folder"
            if place == root:
                raise UsageError(f"--dir {root} is {what}")
            raise UsageError(f"--dir {root}: {place} is {what}")
