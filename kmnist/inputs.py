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
# A URL's scheme and a slash (RFC 3986; pathlib makes "http://h" "http:/h"):
# a folder name does not end in a colon, and "C:/data" has one letter.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")


def shown(value: object) -> str:
    """A value as it can be printed on any terminal (repr escapes NUL and undecodable bytes)."""
    return repr(os.fspath(value) if isinstance(value, os.PathLike) else value)


def shell_word(text: str) -> str:
    """``text`` quoted so that a POSIX shell gives it back, byte for byte.

    A name with bytes that are not UTF-8 (os.fsencode gives them back) or with
    a control character is written as $'...' with \\xNN escapes (bash, zsh,
    ksh and POSIX 2024): inside '...' the shell reads the escapes as backslashes.
    """
    import shlex
    import sys

    # Where the command will be printed: under LANG=C or PYTHONIOENCODING=ascii
    # the stream escapes "é", and inside '...' the escape named another folder.
    shows = getattr(sys.stderr, "encoding", None) or "utf-8"
    try:
        text.encode("utf-8")
        text.encode(shows)
        plain = text.isprintable()
    except (UnicodeEncodeError, LookupError):
        plain = False
    if plain:
        return shlex.quote(text)
    raw = os.fsencode(text)
    return (
        "$'"
        + "".join(chr(b) if 0x20 <= b < 0x7F and b not in b"'\\" else f"\\x{b:02x}" for b in raw)
        + "'"
    )


def download_command(*words: str, root: str | os.PathLike[str]) -> str:
    """``kmnist-download <words> --dir <root>`` as a shell runs it, for a message to print.

    Unquoted, a data folder ``~/my data`` was two words, and ``~`` went to
    the home folder: the command fetched elsewhere than the call looked.
    """
    folder = os.fspath(root)
    # argparse takes a value that starts with a dash for an option: --dir=-x.
    tail = [f"--dir={folder}"] if folder.startswith("-") else ["--dir", folder]
    return " ".join(map(shell_word, ["kmnist-download", *words, *tail]))


def is_url(text: str) -> bool:
    """Whether ``text`` starts as a URL does (a scheme, a colon, a slash): never a path."""
    return _URL.match(text) is not None


def not_a_path(url: str, kind: str = "folder") -> str:
    """What a URL given for a path is told, its ``user:password@`` hidden."""
    hidden = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]+:/+)[^/@]*@", r"\1***@", url)
    want = "the data folder is a folder" if kind == "folder" else f"name a {kind}"
    return f"{shown(hidden)} is a URL: {want} on this machine"


def check_folder(
    value: str | os.PathLike[str], source: str, *, given: str | None = None, kind: str = "folder"
) -> Path:
    """A folder path a filesystem could hold; ``source`` names where it came from.

    ``given`` is what the user typed, when ``value`` was derived from it;
    ``kind`` what the path names (``"file"`` for an archive), in the messages.
    A value that is no path at all (None, a number, a list) is a TypeError:
    ``os.fspath``'s own said neither which argument nor what it got.
    """
    try:
        text = os.fspath(value)
    except TypeError:
        raise TypeError(
            f"{source}: a {kind} is a str or an os.PathLike, not {described(value)}"
        ) from None
    label = f"{source} {shown(text if given is None else given)}"
    if not isinstance(text, str):
        raise UsageError(f"{label}: give the {kind} as text, not bytes")
    if not text.strip():
        raise UsageError(f"{source} is empty: name a {kind}")
    if "\0" in text:
        raise UsageError(f"{label}: a {kind} name cannot contain a NUL byte")
    if is_url(text):
        # "--dir http://host/kmnist" made a folder "http:" with the host's
        # name in it (the questions already refused a URL for the folder).
        said = f"{source} {not_a_path(text if given is None else given, kind)}"
        if source.startswith("$"):
            from .catalogue.names import MIRROR_ENV

            said += f" (a mirror to download from goes in ${MIRROR_ENV})"
        raise UsageError(said)
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


# --- library arguments: the checks torchvision and NumPy leave to a traceback ---

# A value shown in a message is cut here: a list of 100,000 indices, or a
# 1 MB string, is not printed whole into a one-line error.
SHOWN_MAX = 60


def described(value: object) -> str:
    """``int 3``, ``str 'x'``: a value's type and (short) repr, for a one-line message."""
    text = repr(value)
    if len(text) > SHOWN_MAX:
        text = text[: SHOWN_MAX - 3] + "..."
    return f"{type(value).__name__} {text}"


def _is_bool(value: object) -> bool:
    """True, False, numpy.bool_, or a 0-d boolean tensor: never an index or a count."""
    if isinstance(value, bool):
        return True
    return "bool" in str(getattr(value, "dtype", "")) or (
        type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")
    )


def check_flag(value: object, source: str) -> bool:
    """``value`` as a bool, when it is one (or NumPy's); else a TypeError.

    ``train="test"`` or ``train="false"`` are true and chose the training
    split without a word: only a real boolean says which split was meant.
    """
    if type(value) is int and value in (0, 1):
        return bool(value)  # 0 and 1 say which as clearly
    if not _is_bool(value) or getattr(value, "ndim", 0) != 0:
        raise TypeError(f"{source} must be True or False, not {described(value)}")
    return bool(value)


def check_count(value: object, source: str, *, minimum: int = 0) -> int:
    """An int (a NumPy int too, not a bool, a float or a string) of at least ``minimum``."""
    import operator

    if _is_bool(value):
        raise TypeError(f"{source} must be an integer, not {described(value)}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{source} must be an integer, not {described(value)}") from None
    if number < minimum:
        raise ValueError(f"{source} must be at least {minimum}, not {number}")
    return number


def check_index(value: object, length: int, source: str) -> int:
    """One item's position among ``length``, from the end when negative: 0 to length - 1.

    Python ints, NumPy integers and 0-d integer tensors; a slice, a list, a
    float, a bool or a string is a TypeError naming it, and a position past
    either end an IndexError saying the range (not an overflow from deep in
    torch, nor PIL's "Cannot handle this data type" for a slice of images).
    """
    import operator

    if _is_bool(value) or getattr(value, "ndim", 0) != 0:
        raise TypeError(f"{source} must be one integer, not {described(value)}")
    try:
        i = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{source} must be one integer, not {described(value)}") from None
    if not -length <= i < length:
        valid = f"from {-length} to {length - 1}" if length else "none: it is empty"
        raise IndexError(f"{source} {i} is out of range for {length:,} items ({valid})")
    return i + length if i < 0 else i


def check_callable(value: object, source: str) -> None:
    """None or a callable: a transform that is neither fails when it is given, not per item."""
    if value is not None and not callable(value):
        raise TypeError(f"{source} must be a callable or None, not {described(value)}")


def check_sequence(value: object, source: str, what: str) -> tuple[object, ...]:
    """A list (or other iterable, not a str) of ``what``, as a tuple.

    A single string is iterable too: ``mirrors="https://host/kmnist"`` was
    read as one mirror per character ("mirror h: no such folder", ...).
    """
    if isinstance(value, (str, bytes, bytearray)):
        raise TypeError(
            f"{source} must be a list of {what}, not one {described(value)}: put it in [...]"
        )
    try:
        return tuple(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{source} must be a list of {what}, not {described(value)}") from None


def kind_at(path: str | os.PathLike[str]) -> str | None:
    """What is at ``path``, links followed: "a folder", "a file", "a pipe",
    "a socket", "a device" or "a link to nothing"; None for nothing there (or
    nothing this user can see: the caller's own open says why).

    The one wording of every "X is a pipe, not a folder" (--dir,
    $KMNIST_DATA, the folder question, a dataset's folder, a file to load, a
    CA bundle), which each spelled its own way.
    """
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a link to nothing" if os.path.islink(path) else None
    except (OSError, ValueError):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    return "a socket" if stat.S_ISSOCK(mode) else "a device"


def not_a_folder(path: Path) -> str | None:
    """:func:`kind_at` when something is at ``path`` and it is no folder; else None."""
    kind = kind_at(path)
    return None if kind == "a folder" else kind


def check_folder_exists(path: Path, source: str) -> None:
    """A UsageError when ``path`` is there but is not a folder (a file, a pipe, a dead link).

    "missing <path>/kmnist/...; pass download=True" was said for a data
    folder that is a file: no download can put files below a file.
    """
    kind = not_a_folder(path)
    if kind is not None:
        raise UsageError(f"{source} {shown(str(path))} is {kind}, not a folder: name a folder")
