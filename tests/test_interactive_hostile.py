"""The questions under hostile answers, environments and keys: every way out is
one line and an exit status, a refused answer is asked again (each test types
a bounded number of answers), nothing is written before the yes, no password
is shown, and the command printed for next time names the folder that was used.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from kmnist.cli import interactive
from kmnist.cli.interactive import check_folder, check_mirror, masked, source_options

from .server import FaultyServer
from .test_interactive import (
    CTRL_C,
    CTRL_D,
    CTRL_U,
    DOWN,
    ENTER,
    PROG,
    TO_EACH_QUESTION,
    drive,
    files_under,
    pasted,
)

ESC = "\x1b"
# Up to the folder question with the defaults (Kuzushiji-MNIST, NumPy, both
# splits), the line typed so far erased.
TO_FOLDER = ENTER * 3 + CTRL_U
SECRET = "s3cr3t-pw"


def paste(text: str) -> str:
    """``text`` as a terminal sends a paste (bracketed): control characters arrive as typed."""
    return f"\x1b[200~{text}\x1b[201~"


# No server listens here; a connection is refused at once.
NOWHERE = "http://127.0.0.1:9/k"


@pytest.fixture
def at_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The flow as if on a terminal, in an empty working folder.

    ``KMNIST_MIRROR`` names 127.0.0.1 (the source question's first choice),
    so that a flow that took a bad answer, and then a yes meant for another
    question, never reaches the internet.
    """
    monkeypatch.setattr(interactive, "on_terminal", lambda: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("KMNIST_DATA", raising=False)
    monkeypatch.setenv("KMNIST_MIRROR", NOWHERE)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def printed_argv(out: str) -> list[str]:
    """The words of the command for next time, as a shell reads them back."""
    lines = pasted(out).splitlines()
    start = lines.index("Nothing was downloaded. To do it later without questions:")
    return shlex.split(lines[start + 1])


# -- keys that stop --------------------------------------------------------------


@pytest.mark.parametrize("key", [ESC, CTRL_D], ids=["escape", "ctrl-d"])
@pytest.mark.parametrize("where", list(TO_EACH_QUESTION))
def test_escape_and_ctrl_d_at_any_question_stop_in_one_line(
    where: str,
    key: str,
    at_terminal: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Escape alone, or Ctrl-D, then the input ends (EOF): never a traceback or a hang.
    assert drive(TO_EACH_QUESTION[where], key) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{PROG}: interrupted; nothing was downloaded"]
    assert files_under(at_terminal) == set()


# -- folder answers ----------------------------------------------------------------


def hostile_folder(at_terminal: Path, kind: str) -> str:
    if kind == "link to nothing":
        (at_terminal / "dangling").symlink_to(at_terminal / "nowhere")
        return "dangling"
    return {
        "no such user": "~nosuchuser-kmnist/x",
        "escape sequence": paste("x\x1b[2Jy"),
        "control character": paste("a\x07b"),
        "tab": paste("a\tb"),
        "a URL": "http://example.org/data",
    }[kind]


@pytest.mark.parametrize(
    "kind",
    [
        "no such user",
        "escape sequence",
        "control character",
        "tab",
        "a URL",
        "link to nothing",
    ],
)
def test_a_hostile_folder_is_refused_and_asked_again(
    kind: str, at_terminal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each was taken: a folder named "~nosuchuser-kmnist" or "http:" made in the
    # working folder, ESC [ 2 J printed raw in the command (the screen
    # cleared), a link to nothing failed after every question as "--dir".
    typed = hostile_folder(at_terminal, kind)
    good = at_terminal / "good"
    keys = (TO_FOLDER, typed + ENTER, CTRL_U + str(good) + ENTER, ENTER, "n")
    assert drive(*keys) == 0
    out = capsys.readouterr().out
    argv = printed_argv(out)
    assert argv[argv.index("--dir") + 1] == str(good)
    assert "\x1b[2J" not in out and "\x07" not in out
    assert files_under(at_terminal) == set()
    assert not (at_terminal / "~nosuchuser-kmnist").exists()


def test_a_5000_character_folder_is_refused_in_two_rows_at_most(
    at_terminal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for text in ("a" * 5000, "ab/" * 1700, "a" * 300):
        reason = check_folder(text)
        assert reason is not None and len(reason) <= 160, (text[:20], reason)
    good = at_terminal / "good"
    keys = (TO_FOLDER, "a" * 5000 + ENTER, CTRL_U + str(good) + ENTER, ENTER, "n")
    assert drive(*keys) == 0
    argv = printed_argv(capsys.readouterr().out)
    assert argv[argv.index("--dir") + 1] == str(good)
    assert files_under(at_terminal) == set()


def test_a_folder_name_that_is_not_text_is_refused() -> None:
    # A byte that is not UTF-8 (0xff, typed or pasted) arrives as a lone
    # surrogate: the plan said "x\udcffy", the command printed another name.
    assert check_folder("x\udcffy") is not None
    assert check_folder("a\nb") is not None  # a pasted newline: the command split in two
    assert check_mirror("/srv/x\udcffy") is not None
    assert check_mirror("/srv/x\x1b[2J") is not None


@pytest.mark.parametrize("name", ["my data", "it's", "-x", "a b/$HOME", "*", "日本"])
def test_the_printed_command_reads_back_as_the_folder_used(
    name: str, at_terminal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert drive(TO_FOLDER, name + ENTER, ENTER, "n") == 0
    argv = printed_argv(capsys.readouterr().out)
    dirs = [a for a in argv if a.startswith("--dir")]
    assert dirs in (["--dir"], [f"--dir={name}"])
    if dirs == ["--dir"]:
        assert argv[argv.index("--dir") + 1] == name
    assert files_under(at_terminal) == set()


# -- mirrors --------------------------------------------------------------------


def test_a_typed_mirror_password_is_never_printed(
    at_terminal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://user:{SECRET}@127.0.0.1:9/kuzushiji"
    assert drive(ENTER * 4, DOWN + DOWN + ENTER, url + ENTER, "n") == 0  # another mirror
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    argv = printed_argv(captured.out)
    assert argv[argv.index("--mirror") + 1] == "http://***@127.0.0.1:9/kuzushiji"
    assert "password is shown as ***" in captured.out
    assert all(len(line) <= 80 for line in captured.out.splitlines())
    assert files_under(at_terminal) == set()


def test_a_password_in_kmnist_mirror_is_never_printed(
    at_terminal: Path,
    server: FaultyServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = server.url.replace("http://", f"http://user:{SECRET}@")
    monkeypatch.setenv("KMNIST_MIRROR", url)
    assert all(SECRET not in o.title for o in source_options({"KMNIST_MIRROR": url}))
    # Yes to the plan: the server has no files (404), so the run fails, exit 1,
    # after the command it ran was printed.
    assert drive(ENTER * 5, "y") == 1
    captured = capsys.readouterr()
    assert "the same as:" in captured.out
    assert SECRET not in captured.out + captured.err
    assert "***@" in captured.out


def test_the_typed_password_is_drawn_as_stars() -> None:
    assert masked(f"http://user:{SECRET}@h:1/x") == "http://" + "*" * 14 + "@h:1/x"
    assert masked("https://token@h/x") == "https://*****@h/x"
    assert masked("http://h:8080/x") == "http://h:8080/x"
    assert masked("/srv/a:b@c") == "/srv/a:b@c"


@pytest.mark.parametrize(
    "value",
    ["http://127.0.0.1:0/m", "http://127.0.0.1:9/a,http://127.0.0.1:9/b", "http://h/\x1b[2J"],
)
def test_a_hostile_kmnist_mirror_is_said_before_the_first_question(
    value: str,
    at_terminal: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # It was offered first, then refused after every question as "--mirror",
    # a flag the user had not given. No keys: a question asked would end in EOF (130).
    monkeypatch.setenv("KMNIST_MIRROR", value)
    assert drive() == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "$KMNIST_MIRROR" in err[0] and "--mirror" not in err[0]
    assert "\x1b" not in err[0]
    assert files_under(at_terminal) == set()


@pytest.mark.parametrize("value", ["x\x1b[2J", "a\x07b"])
def test_a_hostile_kmnist_data_is_refused_at_the_folder_question(
    value: str,
    at_terminal: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Enter took it, and the command printed it raw (ESC [ 2 J cleared the screen).
    monkeypatch.setenv("KMNIST_DATA", value)
    good = at_terminal / "good"
    assert drive(ENTER * 3, ENTER, CTRL_U + str(good) + ENTER, ENTER, "n") == 0
    out = capsys.readouterr().out
    argv = printed_argv(out)
    assert argv[argv.index("--dir") + 1] == str(good)
    assert "\x1b[2J" not in out and "\x07" not in out
    assert files_under(at_terminal) == set()


def test_ctrl_c_after_a_refused_answer_still_exits_130(
    at_terminal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert drive(TO_FOLDER, "~nosuchuser-kmnist/x" + ENTER, CTRL_C) == 130
    assert capsys.readouterr().err.strip().splitlines() == [
        f"{PROG}: interrupted; nothing was downloaded"
    ]
    assert files_under(at_terminal) == set()


def test_nothing_is_written_outside_the_folder_before_the_yes(at_terminal: Path) -> None:
    os.mkdir(at_terminal / "keep")
    assert drive(TO_FOLDER, "keep/sub" + ENTER, ENTER, "n") == 0
    assert files_under(at_terminal) == set() and not (at_terminal / "keep/sub").exists()


def test_a_typed_password_is_not_left_on_the_screen(tmp_path: Path) -> None:
    # The typed line stays above the plan after Enter: the password was there
    # in clear while the plan and the command showed ***@.
    pytest.importorskip("pexpect")
    pytest.importorskip("pyte")
    from .test_interactive_screen import Terminal

    term = Terminal(tmp_path)
    for question, keys in (
        ("Which datasets?", ENTER),
        ("Format of", ENTER),
        ("Which split?", ENTER),
        ("Where to?", ENTER),
        ("From where?", DOWN + ENTER),  # another mirror, typed (no KMNIST_MIRROR here)
        ("Mirror URL or folder:", f"http://user:{SECRET}@127.0.0.1:9/k" + ENTER),
    ):
        term.wait_for(question)
        term.send(keys)
    rows = term.wait_for("? Download")
    assert any(
        row.endswith("Mirror URL or folder: http://" + "*" * 14 + "@127.0.0.1:9/k") for row in rows
    ), rows
    term.send("n")
    rows = term.wait_for("put it back")
    assert term.finish() == 0
    assert not any(SECRET in row for row in rows), rows
    assert files_under(tmp_path) == set()


def test_spaces_at_the_folder_question_take_the_default(
    at_terminal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # They were refused ("type a folder"), though the answer is read stripped
    # and Enter alone takes the default.
    assert drive(TO_FOLDER, "   " + ENTER, ENTER, "n") == 0
    argv = printed_argv(capsys.readouterr().out)
    assert argv[argv.index("--dir") + 1] == "data"
    assert files_under(at_terminal) == set()


@pytest.mark.parametrize(
    "typed",
    [
        "http://127.0.0.1:0/k",  # port 0: requests went to port 80
        "http://127.0.0.1:9/a,http://127.0.0.1:9/b",  # two joined
        f"http://user:{SECRET}@127.0.0.1:0/k",  # refused, and the reason hides the password
        "   ",
        "x" * 5000,
    ],
)
def test_a_hostile_typed_mirror_is_refused_and_asked_again(
    typed: str, at_terminal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reason = check_mirror(typed)
    assert reason is not None and SECRET not in reason and len(reason) <= 160, reason
    good = "http://127.0.0.1:8/k"
    keys = (ENTER * 4, DOWN + DOWN + ENTER, typed + ENTER, CTRL_U + good + ENTER, "n")
    assert drive(*keys) == 0
    argv = printed_argv(capsys.readouterr().out)
    assert argv[argv.index("--mirror") + 1] == good
    assert files_under(at_terminal) == set()


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("a,http://b", "the mirror 'a,http://b': type one mirror, not ','"),
        ("http://h:0/", "the mirror 'http://h:0/': port 0 is no port"),
        ("~nosuchuser/x", "the mirror '~nosuchuser/x': no user 'nosuchuser' here"),
    ],
)
def test_a_typed_mirror_is_refused_in_the_questions_words(typed: str, said: str) -> None:
    # "--mirror 'a,b': give --mirror once per mirror" spoke of a flag the
    # user had not typed, at a question that takes one mirror.
    why = check_mirror(typed)
    assert why is not None and why.startswith(said), why
    assert "--mirror" not in why
