"""Check what a user types before anything acts on it: one UsageError line per bad value.

Folders, mirror URLs and templates and catalogue paths come from
flags, environment variables and library calls. Each is checked here, at the
edge, so that a NUL byte or ``http://[::1`` is a usage error naming the value
(exit 2) and not a traceback from deep inside pathlib or urllib. Standard
library only: ``kmnist-download --help`` imports this.
"""

from __future__ import annotations

import os
import re
import string
from pathlib import Path
from urllib.parse import urlsplit

from .errors import UsageError

# Deeper than any real data folder, and well below what breaks pathlib:
# Path.mkdir(parents=True) recurses once per missing level, and a --dir
# 2,000 levels deep ended in a RecursionError.
MAX_DEPTH = 256
# POSIX's NAME_MAX and Linux's PATH_MAX: the usual limits of a local disk.
MAX_NAME = 255
MAX_PATH = 4096

TEMPLATE_FIELDS = ("path", "name")


def shown(value: object) -> str:
    """A value as it can be printed on any terminal (repr escapes NUL and undecodable bytes)."""
    return repr(os.fspath(value) if isinstance(value, os.PathLike) else value)


def check_folder(value: str | os.PathLike[str], source: str, *, given: str | None = None) -> Path:
    """A folder path a filesystem could hold; ``source`` names where it came from.

    ``given`` is what the user typed, when ``value`` was derived from it.
    """
    text = os.fspath(value)
    label = f"{source} {shown(text if given is None else given)}"
    if not isinstance(text, str):
        raise UsageError(f"{label}: give the folder as text, not bytes")
    if not text.strip():
        raise UsageError(f"{source} is empty: name a folder")
    if "\0" in text:
        raise UsageError(f"{label}: a folder name cannot contain a NUL byte")
    try:
        encoded = os.fsencode(text)
    except UnicodeError:
        raise UsageError(f"{label}: not a name this system can encode") from None
    path = Path(text)
    if len(path.parts) > MAX_DEPTH:
        raise UsageError(
            f"{source} is {len(path.parts):,} folders deep (at most {MAX_DEPTH}): "
            "choose a shorter path"
        )
    if len(encoded) >= MAX_PATH:
        raise UsageError(
            f"{source} is {len(encoded):,} bytes long (at most {MAX_PATH - 1}): "
            "choose a shorter path"
        )
    long = [p for p in path.parts if len(os.fsencode(p)) > MAX_NAME]
    if long:
        raise UsageError(
            f"{source}: the name {shown(long[0][:40] + '...')} is longer than {MAX_NAME} bytes"
        )
    return path


def check_template(template: str, source: str) -> bool:
    """A mirror template may name only {path} and {name}; other braces are an error.

    Returns whether it names either (``{{path}}`` is a literal, not a field).
    """
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template)]
    except ValueError as exc:
        raise UsageError(
            f"{source} {shown(template)}: {exc} (a template names {{path}} or {{name}}; "
            "write a literal brace as {{ or }})"
        ) from None
    for name, spec, conv in fields:
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS or spec or conv:
            field = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            raise UsageError(
                f"{source} {shown(template)}: unknown field {shown(field)} "
                "(a template may name only {path} and {name})"
            )
    return any(name for name, _, _ in fields)


def check_url(url: str, source: str, *, given: str | None = None) -> None:
    """An http(s) URL with a host (brackets closed, a port that is a number).

    ``given`` is what the user typed, named in the message (``url`` may be a
    template filled in with a sample path).
    """
    label = f"{source} {shown(url if given is None else given)}"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url) or " " in url:
        raise UsageError(f"{label}: a URL cannot contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise UsageError(f"{label}: not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"{label}: use http://, https://, file:// or a folder")
    if not host:
        raise UsageError(f"{label}: no host name in the URL")


# What a mirror typed without its scheme starts with: host:port (a name, an
# IPv4 address or a bracketed IPv6 one, and a port of 1 to 5 digits), or a
# dotted name whose last label is letters (a TLD) or an IPv4 address, followed
# by a path. "data/kmnist" and "v1.2/kmnist" are folders; "127.0.0.1:18931",
# "localhost:8000/kmnist" and "mirror.example.org/kmnist" are not.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_IPV4 = r"(?:\d{1,3}\.){3}\d{1,3}"
_HOST_PORT = re.compile(
    rf"(?:{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9A-Fa-f:.]+\]):\d{{1,5}}(?:/.*)?", re.DOTALL
)
_NAME_PATH = re.compile(rf"(?:(?:{_LABEL}\.)+[A-Za-z]{{2,63}}|{_IPV4})/.*", re.DOTALL)
# Clearly a path, whatever follows: absolute, relative to here or home, a file: URL.
_PATH_STARTS = ("/", "./", "../", "~", "file:", ".\\", "..\\", "\\")


def schemeless_url(spec: str) -> str | None:
    """The http:// URL that ``spec`` most likely is, when it was typed without a scheme.

    None when ``spec`` has a scheme, is clearly a path (``/``, ``./``, ``~``,
    ``file:``, a drive letter) or names a folder that exists: a folder named
    like a host is still a folder when it is there.
    """
    if "://" in spec or spec.startswith(_PATH_STARTS) or re.match(r"[A-Za-z]:[\\/]", spec):
        return None
    if not (_HOST_PORT.fullmatch(spec) or _NAME_PATH.fullmatch(spec)):
        return None
    base = spec.split("{", 1)[0]
    if base and os.path.isdir(base):
        return None
    return "http://" + (spec if "/" in spec else spec + "/")


def check_schemeless(spec: str, source: str) -> None:
    """A UsageError when ``spec`` is a URL without its scheme (see :func:`schemeless_url`)."""
    url = schemeless_url(spec)
    if url is not None:
        raise UsageError(
            f"{source} {shown(spec)} has no http:// or https://: did you mean {url} ? "
            f"(for a folder: ./{spec})"
        )
