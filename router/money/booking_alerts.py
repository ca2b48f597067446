"""Low-balance warnings for whatever is booked besides a call's charge in the router that
priced it: feature fees (`account fees`, a feature switched on in the console), a month's
close (`bill --close`), calls priced or re-priced by `rate`, and the fees of a number's
life (`numbers`, the console's Numbers pages, the daemon's numbers tick).

A call's charge is warned about by the router that prices it (router.money.accounting);
every other debit is booked through `book_warning_low_balances`, which warns the same way:
when what it booked takes a prepaid balance from at or above its threshold to below it
(as the store's balance watch sees it after the write: bookings at once, here or in a
router, take turns there, so a crossing is warned of once), the warning is logged, sent
as a text message when the number's plan asks, and POSTed to router.yaml's
`low_balance_webhook`. The daemon's tick hands it the daemon's own alerts,
which send in the background, so calls never wait for a receiver; a command or a console
request opens `sent_warnings`, which waits for the sends (retries included) as long as one
POST may take at most before it ends, and keeps what did not go through by then. Only the entries
booked now count: an entry already on the ledger moves nothing, and a write that booked
nothing (a transition another router wrote first) warns of nothing. Only the balance of the
number's current holding is watched: an entry dated in a past holding moves that one's.

A service provider's account (the feature fees of the numbers it holds) is watched the same
way, against the threshold the store keeps for it (`providers add|set --low-balance-warning`),
its warning the webhook's `provider_low_balance` event. A payment is booked through here too:
it takes its turn at the watch, so a fall below the threshold after a top-up above it is a
new crossing, warned of again.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from dialplan.plan import Plan
from rating.ledger import LedgerEntry, LedgerKind
from rating.money import ZERO
from rating.tariff import Tariffs
from router.configuration.settings import RouterSettings
from router.money.balance_alerts import BalanceAlerts
from router.money.provider_accounts import provider_of
from router.notifications.low_balance import LOW_BALANCE_UNDELIVERED_FILE, webhook_for
from router.notifications.sms import SMS_UNDELIVERED_FILE, RateLimit, SmsNotices, sender_for
from router.notifications.undelivered import UndeliveredEvents
from router.storage.protocol import Store

Written = TypeVar("Written")


@dataclass(frozen=True, slots=True)
class Watch:
    """Whose balances a booking watches (the prepaid accounts of `tariffs`, none without
    tariffs; and the service providers') and where their warnings go."""

    tariffs: Tariffs | None
    alerts: BalanceAlerts


READ_ONLY = Watch(None, BalanceAlerts())
"""The watch of an inventory that only reads (a search): it books nothing to warn of."""


@asynccontextmanager
async def sent_warnings(
    settings: RouterSettings, tariffs: Tariffs | None, plans: Mapping[str, Plan]
) -> AsyncIterator[Watch]:
    """A watch for a command or a console request, whose warnings are sent, or kept in the
    spool for `hotline400 sms replay` and `hotline400 low-balance replay`, by its end: the
    process may exit right after it."""
    sender = sender_for(settings.sms_gateway, settings.sms_token_env, settings.sms_timeout)
    sms = SmsNotices(
        sender,
        RateLimit(settings.sms_per_number, settings.sms_window),
        plans.get,
        UndeliveredEvents(settings.spool_dir, SMS_UNDELIVERED_FILE),
        retry_for=settings.sms_retry_for,
        backoff=settings.sms_backoff,
    )
    webhook = webhook_for(
        settings, UndeliveredEvents(settings.spool_dir, LOW_BALANCE_UNDELIVERED_FILE)
    )
    alerts = BalanceAlerts(webhook, sms.low_balance)
    try:
        yield Watch(tariffs, alerts)
    finally:  # what is not sent by then is kept
        await asyncio.gather(alerts.close(), sms.close(grace=settings.sms_timeout))


async def book_warning_low_balances(
    watch: Watch,
    store: Store,
    entries: Sequence[LedgerEntry],
    write: Callable[[], Awaitable[Written]],
) -> Written:
    """Book `entries` by `write` (the store call that writes them, with whatever goes in
    the same transaction) and warn for each watched balance (a prepaid number's, a service
    provider's) they take below its threshold; returns what `write` returned. A write that
    says False or 0 booked nothing."""
    thresholds = await _thresholds(watch, store, {entry.number for entry in entries})
    before: dict[str, Decimal] = {}
    since: dict[str, datetime | None] = {}
    for number in sorted(thresholds):
        before[number], since[number] = await _current_holding(store, number)
    watched = [
        entry
        for entry in entries
        if entry.number in thresholds
        and ((start := since[entry.number]) is None or entry.at >= start)
    ]  # an entry dated in a past holding moves that one's balance, not this one's
    held = await _held(store, watched)
    written = await write()
    if written is not None and not written:
        return written
    moved: dict[str, list[Decimal]] = defaultdict(list)
    for entry in watched:
        if (entry.number, entry.kind, entry.ref) not in held:
            moved[entry.number].append(entry.amount)
    for number, moves in sorted(moved.items()):
        seen, now = await store.watch_balance(number)
        watch.alerts.watched(number, seen, now, moves, thresholds[number], before[number])
    return written


async def _thresholds(watch: Watch, store: Store, accounts: set[str]) -> dict[str, Decimal]:
    """The warning threshold of each of `accounts` whose balance is watched: a prepaid
    number's (tariffs.yaml) and a service provider's (the store's)."""
    numbers = watch.tariffs.accounts if watch.tariffs is not None else {}
    thresholds: dict[str, Decimal] = {}
    for account in sorted(accounts):
        provider = provider_of(account)
        if provider is not None:
            for row in await store.providers(provider):
                if row.low_balance_warning is not None:
                    thresholds[account] = row.low_balance_warning
        elif (terms := numbers.get(account)) is not None and terms.prepaid:
            thresholds[account] = terms.low_balance_warning
    return thresholds


async def _current_holding(store: Store, number: str) -> tuple[Decimal, datetime | None]:
    """The balance of the number's current holding and when it began (None: the number's
    first holding)."""
    holdings = await store.holdings(number)
    if not holdings:
        return ZERO, None
    return holdings[-1].balance, holdings[-1].since


async def _held(store: Store, entries: Sequence[LedgerEntry]) -> set[tuple[str, str, str]]:
    """Which of `entries` are on the ledger already, asked by their keys: an account's
    other entries (a re-rating's adjustments before this batch, a number's every call) are
    never read."""
    refs: dict[tuple[str, LedgerKind], list[str]] = defaultdict(list)
    for entry in entries:
        refs[entry.number, entry.kind].append(entry.ref)
    held: set[tuple[str, str, str]] = set()
    for (number, kind), asked in refs.items():
        found = await store.ledger_refs(number, kind, asked)
        held.update((number, kind, ref) for ref in found)
    return held
