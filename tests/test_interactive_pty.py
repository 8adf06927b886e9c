"""``python download_data.py`` in a real pseudo-terminal (80x24), answered by keys.

pexpect waits for each question's text before it types, so the keys reach the
question they answer; its timeouts only bound a hang, they measure nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, no_part_files
from .server import FaultyServer

if sys.platform == "win32":
    pytest.skip("pseudo-terminals are POSIX", allow_module_level=True)
pexpect = pytest.importorskip("pexpect")

DOWN = "\x1b[B"
ENTER = "\r"
CTRL_C = "\x03"
SGR = re.compile(r"\x1b\[([0-9;]*)m")
# SGR parameters that set a colour: 30-37, 40-47, 90-97, 100-107 (16 colours),
# 38 and 48 (256 colours and true colour).
COLOURS = {*range(30, 38), 38, *range(40, 48), 48, *range(90, 98), *range(100, 108)}


def has_colour(text: str) -> bool:
    # Any colour parameter anywhere in an SGR sequence sets a colour (attribute
    # parameters such as 0, 1 and 7 are all below 30).
    return any(int(p) in COLOURS for m in SGR.finditer(text) for p in m.group(1).split(";") if p)


def spawn(cwd: Path, command: str = "download_data.py", **env: str) -> pexpect.spawn:
    """``python download_data.py``, or the installed ``kmnist-download``, with no arguments."""
    environ = {k: v for k, v in os.environ.items() if k not in ("KMNIST_MIRROR", "NO_COLOR")}
    environ.update(
        TERM="xterm",
        # pexpect is no terminal emulator: it never answers prompt_toolkit's
        # cursor position requests, which would then be waited for.
        PROMPT_TOOLKIT_NO_CPR="1",
        **env,
    )
    if command == "download_data.py":
        exe, args = sys.executable, [str(ROOT / "download_data.py")]
    else:
        found = shutil.which(command, path=str(Path(sys.executable).parent))
        if found is None:
            pytest.skip(f"{command} is not installed beside {sys.executable}")
        exe, args = found, []
    return pexpect.spawn(
        exe,
        args,
        cwd=str(cwd),
        env=environ,
        dimensions=(24, 80),
        encoding="utf-8",
        timeout=60,
    )


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    assert child.signalstatus is None
    return int(child.exitstatus)


def test_download_in_a_terminal_without_colour(
    server: FaultyServer, realdata: Path, tmp_path: Path
) -> None:
    server.add_tree(realdata)
    child = spawn(tmp_path, NO_COLOR="1")
    transcript: list[str] = []

    def answer(question: str, keys: str) -> None:
        child.expect(question)
        transcript.append(child.before + child.after)
        child.send(keys)

    answer("Which datasets", ENTER)  # Kuzushiji-MNIST, ticked already
    answer("Format of", ENTER)  # npz
    answer("Which split", DOWN + DOWN + ENTER)  # test only: realdata has no train images
    answer("Where to", ENTER)  # ./data
    answer("From where", DOWN + ENTER)  # another mirror, typed
    answer("Mirror", server.url + ENTER)
    answer(r"Download 3 file\(s\), 2\.9 MiB\?", "y")
    child.expect(r"x, y = kmnist\.load\('kmnist', 'test', root='data'\)")
    transcript.append(child.before + child.after)
    assert finish(child) == 0
    for rel in (
        "kmnist/kmnist-test-imgs.npz",
        "kmnist/kmnist-test-labels.npz",
        "kmnist/kmnist_classmap.csv",
    ):
        assert (tmp_path / "data" / rel).read_bytes() == (realdata / rel).read_bytes()
    text = "".join(transcript)
    assert "3 file(s) ready in data" in text and "checked: sha256" in text
    assert not has_colour(text), "NO_COLOR is set, yet colour was sent"
    # Run again: the first question marks what is there (the train files are not).
    child = spawn(tmp_path, NO_COLOR="1")
    child.expect(r"Kuzushiji-MNIST \(kmnist\) +20\.5 MiB  \[partly in \./data\]")
    child.send(CTRL_C)
    assert finish(child) == 130


def test_colour_is_used_when_no_color_is_unset(tmp_path: Path) -> None:
    # The other side of the check above: without NO_COLOR the same screen has colour,
    # so the pattern does find colour where there is some.
    child = spawn(tmp_path)
    child.expect("Kuzushiji-Kanji")  # the first question, drawn down to its last choice
    seen = child.before
    assert "Which datasets" in seen
    child.send(CTRL_C)
    assert finish(child) == 130
    assert has_colour(seen)


@pytest.mark.parametrize("command", ["download_data.py", "kmnist-download"])
def test_ctrl_c_at_a_question_exits_130(command: str, tmp_path: Path) -> None:
    child = spawn(tmp_path, command=command)
    child.expect("Which datasets")
    child.send(ENTER)
    child.expect("Format of")
    child.send(CTRL_C)
    child.expect("interrupted; nothing was downloaded")
    assert finish(child) == 130
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_during_the_download_keeps_the_part(server: FaultyServer, tmp_path: Path) -> None:
    images = "kmnist/kmnist-test-imgs.npz"
    data = os.urandom(3079479)  # the real size, so only the stall stops it
    server.add(images, data)
    server.always(images, "stall:300000")
    child = spawn(tmp_path, KMNIST_MIRROR=server.url, TQDM_DISABLE="1")
    for question, keys in (
        ("Which datasets", ENTER),
        ("Format of", ENTER),
        ("Which split", DOWN + DOWN + ENTER),
        ("Where to", ENTER),
        ("From where", ENTER),  # KMNIST_MIRROR, offered first
        (r"Download 3 file\(s\)", "y"),
    ):
        child.expect(question)
        child.send(keys)
    child.expect("the same as:")
    part = tmp_path / "data" / (images + ".part")

    def received() -> bytes:
        # The first bytes of the .part: a prefix (one stream) or the start of
        # a file-sized .part whose ranges are being filled (filejob).
        if not part.exists():
            return b""
        with part.open("rb") as f:
            return f.read(300000)

    # Wait (bounded by the test's timeout) for the stalled body to reach the disk.
    while received() != data[:300000]:
        child.expect([pexpect.TIMEOUT, pexpect.EOF], timeout=0.05)
        assert child.isalive()
    child.send(CTRL_C)
    child.expect("interrupted; run the same command again to resume")
    assert finish(child) == 130
    assert received() == data[:300000]
    assert not (tmp_path / "data" / images).exists()
    assert no_part_files(tmp_path / "data") == [str(part)]
