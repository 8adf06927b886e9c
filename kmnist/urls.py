"""What a URL may show and what it stands for: credentials removed, and its origin.

A mirror URL may carry ``user:password@``; requests uses it, and nothing we
print (errors, summaries, plans, lists, JSON, ``-v``) ever shows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

# userinfo is everything between "//" and the last "@" before the path.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s]*@")


def redact(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL in it replaced by ``***@``."""
    if "@" not in text:
        return text  # the common case, without a regex
    return _USERINFO.sub(r"\1***@", text)


@dataclass(frozen=True)
class Origin:
    """Scheme, host and port: what one connection reaches, and what fails together.

    A dead port 443 says nothing of port 80 on the same host (the network that
    drops TLS is why the official host is also tried over http).
    """

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


_DEFAULT_PORT = {"http": 80, "https": 443}


def origin(url: str) -> Origin | None:
    """The origin of an http(s) URL; None for a folder or an unparsable URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORT or not parts.hostname:
        return None
    return Origin(scheme, parts.hostname, port if port is not None else _DEFAULT_PORT[scheme])


# What a host name may hold: RFC 1123 letters, digits, hyphens and dots, and
# the underscore some intranets use (an internationalised name after IDNA).
_HOST_NAME = re.compile(r"[A-Za-z0-9._-]+")


def usable_host(host: str) -> bool:
    """Whether a resolver could take ``host``: an IP address, or a name of valid labels.

    An IPv6 literal in brackets (its parser has checked it) or with a zone
    (``fe80::1%eth0``); a name of labels of 1 to 63 characters, 253 in all,
    an internationalised one as IDNA gives it. A 100 KB name or ``a,http``
    was tried, and failed, once per file.
    """
    import ipaddress

    if host.startswith("["):
        return True
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return True
    except ValueError:
        pass
    try:
        name = host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = name.rstrip(".").split(".")
    return (
        bool(_HOST_NAME.fullmatch(name))
        and len(name) <= 253
        and all(0 < len(label) <= 63 for label in labels)
    )
