"""The hourly call counts (tables call_hours, call_hour_regions) kept by triggers.

Every CDR that is not in progress counts once in the hour it started, with its outcome,
talk-time class, caller region and whether the caller was international. A CDR written or
changed (finished, or completed later from AMI) moves its call between counts in the same
transaction; reports then read hundreds of rows instead of scanning a month of calls. The
trigger bodies are written once here; each engine wraps them in its own trigger syntax.
"""

from __future__ import annotations

HOUR_US = 3_600_000_000
DURATION_EDGES = (30, 60, 180, 300, 600)
"""Talk-time classes of the reports, in seconds: [0, 30), [30, 60), ..., [600, inf)."""


def _duration_class(seconds: str) -> str:
    classes = " ".join(
        f"WHEN {seconds} < {edge} THEN {index}" for index, edge in enumerate(DURATION_EDGES)
    )
    return f"CASE {classes} ELSE {len(DURATION_EDGES)} END"


def _count_row(row: str, sign: str) -> list[str]:
    """Add (sign '+') or take away (sign '-') the call of a trigger's row (NEW or OLD) in
    the hourly counts; a call still in progress is in no count."""
    hour = f"{row}.started_us / {HOUR_US}"
    international = f"CASE WHEN {row}.caller_kind = 'international' THEN 1 ELSE 0 END"
    counted = f"{row}.outcome <> 'in_progress'"
    return [
        "INSERT INTO call_hours"
        " (number, hour, outcome, duration_class, calls, seconds, international)"
        f" SELECT {row}.number, {hour}, {row}.outcome,"
        f" {_duration_class(row + '.billable_seconds')}, 1, {row}.billable_seconds,"
        f" {international} WHERE {counted}"
        " ON CONFLICT (number, hour, outcome, duration_class) DO UPDATE SET"
        f" calls = call_hours.calls {sign} 1,"
        f" seconds = call_hours.seconds {sign} excluded.seconds,"
        f" international = call_hours.international {sign} excluded.international",
        "INSERT INTO call_hour_regions (number, hour, province, city, calls)"
        f" SELECT {row}.number, {hour}, COALESCE({row}.province, ''),"
        f" COALESCE({row}.city, ''), 1 WHERE {counted}"
        " ON CONFLICT (number, hour, province, city) DO UPDATE SET"
        f" calls = call_hour_regions.calls {sign} 1",
    ]


_CHANGED = (
    "OLD.outcome IS DISTINCT FROM NEW.outcome"
    " OR OLD.billable_seconds IS DISTINCT FROM NEW.billable_seconds"
    " OR OLD.caller_kind IS DISTINCT FROM NEW.caller_kind"
    " OR OLD.province IS DISTINCT FROM NEW.province OR OLD.city IS DISTINCT FROM NEW.city"
    " OR OLD.started_us IS DISTINCT FROM NEW.started_us"
)
"""A change that moves a call between counts (a CDR is finished, or completed later)."""

SQLITE_TRIGGERS: tuple[str, ...] = (
    "CREATE TRIGGER cdrs_counted_when_written AFTER INSERT ON cdrs BEGIN "
    + "; ".join(_count_row("NEW", "+"))
    + "; END",
    f"CREATE TRIGGER cdrs_recounted_when_changed AFTER UPDATE ON cdrs WHEN {_CHANGED} BEGIN "
    + "; ".join([*_count_row("OLD", "-"), *_count_row("NEW", "+")])
    + "; END",
)
POSTGRES_TRIGGERS: tuple[str, ...] = (
    "CREATE FUNCTION cdrs_count_hours() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    f" IF TG_OP = 'UPDATE' THEN IF NOT ({_CHANGED}) THEN RETURN NULL; END IF; "
    + "; ".join(_count_row("OLD", "-"))
    + "; END IF; "
    + "; ".join(_count_row("NEW", "+"))
    + "; RETURN NULL; END $$",
    "CREATE TRIGGER cdrs_count_hours AFTER INSERT OR UPDATE ON cdrs"
    " FOR EACH ROW EXECUTE FUNCTION cdrs_count_hours()",
)
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
