#!/usr/bin/env python3
"""Download the Kuzushiji datasets: ``python download_data.py --help``.

The same command as ``kmnist-download``; kept at the top of the repository
because that is where users of the original project look for it.
"""

import sys

from kmnist.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="download_data.py"))
