"""The numbers' own rules: segments, premium grades, and the lifecycle with all its periods."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialplan.calendar import OfficialCalendar
from numbering import lifecycle
from numbering.grading import ORDINARY, pattern_of
from numbering.lifecycle import NumberRecord, Refused, Status
from numbering.rules import GradeRule, NumberRules, add_months
from numbering.segments import Operator, operator_of
from numbering.working_days import add_working_days

TZ = ZoneInfo("Asia/Shanghai")
RULES = NumberRules()
CALENDAR = OfficialCalendar()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def record(number: str = "4006031475", **fields) -> NumberRecord:
    grade = RULES.grade(number)
    return NumberRecord(number, grade, RULES.fee_of_grade[grade], **fields)


# --- segments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "operator"),
    [
        ("4000123456", Operator.UNICOM),
        ("4006001234", Operator.UNICOM),
        ("4001234567", Operator.MOBILE),
        ("4007001234", Operator.MOBILE),
        ("4008207788", Operator.TELECOM),
        ("4009001234", Operator.TELECOM),
        ("4005001234", Operator.UNKNOWN),
        ("4002001234", Operator.UNKNOWN),
    ],
)
def test_the_segment_names_the_operator_and_other_segments_are_accepted(number, operator):
    assert operator_of(number) is operator


def test_a_number_that_is_not_a_400_number_is_refused():
    with pytest.raises(ValueError, match="not a 400 number"):
        operator_of("40012345")


# --- grading -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "grade"),
    [
        ("4008888888", "platinum"),  # a run of seven
        ("4001234567", "platinum"),  # ascending 1234567
        ("4009876543", "platinum"),  # descending 9876543
        ("4006121212", "gold"),  # repeated pair 12 12 12
        ("4006585858", "gold"),  # repeated pair 58 58 58
        ("4000123123", "gold"),  # repeated block 123 123
        ("4006077777", "gold"),  # a run of five
        ("4006038888", "silver"),  # tail 8888 (a run of four)
        ("4006312345", "silver"),  # ascending 12345
        ("4006012345", "gold"),  # ascending 012345
        ("4006031888", "bronze"),  # tail 888
        ("4006031666", "bronze"),
        ("4006031168", "bronze"),
        ("4006031475", ORDINARY),
        ("4006031212", ORDINARY),  # one repeated pair is not enough
    ],
)
def test_premium_grades_from_runs_sequences_repeats_and_tails(number, grade):
    assert RULES.grade(number) == grade


def test_grades_and_fees_come_from_configuration():
    rules = NumberRules.model_validate(
        {
            "grades": [{"name": "lucky", "fee": "88.00", "tails": ["8"]}],
            "fees": {"standard_selection": "5.00"},
        }
    )
    assert rules.grade("4006031478") == "lucky"
    assert rules.grade("4008888888") == "lucky"  # no platinum grade configured any more
    assert rules.grade("4006031475") == ORDINARY
    assert rules.fee_of_grade == {ORDINARY: Decimal("5.00"), "lucky": Decimal("88.00")}


def test_configuration_refuses_a_grade_named_ordinary_and_duplicates():
    with pytest.raises(ValueError, match="ordinary"):
        GradeRule(name="ordinary", fee=Decimal("1.00"))
    with pytest.raises(ValueError, match="listed twice"):
        NumberRules.model_validate(
            {"grades": [{"name": "a", "fee": "1.00"}, {"name": "a", "fee": "2.00"}]}
        )


@pytest.mark.parametrize(
    ("timing", "message"),
    [
        ({"long_reservation_segments": ["8"]}, "should match pattern"),  # would hold nothing
        ({"long_reservation_segments": ["40080"]}, "should match pattern"),
        (
            {"review_min_working_days": 4},  # past the 3 days, when it is in service anyway
            "review_min_working_days (4) is more than review_max_working_days (3)",
        ),
    ],
)
def test_configuration_refuses_periods_that_could_never_apply(timing, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        NumberRules.model_validate({"timing": timing})


@given(st.text(alphabet="0123456789", min_size=7, max_size=7))
def test_pattern_lengths_stay_within_the_seven_digits(digits):
    pattern = pattern_of("400" + digits)
    assert 1 <= pattern.run <= 7
    assert 1 <= pattern.sequence <= 7
    assert pattern.repeat in (0, 4, 5, 6, 7)
    if len(set(digits)) == 1:
        assert pattern.run == 7 and pattern.repeat == 0


# --- reservation -------------------------------------------------------------------------


def test_a_reservation_holds_three_days_and_is_free():
    change = lifecycle.reserve(record(), "acme", at("2026-12-01 10:00"), RULES)
    assert change.after.status is Status.RESERVED
    assert change.after.provider == "acme"
    assert change.after.until == at("2026-12-04 10:00")
    assert change.fees == ()
    assert change.after.version == 1


@pytest.mark.parametrize("intent_form", [False, True])
def test_4008_numbers_are_held_thirty_days_with_or_without_an_intent_form(intent_form):
    for number in ("4008031475", "4008888888"):  # ordinary and premium
        change = lifecycle.reserve(
            record(number), "acme", at("2026-12-01 10:00"), RULES, intent_form=intent_form
        )
        assert change.after.until == at("2026-12-31 10:00")


@pytest.mark.parametrize("number", ["4006031888", "4006888888", "4001234567"])
def test_a_special_number_is_held_thirty_days_only_with_an_intent_form(number):
    assert RULES.grade(number) != ORDINARY
    without = lifecycle.reserve(record(number), "acme", at("2026-12-01 10:00"), RULES)
    assert without.after.until == at("2026-12-04 10:00")
    assert without.reason == "reserved for 3 days, no intent form (free; 30 with one)"
    signed = lifecycle.reserve(
        record(number), "acme", at("2026-12-01 10:00"), RULES, intent_form=True
    )
    assert signed.after.until == at("2026-12-31 10:00")
    assert signed.reason == "reserved for 30 days with an intent form (free)"


def test_an_intent_form_does_not_lengthen_an_ordinary_numbers_hold_but_is_noted():
    change = lifecycle.reserve(
        record("4006031475"), "acme", at("2026-12-01 10:00"), RULES, intent_form=True
    )
    assert change.after.until == at("2026-12-04 10:00")
    assert change.reason == "reserved for 3 days with an intent form (free)"


def test_a_reserved_number_cannot_be_reserved_again_and_says_until_when():
    held = lifecycle.reserve(record(), "acme", at("2026-12-01 10:00"), RULES).after
    with pytest.raises(Refused) as refused:
        lifecycle.reserve(held, "beta", at("2026-12-02 10:00"), RULES)
    assert str(refused.value) == "4006031475 is reserved by acme until 2026-12-04 10:00"
    assert refused.value.possible_at == at("2026-12-04 10:00")


def test_a_released_number_is_frozen_thirty_minutes_then_returns_to_the_pool():
    held = lifecycle.reserve(record(), "acme", at("2026-12-05 14:00"), RULES).after
    released = lifecycle.release(held, "acme", at("2026-12-05 14:02"), RULES).after
    assert released.status is Status.FROZEN and released.provider is None
    with pytest.raises(Refused) as refused:
        lifecycle.reserve(released, "beta", at("2026-12-05 14:02"), RULES)
    assert str(refused.value) == (
        "4006031475 is frozen until 2026-12-05 14:32 (released 0 minutes ago)"
    )
    assert lifecycle.catch_up(released, at("2026-12-05 14:31"), RULES) == []
    [thawed] = lifecycle.catch_up(released, at("2026-12-05 15:00"), RULES)
    assert thawed.at == at("2026-12-05 14:32")  # when it fell due, not when it was noticed
    assert thawed.after.status is Status.AVAILABLE
    assert lifecycle.reserve(thawed.after, "beta", at("2026-12-05 15:00"), RULES)


def test_the_same_provider_may_not_take_the_number_again_in_the_following_period():
    held = lifecycle.reserve(record(), "acme", at("2026-12-01 10:00"), RULES).after
    expired, thawed = lifecycle.catch_up(held, at("2026-12-06 00:00"), RULES)
    assert expired.at == at("2026-12-04 10:00") and expired.actor == lifecycle.SYSTEM
    assert "expired" in expired.reason
    pool = thawed.after
    with pytest.raises(Refused) as refused:
        lifecycle.reserve(pool, "acme", at("2026-12-06 00:00"), RULES)
    assert str(refused.value) == (
        "4006031475: acme held it until 2026-12-04 10:00; the same provider may not reserve it "
        "in the period that follows, possible from 2026-12-07 10:00"
    )
    assert lifecycle.reserve(pool, "beta", at("2026-12-06 00:00"), RULES).after.provider == "beta"
    again = lifecycle.reserve(pool, "acme", at("2026-12-07 10:00"), RULES)
    assert again.after.provider == "acme"


def test_the_provider_that_released_a_frozen_number_is_told_when_it_may_take_it_again():
    held = lifecycle.reserve(record(), "acme", at("2026-12-05 14:00"), RULES).after
    released = lifecycle.release(held, "acme", at("2026-12-05 14:02"), RULES).after
    with pytest.raises(Refused) as refused:
        lifecycle.reserve(released, "acme", at("2026-12-05 14:10"), RULES)
    assert refused.value.possible_at == at("2026-12-08 14:02")  # not the freeze's 14:32
    assert "the same provider may not reserve it in the period that follows" in str(refused.value)


@pytest.mark.parametrize("intent_form_now", [False, True])
def test_after_a_special_numbers_30_day_hold_the_same_provider_waits_30_days(intent_form_now):
    """The period that follows is as long as the one held, whatever the provider asks for
    now: without an intent form it would otherwise be back 3 days after a 30-day hold."""
    held = lifecycle.reserve(
        record("4006888888"), "acme", at("2026-12-01 10:00"), RULES, intent_form=True
    ).after
    expired, thawed = lifecycle.catch_up(held, at("2027-01-01 00:00"), RULES)
    assert expired.at == at("2026-12-31 10:00")
    with pytest.raises(Refused) as refused:
        lifecycle.reserve(
            thawed.after, "acme", at("2027-01-04 12:00"), RULES, intent_form=intent_form_now
        )
    assert refused.value.possible_at == at("2027-01-30 10:00")
    released = lifecycle.release(held, "acme", at("2026-12-01 11:00"), RULES).after
    [thawed] = lifecycle.catch_up(released, at("2026-12-04 12:00"), RULES)
    released = thawed.after
    with pytest.raises(Refused, match="possible from 2026-12-31 11:00"):
        lifecycle.reserve(released, "acme", at("2026-12-04 12:00"), RULES)
    assert lifecycle.reserve(released, "beta", at("2026-12-04 12:00"), RULES)
    again = lifecycle.reserve(released, "acme", at("2026-12-31 11:00"), RULES)
    assert again.after.until == at("2027-01-03 11:00")  # 3 days: no intent form this time


# --- application and review ------------------------------------------------------------


def applied(number: str = "4006031475", when: str = "2026-12-01 10:00") -> NumberRecord:
    held = lifecycle.reserve(record(number), "acme", at(when), RULES).after
    return lifecycle.apply(held, "jinan-heavy", "acme", at(when), RULES).after


def test_applying_locks_the_number_and_books_opening_and_selection_fees_on_the_subscriber():
    held = lifecycle.reserve(record("4006031888"), "acme", at("2026-12-01 10:00"), RULES).after
    change = lifecycle.apply(held, "jinan-heavy", "acme", at("2026-12-01 11:00"), RULES)
    assert change.after.status is Status.APPLIED
    assert change.after.subscriber == "jinan-heavy"
    assert [(fee.payer, fee.kind, fee.amount) for fee in change.fees] == [
        ("subscriber", "opening_fee", Decimal("600.00")),
        ("subscriber", "selection_fee", Decimal("300.00")),
    ]
    assert change.after.due_at(RULES) is None  # locked: no reservation clock runs any more


def test_only_the_provider_holding_the_reservation_can_apply_for_its_subscriber():
    held = lifecycle.reserve(record(), "acme", at("2026-12-01 10:00"), RULES).after
    with pytest.raises(Refused, match="reserved by acme; subscriber shop belongs to beta"):
        lifecycle.apply(held, "shop", "beta", at("2026-12-01 11:00"), RULES)
    with pytest.raises(Refused, match="is available: it cannot be applied for"):
        lifecycle.apply(record(), "shop", "acme", at("2026-12-01 11:00"), RULES)


def test_a_number_applied_for_says_by_whom_rather_than_to_reserve_it_first():
    locked = lifecycle.apply(
        lifecycle.reserve(record(), "acme", at("2026-12-01 10:00"), RULES).after,
        "shop",
        "acme",
        at("2026-12-01 11:00"),
        RULES,
    ).after
    for subscriber in ("shop", "mall"):
        with pytest.raises(Refused) as refused:
            lifecycle.apply(locked, subscriber, "acme", at("2026-12-01 11:05"), RULES)
        assert str(refused.value) == (
            "4006031475 is applied for by shop (provider acme): it cannot be applied for again"
        )


def test_review_takes_one_to_three_official_working_days():
    # Submitted Wednesday 2026-09-30; 2026-10-01..07 is the National Day holiday and
    # Saturday 2026-10-10 is an adjusted working day.
    review = lifecycle.submit(applied(), at("2026-09-30 16:00"), RULES, CALENDAR).after
    assert review.status is Status.UNDER_REVIEW
    assert review.until == at("2026-10-10 16:00")
    with pytest.raises(Refused) as refused:
        lifecycle.approve(review, "operator", at("2026-10-08 09:00"), RULES, CALENDAR)
    assert str(refused.value) == (
        "4006031475 is under review since 2026-09-30 16:00: review takes at least 1 official "
        "working day(s), possible from 2026-10-08 16:00"
    )
    active = lifecycle.approve(review, "operator", at("2026-10-08 16:00"), RULES, CALENDAR)
    assert active.after.status is Status.ACTIVE


def test_an_undecided_review_ends_with_the_number_in_service():
    review = lifecycle.submit(applied(), at("2026-12-01 10:00"), RULES, CALENDAR).after
    [over] = lifecycle.catch_up(review, at("2026-12-10 00:00"), RULES)
    assert over.at == at("2026-12-04 10:00")  # Tue + 3 working days = Fri
    assert over.after.status is Status.ACTIVE


def test_a_rejected_review_leaves_the_number_locked_for_new_material():
    review = lifecycle.submit(applied(), at("2026-12-01 10:00"), RULES, CALENDAR).after
    change = lifecycle.reject(review, "operator", "licence expired", at("2026-12-02 10:00"))
    assert change.after.status is Status.APPLIED
    assert change.reason == "review rejected: licence expired"
    assert lifecycle.submit(change.after, at("2026-12-03 10:00"), RULES, CALENDAR)


def test_an_application_withdrawn_returns_to_its_reservation_and_its_fees_are_given_back():
    held = lifecycle.reserve(record("4006031888"), "acme", at("2026-12-01 10:00"), RULES).after
    applying = lifecycle.apply(held, "jinan-heavy", "acme", at("2026-12-02 10:00"), RULES)
    review = lifecycle.submit(applying.after, at("2026-12-02 10:00"), RULES, CALENDAR).after
    change = lifecycle.withdraw(review, "jinan-heavy", at("2026-12-03 09:00"), RULES, applying.fees)
    after = change.after
    assert (after.status, after.provider, after.subscriber) == (Status.RESERVED, "acme", None)
    assert after.until == at("2026-12-04 10:00")  # the reservation's own end, not a new one
    assert [(fee.kind, fee.amount) for fee in change.fees] == [
        ("adjustment", Decimal("-600.00")),
        ("adjustment", Decimal("-300.00")),
    ]
    assert change.reason == (
        "application by jinan-heavy withdrawn; its fees given back; back in acme's "
        "reservation until 2026-12-04 10:00"
    )
    expired, _ = lifecycle.catch_up(after, at("2026-12-05 00:00"), RULES)
    assert expired.after.status is Status.FROZEN


def test_an_application_withdrawn_after_its_reservation_ran_out_is_released_and_frozen():
    held = lifecycle.reserve(record(), "acme", at("2026-12-01 10:00"), RULES).after
    applying = lifecycle.apply(held, "jinan-heavy", "acme", at("2026-12-01 11:00"), RULES)
    change = lifecycle.withdraw(
        applying.after, "operator", at("2026-12-08 10:00"), RULES, applying.fees
    )
    after = change.after
    assert (after.status, after.provider, after.subscriber) == (Status.FROZEN, None, None)
    assert after.until == at("2026-12-08 10:30")
    assert [fee.amount for fee in change.fees] == [Decimal("-600.00")]
    with pytest.raises(Refused, match="possible from 2026-12-11 10:00"):
        lifecycle.reserve(after, "acme", at("2026-12-09 10:00"), RULES)


def test_only_an_application_not_yet_decided_can_be_withdrawn():
    review = lifecycle.submit(applied(), at("2026-12-01 10:00"), RULES, CALENDAR).after
    in_service = lifecycle.approve(review, "operator", at("2026-12-02 10:00"), RULES, CALENDAR)
    for status in (record(), in_service.after):
        with pytest.raises(Refused, match=r"cannot be withdrawn \(only an application not yet"):
            lifecycle.withdraw(status, "acme", at("2026-12-03 10:00"), RULES, ())


def test_review_counts_working_days_on_beijing_dates_whatever_zone_the_instant_is_in():
    # Friday 2024-06-07 07:00 in Beijing is Thursday 23:00 UTC, as the store hands it back
    # and the console's clock reads it; Sat 8 and Sun 9 rest, Mon 10 is Dragon Boat Festival.
    friday = at("2024-06-07 07:00")
    review = lifecycle.submit(applied(), friday.astimezone(UTC), RULES, CALENDAR).after
    assert review.until == at("2024-06-13 07:00")  # Tue 11, Wed 12, Thu 13
    stored = dataclasses.replace(review, since=friday.astimezone(UTC), until=review.until)
    for now in (at("2024-06-08 07:30"), at("2024-06-08 07:30").astimezone(UTC)):
        with pytest.raises(Refused) as refused:
            lifecycle.approve(stored, "operator", now, RULES, CALENDAR)
        assert refused.value.possible_at == at("2024-06-11 07:00")
    assert lifecycle.approve(stored, "operator", at("2024-06-11 07:00"), RULES, CALENDAR)
    assert add_working_days(friday.astimezone(UTC), 1, CALENDAR) == at("2024-06-11 07:00")


def test_working_days_follow_the_official_calendar():
    thursday = at("2026-09-24 09:00")  # before the Mid-autumn Festival, Fri 25 to Sun 27
    assert add_working_days(thursday, 0, CALENDAR) == thursday
    assert add_working_days(thursday, 1, CALENDAR) == at("2026-09-28 09:00")
    assert add_working_days(thursday, 4, CALENDAR) == at("2026-10-08 09:00")  # National Day


# --- in service ------------------------------------------------------------------------


def active(when: str = "2026-01-05 09:00") -> NumberRecord:
    review = lifecycle.submit(applied(when=when), at(when), RULES, CALENDAR).after
    [over] = lifecycle.catch_up(review, at(when) + timedelta(days=30), RULES)
    return over.after


def test_suspension_keeps_the_number_and_books_a_keeping_fee_each_month():
    number = active()
    suspended = lifecycle.suspend(number, "acme", at("2026-03-01 00:00"), RULES)
    assert suspended.after.status is Status.SUSPENDED
    assert [(f.kind, f.amount) for f in suspended.fees] == [("keeping_fee", Decimal("15.00"))]
    months = lifecycle.catch_up(suspended.after, at("2026-05-10 00:00"), RULES)
    assert [(c.at, c.fees[0].ref) for c in months] == [  # calendar months
        (at("2026-04-01 00:00"), "keeping@jinan-heavy@2026-04"),
        (at("2026-05-01 00:00"), "keeping@jinan-heavy@2026-05"),
    ]
    assert all(c.after.status is Status.SUSPENDED for c in months)
    resumed = lifecycle.resume(months[-1].after, "acme", at("2026-05-10 00:00"))
    assert resumed.after.status is Status.ACTIVE
    assert resumed.after.suspended_before == timedelta(days=70)


def test_a_suspension_resumed_the_instant_its_next_month_begins_pays_no_fee_for_it():
    """Suspended 1 March 00:00 to 1 May 00:00 is two months kept: two fees. The month that
    begins at the instant of the resumption is never entered, whether or not a tick came by
    at that instant; an instant later it is, and its fee is dated when it began."""
    suspended = lifecycle.suspend(active(), "acme", at("2026-03-01 00:00"), RULES)
    [april] = lifecycle.catch_up(suspended.after, at("2026-05-01 00:00"), RULES)
    assert april.at == at("2026-04-01 00:00")
    resumed = lifecycle.resume(april.after, "acme", at("2026-05-01 00:00"))
    assert lifecycle.catch_up(resumed.after, at("2027-01-01 00:00"), RULES) == []
    fees = [f.ref for c in (suspended, april) for f in c.fees]
    assert fees == ["keeping@jinan-heavy@2026-03", "keeping@jinan-heavy@2026-04"]
    later = lifecycle.catch_up(
        april.after, at("2026-05-01 00:00") + timedelta(microseconds=1), RULES
    )
    assert [(c.at, c.fees[0].ref) for c in later] == [
        (at("2026-05-01 00:00"), "keeping@jinan-heavy@2026-05")
    ]


def test_one_suspension_ends_36_calendar_months_after_it_began_with_a_fee_each_month():
    suspended = lifecycle.suspend(active(), "acme", at("2024-01-01 10:00"), RULES)
    assert suspended.reason == (
        "suspended with the number kept (cancelled 2027-01-01 10:00 unless resumed first)"
    )
    year = lifecycle.catch_up(suspended.after, at("2024-12-31 10:00"), RULES)
    assert [c.at for c in year] == [at(f"2024-{month:02d}-01 10:00") for month in range(2, 13)]
    *months, cancelled, _ = lifecycle.catch_up(suspended.after, at("2027-06-01 00:00"), RULES)
    assert len(months) == 35  # 36 fees with the first
    assert months[-1].at == at("2026-12-01 10:00")
    assert (cancelled.at, cancelled.after.status) == (at("2027-01-01 10:00"), Status.CANCELLED)
    assert cancelled.reason.startswith("cancelled (36 months of suspension used)")


def test_a_suspension_from_the_31st_pays_on_the_last_day_of_shorter_months():
    suspended = lifecycle.suspend(active(), "acme", at("2024-01-31 09:00"), RULES).after
    months = lifecycle.catch_up(suspended, at("2024-05-31 09:01"), RULES)
    assert [c.at for c in months] == [
        at("2024-02-29 09:00"),
        at("2024-03-31 09:00"),
        at("2024-04-30 09:00"),
        at("2024-05-31 09:00"),
    ]


def test_months_are_read_in_the_billing_zone_however_the_instant_is_stored():
    # Suspended 2024-01-31 20:00 UTC, which is 1 February 04:00 in Beijing.
    since = datetime(2024, 1, 31, 20, 0, tzinfo=UTC)
    suspended = lifecycle.suspend(active("2023-12-04 09:00"), "acme", since, RULES).after
    stored = dataclasses.replace(suspended, since=since, suspended_since=since)
    [month] = lifecycle.catch_up(stored, at("2024-03-01 04:01"), RULES)
    assert month.at == at("2024-03-01 04:00")
    assert month.fees[0].ref == "keeping@jinan-heavy@2024-03"
    berlin = NumberRules(timezone="Europe/Berlin")  # 31 January 21:00 there
    [month] = lifecycle.catch_up(stored, datetime(2024, 3, 1, tzinfo=UTC), berlin)
    assert month.at == datetime(2024, 2, 29, 21, 0, tzinfo=ZoneInfo("Europe/Berlin"))


def test_adding_months_keeps_the_day_or_takes_the_months_last():
    start = at("2024-01-31 10:00")
    assert [add_months(start, n, TZ).date().isoformat() for n in (1, 2, 13, 25, 36)] == [
        "2024-02-29",
        "2024-03-31",
        "2025-02-28",
        "2026-02-28",
        "2027-01-31",
    ]
    assert add_months(start, 0, TZ) == start


def test_suspension_is_limited_to_36_months_over_the_life_then_the_number_is_cancelled():
    # The months of the latest suspension are calendar months; the earlier suspensions of the
    # number's life count day for day against them.
    number = active()
    first = lifecycle.suspend(number, "acme", at("2026-03-01 00:00"), RULES).after
    number = lifecycle.resume(first, "acme", at("2026-03-31 00:00")).after  # 30 days used
    second = lifecycle.suspend(number, "acme", at("2027-01-01 00:00"), RULES)
    assert "cancelled 2029-12-02 00:00 unless resumed first" in second.reason
    changes = lifecycle.catch_up(second.after, at("2030-01-01 00:00"), RULES)
    *fees, cancelled = changes
    assert len(fees) == 35  # months 2..36 of the second suspension (the 36th one day long)
    assert cancelled.after.status is Status.CANCELLED
    assert cancelled.at == at("2030-01-01 00:00") - timedelta(days=30)
    assert cancelled.reason.startswith("cancelled (36 months of suspension used)")
    assert cancelled.after.suspended_before == at("2029-12-02 00:00") - at("2026-12-02 00:00")


def test_a_number_with_no_suspension_left_cannot_be_suspended():
    used = at("2029-03-01 00:00") - at("2026-03-01 00:00")  # 36 calendar months from now
    number = dataclasses.replace(active(), suspended_before=used)
    with pytest.raises(Refused, match="has used its 36 months of suspension"):
        lifecycle.suspend(number, "acme", at("2026-03-01 00:00"), RULES)
    fresh = dataclasses.replace(number, suspended_before=used - timedelta(hours=1))
    assert lifecycle.suspend(fresh, "acme", at("2026-03-01 00:00"), RULES)


def test_a_number_back_in_the_pool_gives_its_next_holder_36_months_of_suspension_afresh():
    """The 36 months are counted over one life of the number: the holder whose suspension
    used them up does not pass that on once the number is cancelled and recycled."""
    suspended = lifecycle.suspend(active(), "acme", at("2026-03-01 00:00"), RULES).after
    used_up = lifecycle.catch_up(suspended, at("2029-08-01 00:00"), RULES)
    assert [c.after.status for c in used_up[-2:]] == [Status.CANCELLED, Status.AVAILABLE]
    recycled = used_up[-1].after
    assert recycled.suspended_before == timedelta(0)
    reserved = lifecycle.reserve(recycled, "telecom-sp", at("2029-08-01 00:00"), RULES).after
    applied = lifecycle.apply(reserved, "beta", "telecom-sp", at("2029-08-01 00:00"), RULES)
    review = lifecycle.submit(applied.after, at("2029-08-01 00:00"), RULES, CALENDAR).after
    [in_service] = lifecycle.catch_up(review, at("2029-09-01 00:00"), RULES)
    again = lifecycle.suspend(in_service.after, "beta", at("2029-09-03 00:00"), RULES)
    assert "cancelled 2032-09-03 00:00 unless resumed first" in again.reason


def test_cancellation_after_thirty_days_notice_then_ninety_days_frozen_then_the_pool():
    number = active()
    requested = lifecycle.cancel(number, "acme", at("2026-03-01 12:00"), RULES)
    assert requested.after.status is Status.CANCELLATION_REQUESTED
    assert requested.reason == "cancellation requested, effective 2026-03-31 12:00"
    cancelled, pool = lifecycle.catch_up(requested.after, at("2026-08-01 00:00"), RULES)
    assert (cancelled.at, cancelled.after.status) == (at("2026-03-31 12:00"), Status.CANCELLED)
    assert (pool.at, pool.after.status) == (at("2026-06-29 12:00"), Status.AVAILABLE)
    assert pool.after.subscriber is None and pool.after.provider is None


def test_a_suspended_number_given_notice_keeps_paying_to_keep_it_until_cancelled():
    suspended = lifecycle.suspend(active(), "acme", at("2026-03-01 00:00"), RULES).after
    requested = lifecycle.cancel(suspended, "acme", at("2026-03-10 00:00"), RULES).after
    fee, cancelled = lifecycle.catch_up(requested, at("2026-04-10 00:00"), RULES)
    assert fee.at == at("2026-04-01 00:00") and fee.fees[0].kind == "keeping_fee"
    assert cancelled.at == at("2026-04-09 00:00")


def test_arrears_and_a_top_up_that_clears_them():
    number = active()
    owing = lifecycle.fall_into_arrears(number, at("2026-03-01 00:00"), Decimal("-3.20")).after
    assert owing.status is Status.ARREARS
    cleared = lifecycle.clear_arrears(owing, at("2026-03-02 00:00"), Decimal("96.80")).after
    assert cleared.status is Status.ACTIVE
    with pytest.raises(Refused, match="is active"):
        lifecycle.clear_arrears(cleared, at("2026-03-02 00:00"), Decimal("96.80"))


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            lambda r, now: lifecycle.resume(r, "x", now),
            "is active (held by acme): it cannot be resumed",
        ),
        (lambda r, now: lifecycle.release(r, "x", now, RULES), "cannot be released"),
        (lambda r, now: lifecycle.reserve(r, "x", now, RULES), "cannot be reserved"),
    ],
)
def test_refused_transitions_say_why_in_one_line(action, message):
    with pytest.raises(Refused) as refused:
        action(active(), at("2026-03-01 00:00"))
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


@given(st.integers(min_value=0, max_value=400 * 24), st.integers(min_value=0, max_value=400 * 24))
def test_catching_up_late_or_in_steps_gives_the_same_history(first_hours, more_hours):
    start = lifecycle.suspend(active(), "acme", at("2026-03-01 00:00"), RULES).after
    start = lifecycle.cancel(start, "acme", at("2026-03-15 00:00"), RULES).after
    middle = at("2026-03-15 00:00") + timedelta(hours=first_hours)
    end = middle + timedelta(hours=more_hours)
    at_once = lifecycle.catch_up(start, end, RULES)
    step = lifecycle.catch_up(start, middle, RULES)
    rest = lifecycle.catch_up(step[-1].after if step else start, end, RULES)
    assert [(c.at, c.reason) for c in at_once] == [(c.at, c.reason) for c in step + rest]
    final = at_once[-1].after if at_once else start
    assert lifecycle.catch_up(final, end, RULES) == []  # applying again does nothing


@pytest.mark.parametrize(
    ("days", "cancelled", "returned"),
    [
        (90, "frozen 90 days", "90-day freeze ended; available"),
        (30, "frozen 30 days", "30-day freeze ended; available"),
        (1, "frozen 1 day", "1-day freeze ended; available"),
        (0, "not frozen", "back in the pool with no freeze; available"),
    ],
)
def test_the_history_names_the_freeze_numbers_yaml_sets(days, cancelled, returned):
    rules = NumberRules(timing={"cancelled_freeze_days": days})
    requested = lifecycle.cancel(active(), "acme", at("2026-03-01 12:00"), rules).after
    ended, pool = lifecycle.catch_up(requested, at("2026-08-01 00:00"), rules)
    assert ended.reason == f"cancelled (notice period over); {cancelled}"
    assert pool.reason == returned


@pytest.mark.parametrize(
    ("minutes", "released"), [(30, "frozen 30 minutes"), (0, "not frozen"), (1440, "frozen 1 day")]
)
def test_a_release_names_the_freeze_numbers_yaml_sets(minutes, released):
    rules = NumberRules(timing={"release_freeze_minutes": minutes})
    held = lifecycle.reserve(record(), "sp-east", at("2026-03-01 12:00"), rules).after
    change = lifecycle.release(held, "sp-east", at("2026-03-01 13:00"), rules)
    assert change.reason == f"reservation released; {released}"


def test_a_one_day_reservation_says_one_day():
    rules = NumberRules(timing={"reservation_days": 1})
    change = lifecycle.reserve(record(), "sp-east", at("2026-03-01 12:00"), rules)
    assert change.reason == "reserved for 1 day (free)"
