"""How fast the console answers with a million CDRs in the store, on SQLite and PostgreSQL.

Fills a fresh store with N call records (default 1,000,000) spread over 90 days and 20
400 numbers (the three example numbers take most of the traffic), with the outcomes,
durations, caller kinds and regions of real traffic, then serves the console in this
process and times, over real HTTP, the pages a subscriber opens: the dashboard, a
call-record search (by number, by caller, by region, unanswered calls), and the reports
of one number over 30 and 90 days and of all 20 numbers over 30 days (the operator sees
every number with an account: the bench gives the 17 small ones an account each). Target:
each within 300 ms. The baseline, timed the same way in the same process, is the password
page: a signed-in page with no figures (the session looked up, a template rendered, no
call read), so each page's ratio to it is the cost of its figures.

    python bench/console_pages.py [--cdrs N] [--engine sqlite|postgresql|both] [--rounds R]

The calls are written with bulk inserts (SQLite executemany, PostgreSQL COPY) into the
store's own schema, after the store has created it, so the indexes are the real ones.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from router.storage import postgres, queries  # noqa: E402
from router.storage import sqlite as sqlite_store  # noqa: E402
from router.storage.rows import epoch_us  # noqa: E402
from tests.conftest import scratch_schema  # noqa: E402
from tests.console.harness import SHOP, running_console, sign_in  # noqa: E402

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 30, 17, 0, tzinfo=SHANGHAI)
DAYS = 90
TARGET_MS = 300.0
NUMBERS = ["4008207788", "4006001234", "4001234567", *(f"40060{i:05d}" for i in range(17))]
WEIGHTS = [30, 20, 10, *([40 / 17] * 17)]
REGIONS = [
    ("山东", "济南", "0531"),
    ("山东", "青岛", "0532"),
    ("广东", "广州", "020"),
    ("广东", "深圳", "0755"),
    ("北京", "北京", "010"),
    ("上海", "上海", "021"),
    ("浙江", "杭州", "0571"),
    ("江苏", "南京", "025"),
    ("四川", "成都", "028"),
    ("湖北", "武汉", "027"),
    (None, None, None),
]
OUTCOMES = (
    ["answered"] * 70
    + ["busy"] * 8
    + ["noanswer"] * 12
    + ["rejected"] * 5
    + ["blocked"] * 3
    + ["capped"] * 2
)
COLUMNS = (
    "call_id",
    "number",
    "caller_raw",
    "caller",
    "caller_kind",
    "province",
    "city",
    "area_code",
    "started_at",
    "started_us",
    "answered_at",
    "ended_at",
    "billable_seconds",
    "outcome",
    "rule",
    "caller_share",
    "callee_share",
    "total",
    "tariff_id",
    "note",
)


def cdr_rows(count: int, seed: int = 400) -> Iterator[tuple[object, ...]]:
    rng = random.Random(seed)
    start = NOW - timedelta(days=DAYS)
    span = DAYS * 86400
    for index in range(count):
        number = rng.choices(NUMBERS, WEIGHTS)[0]
        # Office hours carry most calls; a few come at night.
        day = rng.randrange(DAYS)
        hour = rng.choices(range(24), [1] * 7 + [6] * 11 + [3] * 6)[0]
        started = start + timedelta(days=day, hours=hour, seconds=rng.randrange(3600))
        started = min(started, start + timedelta(seconds=span - 1))
        outcome = rng.choice(OUTCOMES)
        kind = rng.choices(["mobile", "fixed", "international", "withheld"], [70, 25, 1, 4])[0]
        caller = None if kind == "withheld" else f"138{rng.randrange(10**8):08d}"
        province, city, area = rng.choice(REGIONS)
        talk = int(rng.expovariate(1 / 120)) + 1 if outcome == "answered" else 0
        answered = started + timedelta(seconds=8) if talk else None
        ended = started + timedelta(seconds=8 + talk)
        money = ("0.22", "0.40", "0.62") if talk else (None, None, None)
        yield (
            f"bench.{index}",
            number,
            caller or "anonymous",
            caller,
            kind,
            province,
            city,
            area,
            started.isoformat(),
            epoch_us(started),
            answered.isoformat() if answered else None,
            ended.isoformat(),
            talk,
            outcome,
            "default",
            *money,
            "nationwide-300@2026-11" if talk else None,
            None,
        )


def fill_sqlite(path: Path, count: int) -> None:
    """A store file at schema version 3 holding the calls: opening it upgrades it to the
    newest version and counts the calls by hour and by day, the way an existing router's
    database is upgraded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    _schema_before_counts(db.execute, sqlite_store.MIGRATIONS)
    marks = ", ".join("?" for _ in COLUMNS)
    rows = cdr_rows(count)
    with db:
        while batch := [row for _, row in zip(range(50_000), rows, strict=False)]:
            db.executemany(f"INSERT INTO cdrs ({', '.join(COLUMNS)}) VALUES ({marks})", batch)
    db.execute("ANALYZE")
    db.close()


async def fill_postgres(url: str, count: int) -> None:
    """As fill_sqlite, in a PostgreSQL schema, with COPY."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            statements: list[tuple[str, tuple[object, ...]]] = []
            _schema_before_counts(
                lambda sql, params=(): statements.append((sql, params)), postgres.MIGRATIONS
            )
            for sql, params in statements:
                await conn.execute(postgres.numbered(sql), *params)
        records = (
            (
                *row[:15],
                *(None if v is None else Decimal(v) for v in row[15:18]),
                *row[18:],
                "bench",
            )
            for row in cdr_rows(count)
        )
        while batch := [r for _, r in zip(range(50_000), records, strict=False)]:
            await conn.copy_records_to_table("cdrs", records=batch, columns=[*COLUMNS, "router"])
        await conn.execute("ANALYZE cdrs")
    finally:
        await conn.close()


def _schema_before_counts(
    execute: Callable[..., object], migrations: Sequence[Sequence[str]]
) -> None:
    """The schema at version 3, the last before the hourly counts."""
    execute(queries.CREATE_VERSION_TABLE)
    for version, statements in enumerate(migrations[:3], start=1):
        for statement in statements:
            execute(statement)
        execute(queries.RECORD_VERSION, (version,))


BASELINE = ("baseline: password page", "/password")
"""Signed in, no figures: what every page costs before it reads a call."""
PAGES = [
    BASELINE,
    ("dashboard", "/"),
    ("search by number", f"/calls?number={SHOP}"),
    ("search by caller", "/calls?caller=13812345678"),
    ("search by region", f"/calls?number={SHOP}&region=广东"),
    ("unanswered calls", f"/calls?number={SHOP}&outcome=unanswered&since=2026-11-01"),
    ("report, one number, 30 days", f"/reports?number={SHOP}&from=2026-11-01&to=2026-11-30"),
    ("report, all 20 numbers, 30 days", "/reports?from=2026-11-01&to=2026-11-30"),
    ("report, one number, 90 days", f"/reports?number={SHOP}&from=2026-09-02&to=2026-11-30"),
]


def give_accounts(config_dir: Path) -> None:
    """An account for each number the example tariffs do not have, so the operator's
    reports over "all my numbers" cover all 20."""
    tariffs = config_dir / "tariffs.yaml"
    text = tariffs.read_text(encoding="utf-8")
    extra = "".join(
        f'  "{number}":\n    package: nationwide-300\n    prepaid: false\n'
        for number in NUMBERS
        if f'"{number}"' not in text
    )
    tariffs.write_text(text.rstrip("\n") + "\n" + extra, encoding="utf-8")


async def time_pages(url: str, rounds: int) -> list[tuple[str, float, float, float]]:
    results = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        login = await sign_in(client, "ops")
        assert login.status_code == 303
        for name, path in PAGES:
            await client.get(path)  # warm the caches once
            times = []
            for _ in range(rounds):
                began = time.perf_counter()
                response = await client.get(path)
                times.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            times.sort()
            results.append(
                (name, statistics.median(times), times[int(0.9 * (len(times) - 1))], times[-1])
            )
    return results


async def run_engine(engine: str, count: int, rounds: int) -> list[tuple[str, float, float, float]]:
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        if engine == "sqlite":
            database = tmp / "var" / "hotline400.db"
            began = time.perf_counter()
            await asyncio.to_thread(fill_sqlite, database, count)
            loaded = time.perf_counter()
            async with running_console(tmp, clock=lambda: NOW) as site:
                give_accounts(site.config_dir)
                print(
                    f"  sqlite: {count:,} CDRs written in {loaded - began:.0f} s, counted by"
                    f" hour and day on upgrade in {time.perf_counter() - loaded:.0f} s,"
                    f" file {database.stat().st_size / 2**20:.0f} MiB"
                )
                return await time_pages(site.url, rounds)
        async with scratch_schema() as url:
            began = time.perf_counter()
            await fill_postgres(url, count)
            loaded = time.perf_counter()
            async with running_console(tmp, url, clock=lambda: NOW) as site:
                give_accounts(site.config_dir)
                print(
                    f"  postgresql: {count:,} CDRs written in {loaded - began:.0f} s, counted"
                    f" by hour and day on upgrade in {time.perf_counter() - loaded:.0f} s"
                )
                return await time_pages(site.url, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cdrs", type=int, default=1_000_000, help="CDRs in the store")
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=10, help="timed requests per page")
    args = parser.parse_args()
    print(
        f"console pages with {args.cdrs:,} CDRs ({platform.python_version()}, "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f})"
    )
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    for engine in engines:
        results = asyncio.run(run_engine(engine, args.cdrs, args.rounds))
        base = results[0][1]
        print(
            f"\n{engine}: {'page':<32}{'p50 ms':>9}{'p90 ms':>9}{'max ms':>9}"
            f"{'x base':>8}  target {TARGET_MS:.0f}"
        )
        for name, p50, p90, worst in results:
            verdict = "PASS" if p90 <= TARGET_MS else "FAIL"
            ratio = p50 / base
            print(f"  {name:<38}{p50:>9.1f}{p90:>9.1f}{worst:>9.1f}{ratio:>8.1f}  {verdict}")


if __name__ == "__main__":
    main()
