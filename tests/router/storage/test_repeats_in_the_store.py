"""A uniqueid repeated where the router's memory of recent sessions cannot see it: on another
router sharing the store, or on the same router after a restart. Each session is a call of
its own: the store keys the later one's CDR `UNIQUEID~N` (the next N free there) as its
start is written, and every later write of that session (legs, finish, price, ledger entry)
follows it there, a journal replay too. A replay of a start the store already holds is
the same session, never a repeat.

Before, the store ignored the second start (ON CONFLICT DO NOTHING), wrote the second
session's legs, answer and end over the first call's, and dropped its ledger entry: a call
routed and never charged, without a word.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from rating.ledger import LedgerEntry, LedgerKind
from router.daemon import Daemon
from router.storage.cdr import (
    CDR,
    AddLeg,
    FinishCall,
    ForwardReason,
    Leg,
    Outcome,
    PostLedger,
    Rekeyed,
    StartCall,
)
from router.storage.location import build_store
from router.storage.protocol import Store
from tests.conftest import (
    MONDAY_MORNING,
    SHANGHAI,
    call,
    finished_cdr,
    running_router,
    scratch_schema,
)

POSTPAID = "4000000009"
"""Priced 0.82 for a call answered by 13800000051, 0.60 of it the subscriber's (the e2e config)."""


def charged(ledger: list[LedgerEntry]) -> list[tuple[str, Decimal]]:
    return sorted((e.ref, e.amount) for e in ledger if e.kind is LedgerKind.CALL)


def repeat_warnings(caplog: pytest.LogCaptureFixture, uniqueid: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and f"uniqueid {uniqueid}" in record.getMessage()
    ]


async def settled(router: Daemon, call_id: str) -> CDR:
    cdr = await finished_cdr(router, call_id)
    await asyncio.sleep(0.3)  # the price written after the end is in the store too
    return cdr


async def test_two_routers_on_one_store_each_keep_a_call_of_one_uniqueid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with scratch_schema() as url, AsyncExitStack() as stack:
        first, second = [
            await stack.enter_async_context(
                running_router(tmp_path / name, store=url, router_name=name)
            )
            for name in ("r1", "r2")
        ]
        with caplog.at_level(logging.WARNING):
            one = await call(first, dialled=POSTPAID, uniqueid="rep.1")
            first_cdr = await settled(first, "rep.1")
            two = await call(second, dialled=POSTPAID, uniqueid="rep.1")
            second_cdr = await settled(second, "rep.1~2")
        first_after = await second.store.get_cdr("rep.1")
        ledger = await second.store.ledger(POSTPAID)
    assert one.variables["HOTLINE_STATUS"] == two.variables["HOTLINE_STATUS"] == "answered"
    assert first_after == first_cdr
    assert [(c.outcome, c.total, len(c.legs)) for c in (first_cdr, second_cdr)] == [
        (Outcome.ANSWERED, Decimal("0.82"), 1)
    ] * 2
    assert charged(ledger) == [("rep.1", Decimal("-0.60")), ("rep.1~2", Decimal("-0.60"))]
    [warning] = repeat_warnings(caplog, "rep.1")
    assert "rep.1~2" in warning


async def test_a_router_restarted_between_two_sessions_of_one_uniqueid_keeps_both(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = str(tmp_path / "hotline400.db")
    async with running_router(tmp_path / "before", database=database) as router:
        await call(router, dialled=POSTPAID, uniqueid="rep.2")
        first_cdr = await settled(router, "rep.2")
    later = MONDAY_MORNING + timedelta(minutes=1)
    async with running_router(tmp_path / "after", database=database, clock=lambda: later) as router:
        with caplog.at_level(logging.WARNING):
            await call(router, dialled=POSTPAID, uniqueid="rep.2")
            second_cdr = await settled(router, "rep.2~2")
        first_after = await router.store.get_cdr("rep.2")
        ledger = await router.store.ledger(POSTPAID)
        month = await router.store.usage(POSTPAID, "2026-11", "2026-11-23")
    assert first_after == first_cdr
    assert (second_cdr.started_at, second_cdr.total) == (later, Decimal("0.82"))
    assert charged(ledger) == [("rep.2", Decimal("-0.60")), ("rep.2~2", Decimal("-0.60"))]
    assert month.month_cost == Decimal("1.20")
    assert len(repeat_warnings(caplog, "rep.2")) == 1


START = MONDAY_MORNING


def started(call_id: str, at_minute: int) -> CDR:
    return CDR(
        call_id=call_id,
        number=POSTPAID,
        caller_raw="13900000001",
        caller="13900000001",
        caller_kind="mobile",
        started_at=START + timedelta(minutes=at_minute),
    )


def leg_of(at_minute: int) -> Leg:
    return Leg(
        1,
        "13800000051",
        "ANSWER",
        START + timedelta(minutes=at_minute),
        5,
        30,
        ForwardReason.PRIMARY,
    )


def charge(ref: str, amount: str) -> PostLedger:
    return PostLedger(LedgerEntry(POSTPAID, START, Decimal(amount), LedgerKind.CALL, ref, "call"))


def answered(call_id: str) -> FinishCall:
    return FinishCall(call_id, {"outcome": Outcome.ANSWERED, "billable_seconds": 30})


@asynccontextmanager
async def store_of(url: str, router: str) -> AsyncIterator[Store]:
    """A router's own store on `url` (a new one: a restart has forgotten every repeat)."""
    store = build_store(url, zone=SHANGHAI, router=router)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_a_replayed_start_the_store_holds_is_the_same_call(store_url: str) -> None:
    async with store_of(store_url, "r1") as store:
        await store.apply([StartCall(started("rep.3", 0))])
        await store.apply([StartCall(started("rep.3", 0)), AddLeg("rep.3", leg_of(0))])
        await store.apply([StartCall(started("rep.3", 0)), answered("rep.3")])
        cdrs = await store.get_cdrs(["rep.3", "rep.3~2"])
    assert [(c.call_id, c.outcome, len(c.legs)) for c in cdrs] == [("rep.3", Outcome.ANSWERED, 1)]


async def test_a_repeat_and_its_replays_keep_to_the_id_it_was_given(store_url: str) -> None:
    async with store_of(store_url, "r1") as store:
        await store.apply([StartCall(started("rep.4", 0)), charge("rep.4", "-0.82")])
    async with store_of(store_url, "r2") as store:
        repeat = [StartCall(started("rep.4", 5)), AddLeg("rep.4", leg_of(5))]
        await store.apply(repeat)
        await store.apply([*repeat, answered("rep.4"), charge("rep.4", "-0.60")])
        assert store.stored_id("rep.4") == "rep.4~2"
        cdrs = await store.get_cdrs(["rep.4", "rep.4~2", "rep.4~3"])
        ledger = await store.ledger(POSTPAID)
    assert [(c.call_id, c.outcome, len(c.legs)) for c in cdrs] == [
        ("rep.4~2", Outcome.ANSWERED, 1),
        ("rep.4", Outcome.IN_PROGRESS, 0),
    ]
    assert charged(ledger) == [("rep.4", Decimal("-0.82")), ("rep.4~2", Decimal("-0.60"))]


async def test_a_journal_replayed_by_a_later_run_follows_the_repeat(store_url: str) -> None:
    async with store_of(store_url, "r1") as store:
        await store.apply([StartCall(started("rep.5", 0))])
    async with store_of(store_url, "r2") as store:
        await store.apply([StartCall(started("rep.5", 5))])
        journaled = store.with_rekeys([AddLeg("rep.5", leg_of(5)), answered("rep.5")])
    async with store_of(store_url, "r2") as store:  # restarted: the journal replayed
        await store.apply(journaled)
        cdrs = await store.get_cdrs(["rep.5", "rep.5~2"])
    assert journaled[0] == Rekeyed("rep.5", "rep.5~2")
    assert [(c.call_id, c.outcome, len(c.legs)) for c in cdrs] == [
        ("rep.5~2", Outcome.ANSWERED, 1),
        ("rep.5", Outcome.IN_PROGRESS, 0),
    ]


async def test_writes_of_a_stored_call_are_never_sent_to_a_repeat(store_url: str) -> None:
    """A call read from the store (adopted after a restart, completed from AMI) is written
    by its stored id, though a session of this run with that uniqueid was keyed apart."""
    async with store_of(store_url, "r1") as store:
        await store.apply([StartCall(started("rep.6", 0))])
    async with store_of(store_url, "r2") as store:
        await store.apply([StartCall(started("rep.6", 5))])
        adopted = FinishCall("rep.6", {"outcome": Outcome.INTERRUPTED}, stored_id=True)
        await store.apply([adopted, answered("rep.6")])
        cdrs = await store.get_cdrs(["rep.6", "rep.6~2"])
    assert [(c.call_id, c.outcome) for c in cdrs] == [
        ("rep.6~2", Outcome.ANSWERED),
        ("rep.6", Outcome.INTERRUPTED),
    ]
