"""Rule matchers: tiny objects with one question, `matches(call, now)`, and a reason to print.

Matchers are compiled once per plan load from the plan's `when` and caller lists; the
evaluator only asks them. Explanations are produced only when a trace is rendered, so the
hot path never formats text.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, NamedTuple, Protocol

from dialplan.calendar import DayInfo, OfficialCalendar, Source
from dialplan.geo import CallerInfo
from dialplan.regions import place_name

if TYPE_CHECKING:
    from dialplan.plan import CallerSet, DateRange, TimeWindow, When

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ONE_DAY = timedelta(days=1)
# Looking a member up on its enum class costs more than the rest of a calendar question.
_ESTIMATED = Source.ESTIMATED
_FALLBACK = Source.FALLBACK


def _minutes(clock: time | datetime) -> int:
    """Whole minutes since midnight. Window bounds are whole minutes (plans write HH:MM), so
    `start <= clock < end` holds for the instant exactly when it holds for its minute."""
    return clock.hour * 60 + clock.minute


class Call(NamedTuple):
    """What the evaluator knows of one inbound call.

    A NamedTuple: immutable like a frozen dataclass, but one is built per call on the call
    path, and a frozen dataclass takes three times as long to build.
    """

    number: str
    caller: CallerInfo
    call_id: str = ""


@dataclass(slots=True)
class Moment:
    """The instant a call is decided, in the plan's time zone, with the calendar to ask.

    Records the days the calendar could only answer by its estimate of the statutory holidays
    or by its fallback rule, so the trace and the router's log can say so.
    """

    local: datetime
    calendar: OfficialCalendar
    fallback_days: list[DayInfo] = field(default_factory=list)
    # Read by every schedule matcher of the plan, so worked out once per decision.
    today: date = field(init=False, repr=False, compare=False)
    clock: int = field(init=False, repr=False, compare=False)  # minutes since local midnight

    def __post_init__(self) -> None:
        self.today = self.local.date()
        self.clock = _minutes(self.local)

    def day(self, when: date) -> DayInfo:
        info = self.calendar.day(when)
        source = info.source
        if (source is _ESTIMATED or source is _FALLBACK) and info not in self.fallback_days:
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
        # Asked of most rules on every call, so no test that cannot change the answer: the
        # sets hold only strings (None is in none of them), and an empty set or prefix tuple
        # simply answers False.
        caller = call.caller
        number = caller.number
        return (
            caller.province_zh in self.provinces
            or caller.city_zh in self.cities
            or caller.area_code in self.area_codes
            or (number in self.numbers or number.startswith(self.prefixes) if number else False)
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


class CallerIndex:
    """Several CallerMatchers asked at once: which of them list a caller, as a bit mask.

    Built once per plan load from the caller lists of the plan's rules. A call past twenty
    rules would otherwise ask each list in turn, a method call apiece; the index answers all
    of them with a few dict lookups, and the evaluator then tests one bit per rule. The
    CallerMatchers stay the definition (and explain the trace): bit `i` is set exactly when
    `matchers[i].matches` would say yes.
    """

    __slots__ = (
        "_area_codes",
        "_cities",
        "_numbers",
        "_prefix_lengths",
        "_prefixes",
        "_provinces",
        "_some_prefix",
    )

    def __init__(self, matchers: Sequence[CallerMatcher]) -> None:
        # Keyed `str | None` only because a caller's fields may be None; no list holds None.
        self._provinces: dict[str | None, int] = {}
        self._cities: dict[str | None, int] = {}
        self._area_codes: dict[str | None, int] = {}
        self._numbers: dict[str, int] = {}
        self._prefixes: dict[str, int] = {}
        for index, matcher in enumerate(matchers):
            bit = 1 << index
            for values, table in (
                (matcher.provinces, self._provinces),
                (matcher.cities, self._cities),
                (matcher.area_codes, self._area_codes),
                (matcher.numbers, self._numbers),
                (matcher.prefixes, self._prefixes),
            ):
                for value in values:
                    table[value] = table.get(value, 0) | bit
        # number.startswith(prefix) is number[:len(prefix)] == prefix: one lookup per length,
        # made only when one startswith() over all prefixes says some prefix fits (rarely).
        self._some_prefix = tuple(self._prefixes)
        self._prefix_lengths = tuple(sorted({len(prefix) for prefix in self._prefixes}))

    def listing(self, caller: CallerInfo) -> int:
        """Bit `i` set when the caller is in the i-th list."""
        mask = (
            self._provinces.get(caller.province_zh, 0)
            | self._cities.get(caller.city_zh, 0)
            | self._area_codes.get(caller.area_code, 0)
        )
        number = caller.number
        if number:
            mask |= self._numbers.get(number, 0)
            if number.startswith(self._some_prefix):
                for length in self._prefix_lengths:
                    mask |= self._prefixes.get(number[:length], 0)
        return mask


def describe_caller(caller: CallerInfo) -> str:
    """The caller as traces name it; a caller ID that is shown but is no number ('0531',
    'abc') is quoted as shown, not called withheld."""
    place = place_name(caller.province_zh, caller.city_zh, separator="/")
    where = "/".join(part for part in (place, caller.area_code) if part)
    shown = caller.number or ("withheld" if caller.anonymous else repr(caller.raw))
    return f"{shown} ({where or caller.kind})"


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
    # Derived once per plan load, because matches() runs for most rules of every call. Which
    # days a window has open is a step function of the minute of the day: `_cuts` are the
    # minutes where it may change (ascending, from 0) and `_open[i]` holds, from `_cuts[i]`
    # on, how many days back each open window started. A call then costs one bisect, not a
    # pass over the windows comparing datetime.time objects. Date ranges become plain pairs.
    _cuts: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _open: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)
    _ranges: tuple[tuple[date, date], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        spans = [(window.start, window.end) for window in self.windows]
        cuts = tuple(sorted({0, *(bound for span in spans for bound in span)}))
        object.__setattr__(self, "_cuts", cuts)
        object.__setattr__(self, "_open", tuple(_days_back(spans, cut) for cut in cuts))
        object.__setattr__(self, "_ranges", tuple((r.first, r.last) for r in self.date_ranges))

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

    def days_open(self, clock: int) -> tuple[int, ...]:
        """Days back of the days whose window is open `clock` minutes after midnight."""
        return self._open[bisect_right(self._cuts, clock) - 1]

    def service_days(self, local: datetime) -> list[date]:
        """The days whose window is open at `local` (today, or yesterday for a night window)."""
        today = local.date()
        opened = self.days_open(_minutes(local))
        return [today - timedelta(days=back) for back in opened]

    def day_fits(self, day: date, now: Moment) -> bool:
        if self.days and day.weekday() not in self.days:
            return False
        if self._ranges:
            for first, last in self._ranges:
                if first <= day <= last:
                    break
            else:
                return False
        wanted = self.calendar
        if wanted is None:
            return True
        info = now.day(day)
        if wanted == "cn_workday":
            return info.workday
        if wanted == "cn_holiday":
            return info.holiday
        return not info.workday  # cn_restday: any day that is not a working day

    def matches(self, call: Call, now: Moment) -> bool:
        # service_days() without building its list; the days are asked in the same order, so
        # the calendar is consulted (and fallback days recorded) just as the trace tells it.
        today = now.today
        if not self.windows:  # open all day: only today's conditions count
            return self.day_fits(today, now)
        for back in self._open[bisect_right(self._cuts, now.clock) - 1]:  # days_open(), inline
            if self.day_fits(today - _ONE_DAY if back else today, now):
                return True
        return False

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


def _days_back(spans: list[tuple[int, int]], clock: int) -> tuple[int, ...]:
    """How many days back each window open at `clock` started, in window order, each day once:
    0 for today, 1 for yesterday's window across midnight. No windows: today, all day."""
    if not spans:
        return (0,)
    found: tuple[int, ...] = ()
    for start, end in spans:
        if start < end:
            back = 0 if start <= clock < end else -1
        else:  # across midnight (end <= start)
            back = 0 if clock >= start else 1 if clock < end else -1
        if back >= 0 and back not in found:
            found += (back,)
    return found


def compile_when(when: When) -> tuple[Matcher, ...]:
    """The matchers a rule's `when` stands for; an empty tuple matches every call."""
    matchers: list[Matcher] = []
    if not when.callers.is_empty():
        matchers.append(CallerMatcher.of(when.callers))
    schedule = ScheduleMatcher.of(when)
    if not schedule.is_always():
        matchers.append(schedule)
    return tuple(matchers)
