"""Closing a month: what it owes, when it may be done. Pure: the caller reads the ledger and
the calls and passes in the day it is.

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

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from rating.ledger import LedgerEntry, LedgerKind, feature_fees_due
from rating.minimum import minimum_topup
from rating.money import ZERO
from rating.tariff import Tariffs

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


def not_yet_booked(
    due: Iterable[LedgerEntry], booked: Iterable[LedgerEntry]
) -> tuple[LedgerEntry, ...]:
    """The entries of `due` the ledger does not hold yet (by kind and ref)."""
    already = {(entry.kind, entry.ref) for entry in booked}
    return tuple(entry for entry in due if (entry.kind, entry.ref) not in already)


def check_closable(month: str, zone: ZoneInfo, today: date, unpriced: Mapping[str, int]) -> None:
    """Raise MonthNotClosable unless `month` is over by `today` and no number of it has
    answered calls without a price (`unpriced`: number -> how many)."""
    _, end = month_span(month, zone)
    if today < end.date():
        raise MonthNotClosable(f"{month} is not over yet (today is {today})")
    waiting = {number: count for number, count in unpriced.items() if count}
    if waiting:
        counts = ", ".join(f"{number}: {count}" for number, count in waiting.items())
        raise MonthNotClosable(
            f"answered calls of {month} have no price yet ({counts}); price them first: "
            f"hotline400 rate --from {month}-01 --to {end.date() - timedelta(days=1)}"
        )
