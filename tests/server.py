"""A real HTTP server on 127.0.0.1 that misbehaves on purpose.

Each path serves bytes with Range support and keep-alive. Faults are queued
per path and used up one request at a time (``server.fault(path, "503",
"cut:1000")``), or set for every request (``server.always(path, "norange")``).

Faults:
  ``503``, ``500``, ``404``, ``429:N``   status (429 with Retry-After: N)
  ``cut:N``       announce the whole body, send N bytes, drop the connection
  ``stall:N``     send N bytes, then go silent (until the test ends)
  ``norange``     ignore Range, answer 200 with everything
  ``badrange``    answer 206 from byte 0 whatever was asked
  ``wrong``       same length, other bytes
  ``html``        200 with an HTML error page
  ``gzip``        label the body Content-Encoding: gzip (bytes unchanged)
  ``416``         Range Not Satisfiable
  ``delay:S``     wait S seconds before answering
  ``redirect:BASE``  302 to BASE + the path (as Hugging Face and the Wayback
                  Machine send their files on to another host)
  ``endless:FORM``  the file, then bytes that never end (bounded at 64 MiB):
                  FORM ``nolength`` (200, no Content-Length, closed-delimited),
                  ``chunked`` (200, Transfer-Encoding: chunked) or ``206``
                  (206 with Content-Range, no Content-Length)
  ``short:FORM:N``  200 (Range ignored) without a Content-Length, the first N
                  bytes of the file, then a clean end: FORM ``nolength``
                  (the connection closed) or ``chunked`` (the last chunk sent)
  ``trickle:S``   headers, then one byte every S seconds
  ``slowheaders:S``  the status line and headers one byte every S seconds
  ``gzipbody``    the body really gzip-compressed, Content-Encoding: gzip
  ``rate:N``      send the body at N bytes a second (64 KiB at a time), as a
                  host that caps each connection does
  ``rangecap:N``  honour Range, but send at most N bytes of it, with a
                  Content-Range that says so (an honest short 206)
  ``rangeonce``   honour Range on this path's first request only; 200 with
                  everything afterwards
  ``gate``        hold the answer until the test sets ``server.gate`` (at most 30 s)
"""

from __future__ import annotations

import collections
import contextlib
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    range: str | None
    user_agent: str | None
    accept_encoding: str | None
    client_port: int = 0  # one per connection: shows keep-alive reuse
    served_before: int = 0  # body bytes the server had sent when this request came


# A self-signed certificate for 127.0.0.1, made for these tests only (valid
# until 2126): tls=True serves https with it, and a client trusts it through
# REQUESTS_CA_BUNDLE=CERT. Its key protects nothing.
TLS_DIR = Path(__file__).parent / "tls"
CERT = TLS_DIR / "cert.pem"


class FaultyServer:
    def __init__(self, *, tls: bool = False) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[Request] = []
        self.body_bytes = 0
        self._faults: dict[str, collections.deque[str]] = collections.defaultdict(collections.deque)
        self._always: dict[str, set[str]] = collections.defaultdict(set)
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.gate = threading.Event()  # opened by a test: answers held by "gate" go on
        self._active = 0
        self.max_active = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner._handle(self)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that hangs up on purpose is not news

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(CERT, TLS_DIR / "key.pem")
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- set-up -------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, path: str, data: bytes) -> None:
        self.files["/" + path.lstrip("/")] = data

    def add_tree(self, folder: Path) -> None:
        for f in folder.rglob("*"):
            if f.is_file():
                self.add(f.relative_to(folder).as_posix(), f.read_bytes())

    def fault(self, path: str, *faults: str) -> None:
        self._faults["/" + path.lstrip("/")].extend(faults)

    def always(self, path: str, fault: str) -> None:
        self._always["/" + path.lstrip("/")].add(fault)

    def gets(self, path: str | None = None) -> list[Request]:
        want = None if path is None else "/" + path.lstrip("/")
        return [r for r in self.requests if want is None or r.path == want]

    def start(self) -> FaultyServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- serving ------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(
                Request(
                    "GET",
                    path,
                    h.headers.get("Range"),
                    h.headers.get("User-Agent"),
                    h.headers.get("Accept-Encoding"),
                    h.client_address[1],
                    self.body_bytes,
                )
            )
            fault = self._faults[path].popleft() if self._faults[path] else None
            always = set(self._always[path])
            self._active += 1
            self.max_active = max(self.max_active, self._active)
        try:
            self._serve(h, path, fault, always)
        finally:
            with self._lock:
                self._active -= 1

    def _serve(
        self, h: BaseHTTPRequestHandler, path: str, fault: str | None, always: set[str]
    ) -> None:
        faults = always | ({fault} if fault else set())
        kind = {f.split(":")[0]: f for f in faults}
        if "delay" in kind:
            self._release.wait(float(kind["delay"].split(":")[1]))
        if "gate" in kind:
            self.gate.wait(30)
        for status in ("500", "503", "404", "416"):
            if status in kind:
                return self._empty(h, int(status))
        if "status" in kind:  # status:NNN, any code, with a phrase of the server's own
            h.send_response(int(kind["status"].split(":")[1]), "Whatever \x1b[31mthe server says")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        if "429" in kind:
            return self._empty(h, 429, {"Retry-After": kind["429"].split(":")[1]})
        if "redirect" in kind:
            return self._empty(h, 302, {"Location": kind["redirect"].split(":", 1)[1] + path})
        if "html" in kind:
            page = b"<html><body>Service temporarily unavailable</body></html>"
            return self._send(h, 200, page, {"Content-Type": "text/html; charset=utf-8"})
        data = self.files.get(path)
        if data is None:
            return self._empty(h, 404)
        if "wrong" in kind:
            data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        if "gzip" in kind:
            headers["Content-Encoding"] = "gzip"
        status, body = 200, data
        m = re.match(r"bytes=(\d+)-(\d*)$", h.headers.get("Range") or "")
        if "badrange" in kind:
            status, body = 206, data
            headers["Content-Range"] = f"bytes 0-{len(data) - 1}/{len(data)}"
        elif m and "norange" not in kind and not ("rangeonce" in kind and self._seen(path) > 1):
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else len(data) - 1
            if start >= len(data):
                return self._empty(h, 416, {"Content-Range": f"bytes */{len(data)}"})
            end = min(end, len(data) - 1)
            if "rangecap" in kind:
                end = min(end, start + int(kind["rangecap"].split(":")[1]) - 1)
            status, body = 206, data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        if "gzipbody" in kind:
            import gzip

            headers["Content-Encoding"] = "gzip"
            return self._send(h, 200, gzip.compress(data), headers)
        if "endless" in kind:
            return self._endless(h, kind["endless"].split(":")[1], path, data)
        if "short" in kind:
            _, form, n = kind["short"].split(":")
            return self._short(h, form, data[: int(n)])
        if "trickle" in kind:
            return self._trickle(h, status, body, headers, float(kind["trickle"].split(":")[1]))
        if "slowheaders" in kind:
            return self._slow_headers(h, status, body, headers, kind["slowheaders"])
        if "rate" in kind:
            return self._paced(h, status, body, headers, float(kind["rate"].split(":")[1]))
        if "cut" in kind:
            return self._send(
                h, status, body, headers, send=int(kind["cut"].split(":")[1]), cut=True
            )
        if "stall" in kind:
            return self._send(
                h, status, body, headers, send=int(kind["stall"].split(":")[1]), stall=True
            )
        return self._send(h, status, body, headers)

    def _seen(self, path: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    def _empty(
        self, h: BaseHTTPRequestHandler, status: int, headers: dict[str, str] | None = None
    ) -> None:
        self._send(h, status, b"", headers or {})

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str],
        *,
        send: int | None = None,
        cut: bool = False,
        stall: bool = False,
    ) -> None:
        _head(h, status, headers, len(body))
        part = body if send is None else body[:send]
        try:
            h.wfile.write(part)
            h.wfile.flush()
        except OSError:
            return
        with self._lock:
            self.body_bytes += len(part)
        if stall:
            self._release.wait(30)  # bounded: the test ends long before
        if cut or stall:
            h.close_connection = True
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)

    # -- faults that need their own framing ---------------------------------

    ENDLESS_CAP = 64 << 20  # bounded: a client that never stops reading still ends

    def _endless(self, h: BaseHTTPRequestHandler, form: str, path: str, data: bytes) -> None:
        m = re.match(r"bytes=(\d+)-", h.headers.get("Range") or "")
        start = int(m.group(1)) if m and form == "206" else 0
        h.send_response(206 if form == "206" else 200)
        h.send_header("Content-Type", "application/octet-stream")
        if form == "206":
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        if form == "chunked":
            h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        filler = b"\xa5" * (64 << 10)
        sent = 0
        pieces = [data[start:]]
        try:
            while sent < self.ENDLESS_CAP and not self._release.is_set():
                piece = pieces.pop() if pieces else filler
                if form == "chunked":
                    h.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                else:
                    h.wfile.write(piece)
                sent += len(piece)
                with self._lock:
                    self.body_bytes += len(piece)
        except OSError:
            return

    def _short(self, h: BaseHTTPRequestHandler, form: str, body: bytes) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        if form == "chunked":
            h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        with contextlib.suppress(OSError):
            if form == "chunked":
                h.wfile.write(b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
            else:
                h.wfile.write(body)
            with self._lock:
                self.body_bytes += len(body)

    def _paced(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str],
        rate: float,
    ) -> None:
        _head(h, status, headers, len(body))
        step = 64 << 10
        began = time.monotonic()
        try:
            for at in range(0, len(body), step):
                # Bounded: every wait ends when the test does.
                self._release.wait(max(0.0, began + at / rate - time.monotonic()))
                h.wfile.write(body[at : at + step])
                h.wfile.flush()
                with self._lock:
                    self.body_bytes += len(body[at : at + step])
        except OSError:
            return

    def _trickle(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str],
        every: float,
    ) -> None:
        _head(h, status, headers, len(body))
        h.close_connection = True
        try:
            h.wfile.flush()
            for i in range(len(body)):
                if self._release.wait(every):
                    return
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()
        except OSError:
            return

    def _slow_headers(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str],
        fault: str,
    ) -> None:
        every = float(fault.split(":")[1])
        head = f"HTTP/1.1 {status} OK\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        h.close_connection = True
        try:
            for b in head.encode("latin-1"):
                if self._release.wait(every):
                    return
                h.wfile.write(bytes([b]))
                h.wfile.flush()
            h.wfile.write(body)
        except OSError:
            return


def _head(h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], length: int) -> None:
    """The status line and headers of a body of ``length`` bytes."""
    h.send_response(status)
    for k, v in headers.items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(length))
    h.end_headers()


class SilentPort:
    """A TCP port on 127.0.0.1 where a client waits and nothing ever comes.

    ``dropping``: the listener's accept queue is kept full, so the kernel
    drops every further SYN and a client's connect() waits for its timeout,
    as with a host whose firewall drops packets. Otherwise connections are
    accepted and never spoken to: a TLS handshake or a proxy's CONNECT waits.
    """

    def __init__(self, *, dropping: bool) -> None:
        self.dropping = dropping
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0 if dropping else 16)
        self.port: int = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        self.accepted = 0
        if dropping:
            # Backlog 0 queues one connection; these fill the queue for good.
            for _ in range(3):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", self.port))
                self._held.append(s)
        else:
            threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self._listener.accept()
                self._held.append(conn)
                self.accepted += 1

    def waited_on(self) -> bool:
        """Whether a client is waiting here now (connecting, or connected and unanswered)."""
        if not self.dropping:
            return self.accepted > 0
        # SYN_SENT (state 02) towards our port, from /proc/net/tcp (Linux),
        # from a socket other than those that keep the queue full.
        ours = {f":{s.getsockname()[1]:04X}" for s in self._held}
        with open("/proc/net/tcp") as f:
            rows = [line.split() for line in f.readlines()[1:]]
        return any(
            r[2].endswith(f":{self.port:04X}") and r[3] == "02" and r[1][-5:] not in ours
            for r in rows
        )

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        for s in [*self._held, self._listener]:
            with contextlib.suppress(OSError):
                s.close()


class _LoopbackProxy:
    """A listener on 127.0.0.1 serving each connection in a thread (``_serve``)."""

    scheme = ""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        self.tunnels: list[tuple[str, int]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()


class Socks5Proxy(_LoopbackProxy):
    """A SOCKS5 proxy on 127.0.0.1 (no authentication, CONNECT only) that counts what it relays.

    Enough of RFC 1928 for PySocks: a client that was told to use it and
    connects straight to the server instead is seen here as no tunnel at all.
    """

    scheme = "socks5"

    def _serve(self, client: socket.socket) -> None:
        with client, contextlib.suppress(OSError, ValueError):
            client.settimeout(30)
            _, n = _exactly(client, 2)
            _exactly(client, n)  # the methods offered: we take "no authentication"
            client.sendall(b"\x05\x00")
            _, command, _, kind = _exactly(client, 4)
            if kind == 1:
                host = socket.inet_ntoa(_exactly(client, 4))
            elif kind == 3:
                host = _exactly(client, _exactly(client, 1)[0]).decode()
            else:
                raise ValueError("an address kind this proxy does not take")
            port = int.from_bytes(_exactly(client, 2), "big")
            if command != 1 or host not in ("127.0.0.1", "localhost"):
                client.sendall(b"\x05\x02\x00\x01" + bytes(6))  # not allowed: loopback only
                return
            upstream = socket.create_connection(("127.0.0.1", port), timeout=30)
            self.tunnels.append((host, port))
            client.sendall(b"\x05\x00\x00\x01" + bytes(6))
            with upstream:
                pump = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
                pump.start()
                _pump(client, upstream)
                pump.join(30)


def _exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ValueError("closed early")
        data += chunk
    return data


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := src.recv(1 << 16):
            dst.sendall(chunk)
        dst.shutdown(socket.SHUT_WR)


class HttpProxy(_LoopbackProxy):
    """An HTTP proxy on 127.0.0.1: CONNECT tunnels, and GETs in absolute form passed on.

    Only to 127.0.0.1. ``tunnels`` counts the CONNECTs, ``forwarded`` the
    request lines passed on, so a request that went around it is seen.
    """

    scheme = "http"

    def __init__(self) -> None:
        self.forwarded: list[str] = []
        super().__init__()

    def _serve(self, client: socket.socket) -> None:
        with client, contextlib.suppress(OSError, ValueError):
            client.settimeout(30)
            reader = client.makefile("rb")
            head = _request_head(reader)
            method, target, version = head[0].split(" ")
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                if host != "127.0.0.1":
                    raise ValueError("loopback only")
                upstream = socket.create_connection((host, int(port)), timeout=30)
                self.tunnels.append((host, int(port)))
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                with upstream:
                    pump = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
                    pump.start()
                    _relay(reader, upstream)
                    pump.join(30)
                return
            # GETs without bodies, all to the origin of the first one.
            m = re.fullmatch(r"http://127\.0\.0\.1:(\d+)(/.*)", target)
            if m is None:
                raise ValueError("loopback only")
            upstream = socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=30)
            with upstream:
                pump = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
                pump.start()
                while head:
                    method, target, version = head[0].split(" ")
                    path = re.sub(r"^http://[^/]+", "", target)
                    self.forwarded.append(f"{method} {path}")
                    lines = [f"{method} {path} {version}", *head[1:]]
                    upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                    head = _request_head(reader)
                upstream.shutdown(socket.SHUT_WR)
                pump.join(30)


def _request_head(reader: Any) -> list[str]:
    """A request's line and header lines ([] at the end of the connection)."""
    lines: list[str] = []
    while (line := reader.readline(65536)) not in (b"\r\n", b"\n", b""):
        lines.append(line.decode("latin-1").rstrip("\r\n"))
    return lines


def _relay(reader: Any, dst: socket.socket) -> None:
    """What the client sends after the CONNECT, read through ``reader`` (it may hold some)."""
    with contextlib.suppress(OSError):
        while chunk := reader.read1(1 << 16):
            dst.sendall(chunk)
        dst.shutdown(socket.SHUT_WR)
