"""An operator's inventory of a million numbers, on SQLite and PostgreSQL: import, search,
a single transition, the numbers tick, and the store's size.

Imports N numbers (default 1,000,000: the whole 4006 segment) the way `hotline400 numbers
import` does (the list read, every number graded, inserted in batches in one transaction),
then times, each the median of R rounds:
- searches: by pattern (a common one, a rare one, 4 digits), by grade (any premium, one
  grade), and by segment, pattern and status together (a common and a rare pattern), 50
  numbers each, as `numbers search` asks;
- a reservation of one number (read, catch up, conditional write with its history row);
- the tick with nothing due (what cron and every router run every minute), and the tick
  that expires K reservations and ends their freezes (2 transitions each);
and reports the size of the store (SQLite: the file; PostgreSQL: the numbers' tables and
their indexes). Each figure is also given as a ratio to reading one number by its key in
the same process (the baseline). Target: a search and a single transition within tens of
milliseconds.

    python bench/number_inventory.py [--numbers N] [--engine sqlite|postgresql|both]
                                     [--rounds R] [--expiring K]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from dialplan.calendar import OfficialCalendar  # noqa: E402
from numbering import lifecycle  # noqa: E402
from numbering.lifecycle import NumberRecord  # noqa: E402
from numbering.number_lists import numbers_of, read_number_list  # noqa: E402
from numbering.rules import NumberRules  # noqa: E402
from router.numbers.inventory import Inventory  # noqa: E402
from router.storage.location import build_store  # noqa: E402
from router.storage.protocol import Store  # noqa: E402
from tests.conftest import UNWATCHED, scratch_schema  # noqa: E402

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)
RULES = NumberRules()
SEARCHES: dict[str, dict[str, object]] = {
    "pattern 888": {"pattern": "888"},
    "pattern 1234567 (rare)": {"pattern": "1234567"},
    "grade premium": {"premium": True},
    "grade gold": {"grade": "gold"},
    "pattern 5201 (4 digits)": {"pattern": "5201"},
    "segment+pattern+status": {"segment": "4006", "pattern": "520", "status": "available"},
    "segment+rare pattern+status": {"segment": "4006", "pattern": "9876543", "status": "available"},
}


async def timed(work: Callable[[], Awaitable[object]], rounds: int) -> float:
    """Median milliseconds of `rounds` runs of `work`."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        await work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def run_engine(store: Store, args: argparse.Namespace, size: Callable[[], Awaitable[int]]):
    await store.open()
    figures: dict[str, float] = {}
    try:
        last = 4006000000 + args.numbers - 1
        ranges, problems = read_number_list([f"4006000000-{last}"])
        assert not problems
        fees = RULES.fee_of_grade
        start = time.perf_counter()
        records = (
            NumberRecord(number, grade, fees[grade])
            for number in numbers_of(ranges)
            for grade in (RULES.grade(number),)
        )
        added = await store.add_numbers(records, T0)
        figures["import (s)"] = time.perf_counter() - start
        assert added == args.numbers, added
        baseline = await timed(lambda: store.number_record("4006123456"), args.rounds * 4)
        figures["baseline: one number by key (ms)"] = baseline
        for name, conditions in SEARCHES.items():
            figures[f"search {name} (ms)"] = await timed(
                lambda c=conditions: store.search_numbers(**c, limit=50), args.rounds
            )
        inventory = Inventory(store, RULES, OfficialCalendar(), UNWATCHED)
        available = await store.search_numbers(
            status="available", grade="ordinary", limit=args.rounds + args.expiring
        )
        reserved = iter(available)

        async def reserve() -> None:
            number = next(reserved).number
            await inventory.act(
                number, T0, lambda r, at: lifecycle.reserve(r, "sp-bench", at, RULES)
            )

        figures["reserve one number (ms)"] = await timed(reserve, args.rounds)
        for _ in range(args.expiring):
            await reserve()
        figures["tick, nothing due (ms)"] = await timed(
            lambda: inventory.tick(T0 + timedelta(hours=1)), args.rounds
        )
        start = time.perf_counter()
        moved = await inventory.tick(T0 + timedelta(days=4))
        spent = time.perf_counter() - start
        figures[f"tick, {moved} transitions due (s)"] = spent
        figures["tick, per transition (ms)"] = spent * 1000 / max(moved, 1)
    finally:
        await store.close()
    figures["store size (MB)"] = int(await size()) / 1e6  # SQLite: its log checkpointed
    return figures


def report(engine: str, figures: dict[str, float]) -> None:
    baseline = figures["baseline: one number by key (ms)"]
    print(f"\n{engine}")
    for name, value in figures.items():
        ratio = f"  ({value / baseline:,.1f}x baseline)" if name.endswith("(ms)") else ""
        print(f"  {name:<42}{value:>10,.2f}{ratio}")


async def sqlite_figures(args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "inventory.db"
        store = build_store(f"sqlite:///{path}", zone=SHANGHAI, router="bench")

        async def size() -> int:
            return os.path.getsize(path)

        return await run_engine(store, args, size)


async def postgres_figures(args: argparse.Namespace) -> dict[str, float]:
    async with scratch_schema() as url:
        store = build_store(url, zone=SHANGHAI, router="bench")
        schema = url.rsplit("search_path=", 1)[1]

        async def size() -> int:
            conn = await asyncpg.connect(url.split("?")[0])
            try:
                return await conn.fetchval(
                    "SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_class c JOIN"
                    " pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1"
                    " AND c.relname IN ('numbers', 'number_history') ",
                    schema,
                )
            finally:
                await conn.close()

        return await run_engine(store, args, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, default=1_000_000, help="numbers to import")
    parser.add_argument(
        "--engine", choices=("sqlite", "postgresql", "both"), default="both", help="which store"
    )
    parser.add_argument("--rounds", type=int, default=20, help="runs of each timed step")
    parser.add_argument(
        "--expiring", type=int, default=1000, help="reservations the timed tick expires"
    )
    args = parser.parse_args()
    print(f"{args.numbers:,} numbers; {platform.python_version()} on {platform.machine()}")
    if args.engine in ("sqlite", "both"):
        report("SQLite", asyncio.run(sqlite_figures(args)))
    if args.engine in ("postgresql", "both"):
        report("PostgreSQL", asyncio.run(postgres_figures(args)))


if __name__ == "__main__":
    main()
