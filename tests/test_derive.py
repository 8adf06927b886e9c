"""An npz-less mirror: the NumPy files are built from the verified MNIST-format ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kmnist
from kmnist.cli.download import main

from .server import FaultyServer

MNIST_TEST = ("kmnist/t10k-images-idx3-ubyte.gz", "kmnist/t10k-labels-idx1-ubyte.gz")


def test_npz_less_mirror_gives_derived_npz_equal_to_the_published_arrays(
    realdata: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    server: FaultyServer,
) -> None:
    import numpy as np

    # As the CDN copies: the MNIST format only (and the class map).
    for rel in (*MNIST_TEST, "kmnist/kmnist_classmap.csv"):
        server.add(rel, (realdata / rel).read_bytes())
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(tmp_path), "-m", server.url]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "derived  kmnist/kmnist-test-imgs.npz" in out
    assert "derived from t10k-images-idx3-ubyte.gz" in out and "not the published bytes" in out
    assert "no mirror in the list carries it" not in out and "404" in out  # why it was built
    for name in ("kmnist-test-imgs.npz", "kmnist-test-labels.npz"):
        with (
            np.load(tmp_path / "kmnist" / name) as ours,
            np.load(realdata / "kmnist" / name) as published,
        ):
            assert ours.files == ["arr_0"]
            a, b = ours["arr_0"], published["arr_0"]
            assert a.dtype == b.dtype == np.uint8 and a.shape == b.shape
            assert np.array_equal(a, b)
    # --verify and kmnist.load recognise the derived files (arrays, not hashes).
    assert main(["--verify", "-d", "kmnist", "-s", "test", "--dir", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    imgs = next(f for f in doc["files"] if f["path"] == "kmnist/kmnist-test-imgs.npz")
    assert imgs["status"] == "ok" and imgs["detail"].startswith("derived from")
    images, labels = kmnist.load("kmnist", "test", root=tmp_path, format="npz")
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    # A re-run with no mirror reachable keeps them (the published ones are asked for first)...
    assert main([*argv[:-2], "-m", "http://127.0.0.1:9", "-q"]) == 0
    assert (tmp_path / "kmnist/kmnist-test-imgs.npz").is_file()
    # ...and a derived file whose array no longer matches its source is corrupt.
    src = tmp_path / MNIST_TEST[1]
    with np.load(tmp_path / "kmnist/kmnist-test-labels.npz") as z:
        labels = z["arr_0"].copy()
    labels[0] ^= 1
    np.savez_compressed(tmp_path / "kmnist/kmnist-test-labels.npz", arr_0=labels)
    assert src.is_file()
    assert main(["--verify", "-d", "kmnist", "-s", "test", "--dir", str(tmp_path)]) == 1
    [line] = [x for x in capsys.readouterr().out.splitlines() if "kmnist-test-labels.npz" in x]
    assert line.split()[1] == "corrupt"


def test_k49_cannot_be_derived_and_the_hint_says_what_would_work(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    server: FaultyServer,
) -> None:
    argv = ["-d", "k49", "-s", "test", "--dir", str(tmp_path), "-m", server.url, "-q"]
    assert main(argv) == 1
    err = capsys.readouterr().err.splitlines()
    assert "--check-mirrors" in err[-1] and "Internet Archive" in err[-1]
    assert not [p for p in tmp_path.rglob("*.npz")]


def test_a_build_waits_for_the_files_lock_and_keeps_what_another_process_put_there(
    realdata: Path, tmp_path: Path, server: FaultyServer
) -> None:
    # No mirror has kmnist-test-labels.npz: ours builds it from the MNIST
    # file. Meanwhile another process takes the file's lock to fetch the
    # published one. The build wrote the same .part without the lock, and the
    # other process went on writing into it after it was promoted (a corrupt
    # final file). Now the build waits, then keeps what the other one verified.
    import threading

    from kmnist.catalogue.manifest import entry_for
    from kmnist.downloader.outcome import Outcome
    from kmnist.downloader.run import Downloader
    from kmnist.storage.layout import lock_path

    from .test_lock import hold_in_another_process

    rel = "kmnist/kmnist-test-labels.npz"
    server.add(MNIST_TEST[1], (realdata / MNIST_TEST[1]).read_bytes())
    server.fault(MNIST_TEST[1], "gate")  # the source waits until the other process holds the lock
    entry = entry_for(rel)
    assert entry is not None
    target = tmp_path / rel
    results: list[object] = []
    worker = threading.Thread(
        target=lambda: results.extend(
            Downloader(mirrors=[server.url], progress=False, derive=True).fetch(
                [entry.file], tmp_path
            )
        ),
        daemon=True,
    )
    worker.start()
    for _ in range(300):  # bounded: 30 s at most
        if server.gets(MNIST_TEST[1]) or not worker.is_alive():
            break
        worker.join(0.1)
    assert server.gets(rel) and server.gets(MNIST_TEST[1]), "the npz failed, the source is asked"
    holder = hold_in_another_process(lock_path(target))  # the other process starts
    try:
        server.gate.set()
        worker.join(0.5)  # not a timing check: it holds or it has built, either way
        # The other process finishes: the published bytes under the final name.
        target.write_bytes((realdata / rel).read_bytes())
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    worker.join(60)
    assert not worker.is_alive()
    [result] = [r for r in results if r.file.path == rel]  # type: ignore[attr-defined]
    assert result.action is Outcome.SKIPPED  # type: ignore[attr-defined]
    assert target.read_bytes() == (realdata / rel).read_bytes()
