"""The package's shape: no import cycles, imports that flow one way, a light start-up.

The import graph is built from the source with ``ast``: every ``import`` and
``from ... import`` counts, at module level, inside functions and under
``TYPE_CHECKING`` alike (a cycle that only typing needs is still a cycle a
reader has to untangle). README's "How the code is organised" describes the
layers these tests hold.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kmnist"

# Lower layers never import higher ones: data flows from the front ends
# (cli) through the products (downloader, data, baselines) down to the
# catalogue, storage and the rules at the top of the package.
FORBIDDEN = {
    "catalogue": {"downloader", "data", "baselines", "cli"},
    "storage": {"downloader", "data", "baselines", "cli"},
    "downloader": {"data", "baselines", "cli"},
    "data": {"baselines", "cli"},
    "baselines": {"cli"},
    "cli": set(),
    # errors, inputs, verify, formats, optional, urls, units, signals, _version
    "rules": {"downloader", "data", "baselines", "cli"},
}
# The public facades above the layers: they may reach anything below.
FACADES = {"kmnist", "kmnist.__main__", "kmnist.datasets"}
# Only the command-line front ends parse arguments or ask questions.
FRONT_END_ONLY = ("argparse", "questionary", "prompt_toolkit")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, name: str) -> set[str]:
    """Every module ``path`` names in an import statement, anywhere in it, absolute."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            found.add(stem)
            # ``from . import storage`` imports a module; ``from .x import y`` a name.
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """kmnist module -> the kmnist modules it imports (the package itself included)."""
    files = {module_name(p, root): p for p in sorted((root / "kmnist").rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        named = imports_of(path, name)
        # "from . import x" names both the package and x: only x is meant
        # when x is a module of ours.
        graph[name] = {
            m
            for m in named
            if m in files
            and m != name
            and not (
                any(n.startswith(m + ".") and n in files for n in named) and m in _stems(named)
            )
        }
    return graph


def _stems(named: set[str]) -> set[str]:
    return {n.rsplit(".", 1)[0] for n in named if "." in n}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in FORBIDDEN and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return "rules"


def test_the_graph_sees_imports_inside_functions_and_under_type_checking(tmp_path: Path) -> None:
    pkg = tmp_path / "kmnist"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .sub import b\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import f\n"
    )
    graph = import_graph(tmp_path)
    assert graph["kmnist.a"] == {"kmnist.sub.b"}
    assert graph["kmnist.sub.b"] == {"kmnist.a"}
    assert find_cycle(graph) == ["kmnist.a", "kmnist.sub.b", "kmnist.a"]


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_imports_flow_one_way() -> None:
    wrong = [
        f"{a} -> {b}"
        for a, targets in sorted(import_graph().items())
        if a not in FACADES
        for b in sorted(targets)
        if layer(b) in FORBIDDEN[layer(a)]
    ]
    assert wrong == []


def test_argparse_and_questionary_only_in_the_command_line_package() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path, ROOT)
        if name.startswith("kmnist.cli.") or name == "kmnist.cli":
            continue
        for m in imports_of(path, name):
            if m.split(".")[0] in FRONT_END_ONLY:
                wrong.append(f"{name} imports {m}")
    assert wrong == []


def _modules_after(code: str) -> set[str]:
    """The top-level modules loaded by ``code`` in a fresh interpreter."""
    probe = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))\n"
    r = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_import_kmnist_stays_light() -> None:
    loaded = _modules_after("import kmnist")
    heavy = {"requests", "numpy", "tarfile", "questionary", "torch", "PIL"}
    assert loaded & heavy == set()


def test_a_run_from_a_folder_never_imports_requests(realdata: Path, tmp_path: Path) -> None:
    # A copy on disk (a shared folder, a cluster's scratch) needs no HTTP:
    # requests was 0.09 s of a 0.14 s run, for a session never used.
    code = (
        "from kmnist.cli.download import main\n"
        f"status = main(['-d', 'kmnist', '-s', 'test', '-f', 'npz', '-q', '-m', {str(realdata)!r},"
        f" '--dir', {str(tmp_path / 'data')!r}])\n"
        "assert status == 0, status\n"
    )
    loaded = _modules_after(code)
    assert (tmp_path / "data" / "kmnist" / "kmnist-test-imgs.npz").is_file()
    assert loaded & {"requests", "urllib3"} == set()


def test_help_imports_only_what_it_shows() -> None:
    code = (
        "import contextlib, io, sys\n"
        "sys.argv = ['kmnist-download', '--help']\n"
        "import kmnist_entry\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    kmnist_entry.download()\n"
    )
    loaded = _modules_after(code)
    assert "kmnist.cli.download" in loaded  # the probe did build the parser
    heavy = {
        "requests",
        "numpy",
        "urllib3",
        "concurrent.futures",
        "tarfile",
        "kmnist.downloader.transfer",
        "kmnist.downloader.run",
        "questionary",
        # typing alone is 2 ms of a 25 ms --help: the modules on this path
        # import it for the type checker only (TYPE_CHECKING = False).
        "typing",
    }
    assert loaded & heavy == set()


@pytest.mark.parametrize(
    "bad",
    [
        # a cycle through a function-level import
        ("kmnist/storage/lock.py", "\ndef _x() -> None:\n    from . import layout\n"),
        # a lower layer reaching up
        ("kmnist/catalogue/romaji.py", "\nif False:\n    from ..downloader import plan\n"),
        # argparse outside the command line
        ("kmnist/data/audit.py", "\ndef _x() -> None:\n    import argparse\n"),
    ],
    ids=["cycle", "direction", "argparse"],
)
def test_each_rule_catches_what_it_is_for(tmp_path: Path, bad: tuple[str, str]) -> None:
    """A copy of the package with one bad import added fails the rule meant for it."""
    import shutil

    shutil.copytree(PACKAGE, tmp_path / "kmnist")
    rel, extra = bad
    target = tmp_path / rel
    target.write_text(target.read_text(encoding="utf-8") + extra, encoding="utf-8")
    graph = import_graph(tmp_path)
    name = module_name(target, tmp_path)
    if "layout" in extra:
        assert find_cycle(graph) is not None
    elif "downloader" in extra:
        assert any(layer(b) in FORBIDDEN[layer(name)] for b in graph[name])
    else:
        assert any(m.split(".")[0] in FRONT_END_ONLY for m in imports_of(target, name))


def test_the_light_names_are_the_catalogues() -> None:
    """--help offers catalogue/names.py's choices: they must be the manifest's own."""
    from kmnist.catalogue import manifest, names

    assert tuple(manifest.DATASETS) == names.DATASET_NAMES
    formats = {f for d in manifest.DATASETS.values() for f in d.formats}
    assert tuple(sorted(formats)) == names.FORMAT_NAMES
    assert {e.release for e in manifest.ENTRIES} == set(names.RELEASES)
    assert {e.split for e in manifest.ENTRIES if e.split} | {"all"} == set(names.SPLITS)
