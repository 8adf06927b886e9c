"""Planning looks and writes nothing: whatever is on disk, a plan (and --dry-run) leaves it as it was.

The plan is made before any action, and the user may stop there (``--dry-run``,
the interactive flow's question). A plan that dropped a range record, a
stamp or a lock would change what the next run resumes, even when no run
follows it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmnist.catalogue.manifest import RemoteFile
from kmnist.downloader.run import Downloader
from kmnist.errors import KmnistError
from kmnist.storage import layout
from kmnist.storage.partfile import state_path

DATA = bytes(range(256)) * 64  # 16 KiB
FILE = RemoteFile("kmnist/blob.bin", len(DATA), sha256=hashlib.sha256(DATA).hexdigest())
# Never contacted: planning makes no request.
MIRROR = "http://127.0.0.1:9/"

FINALS = ["absent", "good", "corrupt", "short", "folder", "link"]
PARTS = ["absent", "prefix", "full-garbage", "longer", "hardlink", "link", "folder", "fifo"]
RECORDS = ["absent", "valid", "stale", "garbage", "folder"]
STAMPS = ["absent", "valid", "garbage"]
METAS = ["folder", "file", "absent"]


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every name below ``root`` (links not followed): its kind, size, mtime and bytes' hash."""
    seen: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            s = os.lstat(p)
            kind = stat.S_IFMT(s.st_mode)
            digest = None
            if stat.S_ISREG(s.st_mode):
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISLNK(s.st_mode):
                digest = os.readlink(p)
            seen[str(p.relative_to(root))] = (kind, s.st_size, s.st_mtime_ns, s.st_nlink, digest)
    return seen


def lay_out(
    root: Path, outside: Path, final: str, part: str, record: str, stamp_: str, meta: str
) -> None:
    target = root / FILE.path
    target.parent.mkdir(parents=True)
    if final == "good":
        target.write_bytes(DATA)
    elif final == "corrupt":
        target.write_bytes(b"\0" * len(DATA))
    elif final == "short":
        target.write_bytes(DATA[:100])
    elif final == "folder":
        target.mkdir()
    elif final == "link":
        target.symlink_to(outside)
    part_at = layout.part_path(target)
    if part == "prefix":
        part_at.write_bytes(DATA[:5000])
    elif part == "full-garbage":
        part_at.write_bytes(b"\1" * len(DATA))
    elif part == "longer":
        part_at.write_bytes(DATA + b"more")
    elif part == "hardlink":
        os.link(outside, part_at)
    elif part == "link":
        part_at.symlink_to(outside)
    elif part == "folder":
        part_at.mkdir()
    elif part == "fifo":
        os.mkfifo(part_at)
    rec = state_path(target)
    if record == "valid":
        rec.write_text(json.dumps({"size": len(DATA), "done": [[0, 4096]]}))
    elif record == "stale":
        rec.write_text(json.dumps({"size": 7, "done": [[0, 7]]}))
    elif record == "garbage":
        rec.write_text("{not json")
    elif record == "folder":
        rec.mkdir()
    meta_at = target.parent / layout.META_DIR
    if meta == "file":
        meta_at.write_text("not a folder")
        return
    if meta == "folder":
        meta_at.mkdir()
        layout.lock_path(target).write_text("")
    if stamp_ == "valid" and final in ("good", "corrupt", "short"):
        layout.write_stamp(target, "sha256:" + (FILE.sha256 or ""))
    elif stamp_ == "garbage" and meta == "folder":
        layout.meta_path(target, layout.STAMP_SUFFIX).write_text("[[[")


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    final=st.sampled_from(FINALS),
    part=st.sampled_from(PARTS),
    record=st.sampled_from(RECORDS),
    stamp_=st.sampled_from(STAMPS),
    meta=st.sampled_from(METAS),
    force=st.booleans(),
)
def test_a_plan_changes_nothing_on_disk(
    final: str, part: str, record: str, stamp_: str, meta: str, force: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        outside = base / "outside.bin"
        outside.write_bytes(DATA)
        root = base / "data"
        lay_out(root, outside, final, part, record, stamp_, meta)
        before = snapshot(base)
        d = Downloader(mirrors=[MIRROR], progress=False)
        # A refusal is an answer too (the .part is a link, .kmnist a file);
        # what counts is the disk. A bug's exception still fails the test.
        with contextlib.suppress(KmnistError, OSError):
            d.plan([FILE], root, force=force)
        assert snapshot(base) == before


def test_a_record_beside_a_part_that_is_not_a_regular_file_survives_the_plan(
    tmp_path: Path,
) -> None:
    # The case the property found: a .part that is a link (or a folder, a
    # FIFO) counts as absent, and planning then deleted its range record.
    outside = tmp_path / "outside.bin"
    outside.write_bytes(DATA)
    root = tmp_path / "data"
    lay_out(root, outside, "absent", "link", "valid", "absent", "folder")
    record = state_path(root / FILE.path)
    Downloader(mirrors=[MIRROR], progress=False).plan([FILE], root)
    assert record.exists()
