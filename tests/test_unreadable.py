"""Files and folders of the data folder that this user may not read, or write.

A shared data folder on a cluster holds another user's files: a copy made
with umask 077, a class folder without its read bit. Every reader says so in
one line naming the path (a KmnistError), not a PermissionError traceback, a
"wrong structure" of the file, or advice to get write access.

Root reads everything, so as root each case runs in a child process without
the capabilities that let root past file permissions (``setpriv
--bounding-set``); as another user it runs as that user. Where neither can
be arranged, the tests skip and say why.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from .conftest import needs_realdata
from .test_kanji import archive_in

REALDATA_KMNIST = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "kmnist"
BOUNDED = 120  # seconds: a hang fails, not a slow machine


@functools.lru_cache(maxsize=1)
def _prefix() -> tuple[str, ...] | str:
    """What runs a command as a user that file permissions bind; or why there is none."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return "running as root without setpriv (util-linux): root reads every file"
    prefix = (setpriv, "--bounding-set=-dac_override,-dac_read_search")
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "open('/proc/self/status').read()"],
        capture_output=True,
        timeout=BOUNDED,
    )
    if probe.returncode != 0:
        return f"setpriv cannot drop root's file capabilities here: {probe.stderr[-200:]!r}"
    return prefix


def bound(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run argv as a user that file permissions bind."""
    prefix = _prefix()
    if isinstance(prefix, str):
        pytest.skip(prefix)
    return subprocess.run(
        [*prefix, *argv], capture_output=True, text=True, timeout=BOUNDED, stdin=subprocess.DEVNULL
    )


def python(code: str) -> subprocess.CompletedProcess[str]:
    """Run code that prints ``<KmnistError class>: <message>`` for what it raises."""
    wrapped = (
        "import sys, kmnist\n"
        "try:\n"
        + "".join(f"    {line}\n" for line in code.splitlines())
        + "except kmnist.KmnistError as e:\n"
        "    print(f'{type(e).__name__}: {e}')\n"
        "    sys.exit(1)\n"
    )
    return bound([sys.executable, "-c", wrapped])


def one_line_saying(r: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The one line the failure was said in, checked for each needle."""
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def kmnist_test(tmp_path: Path) -> Path:
    """A data folder with the real KMNIST test split; its images unreadable (mode 000)."""
    folder = tmp_path / "kmnist"
    folder.mkdir()
    for name in ("kmnist-test-imgs.npz", "kmnist-test-labels.npz", "kmnist_classmap.csv"):
        shutil.copyfile(REALDATA_KMNIST / name, folder / name)
    (folder / "kmnist-test-imgs.npz").chmod(0)
    return tmp_path


@needs_realdata
@pytest.mark.parametrize("verify", [True, False])
def test_load_says_the_file_cannot_be_read(kmnist_test: Path, verify: bool) -> None:
    # Before: PermissionError (a traceback), and with verify=False "wrong
    # structure: expected a readable .npz, got PermissionError: [Errno 13] ...".
    r = python(f"kmnist.load('kmnist', 'test', root={str(kmnist_test)!r}, verify={verify})")
    line = one_line_saying(
        r, "LocalFileError: ", "kmnist-test-imgs.npz: cannot be read (permission denied)"
    )
    assert "structure" not in line and "Errno" not in line
    assert r.returncode == 1


@needs_realdata
def test_kmnist_baseline_says_the_file_cannot_be_read_not_that_it_needs_writing(
    kmnist_test: Path,
) -> None:
    # Before: "... is not writable by this user (permission denied): ask its
    # owner for write access": the baseline only reads.
    script = Path(sys.executable).with_name("kmnist-baseline")
    r = bound([str(script), "knn", "-d", "kmnist", "--dir", str(kmnist_test), "--limit", "50"])
    line = one_line_saying(r, "kmnist-baseline: error: ", "cannot be read (permission denied)")
    assert "writ" not in line
    assert r.returncode == 1


@needs_realdata
@pytest.mark.torch
def test_the_pytorch_dataset_says_the_file_cannot_be_read(kmnist_test: Path) -> None:
    r = python(f"from kmnist.datasets import KMNIST\nKMNIST({str(kmnist_test)!r}, train=False)")
    one_line_saying(r, "LocalFileError: ", "kmnist-test-imgs.npz: cannot be read")


@pytest.fixture
def kanji(tmp_path: Path) -> Path:
    """A data folder with a small Kanji archive, unpacked beside it."""
    import kmnist

    archive_in(tmp_path)
    assert kmnist.extract_kanji(root=tmp_path, verify=False).ok
    return tmp_path


def _class_folder(root: Path) -> Path:
    return min((root / "kkanji" / "kkanji2").iterdir())


def test_a_class_folder_that_cannot_be_read(kanji: Path) -> None:
    # Before: PermissionError from load_kanji and check_kanji, and the same
    # traceback from --verify.
    folder = _class_folder(kanji)
    folder.chmod(0)
    for code in (
        f"kmnist.load_kanji(root={str(kanji)!r})",
        f"kmnist.check_kanji({str(folder.parent)!r})",
    ):
        r = python(code)
        one_line_saying(r, "LocalFileError: ", f"{folder}: cannot be read (permission denied)")
    r = bound(
        [
            str(Path(sys.executable).with_name("kmnist-download")),
            "-d",
            "kkanji",
            "--dir",
            str(kanji),
            "--verify",
        ]
    )
    assert "Traceback" not in r.stderr and r.returncode == 1, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("kkanji/kkanji2/"))
    assert "unreadable" in row and "cannot be read (permission denied)" in row, row


def test_a_png_that_cannot_be_read(kanji: Path) -> None:
    # Before: "wrong structure: expected a PNG image, got PermissionError: ...",
    # from kanji_arrays and the PyTorch dataset alike; check_kanji a traceback.
    png = min(_class_folder(kanji).iterdir())
    png.chmod(0)
    for code in (
        f"kmnist.kanji_arrays(kmnist.load_kanji(root={str(kanji)!r}))",
        f"kmnist.check_kanji({str(kanji / 'kkanji' / 'kkanji2')!r})",
    ):
        line = one_line_saying(python(code), f"{png}: cannot be read (permission denied)")
        assert "structure" not in line


@pytest.mark.torch
def test_the_pytorch_kanji_dataset_says_a_png_cannot_be_read(kanji: Path) -> None:
    png = min(_class_folder(kanji).iterdir())
    png.chmod(0)
    r = python(
        "from kmnist.datasets import KuzushijiKanji\n"
        f"ds = KuzushijiKanji({str(kanji)!r})\n"
        f"ds[[str(p) for p, _ in ds.samples].index({str(png)!r})]"
    )
    one_line_saying(r, "LocalFileError: ", f"{png}: cannot be read")


def test_an_archive_that_cannot_be_read(tmp_path: Path) -> None:
    # Before: PermissionError from extract_kanji.
    tar = archive_in(tmp_path)
    tar.chmod(0)
    r = python(f"kmnist.extract_kanji(root={str(tmp_path)!r}, verify=False)")
    one_line_saying(r, "LocalFileError: ", f"{tar}: cannot be read (permission denied)")


def test_unpacking_into_a_folder_that_cannot_be_written(tmp_path: Path) -> None:
    # Before: PermissionError naming the lock's folder; then, once that was
    # caught, the temporary .unpacking-x1y2z3 folder rather than the folder.
    tar = archive_in(tmp_path)
    with tarfile.open(tar) as tf:
        assert tf.getnames()
    tar.parent.chmod(0o555)
    try:
        r = python(f"kmnist.extract_kanji(root={str(tmp_path)!r}, verify=False)")
        line = one_line_saying(r, "FolderError: ", "is not writable by this user")
        assert line.startswith(f"FolderError: {tar.parent}") or line.startswith(
            f"FolderError: {tar.parent / '.kmnist'}"
        ), line
        assert ".unpacking-" not in line
    finally:
        tar.parent.chmod(0o755)


@needs_realdata
def test_a_bookkeeping_folder_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    # Before: each file named its own lock (`.kmnist/<file>.lock is not
    # writable`, a name that does not exist), once per file; the folder is what to fix.
    books = tmp_path / "kmnist" / ".kmnist"
    books.mkdir(parents=True)
    books.chmod(0o555)
    script = Path(sys.executable).with_name("kmnist-download")
    r = bound(
        [str(script), "-d", "kmnist", "-s", "test", "--dir", str(tmp_path),
         "--mirror", str(REALDATA_KMNIST.parent), "--no-progress"]
    )  # fmt: skip
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    # Said once, as the folder's, not once per file (three lines).
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert errors == [
        f"kmnist-download: error: {books} is not writable by this user (permission denied): "
        "ask its owner for write access, or choose another folder with --dir (or $KMNIST_DATA)"
    ], r.stderr
    assert sorted(p.name for p in (tmp_path / "kmnist").iterdir()) == [".kmnist"]


@needs_realdata
def test_the_plan_says_a_final_file_cannot_be_read_in_words(kmnist_test: Path) -> None:
    # Before: `refetch  kmnist/kmnist-test-imgs.npz  2.9 MiB  [Errno 13]
    # Permission denied: '/.../kmnist-test-imgs.npz'`.
    script = Path(sys.executable).with_name("kmnist-download")
    r = bound([str(script), "-d", "kmnist", "-s", "test", "--dir", str(kmnist_test), "--dry-run"])
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if "kmnist-test-imgs.npz" in line)
    assert row.split()[0] == "refetch" and row.endswith("cannot be read (permission denied)"), row
    assert "Errno" not in r.stdout
