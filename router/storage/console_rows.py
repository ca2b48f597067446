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
    entry_id: str = ""
    """The store's id of an entry read back, where the next page of the log follows on;
    an entry to write has none yet (the store gives it one)."""


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
    """Calls that started in one UTC hour: all of them, the answered ones (and their talk
    time), the unanswered ones (call_counts.UNANSWERED_OUTCOMES) and the international ones."""

    hour_start: datetime
    calls: int
    answered: int
    unanswered: int
    talk_seconds: int
    international: int


@dataclass(frozen=True, slots=True)
class CallMix:
    """How the calls of a span ended (outcome: calls), and the answered ones by talk-time
    class (call_counts.DURATION_EDGES)."""

    outcomes: dict[str, int]
    durations: list[int]


@dataclass(frozen=True, slots=True)
class RegionCount:
    province: str | None
    city: str | None
    calls: int


@dataclass(frozen=True, slots=True)
class SurveyScores:
    """The satisfaction scores one number's callers gave: how many, and their sum."""

    number: str
    scored: int
    score_sum: int

    @property
    def average(self) -> float:
        return self.score_sum / self.scored


@dataclass(frozen=True, slots=True)
class MenuPathCount:
    """How many calls took one way through the IVR menus (`main:2>support:1`)."""

    path: str
    calls: int
