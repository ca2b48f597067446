"""Price changes and their notice: when a subscriber's new prices are a rise, and whether
it was announced long enough before it takes effect.

A package's prices are a timeline: its own fields, then each of its `changes` from its
effective day (rating.tariff.PriceChange). Calls are priced by the prices in force on the
day they are answered (rating.pricing), a month's rent by those in force on its first day.

New prices are a rise when some answered call would cost the subscriber more, at some
time of the week, local or long distance, or when the rent goes up or the included minutes
down. A rise must take effect at least `price_rise_notice_days` (30) days after it was
announced. Within one tariff file that is each change's `effective` against its
`announced`. Between the file in force and the next one (`check --previous`, a reload)
the new file's prices are compared with the old one's on every day from today on where
either changes them: a rise on a day is allowed only when the new file's change in force
that day (effective today or later) was announced the notice ahead. A change new to the
file, or edited, counts as announced no earlier than the day the file takes over; a rise
written into a package's own fields, or into a change already in force, is announced that
day, and so refused.

A number moved to another package takes that package's prices: the move is agreed with
the subscriber, so only its minimum monthly consumption is checked (rating.minimum).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import chain
from math import lcm

from rating.periods import WEEKDAYS
from rating.rates import Rate
from rating.tariff import Package, Tariffs

_WEEK_START = datetime(2024, 1, 1)  # a Monday; periods read only weekday and time of day
_MINUTES_A_WEEK = 7 * 24 * 60


def dearer_after(old: Rate, new: Rate) -> int | None:
    """A talk time in seconds that costs more on `new` than on `old`, None if none does.

    Past both first segments one increment pattern repeats every lcm of the increments,
    shifted by the difference of the per-second rates: the shortest such time lies within
    one period after the first segments, unless `new` charges more per second, when long
    enough calls cost more on it. Only the seconds at which `new` steps up are tried (the
    first, and each started increment): between them `new` stays and `old` never falls, so
    the loop is as long as the period in `new`'s increments, not in seconds (3599 s and
    3600 s increments repeat every 150 days)."""
    horizon = max(old.first_seconds, new.first_seconds) + lcm(old.per_seconds, new.per_seconds)
    steps = range(new.first_seconds + 1, horizon + 1, new.per_seconds)
    for seconds in chain((1,), steps) if new.first_seconds else steps:
        if new.charge_for(seconds) > old.charge_for(seconds):
            return seconds
    if new.charge * old.per_seconds > old.charge * new.per_seconds:
        return _long_enough(old, new)
    return None


def _long_enough(old: Rate, new: Rate) -> int:
    seconds = max(old.first_seconds, new.first_seconds) + lcm(old.per_seconds, new.per_seconds)
    while new.charge_for(seconds) <= old.charge_for(seconds):
        seconds *= 2
    return seconds


def rise(old: Package, new: Package) -> str | None:
    """What costs a subscriber more on `new` than on `old` ('long_distance sat 22:00:
    0.15/60s -> 0.18/60s, a 60 s call'), None when nothing does."""
    if new.monthly_rent > old.monthly_rent:
        return f"monthly rent {old.monthly_rent} -> {new.monthly_rent}"
    if new.included_minutes < old.included_minutes:
        return f"included minutes {old.included_minutes} -> {new.included_minutes}"
    compared: set[tuple[str, Rate, Rate]] = set()
    for minute in range(_MINUTES_A_WEEK):
        at = _WEEK_START + timedelta(minutes=minute)
        for kind in ("local", "long_distance"):
            pair = (kind, _rate_at(old, kind, at), _rate_at(new, kind, at))
            if pair in compared:
                continue
            compared.add(pair)
            seconds = dearer_after(pair[1], pair[2])
            if seconds is not None:
                return (
                    f"{kind} {WEEKDAYS[at.weekday()]} {at:%H:%M}: {pair[1].describe()} -> "
                    f"{pair[2].describe()}, a {seconds} s call"
                )
    return None


def _rate_at(package: Package, kind: str, local: datetime) -> Rate:
    """The subscriber's rate for a call of `kind` answered at `local`, as pricing picks it."""
    for period in package.periods:
        if period.clock.is_open(local):
            rate = period.nationwide or getattr(period, kind)
            if rate is not None:
                return rate
            break
    rate = package.nationwide or getattr(package, kind)
    assert rate is not None
    return rate


def short_notice(tariffs: Tariffs, day: date, announced: date) -> str | None:
    """Why prices raised on `day` and announced on `announced` are refused, or None."""
    days = (day - announced).days
    notice = tariffs.price_rise_notice_days
    if days >= notice:
        return None
    return (
        f"a price rise takes effect at least {notice} days after it is announced; "
        f"this one {days} day(s) after (announced {announced}, effective {day})"
    )


def notice_problems(tariffs: Tariffs) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(field path, message) for each change of a package that raises its prices on short
    notice."""
    for name, package in tariffs.packages.items():
        for index, change in enumerate(package.changes):
            before = package.on(change.effective - timedelta(days=1))
            raised = rise(before, package.on(change.effective))
            if raised is None:
                continue
            why = short_notice(tariffs, change.effective, change.announced)
            if why is not None:
                yield ("packages", name, "changes", index, "effective"), f"{raised}: {why}"


def refused_price_rises(
    old: Tariffs, new: Tariffs, today: date
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(field path, message) for each package whose prices `new` raises against `old`
    without the notice, from `today` on; only packages some number of both files is
    charged by, on the same package in both. Each prepayment those numbers agreed (`new`'s)
    is compared on its tier in both files: a tier taken away or cut raises what they pay,
    as a dearer rate does."""
    for name, package in new.packages.items():
        previous = old.packages.get(name)
        numbers = sorted(
            number
            for number, account in new.accounts.items()
            if account.package == name
            and number in old.accounts
            and old.accounts[number].package == name
        )
        if previous is None or not numbers:
            continue
        days = {today} | {
            change.effective
            for change in (*package.changes, *previous.changes)
            if change.effective > today
        }
        prepayments = sorted({new.accounts[number].prepayment for number in numbers})
        for day in sorted(days):
            raised = _first_rise(previous.on(day), package.on(day), prepayments)
            if raised is None:
                continue
            change = package.change_on(day)
            if change is not None and change.effective >= today:
                announced = change.announced
                if change not in previous.changes:  # new or edited: told no earlier than now
                    announced = max(announced, today)
                why = short_notice(new, day, announced)
                field: tuple[str | int, ...] = (
                    "packages",
                    name,
                    "changes",
                    package.changes.index(change),
                    "effective",
                )
            else:
                why = short_notice(new, day, today)
                if why is not None:
                    why += "; give the new prices as a change with announced: and effective:"
                field = ("packages", name)
            if why is not None:
                yield (
                    field,
                    (
                        f"{', '.join(numbers)}: prices of {name} raised from {day} "
                        f"({raised}) refused: {why}"
                    ),
                )
                break


def _first_rise(old: Package, new: Package, prepayments: Sequence[Decimal]) -> str | None:
    """`rise` of the prices a number prepaying each of `prepayments` pays, the first found."""
    for prepayment in prepayments:
        raised = rise(old.for_prepayment(prepayment), new.for_prepayment(prepayment))
        if raised is not None:
            return f"{raised}, prepaying {prepayment}" if prepayment else raised
    return None
