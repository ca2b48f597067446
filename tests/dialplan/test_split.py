"""Percentage splits are exact: every 100 consecutive calls follow the percentages."""

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from dialplan.split import SplitCounters


def percentages() -> st.SearchStrategy[list[int]]:
    """Integer percentages (1% precision) that sum to 100."""
    return (
        st.lists(st.integers(min_value=1, max_value=99), min_size=1, max_size=9, unique=True)
        .map(lambda cuts: sorted(c for c in cuts if c < 100))
        .map(lambda cuts: [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)])
    )


def picks(weights: list[int], count: int) -> list[int]:
    counters = SplitCounters()
    return [counters.pick("rule", weights) for _ in range(count)]


def test_sixty_thirty_ten_gives_exactly_those_counts_per_hundred_calls() -> None:
    assert Counter(picks([60, 30, 10], 100)) == {0: 60, 1: 30, 2: 10}


@given(percentages(), st.integers(min_value=0, max_value=150))
def test_any_hundred_consecutive_calls_follow_the_percentages_within_one(
    weights: list[int], start: int
) -> None:
    window = picks(weights, start + 100)[start:]
    counts = Counter(window)
    for index, weight in enumerate(weights):
        assert abs(counts[index] - weight) <= 1


def test_picks_are_interleaved_not_bunched() -> None:
    sequence = picks([50, 50], 10)
    assert sequence == [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]


def test_each_split_keeps_its_own_rotation() -> None:
    counters = SplitCounters()
    first = [counters.pick("a", [60, 40]) for _ in range(5)]
    [counters.pick("b", [10, 90]) for _ in range(7)]
    assert first + [counters.pick("a", [60, 40]) for _ in range(5)] == picks([60, 40], 10)


def test_when_a_destination_drops_out_the_survivors_share_its_calls_in_their_ratio() -> None:
    counters = SplitCounters()
    survivors = Counter(counters.pick("rule", [60, 30]) for _ in range(90))
    assert survivors == {0: 60, 1: 30}
