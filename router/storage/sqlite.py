"""The store on one SQLite file, the embedded default: router.storage.sql_store's behaviour
on an aiosqlite connection.

`SQLiteStore` keeps one connection on a real file in WAL mode. Every write takes the write
lock up front (`BEGIN IMMEDIATE`), so it never deadlocks on a lock upgrade, and waits for a
lock held elsewhere up to the busy timeout. Before each use the store checks the file is
still the one it opened, so a database moved or deleted under a running router is noticed
instead of written into a file nobody can see any more.

What only SQLite has: the ledger's triggers in its own syntax, and the steps by which a file
made by an older router reaches schema version 3 (a router column, call-cap units moved out
of `usage`).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import aiosqlite

from router.storage import call_counts, schema
from router.storage.call_wait import call_wait
from router.storage.cdr import CdrOp
from router.storage.cdr_tables import batch_statements
from router.storage.protocol import StoreUnavailable
from router.storage.queries import NO_ROUTER
from router.storage.repeats import RepeatKeys, Resolution, resolved
from router.storage.rows import Row, batch_rows
from router.storage.sessions import Session, migrate
from router.storage.sql_store import SqlStore

SHANGHAI = ZoneInfo("Asia/Shanghai")
_T = TypeVar("_T")
WORKER_STOP_S = 5.0
"""How long a failed connection's worker thread may take to stop (it only closes)."""

DIALECT = schema.Dialect(
    money="text",  # exact decimal text: SQLite's NUMERIC would round money through a float
    id="integer PRIMARY KEY AUTOINCREMENT",
    call_id="text",  # SQLite compares text byte by byte
    keyed=" WITHOUT ROWID",
)
_TRIGGERS = (
    f"""CREATE TRIGGER ledger_rows_are_never_changed BEFORE UPDATE ON ledger
       BEGIN SELECT RAISE(ABORT, '{schema.LEDGER_REFUSALS[0]}'); END""",
    f"""CREATE TRIGGER ledger_rows_are_never_deleted BEFORE DELETE ON ledger
       BEGIN SELECT RAISE(ABORT, '{schema.LEDGER_REFUSALS[1]}'); END""",
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
_HOLDING_TRIGGER = (
    "DROP TRIGGER ledger_moves_the_balance",
    """CREATE TRIGGER ledger_moves_the_balance AFTER INSERT ON ledger BEGIN
         INSERT INTO holding_balances (number, since_us, balance_fen)
         VALUES (NEW.number, COALESCE((SELECT MAX(since_us) FROM holding_balances
                 WHERE number = NEW.number AND since_us <= NEW.at_us), 0), NEW.amount_fen)
         ON CONFLICT (number, since_us) DO UPDATE SET balance_fen = balance_fen + NEW.amount_fen;
       END""",
    "DROP TABLE balances",
)
"""Version 16: the balance of the holding an entry's instant falls in (schema.HOLDING_BALANCES)."""
_RERATING_TRIGGER = (
    f"""CREATE TRIGGER rerating_moves_the_cost_counters AFTER INSERT ON ledger
       WHEN {schema.is_rerating("NEW")} BEGIN
         {schema.RERATED_CALL_COST};
       END""",
)
"""Version 18: a re-rating adjustment moves the counters of its call's month and day."""
_HOLDING_COUNTERS = (
    "DROP TRIGGER call_charges_move_the_cost_counters",
    "DROP TRIGGER rerating_moves_the_cost_counters",
    *schema.HOLDING_TABLES_RENAMED,
    f"""CREATE TRIGGER call_charges_move_the_cost_counters AFTER INSERT ON ledger
       WHEN NEW.kind = 'call' BEGIN
         {schema.HOLDING_CALL_COST[0].format(as_u="", u="")};
         {schema.HOLDING_CALL_COST[1].format(as_u="", u="")};
       END""",
    f"""CREATE TRIGGER rerating_moves_the_cost_counters AFTER INSERT ON ledger
       WHEN {schema.is_rerating("NEW")} BEGIN
         {schema.HOLDING_RERATED_CALL_COST};
       END""",
)
"""Version 21: the counters of the holding an entry's instant falls in (schema.HOLDING_USAGE)."""
_HISTORY_TRIGGERS = (
    f"""CREATE TRIGGER number_history_is_never_changed BEFORE UPDATE ON number_history
       BEGIN SELECT RAISE(ABORT, '{schema.HISTORY_REFUSALS[0]}'); END""",
    f"""CREATE TRIGGER number_history_is_never_deleted BEFORE DELETE ON number_history
       BEGIN SELECT RAISE(ABORT, '{schema.HISTORY_REFUSALS[1]}'); END""",
)
MIGRATIONS = schema.migrations(
    DIALECT,
    {
        # Up to version 2 a file had no router column and counted cap units in `usage`.
        1: ("CREATE INDEX cdrs_in_progress ON cdrs (started_us) WHERE outcome = 'in_progress'",),
        2: ("ALTER TABLE usage ADD COLUMN calls integer NOT NULL DEFAULT 0", *_TRIGGERS),
        3: (
            schema.ROUTER_COLUMN,
            "DROP INDEX cdrs_in_progress",
            schema.IN_PROGRESS_INDEX,
            DIALECT.render(schema.CALL_UNITS),
            "INSERT INTO call_units (number, month, calls) "
            "SELECT number, period, calls FROM usage WHERE calls > 0 AND length(period) = 7",
            "ALTER TABLE usage DROP COLUMN calls",
        ),
        4: (*call_counts.SQLITE_TRIGGERS, *call_counts.ROLLUP_BACKFILL),
        5: (*call_counts.SQLITE_DAY_TRIGGERS, *call_counts.DAY_BACKFILL),
        6: _HISTORY_TRIGGERS,
        16: _HOLDING_TRIGGER,
        18: _RERATING_TRIGGER,
        21: _HOLDING_COUNTERS,
    },
)
SCHEMA_VERSION = len(MIGRATIONS)


class SQLiteStore(SqlStore):
    """The store on one SQLite file (WAL, synchronous=NORMAL), through aiosqlite.

    The file is created on the first successful open only; if it disappears later the
    store stays unavailable until it is back, rather than starting an empty one. A file is
    one router's own: its calls name no router, and a router restarting on it, on whatever
    port, closes every call left in progress.
    """

    NOW_US = "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)"

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout_ms: int = 5000,
        zone: ZoneInfo = SHANGHAI,
    ) -> None:
        super().__init__(router=NO_ROUTER, zone=zone)
        self.path = Path(path).absolute()
        self._busy_timeout_ms = busy_timeout_ms
        self._db: aiosqlite.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._may_create = True
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        async with self._lock, _unavailable_on_error():
            await self._connection()

    async def close(self) -> None:
        async with self._lock:
            await self._disconnect()

    async def apply(self, ops: Sequence[CdrOp]) -> None:
        """The write-behind batch in one hand-off to the connection's thread: encoded, then
        BEGIN IMMEDIATE, the statements of `CdrTables.apply` and COMMIT. Through the
        statement-by-statement sessions a batch took seven hand-offs (an encoding worker,
        BEGIN, up to four executemany, COMMIT), each waking another thread and resolving a
        future back on the event loop that serves the calls. During a stop the batch's wait
        for the file is bounded by what is left of the stop's (`_locked`)."""
        async with self._locked() as db:
            try:
                resolution = await _in_connection_thread(
                    db, _apply_batch, ops, self.zone, self.router, self.repeats
                )
            except BaseException:
                await self._roll_back(db)
                raise
        self.repeats.settle(resolution)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Session]:
        async with self._locked() as db:
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteSession(db)
                await db.execute("COMMIT")
            except BaseException:
                await self._roll_back(db)
                raise

    @asynccontextmanager
    async def _connected(self) -> AsyncIterator[Session]:
        async with self._locked() as db:
            yield _SQLiteSession(db)

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection, this store's turn at it held; during a call, the wait for that
        turn and the busy wait of its statements take what is left of the call's one wait
        (router.storage.call_wait), not a busy timeout each."""
        wait = call_wait()
        if wait is None:
            async with self._lock, _unavailable_on_error():
                yield await self._connection()
            return
        limit = self._busy_timeout_ms / 1000
        began = time.monotonic()
        try:
            async with asyncio.timeout(max(wait.left(limit), 0)):
                await self._lock.acquire()
        except TimeoutError:
            wait.spent += time.monotonic() - began
            raise StoreUnavailable(f"this call already waited {limit:g} s for the store") from None
        try:
            async with _unavailable_on_error():
                db = await self._connection()
                busy_ms = int(wait.left(limit + began - time.monotonic()) * 1000)
                if busy_ms >= self._busy_timeout_ms:
                    yield db
                    return
                await db.execute(f"PRAGMA busy_timeout = {max(busy_ms, 0)}")
                try:
                    yield db
                finally:
                    await db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        finally:
            wait.spent += time.monotonic() - began
            self._lock.release()

    async def _connection(self) -> aiosqlite.Connection:
        """The open connection, reopened if the file at `path` is not the one it has open."""
        if self._db is not None and self._file_identity() == self._identity:
            return self._db
        await self._disconnect()
        mode = "rwc" if self._may_create else "rw"
        connecting = aiosqlite.connect(
            f"{self.path.as_uri()}?mode={mode}", uri=True, isolation_level=None
        )
        try:
            db = await connecting
        except BaseException:
            # aiosqlite stops its worker thread without waiting for it: a thread still
            # answering once a failed start has closed the loop prints a traceback at exit.
            # Polled, not joined in an executor, whose own thread would then outlive the start.
            with suppress(TimeoutError):
                async with asyncio.timeout(WORKER_STOP_S):
                    while connecting._thread.is_alive():
                        await asyncio.sleep(0.005)
            raise
        try:
            db.row_factory = sqlite3.Row
            await db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("BEGIN IMMEDIATE")
            try:
                await migrate(_SQLiteSession(db), MIGRATIONS, newest=SCHEMA_VERSION)
                await db.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):
                    await db.execute("ROLLBACK")
                raise
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


def _bind_null(value: None) -> None:
    return value


# CPython's sqlite3 binds int, float, str and bytearray as they come; anything else, None
# included, goes through its adapters: the registry, then the protocol's `__adapt__`, which
# is missing, so a formatted AttributeError is built and dropped for every NULL bound (about
# 250 ns; a call's rows bind some thirty). Found in the registry, None costs 60 ns. The
# registry is the sqlite3 module's, so this holds for every connection in the process,
# binding exactly as before.
sqlite3.register_adapter(type(None), _bind_null)


class _SQLiteSession:
    """A `Session` on the store's aiosqlite connection: SQLite takes `?` parameters as they are."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self._db.execute_fetchall(sql, params))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = await self._db.execute(sql, params)
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._db.executemany(sql, rows)


def _apply_batch(
    connection: sqlite3.Connection,
    ops: Sequence[CdrOp],
    zone: ZoneInfo,
    router: str,
    repeats: RepeatKeys,
) -> Resolution:
    """One batch on the connection's own thread; the caller rolls back what this leaves,
    and remembers what it keyed apart once it is committed (on the event loop)."""
    batch = batch_rows(ops, zone, router)
    connection.execute("BEGIN IMMEDIATE")
    resolution = resolved(
        repeats.resolving(ops, router), lambda query: connection.execute(*query).fetchall()
    )
    if resolution.ops is not ops:
        batch = batch_rows(resolution.ops, zone, router)
    for sql, rows in batch_statements(batch):
        connection.executemany(sql, rows)
    connection.execute("COMMIT")
    return resolution


async def _in_connection_thread(
    db: aiosqlite.Connection, function: Callable[..., _T], *args: Any
) -> _T:
    """`function(connection, *args)` on the thread that owns the sqlite3 connection, as
    one hand-off. aiosqlite runs each of its methods this way, through its `_execute`, but
    offers no public way to queue a function of one's own; `_execute` and `_conn` have
    been there unchanged from aiosqlite 0.17 to 0.22, and every CDR the suite writes goes
    through here, so a release that changes them fails every store test at once."""
    connection = db._conn
    return await db._execute(function, connection, *args)


@asynccontextmanager
async def _unavailable_on_error() -> AsyncIterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
