"""The numbers' rules carried out on the store: read a number, catch up what fell due, make
the transition asked for, and write it all at once if nobody changed the number meanwhile.

numbering.lifecycle decides; this module only reads, books and writes. The fees are booked
through router.money.booking_alerts, so one that takes a prepaid balance below its threshold
raises the low-balance warning on the inventory's `watch`. Every action first
applies the time-driven transitions due by its instant (a reservation expired while no tick
ran is expired before another provider reserves the number), so the outcome never depends on
when `numbers tick` last ran. The write is conditional on the version read: of two operators
reserving one number at the same instant one wins and the other, reading again, is refused
with the winner's reservation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from dialplan.calendar import OfficialCalendar
from numbering.lifecycle import Change, Fee, NumberRecord, Refused, as_of, catch_up, when
from numbering.rules import NumberRules
from rating.ledger import LedgerEntry, LedgerKind
from router.money.booking_alerts import Watch, book_warning_low_balances
from router.money.provider_accounts import provider_account
from router.storage.number_rows import PartyRow
from router.storage.protocol import Store

Action = Callable[[NumberRecord, datetime], Change]
"""A transition of numbering.lifecycle with everything but the record and instant bound."""

ATTEMPTS = 20
"""Reads and writes of one action before giving up: each lost race means another operator
changed the number, which is rare and quick."""
KEEPING = LedgerKind.KEEPING_FEE.value


class NotInInventory(Refused):
    """The number was never imported."""


@dataclass(frozen=True)
class Inventory:
    store: Store
    rules: NumberRules
    calendar: OfficialCalendar
    watch: Watch
    """The prepaid balances the fees may take below their thresholds, and who is told."""

    async def record(self, number: str) -> NumberRecord:
        record = await self.store.number_record(number)
        if record is None:
            raise NotInInventory(f"{number} is not in the inventory (hotline400 numbers import)")
        return record

    async def search(
        self, now: datetime, *, limit: int, **wanted: str | bool | None
    ) -> list[NumberRecord]:
        """Numbers matching `wanted` (the store's search conditions) as they are at `now`:
        a reservation that ran out since the last numbers tick is found as available, not
        as reserved by its past holder. At most `limit`, fewer when numbers the store still
        had as matching no longer do."""
        found = await self.store.search_numbers(**wanted, due_by=now, limit=limit)
        current = (as_of(record, now, self.rules) for record in found)
        return [record for record in current if _still_matches(record, wanted)]

    async def act(
        self,
        number: str,
        at: datetime,
        action: Action | None,
        *,
        then: Action | None = None,
        party: PartyRow | None = None,
        material: PartyRow | None = None,
        replacing: PartyRow | None = None,
    ) -> list[Change]:
        """Catch up the number to `at`, then make `action`'s transition, and `then`'s after
        it; the changes written, with the subscriber `party` when one is given (added in the
        same transaction: router.storage.number_rows.NameTaken if its name was taken), or
        the real-name `material` of an existing subscriber that had none, or had `replacing`'s
        (NameTaken if it was given other material meanwhile).

        Refused (nothing written) when the rules do not allow either transition, or when
        `at` is before the number's last transition: its history is never rewritten.
        """
        for _ in range(ATTEMPTS):
            record = await self.record(number)
            if record.since is not None and at < record.since:
                raise Refused(
                    f"{number} changed last at {when(record.since, at)}: an action cannot "
                    f"happen before it (--at)"
                )
            changes = catch_up(record, at, self.rules)
            for make in (action, then):
                if make is not None:
                    changes.append(make(changes[-1].after if changes else record, at))
            if not changes:
                return []
            changes = await self._keeping_fees_unpaid(changes)
            if await self.write(changes, party, material, replacing):
                return changes
        raise Refused(f"{number} is being changed by others: try again")

    async def _keeping_fees_unpaid(self, changes: list[Change]) -> list[Change]:
        """`changes` without the keeping fees of calendar months their holding paid already
        (a suspension resumed and suspended again): the ledger would book them once, and the
        history lists only what it books. The record's version guards the read: a fee is
        booked only with a transition, which moves the version."""
        fees = [fee for change in changes for fee in change.fees if fee.kind == KEEPING]
        if not fees:
            return changes
        number = changes[0].after.number
        paid = {e.ref for e in await self.store.ledger(number, kind=LedgerKind.KEEPING_FEE)}
        unpaid = []
        for change in changes:
            kept = tuple(fee for fee in change.fees if fee.kind != KEEPING or fee.ref not in paid)
            paid |= {fee.ref for fee in kept if fee.kind == KEEPING}
            unpaid.append(change if kept == change.fees else replace(change, fees=kept))
        return unpaid

    async def write(
        self,
        changes: Sequence[Change],
        party: PartyRow | None = None,
        material: PartyRow | None = None,
        replacing: PartyRow | None = None,
    ) -> bool:
        """Write transitions of one number with the fees they book (and a new subscriber
        `party`, or an existing one's `material`, in the same transaction); False if the
        number moved on."""
        after = changes[-1].after
        fees = [[self.ledger_entry(change, fee) for fee in change.fees] for change in changes]
        due = after.due_at(self.rules)
        return await book_warning_low_balances(
            self.watch,
            self.store,
            [entry for entries in fees for entry in entries],
            lambda: self.store.record_changes(
                changes, due, fees, party=party, material=material, replacing=replacing
            ),
        )

    def ledger_entry(self, change: Change, fee: Fee) -> LedgerEntry:
        """A fee on the account the rules name: the subscriber's (the 400 number's own
        account) or the service provider's."""
        number = change.after.number
        if fee.payer == "provider":
            holder = change.after.provider or change.before.provider
            assert holder is not None, "a provider's fee is booked on a held number"
            account, ref = provider_account(holder), f"{number}:{fee.ref}"
        else:
            account, ref = number, fee.ref
        return LedgerEntry(
            account, change.at, Decimal(0) - fee.amount, LedgerKind(fee.kind), ref, fee.note
        )

    async def tick(self, now: datetime, batch: int = 1000) -> int:
        """Apply every time-driven transition due by `now`; how many were written.

        Safe to repeat and to run on several routers at once: a transition takes effect at
        the instant it fell due, and a number another run moved first is read again.
        """
        written = 0
        while True:
            due = await self.store.due_numbers(now, batch)
            moved = 0
            for record in due:
                try:
                    moved += len(await self.act(record.number, now, None))
                except Refused:  # moved by a router whose clock runs ahead: its turn
                    continue
            written += moved
            if len(due) < batch or moved == 0:
                return written


def _still_matches(record: NumberRecord, wanted: dict[str, str | bool | None]) -> bool:
    """The conditions a time-driven transition can change, asked again of a record caught
    up (segment, grade and digits never change)."""
    status, holder, subscriber = (
        wanted.get("status"),
        wanted.get("holder"),
        wanted.get("subscriber"),
    )
    return (
        (status is None or record.status.value == status)
        and (holder is None or holder in (record.provider, record.subscriber))
        and (subscriber is None or record.subscriber == subscriber)
    )
