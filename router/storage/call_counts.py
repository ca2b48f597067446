"""The call counts by UTC hour (call_hours, call_hour_regions) and by UTC day (call_days,
call_day_regions), kept by triggers.

Every CDR that is not in progress counts once in the hour and the day it started, with its
outcome, talk-time class, caller region and whether the caller was international. A CDR
written or changed (finished, or completed later from AMI) moves its call between counts in
the same transaction; reports then read a few hundred rows instead of scanning a month of
calls: the whole UTC days of a span from the daily tables, the hours at its edges (a local
day does not start at a UTC midnight) and the figures by hour from the hourly ones. The
trigger bodies are written once here; each engine wraps them in its own trigger syntax.
"""

from __future__ import annotations

from dataclasses import dataclass

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
DURATION_EDGES = (30, 60, 180, 300, 600)
"""Talk-time classes of the reports, in seconds: [0, 30), [30, 60), ..., [600, inf)."""
UNANSWERED_OUTCOMES = ("busy", "noanswer")
"""The caller reached a destination that did not take the call: what a business calls back."""


@dataclass(frozen=True, slots=True)
class Period:
    """One granularity of the counts: its two tables, its key column and its length."""

    calls: str
    regions: str
    column: str
    length_us: int


HOURS = Period("call_hours", "call_hour_regions", "hour", HOUR_US)
DAYS = Period("call_days", "call_day_regions", "day", DAY_US)


def _duration_class(seconds: str) -> str:
    classes = " ".join(
        f"WHEN {seconds} < {edge} THEN {index}" for index, edge in enumerate(DURATION_EDGES)
    )
    return f"CASE {classes} ELSE {len(DURATION_EDGES)} END"


def _count_row(row: str, sign: str, period: Period = HOURS) -> list[str]:
    """Add (sign '+') or take away (sign '-') the call of a trigger's row (NEW or OLD) in
    the counts of one period; a call still in progress is in no count."""
    at = f"{row}.started_us / {period.length_us}"
    international = f"CASE WHEN {row}.caller_kind = 'international' THEN 1 ELSE 0 END"
    counted = f"{row}.outcome <> 'in_progress'"
    calls, regions, column = period.calls, period.regions, period.column
    return [
        f"INSERT INTO {calls}"
        f" (number, {column}, outcome, duration_class, calls, seconds, international)"
        f" SELECT {row}.number, {at}, {row}.outcome,"
        f" {_duration_class(row + '.billable_seconds')}, 1, {row}.billable_seconds,"
        f" {international} WHERE {counted}"
        f" ON CONFLICT (number, {column}, outcome, duration_class) DO UPDATE SET"
        f" calls = {calls}.calls {sign} 1,"
        f" seconds = {calls}.seconds {sign} excluded.seconds,"
        f" international = {calls}.international {sign} excluded.international",
        f"INSERT INTO {regions} (number, {column}, province, city, calls)"
        f" SELECT {row}.number, {at}, COALESCE({row}.province, ''),"
        f" COALESCE({row}.city, ''), 1 WHERE {counted}"
        f" ON CONFLICT (number, {column}, province, city) DO UPDATE SET"
        f" calls = {regions}.calls {sign} 1",
    ]


_CHANGED = (
    "OLD.outcome IS DISTINCT FROM NEW.outcome"
    " OR OLD.billable_seconds IS DISTINCT FROM NEW.billable_seconds"
    " OR OLD.caller_kind IS DISTINCT FROM NEW.caller_kind"
    " OR OLD.province IS DISTINCT FROM NEW.province OR OLD.city IS DISTINCT FROM NEW.city"
    " OR OLD.started_us IS DISTINCT FROM NEW.started_us"
)
"""A change that moves a call between counts (a CDR is finished, or completed later)."""


def _sqlite_triggers(written: str, changed: str, period: Period) -> tuple[str, ...]:
    return (
        f"CREATE TRIGGER {written} AFTER INSERT ON cdrs BEGIN "
        + "; ".join(_count_row("NEW", "+", period))
        + "; END",
        f"CREATE TRIGGER {changed} AFTER UPDATE ON cdrs WHEN {_CHANGED} BEGIN "
        + "; ".join([*_count_row("OLD", "-", period), *_count_row("NEW", "+", period)])
        + "; END",
    )


def _postgres_triggers(name: str, period: Period) -> tuple[str, ...]:
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF TG_OP = 'UPDATE' THEN IF NOT ({_CHANGED}) THEN RETURN NULL; END IF; "
        + "; ".join(_count_row("OLD", "-", period))
        + "; END IF; "
        + "; ".join(_count_row("NEW", "+", period))
        + "; RETURN NULL; END $$",
        f"CREATE TRIGGER {name} AFTER INSERT OR UPDATE ON cdrs"
        f" FOR EACH ROW EXECUTE FUNCTION {name}()",
    )


SQLITE_TRIGGERS = _sqlite_triggers(
    "cdrs_counted_when_written", "cdrs_recounted_when_changed", HOURS
)
POSTGRES_TRIGGERS = _postgres_triggers("cdrs_count_hours", HOURS)
SQLITE_DAY_TRIGGERS = _sqlite_triggers(
    "cdrs_counted_by_day_when_written", "cdrs_recounted_by_day_when_changed", DAYS
)
POSTGRES_DAY_TRIGGERS = _postgres_triggers("cdrs_count_days", DAYS)
ROLLUP_BACKFILL: tuple[str, ...] = (
    "INSERT INTO call_hours"
    " (number, hour, outcome, duration_class, calls, seconds, international)"
    f" SELECT number, started_us / {HOUR_US}, outcome, {_duration_class('billable_seconds')},"
    " COUNT(*), SUM(billable_seconds),"
    " SUM(CASE WHEN caller_kind = 'international' THEN 1 ELSE 0 END)"
    " FROM cdrs WHERE outcome <> 'in_progress' GROUP BY 1, 2, 3, 4",
    "INSERT INTO call_hour_regions (number, hour, province, city, calls)"
    f" SELECT number, started_us / {HOUR_US}, COALESCE(province, ''), COALESCE(city, ''),"
    " COUNT(*) FROM cdrs WHERE outcome <> 'in_progress' GROUP BY 1, 2, 3, 4",
)
"""Counts of the calls stored before the counting tables existed (run by the migration)."""
DAY_BACKFILL: tuple[str, ...] = (
    "INSERT INTO call_days (number, day, outcome, duration_class, calls, seconds, international)"
    " SELECT number, hour / 24, outcome, duration_class, SUM(calls), SUM(seconds),"
    " SUM(international) FROM call_hours GROUP BY 1, 2, 3, 4 HAVING SUM(calls) > 0",
    "INSERT INTO call_day_regions (number, day, province, city, calls)"
    " SELECT number, hour / 24, province, city, SUM(calls) FROM call_hour_regions"
    " GROUP BY 1, 2, 3, 4 HAVING SUM(calls) > 0",
)
"""Daily counts of the calls counted by hour before the daily tables existed: a UTC day is
24 whole UTC hours, so summing the hours counts every call once."""
