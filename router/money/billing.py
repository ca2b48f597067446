"""A subscriber's month from the store: its statement, and what closing the month books.

The statement is rating.statement's, fed with the ledger and with the month's priced calls
(answered CDRs whose price is set). The opening balance is the sum of every ledger entry
before the month's first instant. Months and days are read in the tariffs' time zone, and a
call belongs to the month it was answered in (a call answered 2026-11-30 23:58 is a
November call, however long it lasts).

Closing a month books, each entry once whatever how often closing runs (the ledger keeps
one entry per number, kind and ref):
- the month's rent, ref '2026-11', dated the month's first instant: rent pays for the
  month, so it stands first on the statement;
- the fees of features switched on during the month, the very entries `account fees`
  books (ref 'recording@2026-11-05', dated their day), for any day it was not run;
- the minimum-consumption top-up, ref '2026-11', dated the month's last instant, once the
  month's charges are known: minimum_topup of the month's call charges against the
  package's minimum_monthly. The month's call charges are the subscriber's shares of the
  month's calls as they are priced now, so a call re-rated before closing counts at its
  new price.
Every entry is dated inside the month, so the month's statement shows it however late the
month is closed. Closing waits until the month is over and every answered call of it is
priced; a booked top-up is never revised (the ledger is append-only), so re-rate a month
before closing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from rating.billing_time import billing_month
from rating.ledger import LedgerEntry, LedgerKind, feature_fees_due
from rating.minimum import minimum_topup
from rating.money import ZERO
from rating.statement import CallLine, Statement, build_statements
from rating.tariff import Tariffs
from router.storage.cdr import CDR, Outcome
from router.storage.protocol import Store

RINGING_MARGIN = timedelta(days=1)
"""CDRs are found by start time: a call answered early in a month may have started (rung)
shortly before it; a day covers any ringing."""
LAST_INSTANT = timedelta(microseconds=1)


class MonthNotClosable(Exception):
    """Closing now would book a wrong top-up: the month runs on, or calls lack a price."""


def month_span(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) of '2026-11', local to `zone`."""
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise ValueError(f"{month!r} is not a month like 2026-11") from None
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return (
        datetime(first.year, first.month, 1, tzinfo=zone),
        datetime(following.year, following.month, 1, tzinfo=zone),
    )


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


def closing_entries(
    tariffs: Tariffs, number: str, month: str, call_charges: Decimal
) -> list[LedgerEntry]:
    """Everything closing `month` books for `number` (see the module's notes)."""
    account = tariffs.accounts[number]
    package = tariffs.packages[account.package]
    start, end = month_span(month, tariffs.zone)
    entries = []
    if package.monthly_rent:
        entries.append(
            LedgerEntry(
                number,
                start,
                ZERO - package.monthly_rent,
                LedgerKind.RENT,
                month,
                f"{account.package} rent {month}",
            )
        )
    for day in sorted(set(account.features.values())):
        if start.date() <= day < end.date():
            entries.extend(feature_fees_due(tariffs, number, day))
    topup = minimum_topup(call_charges, package.minimum_monthly)
    if topup:
        entries.append(
            LedgerEntry(
                number,
                end - LAST_INSTANT,
                ZERO - topup,
                LedgerKind.MINIMUM_TOPUP,
                month,
                f"minimum {package.minimum_monthly}, calls {call_charges}",
            )
        )
    return entries


@dataclass(frozen=True)
class MonthStatement:
    """A statement with the closing entries not booked yet counted in (`pending`), so its
    figures are those of the closed month; `unpriced` answered calls are not in it."""

    statement: Statement
    package: str
    pending: tuple[LedgerEntry, ...]
    unpriced: int

    @property
    def closed(self) -> bool:
        return not self.pending


async def month_statement(
    store: Store, tariffs: Tariffs, number: str, month: str
) -> MonthStatement:
    zone = tariffs.zone
    start, end = month_span(month, zone)
    opening = sum((entry.amount for entry in await store.ledger(number, until=start)), ZERO)
    booked = await store.ledger(number, since=start, until=end)
    answered = [
        cdr
        for cdr in await store.query_cdrs(
            number=number, since=start - RINGING_MARGIN, until=end, outcome=Outcome.ANSWERED
        )
        if cdr.answered_at is not None and billing_month(cdr.answered_at, zone) == month
    ]
    lines = [line for cdr in answered if (line := call_line(cdr)) is not None]
    call_charges = sum((line.callee_share for line in lines), ZERO)
    already = {(entry.kind, entry.ref) for entry in booked}
    pending = tuple(
        entry
        for entry in closing_entries(tariffs, number, month, call_charges)
        if (entry.kind, entry.ref) not in already
    )
    statement = build_statements(month, {number: opening}, lines, [*booked, *pending], zone)
    return MonthStatement(
        statement[number],
        tariffs.accounts[number].package,
        pending,
        unpriced=len(answered) - len(lines),
    )


async def close_month(
    store: Store, tariffs: Tariffs, numbers: Sequence[str], month: str, today: date
) -> tuple[dict[str, MonthStatement], int]:
    """Book the month's closing entries of every number in one transaction, or of none when
    one number cannot be closed yet; the statements as they stand after closing, and how
    many entries were booked (0 when the month was closed before)."""
    _, end = month_span(month, tariffs.zone)
    if today < end.date():
        raise MonthNotClosable(f"{month} is not over yet (today is {today})")
    drafts = [await month_statement(store, tariffs, number, month) for number in numbers]
    unpriced = [draft for draft in drafts if draft.unpriced]
    if unpriced:
        counts = ", ".join(f"{d.statement.number}: {d.unpriced}" for d in unpriced)
        raise MonthNotClosable(
            f"answered calls of {month} have no price yet ({counts}); price them first: "
            f"hotline400 rate --from {month}-01 --to {end.date() - timedelta(days=1)}"
        )
    booked = await store.post_ledger([entry for draft in drafts for entry in draft.pending])
    closed = {number: await month_statement(store, tariffs, number, month) for number in numbers}
    return closed, booked
