"""What others leave in the data folder: hard links, hostile records, folders, dead temporaries.

From an audit of many processes on one folder: a `.part` hard-linked to a
file outside was written through; a record or a stamp of hostile JSON was a
traceback; a folder at the final name was blamed on the `.part`; a temporary
of a killed process stayed for ever. The file "outside" stands for another
user's file, and must come out as it went in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmnist.cli.download import main
from kmnist.errors import UnsafePath
from kmnist.storage import layout, safeopen
from kmnist.storage.partfile import PartFile, _read_state, state_path

from . import test_interactive
from .conftest import OUTSIDE, REALDATA, needs_realdata
from .server import FaultyServer
from .test_interactive import Synthetic
from .test_safety import DATA, PATH, downloader, remote

synthetic = test_interactive.synthetic  # a fixture: the catalogue of small files

LABELS = "kmnist/kmnist-test-labels.npz"
PROPS = settings(max_examples=200, deadline=None)


@pytest.fixture
def served(server: FaultyServer) -> FaultyServer:
    server.add(PATH, DATA)  # test_safety's file: its downloader and remote() fetch it
    return server


def fetch(url: str, root: Path, *, connections: int = 1) -> None:
    downloader(url, connections=connections).fetch([remote()], root)


def part_in(root: Path) -> Path:
    """Where the .part of the test file goes in ``root``, its folder made."""
    part = layout.part_path(root / PATH)
    part.parent.mkdir(parents=True)
    return part


def dead_pid() -> int:
    """The pid of a process that has ended (reaped: nothing answers to it now)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout)


# -- hard links ---------------------------------------------------------------------


@pytest.mark.parametrize("connections", [1, 4], ids=["one stream", "ranged"])
@pytest.mark.parametrize("kept", [b"", DATA[:1000]], ids=["other bytes", "a prefix"])
def test_a_part_hard_linked_to_a_file_outside_is_never_written_through(
    served: FaultyServer, tmp_path: Path, outside: Path, connections: int, kept: bytes
) -> None:
    # "A prefix": as far as its size and bytes tell, a .part to resume from.
    before = kept or OUTSIDE
    outside.write_bytes(before)
    root = tmp_path / "data"
    os.link(outside, part_in(root))
    fetch(served.url, root, connections=connections)
    assert outside.read_bytes() == before and outside.stat().st_nlink == 1
    assert (root / PATH).read_bytes() == DATA
    # Not resumed from: those bytes are another name's too.
    assert not [r for r in served.requests if (r.range or "").startswith(f"bytes={len(before)}-")]


@pytest.mark.parametrize("mode", ["ab", "r+b"])
def test_a_hard_link_made_at_the_part_after_it_was_checked_is_refused(
    tmp_path: Path, outside: Path, mode: str
) -> None:
    # Between the check before a fetch and an open to go on filling it (a
    # resume, a range): its bytes are someone else's too, so the open refuses.
    part = part_in(tmp_path / "data")
    os.link(outside, part)
    with pytest.raises(UnsafePath, match="other hard link"):
        layout.open_part(part, mode)
    assert outside.read_bytes() == OUTSIDE


def test_a_hard_linked_part_opened_to_be_written_afresh_is_a_fresh_file(
    tmp_path: Path, outside: Path
) -> None:
    # What building a .npz does (derive.build): "wb" asks for an empty file.
    part = part_in(tmp_path / "data")
    os.link(outside, part)
    with layout.open_part(part, "wb") as fh:
        fh.write(b"new bytes")
    assert part.read_bytes() == b"new bytes" and part.stat().st_nlink == 1
    assert outside.read_bytes() == OUTSIDE


def test_a_hard_linked_lock_file_is_still_a_lock(served: FaultyServer, tmp_path: Path) -> None:
    # A cp -al copy of a data folder hard-links its lock files too: their
    # bytes are never written, so they are not refused.
    root = tmp_path / "data"
    lock = layout.lock_path(root / PATH)
    lock.parent.mkdir(parents=True)
    lock.write_bytes(b"")
    os.link(lock, tmp_path / "snapshot.lock")
    fetch(served.url, root)
    assert (root / PATH).read_bytes() == DATA


def test_hard_linked_records_stamps_and_final_names_are_replaced_not_written_through(
    served: FaultyServer, tmp_path: Path
) -> None:
    # These are written with os.replace, which gives the name another inode:
    # the other name keeps its bytes. (Passes before the fix too: it says why
    # only the .part needed one.)
    root = tmp_path / "data"
    target = root / PATH
    part_in(root).write_bytes(DATA[:1000])  # so that the record is read and rewritten
    layout.meta_dir(target)
    names = [target, state_path(target), layout.meta_path(target, layout.STAMP_SUFFIX)]
    others = []
    for i, name in enumerate(names):
        other = tmp_path / f"outside-{i}"
        other.write_bytes(OUTSIDE)
        os.link(other, name)
        others.append(other)
    fetch(served.url, root, connections=4)
    assert target.read_bytes() == DATA
    assert [o.read_bytes() for o in others] == [OUTSIDE] * 3
    assert [o.stat().st_nlink for o in others] == [1] * 3


# -- hostile records and stamps ----------------------------------------------------

HOSTILE = {
    "size 1e400": b'{"size": 1e400, "done": []}',
    "an end of 1e400": b'{"size": 300000, "done": [[0, 1e400]]}',
    "size Infinity": b'{"size": Infinity, "done": []}',
    "arrays nested 200,000 deep": b"[" * 200_000 + b"]" * 200_000,
    "objects nested 100,000 deep": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_range_record_is_not_trusted_and_the_file_arrives(
    served: FaultyServer, tmp_path: Path, case: str
) -> None:
    root = tmp_path / "data"
    part_in(root).write_bytes(b"\0" * 1000)
    state_path(root / PATH).write_bytes(HOSTILE[case])
    fetch(served.url, root)
    assert (root / PATH).read_bytes() == DATA


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_stamp_vouches_for_nothing(tmp_path: Path, case: str) -> None:
    target = tmp_path / PATH
    target.parent.mkdir(parents=True)
    target.write_bytes(DATA)
    layout.meta_dir(target)
    layout.meta_path(target, layout.STAMP_SUFFIX).write_bytes(HOSTILE[case])
    assert layout.has_stamp(target, "anything") is False


# Numbers as JSON can write them and Python cannot make ints of: 1e400 is
# inf, Infinity and NaN are accepted by json.loads, 5,000 digits are over
# Python's int-from-string limit.
NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats().map(json.dumps),
    st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", "0.5", "true", "null", '"7"']),
    st.just("9" * 5000),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["size", "done", "expect", "ino", "x"]), inner)
    ),
    max_leaves=20,
).map(lambda v: json.dumps(v).encode())
RECORDS = st.builds(
    lambda size, done: f'{{"size": {size}, "done": [{", ".join(done)}]}}'.encode(),
    NUMBERS,
    st.lists(st.tuples(NUMBERS, NUMBERS).map(lambda t: f"[{t[0]}, {t[1]}]"), max_size=3),
)
DEEP = st.builds(
    lambda depth, pair: pair[0] * depth + pair[1] * depth,
    st.integers(1, 200_000),
    st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b'{"size":', b"}")]),
)
NOT_UTF8 = st.builds(lambda a, b: a + b"\xff\xfe" + b, JSON_VALUES, RECORDS)
ANY_BYTES = st.one_of(st.binary(max_size=200), JSON_VALUES, RECORDS, DEEP, NOT_UTF8)


@PROPS
@given(ANY_BYTES)
def test_any_bytes_as_a_range_record_are_a_sound_record_or_not_trusted(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "blob.bin"
        layout.part_path(target).write_bytes(b"\0" * 1000)
        state_path(target).write_bytes(data)
        got = _read_state(state_path(target))
        if got is not None:
            size, ranges = got
            assert all(type(n) is int for r in ranges for n in r)
            assert all(0 <= s < e <= size for s, e in ranges)
        part = PartFile.load(target, 1000)
        assert 0 <= part.have <= 1000


@PROPS
@given(ANY_BYTES)
def test_any_bytes_as_a_stamp_are_a_stamp_or_absent(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "blob.bin"
        target.write_bytes(b"x")
        layout.meta_dir(target)
        layout.meta_path(target, layout.STAMP_SUFFIX).write_bytes(data)
        assert layout.has_stamp(target, "expect") is False  # no bytes here are this file's


def test_a_stamp_of_ours_is_read_as_one(tmp_path: Path) -> None:
    # What keeps the two tests above honest: a stamp that matches is believed.
    target = tmp_path / "blob.bin"
    target.write_bytes(b"x")
    assert layout.write_stamp(target, "expect")
    assert layout.has_stamp(target, "expect") is True


# -- a folder at the final name, a file at .kmnist ---------------------------------


def test_a_folder_at_the_final_name_is_named_not_the_part(
    tmp_path: Path, server: FaultyServer, realdata: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    published = (realdata / LABELS).read_bytes()
    for rel in (LABELS, "kmnist/kmnist-test-imgs.npz", "kmnist/kmnist_classmap.csv"):
        server.add(rel, (realdata / rel).read_bytes())
    (tmp_path / LABELS).mkdir(parents=True)
    argv = ["-d", "kmnist", "-s", "test", "-f", "npz", "--dir", str(tmp_path), "-q"]
    argv += ["-m", server.url, "--no-derive"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / LABELS} is a folder, where kmnist keeps a file: remove it" in err
    assert ".part" not in err and "Traceback" not in err
    # The verified bytes are kept: once the folder is gone, they take the name
    # without a byte fetched again.
    assert layout.part_path(tmp_path / LABELS).read_bytes() == published
    (tmp_path / LABELS).rmdir()
    served_before = server.body_bytes
    assert main(argv) == 0
    assert (tmp_path / LABELS).read_bytes() == published
    assert server.body_bytes == served_before


def test_promoting_onto_a_folder_names_the_folder_and_keeps_the_part(tmp_path: Path) -> None:
    # For a library caller (and kmnist.storage.folders.explain): the OSError
    # names the folder in the way, and says what to do.
    part, target = tmp_path / "x.npz.part", tmp_path / "x.npz"
    part.write_bytes(b"verified")
    target.mkdir()
    with pytest.raises(IsADirectoryError) as caught:
        layout.promote(part, target)
    assert caught.value.filename == str(target)
    assert "where the verified file goes: remove it and run again" in str(caught.value)
    assert part.read_bytes() == b"verified"


@pytest.mark.parametrize(
    ("kind", "said"), [("file", "is a file"), ("fifo", "is a FIFO, socket or device")]
)
def test_a_file_where_the_bookkeeping_folder_goes_is_called_a_file(
    tmp_path: Path, kind: str, said: str
) -> None:
    meta = tmp_path / layout.META_DIR
    if kind == "fifo":
        os.mkfifo(meta)
    else:
        meta.write_text("x")
    with pytest.raises(UnsafePath, match=f"{said}, not a folder: remove it and run again"):
        layout.meta_dir(tmp_path / "blob.bin")


# -- temporaries of killed processes ------------------------------------------------


def test_temporaries_of_dead_processes_are_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    # A SIGKILL between mkstemp and the rename left <name>.<pid>.<random>
    # for ever; a live process's may be about to be renamed.
    dead = dead_pid()
    path = tmp_path / "blob.bin.part.json"
    left = tmp_path / f"blob.bin.part.json.{dead}.ab12cd_e"
    kept = [
        tmp_path / f"blob.bin.part.json.{os.getppid()}.zz99yy_x",  # alive
        tmp_path / f"blob.bin.part.json.{os.getpid()}.zz99yy_x",  # this process: alive
        tmp_path / f"other.part.json.{dead}.ab12cd_e",  # another name's
        tmp_path / f"blob.bin.part.json.{dead}.ab12cd_",  # not mkstemp's: 7 characters
        tmp_path / f"blob.bin.part.json.{dead}.ab12cd_ef",  # 9
        tmp_path / f"blob.bin.part.json.x{dead}.ab12cd_e",  # not a pid
    ]
    for p in (left, *kept):
        p.write_text("{}")
    safeopen.replace_text(path, '{"new": 1}')
    assert not left.exists()
    assert all(p.exists() for p in kept) and path.read_text() == '{"new": 1}'


def test_a_dead_runs_record_temporary_goes_when_the_file_arrives_in_one_stream(
    served: FaultyServer, tmp_path: Path
) -> None:
    # The audit's case: the next run fetched the rest on one connection, never
    # wrote the record, and the temporary outlived the download.
    root = tmp_path / "data"
    part_in(root).write_bytes(DATA[:1000])
    left = state_path(root / PATH).with_name(f"blob.bin.part.json.{dead_pid()}.ab12cd_e")
    left.write_text('{"size": 1')
    fetch(served.url, root)
    assert (root / PATH).read_bytes() == DATA
    assert sorted(p.name for p in left.parent.iterdir()) == [".kmnist", "blob.bin"]


def test_a_huge_record_or_stamp_is_not_read_into_memory(tmp_path: Path) -> None:
    # A planted sparse file of 4 GB in place of a stamp or a range record.
    import tracemalloc

    target = tmp_path / "blob.bin"
    target.write_bytes(b"x")
    layout.meta_dir(target)
    for path in (layout.meta_path(target, layout.STAMP_SUFFIX), state_path(target)):
        with open(path, "wb") as fh:
            fh.truncate(4 << 30)
    tracemalloc.start()
    try:
        assert layout.has_stamp(target, "expect") is False
        assert _read_state(state_path(target)) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_a_file_at_the_bookkeeping_folder_is_said_once_for_all_its_files(
    synthetic: Synthetic,
    server: FaultyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Every file of kmnist/ fails on it, in words that name the folder: the
    # same line came five times. The other dataset's files are fetched.
    (tmp_path / "kmnist").mkdir()
    (tmp_path / "kmnist" / layout.META_DIR).write_text("x")
    argv = ["-d", "kmnist", "-d", "k49", "-f", "npz", "-s", "test", "--dir", str(tmp_path)]
    assert main([*argv, "-m", server.url, "-q"], catalogue=synthetic.catalogue) == 1
    err = capsys.readouterr().err
    assert err.count("this bookkeeping folder is a file") == 1, err
    assert len(err.splitlines()) == 1, err
    name = "k49/k49-test-labels.npz"
    assert (tmp_path / name).read_bytes() == synthetic.data[name]


@needs_realdata
def test_a_file_beyond_the_file_size_limit_is_said_in_words(tmp_path: Path) -> None:
    # ulimit -f (RLIMIT_FSIZE; Python ignores SIGXFSZ, so a write gets EFBIG)
    # said `the data folder: File too large`, of a file the line did not name.
    import resource

    limit = 1_000_000

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    script = Path(sys.executable).with_name("kmnist-download")
    r = subprocess.run(
        [str(script), "-d", "kmnist", "-s", "test", "-f", "npz", "--dir", str(tmp_path),
         "--mirror", str(REALDATA), "--no-progress"],
        capture_output=True, text=True, timeout=120, preexec_fn=limited,
    )  # fmt: skip
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert errors == [
        "kmnist-download: error: kmnist/kmnist-test-imgs.npz: the file is larger than this "
        "process may write (its file size limit, ulimit -f, or the largest file of its "
        "filesystem): raise the limit, or choose another folder with --dir"
    ], r.stderr
    folder = tmp_path / "kmnist"
    assert not (folder / "kmnist-test-imgs.npz").exists()
    assert (folder / "kmnist-test-labels.npz").is_file()  # the small files arrived
    part = folder / "kmnist-test-imgs.npz.part"
    assert not part.exists() or part.stat().st_size <= limit  # kept for a resume
