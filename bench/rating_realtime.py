"""The real-time rating path: price one answered call, book it, move the counters.

As a call ends the router prices it and submits the CDR's shares and a ledger entry to the
write-behind CDR writer; the store's triggers move the balance and the month/day cost
counters in the transaction of the batch. Three figures, on a real SQLite file (WAL):

- the call path: price + operations built + submitted, per call (p50/p99; target p99 <= 1 ms);
- written behind: the writer's time to commit every call's writes, per call;
- written through: each call in its own transaction, awaited, as a synchronous design would.

The baseline is price() alone in the same process.

    python bench/rating_realtime.py [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time
from pathlib import Path

from rating_batch import build_calls, price_and_book  # bench/, the script's own folder

from rating.call import RatedCall
from rating.pricing import price
from rating.tariff import Tariffs
from rating.tariff_loader import load_tariffs
from router.storage.cdr import CDR, CdrOp, FinishCall, PostLedger, StartCall
from router.storage.spool import Journal
from router.storage.sqlite import SQLiteStore
from router.storage.writer import CdrWriter

TARGET_P99_MS = 1.0
ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(count: int) -> None:
    tariffs = load_tariffs(ROOT / "config" / "tariffs.yaml")
    calls = [call for call in build_calls(count * 3) if call.answered_at and call.talk_seconds]
    calls = calls[:count]
    with tempfile.TemporaryDirectory() as scratch:
        store = SQLiteStore(Path(scratch) / "rating.db")
        await store.open()
        starts = [
            StartCall(
                CDR(
                    f"rt.{i}",
                    call.number,
                    "053188889999",
                    "053188889999",
                    "fixed",
                    call.answered_at,
                )
            )  # type: ignore[arg-type]
            for i, call in enumerate(calls)
        ]
        await store.apply(starts)
        writer = CdrWriter(store, Journal(Path(scratch) / "cdr.journal"))
        await writer.start()
        gc.collect()
        gc.disable()
        call_path: list[float] = []
        drain_began = time.perf_counter()
        for index, call in enumerate(calls):
            began = time.perf_counter()
            for op in booking(call, f"rt.{index}", tariffs):
                writer.submit(op)
            call_path.append((time.perf_counter() - began) * 1000)
            if index % 100 == 99:
                await asyncio.sleep(0)  # let the writer run, as the event loop would
        await writer.close()
        behind_ms = (time.perf_counter() - drain_began) * 1000 / len(calls)
        through: list[float] = []
        for index, call in enumerate(calls[:500]):
            began = time.perf_counter()
            await store.apply(booking(call, f"rt.{index}.again", tariffs))
            through.append((time.perf_counter() - began) * 1000)
        priced_only: list[float] = []
        for call in calls:
            began = time.perf_counter()
            price(call, tariffs)
            priced_only.append((time.perf_counter() - began) * 1000)
        gc.enable()
        await store.close()
    p50, p99 = percentile(call_path, 0.50), percentile(call_path, 0.99)
    base50, base99 = percentile(priced_only, 0.50), percentile(priced_only, 0.99)
    through50, through99 = percentile(through, 0.50), percentile(through, 0.99)
    print(f"load average {os.getloadavg()[0]:.2f}; {len(calls):,} answered calls")
    print(
        f"price() alone                 p50 {base50 * 1000:7.1f} us   p99 {base99 * 1000:7.1f} us"
    )
    print(f"call path: price + submit     p50 {p50 * 1000:7.1f} us   p99 {p99 * 1000:7.1f} us")
    print(f"  ratio to price() alone      p50 x{p50 / base50:.1f}   p99 x{p99 / base99:.1f}")
    print(f"written behind (batched)      {behind_ms * 1000:7.1f} us per call, committed")
    print(
        f"written through (1 tx/call)   p50 {through50 * 1000:7.1f} us   "
        f"p99 {through99 * 1000:7.1f} us"
    )
    verdict = "PASS" if p99 <= TARGET_P99_MS else "FAIL"
    print(f"{verdict}: call path p99 {p99:.3f} ms, target <= {TARGET_P99_MS} ms")


def booking(call: RatedCall, call_id: str, tariffs: Tariffs) -> list[CdrOp]:
    """What the call session submits as an answered call ends."""
    priced, entry = price_and_book(call, call_id, tariffs)
    money = {
        "caller_share": priced.caller_share,
        "callee_share": priced.callee_share,
        "total": priced.total,
        "tariff_id": priced.tariff_id,
    }
    return [FinishCall(call_id, money), PostLedger(entry, priced.included_seconds_used)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    asyncio.run(measure(parser.parse_args().calls))


if __name__ == "__main__":
    main()
