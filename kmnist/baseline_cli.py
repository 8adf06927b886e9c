"""``kmnist-baseline``: run one of the paper's baselines and print its score beside the paper's.

A thin shell over :mod:`kmnist.baselines`, like ``kmnist-download`` over the
download functions: flags in, one line out, and the exit status from
:func:`kmnist.errors.exit_status`. NumPy and PyTorch are imported only once
a model runs, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .command import add_dir, fail, positive
from .errors import ExitStatus, KmnistError, NotDownloaded, UsageError
from .storage import data_root

PROG = "kmnist-baseline"
MODELS = ("knn", "cnn")
DATASETS = ("kmnist", "k49")  # the two with published baseline figures
EPOCHS = 12  # the Keras script's


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Run a baseline of the Kuzushiji-MNIST paper (Clanuwat et al. 2018) on the "
            "files in --dir and print its accuracy and balanced accuracy beside the "
            "published figure. knn: 4 nearest neighbours weighted by 1/distance on raw "
            "pixels (NumPy). cnn: the paper's simple Keras CNN, ported to PyTorch "
            "(needs: pip install torch)."
        ),
        epilog="Exit status: 0 ok, 1 failure (files missing or wrong), 2 bad usage, "
        "130 interrupted.",
    )
    p.add_argument("model", choices=MODELS, help="which baseline")
    p.add_argument("--dataset", "-d", required=True, choices=DATASETS)
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
        "--epochs", type=positive, metavar="N", help=f"cnn only: epochs (default: {EPOCHS})"
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    """Entry point of ``kmnist-baseline``: returns the exit status."""
    args = build_parser(prog).parse_args(argv)
    args.dir = data_root(args.dir)
    try:
        line = run(args)
    except NotDownloaded as exc:
        # The loader's message speaks to Python (download=True); here the
        # same thing is a flag.
        return fail(prog, NotDownloaded(f"{exc}; or add --download to this command"))
    except (KeyboardInterrupt, KmnistError, OSError) as exc:
        # The files missing (NotDownloaded), wrong (VerificationError) or not to
        # be had (DownloadError), PyTorch missing: one line, no traceback.
        return fail(prog, exc)
    print(line)
    return ExitStatus.OK


def run(args: argparse.Namespace) -> str:
    from . import baselines

    if args.model == "knn":
        if args.epochs is not None:
            raise UsageError("--epochs goes with cnn; knn does not train")
        score = baselines.knn(
            args.dataset, root=args.dir, download=args.download, limit=args.limit, progress=True
        )
    else:
        score = baselines.cnn(
            args.dataset,
            root=args.dir,
            epochs=args.epochs or EPOCHS,
            download=args.download,
            limit=args.limit,
            progress=True,
        )
    return score.summary()


if __name__ == "__main__":
    sys.exit(main())
