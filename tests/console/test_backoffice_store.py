"""The console's storage on both engines: users, sessions, plan versions, and the hourly
and daily counts the reports read, which must always equal counting the CDRs themselves."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from router.storage import sqlite as sqlite_store
from router.storage.cdr import FinishCall, Outcome
from router.storage.console_rows import AuditEntry, UserRow
from router.storage.location import ConfiguredStore
from router.storage.postgres import PostgresStore
from router.storage.rows import epoch_us
from router.storage.sqlite import SQLiteStore
from tests.conftest import scratch_schema
from tests.console.harness import CLINIC, FACTORY, NOW, SHOP, a_call

DIRECT_COUNTS = (
    "SELECT number, started_us / 3600000000 AS hour, outcome, COUNT(*) AS calls,"
    " SUM(billable_seconds) AS seconds FROM cdrs WHERE outcome <> 'in_progress'"
    " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)
ROLLED_UP = (
    "SELECT number, hour, outcome, SUM(calls) AS calls, SUM(seconds) AS seconds"
    " FROM call_hours GROUP BY 1, 2, 3 HAVING SUM(calls) > 0 ORDER BY 1, 2, 3"
)
DIRECT_REGIONS = (
    "SELECT number, COALESCE(province, '') AS province, COUNT(*) AS calls FROM cdrs"
    " WHERE outcome <> 'in_progress' GROUP BY 1, 2 ORDER BY 1, 2"
)
ROLLED_REGIONS = (
    "SELECT number, province, SUM(calls) AS calls FROM call_hour_regions"
    " GROUP BY 1, 2 HAVING SUM(calls) > 0 ORDER BY 1, 2"
)
DIRECT_DAYS = (
    "SELECT number, started_us / 86400000000 AS day, outcome, COUNT(*) AS calls,"
    " SUM(billable_seconds) AS seconds FROM cdrs WHERE outcome <> 'in_progress'"
    " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)
ROLLED_DAYS = (
    "SELECT number, day, outcome, SUM(calls) AS calls, SUM(seconds) AS seconds"
    " FROM call_days GROUP BY 1, 2, 3 HAVING SUM(calls) > 0 ORDER BY 1, 2, 3"
)
DIRECT_DAY_REGIONS = (
    "SELECT number, started_us / 86400000000 AS day, COALESCE(province, '') AS province,"
    " COUNT(*) AS calls FROM cdrs WHERE outcome <> 'in_progress' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)
ROLLED_DAY_REGIONS = (
    "SELECT number, day, province, SUM(calls) AS calls FROM call_day_regions"
    " GROUP BY 1, 2, 3 HAVING SUM(calls) > 0 ORDER BY 1, 2, 3"
)
COUNTS = (
    (ROLLED_UP, DIRECT_COUNTS),
    (ROLLED_REGIONS, DIRECT_REGIONS),
    (ROLLED_DAYS, DIRECT_DAYS),
    (ROLLED_DAY_REGIONS, DIRECT_DAY_REGIONS),
)
"""Each count table beside the same figures counted from the CDRs."""


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ConfiguredStore]:
    if request.param == "sqlite":
        opened: ConfiguredStore = SQLiteStore(tmp_path / "hotline400.db")
        await opened.open()
        yield opened
        await opened.close()
        return
    async with scratch_schema() as url:
        opened = PostgresStore(url, router="test")
        await opened.open()
        yield opened
        await opened.close()


def _rows(rows: list[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows as tuples; PostgreSQL sums integers as numeric."""
    return [tuple(int(v) if isinstance(v, Decimal) else v for v in tuple(row)) for row in rows]


async def test_users_sessions_and_plan_versions(store: ConfiguredStore) -> None:
    row = UserRow("shop", "subscriber-admin", SHOP, "hash", False, NOW)
    assert await store.add_user(row)
    assert not await store.add_user(row)
    await store.open_session("digest", "shop", NOW + timedelta(hours=1))
    assert (await store.session_user("digest", NOW)).name == "shop"
    assert await store.session_user("digest", NOW + timedelta(hours=2)) is None
    assert await store.disable_user("shop")
    assert await store.session_user("digest", NOW) is None
    assert [await store.save_plan_version(SHOP, f"v{i}", "shop", NOW, "") for i in (1, 2)] == [
        1,
        2,
    ]
    assert [v.source for v in await store.plan_versions(SHOP)] == ["v2", "v1"]


# The counts are checked against the CDRs themselves with raw reads of both tables.


async def test_the_counts_always_equal_counting_the_calls(store: ConfiguredStore) -> None:
    rng = random.Random(7)
    outcomes = [Outcome.ANSWERED, Outcome.BUSY, Outcome.NOANSWER, Outcome.REJECTED]
    for batch in range(5):
        ops = []
        for index in range(40):
            call_id = f"c{batch}.{index}"
            started = NOW - timedelta(minutes=rng.randrange(3000))  # over UTC midnights
            start, finish = a_call(
                call_id,
                rng.choice([SHOP, "4001234567"]),
                started,
                rng.choice(outcomes),
                seconds=rng.randrange(1, 900),
                province=rng.choice(["山东", "广东", None]),
            )
            ops.append(start)
            if rng.random() < 0.8:  # some calls stay in progress
                ops.append(finish)
        await store.apply(ops)
        # Calls completed later with other figures (as AMI reconciliation does) move counts.
        later = [
            FinishCall(f"c{batch}.{index}", {"outcome": Outcome.ANSWERED, "billable_seconds": 42})
            for index in rng.sample(range(40), 8)
        ]
        await store.apply(later)
        for rolled, direct in COUNTS:
            assert _rows(await store._fetch(rolled)) == _rows(await store._fetch(direct))


async def test_calls_stored_before_the_counts_existed_are_counted_on_upgrade(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, statements in enumerate(sqlite_store.MIGRATIONS[:3], start=1):
        for statement in statements:
            db.execute(statement)
        db.execute("INSERT INTO schema_version VALUES (?)", (version,))
    for index in range(60):
        started = NOW - timedelta(hours=index)
        db.execute(
            "INSERT INTO cdrs (call_id, number, caller_raw, caller_kind, province, started_at,"
            " started_us, outcome, billable_seconds)"
            " VALUES (?, ?, '1380', 'mobile', ?, ?, ?, ?, ?)",
            (
                f"old.{index}",
                SHOP,
                "山东" if index % 2 else None,
                started.isoformat(),
                epoch_us(started),
                "answered" if index % 3 else "in_progress",
                index * 7,
            ),
        )
    db.commit()
    db.close()
    upgraded = SQLiteStore(path)
    await upgraded.open()
    try:
        counted = _rows(await upgraded._fetch(ROLLED_UP))
        assert sum(row[3] for row in counted) == 40
        for rolled, direct in COUNTS:
            assert _rows(await upgraded._fetch(rolled)) == _rows(await upgraded._fetch(direct))
    finally:
        await upgraded.close()


# A report's span is local days: whole UTC days come from the daily counts, the hours at its
# edges from the hourly ones; together they must say what counting the calls says.

SPANS = [
    (NOW - timedelta(days=2, hours=15), NOW),  # local midnight to now: days and both edges
    (NOW - timedelta(hours=7), NOW),  # less than a day: hours only
    (NOW.replace(hour=8) - timedelta(days=1), NOW.replace(hour=8)),  # one whole UTC day
]


async def test_a_span_counts_its_days_and_its_edge_hours_as_the_calls_themselves(
    store: ConfiguredStore,
) -> None:
    rng = random.Random(11)
    ops = []
    for index in range(300):
        ops += a_call(
            f"s.{index}",
            rng.choice([SHOP, CLINIC]),
            NOW - timedelta(minutes=rng.randrange(4 * 24 * 60)),
            rng.choice([Outcome.ANSWERED, Outcome.BUSY, Outcome.NOANSWER]),
            seconds=rng.randrange(1, 900),
            province=rng.choice(["山东", "广东"]),
            city=rng.choice(["济南", "广州"]),
        )
    await store.apply(ops)
    for since, until in SPANS:
        calls = [
            cdr
            for cdr in await store.query_cdrs(since=since, until=until)
            if cdr.number in (SHOP, CLINIC)
        ]
        mix = await store.call_mix([SHOP, CLINIC], since, until)
        assert mix.outcomes == dict(Counter(cdr.outcome.value for cdr in calls))
        assert sum(mix.durations) == mix.outcomes.get("answered", 0)
        regions = await store.regions([SHOP, CLINIC], since, until)
        assert {(r.province, r.city): r.calls for r in regions} == dict(
            Counter((cdr.region.province, cdr.region.city) for cdr in calls)
        )
        hours = await store.hourly([SHOP, CLINIC], since, until)
        assert sum(hour.calls for hour in hours) == len(calls)
        assert sum(hour.talk_seconds for hour in hours) == sum(
            cdr.billable_seconds for cdr in calls
        )
    nothing = await store.call_mix([SHOP], NOW, NOW)  # an empty span reads nothing
    assert nothing.outcomes == {} and sum(nothing.durations) == 0
    assert await store.regions([SHOP], NOW, NOW) == []


async def test_a_limited_search_over_several_numbers_finds_the_newest_calls(
    store: ConfiguredStore,
) -> None:
    ops = []
    for index in range(60):
        number = (SHOP, CLINIC, FACTORY)[index % 3]
        outcome = Outcome.BUSY if index % 4 else Outcome.ANSWERED
        ops += a_call(f"n.{index:02d}", number, NOW - timedelta(minutes=index // 2), outcome)
    await store.apply(ops)
    numbers = [SHOP, CLINIC, FACTORY]
    everything = await store.call_ids(numbers, limit=None, outcomes=("busy",))
    assert len(everything) == 45
    assert await store.call_ids(numbers, limit=7, outcomes=("busy",)) == everything[:7]
    assert await store.call_ids(numbers, limit=100) == await store.call_ids(numbers, limit=None)


async def test_a_search_read_a_page_at_a_time_lists_every_call_once(
    store: ConfiguredStore,
) -> None:
    """An export's pages (call_ids after the last call of the page before), over one number
    and over several, give the search's calls in order, none twice."""
    ops = []
    for index in range(60):
        number = (SHOP, CLINIC, FACTORY)[index % 3]
        outcome = Outcome.BUSY if index % 4 else Outcome.ANSWERED
        ops += a_call(f"n.{index:02d}", number, NOW - timedelta(minutes=index // 5), outcome)
    await store.apply(ops)
    for numbers in ([SHOP], [SHOP, CLINIC, FACTORY]):
        everything = await store.call_ids(numbers, limit=None, outcomes=("busy",))
        paged: list[str] = []
        last = None
        while ids := await store.call_ids(numbers, limit=4, outcomes=("busy",), older_than=last):
            paged += ids
            last = await store.get_cdr(ids[-1])
        assert paged == everything


async def test_the_audit_log_read_a_page_at_a_time_lists_every_entry_once(
    store: ConfiguredStore,
) -> None:
    """Pages of the audit log follow on from the last entry of the one before, newest
    first: entries written in the same microsecond are neither skipped nor repeated, nor
    is an entry written while the pages are read pushed onto a page already read."""
    for index in range(7):
        at = NOW - timedelta(minutes=index // 3)  # three entries to a moment
        await store.audit(AuditEntry(at, "ops", SHOP, "sign in", "ops", f"entry {index}"))
    first = await store.audit_log(SHOP, limit=3)
    await store.audit(AuditEntry(NOW + timedelta(minutes=1), "ops", SHOP, "later", "ops", ""))
    read, page = [*first], first
    while page:
        page = await store.audit_log(SHOP, limit=3, older_than=page[-1].entry_id)
        read += page
    assert sorted(entry.detail for entry in read) == [f"entry {index}" for index in range(7)]
    assert [entry.at for entry in read] == sorted((entry.at for entry in read), reverse=True)
    assert await store.audit_log(SHOP, older_than="no such entry") == []
