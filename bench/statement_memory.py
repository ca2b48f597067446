"""Peak memory of a busy number's monthly statement: every answered call of a month.

Fills a SQLite store as bench/console_pages.py does, every call answered and the busiest
number's, all within November 2026 (default 200,000 calls), or reuses one it filled
before (--store FILE); then works out that number's November statement (month_statements)
in a process of its own, with the checkout given (--tree, default this one: a main checkout
gives the figure before a change), and reports its calls, charges and the kernel's peak
resident memory of that process (ru_maxrss), beside that of a process that only opens the
store.

    python bench/statement_memory.py [--calls N] [--store FILE] [--tree DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import console_pages  # puts the repository on the import path

ROOT = Path(__file__).resolve().parents[1]
MONTH = "2026-11"
MEASURE = """
import asyncio, resource, sys
from rating.tariff_loader import parse_tariffs
from router.storage.location import build_store
from router.money.billing import month_statements

TARIFFS = parse_tariffs("tariffs.yaml", '''
caller_tariffs:
  fixed: {{per_seconds: 60, charge: 0.10}}
  mobile: {{per_seconds: 60, charge: 0.10}}
  other: {{per_seconds: 60, charge: 0.10}}
packages:
  office:
    monthly_rent: 62.00
    nationwide: {{per_seconds: 60, charge: 0.30}}
    minimum_monthly: 31.00
accounts:
  "{number}": {{package: office, opened: 2026-01-01, prepaid: false}}
''')

async def main():
    store = build_store("sqlite:///{store}", zone=TARIFFS.zone, router="bench")
    await store.open()
    try:
        if {statement}:
            [found] = await month_statements(store, TARIFFS, "{number}", "{month}")
            usage = found.statement.usage
            print(usage.calls, usage.callee_charges, found.unpriced, end=" ")
    finally:
        await store.close()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)

asyncio.run(main())
"""


def fill(store: Path, calls: int) -> None:
    """Every call answered and the busiest number's, from 2026-11-01 17:00 to 11-30 17:00."""
    console_pages.NUMBERS, console_pages.WEIGHTS = [console_pages.SHOP], [1]
    console_pages.OUTCOMES = ["answered"]
    console_pages.DAYS = 29
    console_pages.fill_sqlite(store, calls)


def measure(store: Path, tree: Path, *, statement: bool) -> tuple[str, float]:
    """What the process printed (calls, charges, unpriced, peak RSS MiB), and its wall s."""
    code = MEASURE.format(store=store, number=console_pages.SHOP, month=MONTH, statement=statement)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(done.stderr)
    return done.stdout.strip(), time.monotonic() - began


def store_and_tree(description: str, fill: Callable[[Path, int], None]) -> tuple[Path, Path]:
    """The store to measure on (`--store`, else a new one; filled by `fill` with `--calls`
    calls unless it exists) and the source tree whose code is measured (`--tree`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--store", type=Path)
    parser.add_argument("--tree", type=Path, default=ROOT)
    args = parser.parse_args()
    store = args.store or Path(tempfile.mkdtemp(prefix="hotline400-bench-")) / "store.db"
    if not store.exists():
        fill(store, args.calls)
    return store, args.tree


def main() -> None:
    store, tree = store_and_tree(__doc__.splitlines()[0], fill)
    opened, _ = measure(store, tree, statement=False)
    print(f"store opened only: peak RSS {opened} MiB")
    figures, wall = measure(store, tree, statement=True)
    calls, charges, unpriced, peak = figures.split()
    print(
        f"statement of {console_pages.SHOP} {MONTH} ({tree}): {calls} calls,"
        f" {charges} charged, {unpriced} unpriced; peak RSS {peak} MiB; {wall:.1f} s wall"
    )


if __name__ == "__main__":
    main()
