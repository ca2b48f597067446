"""Rule matchers: tiny objects with one question, `matches(call, now)`, and a reason to print.

Matchers are compiled once per plan load from the plan's `when` and caller lists; the
evaluator only asks them. Explanations are produced only when a trace is rendered, so the
hot path never formats text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from dialplan.calendar import DayInfo, OfficialCalendar, Source
from dialplan.geo import CallerInfo

if TYPE_CHECKING:
    from dialplan.plan import CallerSet, DateRange, TimeWindow, When

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Call:
    """What the evaluator knows of one inbound call."""

    number: str
    caller: CallerInfo
    call_id: str = ""


@dataclass(slots=True)
class Moment:
    """The instant a call is decided, in the plan's time zone, with the calendar to ask.

    Records the days the calendar could only answer by its fallback rule, so the trace and
    the router's log can say so.
    """

    local: datetime
    calendar: OfficialCalendar
    fallback_days: list[DayInfo] = field(default_factory=list)

    def day(self, when: date) -> DayInfo:
        info = self.calendar.day(when)
        if info.source is Source.FALLBACK and info not in self.fallback_days:
            self.fallback_days.append(info)
        return info


class Matcher(Protocol):
    def matches(self, call: Call, now: Moment) -> bool: ...

    def explain(self, call: Call, now: Moment) -> str: ...


@dataclass(frozen=True, slots=True)
class CallerMatcher:
    """Any of: province, city, area code, number prefix, exact number."""

    provinces: frozenset[str]
    cities: frozenset[str]
    area_codes: frozenset[str]
    prefixes: tuple[str, ...]
    numbers: frozenset[str]

    @classmethod
    def of(cls, callers: CallerSet) -> CallerMatcher:
        return cls(
            frozenset(callers.provinces),
            frozenset(callers.cities),
            frozenset(callers.area_codes),
            tuple(callers.prefixes),
            frozenset(callers.numbers),
        )

    def matches(self, call: Call, now: Moment | None = None) -> bool:
        caller = call.caller
        return (
            (caller.province_zh is not None and caller.province_zh in self.provinces)
            or (caller.city_zh is not None and caller.city_zh in self.cities)
            or (caller.area_code is not None and caller.area_code in self.area_codes)
            or (bool(caller.number) and caller.number in self.numbers)
            or (bool(caller.number) and caller.number.startswith(self.prefixes))
        )

    def criteria(self) -> str:
        parts = [
            (f"provinces {sorted(self.provinces)}", self.provinces),
            (f"cities {sorted(self.cities)}", self.cities),
            (f"area codes {sorted(self.area_codes)}", self.area_codes),
            (f"prefixes {list(self.prefixes)}", self.prefixes),
            (f"numbers {sorted(self.numbers)}", self.numbers),
        ]
        return ", ".join(text for text, values in parts if values)

    def explain(self, call: Call, now: Moment | None = None) -> str:
        verb = "is in" if self.matches(call) else "is not in"
        return f"caller {describe_caller(call.caller)} {verb} {self.criteria()}"


def describe_caller(caller: CallerInfo) -> str:
    where = "/".join(
        part for part in (caller.province_zh, caller.city_zh, caller.area_code) if part
    )
    return f"{caller.number or 'withheld'} ({where or caller.kind})"


@dataclass(frozen=True, slots=True)
class ScheduleMatcher:
    """Days of week, daily windows, date ranges and the official calendar, taken together.

    A window that runs across midnight belongs to the day it started: at Saturday 02:00 the
    window "fri 22:00-06:00" is open, and its day conditions are asked of Friday.
    """

    days: frozenset[int]
    windows: tuple[TimeWindow, ...]
    date_ranges: tuple[DateRange, ...]
    calendar: str | None

    @classmethod
    def of(cls, when: When) -> ScheduleMatcher:
        return cls(
            frozenset(WEEKDAY_NAMES.index(day) for day in when.days),
            tuple(when.windows()),
            tuple(when.date_ranges()),
            when.calendar,
        )

    def is_always(self) -> bool:
        return not (self.days or self.windows or self.date_ranges or self.calendar)

    def service_days(self, local: datetime) -> list[date]:
        """The days whose window is open at `local` (today, or yesterday for a night window)."""
        today = local.date()
        if not self.windows:
            return [today]
        clock = local.time()
        days: list[date] = []
        for window in self.windows:
            if not window.crosses_midnight():
                if window.start <= clock < window.end and today not in days:
                    days.append(today)
            elif clock >= window.start:
                if today not in days:
                    days.append(today)
            elif clock < window.end:
                yesterday = today - timedelta(days=1)
                if yesterday not in days:
                    days.append(yesterday)
        return days

    def day_fits(self, day: date, now: Moment) -> bool:
        if self.days and day.weekday() not in self.days:
            return False
        if self.date_ranges and not any(r.first <= day <= r.last for r in self.date_ranges):
            return False
        if self.calendar is None:
            return True
        info = now.day(day)
        if self.calendar == "cn_workday":
            return info.workday
        if self.calendar == "cn_holiday":
            return info.holiday
        return info.restday

    def matches(self, call: Call, now: Moment) -> bool:
        return any(self.day_fits(day, now) for day in self.service_days(now.local))

    def explain(self, call: Call, now: Moment) -> str:
        local = now.local
        stamp = f"{local:%a %Y-%m-%d %H:%M}"
        days = self.service_days(local)
        if not days:
            windows = ", ".join(str(window) for window in self.windows)
            return f"{stamp} is outside {windows}"
        reasons = [self._day_reason(day, now) for day in days]
        verdict = "fits" if self.matches(call, now) else "does not fit"
        return f"{stamp} {verdict}: " + "; ".join(reasons)

    def _day_reason(self, day: date, now: Moment) -> str:
        parts = []
        if self.days:
            wanted = ",".join(WEEKDAY_NAMES[index] for index in sorted(self.days))
            parts.append(f"{WEEKDAY_NAMES[day.weekday()]} vs days {wanted}")
        if self.date_ranges:
            ranges = ", ".join(str(r) for r in self.date_ranges)
            parts.append(f"{day} vs dates {ranges}")
        if self.calendar is not None:
            parts.append(f"{now.day(day)} vs {self.calendar}")
        return ", ".join(parts) or f"{day} open"


def compile_when(when: When) -> tuple[Matcher, ...]:
    """The matchers a rule's `when` stands for; an empty tuple matches every call."""
    matchers: list[Matcher] = []
    if not when.callers.is_empty():
        matchers.append(CallerMatcher.of(when.callers))
    schedule = ScheduleMatcher.of(when)
    if not schedule.is_always():
        matchers.append(schedule)
    return tuple(matchers)
