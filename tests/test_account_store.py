"""The ledger, balances and usage counters on a real SQLite file."""

import asyncio
import sqlite3
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rating.ledger import LedgerEntry, LedgerKind
from router.storage.cdr import PostLedger, op_from_json, op_to_json
from router.storage.sqlite import SQLiteStore

SHANGHAI = ZoneInfo("Asia/Shanghai")
NUMBER = "4006001234"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def charge(call_id: str, amount: str, when: str = "2026-11-23 10:00") -> LedgerEntry:
    return LedgerEntry(NUMBER, at(when), Decimal(amount), LedgerKind.CALL, call_id, "local")


def payment(ref: str, amount: str, when: str = "2026-11-01 09:00") -> LedgerEntry:
    return LedgerEntry(NUMBER, at(when), Decimal(amount), LedgerKind.PAYMENT, ref, "top-up")


@pytest.fixture
async def store(tmp_path: Path):
    opened = SQLiteStore(tmp_path / "hotline400.db")
    await opened.open()
    yield opened
    await opened.close()


async def test_the_balance_is_the_sum_of_the_entries_and_repeats_are_ignored(
    store: SQLiteStore,
) -> None:
    assert await store.post_ledger([payment("receipt-1", "600.00")]) == 1
    assert await store.post_ledger([payment("receipt-1", "600.00")]) == 0
    await store.apply([PostLedger(charge("c1", "-0.36")), PostLedger(charge("c2", "-1.20"))])
    await store.apply([PostLedger(charge("c1", "-0.36"))])  # a journal replay
    usage = await store.usage(NUMBER, "2026-11", "2026-11-23")
    assert usage.balance == Decimal("598.44")
    assert [entry.amount for entry in await store.ledger(NUMBER)] == [
        Decimal("600.00"),
        Decimal("-0.36"),
        Decimal("-1.20"),
    ]


async def test_call_charges_move_the_month_and_day_counters(store: SQLiteStore) -> None:
    await store.apply(
        [
            PostLedger(charge("c1", "-0.50", "2026-11-22 23:59"), included_seconds=60),
            PostLedger(charge("c2", "-0.25", "2026-11-23 00:01")),
            PostLedger(charge("c3", "-2.00", "2026-12-01 00:00")),
        ]
    )
    await store.post_ledger([payment("receipt-2", "100.00")])
    november = await store.usage(NUMBER, "2026-11", "2026-11-23")
    assert (november.month_cost, november.day_cost, november.included_used) == (
        Decimal("0.75"),
        Decimal("0.25"),
        60,
    )
    december = await store.usage(NUMBER, "2026-12", "2026-12-01")
    assert (december.month_cost, december.day_cost) == (Decimal("2.00"), Decimal("2.00"))


async def test_a_number_without_entries_has_no_balance_and_zero_usage(store: SQLiteStore) -> None:
    usage = await store.usage("4009999999", "2026-11", "2026-11-23")
    assert (usage.balance, usage.month_cost, usage.month_calls) == (None, Decimal("0.00"), 0)


async def test_ledger_rows_are_never_changed_nor_deleted(store: SQLiteStore) -> None:
    await store.post_ledger([payment("receipt-3", "50.00")])
    with sqlite3.connect(store.path) as raw:
        with pytest.raises(sqlite3.IntegrityError, match="never changed"):
            raw.execute("UPDATE ledger SET amount_fen = 1")
        with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
            raw.execute("DELETE FROM ledger")
        assert raw.execute("SELECT amount_fen FROM ledger").fetchall() == [(5000,)]


async def test_two_routers_racing_for_a_call_cap_take_exactly_the_cap(tmp_path: Path) -> None:
    first, second = SQLiteStore(tmp_path / "shared.db"), SQLiteStore(tmp_path / "shared.db")
    await first.open()
    await second.open()
    try:
        attempts = [
            (first if n % 2 else second).reserve_call(NUMBER, "2026-11", 7) for n in range(40)
        ]
        granted = await asyncio.gather(*attempts)
        assert granted.count(True) == 7
        await first.release_call(NUMBER, "2026-11")
        assert await second.reserve_call(NUMBER, "2026-11", 7)
        assert not await first.reserve_call(NUMBER, "2026-11", 7)
        assert (await first.usage(NUMBER, "2026-11", "2026-11-23")).month_calls == 7
    finally:
        await first.close()
        await second.close()


def test_a_ledger_operation_survives_the_journal_round_trip() -> None:
    op = PostLedger(charge("c9", "-0.06"), included_seconds=6)
    assert op_from_json(op_to_json(op)) == op


amounts = st.decimals(min_value=Decimal("-500"), max_value=Decimal("500"), places=2)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(amounts, min_size=1, max_size=30))
def test_the_balance_always_equals_the_sum_of_the_rows(tmp_path: Path, values: list) -> None:
    async def book() -> tuple[Decimal | None, Decimal]:
        path = tmp_path / f"prop-{abs(hash(tuple(values)))}.db"
        path.unlink(missing_ok=True)
        store = SQLiteStore(path)
        await store.open()
        entries = [
            LedgerEntry(NUMBER, at("2026-11-23 10:00"), value, LedgerKind.ADJUSTMENT, f"a{i}")
            for i, value in enumerate(values)
        ]
        await store.post_ledger(entries)
        usage = await store.usage(NUMBER, "2026-11", "2026-11-23")
        rows = await store.ledger(NUMBER)
        await store.close()
        return usage.balance, sum((row.amount for row in rows), Decimal("0.00"))

    balance, total = asyncio.run(book())
    assert balance == total == sum(values, Decimal("0.00"))
