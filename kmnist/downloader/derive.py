"""The NumPy-format KMNIST files, built from the verified MNIST-format ones.

When no mirror gives the published ``.npz`` (the two CDN copies carry the
MNIST format only, the official host is out of reach from many networks, a
stale mirror serves the 2018 bytes), every mirror that lists it having been
tried from byte 0, the same array is built locally from the IDX file of the
same split: the last resort of the dataset path (``kmnist.download``, the
command, the questions), never of ``download_files``, and only for the
catalogue's own file (path, size and hashes). ``arr_0``,
uint8, same shape and order, under the published name, so code that does
``np.load(f)["arr_0"]`` keeps working. Its bytes are not the published ones
(a zip has timestamps), so it is never passed off as verified: its stamp says
what it was derived from, and ``--verify`` and :func:`kmnist.load` check it by
comparing arrays with that source, itself verified against its checksum.
Pure steps: the Downloader (:mod:`kmnist.downloader.run`) fetches the source
and calls them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..catalogue import manifest
from ..catalogue.manifest import CURRENT_RELEASE, Entry, RemoteFile
from ..errors import VerificationError
from ..storage import layout as storage
from ..storage.partfile import state_path
from ..verify import verify_path


def _sources(entries: Sequence[Entry]) -> dict[RemoteFile, Entry]:
    """npz file -> the MNIST-format entry it can be built from, in ``entries``.

    KMNIST only: K49 and Kanji were never published in another format. Only
    from a source with a published checksum: a built file is called verified
    because its source is, and one checked by size alone (a catalogue of the
    caller's without hashes) would pass any bytes of that length on.
    """
    current = [e for e in entries if e.release == CURRENT_RELEASE and e.dataset == "kmnist"]
    idx = {(e.split, e.kind): e for e in current if e.format == "mnist" and e.file.verified}
    return {
        e.file: idx[(e.split, e.kind)]
        for e in current
        if e.format == "npz" and (e.split, e.kind) in idx
    }


def source_of(file: RemoteFile, *, catalogue: Sequence[Entry] | None = None) -> RemoteFile | None:
    """The MNIST-format file ``file`` can be built from, in ``catalogue`` (None: the manifest).

    Only for the catalogue's own file, matched by path, size and every hash:
    a caller who asks for other figures under the same path asked for other
    bytes, and a built file has none of them. Looked up in the catalogue of
    the call, so that a replaced one is followed.
    """
    e = _sources(manifest.ENTRIES if catalogue is None else catalogue).get(file)
    return e.file if e is not None else None


def expectation(file: RemoteFile, *, catalogue: Sequence[Entry] | None = None) -> str:
    """What a derived file's stamp records (``storage.layout.write_stamp``'s ``expect``)."""
    src = source_of(file, catalogue=catalogue)
    assert src is not None
    return f"derived from {src.path} (sha256 {src.sha256}), arr_0 equal to its array"


def is_derived(file: RemoteFile, path: Path, *, catalogue: Sequence[Entry] | None = None) -> bool:
    """True when ``path`` is a file this module built, unchanged since."""
    return source_of(file, catalogue=catalogue) is not None and storage.has_stamp(
        path, expectation(file, catalogue=catalogue)
    )


def check_derived(file: RemoteFile, path: Path, *, catalogue: Sequence[Entry] | None = None) -> str:
    """Check a derived file: its source is verified, and its array equals the source's.

    Returns how it was checked, in :func:`kmnist.verify.verify_path`'s words (a
    report adds "matches"); raises VerificationError otherwise.
    """
    import numpy as np

    from ..formats import read_idx, read_npz

    src = source_of(file, catalogue=catalogue)
    assert src is not None
    source = path.with_name(src.name)
    # Said of the source, by name: its figures under the built file's name
    # read as the built file's own ("wrong sha256: expected <the source's>").
    if not source.is_file():
        raise VerificationError(
            file.path,
            "disk",
            f"source ({src.name}, the file it was built from)",
            "it beside this file",
            "nothing: run the download again to fetch it",
        )
    try:
        how = verify_path(src, source)
    except VerificationError as exc:
        what = f"{exc.what} of its source {src.name}"
        raise VerificationError(file.path, "disk", what, exc.expected, exc.got) from None
    ndim = 3 if "imgs" in file.name else 1
    ours = read_npz(path, ndim=ndim, name=file.path)
    theirs = read_idx(source, ndim=ndim, name=src.path)
    if ours.shape != theirs.shape or not np.array_equal(ours, theirs):
        raise VerificationError(
            file.path, "disk", "array", f"the array of {src.name}", "other values"
        )
    # A report adds " matches" (as after "sha256"): said once, not twice.
    return f"derived from {src.name} (arrays equal), and its {how}"


def build(
    file: RemoteFile, target: Path, source: Path, *, catalogue: Sequence[Entry] | None = None
) -> None:
    """Write ``target`` from the verified IDX file ``source``; stamp it as derived."""
    import numpy as np

    from ..formats import read_idx

    src = source_of(file, catalogue=catalogue)
    assert src is not None
    ndim = 3 if "imgs" in file.name else 1
    array = read_idx(source, ndim=ndim, name=src.path)
    part = storage.part_path(target)
    # Not through a link planted at the .part, nor onto one at the final name.
    try:
        with storage.open_part(part, "wb") as fh:
            np.savez_compressed(fh, arr_0=array)  # as published: one compressed arr_0
    except BaseException:
        # A full disk, Ctrl-C: half a zip is nothing to resume from (the next
        # run would take it for the start of the published file).
        storage.discard(part)
        raise
    storage.promote(part, target)
    # A range record left by a ranged try of the published file describes a
    # .part that is gone now: no bookkeeping outlives the file it was for.
    storage.discard(state_path(target))
    storage.write_stamp(target, expectation(file, catalogue=catalogue))
