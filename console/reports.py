"""The figures a subscriber watches, for the console's pages and `hotline400 report`.

Daily volume, calls by hour of day, the distribution of talk time, where callers come
from, how they went through the IVR menus, the scores they gave, unanswered calls and fraud
signals, for a set of 400 numbers over local days. The store returns calls grouped by UTC
hour; here hours become local days and hours, so the same figures come out on SQLite and
PostgreSQL, in any time zone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from statistics import median
from zoneinfo import ZoneInfo

from router.storage.console_rows import HourBucket, MenuPathCount, RegionCount, SurveyScores
from router.storage.protocol import Store

DURATION_LABELS = ("< 30 s", "30-60 s", "1-3 min", "3-5 min", "5-10 min", "10 min +")
NIGHT_HOURS = range(0, 6)
BURST_FACTOR = 3
BURST_MINIMUM = 10


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: date
    calls: int
    answered: int
    unanswered: int
    talk_seconds: int


@dataclass(frozen=True, slots=True)
class FraudSignal:
    at: datetime
    kind: str
    detail: str


@dataclass
class Report:
    numbers: list[str]
    first_day: date
    last_day: date
    days: list[DayFigures] = field(default_factory=list)
    by_hour: list[int] = field(default_factory=lambda: [0] * 24)
    durations: list[int] = field(default_factory=list)
    regions: list[RegionCount] = field(default_factory=list)
    menu_paths: list[MenuPathCount] = field(default_factory=list)
    """How callers went through the IVR menus (each menu and the key that left it)."""
    survey_scores: list[SurveyScores] = field(default_factory=list)
    """The satisfaction scores callers gave after answered calls, per number."""
    outcomes: Counter[str] = field(default_factory=Counter)
    signals: list[FraudSignal] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(day.calls for day in self.days)

    @property
    def answered(self) -> int:
        return sum(day.answered for day in self.days)

    @property
    def unanswered(self) -> int:
        return sum(day.unanswered for day in self.days)

    @property
    def answer_rate(self) -> float | None:
        return self.answered / self.calls if self.calls else None


FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(9998, 12, 31)
"""The days a search or a report may name: any day a call can have been made on, with room
for the next day's midnight in any zone (9999-12-31 has none)."""


def read_day(text: str) -> date:
    """A day as YYYY-MM-DD, between FIRST_DAY and LAST_DAY; ValueError saying why not."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date like 2026-11-30") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"{text!r} is not a day between {FIRST_DAY} and {LAST_DAY}")
    return day


def local_span(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[first 00:00, the day after last 00:00) in the zone."""
    return (
        datetime.combine(first, time(), zone),
        datetime.combine(last + timedelta(days=1), time(), zone),
    )


async def build_report(
    store: Store,
    numbers: list[str],
    first: date,
    last: date,
    zone: ZoneInfo,
    holding_since: datetime | None = None,
) -> Report:
    """The figures of the calls of those days; from `holding_since` on only, when it comes
    later (a subscriber's view of its number: the current holding's calls)."""
    since, until = local_span(first, last, zone)
    if holding_since is not None:
        since = max(since, holding_since)
    report = Report(numbers, first, last)
    buckets = await store.hourly(numbers, since, until)
    mix = await store.call_mix(numbers, since, until)
    report.durations = mix.durations
    report.outcomes = Counter(mix.outcomes)
    report.regions = await store.regions(numbers, since, until)
    report.menu_paths = await store.menu_paths(numbers, since, until)
    report.survey_scores = await store.survey_scores(numbers, since, until)
    _fill(report, buckets, zone)
    return report


def _fill(report: Report, buckets: list[HourBucket], zone: ZoneInfo) -> None:
    per_day: dict[date, list[int]] = {}
    per_hour_moment: Counter[datetime] = Counter()
    international: Counter[date] = Counter()
    for bucket in buckets:
        local = bucket.hour_start.astimezone(zone)
        figures = per_day.setdefault(local.date(), [0, 0, 0, 0])
        figures[0] += bucket.calls
        figures[1] += bucket.answered
        figures[2] += bucket.unanswered
        figures[3] += bucket.talk_seconds
        report.by_hour[local.hour] += bucket.calls
        per_hour_moment[local] += bucket.calls
        international[local.date()] += bucket.international
    day = report.first_day
    while day <= report.last_day:
        calls, answered, unanswered, seconds = per_day.get(day, [0, 0, 0, 0])
        report.days.append(DayFigures(day, calls, answered, unanswered, seconds))
        day += timedelta(days=1)
    report.signals = fraud_signals(per_hour_moment, international, zone)


def fraud_signals(
    per_hour: Counter[datetime], international: Counter[date], zone: ZoneInfo
) -> list[FraudSignal]:
    """Late-night bursts (an hour between 00:00 and 06:00 with at least BURST_MINIMUM calls
    and BURST_FACTOR times a typical daytime hour that had calls) and days with
    international callers."""
    signals: list[FraudSignal] = []
    busy_hours = [calls for m, calls in per_hour.items() if calls and m.hour not in NIGHT_HOURS]
    typical = median(busy_hours) if busy_hours else 0
    for moment, calls in sorted(per_hour.items()):
        if moment.hour in NIGHT_HOURS and calls >= max(BURST_MINIMUM, BURST_FACTOR * typical):
            signals.append(
                FraudSignal(
                    moment,
                    "late-night burst",
                    f"{calls} calls between {moment:%H:00} and {moment.hour + 1:02d}:00 "
                    f"(a typical hour has {typical:g})",
                )
            )
    for day, calls in sorted(international.items()):
        if calls:
            signals.append(
                FraudSignal(
                    datetime.combine(day, time(), zone),
                    "international callers",
                    "1 call from an international number"
                    if calls == 1
                    else f"{calls} calls from international numbers",
                )
            )
    return signals
