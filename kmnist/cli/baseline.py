"""``kmnist-baseline``: run one of the paper's baselines and print its score beside the paper's.

A thin shell over :mod:`kmnist.baselines`, like ``kmnist-download`` over the
download functions: flags in, two lines (or one JSON object) out, and the
exit status from :func:`kmnist.errors.exit_status`. NumPy and PyTorch are
imported only once a model runs, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._version import __version__
from ..catalogue.names import DATASET_ALIASES
from ..errors import ExitStatus, KmnistError, NotDownloaded, UsageError, VerificationError
from ..inputs import shell_word
from ..storage.root import DATA_ENV, data_root
from .common import (
    GuardedOutput,
    OutputFailed,
    add_dir,
    at_most,
    fail,
    option_words,
    orderly,
    positive,
)
from .suggest import OneLineParser, choice

if TYPE_CHECKING:
    from pathlib import Path

    from ..catalogue.manifest import Entry

PROG = "kmnist-baseline"
MODELS = ("knn", "cnn")
DATASETS = ("kmnist", "k49")  # the two with published baseline figures
EPOCHS = 12  # the Keras script's
K = 4  # the paper's script's n_neighbors
HOLDOUT = 2000  # kmnist.baselines.HOLDOUT, without importing NumPy for --help
# Where NumPy's BLAS reads its thread count, once, when NumPy is imported.
BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# What a file on disk fails that --download replaces (not a folder where the file goes).
REFETCHED = ("size", "sha256", "md5")
# kmnist.baselines.MAX_THREADS, without importing it for --help.
MAX_THREADS = 1024


class OneDataset(argparse.Action):
    """``--dataset`` given twice with two names is an error, not the last one silently.

    kmnist-download takes ``-d kmnist -d k49`` as both; here it scored k49 alone.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        before = getattr(namespace, self.dest, None)
        if before is not None and before != values:
            parser.error(
                f"argument --dataset/-d: given twice ({before}, {values}): a run scores one "
                "dataset; run the command once for each"
            )
        setattr(namespace, self.dest, values)


def seed_type(text: str) -> int:
    """argparse type: a seed, 0 to 2**63 - 1 (what torch.manual_seed takes)."""
    value = int(text)
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2**63 - 1, not {text!r}")
    return value


def device_type(text: str) -> str:
    """argparse type: cpu, cuda or cuda:N (whether CUDA is there is known only once torch is)."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"choose cpu, cuda or cuda:N, not {text!r}")
    return text


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    # kmnist-download's parser class: usage errors in the same one line.
    p = OneLineParser(
        prog=prog,
        description=(
            "Run a baseline of the Kuzushiji-MNIST paper (Clanuwat et al. 2018) on the "
            "files in --dir and print its accuracy and balanced accuracy beside the figure "
            "the authors published for the same data release (February 2019, what "
            "kmnist-download fetches), saying 'not comparable' when the run is not the "
            "published protocol. knn: 4 nearest neighbours weighted by 1/distance on raw "
            "pixels (NumPy). cnn: the paper's simple Keras CNN, ported to PyTorch "
            "(needs: pip install torch)."
        ),
        epilog="Exit status: 0 ok, 1 failure (files missing or wrong), 2 bad usage, "
        "130 interrupted.",
    )
    p.add_argument("model", type=choice(MODELS), choices=MODELS, help="which baseline")
    p.add_argument(
        "--dataset",
        "-d",
        required=True,
        action=OneDataset,
        type=choice(DATASETS, DATASET_ALIASES),
        choices=DATASETS,
    )
    add_dir(p, "where the files are")
    p.add_argument(
        "--download",
        action="store_true",
        help="fetch the dataset's files first where missing (as kmnist-download does)",
    )
    p.add_argument(
        "--limit",
        type=positive,
        metavar="N",
        help="only the first N training and N test images (a quick run, not the benchmark)",
    )
    p.add_argument(
        "--test-split-only",
        action="store_true",
        help="use the test split alone: learn from its first images, score its last "
        f"--holdout (default {HOLDOUT:,}); runs without the training files, and is not "
        "the paper's figure",
    )
    p.add_argument(
        "--holdout",
        type=positive,
        metavar="N",
        help=f"with --test-split-only: how many test images to score (default {HOLDOUT:,})",
    )
    p.add_argument("--k", type=positive, metavar="N", help=f"knn only: neighbours (default {K})")
    p.add_argument(
        "--epochs", type=positive, metavar="N", help=f"cnn only: epochs (default: {EPOCHS})"
    )
    p.add_argument(
        "--seed",
        type=seed_type,
        metavar="N",
        help="cnn only: seed of the initial weights, dropout and shuffling (default 0)",
    )
    p.add_argument(
        "--threads",
        type=at_most(MAX_THREADS),
        metavar="N",
        help="CPU threads: cnn's figure depends on them, so fix them to repeat a run "
        # At most MAX_THREADS, said by the error (docs/command.md is generated from this).
        "(default: PyTorch's); knn's does not (exact arithmetic), this only limits its speed",
    )
    p.add_argument(
        "--device",
        type=device_type,
        default="cpu",
        help="cnn only: cpu (default), cuda or cuda:N when PyTorch sees a CUDA device",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: figures, published figure and difference, sizes, "
        "settings, library versions, sha256 of the input files, time",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def main(
    argv: Sequence[str] | None = None,
    *,
    prog: str = PROG,
    catalogue: Sequence[Entry] | None = None,
) -> int:
    """Entry point of ``kmnist-baseline``: returns the exit status.

    ``catalogue``: the entries the files are looked up, checked and fetched in
    (None: the manifest's), as ``kmnist.cli.download.main`` takes it.
    """
    args = build_parser(prog).parse_args(argv)

    def body() -> int:
        # In here, not before: a --dir or $KMNIST_DATA no filesystem could
        # hold is a UsageError, and outside it was a traceback.
        args.dir = data_folder(args.dir)
        print(run(args, catalogue=catalogue, out=sys.stdout), file=GuardedOutput(sys.stdout))
        return ExitStatus.OK

    def failed(exc: KmnistError | OSError) -> int:
        # The files missing (said as the command's user needs it), wrong
        # (VerificationError) or not to be had (DownloadError), PyTorch
        # missing, bad usage: one line, no traceback.
        if isinstance(exc, NotDownloaded):
            return fail(prog, NotDownloaded(missing_message(exc, args)))
        if (
            isinstance(exc, VerificationError)
            and exc.source == "disk"
            and exc.what in REFETCHED
            and not args.download
        ):
            # A file on disk that is not the published one: say what fixes it.
            return fail(prog, KmnistError(f"{exc}; add --download to fetch it again"))
        return fail(prog, exc)

    # --download keeps .part files as kmnist-download does.
    return orderly(prog, body, failed=failed, resumable=bool(args.download))


def data_folder(given: Path | None) -> Path:
    """The data folder (``--dir``, else ``$KMNIST_DATA``, else ``./data``), as the user named it.

    One that is a file (a pipe, a dead link) is a UsageError naming ``--dir`` or
    the variable: the loader's own said "root", a Python argument.
    """
    from ..inputs import check_folder_exists

    folder = data_root(given)
    if given is not None:
        source = "--dir"
    elif os.environ.get(DATA_ENV, "").strip():
        source = f"${DATA_ENV}"
    else:
        source = "the data folder"
    check_folder_exists(folder, source)
    return folder


def missing_message(exc: NotDownloaded, args: argparse.Namespace) -> str:
    """What a command-line user can do about missing files: commands and flags, not Python."""
    from ..baselines import MissingInputs

    if not isinstance(exc, MissingInputs):
        return f"{exc}; or add --download to this command"
    names = ", ".join(str(p) for p in exc.missing)
    command = ["kmnist-download", "--dataset", exc.dataset, *option_words("--dir", str(exc.root))]
    line = (
        f"{exc.dataset} {exc.split}: missing {names}; get them with: "
        f"{' '.join(map(shell_word, command))}, or add --download to this command"
    )
    if exc.split == "train":
        # The test split is read first, so it is here: it can be used on its own.
        line += "; or --test-split-only to score part of the test split (not the paper's figure)"
    return line


def run(
    args: argparse.Namespace,
    *,
    catalogue: Sequence[Entry] | None = None,
    out: object = True,
) -> str:
    """The run the flags ask for, as the text to print.

    ``out``: where it will be printed; None (standard output closed, ``>&-``)
    is an error once the flags are checked, before minutes of work whose
    figure could not be shown (it said nothing and exited 0).
    """
    cnn_only = {"--epochs": args.epochs, "--seed": args.seed}
    if args.model == "knn":
        for flag, value in cnn_only.items():
            if value is not None:
                raise UsageError(f"{flag} goes with cnn; knn neither trains nor draws at random")
        if args.device != "cpu":
            raise UsageError("--device goes with cnn; knn runs on the CPU, in NumPy")
    elif args.k is not None:
        raise UsageError("--k goes with knn")
    if args.holdout is not None and not args.test_split_only:
        raise UsageError("--holdout goes with --test-split-only")
    holdout = (args.holdout or HOLDOUT) if args.test_split_only else None
    if holdout is not None and args.limit is not None and holdout >= args.limit:
        # Said here, before the files are read, and with the flag that set it:
        # "holdout 2000 leaves none of the 4 test images" named a holdout the
        # user had not given.
        given = "--holdout" if args.holdout is not None else "--holdout's default"
        raise UsageError(
            f"--test-split-only scores the last {holdout:,} test images ({given}), which "
            f"leaves none of the {args.limit:,} that --limit keeps to learn from: give "
            "--holdout below --limit, or a larger --limit"
        )
    if out is None:
        import errno

        raise OutputFailed(errno.EBADF, "it is closed")
    if args.model == "knn" and args.threads is not None and "numpy" not in sys.modules:
        for name in BLAS_THREADS:  # read once, when NumPy loads its BLAS
            os.environ[name] = str(args.threads)

    from .. import baselines

    common = {
        "root": args.dir,
        "download": args.download,
        "limit": args.limit,
        "holdout": holdout,
        "progress": True,
        "catalogue": catalogue,
    }
    if args.model == "knn":
        score = baselines.knn(args.dataset, k=args.k or K, **common)
    else:
        score = baselines.cnn(
            args.dataset,
            epochs=args.epochs or EPOCHS,
            seed=args.seed or 0,
            threads=args.threads,
            device=args.device,
            **common,
        )
    if args.json:
        return json.dumps(score.as_json())
    return score.summary()


if __name__ == "__main__":
    sys.exit(main())
