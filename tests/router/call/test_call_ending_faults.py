"""A fault of the router's own while a call ends, played against the whole router over TCP:
the call's CDR is completed all the same, its cap unit settled as the normal end settles
it, the call counted and logged, the fault logged once with its traceback, and the next
call goes through.

No input reaches the end of a call that makes it raise any more: its last two triggers,
an ANSWEREDTIME_MS beyond any date and an endpos past Python's ints, are refused where
they are read (tests/router/fastagi/test_hostile_replies.py). So each test here breaks one
collaborator of the call's end on purpose, standing for whatever bug comes next: the
session's clock as the CDR is completed, the store as the cap unit is given back.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from rating.ledger import LedgerEntry, LedgerKind
from router.daemon import Daemon
from router.simulation.asterisk_agi import SimulatedCall, environment
from router.storage.cdr import CDR, CdrOp, Outcome, StartCall
from tests.conftest import E2E_CONFIG, MONDAY_MORNING, call, finished_cdr, running_router

CAPPED = "4000000008"
"""Prepaid, a monthly cap of 2 calls, dials 13800000051 (tests/e2e_config)."""
NO_ANSWER = b"200 result=1 (NOANSWER,,)\n"
"""DIALSTATUS, ANSWEREDTIME_MS and DIALEDTIME_MS of a Dial nobody answered."""


def answered_calls_capped(tmp_path: Path) -> Path:
    """The e2e config with 4000000008's cap counting answered calls only: the unit of a
    call nobody answered is given back as it ends."""
    config = Path(shutil.copytree(E2E_CONFIG, tmp_path / "capped"))
    plan = config / "plans" / f"{CAPPED}.yaml"
    counting = "  monthly_calls: 2\n  monthly_calls_counting: answered\n"
    plan.write_text(plan.read_text().replace("  monthly_calls: 2\n", counting))
    return config


async def unanswered_call(daemon: Daemon, call_id: str, as_it_ends: Callable[[], None]) -> None:
    """A call to 4000000008 whose Dial nobody answers; `as_it_ends` runs once the router has
    left HOTLINE_STATUS on the channel, before Asterisk's reply lets the session end."""
    env = environment(SimulatedCall(dialled=CAPPED, uniqueid=call_id), daemon.host, daemon.port)
    reader, writer = await asyncio.open_connection(daemon.host, daemon.port)
    writer.write("".join(f"{k}: {v}\n" for k, v in env.items()).encode() + b"\n")
    try:
        async with asyncio.timeout(10):
            while command := await reader.readline():
                if command.startswith(b"EXEC MSet"):
                    as_it_ends()
                writer.write(NO_ANSWER if command.startswith(b"GET FULL") else b"200 result=0\n")
    finally:
        writer.close()


async def pay(daemon: Daemon, amount: str, ref: str) -> None:
    entry = LedgerEntry(CAPPED, MONDAY_MORNING, Decimal(amount), LedgerKind.PAYMENT, ref)
    await daemon.store.post_ledger([entry])


def calls_counted(daemon: Daemon, outcome: str) -> float | None:
    labels = {"number": CAPPED, "outcome": outcome}
    return daemon.services.metrics.registry.get_sample_value("hotline400_calls_total", labels)


async def noted_cdr(daemon: Daemon, call_id: str) -> CDR:
    """The CDR once a note is stored: a fault after the finish notes it in a finish of its
    own, which may come in a later batch."""
    async with asyncio.timeout(5):
        while (cdr := await finished_cdr(daemon, call_id)).note is None:
            await asyncio.sleep(0.02)
    return cdr


def faults_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.exc_info is not None]


async def test_a_clock_failing_as_the_cdr_is_completed_still_completes_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The end time once overflowed as the CDR was completed: the call's task died before
    its finish was submitted, and the CDR stayed in progress for good."""

    def broken_clock() -> datetime:
        raise OverflowError("date value out of range")

    async with running_router(tmp_path, config=answered_calls_capped(tmp_path)) as router:
        await pay(router, "20.00", "receipt-1")
        clock = router.services.clock
        with caplog.at_level(logging.INFO, logger="hotline400"):
            await unanswered_call(
                router,
                "end.1",
                lambda: monkeypatch.setattr(router.services, "clock", broken_clock),
            )
            cdr = await finished_cdr(router, "end.1")
        monkeypatch.setattr(router.services, "clock", clock)
        usage = await router.store.usage(CAPPED, "2026-11", "2026-11-23")
        counted = calls_counted(router, "noanswer")
        after = await call(router, dialled=CAPPED, uniqueid="end.2")
        after_cdr = await finished_cdr(router, "end.2")
        usage_after = await router.store.usage(CAPPED, "2026-11", "2026-11-23")
    assert cdr.outcome is Outcome.NOANSWER
    assert (
        cdr.note == "router error while completing its CDR: OverflowError: date value out of range"
    )
    assert [leg.dial_status for leg in cdr.legs] == ["NOANSWER"]
    assert cdr.ended_at == cdr.legs[0].ended_at  # the clock failed: the last end it knows
    assert usage.month_calls == 0  # unanswered, on a cap counting answered calls
    assert counted == 1
    faults = faults_logged(caplog)
    assert len(faults) == 1
    assert "end.1" in faults[0].getMessage()
    assert faults[0].exc_info is not None and faults[0].exc_info[0] is OverflowError
    assert "call end.1 to 4000000008: noanswer" in caplog.messages
    assert after.variables["HOTLINE_STATUS"] == "answered"
    assert (after_cdr.outcome, after_cdr.total) == (Outcome.ANSWERED, Decimal("0.82"))
    assert usage_after.month_calls == 1


async def test_a_store_failing_as_the_cap_unit_is_given_back_leaves_the_cdr_complete(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Giving the unit back comes after the CDR's finish: the call keeps its outcome, and
    its note tells the router failed there. (A store's own failures come as
    StoreUnavailable, which the accounting logs in a line; anything else is a bug.)"""

    async def release_breaks(number: str, month: str) -> None:
        raise KeyError(month)

    async with running_router(tmp_path, config=answered_calls_capped(tmp_path)) as router:
        await pay(router, "20.00", "receipt-1")
        store = router.services.accounting.store
        release = store.release_call
        monkeypatch.setattr(store, "release_call", release_breaks)
        with caplog.at_level(logging.INFO, logger="hotline400"):
            await unanswered_call(router, "end.3", lambda: None)
            cdr = await noted_cdr(router, "end.3")
        monkeypatch.setattr(store, "release_call", release)
        after = await call(router, dialled=CAPPED, uniqueid="end.4")
    assert cdr.outcome is Outcome.NOANSWER
    assert cdr.note == "router error while giving its cap unit back: KeyError: '2026-11'"
    faults = faults_logged(caplog)
    assert len(faults) == 1 and "end.3" in faults[0].getMessage()
    assert "call end.3 to 4000000008: noanswer" in caplog.messages
    assert calls_counted(router, "noanswer") == 1
    assert after.variables["HOTLINE_STATUS"] == "answered"


async def test_a_fault_before_the_cdr_is_written_ahead_is_logged_once_and_closes_the_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no CDR yet there is nothing to complete: the call's task logs the fault with
    the call's id and closes the connection, instead of dying with an exception asyncio
    reports as never retrieved. (The writer refuses a write only once it is closed, after
    the calls have drained: the fault is injected.)"""
    async with running_router(tmp_path) as router:
        submit = router.cdrs.submit

        def refusing(op: CdrOp) -> None:
            if isinstance(op, StartCall) and op.cdr.call_id == "end.5":
                raise RuntimeError("the CDR writer is closed")
            submit(op)

        monkeypatch.setattr(router.cdrs, "submit", refusing)
        with caplog.at_level(logging.INFO, logger="hotline400"):
            refused = await call(router, dialled=CAPPED, uniqueid="end.5")
            after = await call(router, dialled="4000000001", uniqueid="end.6")
            await finished_cdr(router, "end.6")
    assert refused.commands == []  # closed before any command
    faults = faults_logged(caplog)
    assert len(faults) == 1 and "end.5" in faults[0].getMessage()
    assert after.variables["HOTLINE_STATUS"] == "answered"
