"""The ledger of an account and the monthly statement built from it and the priced calls."""

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from rating.call import Price
from rating.ledger import LedgerEntry, LedgerKind, call_entry, feature_fees_due
from rating.minimum import minimum_topup
from rating.statement import CallLine, Statement, count_call, settle
from rating.tariff_loader import parse_tariffs

SHANGHAI = ZoneInfo("Asia/Shanghai")
D = Decimal
NUMBER = "4006001234"


def at(day: int, hour: int = 12, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


def entry(
    kind: str, amount: str, when: datetime, ref: str = "", number: str = NUMBER
) -> LedgerEntry:
    return LedgerEntry(number, when, D(amount), LedgerKind(kind), ref)


def line(
    when: datetime, province: str | None, seconds: int, callee: str, caller: str = "0.22"
) -> CallLine:
    return CallLine(NUMBER, when, province, seconds, D(callee), D(caller))


def statement_of(
    month: str,
    opening: str,
    calls: list[CallLine],
    ledger: list[LedgerEntry],
    number: str = NUMBER,
) -> Statement:
    """The statement of `number` and `month` as billing makes it: calls counted one by
    one as they are read, then the ledger settled."""
    statement = Statement(number, month, D(opening))
    for call in calls:
        count_call(statement, call, SHANGHAI)
    settle(statement, ledger, SHANGHAI)
    return statement


def test_a_priced_call_is_debited_with_the_subscriber_share() -> None:
    priced = Price(
        D("0.33"), D("0.48"), D("0.81"), "regional-100@2026-11", "local 0.12/60s", 240, 0
    )
    booked = call_entry(NUMBER, "1764000000.17", at(24), priced)
    assert (booked.amount, booked.kind, booked.ref) == (D("-0.48"), "call", "1764000000.17")
    assert booked.note == "local 0.12/60s"


def test_a_call_within_the_included_minutes_is_booked_at_zero() -> None:
    priced = Price(D("0.22"), D("0.00"), D("0.22"), "p", "local 0.12/60s", 60, 60)
    assert str(call_entry(NUMBER, "x", at(24), priced).amount) == "0.00"


@pytest.mark.parametrize(
    ("kind", "amount", "when"),
    [
        ("rent", "100.00", at(1)),
        ("call", "0.12", at(1)),
        ("payment", "-10.00", at(1)),
        ("adjustment", "0.001", at(1)),
        ("adjustment", "1.00", datetime(2026, 11, 1)),
    ],
)
def test_a_ledger_entry_keeps_the_sign_rules_fen_and_aware_times(
    kind: str, amount: str, when: datetime
) -> None:
    with pytest.raises(ValueError):
        entry(kind, amount, when)


def test_feature_fees_are_due_in_full_on_the_day_the_feature_is_switched_on() -> None:
    tariffs = parse_tariffs(
        "tariffs.yaml",
        """\
caller_tariffs:
  fixed: {per_seconds: 60, charge: 0.11}
  mobile: {per_seconds: 60, charge: 0.15}
  other: {per_seconds: 60, charge: 0.11}
features: {recording: 100.00, ivr: 200.00}
packages:
  p: {nationwide: {per_seconds: 60, charge: 0.20}}
accounts:
  "4006001234":
    package: p
    features: {recording: 2026-11-05, ivr: 2026-12-01}
""",
    )
    due = feature_fees_due(tariffs, NUMBER, date(2026, 11, 5))
    assert [(e.amount, e.kind, e.ref, e.at) for e in due] == [
        (D("-100.00"), LedgerKind.FEATURE_FEE, "recording@2026-11-05", at(5, 0))
    ]
    assert due[0].note == "call recording switched on 2026-11-05"
    assert feature_fees_due(tariffs, NUMBER, date(2026, 11, 6)) == []


CALLS = [
    line(at(2, 9), "山东", 120, "0.24"),
    line(at(2, 15), "北京", 60, "0.25"),
    line(at(30, 23, 58), "山东", 300, "0.75"),  # runs past midnight into December
    line(datetime(2026, 11, 30, 16, 0, 30, tzinfo=UTC), "山东", 60, "0.12"),  # Dec 1, 00:00:30
    line(at(31, 10, month=10), "山东", 60, "0.12"),
    line(at(15), None, 6, "0.06"),
]
LEDGER = [
    entry("rent", "-100.00", at(1, 0), "2026-11"),
    entry("call", "-0.24", at(2, 9), "c1"),
    entry("call", "-0.25", at(2, 15), "c2"),
    entry("call", "-0.75", at(30, 23, 58), "c3"),
    entry("call", "-0.12", datetime(2026, 11, 30, 16, 0, 30, tzinfo=UTC), "c4"),
    entry("call", "-0.06", at(15), "c6"),
    entry("feature_fee", "-100.00", at(5, 0), "recording"),
    entry("payment", "300.00", at(10), "bank transfer"),
    entry("adjustment", "5.00", at(12), "goodwill"),
    entry("payment", "999.00", at(3), "other subscriber", number="4001234567"),
]


def test_a_monthly_statement_adds_up_charges_payments_and_the_closing_balance() -> None:
    statement = statement_of("2026-11", "500.00", CALLS, LEDGER)
    assert (statement.rent, statement.call_charges, statement.feature_fees) == (
        D("100.00"),
        D("1.30"),
        D("100.00"),
    )
    assert (statement.payments, statement.adjustments) == (D("300.00"), D("5.00"))
    assert statement.charges == D("201.30")
    assert statement.closing_balance == D("603.70")


def test_calls_are_counted_by_the_day_and_province_they_were_answered_in() -> None:
    statement = statement_of("2026-11", "0.00", CALLS, LEDGER)
    assert (statement.usage.calls, statement.usage.billable_seconds) == (4, 486)
    assert statement.usage.callee_charges == statement.call_charges
    assert {day: (u.calls, u.billable_seconds) for day, u in statement.by_day.items()} == {
        date(2026, 11, 2): (2, 180),
        date(2026, 11, 15): (1, 6),
        date(2026, 11, 30): (1, 300),
    }
    assert {
        name: (u.calls, str(u.callee_charges)) for name, u in statement.by_province.items()
    } == {
        "unknown": (1, "0.06"),
        "北京": (1, "0.25"),
        "山东": (2, "0.99"),
    }
    assert statement.by_day[date(2026, 11, 2)].minutes == D("3.00")
    assert statement.usage.caller_charges == D("0.88")


def test_a_statement_holds_its_own_numbers_calls_and_entries_only() -> None:
    other = statement_of("2026-11", "0.00", CALLS, LEDGER, number="4001234567")
    assert (other.usage.calls, other.payments, other.closing_balance) == (
        0,
        D("999.00"),
        D("999.00"),
    )
    quiet = statement_of("2026-11", "20.00", CALLS, LEDGER, number="4008207788")
    assert (quiet.usage.calls, quiet.charges, quiet.closing_balance) == (0, D("0"), D("20.00"))


def test_the_december_statement_holds_the_call_answered_after_midnight() -> None:
    december = statement_of("2026-12", "0.00", CALLS, LEDGER)
    assert (december.usage.calls, december.call_charges) == (1, D("0.12"))


def test_the_minimum_top_up_is_reckoned_on_the_month_call_charges() -> None:
    statement = statement_of("2026-11", "0.00", CALLS, LEDGER)
    assert minimum_topup(statement.call_charges, D("100.00")) == D("98.70")
    topped_up = [*LEDGER, entry("minimum_topup", "-98.70", at(30, 23, 59), "2026-11")]
    closed = statement_of("2026-11", "500.00", CALLS, topped_up)
    assert (closed.minimum_topup, closed.closing_balance) == (D("98.70"), D("505.00"))


@pytest.mark.parametrize("month", ["2026-13", "2026/11", "Nov"])
def test_a_month_is_written_like_2026_11(month: str) -> None:
    with pytest.raises(ValueError, match="not a month"):
        statement_of(month, "0.00", [], [])
