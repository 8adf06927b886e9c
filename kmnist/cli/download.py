"""``kmnist-download``: turn flags into a library call and its outcome into an exit code."""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Sequence

from .._version import __version__
from ..catalogue.names import (
    DATASET_ALIASES,
    DATASET_NAMES,
    FORMAT_NAMES,
    MIRROR_ENV,
    RELEASES,
    SPLITS,
)
from ..downloader.defaults import CONNECTIONS, JOBS, MAX_CONNECTIONS, MAX_JOBS
from ..errors import (
    ExitStatus,
    KmnistError,
    UsageError,
)
from ..storage.root import data_root
from . import session
from .common import (
    MAX_TIMEOUT,
    MIN_TIMEOUT,
    GuardedOutput,
    add_dir,
    at_most,
    orderly,
    path,
    say,
    timeout,
)
from .session import PROG, TIMEOUT
from .suggest import OneLineParser, choice

# typing and pathlib cost ~5 ms of a 25 ms `--help` (benchmarks/startup.py):
# this module is on that path, so they are imported for the type checker only
# (mypy reads a module-level TYPE_CHECKING = False as typing's).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import TextIO

    from ..catalogue.manifest import Entry, Mirror, RemoteFile
    from ..downloader.request import DownloadRequest


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=prog,
        description=(
            "Download the Kuzushiji datasets (Kuzushiji-MNIST, Kuzushiji-49, "
            "Kuzushiji-Kanji), verified against published checksums, from the first "
            "mirror that works. Data: CC BY-SA 4.0, ROIS-DS CODH."
        ),
        epilog=(
            f"Mirrors: --mirror (repeatable) or {MIRROR_ENV} (whitespace-separated) replace "
            "the built-in list; a mirror is a base URL or folder in the official layout "
            "(<base>/<dataset>/<file>) or a template with {path} or {name}. "
            "Exit status: 0 ok, 1 failure, 2 bad usage, 130 interrupted (Ctrl-C), "
            "143 terminated (SIGTERM), 129 hung up (SIGHUP); .part files are kept for resume."
        ),
    )
    p.add_argument(
        "--dataset",
        "-d",
        action="append",
        # Any case, the names other libraries use (KMNIST, Kuzushiji-49), and a
        # typo gets "did you mean", in one line.
        type=choice([*DATASET_NAMES, "all"], DATASET_ALIASES),
        choices=[*DATASET_NAMES, "all"],
        help="dataset to fetch; repeat for several",
    )
    p.add_argument(
        "--format",
        "-f",
        type=choice(FORMAT_NAMES),
        choices=FORMAT_NAMES,
        help="file format (default: npz where the dataset has it)",
    )
    p.add_argument(
        "--split", "-s", type=choice(SPLITS), choices=SPLITS, default="all", help="default: all"
    )
    add_dir(p, "destination folder")
    p.add_argument(
        "--flat",
        action="store_true",
        help="put the files straight into --dir, without a folder per dataset (the "
        "original download_data.py's layout; torchvision's with --dir <root>/KMNIST/raw)",
    )
    p.add_argument(
        "--mirror",
        "-m",
        action="append",
        metavar="URL",
        help="a mirror to use instead of the built-in ones; repeat for several",
    )
    p.add_argument(
        "--release",
        type=choice(RELEASES),
        choices=RELEASES,
        default=RELEASES[0],
        help="2019 (current, verified) or 2018 (first release, structure-checked only)",
    )
    p.add_argument(
        "--list",
        action="store_true",
        help="list the files (those of -d/-f/-s when given) and the mirrors, then exit",
    )
    p.add_argument(
        "--cite",
        action="store_true",
        help="print the BibTeX the dataset authors ask for, and the attribution line "
        "their licence asks for, then exit",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be fetched, resumed or skipped; touch no network",
    )
    p.add_argument("--force", action="store_true", help="fetch again even what is verified")
    p.add_argument(
        "--no-derive",
        action="store_true",
        help="the published files or a failure: never build a KMNIST .npz from the "
        "MNIST-format file when no mirror gives it",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="touch no network: hash every known file in --dir and say whether it is ok, "
        "partial, stale (2018 release), unreadable or corrupt; exit 0 only if all are ok. Without "
        "--dataset: every file that is there; with --dataset/--split: also what that "
        "selection lacks (missing)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="with --verify: the verdicts as JSON; with --list: every file's size, "
        "checksums and URLs",
    )
    p.add_argument(
        "--extract",
        action="store_true",
        help="with --dataset kkanji: after the download, unpack the archive safely "
        "and check the folder against the archive's own member index (counts are reported, "
        "not required: the published ones disagree)",
    )
    p.add_argument(
        "--preview",
        metavar="FILE",
        type=path,
        help="after the download, write a picture with a row of samples per class, its "
        "modern character first (one of kmnist, k49; the format follows the extension: "
        ".png, .jpg, ...; needs Pillow: pip install 'kmnist[preview]')",
    )
    p.add_argument(
        "--font",
        metavar="PATH",
        type=path,
        help="with --preview: a Japanese font to draw the characters with (default: one "
        "fontconfig finds; without one, the romanised names)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="print errors only")
    p.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="print every request on stderr: URL (without credentials), status, bytes, time",
    )
    p.add_argument(
        "--check-mirrors",
        action="store_true",
        help="ask each mirror for one byte of each selected file and print a table of "
        "mirror x file (status, size announced vs published, latency; --json for data); "
        "exit 0 when every file has a mirror with the right size. Run this first when a "
        "download fails",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help=(
            "no progress bars; the plan, what is waited for, the summary and errors are still "
            "printed"
        ),
    )
    p.add_argument(
        "--jobs",
        "-j",
        type=at_most(MAX_JOBS),
        default=JOBS,
        help=f"files at once (default: {JOBS}, at most {MAX_JOBS})",
    )
    p.add_argument(
        "--connections",
        type=at_most(MAX_CONNECTIONS),
        default=CONNECTIONS,
        help=(
            f"most connections to any one host (default: {CONNECTIONS}, at most {MAX_CONNECTIONS})"
        ),
    )
    p.add_argument(
        "--timeout",
        type=timeout,
        default=TIMEOUT,
        help=(
            "seconds a read may stall before the try is retried: "
            f"{MIN_TIMEOUT:.0f} to {MAX_TIMEOUT:.0f} (a day; default: {TIMEOUT:.0f})"
        ),
    )
    p.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    return p


def main(
    argv: Sequence[str] | None = None,
    *,
    prog: str = PROG,
    catalogue: Sequence[Entry] | None = None,
) -> int:
    """Entry point of ``kmnist-download`` and ``download_data.py``.

    ``catalogue``: the entries the command chooses from, fetches, checks and
    unpacks (None: the manifest's); the seam tests pass instead of replacing
    ``manifest.ENTRIES``.

    With no arguments at all it asks on a terminal (``kmnist.cli.interactive``),
    and says which flags to pass when there is no terminal to ask on. Every
    way a run can end is one line and an exit status: a signal too (see
    ``kmnist.signals``); argparse's own errors exit 2 through SystemExit.
    """

    def failed(exc: KmnistError | OSError) -> int:
        from ..errors import exit_status, one_line
        from .failures import hint, render

        # One renderer: each mirror's failure once, then a line per file, then the hint.
        for line in render([exc]):
            say(f"{prog}: error: {one_line(line)}")
        # After the questions there was no command line to run again with a
        # flag: the flow printed the one it ran ("the same as:"), above.
        asked = bool(parsed) and not (sys.argv[1:] if argv is None else argv)
        text = hint(
            [exc],
            catalogue=catalogue,
            command="the command above" if asked else "the same command",
        )
        if text:
            say(f"{prog}: hint: {one_line(text)}")
        return exit_status(exc)

    parsed: list[argparse.Namespace] = []  # the arguments, once parsed

    def fetches() -> bool:
        """Whether the run may have left .part files to resume (until parsed: it may)."""
        if not parsed:
            return True
        args = parsed[0]
        return not (args.cite or args.verify or args.list or args.check_mirrors or args.dry_run)

    return orderly(
        prog, lambda: _main(argv, prog, catalogue, parsed), failed=failed, resumable=fetches
    )


def _main(
    argv: Sequence[str] | None,
    prog: str,
    catalogue: Sequence[Entry] | None,
    parsed: list[argparse.Namespace],
) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _tolerant(sys.stderr)  # argparse names a bad value there, whatever its bytes
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    parsed.append(args)
    args.dir = data_root(args.dir)
    out: TextIO = _tolerant(sys.stdout)
    if out is not None:  # None: stdout closed (>&-), where print writes nothing
        out = GuardedOutput(out)  # type: ignore[assignment]
    if not argv:
        from .interactive import interact

        return interact(prog=prog, out=out, catalogue=catalogue)
    return run(args, out=out, catalogue=catalogue)


def _tolerant(stream: TextIO) -> TextIO:
    """``stream``, made to print any file name: one with bytes that are not UTF-8 too.

    Such a name reaches Python as lone surrogates, which a strict stream
    refuses with a UnicodeEncodeError in the middle of a report. A process's
    own stderr already escapes them (backslashreplace), and so does this.
    """
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None and getattr(stream, "errors", None) == "strict":
        reconfigure(errors="backslashreplace")
    return stream


def run(args: argparse.Namespace, *, out: TextIO, catalogue: Sequence[Entry] | None = None) -> int:
    # The catalogue is loaded here, not for --help (see catalogue/names.py).
    from ..catalogue.manifest import files_of, mirrors_from, select
    from . import report

    _one_mode(args)
    if out is None and (args.cite or args.list or args.dry_run):
        from .common import OutputFailed

        # Standard output closed (>&-): what these modes print is all they
        # do, and they said nothing and exited 0.
        raise OutputFailed(errno.EBADF, "it is closed")
    if args.cite:
        from ..catalogue.info import citation

        print(citation(), file=out)
        return ExitStatus.OK
    if args.verify:
        return _verify(args, out=out, catalogue=catalogue)
    _check_after_steps(args)
    mirrors = mirrors_from(args.mirror)
    if args.list:
        chosen = _listed(args, catalogue)
        show = report.catalogue_json if args.json else report.catalogue
        print(show(chosen, [m for m in mirrors if args.release in m.releases]), file=out)
        return ExitStatus.OK
    if not args.dataset and args.check_mirrors:
        args.dataset = ["all"]  # every file: which mirror serves what
    if not args.dataset:
        raise UsageError(
            "choose what to fetch: --dataset {" + ",".join([*DATASET_NAMES, "all"]) + "} "
            "(or --list to see every file)"
        )
    entries = select(args.dataset, args.format, args.split, args.release, entries=catalogue)
    if args.check_mirrors:
        return _check_mirrors(
            files_of(entries), args, mirrors=mirrors, out=out, catalogue=catalogue
        )
    request = _request(args, files_of(entries), mirrors, catalogue)
    fetched = session.download(request, out=out, quiet=args.quiet, dry_run=args.dry_run)
    if fetched is None:
        return ExitStatus.OK  # --dry-run: nothing was fetched to unpack or draw
    status: int = ExitStatus.OK
    if args.extract:
        status = max(
            status,
            session.extract(
                root=args.dir, force=args.force, quiet=args.quiet, out=out, catalogue=catalogue
            ),
        )
    if args.preview:
        _preview(args, out=out)
    return status


def _request(
    args: argparse.Namespace,
    files: Sequence[RemoteFile],
    mirrors: Sequence[Mirror],
    catalogue: Sequence[Entry] | None,
) -> DownloadRequest:
    """The command's flags as the library's typed request (argparse stops here)."""
    from ..downloader.progress import NotesOnly
    from ..downloader.request import DownloadOptions, DownloadRequest

    options = DownloadOptions(
        mirrors=tuple(mirrors),
        # --no-progress: no bars, but a wait is still said (a log must not look hung).
        progress=False if args.quiet else NotesOnly() if args.no_progress else True,
        force=args.force,
        flat=args.flat,
        jobs=args.jobs,
        connections=args.connections,
        timeout=session.timeouts(args.timeout),
        log=session.request_log(args.verbose),
        catalogue=catalogue,
        derive=not args.no_derive,
    )
    return DownloadRequest(tuple(files), args.dir, options)


def _check_mirrors(
    files: Sequence[RemoteFile],
    args: argparse.Namespace,
    *,
    mirrors: Sequence[Mirror],
    out: TextIO,
    catalogue: Sequence[Entry] | None,
) -> int:
    from ..downloader.probe import all_served, check_mirrors
    from ..downloader.transfer import check_network_environment, make_session

    usable = [m for m in mirrors if any(m.has(f, args.release) for f in files)]
    if any(not m.is_local for m in usable):
        check_network_environment()  # a bad $REQUESTS_CA_BUNDLE: one line, not a row per file
    http = make_session(f"kmnist/{__version__}", args.connections)
    try:
        probes = check_mirrors(
            files,
            usable,
            session=http,
            timeout=session.timeouts(args.timeout),
            log=session.request_log(args.verbose),
            catalogue=catalogue,
        )
    finally:
        http.close()
    from .report import probes_json, probes_text

    render = probes_json if args.json else probes_text
    print(render(files, probes), file=out)
    return ExitStatus.OK if all_served(files, probes) else ExitStatus.FAILURE


# --- steps on the files once they are there: audit, unpack, picture ---


def _verify(
    args: argparse.Namespace, *, out: TextIO, catalogue: Sequence[Entry] | None = None
) -> int:
    from ..data.audit import all_ok, audit, releases_here, render_json, render_text
    from ..storage.folders import check_readable

    if args.extract or args.preview:
        raise UsageError("--verify only reads: run --extract or --preview without it")
    check_readable(args.dir)
    reports = audit(
        root=args.dir,
        datasets=args.dataset,
        format=args.format,
        split=args.split,
        release=args.release,
        catalogue=catalogue,
    )
    if args.json:
        print(render_json(reports, root=args.dir), file=out)
    else:
        elsewhere = () if reports else releases_here(args.dir, args.release, catalogue)
        print(render_text(reports, root=args.dir, elsewhere=elsewhere), file=out)
    return ExitStatus.OK if all_ok(reports) else ExitStatus.FAILURE


def _one_mode(args: argparse.Namespace) -> None:
    """Refuse two modes at once: one was silently ranked above the other.

    ``--check-mirrors --dry-run`` probed the network that --dry-run promises
    not to touch; ``--verify --list`` verified; ``--cite --json`` cited in text.
    """
    modes = [
        flag
        for flag, on in (
            ("--cite", args.cite),
            ("--verify", args.verify),
            ("--list", args.list),
            ("--check-mirrors", args.check_mirrors),
            ("--dry-run", args.dry_run),
        )
        if on
    ]
    if len(modes) > 1:
        raise UsageError(f"{modes[0]} and {modes[1]} do not go together: choose one")
    if args.cite and args.json:
        raise UsageError("--json goes with --verify, --list or --check-mirrors")


def _check_after_steps(args: argparse.Namespace) -> None:
    """Refuse a request the steps after the download cannot honour, before downloading."""
    wanted = set(args.dataset or ())
    if args.json and not (args.list or args.check_mirrors):
        raise UsageError("--json goes with --verify, --list or --check-mirrors")
    if args.extract and not wanted & {"kkanji", "all"}:
        raise UsageError("--extract unpacks Kuzushiji-Kanji: add --dataset kkanji")
    if args.font and not args.preview:
        raise UsageError("--font goes with --preview")
    if args.preview:
        if len(wanted) != 1 or not wanted & {"kmnist", "k49"}:
            raise UsageError("--preview draws one dataset: --dataset kmnist or --dataset k49")
        from ..data.preview import check_target, japanese_font
        from ..optional import import_pillow

        # All now, not after a download: Pillow, the folder and extension, the font.
        import_pillow("--preview")
        check_target(args.preview)
        if args.font:
            japanese_font(args.dataset[0], args.font)
        else:
            # Looked for once, now: the picture uses what is found, and the
            # user hears before the download why its labels will be Latin.
            args.font = japanese_font(args.dataset[0])
            args.romanised = args.font is None
            if args.romanised and not args.quiet:
                from ..data.preview import NO_JAPANESE_FONT

                say(f"{PROG}: note: {NO_JAPANESE_FONT}")


def _listed(args: argparse.Namespace, catalogue: Sequence[Entry] | None = None) -> list[Entry]:
    """The catalogue entries ``--list`` shows: every format and split unless -d/-f/-s narrow it."""
    from ..catalogue.manifest import DATASETS, ENTRIES, select

    entries = ENTRIES if catalogue is None else catalogue
    in_release = [e for e in entries if e.release == args.release]
    names = [n for n in DATASETS if any(e.dataset == n for e in in_release)]
    if args.dataset and "all" not in args.dataset:
        names = list(dict.fromkeys(args.dataset))
    elif args.format:
        names = [n for n in names if args.format in DATASETS[n].formats]
    chosen: dict[str, Entry] = {}
    for name in names:
        for fmt in [args.format] if args.format else DATASETS[name].formats:
            try:
                found = select(name, fmt, args.split, args.release, entries=catalogue)
            except UsageError:
                if args.format:
                    raise  # asked for a format the dataset lacks: say so
                continue  # a format this release does not have
            chosen.update((e.file.path, e) for e in found)
    return list(chosen.values())


def _preview(args: argparse.Namespace, *, out: TextIO) -> None:
    from ..data.preview import preview

    dataset = args.dataset[0]  # _check_after_steps made sure it is the one
    # The test split is the smaller; "train" only when that is all there is.
    split = "train" if args.split == "train" else "test"
    path = preview(
        dataset,
        out=args.preview,
        root=args.dir,
        split=split,
        format=args.format,
        font=args.font,
        romanised=getattr(args, "romanised", False),  # no font found: not looked for again
    )
    if not args.quiet:
        print(f"wrote {path}: {dataset} {split}, a row of samples per class", file=out)
