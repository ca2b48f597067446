"""Closing a month waits for its calls still in progress: a call answered on the month's
last evening may talk past midnight, and its charge counts toward the month it was
answered in, so a top-up booked before it ends would be too high (the ledger is
append-only: a booked top-up is never revised)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rating.closing import MonthNotClosable
from rating.ledger import LedgerEntry, LedgerKind
from rating.tariff_loader import parse_tariffs
from router.money.balance_alerts import BalanceAlerts
from router.money.billing import close_month, month_statement
from router.money.booking_alerts import Watch
from router.storage.cdr import (
    CDR,
    AddLeg,
    FinishCall,
    ForwardReason,
    Leg,
    Outcome,
    PostLedger,
    StartCall,
)
from router.storage.sqlite import SQLiteStore

SHANGHAI = ZoneInfo("Asia/Shanghai")
NUMBER, OTHER = "4000000008", "4000000009"
TARIFFS = parse_tariffs(
    "tariffs.yaml",
    f"""\
caller_tariffs:
  fixed: {{per_seconds: 60, charge: 0.11}}
  mobile: {{per_seconds: 60, charge: 0.15}}
  other: {{per_seconds: 60, charge: 0.11}}
packages:
  office:
    nationwide: {{per_seconds: 60, charge: 0.30}}
    minimum_monthly: 20.00
accounts:
  "{NUMBER}": {{package: office, opened: 2026-10-01, prepaid: false}}
  "{OTHER}": {{package: office, opened: 2026-10-01, prepaid: false}}
""",
)
CLOSING_DAY = date(2026, 12, 1)
WATCH = Watch(TARIFFS, BalanceAlerts())
"""Both accounts are postpaid: nothing to warn of."""


def at(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=SHANGHAI)


async def answered(
    store: SQLiteStore, call_id: str, when: datetime, seconds: int, started: bool = False
) -> None:
    """A finished call of NUMBER answered at `when`, priced at 0.30 a started minute;
    `started`: its start is stored already (a call still talking that now ends)."""
    charge = Decimal("0.30") * -(-seconds // 60)
    start = CDR(call_id, NUMBER, "01062345678", "01062345678", "fixed", when)
    await store.apply(
        [
            *([] if started else [StartCall(start)]),
            AddLeg(
                call_id, Leg(1, "01087654321", "ANSWER", when, 0, seconds, ForwardReason.PRIMARY)
            ),
            FinishCall(
                call_id,
                {
                    "answered_at": when,
                    "ended_at": when,
                    "billable_seconds": seconds,
                    "outcome": Outcome.ANSWERED,
                    "caller_share": Decimal("0.00"),
                    "callee_share": charge,
                    "total": charge,
                    "tariff_id": "office",
                },
            ),
            PostLedger(LedgerEntry(NUMBER, when, -charge, LedgerKind.CALL, call_id)),
        ]
    )


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    opened = SQLiteStore(tmp_path / "hotline400.db", zone=SHANGHAI)
    await opened.open()
    yield opened
    await opened.close()


async def test_closing_waits_for_a_call_still_talking_then_tops_up_what_is_missing(
    store: SQLiteStore,
) -> None:
    await answered(store, "c1", at(2026, 11, 5, 10, 0), 2000)  # 34 minutes: 10.20
    talking = CDR("c2", NUMBER, "053188889999", "053188889999", "fixed", at(2026, 11, 30, 23, 58))
    await store.apply([StartCall(talking)])
    for book in (False, True):  # neither shown nor booked
        with pytest.raises(MonthNotClosable, match=rf"in progress \({NUMBER}: 1\)"):
            await close_month(
                store, TARIFFS, [NUMBER, OTHER], "2026-11", CLOSING_DAY, book=book, watch=WATCH
            )
    assert [entry.kind for entry in await store.ledger(OTHER)] == []  # nothing booked for any
    # it ends at 00:40, a November call of 42 minutes: 12.60
    await answered(store, "c2", at(2026, 11, 30, 23, 58, 10), 2510, started=True)
    closed, booked = await close_month(
        store, TARIFFS, [NUMBER, OTHER], "2026-11", CLOSING_DAY, book=True, watch=WATCH
    )
    statement = closed[NUMBER][-1].statement
    assert (statement.call_charges, statement.minimum_topup) == (Decimal("22.80"), Decimal("0.00"))
    assert closed[OTHER][-1].statement.minimum_topup == Decimal("20.00")
    assert booked == 1


async def test_a_call_left_in_progress_by_a_crash_is_resolved_by_closing_it_as_interrupted(
    store: SQLiteStore,
) -> None:
    """What a router that restarts without AMI does with its calls left in progress (its
    adoption closes them as interrupted): then the month closes."""
    stranded = CDR("c9", NUMBER, "053188889999", "053188889999", "fixed", at(2026, 11, 30, 20))
    await store.apply([StartCall(stranded)])
    with pytest.raises(MonthNotClosable, match="adopt"):
        await close_month(store, TARIFFS, [NUMBER], "2026-11", CLOSING_DAY, book=False, watch=WATCH)
    assert await store.close_interrupted(at(2026, 12, 1, 8)) == 1
    closed, _ = await close_month(
        store, TARIFFS, [NUMBER], "2026-11", CLOSING_DAY, book=True, watch=WATCH
    )
    assert closed[NUMBER][-1].statement.minimum_topup == Decimal("20.00")


async def test_calls_that_cannot_belong_to_the_month_do_not_hold_it(store: SQLiteStore) -> None:
    """A call started after the month's end is the next month's; one in progress since long
    before the month began cannot have been answered in it."""
    for call_id, started in (("late", at(2026, 12, 1, 0, 0, 1)), ("old", at(2026, 10, 20))):
        await store.apply([StartCall(CDR(call_id, NUMBER, "0531", "0531", "fixed", started))])
    closed, _ = await close_month(
        store, TARIFFS, [NUMBER], "2026-11", CLOSING_DAY, book=False, watch=WATCH
    )
    assert closed[NUMBER][-1].statement.number == NUMBER
    statement = (await month_statement(store, TARIFFS, NUMBER, "2026-11")).statement
    assert statement.minimum_topup == Decimal("20.00")
