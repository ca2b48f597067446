"""Which day and month a call or a ledger entry belongs to, in the billing time zone.

The zone is router.yaml's `timezone` (Asia/Shanghai by default), which the tariffs carry.
A call belongs to the day and month it was answered in, however
long it lasts: a call answered 2026-11-30 23:58 is a November call.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo


def billing_day(instant: datetime, zone: ZoneInfo) -> date:
    if instant.utcoffset() is None:
        raise ValueError("billing needs timezone-aware times")
    return instant.astimezone(zone).date()


def billing_month(instant: datetime, zone: ZoneInfo) -> str:
    """'2026-11'."""
    return f"{billing_day(instant, zone):%Y-%m}"
