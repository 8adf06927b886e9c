"""``python -m kmnist``: the same as ``kmnist-download``."""

import sys

from .signals import block_early

# Held until main() can answer a signal with one line; see kmnist.signals.
block_early()

from .cli.download import main  # noqa: E402 - imported once the signals are held

sys.exit(main(prog="python -m kmnist"))
