"""The pure money rules of closing a month and of re-rating a call (rating.closing,
rating.rerating), without a store: the day and the time are passed in."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from rating.call import Shares
from rating.closing import (
    MonthNotClosable,
    check_closable,
    check_not_closed,
    check_opened,
    closed_by,
    closing_entries,
    closing_generation,
    month_span,
    not_yet_booked,
    reopening_entries,
)
from rating.ledger import LedgerEntry, LedgerKind
from rating.rerating import rerated_call_id, rerating_adjustment
from rating.tariff import Tariffs

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=SHANGHAI)
D = Decimal


def test_a_month_spans_its_local_days_and_december_runs_into_the_next_year() -> None:
    assert month_span("2026-12", SHANGHAI) == (
        datetime(2026, 12, 1, tzinfo=SHANGHAI),
        datetime(2027, 1, 1, tzinfo=SHANGHAI),
    )
    with pytest.raises(ValueError, match="not a month"):
        month_span("2026-13", SHANGHAI)


def test_a_month_closes_once_it_is_over_and_every_call_has_a_price() -> None:
    with pytest.raises(MonthNotClosable, match="not over yet"):
        check_closable("2026-11", SHANGHAI, date(2026, 11, 30), {})
    with pytest.raises(
        MonthNotClosable, match=r"4000000008: 2\).*--from 2026-10-31 --to 2026-11-30"
    ):
        check_closable("2026-11", SHANGHAI, date(2026, 12, 1), {"4000000008": 2, "4000000009": 0})
    check_closable("2026-11", SHANGHAI, date(2026, 12, 1), {"4000000009": 0})


def test_a_month_does_not_close_while_a_call_that_may_belong_to_it_is_in_progress() -> None:
    talking = {"4000000008": 1, "4000000009": 0, "4000000010": 2}
    with pytest.raises(MonthNotClosable) as refused:
        check_closable("2026-11", SHANGHAI, date(2026, 12, 1), {}, talking)
    message = str(refused.value)
    assert "still in progress (4000000008: 1, 4000000010: 2)" in message
    assert "close 2026-11 when they have ended" in message
    assert "hotline400 cdr --outcome in_progress" in message
    assert "adopt_calls_of" in message and "interrupted" in message
    with pytest.raises(MonthNotClosable, match=r"--outcome in_progress --number 4000000008\)"):
        check_closable("2026-11", SHANGHAI, date(2026, 12, 1), {}, {"4000000008": 1})
    check_closable("2026-11", SHANGHAI, date(2026, 12, 1), {}, {"4000000009": 0})


def test_only_entries_the_ledger_does_not_hold_are_still_to_book() -> None:
    rent = LedgerEntry("4000000008", NOW, D("-50.00"), LedgerKind.RENT, "2026-11")
    topup = LedgerEntry("4000000008", NOW, D("-17.60"), LedgerKind.MINIMUM_TOPUP, "2026-11")
    assert not_yet_booked([rent, topup], [rent]) == (topup,)


def test_a_call_priced_lower_is_credited_the_difference_under_its_nth_rerating_ref() -> None:
    old = Shares(D("0.22"), D("0.60"), D("0.82"), "office@v1")
    new = Shares(D("0.22"), D("0.30"), D("0.52"), "office@v2")

    entry = rerating_adjustment("4000000008", "c1", old, new, NOW, earlier=1)
    assert entry == LedgerEntry(
        "4000000008",
        NOW,
        D("0.30"),
        LedgerKind.ADJUSTMENT,
        "rerate:c1:2",
        "re-rated call c1: office@v1 0.60 -> office@v2 0.30",
    )
    assert rerated_call_id(entry.ref) == "c1"
    back = rerating_adjustment("4000000008", "c1", new, old, NOW, earlier=2)
    assert back is not None and (back.amount, back.ref) == (D("-0.30"), "rerate:c1:3")


def test_a_call_whose_share_stays_the_same_books_nothing() -> None:
    old = Shares(D("0.22"), D("0.60"), D("0.82"), "office@v1")
    renamed = old._replace(tariff_id="office@v2")
    assert rerating_adjustment("4000000008", "c1", old, renamed, NOW, earlier=0) is None
    assert rerated_call_id("2026-11") is None


def test_no_month_before_the_account_was_opened_is_closed() -> None:
    check_opened("2026-03", SHANGHAI, "4006001234", date(2026, 3, 31))  # the month it opened
    with pytest.raises(MonthNotClosable, match="opened on 2026-03-01: 2026-02 is before that"):
        check_opened("2026-02", SHANGHAI, "4006001234", date(2026, 3, 1))
    with pytest.raises(MonthNotClosable, match="no opening day"):
        check_opened("2026-02", SHANGHAI, "4006001234", None)


def test_a_reopened_month_closes_under_the_next_generation_of_refs() -> None:
    rent = LedgerEntry("4006001234", NOW, D("-100.00"), LedgerKind.RENT, "2026-11")
    assert closing_generation("2026-11", [rent]) == 1
    assert closed_by("2026-11", [rent]) == (rent,)
    with pytest.raises(MonthNotClosable, match=r"already closed for 4006001234 \(rent 100\.00\)"):
        check_not_closed("2026-11", "4006001234", [rent])
    [reversal] = reopening_entries("2026-11", [rent], "li.wei", "typo", date(2026, 12, 3))
    assert (reversal.kind, reversal.ref, reversal.amount, reversal.at) == (
        LedgerKind.ADJUSTMENT,
        "reopen 2026-11#1 rent",
        D("100.00"),
        NOW,
    )
    assert reversal.note == "reverses rent 2026-11: reopened 2026-12-03 by li.wei: typo"
    assert closing_generation("2026-11", [rent, reversal]) == 2
    assert closed_by("2026-11", [rent, reversal]) == ()
    check_not_closed("2026-11", "4006001234", [rent, reversal])


def test_closing_tops_a_number_up_to_its_own_minimum_not_its_packages() -> None:
    fixed = {"per_seconds": 60, "charge": "0.11"}
    tariffs = Tariffs.model_validate(
        {
            "caller_tariffs": {"fixed": fixed, "mobile": fixed, "other": fixed},
            "packages": {
                "flat": {"nationwide": {"per_seconds": 60, "charge": "0.20"}, "minimum_monthly": 50}
            },
            "accounts": {
                "4000000001": {"package": "flat"},
                "4000000002": {"package": "flat", "minimum_monthly": "80.00"},
            },
        }
    )

    def topup(number: str) -> list[tuple[Decimal, str]]:
        entries = closing_entries(tariffs, number, "2026-11", D("12.00"))
        return [(e.amount, e.note) for e in entries if e.kind is LedgerKind.MINIMUM_TOPUP]

    assert topup("4000000001") == [(D("-38.00"), "minimum 50.00, calls 12.00")]
    assert topup("4000000002") == [(D("-68.00"), "minimum 80.00, calls 12.00")]


def test_the_month_an_account_opens_in_is_charged_for_its_days_from_the_opening_day() -> None:
    """Opened on 2026-11-21: 10 of November's 30 days, so a third of the rent (60.00) and of
    the minimum (30.00); December, the first whole month, is charged whole."""
    fixed = {"per_seconds": 60, "charge": "0.11"}
    tariffs = Tariffs.model_validate(
        {
            "caller_tariffs": {"fixed": fixed, "mobile": fixed, "other": fixed},
            "packages": {
                "office": {
                    "nationwide": {"per_seconds": 60, "charge": "0.20"},
                    "monthly_rent": "60.00",
                    "minimum_monthly": "30.00",
                }
            },
            "accounts": {"4000000001": {"package": "office", "opened": "2026-11-21"}},
        }
    )

    def charged(month: str, opened: date) -> list[tuple[LedgerKind, Decimal, str]]:
        entries = closing_entries(tariffs, "4000000001", month, D("4.00"), opened=opened)
        return [(e.kind, e.amount, e.note) for e in entries]

    assert charged("2026-11", date(2026, 11, 21)) == [
        (LedgerKind.RENT, D("-20.00"), "office rent 2026-11 (10 of 30 days)"),
        (LedgerKind.MINIMUM_TOPUP, D("-6.00"), "minimum 10.00 (10 of 30 days), calls 4.00"),
    ]
    assert charged("2026-12", date(2026, 11, 21)) == [
        (LedgerKind.RENT, D("-60.00"), "office rent 2026-12"),
        (LedgerKind.MINIMUM_TOPUP, D("-26.00"), "minimum 30.00, calls 4.00"),
    ]
    # 19 of February's 28 days: 60.00 * 19/28 = 40.714... and 30.00 * 19/28 = 20.357..., to the fen
    assert charged("2027-02", date(2027, 2, 10)) == [
        (LedgerKind.RENT, D("-40.71"), "office rent 2027-02 (19 of 28 days)"),
        (LedgerKind.MINIMUM_TOPUP, D("-16.36"), "minimum 20.36 (19 of 28 days), calls 4.00"),
    ]
    assert charged("2026-11", date(2026, 11, 1)) == charged("2026-11", date(2026, 10, 20))
