"""A 400 number's life, from the pool to cancellation and back, as a state machine.

    available -> reserved -> applied (locked: signed, prepaid) -> under_review -> active
    reserved -> (released or expired) frozen 30 minutes -> available
    applied | under_review -> (withdrawn) back to the reservation it came from while that
        runs, else frozen 30 minutes; the application's fees given back
    active <-> suspended (number kept; a keeping fee each calendar month; 36 months over
        its life)
    active | suspended | arrears -> cancellation_requested -> cancelled (frozen 90 days)
        -> available
    active -> arrears (no balance left) -> active (a top-up clears it)

Each action takes a record and the instant and returns the `Change`s it makes, or raises
`Refused` with one line saying why and, where it applies, when it becomes possible.
Time-driven transitions (`catch_up`) take effect at the instant they fell due, whenever they
are applied, so applying them late or twice gives the same history.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal, NamedTuple

from dialplan.calendar import OfficialCalendar
from numbering.grading import ORDINARY
from numbering.rules import NumberRules
from numbering.working_days import add_working_days

ZERO = Decimal("0.00")
SYSTEM = "system"
"""The actor of time-driven transitions."""


class Status(StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    FROZEN = "frozen"
    APPLIED = "applied"
    UNDER_REVIEW = "under_review"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ARREARS = "arrears"
    CANCELLATION_REQUESTED = "cancellation_requested"
    CANCELLED = "cancelled"

    @property
    def in_words(self) -> str:
        """The status as people read it ('under review', not its stored key): every message,
        page and audit entry names statuses so."""
        return self.value.replace("_", " ")


@dataclass(frozen=True, slots=True)
class NumberRecord:
    """One number of the inventory; `until` ends the current status's period, if it has one."""

    number: str
    grade: str = ORDINARY
    selection_fee: Decimal = ZERO
    status: Status = Status.AVAILABLE
    since: datetime | None = None
    until: datetime | None = None
    provider: str | None = None
    """The reserving service provider, then the provider of the subscriber holding it."""
    subscriber: str | None = None
    last_reserver: str | None = None
    last_reservation_end: datetime | None = None
    reservation_since: datetime | None = None
    reservation_until: datetime | None = None
    """The period the current or last reservation was granted, kept after it ends: the
    same provider's wait is as long as it, and a withdrawn application returns to it."""
    suspended_since: datetime | None = None
    suspended_before: timedelta = timedelta(0)
    """Time spent suspended in earlier suspensions of this life of the number."""
    keeping_months_booked: int = 0
    """Keeping fees booked in the current suspension."""
    version: int = 0

    @property
    def premium(self) -> bool:
        return self.grade != ORDINARY

    def due_at(self, rules: NumberRules) -> datetime | None:
        """When the next time-driven transition falls due, if any."""
        events = _timed_events(self, rules)
        return min(event.at for event in events) if events else None


@dataclass(frozen=True, slots=True)
class Fee:
    """A fee a transition books; `payer` names whose ledger takes it. An adjustment gives
    back a fee booked before: its amount is negative (a credit)."""

    payer: Literal["subscriber", "provider"]
    kind: Literal["opening_fee", "selection_fee", "keeping_fee", "adjustment"]
    amount: Decimal
    ref: str
    note: str


@dataclass(frozen=True, slots=True)
class Change:
    """One transition: the record before and after, who made it, why, and its fees."""

    before: NumberRecord
    after: NumberRecord
    at: datetime
    actor: str
    reason: str
    fees: tuple[Fee, ...] = ()


_Maker = Callable[["NumberRecord", datetime], "Change"]


class _Event(NamedTuple):
    """A time-driven transition falling due at `at`. A period that ends at `at` ends there
    whatever else happens at that instant; one that begins at `at` (a month of suspension,
    with its fee) is entered only if the record is still as it was once `at` has passed: a
    resumption at that very instant never enters it."""

    at: datetime
    make: _Maker
    begins: bool = False

    def due_by(self, now: datetime) -> bool:
        return self.at < now or (self.at == now and not self.begins)


class Refused(Exception):
    """A transition the rules do not allow now; the message is one line for the operator."""

    def __init__(self, message: str, possible_at: datetime | None = None) -> None:
        super().__init__(message)
        self.possible_at = possible_at


def when(moment: datetime, zone_of: datetime) -> str:
    """An instant as operators read it, in the zone of `zone_of` (the caller's 'now')."""
    return f"{moment.astimezone(zone_of.tzinfo):%Y-%m-%d %H:%M}"


def _change(
    record: NumberRecord, at: datetime, actor: str, reason: str, fees: tuple[Fee, ...] = (), **to
) -> Change:
    after = dataclasses.replace(record, version=record.version + 1, **to)
    return Change(record, after, at, actor, reason, fees)


def _not_now(record: NumberRecord, action: str, now: datetime) -> Refused:
    """The refusal of an action the number's status does not allow at all."""
    status = record.status.in_words
    holder = f" (held by {record.provider})" if record.provider else ""
    until = f" until {when(record.until, now)}" if record.until else ""
    return Refused(
        f"{record.number} is {status}{holder}{until}: it cannot be {action}", record.until
    )


# --- reservation -----------------------------------------------------------------------


def reserve(
    record: NumberRecord,
    provider: str,
    now: datetime,
    rules: NumberRules,
    *,
    intent_form: bool = False,
) -> Change:
    """Hold a number for a provider's customer: 3 days; 30 for 4008 numbers, and for a
    premium ("special") number whose customer signed an intent form, which the history
    notes."""
    number = record.number
    if record.status is Status.RESERVED:
        holder = "you" if record.provider == provider else record.provider
        assert record.until is not None
        raise Refused(
            f"{number} is reserved by {holder} until {when(record.until, now)}", record.until
        )
    if record.status not in (Status.FROZEN, Status.AVAILABLE):
        raise _not_now(record, "reserved", now)
    hold = rules.reservation_hold(number, record.grade, intent_form)
    # Asked first: the provider whose reservation ended waits out the period that follows,
    # which outlasts the freeze, and is told that date rather than the freeze's end. The
    # period that follows is as long as the one it held (30 days after a special number's
    # long hold, whether or not it brings an intent form this time).
    if record.last_reserver == provider and record.last_reservation_end is not None:
        again = record.last_reservation_end + _last_hold(record, hold)
        if now < again:
            raise Refused(
                f"{number}: {provider} held it until {when(record.last_reservation_end, now)}; "
                f"the same provider may not reserve it in the period that follows, "
                f"possible from {when(again, now)}",
                again,
            )
    if record.status is Status.FROZEN:
        assert record.until is not None and record.since is not None
        raise Refused(
            f"{number} is frozen until {when(record.until, now)} "
            f"(released {_ago(now - record.since)})",
            record.until,
        )
    longer = rules.reservation_hold(number, record.grade, intent_form=True)
    if intent_form:
        terms = f"reserved for {_duration(hold)} with an intent form (free)"
    elif record.premium and hold < longer:
        terms = f"reserved for {_duration(hold)}, no intent form (free; {longer.days} with one)"
    else:
        terms = f"reserved for {_duration(hold)} (free)"
    return _change(
        record,
        now,
        provider,
        terms,
        status=Status.RESERVED,
        since=now,
        until=now + hold,
        provider=provider,
        reservation_since=now,
        reservation_until=now + hold,
    )


def _last_hold(record: NumberRecord, asked: timedelta) -> timedelta:
    """The length of the period the last reservation was granted; `asked`, the hold asked
    for now, for a record kept before periods were."""
    if record.reservation_since is None or record.reservation_until is None:
        return asked
    return record.reservation_until - record.reservation_since


def release(record: NumberRecord, actor: str, now: datetime, rules: NumberRules) -> Change:
    """End a reservation early: the number is frozen for 30 minutes, then back in the pool."""
    if record.status is not Status.RESERVED:
        raise _not_now(record, "released (only a reservation can be)", now)
    return _end_reservation(record, now, actor, "reservation released", rules)


def _end_reservation(
    record: NumberRecord, at: datetime, actor: str, reason: str, rules: NumberRules
) -> Change:
    freeze = rules.release_freeze
    return _change(
        record,
        at,
        actor,
        f"{reason}; {_frozen(freeze)}",
        status=Status.FROZEN,
        since=at,
        until=at + freeze,
        provider=None,
        last_reserver=record.provider,
        last_reservation_end=at,
    )


# --- application and review ------------------------------------------------------------


def apply(
    record: NumberRecord,
    subscriber: str,
    provider: str,
    now: datetime,
    rules: NumberRules,
) -> Change:
    """The subscriber signs and prepays: the reserved number is locked to it.

    `provider` is the subscriber's service provider, who must hold the reservation. The
    opening fee and the selection fee (premium numbers) go to the subscriber's account.
    """
    if record.status is not Status.RESERVED and record.subscriber is not None:
        status = record.status.in_words
        held = "" if record.status is Status.APPLIED else f"{status}, held"
        raise Refused(
            f"{record.number} is {held or 'applied for'} by {record.subscriber} (provider "
            f"{record.provider}): it cannot be applied for again"
        )
    if record.status is not Status.RESERVED:
        raise _not_now(record, "applied for (reserve it first)", now)
    if record.provider != provider:
        raise Refused(
            f"{record.number} is reserved by {record.provider}; subscriber {subscriber} "
            f"belongs to {provider}"
        )
    # The record's version tells apart applications made within one second (one withdrawn).
    stamp = f"{now:%Y%m%dT%H%M%S}v{record.version}"
    fees = [Fee("subscriber", "opening_fee", rules.fees.opening, f"opening@{stamp}", "opening fee")]
    if record.selection_fee > ZERO:
        fees.append(
            Fee(
                "subscriber",
                "selection_fee",
                record.selection_fee,
                f"selection@{stamp}",
                f"selection fee, {record.grade} number",
            )
        )
    return _change(
        record,
        now,
        provider,
        f"applied for by {subscriber}: signed and prepaid, number locked",
        tuple(fee for fee in fees if fee.amount > ZERO),
        status=Status.APPLIED,
        since=now,
        until=None,
        subscriber=subscriber,
        last_reserver=record.provider,
        last_reservation_end=now,
    )


def submit(
    record: NumberRecord, now: datetime, rules: NumberRules, calendar: OfficialCalendar
) -> Change:
    """Real-name material handed in: review takes 1-3 official working days."""
    if record.status is not Status.APPLIED:
        raise _not_now(record, "submitted for review", now)
    timing = rules.timing
    deadline = add_working_days(now, timing.review_max_working_days, calendar)
    return _change(
        record,
        now,
        record.provider or SYSTEM,
        f"real-name material submitted; review within {timing.review_max_working_days} "
        f"working days",
        status=Status.UNDER_REVIEW,
        since=now,
        until=deadline,
    )


def approve(
    record: NumberRecord,
    actor: str,
    now: datetime,
    rules: NumberRules,
    calendar: OfficialCalendar,
) -> Change:
    """The review passes: the number goes into service."""
    if record.status is not Status.UNDER_REVIEW:
        raise _not_now(record, "approved", now)
    assert record.since is not None
    days = rules.timing.review_min_working_days
    earliest = add_working_days(record.since, days, calendar)
    if now < earliest:
        raise Refused(
            f"{record.number} is under review since {when(record.since, now)}: review takes "
            f"at least {days} official working day(s), possible from {when(earliest, now)}",
            earliest,
        )
    return _change(record, now, actor, "review passed", status=Status.ACTIVE, since=now, until=None)


REVIEW_REJECTED = "review rejected"
"""How a rejection's reason starts in the history: the applicant may give new material."""


def reject(record: NumberRecord, actor: str, reason: str, now: datetime) -> Change:
    """The review fails: the number stays locked to the applicant, who may submit again,
    with new material if need be."""
    if record.status is not Status.UNDER_REVIEW:
        raise _not_now(record, "rejected", now)
    return _change(
        record,
        now,
        actor,
        f"{REVIEW_REJECTED}: {reason}",
        status=Status.APPLIED,
        since=now,
        until=None,
    )


def withdraw(
    record: NumberRecord, actor: str, now: datetime, rules: NumberRules, booked: Sequence[Fee]
) -> Change:
    """The applicant gives up before the review has decided: the fees its application
    booked (`booked`) are given back, and the number returns to the reservation it came
    from while that still runs, for its provider to offer again; after that it is released
    as an ended reservation is, frozen 30 minutes, then the pool."""
    if record.status not in (Status.APPLIED, Status.UNDER_REVIEW):
        raise _not_now(record, "withdrawn (only an application not yet decided can be)", now)
    refunds = tuple(
        Fee(
            fee.payer,
            "adjustment",
            ZERO - fee.amount,
            given_back_ref(fee.ref),
            f"{fee.note} given back",
        )
        for fee in booked
    )
    given_back = "; its fees given back" if refunds else ""
    reason = f"application by {record.subscriber} withdrawn{given_back}"
    held = record.reservation_until
    if held is not None and now < held:
        return _change(
            record,
            now,
            actor,
            f"{reason}; back in {record.provider}'s reservation until {when(held, now)}",
            refunds,
            status=Status.RESERVED,
            since=now,
            until=held,
            subscriber=None,
        )
    ended = _end_reservation(record, now, actor, f"{reason}; its reservation had ended", rules)
    return dataclasses.replace(
        ended, after=dataclasses.replace(ended.after, subscriber=None), fees=refunds
    )


def given_back_ref(ref: str) -> str:
    """The reference of the adjustment that gives back the fee booked as `ref`."""
    return f"withdrawn:{ref}"


# --- in service ------------------------------------------------------------------------


def suspend(record: NumberRecord, actor: str, now: datetime, rules: NumberRules) -> Change:
    """Suspension with the number kept: no calls, a keeping fee each calendar month of it."""
    if record.status is not Status.ACTIVE:
        raise _not_now(record, "suspended", now)
    ends = rules.suspension_ends(now, record.suspended_before)
    if ends <= now:
        raise Refused(
            f"{record.number} has used its {rules.timing.suspension_limit_months} months "
            f"of suspension: it can only be cancelled"
        )
    ends_local = ends.astimezone(rules.zone)  # a history note reads the same from any client
    return _change(
        record,
        now,
        actor,
        f"suspended with the number kept (cancelled {ends_local:%Y-%m-%d %H:%M} unless "
        "resumed first)",
        (_keeping_fee(record, now, 1, rules),),
        status=Status.SUSPENDED,
        since=now,
        until=None,
        suspended_since=now,
        keeping_months_booked=1,
    )


def resume(record: NumberRecord, actor: str, now: datetime) -> Change:
    if record.status is not Status.SUSPENDED:
        raise _not_now(record, "resumed", now)
    assert record.suspended_since is not None
    return _change(
        record,
        now,
        actor,
        "resumed",
        status=Status.ACTIVE,
        since=now,
        until=None,
        suspended_since=None,
        suspended_before=record.suspended_before + (now - record.suspended_since),
        keeping_months_booked=0,
    )


def cancel(record: NumberRecord, actor: str, now: datetime, rules: NumberRules) -> Change:
    """Cancellation takes effect after 30 days' notice; a suspension runs on meanwhile."""
    if record.status not in (Status.ACTIVE, Status.SUSPENDED, Status.ARREARS):
        raise _not_now(record, "cancelled", now)
    effective = now + rules.cancellation_notice
    return _change(
        record,
        now,
        actor,
        f"cancellation requested, effective {when(effective, now)}",
        status=Status.CANCELLATION_REQUESTED,
        since=now,
        until=effective,
    )


def fall_into_arrears(record: NumberRecord, now: datetime, balance: Decimal) -> Change:
    if record.status is not Status.ACTIVE:
        raise _not_now(record, "put in arrears", now)
    return _change(
        record, now, SYSTEM, f"balance {balance}: in arrears", status=Status.ARREARS, since=now
    )


def clear_arrears(record: NumberRecord, now: datetime, balance: Decimal) -> Change:
    if record.status is not Status.ARREARS:
        raise _not_now(record, "taken out of arrears", now)
    return _change(
        record, now, SYSTEM, f"balance {balance}: arrears cleared", status=Status.ACTIVE, since=now
    )


# --- time -----------------------------------------------------------------------------


def catch_up(record: NumberRecord, now: datetime, rules: NumberRules) -> list[Change]:
    """Every time-driven transition due by `now`, each at the instant it fell due."""
    changes: list[Change] = []
    while True:
        events = [event for event in _timed_events(record, rules) if event.due_by(now)]
        if not events:
            return changes
        first = min(events, key=lambda event: event.at)
        change = first.make(record, first.at)
        changes.append(change)
        record = change.after


def as_of(record: NumberRecord, now: datetime, rules: NumberRules) -> NumberRecord:
    """The record as it is at `now`: what calls and the next action find, whether or not
    the transitions due by then were written."""
    changes = catch_up(record, now, rules)
    return changes[-1].after if changes else record


def _timed_events(record: NumberRecord, rules: NumberRules) -> list[_Event]:
    events: list[_Event] = []
    until, status = record.until, record.status
    if until is not None:
        if status is Status.RESERVED:
            events.append(
                _Event(until, lambda r, at: _end_reservation(r, at, SYSTEM, "expired", rules))
            )
        elif status is Status.FROZEN:
            events.append(_Event(until, lambda r, at: _back_to_pool(r, at, "freeze ended")))
        elif status is Status.UNDER_REVIEW:
            events.append(_Event(until, _review_period_over))
        elif status is Status.CANCELLATION_REQUESTED:
            events.append(
                _Event(until, lambda r, at: _cancelled(r, at, "notice period over", rules))
            )
        elif status is Status.CANCELLED:
            events.append(_Event(until, lambda r, at: _back_to_pool(r, at, _freeze_ended(r))))
    if record.suspended_since is not None and status in _KEPT:
        since = record.suspended_since
        used_up = rules.suspension_ends(since, record.suspended_before)
        next_fee = rules.keeping_month_starts(since, record.keeping_months_booked + 1)
        limit = rules.timing.suspension_limit_months
        if used_up <= next_fee:
            reason = f"{limit} months of suspension used"
            events.append(_Event(used_up, lambda r, at: _cancelled(r, at, reason, rules)))
        else:
            month = _Event(next_fee, lambda r, at: _next_keeping_month(r, at, rules), begins=True)
            events.append(month)
    return events


_KEPT = (Status.SUSPENDED, Status.CANCELLATION_REQUESTED)
"""Statuses in which a suspension runs on (a suspended number may be given notice)."""


def _review_period_over(record: NumberRecord, at: datetime) -> Change:
    return _change(
        record,
        at,
        SYSTEM,
        "review period ended without rejection",
        status=Status.ACTIVE,
        since=at,
        until=None,
    )


def _next_keeping_month(record: NumberRecord, at: datetime, rules: NumberRules) -> Change:
    month = record.keeping_months_booked + 1
    return _change(
        record,
        at,
        SYSTEM,
        f"month {month} of suspension",
        (_keeping_fee(record, at, month, rules),),
        keeping_months_booked=month,
    )


def _cancelled(record: NumberRecord, at: datetime, reason: str, rules: NumberRules) -> Change:
    freeze = rules.cancelled_freeze
    suspended = record.suspended_before
    if record.suspended_since is not None:
        suspended += at - record.suspended_since
    return _change(
        record,
        at,
        SYSTEM,
        f"cancelled ({reason}); {_frozen(freeze)}",
        status=Status.CANCELLED,
        since=at,
        until=at + freeze,
        suspended_since=None,
        suspended_before=suspended,
        keeping_months_booked=0,
    )


def _back_to_pool(record: NumberRecord, at: datetime, reason: str) -> Change:
    """Available again, holding nothing of its past holders: a new life begins."""
    return _change(
        record,
        at,
        SYSTEM,
        f"{reason}; available",
        status=Status.AVAILABLE,
        since=at,
        until=None,
        provider=None,
        subscriber=None,
        suspended_before=timedelta(0),
    )


def _keeping_fee(record: NumberRecord, begins: datetime, month: int, rules: NumberRules) -> Fee:
    """The fee of month `month` of a suspension, which begins at `begins`. Its ref names the
    holder and the calendar month it begins in (the billing zone's, however the record came):
    a holding pays one keeping fee a calendar month, however often it is suspended in it, as
    the ledger books a ref once (router.numbers.inventory leaves out a fee booked already)."""
    local = begins.astimezone(rules.zone)
    return Fee(
        "subscriber",
        "keeping_fee",
        rules.fees.monthly_keeping,
        f"keeping@{record.subscriber}@{local:%Y-%m}",
        f"number kept while suspended, month {month} ({local:%Y-%m})",
    )


def _duration(span: timedelta, *, unit_only: bool = False) -> str:
    """`30 days`, `1 day`, `2 hours`, `30 minutes`; `30-day` with `unit_only`, as in
    "a 30-day freeze"."""
    minutes = int(span.total_seconds() // 60)
    if minutes and minutes % (24 * 60) == 0:
        count, unit = minutes // (24 * 60), "day"
    elif minutes and minutes % 60 == 0:
        count, unit = minutes // 60, "hour"
    else:
        count, unit = minutes, "minute"
    if unit_only:
        return f"{count}-{unit}"
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _frozen(freeze: timedelta) -> str:
    """The history's words for a freeze numbers.yaml sets: its length, or none at all."""
    return f"frozen {_duration(freeze)}" if freeze > timedelta(0) else "not frozen"


def _freeze_ended(record: NumberRecord) -> str:
    """A cancelled number's freeze as it was set when it began (numbers.yaml may say
    otherwise since), read off the record."""
    if record.since is None or record.until is None:
        return "freeze ended"
    freeze = record.until - record.since
    if freeze <= timedelta(0):
        return "back in the pool with no freeze"
    return f"{_duration(freeze, unit_only=True)} freeze ended"


def _ago(span: timedelta) -> str:
    minutes = max(0, int(span.total_seconds() // 60))
    if minutes < 120:
        return f"{minutes} minutes ago"
    return f"{minutes // 60} hours ago"
