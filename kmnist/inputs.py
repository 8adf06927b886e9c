"""Check what a user types before anything acts on it: one UsageError line per bad value.

Folders, mirror URLs and templates and catalogue paths come from
flags, environment variables and library calls. Each is checked here, at the
edge, so that a NUL byte or ``http://[::1`` is a usage error naming the value
(exit 2) and not a traceback from deep inside pathlib or urllib. Standard
library only: ``kmnist-download --help`` imports this.
"""

from __future__ import annotations

import os
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
