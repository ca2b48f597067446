"""Entered PINs are checked on threads of their own, bounded: a flood of PIN entries (a
dialler rotating caller IDs, which the PIN guard never refuses) takes at most the threads
set, and an entry beyond the waiting room is not checked rather than queued without end.

The e2e config's 4000000006 asks every caller for the PIN 2468 (3 attempts).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from dialplan.pin import hash_pin
from router.call.pin_checks import PinChecks
from router.configuration.settings import PinGuardSettings
from router.daemon import Daemon
from router.storage.cdr import Outcome
from tests.conftest import call, finished_cdr, running_router

PIN_LINE = "4000000006"
SLOW_HASH = "scrypt$14$8$64$" + "ab" * 16 + "$" + "00" * 32 + "$4"
"""A hash whose check runs scrypt 64 times over (p=64): some two seconds of a core."""


def pin_check_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name.startswith("pin-check")}


def sample(router: Daemon, line: str) -> float:
    for text in generate_latest(router.metrics.registry).decode().splitlines():
        if text.startswith(line + " "):
            return float(text.rsplit(" ", 1)[1])
    raise AssertionError(f"{line} not exported")


async def test_a_flood_of_entries_is_checked_on_no_more_threads_than_set() -> None:
    checks = PinChecks(workers=2, max_waiting=20)
    stored = hash_pin("2468")
    others = pin_check_threads()  # of other tests' pools, if any are still alive
    try:
        results = await asyncio.gather(*(checks.verify(f"{n:04d}", stored) for n in range(12)))
        assert results == [False] * 12
        assert len(pin_check_threads() - others) == 2
        assert await checks.verify("2468", stored) is True
        assert checks.in_flight == 0
    finally:
        checks.close()


async def test_an_entry_beyond_the_running_and_waiting_checks_is_not_checked() -> None:
    checks = PinChecks(workers=1, max_waiting=1)
    stored = hash_pin("2468")
    try:
        results = await asyncio.gather(*(checks.verify("2468", stored) for _ in range(3)))
        assert results == [True, True, None]
        assert checks.refused == 1
        assert await checks.verify("2468", stored) is True  # room again once they are done
    finally:
        checks.close()


@pytest.mark.parametrize(
    ("field", "value"), [("check_workers", 0), ("check_workers", 65), ("max_waiting_checks", -1)]
)
def test_the_bounds_are_checked_where_they_are_set(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=field):
        PinGuardSettings.model_validate({field: value})


async def test_a_call_whose_entries_find_no_room_ends_unchecked_and_is_not_counted_as_guessing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    guard = PinGuardSettings(max_failed_calls=1, check_workers=1, max_waiting_checks=0)
    async with running_router(tmp_path, pin_guard=guard) as router:
        busy = asyncio.create_task(router.services.pin_checks.verify("1234", SLOW_HASH))
        await asyncio.sleep(0)  # the flood's check holds the one thread
        result = await call(
            router,
            dialled=PIN_LINE,
            uniqueid="flood.1",
            caller_id="13912345678",
            dtmf=("2468#",) * 3,
        )
        cdr = await finished_cdr(router, "flood.1")
        unchecked = sample(router, "hotline400_pin_entries_unchecked_total")
        assert not busy.done()
        await busy  # the flood's check done: room again
        again = await call(
            router,
            dialled=PIN_LINE,
            uniqueid="flood.2",
            caller_id="13912345678",
            dtmf=("2468#",),
        )
    assert result.variables["HOTLINE_STATUS"] == Outcome.PIN_FAILED.value
    assert cdr.note == (
        "PIN not checked 3 of 3 times: the router's PIN checks were full "
        "(pin_guard.max_waiting_checks)"
    )
    assert unchecked == 3
    assert "PIN entry not checked: 1 PIN checks running or waiting" in caplog.text
    with sqlite3.connect(tmp_path / "var" / "hotline400.db") as db:
        assert db.execute("SELECT count(*) FROM pin_failures").fetchone() == (0,)
    assert again.variables["HOTLINE_STATUS"] in {"answered", "noanswer", "busy"}
