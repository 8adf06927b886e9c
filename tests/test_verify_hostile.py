"""--verify over a data folder in odd states: one status per file, valid JSON, the
exit status, no hang on a pipe, no hashing of a file of the wrong size, and not a
byte changed in the folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

import pytest

from kmnist.cli.download import main

IMGS = "kmnist/kmnist-test-imgs.npz"
LABELS = "kmnist/kmnist-test-labels.npz"


def _tree(base: Path) -> dict[str, tuple[int, int, int, int, bytes]]:
    """Every name below ``base`` with its kind, size, mtime, inode and (for a small
    regular file) its bytes: a write anywhere shows."""
    out = {}
    for folder, dirs, files in os.walk(base):
        for name in dirs + files:
            p = os.path.join(folder, name)
            st = os.lstat(p)
            small = os.path.isfile(p) and not os.path.islink(p) and st.st_size < 1 << 16
            data = Path(p).read_bytes() if small else b""
            out[p] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, data)
    return out


def _verify(
    root: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, dict[str, object]], int, list[str]]:
    """--verify --json and --verify; the JSON's files by path, and the text's lines."""
    code = main(["--verify", "--dir", str(root), *extra, "--json"])
    doc = json.loads(capsys.readouterr().out)
    by = {str(f["path"]): f for f in doc["files"]}
    assert len(by) == len(doc["files"])  # one status per file
    assert doc["ok"] is (code == 0)
    text_code = main(["--verify", "--dir", str(root), *extra])
    lines = capsys.readouterr().out.splitlines()
    assert text_code == code
    assert len(lines) == len(by) + 1  # one line per file, one summary line
    return code, by, text_code, lines


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "kmnist").mkdir(parents=True)
    return root


def test_verify_never_deletes_a_range_record(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A .part that is a link, or a hard link, beside its range record.

    Before: the audit "tidied" the record away (PartFile.load's default), a
    write into the data folder, and called the link "partial: 0 bytes".
    """
    outside = tmp_path / "outside"
    outside.write_bytes(b"x" * 100)
    os.symlink(outside, folder / (IMGS + ".part"))
    os.link(outside, folder / (LABELS + ".part"))
    for rel, size in ((IMGS, 3079479), (LABELS, 5304)):
        record = {"size": size, "ranges": [[0, 100]]}
        (folder / (rel + ".part.json")).write_text(json.dumps(record))
    before = _tree(tmp_path)
    code, by, _, _ = _verify(folder, capsys)
    assert _tree(tmp_path) == before
    assert code == 1
    assert by[IMGS]["status"] == "missing"
    assert "kmnist-test-imgs.npz.part is a symbolic link" in str(by[IMGS]["detail"])
    assert by[LABELS]["status"] == "missing"
    assert "other hard link" in str(by[LABELS]["detail"])


def test_a_part_that_is_a_pipe_or_a_folder_is_named_not_not_there(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: "missing: not there", with a pipe or a folder at the .part's name."""
    os.mkfifo(folder / (IMGS + ".part"))
    (folder / (LABELS + ".part")).mkdir()
    before = _tree(tmp_path)
    code, by, _, _ = _verify(folder, capsys, "-d", "kmnist", "-s", "test")
    assert _tree(tmp_path) == before
    assert code == 1
    assert "kmnist-test-imgs.npz.part is a pipe" in str(by[IMGS]["detail"])
    assert "kmnist-test-labels.npz.part is a folder" in str(by[LABELS]["detail"])


def test_a_folder_name_with_a_newline_keeps_the_summary_on_one_line(
    tmp_path: Path, realdata: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: ``--dir 'da<newline>ta'`` split the closing line in two."""
    root = tmp_path / "da\nta"
    (root / "kmnist").mkdir(parents=True)
    shutil.copyfile(realdata / LABELS, root / LABELS)
    code, _, _, lines = _verify(root, capsys)
    assert code == 0
    assert lines[-1].endswith("da\\nta: 1 file: 1 ok: all ok")


Setup = Callable[[Path, Path, Path], None]


def _fifo_final(root: Path, real: Path, out: Path) -> None:
    os.mkfifo(root / IMGS)


def _folder_final(root: Path, real: Path, out: Path) -> None:
    (root / IMGS).mkdir()


def _zero_length(root: Path, real: Path, out: Path) -> None:
    (root / IMGS).write_bytes(b"")


def _right_size_wrong_bytes(root: Path, real: Path, out: Path) -> None:
    (root / LABELS).write_bytes(b"\0" * 5304)


def _link_outside_to_a_pipe(root: Path, real: Path, out: Path) -> None:
    os.mkfifo(out / "pipe")
    os.symlink(out / "pipe", root / IMGS)


def _hostile_stamps(root: Path, real: Path, out: Path) -> None:
    shutil.copyfile(real / LABELS, root / LABELS)
    (root / IMGS).write_bytes(b"x" * 1000)
    meta = root / "kmnist" / ".kmnist"
    meta.mkdir()
    (meta / "kmnist-test-labels.npz.verified").write_bytes(b"{garbage\xff")
    st = os.stat(root / IMGS)
    claim = {"expect": "3079479", "size": 3079479, "mtime_ns": st.st_mtime_ns}
    (meta / "kmnist-test-imgs.npz.verified").write_text(json.dumps(claim))
    os.mkfifo(meta / "kmnist-test-labels.npz.lock")


def _part_and_final(root: Path, real: Path, out: Path) -> None:
    shutil.copyfile(real / LABELS, root / LABELS)
    (root / (LABELS + ".part")).write_bytes(b"y" * 10)
    (root / (IMGS + ".part")).write_bytes(b"y" * 10)


def _newline_names(root: Path, real: Path, out: Path) -> None:
    shutil.copyfile(real / LABELS, root / LABELS)
    (root / "kmnist" / "kmnist-test-imgs.npz\n").write_bytes(b"z")
    (root / "kmnist\nx").mkdir()


CASES: dict[str, tuple[Setup, dict[str, str]]] = {
    "fifo_final": (_fifo_final, {IMGS: "corrupt"}),
    "folder_final": (_folder_final, {IMGS: "corrupt"}),
    "zero_length": (_zero_length, {IMGS: "corrupt"}),
    "right_size_wrong_bytes": (_right_size_wrong_bytes, {LABELS: "corrupt"}),
    "link_to_a_pipe": (_link_outside_to_a_pipe, {IMGS: "corrupt"}),
    "hostile_stamps": (_hostile_stamps, {IMGS: "corrupt", LABELS: "ok"}),
    "part_and_final": (_part_and_final, {IMGS: "partial", LABELS: "ok"}),
    "newline_names": (_newline_names, {LABELS: "ok"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_odd_folders_give_one_status_per_file_and_change_nothing(
    case: str,
    tmp_path: Path,
    realdata: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kmnist.verify

    setup, want = CASES[case]
    root, out = tmp_path / "data", tmp_path / "outside"
    (root / "kmnist").mkdir(parents=True)
    out.mkdir()
    setup(root, realdata, out)
    hashed: list[Path] = []
    real_hash = kmnist.verify.hash_path

    def spy(file: object, path: Path) -> object:
        hashed.append(Path(path))
        return real_hash(file, path)  # type: ignore[arg-type]

    monkeypatch.setattr(kmnist.verify, "hash_path", spy)
    before = _tree(tmp_path)
    code, by, _, _ = _verify(root, capsys)
    assert _tree(tmp_path) == before
    assert {p: f["status"] for p, f in by.items()} == want
    assert code == (0 if set(want.values()) == {"ok"} else 1)
    for path, f in by.items():
        if f["size"] is not None and f["size"] != f["expected_size"]:
            assert root / path not in hashed  # a wrong size is said without hashing


def test_a_part_longer_than_its_file_is_said_so(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: "partial: interrupted download: 0 of 5,304 bytes" for a .part
    of 10,000 bytes, which the next run drops and fetches afresh."""
    (folder / (LABELS + ".part")).write_bytes(b"\0" * 10_000)
    before = _tree(tmp_path)
    code, by, _, _ = _verify(folder, capsys, "-d", "kmnist", "-s", "test")
    assert _tree(tmp_path) == before
    assert code == 1
    detail = str(by[LABELS]["detail"])
    assert "holds 10,000 bytes, more than the file's 5,304" in detail, detail
    assert "0 of" not in detail
