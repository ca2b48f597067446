"""Time-of-day rate periods ("off-peak 22:00-07:00"): when a period's rates are in force.

A window whose end is not after its start runs across midnight and belongs to the day it
started on: with days [fri], the window 22:00-07:00 is open from Friday 22:00 to Saturday
07:00, and not on Friday 02:00. A window is closed at its end (07:00:00 is outside
22:00-07:00). Only the answer instant is ever asked (see rating.pricing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


@dataclass(frozen=True, slots=True)
class DailyWindow:
    """[start, end) in seconds after midnight; end <= start runs across midnight.

    An end of 24:00 is 86400, so 00:00-24:00 is the whole day; so is an end of 23:59, the
    last minute of the day as a tariff writes it (00:00-23:59), as in routing plans.
    """

    start: int
    end: int


def parse_window(text: str) -> DailyWindow:
    """'22:00-07:00' -> DailyWindow; 24:00 or 23:59 may end a window at the end of the day.
    ValueError if not a window."""
    match = _WINDOW.match(text)
    if match is None:
        raise ValueError(text)
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    if start_h > 23 or start_m > 59 or end_m > 59 or end_h > 24 or (end_h == 24 and end_m):
        raise ValueError(text)
    start, end = start_h * 3600 + start_m * 60, end_h * 3600 + end_m * 60
    if (end_h, end_m) == (23, 59):
        end = 24 * 3600
    if start == end:
        raise ValueError(text)
    return DailyWindow(start, end)


@dataclass(frozen=True, slots=True)
class PeriodClock:
    """The windows and weekdays of one period, compiled for the pricing loop."""

    windows: tuple[DailyWindow, ...]
    weekdays: frozenset[int]  # 0 = Monday; empty means every day

    def is_open(self, local: datetime) -> bool:
        """Whether `local` (already in the tariff's time zone) falls in the period."""
        second = local.hour * 3600 + local.minute * 60 + local.second
        weekday = local.weekday()
        for window in self.windows:
            if window.end <= window.start:
                if second >= window.start:
                    started_on = weekday
                elif second < window.end:
                    started_on = (weekday - 1) % 7
                else:
                    continue
            elif window.start <= second < window.end:
                started_on = weekday
            else:
                continue
            if not self.weekdays or started_on in self.weekdays:
                return True
        return False
