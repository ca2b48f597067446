"""How many calls rating prices per second in a batch, against a bare Rate.charge_for loop.

Re-rating a month or pricing a backlog of CDRs goes through price() one call at a time, so
its throughput bounds how fast that work finishes. The target is 100,000 calls per second
on one core. 200,000 RatedCalls are built up front from the shipped config/tariffs.yaml:
the three accounts (local/long-distance with an off-peak period, nationwide with off-peak
and weekend periods, the business-hall tariff), every caller kind, answered and unanswered
calls, local, long-distance and unknown answering areas, durations from 1 s to an hour,
answer instants spread over a month (so periods open and close), some included minutes
left. A second batch prices the same calls under caller_percent sharing.

The baseline prices the same durations with the bare Rate.charge_for of one rate: the
ratio shows what choosing the rate, the caller's charge and the sharing add.

The real-time path (one call priced and its ledger entry built as the call ends) is
`price_and_book()` below; the storage side times it together with its writes.

    python bench/rating_batch.py [--calls N] [--rounds R]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from rating.call import CALLER_KINDS, Price, RatedCall
from rating.ledger import LedgerEntry, call_entry
from rating.pricing import price
from rating.tariff import Tariffs
from rating.tariff_loader import load_tariffs

TARGET_PER_SECOND = 100_000
DEFAULT_CALLS = 200_000
DEFAULT_ROUNDS = 5
TARIFFS_FILE = Path(__file__).resolve().parent.parent / "config" / "tariffs.yaml"
ZONE = ZoneInfo("Asia/Shanghai")
MONTH_START = datetime(2026, 11, 1, tzinfo=ZONE)
HOME_AREAS = {"4006001234": "0531", "4008207788": "021", "4001234567": "020"}
OTHER_AREAS = ("010", "0532", "020", "021", "0755", None)
KIND_WEIGHTS = {"mobile": 60, "fixed": 30, "service": 3, "international": 2, "unknown": 5}


def price_and_book(call: RatedCall, call_id: str, tariffs: Tariffs) -> tuple[Price, LedgerEntry]:
    """The real-time path as a call ends: its price and the ledger debit to write with it."""
    priced = price(call, tariffs)
    assert call.answered_at is not None
    return priced, call_entry(call.number, call_id, call.answered_at, priced)


def build_calls(count: int, seed: int = 400) -> list[RatedCall]:
    chooser = random.Random(seed)
    numbers = list(HOME_AREAS)
    kinds = [kind for kind in CALLER_KINDS for _ in range(KIND_WEIGHTS[kind])]
    calls = []
    for _ in range(count):
        number = chooser.choice(numbers)
        answered = chooser.random() < 0.85
        home = HOME_AREAS[number]
        calls.append(
            RatedCall(
                number=number,
                caller_kind=chooser.choice(kinds),  # type: ignore[arg-type]
                answered_at=(
                    MONTH_START + timedelta(seconds=chooser.randrange(30 * 86400))
                    if answered
                    else None
                ),
                talk_seconds=int(chooser.expovariate(1 / 150)) % 3600 + 1 if answered else 0,
                answering_area_code=home if chooser.random() < 0.4 else chooser.choice(OTHER_AREAS),
                home_area_code=home,
                included_seconds_left=chooser.choice((0, 0, 0, 45, 600)),
            )
        )
    return calls


def shared_by_percent(tariffs: Tariffs, percent: int) -> Tariffs:
    """The same tariffs with every package splitting the total `percent` to the caller."""
    document = tariffs.model_dump()
    for package in document["packages"].values():
        package["sharing"] = {"caller_percent": percent}
    return Tariffs.model_validate(document)


def best_rate(run: Callable[[], object], count: int, rounds: int) -> float:
    """Items per second of the fastest round (the least disturbed by the machine)."""
    run()  # warm-up: compiles the price book, fills caches
    best = float("inf")
    gc.disable()
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - started)
    finally:
        gc.enable()
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=DEFAULT_CALLS)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    args = parser.parse_args()

    tariffs = load_tariffs(TARIFFS_FILE)
    shared = shared_by_percent(tariffs, 30)
    calls = build_calls(args.calls)
    baseline_rate = tariffs.packages["regional-100"].local
    assert baseline_rate is not None
    durations = [call.talk_seconds for call in calls]

    baseline = best_rate(
        lambda: [baseline_rate.charge_for(seconds) for seconds in durations],
        len(calls),
        args.rounds,
    )
    default_sharing = best_rate(lambda: [price(c, tariffs) for c in calls], len(calls), args.rounds)
    percent_sharing = best_rate(lambda: [price(c, shared) for c in calls], len(calls), args.rounds)

    answered = sum(call.answered_at is not None for call in calls)
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus")
    print(f"{len(calls):,} calls ({answered:,} answered), best of {args.rounds} rounds")
    print(f"baseline Rate.charge_for    {baseline:>12,.0f} /s")
    for label, rate in (
        ("price(), caller pays local", default_sharing),
        ("price(), caller_percent 30", percent_sharing),
    ):
        verdict = "PASS" if rate >= TARGET_PER_SECOND else "FAIL"
        print(
            f"{label:<27} {rate:>12,.0f} /s  {1e6 / rate:5.2f} us/call  "
            f"{baseline / rate:4.1f}x baseline  {verdict} (target {TARGET_PER_SECOND:,}/s)"
        )


if __name__ == "__main__":
    main()
