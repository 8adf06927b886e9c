"""Every Python and shell block of README.md and docs/*.md runs, or says why not.

A fenced block runs here unless the line right above it is an HTML comment
``<!-- not run: REASON -->`` (a reason is required) or ``<!-- run by:
tests/<file>.py::<test> -->`` (a test that runs it with the set-up it needs;
it must exist). The blocks of one page run in order, in one folder and, for
Python, one namespace, as a reader would type them. Downloads go to a mirror
on 127.0.0.1 that serves ../shared/realdata, named by ``KMNIST_MIRROR``,
which replaces the built-in mirrors: no block reaches the internet.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .conftest import REALDATA, ROOT
from .server import FaultyServer

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN = {"python": "python", "py": "python", "sh": "shell", "bash": "shell", "console": "shell"}
MARK = re.compile(r"^<!-- (not run|run by):(.*?)-->$")
# A block that needs an optional dependency is skipped, saying so, without it.
NEEDS = {
    "torch": re.compile(
        r"^\s*(import torch|from torch\b|from kmnist\.datasets import)|kmnist-baseline cnn", re.M
    ),
    "PIL": re.compile(r"^\s*(import PIL|from PIL\b)|--preview", re.M),
}
# Each block gets this long; the longest (a k-NN run) takes a few seconds.
SHELL_TIMEOUT = 300


@dataclass(frozen=True)
class Block:
    document: Path
    line: int  # of the opening fence, from 1
    language: str
    code: str
    mark: tuple[str, str] | None  # ("not run", reason) or ("run by", test)

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"

    @property
    def runs_here(self) -> bool:
        return self.language in RUN and self.mark is None


def blocks(document: Path) -> list[Block]:
    """The fenced blocks of ``document``, in order, with the mark above each."""
    lines = document.read_text(encoding="utf-8").split("\n")
    found, i = [], 0
    while i < len(lines):
        if not lines[i].startswith("```"):
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        above = MARK.match(lines[i - 1]) if i else None
        mark = (above.group(1), above.group(2).strip()) if above else None
        code = "\n".join(lines[i + 1 : end]) + "\n"
        found.append(Block(document, i + 1, lines[i][3:].strip(), code, mark))
        i = end + 1
    return found


ALL = [b for d in DOCUMENTS for b in blocks(d)]
RUNNABLE = [b for b in ALL if b.runs_here]


def _test_exists(target: str) -> bool:
    m = re.fullmatch(r"(tests/[\w/]+\.py)::(test_\w+)", target)
    if m is None or not (ROOT / m.group(1)).is_file():
        return False
    tree = ast.parse((ROOT / m.group(1)).read_text(encoding="utf-8"))
    return any(isinstance(n, ast.FunctionDef) and n.name == m.group(2) for n in ast.walk(tree))


def problems(found: list[Block]) -> list[str]:
    """What is wrong with the marks of ``found`` (empty when all is well)."""
    out = []
    for b in found:
        if not b.language:
            out.append(f"{b.name}: a fence without a language (text, python, sh, ...)")
        elif b.mark is None:
            continue
        elif b.language not in RUN:
            out.append(f"{b.name}: a {b.mark[0]!r} mark on a {b.language} block, which never runs")
        elif b.mark[0] == "not run" and len(b.mark[1]) < 10:
            out.append(f"{b.name}: 'not run' needs its reason, got {b.mark[1]!r}")
        elif b.mark[0] == "run by" and not _test_exists(b.mark[1]):
            out.append(f"{b.name}: 'run by' names no test: {b.mark[1]!r}")
    return out


def test_every_block_runs_or_says_why_not() -> None:
    assert len(DOCUMENTS) > 10 and len(ALL) > 20
    assert problems(ALL) == []
    assert len(RUNNABLE) >= 5


def test_the_marks_are_checked(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```\nno language\n```\n"
        "<!-- not run: -->\n```sh\nls\n```\n"
        "<!-- run by: tests/test_docs_blocks.py::test_no_such_test -->\n```python\npass\n```\n"
        "<!-- not run: a reason long enough -->\n```text\nnot code\n```\n"
        "<!-- run by: tests/test_docs_blocks.py::test_the_marks_are_checked -->\n```python\n1\n```\n"
    )
    found = [
        Block(ROOT / "docs" / "x.md", b.line, b.language, b.code, b.mark) for b in blocks(page)
    ]
    assert [p.split(": ", 1)[1] for p in problems(found)] == [
        "a fence without a language (text, python, sh, ...)",
        "'not run' needs its reason, got ''",
        "'run by' names no test: 'tests/test_docs_blocks.py::test_no_such_test'",
        "a 'not run' mark on a text block, which never runs",
    ]


@dataclass
class Page:
    """One document's blocks run in order, in one folder and one namespace."""

    work: Path
    env: dict[str, str]
    namespace: dict[str, Any] = field(default_factory=lambda: {"__name__": "docs"})
    done: set[int] = field(default_factory=set)


@pytest.fixture(scope="module")
def mirror() -> Iterator[str]:
    if not (REALDATA / "kmnist").is_dir():
        pytest.skip(f"real published files not found at {REALDATA}")
    server = FaultyServer().start()
    try:
        server.add_tree(REALDATA)
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory, mirror: str) -> dict[Path, Page]:
    made: dict[Path, Page] = {}
    for document in DOCUMENTS:
        work = tmp_path_factory.mktemp(document.stem)
        (work / "home").mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KMNIST_")}
        env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            HOME=str(work / "home"),  # a ~/data in a block stays in here
            KMNIST_MIRROR=mirror,
            TQDM_DISABLE="1",
        )
        made[document] = Page(work, env)
    return made


def _missing(block: Block) -> str | None:
    for module, pattern in NEEDS.items():
        if pattern.search(block.code) and importlib.util.find_spec(module) is None:
            return module
    return None


def _run(block: Block, page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    if block.language in ("python", "py"):
        with monkeypatch.context() as m:
            m.chdir(page.work)
            m.setenv("KMNIST_MIRROR", page.env["KMNIST_MIRROR"])
            exec(compile(block.code, block.name, "exec"), page.namespace)
        return
    code = block.code
    if block.language == "console":  # the commands, without what they print
        code = "\n".join(line[2:] for line in code.splitlines() if line.startswith("$ "))
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=page.work,
        env=page.env,
        capture_output=True,
        text=True,
        timeout=SHELL_TIMEOUT,
    )
    assert done.returncode == 0, f"{block.name} exited {done.returncode}:\n{done.stderr}"


def _param(block: Block) -> object:
    # A block that needs PyTorch runs in CI's second step (pytest -m torch).
    needs_torch = NEEDS["torch"].search(block.code) is not None
    return pytest.param(block, marks=[pytest.mark.torch] if needs_torch else [], id=block.name)


@pytest.mark.realdata
@pytest.mark.parametrize("block", [_param(b) for b in RUNNABLE])
def test_block_runs(block: Block, pages: dict[Path, Page], monkeypatch: pytest.MonkeyPatch) -> None:
    page = pages[block.document]
    # The blocks above it first, as a reader runs them (once each per page).
    for earlier in [b for b in RUNNABLE if b.document == block.document and b.line < block.line]:
        if earlier.line not in page.done:
            page.done.add(earlier.line)
            if _missing(earlier) is None:
                _run(earlier, page, monkeypatch)
    page.done.add(block.line)
    module = _missing(block)
    if module is not None:
        pytest.skip(f"{block.name} needs {module}, which is not installed")
    _run(block, page, monkeypatch)


# The public objects whose docstring examples the API reference shows.
DOCTEST_MODULES = (
    "kmnist.downloader",
    "kmnist.data.load",
    "kmnist.catalogue.manifest",
    "kmnist.catalogue.classmap",
    "kmnist.catalogue.info",
    "kmnist.errors",
    "kmnist.data.torch_datasets",
)


@pytest.mark.realdata
@pytest.mark.parametrize(
    "module_name",
    [
        pytest.param(m, marks=[pytest.mark.torch] if m.endswith("torch_datasets") else [])
        for m in DOCTEST_MODULES
    ],
)
def test_docstring_examples_run(
    module_name: str, mirror: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import doctest
    import importlib

    import kmnist

    if module_name.endswith("torch_datasets"):
        for needed in ("torch", "PIL"):
            if importlib.util.find_spec(needed) is None:
                pytest.skip(f"{module_name}'s examples need {needed}, which is not installed")
    module = importlib.import_module(module_name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KMNIST_MIRROR", mirror)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    examples = 0
    for test in doctest.DocTestFinder().find(module, globs={"kmnist": kmnist}):
        examples += len(test.examples)
        runner.run(test, out=lambda text: pytest.fail(text, pytrace=False))
    assert examples > 0, f"{module_name}: no examples found"
    assert runner.failures == 0
