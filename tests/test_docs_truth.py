"""What README.md and docs/*.md say of the program is what the program does.

Each test reads its claim from the page (a default, a wait, a quoted line,
an example's output) and checks it against the code or a run of it, so a
change on either side fails here. Nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http
import inspect
import re
import shutil
import socket
from pathlib import Path

import pytest

import kmnist
from kmnist.catalogue import manifest
from kmnist.cli.download import build_parser, main
from kmnist.downloader import defaults
from kmnist.downloader.retry import Attempts, GiveUp, RetryPolicy
from kmnist.downloader.transfer import Transient

from .conftest import REALDATA, ROOT, loopback_only
from .server import FaultyServer, SilentPort

WORDS = {"a": 1, "one": 1, "once": 1, "two": 2, "twice": 2, "three": 3, "four": 4}
MIB = 1 << 20


def page(name: str) -> str:
    """A page of the docs (or README.md), its lines joined by single spaces."""
    path = ROOT / name if name == "README.md" else ROOT / "docs" / name
    return re.sub(r"\s+", " ", path.read_text(encoding="utf-8"))


def said(name: str, pattern: str) -> re.Match[str]:
    m = re.search(pattern, page(name))
    assert m is not None, f"{name} no longer says {pattern!r}: update this test with the page"
    return m


def block(name: str, first_line: str) -> list[str]:
    """The lines of the fenced block of ``name`` that holds ``first_line``."""
    text = (ROOT / "docs" / name).read_text(encoding="utf-8")
    for body in re.findall(r"(?ms)^ *```[a-z]*\n(.*?)^ *```", text):
        lines = [line.strip() for line in body.splitlines()]
        if any(line.startswith(first_line) for line in lines):
            return lines
    raise AssertionError(f"{name}: no block with {first_line!r}")


def err_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


def status(argv: list[str]) -> int:
    """The command's exit status (argparse's own errors leave main through SystemExit)."""
    try:
        return main(argv)
    except SystemExit as exc:
        assert isinstance(exc.code, int)
        return exc.code


# -- numbers the pages state --------------------------------------------------------


def test_the_command_s_stated_defaults_and_limits_are_the_code_s() -> None:
    from kmnist.cli.common import MAX_TIMEOUT, MIN_TIMEOUT
    from kmnist.downloader import pieces
    from kmnist.downloader.transfer import STALL_RATE

    m = said("command.md", r"`--jobs` files are fetched at once \(default (\d+)\)")
    assert int(m[1]) == defaults.JOBS
    m = said("command.md", r"connections from us \(default (\d+); either at most (\d+)")
    assert (int(m[1]), int(m[2])) == (defaults.CONNECTIONS, defaults.MAX_CONNECTIONS)
    assert defaults.MAX_JOBS == defaults.MAX_CONNECTIONS
    m = said("command.md", r"`--timeout` \(default (\d+) s; connecting is given at most (\d+) s")
    assert (float(m[2]), float(m[1])) == defaults.TIMEOUT
    said("command.md", r"from 1 s\s+to a day")
    assert (MIN_TIMEOUT, MAX_TIMEOUT) == (1, 24 * 3600)
    m = said("command.md", r"average at least (\d+) KiB/s")
    assert int(m[1]) * 1024 == STALL_RATE
    m = said("command.md", r"A file of (\d+) MiB or more is fetched in byte ranges")
    assert int(m[1]) * MIB == 2 * min(defaults.PIECE, pieces.MIN_SPLIT)
    m = said("command.md", r"\((\d+) MiB ones, (\d+) MiB in the last round")
    assert (int(m[1]) * MIB, int(m[2]) * MIB) == (2 * defaults.PIECE, defaults.PIECE)
    m = said("command.md", r"takes the second half of another's, down to (\d+) MiB")
    assert int(m[1]) * MIB == pieces.MIN_SPLIT
    m = said("command.md", r"slower than (\d+) MB/s")
    assert int(m[1]) * 1e6 == defaults.FAST_CONNECTION
    m = said("command.md", r"it is cut at (\d+) MB .*?any other file of unknown size at (\d+) GiB")
    [kanji] = [e.file for e in manifest.ENTRIES if e.file.path == "kkanji/kkanji.tar"]
    assert int(m[1]) * 10**6 == kanji.ceiling
    assert int(m[2]) << 30 == manifest.UNKNOWN_SIZE_CEILING


@pytest.mark.parametrize(
    ("flag", "limit"), [("--jobs", "MAX_JOBS"), ("--connections", "MAX_CONNECTIONS")]
)
def test_the_stated_ceiling_is_where_usage_errors_start(
    flag: str, limit: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    top = int(said("command.md", r"\(default \d+; either at most (\d+), a usage error above\)")[1])
    assert top == getattr(defaults, limit)
    argv = ["-d", "kmnist", "-s", "test", "--dry-run", "--dir", str(tmp_path)]
    assert status([*argv, flag, str(top)]) == 0
    capsys.readouterr()
    assert status([*argv, flag, str(top + 1)]) == 2
    assert len(err_lines(capsys)) == 1


def test_the_api_table_of_defaults_is_both_calls_signatures() -> None:
    table = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"(?m)^\| `(\w+)` \| `([^`]+)` \|", table))
    assert {"jobs", "connections", "timeout", "progress", "force", "flat"} <= set(rows)
    m = said(
        "api.md",
        r"\| `piece`, `fast_connection` \| (\d+) MiB \((\d+) MiB before the last round\), (\d+) MB/s \|",
    )
    for call in (kmnist.download, kmnist.download_files):
        params = inspect.signature(call).parameters
        for name, shown in rows.items():
            assert name in params, f"api.md's table names {name}, not a keyword of {call.__name__}"
            if shown in ("RetryPolicy()", "open_url"):  # what None stands for
                assert params[name].default is None, (call.__name__, name)
                continue
            assert repr(params[name].default) == shown, (call.__name__, name)
        assert params["piece"].default == int(m[1]) * MIB == defaults.PIECE
        assert int(m[2]) * MIB == 2 * defaults.PIECE
        assert params["fast_connection"].default == int(m[3]) * 1e6


def test_the_waits_the_pages_name_are_the_code_s() -> None:
    from kmnist.downloader import retry, run
    from kmnist.downloader.transfer import RESOLVE_POLL
    from kmnist.storage import lock, partfile

    m = said(
        "command.md",
        r"a retry's back-off of (a second) or more, a mirror that sends nothing for (\d+) s, "
        r"a file locked by another process for (a second)",
    )
    assert retry.NOTICE_WAIT == lock.WAIT_NOTICE == 1.0  # "a second", twice
    assert float(m[2]) == run.STALL_NOTICE
    said("safety.md", r"at least once a second while the fetch goes on")
    assert partfile.SAVE_EVERY == 1.0
    m = said("safety.md", r"`Retry-After` is honoured up to (\d+) s")
    assert RetryPolicy().max_retry_after == float(m[1])
    m = said("safety.md", r"capped exponential backoff \(([\d.]+) s doubling")
    assert RetryPolicy().backoff == float(m[1])
    m = said("command.md", r"Ctrl-C ends the run within ([\d.]+) s of its stop")
    assert float(m[1]) == RESOLVE_POLL
    m = said("mirrors.md", r"A connection that cannot be made is tried once more, not (\w+) times")
    assert (RetryPolicy().unreachable_attempts, RetryPolicy().attempts) == (2, WORDS[m[1]])


# -- what the pages say of datasets, mirrors and statuses ---------------------------


@pytest.mark.parametrize("name", ["README.md", "index.md"])
def test_the_dataset_table_is_the_catalogue_s(name: str) -> None:
    k = kmnist.info("kmnist")
    m = said(
        name,
        r"\| Kuzushiji-MNIST \(`kmnist`\) \| ([\d,]+) (\d+)x(\d+) grayscale images, (\d+) classes, (\d+)k/(\d+)k train/test",
    )
    assert (int(m[1].replace(",", "")), (int(m[2]), int(m[3])), int(m[4])) == (
        k.total,
        k.image_size,
        k.num_classes,
    )
    assert (int(m[5]) * 1000, int(m[6]) * 1000) == (k.train, k.test)
    k = kmnist.info("k49")
    m = said(name, r"\| Kuzushiji-49 \(`k49`\) \| ([\d,]+) (\d+)x(\d+) images, (\d+) classes")
    assert (int(m[1].replace(",", "")), (int(m[2]), int(m[3])), int(m[4])) == (
        k.total,
        k.image_size,
        k.num_classes,
    )
    k = kmnist.info("kkanji")
    m = said(
        name,
        r"\| Kuzushiji-Kanji \(`kkanji`\) \| about ([\d,]+) (\d+)x(\d+) PNG images of ([\d,]+) classes",
    )
    assert abs(int(m[1].replace(",", "")) - k.total) < 100
    assert ((int(m[2]), int(m[3])), int(m[4].replace(",", ""))) == (k.image_size, k.num_classes)
    assert [d.name for d in manifest.DATASETS.values()] == ["kmnist", "k49", "kkanji"]
    assert (
        manifest.DATASETS["kmnist"].default_format == "npz"
    )  # "(NumPy format)" of the quick start


def test_the_info_table_of_the_api_page_is_info() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    rows = re.findall(
        r'(?m)^\| `"(\w+)"` \| ([\d,]+|None) \| ([\d,]+|None) \| ([\d,]+) \| ([\d,]+) \| \((\d+), (\d+)\) \|$',
        text,
    )
    assert [r[0] for r in rows] == ["kmnist", "k49", "kkanji"]

    def number(cell: str) -> int | None:
        return None if cell == "None" else int(cell.replace(",", ""))

    for name, train, test, total, classes, h, w in rows:
        i = kmnist.info(name)
        assert (i.train, i.test, i.total, i.num_classes) == tuple(
            map(number, (train, test, total, classes))
        )
        assert i.image_size == (int(h), int(w))


def test_the_exit_statuses_the_command_page_gives_are_the_code_s() -> None:
    from kmnist.errors import ExitStatus

    m = said(
        "command.md",
        r"Exit status: `(\d+)` success, `(\d+)` failure .*?, `(\d+)` bad usage, `(\d+)` "
        r"interrupted \(Ctrl-C\), `(\d+)` terminated \(SIGTERM.*?`(\d+)` hung up \(SIGHUP",
    )
    assert tuple(map(int, m.groups())) == (
        ExitStatus.OK,
        ExitStatus.FAILURE,
        ExitStatus.USAGE,
        ExitStatus.INTERRUPTED,
        ExitStatus.TERMINATED,
        ExitStatus.HANGUP,
    )


def test_the_mirror_table_is_the_built_in_list_in_its_order() -> None:
    text = (ROOT / "docs" / "mirrors.md").read_text(encoding="utf-8")
    rows = re.findall(r"(?m)^\| `([\w-]+)` \| (.*?) \| (.*?) \|$", text)
    current = [m for m in manifest.BUILTIN_MIRRORS if "2019" in m.releases]
    assert [r[0] for r in rows] == [m.name for m in current]
    official = current[0].template
    mnist = {e.file.path for e in manifest.select("kmnist", "mnist", "all") if e.format == "mnist"}
    for (name, where, carries), mirror in zip(rows, current):
        url = re.search(r"`(https?://[^`]+)`", where)
        if url is None:  # "the same over plain http"
            assert mirror.template == official.replace("https://", "http://", 1), name
        else:
            shown = url[1].replace("<dataset>/<file>", "{path}").replace("<file>", "{name}")
            shown = shown.replace("<official URL>", official.replace("https://", "http://", 1))
            assert re.fullmatch(
                re.escape(shown).replace("<commit>", "[0-9a-f]{40}"), mirror.template
            ), name
        if carries == "KMNIST, MNIST format":
            assert mirror.carries == frozenset(mnist), name
        else:
            assert carries in ("everything", "whatever was archived") and mirror.carries is None, (
                name
            )


def _statuses(claim: str) -> set[int]:
    named = {int(n) for n in re.findall(r"\b([1-5]\d\d)\b", claim)}
    for hundred in re.findall(r"\b([1-5])xx\b", claim):
        named |= {s.value for s in http.HTTPStatus if s.value // 100 == int(hundred)}
    return named


def test_the_statuses_safety_md_says_are_retried_are_the_ones_retried(
    server: FaultyServer, tmp_path: Path, sleeps: list[float], retry: RetryPolicy
) -> None:
    from kmnist.downloader.transfer import TRANSIENT_STATUS

    named = _statuses(said("safety.md", r"Transient failures \(([^)]*)\) are retried")[1])
    assert {408, 429, 503} <= named
    data = b"published bytes\n" * 64
    f = kmnist.RemoteFile("x/one.bin", len(data), sha256=hashlib.sha256(data).hexdigest())
    server.add("/x/one.bin", data)
    not_retried = []
    for status in sorted(named):
        server.fault("/x/one.bin", f"status:{status}")
        root = tmp_path / str(status)
        try:
            kmnist.download_files([f], root, mirrors=[server.url], progress=False, retry=retry)
        except kmnist.DownloadError:
            not_retried.append(status)
    assert not_retried == [], f"said to be retried, but not: {not_retried}"
    # ... and what is retried is said.
    assert sorted(TRANSIENT_STATUS - named) == []


def test_the_status_list_is_read_from_the_page() -> None:
    assert _statuses("408, 429 and 5xx") == {408, 429} | set(range(500, 509)) | {510, 511}
    assert _statuses("408, 425 and 503") == {408, 425, 503}


def test_the_largest_backoff_safety_md_names_is_reached() -> None:
    m = said("safety.md", r"capped exponential backoff \(([\d.]+) s doubling to ([\d.]+) s")
    waits: list[float] = []
    tries = Attempts(RetryPolicy(sleep=waits.append))
    with pytest.raises(GiveUp):
        for _ in range(100):  # tries that bring no byte: the longest waits there are
            tries.failed(Transient("HTTP 503 Service Unavailable"), progressed=False)
    assert waits[0] == float(m[1])
    assert max(waits) == float(m[2]), f"the waits are {waits}, then the next mirror"


def _connects_to_a_dead_host(tmp_path: Path) -> int:
    """How many times one file's download tries to connect to a host that drops packets."""
    from kmnist.downloader.transfer import open_url

    dead = SilentPort(dropping=True)
    tried: list[str] = []

    def counting(url: str, offset: int, **kw: object) -> object:
        tried.append(url)
        return open_url(url, offset, **kw)  # type: ignore[arg-type]

    f = kmnist.RemoteFile("x/one.bin", 4, sha256="0" * 64)
    try:
        with pytest.raises(kmnist.KmnistError, match="timed out"):
            kmnist.download_files(
                [f],
                tmp_path,
                mirrors=[f"http://127.0.0.1:{dead.port}/"],
                progress=False,
                timeout=(0.2, 5.0),
                retry=RetryPolicy(sleep=lambda s: None),
                transport=counting,  # type: ignore[arg-type]
            )
    finally:
        dead.close()
    return len(tried)


def test_a_dead_host_costs_the_connect_timeouts_mirrors_md_says(tmp_path: Path) -> None:
    m = said(
        "mirrors.md", r"A dead official host costs (\w+) connect timeouts \((\d+) s each\) per port"
    )
    assert float(m[2]) == defaults.TIMEOUT[0]
    assert _connects_to_a_dead_host(tmp_path) == WORDS[m[1]]


@pytest.mark.parametrize("name", ["README.md", "index.md"])
def test_a_dead_host_costs_the_timeouts_the_front_page_says(name: str, tmp_path: Path) -> None:
    m = said(name, r"a dead host costs (\w+) (?:connect )?timeouts?")
    assert _connects_to_a_dead_host(tmp_path) == WORDS[m[1]]


# -- examples and quoted lines ---------------------------------------------------------


@pytest.mark.realdata
def test_the_dry_run_example_is_what_the_command_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if not (REALDATA / "kmnist").is_dir():
        pytest.skip(f"real published files not found at {REALDATA}")
    lines = block("command.md", "$ kmnist-download -d kmnist --dry-run")
    # The page's set-up: "a .part of 1 KiB, the test labels verified and a wrong class map".
    said(
        "command.md",
        r"Here with a `\.part` of 1 KiB, the test labels verified and a wrong class map",
    )
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "data" / "kmnist"
    folder.mkdir(parents=True)
    (folder / "kmnist-test-imgs.npz.part").write_bytes(
        (REALDATA / "kmnist/kmnist-test-imgs.npz").read_bytes()[:1024]
    )
    shutil.copy(REALDATA / "kmnist/kmnist-test-labels.npz", folder)
    (folder / "kmnist_classmap.csv").write_text("index,codepoint,char\n")
    assert main(lines[0].split()[2:]) == 0
    assert capsys.readouterr().out.splitlines() == lines[1:]


def test_the_failed_run_example_is_what_the_command_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = block("command.md", "kmnist-download: error: mirror 1 (")
    mirror = re.search(r"mirror 1 \((\S+)\)", lines[0])
    assert mirror is not None and ".invalid" in mirror[1]  # a name no resolver knows
    files = {p for line in lines for p in re.findall(r"error: (kmnist/\S+): could", line)}
    split = "test" if all("test" in p or "classmap" in p for p in files) else "all"
    monkeypatch.setattr(socket, "getaddrinfo", loopback_only(socket.getaddrinfo))
    argv = ["-d", "kmnist", "-s", split, "--mirror", mirror[1], "--dir", str(tmp_path), "-q"]
    assert main(argv) == 1
    assert err_lines(capsys) == lines


def test_the_typos_the_command_page_quotes_get_those_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    m = said(
        "command.md",
        r"`--dataset (\w+)` says `([^`]+)`, `-s (\w+)` `([^`]+)`, `-f (\w+)` `([^`]+)`",
    )
    for flag, typo, words in (("--dataset", m[1], m[2]), ("-s", m[3], m[4]), ("-f", m[5], m[6])):
        assert status([flag, typo]) == 2
        [line] = err_lines(capsys)
        assert line.startswith("kmnist-download: error: ") and line.endswith(words), line


def test_the_unknown_dataset_line_of_the_api_page_is_load_s() -> None:
    m = said("api.md", r"`kmnist\.load\(\"(\w+)\", \"(\w+)\"\)` says `([^`]+)`")
    with pytest.raises(kmnist.UnknownDataset) as raised:
        kmnist.load(m[1], m[2])
    assert str(raised.value) == m[3]


def test_the_quoted_notes_are_the_code_s() -> None:
    from kmnist.data.preview import NO_JAPANESE_FONT

    [note] = [
        line for line in block("command.md", "kmnist-download: note: no Japanese font") if line
    ]
    assert note == f"kmnist-download: note: {NO_JAPANESE_FONT}"


@pytest.mark.torch
def test_the_quoted_torchvision_message_is_the_code_s() -> None:
    from kmnist.data.torch_datasets import NOT_FOUND  # imports torch

    m = said("loading.md", r"with torchvision's message \(\"([^\"]+)\"\)")
    assert m[1] == NOT_FOUND


# -- claims that were untrue when this file was written (session 14), now kept --------


def test_the_interactive_page_s_plan_is_what_the_questions_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kmnist.cli.interactive import go_ahead_question
    from kmnist.cli.report import plan_by_dataset
    from kmnist.downloader.plan import make_plan

    lines = block("interactive.md", "? Which datasets? done (3 selections)")
    start = next(i for i, line in enumerate(lines) if line.startswith("action "))
    end = next(i for i, line in enumerate(lines) if line.startswith("mirrors: "))
    shown = lines[start:end]
    where = Path(shown[-1].removeprefix("into "))
    monkeypatch.chdir(tmp_path)  # nothing on disk: every file to fetch
    entries = [
        *manifest.select("kmnist", "npz", "all"),
        *manifest.select("k49", "npz", "all"),
        *manifest.select("kkanji", "tar", "all"),
    ]
    plan = make_plan([e.file for e in entries], where)
    mirrors = [m for m in manifest.BUILTIN_MIRRORS if any(m.has(e.file) for e in entries)]
    assert [
        line.rstrip() for line in plan_by_dataset(plan, where, mirrors).splitlines()[:-1]
    ] == shown
    question = next(line for line in lines if line.startswith("? Download "))
    assert question.removesuffix(" No") == f"? {go_ahead_question(plan)}"


@pytest.mark.parametrize("mode", ["--list", "--dry-run"])
def test_the_kanji_archive_s_size_is_shown_as_the_command_page_says(
    mode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = said(
        "command.md",
        r"the plan, the summary, `--list`.*?is the publisher's \"310MB\" \(decimal\), shown as \"([^\"]+)\"",
    )
    assert main(["-d", "kkanji", mode, "--dir", str(tmp_path)]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if "kkanji/kkanji.tar" in line]
    assert m[1] in row, row


def test_every_error_the_api_page_names_is_kmnist_s() -> None:
    m = said("api.md", r"raise a `kmnist\.KmnistError` subclass on failure: (.*?)\. Every function")
    names = re.findall(r"`([A-Z][a-z]\w+)`", m[1])
    assert {"DownloadError", "DownloadsFailed", "UsageError", "NotEnoughSpace", "DiskFull"} <= set(
        names
    )
    said("safety.md", r"\(`DiskFull` from the API")
    missing = [n for n in names if not hasattr(kmnist, n)]
    assert missing == []
    assert all(issubclass(getattr(kmnist, n), kmnist.KmnistError) for n in names)


def test_everything_the_reference_lists_is_importable_from_kmnist() -> None:
    text = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    said("reference.md", r"Everything below is importable from `kmnist` itself")
    before, torch_part = text.split("## PyTorch datasets", 1)
    torch_objects, after = torch_part.split("## Exceptions", 1)
    names = [n.rsplit(".", 1)[1] for n in re.findall(r"(?m)^::: ([\w.]+)$", before)]
    names += re.findall(r"(?m)^ {8}- (\w+)$", after)
    assert len(names) > 20 and "ExitStatus" in names
    # "except the PyTorch datasets": in kmnist.datasets, by name (looking one
    # up imports PyTorch: that is test_the_reference_s_pytorch_datasets_exist's).
    listed = re.findall(r"(?m)^::: [\w.]+\.(\w+)$", torch_objects)
    assert listed and set(listed) <= set(kmnist.datasets.__all__)
    assert [n for n in names if not hasattr(kmnist, n)] == []


@pytest.mark.torch
def test_the_reference_s_pytorch_datasets_exist() -> None:
    text = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    torch_part = text.split("## PyTorch datasets", 1)[1].split("## Exceptions", 1)[0]
    for n in re.findall(r"(?m)^::: [\w.]+\.(\w+)$", torch_part):
        assert hasattr(kmnist.datasets, n)


def test_the_synopsis_of_the_command_page_has_every_option() -> None:
    [synopsis] = re.findall(
        r"(?s)^# The command\n\n```text\n(.*?)```",
        (ROOT / "docs" / "command.md").read_text(encoding="utf-8"),
    )
    shown = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", synopsis))
    assert {"--dataset", "--cite", "-V"} <= shown
    lacking = [
        a.option_strings[-1]
        for a in build_parser()._actions
        if a.option_strings
        and "--help" not in a.option_strings
        and not shown & set(a.option_strings)
    ]
    assert lacking == []
