"""The numbers' tables on each engine: the inventory, a transition written only from the
version it was made from, the append-only history, providers and subscribers, and ticks
running on two routers at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from dialplan.calendar import OfficialCalendar
from numbering import lifecycle
from numbering.lifecycle import NumberRecord, Status
from numbering.rules import NumberRules
from rating.ledger import LedgerEntry, LedgerKind
from router.numbers.inventory import Inventory
from router.storage.number_rows import NameTaken, PartyRow
from router.storage.protocol import StoreUnavailable
from router.storage.rows import Holding
from tests.conftest import UNWATCHED, opened_store

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 5, 10, 0, tzinfo=SHANGHAI)
RULES = NumberRules()
NUMBERS = [f"40060{n:05d}" for n in range(200)]


def pool(numbers: list[str]) -> list[NumberRecord]:
    return [NumberRecord(n, RULES.grade(n), RULES.fee_of_grade[RULES.grade(n)]) for n in numbers]


def test_numbers_are_added_once_and_searched(store_url: str) -> None:
    async def scenario() -> None:
        async with opened_store(store_url) as store:
            assert await store.add_numbers(pool(NUMBERS), T0) == 200
            assert await store.add_numbers(pool([*NUMBERS[:10], "4008207788"]), T0) == 1
            assert [r.number for r in await store.search_numbers(segment="4008")] == ["4008207788"]
            found = await store.search_numbers(pattern="0012", limit=3)
            assert [r.number for r in found] == ["4006000012", "4006000120", "4006000121"]
            premium = await store.search_numbers(premium=True, limit=500)
            assert premium and all(r.grade != "ordinary" for r in premium)
            record = await store.number_record("4006000000")
            assert record == pool(["4006000000"])[0]

    asyncio.run(scenario())


def test_a_pattern_finds_every_number_containing_it_with_the_other_conditions(
    store_url: str,
) -> None:
    spread = [f"400{(n * 7_919_993) % 10**7:07d}" for n in range(3000)]
    planted = ["4005201314", "4008520131", "4000052013", "4001234567", "4009995201"]

    async def scenario() -> None:
        async with opened_store(store_url) as store:
            await store.add_numbers(pool([*spread, *planted]), T0)
            everything = sorted({*spread, *planted})
            for pattern in ("520", "5201", "52013", "1234567", "0052", "88", "4000"):
                found = await store.search_numbers(pattern=pattern, limit=5000)
                assert [r.number for r in found] == [n for n in everything if pattern in n]
            found = await store.search_numbers(segment="4008", pattern="5201", status="available")
            assert [r.number for r in found] == ["4008520131"]
            assert await store.search_numbers(pattern="5201", status="reserved") == []

    asyncio.run(scenario())


def test_of_two_transitions_from_one_version_only_the_first_is_written(store_url: str) -> None:
    async def scenario() -> None:
        async with opened_store(store_url) as first, opened_store(store_url) as second:
            await first.add_numbers(pool(NUMBERS[:1]), T0)
            record = await first.number_record(NUMBERS[0])
            assert record is not None
            east = lifecycle.reserve(record, "sp-east", T0, RULES)
            west = lifecycle.reserve(record, "sp-west", T0, RULES)
            due = east.after.due_at(RULES)
            written = await asyncio.gather(
                first.record_changes([east], due, [[]]), second.record_changes([west], due, [[]])
            )
            assert sorted(written) == [False, True]
            history = await first.number_history(NUMBERS[0])
            assert len(history) == 1 and history[0].to_status == "reserved"

    asyncio.run(scenario())


def test_the_history_refuses_changes(store_url: str) -> None:
    async def scenario() -> None:
        async with opened_store(store_url) as store:
            await store.add_numbers(pool(NUMBERS[:1]), T0)
            record = await store.number_record(NUMBERS[0])
            assert record is not None
            change = lifecycle.reserve(record, "sp-east", T0, RULES)
            assert await store.record_changes([change], None, [[]])
            for statement in (
                "UPDATE number_history SET actor = 'x'",
                "DELETE FROM number_history",
            ):
                with pytest.raises(StoreUnavailable, match="number history is never"):
                    async with store._transaction() as session:  # type: ignore[attr-defined]
                        await session.execute(statement)

    asyncio.run(scenario())


def test_providers_and_their_subscribers(store_url: str) -> None:
    async def scenario() -> None:
        async with opened_store(store_url) as store:
            east = PartyRow("sp-east", "East", "91310000MA1FL0XX1C", "Wang", "110***1234", T0)
            assert await store.add_party(east)
            assert not await store.add_party(east)
            acme = PartyRow("acme", "Acme", "", "", "", T0, provider="sp-east")
            assert await store.add_party(acme)
            # a provider added without a threshold warns under the default 50.00
            assert await store.providers() == [
                dataclasses.replace(east, low_balance_warning=Decimal("50.00"))
            ]
            assert await store.subscribers(provider="sp-east") == [acme]
            assert await store.subscribers(name="nobody") == []

    asyncio.run(scenario())


def test_a_subscriber_is_written_with_the_transition_that_takes_it_or_not_at_all(
    store_url: str,
) -> None:
    async def scenario() -> None:
        async with opened_store(store_url) as store:
            await store.add_numbers(pool(NUMBERS[:1]), T0)
            for provider in ("sp-east", "sp-west"):
                assert await store.add_party(PartyRow(provider, provider, "", "", "", T0))
            record = await store.number_record(NUMBERS[0])
            assert record is not None
            held = lifecycle.reserve(record, "sp-east", T0, RULES)
            assert await store.record_changes([held], held.after.due_at(RULES), [[]])
            applied = lifecycle.apply(held.after, "acme", "sp-east", T0, RULES)
            acme = PartyRow("acme", "Acme", "", "", "", T0, provider="sp-east")
            taken = PartyRow("acme", "Acme", "", "", "", T0, provider="sp-west")
            assert await store.add_party(taken)
            with pytest.raises(NameTaken):
                await store.record_changes([applied], None, [[]], party=acme)
            assert await store.number_record(NUMBERS[0]) == held.after  # nothing written
            assert len(await store.number_history(NUMBERS[0])) == 1
            stale = dataclasses.replace(applied, before=record)  # another was first: no party
            assert not await store.record_changes([stale], None, [[]], party=acme)
            assert await store.subscribers(name="acme") == [taken]
            beta = PartyRow("beta", "Beta", "", "", "", T0, provider="sp-east")
            applied = lifecycle.apply(held.after, "beta", "sp-east", T0, RULES)
            assert await store.record_changes([applied], None, [[]], party=beta)
            assert await store.subscribers(name="beta") == [beta]
            assert (await store.number_record(NUMBERS[0])) == applied.after

    asyncio.run(scenario())


def test_ticks_on_two_routers_at_once_write_each_transition_once(store_url: str) -> None:
    async def scenario() -> None:
        async with opened_store(store_url) as first, opened_store(store_url) as second:
            await first.add_numbers(pool(NUMBERS), T0)
            one = Inventory(first, RULES, OfficialCalendar(), UNWATCHED)
            two = Inventory(second, RULES, OfficialCalendar(), UNWATCHED)
            for number in NUMBERS:
                await one.act(number, T0, lambda r, at: lifecycle.reserve(r, "sp-east", at, RULES))
            later = T0 + timedelta(days=40)  # every reservation expired, every freeze ended
            counts = await asyncio.gather(one.tick(later), two.tick(later))
            assert sum(counts) == 2 * len(NUMBERS)
            assert await one.tick(later) == 0
            for number in NUMBERS[:5]:
                history = await first.number_history(number)
                assert [h.to_status for h in history] == ["reserved", "frozen", "available"]
            assert all(
                r.status is Status.AVAILABLE for r in await first.search_numbers(limit=len(NUMBERS))
            )

    asyncio.run(scenario())


def test_a_number_back_in_the_pool_starts_its_next_holding_from_nothing(store_url: str) -> None:
    """What alpha owes stays on alpha's holding, late entries dated in it included; beta,
    applying for the number after it came back to the pool, sees its own fees only."""
    number, calendar = "4006031475", OfficialCalendar()  # ordinary: no selection fee
    opening = -RULES.fees.opening
    returned = T0 + timedelta(days=10) + RULES.cancellation_notice + RULES.cancelled_freeze

    async def scenario() -> None:
        async with opened_store(store_url) as store:
            await store.add_numbers(pool([number]), T0)
            numbers = Inventory(store, RULES, calendar, UNWATCHED)

            async def holder(name: str, provider: str, at: datetime) -> None:
                await numbers.act(number, at, lambda r, t: lifecycle.reserve(r, provider, t, RULES))
                await numbers.act(
                    number, at, lambda r, t: lifecycle.apply(r, name, provider, t, RULES)
                )
                await numbers.act(number, at, lambda r, t: lifecycle.submit(r, t, RULES, calendar))

            await holder("alpha", "sp-east", T0)
            await numbers.act(
                number, T0 + timedelta(days=10), lambda r, t: lifecycle.cancel(r, "op", t, RULES)
            )
            call = LedgerEntry(
                number, T0 + timedelta(days=12), Decimal("-15.50"), LedgerKind.CALL, "c1"
            )
            await store.post_ledger([call])
            await numbers.tick(returned)
            assert (await store.usage(number, "2027-04", "2027-04-10")).balance == Decimal("0.00")

            rerated = LedgerEntry(
                number, T0 + timedelta(days=12), Decimal("0.50"), LedgerKind.ADJUSTMENT, "r1"
            )
            await store.post_ledger([rerated])
            await holder("beta", "sp-west", returned + timedelta(days=1))

            beta = await store.usage(number, "2027-04", "2027-04-10")
            assert beta.balance == opening
            assert await store.holdings(number) == [
                Holding(None, "alpha", opening - Decimal("15.00")),
                Holding(returned, None, opening),
            ]

    asyncio.run(scenario())
