"""Low-balance warnings for what the commands book: feature fees (`account fees`) and a
month's close (`bill --close`: rent, fees, the minimum-consumption top-up).

A call's charge is warned about by the router that prices it (router.money.accounting); an
entry a command books moves the balance in another process, which no router warns for. So
the command warns as it books, the same way: when what it booked takes a prepaid balance
from at or above its threshold to below it, the warning is logged, sent as a text message
when the number's plan asks, and POSTed to router.yaml's `low_balance_webhook`, then the
command waits for those to be sent before it exits. Only the entries booked now count (an
entry already on the ledger books nothing and moves nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from rating.ledger import LedgerEntry
from rating.money import ZERO
from router.money.balance_alerts import BalanceAlerts
from router.money.books import Books
from router.notifications.sms import RateLimit, SmsNotices, sender_for
from router.storage.protocol import Store


async def book_warning_low_balances(
    books: Books, store: Store, entries: Sequence[LedgerEntry]
) -> int:
    """Book `entries` (Store.post_ledger) and warn for each prepaid balance they take below
    its threshold; returns how many entries were booked."""
    watched = sorted(
        {
            entry.number
            for entry in entries
            if (account := books.tariffs.accounts.get(entry.number)) is not None and account.prepaid
        }
    )
    before: dict[str, Decimal] = {}
    held: set[tuple[str, str, str]] = set()
    for number in watched:
        booked_before = await store.ledger(number)
        before[number] = sum((entry.amount for entry in booked_before), ZERO)
        held.update((number, entry.kind, entry.ref) for entry in booked_before)
    booked = await store.post_ledger(entries)
    moved = {number: ZERO for number in watched}
    for entry in entries:
        if entry.number in moved and (entry.number, entry.kind, entry.ref) not in held:
            moved[entry.number] += entry.amount
    if any(moved.values()):
        await _warn(books, before, moved)
    return booked


async def _warn(books: Books, before: dict[str, Decimal], moved: dict[str, Decimal]) -> None:
    settings = books.settings
    sender = sender_for(settings.sms_gateway, settings.sms_token_env, settings.sms_timeout)
    sms = SmsNotices(
        sender,
        RateLimit(settings.sms_per_number, settings.sms_window),
        books.plans.get,
    )
    alerts = BalanceAlerts(settings.low_balance_webhook, sms.low_balance)
    for number, amount in moved.items():
        threshold = books.tariffs.accounts[number].low_balance_warning
        alerts.check(number, before[number], before[number] + amount, threshold)
    await alerts.flush()
    await sms.close()
