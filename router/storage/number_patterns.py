"""Where digits can sit in a 400 number, as index ranges: how `numbers search --pattern`
finds a rare pattern among millions of numbers without reading them all.

A pattern of L digits sits in a 10-digit number at one of the positions 0..10-L. Every
number starts with 400, so a pattern at position 0 to 3 fixes the number's first digits: a
range of the primary key. At positions 4 to 7 it is the start of the number's last 6, 5, 4
or 3 digits, each kept in an index of its own (`substr(number, 5)` ... `substr(number, 8)`,
schema version 12): a range of that index. The union of these ranges holds every number
containing the pattern, a few thousand at most among a million for 3 digits, tens for 5.

Dense patterns get no ranges: those of 1 or 2 digits sit in most numbers, and a pattern that
can continue the 400 prefix in its first 5 digits (006, 0060, 4006) names whole segments;
reading numbers in order and keeping those that contain it finds a page sooner than
gathering a hundred thousand candidates. Bounds are digit strings of one length (padded
with 0s and 9s), which sort alike in every collation.
"""

from __future__ import annotations

NUMBER_LENGTH = 10
PREFIX = "400"
TAIL_POSITIONS = (4, 5, 6, 7)
"""Positions whose tails (the digits from there to the end) have an index of their own."""
SHORTEST_INDEXED = 3
"""Shorter patterns are found by reading numbers in order."""
DENSE_PREFIX = 5
"""A key range fixing only this many leading digits holds up to 100,000 numbers."""

TAIL_INDEXES = tuple(
    f"CREATE INDEX numbers_tail_{NUMBER_LENGTH - position} ON numbers "
    f"(substr(number, {position + 1}), number)"
    for position in TAIL_POSITIONS
)
"""The tails' indexes (schema version 12); `number` beside each lets PostgreSQL answer from
the index alone."""


def pattern_ranges(pattern: str) -> list[tuple[str, str, str]]:
    """(expression, low, high) for every place `pattern` can sit: a number contains it if
    and only if one of the expressions lies between its bounds. Empty for dense patterns."""
    length = len(pattern)
    if length < SHORTEST_INDEXED or length > NUMBER_LENGTH:
        return []
    ranges = []
    for position in range(len(PREFIX) + 1):
        start = PREFIX[:position] + pattern
        if len(start) <= NUMBER_LENGTH and _agrees_with_prefix(start):
            if len(start) <= DENSE_PREFIX:
                return []
            ranges.append(("number", *_padded(start, NUMBER_LENGTH)))
    for position in TAIL_POSITIONS:
        tail = NUMBER_LENGTH - position
        if length <= tail:
            ranges.append((f"substr(number, {position + 1})", *_padded(pattern, tail)))
    return ranges


def _agrees_with_prefix(start: str) -> bool:
    """A number beginning with `start` can exist: it begins 400 too."""
    shared = min(len(start), len(PREFIX))
    return start[:shared] == PREFIX[:shared]


def _padded(digits: str, length: int) -> tuple[str, str]:
    return digits.ljust(length, "0"), digits.ljust(length, "9")
