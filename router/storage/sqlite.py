"""The store on one SQLite file, the embedded default (router.storage.protocol's `Store`).

`SQLiteStore` keeps one aiosqlite connection on a real file in WAL mode. Each `apply` is
one `BEGIN IMMEDIATE` transaction of three `executemany` statements: the batch's starts,
then its legs, then its finishes, each in submission order. That has the effect of going
op by op, because starts and legs insert first-write-wins and a finish only updates a call
whose start came before it; and a batch costs a handful of trips to the database thread,
not one per op. Before each use the store checks the file is still the one it opened, so a database
moved or deleted under a running router is noticed instead of written into a file nobody
can see any more.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiosqlite

from rating.ledger import LedgerEntry, LedgerKind
from router.storage.account_sql import (
    ACCOUNT_MIGRATION,
    INCLUDED_SECONDS_BOOKED,
    INSERT_LEDGER,
    RELEASE_CALL,
    RESERVE_CALL,
    USAGE_SNAPSHOT,
    UsageSnapshot,
    entry_from_row,
    ledger_params,
)
from router.storage.cdr import (
    CDR,
    FEN,
    FINISH_FIELDS,
    AddLeg,
    CallerRegion,
    CdrOp,
    FinishCall,
    Leg,
    Outcome,
    PostLedger,
    StartCall,
    decode_value,
    encode_value,
)
from router.storage.protocol import INTERRUPTED_NOTE, StoreUnavailable

SHANGHAI = ZoneInfo("Asia/Shanghai")


_CDR_COLUMNS = (
    "call_id",
    "number",
    "caller_raw",
    "caller",
    "caller_kind",
    "province",
    "city",
    "area_code",
    "started_at",
    "started_us",
    "answered_at",
    "ended_at",
    "billable_seconds",
    "outcome",
    "rule",
    "caller_share",
    "callee_share",
    "total",
    "tariff_id",
    "note",
)
_LEG_COLUMNS = (
    "call_id",
    "seq",
    "destination",
    "dial_status",
    "started_at",
    "ring_seconds",
    "talk_seconds",
    "forward_reason",
)


def _insert(table: str, columns: Sequence[str], conflict: str) -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT {conflict}"


_INSERT_CDR = _insert("cdrs", _CDR_COLUMNS, "(call_id) DO NOTHING")
_INSERT_LEG = _insert("legs", _LEG_COLUMNS, "(call_id, seq) DO NOTHING")
_FINISH_COLUMNS = sorted(FINISH_FIELDS)
# One statement for every finish: each column is set only when its flag says the op sets it.
_FINISH_CDR = (
    "UPDATE cdrs SET "
    + ", ".join(f"{name} = CASE WHEN ? THEN ? ELSE {name} END" for name in _FINISH_COLUMNS)
    + " WHERE call_id = ?"
)

# Each entry migrates the schema one version up; the database records how far it got.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE cdrs (
            call_id TEXT PRIMARY KEY,
            number TEXT NOT NULL,
            caller_raw TEXT NOT NULL,
            caller TEXT,
            caller_kind TEXT NOT NULL,
            province TEXT,
            city TEXT,
            area_code TEXT,
            started_at TEXT NOT NULL,
            started_us INTEGER NOT NULL,  -- UTC microseconds: orders and filters across offsets
            answered_at TEXT,
            ended_at TEXT,
            billable_seconds INTEGER NOT NULL DEFAULT 0,
            outcome TEXT NOT NULL,
            rule TEXT,
            caller_share TEXT,  -- yuan as exact decimal text, e.g. '0.30'
            callee_share TEXT,
            total TEXT,
            tariff_id TEXT,
            note TEXT
        )""",
        """CREATE TABLE legs (
            call_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            destination TEXT NOT NULL,
            dial_status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ring_seconds INTEGER NOT NULL,
            talk_seconds INTEGER NOT NULL,
            forward_reason TEXT NOT NULL,
            PRIMARY KEY (call_id, seq)
        ) WITHOUT ROWID""",
        "CREATE INDEX cdrs_by_number_start ON cdrs (number, started_us)",
        "CREATE INDEX cdrs_by_caller ON cdrs (caller, started_us)",
        "CREATE INDEX cdrs_by_caller_raw ON cdrs (caller_raw, started_us)",
        "CREATE INDEX cdrs_by_start ON cdrs (started_us)",
        "CREATE INDEX cdrs_in_progress ON cdrs (started_us) WHERE outcome = 'in_progress'",
    ),
    ACCOUNT_MIGRATION,
)
SCHEMA_VERSION = len(_MIGRATIONS)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _epoch_us(moment: datetime) -> int:
    if moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, got {moment!r}")
    return (moment - _EPOCH) // _MICROSECOND


def _statements_by_kind(ops: Sequence[CdrOp], zone: ZoneInfo) -> dict[str, list[tuple[Any, ...]]]:
    """Parameters of the batch's starts, legs, finishes and ledger entries, in that order,
    each in op order.

    Every call adds about four ops, so this loop sorts them with a plain isinstance chain
    (legs and finishes first, the commonest) rather than a generator per op.
    """
    starts: list[tuple[Any, ...]] = []
    legs: list[tuple[Any, ...]] = []
    finishes: list[tuple[Any, ...]] = []
    ledger: list[tuple[Any, ...]] = []
    for op in ops:
        if isinstance(op, AddLeg):
            legs.append(_leg_params(op.call_id, op.leg))
        elif isinstance(op, FinishCall):
            finishes.append(_finish_params(op.call_id, op.fields))
        elif isinstance(op, StartCall):
            cdr = op.cdr
            starts.append(_cdr_params(cdr))
            legs.extend(_leg_params(cdr.call_id, leg) for leg in cdr.legs)
        elif isinstance(op, PostLedger):
            ledger.append(ledger_params(op.entry, op.included_seconds, zone))
    return {_INSERT_CDR: starts, _INSERT_LEG: legs, _FINISH_CDR: finishes, INSERT_LEDGER: ledger}


# The parameter builders below encode each column by the type its record already checked
# (CDR, Leg and FinishCall refuse naive times, inexact money and plain strings for enums
# when they are made), instead of asking `encode_value` and `getattr` column by column:
# they give the same values at about a third of the cost, and a call writes four rows.


def _time_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _money_text(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount.quantize(FEN))


def _cdr_params(cdr: CDR) -> tuple[Any, ...]:
    """The values of `_CDR_COLUMNS`, in that order."""
    region = cdr.region
    started = cdr.started_at
    return (
        cdr.call_id,
        cdr.number,
        cdr.caller_raw,
        cdr.caller,
        cdr.caller_kind,
        region.province,
        region.city,
        region.area_code,
        started.isoformat(),
        _epoch_us(started),
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
    )


def _leg_params(call_id: str, leg: Leg) -> tuple[Any, ...]:
    """The values of `_LEG_COLUMNS`, in that order."""
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


def _finish_params(call_id: str, values: Mapping[str, Any]) -> tuple[Any, ...]:
    """`_FINISH_CDR`'s (sets it?, value) pair per column of `_FINISH_COLUMNS`, then the id."""
    params: list[Any] = []
    for name in _FINISH_COLUMNS:
        if name in values:
            params += (True, encode_value(values[name]))
        else:
            params += (False, None)
    params.append(call_id)
    return tuple(params)


def _cdr_from_row(row: sqlite3.Row, legs: tuple[Leg, ...]) -> CDR:
    names = (name for name in _CDR_COLUMNS if name not in ("province", "city", "area_code"))
    values = {name: decode_value(name, row[name]) for name in names if name != "started_us"}
    region = CallerRegion(row["province"], row["city"], row["area_code"])
    return CDR(**values, region=region, legs=legs)


def _leg_from_row(row: sqlite3.Row) -> Leg:
    return Leg(**{name: decode_value(name, row[f"leg_{name}"]) for name in _LEG_COLUMNS[1:]})


_LEG_SELECT = ", ".join(f"l.{name} AS leg_{name}" for name in _LEG_COLUMNS[1:])


class SQLiteStore:
    """CDR store on one SQLite file (WAL, synchronous=NORMAL), through aiosqlite.

    The file is created on the first successful open only; if it disappears later the
    store stays unavailable until it is back, rather than starting an empty one.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout_ms: int = 5000,
        zone: ZoneInfo = SHANGHAI,
    ) -> None:
        self.path = Path(path).absolute()
        self.zone = zone
        self._busy_timeout_ms = busy_timeout_ms
        self._db: aiosqlite.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._may_create = True
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        async with self._lock:
            await self._connection()

    async def close(self) -> None:
        async with self._lock:
            await self._disconnect()

    async def apply(self, ops: Sequence[CdrOp]) -> None:
        # Encoding a big batch takes a while: done in a worker so the call path keeps running.
        by_statement = await asyncio.to_thread(_statements_by_kind, ops, self.zone)
        async with self._transaction() as db:
            for sql, rows in by_statement.items():
                if rows:
                    await db.executemany(sql, rows)

    async def close_interrupted(self, now: datetime) -> int:
        async with self._transaction() as db:
            stranded = await self._select(
                db, f"outcome = '{Outcome.IN_PROGRESS}' AND started_us <= ?", [_epoch_us(now)]
            )
            await db.executemany(
                "UPDATE cdrs SET outcome = ?, ended_at = ?, note = ? "
                "WHERE call_id = ? AND outcome = ?",
                [
                    (
                        Outcome.INTERRUPTED.value,
                        encode_value(_latest_known_time(cdr)),
                        INTERRUPTED_NOTE,
                        cdr.call_id,
                        Outcome.IN_PROGRESS.value,
                    )
                    for cdr in stranded
                ],
            )
        return len(stranded)

    async def query_cdrs(
        self,
        *,
        number: str | None = None,
        caller: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        outcome: Outcome | None = None,
        limit: int | None = None,
    ) -> list[CDR]:
        conditions: list[str] = []
        params: list[Any] = []
        if number is not None:
            conditions.append("number = ?")
            params.append(number)
        if caller is not None:
            conditions.append("(caller = ? OR caller_raw = ?)")
            params += [caller, caller]
        if since is not None:
            conditions.append("started_us >= ?")
            params.append(_epoch_us(since))
        if until is not None:
            conditions.append("started_us < ?")
            params.append(_epoch_us(until))
        if outcome is not None:
            conditions.append("outcome = ?")
            params.append(outcome.value)
        async with self._reading() as db:
            return await self._select(db, " AND ".join(conditions) or "1", params, limit)

    # --- accounts: ledger, balances, usage counters --------------------------------------

    async def usage(self, number: str, month: str, day: str) -> UsageSnapshot:
        """Month-to-date and day-to-date counters and the balance: a few keyed reads."""
        async with self._reading() as db:
            rows = await db.execute_fetchall(USAGE_SNAPSHOT, (number, month, number, day, number))
        return UsageSnapshot.from_row(rows[0])

    async def reserve_call(self, number: str, month: str, cap: int) -> bool:
        """Count one more call this month if that stays within `cap`, in one statement, so
        routers sharing the database never both take the last unit."""
        if cap <= 0:
            return False
        async with self._transaction() as db:
            cursor = await db.execute(RESERVE_CALL, (number, month, cap))
            return cursor.rowcount == 1

    async def release_call(self, number: str, month: str) -> None:
        """Give back a reserved call that was never answered."""
        async with self._transaction() as db:
            await db.execute(RELEASE_CALL, (number, month))

    async def post_ledger(self, entries: Sequence[LedgerEntry]) -> int:
        """Book entries at once (payments, rent, fees); returns how many were new."""
        added = 0
        async with self._transaction() as db:
            for entry in entries:
                cursor = await db.execute(INSERT_LEDGER, ledger_params(entry, 0, self.zone))
                added += cursor.rowcount  # trigger work is not counted here
        return added

    async def ledger(
        self,
        number: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kind: LedgerKind | None = None,
    ) -> list[LedgerEntry]:
        """Entries in booking order; `since` inclusive, `until` exclusive."""
        conditions, params = ["number = ?"], [number]
        if since is not None:
            conditions.append("at_us >= ?")
            params.append(_epoch_us(since))
        if until is not None:
            conditions.append("at_us < ?")
            params.append(_epoch_us(until))
        if kind is not None:
            conditions.append("kind = ?")
            params.append(kind.value)
        sql = f"SELECT * FROM ledger WHERE {' AND '.join(conditions)} ORDER BY at_us, id"
        async with self._reading() as db:
            rows = await db.execute_fetchall(sql, params)
        return [entry_from_row(row) for row in rows]

    async def included_seconds_booked(self, number: str) -> dict[str, int]:
        async with self._reading() as db:
            rows = await db.execute_fetchall(
                INCLUDED_SECONDS_BOOKED, (number, LedgerKind.CALL.value)
            )
        return {ref: seconds for ref, seconds in rows}

    async def get_cdr(self, call_id: str) -> CDR | None:
        async with self._reading() as db:
            found = await self._select(db, "call_id = ?", [call_id])
        return found[0] if found else None

    async def _select(
        self, db: aiosqlite.Connection, where: str, params: list[Any], limit: int | None = None
    ) -> list[CDR]:
        """CDRs matching `where`, newest first, each with its legs, in one statement."""
        sql = (
            f"SELECT c.*, {_LEG_SELECT} FROM ("
            f"  SELECT * FROM cdrs WHERE {where}"
            "   ORDER BY started_us DESC, call_id DESC LIMIT ?"
            ") AS c LEFT JOIN legs AS l ON l.call_id = c.call_id "
            "ORDER BY c.started_us DESC, c.call_id DESC, l.seq"
        )
        rows = await db.execute_fetchall(sql, [*params, -1 if limit is None else limit])
        found: list[CDR] = []
        for _, group in groupby(rows, key=itemgetter("call_id")):
            call_rows = list(group)
            legs = tuple(_leg_from_row(row) for row in call_rows if row["leg_seq"] is not None)
            found.append(_cdr_from_row(call_rows[0], legs))
        return found

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction, taken up front so it never deadlocks on a lock upgrade."""
        async with self._lock, _unavailable_on_error():
            db = await self._connection()
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                await db.execute("COMMIT")
            except BaseException:
                await self._roll_back(db)
                raise

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock, _unavailable_on_error():
            yield await self._connection()

    async def _connection(self) -> aiosqlite.Connection:
        """The open connection, reopened if the file at `path` is not the one it has open."""
        if self._db is not None and self._file_identity() == self._identity:
            return self._db
        await self._disconnect()
        mode = "rwc" if self._may_create else "rw"
        db = await aiosqlite.connect(
            f"{self.path.as_uri()}?mode={mode}", uri=True, isolation_level=None
        )
        try:
            db.row_factory = sqlite3.Row
            await db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await _migrate(db)
        except BaseException:
            await db.close()
            raise
        self._db, self._identity, self._may_create = db, self._file_identity(), False
        return db

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None

    async def _roll_back(self, db: aiosqlite.Connection) -> None:
        try:
            if db.in_transaction:
                await db.execute("ROLLBACK")
        except sqlite3.Error:
            await self._disconnect()

    async def _disconnect(self) -> None:
        db, self._db, self._identity = self._db, None, None
        if db is not None:
            with suppress(sqlite3.Error):
                await db.close()


async def _migrate(db: aiosqlite.Connection) -> None:
    await db.execute("BEGIN IMMEDIATE")
    try:
        await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        rows = await db.execute_fetchall("SELECT MAX(version) FROM schema_version")
        current = rows[0][0] or 0
        if current > SCHEMA_VERSION:
            raise StoreUnavailable(
                f"database schema version {current} is newer than this router's {SCHEMA_VERSION}"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[version - 1]:
                await db.execute(statement)
            await db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        await db.execute("COMMIT")
    except BaseException:
        with suppress(sqlite3.Error):
            await db.execute("ROLLBACK")
        raise


def _latest_known_time(cdr: CDR) -> datetime:
    """When an interrupted call was last known alive: its last leg's end, else its start."""
    return max([cdr.started_at, *(leg.ended_at for leg in cdr.legs)])


@asynccontextmanager
async def _unavailable_on_error() -> AsyncIterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
