"""``--check-mirrors``: ask each mirror whether it has each selected file, fetching one byte.

The first thing to run when a download fails: a table of mirror x file
(reachable, HTTP status, size announced vs published, latency) that says
which mirror would serve what, without downloading anything.
"""

from __future__ import annotations

import enum
import os
import stat
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..catalogue.manifest import CURRENT_RELEASE, Entry, Mirror, RemoteFile, entry_for
from ..urls import origin, redact
from . import headers as hdr

if TYPE_CHECKING:
    import requests


class Verdict(str, enum.Enum):
    OK = "ok"  # answers with the published size
    SIZE_UNKNOWN = "ok, size not published"  # answers; nothing to compare with
    WRONG_SIZE = "wrong size"  # another release, a broken copy, a page
    NO_SIZE = "size not announced"  # answers, but says no size: a download decides
    MISSING = "missing"  # a final HTTP status (404, 403, ...)
    FAILING = "failing"  # a status a later try may cure (5xx, 429)
    DOWN = "down"  # no connection


GOOD = frozenset({Verdict.OK, Verdict.SIZE_UNKNOWN})


@dataclass(frozen=True)
class Probe:
    """One mirror's answer about one file."""

    mirror: str
    file: str
    url: str  # without credentials
    verdict: Verdict
    status: int | None
    announced: int | None
    published: int | None
    seconds: float
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "mirror": self.mirror,
            "file": self.file,
            "url": self.url,
            "verdict": self.verdict.name.lower(),
            "reachable": self.verdict is not Verdict.DOWN,
            "status": self.status,
            "announced_size": self.announced,
            "published_size": self.published,
            "seconds": round(self.seconds, 3),
            "detail": self.detail,
        }


def check_mirrors(
    files: Sequence[RemoteFile],
    mirrors: Sequence[Mirror],
    *,
    session: requests.Session,
    timeout: tuple[float, float],
    log: Callable[[str], None] | None = None,
    catalogue: Sequence[Entry] | None = None,
) -> list[Probe]:
    """Probe every (mirror, file) pair a run could use; mirrors at once, files in turn.

    ``catalogue``: where a file's release is looked up, which says whether a
    mirror carries it (None: the manifest's).
    """

    def one_mirror(m: Mirror) -> list[Probe]:
        out: list[Probe] = []
        down: str | None = None  # an origin that did not connect is not asked again
        for f in files:
            entry = entry_for(f.path, entries=catalogue)
            if not m.has(f, entry.release if entry else CURRENT_RELEASE):
                continue
            if down is not None:
                out.append(_row(m, f, Verdict.DOWN, None, None, 0.0, f"{down} (as above)"))
                continue
            p = _probe(m, f, session=session, timeout=timeout, log=log)
            if p.verdict is Verdict.DOWN:
                down = p.detail
            out.append(p)
        return out

    from .transfer import Waiting, waiting_in

    # A Ctrl-C shuts down the probes still connecting or waiting for an
    # answer: leaving the pool waits for its threads, which otherwise held the
    # Ctrl-C for a silent mirror's read timeout (29.8 s of 30 before this).
    waiting = Waiting()

    def stoppable(m: Mirror) -> list[Probe]:
        with waiting_in(waiting):
            return one_mirror(m)

    # One thread per origin's mirrors would be stricter; per mirror keeps the
    # wait for several dead mirrors at one timeout, not their sum.
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(mirrors)))) as pool:
        try:
            per_mirror = list(pool.map(stoppable, mirrors))
        except BaseException:
            waiting.abort()
            raise
    return [p for rows in per_mirror for p in rows]


def _row(
    m: Mirror,
    f: RemoteFile,
    verdict: Verdict,
    status: int | None,
    announced: int | None,
    seconds: float,
    detail: str,
) -> Probe:
    url = redact(m.url(f))
    return Probe(m.name, f.path, url, verdict, status, announced, f.size, seconds, _bounded(detail))


# A row's reason is printed on one line of a table: a server's words in it
# (a 64 KiB status line quoted by http.client) made a row of 64 KiB.
DETAIL_LIMIT = 300


def _bounded(text: str, limit: int = DETAIL_LIMIT) -> str:
    """``text`` on one line (control characters escaped) and at most ``limit`` characters."""
    from ..errors import one_line

    text = one_line(redact(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _probe(
    m: Mirror,
    f: RemoteFile,
    *,
    session: requests.Session,
    timeout: tuple[float, float],
    log: Callable[[str], None] | None,
) -> Probe:
    url = m.url(f)
    began = time.monotonic()
    if m.is_local:
        try:
            st = os.stat(url)
        except OSError as exc:
            return _row(m, f, Verdict.MISSING, None, None, 0.0, exc.strerror or "not there")
        if not stat.S_ISREG(st.st_mode):
            # A folder's or a pipe's st_size is no file's size: it was "wrong size,
            # announces 4096 bytes", and a download would not find a file there.
            return _row(m, f, Verdict.MISSING, None, None, _since(began), "not a regular file")
        from .transfer import Refused, Transient, _open_local

        # Opened as a download opens it: a file this user may not read was "ok"
        # here, then refused by the download.
        try:
            _open_local(url, 0).close()
        except Refused as exc:
            return _row(m, f, Verdict.MISSING, None, None, _since(began), str(exc))
        except Transient as exc:
            return _row(m, f, Verdict.FAILING, None, None, _since(began), str(exc))
        return _verdict(m, f, None, st.st_size, time.monotonic() - began, "")
    import requests

    from .proxy import proxy_for, proxy_refused
    from .transfer import (
        REDIRECT_LOOP,
        Transient,
        _as_transient,
        _connection_failure,
        env_proxies,
        other_scheme,
        redirected_to,
        timeout_words,
        unusable_address,
        urllib3_error,
    )

    try:
        # One byte: a Range request is answered by every kind of server we
        # use (HEAD is not always, and some answer it differently from GET).
        r = session.get(
            url,
            headers={"Range": "bytes=0-0"},
            stream=True,
            timeout=timeout,
            proxies=env_proxies(url),
        )
    except requests.exceptions.ConnectionError as exc:
        why: Transient = _connection_failure(exc, url, timeout)
        # Down only when no connection was made. A redirect to a host that
        # failed, or an answer that was not HTTP (a bad status line, 101
        # headers, a line over 64 KiB, a close before the status line): the
        # mirror is there, and its other files may be served. Each of these
        # was "down", and every other file of the mirror "down (as above)".
        reached = redirected_to(exc, url) is not None or not why.unreachable
        verdict = Verdict.FAILING if reached else Verdict.DOWN
        return _logged(log, _row(m, f, verdict, None, None, _since(began), str(why)))
    except requests.exceptions.Timeout as exc:
        tried = redirected_to(exc, url)
        # A TLS handshake that got no answer ran out the connect timeout, not the read one.
        detail = str(timeout_words(exc, url, timeout))
        if tried is not None:
            # The mirror answered (a redirect); the host it sent us to is silent.
            return _logged(log, _row(m, f, Verdict.FAILING, None, None, _since(began), detail))
        return _logged(log, _row(m, f, Verdict.DOWN, None, None, _since(began), detail))
    except requests.exceptions.TooManyRedirects:
        detail = REDIRECT_LOOP
        return _logged(log, _row(m, f, Verdict.MISSING, None, None, _since(began), detail))
    except requests.exceptions.InvalidSchema as exc:
        # requests' words were "No connection adapters were found for 'ftp://...'".
        detail = other_scheme(exc)
        return _logged(log, _row(m, f, Verdict.MISSING, None, None, _since(began), detail))
    except requests.exceptions.RequestException as exc:
        detail = redact(str(exc))[:200]
        return _logged(log, _row(m, f, Verdict.MISSING, None, None, _since(began), detail))
    except ValueError as exc:  # an address requests cannot parse (a redirect's Location)
        detail = unusable_address(exc)
        return _logged(log, _row(m, f, Verdict.MISSING, None, None, _since(began), detail))
    except urllib3_error() as exc:
        # A redirect's body cut after a failed decoding: requests lets urllib3's
        # error out bare (it was a traceback). The mirror answered.
        detail = str(_as_transient(exc, str(origin(url) or "?"), None, "a redirect's body"))
        return _logged(log, _row(m, f, Verdict.FAILING, None, None, _since(began), detail))
    try:
        status = r.status_code
        seconds = _since(began)
        odd = ""  # a size header that was sent but says no usable size
        if status == 206:
            said = r.headers.get("Content-Range")
            cr = hdr.parse_content_range(said)
            announced = cr[2] if cr else None
            if said is not None and announced is None:
                odd = f"Content-Range {_bounded(said, 60)!a} gives no usable size"
        elif status == 200 and not r.headers.get("Content-Encoding"):
            said = r.headers.get("Content-Length")
            announced = hdr.parse_content_length(said)
            if said is not None and announced is None:
                odd = f"Content-Length {_bounded(said, 60)!a} is not a usable size"
        else:
            announced = None
        html = "text/html" in (r.headers.get("Content-Type") or "").lower()
    finally:
        r.close()  # the body is not read: one byte, or a whole file we do not want
    if status in (200, 206) and html:
        row = _row(m, f, Verdict.WRONG_SIZE, status, announced, seconds, "an HTML page")
    elif status in (200, 206):
        row = _verdict(m, f, status, announced, seconds, odd)
    elif status == 407 and (proxy := proxy_for(url, env_proxies(url))):
        # Only a proxy sends a 407 (RFC 9110 15.5.8): the mirror is behind it,
        # unasked. It was "missing: HTTP 407 for <url>", as if the mirror had said it.
        where = str(origin(url) or "?")
        row = _row(m, f, Verdict.DOWN, status, None, seconds, proxy_refused(407, url, proxy, where))
    else:
        from .transfer import TRANSIENT_STATUS

        verdict = Verdict.FAILING if status in TRANSIENT_STATUS else Verdict.MISSING
        row = _row(m, f, verdict, status, None, seconds, f"HTTP {status} for {redact(url)}")
    return _logged(log, row)


def _verdict(
    m: Mirror, f: RemoteFile, status: int | None, announced: int | None, seconds: float, d: str
) -> Probe:
    if f.size is None:
        return _row(m, f, Verdict.SIZE_UNKNOWN, status, announced, seconds, d)
    if announced is None:
        return _row(m, f, Verdict.NO_SIZE, status, None, seconds, d)
    if announced != f.size:
        detail = f"announces {announced} bytes, published {f.size}"
        return _row(m, f, Verdict.WRONG_SIZE, status, announced, seconds, detail)
    return _row(m, f, Verdict.OK, status, announced, seconds, d)


def _since(t: float) -> float:
    return time.monotonic() - t


def _logged(log: Callable[[str], None] | None, p: Probe) -> Probe:
    if log is not None:
        status = p.status if p.status is not None else "-"
        line = f"GET {p.url} Range: bytes=0-0: {status} ({p.seconds:.2f} s) {p.detail}"
        log(_bounded(line.rstrip(), DETAIL_LIMIT + len(p.url) + 60))
    return p


def all_served(files: Sequence[RemoteFile], probes: Sequence[Probe]) -> bool:
    """True when every file has a mirror that answers with the right size."""
    good = {p.file for p in probes if p.verdict in GOOD}
    return all(f.path in good for f in files)


__all__ = ["Probe", "Verdict", "all_served", "check_mirrors"]
