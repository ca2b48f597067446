"""Pricing stored calls with the tariffs in force: answered calls the router left without a
price, and, when re-rating, calls priced before a tariff change.

A call's price is read back from its CDR as the router priced it: the answer instant, the
talk time (billable_seconds), the caller kind, and the area code of the destination of the
ANSWER leg; the subscriber's home area code comes from the number's plan.

Included minutes. A call priced here for the first time takes what is left of its month's
included time after every call already booked (the month's usage counter), in answer
order, and its ledger entry records what it took, as the router's do. Re-pricing keeps the
included seconds the original pricing took (recorded with the call's ledger entry): the
call is priced as if exactly that much included time were left, and the counters of
included time never move.

A call of a month already closed (`bill --close` booked its rent or minimum top-up) is not
re-priced until the month is reopened: its top-up was reckoned from the calls' old prices,
and a credit booked beside it would leave the month below its minimum. Reopening reverses
the close, and closing again tops the new prices up.

Re-pricing never changes a ledger entry: the CDR's money fields are set to the new price
and the difference is booked as an adjustment by rating.rerating's rule, dated now, or at the
call's answer for a call of a past holding of the number (before it last came back to the
pool), whose balance it then moves, never the next holder's. Whenever it is dated, the
adjustment moves the cost counters of the month and day the call was answered in (the store's
triggers), so the caps and `account show` count the call at its new price. The CDR and its
adjustment are written in one transaction; running the re-rating again finds every call at
its new price and books nothing.

A call's entry or an adjustment that takes a prepaid balance below its threshold raises the
low-balance warning (router.money.booking_alerts), once: a call the router left without a
price was never warned of.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import partial

from dialplan.geo import locate
from rating.billing_time import billing_day, billing_month
from rating.call import CALLER_KINDS, RatedCall, Shares, answered_call
from rating.closing import closed_by
from rating.ledger import LedgerKind, call_entry
from rating.money import ZERO
from rating.pricing import price
from rating.rerating import rerated_call_id, rerating_adjustment
from router.money.answer_order import in_answer_order
from router.money.billing import holding_ledger, month_parts
from router.money.booking_alerts import Watch, book_warning_low_balances
from router.money.books import Books
from router.numbers.holdings import holding_since
from router.storage.cdr import CDR, CdrOp, FinishCall, Leg, PostLedger
from router.storage.cdr_pages import PAGE_SIZE
from router.storage.number_rows import HistoryEntry
from router.storage.protocol import Store

BATCH = 250
"""CDRs whose writes go to the store in one transaction."""


def shares_of(cdr: CDR) -> Shares | None:
    """A CDR's money; None while the call has no price."""
    if cdr.caller_share is None or cdr.callee_share is None or cdr.total is None:
        return None
    return Shares(cdr.caller_share, cdr.callee_share, cdr.total, cdr.tariff_id)


@dataclass(frozen=True, slots=True)
class Change:
    """A call's money before (None when it had no price) and after."""

    call_id: str
    number: str
    old: Shares | None
    new: Shares


@dataclass
class RatingRun:
    """What a run did: how many prices it set for the first time and how many it changed
    (each change goes to the run's caller as it is made: a month of a million calls keeps
    none of them), calls left alone."""

    priced: int = 0
    repriced: int = 0
    unchanged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    adjustments: Decimal = ZERO
    """Sum of the adjustments booked: positive when the subscriber was credited."""


def answered_leg(cdr: CDR) -> Leg | None:
    """The Dial attempt that was answered: its destination's area decides local or not."""
    return next((leg for leg in reversed(cdr.legs) if leg.dial_status == "ANSWER"), None)


class Rater:
    """Prices the CDRs of one run in answer order, keeping each month's included time."""

    def __init__(
        self,
        books: Books,
        store: Store,
        *,
        rerate: bool,
        now: datetime,
        changed: Callable[[Change], None],
    ) -> None:
        self.books = books
        self.store = store
        self.rerate = rerate
        self.now = now
        self.changed = changed
        self.run = RatingRun()
        self._included_used: dict[tuple[str, str], int] = {}
        self._included_booked: dict[str, dict[str, int]] = {}
        self._rerated: dict[str, Counter[str]] = {}
        self._holding_since: dict[str, datetime | None] = {}
        self._closed: dict[tuple[str, str], bool] = {}
        self._histories: dict[str, list[HistoryEntry]] = {}

    async def rate(self, cdrs: Iterable[CDR]) -> list[CdrOp]:
        """The writes that price `cdrs` (a batch); the run's counts move as it goes."""
        ops: list[CdrOp] = []
        for cdr in cdrs:
            ops.extend(await self._rate_one(cdr))
        return ops

    async def _rate_one(self, cdr: CDR) -> list[CdrOp]:
        old = shares_of(cdr)
        if old is not None and not self.rerate:
            self.run.unchanged += 1
            return []
        reason, rated = self._rated_call(cdr)
        if rated is None:
            self.run.skipped[reason] += 1
            return []
        if old is None:
            return await self._price_first(cdr, rated)
        return await self._reprice(cdr, rated, old)

    def _rated_call(self, cdr: CDR) -> tuple[str, RatedCall | None]:
        account = self.books.tariffs.accounts.get(cdr.number)
        plan = self.books.plans.get(cdr.number)
        if account is None:
            return "no account in the tariffs", None
        if plan is None:
            return "no plan for the number (home area unknown)", None
        if cdr.answered_at is None:
            return "no answer time", None
        if cdr.caller_kind not in CALLER_KINDS:
            return f"unknown caller kind {cdr.caller_kind!r}", None
        leg = answered_leg(cdr)
        if leg is None:
            return "no ANSWER leg", None
        rated = answered_call(
            cdr.number,
            cdr.caller_kind,
            cdr.answered_at,
            cdr.billable_seconds,
            answering_area_code=locate(leg.destination).area_code,
            home_area_code=plan.home_area_code,
        )
        return "", rated

    async def _price_first(self, cdr: CDR, rated: RatedCall) -> list[CdrOp]:
        assert rated.answered_at is not None
        tariffs = self.books.tariffs
        day = billing_day(rated.answered_at, tariffs.zone)
        month = f"{day:%Y-%m}"
        used = await self._month_included_used(cdr.number, month, day)
        package = tariffs.package_on(cdr.number, day)
        left = max(0, package.included_minutes * 60 - used)
        new = price(dataclasses.replace(rated, included_seconds_left=left), tariffs)
        self._included_used[cdr.number, month] = used + new.included_seconds_used
        self.run.priced += 1
        self.changed(Change(cdr.call_id, cdr.number, None, Shares.of_price(new)))
        entry = call_entry(cdr.number, cdr.call_id, rated.answered_at, new)
        return [
            FinishCall(cdr.call_id, Shares.of_price(new)._asdict()),
            PostLedger(entry, new.included_seconds_used),
        ]

    async def _reprice(self, cdr: CDR, rated: RatedCall, old: Shares) -> list[CdrOp]:
        kept = (await self._booked_included(cdr.number)).get(cdr.call_id, 0)
        new = price(dataclasses.replace(rated, included_seconds_left=kept), self.books.tariffs)
        if Shares.of_price(new) == old:
            self.run.unchanged += 1
            return []
        assert rated.answered_at is not None
        month = billing_month(rated.answered_at, self.books.tariffs.zone)
        if await self._month_closed(cdr.number, month, rated.answered_at):
            self.run.skipped[_closed_reason(cdr.number, month)] += 1
            return []
        self.run.repriced += 1
        self.changed(Change(cdr.call_id, cdr.number, old, Shares.of_price(new)))
        ops: list[CdrOp] = [FinishCall(cdr.call_id, Shares.of_price(new)._asdict())]
        counts = await self._rerate_counts(cdr.number)
        entry = rerating_adjustment(
            cdr.number,
            cdr.call_id,
            old,
            Shares.of_price(new),
            await self._booked_at(cdr.number, rated),
            earlier=counts[cdr.call_id],
        )
        if entry is not None:
            counts[cdr.call_id] += 1
            ops.append(PostLedger(entry))
            self.run.adjustments += entry.amount
        return ops

    async def _month_included_used(self, number: str, month: str, day: date) -> int:
        key = (number, month)
        if key not in self._included_used:
            snapshot = await self.store.usage(number, month, day.isoformat())
            self._included_used[key] = snapshot.included_used
        return self._included_used[key]

    async def _booked_included(self, number: str) -> dict[str, int]:
        if number not in self._included_booked:
            self._included_booked[number] = await self.store.included_seconds_booked(number)
        return self._included_booked[number]

    async def _booked_at(self, number: str, rated: RatedCall) -> datetime:
        """When a call's adjustment is booked: now, or, for a call of a past holding of the
        number (answered before it last came back to the pool), at its answer, so the
        adjustment moves that holding's balance and not the next holder's."""
        if number not in self._holding_since:
            history = await self.store.number_history(number)
            self._holding_since[number] = holding_since(history, before=self.now)
        since = self._holding_since[number]
        answered = rated.answered_at
        if since is not None and answered is not None and answered < since:
            return answered
        return self.now

    async def _month_closed(self, number: str, month: str, answered: datetime) -> bool:
        """Whether `month` is closed for the holding of `number` that had the call (its part
        of the month, when the number changed hands within it)."""
        if number not in self._histories:
            self._histories[number] = await self.store.number_history(number)
        history = self._histories[number]
        [part] = [
            p
            for p in month_parts(history, month, self.books.tariffs.zone)
            if p.start <= answered < p.end
        ]
        key = (number, part.label)
        if key not in self._closed:
            booked = await holding_ledger(
                self.store, number, part.start, part.end, part.holding_since
            )
            self._closed[key] = bool(closed_by(part.label, booked))
        return self._closed[key]

    async def _rerate_counts(self, number: str) -> Counter[str]:
        if number not in self._rerated:
            adjustments = await self.store.ledger(number, kind=LedgerKind.ADJUSTMENT)
            self._rerated[number] = Counter(
                call_id
                for entry in adjustments
                if (call_id := rerated_call_id(entry.ref)) is not None
            )
        return self._rerated[number]


def _closed_reason(number: str, month: str) -> str:
    return (
        f"month {month} of {number} closed: reopen it to re-price its calls, hotline400 bill "
        f"--month {month} --number {number} --reopen --by NAME --reason WHY"
    )


async def rate_cdrs(
    books: Books,
    store: Store,
    since: datetime,
    until: datetime,
    *,
    rerate: bool,
    now: datetime,
    watch: Watch,
    number: str | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
    changed: Callable[[Change], None] = lambda change: None,
    page_size: int = PAGE_SIZE,
) -> RatingRun:
    """Price the answered calls started in [since, until) (of `number` only, if given),
    read `page_size` at a time in answer order (router.money.answer_order), so a month of
    millions of calls holds a page in memory; each price set or changed goes to `changed`
    as its batch is priced, before the batch is written, and the run keeps only counts; the
    balances the entries take below their thresholds are warned of on `watch`."""
    total = await store.answered_count(since, until, number=number)
    rater = Rater(books, store, rerate=rerate, now=now, changed=changed)
    progress(0, total)
    done = 0
    batch: list[CDR] = []
    calls = in_answer_order(store, since, until, number=number, page_size=page_size)
    async for cdr in calls:
        batch.append(cdr)
        if len(batch) == BATCH:
            done += await _rate_batch(rater, watch, batch)
            progress(done, total)
            batch = []
    if batch:
        done += await _rate_batch(rater, watch, batch)
        progress(done, total)
    return rater.run


async def _rate_batch(rater: Rater, watch: Watch, batch: list[CDR]) -> int:
    """Price a batch, its writes in one transaction; how many calls it held."""
    ops = await rater.rate(batch)
    if ops:
        entries = [op.entry for op in ops if isinstance(op, PostLedger)]
        store = rater.store
        await book_warning_low_balances(watch, store, entries, partial(store.apply, ops))
    return len(batch)
