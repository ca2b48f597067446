"""A larger prepayment can buy a lower rate (domain.md: "More prepayment can buy a lower
rate"): a package's prepaid tiers discount its usage rates for accounts prepaying enough."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from dialplan.errors import ConfigError
from rating.call import RatedCall
from rating.pricing import price
from rating.rates import Rate
from rating.tariff_loader import parse_tariffs

NIGHT = datetime(2026, 11, 24, 23, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
NOON = NIGHT.replace(hour=12)
TEXT = """\
caller_tariffs:
  fixed: {per_seconds: 60, charge: 0.11}
  mobile: {per_seconds: 60, charge: 0.15}
  other: {per_seconds: 60, charge: 0.11}
packages:
  nationwide-300:
    nationwide: {per_seconds: 60, charge: 0.20}
    periods:
      - {name: off-peak, time: ["22:00-07:00"], nationwide: {per_seconds: 60, charge: 0.15}}
    prepaid_tiers:
      - {prepayment: 1800.00, discount_percent: 10}
      - {prepayment: 3600.00, discount_percent: 20}
accounts:
  "4008000001": {package: nationwide-300}
  "4008000002": {package: nationwide-300, prepayment: 1799.99}
  "4008000003": {package: nationwide-300, prepayment: 1800.00}
  "4008000004": {package: nationwide-300, prepayment: 6000.00}
"""
TARIFFS = parse_tariffs("tariffs.yaml", TEXT)


def ten_minutes(number: str, at: datetime = NOON) -> tuple[Decimal, str]:
    priced = price(RatedCall(number, "mobile", at, 600, "021", "021"), TARIFFS)
    return priced.callee_share, priced.tariff_id


def test_the_tier_an_accounts_prepayment_reaches_lowers_its_rate() -> None:
    assert ten_minutes("4008000001") == (Decimal("2.00"), "nationwide-300")
    assert ten_minutes("4008000002") == (Decimal("2.00"), "nationwide-300")
    assert ten_minutes("4008000003") == (Decimal("1.80"), "nationwide-300+prepaid1800.00")
    assert ten_minutes("4008000004") == (Decimal("1.60"), "nationwide-300+prepaid3600.00")


def test_the_discount_applies_to_period_rates_rounded_to_the_fen() -> None:
    assert ten_minutes("4008000003", NIGHT)[0] == Decimal("1.40")  # 0.15 * 0.90 = 0.135
    assert ten_minutes("4008000004", NIGHT)[0] == Decimal("1.20")


def test_the_minimum_follows_the_discounted_rate_the_number_is_charged() -> None:
    assert TARIFFS.charged_rate("4008000001", NOON.date()) == Decimal("0.2000")
    assert TARIFFS.charged_rate("4008000004", NOON.date()) == Decimal("0.1600")


def test_a_larger_prepayment_never_buys_a_dearer_rate() -> None:
    wrong = TEXT.replace("discount_percent: 20", "discount_percent: 5")
    with pytest.raises(ConfigError) as caught:
        parse_tariffs("tariffs.yaml", wrong)
    assert [str(problem) for problem in caught.value.problems] == [
        "tariffs.yaml:6 packages.nationwide-300: a larger prepayment buys a lower rate: tiers "
        "go by growing prepayment and discount (3600.00/5% after 1800.00/10%)"
    ]


def tiers_of(long_distance: str, *tiers: str) -> str:
    listed = "".join(f"      - {tier}\n" for tier in tiers)
    return f"""\
caller_tariffs:
  fixed: {{per_seconds: 60, charge: 0.11}}
  mobile: {{per_seconds: 60, charge: 0.15}}
  other: {{per_seconds: 60, charge: 0.11}}
packages:
  hall:
    local: {{per_seconds: 60, charge: 0.20}}
    long_distance: {long_distance}
    prepaid_tiers:
{listed}accounts:
  "4008000001": {{package: hall, prepayment: 1000.00}}
"""


def test_a_tier_whose_discount_rounds_back_to_the_rate_is_refused() -> None:
    """5% off 0.06 per 6 s is 0.057, which rounds back to 0.06: the prepayment would buy
    nothing."""
    text = tiers_of("{per_seconds: 6, charge: 0.06}", "{prepayment: 1000.00, discount_percent: 5}")
    with pytest.raises(ConfigError) as caught:
        parse_tariffs("tariffs.yaml", text)
    assert [str(problem) for problem in caught.value.problems] == [
        "tariffs.yaml:6 packages.hall: a larger prepayment buys a lower rate: 1000.00/5% "
        "leaves long_distance 0.06/6s at 0.06 (each increment's charge is rounded to the "
        "fen); give a larger discount"
    ]


def test_a_larger_tier_that_rounds_to_the_same_rate_is_refused() -> None:
    """10% and 15% off 0.06 per 6 s both round to 0.05."""
    text = tiers_of(
        "{per_seconds: 6, charge: 0.06}",
        "{prepayment: 1000.00, discount_percent: 10}",
        "{prepayment: 2000.00, discount_percent: 15}",
    )
    with pytest.raises(ConfigError) as caught:
        parse_tariffs("tariffs.yaml", text)
    assert "2000.00/15% leaves long_distance 0.06/6s at 0.05" in str(caught.value.problems[0])


def test_tiers_that_lower_every_rate_are_taken() -> None:
    text = tiers_of(
        "{per_seconds: 60, charge: 0.30}",
        "{prepayment: 1000.00, discount_percent: 10}",
        "{prepayment: 2000.00, discount_percent: 20}",
    )
    assert parse_tariffs("tariffs.yaml", text).package_on("4008000001", NOON.date()).local == (
        Rate(per_seconds=60, charge=Decimal("0.18"))
    )
