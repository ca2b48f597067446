"""What pricing reads of a call (RatedCall, filled by the router from a CDR) and what it
answers (Price)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, NamedTuple, cast

CallerKind = Literal["mobile", "fixed", "service", "international", "unknown"]
CALLER_KINDS: frozenset[str] = frozenset(
    ("mobile", "fixed", "service", "international", "unknown")
)  # the kinds dialplan.geo.locate() tells apart


@dataclass(frozen=True, slots=True)
class RatedCall:
    """One inbound call to a 400 number, as far as its price depends on it.

    talk_seconds counts the answered leg only: ring time is free. answering_area_code is the
    area code of the destination that answered (None if unknown), home_area_code the
    subscriber's, from the plan. included_seconds_left is what remains of the month's
    included minutes when the call is priced.
    """

    number: str
    caller_kind: CallerKind
    answered_at: datetime | None
    talk_seconds: int
    answering_area_code: str | None
    home_area_code: str | None
    included_seconds_left: int = 0

    def __post_init__(self) -> None:
        if self.caller_kind not in CALLER_KINDS:
            raise ValueError(f"unknown caller kind {self.caller_kind!r}")
        if self.answered_at is not None and self.answered_at.utcoffset() is None:
            raise ValueError("answered_at must be timezone-aware")
        if self.talk_seconds < 0 or self.included_seconds_left < 0:
            raise ValueError("talk_seconds and included_seconds_left cannot be negative")


def answered_call(
    number: str,
    caller_kind: str,
    answered_at: datetime,
    talk_seconds: int,
    *,
    answering_area_code: str | None,
    home_area_code: str | None,
    included_seconds_left: int = 0,
) -> RatedCall:
    """A call as pricing reads it, from what the router recorded: the caller kind as
    geolocation named it (ValueError for one pricing does not know), the talk time of the
    answered leg, and the area codes of the destination that answered and of the subscriber."""
    if caller_kind not in CALLER_KINDS:
        raise ValueError(f"unknown caller kind {caller_kind!r}")
    return RatedCall(
        number=number,
        caller_kind=cast(CallerKind, caller_kind),
        answered_at=answered_at,
        talk_seconds=talk_seconds,
        answering_area_code=answering_area_code,
        home_area_code=home_area_code,
        included_seconds_left=included_seconds_left,
    )


class Price(NamedTuple):
    """The price of one call. caller_share + callee_share == total, to the fen, always.

    A NamedTuple rather than a frozen dataclass: as immutable, and four times cheaper to
    build, which the batch pricing loop notices (bench/rating.py).

    billable_seconds is the answered time rounded up to what the subscriber's rate bills
    (61 s on a per-minute rate: 120); included_seconds_used is the part of it taken from
    the month's included minutes.
    """

    caller_share: Decimal
    callee_share: Decimal
    total: Decimal
    tariff_id: str
    rate_description: str
    billable_seconds: int
    included_seconds_used: int


class Shares(NamedTuple):
    """A call's money as its record keeps it: a Price without how it was reached."""

    caller_share: Decimal
    callee_share: Decimal
    total: Decimal
    tariff_id: str | None

    @classmethod
    def of_price(cls, priced: Price) -> Shares:
        return cls(priced.caller_share, priced.callee_share, priced.total, priced.tariff_id)
