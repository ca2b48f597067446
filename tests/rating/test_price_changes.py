"""Tariff changes carry an effective date: calls are priced by the prices in force on the
day they are answered, a month's rent by those of its first day, and a change that raises
a subscriber's price takes effect at least 30 days after it is announced (seed 004)."""

import time
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from dialplan.errors import ConfigError
from rating.affordability import max_affordable_seconds
from rating.call import RatedCall
from rating.closing import closing_entries
from rating.ledger import LedgerKind
from rating.price_changes import dearer_after, refused_price_rises, rise
from rating.pricing import price
from rating.rates import Rate
from rating.tariff import Tariffs
from rating.tariff_loader import parse_tariffs

SHANGHAI = ZoneInfo("Asia/Shanghai")
FILE = "config/tariffs.yaml"
HEAD = """\
version: "2026-11"
caller_tariffs:
  fixed: {per_seconds: 60, charge: 0.11}
  mobile: {per_seconds: 60, charge: 0.15}
  other: {per_seconds: 60, charge: 0.11}
"""
RISE_ON_NEW_YEAR = """\
packages:
  nationwide-300:
    monthly_rent: 300.00
    nationwide: {per_seconds: 60, charge: 0.20}
    changes:
      - announced: 2026-12-02
        effective: 2027-01-01
        monthly_rent: 320.00
        nationwide: {per_seconds: 60, charge: 0.22}
accounts:
  "4008207788": {package: nationwide-300, prepaid: false}
"""


NO_CHANGES = RISE_ON_NEW_YEAR.split("    changes:")[0] + (
    'accounts:\n  "4008207788": {package: nationwide-300, prepaid: false}\n'
)


def tariffs_of(text: str) -> Tariffs:
    return parse_tariffs(FILE, HEAD + text)


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        tariffs_of(text)
    return [str(problem) for problem in caught.value.problems]


def answered(at: datetime, talk: int = 60) -> RatedCall:
    return RatedCall("4008207788", "mobile", at, talk, "021", "021")


def per_minute(charge: str) -> Rate:
    return Rate(per_seconds=60, charge=Decimal(charge))


def test_a_call_is_priced_by_the_tariff_in_force_on_the_day_it_was_answered() -> None:
    tariffs = tariffs_of(RISE_ON_NEW_YEAR)
    eve = price(answered(datetime(2026, 12, 31, 23, 59, 59, tzinfo=SHANGHAI), 600), tariffs)
    assert (eve.callee_share, eve.tariff_id) == (Decimal("2.00"), "nationwide-300@2026-11")
    new_year = price(answered(datetime(2027, 1, 1, 0, 0, tzinfo=SHANGHAI), 600), tariffs)
    assert new_year.callee_share == Decimal("2.20")
    assert new_year.tariff_id == "nationwide-300@2026-11/2027-01-01"
    # 16:30 UTC on 31 December is already New Year's Day in the billing time zone.
    utc = datetime(2026, 12, 31, 16, 30, tzinfo=ZoneInfo("UTC"))
    assert price(answered(utc, 600), tariffs).callee_share == Decimal("2.20")


def test_the_longest_affordable_talk_follows_the_tariff_in_force_at_the_answer() -> None:
    tariffs = tariffs_of(RISE_ON_NEW_YEAR)
    eve = answered(datetime(2026, 12, 31, 12, 0, tzinfo=SHANGHAI), 0)
    new_year = answered(datetime(2027, 1, 1, 12, 0, tzinfo=SHANGHAI), 0)
    assert max_affordable_seconds(eve, tariffs, Decimal("2.20")) == 11 * 60
    assert max_affordable_seconds(new_year, tariffs, Decimal("2.20")) == 10 * 60


def test_a_months_rent_is_the_one_in_force_on_its_first_day() -> None:
    tariffs = tariffs_of(RISE_ON_NEW_YEAR)

    def rent(month: str) -> Decimal:
        entries = closing_entries(tariffs, "4008207788", month, Decimal("0.00"))
        return -next(entry.amount for entry in entries if entry.kind is LedgerKind.RENT)

    assert (rent("2026-12"), rent("2027-01")) == (Decimal("300.00"), Decimal("320.00"))


def test_a_rise_announced_less_than_30_days_ahead_is_refused_with_its_line() -> None:
    late = RISE_ON_NEW_YEAR.replace("announced: 2026-12-02", "announced: 2026-12-03")
    assert problems_of(late) == [
        f"{FILE}:12 packages.nationwide-300.changes[0].effective: monthly rent 300.00 -> "
        "320.00: a price rise takes effect at least 30 days after it is announced; this one "
        "29 day(s) after (announced 2026-12-03, effective 2027-01-01)"
    ]
    assert tariffs_of(RISE_ON_NEW_YEAR).packages["nationwide-300"].changes  # 30 days: ok


def test_a_price_cut_takes_effect_the_day_after_it_is_announced() -> None:
    cut = (
        RISE_ON_NEW_YEAR.replace("announced: 2026-12-02", "announced: 2026-12-31")
        .replace("monthly_rent: 320.00", "monthly_rent: 280.00")
        .replace("charge: 0.22}", "charge: 0.18}")
    )
    assert tariffs_of(cut).packages["nationwide-300"].changes[0].monthly_rent == 280


def test_the_notice_is_a_setting_of_the_tariff_file() -> None:
    late = RISE_ON_NEW_YEAR.replace("announced: 2026-12-02", "announced: 2026-12-20")
    assert tariffs_of("price_rise_notice_days: 10\n" + late).price_rise_notice_days == 10


def test_a_change_announced_after_it_takes_effect_is_refused() -> None:
    backwards = RISE_ON_NEW_YEAR.replace("announced: 2026-12-02", "announced: 2027-01-02")
    assert problems_of(backwards) == [
        f"{FILE}:11 packages.nationwide-300.changes[0]: effective 2027-01-01 is before "
        "announced 2027-01-02"
    ]


def test_changes_go_in_order_of_their_days_and_leave_the_package_priced() -> None:
    two = RISE_ON_NEW_YEAR.replace(
        "accounts:",
        "      - announced: 2026-11-01\n        effective: 2026-12-01\n"
        "        local: {per_seconds: 60, charge: 0.10}\naccounts:",
    )
    assert problems_of(two) == [
        f"{FILE}:7 packages.nationwide-300: changes go in order of their effective days, one "
        "a day (2026-12-01 follows 2027-01-01)"
    ]
    half = RISE_ON_NEW_YEAR.replace(
        "nationwide: {per_seconds: 60, charge: 0.22}", "local: {per_seconds: 60, charge: 0.10}"
    )
    assert problems_of(half) == [
        f"{FILE}:7 packages.nationwide-300: give either nationwide or both local and "
        "long_distance (found local from 2027-01-01)"
    ]


def test_a_rate_is_dearer_when_any_talk_time_costs_more_on_it() -> None:
    per_6s = Rate(per_seconds=6, charge=Decimal("0.06"))
    assert dearer_after(per_6s, per_minute("0.60")) == 1  # same per minute, dearer at 1 s
    assert dearer_after(per_minute("0.60"), per_6s) is None
    assert dearer_after(per_minute("0.20"), per_minute("0.20")) is None
    setup = Rate(
        first_seconds=180, first_charge=Decimal("0.30"), per_seconds=60, charge=Decimal("0.10")
    )
    assert dearer_after(per_minute("0.10"), setup) == 1
    cheaper_long = Rate(
        first_seconds=60, first_charge=Decimal("0.50"), per_seconds=60, charge=Decimal("0.21")
    )
    assert dearer_after(cheaper_long, per_minute("0.22")) is not None  # long calls


def test_a_cut_between_rates_of_long_coprime_increments_is_judged_at_once() -> None:
    """Hour-long increments of 3607 s and 3593 s repeat together only every 150 days of
    talk: the rates are compared at the seconds a rate steps up, not second by second."""
    old = Rate(per_seconds=3607, charge=Decimal("9.00"))
    new = Rate(per_seconds=3593, charge=Decimal("1.00"))
    started = time.monotonic()
    assert dearer_after(old, new) is None
    assert dearer_after(new, old) == 1
    assert time.monotonic() - started < 2


def test_a_rise_in_one_period_is_found_and_named_by_when_it_costs_more() -> None:
    plain = tariffs_of(NO_CHANGES).packages["nationwide-300"]
    weekend = tariffs_of(
        NO_CHANGES.replace(
            "accounts:",
            "    periods:\n      - {name: sunday, time: ['00:00-24:00'], days: [sun], "
            "nationwide: {per_seconds: 60, charge: 0.25}}\naccounts:",
        )
    ).packages["nationwide-300"]
    assert rise(plain, weekend) == "local sun 00:00: 0.20/60s -> 0.25/60s, a 1 s call"
    assert rise(weekend, plain) is None
    assert rise(plain, plain.model_copy(update={"monthly_rent": Decimal("300.01")})) == (
        "monthly rent 300.00 -> 300.01"
    )
    more = plain.model_copy(update={"included_minutes": 100})
    assert rise(more, plain) == "included minutes 100 -> 0"


def test_a_new_tariff_file_raising_prices_from_today_is_refused() -> None:
    old = tariffs_of(NO_CHANGES)
    edited = tariffs_of(NO_CHANGES.replace("charge: 0.20}", "charge: 0.21}"))
    assert list(refused_price_rises(old, edited, date(2026, 12, 5))) == [
        (
            ("packages", "nationwide-300"),
            "4008207788: prices of nationwide-300 raised from 2026-12-05 (local mon 00:00: "
            "0.20/60s -> 0.21/60s, a 1 s call) refused: a price rise takes effect at least 30 "
            "days after it is announced; this one 0 day(s) after (announced 2026-12-05, "
            "effective 2026-12-05); give the new prices as a change with announced: and "
            "effective:",
        )
    ]
    assert list(refused_price_rises(edited, old, date(2026, 12, 5))) == []  # a cut


def test_a_new_tariff_file_may_add_a_rise_it_announces_30_days_ahead() -> None:
    old, new = tariffs_of(NO_CHANGES), tariffs_of(RISE_ON_NEW_YEAR)
    assert list(refused_price_rises(old, new, date(2026, 12, 2))) == []
    # Written into the file a day late, the change is announced a day late: 29 days.
    ((field, message),) = refused_price_rises(old, new, date(2026, 12, 3))
    assert field == ("packages", "nationwide-300", "changes", 0, "effective")
    assert message.endswith("this one 29 day(s) after (announced 2026-12-03, effective 2027-01-01)")


def test_a_change_raised_again_is_announced_again() -> None:
    old = tariffs_of(RISE_ON_NEW_YEAR)
    dearer = tariffs_of(RISE_ON_NEW_YEAR.replace("charge: 0.22}", "charge: 0.25}"))
    assert list(refused_price_rises(old, old, date(2026, 12, 20))) == []
    ((_, before),) = refused_price_rises(old, dearer, date(2026, 12, 20))
    assert "raised from 2027-01-01 (local mon 00:00: 0.22/60s -> 0.25/60s" in before
    assert before.endswith("12 day(s) after (announced 2026-12-20, effective 2027-01-01)")
    ((field, after),) = refused_price_rises(old, dearer, date(2027, 2, 1))  # in force already
    assert field == ("packages", "nationwide-300")
    assert "0 day(s) after (announced 2027-02-01, effective 2027-02-01)" in after


def test_a_number_moved_to_a_dearer_package_is_not_a_price_rise() -> None:
    """The move is agreed with the subscriber; rating.minimum checks its minimum."""
    old = tariffs_of(NO_CHANGES)
    moved = tariffs_of(
        NO_CHANGES.replace(
            "accounts:", "  dear:\n    nationwide: {per_seconds: 60, charge: 0.50}\naccounts:"
        ).replace("package: nationwide-300", "package: dear")
    )
    assert list(refused_price_rises(old, moved, date(2026, 12, 5))) == []


def test_a_prepaid_tier_taken_away_is_a_price_rise_for_the_numbers_on_it() -> None:
    """A number prepaying 1,800.00 has 10 % off; the file that drops the tier makes each of
    its calls dearer, which needs the notice as a dearer rate does."""
    tiered = NO_CHANGES.replace(
        "accounts:",
        "    prepaid_tiers:\n      - {prepayment: 1800.00, discount_percent: 10}\naccounts:",
    )
    prepaying = tiered.replace(
        "package: nationwide-300", "package: nationwide-300, prepayment: 1800.00"
    )
    old, new = (
        tariffs_of(prepaying),
        tariffs_of(prepaying.replace("discount_percent: 10", "discount_percent: 5")),
    )
    ((field, message),) = refused_price_rises(old, new, date(2026, 12, 5))
    assert field == ("packages", "nationwide-300")
    assert (
        "(local mon 00:00: 0.18/60s -> 0.19/60s, a 1 s call, prepaying 1800.00) refused" in message
    )
    untiered = tariffs_of(
        prepaying.replace(
            "    prepaid_tiers:\n      - {prepayment: 1800.00, discount_percent: 10}\n", ""
        )
    )
    assert len(list(refused_price_rises(old, untiered, date(2026, 12, 5)))) == 1
    assert (
        list(refused_price_rises(tariffs_of(tiered), tariffs_of(NO_CHANGES), date(2026, 12, 5)))
        == []
    )
