"""Run one Python download tool in a process of its own, for the benchmark.

    python _run_tool.py {ours,pooch,minimal} SPEC.json ROOT BASE_URL [OPTIONS_JSON]

SPEC.json lists ``{"path", "size", "sha256"}`` per file. ``ours`` calls
``kmnist.download_files(files, ROOT, mirrors=[BASE_URL], progress=False,
**OPTIONS)``; ``pooch`` calls ``pooch.retrieve`` once per file with the known
sha256; ``minimal`` is _floor_client.py, the least a Python client can do. A
process per run lets the harness measure wall time, CPU time and peak RSS of
exactly one tool. Prints ``{"inner_wall": seconds}`` on stdout: the time spent
inside the library, without interpreter start-up and imports.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    tool, spec_path, root, base = argv[:4]
    options = json.loads(argv[4]) if len(argv) > 4 else {}
    with open(spec_path) as f:
        spec = json.load(f)
    if tool == "ours":
        import kmnist

        files = [kmnist.RemoteFile(s["path"], s["size"], sha256=s["sha256"]) for s in spec]
        t0 = time.perf_counter()
        kmnist.download_files(files, root, mirrors=[base], progress=False, **options)
    elif tool == "pooch":
        import posixpath

        import pooch

        pooch.get_logger().setLevel("WARNING")
        t0 = time.perf_counter()
        for s in spec:
            folder, name = posixpath.split(s["path"])
            pooch.retrieve(
                f"{base}/{s['path']}",
                known_hash="sha256:" + s["sha256"],
                fname=name,
                path=f"{root}/{folder}",
                progressbar=False,
            )
    elif tool == "minimal":
        from _floor_client import fetch_all

        t0 = time.perf_counter()
        fetch_all(spec, root, base)
    else:
        print(f"unknown tool {tool!r}", file=sys.stderr)
        return 2
    print(json.dumps({"inner_wall": time.perf_counter() - t0}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
