"""Rows of the store's tables, for every engine: the column lists, derived from the CDR and
Leg models once, and the mapping between records and rows both ways.

Values go to the database as the engines share them: times as ISO-8601 text with their
offset (beside UTC microseconds for ordering), CDR money as exact decimal text (SQLite keeps
the text, PostgreSQL reads it into numeric), ledger money as integer fen, enums by value.
What comes back is read through the same names, so a column added to a model is a column
of the table without a second list to keep in step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from rating.ledger import LedgerEntry, LedgerKind
from router.storage.cdr import (
    CDR,
    FEN,
    FINISH_FIELDS,
    AddLeg,
    CallerRegion,
    CdrOp,
    FinishCall,
    Leg,
    PostLedger,
    StartCall,
    decode_value,
    encode_value,
)

Row = Mapping[str, Any]
"""A result row by column name: sqlite3.Row and asyncpg.Record both are."""

REGION_COLUMNS = tuple(field.name for field in dataclasses.fields(CallerRegion))
STORED_ONLY = ("started_us", "router")
"""CDR columns that are not fields of the record: the start in UTC microseconds (orders and
filters across offsets) and the router that started the call."""


def _cdr_columns() -> tuple[str, ...]:
    columns: list[str] = []
    for field in dataclasses.fields(CDR):
        if field.name == "region":
            columns += REGION_COLUMNS
        elif field.name == "started_at":
            columns += ["started_at", "started_us"]
        elif field.name != "legs":
            columns.append(field.name)
    return (*columns, "router")


CDR_COLUMNS = _cdr_columns()
LEG_COLUMNS = ("call_id", *(field.name for field in dataclasses.fields(Leg)))
LEDGER_COLUMNS = (
    "number",
    "at",
    "at_us",
    "month",
    "day",
    "amount_fen",
    "kind",
    "ref",
    "note",
    "included_seconds",
)
FINISH_COLUMNS = tuple(sorted(FINISH_FIELDS))

_CDR_FIELDS = tuple(name for name in CDR_COLUMNS if name not in (*REGION_COLUMNS, *STORED_ONLY))
_LEG_FIELDS = LEG_COLUMNS[1:]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
FEN_PER_YUAN = 100


def epoch_us(moment: datetime) -> int:
    """A moment as UTC microseconds since 1970: how the store orders and filters times."""
    if moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, got {moment!r}")
    return (moment - _EPOCH) // _MICROSECOND


def from_epoch_us(value: int) -> datetime:
    """The inverse of `epoch_us`, in UTC."""
    return _EPOCH + value * _MICROSECOND


def fen_of(amount: Decimal) -> int:
    fen = amount * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise ValueError(f"{amount} is not exact to the fen")
    return int(fen)


def yuan_of(fen: int) -> Decimal:
    return (Decimal(fen) / FEN_PER_YUAN).quantize(FEN)


# --- records to rows -----------------------------------------------------------------------
# The builders below encode each column by the type its record already checked (CDR, Leg
# and FinishCall refuse naive times, inexact money and plain strings for enums when they are
# made), instead of asking `encode_value` and `getattr` column by column: they give the same
# values at about a third of the cost, and a call writes four rows. tests/test_store_rows.py
# holds them to the column lists.


def _time_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _money_text(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount.quantize(FEN))


def cdr_params(cdr: CDR, router: str) -> tuple[Any, ...]:
    """The values of `CDR_COLUMNS`, in that order."""
    region = cdr.region
    started = cdr.started_at
    return (
        cdr.call_id,
        cdr.number,
        cdr.caller_raw,
        cdr.caller,
        cdr.caller_kind,
        started.isoformat(),
        epoch_us(started),
        region.province,
        region.city,
        region.area_code,
        _time_text(cdr.answered_at),
        _time_text(cdr.ended_at),
        cdr.billable_seconds,
        cdr.outcome.value,
        cdr.rule,
        _money_text(cdr.caller_share),
        _money_text(cdr.callee_share),
        _money_text(cdr.total),
        cdr.tariff_id,
        cdr.note,
        cdr.menu_path,
        cdr.menu_digits,
        cdr.language,
        cdr.recording_path,
        _time_text(cdr.recording_purged_at),
        cdr.survey_score,
        router,
    )


def leg_params(call_id: str, leg: Leg) -> tuple[Any, ...]:
    """The values of `LEG_COLUMNS`, in that order."""
    return (
        call_id,
        leg.seq,
        leg.destination,
        leg.dial_status,
        leg.started_at.isoformat(),
        leg.ring_seconds,
        leg.talk_seconds,
        leg.forward_reason.value,
    )


def finish_columns(values: Mapping[str, Any]) -> tuple[str, ...]:
    """The columns a finish sets, in `FINISH_COLUMNS` order: they name its UPDATE."""
    return tuple(name for name in FINISH_COLUMNS if name in values)


def finish_params(
    call_id: str, values: Mapping[str, Any], columns: Sequence[str]
) -> tuple[Any, ...]:
    """The values of `columns` (`finish_columns(values)`), then the call id."""
    return (*(encode_value(values[name]) for name in columns), call_id)


def ledger_params(entry: LedgerEntry, included_seconds: int, zone: ZoneInfo) -> tuple[Any, ...]:
    """The values of `LEDGER_COLUMNS`; month and day are the entry's, local to `zone`."""
    local = entry.at.astimezone(zone)
    return (
        entry.number,
        entry.at.isoformat(),
        epoch_us(entry.at),
        f"{local:%Y-%m}",
        f"{local:%Y-%m-%d}",
        fen_of(entry.amount),
        entry.kind.value,
        entry.ref,
        entry.note,
        included_seconds,
    )


def lock_order(ledger_row: Sequence[Any]) -> tuple[str, int]:
    """Ledger rows by number, then time (at_us): the order their triggers lock the balance
    and counter rows in, so two routers' batches never wait for each other in a circle."""
    return ledger_row[0], ledger_row[2]


@dataclass(frozen=True, slots=True)
class FinishRun:
    """Finishes next to each other in a batch that set the same columns: one UPDATE of
    those columns only. One UPDATE for every finish, naming every finish column with two
    parameters and a CASE each (kept as it was unless the op set it), made a minimal
    call's writes a quarter more work (docs/benchmarks.md): binding and evaluating fifteen
    columns to change the six a plain call sets."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class BatchRows:
    """The rows one `apply` writes: the starts, legs and finishes in op order (finishes in
    runs of the same columns), then the ledger entries in lock order."""

    cdrs: list[tuple[Any, ...]]
    legs: list[tuple[Any, ...]]
    finishes: list[FinishRun]
    ledger: list[tuple[Any, ...]]


def batch_rows(ops: Sequence[CdrOp], zone: ZoneInfo, router: str) -> BatchRows:
    """Every call adds about four ops, so this loop sorts them with a plain isinstance chain
    (legs and finishes first, the commonest) rather than a generator per op."""
    batch = BatchRows([], [], [], [])
    for op in ops:
        if isinstance(op, AddLeg):
            batch.legs.append(leg_params(op.call_id, op.leg))
        elif isinstance(op, FinishCall):
            columns = finish_columns(op.fields)
            if not columns:  # sets nothing: no UPDATE to run
                continue
            if not batch.finishes or batch.finishes[-1].columns != columns:
                batch.finishes.append(FinishRun(columns, []))
            batch.finishes[-1].rows.append(finish_params(op.call_id, op.fields, columns))
        elif isinstance(op, StartCall):
            cdr = op.cdr
            batch.cdrs.append(cdr_params(cdr, router))
            batch.legs.extend(leg_params(cdr.call_id, leg) for leg in cdr.legs)
        elif isinstance(op, PostLedger):
            batch.ledger.append(ledger_params(op.entry, op.included_seconds, zone))
    batch.ledger.sort(key=lock_order)
    return batch


# --- rows to records -----------------------------------------------------------------------


def cdr_from_row(row: Row, legs: tuple[Leg, ...]) -> CDR:
    values = {name: decode_value(name, row[name]) for name in _CDR_FIELDS}
    region = CallerRegion(*(row[name] for name in REGION_COLUMNS))
    return CDR(**values, region=region, legs=legs)


def leg_from_row(row: Row, prefix: str = "") -> Leg:
    """A leg from its columns, named `prefix` + column when read joined to its call."""
    return Leg(**{name: decode_value(name, row[prefix + name]) for name in _LEG_FIELDS})


def entry_from_row(row: Row) -> LedgerEntry:
    return LedgerEntry(
        row["number"],
        datetime.fromisoformat(row["at"]),
        yuan_of(row["amount_fen"]),
        LedgerKind(row["kind"]),
        row["ref"],
        row["note"],
    )


@dataclass(frozen=True, slots=True)
class UsageSnapshot:
    """Counters of one number as stored: money in yuan; balance None before any entry."""

    month_cost: Decimal
    month_calls: int
    included_used: int
    day_cost: Decimal
    balance: Decimal | None

    @classmethod
    def from_row(cls, row: Row) -> UsageSnapshot:
        balance = row["balance_fen"]
        return cls(
            month_cost=yuan_of(row["month_cost_fen"] or 0),
            month_calls=row["month_calls"] or 0,
            included_used=row["included_used"] or 0,
            day_cost=yuan_of(row["day_cost_fen"] or 0),
            balance=None if balance is None else yuan_of(balance),
        )


@dataclass(frozen=True, slots=True)
class Holding:
    """One holding of a number, from the instant it came back to the pool (None: from its
    first entry) to the next such instant: its holder, once it ended, and its balance."""

    since: datetime | None
    holder: str | None
    balance: Decimal
    provider: str | None = None
    """The holder's service provider, as the subscribers' register names it (None: the
    holder is not registered there, or not recorded)."""

    @classmethod
    def from_row(cls, row: Row) -> Holding:
        since = row["since_us"]
        return cls(
            since=from_epoch_us(since) if since else None,
            holder=row["holder"],
            balance=yuan_of(row["balance_fen"]),
            provider=row["provider"],
        )


@dataclass(frozen=True, slots=True)
class HeldBefore:
    """A holding a subscriber left: the number, from when (None: its first) until it came
    back to the pool, and the balance it left there."""

    number: str
    since: datetime | None
    until: datetime
    balance: Decimal

    @classmethod
    def from_row(cls, row: Row) -> HeldBefore:
        since = row["since_us"]
        return cls(
            number=row["number"],
            since=from_epoch_us(since) if since else None,
            until=from_epoch_us(row["until_us"]),
            balance=yuan_of(row["balance_fen"]),
        )


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Another running router holding a name: who, and when its lease runs out unrenewed."""

    holder: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PinTally:
    """A caller's failed PIN calls to one number within the window, as just counted, and
    until when the caller is refused before the prompt (None: not refused)."""

    failures: int
    blocked_until: datetime | None


@dataclass(frozen=True, slots=True)
class Recorded:
    """One call's recording not yet purged, as its CDR names it."""

    call_id: str
    number: str
    started_at: datetime
    path: str
