"""The ledger, balances, usage counters and call-cap units over any engine's sessions,
written once. The balance (of the holding an entry's instant falls in: schema.HOLDING_BALANCES)
and the cost counters move with each ledger insert, by the engine's triggers
(router.storage.sqlite, router.storage.postgres), in its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from rating.ledger import LedgerEntry, LedgerKind
from router.storage import queries
from router.storage.rows import (
    HeldBefore,
    Holding,
    UsageSnapshot,
    entry_from_row,
    epoch_us,
    ledger_params,
    lock_order,
    yuan_of,
)
from router.storage.sessions import SessionSource

REFS_A_READ = 500
"""Refs asked in one statement: within every engine's limit on parameters."""


class AccountTables(SessionSource):
    """The accounts part of `Store`: what a call reads and reserves, what commands book."""

    async def usage(self, number: str, month: str, day: str) -> UsageSnapshot:
        params = (number, number, month, number, day, number, month, number)
        async with self._connected() as session:
            [row] = await session.fetch(queries.USAGE_SNAPSHOT, params)
        return UsageSnapshot.from_row(row)

    async def reserve_call(self, number: str, month: str, cap: int) -> bool:
        if cap <= 0:
            return False
        async with self._single_write() as session:
            return await session.execute(queries.RESERVE_CALL, (number, number, month, cap)) == 1

    async def release_call(self, number: str, month: str) -> None:
        async with self._single_write() as session:
            await session.execute(queries.RELEASE_CALL, (number, number, month))

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

    async def ledger_refs(self, number: str, kind: LedgerKind, refs: Sequence[str]) -> set[str]:
        held: set[str] = set()
        async with self._connected() as session:
            for start in range(0, len(refs), REFS_A_READ):
                chunk = refs[start : start + REFS_A_READ]
                rows = await session.fetch(
                    queries.ledger_refs(len(chunk)), [number, kind.value, *chunk]
                )
                held.update(row["ref"] for row in rows)
        return held

    async def watch_balance(self, number: str) -> tuple[Decimal | None, Decimal]:
        async with self._transaction() as session:
            [watch] = await session.fetch(queries.LOCK_BALANCE_WATCH, (number,))
            rows = await session.fetch(queries.CURRENT_BALANCE, (number,))
            since, balance = (rows[0]["since_us"], rows[0]["balance_fen"]) if rows else (0, 0)
            seen = watch["seen_fen"] if watch["since_us"] == since else None
            await session.execute(queries.SEE_BALANCE, (since, balance, number))
        return (None if seen is None else yuan_of(seen)), yuan_of(balance)

    async def holdings(self, number: str) -> list[Holding]:
        async with self._connected() as session:
            rows = await session.fetch(queries.HOLDINGS, (number,))
        return [Holding.from_row(row) for row in rows]

    async def holdings_of(self, holder: str) -> list[HeldBefore]:
        async with self._connected() as session:
            rows = await session.fetch(queries.HOLDINGS_OF, (holder,))
        return [HeldBefore.from_row(row) for row in rows]

    async def included_seconds_booked(self, number: str) -> dict[str, int]:
        async with self._connected() as session:
            rows = await session.fetch(queries.INCLUDED_SECONDS_BOOKED, (number,))
        return {row["ref"]: row["included_seconds"] for row in rows}
