"""What happens to numbers by itself: the periods of numbering.lifecycle running out, and
prepaid numbers falling into arrears or out of it as their balance moves. A payment booked on
a number (`account topup`, the console's money page) takes it out of arrears at once.

The daemon runs `tick` every `numbers_tick` seconds and `hotline400 numbers tick` runs it
from cron; both may run at once on several routers: every transition is written only if
the number is still as it was read, and takes effect at the instant it fell due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from numbering.lifecycle import Refused, Status, clear_arrears, fall_into_arrears
from rating.ledger import LedgerEntry
from rating.tariff import Tariffs
from router.money.booking_alerts import book_warning_low_balances
from router.numbers.inventory import Action, Inventory

ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class TickReport:
    timed: int
    """Time-driven transitions written (expiries, reviews, notices, freezes, keeping months)."""
    arrears: int
    """Numbers put in arrears or taken out of it."""


async def tick(inventory: Inventory, tariffs: Tariffs | None, now: datetime) -> TickReport:
    timed = await inventory.tick(now)
    return TickReport(timed, await settle_arrears(inventory, tariffs, now))


async def settle_arrears(inventory: Inventory, tariffs: Tariffs | None, now: datetime) -> int:
    """Prepaid numbers in service with no balance left fall into arrears; numbers in arrears
    whose balance a top-up brought above zero are restored."""
    if tariffs is None:
        return 0
    prepaid = sorted(number for number, account in tariffs.accounts.items() if account.prepaid)
    records = await inventory.store.number_records(prepaid)
    local = now.astimezone(tariffs.zone)
    moved = 0
    for number, record in records.items():
        if record.status not in (Status.ACTIVE, Status.ARREARS):
            continue
        usage = await inventory.store.usage(number, f"{local:%Y-%m}", f"{local:%Y-%m-%d}")
        balance = usage.balance or ZERO
        action: Action | None = None
        if record.status is Status.ACTIVE and balance <= ZERO:
            action = lambda r, at, b=balance: fall_into_arrears(r, at, b)  # noqa: E731
        elif record.status is Status.ARREARS and balance > ZERO:
            action = lambda r, at, b=balance: clear_arrears(r, at, b)  # noqa: E731
        if action is None:
            continue
        try:
            moved += len(await inventory.act(number, now, action))
        except Refused:  # another router moved it first, or its status changed meanwhile
            continue
    return moved


async def book_payment(inventory: Inventory, tariffs: Tariffs | None, entry: LedgerEntry) -> bool:
    """Book a payment on a number's account and settle arrears at its instant: a payment that
    clears a prepaid number's arrears has it connect calls again now, not at the next numbers
    tick. False when a payment under the entry's ref was booked before (nothing booked).
    The payment takes its turn at the balance watch: a fall below the threshold after it is
    a new crossing (router.money.booking_alerts)."""
    booked = await book_warning_low_balances(
        inventory.watch, inventory.store, [entry], lambda: inventory.store.post_ledger([entry])
    )
    await settle_arrears(inventory, tariffs, entry.at)
    return booked > 0
