"""The store in PostgreSQL, so several routers share one state: router.storage.sql_store's
behaviour on an asyncpg pool.

Any failure to reach or write the server is `StoreUnavailable`, so the CDR writer spools to
its journal and replays it when the server is back. The schema is migrated when the store
first connects, in one transaction under an advisory lock, so routers starting together on
an empty database migrate it once.

Where routers meet, PostgreSQL does the counting:
- `reserve_call` is one INSERT ... ON CONFLICT DO UPDATE ... WHERE calls < cap: the counter
  row is locked and the condition re-read on its newest version, so two routers never both
  take the last unit of a cap. One statement is atomic by itself, so it runs without a
  transaction of ours (no BEGIN and COMMIT round trips on the call path).
- Triggers move the balance and the counters with each ledger insert, in its transaction.
  A batch inserts its ledger entries in (number, time) order, so two routers' batches lock
  the same balance and counter rows in the same order and cannot deadlock.
- Finishing a call moves the call counts by trigger, and a finish does not know its count
  rows before it runs, so two routers' batches finishing calls of the same numbers can lock
  them in opposite orders: PostgreSQL then aborts one batch as a deadlock. Its transaction
  rolled back whole, so the batch is run again at once (`apply`) instead of spooled.
- Each CDR names the router that started it; `close_interrupted` closes only this router's
  calls, since another router's calls in progress are alive.

PostgreSQL text cannot hold NUL, which SQLite stores; a NUL in a value is kept as U+FFFD
rather than refused, because a refused op would hold up every write queued behind it.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import re
import socket
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from router.storage import call_counts, schema
from router.storage.call_wait import call_wait
from router.storage.cdr import CdrOp
from router.storage.protocol import StoreUnavailable
from router.storage.rows import Row
from router.storage.sessions import Session, migrate
from router.storage.sql_store import SqlStore
from router.storage.sqlite import SHANGHAI

_RUN_AGAIN = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)
"""Aborted by the server for meeting another transaction: safe to run again at once."""
BATCH_ATTEMPTS = 3
_UNAVAILABLE = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
"""What a store call can meet when the server is down, restarting, full or refusing."""

MIGRATION_LOCK = 0x400_5C4E3A
"""pg_advisory_xact_lock key taken while the schema is read and migrated."""

DIALECT = schema.Dialect(
    money="numeric(20, 2)",
    id="bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    call_id='text COLLATE "C"',  # ties in time order by call id byte by byte, as in SQLite
    keyed="",
)
_CALL_MOVES_USAGE = """\
         IF NEW.kind = 'call' THEN
           INSERT INTO usage AS u (number, period, cost_fen, included_used)
           VALUES (NEW.number, NEW.month, -NEW.amount_fen, NEW.included_seconds)
           ON CONFLICT (number, period) DO UPDATE SET
             cost_fen = u.cost_fen - NEW.amount_fen,
             included_used = u.included_used + NEW.included_seconds;
           INSERT INTO usage AS u (number, period, cost_fen)
           VALUES (NEW.number, NEW.day, -NEW.amount_fen)
           ON CONFLICT (number, period) DO UPDATE SET cost_fen = u.cost_fen - NEW.amount_fen;
         END IF;
"""
"""A call's entry moves its month's and day's cost and the included seconds used (the
counters trigger of version 2 and of version 16 alike)."""
_TRIGGERS = (
    f"""CREATE FUNCTION ledger_refuses_changes() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'UPDATE' THEN
           RAISE EXCEPTION '{schema.LEDGER_REFUSALS[0]}';
         END IF;
         RAISE EXCEPTION '{schema.LEDGER_REFUSALS[1]}';
       END $$""",
    """CREATE TRIGGER ledger_rows_are_never_changed BEFORE UPDATE ON ledger
       FOR EACH ROW EXECUTE FUNCTION ledger_refuses_changes()""",
    """CREATE TRIGGER ledger_rows_are_never_deleted BEFORE DELETE ON ledger
       FOR EACH ROW EXECUTE FUNCTION ledger_refuses_changes()""",
    """CREATE TRIGGER ledger_is_never_truncated BEFORE TRUNCATE ON ledger
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuses_changes()""",
    """CREATE FUNCTION ledger_moves_the_counters() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         INSERT INTO balances AS b (number, balance_fen) VALUES (NEW.number, NEW.amount_fen)
         ON CONFLICT (number) DO UPDATE SET balance_fen = b.balance_fen + NEW.amount_fen;
"""
    + _CALL_MOVES_USAGE
    + """         RETURN NULL;
       END $$""",
    """CREATE TRIGGER ledger_moves_the_counters AFTER INSERT ON ledger
       FOR EACH ROW EXECUTE FUNCTION ledger_moves_the_counters()""",
)
_COUNTERS_FUNCTION = """CREATE OR REPLACE FUNCTION ledger_moves_the_counters() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
         INSERT INTO holding_balances AS b (number, since_us, balance_fen)
         VALUES (NEW.number, COALESCE((SELECT MAX(h.since_us) FROM holding_balances AS h
                 WHERE h.number = NEW.number AND h.since_us <= NEW.at_us), 0), NEW.amount_fen)
         ON CONFLICT (number, since_us) DO UPDATE SET balance_fen = b.balance_fen + NEW.amount_fen;
"""
"""The counters function from version 16 on, up to its cost counters' parts."""
_HOLDING_TRIGGER = (
    _COUNTERS_FUNCTION
    + _CALL_MOVES_USAGE
    + """         RETURN NULL;
       END $$""",
    "DROP TABLE balances",
)
"""Version 16: the balance of the holding an entry's instant falls in (schema.HOLDING_BALANCES)."""
_RERATING_TRIGGER = (
    _COUNTERS_FUNCTION
    + _CALL_MOVES_USAGE
    + f"""         IF {schema.is_rerating("NEW")} THEN
           {schema.RERATED_CALL_COST};
         END IF;
         RETURN NULL;
       END $$""",
)
"""Version 18: a re-rating adjustment moves the counters of its call's month and day."""
_HOLDING_COUNTERS = (
    *schema.HOLDING_TABLES_RENAMED,
    _COUNTERS_FUNCTION
    + f"""         IF NEW.kind = 'call' THEN
           {schema.HOLDING_CALL_COST[0].format(as_u=" AS u", u="u.")};
           {schema.HOLDING_CALL_COST[1].format(as_u=" AS u", u="u.")};
         END IF;
         IF {schema.is_rerating("NEW")} THEN
           {schema.HOLDING_RERATED_CALL_COST};
         END IF;
         RETURN NULL;
       END $$""",
)
"""Version 21: the counters of the holding an entry's instant falls in (schema.HOLDING_USAGE)."""
_HISTORY_TRIGGERS = (
    f"""CREATE FUNCTION number_history_refuses_changes() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'UPDATE' THEN
           RAISE EXCEPTION '{schema.HISTORY_REFUSALS[0]}';
         END IF;
         RAISE EXCEPTION '{schema.HISTORY_REFUSALS[1]}';
       END $$""",
    """CREATE TRIGGER number_history_is_never_changed BEFORE UPDATE ON number_history
       FOR EACH ROW EXECUTE FUNCTION number_history_refuses_changes()""",
    """CREATE TRIGGER number_history_is_never_deleted BEFORE DELETE ON number_history
       FOR EACH ROW EXECUTE FUNCTION number_history_refuses_changes()""",
    """CREATE TRIGGER number_history_is_never_truncated BEFORE TRUNCATE ON number_history
       FOR EACH STATEMENT EXECUTE FUNCTION number_history_refuses_changes()""",
)
MIGRATIONS = schema.migrations(
    DIALECT,
    {
        # PostgreSQL named the router and kept cap units apart from the first version on.
        1: (schema.ROUTER_COLUMN, schema.IN_PROGRESS_INDEX),
        2: (DIALECT.render(schema.CALL_UNITS), *_TRIGGERS),
        # Databases made before version 3 sorted call ids by their collation.
        3: (
            'ALTER TABLE cdrs ALTER COLUMN call_id TYPE text COLLATE "C"',
            'ALTER TABLE legs ALTER COLUMN call_id TYPE text COLLATE "C"',
        ),
        4: (*call_counts.POSTGRES_TRIGGERS, *call_counts.ROLLUP_BACKFILL),
        5: (*call_counts.POSTGRES_DAY_TRIGGERS, *call_counts.DAY_BACKFILL),
        6: _HISTORY_TRIGGERS,
        16: _HOLDING_TRIGGER,
        18: _RERATING_TRIGGER,
        21: _HOLDING_COUNTERS,
    },
)
SCHEMA_VERSION = len(MIGRATIONS)


CALL_PATH_TIMEOUT = 5.0
"""Seconds a router's statement may take: a call waits for its counters and cap unit."""
COMMAND_TIMEOUT = 600.0
"""Seconds a statement of a command (`bill`, `rate`, `cdr`, ...) may take: a month of a busy
number's calls, read for its bill or re-rating, is hundreds of thousands of rows."""


def default_router_name(port: int) -> str:
    """HOSTNAME:PORT: unique among routers, and the same again when a router restarts."""
    return f"{socket.gethostname()}:{port}"


class PostgresStore(SqlStore):
    """The store on a PostgreSQL server, through an asyncpg pool.

    `dsn` is a postgresql:// URL; its query parameters are asyncpg's (sslmode, and server
    settings such as search_path). `router` names this router in the CDRs it starts.
    """

    NOW_US = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"

    def __init__(
        self,
        dsn: str,
        *,
        router: str,
        zone: ZoneInfo = SHANGHAI,
        max_connections: int = 4,
        connect_timeout: float = 5.0,
        command_timeout: float = CALL_PATH_TIMEOUT,
    ) -> None:
        super().__init__(router=router, zone=zone)
        self.dsn = dsn
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._failed_start: BaseException | None = None
        """Why the last start of the pool failed."""

    async def open(self) -> None:
        async with self._connected():
            pass

    async def close(self) -> None:
        async with self._opening:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        wait = call_wait()
        left = self._command_timeout if wait is None else wait.left(self._command_timeout)
        try:
            if left <= 0:
                raise TimeoutError
            await asyncio.wait_for(pool.close(), left)
        except _UNAVAILABLE:
            pool.terminate()

    async def apply(self, ops: Sequence[CdrOp]) -> None:
        """A write-behind batch, run again at once (up to BATCH_ATTEMPTS) when the server
        aborted it for a deadlock with another router's batch."""
        for attempt in range(1, BATCH_ATTEMPTS + 1):
            try:
                await super().apply(ops)
                return
            except StoreUnavailable as error:
                if attempt == BATCH_ATTEMPTS or not isinstance(error.__cause__, _RUN_AGAIN):
                    raise

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Session]:
        async with self._connection() as conn, conn.transaction():
            yield _PostgresSession(conn)

    @asynccontextmanager
    async def _connected(self) -> AsyncIterator[Session]:
        async with self._connection() as conn:
            yield _PostgresSession(conn)

    def _single_write(self) -> AbstractAsyncContextManager[Session]:
        return self._connected()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; any failure of the server or the link is StoreUnavailable."""
        try:
            async with self._within_call_wait():
                pool = await self._ready_pool()
                async with pool.acquire(timeout=self._connect_timeout) as conn:
                    try:
                        yield conn
                    except (TimeoutError, asyncio.CancelledError):
                        # Given back, a connection whose statement was cut waits to cancel
                        # it on a new connection: a silent server makes that a second wait.
                        conn.terminate()
                        raise
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    @asynccontextmanager
    async def _within_call_wait(self) -> AsyncIterator[None]:
        """During a call, the use (the wait for a pooled connection included) gets what is
        left of the call's one statement timeout (router.storage.call_wait)."""
        wait = call_wait()
        if wait is None:
            yield
            return
        left = wait.left(self._command_timeout)
        if left <= 0:
            raise StoreUnavailable(
                f"this call already waited {self._command_timeout:g} s for the store"
            )
        began = time.monotonic()
        try:
            async with asyncio.timeout(left):
                yield
        finally:
            wait.spent += time.monotonic() - began

    async def _ready_pool(self) -> asyncpg.Pool:
        """The pool, made (and the schema migrated) on first use and after a failed start.

        Connections lost with a server restart are replaced by the pool as they are used.
        Uses that waited for a start that failed fail with it rather than start again one
        by one: a silent server makes each start wait `connect_timeout`, and the calls of a
        burst, queued behind each other, would wait that many times over.
        """
        if self._pool is not None:
            return self._pool
        failed_before = self._failed_start
        async with self._opening:
            if self._pool is None:
                failed = self._failed_start
                if failed is not None and failed is not failed_before:
                    raise StoreUnavailable(f"{type(failed).__name__}: {failed}") from failed
                try:
                    self._pool = await self._started_pool()
                except _UNAVAILABLE as exc:
                    self._failed_start = exc
                    raise
            return self._pool

    async def _started_pool(self) -> asyncpg.Pool:
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
                await migrate_database(conn)
        except BaseException:
            with suppress(*_UNAVAILABLE):
                await pool.close()
            raise
        return pool


MIGRATION_TIMEOUT = 3600.0
"""Seconds one migration statement may take: a migration may count or rewrite every row of a
database of years of calls, far beyond the command timeout of the call path."""


async def migrate_database(conn: asyncpg.Connection) -> tuple[int, int]:
    """Bring the schema up to SCHEMA_VERSION under the migration lock; (before, after)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        session = _PostgresSession(conn, timeout=MIGRATION_TIMEOUT)
        return await migrate(session, MIGRATIONS, newest=SCHEMA_VERSION)


async def schema_version(conn: asyncpg.Connection) -> int:
    """The version the database records; 0 before the first migration."""
    if not await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL"):
        return 0
    return await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")


async def _session_kept(conn: asyncpg.Connection) -> None:
    """Nothing to reset when a connection goes back to the pool: the store never changes a
    session's settings, listens or takes session locks. asyncpg's default reset would cost a
    round trip on every use, twice on a call's path."""


class _PostgresSession:
    """A `Session` on a pooled connection: `?` parameters numbered $1, $2, ... as asyncpg
    takes them, and NUL kept as U+FFFD."""

    def __init__(self, conn: asyncpg.Connection, timeout: float | None = None) -> None:
        self._conn = conn
        self._timeout = timeout
        """Seconds a statement may take; None: the pool's command timeout."""

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._conn.fetch(numbered(sql), *_storable(params), timeout=self._timeout)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        status: str = await self._conn.execute(
            numbered(sql), *_storable(params), timeout=self._timeout
        )
        count = status.rpartition(" ")[2]  # "INSERT 0 1", "UPDATE 3", "CREATE TABLE"
        return int(count) if count.isdigit() else 0

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(numbered(sql), [_storable(row) for row in rows])


_PARAMETER = re.compile(r"\?")


@functools.cache
def numbered(sql: str) -> str:
    """`sql` with its `?` parameters numbered $1, $2, ... in order (once per statement text;
    the store's SQL has no `?` inside a string)."""
    counter = itertools.count(1)
    return _PARAMETER.sub(lambda _: f"${next(counter)}", sql)


def _storable(params: Sequence[Any]) -> Sequence[Any]:
    if any(type(value) is str and "\x00" in value for value in params):
        return [
            value.replace("\x00", "\ufffd") if type(value) is str else value for value in params
        ]
    return params
