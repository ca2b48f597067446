"""CDRs and their legs over any engine's sessions, written once.

`apply` is one transaction of at most four `executemany` statements: the batch's starts,
then its legs, then its finishes, each in op order, then its ledger entries in lock order.
That has the effect of going op by op, because starts insert first-write-wins, a leg
written ahead (DIALLING) is completed by its final form and a final leg is kept, a
finish only updates a call whose start came before it, and ledger entries are independent
of the CDRs; and a batch costs a handful of round trips, not one per op.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

from router.storage import queries
from router.storage.cdr import CDR, CdrOp, Outcome, encode_value
from router.storage.protocol import INTERRUPTED_NOTE
from router.storage.repeats import RepeatKeys, fetched
from router.storage.rows import (
    LEG_COLUMNS,
    BatchRows,
    batch_rows,
    cdr_from_row,
    epoch_us,
    leg_from_row,
)
from router.storage.sessions import Session, SessionSource


class CdrTables(SessionSource):
    """The CDR part of `Store`: the write-behind ops, interrupted calls, queries."""

    repeats: RepeatKeys
    """The session ids this router's store keyed apart (router.storage.repeats)."""

    async def apply(self, ops: Sequence[CdrOp]) -> None:
        # Encoding a big batch takes a while: done in a worker so the call path keeps running;
        # again, only for a batch whose ids the store keyed apart (rare).
        batch = await asyncio.to_thread(batch_rows, ops, self.zone, self.router)
        async with self._transaction() as session:
            resolution = await fetched(self.repeats.resolving(ops, self.router), session.fetch)
            if resolution.ops is not ops:
                batch = await asyncio.to_thread(batch_rows, resolution.ops, self.zone, self.router)
            for sql, rows in batch_statements(batch):
                await session.executemany(sql, rows)
        self.repeats.settle(resolution)

    def stored_id(self, call_id: str) -> str:
        return self.repeats.stored_id(call_id)

    def with_rekeys(self, ops: Sequence[CdrOp]) -> list[CdrOp]:
        return self.repeats.with_rekeys(ops)

    async def stranded_calls(self, now: datetime, routers: Sequence[str] = ()) -> list[CDR]:
        async with self._connected() as session:
            return await self._stranded(session, now, routers)

    async def _stranded(self, session: Session, now: datetime, routers: Sequence[str]) -> list[CDR]:
        names = [self.router, *routers]
        where = queries.stranded(len(names))
        return await _select(session, where, [*names, epoch_us(now)], limit=None)

    async def close_interrupted(self, now: datetime, routers: Sequence[str] = ()) -> int:
        async with self._transaction() as session:
            stranded = await self._stranded(session, now, routers)
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
        older_than: CDR | None = None,
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
        if older_than is not None:
            where.add(queries.OLDER_THAN, *queries.listing_key(older_than))
        async with self._connected() as session:
            return await _select(session, where.sql(), where.params, limit=limit)

    async def answered_calls(
        self,
        since: datetime,
        until: datetime,
        *,
        number: str | None = None,
        after: CDR | None = None,
        limit: int,
    ) -> list[CDR]:
        where = _answered_in(since, until, number)
        if after is not None:
            where.add(queries.NEWER_THAN, *queries.listing_key(after))
        async with self._connected() as session:
            return await _select(session, where.sql(), where.params, limit=limit, oldest_first=True)

    async def answered_count(
        self, since: datetime, until: datetime, *, number: str | None = None
    ) -> int:
        where = _answered_in(since, until, number)
        async with self._connected() as session:
            [row] = await session.fetch(
                f"SELECT COUNT(*) AS calls FROM cdrs WHERE {where.sql()}", where.params
            )
        return int(row["calls"])

    async def get_cdr(self, call_id: str) -> CDR | None:
        async with self._connected() as session:
            found = await _select(session, "call_id = ?", [call_id], limit=None)
        return found[0] if found else None

    async def get_cdrs(self, call_ids: Sequence[str]) -> list[CDR]:
        if not call_ids:
            return []
        marks = ", ".join("?" for _ in call_ids)
        async with self._connected() as session:
            return await _select(session, f"call_id IN ({marks})", list(call_ids), limit=None)


def batch_statements(batch: BatchRows) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The statements of a batch in the order that has the effect of going op by op."""
    return [
        (sql, rows)
        for sql, rows in (
            (queries.INSERT_CDR, batch.cdrs),
            (queries.INSERT_LEG, batch.legs),
            *((queries.finish_cdr(run.columns), run.rows) for run in batch.finishes),
            (queries.INSERT_LEDGER, batch.ledger),
        )
        if rows
    ]


def _answered_in(since: datetime, until: datetime, number: str | None) -> queries.Conditions:
    """The answered calls started in [since, until), of `number` if given: an index range of
    the starts (cdrs_by_start, or cdrs_by_number_start for one number)."""
    where = queries.Conditions()
    if number is not None:
        where.add("number = ?", number)
    where.add("started_us >= ?", epoch_us(since))
    where.add("started_us < ?", epoch_us(until))
    where.add("outcome = ?", Outcome.ANSWERED.value)
    return where


async def _select(
    session: Session,
    where: str,
    params: list[Any],
    *,
    limit: int | None,
    oldest_first: bool = False,
) -> list[CDR]:
    """CDRs matching `where`, newest first (or oldest), each with its legs, in one statement."""
    sql = queries.select_cdrs(where, limited=limit is not None, oldest_first=oldest_first)
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
