"""What exists: releases, datasets, their files with sizes and checksums, and mirrors.

Data only. Every figure here comes from independent published sources
(torchvision's ``mnist.py``, TensorFlow Datasets' ``url_checksums/kmnist.txt``,
the datasets-mila ``md5sums`` list) and was matched against real files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..errors import UnsupportedFormat, UsageError
from ..urls import redact, usable_host
from .names import CURRENT_RELEASE as CURRENT_RELEASE
from .names import MIRROR_ENV as MIRROR_ENV
from .names import RELEASES as RELEASES
from .names import SPLITS as SPLITS
from .names import closest, dataset_name, unknown


@dataclass(frozen=True)
class Structure:
    """What a file must look like when no checksum exists for it (the 2018 release).

    ``kind`` is ``"idx"`` (a gzip-compressed MNIST IDX file) or ``"npz"`` (a NumPy
    archive whose member ``arr_0`` has this shape); ``shape`` is the array's shape,
    ``(count,)`` for labels and ``(count, 28, 28)`` for images.
    """

    kind: str
    shape: tuple[int, ...]


# A file of unpublished size may bring at most this many bytes. The largest
# file of the family is the Kanji archive, about 310 MB (it has its own
# ceiling below); 1 GiB leaves room for any other and still stops a body that
# never ends long before it fills a disk.
UNKNOWN_SIZE_CEILING = 1 << 30


@dataclass(frozen=True)
class RemoteFile:
    """One published file: where it lives below a mirror, and how to check it.

    A file is checked by every figure it has: ``size``, ``sha256``, ``md5``
    and, for files of which no checksum was ever published, ``structure``.
    Pass your own to [download_files][kmnist.downloader.download_files] to
    fetch any file with your own checksums.

    Attributes:
        path: relative and POSIX-style (``kmnist/kmnist-test-imgs.npz``): the
            same path below a mirror's base URL and below the destination
            folder.
        size: the published size in bytes, if any.
        sha256: the published SHA-256, hex, if any.
        md5: the published MD5, hex, if any (where that is all there is).
        structure: the expected shape of a file with no published checksum.
        ceiling: where no size was published, the most bytes a body may bring.

    Raises:
        UsageError: ``path`` is empty, absolute, has ``..``, a NUL byte or a
            backslash: nothing may land outside the destination folder.

    Examples:
        >>> f = kmnist.RemoteFile("kmnist/kmnist_classmap.csv", 151)
        >>> f.name
        'kmnist_classmap.csv'
        >>> kmnist.RemoteFile("../etc/passwd")
        Traceback (most recent call last):
        ...
        kmnist.errors.UsageError: file path must be relative and inside the folder: '../etc/passwd'
    """

    path: str
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    structure: Structure | None = None
    # Where no size was published (the Kanji archive): the most bytes a body may
    # bring before it is cut, so a server that never stops cannot fill the disk.
    ceiling: int | None = None

    @property
    def most_bytes(self) -> int:
        """The published size, else the ceiling, else UNKNOWN_SIZE_CEILING."""
        if self.size is not None:
            return self.size
        return self.ceiling if self.ceiling is not None else UNKNOWN_SIZE_CEILING

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path or "\0" in self.path:
            raise UsageError(f"file path must be non-empty text without NUL: {self.path!r}")
        p = PurePosixPath(self.path)
        if p.is_absolute() or ".." in p.parts or not p.parts or "\\" in self.path:
            raise UsageError(f"file path must be relative and inside the folder: {self.path!r}")

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def verified(self) -> bool:
        """True when a published checksum pins the bytes, not just their shape."""
        return self.sha256 is not None or self.md5 is not None


@dataclass(frozen=True)
class Entry:
    """A file's place in the catalogue: which dataset, release, format and split."""

    file: RemoteFile
    dataset: str
    release: str
    format: str | None  # None: comes with every format (class maps)
    split: str | None  # None: not part of a split (class maps, the Kanji archive)
    kind: str  # "images", "labels", "classmap" or "archive"


@dataclass(frozen=True)
class Dataset:
    """A dataset as a user chooses it."""

    name: str
    title: str
    description: str
    formats: tuple[str, ...]  # the first is the default
    has_splits: bool = True
    # For display only, where a file's size was never published: a figure the
    # publisher gives in prose, never used to check bytes.
    approx_bytes: int | None = None

    @property
    def default_format(self) -> str:
        return self.formats[0]


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "kmnist",
            "Kuzushiji-MNIST",
            "70,000 28x28 images of 10 hiragana classes, 60k/10k, balanced",
            ("npz", "mnist"),
        ),
        Dataset(
            "k49",
            "Kuzushiji-49",
            "270,912 28x28 images of 49 hiragana classes, imbalanced",
            ("npz",),
        ),
        Dataset(
            "kkanji",
            "Kuzushiji-Kanji",
            "about 140,400 64x64 PNG images of 3,832 kanji classes, one tar",
            ("tar",),
            has_splits=False,
            approx_bytes=310_000_000,  # the original README: "available for download (310MB)"
        ),
    )
}

# Short enough that the interactive flow's answer line ("? Format of
# Kuzushiji-MNIST? mnist  20.3 MiB  ...") fits in 80 columns.
FORMATS: dict[str, str] = {
    "npz": "NumPy: np.load(f)['arr_0']",
    "mnist": "IDX .gz, drop-in for MNIST tools",
    "tar": "PNG files, a folder per class",
}


def _entry(
    path: str,
    size: int | None,
    *,
    dataset: str,
    format: str | None,
    split: str | None,
    kind: str,
    sha256: str | None = None,
    md5: str | None = None,
    release: str = CURRENT_RELEASE,
    structure: Structure | None = None,
    ceiling: int | None = None,
) -> Entry:
    """One catalogue row: the file (what its bytes must be) and what it is of."""
    return Entry(
        RemoteFile(path, size, sha256=sha256, md5=md5, structure=structure, ceiling=ceiling),
        dataset=dataset,
        release=release,
        format=format,
        split=split,
        kind=kind,
    )


# The February 2019 release, the one every current mirror serves.
_CURRENT: tuple[Entry, ...] = (
    # Kuzushiji-MNIST, MNIST format
    _entry(
        "kmnist/train-images-idx3-ubyte.gz",
        18165135,
        dataset="kmnist",
        format="mnist",
        split="train",
        kind="images",
        md5="bdb82020997e1d708af4cf47b453dcf7",
        sha256="51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
    ),
    _entry(
        "kmnist/train-labels-idx1-ubyte.gz",
        29497,
        dataset="kmnist",
        format="mnist",
        split="train",
        kind="labels",
        md5="e144d726b3acfaa3e44228e80efcd344",
        sha256="e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
    ),
    _entry(
        "kmnist/t10k-images-idx3-ubyte.gz",
        3041136,
        dataset="kmnist",
        format="mnist",
        split="test",
        kind="images",
        md5="5c965bf0a639b31b8f53240b1b52f4d7",
        sha256="edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
    ),
    _entry(
        "kmnist/t10k-labels-idx1-ubyte.gz",
        5120,
        dataset="kmnist",
        format="mnist",
        split="test",
        kind="labels",
        md5="7320c461ea6c1c855c0b718fb2a4b134",
        sha256="20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
    ),
    # Kuzushiji-MNIST, NumPy format
    _entry(
        "kmnist/kmnist-train-imgs.npz",
        18384171,
        dataset="kmnist",
        format="npz",
        split="train",
        kind="images",
        md5="a183fbc01ed9a345513b145673d3d0bb",
        sha256="11d69e17c8fd294905864aef177fd10c2185e5a3655f4da03d72ea5a64c17a72",
    ),
    _entry(
        "kmnist/kmnist-train-labels.npz",
        29700,
        dataset="kmnist",
        format="npz",
        split="train",
        kind="labels",
        md5="b0e1d240e8afec72b50437fc3bc5908a",
        sha256="a325c877035602cb9b9ba54f4194a2a1b5f718026a463db5b5e0cdc124c03720",
    ),
    _entry(
        "kmnist/kmnist-test-imgs.npz",
        3079479,
        dataset="kmnist",
        format="npz",
        split="test",
        kind="images",
        md5="dace6de62ca8b90843cc45366337d02e",
        sha256="692d824896bec8f3c357ebf7a0fe904ed67ac632ce953d0b58f7fbef7bb27d87",
    ),
    _entry(
        "kmnist/kmnist-test-labels.npz",
        5304,
        dataset="kmnist",
        format="npz",
        split="test",
        kind="labels",
        md5="3ae489a79983d0fe386152684e3b5412",
        sha256="660f13a4705431ea2a6391c41ecbe384cd0d932c595a101ec4f3b8989e785046",
    ),
    _entry(
        "kmnist/kmnist_classmap.csv",
        151,
        dataset="kmnist",
        format=None,
        split=None,
        kind="classmap",
        md5="899202f6e8dc29a321ac210a03d0f2f1",
        sha256="88ba4be4bd52d986ae100b425d5c28437c81829c87800c5832a2253edc758374",
    ),
    # Kuzushiji-49, NumPy format only. No sha256 was ever published for the two
    # image files; md5 and size pin them.
    _entry(
        "k49/k49-train-imgs.npz",
        66117696,
        dataset="k49",
        format="npz",
        split="train",
        kind="images",
        md5="7ac088b20481cf51dcd01ceaab89d821",
    ),
    _entry(
        "k49/k49-train-labels.npz",
        164485,
        dataset="k49",
        format="npz",
        split="train",
        kind="labels",
        md5="44a8e1b893f81e63ff38d73cad420f7a",
        sha256="fbfef4750ce9aa70b6072f0bca7daa9e80e2d79b379d5ae923265a63396260e4",
    ),
    _entry(
        "k49/k49-test-imgs.npz",
        10971201,
        dataset="k49",
        format="npz",
        split="test",
        kind="images",
        md5="d352e201d846ce6b94f42c990966f374",
    ),
    _entry(
        "k49/k49-test-labels.npz",
        27450,
        dataset="k49",
        format="npz",
        split="test",
        kind="labels",
        md5="4da6f7a62e67a832d5eb1bd85c5ee448",
        sha256="299be30ea32c2cc69318f5a5a579ffbffb0a6a1ccff134fb0ca834cd525ad6af",
    ),
    _entry(
        "k49/k49_classmap.csv",
        697,
        dataset="k49",
        format=None,
        split=None,
        kind="classmap",
        md5="f7d0d0391f68bdf0fe4cf160ceb85753",
        sha256="95f5a2cfbfba1721f566059cf77c22808898b63044a5f9a08de9d8a2950eed84",
    ),
    # Kuzushiji-Kanji: no size was published, so the hash alone checks it. The
    # ceiling is the published "310MB" with a third more: a body that goes on
    # past it is not the archive.
    _entry(
        "kkanji/kkanji.tar",
        None,
        dataset="kkanji",
        format="tar",
        split=None,
        kind="archive",
        sha256="6c65024b7b79de6661a049c89decfddae8bb908f71fcd7fdf1bd9a7f220a1cda",
        ceiling=400_000_000,
    ),
)


def _legacy(name: str, dataset: str, format: str, split: str, kind: str, n: int) -> Entry:
    shape = (n, 28, 28) if kind == "images" else (n,)
    return _entry(
        f"2018/{dataset}/{name}",
        None,
        dataset=dataset,
        format=format,
        split=split,
        kind=kind,
        release="2018",
        structure=Structure("idx" if format == "mnist" else "npz", shape),
    )


# The first release (October 2018), on Google Cloud Storage only, with older
# names and other image bytes. No checksum was ever published for it, so each
# file is checked by its structure, and the summary says it is unverified. It
# lives under <root>/2018/ so that it can never be mistaken for the current one.
_LEGACY: tuple[Entry, ...] = tuple(
    _legacy(name, ds, fmt, split, kind, n)
    for name, ds, fmt, split, kind, n in (
        ("train-images-idx3-ubyte.gz", "kmnist", "mnist", "train", "images", 60000),
        ("train-labels-idx1-ubyte.gz", "kmnist", "mnist", "train", "labels", 60000),
        ("t10k-images-idx3-ubyte.gz", "kmnist", "mnist", "test", "images", 10000),
        ("t10k-labels-idx1-ubyte.gz", "kmnist", "mnist", "test", "labels", 10000),
        ("kuzushiji10-train-imgs.npz", "kmnist", "npz", "train", "images", 60000),
        ("kuzushiji10-train-labels.npz", "kmnist", "npz", "train", "labels", 60000),
        ("kuzushiji10-test-imgs.npz", "kmnist", "npz", "test", "images", 10000),
        ("kuzushiji10-test-labels.npz", "kmnist", "npz", "test", "labels", 10000),
        ("kuzushiji49-train-imgs.npz", "k49", "npz", "train", "images", 184628),
        ("kuzushiji49-train-labels.npz", "k49", "npz", "train", "labels", 184628),
        ("kuzushiji49-test-imgs.npz", "k49", "npz", "test", "images", 46185),
        ("kuzushiji49-test-labels.npz", "k49", "npz", "test", "labels", 46185),
    )
)

ENTRIES: tuple[Entry, ...] = _CURRENT + _LEGACY

# Bytes that some mirrors still serve under a current name, recognised so that
# an error (and the folder audit) can say what they are.
KNOWN_STALE: dict[str, str] = {
    "9e19e2c2cc48cc89322e26acda94ae1b6534a91cdfc0b35e85eb90d2c86830e8": (
        "the 2018 (v1) release of kmnist-test-imgs.npz"
    ),
}
# The same files by name and size: a mirror announces the size before any byte
# is read, and the download refuses it there (the sha256 above, when no size
# was announced). --verify names the bytes; the download names the size.
KNOWN_STALE_SIZES: dict[tuple[str, int], str] = {
    ("kmnist-test-imgs.npz", 3069285): "the 2018 (v1) release of kmnist-test-imgs.npz",
}


@dataclass(frozen=True)
class Mirror:
    """A place that serves files: a URL template with ``{path}`` or ``{name}``.

    Attributes:
        name: what messages call it (``codh-https``).
        template: the URL of any file, with ``{path}`` (``<dataset>/<file>``)
            or ``{name}`` (the file name) in it.
        releases: the data releases it serves.
        carries: the paths it has (``None``: every file of its releases), so
            that a partial mirror is only asked for what it has.
        builtin: one of the built-in list.
    """

    name: str
    template: str
    releases: frozenset[str] = frozenset({CURRENT_RELEASE})
    carries: frozenset[str] | None = None
    builtin: bool = field(default=False, compare=False)

    def url(self, file: RemoteFile) -> str:
        return self.template.format(path=file.path, name=file.name)

    def has(self, file: RemoteFile, release: str | None = None) -> bool:
        if self.carries is not None:
            return file.path in self.carries
        return release is None or release in self.releases

    @property
    def is_local(self) -> bool:
        return not self.template.startswith(("http://", "https://"))


_OFFICIAL = "codh.rois.ac.jp/kmnist/dataset/{path}"
_KMNIST_MNIST = frozenset(
    e.file.path for e in _CURRENT if e.dataset == "kmnist" and e.format == "mnist"
)
# Whether the Internet Archive holds a given file is not known in advance; a
# partial timestamp makes it answer with the capture nearest to that date, and
# ``id_`` returns the archived bytes without rewriting. Checksums decide.
_WAYBACK = "https://web.archive.org/web/2020id_/http://" + _OFFICIAL
_LEGACY_GCS = "https://storage.googleapis.com/kuzushiji-mnist/{name}"

# Order: the official host first (it is the source, and it carries every file),
# over https, then over http for networks that block its TLS endpoint; then
# byte-identical copies of the MNIST-format files on two CDNs that stay
# reachable when the official host is not; the Internet Archive last, because it
# is slow and rate-limited. A mirror that fails to connect is skipped for the
# rest of the run, so a dead official host costs one timeout, not one per file.
BUILTIN_MIRRORS: tuple[Mirror, ...] = (
    Mirror("codh-https", "https://" + _OFFICIAL, builtin=True),
    Mirror("codh-http", "http://" + _OFFICIAL, builtin=True),
    Mirror(
        "gcs-s4tf",
        "https://storage.googleapis.com/s4tf-hosted-binaries/datasets/KMNIST/{name}",
        carries=_KMNIST_MNIST,
        builtin=True,
    ),
    Mirror(
        "huggingface",
        "https://huggingface.co/datasets/tanganke/kmnist/resolve/"
        "53810959241e8f35890445245170c8cec0672f81/raw/{name}",
        carries=_KMNIST_MNIST,
        builtin=True,
    ),
    Mirror("wayback", _WAYBACK, builtin=True),
    Mirror("gcs-2018", _LEGACY_GCS, releases=frozenset({"2018"}), builtin=True),
    Mirror(
        "wayback-2018",
        "https://web.archive.org/web/2018id_/" + _LEGACY_GCS,
        releases=frozenset({"2018"}),
        builtin=True,
    ),
)


def user_mirror(spec: str, source: str = "--mirror") -> Mirror:
    """A mirror from what a user typed: a base URL, a URL template, or a folder.

    A base (``https://host/kmnist``, ``file:///srv/kmnist``, ``/srv/kmnist``)
    serves the official layout ``<base>/<dataset>/<file>``. A template with
    ``{path}`` or ``{name}`` says where each file is, for flat mirrors; no
    other field is allowed. ``source`` (the flag, variable or argument it
    came from) is named in the UsageError for a bad one, which never shows
    its password.

    One no request could use is that UsageError before anything is fetched,
    from the command, the questions and the library alike: port 0 (requests
    went to port 80), a host no resolver takes (a 100 KB name, ``a,http``),
    ``~nosuchuser/...`` (a folder of that name), mirrors joined by commas,
    semicolons or colons (one mirror of that name, tried and failed per file).
    """
    import re
    from urllib.parse import urlsplit

    text = spec.strip() if isinstance(spec, str) else spec
    if isinstance(text, str) and "\0" not in text:  # the parser refuses a NUL
        _check_not_joined(text, source)
        head = re.split(r"[/\\]", text, maxsplit=1)[0]
        if head.startswith("~") and os.path.expanduser(head) == head:
            raise UsageError(
                f"{source} {redact(text)!a}: no user {head[1:]!r} here, so its ~ names"
                " nothing: write the folder in full"
            )
    try:
        mirror = _parse_mirror(spec, source)
    except UsageError as exc:
        # The parser's messages quote what was typed, password and all.
        raise UsageError(redact(str(exc))) from None
    if not mirror.is_local:
        parts = urlsplit(mirror.template.format(path="kmnist/x.npz", name="x.npz"))
        if parts.port == 0:
            raise UsageError(
                f"{source} {mirror.name!a}: port 0 is no port (requests went to port 80"
                " instead): give the mirror's port"
            )
        host = parts.hostname or ""
        if not usable_host(host):
            cut = host[:60] + ("..." if len(host) > 60 else "")
            raise UsageError(f"{source} {mirror.name[:80]!a}: {cut!a} is not a host name")
    return mirror


# How a mirror typed at the interactive question is named in a refusal (not
# "--mirror", a flag the user had not typed).
TYPED_MIRROR = "the mirror"


def _check_not_joined(text: str, source: str) -> None:
    """UsageError for mirrors joined in one (``a,http://b``, ``/a:/b``), but a folder so named."""
    import re

    joined = re.search(r"[,;](?=\s*(?:[A-Za-z][A-Za-z0-9+.-]*://|[/~]))", text)
    if joined is None and "://" not in text and text[:1] in ("/", "~", "."):
        joined = re.search(r":(?=[/~])", text)  # PATH-style: /a:/b
    if joined is not None and not os.path.exists(os.path.expanduser(text)):
        one = {
            "--mirror": "give --mirror once per mirror",
            f"${MIRROR_ENV}": "separate mirrors with spaces",
            TYPED_MIRROR: "type one mirror",
        }.get(source, "give one mirror per item of the list")
        raise UsageError(f"{source} {redact(text)!a}: {one}, not {joined.group(0)!r}")


def _parse_mirror(spec: str, source: str) -> Mirror:
    """:func:`user_mirror`'s parse, before the checks that a request could use it."""
    from ..inputs import check_folder, check_schemeless, check_template, check_url

    if not isinstance(spec, str):
        raise UsageError(f"{source}: a mirror is text, not {type(spec).__name__}")
    spec = given = spec.strip()
    if not spec:
        raise UsageError(f"{source}: empty mirror")
    is_template = check_template(spec, source)
    check_schemeless(spec, source)  # "127.0.0.1:18931" is a URL, not a folder to look in
    scheme, sep, rest = spec.partition("://")
    scheme = scheme.lower() if sep else ""  # schemes are case-insensitive: HTTP:// too
    if scheme == "file":
        spec = _file_url_path(rest, source, given)
    elif scheme in ("http", "https"):
        spec = f"{scheme}://{rest}"
    elif sep:
        raise UsageError(
            f"{source}: unsupported mirror {spec!r}: use http://, https://, file:// or a folder"
        )
    elif spec[:5].lower() == "file:" and not os.path.lexists(spec):
        # RFC 8089's short form "file:/srv/kmnist" (no host) was looked for as
        # a folder named "file:" here, and "mirror could not be reached".
        if not spec[5:].startswith("/"):
            raise UsageError(
                f"{source} {given!r}: a file: URL names a folder from / (file:///srv/kmnist);"
                " for a folder from here, give its path"
            )
        scheme, spec = "file", _file_url_path(spec[5:], source, given)
    elif spec.lower().startswith(("http:", "https:")):
        # "http:/host" or "http:host" was looked for as a folder of that name.
        raise UsageError(f"{source} {given!r}: the // after the scheme is missing")
    if is_template:
        template = spec
    elif scheme in ("http", "https"):
        # Not spec.rstrip("/"): "http://" became "http:", then a folder named so.
        template = f"{scheme}://{rest.rstrip('/')}/{{path}}"
    else:
        template = spec.rstrip("/") + "/{path}"
    sample = template.format(path="kmnist/x.npz", name="x.npz")
    if template.startswith(("http://", "https://")):
        check_url(sample, source, given=given)
    else:
        # Checked as typed first: expanduser looks "~name" up in the password
        # database, and "~\0" there was a ValueError (a traceback).
        check_folder(sample, source, given=given)
        check_folder(os.path.expanduser(sample), source, given=given)
        template = os.path.abspath(os.path.expanduser(template))
    # The name is what is printed (errors, summaries, plans): never a password.
    return Mirror(redact(spec), template, releases=frozenset(RELEASES))


def _file_url_path(rest: str, source: str, given: str) -> str:
    """The folder a ``file://`` URL names (RFC 8089): host empty or localhost, %XX decoded.

    A ``%7B`` or ``%7D`` is a brace of the folder's name, never a template's
    field (it was ``{`` in a template: a ValueError traceback); a byte that is
    not UTF-8 (``%FF``) is that byte of the name, as the filesystem has it
    (it was U+FFFD, a folder of another name). ``?`` and ``#`` end a URL's
    path: a folder so named is written ``%3F``, ``%23``.
    """
    import re
    from urllib.parse import unquote

    host, slash, path = rest.partition("/")
    if host.lower() not in ("", "localhost"):
        raise UsageError(
            f"{source} {given!r}: names host {host!r}; a file:// mirror is on this machine"
        )
    if not slash:
        raise UsageError(f"{source} {given!r}: names no folder")
    cut = re.search(r"[?#]", path)
    if cut is not None:
        raise UsageError(
            f"{source} {given!r}: a file:// URL has no query or fragment ({cut.group(0)!r}"
            " ends its path); a folder named with it is written %3F or %23"
        )
    # Braces given as %XX are doubled, as a template writes a literal brace.
    path = re.sub(r"%7[Bb]", "%7B%7B", re.sub(r"%7[Dd]", "%7D%7D", path))
    return unquote("/" + path, errors="surrogateescape")


def check_mirrors(mirrors: object) -> tuple[str | Mirror, ...] | None:
    """A library caller's ``mirrors=``: None, or a list of mirrors, as a tuple.

    Not one string (it was read as one mirror per character); a generator
    is read once; a ``Path`` is a folder.
    """
    from ..inputs import check_sequence, described

    if mirrors is None:
        return None
    checked = check_sequence(mirrors, "mirrors", "mirrors (URLs, folders or kmnist.Mirror)")
    for n, m in enumerate(checked):
        if not isinstance(m, (str, os.PathLike, Mirror)):
            raise TypeError(
                f"mirrors[{n}] must be a URL, a folder or a kmnist.Mirror, not {described(m)}"
            )
    return tuple(os.fspath(m) if isinstance(m, os.PathLike) else m for m in checked)  # type: ignore[misc]


def check_catalogue(catalogue: object) -> tuple[Entry, ...] | None:
    """A library caller's ``catalogue=``: None, or its entries as a tuple (a generator read once).

    Anything else reached the look-ups as "'int' object has no attribute
    'dataset'"; a generator was used up by the first look-up.
    """
    from ..inputs import check_sequence, described

    if catalogue is None:
        return None
    checked = check_sequence(catalogue, "catalogue", "kmnist.catalogue.manifest.Entry")
    for n, e in enumerate(checked):
        if not isinstance(e, Entry):
            raise TypeError(
                f"catalogue[{n}] must be a kmnist.catalogue.manifest.Entry, not {described(e)}"
            )
    return tuple(e for e in checked if isinstance(e, Entry))


def mirrors_from(specs: list[str] | None, env: dict[str, str] | None = None) -> tuple[Mirror, ...]:
    """The mirrors of a run: the user's (flags, then ``KMNIST_MIRROR``) or the built-in ones.

    A user's list replaces the built-in one, so that an offline site never waits
    on a dead host.
    """
    if specs:
        return once_each(user_mirror(s) for s in specs)
    env_value = (os.environ if env is None else env).get(MIRROR_ENV, "")
    if env_value.split():
        return once_each(user_mirror(s, f"${MIRROR_ENV}") for s in env_value.split())
    return BUILTIN_MIRRORS


def once_each(mirrors: Iterable[Mirror]) -> tuple[Mirror, ...]:
    """The mirrors in order, each place once (the first of the same template kept).

    The same mirror given twice (``--mirror X --mirror X``, or a folder and its
    ``file://`` URL) would be tried twice per file and said twice in each error.
    """
    seen: set[str] = set()
    out = []
    for m in mirrors:
        if m.template not in seen:
            seen.add(m.template)
            out.append(m)
    return tuple(out)


def select(
    datasets: list[str] | tuple[str, ...] | str,
    format: str | None = None,
    split: str = "all",
    release: str = CURRENT_RELEASE,
    *,
    entries: Sequence[Entry] | None = None,
) -> tuple[Entry, ...]:
    """The entries a request names. Raises a UsageError naming the valid choices.

    ``entries``: the catalogue to choose from; None, this manifest's (looked up now).
    """
    if entries is None:
        entries = ENTRIES
    names = [datasets] if isinstance(datasets, str) else list(datasets)
    # KMNIST, Kuzushiji-49: any case, or the name another library uses.
    names = [dataset_name(n, (*DATASETS, "all")) for n in names]
    if release not in RELEASES:
        raise UsageError(f"unknown release {release!r} (choose from {', '.join(RELEASES)})")
    if split not in SPLITS:
        # Exact, as torchvision's are; "TEST" or " test" gets a guess.
        raise UnsupportedFormat(unknown("split", split, SPLITS))
    if "all" in names:
        # "all" means every dataset the release has (Kanji came after 2018).
        names = [
            n for n in DATASETS if any(e.dataset == n and e.release == release for e in entries)
        ]
    chosen: list[Entry] = []
    for name in dict.fromkeys(names):  # keeps order, drops repeats
        ds = DATASETS[name]
        in_release = [e for e in entries if e.dataset == name and e.release == release]
        if not in_release:
            raise UnsupportedFormat(f"{name} is not part of the {release} release")
        fmt = format or ds.default_format
        available = tuple(f for f in ds.formats if any(e.format == f for e in in_release))
        if fmt not in available:
            guess = closest(fmt, available)  # "NPZ", "np": a guess, as for a split
            hint = f"; did you mean {guess!r}?" if guess else ""
            raise UnsupportedFormat(
                f"{name} has no {fmt!r} format in the {release} release{hint} "
                f"(available: {', '.join(available)})"
            )
        chosen.extend(
            e
            for e in in_release
            if e.format in (None, fmt) and (split == "all" or e.split in (None, split))
        )
    return tuple(chosen)


def files_of(entries: tuple[Entry, ...] | list[Entry]) -> list[RemoteFile]:
    return [e.file for e in entries]


def entry_for(path: str, *, entries: Sequence[Entry] | None = None) -> Entry | None:
    """The catalogue entry of a relative path, if it is one of ours (or of ``entries``)."""
    for e in ENTRIES if entries is None else entries:
        if e.file.path == path:
            return e
    return None
