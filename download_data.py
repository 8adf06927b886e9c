#!/usr/bin/env python3
"""Download the Kuzushiji datasets: ``python download_data.py --help``.

The same command as ``kmnist-download``; kept at the top of the repository
because that is where users of the original project look for it.
"""

import signal
import sys

if __name__ == "__main__":
    # Ctrl-C, SIGTERM and SIGHUP are held while the package is imported, and
    # answered by main() in one line (kmnist/signals.py says why).
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(
            signal.SIG_BLOCK,
            [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)],
        )
    from kmnist.cli.download import main

    sys.exit(main(prog="download_data.py"))
