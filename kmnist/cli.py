"""``kmnist-download``: turn flags into a library call and its outcome into an exit code."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from . import __version__
from .errors import DownloadsFailed, ExitStatus, KmnistError, UsageError, exit_status
from .manifest import (
    DATASETS,
    ENTRIES,
    MIRROR_ENV,
    RELEASES,
    SPLITS,
    files_of,
    mirrors_from,
    select,
)

PROG = "kmnist-download"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
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
            "Exit status: 0 ok, 1 failure, 2 bad usage, 130 interrupted."
        ),
    )
    formats = sorted({f for d in DATASETS.values() for f in d.formats})
    p.add_argument(
        "--dataset",
        "-d",
        action="append",
        choices=[*DATASETS, "all"],
        help="dataset to fetch; repeat for several",
    )
    p.add_argument(
        "--format",
        "-f",
        choices=formats,
        help="file format (default: npz where the dataset has it)",
    )
    p.add_argument("--split", "-s", choices=SPLITS, default="all", help="default: all")
    p.add_argument("--dir", default="data", type=Path, help="destination folder (default: ./data)")
    p.add_argument(
        "--mirror",
        "-m",
        action="append",
        metavar="URL",
        help="a mirror to use instead of the built-in ones; repeat for several",
    )
    p.add_argument(
        "--release",
        choices=RELEASES,
        default=RELEASES[0],
        help="2019 (current, verified) or 2018 (first release, structure-checked only)",
    )
    p.add_argument("--list", action="store_true", help="list every file and mirror, then exit")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be fetched, resumed or skipped; touch no network",
    )
    p.add_argument("--force", action="store_true", help="fetch again even what is verified")
    p.add_argument("--quiet", "-q", action="store_true", help="print errors only")
    p.add_argument("--jobs", "-j", type=_positive, default=4, help="files at once (default: 4)")
    p.add_argument(
        "--connections",
        type=_positive,
        default=4,
        help="most connections to any one host (default: 4)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds a read may stall before the try is retried (default: 30)",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    """Entry point of ``kmnist-download`` and ``download_data.py``."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    out: TextIO = sys.stdout
    try:
        return run(args, out=out)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; run the same command again to resume", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except DownloadsFailed as exc:
        for f in exc.failures:
            print(f"{prog}: error: {f}", file=sys.stderr)
        return exc.exit_status
    except KmnistError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exit_status(exc)
    except OSError as exc:
        # A folder that cannot be created or written: the user's to fix.
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return ExitStatus.FAILURE


def run(args: argparse.Namespace, *, out: TextIO) -> int:
    from . import report

    mirrors = mirrors_from(args.mirror)
    if args.list:
        wanted = set(args.dataset or ["all"])
        chosen = [
            e
            for e in ENTRIES
            if e.release == args.release and ("all" in wanted or e.dataset in wanted)
        ]
        print(
            report.catalogue(chosen, [m for m in mirrors if args.release in m.releases]), file=out
        )
        return ExitStatus.OK
    if not args.dataset:
        raise UsageError(
            "choose what to fetch: --dataset {" + ",".join([*DATASETS, "all"]) + "} "
            "(or --list to see every file)"
        )
    entries = select(args.dataset, args.format, args.split, args.release)
    files = files_of(entries)
    root: Path = args.dir
    if root.exists() and not root.is_dir():
        raise UsageError(f"--dir {root} is a file, not a folder")

    from .fetch import Downloader

    downloader = Downloader(
        mirrors=list(mirrors),
        progress=not args.quiet,
        jobs=args.jobs,
        connections=args.connections,
        timeout=(min(10.0, args.timeout), args.timeout),
    )
    plan = downloader.plan(files, root, force=args.force)
    if args.dry_run:
        print(report.plan(plan, root, downloader.mirrors), file=out)
        return ExitStatus.OK
    started = time.monotonic()
    results = downloader.run(plan)
    if not args.quiet:
        print(report.results(results, root, time.monotonic() - started), file=out)
    return ExitStatus.OK
