"""The Python snippets of docs/loading.md and docs/kanji.md run as written.

Each ```python block of the sections below is executed in a fresh folder
whose ``data/`` holds the real KMNIST test files (as symlinks). The Kanji
snippet runs on a small crafted archive: the download is replaced by
writing it, and the published counts and hash by its own, because the real
archive is 310 MB; the pieces themselves are tested in test_kanji.py.
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

import kmnist
import kmnist.data.kanji

from .conftest import REALDATA, ROOT

# The pages the loading snippets moved to from README.md (issue 20), and the
# sections of each whose snippets run here.
PAGES = {
    "loading.md": ("## Load the data", "## PyTorch"),
    "kanji.md": ("# Kuzushiji-Kanji",),
}


def snippets() -> list[tuple[str, str]]:
    found = []
    for page, sections in PAGES.items():
        path = ROOT / "docs" / page
        if not path.is_file():
            continue
        for section in re.split(r"(?m)^(?=#{1,2} )", path.read_text(encoding="utf-8")):
            title = section.splitlines()[0] if section else ""
            if title in sections:
                for n, code in enumerate(re.findall(r"```python\n(.*?)```", section, re.S)):
                    found.append((f"{title.lstrip('# ')} #{n + 1}", code))
    return found


def test_readme_has_the_sections() -> None:
    names = [name for name, _ in snippets()]
    assert any(n.startswith("Load the data") for n in names)
    assert any(n.startswith("Kuzushiji-Kanji") for n in names)


def crafted_kanji_download(name: str, *args: object, **kw: object) -> list[Path]:
    from PIL import Image

    assert name == "kkanji"
    archive = Path("data/kkanji/kkanji.tar")
    archive.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.new("L", (64, 64), 0).save(buf, format="PNG")
    with tarfile.open(archive, "w") as tf:
        for code in ("U+4E00", "U+4E8C"):
            info = tarfile.TarInfo(f"kkanji2/{code}/0.png")
            info.size = len(buf.getvalue())
            tf.addfile(info, io.BytesIO(buf.getvalue()))
    return [archive]


def marked(name: str, code: str) -> Any:
    """A snippet that imports PyTorch is a ``torch`` test: .ci/run's second step runs it."""
    marks = [pytest.mark.torch] if "import torch" in code else []
    return pytest.param(name, code, marks=marks, id=name)


@pytest.mark.realdata
@pytest.mark.parametrize(("name", "code"), [marked(n, c) for n, c in snippets()])
def test_snippet_runs(
    name: str,
    code: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if not (REALDATA / "kmnist").is_dir():
        pytest.skip(f"real published files not found at {REALDATA}")
    monkeypatch.chdir(tmp_path)
    for rel in ("kmnist/kmnist-test-imgs.npz", "kmnist/kmnist-test-labels.npz"):
        (tmp_path / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / rel).symlink_to(REALDATA / rel)
    if name.startswith("Kuzushiji-Kanji"):
        pytest.importorskip("PIL")
        monkeypatch.setattr(kmnist, "download", crafted_kanji_download)
        monkeypatch.setattr(kmnist.data.kanji, "verify_path", lambda *a, **k: "sha256")
        monkeypatch.setattr(kmnist.data.kanji, "EXPECTED_IMAGES", 2)
        monkeypatch.setattr(kmnist.data.kanji, "EXPECTED_CLASSES", 2)
    exec(compile(code, f"docs ({name})", "exec"), {"__name__": "readme"})
    if name.startswith(("Load the data", "PyTorch")):
        # What a print's comment says it prints is what it prints.
        out = capsys.readouterr().out
        for comment in re.findall(r"(?m)^print\(.*\)\s+# (.*)$", code):
            assert comment in out
