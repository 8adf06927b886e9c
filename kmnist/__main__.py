"""``python -m kmnist``: the same as ``kmnist-download``."""

import sys

from .signals import block_early, mend_import_lock

# Held until main() can answer a signal with one line; see kmnist.signals.
block_early()
mend_import_lock()

from .cli.download import main  # noqa: E402 - imported once the signals are held

sys.exit(main(prog="python -m kmnist"))
