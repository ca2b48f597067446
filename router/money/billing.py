"""A subscriber's month from the store: its statement, and booking what closing it owes.

The statement is rating.statement's, fed with the ledger and with the month's priced calls
(answered CDRs whose price is set). A month's statement is that of the holding of the number
in force at its end (router.numbers.holdings): the opening balance is the sum of that
holding's ledger entries before the month's first instant, and an earlier holder's entries,
calls and opening day are not in it (what it owes stays on its own holding, Store.holdings).
What closing books in the month a holding began is dated within it (rent, dated the month's
first instant, at the holding's start), so it moves that holding's balance.
Months and days are read in the tariffs' time zone, and a
call belongs to the month it was answered in (a call answered 2026-11-30 23:58 is a
November call, however long it lasts). What closing owes and when it may be done are
rating.closing's rules; this module reads the store for them (the opening day that
pro-rates a first month is `opening_day`'s) and books the result. The
feature fees of a number a service provider holds are the provider's (fee_payers): closing
books them on its account, as `account fees` would have, and not on the number's statement.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from numbering.lifecycle import Status
from rating.billing_time import billing_month
from rating.closing import (
    MonthNotClosable,
    check_closable,
    check_not_closed,
    check_opened,
    closing_entries,
    closing_generation,
    month_span,
    not_yet_booked,
    reopening_entries,
)
from rating.ledger import LedgerEntry, LedgerKind
from rating.money import ZERO
from rating.statement import CallLine, Statement, build_statements
from rating.tariff import Tariffs
from router.money.booking_alerts import Watch, book_warning_low_balances
from router.money.fee_payers import on_payer, providers_of
from router.numbers.holdings import holding_since
from router.storage.cdr import CDR, Outcome
from router.storage.number_rows import HistoryEntry
from router.storage.protocol import Store

RINGING_MARGIN = timedelta(days=1)
"""CDRs are found by start time: a call answered early in a month may have started (rung)
shortly before it; a day covers any ringing."""


def call_line(cdr: CDR) -> CallLine | None:
    """An answered call as the statement counts it; None while it has no price."""
    if cdr.answered_at is None or cdr.callee_share is None or cdr.caller_share is None:
        return None
    return CallLine(
        cdr.number,
        cdr.answered_at,
        cdr.region.province,
        cdr.billable_seconds,
        cdr.callee_share,
        cdr.caller_share,
    )


@dataclass(frozen=True)
class MonthStatement:
    """A statement with the closing entries not booked yet counted in (`pending`), so its
    figures are those of the closed month; `unpriced` answered calls are not in it."""

    statement: Statement
    package: str
    pending: tuple[LedgerEntry, ...]
    unpriced: int
    pending_elsewhere: tuple[LedgerEntry, ...] = ()
    """What closing books on another account, outside this statement: the feature fees of
    a number a service provider holds, deducted from the provider's (fee_payers)."""

    @property
    def closed(self) -> bool:
        return not self.pending


async def month_statement(
    store: Store, tariffs: Tariffs, number: str, month: str
) -> MonthStatement:
    zone = tariffs.zone
    start, end = month_span(month, zone)
    history = await store.number_history(number)
    since = holding_since(history, before=end)
    opening = sum(
        (entry.amount for entry in await store.ledger(number, since=since, until=start)), ZERO
    )
    booked = await holding_ledger(store, number, start, end, since)
    answered = [
        cdr
        for cdr in await store.query_cdrs(
            number=number, since=start - RINGING_MARGIN, until=end, outcome=Outcome.ANSWERED
        )
        if cdr.answered_at is not None
        and billing_month(cdr.answered_at, zone) == month
        and (since is None or cdr.answered_at >= since)
    ]
    lines = [line for cdr in answered if (line := call_line(cdr)) is not None]
    call_charges = sum((line.callee_share for line in lines), ZERO)
    generation = closing_generation(month, booked)
    in_service = not out_of_service_all_month(history, start, end)
    opened = await opening_day(store, tariffs, number, since)
    due = closing_entries(
        tariffs, number, month, call_charges, generation, in_service=in_service, opened=opened
    )
    if since is not None:  # rent dated the 1st, in the month the holding began: its own
        due = [
            entry if entry.at >= since else dataclasses.replace(entry, at=since) for entry in due
        ]
    elsewhere: tuple[LedgerEntry, ...] = ()
    providers = await providers_of(store, [number])
    if providers:  # its provider pays the feature fees, as `account fees` deducts them
        fees = [on_payer(e, providers) for e in due if e.kind is LedgerKind.FEATURE_FEE]
        due = [entry for entry in due if entry.kind is not LedgerKind.FEATURE_FEE]
        if fees:
            paid = await store.ledger(fees[0].number, kind=LedgerKind.FEATURE_FEE)
            elsewhere = not_yet_booked(fees, paid)
    pending = not_yet_booked(due, booked)
    statement = build_statements(month, {number: opening}, lines, [*booked, *pending], zone)
    return MonthStatement(
        statement[number],
        tariffs.accounts[number].package,
        pending,
        unpriced=len(answered) - len(lines),
        pending_elsewhere=elsewhere,
    )


OUT_OF_SERVICE = frozenset({Status.SUSPENDED, Status.CANCELLED, Status.FROZEN, Status.AVAILABLE})
"""Statuses of a number that owes no rent: kept while suspended, or no longer the
subscriber's. Arrears is not among them: a number in arrears still owes its month."""


def out_of_service_all_month(
    history: Sequence[HistoryEntry], start: datetime, end: datetime
) -> bool:
    """Whether the inventory's history has the number out of service from the month's start
    to its end (a number the inventory does not hold is in service as its account says)."""
    before = [entry for entry in history if entry.at <= start]
    if not before:
        return False
    latest = max(before, key=lambda entry: entry.at)
    during = [entry for entry in history if start < entry.at < end]
    return latest.to_status in OUT_OF_SERVICE and all(
        entry.to_status in OUT_OF_SERVICE for entry in during
    )


async def close_month(
    store: Store,
    tariffs: Tariffs,
    numbers: Sequence[str],
    month: str,
    today: date,
    *,
    book: bool,
    watch: Watch,
) -> tuple[dict[str, MonthStatement], int]:
    """Close the month for every number in one transaction, or for none when one number
    cannot be closed: the month is not over, a call that may belong to it is still in
    progress, a call lacks a price, the account was not open yet, or the month is closed
    already. Without `book` nothing is booked: the statements show what closing would
    book. What it books that takes a prepaid balance below its threshold is warned of on
    `watch`. Returns the statements as they stand and how many entries were
    booked."""
    zone = tariffs.zone
    check_closable(month, zone, today, {})
    start, end = month_span(month, zone)
    for number in numbers:
        since = holding_since(await store.number_history(number), before=end)
        booked = await holding_ledger(store, number, start, end, since)
        check_opened(month, zone, number, await opening_day(store, tariffs, number, since))
        check_not_closed(month, number, booked)
    in_progress = {
        number: len(await calls_in_progress(store, number, month, zone)) for number in numbers
    }
    check_closable(month, zone, today, {}, in_progress)
    drafts = [await month_statement(store, tariffs, number, month) for number in numbers]
    unpriced = {draft.statement.number: draft.unpriced for draft in drafts}
    check_closable(month, zone, today, unpriced)
    if not book:
        return {draft.statement.number: draft for draft in drafts}, 0
    entries = [e for draft in drafts for e in (*draft.pending, *draft.pending_elsewhere)]
    booked_count = await book_warning_low_balances(
        watch, store, entries, lambda: store.post_ledger(entries)
    )
    closed = {number: await month_statement(store, tariffs, number, month) for number in numbers}
    return closed, booked_count


async def calls_in_progress(store: Store, number: str, month: str, zone: ZoneInfo) -> list[CDR]:
    """The number's calls still in progress that may belong to `month`: started before its
    end (and, like the calls a statement counts, no earlier than a day before it began).
    Until they end nobody knows whether they were answered, when, nor their charge."""
    start, end = month_span(month, zone)
    return await store.query_cdrs(
        number=number, since=start - RINGING_MARGIN, until=end, outcome=Outcome.IN_PROGRESS
    )


async def holding_ledger(
    store: Store, number: str, start: datetime, end: datetime, since: datetime | None
) -> list[LedgerEntry]:
    """The entries from `start` to `end` of the holding that began `since` (None: the
    number's first): a month's statement is that of the holding in force at its end."""
    return await store.ledger(
        number, since=start if since is None else max(start, since), until=end
    )


async def opening_day(
    store: Store, tariffs: Tariffs, number: str, since: datetime | None = None
) -> date | None:
    """The account's `opened` day, else the day of the first entry on its ledger in the
    holding that began `since` (None: the number's first)."""
    opened = tariffs.accounts[number].opened
    if opened is not None:
        return opened
    entries = await store.ledger(number, since=since)
    first = min((entry.at for entry in entries), default=None)
    return None if first is None else first.astimezone(tariffs.zone).date()


async def reopen_month(
    store: Store,
    tariffs: Tariffs,
    numbers: Sequence[str],
    month: str,
    today: date,
    *,
    by: str,
    reason: str,
    book: bool,
) -> list[LedgerEntry]:
    """The adjustments reversing the month's close for each number (booked with `book`);
    MonthNotClosable names a number whose month is not closed."""
    start, end = month_span(month, tariffs.zone)
    reversals: list[LedgerEntry] = []
    for number in numbers:
        since = holding_since(await store.number_history(number), before=end)
        booked = await holding_ledger(store, number, start, end, since)
        entries = reopening_entries(month, booked, by, reason, today)
        if not entries:
            raise MonthNotClosable(f"{month} is not closed for {number}: nothing to reopen")
        reversals += entries
    if book:
        await store.post_ledger(reversals)
    return reversals
