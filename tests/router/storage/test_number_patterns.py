"""Where a pattern can sit in a 400 number: the ranges `numbers search --pattern` reads hold
every number containing the pattern and no other, and dense patterns read numbers in order."""

from __future__ import annotations

import random
import sqlite3

import pytest

from router.storage.number_patterns import pattern_ranges

RNG = random.Random(11)
NUMBERS = [f"400{RNG.randrange(10**7):07d}" for _ in range(3000)] + [
    "4001234567",
    "4008888888",
    "4006000000",
    "4009999999",
]


def _found(numbers: list[str], pattern: str) -> set[str]:
    """The numbers the ranges select, asked of SQLite as the store asks it."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE numbers (number text PRIMARY KEY)")
    db.executemany("INSERT OR IGNORE INTO numbers VALUES (?)", [(n,) for n in numbers])
    ranges = pattern_ranges(pattern)
    union = " UNION ".join(
        f"SELECT number FROM numbers WHERE {p} BETWEEN ? AND ?" for p, _, _ in ranges
    )
    bounds = [bound for _, low, high in ranges for bound in (low, high)]
    return {row[0] for row in db.execute(union, bounds)}


@pytest.mark.parametrize(
    "pattern",
    ["123", "888", "520", "1234567", "4001234567", "0012345", "00123", "99999", "5201314"],
)
def test_a_number_is_in_the_ranges_exactly_when_it_contains_the_pattern(pattern: str) -> None:
    assert pattern_ranges(pattern)
    samples = [*NUMBERS, *(n[: i] + pattern + n[i + len(pattern) :] for n in NUMBERS[:200]
                           for i in range(3, 11 - len(pattern)))]  # fmt: skip
    assert _found(samples, pattern) == {n for n in samples if pattern in n}


def test_every_pattern_of_three_digits_or_more_finds_what_it_should() -> None:
    for _ in range(300):
        pattern = f"{RNG.randrange(10**4):04d}"[: RNG.choice((3, 4))]
        if not pattern_ranges(pattern):
            continue
        assert _found(NUMBERS, pattern) == {n for n in NUMBERS if pattern in n}, pattern


@pytest.mark.parametrize("pattern", ["8", "88", "006", "0060", "4006", "40060", "00"])
def test_dense_patterns_are_read_in_number_order_instead(pattern: str) -> None:
    assert pattern_ranges(pattern) == []
