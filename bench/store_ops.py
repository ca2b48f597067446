"""The store's operations on each engine: CDR batches as the writer applies them, and the two
store calls on a call's path (the counters read, the cap unit reserved). The batches go in
turn to a second store that skips the read of each batch's start ids (router.storage.repeats),
as batches were written before it: the ratio of the two is what the read costs.

Run: python bench/store_ops.py [--calls N] [--store postgresql://...]
Without --store only SQLite (a file in a temporary directory) is measured; with it, also
PostgreSQL, in a scratch schema of that database that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Generator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

from rating.ledger import LedgerEntry, LedgerKind
from router.storage.cdr import (
    CDR,
    AddLeg,
    CallerRegion,
    CdrOp,
    FinishCall,
    ForwardReason,
    Leg,
    Outcome,
    PostLedger,
    StartCall,
)
from router.storage.location import build_store
from router.storage.repeats import Query, RepeatKeys, Resolution
from router.storage.rows import Row

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
BATCH = 500


def call_ops(n: int) -> list[CdrOp]:
    """What the router writes for an answered, priced call: 4 ops."""
    call_id = f"1795400000.{n}"
    started = T0 + timedelta(seconds=n)
    number = f"400000{n % 100:04d}"
    cdr = CDR(
        call_id,
        number,
        "13800000011",
        "13800000011",
        "mobile",
        started,
        CallerRegion("山东", "济南", "0531"),
    )
    leg = Leg(1, "13800000051", "ANSWER", started, 5, 60, ForwardReason.PRIMARY)
    money = {
        "caller_share": Decimal("0.22"),
        "callee_share": Decimal("0.60"),
        "total": Decimal("0.82"),
        "tariff_id": "office@v1",
    }
    finish = {
        "answered_at": started + timedelta(seconds=5),
        "billable_seconds": 60,
        "ended_at": started + timedelta(seconds=65),
        "outcome": Outcome.ANSWERED,
        **money,
    }
    entry = LedgerEntry(number, started, Decimal("-0.60"), LedgerKind.CALL, call_id)
    return [StartCall(cdr), AddLeg(call_id, leg), FinishCall(call_id, finish), PostLedger(entry)]


@asynccontextmanager
async def scratch(server: str) -> AsyncIterator[str]:
    schema = f"hotline400_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        separator = "&" if "?" in server else "?"
        yield f"{server}{separator}search_path={schema}"
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


def quantiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100)
    return f"{cuts[49] * 1000:.2f} / {cuts[98] * 1000:.2f} ms"


class Unchecked(RepeatKeys):
    """The store's batches as before it told repeated uniqueids apart: no read of the starts."""

    def resolving(
        self, ops: Sequence[CdrOp], router: str
    ) -> Generator[Query, list[Row], Resolution]:
        yield from ()  # reads nothing
        return Resolution(ops, {}, [])


async def measure(url: str, baseline_url: str, calls: int) -> dict[str, str]:
    store = build_store(url, zone=SHANGHAI, router="bench")
    baseline = build_store(baseline_url, zone=SHANGHAI, router="bench")
    baseline.repeats = Unchecked()
    await store.open()
    await baseline.open()
    try:
        ops = [op for n in range(calls) for op in call_ops(n)]
        wall, cpu = {store: 0.0, baseline: 0.0}, {store: 0.0, baseline: 0.0}
        for start in range(0, len(ops), BATCH):  # the two in turn, each first every other batch
            pair = (store, baseline) if start // BATCH % 2 else (baseline, store)
            for each in pair:
                began, began_cpu = time.perf_counter(), time.process_time()
                await each.apply(ops[start : start + BATCH])
                wall[each] += time.perf_counter() - began
                cpu[each] += time.process_time() - began_cpu
        written = wall[store]
        reads, reserves = [], []
        for n in range(min(calls, 2000)):
            number = f"400000{n % 100:04d}"
            began = time.perf_counter()
            await store.usage(number, "2026-11", "2026-11-23")
            reads.append(time.perf_counter() - began)
            began = time.perf_counter()
            await store.reserve_call(number, "2026-11", 1_000_000)
            reserves.append(time.perf_counter() - began)
        found = len(await store.query_cdrs(number="4000000007"))
    finally:
        await store.close()
        await baseline.close()
    batches = -(-len(ops) // BATCH)
    return {
        "CDR batches (calls/s)": f"{calls / written:,.0f}",
        "  unchecked (calls/s)": f"{calls / wall[baseline]:,.0f}",
        "  wall, checked/unchecked": f"{wall[store] / wall[baseline]:.3f}",
        "  CPU ms a batch, checked": f"{cpu[store] / batches * 1000:.2f}",
        "  CPU ms a batch, unchecked": f"{cpu[baseline] / batches * 1000:.2f}",
        "usage() p50 / p99": quantiles(reads),
        "reserve_call() p50 / p99": quantiles(reserves),
        "query of one number": f"{found} calls",
    }


async def main(calls: int, server: str | None) -> None:
    results: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as directory:
        files = [f"sqlite:///{Path(directory) / name}" for name in ("bench.db", "unchecked.db")]
        results["sqlite"] = await measure(*files, calls)
    if server:
        async with scratch(server) as url, scratch(server) as baseline_url:
            results["postgresql"] = await measure(url, baseline_url, calls)
    engines = list(results)
    print(f"{calls} calls, {BATCH} ops a batch (4 ops a call)")
    print(f"{'':<26}" + "".join(f"{engine:>22}" for engine in engines))
    for label in results[engines[0]]:
        print(f"{label:<26}" + "".join(f"{results[e][label]:>22}" for e in engines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--store", metavar="URL", help="a PostgreSQL server to measure too")
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.store))
