"""HTTPS faults from a loopback server: certificates, handshakes, and the CA variables.

The real mirrors are HTTPS. Each fault here is a server on 127.0.0.1 with a
certificate made by trustme (expired, not yet valid, for another name,
without its intermediate, from an untrusted CA) or a handshake that goes
wrong (no TLS, an old TLS, an alert, a client certificate asked for, no
answer at all). The invariant: one KmnistError from the library, one line
and exit 1 from the command, saying the TLS cause in words a user can act
on, never OpenSSL's repr; no final file, no hang beyond the timeouts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import ssl
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

trustme = pytest.importorskip("trustme", reason="trustme makes the test certificates")

import kmnist  # noqa: E402
from kmnist.cli.download import main  # noqa: E402
from kmnist.downloader import tls, transfer  # noqa: E402
from kmnist.downloader.run import RetryPolicy  # noqa: E402

from .conftest import no_part_files  # noqa: E402
from .server import FaultyServer  # noqa: E402

DATA = os.urandom(20000)
FILE = kmnist.RemoteFile("kmnist/f.bin", len(DATA), sha256=hashlib.sha256(DATA).hexdigest())
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
PROXIES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
NOW = dt.datetime.now(dt.timezone.utc)
DAY = dt.timedelta(days=1)
# What no message may show: Python's and OpenSSL's own words for the failure.
RAW = ("SSLError", "SSLCertVerificationError", "CERTIFICATE_VERIFY_FAILED", "_ssl.c", "[SSL:")


@pytest.fixture(scope="module")
def ca() -> Any:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test CA, trusted through $REQUESTS_CA_BUNDLE alone (the machine's variables cleared)."""
    for name in (*CA_VARIABLES, *PROXIES, *(p.upper() for p in PROXIES)):
        monkeypatch.delenv(name, raising=False)
    transfer._origin_proxies.cache_clear()
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(path))
    return path


@pytest.fixture
def servers() -> Iterator[list[FaultyServer]]:
    started: list[FaultyServer] = []
    yield started
    for s in started:
        s.stop()


TlsServer = Callable[..., FaultyServer]


@pytest.fixture
def tls_server(ca: Any, servers: list[FaultyServer], tmp_path: Path) -> TlsServer:
    """A FaultyServer behind a TLS context of the test's making, serving FILE."""

    def start(
        leaf: Any = None, setup: Callable[[ssl.SSLContext], None] | None = None
    ) -> FaultyServer:
        s = FaultyServer()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        (leaf or ca.issue_cert("127.0.0.1", "localhost")).configure_cert(context)
        if setup is not None:
            setup(context)
        s.httpd.socket = context.wrap_socket(s.httpd.socket, server_side=True)
        s.scheme = "https"
        s.add(FILE.path, DATA)
        servers.append(s.start())
        return s

    return start


def refused(url: str, root: Path, timeout: tuple[float, float] = (5.0, 5.0)) -> str:
    """The one KmnistError a download from ``url`` ends in; nothing kept under a final name."""
    with pytest.raises(kmnist.KmnistError) as caught:
        kmnist.download_files(
            [FILE],
            root,
            mirrors=[url],
            progress=False,
            timeout=timeout,
            retry=RetryPolicy(sleep=lambda s: None),
        )
    said = str(caught.value)
    assert "\n" not in said, said
    assert not any(raw in said for raw in RAW), said
    assert not (root / FILE.path).exists()
    assert no_part_files(root) == []
    return said


def leaf_only(leaf: Any, tmp_path: Path) -> Callable[[ssl.SSLContext], None]:
    """A server context that sends the leaf without the intermediate that signed it."""
    cert, key = tmp_path / "leaf.pem", tmp_path / "leaf.key"
    cert.write_bytes(leaf.cert_chain_pems[0].bytes())
    leaf.private_key_pem.write_to_path(str(key))
    return lambda context: context.load_cert_chain(cert, key)


# --- certificates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "says", "never"),
    [
        (
            "expired",
            f"its certificate expired on {(NOW - DAY).date()}",
            "does not hold the CA",
        ),
        (
            "not-yet-valid",
            f"its certificate is not valid until {(NOW + 3 * DAY).date()}",
            "does not hold the CA",
        ),
        (
            "other-host",
            "its certificate is issued for example.org, not 127.0.0.1",
            "does not hold the CA",
        ),
        (
            "localhost-cert-at-127",
            "its certificate is issued for localhost, not 127.0.0.1",
            "does not hold the CA",
        ),
        (
            "127-cert-at-localhost",
            "its certificate is issued for 127.0.0.1, not localhost",
            "does not hold the CA",
        ),
        (
            "missing-intermediate",
            "or the server does not send its intermediate certificate",
            "expired",
        ),
    ],
)
def test_a_certificate_fault_is_said_in_words(
    ca: Any,
    ca_file: Path,
    tls_server: TlsServer,
    tmp_path: Path,
    case: str,
    says: str,
    never: str,
) -> None:
    """It was "its certificate is not trusted (certificate has expired);
    $REQUESTS_CA_BUNDLE does not hold the CA that signed it" for an expired
    one (the bundle was right), and "(IP address mismatch, certificate is
    not valid for)" for another name, the name cut off."""
    setup = None
    if case == "expired":
        leaf = ca.issue_cert("127.0.0.1", not_before=NOW - 30 * DAY, not_after=NOW - DAY)
    elif case == "not-yet-valid":
        leaf = ca.issue_cert("127.0.0.1", not_before=NOW + 3 * DAY, not_after=NOW + 30 * DAY)
    elif case == "other-host":
        leaf = ca.issue_cert("example.org")
    elif case == "localhost-cert-at-127":
        leaf = ca.issue_cert("localhost")
    elif case == "127-cert-at-localhost":
        leaf = ca.issue_cert("127.0.0.1")
    else:
        leaf = ca.create_child_ca().issue_cert("127.0.0.1")
        setup = leaf_only(leaf, tmp_path)
    server = tls_server(leaf, setup)
    url = server.url
    if case == "127-cert-at-localhost":
        url = url.replace("127.0.0.1", "localhost")
    said = refused(url, tmp_path / "data")
    assert says in said, said
    assert never not in said, said
    assert server.gets() == []  # no request was ever sent over it


def test_a_ca_that_is_not_the_servers_is_named_as_the_cause(
    ca: Any, ca_file: Path, tls_server: TlsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guard (passed before): a bundle without the server's CA is said to lack it."""
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    said = refused(tls_server().url, tmp_path / "data")
    assert "its certificate is not trusted" in said, said
    assert "$REQUESTS_CA_BUNDLE does not hold the CA that signed it" in said, said


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_the_right_ca_in_either_variable_fetches_the_file(
    ca_file: Path,
    tls_server: TlsServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    """Guard (passed before): the CA in the variable requests reads is trusted."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv(variable, str(ca_file))
    root = tmp_path / "data"
    kmnist.download_files([FILE], root, mirrors=[tls_server().url], progress=False)
    assert (root / FILE.path).read_bytes() == DATA


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "SSL_CERT_DIR"])
def test_a_ca_in_a_variable_requests_does_not_read_is_said_to_be_unread(
    ca_file: Path,
    tls_server: TlsServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    """The right CA in $SSL_CERT_FILE (OpenSSL's and curl's, not requests'):
    the advice was to give a bundle in $REQUESTS_CA_BUNDLE, as if nothing
    had been given; now it says the variable set is not read."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv(variable, str(ca_file if variable == "SSL_CERT_FILE" else ca_file.parent))
    said = refused(tls_server().url, tmp_path / "data")
    assert f"${variable} not read here" in said, said
    assert "give its bundle in $REQUESTS_CA_BUNDLE" in said, said


def test_an_empty_ca_bundle_is_one_usage_error_before_anything(
    ca_file: Path, tls_server: TlsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guard (passed before): an empty bundle is said once, and nothing is asked."""
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(empty))
    server = tls_server()
    with pytest.raises(kmnist.UsageError, match="holds no certificate"):
        kmnist.download_files([FILE], tmp_path / "data", mirrors=[server.url], progress=False)
    assert server.gets() == []


# --- handshakes -----------------------------------------------------------------------


class RawServer:
    """Accepts connections on 127.0.0.1 and hands each to ``serve`` in a thread of its own."""

    def __init__(self, serve: Callable[[socket.socket], None] | None) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.serve = serve
        self.held: list[socket.socket] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.sock.getsockname()[1]}"

    def _loop(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)  # kept open: a silent server says nothing, ever
            if self.serve is not None:
                threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def stop(self) -> None:
        self.stopped.set()
        for conn in [self.sock, *self.held]:
            conn.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    started: list[RawServer] = []

    def start(serve: Callable[[socket.socket], None] | None = None) -> RawServer:
        started.append(RawServer(serve))
        return started[-1]

    yield start
    for s in started:
        s.stop()


def alert(description: int) -> Callable[[socket.socket], None]:
    """A server that reads the ClientHello and answers with a fatal TLS alert."""

    def serve(conn: socket.socket) -> None:
        try:
            conn.recv(4096)
            conn.sendall(bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description]))
        except OSError:
            pass

    return serve


def old_tls(context: ssl.SSLContext) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("ALL:@SECLEVEL=0")


def client_certificate(version: ssl.TLSVersion) -> Callable[[ssl.SSLContext], None]:
    def setup(context: ssl.SSLContext) -> None:
        context.maximum_version = version
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=trustme.CA().cert_pem.bytes().decode())

    return setup


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("plain-http-port", "the server does not speak TLS there"),
        ("tls-1.0-only", "offers only a TLS version older than OpenSSL here accepts"),
        ("alert-handshake-failure", "the server refused the handshake"),
        ("alert-internal-error", "the server ended the handshake with the alert 'internal error'"),
        ("client-certificate-tls1.2", "client certificate"),
        ("client-certificate-tls1.3", "client certificate"),
    ],
)
def test_a_handshake_fault_is_said_in_words(
    ca_file: Path,
    tls_server: TlsServer,
    raw_server: Callable[..., RawServer],
    servers: list[FaultyServer],
    tmp_path: Path,
    case: str,
    says: str,
) -> None:
    """Each was "TLS with 127.0.0.1:P failed (SSLError)": OpenSSL's reason dropped."""
    if case == "plain-http-port":
        plain = FaultyServer().start()
        servers.append(plain)
        url = plain.url.replace("http://", "https://")
    elif case == "tls-1.0-only":
        try:
            url = tls_server(setup=old_tls).url
        except (ssl.SSLError, ValueError) as exc:
            pytest.skip(f"OpenSSL here cannot even serve TLS 1.0: {exc}")
    elif case.startswith("alert"):
        url = raw_server(alert(40 if case.endswith("failure") else 80)).url
    else:
        version = ssl.TLSVersion.TLSv1_2 if case.endswith("1.2") else ssl.TLSVersion.TLSv1_3
        url = tls_server(setup=client_certificate(version)).url
    said = refused(url, tmp_path / "data")
    assert f"TLS with 127.0.0.1:{url.rsplit(':', 1)[1]} failed: " in said, said
    assert says in said, said


def test_a_silent_handshake_names_the_timeout_that_ran_out(
    ca_file: Path, raw_server: Callable[..., RawServer], tmp_path: Path
) -> None:
    """A port that accepts and never answers the ClientHello: the connect
    timeout bounds the handshake, and the words said the read timeout's
    ("no response within 30 s" after 1 s)."""
    silent = raw_server()
    said = refused(silent.url, tmp_path / "data", timeout=(1.0, 30.0))
    assert "no answer to the TLS handshake from 127.0.0.1:" in said, said
    assert "within 1 s" in said and "30 s" not in said, said


# --- the command ----------------------------------------------------------------------


def test_the_command_says_an_expired_mirror_in_one_line(
    ca: Any, ca_file: Path, tls_server: TlsServer, tmp_path: Path
) -> None:
    """The installed console script: exit 1; the mirror's line says when it expired."""
    leaf = ca.issue_cert("127.0.0.1", not_before=NOW - 30 * DAY, not_after=NOW - DAY)
    server = tls_server(leaf)
    root = tmp_path / "data"
    argv = ["-d", "kmnist", "-s", "test", "-f", "npz", "--dir", str(root), "-q"]
    script = Path(sys.executable).with_name("kmnist-download")
    done = subprocess.run(
        [str(script), *argv, "--mirror", server.url + "/", "--timeout", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    first = lines[0]
    assert f"its certificate expired on {(NOW - DAY).date()}" in first, done.stderr
    assert "Traceback" not in done.stderr
    assert not any(raw in done.stderr for raw in RAW), done.stderr
    assert all(line.startswith("kmnist-download: ") for line in lines), done.stderr
    assert sum("expired" in line for line in lines) == 1, done.stderr  # said once, not per file
    assert not [p for p in root.rglob("*") if p.is_file() and ".kmnist" not in p.parts]


def test_check_mirrors_says_each_tls_cause(
    ca: Any,
    ca_file: Path,
    tls_server: TlsServer,
    raw_server: Callable[..., RawServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--check-mirrors over an expired mirror, one for another name and a
    silent handshake: each row says why, in words; exit 1."""
    expired = tls_server(ca.issue_cert("127.0.0.1", not_after=NOW - DAY, not_before=NOW - 9 * DAY))
    elsewhere = tls_server(ca.issue_cert("mirror.example.org"))
    silent = raw_server()
    argv = ["-d", "kmnist", "-s", "test", "-f", "npz", "--dir", str(tmp_path), "--check-mirrors"]
    mirrors = [x for s in (expired.url, elsewhere.url, silent.url) for x in ("-m", s + "/")]
    assert main([*argv, *mirrors, "--timeout", "1", "--json"]) == 1
    out = capsys.readouterr().out
    import json

    rows = json.loads(out)["probes"] if out.lstrip().startswith("{") else json.loads(out)
    details = {r["url"].split("/kmnist")[0]: r["detail"] for r in rows}
    assert f"its certificate expired on {(NOW - DAY).date()}" in details[expired.url]
    assert "issued for mirror.example.org, not 127.0.0.1" in details[elsewhere.url]
    assert "no answer to the TLS handshake" in details[silent.url]
    assert "within 1 s" in details[silent.url]
    assert not any(raw in out for raw in RAW), out


# --- bodies over TLS (guards: these passed before) ------------------------------------


def test_a_body_cut_without_close_notify_is_resumed_and_verified(
    ca_file: Path, tls_server: TlsServer, tmp_path: Path
) -> None:
    """Guard: the server drops TCP mid-body, no TLS close_notify (a truncation
    attack looks the same): the bytes are resumed and the hash decides."""
    server = tls_server()
    server.fault(FILE.path, "cut:7000")
    root = tmp_path / "data"
    kmnist.download_files([FILE], root, mirrors=[server.url], progress=False)
    assert (root / FILE.path).read_bytes() == DATA
    ranges = [r.range for r in server.gets(FILE.path)]
    assert ranges[0] is None and ranges[1] == "bytes=7000-", ranges


def test_a_redirect_from_https_to_http_gives_verified_bytes_only(
    ca_file: Path, tls_server: TlsServer, servers: list[FaultyServer], tmp_path: Path
) -> None:
    """Guard: a downgrade to plain HTTP is followed (the hash is the check);
    other bytes there are refused, never kept."""
    plain = FaultyServer().start()
    servers.append(plain)
    plain.add(FILE.path, DATA)
    server = tls_server()
    server.always(FILE.path, f"redirect:{plain.url}")
    root = tmp_path / "data"
    kmnist.download_files([FILE], root, mirrors=[server.url], progress=False)
    assert (root / FILE.path).read_bytes() == DATA
    plain.always(FILE.path, "wrong")
    said = refused(server.url, tmp_path / "other")
    assert "sha256" in said, said


# --- the words for any OpenSSL failure, and the certificate parser (hypothesis) -------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

URL = "https://127.0.0.1:8443/kmnist/f.bin"
REASONS = [
    "WRONG_VERSION_NUMBER", "TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL",
    "SSLV3_ALERT_HANDSHAKE_FAILURE", "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "TLSV1_ALERT_INTERNAL_ERROR", "TLSV1_ALERT_ACCESS_DENIED", "UNEXPECTED_EOF_WHILE_READING",
    "RECORD_LAYER_FAILURE", "DECRYPTION_FAILED_OR_BAD_RECORD_MAC", "NO_CIPHERS_AVAILABLE",
]  # fmt: skip
hostile_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80
) | st.sampled_from(["", "\n", "\x1b[31mred", "a\nb", "'" * 5, "x" * 400])


def as_requests_raises(inner: BaseException) -> Exception:
    """``inner`` wrapped as urllib3 and requests wrap what the ssl module raises."""
    import requests
    import urllib3.exceptions as u3

    wrapped = u3.SSLError(inner)
    retries = u3.MaxRetryError(None, "/kmnist/f.bin", reason=wrapped)  # type: ignore[arg-type]
    retries.__cause__ = wrapped
    outer = requests.exceptions.SSLError(retries)
    outer.__context__ = retries
    return outer


def said_of(exc: Exception) -> str:
    return str(transfer._connection_failure(exc, URL, (1.0, 2.0)))


def assert_in_words(said: str) -> None:
    assert said.startswith("TLS with 127.0.0.1:8443 failed"), said
    assert said.isprintable(), said  # one line, no escape sequence reaches the terminal
    assert not any(raw in said for raw in RAW), said
    assert len(said) < 600, said


@settings(max_examples=60, deadline=None)
@given(
    reason=st.sampled_from(REASONS) | st.from_regex(r"[A-Z0-9_]{1,30}", fullmatch=True),
    words=hostile_text,
    eof=st.booleans(),
)
def test_any_openssl_failure_is_said_in_words(reason: str, words: str, eof: bool) -> None:
    """Whatever OpenSSL says (its reason, its words): one printable line
    without Python's or OpenSSL's decorations; it was "(SSLError)"."""
    kind = ssl.SSLEOFError if eof else ssl.SSLError
    inner = kind(8 if eof else 1, f"[SSL: {reason}] {words} (_ssl.c:1006)")
    assert_in_words(said_of(as_requests_raises(inner)))


names = st.lists(hostile_text | st.sampled_from(["localhost", "127.0.0.1", "::1"]), max_size=8)
dates = st.none() | st.datetimes(
    min_value=dt.datetime(1950, 1, 1), max_value=dt.datetime(2100, 1, 1),
    timezones=st.just(dt.timezone.utc),
)  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(
    code=st.sampled_from([2, 9, 10, 18, 19, 20, 21, 62, 63, 64, 23, 26]) | st.integers(-5, 200),
    message=hostile_text,
    peer=st.none() | st.builds(tls.PeerCertificate, dates, dates, names.map(tuple),
                               st.none() | hostile_text),
    bundle=st.sampled_from([None, "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"]),
)  # fmt: skip
def test_any_certificate_failure_is_said_in_words(
    code: int, message: str, peer: Any, bundle: str | None
) -> None:
    """Any verify code and message, any certificate (its names are the server's
    words): one printable line; the CA advice only for a CA that is not trusted."""
    inner = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    )
    inner.verify_code = code
    inner.verify_message = message
    inner.kmnist_peer = peer  # type: ignore[attr-defined]
    saved = {n: os.environ.pop(n, None) for n in CA_VARIABLES}
    try:
        if bundle:
            os.environ[bundle] = "/nonexistent/ca.pem"
        said = said_of(as_requests_raises(inner))
    finally:
        for n, v in saved.items():
            os.environ.pop(n, None)
            if v is not None:
                os.environ[n] = v
    assert_in_words(said)
    if code in (9, 10, 62, 63, 64):
        assert "CA" not in said, said  # the bundle is not what failed


@pytest.fixture(scope="module")
def leaf_ders(ca: Any) -> list[bytes]:
    return [
        ssl.PEM_cert_to_DER_cert(ca.issue_cert(*hosts).cert_chain_pems[0].bytes().decode())
        for hosts in (["127.0.0.1"], ["example.org", "::1"], ["*.mirror.example.org"])
    ]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_the_certificate_parser_never_raises(leaf_ders: list[bytes], data: st.DataObject) -> None:
    """The server's bytes, cut, flipped, or made up: a certificate's facts or None."""
    der = data.draw(st.sampled_from(leaf_ders))
    how = data.draw(st.sampled_from(["cut", "flip", "random", "grow"]))
    if how == "cut":
        der = der[: data.draw(st.integers(0, len(der)))]
    elif how == "flip":
        at = data.draw(st.integers(0, len(der) - 1))
        der = der[:at] + bytes([der[at] ^ data.draw(st.integers(1, 255))]) + der[at + 1 :]
    elif how == "random":
        der = data.draw(st.binary(max_size=300))
    else:
        der = der[:1] + b"\x84\xff\xff\xff\xff" + der[2:]
    facts = tls.peer_certificate(der)
    assert facts is None or isinstance(facts, tls.PeerCertificate)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    hosts=st.lists(st.from_regex(r"[a-z]([a-z0-9-]{0,18}[a-z0-9])?(\.[a-z]{2,8}){1,2}", fullmatch=True)
                   | st.ip_addresses().map(str), min_size=1, max_size=4, unique=True),
    start=st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2200, 1, 1)),
    days=st.integers(1, 20000),
)  # fmt: skip
def test_the_certificate_parser_reads_what_trustme_wrote(
    ca: Any, hosts: list[str], start: dt.datetime, days: int
) -> None:
    """Dates either side of 2050 (UTCTime, then GeneralizedTime) and names of both kinds."""
    start = start.replace(microsecond=0, tzinfo=dt.timezone.utc)
    end = start + dt.timedelta(days=days)
    leaf = ca.issue_cert(*hosts, not_before=start, not_after=end)
    der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
    facts = tls.peer_certificate(der)
    assert facts is not None
    assert (facts.not_before, facts.not_after) == (start, end)
    import ipaddress

    def norm(h: str) -> str:
        try:
            return str(ipaddress.ip_address(h))
        except ValueError:
            return h

    assert [norm(n) for n in facts.names] == [norm(h) for h in hosts]
    assert facts.issuer
