"""Bytes of one file from one URL or folder, starting at an offset.

This layer knows HTTP and local files, and nothing of mirrors, retries or
hashes. It raises ``Transient`` for what a retry may cure and ``Refused`` for
what it will not.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import os
import re
import select
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..urls import origin, redact, usable_host
from . import headers as hdr
from .deadlines import DEADLINES
from .defaults import TIMEOUT
from .proxy import PROXY_FAILED as PROXY_FAILED  # where cli.failures looks for them
from .proxy import (
    TunnelDeadline,
    bad_credentials,
    proxy_failure,
    proxy_for,
    proxy_refused,
)
from .tls import handshake_timed_out, peer_certificate, tls_words

if TYPE_CHECKING:
    import requests

# Reads of up to 256 KiB, measured with benchmarks/download_speed.py: 1 MiB
# made every read allocate a 1 MiB object (peak RSS 56 MB for the full set,
# more CPU), 128 KiB multiplied the calls (CPU +0.2 s over loopback); 256 KiB
# gave the least of both. Per-call overhead is then negligible next to the
# bytes (the original script's 1 KiB chunks made it CPU-bound).
CHUNK = 256 << 10

# A read waits (SO_RCVLOWAT) for up to this much while more than that is still
# to come. A server that caps each connection delivers ~64 KiB at a time, and
# waking for each piece cost about 0.3 s of CPU for the full set in Python
# overhead and thread switches (benchmarks/download_speed.py, capped). The
# mark is what the connection delivers in LOW_WATER_WAIT at its speed so far;
# when that much has not come in LOW_WATER_PATIENCE, the read takes what is
# there, so a stall or a Ctrl-C never leaves received bytes unwritten. The mark
# stays well below what is left of the body, so a read never waits for bytes
# that will not come (a TLS record may still sit in OpenSSL).
LOW_WATER = 256 << 10
LOW_WATER_WAIT = 0.25  # seconds
LOW_WATER_PATIENCE = 1.0  # seconds
LOW_WATER_MARGIN = 64 << 10

DEFAULT_TIMEOUT = TIMEOUT  # connect, read (seconds): defaults.py says why

# How often a connection whose host name is being looked up looks whether
# its run was stopped: a Ctrl-C is answered within this, whatever the resolver does.
RESOLVE_POLL = 0.05  # seconds

# A body that brings less than this many bytes per second, averaged over the
# read timeout, is stalled, as curl's --speed-limit/--speed-time say: a read
# timeout alone never fires on a server that trickles a byte a second. 1 KiB/s
# is far below any mirror worth waiting for (the smallest file, 5 KiB, would
# take 5 s), and far above a trickle that would take days.
STALL_RATE = 1024

# Statuses that a later try may cure (RFC 9110: 408, 429 and the 5xx that
# mean "not now"); anything else from a mirror is its final answer.
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class Transient(Exception):
    """Try again later, on the same mirror."""

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,
        unreachable: bool = False,
        host_down: bool = False,
        stalled: bool = False,
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        # Bytes came too slowly (or not at all) for the read timeout.
        self.stalled = stalled
        # No connection could be made (refused, timed out, no such host).
        # ``host_down`` says the host itself is out of reach (connect timeout,
        # name not resolved), not just one port: either way the run skips
        # that origin for the rest of the run.
        self.unreachable = unreachable or host_down
        self.got = 0  # bytes written by the try that failed (set by the caller)


class Refused(Exception):
    """This mirror will not give this file: move on to the next one."""


@dataclass(eq=False)  # identity: bodies are kept in a set while open
class Body:
    """A response body being read.

    ``start`` is the offset of its first byte in the file: the requested offset
    when the server resumed, 0 when it sends the whole file again.
    """

    start: int
    length: int | None  # bytes this body promises (None: until EOF)
    total: int | None  # the whole file's size, when the server says
    _read: Callable[[int], bytes]
    _close: Callable[[], None]
    _abort: Callable[[], None] | None = None
    ranged: bool = False  # the server answered our Range with a 206
    _sock: socket.socket | None = None  # for the low-water mark, when known
    _poll: select.poll | None = None
    # Seconds over which the rate must reach STALL_RATE (None: no floor, a folder).
    stall_window: float | None = None
    where: str = ""  # host:port, for messages
    encoding: str = ""  # Content-Encoding, lowercased ("" for none or identity)
    received: int = 0  # bytes this body has delivered so far
    # Reads straight into the caller's buffer (returns 0 at the end), when the
    # transport can: then no bytes object is made per read.
    _readinto: Callable[[memoryview], int] | None = None
    _low: int = 1  # the socket's low-water mark (1: the default)
    _started: float = 0.0  # monotonic time of the first read (0: none yet)
    _window_end: float = 0.0  # when the current stall window ends
    _window_from: int = 0  # ``received`` when the current window began

    def readinto(self, buf: memoryview) -> int:
        """Read what has arrived (at least one byte, at most ``len(buf)``) into ``buf``.

        Returns 0 at the end of the body. A read that fails raises Transient;
        bytes of earlier reads are the caller's. No bytes object is made
        between the socket and ``buf`` when the transport reads into buffers.
        """
        if not self._started:
            self._started = time.monotonic()
            self._window_end = self._started + (self.stall_window or 0)
        else:
            # Here, not after the previous read: bytes that arrived are the
            # caller's (written) even when the check fails.
            self._check_stall()
        if self._sock is not None and self.length is not None and self.received:
            # Checked once per read, but set only a few times per body.
            rate = self.received / max(time.monotonic() - self._started, 1e-3)
            want = _low_water(rate, self.length - self.received)
            if want != self._low:
                self._low = self._set_low_water(want)
            if self._low > 1 and not self._ready(LOW_WATER_PATIENCE):
                self._low = self._set_low_water(1)  # slower than it was: take what is there
        try:
            if self._readinto is not None:
                n = self._readinto(buf)
            else:
                data = self._read(len(buf))
                n = len(data)
                buf[:n] = data
        except Exception as exc:  # the many faces of a cut connection
            raise _as_transient(exc, self.where, self.stall_window) from exc
        self.received += n
        return n

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        """The body as bytes objects, for callers that want them (downloads read into buffers)."""
        buf = memoryview(bytearray(size))
        while n := self.readinto(buf):
            yield bytes(buf[:n])

    def _check_stall(self) -> None:
        """Transient when the body brought under STALL_RATE over the last window.

        O(1) per read: one clock read and two comparisons.
        """
        window = self.stall_window
        if not window:
            return
        now = time.monotonic()
        if now < self._window_end:
            return
        got = self.received - self._window_from
        if got < STALL_RATE * window:
            raise Transient(
                f"transfer from {self.where} stalled: {got} bytes "
                f"in {now - self._window_end + window:.0f} s, under {STALL_RATE} B/s",
                stalled=True,
            )
        self._window_from, self._window_end = self.received, now + window

    def _set_low_water(self, n: int) -> int:
        sock = self._sock
        assert sock is not None
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVLOWAT, n)
        except (OSError, AttributeError):  # not settable here: reads wake as bytes come
            self._sock = None
            return 1
        return n

    def _ready(self, timeout: float) -> bool:
        """Whether the low-water mark is met (or the connection ended) within ``timeout``."""
        sock = self._sock
        assert sock is not None
        pending = getattr(sock, "pending", None)  # TLS: bytes OpenSSL already decrypted
        if pending is not None and pending():
            return True
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(sock, select.POLLIN)
        return bool(self._poll.poll(timeout * 1000))

    def close(self) -> None:
        if self._sock is not None:
            # The connection may go back to the pool: its next reader expects
            # reads that return as soon as anything arrives.
            self._set_low_water(1)
        self._close()

    def abort(self) -> None:
        """Stop a read blocked in another thread (Ctrl-C), then close."""
        if self._abort is not None:
            self._abort()
        self._close()


# Strict parsers (ASCII digits, bounded values, None for anything odd): kept
# importable from here, where they used to live.
parse_content_range = hdr.parse_content_range
parse_retry_after = hdr.parse_retry_after


def make_session(user_agent: str, connections: int) -> requests.Session:
    """One session for a run: pooled keep-alive connections, ``connections`` per host.

    ``pool_block`` makes a thread wait for a free connection rather than open
    one more: no host ever sees more than ``connections`` from us.
    """
    import requests

    session = requests.Session()
    adapter = _deadline_adapter(
        pool_connections=8, pool_maxsize=connections, pool_block=True, max_retries=0
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    # With trust_env, requests walks os.environ for proxies and CA bundles on
    # every request (2 ms each here, 0.25 s of CPU for the full set). The
    # environment is read once instead: proxies per origin in open_url, the
    # CA bundle here.
    session.trust_env = False
    # Checked before a run's first request (Downloader.run, --check-mirrors:
    # check_network_environment); a session made for folders alone must not fail on it.
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    # identity: no layer may un-gzip a .gz on the way (requests asks for gzip
    # by default, and some servers then compress or relabel binary files).
    session.headers.update({"User-Agent": user_agent, "Accept-Encoding": "identity"})
    return session


def ca_bundle() -> str | None:
    """The CA bundle the environment names (as requests reads it), None for certifi's.

    One that cannot serve is a UsageError, said once before any request:
    requests raised a missing one as an OSError per request, which a run
    took for its data folder's failure; a FIFO made the first TLS handshake
    wait forever (not even SIGTERM ended the run); an empty file, a file of
    something else or a folder without OpenSSL's hashed names failed every
    handshake, and the hint then blamed the mirrors.
    """
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        path = os.environ.get(name)
        if path:
            _check_ca_bundle(name, path)
            return path
    return None


# A file or folder name longer than this is one no filesystem here holds
# (PATH_MAX); the name is then not printed whole: it was a 100 KB line.
_CA_PATH_MAX = 4096
# Bigger than any CA bundle: certifi's is about 0.3 MB, a system's with
# every trust anchor a few MB.
_CA_BUNDLE_MAX = 64 << 20
# Where a bundle's first certificate is looked for (certifi's comes after
# a few lines of comments; a system's at once), and what marks it.
_CA_SNIFF = 1 << 20
_PEM_MARKERS = (b"-----BEGIN CERTIFICATE-----", b"-----BEGIN TRUSTED CERTIFICATE-----")
# OpenSSL finds certificates in a CA folder by subject hash: "5ed36f99.0".
_HASHED_NAME = re.compile(r"[0-9a-f]{8}\.r?\d+")


def _check_ca_bundle(name: str, path: str) -> None:
    """UsageError unless ``path`` is a file of certificates or a folder OpenSSL can look in."""
    import stat

    from ..errors import UsageError

    encoded = os.fsencode(path)
    if len(encoded) >= _CA_PATH_MAX:
        raise UsageError(
            f"${name} is {len(encoded):,} bytes long (at most {_CA_PATH_MAX - 1}): give the"
            " path of a CA bundle, or unset it to use the bundled certificates"
        )
    shown = repr(path)
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        expanded = os.path.expanduser(path)
        if expanded != path and os.path.exists(expanded):
            # requests and curl take the name as it is: nothing expands the ~.
            raise UsageError(
                f"${name} names {shown}, and nothing expands its ~ here: write {expanded!r}"
            ) from None
        raise UsageError(
            f"${name} names {shown}, which does not exist: give the path of a CA"
            " bundle (a file or a folder), or unset it to use the bundled certificates"
        ) from None
    if stat.S_ISDIR(mode):
        try:
            hashed = any(_HASHED_NAME.fullmatch(n) for n in os.listdir(path))
        except OSError as exc:
            raise UsageError(
                f"${name} names the folder {shown}, which cannot be read"
                f" ({(exc.strerror or 'failed').lower()})"
            ) from None
        if not hashed:
            raise UsageError(
                f"${name} names the folder {shown}, which holds no certificate under"
                " the hashed names OpenSSL looks for (run: openssl rehash on it), or give"
                " the path of a bundle file"
            )
        return
    if not stat.S_ISREG(mode):
        from ..inputs import kind_at

        kind = kind_at(path)
        raise UsageError(
            f"${name} names {shown}, which is {kind}, not a file of certificates: give the"
            " path of a CA bundle, or unset it to use the bundled certificates"
        )
    # A look for a PEM certificate, not a parse: ssl.create_default_context
    # over the bundle took 2.3 MB and 10-20 ms of every run where
    # $REQUESTS_CA_BUNDLE is set (most clusters, conda), for a check of a
    # mistake. An empty file, /dev/null's copy or other bytes has none.
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(_CA_SNIFF)
    except OSError as exc:
        raise UsageError(
            f"${name} names {shown}, which cannot be read"
            f" ({(exc.strerror or 'failed').lower()}): give the path of a CA bundle, or unset"
            " it to use the bundled certificates"
        ) from None
    if size > _CA_BUNDLE_MAX or not any(marker in head for marker in _PEM_MARKERS):
        why = f"is {size:,} bytes, more than any CA bundle" if size > _CA_BUNDLE_MAX else ""
        raise UsageError(
            f"${name} names {shown}, which {why or 'holds no certificate (PEM)'}: give the path"
            " of a CA bundle, or unset it to use the bundled certificates"
        )


def check_network_environment() -> None:
    """UsageError, once and before anything is created, for a variable that
    would fail every request: a CA bundle that is not there, a proxy that is
    not a URL. For runs and --check-mirrors that reach the network."""
    ca_bundle()
    check_proxy_environment()


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
# The schemes requests (with PySocks for socks*) takes for a proxy: any other
# ("ftp://") was "Proxy URL had unsupported scheme" once per file, exit 1.
_PROXY_SCHEMES = frozenset({"http", "https", "socks4", "socks4a", "socks5", "socks5h"})
_SHOWN_MAX = 80  # characters of a variable's value a message shows


def _shown_proxy(value: str) -> str:
    """A proxy variable's value as it may be printed: no password, even without a scheme."""
    shown = redact(value)
    if "://" not in shown:
        # "user:pw@host:3128": redact() looks for a scheme before the userinfo.
        shown = re.sub(r"^[^/?#]*@", "***@", shown)
    if len(shown) > _SHOWN_MAX:  # a 100 KB value is not printed whole into one line
        return f"{shown[:_SHOWN_MAX]!a}... ({len(value):,} characters)"
    return ascii(shown)


def check_proxy_environment() -> None:
    """UsageError for a proxy variable that is not a URL requests can use.

    requests parses it at every request: ``http_proxy=::::`` or ``http://[::1``
    was urllib3's own words ("Failed to parse: ...") once per file, exit 1;
    ``http://user:pw@`` a TypeError from requests, a traceback; ``ftp://``
    a line per file; port 0 went to port 80. Said once here, naming the
    variable, before anything is created; never with its password.
    """
    for lower in _PROXY_VARIABLES:
        for name in (lower, lower.upper()):
            value = os.environ.get(name)
            if not value:
                continue
            why = _proxy_problem(value)
            if why is not None:
                from ..errors import UsageError

                raise UsageError(
                    f"${name} is {_shown_proxy(value)}, which is not a proxy URL{why}: give"
                    " http://host:port (or socks5://host:port), or unset it"
                )


def _proxy_problem(value: str) -> str | None:
    """Why ``value`` cannot be a proxy (", " and the reason, or ""), None when it can."""
    from requests.utils import prepend_scheme_if_needed
    from urllib3.util import parse_url

    try:
        with_scheme: str = prepend_scheme_if_needed(value, "http")  # type: ignore[no-untyped-call]
        url = parse_url(with_scheme)
    except (ValueError, TypeError):  # LocationParseError, UnicodeError; TypeError: no host
        return ""
    host = url.host
    if not host:
        return ""
    scheme = (url.scheme or "http").lower()
    if scheme not in _PROXY_SCHEMES:
        return f" (its scheme is {scheme}://, where a proxy's is http, https or socks)"
    if url.port == 0:
        return " (port 0 is no port: requests went to port 80 instead)"
    if not usable_host(host):
        return f" (the host {host[:60]!a}{'...' if len(host) > 60 else ''} is not a host name)"
    return bad_credentials(value)


class Waiting:
    """The sockets of a run's requests that wait for a connection or its answer.

    A Ctrl-C stops a run by shutting down what its workers block on: the
    bodies being read (``Body.abort``) and, here, the connections still being
    made (a black-holed host holds a connect for its timeout: 8.8 s of 10,
    before this) and the requests a server has not answered yet, which would
    otherwise hold the run until the server spoke or the read timeout passed
    (18 s of a 20 s silence). A request that starts after the abort is shut
    down at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self.aborted = False

    def add(self, sock: socket.socket) -> bool:
        """Keep ``sock`` for an abort; False (and ``sock`` shut down) once aborted."""
        with self._lock:
            if not self.aborted:
                self._socks.add(sock)
                return True
        _shut(sock)
        return False

    def discard(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.discard(sock)

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            socks, self._socks = self._socks, set()
        for sock in socks:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


# The run a worker thread's request belongs to (its Waiting), while it is made:
# urllib3 builds the connection, so the run cannot hand it over any other way.
_requests_of = threading.local()


@contextlib.contextmanager
def waiting_in(waiting: Waiting | None) -> Iterator[None]:
    """Requests made by this thread inside the block wait in ``waiting``."""
    previous = getattr(_requests_of, "run", None)
    _requests_of.run = waiting
    try:
        yield
    finally:
        _requests_of.run = previous


class _Stoppable:
    """A connection that an abort can stop while it is being made.

    urllib3 creates a socket and connects it in one call, so the socket is
    out of reach while connect() waits on a host that drops our packets
    (the connect timeout) and then while a proxy's tunnel or the TLS
    handshake waits on a silent server. Here the socket is created and
    connected as urllib3's ``create_connection`` does it (the addresses in
    order, urllib3's family choice, socket options, source address, the same
    exceptions for requests to map), the name looked up where a stop need not
    wait for it (``_addresses``), and the connect started without blocking and shown
    to the run's Waiting once the connect is under way: an abort before that
    finds the run aborted, one after it shuts a socket that is connecting,
    which wakes it at once (a socket shut down before connect() began would
    have connected anyway). A duplicate of its descriptor stays in the
    Waiting until connect() returns, through the tunnel and the handshake:
    the TLS layer takes the socket object over, the duplicate still reaches it.
    """

    _held: socket.socket | None = None

    def connect(self) -> None:
        try:
            super().connect()  # type: ignore[misc]
        finally:
            held, self._held = self._held, None
            if held is not None:
                waiting: Waiting | None = getattr(_requests_of, "run", None)
                if waiting is not None:
                    waiting.discard(held)
                held.close()

    def _new_conn(self) -> socket.socket:
        conn: Any = self  # an urllib3 HTTPConnection (this class is mixed into one)
        waiting: Waiting | None = getattr(_requests_of, "run", None)
        timeout = conn.timeout
        if waiting is None or not isinstance(timeout, (int, float)) or not hasattr(select, "poll"):
            return super()._new_conn()  # type: ignore[misc,no-any-return]
        import urllib3.exceptions as u3

        try:
            sock = _connected_socket(
                (conn._dns_host, conn.port),
                timeout,
                conn.source_address,
                conn.socket_options,
                waiting,
                lambda held: setattr(self, "_held", held),
            )
        except socket.gaierror as e:
            no_name = getattr(u3, "NameResolutionError", None)  # urllib3 2.x only
            if no_name is not None:
                raise no_name(conn.host, conn, e) from e
            raise u3.NewConnectionError(conn, f"Failed to establish a new connection: {e}") from e
        except socket.timeout as e:
            raise u3.ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={timeout})"
            ) from e
        except OSError as e:
            raise u3.NewConnectionError(conn, f"Failed to establish a new connection: {e}") from e
        sys.audit("http.client.connect", conn, conn.host, conn.port)
        return sock


def _connected_socket(
    address: tuple[str, int],
    timeout: float,
    source_address: tuple[str, int] | None,
    options: Any,
    waiting: Waiting,
    hold: Callable[[socket.socket], None],
) -> socket.socket:
    """urllib3's ``create_connection``, with each try's socket in ``waiting`` while it connects."""
    from urllib3.util.connection import allowed_gai_family

    host, port = address
    if host.startswith("["):
        host = host.strip("[]")
    error: OSError | None = None
    for family, kind, proto, _, where in _addresses(host, port, allowed_gai_family(), waiting):
        sock = socket.socket(family, kind, proto)
        held = None
        try:
            for option in options or ():
                sock.setsockopt(*option)
            if source_address:
                sock.bind(source_address)
            held = sock.dup()  # the same socket, for the Waiting: see _Stoppable
            _connect(sock, where, timeout, waiting, held)
            hold(held)
            return sock
        except OSError as exc:
            error = exc
            if held is not None:
                waiting.discard(held)
                held.close()
            sock.close()
    raise error if error is not None else OSError("getaddrinfo returns an empty list")


def _addresses(host: str, port: int, family: int, waiting: Waiting) -> list[Any]:
    """``socket.getaddrinfo`` for a stream to ``host``, which a stop need not wait for.

    A resolver that does not answer holds getaddrinfo for its own timeouts
    (5 s per try and server by glibc's defaults), and nothing interrupts it:
    a name is looked up in a thread of its own, which a stopped run leaves
    behind (a daemon: it ends with the process). An address needs no lookup.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    answer: list[Any] = []
    done = threading.Event()

    def look_up() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, family, socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the connecting thread
            answer.append(exc)
        finally:
            done.set()

    threading.Thread(target=look_up, name=f"kmnist lookup {host}", daemon=True).start()
    while not done.wait(RESOLVE_POLL):
        if waiting.aborted:
            raise ConnectionAbortedError(errno.ECONNABORTED, f"stopped while looking up {host}")
    if isinstance(answer[0], BaseException):
        raise answer[0]
    return list(answer[0])


def _connect(
    sock: socket.socket, where: Any, timeout: float, waiting: Waiting, held: socket.socket
) -> None:
    """Connect ``sock`` within ``timeout`` seconds, stoppable through ``waiting``."""
    sock.setblocking(False)
    code = sock.connect_ex(where)
    # Under way (or done) before the Waiting sees it: see _Stoppable.
    if not waiting.add(held):
        raise ConnectionAbortedError(errno.ECONNABORTED, "stopped before connecting")
    if code in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
        poller = select.poll()
        poller.register(sock, select.POLLOUT)
        if not poller.poll(timeout * 1000):  # PEP 475: resumed after a signal, to the same end
            raise socket.timeout("timed out")
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code:
        raise OSError(code, os.strerror(code))
    sock.settimeout(timeout)


class _HeaderDeadline:
    """A connection whose response headers must be complete within the read timeout.

    urllib3's read timeout applies to each socket read, so a server that sends
    its headers a byte at a time never trips it. A timer shuts the socket down
    when the whole header block has not arrived in time; the read then fails,
    and is reported as a timeout. One thread serves the timers of every
    request (deadlines.py says why).
    """

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        sock: socket.socket | None = getattr(self, "sock", None)
        waiting: Waiting | None = getattr(_requests_of, "run", None)
        if sock is None or waiting is None:
            return self._headers_in_time(*args, **kwargs)
        waiting.add(sock)
        try:
            return self._headers_in_time(*args, **kwargs)
        finally:
            waiting.discard(sock)

    def _headers_in_time(self, *args: Any, **kwargs: Any) -> Any:
        # urllib3 sets the read timeout on the connection just before this call.
        limit = getattr(self, "timeout", None)
        sock: socket.socket | None = getattr(self, "sock", None)
        if not isinstance(limit, (int, float)) or sock is None:
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]

        def expire() -> None:
            _shut(sock)

        deadline = DEADLINES.arm(limit, expire)
        try:
            response = super().getresponse(*args, **kwargs)  # type: ignore[misc]
        except Exception:
            if not DEADLINES.cancel(deadline):
                raise socket.timeout(f"headers not complete within {limit:g} s") from None
            raise
        if not DEADLINES.cancel(deadline):  # fired just as the headers ended: the socket is gone
            raise socket.timeout(f"headers not complete within {limit:g} s")
        return response


# At most this many informational answers (1xx) before the answer: each is
# read within the header deadline anyway, and a count bounds the loop too.
MAX_INFORMATIONAL = 20


@functools.lru_cache(maxsize=1)
def _final_response() -> type:
    """http.client's response class, skipping every informational answer, not 100 alone."""
    import http.client

    class FinalResponse(http.client.HTTPResponse):
        """http.client skips ``100 Continue`` only: a ``103 Early Hints`` or a
        ``102 Processing`` before the answer was taken for the answer, and the
        file failed with "HTTP 103 Early Hints". RFC 9110 (15.2) asks a client
        to parse and ignore them; ``101`` stays an answer (not one we asked for).
        """

        def _read_status(self) -> tuple[str, int, str]:
            for _ in range(MAX_INFORMATIONAL):
                version, status, reason = super()._read_status()  # type: ignore[misc]
                if not 100 <= status < 200 or status == 101:
                    return version, status, reason
                http.client.parse_headers(self.fp)  # its headers, as begin() skips a 100's
            raise http.client.BadStatusLine(f"more than {MAX_INFORMATIONAL} informational answers")

    return FinalResponse


@functools.lru_cache(maxsize=1)
def _pool_classes() -> dict[str, type]:
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Conn(_Stoppable, TunnelDeadline, _HeaderDeadline, HTTPConnection):
        response_class = _final_response()

    class TlsConn(_PeerOnFailure, _Stoppable, TunnelDeadline, _HeaderDeadline, HTTPSConnection):
        response_class = _final_response()

    class Pool(HTTPConnectionPool):
        ConnectionCls = Conn

    class TlsPool(HTTPSConnectionPool):
        ConnectionCls = TlsConn

    return {"http": Pool, "https": TlsPool}


def _with_deadline(manager: Any) -> Any:
    """``manager`` with our pool classes in place of urllib3's own.

    Only those: a SOCKS proxy's manager (``requests[socks]``) has pools whose
    connections take extra arguments and make their socket through the
    proxy. Replaced by ours, every request was a TypeError traceback; with
    our connect, it would have bypassed the proxy. Its pools keep their
    connections and gain only the header deadline (``_HeaderDeadline``).
    """
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    ours = _pool_classes()
    standard = {"http": HTTPConnectionPool, "https": HTTPSConnectionPool}
    # requests hands back the same proxy manager for each request: what is
    # ours already stays as it is.
    manager.pool_classes_by_scheme = {
        scheme: (
            ours[scheme]
            if cls is standard.get(scheme)
            else cls
            if issubclass(cls.ConnectionCls, _HeaderDeadline)
            else _header_deadline_pool(cls)
        )
        for scheme, cls in manager.pool_classes_by_scheme.items()
    }
    return manager


@functools.cache
def _header_deadline_pool(pool: Any) -> type:
    """``pool``, its connections given the header deadline and nothing else of ours."""
    conn = type(
        pool.ConnectionCls.__name__,
        (_HeaderDeadline, pool.ConnectionCls),
        {"response_class": _final_response()},
    )
    return type(pool.__name__, (pool,), {"ConnectionCls": conn})


def _adapter_class() -> type:
    from requests.adapters import HTTPAdapter

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            _with_deadline(self.poolmanager)

        def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
            return _with_deadline(super().proxy_manager_for(proxy, **kwargs))

    return Adapter


def _deadline_adapter(**kwargs: Any) -> Any:
    return _adapter_class()(**kwargs)


def open_url(
    url: str,
    offset: int,
    *,
    end: int | None = None,
    session: requests.Session | None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    log: Callable[[str], None] | None = None,
) -> Body:
    """Open ``url`` for reading bytes ``[offset, end)`` (``end`` None: to the end).

    ``session`` may be None for a folder's path: a run from folders alone
    never makes one, nor imports requests (0.09 s of a 0.14 s run).

    A local path also works (from ``offset`` to its end). The caller checks
    ``Body.start`` and ``Body.ranged``: a server may send the whole file instead.
    ``log`` is told of each request (``-v``): the URL without credentials, the
    status, the bytes and the time.
    """
    if not url.startswith(("http://", "https://")):
        return _open_local(url, offset)
    if session is None:
        raise TypeError(f"open_url: a session is needed for {redact(url)}")
    try:
        return _Exchange(url, offset, end, log).open(session, timeout)
    except _RangeNotAsked:
        # A range we did not ask for cannot be stitched on: start over, once
        # (from byte 0 no Range is sent, so this cannot happen again).
        return _Exchange(url, 0, None, log).open(session, timeout)


class _RangeNotAsked(Exception):
    """A 206 whose Content-Range does not start where we asked."""


class _Exchange:
    """One GET and its response: what the Body it becomes reads, closes and aborts."""

    def __init__(
        self, url: str, offset: int, end: int | None, log: Callable[[str], None] | None
    ) -> None:
        self.url = url
        self.offset = offset
        self.shown = redact(url)
        self.where = str(origin(url) or "?")
        self.headers: dict[str, str] = {}
        if end is not None:
            self.headers["Range"] = f"bytes={offset}-{end - 1}"
        elif offset:
            self.headers["Range"] = f"bytes={offset}-"
        self.asked = f" {self.headers['Range']}" if self.headers else ""
        self.log = log
        self.began = 0.0
        self.body: Body | None = None  # once there is one, for the bytes it received
        self.sock: socket.socket | None = None

    def open(self, session: requests.Session, timeout: tuple[float, float]) -> Body:
        """Send the request; the Body of a usable answer, or Transient / Refused."""
        response = self._send(session, timeout)
        self.response = response
        raw = response.raw
        conn = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
        self.sock = getattr(conn, "sock", None)
        # read1 returns what has arrived (up to n) instead of waiting for n bytes,
        # so a read that times out loses nothing already received: the retry
        # resumes from the last byte that reached us. urllib3 1.x lacks it.
        self._raw_read = getattr(raw, "read1", raw.read)
        self._wire = _wire_of(raw)
        status = response.status_code
        if status == 416 and self.offset:
            # Nothing past ``offset``: the .part may already be whole. The caller
            # verifies it rather than trusting either side.
            self.close()
            total = hdr.parse_unsatisfied_range(response.headers.get("Content-Range"))
            return Body(self.offset, 0, total, lambda n: b"", lambda: None)
        self._refuse_what_is_not_the_file(status)
        if status == 206:
            return self._ranged_body(timeout)
        # 200: the whole file, whatever we asked for. An encoded body's length is
        # not the file's.
        length = hdr.parse_content_length(response.headers.get("Content-Length"))
        total = None if self._encoding() else length
        return self._make_body(0, length, total, ranged=False, timeout=timeout)

    def _send(self, session: requests.Session, timeout: tuple[float, float]) -> requests.Response:
        """The GET itself: a failure to get any answer in plain words (and logged)."""
        import requests

        self.began = time.monotonic()
        try:
            try:
                return session.get(
                    self.url,
                    headers=self.headers,
                    stream=True,
                    timeout=timeout,
                    proxies=env_proxies(self.url),
                )
            except requests.exceptions.ConnectionError as exc:
                local = out_of_descriptors(exc)
                if local is not None:
                    raise local from exc  # this process's limit, said as the disk's errors are
                raise _connection_failure(exc, self.url, timeout) from exc
            except requests.exceptions.Timeout as exc:
                raise timeout_words(exc, self.url, timeout) from exc
            except requests.exceptions.InvalidSchema as exc:
                if "SOCKS" in str(exc):  # requests' "Missing dependencies for SOCKS support."
                    raise Refused(
                        "the proxy the environment sets for it is a SOCKS one, which needs"
                        " PySocks: pip install 'requests[socks]'"
                    ) from exc
                # requests' words were "No connection adapters were found for 'ftp://...'".
                raise Refused(other_scheme(exc)) from exc
            except requests.exceptions.TooManyRedirects as exc:
                raise Refused(REDIRECT_LOOP) from exc  # requests': "Exceeded 30 redirects."
            except requests.exceptions.RequestException as exc:
                raise Refused(redact(_reason(exc))) from exc
            except ValueError as exc:  # UnicodeError among them
                # What requests and urllib3 raise bare for an address they cannot
                # parse, a redirect's Location the most likely ("http://[::1", a
                # byte that is not UTF-8): this mirror cannot give the file.
                raise Refused(unusable_address(exc)) from exc
            except urllib3_error() as exc:
                # requests reads a redirect's body to reuse the connection, and
                # lets urllib3's error out bare when that body is cut after a
                # failed decoding (Content-Encoding: deflate on other bytes):
                # a traceback ended the run.
                raise _as_transient(exc, self.where, None, "a redirect's body") from exc
        except (Transient, Refused) as exc:
            if self.log is not None:
                self.log(f"GET {self.shown}{self.asked}: {exc} ({self._seconds():.2f} s)")
            raise

    def _refuse_what_is_not_the_file(self, status: int) -> None:
        """Transient for a status a later try may cure, Refused for any other error or a page."""
        headers = self.response.headers
        if status in TRANSIENT_STATUS:
            self.close()
            raise Transient(
                status_text(status),
                retry_after=hdr.parse_retry_after(headers.get("Retry-After")),
            )
        if status == 407 and (proxy := proxy_for(self.url, env_proxies(self.url))):
            # Only a proxy sends a 407 (RFC 9110 15.5.8): not the mirror's answer.
            self.close()
            raise Transient(proxy_refused(status, self.url, proxy, self.where), unreachable=True)
        if status not in (200, 206):
            self.close()
            raise Refused(status_text(status))
        if "text/html" in (headers.get("Content-Type") or "").lower():
            # No file of ours is HTML: this is an error or login page sent with 200.
            self.close()
            raise Refused("an HTML page instead of the file")

    def _ranged_body(self, timeout: tuple[float, float]) -> Body:
        content_range = hdr.parse_content_range(self.response.headers.get("Content-Range"))
        if content_range is None or content_range[0] != self.offset:
            self.close()
            if self.offset == 0:
                raise Refused("an unusable Content-Range")
            raise _RangeNotAsked()
        first, last, total = content_range
        return self._make_body(self.offset, last - first + 1, total, ranged=True, timeout=timeout)

    def _make_body(
        self,
        start: int,
        length: int | None,
        total: int | None,
        *,
        ranged: bool,
        timeout: tuple[float, float],
    ) -> Body:
        # The low-water mark counts bytes on the socket, and must stay below what
        # is left: only for bodies whose bytes are exactly those on the wire (the
        # raw bytes are read, so Content-Encoding changes nothing; chunk framing
        # would).
        transfer_encoding = self.response.headers.get("Transfer-Encoding") or ""
        plain = "chunked" not in transfer_encoding.lower()
        self.body = Body(
            start,
            length,
            total,
            self.read,
            self.close,
            self.abort,
            ranged=ranged,
            _sock=self.sock if plain and _SO_RCVLOWAT else None,
            stall_window=timeout[1],
            where=self.where,
            encoding=self._encoding(),
            _readinto=self.readinto if self._wire is not None else None,
        )
        return self.body

    def _encoding(self) -> str:
        """Content-Encoding, lowercased; "" for none or identity."""
        encoding = (self.response.headers.get("Content-Encoding") or "").strip().lower()
        return "" if encoding == "identity" else encoding

    def _seconds(self) -> float:
        return time.monotonic() - self.began

    def read(self, n: int) -> bytes:
        # decode_content=False: the bytes exactly as sent. A server that labels
        # a .gz with Content-Encoding: gzip still gives us the file itself
        # (and one that really compresses it is undone after the download,
        # when the raw bytes do not match: the run keeps whichever does).
        data: bytes = self._raw_read(n, decode_content=False)
        return data

    def readinto(self, buf: memoryview) -> int:
        """What has arrived of the body, at most ``len(buf)`` bytes, straight into ``buf``.

        Under requests' session and urllib3's pool, but past their reads: those
        make a bytes object per call (urllib3's own readinto copies one), and
        http.client's readinto waits until ``buf`` is full, so that a timeout
        would lose what it had received. This reads once (``readinto1``) from
        http.client's socket reader, never past the Content-Length, and does
        for the body's end what urllib3 does: the response is closed and the
        connection goes back to the pool. Only for bodies with a
        Content-Length and no chunk framing (``_wire_of``); the bytes are
        those sent, as with ``decode_content=False``.
        """
        wire = self._wire
        assert wire is not None
        left: int = wire.length
        n = 0
        if left:
            n = wire.fp.readinto1(buf if len(buf) <= left else buf[:left])
            if not n:
                # The server closed before Content-Length bytes: urllib3 says the same.
                raise IncompleteBody(f"{left} bytes short")
            wire.length = left = left - n
        if not left and not wire.isclosed():
            body = self.body
            if body is not None and body._low > 1:
                # Before the pool has it: its next reader waits for no mark of ours.
                body._low = body._set_low_water(1)
            wire.close()  # http.client's own end of a body
            self.response.raw.release_conn()
        return n

    def close(self) -> None:
        self.response.close()
        if self.log is not None:
            got = self.body.received if self.body is not None else 0
            status = self.response.status_code
            self.log(
                f"GET {self.shown}{self.asked}: {status}, {got} bytes in {self._seconds():.2f} s"
            )

    def abort(self) -> None:
        # Closing a socket does not wake a recv() blocked in another thread on
        # Linux; shutting it down does.
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)


class IncompleteBody(Exception):
    """The connection ended before the Content-Length (a cut, as urllib3's IncompleteRead)."""


def _wire_of(raw: Any) -> Any:
    """The http.client response under urllib3's, when its body can be read into buffers.

    That is a body with a Content-Length and without chunk framing, not yet
    touched by urllib3 (nothing read, nothing decoded); None otherwise, and
    the body is read through urllib3's ``read1``.
    """
    import http.client

    wire = getattr(raw, "_fp", None)
    if (
        isinstance(wire, http.client.HTTPResponse)
        and not wire.chunked
        and isinstance(wire.length, int)
        and hasattr(wire.fp, "readinto1")
        and getattr(raw, "_fp_bytes_read", None) == 0
    ):
        return wire
    return None


def _low_water(rate: float, left: int) -> int:
    """The low-water mark for a connection at ``rate`` bytes/s with ``left`` to come.

    A power of two from 16 KiB to LOW_WATER, so that it changes (one system
    call) only a few times per body; 1 (the default) when it would not help.
    """
    want = min(LOW_WATER, int(rate * LOW_WATER_WAIT), left - LOW_WATER_MARGIN)
    if want < 16 << 10:
        return 1
    return 1 << (want.bit_length() - 1)


# Linux and macOS, where poll() honours it too; elsewhere reads wake as bytes come.
_SO_RCVLOWAT: int = getattr(socket, "SO_RCVLOWAT", 0) if hasattr(select, "poll") else 0


def env_proxies(url: str) -> dict[str, str]:
    """The proxies the environment (``https_proxy``, ``no_proxy``, ...) sets for ``url``."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return _origin_proxies(parts.scheme, parts.netloc)


@functools.lru_cache(maxsize=64)
def _origin_proxies(scheme: str, netloc: str) -> dict[str, str]:
    from requests.utils import get_environ_proxies

    proxies: dict[str, str] = get_environ_proxies(f"{scheme}://{netloc}/")
    return proxies


# What a folder mirror's path names, when it is no file (st_mode's type bits).
_NOT_A_FILE = {
    0o040000: "is a folder, not a file",
    0o010000: "is a named pipe (FIFO), not a file: nothing is read from it",
    0o140000: "is a socket, not a file",
    0o020000: "is a character device, not a file: nothing is read from it",
    0o060000: "is a block device, not a file: nothing is read from it",
}

# An error opening a folder mirror's file that no retry cures, in words.
_LOCAL_REFUSALS = {
    errno.EACCES: "this user may not read it (permission denied)",
    errno.EPERM: "this user may not read it (operation not permitted)",
    errno.ELOOP: "is a loop of symbolic links",
    errno.ENOTDIR: "a part of its path is a file, not a folder",
    errno.ENAMETOOLONG: "its name is too long for this system",
    errno.ENXIO: "is a socket or a device that is not there, not a file",
}


def _open_local(path: str, offset: int) -> Body:
    """A folder mirror's file, from ``offset`` to the size it had when opened.

    Opened without blocking (a named pipe's open waited for a writer, for
    good, Ctrl-C and SIGTERM included) and refused unless it is a regular
    file: a pipe, a device (a link to /dev/zero), a socket or a folder are
    said in words. Reads stop at the size it had at open, so a file that
    grows meanwhile gives no more than that; one that shrinks ends short, a
    cut the caller retries.
    """
    import fcntl
    import stat

    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if os.path.islink(path):
            raise Refused(f"is a link to {os.readlink(path)!r}, which is not there") from None
        raise Refused("no such file") from None
    except IsADirectoryError:
        raise Refused(_NOT_A_FILE[0o040000]) from None
    except OSError as exc:
        words = _LOCAL_REFUSALS.get(exc.errno or 0)
        if words is not None:
            raise Refused(words) from None
        raise Transient(f"cannot read it: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
        kind = stat.S_IFMT(st.st_mode)
        if kind != stat.S_IFREG:
            raise Refused(_NOT_A_FILE.get(kind, "is not a regular file"))
        # Back to blocking reads: a regular file never waits, but no reader
        # below expects EAGAIN.
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    size = st.st_size
    start = offset if offset <= size else 0
    fh.seek(start)
    left = [size - start]

    def read(n: int) -> bytes:
        data = fh.read(max(0, min(n, left[0])))
        left[0] -= len(data)
        return data

    def readinto(buf: memoryview) -> int:
        n = fh.readinto(buf[: max(0, min(len(buf), left[0]))])
        left[0] -= n
        return n

    return Body(start, size - start, size, read, fh.close, _readinto=readinto)


def status_text(status: int) -> str:
    """``HTTP 404 Not Found``: the status with its standard phrase.

    The phrase is looked up, never taken from the server's status line, which
    could carry anything to the terminal. The URL is not said here: the
    error names the file and the mirror, and the mirror says it when its
    name does not (``Downloader._from_mirrors``).
    """
    from http import HTTPStatus

    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _reason(exc: BaseException) -> str:
    """A short reason: the innermost cause, without urllib3's object reprs."""
    text = str(exc)
    for pattern in (r"Caused by (\w+)\(", r"\] ([^'\"]+)"):
        m = re.search(pattern, text)
        if m:
            return m.group(1).strip(" :)")
    return type(exc).__name__ if not text else text.splitlines()[0][:120]


def unusable_address(exc: ValueError) -> str:
    """The reason for a ValueError out of requests: an address in the answer it could not use."""
    if isinstance(exc, UnicodeError):
        # Python's words were "'utf-8' codec can't decode byte 0xff in position 1: ...".
        return "an address it answered with cannot be used (it is not UTF-8 text)"
    text = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return f"an address it answered with cannot be used ({text[:120]!a})"


# requests follows at most 30 redirects (requests.models.DEFAULT_REDIRECT_LIMIT).
REDIRECT_LOOP = "redirected more than 30 times (a redirect loop)"


def other_scheme(exc: BaseException) -> str:
    """requests' InvalidSchema for a redirect to ``ftp://...``, in words (no password)."""
    from ..errors import one_line

    quoted = re.search(r"'(.*)'", str(exc))
    where = one_line(redact(quoted.group(1) if quoted else str(exc)))
    if len(where) > 150:
        where = where[:147] + "..."
    return f"sent to {where!a}, an address that is not http or https"


def urllib3_error() -> type[Exception]:
    """urllib3's base exception, which requests lets out of a redirect unwrapped."""
    import urllib3.exceptions as u3

    return u3.HTTPError


def redirected_to(exc: Exception, url: str) -> str | None:
    """The URL of another origin that ``url`` redirected to and that failed, if so.

    requests names the request that failed on its exceptions: after a redirect,
    the redirect's.
    """
    tried = getattr(getattr(exc, "request", None), "url", None)
    if not isinstance(tried, str) or origin(tried) == origin(url):
        return None
    return tried


def out_of_descriptors(exc: BaseException) -> OSError | None:
    """The EMFILE (or ENFILE) a failed connection wraps: this machine's limit, not the mirror's.

    A socket this process may not open (``ulimit -n``; the system's table
    full) reached the run as "connection to <mirror> failed", two tries, and
    the mirror was taken for down for every other file. It is a local
    failure, said as storage.folders says one, and the mirror stays in use.
    """
    seen: list[object] = [exc]
    for _ in range(6):  # requests -> urllib3 -> the socket's OSError: bounded
        nested: list[object] = []
        for e in seen:
            if isinstance(e, OSError) and e.errno in (errno.EMFILE, errno.ENFILE):
                return OSError(e.errno, os.strerror(e.errno))
            if isinstance(e, BaseException):
                nested += [*e.args, e.__cause__, e.__context__, getattr(e, "reason", None)]
        seen = [e for e in nested if e is not None]
    return None


def _not_http(exc: BaseException) -> bool:
    """Whether ``exc``, or what it wraps, is http.client saying the answer was not HTTP."""
    import http.client

    seen: list[object] = [exc]
    for _ in range(6):  # requests -> urllib3 -> the tuple -> http.client: bounded
        nested: list[object] = []
        for e in seen:
            # BadStatusLine, LineTooLong, "got more than 100 headers"; a
            # RemoteDisconnected (a BadStatusLine too) is a close, not an answer.
            if isinstance(e, http.client.HTTPException) and not isinstance(
                e, (http.client.RemoteDisconnected, http.client.IncompleteRead)
            ):
                return True
            if isinstance(e, BaseException):
                nested += [*e.args, e.__cause__, e.__context__]
            elif isinstance(e, tuple):
                nested += list(e)
        seen = [e for e in nested if e is not None]
    return False


def _connection_failure(exc: Exception, url: str, timeout: tuple[float, float]) -> Transient:
    """Say in plain words why no connection was made (or how it was lost)."""
    import requests
    import urllib3.exceptions as u3

    tried = redirected_to(exc, url)
    if tried is not None:
        # The mirror answered, with a redirect to a host that failed (Hugging
        # Face and the Wayback Machine send each file on to another host): name
        # that host, and do not let the run take the mirror for down.
        failure = _connection_failure(exc, tried, timeout)
        return Transient(f"{failure} (where {origin(url) or '?'} sent us)")
    address = origin(url)
    host, where = (address.host, str(address)) if address else ("?", "?")
    proxy = proxy_for(url, env_proxies(url))
    said = proxy_failure(exc, url, proxy, where, timeout[0]) if proxy else None
    if said is not None:  # the proxy's failure (or its word on the mirror), not the mirror's
        return Transient(said, unreachable=True)
    cause = getattr(exc.args[0], "reason", None) if exc.args else None
    no_name = getattr(u3, "NameResolutionError", None)  # urllib3 2.x only
    # Most specific first: a name that does not resolve is a NewConnectionError,
    # which is itself (historically) a ConnectTimeoutError.
    if no_name is not None and isinstance(cause, no_name):
        return Transient(f"could not resolve host {host}", host_down=True)
    if isinstance(cause, u3.NewConnectionError) and not _timed_out(cause):
        why = _errno_words(cause) or "failed"  # refused: that port, not the host
        return Transient(f"connection to {where} {why}", unreachable=True)
    if isinstance(exc, requests.exceptions.ConnectTimeout) or isinstance(
        cause, u3.ConnectTimeoutError
    ):
        return Transient(f"connection to {where} timed out after {timeout[0]:g} s", host_down=True)
    if isinstance(exc, requests.exceptions.ProxyError):
        # The proxy, not the mirror: it is what did not answer.
        proxies = env_proxies(url)
        proxy = proxies.get(url.split("://", 1)[0].lower()) or proxies.get("all") or "?"
        why = _errno_words(exc) or redact(_reason(exc))
        return Transient(
            f"the proxy {redact(proxy)} {PROXY_FAILED} {where}: {why}", unreachable=True
        )
    if isinstance(exc, requests.exceptions.SSLError):
        # _reason alone kept "SSLError" and dropped what OpenSSL said; then
        # OpenSSL's words alone blamed the CA bundle for an expired
        # certificate and cut the host name off a mismatch.
        # Through a proxy the certificate may be the proxy's own (one that
        # inspects TLS): where the handshake ran is said, or the user was
        # sent to the mirror's certificate and to other mirrors.
        via = f" through the proxy {redact(proxy)}" if proxy else ""
        return Transient(f"TLS with {where}{via} failed: {tls_words(exc, host)}", unreachable=True)
    if _not_http(exc):
        # It answered, but not in HTTP ("garbage", an SSH banner, a line past
        # 64 KiB): said so, not as Python's ('Connection aborted.', BadStatusLine(...)).
        return Transient(f"{where} answered with something that is not HTTP")
    lost = _lost(exc)
    if lost is not None:
        # It was Python's ('Connection aborted.', ConnectionResetError(104, ...)).
        return Transient(f"connection to {where} {lost} before it answered")
    if isinstance(cause, u3.ProtocolError) or "RemoteDisconnected" in str(exc):
        return Transient(f"{where} closed the connection without a response")
    return Transient(f"connection to {where} failed ({redact(_reason(exc))})")


def timeout_words(exc: BaseException, url: str, timeout: tuple[float, float]) -> Transient:
    """A request that timed out before any answer, in words, with the timeout that ran out.

    A TLS handshake that gets no answer is bounded by the connect timeout
    (urllib3 sets it on the socket until the connection is made), not the
    read timeout: it was "no response within 30 s" after 10 s.
    """
    tried = redirected_to(exc, url) if isinstance(exc, Exception) else None
    where = str(origin(tried or url) or "?")
    proxy = proxy_for(tried or url, env_proxies(tried or url))
    said = proxy_failure(exc, tried or url, proxy, where, timeout[0]) if proxy else None
    if said is not None:  # a proxy silent on CONNECT: it was "no response from <mirror>"
        return Transient(
            said + (f" (where {origin(url) or '?'} sent us)" if tried else ""), unreachable=True
        )
    if handshake_timed_out(exc):
        text = f"no answer to the TLS handshake from {where} within {timeout[0]:g} s"
    else:
        text = f"no response from {where} within {timeout[1]:g} s"
    if tried is not None:
        text += f" (where {origin(url) or '?'} sent us)"
    return Transient(text)


def _timed_out(exc: BaseException) -> bool:
    return "timed out" in str(exc).lower()


def _errno_words(exc: BaseException) -> str:
    """``refused``, ``unreachable (no route)``: what the system said, in words."""
    text = str(exc).lower()
    for key, words in (
        ("refused", "refused"),
        ("no route", "failed: no route to host"),
        ("unreachable", "failed: network unreachable"),
        ("reset", "reset"),
    ):
        if key in text:
            return words
    return ""


def _as_transient(
    exc: BaseException, where: str = "", window: float | None = None, what: str = "the body"
) -> Transient:
    """A failed read of ``what`` (a response's body), said in words.

    It was the class's name: ``cut (ProtocolError)`` for a chunk size that
    is not a number as for a cut, ``cut (IncompleteBody)``.
    """
    name = type(exc).__name__
    who = where or "the server"
    if "Timeout" in name or "timed out" in str(exc):
        after = f" for {window:g} s" if window else ""
        return Transient(f"no data from {who}{after}", stalled=True)
    chain = _chain(exc)
    if any(_bad_chunk(e) for e in chain):
        return Transient(f"{who} sent {what} in chunks not framed as HTTP frames them")
    return Transient(f"connection to {who} {_lost(exc) or 'cut'} in the middle of {what}")


# How a connection was lost, in words, most specific first.
_LOST: dict[type[BaseException], str] = {
    ConnectionResetError: "reset by the server",
    BrokenPipeError: "closed by the server",
    ConnectionAbortedError: "aborted",
}


def _lost(exc: BaseException) -> str | None:
    """How the connection under ``exc`` was lost, in words; None when it was not.

    A close before any answer (http.client's RemoteDisconnected, itself a
    ConnectionResetError) is not a reset: the caller says it.
    """
    import http.client

    chain = _chain(exc)
    if any(isinstance(e, http.client.RemoteDisconnected) for e in chain):
        return None
    return next((_LOST[t] for e in chain for t in _LOST if isinstance(e, t)), None)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (causes, contexts, exceptions among its args); bounded."""
    out: list[BaseException] = []
    todo: list[object] = [exc]
    while todo and len(out) < 16:
        e = todo.pop(0)
        if isinstance(e, BaseException):
            if not any(e is o for o in out):
                out.append(e)
                todo += [*e.args, e.__cause__, e.__context__]
        elif isinstance(e, tuple):
            todo += list(e)
    return out


def _bad_chunk(e: BaseException) -> bool:
    """Whether ``e`` is http.client failing on a chunk-size line (not hex, or over 64 KiB)."""
    import http.client

    if isinstance(e, http.client.LineTooLong):
        return "chunk" in str(e)
    return type(e) is ValueError and "base 16" in str(e)


def _peer_der(conn: Any) -> bytes | None:
    """The certificate the server behind ``conn`` sends, from a handshake that verifies nothing.

    Only to say why verification failed: made once, within the connect
    timeout, stoppable as the run's connects are, and never through a proxy
    (a direct connection might reach another server).
    """
    import ssl

    if getattr(conn, "_tunnel_host", None) or getattr(conn, "proxy", None):
        return None
    timeout = conn.timeout if isinstance(conn.timeout, (int, float)) else DEFAULT_TIMEOUT[0]
    host = str(conn.host).strip("[]")
    waiting: Waiting | None = getattr(_requests_of, "run", None)
    held: list[socket.socket] = []
    sock: socket.socket | None = None
    try:
        if waiting is not None and hasattr(select, "poll"):
            sock = _connected_socket((host, conn.port), timeout, None, None, waiting, held.append)
        else:
            sock = socket.create_connection((host, conn.port), timeout)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        name = getattr(conn, "server_hostname", None) or host
        with context.wrap_socket(sock, server_hostname=name) as tls:
            sock = None  # the TLS socket owns it now
            return tls.getpeercert(binary_form=True)
    except (OSError, ValueError):
        return None
    finally:
        if sock is not None:
            sock.close()
        for h in held:
            if waiting is not None:
                waiting.discard(h)
            h.close()


class _PeerOnFailure:
    """A TLS connection that, when the certificate fails to verify, keeps what it said.

    The ssl module gives no certificate it could not verify (Python 3.13's
    ``get_unverified_chain`` aside): one more handshake, verifying nothing,
    fetches it, and the error carries it (``kmnist_peer``) to ``tls_words``.
    """

    def connect(self) -> None:
        import ssl

        try:
            super().connect()  # type: ignore[misc]
        except ssl.SSLCertVerificationError as exc:
            der = _peer_der(self)
            exc.kmnist_peer = peer_certificate(der) if der else None  # type: ignore[attr-defined]
            raise
