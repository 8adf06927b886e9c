"""A loopback HTTP/1.1 file server for the download benchmark, run as its own process.

It serves the files below ``--root`` with Range (206 + Content-Range),
keep-alive, an optional per-connection rate cap, a one-shot connection cut after
N body bytes of a given file, and counters of requests and body bytes. It runs in
a process of its own so that its CPU time is never charged to the tool being
measured, and it sends bodies with ``os.sendfile`` so that it is not the
bottleneck on an unthrottled loopback.

Control (never counted): ``GET /__ctl/stats`` (JSON), ``/__ctl/reset``,
``/__ctl/config?rate=BYTES_PER_S`` and ``/__ctl/cut?path=P&after=N``.

It prints ``PORT <n>`` on stdout once listening, and exits by itself when its
stdin reaches end of file (the harness closed it, or died) or after
``--lifetime`` seconds, whichever comes first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

# Unthrottled, one sendfile call moves this much: large enough that the Python
# loop around it costs nothing next to the copy, small enough that the counters
# and a cut stay accurate to a few MiB.
UNTHROTTLED_CHUNK = 4 << 20
# Token bucket depth per connection when capped: 256 KiB is 13 ms at 20 MB/s,
# so the cap holds over any interval a client could notice, while 40 capped
# connections still only wake the server about 3,000 times a second.
BUCKET = 256 << 10
# A client that stops reading or sending for this long loses its connection,
# so that no server thread can hang forever.
SOCKET_TIMEOUT_S = 30


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rate = 0.0  # bytes per second per connection; 0 = unthrottled
        self.cut_path: str | None = None
        self.cut_after = 0
        self.cut_sent = 0
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests = 0
            self.head_requests = 0
            self.body_requests = 0  # GET answered 200/206 with a non-empty body
            self.range_requests = 0
            self.body_bytes = 0
            self.connections = 0
            self.cuts = 0
            self.by_path: dict[str, dict[str, int]] = {}
            # time.monotonic() (one clock for every process here) when the first
            # file request of the run came, and when its last body byte went:
            # the harness subtracts its own start from them.
            self.first_request: float | None = None
            self.last_byte: float | None = None

    def stats(self) -> dict[str, object]:
        with self.lock:
            return {
                "requests": self.requests,
                "head_requests": self.head_requests,
                "body_requests": self.body_requests,
                "range_requests": self.range_requests,
                "body_bytes": self.body_bytes,
                "connections": self.connections,
                "cuts": self.cuts,
                "cut_armed": self.cut_path,
                "rate": self.rate,
                "by_path": {k: dict(v) for k, v in self.by_path.items()},
                "first_request": self.first_request,
                "last_byte": self.last_byte,
            }

    def count_bytes(self, path: str, n: int) -> None:
        with self.lock:
            self.last_byte = time.monotonic()
            self.body_bytes += n
            self.by_path.setdefault(path, {"requests": 0, "bytes": 0})["bytes"] += n


STATE = State()


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """(start, end inclusive), None to ignore the header, or "416"."""
    if not header.startswith("bytes=") or "," in header:
        return None  # multi-range: answer 200 with the whole file, as many servers do
    spec = header[len("bytes=") :].strip()
    first, _, last = spec.partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                return "416"
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return "416"
    return start, min(end, size - 1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kmnist-bench"
    root: Path

    def setup(self) -> None:
        super().setup()
        tv = struct.pack("ll", SOCKET_TIMEOUT_S, 0)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tokens = float(BUCKET)
        self.refilled = time.monotonic()
        self.counted = False  # counted at its first file request: control ones are not

    def handle(self) -> None:
        # The client went away or timed out: nothing to report.
        with contextlib.suppress(OSError):
            super().handle()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self.serve(body=False)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/__ctl/"):
            self.control(url.path[len("/__ctl/") :], parse_qs(url.query))
            return
        self.serve(body=True)

    def control(self, what: str, query: dict[str, list[str]]) -> None:
        if what == "reset":
            STATE.reset()
        elif what == "config":
            with STATE.lock:
                STATE.rate = float(query.get("rate", ["0"])[0])
        elif what == "cut":
            with STATE.lock:
                STATE.cut_path = query["path"][0]
                STATE.cut_after = int(query["after"][0])
                STATE.cut_sent = 0
        elif what != "stats":
            self.send_error(404)
            return
        data = json.dumps(STATE.stats()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def serve(self, *, body: bool) -> None:
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        with STATE.lock:
            STATE.requests += 1
            if STATE.first_request is None:
                STATE.first_request = time.monotonic()
            if not self.counted:
                STATE.connections += 1
                self.counted = True
            if not body:
                STATE.head_requests += 1
        target = (self.root / rel).resolve()
        if not rel or self.root not in target.parents or not target.is_file():
            self.send_error(404)
            return
        size = target.stat().st_size
        start, end, status = 0, size - 1, 200
        header = self.headers.get("Range")
        if header:
            r = parse_range(header, size)
            if r == "416":
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if isinstance(r, tuple):
                start, end = r
                status = 206
        length = end - start + 1 if size else 0
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        self.send_header("Last-Modified", self.date_time_string(int(target.stat().st_mtime)))
        self.send_header("ETag", f'"{size:x}-{int(target.stat().st_mtime):x}"')
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not body or length == 0:
            return
        self.wfile.flush()
        with STATE.lock:
            STATE.body_requests += 1
            STATE.range_requests += status == 206
            STATE.by_path.setdefault(rel, {"requests": 0, "bytes": 0})["requests"] += 1
        with open(target, "rb") as f:
            self.send_body(rel, f.fileno(), start, length)

    def send_body(self, rel: str, fd: int, offset: int, length: int) -> None:
        sock = self.connection.fileno()
        while length > 0:
            chunk = min(length, UNTHROTTLED_CHUNK)
            rate = STATE.rate
            if rate > 0:
                chunk = min(chunk, self.take_tokens(rate))
            with STATE.lock:
                if STATE.cut_path == rel:
                    chunk = min(chunk, max(0, STATE.cut_after - STATE.cut_sent))
            sent = os.sendfile(sock, fd, offset, chunk) if chunk else 0
            if chunk and sent == 0:
                raise ConnectionError("client stopped reading")
            offset += sent
            length -= sent
            if rate > 0:
                self.tokens -= sent
            STATE.count_bytes(rel, sent)
            cut = False
            with STATE.lock:
                if STATE.cut_path == rel:
                    STATE.cut_sent += sent
                    if STATE.cut_sent >= STATE.cut_after:
                        # Once only: disarm, then end the connection with a FIN right
                        # after the bytes sent, as a dropped proxy connection would.
                        STATE.cut_path = None
                        STATE.cuts += 1
                        cut = True
            if cut:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return

    def take_tokens(self, rate: float) -> int:
        """Wait until the connection's bucket holds some tokens; return how many."""
        while True:
            now = time.monotonic()
            self.tokens = min(float(BUCKET), self.tokens + (now - self.refilled) * rate)
            self.refilled = now
            if self.tokens >= min(BUCKET, 64 << 10):
                return int(self.tokens)
            time.sleep((min(BUCKET, 64 << 10) - self.tokens) / rate)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, type=Path)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--rate", type=float, default=0.0, help="bytes/s per connection, 0 = no cap")
    ap.add_argument("--lifetime", type=float, default=3 * 3600, help="exit after this many seconds")
    args = ap.parse_args(argv)
    Handler.root = args.root.resolve()
    STATE.rate = args.rate

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    httpd = Server(("127.0.0.1", args.port), Handler)

    def watchdog() -> None:
        # stdin closes when the harness ends, however it ends.
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    timer = threading.Timer(args.lifetime, lambda: os._exit(0))
    timer.daemon = True
    timer.start()
    print(f"PORT {httpd.server_address[1]}", flush=True)
    httpd.serve_forever(poll_interval=0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
