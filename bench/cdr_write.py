"""CDR write throughput: the store per batch size, the write-behind writer, the spool journal.

Run: python bench/cdr_write.py [CALLS]   (each call is 4 ops: start, 2 legs, finish)
Everything runs on real files in a temporary directory (WAL, synchronous=NORMAL).

Last, the finish statement: the batches a router writes for plain answered calls (25 calls
a batch: start, the leg written ahead, the leg, the finish of the six fields every call
sets), once as the store writes them (an UPDATE of the columns a finish sets) and once
with the statement it replaced as the baseline (one UPDATE for every finish, naming every
finish column with a CASE), in alternating rounds: CPU per call of each and their ratio.
A third writer runs the store's batch with the NULL adapter the store registers taken out
of sqlite3's registry, as every NULL was bound before: its ratio to the store's batch.
Then a priced call (its price on the CDR, a ledger entry and the triggers that move the
balance and counters) with its price in the call's one finish, as the router sends it, and
in a finish of its own, as it did (two UPDATEs a call where finishes alike share one).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from rating.ledger import LedgerEntry, LedgerKind
from router.storage.cdr import (
    CDR,
    DIALLING,
    AddLeg,
    CallerRegion,
    CdrOp,
    FinishCall,
    ForwardReason,
    Leg,
    Outcome,
    PostLedger,
    StartCall,
    encode_value,
    op_to_json,
)
from router.storage.cdr_tables import batch_statements
from router.storage.rows import FINISH_COLUMNS, batch_rows
from router.storage.spool import Journal
from router.storage.sqlite import SQLiteStore, _apply_batch
from router.storage.writer import CdrWriter

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 22, 18, 14, 24, tzinfo=SHANGHAI)


def call_ops(n: int) -> list[CdrOp]:
    call_id = f"1795371264.{n}"
    started = T0 + timedelta(seconds=n)
    cdr = CDR(
        call_id=call_id,
        number=f"400000{n % 1000:04d}",
        caller_raw=f"+86 138 {n % 10000:04d} 0011",
        caller=f"138{n % 10000:04d}0011",
        caller_kind="mobile",
        started_at=started,
        region=CallerRegion("山东", "济南", "0531"),
    )
    legs = [
        AddLeg(
            call_id,
            Leg(seq, f"1380000001{seq}", status, started, 5, talk, reason),
        )
        for seq, status, talk, reason in (
            (1, "BUSY", 0, ForwardReason.PRIMARY),
            (2, "ANSWER", 60, ForwardReason.BUSY),
        )
    ]
    finish = FinishCall(
        call_id,
        {
            "answered_at": started + timedelta(seconds=10),
            "ended_at": started + timedelta(seconds=70),
            "billable_seconds": 60,
            "outcome": Outcome.ANSWERED,
            "caller_share": Decimal("0.22"),
            "callee_share": Decimal("0.20"),
            "total": Decimal("0.42"),
            "tariff_id": "nationwide-0.20",
        },
    )
    return [StartCall(cdr), *legs, finish]


def report(label: str, ops: int, seconds: float) -> None:
    print(f"{label:<44} {ops:>8} ops  {seconds:7.3f} s  {ops / seconds:>10,.0f} ops/s")


async def bench_store(directory: Path, ops: list[CdrOp]) -> None:
    for batch_size in (1, 10, 100, 500):
        store = SQLiteStore(directory / f"store-{batch_size}.db")
        await store.open()
        subset = ops[: min(len(ops), batch_size * 400)]
        began = time.perf_counter()
        for start in range(0, len(subset), batch_size):
            await store.apply(subset[start : start + batch_size])
        report(f"store.apply, batch of {batch_size}", len(subset), time.perf_counter() - began)
        await store.close()


class LoopStall:
    """The longest the event loop (the call path) was kept from a 1 ms tick."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            planned = time.perf_counter() + 0.001
            await asyncio.sleep(0.001)
            self.worst = max(self.worst, time.perf_counter() - planned)

    def stop(self) -> float:
        self._task.cancel()
        return self.worst


async def bench_writer(directory: Path, ops: list[CdrOp]) -> None:
    store = SQLiteStore(directory / "writer.db")
    await store.open()
    writer = CdrWriter(store, Journal(directory / "writer.journal"))
    await writer.start()
    began = time.perf_counter()
    for op in ops:
        writer.submit(op)
    submitted = time.perf_counter() - began
    stall = LoopStall()
    await writer.close()
    total = time.perf_counter() - began
    print(f"{'writer.submit (call path)':<44} {submitted / len(ops) * 1e6:8.2f} µs per op")
    report("writer, submit to durable (batch 500)", len(ops), total)
    print(f"{'  worst event-loop stall while draining':<44} {stall.stop() * 1e3:8.1f} ms")

    paced = [op for n in range(len(ops) // 4, len(ops) // 4 + 2000) for op in call_ops(n)]
    writer = CdrWriter(store, Journal(directory / "writer.journal"))
    await writer.start()
    stall = LoopStall()
    began = time.perf_counter()
    for start in range(0, len(paced), 40):  # 1000 calls/s, submitted every 10 ms
        for op in paced[start : start + 40]:
            writer.submit(op)
        await asyncio.sleep(0.01)
    await writer.close()
    report("writer at 4,000 ops/s offered (1,000 calls/s)", len(paced), time.perf_counter() - began)
    print(f"{'  worst event-loop stall':<44} {stall.stop() * 1e3:8.1f} ms")
    await store.close()


async def bench_spool(directory: Path, ops: list[CdrOp]) -> None:
    journal = Journal(directory / "spool.journal")
    records = [op_to_json(op) for op in ops]
    began = time.perf_counter()
    for start in range(0, len(records), 500):
        await asyncio.to_thread(journal.append, records[start : start + 500])
    report("journal.append, batch of 500 (fsync each)", len(records), time.perf_counter() - began)
    print(f"{'journal size':<44} {journal.size_bytes / len(records):8.0f} bytes per op")

    store = SQLiteStore(directory / "replay.db")
    await store.open()
    writer = CdrWriter(store, journal)
    stall = LoopStall()
    began = time.perf_counter()
    await writer.start()
    report("journal replay into the store", len(records), time.perf_counter() - began)
    print(f"{'  worst event-loop stall while replaying':<44} {stall.stop() * 1e3:8.1f} ms")
    await writer.close()
    await store.close()


EVERY_COLUMN_FINISH = (
    "UPDATE cdrs SET "
    + ", ".join(f"{name} = CASE WHEN ? THEN ? ELSE {name} END" for name in FINISH_COLUMNS)
    + " WHERE call_id = ?"
)
"""The baseline: the finish statement the store used before it named only the columns set."""
FINISH_ROUNDS = 6
CALLS_A_BATCH = 25


def plain_answered_call(n: int) -> list[CdrOp]:
    """A call as the router writes it: start, leg ahead, leg, then the six fields."""
    call_id = f"1795371264.{n}"
    started = T0 + timedelta(seconds=n)
    cdr = CDR(call_id, "4000000001", f"138{n:08d}", f"138{n:08d}", "mobile", started)
    ahead = Leg(1, "13800000011", DIALLING, started, 0, 0, ForwardReason.PRIMARY)
    leg = Leg(1, "13800000011", "ANSWER", started, 5, 60, ForwardReason.PRIMARY)
    fields = {
        "answered_at": started + timedelta(seconds=5),
        "ended_at": started + timedelta(seconds=65),
        "billable_seconds": 60,
        "outcome": Outcome.ANSWERED,
        "rule": "default",
        "note": None,
    }
    finish = FinishCall(call_id, fields)
    return [StartCall(cdr), AddLeg(call_id, ahead), AddLeg(call_id, leg), finish]


def _write_every_column(connection: sqlite3.Connection, ops: list[CdrOp]) -> None:
    batch = batch_rows([op for op in ops if not isinstance(op, FinishCall)], SHANGHAI, "")
    connection.execute("BEGIN IMMEDIATE")
    for sql, rows in batch_statements(batch):
        connection.executemany(sql, rows)
    finishes = [op for op in ops if isinstance(op, FinishCall)]
    connection.executemany(EVERY_COLUMN_FINISH, [_flagged(op) for op in finishes])
    connection.execute("COMMIT")


def _flagged(finish: FinishCall) -> tuple[object, ...]:
    params: list[object] = []
    for name in FINISH_COLUMNS:
        present = name in finish.fields
        params += (present, encode_value(finish.fields[name]) if present else None)
    return (*params, finish.call_id)


def _write_shipped(connection: sqlite3.Connection, ops: list[CdrOp]) -> None:
    _apply_batch(connection, ops, SHANGHAI, "")  # the store's own batch, on its thread


NULL_ADAPTER = (type(None), sqlite3.PrepareProtocol)


def _write_without_null_adapter(connection: sqlite3.Connection, ops: list[CdrOp]) -> None:
    adapter = sqlite3.adapters.pop(NULL_ADAPTER)
    try:
        _apply_batch(connection, ops, SHANGHAI, "")
    finally:
        sqlite3.adapters[NULL_ADAPTER] = adapter


Variant = tuple[Callable[[int], list[CdrOp]], Callable[[sqlite3.Connection, list[CdrOp]], None]]
"""The ops of call n, and how a batch of them is written."""


async def compare_batches(
    directory: Path, calls: int, title: str, variants: dict[str, Variant]
) -> None:
    """CPU per call of each variant's batches (CALLS_A_BATCH calls each) on a fresh copy of
    a new store, in alternating rounds; then each variant's ratio to the first."""
    seed = directory / "batch-seed.db"
    if not seed.exists():
        store = SQLiteStore(seed)
        await store.open()
        await store.close()
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(FINISH_ROUNDS):
        for index, (name, (call, write)) in enumerate(variants.items()):
            copy = directory / f"{title.replace(' ', '-')}-{round_}-{index}.db"
            shutil.copyfile(seed, copy)
            connection = sqlite3.connect(copy, isolation_level=None)
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            batches = [
                [op for n in range(start, start + CALLS_A_BATCH) for op in call(n)]
                for start in range(0, calls, CALLS_A_BATCH)
            ]
            began = time.process_time()
            for batch in batches:
                write(connection, batch)
            cpu[name].append((time.process_time() - began) / calls * 1e6)
            connection.close()
    for name, rounds in cpu.items():
        print(f"{title + ': ' + name:<56} {statistics.median(rounds):8.1f} µs CPU per call")
    first, *others = cpu
    for name in others:
        ratios = [other / ours for other, ours in zip(cpu[name], cpu[first], strict=True)]
        label = f"  {name} / {first}, median"
        print(f"{label:<56} {statistics.median(ratios):8.2f}")


def priced_call(n: int, *, price_apart: bool = False) -> list[CdrOp]:
    """A plain answered call on a prepaid account: its price on the CDR, its ledger entry;
    `price_apart` sends the price in a finish of its own, as the router did."""
    start, ahead, leg, finish = plain_answered_call(n)
    money = {
        "caller_share": Decimal("0.15"),
        "callee_share": Decimal("0.60"),
        "total": Decimal("0.75"),
        "tariff_id": "e2e-regional@e2e",
    }
    answered = finish.fields["answered_at"]
    entry = LedgerEntry("4000000008", answered, Decimal("-0.60"), LedgerKind.CALL, finish.call_id)
    booked = PostLedger(entry, 0)
    if price_apart:
        return [start, ahead, leg, finish, FinishCall(finish.call_id, money), booked]
    return [start, ahead, leg, FinishCall(finish.call_id, {**finish.fields, **money}), booked]


COMPARISONS: dict[str, dict[str, Variant]] = {
    "finish": {
        "columns set": (plain_answered_call, _write_shipped),
        "every column (before)": (plain_answered_call, _write_every_column),
        "columns set, NULLs unregistered": (plain_answered_call, _write_without_null_adapter),
    },
    "priced call": {
        "one finish": (priced_call, _write_shipped),
        "price in a finish apart (before)": (
            functools.partial(priced_call, price_apart=True),
            _write_shipped,
        ),
    },
}
"""Batch writes compared in the same rounds, the store's as it writes them first."""


async def main(calls: int) -> None:
    ops = [op for n in range(calls) for op in call_ops(n)]
    idle = LoopStall()
    await asyncio.sleep(2)
    print(f"{'worst event-loop stall, idle (machine noise)':<44} {idle.stop() * 1e3:8.1f} ms")
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        await bench_store(directory, ops)
        await bench_writer(directory, ops)
        await bench_spool(directory, ops)
        for title, variants in COMPARISONS.items():
            await compare_batches(directory, min(calls, 5000), title, variants)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("calls", nargs="?", type=int, default=10_000, help="calls to write")
    asyncio.run(main(parser.parse_args().calls))
