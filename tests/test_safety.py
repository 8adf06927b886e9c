"""A shared data folder: planted links, edited files, unusable folders, a full disk.

Real files and links in temporary folders; the file "outside" stands for
another user's file that a planted link points at, and must come out as it
went in.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kmnist.catalogue.manifest import RemoteFile
from kmnist.cli.download import main
from kmnist.downloader.run import Downloader, RetryPolicy
from kmnist.errors import DiskFull, UnsafePath
from kmnist.storage import layout as storage
from kmnist.storage.partfile import state_path

from .conftest import OUTSIDE, no_part_files
from .server import FaultyServer

PIECE = 256 << 10
DATA = os.urandom(6 * PIECE + 333)  # ranged when more than one connection is allowed
PATH = "kmnist/blob.bin"
SHA = hashlib.sha256(DATA).hexdigest()
DEAD = "http://127.0.0.1:9"  # the discard port: nothing listens there


def remote(*, size: bool = True) -> RemoteFile:
    return RemoteFile(PATH, len(DATA) if size else None, sha256=SHA)


def downloader(url: str, *, connections: int = 4) -> Downloader:
    return Downloader(
        mirrors=[url],
        progress=False,
        piece=PIECE,
        connections=connections,
        retry=RetryPolicy(sleep=lambda s: None),
        fast_connection=float("inf"),
    )


@pytest.fixture
def served(server: FaultyServer) -> FaultyServer:
    server.add(PATH, DATA)
    return server


def temp_leftovers(root: Path) -> list[str]:
    """Temporary files of ours: range records' and stamps' <name>.<pid>.<random>."""
    return [
        str(p)
        for p in root.rglob("*")
        if ".part.json." in p.name or (".verified." in p.name and p.is_file())
    ]


# -- planted links -------------------------------------------------------------


def part_in(root: Path) -> Path:
    """Where the .part of the test file goes in ``root``, its folder made."""
    part = storage.part_path(root / PATH)
    part.parent.mkdir(parents=True)
    return part


def test_a_part_that_links_outside_is_refused(
    served: FaultyServer, tmp_path: Path, outside: Path
) -> None:
    root = tmp_path / "data"
    part = part_in(root)
    part.symlink_to(outside)
    with pytest.raises(UnsafePath, match="symbolic link"):
        downloader(served.url, connections=1).fetch([remote()], root)
    assert outside.read_bytes() == OUTSIDE
    assert part.is_symlink() and not (root / PATH).exists()


def test_a_part_that_links_outside_is_refused_on_the_ranged_path(
    served: FaultyServer, tmp_path: Path, outside: Path
) -> None:
    root = tmp_path / "data"
    part = part_in(root)
    part.symlink_to(outside)
    with pytest.raises(UnsafePath):
        downloader(served.url).fetch([remote()], root)
    assert outside.read_bytes() == OUTSIDE
    assert not (root / PATH).exists()


def test_a_fifo_in_place_of_the_part_is_refused_without_hanging(
    served: FaultyServer, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    part = part_in(root)
    os.mkfifo(part)
    with pytest.raises(UnsafePath, match="not a regular file"):
        downloader(served.url, connections=1).fetch([remote()], root)
    assert not (root / PATH).exists()


def test_a_link_planted_where_a_gzipped_body_is_decoded_is_never_written_through(
    served: FaultyServer, tmp_path: Path, outside: Path
) -> None:
    """A server that really gzips the body: the decoded bytes go to a fresh name.

    They went to the fixed name "<part>.gunzip", and a link planted there was
    written through (found by an audit): the file outside was overwritten.
    """
    served.always(PATH, "gzipbody")
    root = tmp_path / "data"
    part = part_in(root)
    planted = part.with_name(part.name + ".gunzip")
    planted.symlink_to(outside)
    downloader(served.url, connections=1).fetch([remote()], root)
    assert (root / PATH).read_bytes() == DATA
    assert outside.read_bytes() == OUTSIDE
    assert planted.is_symlink()  # left as it was found
    assert not [p for p in part.parent.iterdir() if ".gunzip." in p.name]  # no temporary left


def test_a_range_record_that_links_outside_is_replaced(
    served: FaultyServer, tmp_path: Path, outside: Path
) -> None:
    root = tmp_path / "data"
    part = part_in(root)
    part.write_bytes(b"")  # an earlier run's .part, so that the record is read
    state_path(root / PATH).symlink_to(outside)
    downloader(served.url).fetch([remote()], root)
    assert (root / PATH).read_bytes() == DATA
    assert outside.read_bytes() == OUTSIDE
    assert not os.path.lexists(state_path(root / PATH)) and temp_leftovers(root) == []


def test_a_lock_that_links_outside_is_refused(served: FaultyServer, tmp_path: Path) -> None:
    root = tmp_path / "data"
    lock = storage.lock_path(root / PATH)
    lock.parent.mkdir(parents=True)
    target = tmp_path / "outside-lock"
    lock.symlink_to(target)  # dangling: a followed open would create it
    with pytest.raises(UnsafePath, match="lock file is a symbolic link"):
        downloader(served.url).fetch([remote()], root)
    assert not target.exists() and not (root / PATH).exists()
    assert served.requests == []


def test_a_stamp_that_links_outside_is_replaced_not_written_through(
    served: FaultyServer, tmp_path: Path, outside: Path
) -> None:
    root = tmp_path / "data"
    stamp = storage.meta_path(root / PATH, storage.STAMP_SUFFIX)
    stamp.parent.mkdir(parents=True)
    stamp.symlink_to(outside)
    downloader(served.url).fetch([remote()], root)
    assert outside.read_bytes() == OUTSIDE
    assert not stamp.is_symlink() and json.loads(stamp.read_text())["size"] == len(DATA)
    assert temp_leftovers(root) == []


def test_a_bookkeeping_folder_that_links_outside_is_refused(
    served: FaultyServer, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "kmnist").mkdir(parents=True)
    (root / "kmnist" / storage.META_DIR).symlink_to(elsewhere)
    with pytest.raises(UnsafePath, match="bookkeeping folder is a symbolic link"):
        downloader(served.url).fetch([remote()], root)
    assert list(elsewhere.iterdir()) == []


def test_a_final_name_that_links_to_other_bytes_is_replaced_by_a_regular_file(
    served: FaultyServer, tmp_path: Path, outside: Path
) -> None:
    root = tmp_path / "data"
    target = root / PATH
    target.parent.mkdir(parents=True)
    target.symlink_to(outside)
    [r] = downloader(served.url).fetch([remote()], root)
    assert r.action == "fetched"
    assert not target.is_symlink() and target.read_bytes() == DATA
    assert outside.read_bytes() == OUTSIDE


def test_a_final_name_that_links_to_the_right_bytes_is_kept_and_not_written(
    served: FaultyServer, tmp_path: Path
) -> None:
    # A user's own link to a shared verified copy: read, never written.
    copy = tmp_path / "shared-copy.bin"
    copy.write_bytes(DATA)
    before = copy.stat()
    root = tmp_path / "data"
    target = root / PATH
    target.parent.mkdir(parents=True)
    target.symlink_to(copy)
    [r] = downloader(served.url).fetch([remote()], root)
    assert r.action == "skipped" and served.requests == []
    assert target.is_symlink() and copy.stat().st_mtime_ns == before.st_mtime_ns


def test_a_planted_link_is_one_line_from_the_command(
    tmp_path: Path, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "data"
    part = root / "kmnist" / "kmnist-test-labels.npz.part"
    part.parent.mkdir(parents=True)
    part.symlink_to(outside)
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(root), "-m", DEAD, "-q"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [x for x in err.splitlines() if "kmnist-test-labels.npz.part" in x]
    assert "refused: this .part file is a symbolic link" in line and "remove" in line
    assert outside.read_bytes() == OUTSIDE


# -- stamps ----------------------------------------------------------------------


def test_an_edit_in_place_with_the_mtime_restored_is_verified_again(
    served: FaultyServer, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    d = downloader(served.url)
    d.fetch([remote()], root)
    target = root / PATH
    stamp = json.loads(storage.meta_path(target, storage.STAMP_SUFFIX).read_text())
    assert {"size", "mtime_ns", "ctime_ns", "dev", "ino", "expect"} <= set(stamp)
    st = target.stat()
    with open(target, "r+b") as fh:  # same size, same inode, one byte other
        fh.seek(1000)
        fh.write(bytes([DATA[1000] ^ 0xFF]))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # what touch -r does
    assert target.stat().st_mtime_ns == st.st_mtime_ns and target.stat().st_size == st.st_size
    assert [s.action.value for s in d.plan([remote()], root)] == ["refetch"]
    [r] = d.fetch([remote()], root)
    assert r.action == "fetched" and target.read_bytes() == DATA


def test_a_stamp_is_only_an_optimisation_in_a_folder_that_cannot_take_one(
    served: FaultyServer, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    downloader(served.url).fetch([remote()], root)
    meta = root / "kmnist" / storage.META_DIR
    for p in meta.iterdir():
        p.unlink()
    meta.rmdir()
    meta.write_text("a file where the bookkeeping folder goes")
    assert storage.write_stamp(root / PATH, "x") is False
    [s] = downloader(served.url).plan([remote()], root)
    assert s.action.value == "skip"  # hashed, found right; no stamp needed for that


# -- folders that cannot be used -------------------------------------------------


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0] and "Errno" not in err[0]
    return err[0]


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def test_a_read_only_filesystem_is_said_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        assert main(["-d", "kmnist", "-s", "test", "--dir", str(ro / "data"), "-m", DEAD]) == 1
        line = _one_error_line(capsys)
        assert f"{ro} is on a read-only filesystem" in line and "--dir" in line


def _as_nobody(argv: list[str]) -> tuple[int, str]:
    """main(argv) in a forked child that has become the user nobody: (status, stderr)."""
    import io
    import pwd

    nobody = pwd.getpwnam("nobody")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no return from here, whatever happens
        status = 99
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            sys.stderr = io.StringIO()
            status = main(argv)
            os.write(write, sys.stderr.getvalue().encode())
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        err = fh.read().decode()
    _, wait = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait), err


def test_permission_denied_is_said_in_words(tmp_path: Path) -> None:
    # Root may write anywhere: the user nobody, in a forked child, may not.
    if not hasattr(os, "fork") or os.getuid() != 0:
        pytest.skip("needs root, to become the user nobody in a child")
    locked = tmp_path / "locked"
    locked.mkdir()
    for p in [locked, *locked.parents]:
        if not os.stat(p).st_mode & 0o001:
            p.chmod(p.stat().st_mode | 0o005)  # searchable by others, still not writable
    status, err = _as_nobody(["-d", "kmnist", "-s", "test", "--dir", str(locked / "d"), "-m", DEAD])
    assert status == 1, err
    assert "Traceback" not in err
    assert f"{locked} is not writable by this user (permission denied)" in err


def test_a_file_in_the_path_is_not_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("x")
    # A usage error, as `--dir file` is: the folder can never be made.
    assert (
        main(["-d", "kmnist", "-s", "test", "--dir", str(tmp_path / "file/sub"), "-m", DEAD]) == 2
    )
    assert f"{tmp_path / 'file'} is a file, not a folder" in _one_error_line(capsys)


def test_a_pseudo_filesystem_is_not_a_place_for_data(capsys: pytest.CaptureFixture[str]) -> None:
    if not os.path.isdir("/proc") or os.statvfs("/proc").f_blocks != 0:
        pytest.skip("no /proc pseudo-filesystem here")
    assert main(["-d", "kmnist", "-s", "test", "--dir", "/proc/kmnist", "-m", DEAD]) == 1
    line = _one_error_line(capsys)
    assert "pseudo-filesystem" in line and "MiB" not in line
    assert not os.path.exists("/proc/kmnist")


def test_verify_of_a_folder_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--verify", "--dir", str(tmp_path / "typo")]) == 1
    assert f"{tmp_path / 'typo'}: no such folder" in _one_error_line(capsys)
    assert capsys.readouterr().out == ""


def test_a_disk_that_fills_on_the_ranged_path_leaves_no_temporary_records(
    served: FaultyServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with tmpfs(tmp_path / "small", "size=1m") as small:
        root = small / "data"
        # No published size, so that the space check cannot refuse it first:
        # the disk fills while the ranges arrive.
        # One KmnistError naming the file (issue 18), not a bare OSError from the record.
        with pytest.raises(DiskFull) as info:
            downloader(served.url).fetch([remote(size=False)], root)
        assert isinstance(info.value.__cause__, OSError)
        assert info.value.__cause__.errno == errno.ENOSPC
        assert f"{PATH}: the disk is full while writing it" in str(info.value)
        assert temp_leftovers(root) == []
        assert not (root / PATH).exists()
        assert storage.part_path(root / PATH).exists()  # kept for a resume elsewhere


# -- --verify audits what is there -------------------------------------------------


@pytest.fixture
def mirror(server: FaultyServer, realdata: Path) -> FaultyServer:
    server.add_tree(realdata)
    return server


def test_verify_without_a_dataset_audits_what_is_there(
    mirror: FaultyServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(tmp_path / "data")
    assert main(["-d", "kmnist", "-s", "test", "--dir", root, "-m", mirror.url, "-q"]) == 0
    assert main(["--verify", "--dir", root]) == 0
    out = capsys.readouterr().out
    assert "kmnist/kmnist-test-imgs.npz" in out and "train" not in out and "all ok" in out
    # Naming the dataset asks for all of it: the train files are missing.
    assert main(["--verify", "--dir", root, "-d", "kmnist"]) == 1
    assert re.search(r"kmnist/kmnist-train-imgs.npz +missing", capsys.readouterr().out)
    assert main(["--verify", "--dir", root, "-d", "kmnist", "-s", "test"]) == 0
    assert no_part_files(tmp_path) == []


def test_verify_of_an_empty_folder_says_there_is_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--verify", "--dir", str(tmp_path)]) == 1
    assert "nothing to verify" in capsys.readouterr().out


def test_a_file_system_out_of_inodes_is_not_called_full(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], realdata: Path, server: FaultyServer
) -> None:
    # Bytes free, no file entry left: it said "the disk is full ... (0.0 MiB
    # more needed, free space unknown)", the opposite of what is wrong.
    for rel in ("kmnist/kmnist-test-labels.npz",):
        server.add(rel, (realdata / rel).read_bytes())
    with tmpfs(tmp_path / "few", "size=20m,nr_inodes=16") as few:
        root = few / "data"
        root.mkdir()
        for i in range(64):  # bounded: the 16 inodes are gone long before
            try:
                (few / f"f{i}").touch()
            except OSError:
                break
        argv = ["-d", "kmnist", "-s", "test", "-f", "npz", "--dir", str(root), "-q"]
        assert main([*argv, "-m", server.url, "--no-derive"]) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines and all("no free inodes (file entries)" in x for x in lines)
        assert all("MiB free" in x and "more needed" not in x for x in lines)
        assert "delete some files" in lines[0]


def test_a_folder_at_one_files_lock_fails_that_file_and_the_others_arrive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], realdata: Path, server: FaultyServer
) -> None:
    # A folder where kmnist keeps one file's lock: that OSError ended the whole
    # run as if it were a bug, and no other file was fetched.
    from kmnist.storage.layout import lock_path

    rels = ["kmnist/kmnist-test-labels.npz", "kmnist/kmnist_classmap.csv"]
    for rel in rels:
        server.add(rel, (realdata / rel).read_bytes())
    lock_path(tmp_path / rels[0]).mkdir(parents=True)
    argv = ["-d", "kmnist", "-s", "test", "-f", "npz", "--dir", str(tmp_path), "-q"]
    assert main([*argv, "-m", server.url, "--no-derive"]) == 1
    err = capsys.readouterr().err
    assert f"{rels[0]}: {lock_path(tmp_path / rels[0])} is a folder" in err
    assert "remove it and run again" in err and "Traceback" not in err
    assert (tmp_path / rels[1]).read_bytes() == (realdata / rels[1]).read_bytes()
