"""A subscriber's month from the store: its statement, and booking what closing it owes.

The statement is rating.statement's, fed with the ledger and with the month's priced calls
(answered CDRs whose price is set). A month's statement is a holding's (router.numbers.holdings):
one for the whole month, or, when the number came back to the pool within it, one per
holding that had part of it (`month_parts`), from the part's first instant to where the next
holding began. Its opening balance is the sum of that holding's ledger entries before the
part, and another holder's entries, calls and opening day are not in it (what it owes stays
on its own holding, Store.holdings). What closing books for a part is dated within it (rent
at its first instant, the top-up at its last), so it moves that holding's balance.
Months and days are read in the tariffs' time zone, and a
call belongs to the month it was answered in (a call answered 2026-11-30 23:58 is a
November call, however long it lasts). What closing owes and when it may be done are
rating.closing's rules; this module reads the store for them (the opening day that
pro-rates a first month is `opening_day`'s) and books the result. The
feature fees of a number a service provider holds are the provider's (fee_payers): closing
books them on its account, as `account fees` would have, and not on the number's statement.
Each statement names its holder (`part_holder`), so two statements of one number and month
tell whose each is.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from numbering.lifecycle import NumberRecord, Status
from rating.billing_time import billing_month
from rating.closing import (
    LAST_INSTANT,
    MonthNotClosable,
    check_closable,
    check_not_closed,
    check_opened,
    closed_by,
    closing_entries,
    closing_generation,
    month_span,
    not_yet_booked,
    part_label,
    reopening_entries,
)
from rating.ledger import LedgerEntry, LedgerKind
from rating.money import ZERO
from rating.statement import CallLine, Statement, count_call, settle
from rating.tariff import Tariffs
from router.money.booking_alerts import Watch, book_warning_low_balances
from router.money.fee_payers import on_payer, providers_in
from router.numbers.holdings import holding_since
from router.storage.cdr import CDR, Outcome
from router.storage.cdr_pages import PAGE_SIZE, cdr_pages
from router.storage.number_rows import HistoryEntry
from router.storage.protocol import Store
from router.storage.rows import Holding

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
    figures are those of the closed month; `unpriced` answered calls are not in it. It is
    the statement of one holding's part of the month, [since, until): the whole month
    unless the number changed hands within it."""

    statement: Statement
    package: str
    pending: tuple[LedgerEntry, ...]
    unpriced: int
    pending_elsewhere: tuple[LedgerEntry, ...] = ()
    """What closing books on another account, outside this statement: the feature fees of
    a number a service provider holds, deducted from the provider's (fee_payers)."""
    since: datetime | None = None
    until: datetime | None = None
    in_service: bool = True
    label: str = ""
    """What the part's closing entries are known by (rating.closing.part_label)."""
    holder: str | None = None
    """The subscriber whose statement it is (None: no holder recorded, e.g. a number
    outside the inventory, or a holding that ended before holders were recorded)."""
    provider: str | None = None
    """The service provider the holder has the number through (None: none recorded)."""

    @property
    def closed(self) -> bool:
        return not self.pending

    def partial(self, zone: ZoneInfo) -> bool:
        """Whether this is one holding's part of a month another holder had part of."""
        if self.since is None or self.until is None:
            return False
        start, end = month_span(self.statement.month, zone)
        return self.since > start or self.until < end


@dataclass(frozen=True)
class MonthPart:
    """One holding's part of a month: [start, end), the holding's own span, and the label
    its closing entries carry."""

    start: datetime
    end: datetime
    holding_since: datetime | None
    holding_until: datetime | None
    label: str


def month_parts(history: Sequence[HistoryEntry], month: str, zone: ZoneInfo) -> list[MonthPart]:
    """The holdings of the number within `month`, in order: one part, the whole month,
    unless the number came back to the pool during it (then a part per holding, each
    ending where the next begins)."""
    start, end = month_span(month, zone)
    returns = sorted({entry.at for entry in history if entry.to_status == Status.AVAILABLE.value})
    bounds = [start, *(at for at in returns if start < at < end), end]
    parts = []
    for first, until in itertools.pairwise(bounds):
        since = holding_since(history, before=first + LAST_INSTANT)
        later = [at for at in returns if at > first]
        parts.append(
            MonthPart(
                first,
                until,
                since,
                later[0] if later else None,
                part_label(month, until, end, zone),
            )
        )
    return parts


async def month_statements(
    store: Store, tariffs: Tariffs, number: str, month: str, *, page_size: int = PAGE_SIZE
) -> list[MonthStatement]:
    """The number's statements of `month`: one per holding that had part of it, in order.
    The part of a holding that ended within the month is left out when it owes and holds
    nothing (the number was in the pool, or reserved, all that time); the last part, the
    holding in force at the month's end, is always there."""
    history = await store.number_history(number)
    parts = month_parts(history, month, tariffs.zone)
    holdings = await store.holdings(number)
    records = await store.number_records([number])
    statements = []
    for index, part in enumerate(parts):
        found = await _part_statement(
            store, tariffs, number, month, history, records, part, page_size
        )
        holder, provider = part_holder(part, holdings, records.get(number))
        found = replace(found, holder=holder, provider=provider)
        held = found.in_service or found.statement.usage.calls or found.unpriced
        last = index == len(parts) - 1
        if not (held or last or await store.ledger(number, since=part.start, until=part.end)):
            continue  # in the pool all that time, nothing booked: nobody's statement
        statements.append(found)
    return statements


def part_holder(
    part: MonthPart, holdings: Sequence[Holding], record: NumberRecord | None
) -> tuple[str | None, str | None]:
    """Who held the number in `part`, and through which service provider: the inventory's
    record names the current holding's subscriber; a holding's row names the subscriber it
    ended with (or an applicant that let the number go), which holdings that ended before
    holders were recorded do not. (None, None) when nobody is named."""
    if part.holding_until is None and record is not None and record.subscriber is not None:
        return record.subscriber, record.provider
    held = next((h for h in holdings if h.since == part.holding_since), None)
    if held is None or held.holder is None:
        return None, None
    return held.holder, held.provider


def named_holder(holder: str, provider: str | None) -> str:
    """'alpha (provider sp-east)': a holder as statements and `account show` name it, its
    service provider left out when none is recorded."""
    return f"{holder} (provider {provider})" if provider else holder


async def month_statement(
    store: Store, tariffs: Tariffs, number: str, month: str
) -> MonthStatement:
    """The statement of the holding in force at the month's end (month_statements' last)."""
    return (await month_statements(store, tariffs, number, month))[-1]


async def _part_statement(
    store: Store,
    tariffs: Tariffs,
    number: str,
    month: str,
    history: Sequence[HistoryEntry],
    records: dict[str, NumberRecord],
    part: MonthPart,
    page_size: int,
) -> MonthStatement:
    """The statement of `number`'s `part` of `month`; `records` is its inventory record
    (none for a number outside the inventory), read once for all its parts. Its calls are
    read `page_size` at a time and only their sums kept (router.storage.cdr_pages)."""
    zone = tariffs.zone
    since = part.holding_since
    opening = sum(
        (entry.amount for entry in await store.ledger(number, since=since, until=part.start)),
        ZERO,
    )
    booked = await holding_ledger(store, number, part.start, part.end, since)
    statement = Statement(number, month, opening)
    unpriced = 0
    start, end = month_span(month, zone)
    pages = cdr_pages(
        store,
        number=number,
        since=start - RINGING_MARGIN,
        until=end,
        outcome=Outcome.ANSWERED,
        page_size=page_size,
    )
    async for page in pages:  # one page in memory: the statement keeps sums, not calls
        for cdr in page:
            if (
                cdr.answered_at is None
                or billing_month(cdr.answered_at, zone) != month
                or not part.start <= cdr.answered_at < part.end
            ):
                continue
            line = call_line(cdr)
            if line is None:
                unpriced += 1
            else:
                count_call(statement, line, zone)
    call_charges = statement.usage.callee_charges
    generation = closing_generation(part.label, booked)
    in_service = not out_of_service_all_month(history, part.start, part.end)
    opened = await opening_day(store, tariffs, number, since, part.holding_until)
    due = closing_entries(
        tariffs,
        number,
        month,
        call_charges,
        generation,
        in_service=in_service,
        opened=opened,
        part=(part.start, part.end),
        label=part.label,
    )
    elsewhere: tuple[LedgerEntry, ...] = ()
    providers = providers_in(records)
    if providers:  # its provider pays the feature fees, as `account fees` deducts them
        fees = [on_payer(e, providers) for e in due if e.kind is LedgerKind.FEATURE_FEE]
        due = [entry for entry in due if entry.kind is not LedgerKind.FEATURE_FEE]
        if fees:
            paid = await store.ledger(fees[0].number, kind=LedgerKind.FEATURE_FEE)
            elsewhere = not_yet_booked(fees, paid)
    pending = not_yet_booked(due, booked)
    settle(statement, [*booked, *pending], zone)
    return MonthStatement(
        statement,
        tariffs.accounts[number].package,
        pending,
        unpriced=unpriced,
        pending_elsewhere=elsewhere,
        since=part.start,
        until=part.end,
        in_service=in_service,
        label=part.label,
    )


OUT_OF_SERVICE = frozenset(
    {Status.SUSPENDED, Status.CANCELLED, Status.FROZEN, Status.AVAILABLE, Status.RESERVED}
)
"""Statuses of a number that owes no rent: kept while suspended, not yet a subscriber's
(in the pool, or reserved by a provider), or no longer the subscriber's. Arrears is not
among them: a number in arrears still owes its month."""


def out_of_service_all_month(
    history: Sequence[HistoryEntry], start: datetime, end: datetime
) -> bool:
    """Whether the inventory's history has the number out of service from `start` (a
    month's, or a holding's within it) to `end` (a number the inventory does not hold is
    in service as its account says)."""
    before = [entry for entry in history if entry.at <= start]
    if not before:
        return False
    latest = before[-1]  # the history in order: the last of transitions made at one instant
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
) -> tuple[dict[str, list[MonthStatement]], int]:
    """Close the month for every number in one transaction, or for none when one number
    cannot be closed: the month is not over, a call that may belong to it is still in
    progress, a call lacks a price, the account was not open yet, or the month is closed
    already. A month the number changed hands in is closed for each holding's part of it
    (month_statements), each on its own holding's balance. Without `book` nothing is
    booked: the statements show what closing would book. What it books that takes a
    prepaid balance below its threshold is warned of on `watch`. Returns the statements
    as they stand and how many entries were booked."""
    zone = tariffs.zone
    check_closable(month, zone, today, {})
    for number in numbers:
        history = await store.number_history(number)
        closes = []
        for part in month_parts(history, month, zone):
            if out_of_service_all_month(history, part.start, part.end):
                continue  # closing books no rent nor top-up for it: nothing to refuse
            booked = await holding_ledger(store, number, part.start, part.end, part.holding_since)
            opened = await opening_day(
                store, tariffs, number, part.holding_since, part.holding_until
            )
            check_opened(month, zone, number, opened, part.end)
            closes.append((part.label, booked))
        if closes and all(closed_by(label, booked) for label, booked in closes):
            label, booked = closes[-1]
            check_not_closed(month, number, booked, label)
    in_progress = {
        number: len(await calls_in_progress(store, number, month, zone)) for number in numbers
    }
    check_closable(month, zone, today, {}, in_progress)
    drafts = {number: await month_statements(store, tariffs, number, month) for number in numbers}
    unpriced = {number: sum(d.unpriced for d in parts) for number, parts in drafts.items()}
    check_closable(month, zone, today, unpriced)
    if not book:
        return drafts, 0
    entries = [
        e
        for parts in drafts.values()
        for draft in parts
        for e in (*draft.pending, *draft.pending_elsewhere)
    ]
    booked_count = await book_warning_low_balances(
        watch, store, entries, lambda: store.post_ledger(entries)
    )
    closed = {number: await month_statements(store, tariffs, number, month) for number in numbers}
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
    store: Store,
    tariffs: Tariffs,
    number: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> date | None:
    """The opening day of the holding from `since` (None: the number's first) to `until`
    (None: still held): the account's `opened` day when it falls in that holding, else the
    day of the holding's first ledger entry (a later holder's opening fee). tariffs.yaml
    has one account a number, so its `opened` is the day of one of its holdings only."""
    zone = tariffs.zone
    opened = tariffs.accounts[number].opened
    if (
        opened is not None
        and (since is None or opened >= since.astimezone(zone).date())
        and (until is None or opened < until.astimezone(zone).date())
    ):
        return opened
    entries = await store.ledger(number, since=since, until=until)
    first = min((entry.at for entry in entries), default=None)
    return None if first is None else first.astimezone(zone).date()


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
    reversals: list[LedgerEntry] = []
    for number in numbers:
        history = await store.number_history(number)
        entries = []
        for part in month_parts(history, month, tariffs.zone):
            booked = await holding_ledger(store, number, part.start, part.end, part.holding_since)
            entries += reopening_entries(part.label, booked, by, reason, today)
        if not entries:
            raise MonthNotClosable(f"{month} is not closed for {number}: nothing to reopen")
        reversals += entries
    if book:
        await store.post_ledger(reversals)
    return reversals
