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
  number's minimum monthly consumption (its account's own, else its package's). The
  month's call charges are the subscriber's shares of the month's calls as they are priced
  now, so a call re-rated before closing counts at its new price.
A month the number spent whole out of service (suspended with the number kept, cancelled
or frozen: `in_service` False) books neither rent nor a top-up: what such a month costs is
the lifecycle's keeping fee (domain.md, suspension with the number kept). The month the
account was opened in is charged in proportion to its days from the opening day on (domain.md
says nothing of a partial first month; a subscriber expects to pay for the days it had):
opened 2026-11-21, November's rent and minimum are 10/30 of the month's, each rounded to the
fen, and the rent is the one in force on the opening day. Any other month partly in service
(suspended or cancelled during it) is charged whole. A month a number changed hands in is
closed per holding (`part`: the span of the month it had, `label`: `part_label`), each part
charged as the month an account opens in: its days from its opening day to the day before
the next holding's first (which is the next holder's) in proportion, rent and minimum
alike, the rent dated at the part's first instant and the top-up at its last.
Every entry is dated inside the month, so the month's statement shows it however late the
month is closed. Closing waits until the month is over, no call that may belong to it is
still in progress (a call answered on its last evening may talk past midnight, and its
charge counts toward the month it was answered in), and every answered call of it is
priced; a booked top-up is never revised (the ledger is append-only), so re-rate a month
before closing it.

A typo must not cost money, so closing refuses a month before the account was opened and
a month already closed. An operator reverses a close by reopening the month: adjustments
that compensate its rent and top-up, each naming who reopened it, when and why (ref
'reopen 2026-11#1 rent'). Closing a reopened month books the next generation of entries
(ref '2026-11#2'), so the ledger keeps one entry per number, kind and ref, and the
statement shows the first close, its reversal and the new close one after the other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from rating.ledger import LedgerEntry, LedgerKind, feature_fees_due
from rating.minimum import minimum_topup
from rating.money import ZERO, fraction_to_fen
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


REOPEN_PREFIX = "reopen"
CLOSING_KINDS = (LedgerKind.RENT, LedgerKind.MINIMUM_TOPUP)
"""What closing books and reopening reverses; feature fees are owed whether or not a month
is closed (`account fees` books them too)."""


def closing_ref(month: str, generation: int) -> str:
    """'2026-11' for the first close of a month, '2026-11#2' after it was reopened once."""
    return month if generation == 1 else f"{month}#{generation}"


def _reopen_ref(month: str, generation: int, kind: LedgerKind) -> str:
    return f"{REOPEN_PREFIX} {month}#{generation} {kind}"


def closing_generation(month: str, booked: Iterable[LedgerEntry]) -> int:
    """Which close of `month` is the current one: 1, plus one for each reopening found
    among the month's `booked` entries."""
    prefix = f"{REOPEN_PREFIX} {month}#"
    reopened = {
        entry.ref.split()[1]
        for entry in booked
        if entry.kind is LedgerKind.ADJUSTMENT and entry.ref.startswith(prefix)
    }
    return 1 + len(reopened)


def closed_by(month: str, booked: Iterable[LedgerEntry]) -> tuple[LedgerEntry, ...]:
    """The rent and top-up entries of the month's current close; empty while it is open."""
    entries = list(booked)
    ref = closing_ref(month, closing_generation(month, entries))
    return tuple(entry for entry in entries if entry.kind in CLOSING_KINDS and entry.ref == ref)


def reopening_entries(
    month: str, booked: Iterable[LedgerEntry], by: str, reason: str, today: date
) -> list[LedgerEntry]:
    """The adjustments that reverse the month's current close, dated like the entries they
    compensate (so the month's statement shows both), recording who, when and why."""
    booked = list(booked)
    generation = closing_generation(month, booked)
    return [
        LedgerEntry(
            entry.number,
            entry.at,
            ZERO - entry.amount,
            LedgerKind.ADJUSTMENT,
            _reopen_ref(month, generation, entry.kind),
            f"reverses {entry.kind} {entry.ref}: reopened {today} by {by}: {reason}",
        )
        for entry in closed_by(month, booked)
    ]


def check_opened(
    month: str, zone: ZoneInfo, number: str, opened: date | None, until: datetime | None = None
) -> None:
    """Raise MonthNotClosable when `month` (or its part ending at `until`) ended before the
    account was opened, or when nothing says when it was."""
    if opened is None:
        raise MonthNotClosable(
            f"{number} has no opening day: set accounts.{number}.opened in the tariffs "
            "(nothing on its ledger tells it either)"
        )
    _, end = month_span(month, zone)
    end = end if until is None else until
    if end.astimezone(zone).date() <= opened:
        raise MonthNotClosable(f"{number} was opened on {opened}: {month} is before that")


def check_not_closed(
    month: str, number: str, booked: Iterable[LedgerEntry], label: str | None = None
) -> None:
    """Raise MonthNotClosable when the month's current close (of its part `label`, if
    given) is on the ledger already."""
    entries = closed_by(label or month, booked)
    if entries:
        what = ", ".join(f"{entry.kind} {ZERO - entry.amount}" for entry in entries)
        raise MonthNotClosable(
            f"{month} is already closed for {number} ({what}); to undo it: hotline400 bill "
            f"--month {month} --number {number} --reopen --by NAME --reason WHY"
        )


def closing_entries(
    tariffs: Tariffs,
    number: str,
    month: str,
    call_charges: Decimal,
    generation: int = 1,
    *,
    in_service: bool = True,
    opened: date | None = None,
    part: tuple[datetime, datetime] | None = None,
    label: str | None = None,
) -> list[LedgerEntry]:
    """Everything closing `month` books for `number` (see the module's notes); `opened` is
    the account's opening day, which pro-rates the month it falls in. `part` is the span of
    the month one holding of the number had (default: all of it), closed under `label`
    (part_label): its days are charged as those of a month the account opened in."""
    account = tariffs.accounts[number]
    zone = tariffs.zone
    start, end = month_span(month, zone)
    first, until = part or (start, end)
    days = days_in_service(month, zone, opened, part)
    month_days = (end.date() - start.date()).days
    share_of_month = Fraction(days, month_days)
    share = "" if days == month_days else f" ({days} of {month_days} days)"
    package = tariffs.package_on(number, _day_after_last(until, zone) - timedelta(days=days))
    ref = closing_ref(label or month, generation)
    entries = []
    rent = fraction_to_fen(Fraction(package.monthly_rent) * share_of_month)
    if rent and in_service:
        entries.append(
            LedgerEntry(
                number,
                first,
                ZERO - rent,
                LedgerKind.RENT,
                ref,
                f"{account.package} rent {month}{share}",
            )
        )
    for day in sorted(set(account.features.values())):
        if first.astimezone(zone).date() <= day < _day_after_last(until, zone):
            entries.extend(
                entry if entry.at >= first else dataclasses.replace(entry, at=first)
                for entry in feature_fees_due(tariffs, number, day)
            )
    minimum = fraction_to_fen(Fraction(tariffs.minimum_of(number)) * share_of_month)
    topup = minimum_topup(call_charges, minimum)
    if topup and in_service:
        entries.append(
            LedgerEntry(
                number,
                until - LAST_INSTANT,
                ZERO - topup,
                LedgerKind.MINIMUM_TOPUP,
                ref,
                f"minimum {minimum}{share}, calls {call_charges}",
            )
        )
    return entries


def days_in_service(
    month: str,
    zone: ZoneInfo,
    opened: date | None,
    part: tuple[datetime, datetime] | None = None,
) -> int:
    """The days of `month` (or of its `part`) from the account's opening day on: all of them
    unless it opened after the first (none if after the last). A part ending within the
    month ends with the day before the one it ends on, which is the next holder's."""
    first, until = part or month_span(month, zone)
    day = first.astimezone(zone).date()
    day = day if opened is None else max(day, opened)
    return max(0, (_day_after_last(until, zone) - day).days)


def _day_after_last(until: datetime, zone: ZoneInfo) -> date:
    """The first day that is not a day of a span ending (exclusive) at `until`."""
    return until.astimezone(zone).date()


def part_label(month: str, until: datetime, end: datetime, zone: ZoneInfo) -> str:
    """What the closing entries of a part of `month` ending at `until` are known by: the
    month itself for the part running to its end (the holding in force then), else the
    month and the instant the holding ended ('2026-12@2026-12-07T10:00:00+08:00'), so each
    holding's close of the month is an entry of its own on the number's ledger."""
    return month if until >= end else f"{month}@{until.astimezone(zone).isoformat()}"


def not_yet_booked(
    due: Iterable[LedgerEntry], booked: Iterable[LedgerEntry]
) -> tuple[LedgerEntry, ...]:
    """The entries of `due` the ledger does not hold yet (by kind and ref)."""
    already = {(entry.kind, entry.ref) for entry in booked}
    return tuple(entry for entry in due if (entry.kind, entry.ref) not in already)


def check_closable(
    month: str,
    zone: ZoneInfo,
    today: date,
    unpriced: Mapping[str, int],
    in_progress: Mapping[str, int] | None = None,
) -> None:
    """Raise MonthNotClosable unless `month` is over by `today`, no number of it has calls
    that may belong to it still in progress (`in_progress`: number -> how many) and none
    has answered calls without a price (`unpriced`: number -> how many)."""
    start, end = month_span(month, zone)
    if today < end.date():
        raise MonthNotClosable(f"{month} is not over yet (today is {today})")
    talking = {number: count for number, count in (in_progress or {}).items() if count}
    if talking:
        counts = ", ".join(f"{number}: {count}" for number, count in talking.items())
        listing = "hotline400 cdr --outcome in_progress"
        if len(talking) == 1:
            listing += f" --number {next(iter(talking))}"
        raise MonthNotClosable(
            f"calls that may belong to {month} are still in progress ({counts}): a call "
            "counts toward the month it was answered in, and its charge is known once it "
            f"ends; close {month} when they have ended (list them: {listing}). A call left "
            "in progress by a router that stopped is resolved when a router adopts it (that "
            "router restarting, or another naming it in adopt_calls_of): followed through "
            "AMI to its end and priced, or closed as interrupted"
        )
    waiting = {number: count for number, count in unpriced.items() if count}
    if waiting:
        counts = ", ".join(f"{number}: {count}" for number, count in waiting.items())
        # `rate` finds calls by the day they started: a call answered just after midnight
        # on the 1st may have rung from the last evening of the month before.
        raise MonthNotClosable(
            f"answered calls of {month} have no price yet ({counts}); price them first: "
            f"hotline400 rate --from {start.date() - timedelta(days=1)} "
            f"--to {end.date() - timedelta(days=1)}"
        )
