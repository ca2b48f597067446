"""The router takes a number's status from the inventory within `status_refresh`, on every
router sharing the store, without a restart; `check` holds the plans to the inventory.

Real daemons with the Asterisk simulator over TCP; two routers on one PostgreSQL schema.
"""

from __future__ import annotations

import asyncio
import shutil
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dialplan.calendar import OfficialCalendar
from numbering import lifecycle
from numbering.lifecycle import NumberRecord, Status
from numbering.rules import NumberRules, Timing
from router.cli import main
from router.numbers.inventory import Inventory
from router.storage.cdr import Outcome
from router.storage.protocol import Store
from tests.conftest import (
    E2E_CONFIG,
    MONDAY_MORNING,
    UNWATCHED,
    call,
    eventually,
    finished_cdr,
    opened_store,
    running_router,
    scratch_schema,
    store_url_of,
)

RULES = NumberRules()
NUMBER = "4000000001"  # the e2e plan that answers at once
DAY = timedelta(days=1)
REFRESH = 0.2
"""router.yaml's status_refresh in these tests: a status counts this long after it is set."""
MARGIN = 0.3


async def into_service(store: Store, number: str = NUMBER) -> Inventory:
    """Import the number and take it through reservation, application and review."""
    inventory = Inventory(store, RULES, OfficialCalendar(), UNWATCHED)
    await store.add_numbers([NumberRecord(number)], MONDAY_MORNING - 10 * DAY)
    start = MONDAY_MORNING - 7 * DAY  # Monday 16 November
    for at, action in (
        (start, lambda r, at: lifecycle.reserve(r, "sp-east", at, RULES)),
        (start, lambda r, at: lifecycle.apply(r, "acme", "sp-east", at, RULES)),
        (start, lambda r, at: lifecycle.submit(r, at, RULES, OfficialCalendar())),
        (start + 2 * DAY, lambda r, at: lifecycle.approve(r, "ops", at, RULES, OfficialCalendar())),
    ):
        await inventory.act(number, at, action)
    return inventory


async def test_a_status_set_by_an_operator_counts_within_status_refresh_on_every_router(
    tmp_path: Path,
) -> None:
    async with scratch_schema() as database, AsyncExitStack() as stack:
        routers = [
            await stack.enter_async_context(
                running_router(
                    tmp_path / name, store=database, router_name=name, status_refresh=REFRESH
                )
            )
            for name in ("r1", "r2")
        ]
        operator = await stack.enter_async_context(opened_store(database))
        inventory = await into_service(operator)
        await asyncio.sleep(REFRESH + MARGIN)
        for index, router in enumerate(routers):
            await call(router, dialled=NUMBER, uniqueid=f"before.{index}")
            assert (await finished_cdr(router, f"before.{index}")).outcome is Outcome.ANSWERED
        await inventory.act(
            NUMBER, MONDAY_MORNING, lambda r, at: lifecycle.suspend(r, "ops", at, RULES)
        )
        await asyncio.sleep(REFRESH + MARGIN)
        for index, router in enumerate(routers):
            result = await call(router, dialled=NUMBER, uniqueid=f"suspended.{index}")
            assert result.variables["HOTLINE_STATUS"] == "suspended"
            assert result.commands[-1] == 'EXEC Hangup "63"'
        await inventory.act(NUMBER, MONDAY_MORNING, lambda r, at: lifecycle.resume(r, "ops", at))
        await asyncio.sleep(REFRESH + MARGIN)
        for index, router in enumerate(routers):
            await call(router, dialled=NUMBER, uniqueid=f"resumed.{index}")
            assert (await finished_cdr(router, f"resumed.{index}")).outcome is Outcome.ANSWERED


async def test_a_number_of_the_pool_is_not_in_service_and_a_notice_period_still_connects(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path, status_refresh=REFRESH) as router:
        await router.store.add_numbers([NumberRecord("4000000002")], MONDAY_MORNING - DAY)
        await asyncio.sleep(REFRESH + MARGIN)
        result = await call(router, dialled="4000000002", uniqueid="pool.1")
        cdr = await finished_cdr(router, "pool.1")
        assert result.commands[-1] == 'EXEC Hangup "1"'
        assert (cdr.outcome, cdr.note) == (
            Outcome.UNKNOWN_NUMBER,
            "4000000002 is available in the inventory, not in service",
        )
        inventory = await into_service(router.store)
        notice = MONDAY_MORNING - DAY
        await inventory.act(NUMBER, notice, lambda r, at: lifecycle.cancel(r, "ops", at, RULES))
        await asyncio.sleep(REFRESH + MARGIN)
        await call(router, dialled=NUMBER, uniqueid="notice.1")
        assert (await finished_cdr(router, "notice.1")).outcome is Outcome.ANSWERED


async def test_calls_read_the_status_from_memory_until_the_next_refresh(tmp_path: Path) -> None:
    """The status is not read from the store per call: a suspension counts on the first
    refresh after it, not before (router.yaml's status_refresh bounds how late)."""
    async with running_router(tmp_path, status_refresh=3600) as router:
        inventory = await into_service(router.store)
        await inventory.act(
            NUMBER, MONDAY_MORNING, lambda r, at: lifecycle.suspend(r, "ops", at, RULES)
        )
        result = await call(router, dialled=NUMBER, uniqueid="stale.1")
        assert result.variables["HOTLINE_STATUS"] == "answered"
    database = str(tmp_path / "var" / "hotline400.db")  # the same store, a router starting
    async with running_router(tmp_path / "again", status_refresh=3600, database=database) as router:
        result = await call(router, dialled=NUMBER, uniqueid="restarted.1")
        assert result.variables["HOTLINE_STATUS"] == "suspended"


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Path:
    config = tmp_path / "config"
    shutil.copytree(E2E_CONFIG, config)
    with (config / "router.yaml").open("a", encoding="utf-8") as file:
        file.write(f'store: "{store_url}"\n')
    return config


def test_check_holds_plans_to_the_inventory(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def stock() -> None:
        async with opened_store(store_url_of(config)) as store:
            await into_service(store, "4000000007")  # its plan says `status: suspended`
            await into_service(store, "4000000099")  # held, and no plan

    asyncio.run(stock())
    assert main(["check", str(config)]) == 1
    out = capsys.readouterr().out
    plan = config / "plans" / "4000000007.yaml"
    assert (
        f"{plan}:3 status: suspended, but the inventory has 4000000007 active (active on "
        "calls): remove `status` from the plan, the inventory's counts"
    ) in out
    assert (
        "warning: 4000000099 is active in the inventory (subscriber acme) but has no plan: "
        "its calls are refused as unknown"
    ) in out
    assert f"warning: {config / 'plans' / '4000000001.yaml'}: 4000000001 is not in the " in out


async def test_the_daemon_applies_what_falls_due_by_itself(tmp_path: Path) -> None:
    now = [MONDAY_MORNING]
    async with running_router(tmp_path, clock=lambda: now[0], numbers_tick=0.05) as router:
        store = router.store
        await store.add_numbers([NumberRecord("4000000002")], MONDAY_MORNING - DAY)
        inventory = Inventory(store, RULES, OfficialCalendar(), UNWATCHED)
        await inventory.act(
            "4000000002", MONDAY_MORNING, lambda r, at: lifecycle.reserve(r, "sp-east", at, RULES)
        )
        now[0] = MONDAY_MORNING + 4 * DAY  # the 3 days ran out, then the 30-minute freeze

        async def back_in_the_pool() -> bool:
            record = await store.number_record("4000000002")
            return record is not None and record.status is Status.AVAILABLE

        await eventually(back_in_the_pool)
        history = await store.number_history("4000000002")
        assert [(h.to_status, h.actor) for h in history] == [
            ("reserved", "sp-east"),
            ("frozen", "system"),
            ("available", "system"),
        ]
        assert history[1].at == MONDAY_MORNING + 3 * DAY


async def test_a_notice_that_ended_refuses_calls_before_any_tick_writes_it(
    tmp_path: Path,
) -> None:
    """The status a call sees is the one at its instant: once the 30 days' notice ran out the
    number is cancelled for its calls, though the numbers tick (an hour here) has not yet
    written it and the store still says `cancellation_requested`."""
    now = [MONDAY_MORNING]
    async with running_router(
        tmp_path, clock=lambda: now[0], status_refresh=REFRESH, numbers_tick=3600
    ) as router:
        inventory = await into_service(router.store)
        await inventory.act(
            NUMBER, MONDAY_MORNING, lambda r, at: lifecycle.cancel(r, "ops", at, RULES)
        )
        await asyncio.sleep(REFRESH + MARGIN)
        await call(router, dialled=NUMBER, uniqueid="notice.1")
        assert (await finished_cdr(router, "notice.1")).outcome is Outcome.ANSWERED
        now[0] = MONDAY_MORNING + 30 * DAY + timedelta(minutes=10)
        result = await call(router, dialled=NUMBER, uniqueid="ended.1")
        assert result.variables["HOTLINE_STATUS"] == "suspended"
        assert result.commands[-1] == 'EXEC Hangup "1"'  # unallocated: cancelled
        assert (await finished_cdr(router, "ended.1")).outcome is Outcome.SUSPENDED
        record = await router.store.number_record(NUMBER)
        assert record is not None and record.status is Status.CANCELLATION_REQUESTED


AT_ONCE = NumberRules(
    timing=Timing(cancellation_notice_days=0, cancelled_freeze_days=0, review_min_working_days=0)
)
"""No notice, no freeze, a review decided at once: the number changes hands in an instant."""


async def handed_to(store: Store, subscriber: str, at: datetime) -> None:
    """The number's holder gives it up at `at`; back in the pool at once, `subscriber` (of
    another provider) takes it and is in service at once."""
    inventory = Inventory(store, AT_ONCE, OfficialCalendar(), UNWATCHED)
    calendar = OfficialCalendar()
    await inventory.act(NUMBER, at, lambda r, t: lifecycle.cancel(r, "ops", t, AT_ONCE))
    for action in (
        None,  # the freeze of no length runs out
        lambda r, t: lifecycle.reserve(r, "sp-west", t, AT_ONCE),
        lambda r, t: lifecycle.apply(r, subscriber, "sp-west", t, AT_ONCE),
        lambda r, t: lifecycle.submit(r, t, AT_ONCE, calendar),
        lambda r, t: lifecycle.approve(r, "ops", t, AT_ONCE, calendar),
    ):
        await inventory.act(NUMBER, at, action)


def plan_for(config: Path, subscriber: str) -> None:
    (config / "plans" / f"{NUMBER}.yaml").write_text(
        f'number: "{NUMBER}"\nname: Direct answer\nsubscriber: {subscriber}\n'
        'default: {target: "13800000011"}\n',
        encoding="utf-8",
    )


async def test_a_plan_naming_a_past_holder_routes_none_of_the_next_holders_calls(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """acme's plan names acme; once beta holds the number its calls are refused as those of a
    number without a plan, said once in the log, until a plan naming beta is loaded."""
    config = tmp_path / "e2e"
    shutil.copytree(E2E_CONFIG, config)
    plan_for(config, "acme")
    async with running_router(tmp_path, config, status_refresh=REFRESH) as router:
        await into_service(router.store)  # acme's
        await asyncio.sleep(REFRESH + MARGIN)
        await call(router, dialled=NUMBER, uniqueid="acme.1")
        assert (await finished_cdr(router, "acme.1")).outcome is Outcome.ANSWERED

        await handed_to(router.store, "beta", MONDAY_MORNING - timedelta(hours=1))
        await asyncio.sleep(REFRESH + MARGIN)
        refused = [await call(router, dialled=NUMBER, uniqueid=f"beta.{n}") for n in range(2)]
        cdr = await finished_cdr(router, "beta.0")

        plan_for(tmp_path / "config", "beta")
        router.reload()
        await call(router, dialled=NUMBER, uniqueid="beta.2")
        routed = await finished_cdr(router, "beta.2")

    assert [result.commands[-1] for result in refused] == ['EXEC Hangup "1"'] * 2
    assert refused[0].variables["HOTLINE_STATUS"] == "unknown_number"
    why = (
        "held by beta, not by acme, the subscriber its plan names: a past holder's plan "
        "routes none of its calls"
    )
    assert (cdr.outcome, cdr.note) == (Outcome.UNKNOWN_NUMBER, f"{NUMBER} is {why}")
    said = [r.getMessage() for r in caplog.records if r.name == "hotline400.refusals"]
    assert [line for line in said if why in line] == [
        f"{NUMBER} refuses calls: {why}; add its plan to the plans directory "
        "(hotline400 check validates it)"
    ]
    assert routed.outcome is Outcome.ANSWERED
