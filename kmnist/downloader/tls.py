"""Why a TLS connection could not be set up, in words a user can act on.

OpenSSL's own words blamed the CA bundle for an expired certificate, cut the
host name off a mismatch and said ``(SSLError)`` for a plain-HTTP port. The
words here come from the verify code and, when verification failed, from the
server's certificate itself (its dates and names), which
:class:`kmnist.downloader.transfer._PeerOnFailure` fetches.

The certificate is read by a small DER reader (RFC 5280 4.1, the fields
named below, bounded in size and depth, never raising): the standard
library parses only certificates it verified (Python 3.13's
``get_unverified_chain`` gives DER too), and ``cryptography``, a compiled
dependency, is not one of ours for an error message.
"""

from __future__ import annotations

import ipaddress
import os
import re
import time
from dataclasses import dataclass
from typing import Any

from ..urls import redact

# OpenSSL's verify codes (X509_V_ERR_*) that say something a user can act on.
_EXPIRED, _NOT_YET_VALID = 10, 9
_NAME_MISMATCH = frozenset({62, 63, 64})  # host name, e-mail, IP address
_UNTRUSTED = frozenset({2, 18, 19, 20, 21})  # no trusted CA: self-signed, issuer not found
# Alerts and record-layer reasons (``[SSL: REASON]``), most specific first.
_NOT_TLS = ("WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG")
_OLD_TLS = ("PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS_AVAILABLE", "VERSION_TOO_LOW")
# Variables that OpenSSL reads but requests does not: a bundle named there
# was ignored, and the advice said nothing of it.
_UNREAD_CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")


def tls_words(exc: BaseException, host: str) -> str:
    """Why a TLS connection to ``host`` could not be set up, in words a user can act on.

    ``exc`` is requests' or urllib3's SSLError; what OpenSSL said is found in
    the exceptions it wraps, and the server's certificate (``_PeerOnFailure``
    fetched it when verification failed) gives the dates and names. One
    line: the names are the server's words, escaped.
    """
    from ..errors import one_line

    return one_line(_tls_words(exc, host))


def _tls_words(exc: BaseException, host: str) -> str:
    import ssl

    chain = _ssl_chain(exc)
    verify = next((e for e in chain if isinstance(e, ssl.SSLCertVerificationError)), None)
    if verify is not None:
        return _verify_words(verify, host)
    text = " ".join(str(e) for e in chain[-1:]) if chain else str(exc)
    reason = re.search(r"\[SSL: (\w+)\]", text)
    code = reason.group(1) if reason else ""
    if any(word in code for word in _NOT_TLS):
        return (
            "the server does not speak TLS there (a plain-HTTP port? then the mirror's"
            " URL starts with http://)"
        )
    if any(word in code for word in _OLD_TLS):
        return (
            "the server offers only a TLS version older than OpenSSL here accepts"
            " (TLS 1.0 or 1.1, retired in 2021); use another mirror"
        )
    if "CERTIFICATE_REQUIRED" in code:
        return "the server asks for a client certificate, which kmnist does not send"
    if "HANDSHAKE_FAILURE" in code:
        return (
            "the server refused the handshake (no TLS version or cipher in common,"
            " or it wants a client certificate, which kmnist does not send)"
        )
    if "ALERT_" in code:
        alert = code.split("ALERT_", 1)[1].lower().replace("_", " ")
        return f"the server ended the handshake with the alert {alert!r}"
    if any(isinstance(e, ssl.SSLEOFError) for e in chain) or "EOF" in code:
        return (
            "the server closed the connection while TLS was being set up (it may want"
            " a client certificate, which kmnist does not send)"
        )
    words = re.sub(r"\[SSL: \w+\]|\(?_ssl\.c:\d+\)?", "", _tls_text(text)).strip(" :")
    if not words:
        words = code.lower().replace("_", " ") or "an error OpenSSL gave no words for"
    return redact(words)[:160]


def _tls_text(text: str) -> str:
    """OpenSSL's own words out of an exception's text (``(1, '[SSL: X] words (_ssl.c:1)')``)."""
    m = re.search(r"(\[SSL: \w+\][^'\")]*)", text)
    return m.group(1) if m else text.splitlines()[0] if text else ""


def _ssl_chain(exc: BaseException) -> list[BaseException]:
    """The exceptions under ``exc``, down to the ssl module's (urllib3 keeps it in ``reason``)."""
    import ssl

    out: list[BaseException] = []
    todo: list[object] = [exc]
    while todo and len(out) < 24:
        e = todo.pop(0)
        if isinstance(e, BaseException) and not any(e is o for o in out):
            out.append(e)
            todo += [*e.args, getattr(e, "reason", None), e.__cause__, e.__context__]
    # The ssl module's exceptions last: they carry OpenSSL's words.
    return [e for e in out if not isinstance(e, ssl.SSLError)] + [
        e for e in out if isinstance(e, ssl.SSLError)
    ]


def _verify_words(verify: Any, host: str) -> str:
    """A certificate that did not verify: expired, for another name, or not trusted."""
    code = getattr(verify, "verify_code", 0)
    message = str(getattr(verify, "verify_message", "") or "").strip()
    peer: PeerCertificate | None = getattr(verify, "kmnist_peer", None)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    if code == _EXPIRED:
        if peer is not None and peer.not_after is not None:
            return (
                f"its certificate expired on {_day(peer.not_after)} (today is {today} here):"
                " the mirror must renew it; use another mirror meanwhile"
            )
        return "its certificate has expired (or the clock here is wrong: it says " + today + ")"
    if code == _NOT_YET_VALID:
        since = (
            f" until {_day(peer.not_before)}" if peer is not None and peer.not_before else " yet"
        )
        return f"its certificate is not valid{since}, and the clock here says {today}: check it"
    if code in _NAME_MISMATCH:
        shown = _shown_names(peer.names) if peer is not None and peer.names else ""
        if shown:
            return (
                f"its certificate is issued for {shown}, not {host}: give the mirror by a"
                " name its certificate is issued for"
            )
        return f"its certificate is not issued for {host}"
    if code in _UNTRUSTED:
        what = message or "not trusted"
        issuer = ""
        if code != 18 and peer is not None and peer.issuer:
            issuer = f", issued by {_shown_names((peer.issuer,))}"
        return f"its certificate is not trusted ({what}){issuer}; {_trust_advice(code)}"
    return f"its certificate is not accepted ({message or 'verify code ' + str(code)})"


def _trust_advice(code: int) -> str:
    """What to do for a certificate no CA here vouches for; not "set" what is already set."""
    bundle = next(
        (f"${n}" for n in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE") if os.environ.get(n)), None
    )
    if bundle:
        advice = f"{bundle} does not hold the CA that signed it"
    else:
        advice = "for a private CA, give its bundle in $REQUESTS_CA_BUNDLE"
        unread = [f"${n}" for n in _UNREAD_CA_VARIABLES if os.environ.get(n)]
        if unread:
            advice += f" ({' and '.join(unread)} not read here, as requests reads neither)"
    if code in (20, 21, 2):
        # The usual cause on a public mirror: a chain without its intermediate.
        advice += ", or the server does not send its intermediate certificate"
    return advice


def _day(when: Any) -> str:
    return str(when.strftime("%Y-%m-%d"))


# A certificate's names are the server's words: at most this many are shown,
# each at most _NAME_MAX characters, escaped.
_NAMES_SHOWN = 4
_NAME_MAX = 64


def _shown_names(names: tuple[str, ...]) -> str:
    from ..errors import one_line

    shown = []
    for name in names[:_NAMES_SHOWN]:
        name = one_line(name)
        shown.append(name if len(name) <= _NAME_MAX else name[: _NAME_MAX - 3] + "...")
    more = len(names) - _NAMES_SHOWN
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def handshake_timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` is a TLS handshake that got no answer (bounded by the connect timeout)."""
    return any("handshake operation timed out" in str(e) for e in _ssl_chain(exc))


@dataclass(frozen=True)
class PeerCertificate:
    """What a server's certificate says of itself: validity and names (a DER parse)."""

    not_before: Any  # datetime.datetime (UTC) or None
    not_after: Any
    names: tuple[str, ...]  # subjectAltName DNS names and IP addresses; else the CN
    issuer: str | None  # the issuer's common name (or organisation)


# The most a certificate may be (a chain's leaf is 1-2 KB): more is not parsed.
_CERT_MAX = 64 << 10


def peer_certificate(der: bytes) -> PeerCertificate | None:
    """The validity and names of a DER certificate; None for bytes that are not one.

    Enough of X.509 (RFC 5280 4.1) to say "expired on", "issued for" and
    "issued by"; the standard library parses only certificates it verified,
    and ``cryptography`` is not a dependency. Never raises: the bytes are the
    server's.
    """
    try:
        return _parse_certificate(der) if len(der) <= _CERT_MAX else None
    except (ValueError, IndexError, UnicodeError, OverflowError):
        return None


def _tlv(buf: bytes, i: int, end: int) -> tuple[int, int, int]:
    """The DER element at ``i``: (tag, first byte of its content, end of its content)."""
    if i + 2 > end:
        raise ValueError("truncated")
    tag, n = buf[i], buf[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        if not 0 < k <= 3 or i + k > end:
            raise ValueError("bad length")
        n = int.from_bytes(buf[i : i + k], "big")
        i += k
    if i + n > end:
        raise ValueError("overrun")
    return tag, i, i + n


def _children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    i = start
    while i < end and len(out) < 64:  # bounded: no certificate part has more
        tag, s, e = _tlv(buf, i, end)
        out.append((tag, s, e))
        i = e
    return out


_OID_CN = bytes.fromhex("550403")
_OID_O = bytes.fromhex("55040a")
_OID_SAN = bytes.fromhex("551d11")


def _parse_certificate(der: bytes) -> PeerCertificate | None:
    tag, s, e = _tlv(der, 0, len(der))
    if tag != 0x30:
        return None
    tag, s, e = _tlv(der, s, e)  # tbsCertificate
    if tag != 0x30:
        return None
    parts = _children(der, s, e)
    if parts and parts[0][0] == 0xA0:  # [0] version
        parts = parts[1:]
    if len(parts) < 6:
        return None
    _, issuer, validity, subject = parts[1], parts[2], parts[3], parts[4]
    times = _children(der, validity[1], validity[2])
    not_before = _time(der, times[0]) if len(times) == 2 else None
    not_after = _time(der, times[1]) if len(times) == 2 else None
    names: list[str] = []
    for tag, s, e in parts[6:]:
        if tag == 0xA3:  # [3] extensions
            names = _san(der, s, e)
    if not names:
        cn = _name_part(der, subject, _OID_CN)
        names = [cn] if cn else []
    issued_by = _name_part(der, issuer, _OID_CN) or _name_part(der, issuer, _OID_O)
    return PeerCertificate(not_before, not_after, tuple(names), issued_by)


def _time(der: bytes, element: tuple[int, int, int]) -> Any:
    import datetime

    tag, s, e = element
    text = der[s:e].decode("ascii")
    if tag == 0x17 and len(text) == 13:  # UTCTime: YYMMDDHHMMSSZ (RFC 5280 4.1.2.5.1)
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != 0x18 or len(text) != 15:  # GeneralizedTime: YYYYMMDDHHMMSSZ
        return None
    if not text[:14].isdigit() or text[14] != "Z":
        return None
    return datetime.datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(
        tzinfo=datetime.timezone.utc
    )


def _name_part(der: bytes, name: tuple[int, int, int], oid: bytes) -> str | None:
    """The value of attribute ``oid`` in an X.501 Name (SEQUENCE of SETs of pairs)."""
    for _, rs, re_ in _children(der, name[1], name[2]):
        for _, ps, pe in _children(der, rs, re_):
            pair = _children(der, ps, pe)
            if len(pair) == 2 and pair[0][0] == 0x06 and der[pair[0][1] : pair[0][2]] == oid:
                tag, s, e = pair[1]
                raw = der[s:e]
                return raw.decode("utf-16-be") if tag == 0x1E else raw.decode("utf-8")
    return None


def _san(der: bytes, start: int, end: int) -> list[str]:
    """subjectAltName's DNS names and IP addresses, from the [3] extensions."""
    tag, s, e = _tlv(der, start, end)
    for _, xs, xe in _children(der, s, e):
        parts = _children(der, xs, xe)
        if parts and parts[0][0] == 0x06 and der[parts[0][1] : parts[0][2]] == _OID_SAN:
            tag, vs, ve = parts[-1]  # extnValue, an OCTET STRING holding the SEQUENCE
            if tag != 0x04:
                return []
            tag, gs, ge = _tlv(der, vs, ve)
            names = []
            for gtag, ns, ne in _children(der, gs, ge):
                if gtag == 0x82:  # dNSName
                    names.append(der[ns:ne].decode("ascii"))
                elif gtag == 0x87 and ne - ns in (4, 16):  # iPAddress
                    names.append(str(ipaddress.ip_address(der[ns:ne])))
            return names
    return []
