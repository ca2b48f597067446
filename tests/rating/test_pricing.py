"""Pricing a call: caller's and subscriber's shares, local or long distance, rate periods at
the answer instant, included minutes, sharing by ratio, and shares that always add up."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rating.billing_time import billing_day, billing_month
from rating.call import CALLER_KINDS, Price, RatedCall
from rating.pricing import UnknownAccount, price, price_book
from rating.tariff import Tariffs
from rating.tariff_loader import parse_tariffs

SHANGHAI = ZoneInfo("Asia/Shanghai")
TARIFFS_TEXT = """\
version: "t1"
caller_tariffs:
  fixed: {first_seconds: 180, first_charge: 0.22, per_seconds: 60, charge: 0.11}
  mobile: {per_seconds: 60, charge: 0.15}
  other: {first_seconds: 180, first_charge: 0.22, per_seconds: 60, charge: 0.11}
packages:
  regional:
    local: {per_seconds: 60, charge: 0.12}
    long_distance: {per_seconds: 60, charge: 0.25}
    periods:
      - name: off-peak
        time: ["22:00-07:00"]
        long_distance: {per_seconds: 60, charge: 0.15}
  nationwide:
    nationwide: {per_seconds: 60, charge: 0.20}
    periods:
      - name: weekend-night
        time: ["22:00-07:00"]
        days: [fri, sat]
        nationwide: {per_seconds: 60, charge: 0.10}
  business-hall:
    local: {per_seconds: 60, charge: 0.10}
    long_distance: {per_seconds: 6, charge: 0.06}
  shared:
    nationwide: {per_seconds: 60, charge: 0.20}
    sharing: {caller_percent: 30}
accounts:
  "4006001234": {package: regional}
  "4008207788": {package: nationwide}
  "4001234567": {package: business-hall}
  "4000000001": {package: shared}
"""
TARIFFS = parse_tariffs("tariffs.yaml", TARIFFS_TEXT)
HOME = {"4006001234": "0531", "4008207788": "021", "4001234567": "020", "4000000001": "010"}
TUESDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI)


def call(
    number: str = "4006001234",
    talk: int = 181,
    *,
    kind: str = "fixed",
    at: datetime | None = TUESDAY_NOON,
    area: str | None = "010",
    home: str | None = "",
    included: int = 0,
) -> RatedCall:
    return RatedCall(
        number=number,
        caller_kind=kind,  # type: ignore[arg-type]
        answered_at=at,
        talk_seconds=talk,
        answering_area_code=area,
        home_area_code=HOME[number] if home == "" else home,
        included_seconds_left=included,
    )


def shares(priced: Price) -> tuple[str, str, str]:
    return str(priced.caller_share), str(priced.callee_share), str(priced.total)


def test_a_long_distance_call_on_the_business_hall_tariff() -> None:
    priced = price(call("4001234567", 181), TARIFFS)
    assert shares(priced) == ("0.33", "1.86", "2.19")  # 31 started 6 s steps at 0.06
    assert priced.rate_description == "long_distance 0.06/6s"
    assert priced.tariff_id == "business-hall@t1"
    assert priced.billable_seconds == 186


def test_a_call_answered_in_the_home_area_is_local() -> None:
    priced = price(call("4001234567", 181, area="020"), TARIFFS)
    assert shares(priced) == ("0.33", "0.40", "0.73")
    assert priced.rate_description == "local 0.10/60s"


@pytest.mark.parametrize(("area", "home"), [(None, "0531"), ("0531", None), (None, None)])
def test_an_unknown_answering_or_home_area_is_rated_long_distance(
    area: str | None, home: str | None
) -> None:
    priced = price(call(talk=60, area=area, home=home), TARIFFS)
    assert priced.callee_share == Decimal("0.25")
    assert priced.rate_description == "long_distance 0.25/60s"


@pytest.mark.parametrize(
    ("kind", "caller_share"),
    [
        ("fixed", "0.33"),
        ("mobile", "0.60"),
        ("international", "0.33"),
        ("service", "0.33"),
        ("unknown", "0.33"),
    ],
)
def test_the_caller_pays_the_local_charge_of_their_kind(kind: str, caller_share: str) -> None:
    assert price(call(kind=kind), TARIFFS).caller_share == Decimal(caller_share)


@pytest.mark.parametrize(
    "unanswered", [call(at=None, talk=0), call(at=None, talk=30), call(talk=0)]
)
def test_an_unanswered_call_costs_nothing_to_either_side(unanswered: RatedCall) -> None:
    priced = price(unanswered, TARIFFS)
    assert shares(priced) == ("0.00", "0.00", "0.00")
    assert (priced.rate_description, priced.billable_seconds) == ("unanswered", 0)


@pytest.mark.parametrize(
    ("clock", "description"),
    [
        ("21:59:59", "long_distance 0.25/60s"),
        ("22:00:00", "off-peak long_distance 0.15/60s"),
        ("06:59:59", "off-peak long_distance 0.15/60s"),
        ("07:00:00", "long_distance 0.25/60s"),
    ],
)
def test_the_off_peak_period_is_open_from_its_start_until_just_before_its_end(
    clock: str, description: str
) -> None:
    at = datetime.combine(TUESDAY_NOON.date(), datetime.strptime(clock, "%H:%M:%S").time())
    priced = price(call(at=at.replace(tzinfo=SHANGHAI)), TARIFFS)
    assert priced.rate_description == description


def test_a_call_running_into_the_off_peak_period_keeps_the_rate_it_was_answered_at() -> None:
    at = datetime(2026, 11, 24, 21, 59, 30, tzinfo=SHANGHAI)
    priced = price(call(talk=600, at=at), TARIFFS)
    assert priced.callee_share == Decimal("2.50")  # 10 minutes at 0.25, none at 0.15


def test_a_period_that_prices_only_long_distance_leaves_local_calls_at_the_standard_rate() -> None:
    at = datetime(2026, 11, 24, 23, 0, tzinfo=SHANGHAI)
    priced = price(call(talk=60, at=at, area="0531"), TARIFFS)
    assert priced.rate_description == "local 0.12/60s"


@pytest.mark.parametrize(
    ("answered", "in_period"),
    [
        (datetime(2026, 11, 28, 2, 0), True),  # Saturday night window, started Friday
        (datetime(2026, 11, 27, 2, 0), False),  # Friday 02:00 belongs to Thursday's night
        (datetime(2026, 11, 29, 6, 59), True),  # Sunday morning, window started Saturday
        (datetime(2026, 11, 29, 22, 0), False),  # Sunday evening: not a listed day
        (datetime(2026, 11, 27, 22, 0), True),  # Friday evening
    ],
)
def test_a_night_window_with_days_belongs_to_the_day_it_started(
    answered: datetime, in_period: bool
) -> None:
    priced = price(call("4008207788", 60, at=answered.replace(tzinfo=SHANGHAI)), TARIFFS)
    expected = "weekend-night nationwide 0.10/60s" if in_period else "nationwide 0.20/60s"
    assert priced.rate_description == expected


def test_the_answer_instant_is_read_in_the_tariff_time_zone() -> None:
    at = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai
    assert price(call(at=at), TARIFFS).rate_description == "off-peak long_distance 0.15/60s"


def test_a_month_end_call_across_midnight_is_rated_and_booked_as_answered() -> None:
    at = datetime(2026, 11, 30, 23, 58, tzinfo=SHANGHAI)
    priced = price(call(talk=300, at=at), TARIFFS)
    assert shares(priced) == ("0.44", "0.75", "1.19")  # 5 off-peak minutes; 0.22 + 2 x 0.11
    assert priced.rate_description == "off-peak long_distance 0.15/60s"
    assert billing_day(at, TARIFFS.zone) == date(2026, 11, 30)
    assert billing_month(at, TARIFFS.zone) == "2026-11"
    assert billing_month(at + timedelta(minutes=5), TARIFFS.zone) == "2026-12"


def test_a_call_answered_after_midnight_belongs_to_the_new_month() -> None:
    at = datetime(2026, 11, 30, 16, 0, 30, tzinfo=UTC)  # 2026-12-01 00:00:30 in Shanghai
    assert billing_month(at, TARIFFS.zone) == "2026-12"


@pytest.mark.parametrize(
    ("talk", "included", "callee_share", "used"),
    [
        (61, 300, "0.00", 120),
        (61, 60, "0.12", 60),
        (61, 90, "0.12", 60),  # 90 s left covers one whole minute only
        (61, 59, "0.24", 0),
        (300, 120, "0.36", 120),
    ],
)
def test_included_minutes_are_used_first_in_whole_increments(
    talk: int, included: int, callee_share: str, used: int
) -> None:
    priced = price(call(talk=talk, area="0531", included=included), TARIFFS)
    assert (str(priced.callee_share), priced.included_seconds_used) == (callee_share, used)
    assert priced.caller_share == TARIFFS.caller_tariffs.fixed.charge_for(talk)


def test_included_time_on_a_six_second_rate_is_used_six_seconds_at_a_time() -> None:
    priced = price(call("4001234567", 60, included=45), TARIFFS)
    assert (priced.included_seconds_used, str(priced.callee_share)) == (42, "0.18")


def test_a_caller_percent_splits_the_total_rounding_the_caller_share_half_up() -> None:
    priced = price(call("4000000001", 60, kind="mobile"), TARIFFS)
    # total 0.15 (caller's local charge) + 0.20 (package) = 0.35; 30% = 0.105 -> 0.11
    assert shares(priced) == ("0.11", "0.24", "0.35")


def test_the_account_can_be_named_apart_from_the_number_called() -> None:
    priced = price(call("4006001234", 60), TARIFFS, account_number="4001234567")
    assert priced.tariff_id == "business-hall@t1"


def test_a_number_without_an_account_is_refused() -> None:
    with pytest.raises(UnknownAccount, match="4009999999"):
        price(call(), TARIFFS, account_number="4009999999")


def test_a_rated_call_needs_an_aware_answer_instant() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call(at=datetime(2026, 11, 24, 12, 0))


@cache
def shared_by(percent: int) -> Tariffs:
    return parse_tariffs(
        "tariffs.yaml", TARIFFS_TEXT.replace("caller_percent: 30", f"caller_percent: {percent}")
    )


calls = st.builds(
    call,
    number=st.sampled_from(sorted(HOME)),
    talk=st.integers(min_value=0, max_value=7200),
    kind=st.sampled_from(sorted(CALLER_KINDS)),
    at=st.one_of(
        st.none(),
        st.datetimes(
            min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
        ),
    ),
    area=st.sampled_from(["0531", "021", "020", "010", None]),
    included=st.integers(min_value=0, max_value=6000),
)


@given(priced_call=calls, percent=st.integers(min_value=0, max_value=100))
def test_the_shares_always_add_up_to_the_total_to_the_fen(
    priced_call: RatedCall, percent: int
) -> None:
    priced = price(priced_call, shared_by(percent))
    assert priced.caller_share + priced.callee_share == priced.total
    for amount in (priced.caller_share, priced.callee_share, priced.total):
        assert amount >= 0 and amount == amount.quantize(Decimal("0.01"))


@given(priced_call=calls, more=st.integers(min_value=1, max_value=900))
def test_no_share_falls_as_the_call_grows_longer(priced_call: RatedCall, more: int) -> None:
    shorter = price(priced_call, TARIFFS)
    longer = price(replace(priced_call, talk_seconds=priced_call.talk_seconds + more), TARIFFS)
    assert longer.total >= shorter.total
    assert longer.callee_share >= shorter.callee_share
    assert longer.caller_share >= shorter.caller_share


@given(priced_call=calls)
def test_included_minutes_never_raise_a_charge(priced_call: RatedCall) -> None:
    with_included = price(priced_call, TARIFFS)
    without = price(replace(priced_call, included_seconds_left=0), TARIFFS)
    assert with_included.callee_share <= without.callee_share
    assert with_included.total <= without.total
    assert with_included.included_seconds_used <= priced_call.included_seconds_left


CHANGING = parse_tariffs(
    "tariffs.yaml",
    TARIFFS_TEXT.replace(
        "    sharing: {caller_percent: 30}\n",
        "    sharing: {caller_percent: 30}\n"
        "    changes:\n"
        "      - {announced: 2026-10-01, effective: 2026-11-27,\n"
        "         nationwide: {per_seconds: 60, charge: 0.30}}\n"
        "  night-changing:\n"
        "    nationwide: {per_seconds: 60, charge: 0.20}\n"
        "    periods:\n"
        '      - {name: night, time: ["23:30-00:30", "12:00-13:00"], days: [thu],\n'
        "         nationwide: {per_seconds: 60, charge: 0.10}}\n"
        "    changes:\n"
        "      - {announced: 2026-10-01, effective: 2026-11-27,\n"
        "         nationwide: {per_seconds: 60, charge: 0.30}}\n",
    ).replace(
        '  "4000000001": {package: shared}\n',
        '  "4000000001": {package: shared}\n  "4000000002": {package: night-changing}\n',
    ),
)


def test_the_instants_prices_may_change_at_within_a_span() -> None:
    book = price_book(CHANGING)
    start = datetime(2026, 11, 24, 21, 59, 50, tzinfo=SHANGHAI)
    assert book.changes_within("4006001234", start, start + timedelta(seconds=22)) == [
        datetime(2026, 11, 24, 22, 0, tzinfo=SHANGHAI)
    ]
    assert book.changes_within("4006001234", start, start + timedelta(seconds=9)) == []
    assert book.changes_within("4001234567", start, start + timedelta(days=3)) == []
    midnight = datetime(2026, 11, 27, tzinfo=SHANGHAI)
    assert book.changes_within("4000000001", midnight - timedelta(seconds=10), midnight) == [
        midnight
    ]
    assert book.changes_within("4000000001", midnight, midnight + timedelta(seconds=10)) == []
    # an edge at the very start is in force already; one a day later is found again
    on_edge = datetime(2026, 11, 24, 7, 0, 0, 500, tzinfo=SHANGHAI)
    assert book.changes_within("4006001234", on_edge, on_edge + timedelta(hours=1)) == []
    found = book.changes_within("4006001234", on_edge, on_edge + timedelta(days=1))
    assert found == [
        datetime(2026, 11, 24, 22, 0, tzinfo=SHANGHAI),
        datetime(2026, 11, 25, 7, 0, tzinfo=SHANGHAI),
    ]


@settings(max_examples=400)
@given(
    number=st.sampled_from(["4006001234", "4008207788", "4000000001", "4000000002"]),
    day=st.integers(min_value=0, max_value=7),
    edge=st.sampled_from([0, 7 * 3600, 12 * 3600, 13 * 3600, 22 * 3600, 23 * 3600 + 1800]),
    before=st.integers(min_value=-30, max_value=150),
    span=st.integers(min_value=0, max_value=150),
)
def test_between_the_instants_found_every_answer_instant_is_priced_alike(
    number: str, day: int, edge: int, before: int, span: int
) -> None:
    """Whatever second of a span a call is answered in, its rate and tariff are those in
    force at the span's start or at the last instant `changes_within` found before it.
    Spans start `before` seconds before a time of day some prices change at, on the days
    around a price change (Monday 23 to Tuesday 1 December)."""
    book = price_book(CHANGING)
    start = datetime(2026, 11, 23, tzinfo=SHANGHAI) + timedelta(
        days=day, seconds=edge - before, microseconds=250_000
    )
    end = start + timedelta(seconds=span)
    instants = sorted([start, *book.changes_within(number, start, end)])
    assert all(start < instant <= end for instant in instants[1:])

    def priced_at(instant: datetime) -> tuple[str, str]:
        priced = price(call(number, 60, at=instant, area=None, home=None), CHANGING)
        return priced.rate_description, priced.tariff_id

    for second in range(span + 1):
        instant = start + timedelta(seconds=second)
        last = max(known for known in instants if known <= instant)
        assert priced_at(instant) == priced_at(last), (instant, last)


def test_a_period_ending_at_23_59_takes_in_the_last_minute_of_the_day() -> None:
    """As in routing plans: 00:00-23:59 is the whole day, its last minute included."""
    text = TARIFFS_TEXT.replace('time: ["22:00-07:00"]', 'time: ["18:00-23:59"]', 1)
    tariffs = parse_tariffs("tariffs.yaml", text)
    last_minute = datetime(2026, 11, 24, 23, 59, 30, tzinfo=SHANGHAI)
    assert price(call(at=last_minute), tariffs).rate_description.startswith("off-peak")
