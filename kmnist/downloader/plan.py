"""What to do for each file: fetch, resume, skip or refetch. Decisions only.

``decide`` is pure; ``inspect`` looks at the disk (and hashes a file that is
already there) but writes nothing, so ``--dry-run`` shows exactly the plan a
real run follows and leaves the folder as it was. A final file found good
and not yet stamped carries what it looked like (``Step.stamp``): the run,
not the plan, records the stamp.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..catalogue.manifest import Entry, RemoteFile
from ..errors import UsageError, VerificationError
from ..storage import layout as storage
from ..storage.partfile import PartFile
from ..verify import expectation, verify_path
from .outcome import Check, check_of


class Action(enum.Enum):
    FETCH = "fetch"  # nothing on disk
    RESUME = "resume"  # a .part holds the first bytes
    SKIP = "skip"  # the final file is there and verified
    REFETCH = "refetch"  # the final file is there but wrong (or --force)


@dataclass(frozen=True)
class DiskState:
    """What is on disk for one file."""

    final_ok: bool | None  # None: no final file
    part_size: int | None  # usable bytes of the .part; None: no .part
    problem: str | None = None  # why a final file is not ok
    check: Check | None = None  # how a good final file was checked
    # A good final file hashed now, as it was before the hash: the run stamps
    # it if it still looks so. None: stamped already, or nothing to stamp.
    stamp: os.stat_result | None = None


@dataclass(frozen=True)
class Step:
    """What the run will do with one file, and what it found on disk."""

    file: RemoteFile
    target: Path
    action: Action
    have: int  # bytes already on disk that will be kept
    note: str | None = None
    check: Check | None = None  # SKIP: how the final file was checked
    stamp: os.stat_result | None = None  # SKIP: see DiskState.stamp
    built: bool = False  # the final file there was built from another format
    forced: bool = False  # REFETCH because --force said so, not because the file was wrong

    @property
    def todo(self) -> int | None:
        """Bytes still to transfer (None when the size is not published)."""
        if self.action is Action.SKIP:
            return 0
        if self.file.size is None:
            return None
        return max(self.file.size - self.have, 0)


@dataclass(frozen=True)
class Plan:
    """The steps of a run, one per file asked for, in order."""

    steps: tuple[Step, ...]

    @property
    def todo_bytes(self) -> int:
        return sum(s.todo or 0 for s in self.steps)

    @property
    def unknown_sizes(self) -> int:
        return sum(1 for s in self.steps if s.todo is None)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)


def decide(file: RemoteFile, state: DiskState, *, force: bool = False) -> tuple[Action, int]:
    """The action for one file, and how many bytes of the .part it keeps.

    A file built from the MNIST-format one is not the published bytes: it is
    fetched again, and kept only if no mirror has the published file yet.
    """
    if state.final_ok and not force and state.check is not Check.DERIVED:
        return Action.SKIP, 0
    part = state.part_size or 0
    usable = part > 0 and (file.size is None or part <= file.size)
    if state.final_ok is not None:
        # A wrong (or forcibly refetched) final file is replaced; a .part beside
        # it is still a valid head start.
        return Action.REFETCH, part if usable else 0
    if usable:
        return Action.RESUME, part
    return Action.FETCH, 0


def inspect(
    file: RemoteFile,
    target: Path,
    *,
    check_final: bool = True,
    catalogue: Sequence[Entry] | None = None,
) -> DiskState:
    """Look at the disk for one file: is the final file verified, how big is the .part.

    ``catalogue``: where a derived file's source is looked up (None: the manifest).
    """
    part = (
        PartFile.load(target, file.size, tidy=False).have
        if storage.part_path(target).exists()
        else None
    )
    if not target.exists():
        return DiskState(final_ok=None, part_size=part)
    if not check_final:
        return DiskState(final_ok=True, part_size=part)
    try:
        final = verify_final(file, target, catalogue=catalogue)
    except VerificationError as exc:
        return DiskState(final_ok=False, part_size=part, problem=f"wrong {exc.what}")
    except OSError as exc:
        # In words, not Python's "[Errno 13] Permission denied: '/full/path'".
        why = (exc.strerror or type(exc).__name__).lower()
        return DiskState(final_ok=False, part_size=part, problem=f"cannot be read ({why})")
    return DiskState(final_ok=True, part_size=part, check=final.check, stamp=final.stamp)


@dataclass(frozen=True)
class FinalCheck:
    """A final file found good: how, and (when it was hashed now) its figures before."""

    check: Check
    stamp: os.stat_result | None  # None: an earlier stamp vouched for it


def verify_final(
    file: RemoteFile, target: Path, *, catalogue: Sequence[Entry] | None = None
) -> FinalCheck:
    """Check a final file, trusting a stamp of an earlier check while the file is unchanged.

    Writes nothing (see :func:`stamp`). Raises VerificationError or OSError.
    """
    if storage.has_stamp(target, expectation(file)):
        return FinalCheck(check_of(file), None)
    from .derive import is_derived

    if is_derived(
        file, target, catalogue=catalogue
    ):  # built from the MNIST-format file when no mirror had it
        return FinalCheck(Check.DERIVED, None)
    before = target.stat()  # taken first: a write during the hash changes its ctime
    verify_path(file, target)
    return FinalCheck(check_of(file), before)


def stamp(file: RemoteFile, target: Path, seen: os.stat_result | None) -> None:
    """Record the check of a final file hashed while planning, if it is unchanged since."""
    if seen is not None:
        storage.write_stamp(target, expectation(file), as_seen=seen)


def make_plan(
    files: list[RemoteFile],
    root: Path,
    *,
    force: bool = False,
    flat: bool = False,
    catalogue: Sequence[Entry] | None = None,
) -> Plan:
    """A step per file, its target ``root/<path>``, or ``root/<name>`` when ``flat``.

    Flat is the original download_data.py's layout, and with ``root`` at
    ``<somewhere>/KMNIST/raw`` the one torchvision's ``KMNIST`` reads.
    """
    from ..inputs import check_folder

    check_folder(root, "the data folder")  # a library caller's root, checked as --dir is
    steps = []
    seen: dict[Path, RemoteFile] = {}
    for f in files:
        target = root / (f.name if flat else f.path)
        if target in seen:
            # Only possible flat: the same name from two folders (two releases).
            raise UsageError(f"{seen[target].path} and {f.path} would both be {target}")
        seen[target] = f
        storage.check_folders_between(root, target)
        if flat:
            _check_not_another_releases(f, target, catalogue)
        state = inspect(f, target, check_final=not force, catalogue=catalogue)
        action, have = decide(f, state, force=force)
        steps.append(_step(f, target, action, have, state, forced=force))
    return Plan(tuple(steps))


def _check_not_another_releases(
    file: RemoteFile, target: Path, catalogue: Sequence[Entry] | None
) -> None:
    """Flat, a release's file may be at ``target`` under the same name: never taken, nor replaced.

    The 2018 MNIST-format files have no published checksum, only a
    structure, and the 2019 ones of the same names pass it: a verified 2019
    file was skipped as the 2018 one, or replaced by it with --force.
    """
    from ..catalogue.manifest import ENTRIES

    if file.sha256 is not None or not target.is_file():
        return
    size = target.stat().st_size
    for e in ENTRIES if catalogue is None else catalogue:
        other = e.file
        if other.name != file.name or other.path == file.path or other.size != size:
            continue
        try:
            verify_path(other, target)
        except (VerificationError, OSError):
            continue
        raise UsageError(
            f"{target} is the {e.release} release's {other.name}, verified; --flat gives both "
            f"releases' files one name: choose another --dir for {file.path}"
        )


def _step(
    file: RemoteFile, target: Path, action: Action, have: int, state: DiskState, *, forced: bool
) -> Step:
    if state.check is Check.DERIVED and action is Action.REFETCH:
        note = "built, not the published file"
        return Step(file, target, action, have, note=note, built=True, forced=forced)
    if action is not Action.SKIP:
        return Step(file, target, action, have, note=state.problem, forced=forced)
    return Step(
        file, target, action, have, note=state.problem, check=state.check, stamp=state.stamp
    )
