"""Look at the built site in a real browser: headless Chromium, no display.

``python docs/_scripts/screenshots.py`` builds the site (``mkdocs build
--strict``), serves it on 127.0.0.1, has Chromium take a screenshot of the
home page and of the API reference (into docs/screenshots/, or ``--out
DIR``), and checks that the search index, as the browser loads it, holds
the word "Kuzushiji". Exit status 0 when all went well,
1 with one line saying what did not, 2 when Chromium or MkDocs is missing.
Debian: ``apt-get install chromium``.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORD = "Kuzushiji"
SHOTS = {"home.png": "", "api.png": "reference/"}
# Without these a headless Chromium asks Google's servers for updates, sync,
# QUIC probes; the sandbox needs user namespaces a container may not give.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
# One page load: Chromium starts in about a second; a minute means it hangs.
BROWSER_TIMEOUT = 60


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def build(site: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
        cwd=ROOT,
        check=True,
        timeout=600,
    )


def serve(site: Path) -> http.server.ThreadingHTTPServer:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def browse(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT,
        check=False,
    )


def screenshot(browser: str, profile: Path, url: str, out: Path) -> None:
    # The budget lets the page lay out and scroll to its #anchor before the shot.
    window = ("--window-size=1280,1400", "--virtual-time-budget=5000")
    browse(browser, profile, f"--screenshot={out}", *window, url)
    if not out.is_file() or not out.read_bytes().startswith(b"\x89PNG"):
        raise RuntimeError(f"no screenshot of {url} in {out}")


def index_holds(browser: str, profile: Path, base: str) -> int:
    """How many times WORD is in the search index, as the browser loads it."""
    # The index the site's search box loads, through the browser (served,
    # parsed, shown as text), not read from the disk.
    page = browse(browser, profile, "--dump-dom", f"{base}search/search_index.json")
    return page.stdout.count(WORD)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    browser = chromium()
    if browser is None:
        print("screenshots: no chromium on PATH (Debian: apt-get install chromium)")
        return 2
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        print("screenshots: no MkDocs here: pip install -e '.[docs]'")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        site, profile = Path(tmp) / "site", Path(tmp) / "profile"
        build(site)
        index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
        if not any(WORD in doc["text"] or WORD in doc["title"] for doc in index["docs"]):
            print(f"screenshots: the search index holds no {WORD!r}")
            return 1
        server = serve(site)
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        try:
            args.out.mkdir(parents=True, exist_ok=True)
            for name, path in SHOTS.items():
                screenshot(browser, profile, base + path, args.out / name)
            found = index_holds(browser, profile, base)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"screenshots: {e}")
            return 1
        finally:
            server.shutdown()
            server.server_close()
    if found == 0:
        print(f"screenshots: the search index Chromium loads holds no {WORD!r}")
        return 1
    shots = ", ".join(SHOTS)
    print(f"screenshots: {shots} in {args.out}; the search index holds {WORD!r} {found} times")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
