"""The desk's promise: every refusal is a `Refused` and nothing written. A new subscriber is
written in the transaction of the transition that locks the number to it, so an application
refused for any reason (here an instant before the reservation, or a number another operator
took meanwhile) leaves no subscriber behind to refuse the corrected retry."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dialplan.calendar import OfficialCalendar
from numbering.lifecycle import NumberRecord, Refused, Status
from numbering.rules import NumberRules
from router.numbers import desk
from router.numbers.inventory import Inventory
from router.storage.number_rows import PartyRow
from router.storage.protocol import Store
from tests.conftest import UNWATCHED, opened_store

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
NUMBER = "4006031475"
MATERIAL = desk.Material("91310000MA1FL0YY26", "Li Na", "110***********002X")


async def stocked(store: Store) -> Inventory:
    inventory = Inventory(store, NumberRules(), OfficialCalendar(), UNWATCHED)
    await store.add_numbers([NumberRecord(NUMBER)], T0 - timedelta(days=1))
    for provider in ("sp-east", "sp-west"):
        await store.add_party(PartyRow(provider, provider, "", "", "", T0))
    await desk.reserve(inventory, NUMBER, "sp-east", T0)
    return inventory


def test_a_refused_application_writes_nothing_and_the_retry_passes(store_url: str) -> None:
    async def scenario() -> None:
        async with opened_store(store_url) as store:
            inventory = await stocked(store)
            with pytest.raises(Refused, match="an action cannot happen before it"):
                await desk.apply(
                    inventory, NUMBER, "acme", T0 - timedelta(hours=1), material=MATERIAL
                )
            assert await store.subscribers(name="acme") == []
            changes = await desk.apply(inventory, NUMBER, "acme", T0, material=MATERIAL)
            assert [c.after.status for c in changes] == [Status.APPLIED, Status.UNDER_REVIEW]
            [acme] = await store.subscribers(name="acme")
            assert (acme.provider, acme.licence) == ("sp-east", MATERIAL.licence)

    asyncio.run(scenario())


class FirstReadMissesTheSubscriber:
    """A store whose first look for the subscriber comes just before another operator
    made it: the desk reads none and tries to make it too."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._missed = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def subscribers(self, **names: str | None) -> list[PartyRow]:
        if not self._missed:
            self._missed = True
            return []
        return await self._store.subscribers(**names)


@pytest.mark.parametrize(("provider", "written"), [("sp-east", True), ("sp-west", False)])
def test_a_subscriber_made_meanwhile_is_taken_as_it_is(
    store_url: str, provider: str, written: bool
) -> None:
    async def scenario() -> None:
        async with opened_store(store_url) as store:
            await stocked(store)
            theirs = PartyRow("acme", "Acme Ltd", "", "", "", T0, provider)
            await store.add_party(theirs)
            racing = FirstReadMissesTheSubscriber(store)
            inventory = Inventory(racing, NumberRules(), OfficialCalendar(), UNWATCHED)  # type: ignore[arg-type]
            at = T0 + timedelta(hours=1)
            if written:
                [change] = await desk.apply(inventory, NUMBER, "acme", at)
                assert change.after.subscriber == "acme"
            else:
                with pytest.raises(Refused, match="subscriber acme belongs to sp-west"):
                    await desk.apply(inventory, NUMBER, "acme", at)
                record = await store.number_record(NUMBER)
                assert record is not None and record.status is Status.RESERVED
            assert await store.subscribers(name="acme") == [theirs]

    asyncio.run(scenario())


def test_a_subscriber_that_applied_without_material_gives_it_with_its_next_application(
    store_url: str,
) -> None:
    async def scenario() -> None:
        async with opened_store(store_url) as store:
            inventory = await stocked(store)
            second = "4006031476"
            await store.add_numbers([NumberRecord(second)], T0)
            await desk.reserve(inventory, second, "sp-east", T0)
            await desk.apply(inventory, NUMBER, "acme", T0)  # no material: locked, not in review
            changes = await desk.apply(inventory, second, "acme", T0, material=MATERIAL)
            assert [c.after.status for c in changes] == [Status.APPLIED, Status.UNDER_REVIEW]
            [acme] = await store.subscribers(name="acme")
            assert (acme.licence, acme.legal_representative, acme.id_masked) == (
                MATERIAL.licence,
                MATERIAL.legal_representative,
                MATERIAL.id_masked,
            )
            third = "4006031477"
            await store.add_numbers([NumberRecord(third)], T0)
            await desk.reserve(inventory, third, "sp-east", T0)
            other = desk.Material("91310000MA1FL0ZZ3Z", "Wang Wu", "110***********5678")
            with pytest.raises(Refused, match="exists: its material is kept as it was given"):
                await desk.apply(inventory, third, "acme", T0, material=other)
            assert (await store.subscribers(name="acme"))[0].licence == MATERIAL.licence

    asyncio.run(scenario())
