"""A number that changes hands mid-month: the next holder's caps count its own calls only.

The past holder's calls of the day and month stay on its holding (schema version 21): the
new holder of 4000000009 (a daily cost cap of 2.00) and of 4000000008 (a monthly cap of 2
calls) starts from nothing on the day the number came back to the pool, and its month's
statement counts its own calls and fees. The periods of the
lifecycle are set to nothing here (no notice, no freeze, a review decided at once), as a
configuration may, so that both holdings fall on one day.

Real daemons with the Asterisk simulator over TCP; the inventory moved through its store.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from dialplan.calendar import OfficialCalendar
from numbering import lifecycle
from numbering.lifecycle import NumberRecord
from numbering.rules import NumberRules, Timing
from rating.ledger import LedgerEntry, LedgerKind
from router.money.billing import month_statement
from router.numbers.inventory import Inventory
from router.storage.cdr import Outcome
from router.storage.protocol import Store
from tests.conftest import MONDAY_MORNING, UNWATCHED, call, finished_cdr, running_router

PREPAID, POSTPAID = "4000000008", "4000000009"
AT_ONCE = NumberRules(
    timing=Timing(cancellation_notice_days=0, cancelled_freeze_days=0, review_min_working_days=0)
)
HOUR = timedelta(hours=1)
REFRESH = 0.2
"""router.yaml's status_refresh in these tests."""


class Clock:
    """The router's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def held_by(store: Store, number: str, subscriber: str, provider: str, at: datetime) -> None:
    """Reserve, apply for and approve `number` for `subscriber` at `at`."""
    inventory = Inventory(store, AT_ONCE, OfficialCalendar(), UNWATCHED)
    calendar = OfficialCalendar()
    for action in (
        lambda r, at: lifecycle.reserve(r, provider, at, AT_ONCE),
        lambda r, at: lifecycle.apply(r, subscriber, provider, at, AT_ONCE),
        lambda r, at: lifecycle.submit(r, at, AT_ONCE, calendar),
        lambda r, at: lifecycle.approve(r, "ops", at, AT_ONCE, calendar),
    ):
        await inventory.act(number, at, action)


async def back_to_the_pool(store: Store, number: str, at: datetime) -> None:
    """Cancelled at `at`: with no notice and no freeze, back in the pool at once."""
    inventory = Inventory(store, AT_ONCE, OfficialCalendar(), UNWATCHED)
    await inventory.act(number, at, lambda r, at: lifecycle.cancel(r, "ops", at, AT_ONCE))
    await inventory.act(number, at, None)  # the freeze of no length runs out


async def test_the_next_holders_daily_cost_cap_counts_none_of_the_past_holders_calls(
    tmp_path: Path,
) -> None:
    clock = Clock(MONDAY_MORNING - 3 * HOUR)
    async with running_router(tmp_path, clock=clock, status_refresh=REFRESH) as router:
        store = router.store
        await store.add_numbers([NumberRecord(POSTPAID)], MONDAY_MORNING - 10 * 24 * HOUR)
        await held_by(store, POSTPAID, "alpha", "sp-east", MONDAY_MORNING - 4 * HOUR)
        await asyncio.sleep(REFRESH + 0.3)
        for n in range(3):  # 0.60 each: 1.80 of the day's 2.00
            await call(router, dialled=POSTPAID, uniqueid=f"alpha.{n}")
            assert (await finished_cdr(router, f"alpha.{n}")).callee_share == Decimal("0.60")
        await asyncio.sleep(0.3)  # the charges written
        await back_to_the_pool(store, POSTPAID, MONDAY_MORNING - 2 * HOUR)
        await held_by(store, POSTPAID, "beta", "sp-west", MONDAY_MORNING - HOUR)
        clock.now = MONDAY_MORNING
        await asyncio.sleep(REFRESH + 0.3)

        result = await call(router, dialled=POSTPAID, uniqueid="beta.1")
        cdr = await finished_cdr(router, "beta.1")
        await asyncio.sleep(0.3)
        usage = await store.usage(POSTPAID, "2026-11", "2026-11-23")
        month = await month_statement(store, router.plans.tariffs, POSTPAID, "2026-11")

    # 2.00 of room affords 16 increments of 6 s at 0.12; the past holder's 1.80 left one
    assert result.commands[0] == 'EXEC Dial "Local/13800000051@phones,20,L(96000)"'
    assert (cdr.outcome, cdr.billable_seconds, cdr.callee_share) == (
        Outcome.ANSWERED,
        30,
        Decimal("0.60"),
    )
    assert (usage.day_cost, usage.month_cost) == (Decimal("0.60"), Decimal("0.60"))
    statement = month.statement  # beta's November: its call and its own opening fee only
    assert (statement.usage.calls, statement.call_charges, statement.number_fees) == (
        1,
        Decimal("0.60"),
        Decimal("600.00"),
    )
    assert statement.opening_balance == Decimal("0.00")


async def test_the_next_holders_monthly_call_cap_counts_none_of_the_past_holders_calls(
    tmp_path: Path,
) -> None:
    clock = Clock(MONDAY_MORNING - 3 * HOUR)
    async with running_router(tmp_path, clock=clock, status_refresh=REFRESH) as router:
        store = router.store
        await store.add_numbers([NumberRecord(PREPAID)], MONDAY_MORNING - 10 * 24 * HOUR)
        await held_by(store, PREPAID, "alpha", "sp-east", MONDAY_MORNING - 4 * HOUR)
        paid = LedgerEntry(
            PREPAID, MONDAY_MORNING - 4 * HOUR, Decimal("700.00"), LedgerKind.PAYMENT, "alpha-1"
        )
        await store.post_ledger([paid])
        await asyncio.sleep(REFRESH + 0.3)
        for n in range(2):  # the cap of 2 calls this month
            await call(router, dialled=PREPAID, uniqueid=f"alpha.{n}")
            assert (await finished_cdr(router, f"alpha.{n}")).outcome is Outcome.ANSWERED
        await asyncio.sleep(0.3)
        await back_to_the_pool(store, PREPAID, MONDAY_MORNING - 2 * HOUR)
        await held_by(store, PREPAID, "beta", "sp-west", MONDAY_MORNING - HOUR)
        paid = LedgerEntry(
            PREPAID, MONDAY_MORNING - HOUR / 2, Decimal("700.00"), LedgerKind.PAYMENT, "beta-1"
        )
        await store.post_ledger([paid])
        clock.now = MONDAY_MORNING
        await asyncio.sleep(REFRESH + 0.3)

        results = [await call(router, dialled=PREPAID, uniqueid=f"beta.{n}") for n in range(3)]
        await asyncio.sleep(0.3)
        usage = await store.usage(PREPAID, "2026-11", "2026-11-23")

    statuses = [result.variables["HOTLINE_STATUS"] for result in results]
    assert statuses == ["answered", "answered", "capped"]
    assert usage.month_calls == 2
