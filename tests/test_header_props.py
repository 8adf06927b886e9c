"""Every header parser, on any text: a bounded value or None, never an exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kmnist.downloader import headers as h

ANY = st.one_of(st.none(), st.text(max_size=60), st.from_regex(r"[0-9 ,*/a-zA-Z:-]{0,40}"))
PROPS = settings(max_examples=300, deadline=None)


@PROPS
@given(ANY)
def test_retry_after_is_bounded_or_none(value: str | None) -> None:
    got = h.parse_retry_after(value, now=1_700_000_000.0)
    assert got is None or 0.0 <= got <= h.MAX_RETRY_AFTER


@PROPS
@given(ANY)
def test_content_length_is_ascii_digits_or_none(value: str | None) -> None:
    got = h.parse_content_length(value)
    assert got is None or (0 <= got < 10**18 and value is not None and str(got) in value)


@PROPS
@given(ANY)
def test_content_range_is_consistent_or_none(value: str | None) -> None:
    got = h.parse_content_range(value)
    if got is not None:
        first, last, total = got
        assert 0 <= first <= last and (total is None or last < total)


@PROPS
@given(ANY)
def test_unsatisfied_range_and_dates_never_raise(value: str | None) -> None:
    n = h.parse_unsatisfied_range(value)
    assert n is None or n >= 0
    t = h.parse_http_date(value)
    assert t is None or isinstance(t, float)


@PROPS
@given(st.integers(0, 10**17), st.integers(0, 10**17), st.integers(1, 10**17))
def test_well_formed_content_range_round_trips(a: int, b: int, total: int) -> None:
    first, last = min(a, b), max(a, b)
    got = h.parse_content_range(f"bytes {first}-{last}/{total}")
    assert got == ((first, last, total) if last < total else None)


@PROPS
@given(st.integers(0, 10**6))
def test_delta_seconds_round_trip(n: int) -> None:
    assert h.parse_retry_after(str(n)) == float(min(n, h.MAX_RETRY_AFTER))


def test_non_ascii_digits_are_not_numbers() -> None:
    for odd in ("²", "١٢", "１２", "+5", "5_000", "0x10", " 5 5"):
        assert h.parse_retry_after(odd) is None
        assert h.parse_content_length(odd) is None
    assert h.parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now=784111777.0 - 10) == 10.0
    assert h.parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == 784111777.0
    assert h.parse_http_date("Sun Nov  6 08:49:37 1994") == 784111777.0
    assert h.parse_http_date("Sun, 31 Feb 1994 08:49:37 GMT") is None


@PROPS
@given(st.integers(min_value=-(10**6), max_value=10**6))
def test_a_status_is_said_in_plain_ascii_whatever_its_number(status: int) -> None:
    # The phrase is the standard one or none: nothing of the server's reaches the line.
    from kmnist.downloader.transfer import status_text

    said = status_text(status)
    assert said.startswith(f"HTTP {status}") and said.isascii() and said.isprintable()
