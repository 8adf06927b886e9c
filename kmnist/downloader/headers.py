"""Strict parsers of the HTTP headers a download depends on.

Servers and proxies send odd bytes (``Retry-After: ²``, ``Content-Length:
+12``, a date with a year of 99999). Python's ``int`` and ``str.isdigit``
accept any Unicode digit, and the date parser raises half a dozen exception
types, so every parser here takes ASCII digits only, bounds the value, and
returns None for anything else: an odd header is an absent one, never an
exception that ends a run.
"""

from __future__ import annotations

import re

# At most 18 digits (below 2**63): no file size or offset comes near it, and
# a bounded length keeps int() fast on hostile input.
MAX_DIGITS = 18
# A Retry-After longer than a day is not a wait anyone means; the retry
# policy then sends us to the next mirror.
MAX_RETRY_AFTER = 86400.0

_NUMBER = f"[0-9]{{1,{MAX_DIGITS}}}"
_DIGITS = re.compile(_NUMBER, re.ASCII)
_CONTENT_RANGE = re.compile(
    rf"[ \t]*bytes[ \t]+({_NUMBER})-({_NUMBER})/({_NUMBER}|\*)[ \t]*",
    re.ASCII | re.IGNORECASE,
)
_UNSATISFIED_RANGE = re.compile(rf"[ \t]*bytes[ \t]+\*/({_NUMBER})[ \t]*", re.ASCII | re.IGNORECASE)
# RFC 9110's IMF-fixdate, the one form servers must send (the obsolete RFC 850
# and asctime forms are parsed too, as the RFC asks of recipients).
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_IMF = re.compile(
    r"[ \t]*(?:[A-Za-z]{3},[ \t]+)?([0-9]{1,2})[ \t]+([A-Za-z]{3})[ \t]+([0-9]{4})[ \t]+"
    r"([0-9]{2}):([0-9]{2}):([0-9]{2})[ \t]+GMT[ \t]*",
    re.ASCII,
)
_RFC850 = re.compile(
    r"[ \t]*[A-Za-z]+,[ \t]+([0-9]{2})-([A-Za-z]{3})-([0-9]{2})[ \t]+"
    r"([0-9]{2}):([0-9]{2}):([0-9]{2})[ \t]+GMT[ \t]*",
    re.ASCII,
)
_ASCTIME = re.compile(
    r"[ \t]*[A-Za-z]{3}[ \t]+([A-Za-z]{3})[ \t]+([0-9]{1,2})[ \t]+"
    r"([0-9]{2}):([0-9]{2}):([0-9]{2})[ \t]+([0-9]{4})[ \t]*",
    re.ASCII,
)


def parse_int(value: str | None) -> int | None:
    """A non-negative decimal integer of ASCII digits (surrounding blanks allowed)."""
    if value is None:
        return None
    m = _DIGITS.fullmatch(value.strip(" \t"))
    return int(m.group(0)) if m else None


def parse_content_length(value: str | None) -> int | None:
    """Content-Length; None when absent or not a plain number.

    RFC 9110 lets a recipient accept a list of identical values (``5, 5``),
    which some proxies send; different values mean no usable length.
    """
    if value is None:
        return None
    values = {parse_int(v) for v in value.split(",")}
    if len(values) != 1:
        return None
    return values.pop()


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """``bytes 10-19/100`` -> (10, 19, 100); None when absent or malformed."""
    m = _CONTENT_RANGE.fullmatch(value or "")
    if not m:
        return None
    first, last = int(m.group(1)), int(m.group(2))
    total = None if m.group(3) == "*" else int(m.group(3))
    if last < first or (total is not None and last >= total):
        return None
    return first, last, total


def parse_unsatisfied_range(value: str | None) -> int | None:
    """``bytes */100`` (sent with a 416) -> 100; None otherwise."""
    m = _UNSATISFIED_RANGE.fullmatch(value or "")
    return int(m.group(1)) if m else None


def parse_http_date(value: str | None) -> float | None:
    """An HTTP date as a POSIX timestamp; None when it is not one."""
    import calendar

    if not value:
        return None
    m = _IMF.fullmatch(value)
    if m:
        day, mon, year, hh, mm, ss = m.groups()
    else:
        m = _RFC850.fullmatch(value)
        if m:
            day, mon, yy, hh, mm, ss = m.groups()
            # RFC 9110: a two-digit year more than 50 years ahead is in the past.
            year = str(2000 + int(yy) if int(yy) < 70 else 1900 + int(yy))
        else:
            m = _ASCTIME.fullmatch(value)
            if not m:
                return None
            mon, day, hh, mm, ss, year = m.groups()
    if mon.lower() not in _MONTHS:
        return None
    fields = (int(year), _MONTHS.index(mon.lower()) + 1, int(day), int(hh), int(mm), int(ss))
    y, mo, d, h, mi, s = fields
    feb = 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    days = (31, feb, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    if not (1 <= d <= days[mo - 1] and h < 24 and mi < 60 and s < 61):
        return None
    return float(calendar.timegm((y, mo, d, h, mi, min(s, 59), 0, 0, 0)))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date).

    Bounded to ``[0, MAX_RETRY_AFTER]``; None when absent or unparsable.
    """
    import time

    if value is None:
        return None
    seconds = parse_int(value)
    if seconds is not None:
        return float(min(seconds, MAX_RETRY_AFTER))
    when = parse_http_date(value)
    if when is None:
        return None
    wait = when - (time.time() if now is None else now)
    return min(max(0.0, wait), MAX_RETRY_AFTER)
