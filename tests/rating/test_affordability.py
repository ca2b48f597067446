"""How long a call may last within the subscriber's spending room, in agreement with the price
the call will get."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating.affordability import max_affordable_seconds, spending_room
from rating.call import CALLER_KINDS, RatedCall
from rating.pricing import price
from rating.tariff import Tariffs
from rating.tariff_loader import parse_tariffs

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI)
TARIFFS_TEXT = """\
caller_tariffs:
  fixed: {first_seconds: 180, first_charge: 0.22, per_seconds: 60, charge: 0.11}
  mobile: {per_seconds: 60, charge: 0.15}
  other: {per_seconds: 60, charge: 0.00}
packages:
  regional:
    local: {per_seconds: 60, charge: 0.12}
    long_distance: {first_seconds: 60, first_charge: 0.30, per_seconds: 6, charge: 0.03}
    periods:
      - name: off-peak
        time: ["22:00-07:00"]
        local: {per_seconds: 60, charge: 0.06}
  free:
    nationwide: {per_seconds: 60, charge: 0.00}
  shared:
    nationwide: {per_seconds: 60, charge: 0.20}
    sharing: {caller_percent: 30}
accounts:
  "4006001234": {package: regional}
  "4000000002": {package: free}
  "4000000001": {package: shared}
"""
TARIFFS = parse_tariffs("tariffs.yaml", TARIFFS_TEXT)


def call(
    number: str = "4006001234",
    *,
    kind: str = "fixed",
    at: datetime = NOON,
    area: str | None = "0531",
    included: int = 0,
) -> RatedCall:
    return RatedCall(number, kind, at, 0, area, "0531", included)  # type: ignore[arg-type]


def callee_share(tariffs: Tariffs, rated: RatedCall, seconds: int) -> Decimal:
    return price(replace(rated, talk_seconds=seconds), tariffs).callee_share


def test_a_budget_buys_whole_increments_of_the_subscriber_rate() -> None:
    assert max_affordable_seconds(call(), TARIFFS, Decimal("1.00")) == 480  # 8 x 0.12


def test_included_minutes_come_on_top_of_what_the_budget_buys() -> None:
    assert max_affordable_seconds(call(included=150), TARIFFS, Decimal("1.00")) == 600


def test_the_rate_in_force_at_the_answer_instant_is_used() -> None:
    night = datetime(2026, 11, 24, 23, 0, tzinfo=SHANGHAI)
    assert max_affordable_seconds(call(at=night), TARIFFS, Decimal("1.00")) == 960  # 16 x 0.06


def test_a_first_segment_the_budget_cannot_cover_affords_nothing() -> None:
    assert max_affordable_seconds(call(area="010"), TARIFFS, Decimal("0.29")) == 0
    assert max_affordable_seconds(call(area="010"), TARIFFS, Decimal("0.35")) == 66  # 0.30 + 0.03


def test_no_limit_without_a_budget_or_without_a_charge() -> None:
    assert max_affordable_seconds(call(), TARIFFS, None) is None
    assert max_affordable_seconds(call("4000000002"), TARIFFS, Decimal("0.00")) is None


def test_a_negative_budget_affords_nothing() -> None:
    assert max_affordable_seconds(call(), TARIFFS, Decimal("-3.00")) == 0


def test_affordability_needs_the_answer_instant() -> None:
    with pytest.raises(ValueError, match="instant"):
        max_affordable_seconds(replace(call(), answered_at=None), TARIFFS, Decimal(1))


def test_a_caller_paying_all_of_a_shared_call_leaves_the_subscriber_no_limit() -> None:
    everything = parse_tariffs(
        "t.yaml", TARIFFS_TEXT.replace("caller_percent: 30", "caller_percent: 100")
    )
    assert max_affordable_seconds(call("4000000001"), everything, Decimal("0.00")) is None


def test_the_spending_room_is_the_smaller_of_balance_and_cap_room() -> None:
    assert spending_room(Decimal("80.00"), Decimal("12.50")) == Decimal("12.50")
    assert spending_room(None, Decimal("12.50")) == Decimal("12.50")
    assert spending_room(Decimal("80.00"), None) == Decimal("80.00")
    assert spending_room(None, None) is None


@cache
def shared_by(percent: int) -> Tariffs:
    return parse_tariffs(
        "t.yaml", TARIFFS_TEXT.replace("caller_percent: 30", f"caller_percent: {percent}")
    )


calls = st.builds(
    call,
    number=st.sampled_from(["4006001234", "4000000001"]),
    kind=st.sampled_from(sorted(CALLER_KINDS)),
    at=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
    ),
    area=st.sampled_from(["0531", "010", None]),
    included=st.integers(min_value=0, max_value=900),
)
budgets = st.integers(min_value=0, max_value=3000).map(lambda fen: Decimal(fen).scaleb(-2))


@given(rated=calls, budget=budgets, percent=st.integers(min_value=0, max_value=99))
def test_the_longest_affordable_call_is_the_last_second_within_budget(
    rated: RatedCall, budget: Decimal, percent: int
) -> None:
    tariffs = shared_by(percent)
    longest = max_affordable_seconds(rated, tariffs, budget)
    assert longest is not None
    assert callee_share(tariffs, rated, longest) <= budget
    assert callee_share(tariffs, rated, longest + 1) > budget
