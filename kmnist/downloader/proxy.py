"""The proxy the environment sets, when it is what failed: its answer in words, its wait bounded.

requests said ``ProxyError`` for every answer to CONNECT that was not 200
(a 407 asking for a password, a 403, a 502), and a proxy that answered
with something else, closed the connection or said nothing was taken for
the mirror ("mirror.example.org:443 answered with something that is not
HTTP"), with a hint to pick another mirror. A SOCKS proxy that refused was
"connection to <mirror> refused". Here the failures that are the proxy's
are told as such, with what to change in the variable that names it.

The answer to CONNECT is read by http.client line by line, each read under
the socket's timeout only: a proxy that sent it a byte a second held the
run for good. ``TunnelDeadline`` bounds the whole answer by the connect
timeout, as the header deadline bounds a server's answer.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from typing import Any
from urllib.parse import unquote, urlsplit

from ..urls import redact
from .deadlines import DEADLINES

# The words that tell a proxy's failure: cli.failures looks for them to
# point its hint at the proxy, not at the mirrors.
PROXY_FAILED = "failed on the way to"

# Set on an exception raised while a proxy's tunnel was being asked for.
_TUNNEL_MARK = "kmnist_tunnel"


class TunnelDeadline:
    """A connection whose proxy must answer CONNECT within the connect timeout, whole.

    An exception out of the tunnel is marked, so that ``proxy_failure`` can
    tell the proxy's answer from the mirror's (both reach urllib3 as the
    same exceptions).
    """

    def _tunnel(self) -> None:
        limit = getattr(self, "timeout", None)
        sock: socket.socket | None = getattr(self, "sock", None)
        deadline = None
        if isinstance(limit, (int, float)) and sock is not None:

            def expire() -> None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

            deadline = DEADLINES.arm(limit, expire)
        try:
            super()._tunnel()  # type: ignore[misc]
        except Exception as exc:
            if deadline is not None and not DEADLINES.cancel(deadline):
                late = socket.timeout(f"the proxy's answer to CONNECT not complete in {limit:g} s")
                setattr(late, _TUNNEL_MARK, True)
                raise late from None
            setattr(exc, _TUNNEL_MARK, True)
            raise
        if deadline is not None and not DEADLINES.cancel(deadline):
            late = socket.timeout(f"the proxy's answer to CONNECT not complete in {limit:g} s")
            setattr(late, _TUNNEL_MARK, True)
            raise late


def proxy_for(url: str, proxies: dict[str, str]) -> str | None:
    """The proxy ``proxies`` (the environment's, for ``url``) sends ``url`` through, if any."""
    scheme = url.split("://", 1)[0].lower()
    return proxies.get(scheme) or proxies.get("all") or None


def variable_of(url: str, proxy: str) -> str:
    """The variable that names ``proxy`` for ``url`` (lowercase first, as requests reads them)."""
    scheme = url.split("://", 1)[0].lower()
    for name in (f"{scheme}_proxy", "all_proxy"):
        for spelled in (name, name.upper()):
            if os.environ.get(spelled) == proxy:
                return f"${spelled}"
    return f"${scheme}_proxy"


def proxy_failure(
    exc: BaseException, url: str, proxy: str, where: str, connect: float
) -> str | None:
    """Why ``proxy`` failed on the way to ``where``, when ``exc`` is its failure; else None.

    None leaves the words to the caller: the mirror's own answer through a
    working tunnel, or a SOCKS proxy's report of what the mirror did.
    """
    chain = _chain(exc)
    failed = f"the proxy {redact(proxy)} {PROXY_FAILED} {where}"
    var = variable_of(url, proxy)
    tunnel = [e for e in chain if getattr(e, _TUNNEL_MARK, False)]
    for e in chain:
        m = re.match(r"Tunnel connection failed: (\d{3})\b", str(e))
        if m:
            return proxy_refused(int(m.group(1)), url, proxy, where)
    if tunnel:
        return f"{failed}: {_tunnel_words(chain, connect)}"
    socks = [e for e in chain if type(e).__module__ == "socks"]
    if socks:
        return _socks_words(socks[0], chain, failed, where, connect)
    names = {type(e).__name__ for e in chain}
    if "ProxyError" not in names:
        return None
    text = " ".join(str(e) for e in chain)
    if "appears to only use HTTP and not HTTPS" in text:
        return f"{failed}: it speaks plain HTTP, not TLS: write its URL with http:// in {var}"
    if any(type(e).__name__.endswith("SSLError") or isinstance(e, _ssl_error()) for e in chain):
        from .tls import tls_words

        host = urlsplit(proxy if "://" in proxy else f"http://{proxy}").hostname or "?"
        return f"{failed}: TLS with the proxy failed: {tls_words(exc, host)}"
    if proxy.lower().startswith("https://") and any("handshake" in str(e) for e in chain):
        return (
            f"{failed}: no answer to the TLS handshake within {connect:g} s (most proxies are"
            f" written http://, even for https mirrors: is {var} meant to say https://?)"
        )
    return None


def proxy_refused(status: int, url: str, proxy: str, where: str) -> str:
    """A proxy that answered ``status`` (to CONNECT, or a 407 to a GET), in words."""
    words = status_words(status, proxy, variable_of(url, proxy))
    return f"the proxy {redact(proxy)} {PROXY_FAILED} {where}: {words}"


def status_words(status: int, proxy: str, var: str) -> str:
    """A proxy's refusal by status, with what would change it: a password for a 407."""
    words = _status_text(status)
    if status in (502, 503, 504):
        return f"it answered CONNECT with {words}: it could not reach the mirror itself"
    if status != 407:
        return f"it refused the tunnel: {words}"
    user, password = _credentials(proxy)
    if user is None:
        return (
            f"it asks for a user name and password ({words}): give them in {var},"
            " as http://user:password@host:port"
        )
    if password is None:
        return (
            f"it asks for a password ({words}), and {var} gives a user name without one,"
            " so none is sent: write user:password@ there"
        )
    hint = "; a %, /, ? or # in them is written %25, %2F, %3F, %23"
    if not (user + password).isascii():
        # requests sends Basic credentials in Latin-1 (_basic_auth_str); a
        # proxy that expects UTF-8 refuses them.
        hint += "; a character outside ASCII is sent in Latin-1, as requests sends it"
    return f"it refused the user name and password {var} gives ({words}){hint}"


def bad_credentials(value: str) -> str | None:
    """Why requests cannot send the user name or password in a proxy URL, or None.

    requests encodes them in Latin-1 for the Proxy-Authorization header: a
    character outside it ("パス") raised UnicodeEncodeError at every request,
    told as "an address it answered with cannot be used" of every file.
    """
    user, password = _credentials(value)
    for what, text in (("user name", user), ("password", password)):
        if text is None:
            continue
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            return (
                f" (its {what} has characters outside Latin-1, which requests cannot send"
                " to a proxy)"
            )
    return None


def _credentials(proxy: str) -> tuple[str | None, str | None]:
    """The user name and password of a proxy URL, %-decoded as requests decodes them."""
    try:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        user, password = parts.username, parts.password
    except ValueError:
        return None, None
    if not user:
        return None, None
    return unquote(user), (unquote(password) if password is not None else None)


def _tunnel_words(chain: list[BaseException], connect: float) -> str:
    import http.client

    if any(isinstance(e, (socket.timeout, TimeoutError)) for e in chain):
        return f"no whole answer to CONNECT within {connect:g} s"
    if any(isinstance(e, http.client.RemoteDisconnected) for e in chain):
        return "it closed the connection without answering CONNECT"
    if any(isinstance(e, http.client.HTTPException) for e in chain):
        return (
            "it answered CONNECT with something that is not HTTP (is it an HTTP proxy?"
            " a SOCKS one is written socks5://host:port)"
        )
    if any(isinstance(e, ConnectionResetError) for e in chain):
        return "it reset the connection without answering CONNECT"
    return "it closed the connection without answering CONNECT"


def _socks_words(
    e: BaseException, chain: list[BaseException], failed: str, where: str, connect: float
) -> str:
    """PySocks' failure: reaching the proxy, speaking SOCKS with it, or its word on the mirror."""
    kind = type(e).__name__
    message = str(getattr(e, "msg", "") or e)
    if kind in ("SOCKS5Error", "SOCKS4Error"):
        # The proxy's own report of the mirror ("0x05: Connection refused"): the mirror's fault.
        said = re.sub(r"^0x[0-9a-fA-F]+:\s*", "", message).strip() or kind
        return f"connection to {where} through the proxy failed: it says {said.lower()!a}"
    if kind == "SOCKS5AuthError":
        return f"{failed}: it refused the user name and password (or the way they were offered)"
    if any(isinstance(x, ConnectionRefusedError) for x in chain):
        return f"{failed}: refused"
    if any(isinstance(x, (socket.timeout, TimeoutError)) for x in chain):
        return f"{failed}: no SOCKS answer within {connect:g} s (is it a SOCKS proxy?)"
    if kind == "GeneralProxyError":
        return f"{failed}: it did not answer as a SOCKS proxy does ({message[:80].lower()!a})"
    return f"{failed}: {message[:120]!a}"


def _status_text(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _ssl_error() -> type[BaseException]:
    import ssl

    return ssl.SSLError


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (causes, contexts, exceptions among args, urllib3's reason)."""
    out: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo and len(out) < 24:
        e = todo.pop(0)
        if isinstance(e, BaseException):
            if not any(e is o for o in out):
                out.append(e)
                todo += [*e.args, getattr(e, "reason", None), e.__cause__, e.__context__]
        elif isinstance(e, tuple):
            todo += list(e)
    return out
