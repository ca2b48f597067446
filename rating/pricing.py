"""The price of a call: the caller's share, the subscriber's (callee's) share and the total.

Rules, in the order they apply:

- Unanswered calls (no answer instant, or no talk time) cost nothing to either side; ring
  time is never charged.
- Local or long distance: a call is local when the area code of the destination that
  answered equals the subscriber's home area code. When either is unknown the call is
  rated long distance (the dearer leg: an unknown answering area must not make calls
  cheaper). Nationwide packages price both alike.
- Prices in force: a package's changes (rating.tariff.PriceChange) each take effect at
  00:00 of their effective day in the tariff's time zone; a call is priced by the package as
  in force on the day it was answered, and its tariff id names the change
  ('nationwide-300@2026-11/2027-01-01').
- Time: the whole call is rated at the rates in force at the instant it was answered, read
  in the tariff's time zone (Asia/Shanghai by default): a call answered at 21:59 and running
  into an off-peak period at 22:00 is rated entirely at the standard rate, and a call that
  crosses midnight or a month end belongs to the day and month it was answered in
  (rating.billing_time). The first of the package's periods open at that instant wins,
  otherwise the standard rates apply.
- Included minutes: the subscriber's charge first consumes what is left of the month's
  included time, in whole increments of the rate in force (90 s left on a per-minute rate
  covers 60 s); only the rest of the call is charged. Included time never raises a charge.
- Caller's local charge: by caller kind, from caller_tariffs (fixed, mobile; international,
  service and unknown callers pay the `other` rate), over the whole answered time.
- Sharing and rounding: every rate amount is in fen, so each charge is exact (a whole
  number of increments times an amount in fen). total = caller's local charge + package
  charge. With `caller_pays: local_charge` the caller's share is their local charge and the
  subscriber's the package charge. With `caller_percent: N` the caller's share is
  total * N / 100 rounded half-up to the fen, and the subscriber's share is total minus
  the caller's share, so the shares always add up to the total, to the fen.

Each package is compiled once per loaded tariff file (PriceBook) so pricing a call is a
few comparisons and Decimal additions.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rating.call import CALLER_KINDS, Price, RatedCall
from rating.money import ZERO, to_fen
from rating.periods import PeriodClock
from rating.rates import Rate

if TYPE_CHECKING:
    from rating.tariff import Package, Period, PriceChange, Tariffs


class UnknownAccount(LookupError):
    """The tariffs have no account for a 400 number."""


@dataclass(frozen=True, slots=True)
class RateLeg:
    """A rate and how a CDR names it: 'local 0.12/60s', 'off-peak long_distance 0.06/6s'."""

    rate: Rate
    description: str


@dataclass(frozen=True, slots=True)
class RatePeriod:
    clock: PeriodClock
    local: RateLeg
    long_distance: RateLeg


@dataclass(frozen=True, slots=True)
class PackagePricer:
    """One package compiled for the pricing loop."""

    tariff_id: str
    local: RateLeg
    long_distance: RateLeg
    periods: tuple[RatePeriod, ...]
    zone: ZoneInfo
    caller_rates: dict[str, Rate]  # by caller kind
    caller_fraction: Decimal | None  # caller_percent / 100, exact
    unanswered: Price
    included_minutes: int
    """The minutes a month includes at these prices (the account's month counts them)."""

    @classmethod
    def of(
        cls, name: str, package: Package, tariffs: Tariffs, change: PriceChange | None = None
    ) -> PackagePricer:
        """`package` as in force from `change` (its own prices when None)."""
        if package.nationwide is not None:
            local = long_distance = RateLeg(
                package.nationwide, f"nationwide {package.nationwide.describe()}"
            )
        else:
            assert package.local is not None and package.long_distance is not None
            local = RateLeg(package.local, f"local {package.local.describe()}")
            long_distance = RateLeg(
                package.long_distance, f"long_distance {package.long_distance.describe()}"
            )
        tariff_id = tariffs.tariff_id(name)
        if change is not None:
            tariff_id += f"/{change.effective}"
        percent = package.sharing.caller_percent
        callers = tariffs.caller_tariffs
        return cls(
            tariff_id=tariff_id,
            local=local,
            long_distance=long_distance,
            periods=tuple(_compile_period(p, local, long_distance) for p in package.periods),
            zone=tariffs.zone,
            caller_rates={kind: callers.for_kind(kind) for kind in CALLER_KINDS},
            caller_fraction=(None if percent is None else Decimal(percent) / 100),
            unanswered=Price(ZERO, ZERO, ZERO, tariff_id, "unanswered", 0, 0),
            included_minutes=package.included_minutes,
        )

    def leg_for(self, call: RatedCall) -> RateLeg:
        """The subscriber's rate for `call`: local or long distance, at its answer instant."""
        home = call.home_area_code
        is_local = home is not None and call.answering_area_code == home
        if self.periods and call.answered_at is not None:
            answered = call.answered_at.astimezone(self.zone)
            for period in self.periods:
                if period.clock.is_open(answered):
                    return period.local if is_local else period.long_distance
        return self.local if is_local else self.long_distance

    def price(self, call: RatedCall) -> Price:
        talk = call.talk_seconds
        if call.answered_at is None or talk <= 0:
            return self.unanswered
        leg = self.leg_for(call)
        rate = leg.rate
        billed = rate.billed_seconds(talk)
        step = rate.per_seconds
        included = call.included_seconds_left // step * step  # whole increments only
        used = min(billed, included)
        package_charge = rate.charge_for(talk - included)
        caller_charge = self.caller_rates[call.caller_kind].charge_for(talk)
        total = caller_charge + package_charge
        if self.caller_fraction is None:
            return Price(
                caller_charge, package_charge, total, self.tariff_id, leg.description, billed, used
            )
        caller_share = to_fen(total * self.caller_fraction)
        return Price(
            caller_share,
            total - caller_share,
            total,
            self.tariff_id,
            leg.description,
            billed,
            used,
        )


def _compile_period(period: Period, local: RateLeg, long_distance: RateLeg) -> RatePeriod:
    """A period's legs; a kind of call the period does not price keeps the standard leg."""
    if period.nationwide is not None:
        nationwide = period.nationwide
        both = RateLeg(nationwide, f"{period.name} nationwide {nationwide.describe()}")
        return RatePeriod(period.clock, both, both)
    if period.local is not None:
        local = RateLeg(period.local, f"{period.name} local {period.local.describe()}")
    if period.long_distance is not None:
        long_distance = RateLeg(
            period.long_distance, f"{period.name} long_distance {period.long_distance.describe()}"
        )
    return RatePeriod(period.clock, local, long_distance)


DAY_SECONDS = 86400
_US = 1_000_000
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class PriceTimeline:
    """A number's compiled prices: the package's own, then one per change from its day."""

    zone: ZoneInfo
    first: PackagePricer
    changes: tuple[tuple[date, PackagePricer], ...]  # by effective day, in order
    edges: tuple[int, ...] = ()
    """The seconds after midnight at which a period of any of these prices opens or closes:
    the only times of day at which the period in force can change."""
    turns: tuple[datetime, ...] = ()
    """The first instant of each change's effective day."""

    @classmethod
    def of(
        cls,
        zone: ZoneInfo,
        first: PackagePricer,
        changes: tuple[tuple[date, PackagePricer], ...],
    ) -> PriceTimeline:
        pricers = (first, *(pricer for _, pricer in changes))
        edges = {
            edge % DAY_SECONDS
            for pricer in pricers
            for period in pricer.periods
            for window in period.clock.windows
            for edge in (window.start, window.end)
        }
        turns = tuple(datetime(day.year, day.month, day.day, tzinfo=zone) for day, _ in changes)
        return cls(zone, first, changes, tuple(sorted(edges)), turns)

    def changes_within(self, start: datetime, end: datetime) -> list[datetime]:
        """The instants in (start, end], in order, at which the prices in force may change:
        a change's effective day begins, a period opens or closes. Between two of them (and from
        `start` to the first) every answer instant is priced alike, so whatever is known of
        a price over a span is known from its start and these. Empty, and cheap, for
        prices without periods or changes."""
        found = [turn for turn in self.turns if start < turn <= end] if self.turns else []
        if not self.edges or end <= start:
            return found
        # In microseconds of the tariff zone's wall clock: an edge is a time of day there.
        local = start.astimezone(self.zone)
        now_us = (local.hour * 3600 + local.minute * 60 + local.second) * _US + local.microsecond
        span_us = (end - start) // _MICROSECOND
        for edge in self.edges:
            ahead_us = (edge * _US - now_us) % (DAY_SECONDS * _US) or DAY_SECONDS * _US
            while ahead_us <= span_us:  # rare: an edge within the span
                found.append(local + timedelta(microseconds=ahead_us))
                ahead_us += DAY_SECONDS * _US
        found.sort()
        return found

    def at(self, instant: datetime | None) -> PackagePricer:
        """The prices in force at `instant` (its day in the billing time zone)."""
        if not self.changes or instant is None:
            return self.first
        day = instant.astimezone(self.zone).date()
        pricer = self.first
        for effective, changed in self.changes:
            if effective > day:
                break
            pricer = changed
        return pricer


def _timeline(name: str, package: Package, tariffs: Tariffs, prepayment: Decimal) -> PriceTimeline:
    """The package's prices over time at the tier `prepayment` reaches."""
    tier = package.tier_of(prepayment)
    if tier is not None:
        name = f"{name}+prepaid{tier.prepayment}"
    changes = tuple(
        (
            change.effective,
            PackagePricer.of(
                name, package.on(change.effective).for_prepayment(prepayment), tariffs, change
            ),
        )
        for change in package.changes
    )
    first = PackagePricer.of(name, package.for_prepayment(prepayment), tariffs)
    return PriceTimeline.of(tariffs.zone, first, changes)


class PriceBook:
    """Every account's compiled prices, built once per loaded tariff file."""

    def __init__(self, tariffs: Tariffs) -> None:
        timelines: dict[tuple[str, Decimal | None], PriceTimeline] = {}
        self._by_number = {}
        for number, account in tariffs.accounts.items():
            package = tariffs.packages[account.package]
            tier = package.tier_of(account.prepayment)
            key = (account.package, None if tier is None else tier.prepayment)
            if key not in timelines:
                timelines[key] = _timeline(account.package, package, tariffs, account.prepayment)
            self._by_number[number] = timelines[key]

    def pricer(self, number: str, answered_at: datetime | None = None) -> PackagePricer:
        """The number's prices in force at `answered_at` (the package's own when None)."""
        try:
            timeline = self._by_number[number]
        except KeyError:
            raise UnknownAccount(f"no account for 400 number {number} in the tariffs") from None
        return timeline.at(answered_at)

    def changes_within(self, number: str, start: datetime, end: datetime) -> list[datetime]:
        """The instants in (start, end] at which the number's prices may change
        (PriceTimeline.changes_within)."""
        try:
            timeline = self._by_number[number]
        except KeyError:
            raise UnknownAccount(f"no account for 400 number {number} in the tariffs") from None
        return timeline.changes_within(start, end)


_BOOKS: dict[int, PriceBook] = {}
"""Each loaded Tariffs' PriceBook, by the object's id while it lives: the tariff model
does not hold its compiled form, so it needs nothing of this module."""


def price_book(tariffs: Tariffs) -> PriceBook:
    """The packages compiled for pricing, once per loaded tariff file. Derive changed
    tariffs with model_validate: a new object gets its own book."""
    key = id(tariffs)
    book = _BOOKS.get(key)
    if book is None:
        book = _BOOKS[key] = PriceBook(tariffs)
        weakref.finalize(tariffs, _BOOKS.pop, key, None)
    return book


def price(call: RatedCall, tariff: Tariffs, account_number: str | None = None) -> Price:
    """Price one call on the account of `account_number` (default: the number called)."""
    number = account_number or call.number
    return price_book(tariff).pricer(number, call.answered_at).price(call)
