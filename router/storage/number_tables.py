"""The numbers' inventory, its history, service providers and subscribers over any engine's
sessions, written once.

A transition is written by one conditional UPDATE on the number's `version` (the version
the transition was computed from), in the same transaction as its history rows, the fees
it books and the subscriber it makes, if any: of two operators or routers acting on one
number at the same instant, one updates the row and the other updates nothing and is told
so, whatever the engine. A number coming back to the pool starts a holding of its balance
(schema.HOLDING_BALANCES) in that transaction; the holding that ends is named after the
subscriber that held it, or that let it go earlier (a withdrawn application).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from numbering.lifecycle import Change, NumberRecord, Status
from rating.ledger import LedgerEntry
from rating.tariff import DEFAULT_LOW_BALANCE_WARNING
from router.storage import queries
from router.storage.number_patterns import pattern_ranges
from router.storage.number_rows import (
    RECORD_COLUMNS,
    HistoryEntry,
    NameTaken,
    PartyRow,
    history_from_row,
    history_params,
    party_from_row,
    record_from_row,
    record_params,
)
from router.storage.rows import epoch_us, fen_of, ledger_params, lock_order
from router.storage.sessions import SessionSource

_INSERT_NUMBER = queries.insert(
    "numbers", (*RECORD_COLUMNS, "due_us", "added_us"), "(number) DO NOTHING"
)
_UPDATE_NUMBER = (
    "UPDATE numbers SET "
    + ", ".join(f"{name} = ?" for name in (*RECORD_COLUMNS[1:], "due_us"))
    + " WHERE number = ? AND version = ?"
)
_INSERT_HISTORY = (
    "INSERT INTO number_history (number, at_us, actor, from_status, to_status, reason, fees,"
    " fee_fen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_RECORD = f"SELECT {', '.join(RECORD_COLUMNS)} FROM numbers"
_PARTY = "name, full_name, licence, legal_representative, id_masked, created_us"
IMPORT_BATCH = 10_000
"""Numbers inserted by one statement batch: each batch stays within a command timeout."""
ANALYZE_AFTER = 1_000
"""An import adding this many numbers refreshes the planner's statistics of the table."""


class NumberTables(SessionSource):
    """The numbers' part of `Store`."""

    # --- the inventory --------------------------------------------------------------------

    async def add_numbers(self, records: Iterable[NumberRecord], added: datetime) -> int:
        """Put numbers in the pool in one transaction; those already there are left as they
        are. Returns how many were new."""
        added_us = epoch_us(added)
        rows = ((*record_params(record), None, added_us) for record in records)
        async with self._transaction() as session:
            [before] = await session.fetch("SELECT COUNT(*) AS n FROM numbers")
            while batch := list(itertools.islice(rows, IMPORT_BATCH)):
                await session.executemany(_INSERT_NUMBER, batch)
            [after] = await session.fetch("SELECT COUNT(*) AS n FROM numbers")
        added_count = int(after["n"]) - int(before["n"])
        if added_count >= ANALYZE_AFTER:
            await self._analyze()
        return added_count

    async def _analyze(self) -> None:
        """Statistics of the numbers as they now are, on either engine: without them the
        planner takes a search for a rare pattern in a segment and status for a common one
        and reads the whole segment (SQLite keeps none until asked; PostgreSQL's autovacuum
        comes later)."""
        async with self._single_write() as session:
            await session.execute("ANALYZE numbers")

    async def number_record(self, number: str) -> NumberRecord | None:
        async with self._connected() as session:
            rows = await session.fetch(f"{_SELECT_RECORD} WHERE number = ?", (number,))
        return record_from_row(rows[0]) if rows else None

    async def number_records(self, numbers: Sequence[str]) -> dict[str, NumberRecord]:
        """The records of these numbers that are in the inventory."""
        found: dict[str, NumberRecord] = {}
        async with self._connected() as session:
            for start in range(0, len(numbers), 500):
                chunk = list(numbers[start : start + 500])
                marks = ", ".join("?" for _ in chunk)
                rows = await session.fetch(f"{_SELECT_RECORD} WHERE number IN ({marks})", chunk)
                found.update((row["number"], record_from_row(row)) for row in rows)
        return found

    async def search_numbers(
        self,
        *,
        segment: str | None = None,
        grade: str | None = None,
        premium: bool | None = None,
        pattern: str | None = None,
        status: str | None = None,
        holder: str | None = None,
        subscriber: str | None = None,
        due_by: datetime | None = None,
        limit: int = 50,
    ) -> list[NumberRecord]:
        """Numbers in number order; `pattern` is digits the number contains, `holder` a
        provider or subscriber, `subscriber` only a subscriber; `premium` True for any grade
        but ordinary. With `due_by`, a number whose next time-driven transition fell due by
        then is found whatever its status and holders as written, for the caller to catch
        it up and ask again (router.numbers.inventory.Inventory.search)."""
        where = queries.Conditions()

        def held(condition: str, *values: str) -> None:
            if due_by is None:
                where.add(condition, *values)
            else:
                where.add(f"({condition} OR due_us <= ?)", *values, epoch_us(due_by))

        if segment is not None:
            where.add("number >= ? AND number < ?", *_segment_bounds(segment))
        if grade is not None:
            where.add("grade = ?", grade)
        if premium is not None:
            where.add("grade <> ?" if premium else "grade = ?", "ordinary")
        if pattern is not None:
            where.add("number LIKE ?", f"%{pattern}%")
            if ranges := pattern_ranges(pattern):
                where.add(
                    "number IN ("
                    + " UNION ALL ".join(
                        f"SELECT number FROM numbers WHERE {place} BETWEEN ? AND ?"
                        for place, _, _ in ranges
                    )
                    + ")",
                    *(bound for _, low, high in ranges for bound in (low, high)),
                )
        if status is not None:
            held("status = ?", status)
        if holder is not None:
            held("(provider = ? OR subscriber = ?)", holder, holder)
        if subscriber is not None:
            held("subscriber = ?", subscriber)
        async with self._connected() as session:
            rows = await session.fetch(
                f"{_SELECT_RECORD} WHERE {where.sql()} ORDER BY number LIMIT ?",
                (*where.params, limit),
            )
        return [record_from_row(row) for row in rows]

    async def held_numbers(self) -> list[NumberRecord]:
        """Numbers a subscriber holds (applied for, in review, in service, suspended, given
        notice): the numbers a routing plan should exist for."""
        async with self._connected() as session:
            rows = await session.fetch(
                f"{_SELECT_RECORD} WHERE subscriber IS NOT NULL ORDER BY number"
            )
        return [record_from_row(row) for row in rows]

    async def due_numbers(self, now: datetime, limit: int) -> list[NumberRecord]:
        """Numbers whose next time-driven transition fell due by `now`, earliest first."""
        async with self._connected() as session:
            rows = await session.fetch(
                f"{_SELECT_RECORD} WHERE due_us <= ? ORDER BY due_us, number LIMIT ?",
                (epoch_us(now), limit),
            )
        return [record_from_row(row) for row in rows]

    async def record_changes(
        self,
        changes: Sequence[Change],
        due: datetime | None,
        fees: Sequence[Sequence[LedgerEntry]],
        *,
        party: PartyRow | None = None,
        material: PartyRow | None = None,
        replacing: PartyRow | None = None,
    ) -> bool:
        """Write the transitions of one number, made in order from the record as read, with
        the fees each books (`fees[i]` for `changes[i]`), when its next time-driven
        transition falls due, and the subscriber `party` they lock the number to, when it is
        new, or the real-name `material` of an existing subscriber that had none (or had
        `replacing`'s, after a rejected review). False, with nothing written, when the number
        changed since it was read (another operator or router was first); NameTaken, with
        nothing written, when `party`'s name was taken meanwhile or `material`'s subscriber
        was given other material meanwhile."""
        first, last = changes[0], changes[-1]
        update = (*record_params(last.after)[1:], None if due is None else epoch_us(due))
        ledger_rows = sorted(
            (ledger_params(entry, 0, self.zone) for entry_list in fees for entry in entry_list),
            key=lock_order,
        )
        async with self._transaction() as session:
            moved = await session.execute(
                _UPDATE_NUMBER, (*update, first.before.number, first.before.version)
            )
            if moved != 1:
                return False
            if party is not None and await session.execute(*_party_insert(party)) != 1:
                raise NameTaken(party.name)  # rolls the transaction back
            given = _material_given(material, replacing) if material is not None else None
            if given is not None and await session.execute(*given) != 1:
                raise NameTaken(material.name)  # material given by another: rolls back
            for change, booked in zip(changes, fees, strict=True):
                await session.execute(
                    _INSERT_HISTORY,
                    history_params(
                        change,
                        "; ".join(f"{e.kind} {-e.amount} to {e.number}" for e in booked),
                        sum(-fen_of(e.amount) for e in booked),
                    ),
                )
                number, holder = change.after.number, change.before.subscriber
                if _back_to_pool(change) or _let_go(change):
                    await session.execute(queries.HOLDING_ENDS, (number, number, holder))
                if _back_to_pool(change):
                    await session.execute(queries.HOLDING_STARTS, (number, epoch_us(change.at)))
            for row in ledger_rows:
                await session.execute(queries.INSERT_LEDGER, row)
        return True

    async def number_history(self, number: str) -> list[HistoryEntry]:
        async with self._connected() as session:
            rows = await session.fetch(
                "SELECT * FROM number_history WHERE number = ? ORDER BY at_us, id", (number,)
            )
        return [history_from_row(row) for row in rows]

    # --- service providers and subscribers ------------------------------------------------

    async def add_party(self, party: PartyRow) -> bool:
        """Add a provider (`party.provider` None) or a subscriber of one; False if the name
        is taken."""
        async with self._single_write() as session:
            return await session.execute(*_party_insert(party)) == 1

    async def providers(self, name: str | None = None) -> list[PartyRow]:
        """Every service provider by name, or the one named."""
        where, params = ("WHERE name = ?", (name,)) if name is not None else ("", ())
        async with self._connected() as session:
            rows = await session.fetch(
                f"SELECT {_PARTY}, NULL AS provider, low_balance_warning_fen FROM providers "
                f"{where} ORDER BY name",
                params,
            )
        return [party_from_row(row) for row in rows]

    async def set_provider_warning(self, name: str, threshold: Decimal) -> bool:
        """Set the provider's low-balance warning threshold; False if there is no such
        provider."""
        async with self._single_write() as session:
            updated = await session.execute(
                "UPDATE providers SET low_balance_warning_fen = ? WHERE name = ?",
                (fen_of(threshold), name),
            )
        return updated == 1

    async def subscribers(
        self, *, name: str | None = None, provider: str | None = None
    ) -> list[PartyRow]:
        """Subscribers by name: the one named, a provider's, or all."""
        where = queries.Conditions()
        if name is not None:
            where.add("name = ?", name)
        if provider is not None:
            where.add("provider = ?", provider)
        async with self._connected() as session:
            rows = await session.fetch(
                f"SELECT {_PARTY}, provider, NULL AS low_balance_warning_fen FROM subscribers "
                f"WHERE {where.sql()} ORDER BY name",
                where.params,
            )
        return [party_from_row(row) for row in rows]


def _material_given(party: PartyRow, replacing: PartyRow | None) -> tuple[str, tuple[object, ...]]:
    """The statement giving a subscriber `party`'s real-name material: one without complete
    material, or (`replacing`) one whose material is still the one a rejected review read;
    otherwise material once complete is kept as it was given."""
    values = (party.licence, party.legal_representative, party.id_masked, party.name)
    update = "UPDATE subscribers SET licence = ?, legal_representative = ?, id_masked = ? "
    if replacing is not None:
        return (
            update + "WHERE name = ? AND licence = ? AND legal_representative = ? "
            "AND id_masked = ?",
            (*values, replacing.licence, replacing.legal_representative, replacing.id_masked),
        )
    return (
        update + "WHERE name = ? AND (COALESCE(licence, '') = '' "
        "OR COALESCE(legal_representative, '') = '' OR COALESCE(id_masked, '') = '')",
        values,
    )


def _party_insert(party: PartyRow) -> tuple[str, tuple[object, ...]]:
    """The statement adding a provider or subscriber unless its name is taken, and its
    parameters."""
    params: tuple[object, ...] = (
        party.name,
        party.full_name,
        party.licence,
        party.legal_representative,
        party.id_masked,
        epoch_us(party.created_at),
    )
    if party.provider is None:
        sql = (
            f"INSERT INTO providers ({_PARTY}, low_balance_warning_fen) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        threshold = party.low_balance_warning
        params = (*params, fen_of(DEFAULT_LOW_BALANCE_WARNING if threshold is None else threshold))
    else:
        sql = f"INSERT INTO subscribers ({_PARTY}, provider) VALUES (?, ?, ?, ?, ?, ?, ?)"
        params = (*params, party.provider)
    return f"{sql} ON CONFLICT (name) DO NOTHING", params


def _back_to_pool(change: Change) -> bool:
    """The number came back to the pool: a new holding begins (its balance from nothing)."""
    return change.after.status == Status.AVAILABLE != change.before.status


def _let_go(change: Change) -> bool:
    """The subscriber lets the number go before it is back in the pool (an application
    withdrawn): the holding is named after it, for what it leaves there to be collected."""
    return change.before.subscriber is not None and change.after.subscriber is None


def _segment_bounds(segment: str) -> tuple[str, str]:
    """The numbers of a segment as a range of 10-digit strings ('4008' -> 4008000000 up to
    4009000000): digits of one length sort alike in every collation."""
    return segment.ljust(10, "0"), str(int(segment) + 1).ljust(10, "0")
