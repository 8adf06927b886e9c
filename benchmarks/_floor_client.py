"""The least a verifying Python client has to do, as a reference point for ours.

One keep-alive connection (http.client), files one after another; each body is
read with ``readinto`` into one reused 1 MiB buffer, written with ``os.write``
and hashed (sha256) inline; a verified ``.part`` is renamed. No retries, no
resume, no ranges, no threads: not a downloader, only the floor that shows
which part of ours is the work itself (receive, write, hash) and which is
overhead.
"""

from __future__ import annotations

import hashlib
import http.client
import os
from typing import Any
from urllib.parse import urlsplit

BUF = 1 << 20


def fetch_all(spec: list[dict[str, Any]], root: str, base: str) -> None:
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    buf = bytearray(BUF)
    view = memoryview(buf)
    for s in spec:
        final = os.path.join(root, s["path"])
        os.makedirs(os.path.dirname(final), exist_ok=True)
        part = final + ".part"
        conn.request(
            "GET", f"{url.path.rstrip('/')}/{s['path']}", headers={"Accept-Encoding": "identity"}
        )
        r = conn.getresponse()
        if r.status != 200:
            raise RuntimeError(f"{s['path']}: HTTP {r.status}")
        h = hashlib.sha256()
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            while n := r.readinto(buf):
                chunk = view[:n]
                while chunk:
                    chunk = chunk[os.write(fd, chunk) :]
                h.update(view[:n])
        finally:
            os.close(fd)
        if h.hexdigest() != s["sha256"]:
            raise RuntimeError(f"{s['path']}: wrong sha256")
        os.replace(part, final)
    conn.close()
