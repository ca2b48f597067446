"""The `Store` behaviour written once over SQL: each engine only connects and runs statements.

`SqlStore` does everything the protocol promises with the SQL of router.storage.queries and
the rows of router.storage.rows; an engine (router.storage.sqlite, router.storage.postgres)
gives it sessions, each one connection that runs `?`-parameter statements, and says how it
holds a transaction. Every failure to reach or write the database is StoreUnavailable
before it leaves the engine's session.

`apply` is one transaction of at most four `executemany` statements: the batch's starts,
then its legs, then its finishes, each in op order, then its ledger entries in lock order.
That has the effect of going op by op, because starts and legs insert first-write-wins, a
finish only updates a call whose start came before it, and ledger entries are independent
of the CDRs; and a batch costs a handful of round trips, not one per op.

A new table for a new feature joins the same way: its DDL in router.storage.schema (once,
with the dialect's words), its statements beside the others' (once, with `?`), its methods
here or in a class of its own over the same `Session`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from rating.ledger import LedgerEntry, LedgerKind
from router.storage import queries
from router.storage.cdr import CDR, CdrOp, Outcome, encode_value
from router.storage.protocol import INTERRUPTED_NOTE, StoreUnavailable
from router.storage.rows import (
    LEG_COLUMNS,
    Row,
    UsageSnapshot,
    batch_rows,
    cdr_from_row,
    entry_from_row,
    epoch_us,
    ledger_params,
    leg_from_row,
    lock_order,
)
from router.storage.schema import Migration


class Session(Protocol):
    """One connection, running statements whose parameters are `?`, in order."""

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; how many rows it inserted, updated or deleted."""

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class SqlStore(ABC):
    """A `Store` over any engine that provides sessions (see the module's notes)."""

    def __init__(self, *, router: str, zone: ZoneInfo) -> None:
        self.router = router
        """The name this router gives the calls it starts."""
        self.zone = zone
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

    # --- CDRs -----------------------------------------------------------------------------

    async def apply(self, ops: Sequence[CdrOp]) -> None:
        # Encoding a big batch takes a while: done in a worker so the call path keeps running.
        batch = await asyncio.to_thread(batch_rows, ops, self.zone, self.router)
        async with self._transaction() as session:
            for sql, rows in (
                (queries.INSERT_CDR, batch.cdrs),
                (queries.INSERT_LEG, batch.legs),
                (queries.FINISH_CDR, batch.finishes),
                (queries.INSERT_LEDGER, batch.ledger),
            ):
                if rows:
                    await session.executemany(sql, rows)

    async def close_interrupted(self, now: datetime) -> int:
        async with self._transaction() as session:
            stranded = await _select(
                session, queries.STRANDED, [self.router, epoch_us(now)], limit=None
            )
            await session.executemany(
                queries.CLOSE_INTERRUPTED,
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
        where = queries.Conditions()
        if number is not None:
            where.add("number = ?", number)
        if caller is not None:
            where.add("(caller = ? OR caller_raw = ?)", caller, caller)
        if since is not None:
            where.add("started_us >= ?", epoch_us(since))
        if until is not None:
            where.add("started_us < ?", epoch_us(until))
        if outcome is not None:
            where.add("outcome = ?", outcome.value)
        async with self._connected() as session:
            return await _select(session, where.sql(), where.params, limit=limit)

    async def get_cdr(self, call_id: str) -> CDR | None:
        async with self._connected() as session:
            found = await _select(session, "call_id = ?", [call_id], limit=None)
        return found[0] if found else None

    # --- accounts: ledger, balances, usage counters, call caps ----------------------------

    async def usage(self, number: str, month: str, day: str) -> UsageSnapshot:
        params = (number, month, number, day, number, month, number)
        async with self._connected() as session:
            [row] = await session.fetch(queries.USAGE_SNAPSHOT, params)
        return UsageSnapshot.from_row(row)

    async def reserve_call(self, number: str, month: str, cap: int) -> bool:
        if cap <= 0:
            return False
        async with self._single_write() as session:
            return await session.execute(queries.RESERVE_CALL, (number, month, cap)) == 1

    async def release_call(self, number: str, month: str) -> None:
        async with self._single_write() as session:
            await session.execute(queries.RELEASE_CALL, (number, month))

    async def post_ledger(self, entries: Sequence[LedgerEntry]) -> int:
        rows = sorted((ledger_params(entry, 0, self.zone) for entry in entries), key=lock_order)
        added = 0
        async with self._transaction() as session:
            for row in rows:
                added += await session.execute(queries.INSERT_LEDGER, row)  # triggers' not counted
        return added

    async def ledger(
        self,
        number: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kind: LedgerKind | None = None,
    ) -> list[LedgerEntry]:
        where = queries.Conditions()
        where.add("number = ?", number)
        if since is not None:
            where.add("at_us >= ?", epoch_us(since))
        if until is not None:
            where.add("at_us < ?", epoch_us(until))
        if kind is not None:
            where.add("kind = ?", kind.value)
        async with self._connected() as session:
            rows = await session.fetch(
                queries.SELECT_LEDGER.format(where=where.sql()), where.params
            )
        return [entry_from_row(row) for row in rows]

    async def included_seconds_booked(self, number: str) -> dict[str, int]:
        async with self._connected() as session:
            rows = await session.fetch(queries.INCLUDED_SECONDS_BOOKED, (number,))
        return {row["ref"]: row["included_seconds"] for row in rows}


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


async def _select(
    session: Session, where: str, params: list[Any], *, limit: int | None
) -> list[CDR]:
    """CDRs matching `where`, newest first, each with its legs, in one statement."""
    sql = queries.select_cdrs(where, limited=limit is not None)
    rows = await session.fetch(sql, params if limit is None else [*params, limit])
    found: list[CDR] = []
    seq = queries.LEG_PREFIX + LEG_COLUMNS[1]
    for _, group in groupby(rows, key=itemgetter("call_id")):
        call_rows = list(group)
        legs = tuple(
            leg_from_row(row, queries.LEG_PREFIX) for row in call_rows if row[seq] is not None
        )
        found.append(cdr_from_row(call_rows[0], legs))
    return found


def _latest_known_time(cdr: CDR) -> datetime:
    """When an interrupted call was last known alive: its last leg's end, else its start."""
    return max([cdr.started_at, *(leg.ended_at for leg in cdr.legs)])
