"""The questions on an 80x24 terminal, as a person sees them (pexpect and pyte).

pexpect runs ``kmnist-download`` with no arguments in a pseudo-terminal of 80
columns and 24 rows; pyte, a terminal emulator, keeps the screen it draws, so
that where a line lands (under the question, on one row, within the screen)
is checked on what is shown, not on the bytes sent. The printed command is
also pasted back into the command's own parser.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmnist.cli.download import build_parser
from kmnist.cli.interactive import COLUMNS, Request, wrapped

from .conftest import ROOT

if sys.platform == "win32":
    pytest.skip("pseudo-terminals are POSIX", allow_module_level=True)
pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")

DOWN = "\x1b[B"
ENTER = "\r"
SPACE = " "


class Terminal:
    """``download_data.py`` in an 80x24 pseudo-terminal, drawn on a pyte screen."""

    def __init__(self, cwd: Path, **env: str) -> None:
        environ = {k: v for k, v in os.environ.items() if k not in ("KMNIST_MIRROR", "KMNIST_DATA")}
        # pexpect never answers prompt_toolkit's cursor position requests.
        environ.update(TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", NO_COLOR="1", **env)
        self.screen = pyte.Screen(COLUMNS, 24)
        self.stream = pyte.Stream(self.screen)
        self.child = pexpect.spawn(
            sys.executable,
            [str(ROOT / "download_data.py")],
            cwd=str(cwd),
            env=environ,
            dimensions=(24, COLUMNS),
            encoding="utf-8",
            timeout=60,
        )

    def rows(self) -> list[str]:
        return [row.rstrip() for row in self.screen.display]

    def wait_for(self, text: str) -> list[str]:
        """Feed the screen until a row holds ``text``; the rows then (bounded: 60 s)."""
        deadline = time.monotonic() + 60
        while not any(text in row for row in self.rows()):
            assert time.monotonic() < deadline, "\n".join(self.rows())
            try:
                self.stream.feed(self.child.read_nonblocking(65536, timeout=0.2))
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                assert any(text in row for row in self.rows()), "\n".join(self.rows())
                break
        return self.rows()

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def finish(self) -> int:
        self.child.expect(pexpect.EOF)
        self.child.close()
        return int(self.child.exitstatus)


def through_to_the_folder(term: Terminal) -> None:
    """All three datasets, NumPy, both splits, unpack: up to the folder question."""
    term.wait_for("Which datasets?")
    term.send(DOWN + SPACE + DOWN + SPACE + ENTER)
    term.wait_for("Format of Kuzushiji-MNIST?")
    term.send(ENTER)
    term.wait_for("Which split?")
    term.send(ENTER)
    term.wait_for("Unpack the Kanji archive")
    term.send(ENTER)


def test_the_folder_default_is_shown_and_a_typed_folder_replaces_it(tmp_path: Path) -> None:
    term = Terminal(tmp_path)
    through_to_the_folder(term)
    rows = term.wait_for("Where to?")
    asked = next(i for i, row in enumerate(rows) if "Where to?" in row)
    assert "Enter: ./data" in rows[asked]
    where = "sub/typed"  # relative to the folder it runs in: fits on the question's row
    term.send(where + ENTER)
    rows = term.wait_for("From where?")
    # What was typed, alone: not appended to a pre-filled ./data.
    assert rows[asked].endswith(f"Enter: ./data) {where}"), rows[asked]
    term.send(ENTER)  # the built-in mirrors
    rows = term.wait_for("? Download")
    assert f"into {where}" in rows
    term.send("n")
    term.wait_for("without questions")
    assert term.finish() == 0
    assert not (tmp_path / "sub").exists() and not (tmp_path / "data").exists()


def test_enter_at_the_folder_question_takes_the_default(tmp_path: Path) -> None:
    term = Terminal(tmp_path)
    through_to_the_folder(term)
    term.wait_for("Where to?")
    term.send(ENTER)
    term.wait_for("From where?")
    term.send(ENTER)
    rows = term.wait_for("? Download")
    assert "into data" in rows
    term.send("n")
    term.wait_for("without questions")
    assert term.finish() == 0


def test_a_refused_folder_is_said_on_the_row_under_the_question(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("mine")
    term = Terminal(tmp_path)
    through_to_the_folder(term)
    rows = term.wait_for("Where to?")
    asked = next(i for i, row in enumerate(rows) if "Where to?" in row)
    term.send("a-file" + ENTER)
    rows = term.wait_for("is a file, not a folder")
    assert rows[asked + 1] == "a-file is a file, not a folder", rows
    term.child.sendcontrol("c")
    assert term.finish() == 130
    assert (tmp_path / "a-file").read_text() == "mine"


def test_three_datasets_a_long_folder_and_a_typed_mirror_fit_80x24(tmp_path: Path) -> None:
    # 46 and 55 characters: each fits on a row with the words before it.
    where = Path("a-rather-long-folder-name/and-another-one/data")
    mirror = "https://mirror.example.org/datasets/kuzushiji-2019/"
    term = Terminal(tmp_path)
    through_to_the_folder(term)
    term.wait_for("Where to?")
    term.send(str(where) + ENTER)
    term.wait_for("From where?")
    term.send(DOWN + ENTER)  # another mirror, typed
    rows = term.wait_for("Mirror URL or folder:")
    term.send(mirror + ENTER)
    rows = term.wait_for("? Download 11 file(s)")
    # The typed URL on the question's row, unbroken.
    assert any(row.endswith("Mirror URL or folder: " + mirror) for row in rows), "\n".join(rows)
    # The whole plan, from its header to the question under it, is on the screen at once.
    assert any(row.startswith("action ") for row in rows), rows
    assert f"into {where}" in rows
    term.send("n")
    rows = term.wait_for(f"--mirror {mirror}")
    assert term.finish() == 0
    # The command: lines that end in " \" (never a word broken by the
    # terminal), pasted back as a shell reads them, into the command's parser.
    start = next(i for i, row in enumerate(rows) if "without questions" in row) + 1
    lines = [row for row in rows[start:] if row]
    assert all(row.endswith(" \\") for row in lines[:-1]) and len(lines) > 1, lines
    words = shlex.split("\n".join(lines).replace(" \\\n", " "))
    assert words[:2] == [sys.executable, str(ROOT / "download_data.py")] or words[0].endswith(
        ("python", "python3")
    ), words
    args = build_parser().parse_args(words[2:])
    assert args.dataset == ["kmnist", "k49", "kkanji"] and args.extract
    assert (args.dir, args.mirror, args.split) == (where, [mirror], "all")


# -- the command, wrapped: pure, over drawn requests ------------------------------

folder = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=120
).filter(
    # A folder named "-x" reads as a flag after --dir: a limit of
    # Request.argvs (it would need --dir=-x), not of the wrapping.
    lambda t: t.strip() == t and t not in (".", "..") and not t.startswith("-")
)
mirror = st.sampled_from(
    ["http://127.0.0.1:8000/k", "/srv/kuzushiji", "https://m.example.org/x/{name}"]
)


@given(
    datasets=st.lists(st.sampled_from(["kmnist", "k49", "kkanji"]), min_size=1, unique=True),
    split=st.sampled_from(["all", "train", "test"]),
    root=folder,
    mirrors=st.lists(mirror, max_size=2),
    builtin=st.booleans(),
    extract=st.booleans(),
)
def test_a_wrapped_command_is_the_same_command_and_fits_80_columns(
    datasets: list[str], split: str, root: str, mirrors: list[str], builtin: bool, extract: bool
) -> None:
    formats = {"kmnist": "npz", "k49": "npz", "kkanji": "tar"}
    request = Request(tuple(datasets), formats, split, Path(root), tuple(mirrors), builtin, extract)
    for command, argv in zip(request.commands("kmnist-download"), request.argvs()):
        lines = wrapped(command)
        for line in lines:
            # Longer than the terminal only when it holds one word, or one
            # flag with its value, that is longer by itself.
            if len(line) > COLUMNS:
                words = shlex.split(line.strip().removesuffix(" \\"))
                assert len(words) == 1 or (len(words) == 2 and words[0].startswith("--")), line
        assert all(line.endswith(" \\") for line in lines[:-1])
        pasted = shlex.split("\n".join(lines).replace(" \\\n", " "))
        assert pasted == shlex.split(command)
        start = 2 if builtin else 1  # "KMNIST_MIRROR=" and the launcher
        assert pasted[start:] == argv
        assert build_parser().parse_args(pasted[start:]).dir == Path(root)
