"""The rows of the management console's tables as the store hands them over."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class UserRow:
    name: str
    role: str
    account: str | None
    password_hash: str
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    account: str | None
    action: str
    target: str
    detail: str


@dataclass(frozen=True, slots=True)
class PlanVersion:
    number: str
    version: int
    saved_at: datetime
    saved_by: str
    source: str
    note: str


@dataclass(frozen=True, slots=True)
class HourBucket:
    """Calls that started in one UTC hour with one outcome."""

    hour_start: datetime
    outcome: str
    calls: int
    billable_seconds: int
    international: int


@dataclass(frozen=True, slots=True)
class RegionCount:
    province: str | None
    city: str | None
    calls: int
