"""Periods counted in official working days (reviews take 1-3 of them).

"Working day" is the official calendar's, adjusted Saturdays included, never simply
Monday-Friday; the calendar is dialplan's, passed in like the clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dialplan.calendar import OfficialCalendar


def add_working_days(start: datetime, days: int, calendar: OfficialCalendar) -> datetime:
    """The same local time on the `days`-th official working day after `start`'s date.

    Submitted on a Friday 16:00 before a holiday week, one working day later is the first
    working day after the holiday, 16:00. Zero days is `start` itself.
    """
    moment = start
    left = days
    while left > 0:
        moment += timedelta(days=1)
        if calendar.day(moment.date()).workday:
            left -= 1
    return moment
