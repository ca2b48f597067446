"""The numbers' rules an operator sets: grades and fees, and every period of the lifecycle.

Loaded from config/numbers.yaml (every key optional: the defaults are the common market
terms). Durations carry their unit in their name; money is yuan to the fen. Months are
calendar months in the billing time zone (router.yaml's `timezone`, which the loader sets):
a suspension that began on the 31st pays its next keeping fee on the last day of a shorter
month, and 36 months after 2024-01-01 10:00 is 2027-01-01 10:00.
"""

from __future__ import annotations

from calendar import monthrange
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Self
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from dialplan.validation import IanaZone
from numbering.grading import ORDINARY, Pattern, pattern_of
from numbering.segments import segment_of
from rating.model_base import Strict
from rating.money import Money
from rating.tariff import DEFAULT_TIMEZONE


class GradeRule(Strict):
    """A premium grade: a number earns it when any of its conditions holds."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    fee: Money = Field(description="one-off selection fee, yuan")
    run: int | None = Field(None, ge=2, le=7, description="one digit repeated this many times")
    sequence: int | None = Field(None, ge=3, le=7, description="ascending or descending digits")
    repeat: int | None = Field(None, ge=4, le=7, description="a 2- or 3-digit block repeated")
    tails: list[str] = Field(default_factory=list, description="endings such as '888'")

    @field_validator("name")
    @classmethod
    def _not_ordinary(cls, name: str) -> str:
        if name == ORDINARY:
            raise ValueError("'ordinary' is the grade of numbers that earn none")
        return name

    @field_validator("tails")
    @classmethod
    def _digits(cls, tails: list[str]) -> list[str]:
        for tail in tails:
            if not tail.isdigit() or not 1 <= len(tail) <= 7:
                raise ValueError(f"{tail!r}: a tail is 1 to 7 digits")
        return tails

    def earned_by(self, pattern: Pattern) -> bool:
        return (
            (self.run is not None and pattern.run >= self.run)
            or (self.sequence is not None and pattern.sequence >= self.sequence)
            or (self.repeat is not None and pattern.repeat >= self.repeat)
            or any(pattern.tail.endswith(tail) for tail in self.tails)
        )


def _default_grades() -> list[GradeRule]:
    return [
        GradeRule(name="platinum", fee=Decimal("8000.00"), run=6, sequence=7),
        GradeRule(name="gold", fee=Decimal("3000.00"), run=5, sequence=6, repeat=6),
        GradeRule(name="silver", fee=Decimal("1000.00"), run=4, sequence=5, tails=["8888"]),
        GradeRule(name="bronze", fee=Decimal("300.00"), tails=["888", "666", "999", "168"]),
    ]


class Fees(Strict):
    opening: Money = Field(Decimal("600.00"), description="booked when the number is applied for")
    standard_selection: Money = Field(Decimal("0.00"), description="selection fee, ordinary")
    monthly_keeping: Money = Field(
        Decimal("15.00"),
        description="each calendar month of suspension with the number kept (10-20)",
    )


class Timing(Strict):
    reservation_days: int = Field(3, ge=1, description="how long a reservation holds")
    long_reservation_days: int = Field(
        30, ge=1, description="long-hold segments, and premium numbers with an intent form"
    )
    long_reservation_segments: list[Annotated[str, Field(pattern=r"^400[0-9]$")]] = Field(
        default_factory=lambda: ["4008"], description="segments of 4 digits, e.g. 4008"
    )
    release_freeze_minutes: int = Field(30, ge=0, description="after a release or expiry")
    review_min_working_days: int = Field(1, ge=0)
    review_max_working_days: int = Field(3, ge=1)
    suspension_limit_months: int = Field(
        36, ge=1, description="calendar months of suspension over the number's life"
    )
    cancellation_notice_days: int = Field(30, ge=0)
    cancelled_freeze_days: int = Field(90, ge=0)

    @model_validator(mode="after")
    def _review_period(self) -> Self:
        """A review whose least is more than its most would end in service before anyone
        could approve it."""
        if self.review_min_working_days > self.review_max_working_days:
            raise ValueError(
                f"review_min_working_days ({self.review_min_working_days}) is more than "
                f"review_max_working_days ({self.review_max_working_days})"
            )
        return self


class NumberRules(Strict):
    """Everything config/numbers.yaml sets."""

    grades: list[GradeRule] = Field(default_factory=_default_grades, description="best first")
    fees: Fees = Field(default_factory=Fees)
    timing: Timing = Field(default_factory=Timing)
    timezone: SkipJsonSchema[IanaZone] = Field(
        DEFAULT_TIMEZONE,
        description="the billing time zone, router.yaml's `timezone`, set by the loader: "
        "the months of a suspension are read in it; numbers.yaml does not name it",
    )

    @field_validator("grades")
    @classmethod
    def _unique(cls, grades: list[GradeRule]) -> list[GradeRule]:
        names = [grade.name for grade in grades]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"grade {name!r} is listed twice")
        return grades

    @cached_property
    def fee_of_grade(self) -> dict[str, Decimal]:
        return {ORDINARY: self.fees.standard_selection} | {g.name: g.fee for g in self.grades}

    def grade(self, number: str) -> str:
        """The best grade the number earns, or 'ordinary'."""
        pattern = pattern_of(number)
        for rule in self.grades:
            if rule.earned_by(pattern):
                return rule.name
        return ORDINARY

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def reservation_hold(self, number: str, grade: str, intent_form: bool = False) -> timedelta:
        """3 days; 30 for the long-hold segments (4008), and for a premium number whose
        customer signed an intent form (without one a premium number is held 3 days too)."""
        timing = self.timing
        if segment_of(number) in timing.long_reservation_segments or (
            grade != ORDINARY and intent_form
        ):
            return timedelta(days=timing.long_reservation_days)
        return timedelta(days=timing.reservation_days)

    @property
    def release_freeze(self) -> timedelta:
        return timedelta(minutes=self.timing.release_freeze_minutes)

    def keeping_month_starts(self, suspended_since: datetime, month: int) -> datetime:
        """When month `month` (1 for the first) of a suspension begins: the suspension's day
        of the month and time, `month - 1` calendar months on, in the billing zone."""
        return add_months(suspended_since, month - 1, self.zone)

    def suspension_ends(self, suspended_since: datetime, suspended_before: timedelta) -> datetime:
        """When a suspension that began at `suspended_since` has used the number's months of
        suspension: `suspension_limit_months` calendar months after it began, less the time
        the number spent suspended earlier in its life (counted day for day)."""
        limit = self.timing.suspension_limit_months
        return add_months(suspended_since, limit, self.zone) - suspended_before

    @property
    def cancellation_notice(self) -> timedelta:
        return timedelta(days=self.timing.cancellation_notice_days)

    @property
    def cancelled_freeze(self) -> timedelta:
        return timedelta(days=self.timing.cancelled_freeze_days)


def add_months(start: datetime, months: int, zone: ZoneInfo) -> datetime:
    """The same local time `months` calendar months after `start`, read in `zone`: the same
    day of the month, or the month's last day when it is shorter (31 January and one month
    is 29 February in a leap year; counted from `start`, so two months on is 31 March)."""
    local = start.astimezone(zone)
    year, month = divmod(local.year * 12 + local.month - 1 + months, 12)
    day = min(local.day, monthrange(year, month + 1)[1])
    return local.replace(year=year, month=month + 1, day=day)
