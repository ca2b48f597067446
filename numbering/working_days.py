"""Periods counted in official working days (reviews take 1-3 of them).

"Working day" is the official calendar's, adjusted Saturdays included, never simply
Monday-Friday; the calendar is dialplan's, passed in like the clock. Its days are Beijing
dates, so an instant is read in CALENDAR_ZONE before its date is taken, whatever zone it
came in: the store hands instants back in UTC and the console's clock is UTC, and 07:00 on
a Friday in Beijing is still Thursday in UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dialplan.calendar import OfficialCalendar

CALENDAR_ZONE = ZoneInfo("Asia/Shanghai")
"""The zone of the official calendar's dates (the State Council's schedule)."""


def add_working_days(start: datetime, days: int, calendar: OfficialCalendar) -> datetime:
    """The same Beijing time on the `days`-th official working day after `start`'s Beijing
    date, in CALENDAR_ZONE.

    Submitted on a Friday 16:00 before a holiday week, one working day later is the first
    working day after the holiday, 16:00. Zero days is `start` itself.
    """
    moment = start.astimezone(CALENDAR_ZONE)
    left = days
    while left > 0:
        moment += timedelta(days=1)
        if calendar.day(moment.date()).workday:
            left -= 1
    return moment
