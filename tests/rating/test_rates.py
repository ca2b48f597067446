"""Rates: the charge of a duration in started increments, and its exact inverse."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating.rates import Rate

FIXED_LINE_CALLER = Rate(
    first_seconds=180, first_charge=Decimal("0.22"), per_seconds=60, charge=Decimal("0.11")
)
BUSINESS_HALL_LONG_DISTANCE = Rate(per_seconds=6, charge=Decimal("0.06"))
PER_MINUTE = Rate(per_seconds=60, charge=Decimal("0.10"))


@pytest.mark.parametrize(
    ("seconds", "charge"),
    [
        (0, "0.00"),
        (1, "0.22"),
        (180, "0.22"),
        (181, "0.33"),
        (240, "0.33"),
        (360, "0.55"),
        (361, "0.66"),
    ],
)
def test_a_fixed_line_caller_pays_022_for_three_minutes_then_011_per_started_minute(
    seconds: int, charge: str
) -> None:
    assert FIXED_LINE_CALLER.charge_for(seconds) == Decimal(charge)


@pytest.mark.parametrize(
    ("seconds", "charge"), [(1, "0.06"), (6, "0.06"), (7, "0.12"), (60, "0.60")]
)
def test_the_business_hall_rate_charges_006_per_started_6_seconds(
    seconds: int, charge: str
) -> None:
    assert BUSINESS_HALL_LONG_DISTANCE.charge_for(seconds) == Decimal(charge)


@pytest.mark.parametrize(("seconds", "charge"), [(1, "0.10"), (60, "0.10"), (61, "0.20")])
def test_a_per_minute_rate_charges_every_started_minute(seconds: int, charge: str) -> None:
    assert PER_MINUTE.charge_for(seconds) == Decimal(charge)


def test_charges_are_held_to_the_fen() -> None:
    rate = Rate(per_seconds=60, charge=Decimal("0.1"))
    assert str(rate.charge_for(120)) == "0.20"
    assert str(rate.charge_for(0)) == "0.00"


def test_a_first_charge_without_a_first_segment_is_a_set_up_charge() -> None:
    rate = Rate(first_charge=Decimal("0.50"), per_seconds=60, charge=Decimal("0.10"))
    assert rate.charge_for(0) == Decimal("0.00")
    assert rate.charge_for(1) == Decimal("0.60")
    assert rate.describe() == "0.50 set-up, then 0.10/60s"


def test_billed_seconds_round_up_to_the_first_segment_then_whole_increments() -> None:
    assert [FIXED_LINE_CALLER.billed_seconds(s) for s in (0, 1, 180, 181, 241)] == [
        0,
        180,
        180,
        240,
        300,
    ]
    assert BUSINESS_HALL_LONG_DISTANCE.billed_seconds(7) == 12


def test_descriptions_name_the_amounts() -> None:
    assert FIXED_LINE_CALLER.describe() == "0.22 first 180s, then 0.11/60s"
    assert BUSINESS_HALL_LONG_DISTANCE.describe() == "0.06/6s"


@pytest.mark.parametrize(
    "arguments",
    [
        {"per_seconds": 0, "charge": Decimal("0.10")},
        {"per_seconds": 60, "charge": Decimal("-0.10")},
        {"per_seconds": 60, "charge": Decimal("0.005")},
        {"per_seconds": 60, "charge": 0.1},
        {"first_seconds": -1, "per_seconds": 60, "charge": Decimal("0.10")},
    ],
)
def test_a_rate_built_in_code_is_checked_too(arguments: dict) -> None:
    with pytest.raises(ValueError):
        Rate(**arguments)


amounts = st.integers(min_value=0, max_value=500).map(lambda fen: Decimal(fen).scaleb(-2))
rates = st.builds(
    lambda first_seconds, first_charge, per_seconds, charge: Rate(
        first_seconds=first_seconds,
        first_charge=first_charge,
        per_seconds=per_seconds,
        charge=charge,
    ),
    st.sampled_from([0, 0, 60, 180]),
    amounts,
    st.sampled_from([1, 6, 30, 60]),
    amounts,
)
durations = st.integers(min_value=0, max_value=7200)


@given(rate=rates, seconds=durations, more=st.integers(min_value=0, max_value=600))
def test_the_charge_never_falls_as_the_duration_grows(rate: Rate, seconds: int, more: int) -> None:
    assert rate.charge_for(seconds + more) >= rate.charge_for(seconds)


@given(rate=rates, seconds=durations)
def test_the_charge_is_that_of_the_billed_seconds(rate: Rate, seconds: int) -> None:
    assert rate.billed_seconds(seconds) >= seconds
    assert rate.charge_for(rate.billed_seconds(seconds)) == rate.charge_for(seconds)


@given(rate=rates, budget=amounts.map(lambda amount: amount * 7))
def test_the_longest_affordable_duration_is_the_exact_inverse_of_the_charge(
    rate: Rate, budget: Decimal
) -> None:
    longest = rate.max_seconds_within(budget)
    if longest is None:
        assert rate.charge == 0
        assert rate.charge_for(10**9) <= budget
    else:
        assert rate.charge_for(longest) <= budget < rate.charge_for(longest + 1)


def test_a_budget_below_the_first_segment_affords_nothing() -> None:
    assert FIXED_LINE_CALLER.max_seconds_within(Decimal("0.21")) == 0
    assert FIXED_LINE_CALLER.max_seconds_within(Decimal("0.22")) == 180
    assert FIXED_LINE_CALLER.max_seconds_within(Decimal("0.54")) == 300
    assert FIXED_LINE_CALLER.max_seconds_within(Decimal("0.55")) == 360
    assert BUSINESS_HALL_LONG_DISTANCE.max_seconds_within(Decimal("1.00")) == 96
