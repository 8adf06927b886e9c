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
        return _in_working_folder(check_folder(root, "--dir"), "--dir")
    env = os.environ.get(DATA_ENV, "").strip()
    if not env:
        return _in_working_folder(Path(DEFAULT_DATA), "the default data folder")
    source = f"${DATA_ENV}"
    check_folder(env, source)  # as set first: expanduser looks "~name" up, and "~\0" raised
    folder = check_folder(os.path.expanduser(env), source, given=env)
    _check_env_folder(env, folder, source)
    return _in_working_folder(folder, source)


def _in_working_folder(folder: Path, source: str) -> Path:
    """``folder``; a UsageError when it is relative to a working folder that was deleted.

    A shell left in a deleted folder gave, for each file, ``data: No such file
    or directory``; ``kmnist.load`` said the files were missing.
    """
    if folder.is_absolute():
        return folder
    try:
        os.getcwd()
    except FileNotFoundError:
        from ..errors import UsageError
        from ..inputs import shown

        raise UsageError(
            f"{source} {shown(str(folder))} is inside the working folder, which no longer "
            "exists (deleted while this shell was in it): cd to a folder that exists, or give "
            "a full path"
        ) from None
    return folder


def _check_env_folder(env: str, folder: Path, source: str) -> None:
    """A UsageError for a ``$KMNIST_DATA`` that cannot be the data folder, naming the variable.

    ``~nosuchuser/data`` stayed as it was and became a folder of that name in
    the working folder; ``file:///srv/data`` (a mirror's form) the folder
    ``file:/srv/data`` there; a file (or a file above it) was said as
    ``--dir ... is not a folder``, a flag the user had not given.
    """
    import re

    from ..errors import UsageError
    from ..inputs import not_a_folder, shown

    label = f"{source} {shown(env)}"
    if env.startswith("~") and str(folder).startswith("~"):
        user = re.split(r"[/\\]", env, maxsplit=1)[0][1:]
        who = f"no user {user!r} here" if user else "no home folder is known ($HOME is unset)"
        raise UsageError(f"{label}: {who}, so its ~ names nothing: write the folder in full")
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", env):
        raise UsageError(
            f"{label} is a URL: the data folder is a folder on this machine"
            " (a mirror to download from goes in $KMNIST_MIRROR)"
        )
    probe = folder
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    kind = not_a_folder(probe)
    if kind is not None:
        where = " is" if probe == folder else f": {shown(str(probe))} above it is"
        raise UsageError(f"{label}{where} {kind}, not a folder: name a folder")
