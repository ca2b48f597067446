"""Monthly statements: what each 400 subscriber was charged and paid in a month, and how
their calls were spread over days and caller provinces.

Money comes from the ledger (rating.ledger), usage from the priced calls: the statement's
call_charges is what was debited, usage.callee_charges what the month's calls were priced
at; the two agree when every priced call was booked. Calls and entries belong to the day
and month they happened in, read in the tariff's time zone (a call answered 2026-11-30
23:58 is a November call, see rating.billing_time). The closing balance is the opening
balance plus every ledger amount of the month.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from rating.billing_time import billing_day
from rating.ledger import NUMBER_FEE_KINDS, LedgerEntry, LedgerKind
from rating.money import ZERO, to_fen

UNKNOWN_PROVINCE = "unknown"
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class CallLine:
    """One priced, answered call as a statement needs it."""

    number: str
    answered_at: datetime
    caller_province: str | None
    billable_seconds: int
    callee_share: Decimal
    caller_share: Decimal


@dataclass(slots=True)
class Usage:
    """Calls, billed time and charges of a group of calls."""

    calls: int = 0
    billable_seconds: int = 0
    callee_charges: Decimal = ZERO
    caller_charges: Decimal = ZERO

    @property
    def minutes(self) -> Decimal:
        """Billed minutes, to two places."""
        return to_fen(Decimal(self.billable_seconds) / 60)

    def add(self, line: CallLine) -> None:
        self.calls += 1
        self.billable_seconds += line.billable_seconds
        self.callee_charges += line.callee_share
        self.caller_charges += line.caller_share


@dataclass(slots=True)
class Statement:
    """One subscriber's month. Charges are positive amounts; adjustments are signed."""

    number: str
    month: str
    opening_balance: Decimal
    rent: Decimal = ZERO
    call_charges: Decimal = ZERO
    feature_fees: Decimal = ZERO
    minimum_topup: Decimal = ZERO
    number_fees: Decimal = ZERO
    """Opening, selection and keeping fees of the number (its lifecycle's)."""
    payments: Decimal = ZERO
    adjustments: Decimal = ZERO
    closing_balance: Decimal = ZERO
    usage: Usage = field(default_factory=Usage)
    by_day: dict[date, Usage] = field(default_factory=dict)
    by_province: dict[str, Usage] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _first_day(self.month)  # a month like '2026-11', or ValueError

    @property
    def charges(self) -> Decimal:
        fees = self.feature_fees + self.number_fees
        return self.rent + self.call_charges + fees + self.minimum_topup


def count_call(statement: Statement, line: CallLine, zone: ZoneInfo) -> None:
    """Count a priced call in the statement's usage, by day and by caller province, when it
    is the statement's number's and was answered in its month (others are left out). A
    statement keeps sums only, so calls can be counted as they are read and none kept (a
    busy number answers hundreds of thousands a month)."""
    if not _its_own(statement, line.number, line.answered_at, zone):
        return
    statement.usage.add(line)
    statement.by_day.setdefault(billing_day(line.answered_at, zone), Usage()).add(line)
    province = line.caller_province or UNKNOWN_PROVINCE
    statement.by_province.setdefault(province, Usage()).add(line)


def settle(statement: Statement, entries: Iterable[LedgerEntry], zone: ZoneInfo) -> None:
    """Book the entries of the statement's number and month (others are left out), its
    calls counted, and work out its closing balance: the opening balance plus every
    amount of the month."""
    for entry in entries:
        if _its_own(statement, entry.number, entry.at, zone):
            _book(statement, entry)
    statement.closing_balance = (
        statement.opening_balance - statement.charges + statement.payments + statement.adjustments
    )
    statement.by_day = dict(sorted(statement.by_day.items()))
    statement.by_province = dict(sorted(statement.by_province.items()))


def _its_own(statement: Statement, number: str, at: datetime, zone: ZoneInfo) -> bool:
    """Whether a call or entry of `number` at `at` is the statement's: its number's, in its
    month read in `zone`."""
    first_day = _first_day(statement.month)
    day = billing_day(at, zone)
    return number == statement.number and (day.year, day.month) == (
        first_day.year,
        first_day.month,
    )


def _book(statement: Statement, entry: LedgerEntry) -> None:
    kind, amount = entry.kind, entry.amount
    if kind is LedgerKind.CALL:
        statement.call_charges -= amount
    elif kind is LedgerKind.RENT:
        statement.rent -= amount
    elif kind is LedgerKind.FEATURE_FEE:
        statement.feature_fees -= amount
    elif kind is LedgerKind.MINIMUM_TOPUP:
        statement.minimum_topup -= amount
    elif kind in NUMBER_FEE_KINDS:
        statement.number_fees -= amount
    elif kind is LedgerKind.PAYMENT:
        statement.payments += amount
    else:
        statement.adjustments += amount


def _first_day(month: str) -> date:
    match = _MONTH.match(month)
    if match is None or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"{month!r} is not a month like '2026-11'")
    return date(int(match[1]), int(match[2]), 1)
