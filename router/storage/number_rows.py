"""The rows of the numbers' tables as the store hands them over: a number's lifecycle record
(numbering.lifecycle.NumberRecord, read and written column by column), its history, and the
service providers and subscribers who hold numbers.

Times are UTC microseconds in the tables and aware datetimes here; money is integer fen in
the tables and Decimal yuan here; real-name ID numbers are kept masked, never in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from numbering.lifecycle import Change, NumberRecord, Status
from router.storage.rows import Row, epoch_us, fen_of, from_epoch_us, yuan_of

RECORD_COLUMNS = (
    "number",
    "grade",
    "selection_fee_fen",
    "status",
    "since_us",
    "until_us",
    "provider",
    "subscriber",
    "last_reserver",
    "last_reservation_end_us",
    "reservation_since_us",
    "reservation_until_us",
    "suspended_since_us",
    "suspended_before_us",
    "keeping_months_booked",
    "version",
)
"""The columns that hold a NumberRecord, in its fields' order."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One transition as the history keeps it: who, when, why, from and to, fees booked."""

    number: str
    at: datetime
    actor: str
    from_status: str
    to_status: str
    reason: str
    fees: str
    """What it booked and on which account, e.g. 'opening_fee 600.00 to 4006001234'."""


@dataclass(frozen=True, slots=True)
class PartyRow:
    """A service provider or a subscriber company, with the minimal real-name material."""

    name: str
    full_name: str
    licence: str
    legal_representative: str
    id_masked: str
    created_at: datetime
    provider: str | None = None
    """The subscriber's service provider; None for a provider."""
    low_balance_warning: Decimal | None = None
    """A provider's low-balance warning threshold; None for a subscriber."""


class NameTaken(Exception):
    """A provider or subscriber of that name exists already: nothing was written."""


def _us(moment: datetime | None) -> int | None:
    return None if moment is None else epoch_us(moment)


def _at(value: int | None) -> datetime | None:
    return None if value is None else from_epoch_us(value)


def _yuan(fen: int | None) -> Decimal | None:
    return None if fen is None else yuan_of(fen)


def record_params(record: NumberRecord) -> tuple[Any, ...]:
    """The record's values in RECORD_COLUMNS order."""
    return (
        record.number,
        record.grade,
        fen_of(record.selection_fee),
        record.status.value,
        _us(record.since),
        _us(record.until),
        record.provider,
        record.subscriber,
        record.last_reserver,
        _us(record.last_reservation_end),
        _us(record.reservation_since),
        _us(record.reservation_until),
        _us(record.suspended_since),
        record.suspended_before // timedelta(microseconds=1),
        record.keeping_months_booked,
        record.version,
    )


def record_from_row(row: Row) -> NumberRecord:
    return NumberRecord(
        number=row["number"],
        grade=row["grade"],
        selection_fee=yuan_of(row["selection_fee_fen"]),
        status=Status(row["status"]),
        since=_at(row["since_us"]),
        until=_at(row["until_us"]),
        provider=row["provider"],
        subscriber=row["subscriber"],
        last_reserver=row["last_reserver"],
        last_reservation_end=_at(row["last_reservation_end_us"]),
        reservation_since=_at(row["reservation_since_us"]),
        reservation_until=_at(row["reservation_until_us"]),
        suspended_since=_at(row["suspended_since_us"]),
        suspended_before=timedelta(microseconds=row["suspended_before_us"]),
        keeping_months_booked=row["keeping_months_booked"],
        version=row["version"],
    )


def history_params(change: Change, fees: str, fee_fen: int) -> tuple[Any, ...]:
    return (
        change.after.number,
        epoch_us(change.at),
        change.actor,
        change.before.status.value,
        change.after.status.value,
        change.reason,
        fees,
        fee_fen,
    )


def history_from_row(row: Row) -> HistoryEntry:
    return HistoryEntry(
        row["number"],
        from_epoch_us(row["at_us"]),
        row["actor"],
        row["from_status"],
        row["to_status"],
        row["reason"],
        row["fees"],
    )


def party_from_row(row: Row) -> PartyRow:
    return PartyRow(
        name=row["name"],
        full_name=row["full_name"],
        licence=row["licence"],
        legal_representative=row["legal_representative"],
        id_masked=row["id_masked"],
        created_at=from_epoch_us(row["created_us"]),
        provider=row["provider"],
        low_balance_warning=_yuan(row["low_balance_warning_fen"]),
    )
