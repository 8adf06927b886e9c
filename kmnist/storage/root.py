"""Which folder is the data folder: the one named, else ``$KMNIST_DATA``, else ``./data``.

Apart from :mod:`kmnist.storage.layout` because the command needs it (and its
names for ``--help``) before anything touches the disk.
"""

from __future__ import annotations

import os

# pathlib costs ~2.5 ms of a 25 ms `--help`, which imports this module: it is
# imported when a folder is resolved (mypy reads TYPE_CHECKING = False as typing's).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

# The folder used when none is named. One folder for every script and job
# (a cluster's shared data disk, a scratch volume) is the common wish that
# TFDS_DATA_DIR and TORCH_HOME serve elsewhere; without it, ./data as the
# original script had.
DATA_ENV = "KMNIST_DATA"
DEFAULT_DATA = "data"


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """``root`` when given, else ``$KMNIST_DATA``, else ``data`` in the working folder.

    A folder no filesystem could hold (a NUL byte, thousands of levels) is a
    UsageError naming it and where it came from.
    """
    from pathlib import Path

    from ..inputs import check_folder

    if root is not None:
        return check_folder(root, "--dir")
    env = os.environ.get(DATA_ENV, "").strip()
    if not env:
        return Path(DEFAULT_DATA)
    return check_folder(os.path.expanduser(env), f"${DATA_ENV}")
