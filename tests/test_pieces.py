"""Byte ranges for the connections of one file: cut in order, split when none is left."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from kmnist.downloader.pieces import Board, Span, cut, first_piece_end


def gaps(cuts: list[int], end: int) -> list[tuple[int, int]]:
    """Every other range between the cut points: what a .part may still miss."""
    bounds = sorted({c for c in cuts if c < end} | {0, end})
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if a < b][::2]


def byte_set(ranges: list[tuple[int, int]]) -> list[int]:
    return [i for a, b in ranges for i in range(a, b)]


@settings(max_examples=300, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 200), max_size=8, unique=True),
    end=st.integers(1, 400),
    piece=st.integers(1, 40),
    connections=st.integers(1, 9),
)
def test_cut_covers_what_is_missing_once_in_order(
    cuts: list[int], end: int, piece: int, connections: int
) -> None:
    missing = gaps(cuts, end)
    got = cut(missing, piece, connections)
    assert byte_set(got) == byte_set(missing)  # in order, every byte once
    large = 2 * piece if connections > 1 else piece
    assert all(0 < b - a <= large for a, b in got[1:])
    if got:
        # What the probe asked: one piece, or the whole gap when under two.
        first = missing[0]
        assert got[0] == (first[0], first_piece_end(*first, piece))
        assert got[0][1] - got[0][0] == piece or got[0][1] == first[1] < first[0] + 2 * piece
    # Long pieces only while more than the last round's worth is left after them.
    left = sum(b - a for a, b in missing)
    for i, (a, b) in enumerate(got):
        if i and b - a > piece:
            assert left - (b - a) >= connections * piece
        left -= b - a


@settings(max_examples=200, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 3000), max_size=6, unique=True),
    end=st.integers(1, 4000),
    piece=st.integers(1, 900),
    first_len=st.integers(1, 5000),
)
def test_cut_starts_with_the_probes_range_when_it_is_given(
    cuts: list[int], end: int, piece: int, first_len: int
) -> None:
    # The probe's range was asked before the size was known: the first piece
    # is that range, within the first gap, and the rest still tiles the gaps.
    missing = gaps(cuts, end)
    if not missing:
        return
    got = cut(missing, piece, 4, first_end=missing[0][0] + first_len)
    assert byte_set(got) == byte_set(missing)
    assert got[0] == (missing[0][0], min(missing[0][0] + first_len, missing[0][1]))


@settings(max_examples=300, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 3000), max_size=6, unique=True),
    end=st.integers(1, 4000),
    piece=st.integers(1, 900),
    min_split=st.integers(1, 300),
    align=st.sampled_from([1, 8, 64]),
    readers=st.integers(1, 9),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_byte_is_read_once_however_reads_and_splits_interleave(
    cuts: list[int],
    end: int,
    piece: int,
    min_split: int,
    align: int,
    readers: int,
    seed: int,
) -> None:
    """A model run: connections take spans, claim and read them in uneven
    steps, and take the second half of a range when no piece is left."""
    missing = gaps(cuts, end)
    board = Board(missing, piece, min_split=min_split, align=align)
    rng = random.Random(seed)
    read: list[int] = []
    active: dict[int, tuple[Span, int]] = {}  # reader -> (span, position)
    idle = list(range(readers))
    for _ in range(20_000):  # bounded: far more steps than bytes
        if idle and (not active or rng.random() < 0.3):
            who = idle.pop()
            before = {id(s): s.end for s, _ in active.values()}
            span = board.take()
            if span is not None:
                active[who] = (span, span.start)
                for other, _ in active.values():
                    if other is not span and other.end != before[id(other)]:
                        # The one split: both halves long enough, the rest still the owner's.
                        assert other.end == span.start
                        assert span.end - span.start >= min_split
                        assert other.end - other.claimed >= min_split
            continue
        if not active:
            break
        who = rng.choice(sorted(active))
        span, pos = active[who]
        n = board.claim(span, pos, rng.randint(1, 2 * piece))
        assert span.claimed <= span.end or n == 0
        if n == 0:
            board.done(span)
            del active[who]
            idle.append(who)
            continue
        got = rng.randint(1, n)  # a read may return less than it may
        read.extend(range(pos, pos + got))
        active[who] = (span, pos + got)
    assert not active
    assert board.take() is None
    assert sorted(read) == byte_set(missing)  # nothing twice, nothing missed


def test_nothing_is_split_below_twice_the_smallest_half() -> None:
    board = Board([(0, 100)], 100, min_split=30, align=1)
    span = board.take()
    assert span is not None
    assert board.claim(span, 0, 41) == 41
    # 59 left: halves of 29 and 30, one under 30.
    assert board.take() is None
    assert board.splits == 0
    assert board.claim(span, 41, 1) == 1 and span.end == 100


def test_a_split_takes_the_second_half_of_the_longest_range() -> None:
    board = Board([(0, 1000)], 500, min_split=10, align=1)
    a, b = board.take(), board.take()
    assert a is not None and b is not None
    board.claim(a, 0, 400)  # a has 100 left, b all of its 500
    taken = board.take()
    assert taken is not None
    assert (b.start, b.end, taken.start, taken.end) == (500, 750, 750, 1000)
    assert board.take(split=False) is None  # a lone connection splits nothing


def test_room_counts_what_splitting_could_share() -> None:
    # One 100-byte range being read, halves of at least 20: five readers'
    # worth; as the owner claims bytes, less; a queued piece counts once more.
    board = Board([(0, 100), (200, 210)], 100, min_split=20, align=1)
    span = board.take()
    assert span is not None and board.room() == 5 + 1
    board.claim(span, 0, 61)
    assert board.room() == 1 + 1  # 39 left: under two halves of 20
    board.done(span)
    assert board.room() == 1
