"""Sessions: what an engine gives the storage code written once, and the migration runner.

An engine (router.storage.sqlite, router.storage.postgres) is a `SessionSource`: it hands out
sessions, each one connection that runs `?`-parameter statements, in a transaction or not.
Every failure to reach or write the database is StoreUnavailable before it leaves the
engine's session. The tables' behaviour is written once over sessions, one class per group
of tables (router.storage.cdr_tables, router.storage.account_tables), and
router.storage.sql_store joins them into the `Store` both engines are.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from router.storage import queries
from router.storage.protocol import StoreUnavailable
from router.storage.rows import Row
from router.storage.schema import Migration


class Session(Protocol):
    """One connection, running statements whose parameters are `?`, in order."""

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; how many rows it inserted, updated or deleted."""

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class SessionSource(ABC):
    """What the tables' classes ask of an engine: sessions, and who and where the router is."""

    router: str
    """The name this router gives the calls it starts."""
    zone: ZoneInfo
    """The zone a ledger entry's month and day are read in."""

    @abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Session]:
        """A session in one write transaction, committed when the block ends without error."""

    @abstractmethod
    def _connected(self) -> AbstractAsyncContextManager[Session]:
        """A session outside any transaction of ours: for reads."""

    def _single_write(self) -> AbstractAsyncContextManager[Session]:
        """A session for one writing statement, on the call path; a transaction unless the
        engine makes one statement atomic and safe by itself."""
        return self._transaction()


async def migrate(
    session: Session, migrations: Sequence[Migration], *, newest: int
) -> tuple[int, int]:
    """Bring the schema of a session in a transaction up to `newest`; (before, after).

    Raises StoreUnavailable for a schema newer than this router knows: it must not write
    into tables whose meaning it does not know.
    """
    await session.execute(queries.CREATE_VERSION_TABLE)
    [row] = await session.fetch(queries.CURRENT_VERSION)
    current: int = row["version"]
    if current > newest:
        raise StoreUnavailable(
            f"database schema version {current} is newer than this router's {newest}"
        )
    for version in range(current + 1, newest + 1):
        for statement in migrations[version - 1]:
            await session.execute(statement)
        await session.execute(queries.RECORD_VERSION, (version,))
    return current, newest
