"""``python -m kmnist``: the same as ``kmnist-download``."""

import sys

from .cli import main

sys.exit(main(prog="python -m kmnist"))
