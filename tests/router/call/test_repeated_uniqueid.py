"""Two AGI sessions carrying one agi_uniqueid: a dialplan that runs AGI again on the same
channel (after an IVR of its own returns, say), or two Asterisks that hand out the same
uniqueid at once. Each session is a call the router routes, records and prices: the second
is keyed UNIQUEID~2 in the store, and a warning names the uniqueid.

Before, the store keyed both by the uniqueid: the second start was ignored, its end, legs
and price were written over the first call's (or dropped), and its ledger entry was taken
for the first's and lost, without a word.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from rating.ledger import LedgerKind
from router.storage.cdr import Outcome
from tests.conftest import (
    STORE_ENGINES,
    SimulatedClock,
    call,
    finished_cdr,
    running_router,
    scratch_schema,
)

POSTPAID = "4000000009"
"""Priced (0.60 for 30 s answered by 13800000051, long distance), a daily cap of 2.00."""
FORWARDED = "4000000002"
"""13800000021 is busy; forwarded to 13800000011, who answers."""
RECORDED = "4000000102"
"""Every answered call recorded, after the notice."""
SPEEDUP = 50.0


@pytest.fixture(params=STORE_ENGINES)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, str]]:
    """The daemon's store: its own SQLite file, or a PostgreSQL scratch schema."""
    if request.param == "sqlite":
        yield {}
        return
    async with scratch_schema() as url:
        yield {"store": url, "router_name": "r1"}


def repeat_warnings(caplog: pytest.LogCaptureFixture, uniqueid: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and f"uniqueid {uniqueid}" in record.getMessage()
    ]


async def test_a_second_session_after_the_first_gets_a_cdr_and_a_price_of_its_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, store: dict[str, str]
) -> None:
    async with running_router(tmp_path, **store) as router:
        with caplog.at_level(logging.WARNING):
            first = await call(router, dialled=POSTPAID, uniqueid="dup.1")
            first_cdr = await finished_cdr(router, "dup.1")
            second = await call(router, dialled=FORWARDED, uniqueid="dup.1")
            second_cdr = await finished_cdr(router, "dup.1~2")
            await asyncio.sleep(0.3)  # anything the second session wrote is in the store
        first_after = await router.store.get_cdr("dup.1")
        ledger = await router.store.ledger(POSTPAID)
    assert first.variables["HOTLINE_STATUS"] == second.variables["HOTLINE_STATUS"] == "answered"
    assert first_after == first_cdr
    assert (first_cdr.number, first_cdr.total) == (POSTPAID, Decimal("0.82"))
    assert [leg.destination for leg in first_cdr.legs] == ["13800000051"]
    assert second_cdr.number == FORWARDED
    assert second_cdr.outcome is Outcome.ANSWERED
    assert [(leg.destination, leg.dial_status) for leg in second_cdr.legs] == [
        ("13800000021", "BUSY"),
        ("13800000011", "ANSWER"),
    ]
    assert [(e.kind, e.ref) for e in ledger] == [(LedgerKind.CALL, "dup.1")]
    [warning] = repeat_warnings(caplog, "dup.1")
    assert "dup.1~2" in warning


async def test_two_sessions_at_once_are_two_calls(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, store: dict[str, str]
) -> None:
    async with running_router(tmp_path, clock=SimulatedClock(SPEEDUP), **store) as router:
        with caplog.at_level(logging.WARNING):
            both = await asyncio.gather(
                *(
                    call(router, time_scale=1 / SPEEDUP, dialled=POSTPAID, uniqueid="dup.2")
                    for _ in range(2)
                )
            )
            cdrs = [await finished_cdr(router, id) for id in ("dup.2", "dup.2~2")]
            await asyncio.sleep(0.3)
        ledger = await router.store.ledger(POSTPAID)
    assert [result.variables["HOTLINE_STATUS"] for result in both] == ["answered"] * 2
    assert [(cdr.outcome, cdr.total, len(cdr.legs)) for cdr in cdrs] == [
        (Outcome.ANSWERED, Decimal("0.82"), 1)
    ] * 2
    assert sorted(e.ref for e in ledger if e.kind is LedgerKind.CALL) == ["dup.2", "dup.2~2"]
    assert len(repeat_warnings(caplog, "dup.2")) == 1


async def test_a_third_session_is_keyed_apart_from_the_second(
    tmp_path: Path, store: dict[str, str]
) -> None:
    async with running_router(tmp_path, **store) as router:
        for _ in range(3):
            await call(router, dialled=POSTPAID, uniqueid="dup.3")
        ids = [(await finished_cdr(router, id)).call_id for id in ("dup.3", "dup.3~2", "dup.3~3")]
    assert ids == ["dup.3", "dup.3~2", "dup.3~3"]


async def test_a_repeat_session_records_to_a_file_of_its_own(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    async with running_router(tmp_path, recordings_dir=str(recordings)) as router:
        for _ in range(2):
            await call(router, dialled=RECORDED, uniqueid="dup.4")
        cdrs = [await finished_cdr(router, id) for id in ("dup.4", "dup.4~2")]
    day = f"{recordings}/{RECORDED}/2026-11-23"
    assert [cdr.recording_path for cdr in cdrs] == [f"{day}/dup.4.wav", f"{day}/dup.4~2.wav"]
