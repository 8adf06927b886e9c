"""``kmnist-download`` in-process through ``main(argv)``, and as real processes."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kmnist.catalogue.manifest import CURRENT_RELEASE, ENTRIES, select
from kmnist.cli.download import main
from kmnist.storage.layout import part_path
from kmnist.storage.partfile import PartFile, state_path

from .conftest import ROOT, StartServer, no_part_files
from .server import FaultyServer

TEST_NPZ = [
    "kmnist/kmnist-test-imgs.npz",
    "kmnist/kmnist-test-labels.npz",
    "kmnist/kmnist_classmap.csv",
]


@pytest.fixture
def mirror(server: FaultyServer, realdata: Path) -> FaultyServer:
    """A local mirror of the real published files."""
    server.add_tree(realdata)
    return server


def test_real_files_are_byte_identical(
    mirror: FaultyServer, realdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--dataset",
        "kmnist",
        "--format",
        "npz",
        "--split",
        "test",
        "--dir",
        str(tmp_path),
        "--mirror",
        mirror.url,
    ]
    assert main(argv) == 0
    for rel in TEST_NPZ:
        assert (tmp_path / rel).read_bytes() == (realdata / rel).read_bytes()
    out = capsys.readouterr().out
    assert "3 file(s) ready" in out and f"from {mirror.url}" in out and "checked: sha256" in out
    # A second run finds everything verified and makes no request at all.
    n = len(mirror.requests)
    assert main(argv) == 0
    assert len(mirror.requests) == n
    assert "skipped" in capsys.readouterr().out


# torchvision.datasets.KMNIST's own list (torchvision/datasets/mnist.py): it
# reads <root>/KMNIST/raw/<name> and, with download=True, takes a file there
# whose md5 matches instead of fetching it from codh.
TORCHVISION_KMNIST = {
    "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
    "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
    "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
    "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
}


def test_flat_layout_is_the_one_torchvision_reads(
    mirror: FaultyServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "KMNIST" / "raw"
    argv = ["-d", "kmnist", "-f", "mnist", "-s", "test", "--flat", "--dir", str(raw)]
    assert main([*argv, "-m", mirror.url]) == 0
    names = sorted(p.name for p in raw.iterdir() if not p.name.startswith("."))
    assert names == [
        "kmnist_classmap.csv",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    for name in names[1:]:
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == TORCHVISION_KMNIST[name]
    out = capsys.readouterr().out
    assert "fetched  t10k-images-idx3-ubyte.gz" in out and "ready in " + str(raw) in out
    # The flat folder is a complete one for every other step: a re-run asks
    # nothing, --verify finds it whole, and load reads it.
    n = len(mirror.requests)
    assert main([*argv, "-m", mirror.url, "-q"]) == 0 and len(mirror.requests) == n
    assert main(["--verify", "-d", "kmnist", "-f", "mnist", "-s", "test", "--dir", str(raw)]) == 0
    import kmnist

    x, y = kmnist.load("kmnist", "test", root=raw, format="mnist")
    assert x.shape == (10000, 28, 28) and y.shape == (10000,)


def test_mnist_format_real_files(mirror: FaultyServer, realdata: Path, tmp_path: Path) -> None:
    assert (
        main(
            [
                "-d",
                "kmnist",
                "-f",
                "mnist",
                "-s",
                "test",
                "--dir",
                str(tmp_path),
                "-m",
                mirror.url,
                "-q",
            ]
        )
        == 0
    )
    for rel in ("kmnist/t10k-images-idx3-ubyte.gz", "kmnist/t10k-labels-idx1-ubyte.gz"):
        assert (tmp_path / rel).read_bytes() == (realdata / rel).read_bytes()


def test_stale_mirror_exits_1_and_leaves_no_final_file(
    server: FaultyServer, realdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_tree(realdata)
    # The 2018 bytes under the current name, as a stale mirror serves them.
    server.add("kmnist/kmnist-test-imgs.npz", (realdata / "v1/kmnist-test-imgs.npz").read_bytes())
    # Without the MNIST-format images nothing can be derived in its place
    # (tests/test_derive.py shows what happens with them).
    del server.files["/kmnist/t10k-images-idx3-ubyte.gz"]
    argv = [
        "-d",
        "kmnist",
        "-f",
        "npz",
        "-s",
        "test",
        "--dir",
        str(tmp_path),
        "-m",
        server.url,
        "-q",
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "Traceback" not in err[0] and "hint: " in err[1]
    # Refused on the announced size, before 3 MB of wrong bytes are read.
    assert "kmnist/kmnist-test-imgs.npz" in err[0] and server.url in err[0]
    assert "expected 3079479 bytes, got 3069285 bytes" in err[0]
    assert not (tmp_path / "kmnist/kmnist-test-imgs.npz").exists()
    assert no_part_files(tmp_path) == []
    # The other files of the request were fetched and verified all the same,
    # and the summary says so (in quiet mode, nothing but the error).
    assert (tmp_path / "kmnist/kmnist-test-labels.npz").exists()
    assert main([a for a in argv if a != "-q"]) == 1
    out = capsys.readouterr().out
    assert "skipped  kmnist/kmnist-test-labels.npz" in out
    assert "2 file(s) ready" in out


def test_falls_back_from_stale_to_good_mirror(
    realdata: Path, tmp_path: Path, start_server: StartServer
) -> None:
    stale, good = start_server(), start_server()
    stale.add("kmnist/kmnist-test-imgs.npz", (realdata / "v1/kmnist-test-imgs.npz").read_bytes())
    good.add_tree(realdata)
    argv = [
        "-d",
        "kmnist",
        "-s",
        "test",
        "--dir",
        str(tmp_path),
        "-m",
        stale.url,
        "-m",
        good.url,
        "-q",
    ]
    assert main(argv) == 0
    assert (tmp_path / TEST_NPZ[0]).read_bytes() == (realdata / TEST_NPZ[0]).read_bytes()


def test_local_folder_mirror_from_environment(
    realdata: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KMNIST_MIRROR", f"  /nonexistent/folder   {realdata}  ")
    assert (
        main(["-d", "k49", "-s", "test", "--dir", str(tmp_path), "-q"]) == 1
    )  # images not in realdata
    assert (tmp_path / "k49/k49-test-labels.npz").read_bytes() == (
        realdata / "k49/k49-test-labels.npz"
    ).read_bytes()
    assert (tmp_path / "k49/k49_classmap.csv").exists()


def test_data_folder_from_environment(
    realdata: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # KMNIST_DATA stands in for --dir (with ~ expanded); --dir still wins.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KMNIST_DATA", "~/shared")
    monkeypatch.setenv("KMNIST_MIRROR", str(realdata))
    monkeypatch.chdir(tmp_path)
    name = "kmnist/kmnist-test-labels.npz"
    assert main(["-d", "kmnist", "-s", "test", "-q"]) == 0
    assert (tmp_path / "home/shared" / name).read_bytes() == (realdata / name).read_bytes()
    assert not (tmp_path / "data").exists()
    assert main(["-d", "kmnist", "-s", "test", "-q", "--dir", "elsewhere"]) == 0
    assert (tmp_path / "elsewhere" / name).is_file()
    assert main(["--verify", "-d", "kmnist", "-s", "test", "-f", "npz"]) == 0


def test_data_folder_from_environment_in_the_plan(
    server: FaultyServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KMNIST_DATA", str(tmp_path / "shared"))
    monkeypatch.chdir(tmp_path)
    assert main(["-d", "kmnist", "-s", "test", "-m", server.url, "--dry-run"]) == 0
    assert str(tmp_path / "shared") in capsys.readouterr().out
    assert main(["--verify", "-d", "kmnist", "-s", "test"]) == 1  # nothing there yet
    assert f"{tmp_path / 'shared'}: no such folder" in capsys.readouterr().err
    assert not (tmp_path / "data").exists() and server.requests == []


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--dataset", "k49", "--format", "mnist"], "available: npz"),
        (["--dataset", "kkanji", "--format", "npz"], "available: tar"),
        (["--dataset", "kkanji", "--release", "2018"], "not part of the 2018 release"),
        ([], "choose what to fetch"),
        (["--dataset", "kmnist", "--mirror", "ftp://example.org/x"], "unsupported mirror"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not (tmp_path / "d").exists()


def test_argparse_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--dataset", "mnist"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_dir_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["-d", "kmnist", "--dir", str(f), "--dry-run"]) == 2
    assert "is a file" in capsys.readouterr().err


def test_list_shows_every_file_and_mirror(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for e in select("all"):
        assert e.file.path in out
    assert "kmnist/train-images-idx3-ubyte.gz" in out and "17.3 MiB" in out
    assert "codh-https" in out and "wayback" in out
    assert main(["--list", "--release", "2018"]) == 0
    out = capsys.readouterr().out
    assert "2018/k49/kuzushiji49-train-imgs.npz" in out and "unverified" in out


def test_list_as_json_gives_what_other_tools_need(
    realdata: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    assert main(["--list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    files = {f["path"]: f for f in doc["files"]}
    assert set(files) == {e.file.path for e in ENTRIES if e.release == CURRENT_RELEASE}
    # The checksums are those of the published bytes (every real file here).
    real = [
        p
        for p in realdata.rglob("*")
        if p.is_file() and p.relative_to(realdata).parts[0] in ("kmnist", "k49")
    ]
    assert real
    for p in real:
        f = files[p.relative_to(realdata).as_posix()]
        assert f["size"] == p.stat().st_size
        if f["sha256"]:
            assert hashlib.sha256(p.read_bytes()).hexdigest() == f["sha256"]
        else:
            assert hashlib.md5(p.read_bytes()).hexdigest() == f["md5"]
    # URLs in the order the mirrors are tried; a partial mirror only for its files.
    order = [m["name"] for m in doc["mirrors"]]
    assert order[0] == "codh-https" and order[-1] == "wayback"
    assert len(files["kmnist/t10k-images-idx3-ubyte.gz"]["urls"]) == len(order)
    k49 = files["k49/k49-test-imgs.npz"]["urls"]
    assert k49[0].startswith("https://codh.rois.ac.jp/") and "huggingface" not in " ".join(k49)
    # --mirror replaces the list here too.
    assert main(["--list", "--json", "-d", "k49", "-m", "https://m.example/k"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {f["dataset"] for f in doc["files"]} == {"k49"}
    assert doc["files"][0]["urls"] == [f"https://m.example/k/{doc['files'][0]['path']}"]


def test_dry_run_prints_the_plan_and_touches_no_network(
    server: FaultyServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    part = tmp_path / "kmnist/kmnist-test-imgs.npz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 1024)
    (tmp_path / "kmnist/kmnist-test-labels.npz").write_bytes(b"corrupt")
    assert (
        main(["-d", "kmnist", "-s", "test", "--dir", str(tmp_path), "-m", server.url, "--dry-run"])
        == 0
    )
    out = capsys.readouterr().out
    assert "resume   kmnist/kmnist-test-imgs.npz    2.9 MiB  1.0 KiB of 2.9 MiB (.part)" in out
    assert "refetch  kmnist/kmnist-test-labels.npz" in out and "wrong size" in out
    assert "fetch    kmnist/kmnist_classmap.csv" in out
    assert "1 to fetch, 1 to resume, 1 to refetch" in out
    assert server.requests == []


def test_not_enough_space_is_refused_before_fetching(
    server: FaultyServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shutil as sh

    monkeypatch.setattr(sh, "disk_usage", lambda p: sh._ntuple_diskusage(10, 10, 1000))  # type: ignore[attr-defined]
    assert main(["-d", "kmnist", "-s", "test", "--dir", str(tmp_path), "-m", server.url, "-q"]) == 1
    assert "needed but only" in capsys.readouterr().err
    assert server.requests == []


# -- real processes -----------------------------------------------------------


def _cmd(*args: str) -> list[str]:
    exe = shutil.which("kmnist-download", path=str(Path(sys.executable).parent))
    return [exe, *args] if exe else [sys.executable, "-m", "kmnist", *args]


def test_console_script_and_download_data_py(
    mirror: FaultyServer, realdata: Path, tmp_path: Path
) -> None:
    r = subprocess.run(_cmd("--version"), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "kmnist-download" in r.stdout
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "download_data.py"),
            "-d",
            "kmnist",
            "-s",
            "test",
            "--dir",
            str(tmp_path),
            "-m",
            mirror.url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert (tmp_path / TEST_NPZ[0]).read_bytes() == (realdata / TEST_NPZ[0]).read_bytes()


def test_failure_in_a_process_is_one_line_without_traceback(
    server: FaultyServer, tmp_path: Path
) -> None:
    r = subprocess.run(
        _cmd("-d", "kmnist", "-s", "test", "--dir", str(tmp_path), "-m", server.url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "HTTP 404" in r.stderr


def test_many_processes_share_one_folder(server: FaultyServer, tmp_path: Path) -> None:
    data = os.urandom(4 * 2**20)
    server.add("kmnist/big.bin", data)
    server.always("kmnist/big.bin", "delay:0.3")  # so that the runs overlap
    script = (
        "import sys, kmnist\n"
        f"f = kmnist.RemoteFile('kmnist/big.bin', {len(data)}, "
        f"sha256='{hashlib.sha256(data).hexdigest()}')\n"
        "kmnist.download_files([f], sys.argv[1], mirrors=[sys.argv[2]], progress=False)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), server.url])
        for _ in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert (tmp_path / "kmnist/big.bin").read_bytes() == data
    assert server.body_bytes == len(data)  # fetched once; the others waited, then found it verified
    assert no_part_files(tmp_path) == []


@pytest.mark.parametrize("connections", ["1", "8"], ids=["one-stream", "shared-ranges"])
def test_ctrl_c_exits_130_and_keeps_the_part(
    server: FaultyServer, tmp_path: Path, connections: str
) -> None:
    data = os.urandom(3079479)  # the real size, so only the stall stops it
    server.add("kmnist/kmnist-test-imgs.npz", data)
    server.always("kmnist/kmnist-test-imgs.npz", "stall:300000")
    p = subprocess.Popen(
        _cmd(
            "-d", "kmnist", "-s", "test", "--dir", str(tmp_path), "-m", server.url, "-q",
            "-j", "1", "--connections", connections,
        ),
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    target = tmp_path / "kmnist/kmnist-test-imgs.npz"
    part = part_path(target)

    def received() -> int:
        # One stream appends to a prefix .part; shared ranges write into a
        # .part of the full size and record which bytes are in (the record
        # is saved as pieces end, and on the way out).
        if connections == "1":
            return part.stat().st_size if part.exists() else 0
        return PartFile.load(target, len(data)).have if state_path(target).exists() else 0

    def written() -> bool:
        if not part.exists():
            return False
        with part.open("rb") as f:
            return f.read(300000) == data[:300000]

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not written():
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert received() >= 300000
    kept = part.read_bytes()
    if connections == "1":
        assert kept == data[:300000]
    else:
        at = 0  # every byte between the holes is the server's
        for a, b in PartFile.load(target, len(data)).missing():
            assert kept[at:a] == data[at:a]
            at = b
        assert kept[at:] == data[at : len(kept)]
    assert not target.exists()


def test_dry_run_names_only_the_mirrors_that_carry_the_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["-d", "kmnist", "-f", "mnist", "--dir", str(tmp_path), "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "mirrors: codh-https, codh-http, gcs-s4tf, huggingface, wayback"
    )
    assert main(["-d", "k49", "--dir", str(tmp_path), "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "mirrors: codh-https, codh-http, wayback"
    assert main(["-d", "k49", "--release", "2018", "--dir", str(tmp_path), "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "mirrors: gcs-2018, wayback-2018"


def test_no_mirror_reachable_ends_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # closed once the block ends
    assert main(["-d", "kmnist", "-s", "test", "--dir", str(tmp_path), "-m", dead, "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    # The dead mirror's reason once, then one line per file pointing to it, then the hint.
    assert len(err) == 5 and err[0].startswith(f"kmnist-download: error: mirror 1 ({dead}) ")
    assert "refused" in err[0] and all("could not be fetched" in line for line in err[1:4])
    assert all("refused" not in line and "mirror 1 above" in line for line in err[1:4])
    assert all(dead not in line for line in err[1:]), "the mirror is named once"
    # The MNIST-format files were tried for a build, and the mirror list was the
    # user's: the hint suggests neither.
    assert "nor built from the MNIST-format file" in err[1]  # in the plan's order
    assert err[-1].startswith("kmnist-download: hint: no mirror could be reached")
    assert "--mirror" in err[-1] and "-f mnist" not in err[-1]
    assert not any(
        p.is_file() and not p.name.startswith(".")
        for p in tmp_path.rglob("*")
        if ".kmnist" not in p.parts
    )
