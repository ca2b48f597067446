"""PIN guessing across calls: a caller who fails a number's PIN call after call is refused
before the prompt for the cool-off, counted through the store by every router on it.

The e2e config's 4000000006 asks every caller for the PIN 2468 (3 attempts). The guard is
set to 3 failed calls within 10 minutes, then 5 minutes refused.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from router.configuration.settings import PinGuardSettings
from router.daemon import Daemon
from router.simulation.asterisk_agi import CallerHangup, CallResult
from router.storage.cdr import Outcome
from tests.conftest import MONDAY_MORNING, call, finished_cdr, running_router, scratch_schema

PIN_LINE = "4000000006"
GUESSER = "13912345678"
GUARD = PinGuardSettings(max_failed_calls=3, window=600, block=300)
REFUSED = [
    'EXEC MSet "HOTLINE_STATUS=blocked,HOTLINE_DEST=,HOTLINE_RULE=default"',
    'EXEC Hangup "21"',
]


class Clock:
    """Beijing time that a test moves on by hand."""

    def __init__(self) -> None:
        self.now = MONDAY_MORNING

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def guess(router: Daemon, call_id: str, caller: str = GUESSER) -> CallResult:
    """A call that enters three wrong PINs, or is refused before the prompt."""
    result = await call(
        router, dialled=PIN_LINE, uniqueid=call_id, caller_id=caller, dtmf=("1111#",) * 3
    )
    await finished_cdr(router, call_id)
    return result


def sample(router: Daemon, line: str) -> float:
    for text in generate_latest(router.metrics.registry).decode().splitlines():
        if text.startswith(line + " "):
            return float(text.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def router(tmp_path: Path, clock: Clock) -> AsyncIterator[Daemon]:
    async with running_router(tmp_path, clock=clock, pin_guard=GUARD) as daemon:
        yield daemon


async def test_the_failed_call_past_the_threshold_refuses_the_caller_before_the_prompt(
    router: Daemon, clock: Clock
) -> None:
    for n in range(3):
        result = await guess(router, f"g.{n}")
        assert result.commands[:2] == ["ANSWER", "GET DATA acme/enter-pin 5000 6"]
        clock.advance(60)

    refused = await guess(router, "g.3")
    cdr = await finished_cdr(router, "g.3")

    assert refused.commands == REFUSED  # never answered: the refusal costs the caller nothing
    assert refused.answered is False
    assert cdr.outcome is Outcome.BLOCKED
    assert cdr.note == (
        "pin_guessing: too many failed PIN calls from this caller; refused until "
        "2026-11-23T10:07:00+08:00"
    )
    assert sample(router, f'hotline400_pin_guessing_blocks_total{{number="{PIN_LINE}"}}') == 1
    assert sample(router, f'hotline400_pin_guessing_refusals_total{{number="{PIN_LINE}"}}') == 1
    assert sample(router, f'hotline400_calls_total{{number="{PIN_LINE}",outcome="blocked"}}') == 1


async def test_other_callers_and_the_right_pin_are_not_affected(
    router: Daemon, clock: Clock
) -> None:
    for n in range(3):
        await guess(router, f"g.{n}")
    honest = await call(router, dialled=PIN_LINE, uniqueid="h.1", dtmf=("2468#",))
    other = await guess(router, "o.1", caller="13987654321")

    assert honest.variables["HOTLINE_STATUS"] == "answered"
    assert other.commands[0] == "ANSWER"


async def test_failures_older_than_the_window_no_longer_count(router: Daemon, clock: Clock) -> None:
    await guess(router, "g.0")
    clock.advance(500)
    await guess(router, "g.1")
    clock.advance(200)  # the first failure is now 700 s old: outside the 600 s window
    await guess(router, "g.2")

    still_asked = await guess(router, "g.3")  # the third within the window: blocked after it
    refused = await guess(router, "g.4")

    assert still_asked.commands[0] == "ANSWER"
    assert refused.commands == REFUSED


async def test_the_caller_gets_the_prompt_again_after_the_cool_off(
    router: Daemon, clock: Clock
) -> None:
    for n in range(3):
        await guess(router, f"g.{n}")
    clock.advance(299)
    assert (await guess(router, "g.3")).commands == REFUSED
    clock.advance(1)

    again = await call(router, dialled=PIN_LINE, uniqueid="g.4", caller_id=GUESSER, dtmf=("2468#",))

    assert again.commands[:2] == ["ANSWER", "GET DATA acme/enter-pin 5000 6"]
    assert again.variables["HOTLINE_STATUS"] == "answered"


async def test_withheld_caller_ids_count_as_one_shared_caller(router: Daemon) -> None:
    for n, withheld in enumerate(["", "anonymous", "Restricted"]):
        await guess(router, f"w.{n}", caller=withheld)

    refused = await guess(router, "w.3", caller="")

    assert refused.commands == REFUSED


async def test_a_caller_hanging_up_before_entering_anything_is_not_counted(
    router: Daemon,
) -> None:
    for n in range(4):
        await call(
            router,
            dialled=PIN_LINE,
            uniqueid=f"q.{n}",
            caller_id=GUESSER,
            hangup=CallerHangup.at_prompt(1),
        )
        cdr = await finished_cdr(router, f"q.{n}")
        assert cdr.outcome is Outcome.NOANSWER

    asked = await guess(router, "q.4")

    assert asked.commands[0] == "ANSWER"
    assert sample(router, f'hotline400_pin_failures_total{{number="{PIN_LINE}"}}') == 3


async def test_a_caller_hanging_up_after_a_wrong_pin_is_counted(router: Daemon) -> None:
    """Hanging up at the next prompt does not wipe out the wrong PIN already entered: a
    guesser calling again for every guess is counted all the same."""
    for n in range(3):
        await call(
            router,
            dialled=PIN_LINE,
            uniqueid=f"h.{n}",
            caller_id=GUESSER,
            dtmf=("1111#",),
            hangup=CallerHangup.at_prompt(2),
        )
        cdr = await finished_cdr(router, f"h.{n}")
        assert cdr.outcome is Outcome.NOANSWER

    refused = await guess(router, "h.3")

    assert refused.commands == REFUSED


async def test_two_routers_on_one_store_count_together(tmp_path: Path, clock: Clock) -> None:
    async with (
        scratch_schema() as url,
        running_router(
            tmp_path / "r1", clock=clock, pin_guard=GUARD, store=url, router_name="r1"
        ) as first,
        running_router(
            tmp_path / "r2", clock=clock, pin_guard=GUARD, store=url, router_name="r2"
        ) as second,
    ):
        await guess(first, "t.0")
        await guess(second, "t.1")
        await guess(first, "t.2")

        refused_by_second = await guess(second, "t.3")
        refused_by_first = await guess(first, "t.4")

    assert refused_by_second.commands == REFUSED
    assert refused_by_first.commands == REFUSED


async def test_a_threshold_of_zero_turns_the_guard_off(tmp_path: Path) -> None:
    off = PinGuardSettings(max_failed_calls=0)
    async with running_router(tmp_path, pin_guard=off) as router:
        for n in range(6):
            result = await guess(router, f"g.{n}")
            assert result.commands[0] == "ANSWER"


async def test_a_pin_call_waits_one_store_timeout_in_all_while_another_process_locks_the_file(
    tmp_path: Path,
) -> None:
    """The guard reads before the prompt and counts after it, while the CDR writer's batch
    waits for the same lock: with the file locked elsewhere the call still waits
    `store_timeout` in all (the wait for the router's own turn at the file included), and
    goes on as with a store that is down."""
    store_timeout = 3.0
    async with running_router(tmp_path, pin_guard=GUARD, store_timeout=store_timeout) as router:
        await call(router, dialled="4000000001", uniqueid="opens-the-file")
        loop = asyncio.get_running_loop()
        began = loop.time()
        await call(router, dialled=PIN_LINE, uniqueid="g.free", dtmf=("1111#",) * 3)
        own_work = loop.time() - began  # the same call's work, the file free, on this machine
        async with lock_held_elsewhere(tmp_path / "var" / "hotline400.db"):
            began = loop.time()
            result = await call(
                router, dialled=PIN_LINE, uniqueid="g.lock", caller_id=GUESSER, dtmf=("1111#",) * 3
            )
            waited = loop.time() - began - own_work
            # one store_timeout, well short of two, with room for the call's own work taking
            # longer this time while other work shares the cores
            assert waited < 1.5 * store_timeout, f"waited {waited:.1f} s beyond its own work"
        assert 'EXEC Hangup "16"' in result.commands


@asynccontextmanager
async def lock_held_elsewhere(path: Path) -> AsyncIterator[None]:
    """Another connection holding the write lock, taken from a thread: the router's loop goes
    on meanwhile, so a batch it is writing commits first instead of waiting on a blocked loop."""

    def exclusive() -> sqlite3.Connection:
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN EXCLUSIVE")
        return other

    other = await asyncio.to_thread(exclusive)
    try:
        yield
    finally:
        other.close()
