"""The ledger, balances and usage counters in SQL, kept in step by triggers.

The ledger is append-only: triggers refuse any UPDATE or DELETE of its rows. Every insert
moves the number's balance, and a call's charge moves the month's and the day's cost
counters, in the same transaction, so the counters the router reads before connecting a
call (a few keyed rows, never a scan) always agree with the ledger. Entries are unique by
(number, kind, ref): a replayed or repeated booking is ignored, and then moves nothing.
Money is stored as integer fen, so sums are exact in SQL.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from rating.ledger import LedgerEntry, LedgerKind

FEN_PER_YUAN = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ACCOUNT_MIGRATION: tuple[str, ...] = (
    """CREATE TABLE ledger (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        number TEXT NOT NULL,
        at TEXT NOT NULL,
        at_us INTEGER NOT NULL,       -- UTC microseconds, for ordering and ranges
        month TEXT NOT NULL,          -- local YYYY-MM the entry belongs to
        day TEXT NOT NULL,            -- local YYYY-MM-DD
        amount_fen INTEGER NOT NULL,  -- signed: debits negative
        kind TEXT NOT NULL,
        ref TEXT NOT NULL,
        note TEXT NOT NULL,
        included_seconds INTEGER NOT NULL DEFAULT 0,
        UNIQUE (number, kind, ref)
    )""",
    "CREATE INDEX ledger_by_number_time ON ledger (number, at_us)",
    """CREATE TABLE balances (
        number TEXT PRIMARY KEY,
        balance_fen INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE usage (
        number TEXT NOT NULL,
        period TEXT NOT NULL,         -- YYYY-MM or YYYY-MM-DD
        cost_fen INTEGER NOT NULL DEFAULT 0,
        calls INTEGER NOT NULL DEFAULT 0,
        included_used INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (number, period)
    ) WITHOUT ROWID""",
    """CREATE TRIGGER ledger_rows_are_never_changed BEFORE UPDATE ON ledger
       BEGIN SELECT RAISE(ABORT, 'ledger rows are never changed'); END""",
    """CREATE TRIGGER ledger_rows_are_never_deleted BEFORE DELETE ON ledger
       BEGIN SELECT RAISE(ABORT, 'ledger rows are never deleted'); END""",
    """CREATE TRIGGER ledger_moves_the_balance AFTER INSERT ON ledger BEGIN
         INSERT INTO balances (number, balance_fen) VALUES (NEW.number, NEW.amount_fen)
         ON CONFLICT (number) DO UPDATE SET balance_fen = balance_fen + NEW.amount_fen;
       END""",
    """CREATE TRIGGER call_charges_move_the_cost_counters AFTER INSERT ON ledger
       WHEN NEW.kind = 'call' BEGIN
         INSERT INTO usage (number, period, cost_fen, included_used)
         VALUES (NEW.number, NEW.month, -NEW.amount_fen, NEW.included_seconds)
         ON CONFLICT (number, period) DO UPDATE SET
           cost_fen = cost_fen - NEW.amount_fen,
           included_used = included_used + NEW.included_seconds;
         INSERT INTO usage (number, period, cost_fen) VALUES (NEW.number, NEW.day, -NEW.amount_fen)
         ON CONFLICT (number, period) DO UPDATE SET cost_fen = cost_fen - NEW.amount_fen;
       END""",
)

INSERT_LEDGER = (
    "INSERT INTO ledger (number, at, at_us, month, day, amount_fen, kind, ref, note, "
    "included_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (number, kind, ref) DO NOTHING"
)

USAGE_SNAPSHOT = """
SELECT m.cost_fen AS month_cost_fen, m.calls AS month_calls, m.included_used AS included_used,
       d.cost_fen AS day_cost_fen, b.balance_fen AS balance_fen
FROM (SELECT 1) AS one
LEFT JOIN usage AS m ON m.number = ? AND m.period = ?
LEFT JOIN usage AS d ON d.number = ? AND d.period = ?
LEFT JOIN balances AS b ON b.number = ?
"""

# One statement: the count only moves while it is below the cap, whoever else is counting.
RESERVE_CALL = (
    "INSERT INTO usage (number, period, calls) VALUES (?, ?, 1) "
    "ON CONFLICT (number, period) DO UPDATE SET calls = calls + 1 WHERE calls < ?"
)
INCLUDED_SECONDS_BOOKED = (
    "SELECT ref, included_seconds FROM ledger "
    "WHERE number = ? AND kind = ? AND included_seconds > 0"
)
RELEASE_CALL = "UPDATE usage SET calls = calls - 1 WHERE number = ? AND period = ? AND calls > 0"


def fen_of(amount: Decimal) -> int:
    fen = amount * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise ValueError(f"{amount} is not exact to the fen")
    return int(fen)


def yuan_of(fen: int) -> Decimal:
    return (Decimal(fen) / FEN_PER_YUAN).quantize(Decimal("0.01"))


@dataclass(frozen=True, slots=True)
class UsageSnapshot:
    """Counters of one number as stored: money in yuan; balance None before any entry."""

    month_cost: Decimal
    month_calls: int
    included_used: int
    day_cost: Decimal
    balance: Decimal | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> UsageSnapshot:
        balance = row["balance_fen"]
        return cls(
            month_cost=yuan_of(row["month_cost_fen"] or 0),
            month_calls=row["month_calls"] or 0,
            included_used=row["included_used"] or 0,
            day_cost=yuan_of(row["day_cost_fen"] or 0),
            balance=None if balance is None else yuan_of(balance),
        )


def ledger_params(entry: LedgerEntry, included_seconds: int, zone: ZoneInfo) -> tuple[object, ...]:
    local = entry.at.astimezone(zone)
    return (
        entry.number,
        entry.at.isoformat(),
        _epoch_us(entry.at),
        f"{local:%Y-%m}",
        f"{local:%Y-%m-%d}",
        fen_of(entry.amount),
        entry.kind.value,
        entry.ref,
        entry.note,
        included_seconds,
    )


def entry_from_row(row: sqlite3.Row) -> LedgerEntry:
    return LedgerEntry(
        row["number"],
        datetime.fromisoformat(row["at"]),
        yuan_of(row["amount_fen"]),
        LedgerKind(row["kind"]),
        row["ref"],
        row["note"],
    )


def _epoch_us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)
