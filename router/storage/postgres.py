"""CDRs, the ledger and the usage counters in PostgreSQL, so several routers share one state.

`PostgresStore` has the methods and the meaning of `SQLiteStore`: `apply` is one
transaction of `executemany` statements (starts, legs, finishes, ledger entries), every op
idempotent (ON CONFLICT by call id, by (call_id, seq), by (number, kind, ref)), and any
failure to reach or write the server is `StoreUnavailable`, so the CDR writer spools to
its journal and replays it when the server is back. The schema is migrated when the store
first connects (router/storage/migrations.py).

Where routers meet, PostgreSQL does the counting:
- `reserve_call` is one INSERT ... ON CONFLICT DO UPDATE ... WHERE calls < cap RETURNING:
  the counter row is locked and the condition re-read on its newest version, so two
  routers never both take the last unit of a cap.
- Triggers move the balance and the counters with each ledger insert, in its transaction.
  A batch inserts its ledger entries in (number, time) order, so two routers' batches lock
  the same balance and counter rows in the same order and cannot deadlock.
- Each CDR names the router that started it; `close_interrupted` closes only this router's
  calls, since another router's calls in progress are alive.

PostgreSQL text cannot hold NUL, which SQLite stores; a NUL in a value is kept as U+FFFD
rather than refused, because a refused op would hold up every write queued behind it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import groupby
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from rating.ledger import LedgerEntry, LedgerKind
from router.storage.account_sql import UsageSnapshot, entry_from_row, ledger_params
from router.storage.cdr import (
    CDR,
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
from router.storage.migrations import migrate
from router.storage.protocol import INTERRUPTED_NOTE, StoreUnavailable
from router.storage.sqlite import SHANGHAI

_UNAVAILABLE = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
"""What a store call can meet when the server is down, restarting, full or refusing."""

_REGION = ("province", "city", "area_code")
_CDR_COLUMNS = (
    "call_id",
    "number",
    "caller_raw",
    "caller",
    "caller_kind",
    *_REGION,
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
    "router",
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
_LEDGER_COLUMNS = (
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
_COLUMN_TYPES = {
    "billable_seconds": "integer",
    "caller_share": "numeric",
    "callee_share": "numeric",
    "total": "numeric",
}
"""Types of the finish columns that are not text, for the parameters' casts."""


def _insert(table: str, columns: Sequence[str], conflict: str) -> str:
    marks = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT {conflict}"


_INSERT_CDR = _insert("cdrs", _CDR_COLUMNS, "(call_id) DO NOTHING")
_INSERT_LEG = _insert("legs", _LEG_COLUMNS, "(call_id, seq) DO NOTHING")
_INSERT_LEDGER = _insert("ledger", _LEDGER_COLUMNS, "(number, kind, ref) DO NOTHING")
_FINISH_COLUMNS = sorted(FINISH_FIELDS)
# One statement for every finish: each column is set only when its flag says the op sets it.
_FINISH_CDR = (
    "UPDATE cdrs SET "
    + ", ".join(
        f"{name} = CASE WHEN ${2 * n + 1}::boolean "
        f"THEN ${2 * n + 2}::{_COLUMN_TYPES.get(name, 'text')} ELSE {name} END"
        for n, name in enumerate(_FINISH_COLUMNS)
    )
    + f" WHERE call_id = ${2 * len(_FINISH_COLUMNS) + 1}"
)
_CLOSE_INTERRUPTED = (
    "UPDATE cdrs SET outcome = $1, ended_at = $2, note = $3 WHERE call_id = $4 AND outcome = $5"
)
_USAGE_SNAPSHOT = """
SELECT m.cost_fen AS month_cost_fen, c.calls AS month_calls, m.included_used AS included_used,
       d.cost_fen AS day_cost_fen, b.balance_fen AS balance_fen
FROM (SELECT 1) AS one
LEFT JOIN usage AS m ON m.number = $1 AND m.period = $2
LEFT JOIN usage AS d ON d.number = $1 AND d.period = $3
LEFT JOIN call_units AS c ON c.number = $1 AND c.month = $2
LEFT JOIN balances AS b ON b.number = $1
"""
# One statement: the count only moves while it is below the cap, whichever router asks.
_RESERVE_CALL = (
    "INSERT INTO call_units AS u (number, month, calls) VALUES ($1, $2, 1) "
    "ON CONFLICT (number, month) DO UPDATE SET calls = u.calls + 1 WHERE u.calls < $3 "
    "RETURNING calls"
)
_RELEASE_CALL = (
    "UPDATE call_units SET calls = calls - 1 WHERE number = $1 AND month = $2 AND calls > 0"
)
_INCLUDED_SECONDS_BOOKED = (
    "SELECT ref, included_seconds FROM ledger "
    "WHERE number = $1 AND kind = $2 AND included_seconds > 0"
)
_LEG_SELECT = ", ".join(f"l.{name} AS leg_{name}" for name in _LEG_COLUMNS[1:])
# Ties in time order by call id byte by byte, as SQLite does, whatever the collation.
_NEWEST_FIRST = 'started_us DESC, call_id COLLATE "C" DESC'

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def default_router_name(port: int) -> str:
    """HOSTNAME:PORT: unique among routers, and the same again when a router restarts."""
    return f"{socket.gethostname()}:{port}"


class PostgresStore:
    """CDR, ledger and counter store on a PostgreSQL server, through an asyncpg pool.

    `dsn` is a postgresql:// URL; its query parameters are asyncpg's (sslmode, and server
    settings such as search_path). `router` names this router in the CDRs it starts.
    """

    def __init__(
        self,
        dsn: str,
        *,
        router: str,
        zone: ZoneInfo = SHANGHAI,
        max_connections: int = 4,
        connect_timeout: float = 5.0,
        command_timeout: float = 5.0,
    ) -> None:
        self.dsn = dsn
        self.router = router
        self.zone = zone
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def open(self) -> None:
        async with self._connection():
            pass

    async def close(self) -> None:
        async with self._opening:
            pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), self._command_timeout)
            except _UNAVAILABLE:
                pool.terminate()

    async def apply(self, ops: Sequence[CdrOp]) -> None:
        # Encoding a big batch takes a while: done in a worker so the call path keeps running.
        rows = await asyncio.to_thread(_rows_by_statement, ops, self.zone, self.router)
        async with self._transaction() as conn:
            for sql, params in rows.items():
                if params:
                    await conn.executemany(sql, params)

    async def close_interrupted(self, now: datetime) -> int:
        async with self._transaction() as conn:
            stranded = await _select(
                conn,
                f"router = $1 AND outcome = '{Outcome.IN_PROGRESS}' AND started_us <= $2",
                [self.router, _epoch_us(now)],
            )
            await conn.executemany(
                _CLOSE_INTERRUPTED,
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
        where = _Conditions()
        if number is not None:
            where.add("number = {}", number)
        if caller is not None:
            where.add("(caller = {0} OR caller_raw = {0})", caller)
        if since is not None:
            where.add("started_us >= {}", _epoch_us(since))
        if until is not None:
            where.add("started_us < {}", _epoch_us(until))
        if outcome is not None:
            where.add("outcome = {}", outcome.value)
        async with self._connection() as conn:
            return await _select(conn, where.sql(), where.params, limit)

    async def get_cdr(self, call_id: str) -> CDR | None:
        async with self._connection() as conn:
            found = await _select(conn, "call_id = $1", [call_id])
        return found[0] if found else None

    # --- accounts: ledger, balances, usage counters --------------------------------------

    async def usage(self, number: str, month: str, day: str) -> UsageSnapshot:
        """Month-to-date and day-to-date counters and the balance: a few keyed reads."""
        async with self._connection() as conn:
            row = await conn.fetchrow(_USAGE_SNAPSHOT, number, month, day)
        return UsageSnapshot.from_row(row)

    async def reserve_call(self, number: str, month: str, cap: int) -> bool:
        """Count one more call this month if that stays within `cap`, in one statement, so
        routers sharing the database never both take the last unit."""
        if cap <= 0:
            return False
        async with self._connection() as conn:
            return await conn.fetchval(_RESERVE_CALL, number, month, cap) is not None

    async def release_call(self, number: str, month: str) -> None:
        """Give back a reserved call that was never answered."""
        async with self._connection() as conn:
            await conn.execute(_RELEASE_CALL, number, month)

    async def post_ledger(self, entries: Sequence[LedgerEntry]) -> int:
        """Book entries at once (payments, rent, fees); returns how many were new."""
        rows = sorted((_ledger_row(entry, 0, self.zone) for entry in entries), key=_lock_order)
        added = 0
        async with self._transaction() as conn:
            for row in rows:
                status = await conn.execute(_INSERT_LEDGER, *row)
                added += int(status.rpartition(" ")[2])  # "INSERT 0 1": trigger work not counted
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
        where = _Conditions()
        where.add("number = {}", number)
        if since is not None:
            where.add("at_us >= {}", _epoch_us(since))
        if until is not None:
            where.add("at_us < {}", _epoch_us(until))
        if kind is not None:
            where.add("kind = {}", kind.value)
        sql = f"SELECT * FROM ledger WHERE {where.sql()} ORDER BY at_us, id"
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *where.params)
        return [entry_from_row(row) for row in rows]

    async def included_seconds_booked(self, number: str) -> dict[str, int]:
        async with self._connection() as conn:
            rows = await conn.fetch(_INCLUDED_SECONDS_BOOKED, number, LedgerKind.CALL.value)
        return {ref: seconds for ref, seconds in rows}

    # --- connections ----------------------------------------------------------------------

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._connection() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; any failure of the server or the link is StoreUnavailable."""
        try:
            pool = await self._ready_pool()
            async with pool.acquire(timeout=self._connect_timeout) as conn:
                yield conn
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def _ready_pool(self) -> asyncpg.Pool:
        """The pool, made (and the schema migrated) on first use and after a failed start.

        Connections lost with a server restart are replaced by the pool as they are used.
        """
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=1,
                    max_size=self._max_connections,
                    reset=_session_kept,
                    timeout=self._connect_timeout,
                    command_timeout=self._command_timeout,
                )
                try:
                    async with pool.acquire() as conn:
                        await migrate(conn)
                except BaseException:
                    with suppress(*_UNAVAILABLE):
                        await pool.close()
                    raise
                self._pool = pool
            return self._pool


async def _session_kept(conn: asyncpg.Connection) -> None:
    """Nothing to reset when a connection goes back to the pool: the store never changes a
    session's settings, listens or takes session locks. asyncpg's default reset would cost a
    round trip on every use, twice on a call's path."""


class _Conditions:
    """WHERE conditions with numbered parameters: `add("x = {}", value)` binds $n."""

    def __init__(self) -> None:
        self.params: list[Any] = []
        self._parts: list[str] = []

    def add(self, template: str, value: Any) -> None:
        self.params.append(value)
        self._parts.append(template.format(f"${len(self.params)}"))

    def sql(self) -> str:
        return " AND ".join(self._parts) or "TRUE"


async def _select(
    conn: asyncpg.Connection, where: str, params: list[Any], limit: int | None = None
) -> list[CDR]:
    """CDRs matching `where`, newest first, each with its legs, in one statement."""
    sql = (
        f"SELECT c.*, {_LEG_SELECT} FROM ("
        f"  SELECT * FROM cdrs WHERE {where} ORDER BY {_NEWEST_FIRST} LIMIT ${len(params) + 1}"
        f") AS c LEFT JOIN legs AS l ON l.call_id = c.call_id "
        f'ORDER BY c.started_us DESC, c.call_id COLLATE "C" DESC, l.seq'
    )
    rows = await conn.fetch(sql, *params, limit)
    found: list[CDR] = []
    for _, group in groupby(rows, key=itemgetter("call_id")):
        call_rows = list(group)
        legs = tuple(_leg_from_row(row) for row in call_rows if row["leg_seq"] is not None)
        found.append(_cdr_from_row(call_rows[0], legs))
    return found


def _rows_by_statement(
    ops: Sequence[CdrOp], zone: ZoneInfo, router: str
) -> dict[str, list[tuple[Any, ...]]]:
    """Parameters of the batch's starts, legs, finishes and ledger entries, in that order:
    the first three in op order, the entries in lock order (number, then time)."""
    rows: dict[str, list[tuple[Any, ...]]] = {
        _INSERT_CDR: [],
        _INSERT_LEG: [],
        _FINISH_CDR: [],
        _INSERT_LEDGER: [],
    }
    for op in ops:
        for sql, params in _statements(op, zone, router):
            rows[sql].append(params)
    rows[_INSERT_LEDGER].sort(key=_lock_order)
    return rows


def _statements(op: CdrOp, zone: ZoneInfo, router: str) -> Iterator[tuple[str, tuple[Any, ...]]]:
    match op:
        case StartCall(cdr):
            yield _INSERT_CDR, _cdr_row(cdr, router)
            for leg in cdr.legs:
                yield _INSERT_LEG, _leg_row(cdr.call_id, leg)
        case AddLeg(call_id, leg):
            yield _INSERT_LEG, _leg_row(call_id, leg)
        case FinishCall(call_id, values):
            flagged = ((name in values, _value(values.get(name))) for name in _FINISH_COLUMNS)
            yield _FINISH_CDR, (*(param for pair in flagged for param in pair), call_id)
        case PostLedger(entry, included_seconds):
            yield _INSERT_LEDGER, _ledger_row(entry, included_seconds, zone)


def _value(value: Any) -> Any:
    """A field as PostgreSQL takes it: money as Decimal (numeric), the rest as SQLite has it."""
    if isinstance(value, Decimal):
        return value
    encoded = encode_value(value)
    if isinstance(encoded, str) and "\x00" in encoded:
        return encoded.replace("\x00", "\ufffd")
    return encoded


def _cdr_row(cdr: CDR, router: str) -> tuple[Any, ...]:
    values = {
        "province": cdr.region.province,
        "city": cdr.region.city,
        "area_code": cdr.region.area_code,
        "started_us": _epoch_us(cdr.started_at),
        "router": router,
    }
    return tuple(
        _value(values[name] if name in values else getattr(cdr, name)) for name in _CDR_COLUMNS
    )


def _leg_row(call_id: str, leg: Leg) -> tuple[Any, ...]:
    return (_value(call_id), *(_value(getattr(leg, name)) for name in _LEG_COLUMNS[1:]))


def _ledger_row(entry: LedgerEntry, included_seconds: int, zone: ZoneInfo) -> tuple[Any, ...]:
    return tuple(_value(value) for value in ledger_params(entry, included_seconds, zone))


def _lock_order(row: tuple[Any, ...]) -> tuple[str, int]:
    """Ledger rows by number, then time (at_us): the order their triggers lock rows in."""
    return row[0], row[2]


def _cdr_from_row(row: asyncpg.Record, legs: tuple[Leg, ...]) -> CDR:
    skipped = {*_REGION, "started_us", "router"}
    values = {name: decode_value(name, row[name]) for name in _CDR_COLUMNS if name not in skipped}
    region = CallerRegion(row["province"], row["city"], row["area_code"])
    return CDR(**values, region=region, legs=legs)


def _leg_from_row(row: asyncpg.Record) -> Leg:
    return Leg(**{name: decode_value(name, row[f"leg_{name}"]) for name in _LEG_COLUMNS[1:]})


def _latest_known_time(cdr: CDR) -> datetime:
    """When an interrupted call was last known alive: its last leg's end, else its start."""
    return max([cdr.started_at, *(leg.ended_at for leg in cdr.legs)])


def _epoch_us(moment: datetime) -> int:
    if moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, got {moment!r}")
    return (moment - _EPOCH) // timedelta(microseconds=1)
