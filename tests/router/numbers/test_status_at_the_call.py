"""A call sees its number's status at the call's instant: the periods that run out by
themselves (a notice of cancellation, a review, a suspension's 36 months, a freeze) count
from the instant they fall due, though no numbers tick has written them yet, and without a
store read per call."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dialplan.calendar import OfficialCalendar
from dialplan.plan import NumberStatus
from numbering import lifecycle
from numbering.lifecycle import NumberRecord, Status
from numbering.rules import NumberRules
from router.numbers.service import NOT_IN_SERVICE
from router.numbers.statuses import NumberStatuses, inventory_status

SHANGHAI = ZoneInfo("Asia/Shanghai")
RULES = NumberRules()
CALENDAR = OfficialCalendar()
NUMBER = "4006031475"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)  # a Monday
SECOND = timedelta(seconds=1)


class Records:
    """The store's side of a refresh: records as a store hands them back (in UTC)."""

    def __init__(self, *records: NumberRecord) -> None:
        self.records = {record.number: _as_stored(record) for record in records}
        self.reads = 0

    async def number_records(self, numbers: Sequence[str]) -> dict[str, NumberRecord]:
        self.reads += 1
        return {n: self.records[n] for n in numbers if n in self.records}


def _as_stored(record: NumberRecord) -> NumberRecord:
    def utc(moment: datetime | None) -> datetime | None:
        return None if moment is None else moment.astimezone(UTC)

    return dataclasses.replace(
        record,
        since=utc(record.since),
        until=utc(record.until),
        suspended_since=utc(record.suspended_since),
    )


def statuses_of(*records: NumberRecord, rules: NumberRules = RULES) -> NumberStatuses:
    statuses = NumberStatuses()
    asyncio.run(statuses.refresh(Records(*records), [r.number for r in records], rules))  # type: ignore[arg-type]
    return statuses


def in_service() -> NumberRecord:
    record = lifecycle.reserve(NumberRecord(NUMBER), "sp", T0, RULES).after
    record = lifecycle.apply(record, "acme", "sp", T0, RULES).after
    record = lifecycle.submit(record, T0, RULES, CALENDAR).after
    return lifecycle.approve(record, "ops", T0 + timedelta(days=1), RULES, CALENDAR).after


def on_calls(statuses: NumberStatuses, at: datetime) -> NumberStatus | str | None:
    status = statuses.of(NUMBER, at)
    return None if status is None else status.on_calls


def test_a_cancelled_number_connects_no_calls_from_the_end_of_its_notice():
    notice = lifecycle.cancel(in_service(), "ops", T0 + timedelta(days=2), RULES).after
    assert notice.until is not None
    statuses = statuses_of(notice)
    assert on_calls(statuses, notice.until - SECOND) is NumberStatus.ACTIVE
    assert on_calls(statuses, notice.until) is NumberStatus.CANCELLED
    cancelled = statuses.of(NUMBER, notice.until + SECOND)
    assert cancelled is not None and cancelled.status is Status.CANCELLED
    assert on_calls(statuses, notice.until - SECOND) is NumberStatus.ACTIVE  # a call in between
    back = notice.until + RULES.cancelled_freeze
    assert on_calls(statuses, back) == NOT_IN_SERVICE  # the 90 days over: in the pool


def test_a_review_nobody_rejected_connects_calls_from_the_end_of_its_period():
    record = lifecycle.reserve(NumberRecord(NUMBER), "sp", T0, RULES).after
    record = lifecycle.apply(record, "acme", "sp", T0, RULES).after
    review = lifecycle.submit(record, T0, RULES, CALENDAR).after
    assert review.until == T0 + timedelta(days=3)  # Mon + 3 working days = Thu
    statuses = statuses_of(review)
    assert on_calls(statuses, review.until - SECOND) == NOT_IN_SERVICE
    assert on_calls(statuses, review.until) is NumberStatus.ACTIVE


def test_a_suspension_that_used_its_36_months_is_cancelled_at_once():
    suspended = lifecycle.suspend(in_service(), "ops", T0 + timedelta(days=2), RULES).after
    ends = datetime(2029, 3, 4, 10, 0, tzinfo=SHANGHAI)  # 36 calendar months on
    statuses = statuses_of(suspended)
    assert on_calls(statuses, ends - SECOND) is NumberStatus.SUSPENDED
    assert on_calls(statuses, ends) is NumberStatus.CANCELLED


def test_a_suspended_number_given_notice_stays_refused_then_is_cancelled():
    suspended = lifecycle.suspend(in_service(), "ops", T0 + timedelta(days=2), RULES).after
    notice = lifecycle.cancel(suspended, "ops", T0 + timedelta(days=3), RULES).after
    assert notice.until is not None
    statuses = statuses_of(notice)
    assert on_calls(statuses, notice.until - SECOND) is NumberStatus.SUSPENDED
    assert on_calls(statuses, notice.until) is NumberStatus.CANCELLED


def test_calls_read_no_store_and_the_catch_up_runs_once_per_transition(monkeypatch):
    notice = lifecycle.cancel(in_service(), "ops", T0 + timedelta(days=2), RULES).after
    assert notice.until is not None
    store = Records(notice)
    statuses = NumberStatuses()
    asyncio.run(statuses.refresh(store, [NUMBER], RULES))  # type: ignore[arg-type]
    caught: list[datetime] = []
    real = lifecycle.catch_up

    def counted(record: NumberRecord, now: datetime, rules: NumberRules):
        caught.append(now)
        return real(record, now, rules)

    monkeypatch.setattr("router.numbers.statuses.catch_up", counted)
    for minute in range(100):
        statuses.of(NUMBER, notice.until + timedelta(minutes=minute))
    assert store.reads == 1 and len(caught) == 1
    asyncio.run(statuses.refresh(store, [NUMBER], RULES))  # type: ignore[arg-type]
    statuses.of(NUMBER, notice.until + timedelta(hours=2))
    assert len(caught) == 1  # the record did not change: what was caught up is kept


def test_a_number_the_inventory_does_not_hold_has_no_status_here():
    assert statuses_of(in_service()).of("4008207788", T0) is None


def test_simulate_reads_the_status_at_its_instant_too():
    notice = lifecycle.cancel(in_service(), "ops", T0 + timedelta(days=2), RULES).after
    assert notice.until is not None
    stored = _as_stored(notice)
    assert inventory_status(stored, notice.until - SECOND, RULES).on_calls is NumberStatus.ACTIVE
    assert inventory_status(stored, notice.until, RULES).on_calls is NumberStatus.CANCELLED
