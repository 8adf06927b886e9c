"""``kmnist-baseline`` against odd command lines, odd data and odd standard streams.

Every run here is tiny: a few dozen synthetic images written as the loader
expects them, and a catalogue (the command's seam) with their sizes and
sha256, so that the real loader and its checks read them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kmnist.catalogue.manifest as manifest
from kmnist import baselines
from kmnist.cli.baseline import main
from kmnist.errors import UsageError

# The command run in a subprocess with the synthetic data: `python -c RUNNER root argv...`.
RUNNER = """
import sys
from tests.test_baseline_hostile import write_data
from kmnist.cli.baseline import main
catalogue = write_data(sys.argv[1])
sys.exit(main(sys.argv[2:], catalogue=catalogue))
"""
ROOT = Path(__file__).resolve().parents[1]


def npz(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, array)
    return buf.getvalue()


def write_data(
    root: str | Path, *, n_train: int = 40, n_test: int = 20
) -> tuple[manifest.Entry, ...]:
    """KMNIST's four .npz files in ``root``, and a catalogue whose checksums are theirs."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        arrays[split, "images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[split, "labels"] = (np.arange(n) % 10).astype(np.uint8)
    (Path(root) / "kmnist").mkdir(parents=True, exist_ok=True)
    entries = []
    for e in manifest.ENTRIES:
        key = (e.split, e.kind)
        if (e.dataset, e.release, e.format) == ("kmnist", "2019", "npz") and key in arrays:
            data = npz(arrays[key])
            (Path(root) / e.file.path).write_bytes(data)
            file = dataclasses.replace(
                e.file, size=len(data), sha256=hashlib.sha256(data).hexdigest(), md5=None
            )
            e = dataclasses.replace(e, file=file)
        entries.append(e)
    return tuple(entries)


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, tuple[manifest.Entry, ...]]:
    root = tmp_path / "data"
    return root, write_data(root)


def knn_argv(root: Path, *more: str) -> list[str]:
    return ["knn", "-d", "kmnist", "--dir", str(root), *more]


# --- flags -----------------------------------------------------------------------------


@pytest.mark.parametrize("threads", ["1025", "100000", "3000000000", "99999999999999999999"])
def test_threads_past_what_pytorch_survives_is_a_usage_error(
    threads: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # torch.set_num_threads: "Overflow when unpacking long" (a traceback) past
    # 2**31, a segmentation fault at 100,000.
    with pytest.raises(SystemExit) as exc:
        main(["cnn", "-d", "kmnist", "--dir", str(tmp_path), "--threads", threads])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--threads: must be at most 1024" in err
    with pytest.raises(UsageError, match="threads must be from 1 to 1024"):
        baselines.cnn("kmnist", root=tmp_path, threads=int(threads))


def test_the_dataset_given_twice_is_a_usage_error_not_the_last_one(
    data: tuple[Path, tuple[manifest.Entry, ...]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, catalogue = data
    with pytest.raises(SystemExit) as exc:
        main(["knn", "-d", "kmnist", "-d", "k49", "--dir", str(root)], catalogue=catalogue)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "given twice (kmnist, k49)" in err
    # The same dataset twice (any spelling) says the same thing: it runs.
    argv = ["knn", "-d", "kmnist", "-d", "KMNIST", "--dir", str(root)]
    assert main(argv, catalogue=catalogue) == 0


def test_a_data_folder_no_filesystem_could_hold_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # data_root ran before the command's error handling: a traceback.
    monkeypatch.setenv("KMNIST_DATA", "a/" * 3000)
    assert main(["knn", "-d", "kmnist"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "$KMNIST_DATA is 3,000 folders deep" in err


@pytest.mark.parametrize("via", ["--dir", "KMNIST_DATA"])
def test_a_data_folder_that_is_a_file_names_what_the_user_gave(
    via: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # It said "root '...' is a file", the Python argument's name.
    file = tmp_path / "afile"
    file.write_text("x")
    if via == "--dir":
        assert main(["knn", "-d", "kmnist", "--dir", str(file)]) == 2
        said = f"--dir {str(file)!r} is a file, not a folder"
    else:
        monkeypatch.setenv("KMNIST_DATA", str(file))
        assert main(["knn", "-d", "kmnist"]) == 2
        said = f"$KMNIST_DATA {str(file)!r} is a file, not a folder"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err and "error: root" not in err


def test_the_printed_command_names_a_folder_of_any_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A name with bytes that are not UTF-8 (and a newline) came out as
    # '...\\udcff...' in quotes: the shell read backslashes, another folder.
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash to run the printed command")
    folder = os.fsdecode(bytes(tmp_path) + b"/bad\xff\xfe\nname")
    assert main(["knn", "-d", "kmnist", "--dir", folder]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    command = err.split("get them with: ")[1].split(", or add --download")[0]
    assert command.startswith("kmnist-download --dataset kmnist --dir $'")
    # The shell gives back the folder's bytes exactly.
    r = subprocess.run(
        [bash, "-c", f'set -- {command}; printf %s "$5"'], capture_output=True, timeout=30
    )
    assert r.stdout == os.fsencode(folder)


def test_a_file_that_fails_its_checksum_says_download_replaces_it(
    data: tuple[Path, tuple[manifest.Entry, ...]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, catalogue = data
    (root / "kmnist/kmnist-test-imgs.npz").write_bytes(b"not the published bytes")
    assert main(knn_argv(root), catalogue=catalogue) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wrong size" in err
    assert err.rstrip().endswith("; add --download to fetch it again")


# --- data that loads but holds nothing -------------------------------------------------


@pytest.mark.parametrize("model", ["knn", "cnn"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_a_split_with_no_images_is_one_line_not_a_figure(
    model: str, split: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # cnn: ZeroDivisionError (a traceback) for no training images; both
    # models: "accuracy 0.00% ... difference -92.10 points" for no test image.
    if model == "cnn":
        pytest.importorskip("torch")
    sizes = {"n_train": 0} if split == "train" else {"n_test": 0}
    catalogue = write_data(tmp_path, **sizes)
    argv = [model, "-d", "kmnist", "--dir", str(tmp_path)]
    if model == "cnn":
        argv += ["--epochs", "1"]
    assert main(argv, catalogue=catalogue) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert f"kmnist {split} from disk: wrong structure: expected at least one image" in (
        captured.err
    )


# --- standard streams --------------------------------------------------------------------


def test_stderr_closed_still_prints_the_figure(
    data: tuple[Path, tuple[manifest.Entry, ...]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 2>&-: tqdm wrote to None (AttributeError) and a finished run exited 1.
    root, catalogue = data
    monkeypatch.setattr(sys, "stderr", None)
    assert main(knn_argv(root), catalogue=catalogue) == 0
    monkeypatch.undo()
    assert capsys.readouterr().out.startswith("knn kmnist: accuracy ")


def test_stdout_closed_is_said_before_the_run(
    data: tuple[Path, tuple[manifest.Entry, ...]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # >&-: the run went ahead, printed nowhere and exited 0.
    root, catalogue = data
    started = []
    monkeypatch.setattr(baselines, "knn", lambda *a, **k: started.append(1))
    monkeypatch.setattr(sys, "stdout", None)
    status = main(knn_argv(root), catalogue=catalogue)
    monkeypatch.undo()
    assert status == 1 and started == []
    err = capsys.readouterr().err
    assert err == "kmnist-baseline: error: cannot write to standard output: it is closed\n"


def _run(root: Path, argv: list[str], *, stdout: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, str(root), *argv],
        cwd=ROOT,
        timeout=120,
        stdout=stdout,
        stderr=subprocess.PIPE,
    )


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_stdout_on_a_full_disk_is_standard_outputs_fault_not_the_data_folders(
    tmp_path: Path,
) -> None:
    # It said "the data folder is on a full disk ... (the .part files are kept
    # for resume), or choose another folder with --dir".
    root = tmp_path / "data"
    with open("/dev/full", "wb") as full:
        r = _run(root, knn_argv(root), stdout=full)
    assert r.returncode == 1
    assert r.stderr.decode() == (
        "kmnist-baseline: error: cannot write to standard output: no space left on device\n"
    )


def test_stdout_a_closed_pipe_is_silent(tmp_path: Path) -> None:
    # The reader left: nothing to say (it said "the data folder: Broken pipe").
    root = tmp_path / "data"
    read, write = os.pipe()
    os.close(read)
    try:
        r = _run(root, knn_argv(root), stdout=write)
    finally:
        os.close(write)
    assert r.returncode == 1 and r.stderr == b""


def test_an_error_with_stderr_closed_is_not_written_to_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # 2>&- and a missing data folder: print(file=None) put the error line on
    # standard output, where a script reads the figure (or kmnist-download's JSON).
    monkeypatch.setattr(sys, "stderr", None)
    status = main(["knn", "-d", "kmnist", "--dir", str(tmp_path / "nope")])
    monkeypatch.undo()
    assert status == 1
    assert capsys.readouterr().out == ""
