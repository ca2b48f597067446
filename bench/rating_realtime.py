"""The real-time rating path: price one answered call, book it, move the counters.

As a call ends the router prices it and submits the CDR's shares and a ledger entry to the
write-behind CDR writer; the store's triggers move the balance and the month/day cost
counters in the transaction of the batch. Three figures, on a real SQLite file (WAL):

- the call path: price + operations built + submitted, per call (p50/p99; target p99 <= 1 ms);
- written behind: the writer's time to commit every call's writes, per call;
- written through: each call in its own transaction, awaited, as a synchronous design would.

The baseline is price() alone in the same process.

Last, the included minutes a call's pricing starts from, looked up as the router does
(from the compiled prices) and as it did (`Tariffs.package_on`, which copies the package
model for every call), in alternating rounds: µs per call of each and their ratio.

    python bench/rating_realtime.py [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import tempfile
import time
from pathlib import Path

from rating_batch import build_calls, price_and_book  # bench/, the script's own folder

from rating.billing_time import billing_day
from rating.call import RatedCall
from rating.pricing import price, price_book
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
    compare_included_lookup(calls, tariffs, "the example tariffs")
    compare_included_lookup(calls, with_a_change_in_force(tariffs), "every package changed")


def with_a_change_in_force(tariffs: Tariffs) -> Tariffs:
    """The tariffs with a change to every package in force since 2020 (same minutes)."""
    data = tariffs.model_dump(mode="json", exclude_none=True)
    for package in data["packages"].values():
        change = {"announced": "2020-01-01", "effective": "2020-02-01"}
        package["changes"] = [{**change, "included_minutes": package["included_minutes"]}]
    return Tariffs.model_validate(data)


INCLUDED_ROUNDS = 5


def _included_compiled(calls: list[RatedCall], tariffs: Tariffs) -> list[int]:
    book = price_book(tariffs)
    return [book.pricer(call.number, call.answered_at).included_minutes for call in calls]


def _included_by_package_on(calls: list[RatedCall], tariffs: Tariffs) -> list[int]:
    days = [billing_day(call.answered_at, tariffs.zone) for call in calls if call.answered_at]
    return [
        tariffs.package_on(call.number, day).included_minutes
        for call, day in zip(calls, days, strict=True)
    ]


def compare_included_lookup(calls: list[RatedCall], tariffs: Tariffs, which: str) -> None:
    lookups = {"compiled prices": _included_compiled, "package_on": _included_by_package_on}
    answers = {name: lookup(calls, tariffs) for name, lookup in lookups.items()}
    assert len({tuple(minutes) for minutes in answers.values()}) == 1, "lookups disagree"
    micros: dict[str, list[float]] = {name: [] for name in lookups}
    for _ in range(INCLUDED_ROUNDS):
        for name, lookup in lookups.items():
            began = time.process_time()
            lookup(calls, tariffs)
            micros[name].append((time.process_time() - began) / len(calls) * 1e6)
    print(f"included minutes a call starts from, {which}:")
    for name, rounds in micros.items():
        print(f"  {name:<28} {statistics.median(rounds):7.2f} us per call")
    pairs = zip(micros["package_on"], micros["compiled prices"], strict=True)
    ratios = [old / new for old, new in pairs]
    print(f"  package_on / compiled prices, median  x{statistics.median(ratios):.1f}")


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
