"""What every store promises, checked on each engine: a SQLite file and a PostgreSQL schema.

The writer, the accounting and the commands rely on these behaviours only, so a router
behaves the same whichever engine its `store:` names.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialplan.calendar import OfficialCalendar
from numbering import lifecycle
from numbering.lifecycle import NumberRecord
from numbering.rules import NumberRules, Timing
from rating.ledger import LedgerEntry, LedgerKind
from rating.minimum import RecordedTerms, Terms
from router.cli import main
from router.numbers.inventory import Inventory
from router.storage import postgres as pg
from router.storage import queries
from router.storage import sqlite as store
from router.storage.cdr import (
    CDR,
    DIALLING,
    AddLeg,
    CallerRegion,
    FinishCall,
    ForwardReason,
    Leg,
    Outcome,
    PostLedger,
    StartCall,
)
from router.storage.cdr_pages import cdr_pages
from router.storage.location import ConfiguredStore, build_store
from router.storage.protocol import INTERRUPTED_NOTE, StoreUnavailable
from router.storage.rows import Holding, PinTally
from tests.conftest import UNWATCHED, run_sql, scratch_schema

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 22, 18, 14, 24, tzinfo=SHANGHAI)
JINAN = CallerRegion(province="山东", city="济南", area_code="0531")
NUMBER = "4006001234"


@dataclass(frozen=True)
class Engine:
    """One database, reachable by URL, with SQL of its own for what the API cannot do."""

    name: str
    url: str
    sql: Callable[[str], Awaitable[list[tuple]]]
    error: type[Exception]
    refuse_third_leg: tuple[str, ...]
    allow_third_leg: str

    def store(self, router: str = "router-1") -> ConfiguredStore:
        return build_store(self.url, zone=SHANGHAI, router=router)


def sqlite_engine(path: Path) -> Engine:
    async def sql(statement: str) -> list[tuple]:
        def run() -> list[tuple]:
            with closing(sqlite3.connect(path, isolation_level=None)) as db:
                return db.execute(statement).fetchall()

        return await asyncio.to_thread(run)

    return Engine(
        name="sqlite",
        url=f"sqlite:///{path}",
        sql=sql,
        error=sqlite3.Error,
        refuse_third_leg=(
            "CREATE TRIGGER refuse_third_leg BEFORE INSERT ON legs WHEN NEW.seq = 3 "
            "BEGIN SELECT RAISE(ABORT, 'third leg refused'); END",
        ),
        allow_third_leg="DROP TRIGGER refuse_third_leg",
    )


def postgres_engine(url: str) -> Engine:
    async def sql(statement: str) -> list[tuple]:
        return await run_sql(url, statement)

    return Engine(
        name="postgresql",
        url=url,
        sql=sql,
        error=asyncpg.PostgresError,
        refuse_third_leg=(
            "CREATE FUNCTION refuse_third_leg() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'third leg refused'; END $$",
            "CREATE TRIGGER refuse_third_leg BEFORE INSERT ON legs FOR EACH ROW "
            "WHEN (NEW.seq = 3) EXECUTE FUNCTION refuse_third_leg()",
        ),
        allow_third_leg="DROP TRIGGER refuse_third_leg ON legs",
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Engine]:
    if request.param == "sqlite":
        yield sqlite_engine(tmp_path / "hotline400.db")
    else:
        async with scratch_schema() as url:
            yield postgres_engine(url)


@pytest.fixture
async def opened(engine: Engine) -> AsyncIterator[ConfiguredStore]:
    opened = engine.store()
    await opened.open()
    yield opened
    await opened.close()


def a_call(
    call_id: str = "1795371264.1",
    *,
    number: str = "4000000001",
    caller_raw: str = "+86 531 8888 9999",
    caller: str | None = "053188889999",
    started_at: datetime = T0,
) -> CDR:
    return CDR(
        call_id=call_id,
        number=number,
        caller_raw=caller_raw,
        caller=caller,
        caller_kind="fixed",
        started_at=started_at,
        region=JINAN,
    )


def a_leg(
    seq: int,
    *,
    status: str = "BUSY",
    reason: ForwardReason = ForwardReason.PRIMARY,
    started_at: datetime = T0,
    ring: int = 5,
    talk: int = 0,
) -> Leg:
    return Leg(
        seq=seq,
        destination=f"1380000001{seq}",
        dial_status=status,
        started_at=started_at,
        ring_seconds=ring,
        talk_seconds=talk,
        forward_reason=reason,
    )


ANSWERED = {
    "answered_at": T0 + timedelta(seconds=12),
    "ended_at": T0 + timedelta(seconds=100),
    "billable_seconds": 88,
    "outcome": Outcome.ANSWERED,
    "rule": "weekday-office",
    "caller_share": Decimal("0.22"),
    "callee_share": Decimal("0.30"),
    "total": Decimal("0.52"),
    "tariff_id": "nationwide-0.20",
    "note": "normal clearing",
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def charge(call_id: str, amount: str, when: str = "2026-11-23 10:00") -> LedgerEntry:
    return LedgerEntry(NUMBER, at(when), Decimal(amount), LedgerKind.CALL, call_id, "local")


def payment(ref: str, amount: str, when: str = "2026-11-01 09:00") -> LedgerEntry:
    return LedgerEntry(NUMBER, at(when), Decimal(amount), LedgerKind.PAYMENT, ref, "top-up")


# --- CDRs --------------------------------------------------------------------------------


async def test_a_call_written_ahead_reads_back_in_progress_as_given(
    opened: ConfiguredStore,
) -> None:
    await opened.apply([StartCall(a_call())])

    assert await opened.get_cdr("1795371264.1") == a_call()
    assert (await opened.get_cdr("1795371264.1")).outcome is Outcome.IN_PROGRESS


async def test_a_withheld_caller_is_stored_without_a_normalised_number(
    opened: ConfiguredStore,
) -> None:
    withheld = a_call(caller_raw="anonymous", caller=None)
    await opened.apply([StartCall(withheld)])

    assert await opened.get_cdr(withheld.call_id) == withheld


async def test_legs_read_back_in_dial_order_whatever_order_they_arrived_in(
    opened: ConfiguredStore,
) -> None:
    await opened.apply([StartCall(a_call()), AddLeg("1795371264.1", a_leg(2))])
    await opened.apply([AddLeg("1795371264.1", a_leg(3)), AddLeg("1795371264.1", a_leg(1))])

    cdr = await opened.get_cdr("1795371264.1")
    assert [leg.seq for leg in cdr.legs] == [1, 2, 3]
    assert cdr.legs[0] == a_leg(1)


async def test_finishing_a_call_completes_it_and_keeps_what_was_written_ahead(
    opened: ConfiguredStore,
) -> None:
    await opened.apply([StartCall(a_call()), AddLeg("1795371264.1", a_leg(1))])
    await opened.apply([FinishCall("1795371264.1", ANSWERED)])

    cdr = await opened.get_cdr("1795371264.1")
    assert {name: getattr(cdr, name) for name in ANSWERED} == ANSWERED
    assert (cdr.number, cdr.caller, cdr.region, cdr.legs) == (
        "4000000001",
        "053188889999",
        JINAN,
        (a_leg(1),),
    )


async def test_replaying_the_same_operations_stores_each_call_and_leg_once(
    engine: Engine, opened: ConfiguredStore
) -> None:
    ops = [
        StartCall(a_call()),
        AddLeg("1795371264.1", a_leg(1)),
        AddLeg("1795371264.1", a_leg(2, reason=ForwardReason.BUSY)),
        FinishCall("1795371264.1", ANSWERED),
    ]
    await opened.apply(ops)
    once = await opened.get_cdr("1795371264.1")
    await opened.apply(ops)
    await opened.apply(ops[:2])

    assert await opened.get_cdr("1795371264.1") == once
    assert await engine.sql("SELECT COUNT(*) FROM cdrs") == [(1,)]
    assert await engine.sql("SELECT COUNT(*) FROM legs") == [(2,)]


async def test_a_start_replayed_late_does_not_reopen_a_finished_call(
    opened: ConfiguredStore,
) -> None:
    await opened.apply([StartCall(a_call()), FinishCall("1795371264.1", ANSWERED)])
    await opened.apply([StartCall(a_call())])

    assert (await opened.get_cdr("1795371264.1")).outcome is Outcome.ANSWERED


async def test_a_batch_lands_whole_or_not_at_all(engine: Engine, opened: ConfiguredStore) -> None:
    for statement in engine.refuse_third_leg:
        await engine.sql(statement)
    batch = [StartCall(a_call()), *(AddLeg("1795371264.1", a_leg(seq)) for seq in (1, 2, 3))]

    with pytest.raises(StoreUnavailable, match="third leg refused"):
        await opened.apply(batch)
    assert await opened.get_cdr("1795371264.1") is None
    assert await engine.sql("SELECT COUNT(*) FROM legs") == [(0,)]

    await engine.sql(engine.allow_third_leg)
    await opened.apply(batch)
    assert len((await opened.get_cdr("1795371264.1")).legs) == 3


async def test_money_is_kept_exactly_to_the_fen(engine: Engine, opened: ConfiguredStore) -> None:
    tenth, fifth = Decimal("0.1"), Decimal("0.2")
    await opened.apply(
        [
            StartCall(a_call()),
            FinishCall(
                "1795371264.1",
                {"caller_share": tenth, "callee_share": fifth, "total": tenth + fifth},
            ),
            StartCall(a_call("big")),
            FinishCall(
                "big",
                {
                    "caller_share": Decimal("0.01"),
                    "callee_share": Decimal("98765432109876.54"),
                    "total": Decimal("98765432109876.55"),
                },
            ),
        ]
    )

    small, big = await opened.get_cdr("1795371264.1"), await opened.get_cdr("big")
    assert (small.caller_share, small.callee_share, small.total) == (tenth, fifth, Decimal("0.3"))
    assert big.total == Decimal("98765432109876.55")
    stored = await engine.sql("SELECT total FROM cdrs ORDER BY call_id")
    assert [str(total) for (total,) in stored] == ["0.30", "98765432109876.55"]


async def test_times_keep_their_instant_and_their_utc_offset(
    engine: Engine, opened: ConfiguredStore
) -> None:
    answered = datetime(2026, 11, 22, 10, 14, 30, 250_000, tzinfo=UTC)
    ended = datetime(2026, 11, 22, 5, 20, tzinfo=ZoneInfo("America/New_York"))
    await opened.apply(
        [
            StartCall(a_call()),
            FinishCall("1795371264.1", {"answered_at": answered, "ended_at": ended}),
        ]
    )

    cdr = await opened.get_cdr("1795371264.1")
    for stored, given_time in [
        (cdr.started_at, T0),
        (cdr.answered_at, answered),
        (cdr.ended_at, ended),
    ]:
        assert stored == given_time
        assert stored.utcoffset() == given_time.utcoffset()
    assert await engine.sql("SELECT started_at, answered_at, ended_at FROM cdrs") == [
        (
            "2026-11-22T18:14:24+08:00",
            "2026-11-22T10:14:30.250000+00:00",
            "2026-11-22T05:20:00-05:00",
        )
    ]


async def test_close_interrupted_ends_stranded_calls_at_their_last_known_moment(
    opened: ConfiguredStore,
) -> None:
    now = T0 + timedelta(hours=1)
    with_legs, without_legs, finished, started_after = (
        a_call("with-legs"),
        a_call("without-legs", started_at=T0 + timedelta(minutes=5)),
        a_call("finished"),
        a_call("after-restart", started_at=now + timedelta(seconds=1)),
    )
    await opened.apply(
        [
            *(StartCall(cdr) for cdr in (with_legs, without_legs, finished, started_after)),
            AddLeg("with-legs", a_leg(1, started_at=T0 + timedelta(seconds=2), ring=20)),
            AddLeg("with-legs", a_leg(2, started_at=T0 + timedelta(seconds=23), ring=3, talk=40)),
            FinishCall("finished", ANSWERED),
        ]
    )

    assert await opened.close_interrupted(now) == 2

    closed = await opened.get_cdr("with-legs")
    assert (closed.outcome, closed.ended_at, closed.note) == (
        Outcome.INTERRUPTED,
        T0 + timedelta(seconds=23 + 3 + 40),
        INTERRUPTED_NOTE,
    )
    closed = await opened.get_cdr("without-legs")
    assert (closed.outcome, closed.ended_at) == (Outcome.INTERRUPTED, without_legs.started_at)
    assert (await opened.get_cdr("finished")).outcome is Outcome.ANSWERED
    assert (await opened.get_cdr("after-restart")).outcome is Outcome.IN_PROGRESS
    assert await opened.close_interrupted(now) == 0


async def test_a_leg_written_ahead_is_completed_once_and_a_replay_changes_nothing(
    opened: ConfiguredStore,
) -> None:
    ahead = a_leg(1, status=DIALLING, ring=0)
    final = a_leg(1, status="ANSWER", ring=4, talk=30)
    await opened.apply([StartCall(a_call()), AddLeg("1795371264.1", ahead)])
    assert (await opened.get_cdr("1795371264.1")).legs == (ahead,)

    await opened.apply([AddLeg("1795371264.1", final)])
    await opened.apply([AddLeg("1795371264.1", ahead), AddLeg("1795371264.1", final)])  # replay

    assert (await opened.get_cdr("1795371264.1")).legs == (final,)


async def test_each_router_finds_only_its_own_calls_left_in_progress(engine: Engine) -> None:
    if engine.name == "sqlite":
        pytest.skip("a SQLite file is one router's: its calls name none")
    first, second = engine.store("router-1"), engine.store("router-2")
    await first.open()
    await second.open()
    try:
        await first.apply([StartCall(a_call("of-1"))])
        await second.apply([StartCall(a_call("of-2"))])
        now = T0 + timedelta(hours=1)
        mine = [cdr.call_id for cdr in await first.stranded_calls(now)]
        adopted = [cdr.call_id for cdr in await first.stranded_calls(now, ["router-2"])]
        assert await first.close_interrupted(now) == 1
        assert (await second.get_cdr("of-2")).outcome is Outcome.IN_PROGRESS
        assert await first.close_interrupted(now, ["router-2"]) == 1
    finally:
        await first.close()
        await second.close()
    assert mine == ["of-1"]
    assert sorted(adopted) == ["of-1", "of-2"]


@pytest.fixture
async def four_calls(opened: ConfiguredStore) -> ConfiguredStore:
    """Two numbers, three callers, starts an hour apart; the newest is recorded in UTC."""
    calls = [
        a_call("a", started_at=T0),
        a_call(
            "b", caller_raw="13800000011", caller="13800000011", started_at=T0 + timedelta(hours=1)
        ),
        a_call("c", number="4000000002", started_at=T0 + timedelta(hours=2)),
        a_call(
            "d",
            caller_raw="+86 138 0000 0011",
            caller="13800000011",
            started_at=(T0 + timedelta(hours=3)).astimezone(UTC),
        ),
    ]
    await opened.apply(
        [
            *(StartCall(cdr) for cdr in calls),
            AddLeg("a", a_leg(1)),
            AddLeg("a", a_leg(2)),
            FinishCall("a", {"outcome": Outcome.BUSY}),
            FinishCall("d", {"outcome": Outcome.ANSWERED}),
        ]
    )
    return opened


async def test_queries_list_newest_first_with_legs(four_calls: ConfiguredStore) -> None:
    found = await four_calls.query_cdrs()

    assert [cdr.call_id for cdr in found] == ["d", "c", "b", "a"]
    assert [leg.seq for leg in found[-1].legs] == [1, 2]


async def test_queries_filter_by_number_caller_time_and_outcome(
    four_calls: ConfiguredStore,
) -> None:
    async def query(**filters: object) -> list[str]:
        return [cdr.call_id for cdr in await four_calls.query_cdrs(**filters)]

    assert await query(number="4000000002") == ["c"]
    assert await query(caller="13800000011") == ["d", "b"]
    assert await query(caller="+86 138 0000 0011") == ["d"]
    assert await query(outcome=Outcome.BUSY) == ["a"]
    assert await query(outcome=Outcome.IN_PROGRESS, number="4000000001") == ["b"]
    since_utc = (T0 + timedelta(hours=1)).astimezone(UTC)
    assert await query(since=since_utc) == ["d", "c", "b"]
    assert await query(since=since_utc, until=T0 + timedelta(hours=3)) == ["c", "b"]
    assert await query(limit=2) == ["d", "c"]


async def test_calls_started_at_the_same_moment_list_by_call_id_byte_order(
    opened: ConfiguredStore,
) -> None:
    ids = ["1795400000.9", "1795400000.10", "1795400000.B", "1795400000.a"]
    await opened.apply([StartCall(a_call(call_id)) for call_id in ids])

    found = [cdr.call_id for cdr in await opened.query_cdrs()]
    assert found == sorted(ids, key=str.encode, reverse=True)


async def test_pages_of_calls_give_each_call_once_in_the_order_of_one_listing(
    opened: ConfiguredStore,
) -> None:
    """An export reads a page at a time, each from where the last ended: calls started at
    the same moment across a page's end (listed by call id), a start with microseconds, one
    recorded in UTC and a call's legs come out as one query lists them, none twice."""
    moment = ["1795400000.9", "1795400000.10", "1795400000.B", "1795400000.a"]
    later = [T0 + timedelta(minutes=n, microseconds=n * 1001) for n in range(1, 6)]
    calls = [
        *(a_call(call_id) for call_id in moment),
        *(a_call(f"x{n}", started_at=at) for n, at in enumerate(later)),
        a_call("utc", number="4000000002", started_at=(T0 + timedelta(hours=1)).astimezone(UTC)),
    ]
    await opened.apply(
        [*(StartCall(cdr) for cdr in calls), AddLeg("x0", a_leg(1)), AddLeg("x0", a_leg(2))]
    )
    everything = await opened.query_cdrs()
    assert len(everything) == len(calls)

    for size in (1, 2, 3, 100):
        pages = [page async for page in cdr_pages(opened, page_size=size)]
        assert [len(page) for page in pages[:-1]] == [size] * (len(pages) - 1)
        assert [cdr for page in pages for cdr in page] == everything

    ids = [cdr.call_id for cdr in everything]
    limited = [page async for page in cdr_pages(opened, limit=5, page_size=2)]
    assert [[cdr.call_id for cdr in page] for page in limited] == [ids[0:2], ids[2:4], ids[4:5]]
    of_one_number = [page async for page in cdr_pages(opened, number="4000000002")]
    assert [[cdr.call_id for cdr in page] for page in of_one_number] == [["utc"]]
    assert [page async for page in cdr_pages(opened, number="4009999999")] == []


async def test_answered_calls_read_a_page_at_a_time_oldest_first_by_start(
    opened: ConfiguredStore,
) -> None:
    """What re-rating reads: the answered calls started in [since, until), of one number or
    all, oldest start first (calls started at the same moment by call id, byte by byte), each
    page from the call after the last one of the page before; and how many there are,
    counted in the store."""
    moment = ["1795400000.9", "1795400000.10", "1795400000.B", "1795400000.a"]
    answered = [
        *(a_call(call_id, started_at=T0 + timedelta(minutes=1)) for call_id in moment),
        a_call("first", started_at=T0),
        a_call("utc", number="4000000002", started_at=(T0 + timedelta(hours=1)).astimezone(UTC)),
        a_call("micro", started_at=T0 + timedelta(minutes=30, microseconds=1)),
        a_call("before", started_at=T0 - timedelta(microseconds=1)),
        a_call("at-until", started_at=T0 + timedelta(hours=2)),
    ]
    busy = a_call("busy", started_at=T0 + timedelta(minutes=2))
    await opened.apply(
        [
            *(StartCall(cdr) for cdr in [*answered, busy]),
            AddLeg("first", a_leg(1, status="ANSWER", talk=88)),
            *(FinishCall(cdr.call_id, ANSWERED) for cdr in answered),
            FinishCall("busy", {"outcome": Outcome.BUSY}),
        ]
    )
    since, until = T0, T0 + timedelta(hours=2)
    expected = ["first", *sorted(moment, key=str.encode), "micro", "utc"]

    for size in (1, 2, 3, 100):
        read: list[CDR] = []
        while True:
            page = await opened.answered_calls(
                since, until, after=read[-1] if read else None, limit=size
            )
            read += page
            if len(page) < size:
                break
        assert [cdr.call_id for cdr in read] == expected
    [first] = await opened.answered_calls(since, until, limit=1)
    assert [leg.seq for leg in first.legs] == [1]
    assert first.answered_at == ANSWERED["answered_at"]
    assert await opened.answered_count(since, until) == len(expected)

    of_one = await opened.answered_calls(since, until, number="4000000002", limit=10)
    assert [cdr.call_id for cdr in of_one] == ["utc"]
    assert await opened.answered_count(since, until, number="4000000002") == 1
    assert await opened.answered_count(since, until, number="4009999999") == 0


async def test_an_unknown_call_is_not_found(opened: ConfiguredStore) -> None:
    assert await opened.get_cdr("no-such-call") is None


# --- schema --------------------------------------------------------------------------------


def test_both_engines_are_at_the_same_schema_version() -> None:
    assert store.SCHEMA_VERSION == pg.SCHEMA_VERSION == 22


async def test_a_new_database_is_at_the_current_schema_version(
    engine: Engine, opened: ConfiguredStore
) -> None:
    assert await engine.sql("SELECT MAX(version) FROM schema_version") == [(store.SCHEMA_VERSION,)]


async def test_records_survive_closing_and_reopening_the_database(
    engine: Engine, opened: ConfiguredStore
) -> None:
    await opened.apply([StartCall(a_call()), AddLeg("1795371264.1", a_leg(1))])
    await opened.close()

    reopened = engine.store()
    await reopened.open()
    try:
        assert (await reopened.get_cdr("1795371264.1")).legs == (a_leg(1),)
    finally:
        await reopened.close()


async def test_a_database_of_a_newer_schema_is_refused(engine: Engine) -> None:
    await engine.sql("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    await engine.sql("INSERT INTO schema_version VALUES (99)")

    newer = engine.store()
    with pytest.raises(StoreUnavailable, match="newer"):
        await newer.open()
    await newer.close()


async def test_db_upgrade_creates_the_schema_and_prints_its_version(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "router.yaml").write_text(f'store: "{engine.url}"\n', encoding="utf-8")
    upgrade = ["db", "upgrade", "--config", str(config)]

    assert await asyncio.to_thread(main, upgrade) == 0
    assert "schema version 22 (upgraded from 0)" in capsys.readouterr().out
    assert await asyncio.to_thread(main, upgrade) == 0
    assert "schema version 22 (already current)" in capsys.readouterr().out
    versions = await engine.sql("SELECT version FROM schema_version ORDER BY version")
    assert versions == [(v,) for v in range(1, 23)]


# --- each number's terms ------------------------------------------------------------------


async def test_a_numbers_terms_history_is_kept_oldest_first(opened: ConfiguredStore) -> None:
    first = RecordedTerms(
        NUMBER,
        date(2025, 6, 1),
        Terms("nationwide-300", Decimal("500.00"), Decimal("0.2000")),
        T0,
        "first recorded",
    )
    second = RecordedTerms(
        NUMBER,
        date(2026, 12, 1),
        Terms("nationwide-300", Decimal("600.00"), Decimal("0.0667")),
        T0 + timedelta(days=3),
        "minimum raised",
    )
    other = RecordedTerms(
        "4008207788",
        date(2026, 1, 1),
        Terms("business-hall", Decimal("0.00"), Decimal("0.60")),
        T0,
        "first recorded",
    )
    await opened.record_terms([second, other])
    await opened.record_terms([first])

    history = await opened.terms_history(NUMBER)

    assert [(h.since, h.terms, h.note) for h in history] == [
        (first.since, first.terms, first.note),
        (second.since, second.terms, second.note),
    ]
    assert history[0].recorded_at == T0
    assert await opened.terms_history("4000000000") == []


# --- accounts: ledger, balances, usage counters ------------------------------------------


async def test_the_balance_is_the_sum_of_the_entries_and_repeats_are_ignored(
    opened: ConfiguredStore,
) -> None:
    assert await opened.post_ledger([payment("receipt-1", "600.00")]) == 1
    assert await opened.post_ledger([payment("receipt-1", "600.00")]) == 0
    await opened.apply([PostLedger(charge("c1", "-0.36")), PostLedger(charge("c2", "-1.20"))])
    await opened.apply([PostLedger(charge("c1", "-0.36"))])  # a journal replay

    usage = await opened.usage(NUMBER, "2026-11", "2026-11-23")
    assert usage.balance == Decimal("598.44")
    assert [entry.amount for entry in await opened.ledger(NUMBER)] == [
        Decimal("600.00"),
        Decimal("-0.36"),
        Decimal("-1.20"),
    ]


async def test_the_ledger_reads_back_filtered_by_time_and_kind(opened: ConfiguredStore) -> None:
    await opened.post_ledger([payment("receipt-1", "600.00"), charge("c1", "-0.36")])
    await opened.apply([PostLedger(charge("c2", "-1.20", "2026-11-24 10:00"))])

    assert [e.ref for e in await opened.ledger(NUMBER, kind=LedgerKind.CALL)] == ["c1", "c2"]
    assert [e.ref for e in await opened.ledger(NUMBER, since=at("2026-11-23 10:00"))] == [
        "c1",
        "c2",
    ]
    assert [e.ref for e in await opened.ledger(NUMBER, until=at("2026-11-23 10:00"))] == [
        "receipt-1"
    ]
    assert await opened.ledger("4009999999") == []


async def test_which_refs_an_account_has_entries_of_is_read_by_ref(
    opened: ConfiguredStore,
) -> None:
    """What a booking asks before it writes (router.money.booking_alerts): which of its
    entries the ledger holds already, by their keys, however many the account has."""
    await opened.post_ledger(
        [
            payment("receipt-1", "600.00"),
            charge("c1", "-0.36"),
            *(adjustment(f"rerate:x{n}:1", "0.10") for n in range(1200)),
        ]
    )
    asked = ["rerate:x7:1", "rerate:x1199:1", "rerate:new:1", "c1", "receipt-1"]

    held = await opened.ledger_refs(NUMBER, LedgerKind.ADJUSTMENT, asked)
    assert held == {"rerate:x7:1", "rerate:x1199:1"}
    many = [f"rerate:x{n}:1" for n in range(0, 2400, 2)]
    assert await opened.ledger_refs(NUMBER, LedgerKind.ADJUSTMENT, many) == set(many[:600])
    assert await opened.ledger_refs(NUMBER, LedgerKind.PAYMENT, asked) == {"receipt-1"}
    assert await opened.ledger_refs("4009999999", LedgerKind.CALL, asked) == set()
    assert await opened.ledger_refs(NUMBER, LedgerKind.CALL, []) == set()


async def test_call_charges_move_the_month_and_day_counters(opened: ConfiguredStore) -> None:
    await opened.apply(
        [
            PostLedger(charge("c1", "-0.50", "2026-11-22 23:59"), included_seconds=60),
            PostLedger(charge("c2", "-0.25", "2026-11-23 00:01")),
            PostLedger(charge("c3", "-2.00", "2026-12-01 00:00")),
        ]
    )
    await opened.post_ledger([payment("receipt-2", "100.00")])

    november = await opened.usage(NUMBER, "2026-11", "2026-11-23")
    assert (november.month_cost, november.day_cost, november.included_used) == (
        Decimal("0.75"),
        Decimal("0.25"),
        60,
    )
    december = await opened.usage(NUMBER, "2026-12", "2026-12-01")
    assert (december.month_cost, december.day_cost) == (Decimal("2.00"), Decimal("2.00"))


def adjustment(ref: str, amount: str, when: str = "2026-12-07 15:00") -> LedgerEntry:
    return LedgerEntry(NUMBER, at(when), Decimal(amount), LedgerKind.ADJUSTMENT, ref, "")


async def counters(store: ConfiguredStore, day: str) -> tuple[Decimal, Decimal]:
    usage = await store.usage(NUMBER, day[:7], day)
    return usage.month_cost, usage.day_cost


async def test_a_re_rating_adjustment_moves_the_counters_of_its_calls_month_and_day(
    opened: ConfiguredStore,
) -> None:
    """A call re-priced in December from 0.60 to 0.40 counts 0.40 in November and on the day
    it was answered; December's counters, where the adjustment is dated, and any other
    adjustment's, do not move."""
    await opened.apply(
        [
            PostLedger(charge("1795371264.12", "-0.60", "2026-11-05 10:00")),
            PostLedger(charge("1795371264.13", "-0.30", "2026-11-06 10:00")),
            PostLedger(charge("1795371264.14", "-1.00", "2026-12-07 09:00")),
        ]
    )
    await opened.post_ledger(
        [adjustment("rerate:1795371264.12:1", "0.20"), adjustment("goodwill", "5.00")]
    )

    assert await counters(opened, "2026-11-05") == (Decimal("0.70"), Decimal("0.40"))
    assert await counters(opened, "2026-11-06") == (Decimal("0.70"), Decimal("0.30"))
    assert await counters(opened, "2026-12-07") == (Decimal("1.00"), Decimal("1.00"))


async def test_the_included_seconds_each_call_took_read_back_by_call(
    opened: ConfiguredStore,
) -> None:
    await opened.apply(
        [
            PostLedger(charge("c1", "0.00"), included_seconds=120),
            PostLedger(charge("c2", "-0.30")),
            PostLedger(charge("c3", "-0.10"), included_seconds=30),
        ]
    )
    await opened.post_ledger([payment("receipt-1", "600.00")])

    assert await opened.included_seconds_booked(NUMBER) == {"c1": 120, "c3": 30}
    assert await opened.included_seconds_booked("4009999999") == {}


AT_ONCE = NumberRules(
    timing=Timing(cancellation_notice_days=0, cancelled_freeze_days=0, review_min_working_days=0)
)
"""A lifecycle without notice, freeze or review time: a number changes hands within a day."""


async def hand_over(store: ConfiguredStore, gone: str, to: str, when: str) -> None:
    """The number, held by `gone` (or by nobody yet), comes back to the pool at `when` and is
    taken at once by `to` (through another provider, and reviewed at once)."""
    inventory = Inventory(store, AT_ONCE, OfficialCalendar(), UNWATCHED)
    calendar = OfficialCalendar()
    instant = at(when)
    await store.add_numbers([NumberRecord(NUMBER)], at("2026-11-01 00:00"))
    if gone:
        await inventory.act(NUMBER, instant, lambda r, t: lifecycle.cancel(r, "ops", t, AT_ONCE))
        await inventory.act(NUMBER, instant, None)  # the freeze of no length runs out
    provider = f"sp-{to}"
    for action in (
        lambda r, t: lifecycle.reserve(r, provider, t, AT_ONCE),
        lambda r, t: lifecycle.apply(r, to, provider, t, AT_ONCE),
        lambda r, t: lifecycle.submit(r, t, AT_ONCE, calendar),
        lambda r, t: lifecycle.approve(r, "ops", t, AT_ONCE, calendar),
    ):
        await inventory.act(NUMBER, instant, action)


async def test_a_new_holders_counters_start_from_nothing_mid_month(
    opened: ConfiguredStore,
) -> None:
    """The number comes back to the pool on 23 November and beta takes it that day: beta's
    month and day count its own call only, its cap units its own calls, and a re-rating of
    alpha's call moves alpha's counters, not beta's."""
    await hand_over(opened, "", "alpha", "2026-11-02 09:00")
    await opened.apply(
        [
            PostLedger(charge("1795371264.21", "-0.60", "2026-11-23 08:00"), included_seconds=60),
            PostLedger(charge("1795371264.22", "-1.20", "2026-11-23 08:30")),
        ]
    )
    assert [await opened.reserve_call(NUMBER, "2026-11", 2) for _ in range(3)] == [
        True,
        True,
        False,
    ]
    await hand_over(opened, "alpha", "beta", "2026-11-23 09:00")
    await opened.apply([PostLedger(charge("1795371264.23", "-0.30", "2026-11-23 10:00"))])
    await opened.post_ledger([adjustment("rerate:1795371264.21:1", "0.20", "2026-11-23 08:00")])

    usage = await opened.usage(NUMBER, "2026-11", "2026-11-23")
    assert (usage.month_cost, usage.day_cost, usage.included_used, usage.month_calls) == (
        Decimal("0.30"),
        Decimal("0.30"),
        0,
        0,
    )
    assert [await opened.reserve_call(NUMBER, "2026-11", 2) for _ in range(3)] == [
        True,
        True,
        False,
    ]
    await opened.release_call(NUMBER, "2026-11")
    assert (await opened.usage(NUMBER, "2026-11", "2026-11-23")).month_calls == 1


async def test_a_number_without_entries_has_no_balance_and_zero_usage(
    opened: ConfiguredStore,
) -> None:
    usage = await opened.usage("4009999999", "2026-11", "2026-11-23")
    assert (usage.balance, usage.month_cost, usage.month_calls) == (None, Decimal("0.00"), 0)


async def test_a_calls_read_of_the_balance_seeks_the_current_holding_by_its_key(
    engine: Engine, opened: ConfiguredStore
) -> None:
    """The call path reads the balance and counters of the number's latest holding in its one
    counters read: seeks on the keys (number, since, ...), never a scan of the number's
    holdings."""
    if engine.name != "sqlite":
        pytest.skip("PostgreSQL plans tiny tables as scans; the key is the same")
    sql = queries.USAGE_SNAPSHOT.replace("?", f"'{NUMBER}'")
    plan = [str(step) for step in await engine.sql(f"EXPLAIN QUERY PLAN {sql}")]
    for alias in ("b", "h"):  # the holding read, and the latest holding's key
        assert any(f"SEARCH {alias} USING PRIMARY KEY (number=?" in step for step in plan), plan
    for alias in ("m", "d", "c"):  # the holding's counters: month, day, cap units
        seek = f"SEARCH {alias} USING PRIMARY KEY (number=? AND since_us=? AND "
        assert any(seek in step for step in plan), plan
    scans = [step for step in plan for alias in "bhmdc" if re.search(rf"SCAN {alias}\b", step)]
    assert not scans, plan


async def test_a_provider_added_before_version_22_warns_under_50_and_its_threshold_can_be_set(
    engine: Engine,
) -> None:
    migrations = store.MIGRATIONS if engine.name == "sqlite" else pg.MIGRATIONS
    await engine.sql("CREATE TABLE schema_version (version integer NOT NULL)")
    for version, statements in enumerate(migrations[:21], start=1):
        for statement in statements:
            await engine.sql(statement)
        await engine.sql(f"INSERT INTO schema_version VALUES ({version})")
    await engine.sql(
        "INSERT INTO providers (name, full_name, licence, legal_representative, id_masked, "
        "created_us) VALUES ('sp-east', 'East Reseller', '', '', '', 0)"
    )

    upgraded = engine.store()
    await upgraded.open()
    try:
        [provider] = await upgraded.providers("sp-east")
        assert provider.low_balance_warning == Decimal("50.00")
        assert await upgraded.set_provider_warning("sp-east", Decimal("12.34"))
        assert not await upgraded.set_provider_warning("sp-north", Decimal("12.34"))
        [provider] = await upgraded.providers()
        assert provider.low_balance_warning == Decimal("12.34")
    finally:
        await upgraded.close()


@pytest.mark.parametrize("before", [15, 14])
async def test_a_database_upgraded_past_version_16_splits_each_balance_by_the_holdings(
    engine: Engine, before: int
) -> None:
    """Before version 16 a number's balance was one row: a holder applying for a number back
    from the pool took on what the last holder owed. The upgrade (from 15, or from 14 through
    15's reservation periods) splits it at the history's returns to the pool: the current
    holding keeps only its own entries."""
    migrations = store.MIGRATIONS if engine.name == "sqlite" else pg.MIGRATIONS
    await engine.sql("CREATE TABLE schema_version (version integer NOT NULL)")
    for version, statements in enumerate(migrations[:before], start=1):
        for statement in statements:
            await engine.sql(statement)
        await engine.sql(f"INSERT INTO schema_version VALUES ({version})")
    returned = at("2026-06-10 10:00")
    await engine.sql(
        "INSERT INTO number_history (number, at_us, actor, from_status, to_status, reason, "
        f"fees, fee_fen) VALUES ('{NUMBER}', {int(returned.timestamp() * 1_000_000)}, 'system', "
        "'cancelled', 'available', '90-day freeze ended; available', '', 0)"
    )
    entries = [
        ("2026-01-05 10:00", -60000, "opening_fee"),  # alpha's, never paid
        ("2026-06-21 10:00", -60000, "opening_fee"),  # beta's, after the return
        ("2026-06-22 10:00", 70000, "payment"),
    ]
    for when, fen, kind in entries:
        moment = at(when)
        await engine.sql(
            "INSERT INTO ledger (number, at, at_us, month, day, amount_fen, kind, ref, note) "
            f"VALUES ('{NUMBER}', '{moment.isoformat()}', {int(moment.timestamp() * 1_000_000)},"
            f" '{moment:%Y-%m}', '{moment:%Y-%m-%d}', {fen}, '{kind}', '{when}', '')"
        )

    upgraded = engine.store()
    await upgraded.open()
    try:
        usage = await upgraded.usage(NUMBER, "2026-06", "2026-06-22")
        assert usage.balance == Decimal("100.00")
        assert await upgraded.holdings(NUMBER) == [
            Holding(None, None, Decimal("-600.00")),
            Holding(returned, None, Decimal("100.00")),
        ]
    finally:
        await upgraded.close()


async def test_a_database_upgraded_past_version_18_counts_re_priced_calls_at_their_new_price(
    engine: Engine,
) -> None:
    """Before version 18 a re-rating adjustment left the counters at the call's old price; the
    upgrade moves them by the adjustments already booked."""
    migrations = store.MIGRATIONS if engine.name == "sqlite" else pg.MIGRATIONS
    await engine.sql("CREATE TABLE schema_version (version integer NOT NULL)")
    for version, statements in enumerate(migrations[:17], start=1):
        for statement in statements:
            await engine.sql(statement)
        await engine.sql(f"INSERT INTO schema_version VALUES ({version})")
    entries = [
        ("2026-11-05 10:00", -60, "call", "c1"),
        ("2026-11-06 10:00", -30, "call", "c2"),
        ("2026-12-01 10:00", 20, "adjustment", "rerate:c1:1"),
        ("2026-12-02 10:00", -10, "adjustment", "rerate:c1:2"),
        ("2026-12-02 11:00", 500, "adjustment", "goodwill"),
    ]
    for when, fen, kind, ref in entries:
        moment = at(when)
        await engine.sql(
            "INSERT INTO ledger (number, at, at_us, month, day, amount_fen, kind, ref, note) "
            f"VALUES ('{NUMBER}', '{moment.isoformat()}', {int(moment.timestamp() * 1_000_000)},"
            f" '{moment:%Y-%m}', '{moment:%Y-%m-%d}', {fen}, '{kind}', '{ref}', '')"
        )

    upgraded = engine.store()
    await upgraded.open()
    try:
        assert await counters(upgraded, "2026-11-05") == (Decimal("0.80"), Decimal("0.50"))
        assert await counters(upgraded, "2026-11-06") == (Decimal("0.80"), Decimal("0.30"))
        assert await counters(upgraded, "2026-12-01") == (Decimal("0.00"), Decimal("0.00"))
    finally:
        await upgraded.close()


async def test_a_database_upgraded_past_version_21_splits_the_counters_by_the_holdings(
    engine: Engine,
) -> None:
    """Before version 21 a number's counters were one set: a holder taking a number back
    from the pool mid-month counted the past holder's calls toward its caps. The upgrade
    rebuilds the cost counters of each holding from its calls' entries (re-ratings in their
    call's holding), and gives a month's cap units to the holding of the month's first call."""
    migrations = store.MIGRATIONS if engine.name == "sqlite" else pg.MIGRATIONS
    await engine.sql("CREATE TABLE schema_version (version integer NOT NULL)")
    for version, statements in enumerate(migrations[:20], start=1):
        for statement in statements:
            await engine.sql(statement)
        await engine.sql(f"INSERT INTO schema_version VALUES ({version})")
    returned = int(at("2026-11-23 09:00").timestamp() * 1_000_000)
    await engine.sql(
        "INSERT INTO number_history (number, at_us, actor, from_status, to_status, reason, "
        f"fees, fee_fen) VALUES ('{NUMBER}', {returned}, 'system', 'cancelled', 'available', "
        "'freeze ended; available', '', 0)"
    )
    await engine.sql(
        "INSERT INTO holding_balances (number, since_us, holder, balance_fen) "
        f"VALUES ('{NUMBER}', {returned}, NULL, 0)"
    )
    entries = [
        ("2026-11-23 08:00", -60, "call", "c1", 60),  # alpha's
        ("2026-11-23 08:30", -120, "call", "c2", 0),
        ("2026-11-23 08:00", 20, "adjustment", "rerate:c1:1", 0),  # c1 re-priced at 0.40
        ("2026-11-23 10:00", -30, "call", "c3", 0),  # beta's
    ]
    for when, fen, kind, ref, included in entries:
        moment = at(when)
        await engine.sql(
            "INSERT INTO ledger (number, at, at_us, month, day, amount_fen, kind, ref, note, "
            f"included_seconds) VALUES ('{NUMBER}', '{moment.isoformat()}', "
            f"{int(moment.timestamp() * 1_000_000)}, '{moment:%Y-%m}', '{moment:%Y-%m-%d}', "
            f"{fen}, '{kind}', '{ref}', '', {included})"
        )
    for call_id, when in (("c1", "2026-11-23 08:00"), ("c3", "2026-11-23 10:00")):
        moment = at(when)
        await engine.sql(
            "INSERT INTO cdrs (call_id, number, caller_raw, caller_kind, started_at, started_us,"
            f" outcome) VALUES ('{call_id}', '{NUMBER}', '13912345678', 'mobile', "
            f"'{moment.isoformat()}', {int(moment.timestamp() * 1_000_000)}, 'answered')"
        )
    await engine.sql(
        f"INSERT INTO call_units (number, month, calls) VALUES ('{NUMBER}', '2026-11', 3)"
    )

    upgraded = engine.store()
    await upgraded.open()
    try:
        usage = await upgraded.usage(NUMBER, "2026-11", "2026-11-23")
        assert (usage.month_cost, usage.day_cost, usage.included_used, usage.month_calls) == (
            Decimal("0.30"),
            Decimal("0.30"),
            0,
            0,
        )
        rows = await engine.sql(
            "SELECT since_us, period, cost_fen, included_used FROM usage ORDER BY since_us, period"
        )
        assert [tuple(row) for row in rows] == [
            (0, "2026-11", 160, 60),
            (0, "2026-11-23", 160, 0),
            (returned, "2026-11", 30, 0),
            (returned, "2026-11-23", 30, 0),
        ]
        units = await engine.sql("SELECT since_us, month, calls FROM call_units")
        assert [tuple(row) for row in units] == [(0, "2026-11", 3)]
        await upgraded.apply([PostLedger(charge("c4", "-0.10", "2026-11-23 11:00"))])
        assert await counters(upgraded, "2026-11-23") == (Decimal("0.40"), Decimal("0.40"))
    finally:
        await upgraded.close()


async def test_ledger_rows_are_never_changed_nor_deleted(
    engine: Engine, opened: ConfiguredStore
) -> None:
    await opened.post_ledger([payment("receipt-3", "50.00")])

    with pytest.raises(engine.error, match="never changed"):
        await engine.sql("UPDATE ledger SET amount_fen = 1")
    with pytest.raises(engine.error, match="never deleted"):
        await engine.sql("DELETE FROM ledger")
    assert await engine.sql("SELECT amount_fen FROM ledger") == [(5000,)]


async def test_two_routers_racing_for_a_call_cap_take_exactly_the_cap(engine: Engine) -> None:
    first, second = engine.store("router-1"), engine.store("router-2")
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
        assert not await first.reserve_call(NUMBER, "2026-11", 0)
        assert (await first.usage(NUMBER, "2026-11", "2026-11-23")).month_calls == 7
    finally:
        await first.close()
        await second.close()


async def count_failure(
    opened: ConfiguredStore, call_id: str, when: datetime, caller: str = "13912345678"
) -> PinTally:
    """One failed PIN call under the guard 3 failed calls in 10 minutes -> 5 minutes out."""
    return await opened.count_pin_failure(
        NUMBER,
        caller,
        call_id,
        when,
        window=timedelta(minutes=10),
        limit=3,
        block=timedelta(minutes=5),
    )


async def test_failed_pin_calls_count_in_a_sliding_window(opened: ConfiguredStore) -> None:
    first = await count_failure(opened, "p.1", at("2026-11-23 10:00"))
    second = await count_failure(opened, "p.2", at("2026-11-23 10:08"))
    slid = await count_failure(opened, "p.3", at("2026-11-23 10:11"))  # 10:00 left the window
    other = await count_failure(opened, "p.4", at("2026-11-23 10:11"), caller="")

    assert [tally.failures for tally in (first, second, slid, other)] == [1, 2, 2, 1]
    assert all(tally.blocked_until is None for tally in (first, second, slid, other))
    assert await opened.pin_blocked_until(NUMBER, "13912345678", at("2026-11-23 10:12")) is None


async def test_the_threshold_refuses_the_caller_for_the_cool_off_only(
    opened: ConfiguredStore,
) -> None:
    for n, minute in enumerate(("10:00", "10:01")):
        await count_failure(opened, f"p.{n}", at(f"2026-11-23 {minute}"))
    third = await count_failure(opened, "p.3", at("2026-11-23 10:02"))

    until = at("2026-11-23 10:07")
    assert third == PinTally(3, until)
    assert await opened.pin_blocked_until(NUMBER, "13912345678", at("2026-11-23 10:06")) == until
    assert await opened.pin_blocked_until(NUMBER, "13912345678", until) is None
    assert await opened.pin_blocked_until(NUMBER, "", at("2026-11-23 10:06")) is None
    assert await opened.pin_blocked_until("4009999999", "13912345678", until) is None


async def test_a_block_is_not_shortened_by_a_later_count_under_the_threshold(
    opened: ConfiguredStore,
) -> None:
    for n, minute in enumerate(("10:00", "10:01", "10:02")):
        await count_failure(opened, f"p.{n}", at(f"2026-11-23 {minute}"))
    late = await count_failure(opened, "p.9", at("2026-11-23 10:20"))  # a call already in

    assert late == PinTally(1, None)
    assert await opened.pin_blocked_until(NUMBER, "13912345678", at("2026-11-23 10:06"))


async def test_two_routers_counting_one_caller_at_once_reach_the_threshold_once(
    engine: Engine,
) -> None:
    first, second = engine.store("router-1"), engine.store("router-2")
    await first.open()
    await second.open()
    try:
        counts = [
            count_failure(first if n % 2 else second, f"race.{n}", at("2026-11-23 10:00"))
            for n in range(6)
        ]
        tallies = await asyncio.gather(*counts)
    finally:
        await first.close()
        await second.close()
    assert sorted(tally.failures for tally in tallies) == [1, 2, 3, 4, 5, 6]
    assert [tally.blocked_until is not None for tally in tallies].count(True) == 4


amounts = st.decimals(min_value=Decimal("-500"), max_value=Decimal("500"), places=2)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(amounts, min_size=1, max_size=30))
async def test_the_balance_always_equals_the_sum_of_the_rows(
    opened: ConfiguredStore, values: list[Decimal]
) -> None:
    number = f"400{uuid.uuid4().int % 10**7:07d}"  # every example books on a number of its own
    entries = [
        LedgerEntry(number, at("2026-11-23 10:00"), value, LedgerKind.ADJUSTMENT, f"a{i}")
        for i, value in enumerate(values)
    ]
    await opened.post_ledger(entries)

    usage = await opened.usage(number, "2026-11", "2026-11-23")
    rows = await opened.ledger(number)
    assert usage.balance == sum((row.amount for row in rows), Decimal("0.00"))
    assert usage.balance == sum(values, Decimal("0.00"))


# --- what one engine does of its own ------------------------------------------------------
# PostgreSQL's own behaviour (several routers, outages, deadlock-free batches) is in
# tests/router/storage/test_pg_store.py.


async def test_a_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "hotline400.db")
    opened = engine.store()
    await opened.open()
    await opened.close()

    assert await engine.sql("PRAGMA journal_mode") == [("wal",)]


async def test_a_sqlite_file_locked_by_another_process_is_unavailable_until_released(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hotline400.db"
    opened = store.SQLiteStore(path, busy_timeout_ms=20)
    await opened.open()
    try:
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StoreUnavailable, match="locked"):
                await opened.apply([StartCall(a_call())])
            other.execute("ROLLBACK")
        await opened.apply([StartCall(a_call())])
        assert await opened.get_cdr("1795371264.1") == a_call()
    finally:
        await opened.close()


async def test_a_sqlite_file_of_version_2_keeps_its_cap_units_and_stranded_calls(
    tmp_path: Path,
) -> None:
    """Before version 3 a SQLite file named no router and counted cap units in `usage`."""
    path = tmp_path / "hotline400.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as old:
        old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, statements in enumerate(store.MIGRATIONS[:2], start=1):
            for statement in statements:
                old.execute(statement)
            old.execute("INSERT INTO schema_version VALUES (?)", (version,))
        old.execute("INSERT INTO usage (number, period, calls) VALUES (?, '2026-11', 4)", (NUMBER,))
        old.execute(
            "INSERT INTO cdrs (call_id, number, caller_raw, caller_kind, started_at, started_us,"
            " outcome) VALUES ('old', ?, '010', 'fixed', ?, 0, 'in_progress')",
            (NUMBER, T0.isoformat()),
        )

    upgraded = store.SQLiteStore(path)
    await upgraded.open()
    try:
        assert (await upgraded.usage(NUMBER, "2026-11", "2026-11-23")).month_calls == 4
        assert await upgraded.reserve_call(NUMBER, "2026-11", 5)
        assert not await upgraded.reserve_call(NUMBER, "2026-11", 5)
        assert await upgraded.close_interrupted(T0 + timedelta(hours=1)) == 1
        assert (await upgraded.get_cdr("old")).outcome is Outcome.INTERRUPTED
    finally:
        await upgraded.close()


async def test_sign_in_attempts_count_per_key_until_settled_and_old_ones_are_dropped(
    opened: ConfiguredStore,
) -> None:
    keys = ("user:shop", "client:10.0.0.9")
    attempts = []
    for minute in (0, 1, 2):
        at = T0 + timedelta(minutes=minute)
        attempts.append(await opened.login_attempted(keys, at, at - timedelta(minutes=15)))
    since = T0 + timedelta(seconds=30)
    recent = await opened.login_failures((*keys, "user:clinic"), since)
    assert recent == {
        "user:shop": [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)],
        "client:10.0.0.9": [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)],
        "user:clinic": [],
    }
    assert await opened.login_failures(keys[:1], since, besides=attempts[2]) == {
        "user:shop": [T0 + timedelta(minutes=1)]
    }
    await opened.login_settled(keys, attempts[1])  # it did not fail after all
    assert await opened.login_failures(keys, since) == {
        key: [T0 + timedelta(minutes=2)] for key in keys
    }
    later = T0 + timedelta(minutes=20)  # the first three are older than the window now
    last = await opened.login_attempted(keys[:1], later, later - timedelta(minutes=15))
    assert (await opened.login_failures(keys[:1], T0 - timedelta(days=1))) == {"user:shop": [later]}
    await opened.login_attempted(keys, later, later - timedelta(minutes=15))
    await opened.login_settled(keys[:1], last, forget=keys[:1])  # the user signed in
    assert await opened.login_failures(keys, T0 - timedelta(days=1)) == {
        "user:shop": [],
        "client:10.0.0.9": [later],
    }


# --- the lease of a router name -------------------------------------------------------------


async def test_a_router_name_is_leased_to_one_instance_until_its_lease_expires(
    engine: Engine, opened: ConfiguredStore
) -> None:
    other = engine.store()
    try:
        assert await opened.claim_lease("r1", "first", "host-a pid 1", 30) is None
        assert await opened.claim_lease("r1", "first", "host-a pid 1", 30) is None  # renewed

        refused = await other.claim_lease("r1", "second", "host-b pid 2", 30)
        assert refused is not None and refused.holder == "host-a pid 1"
        assert timedelta(seconds=25) < refused.expires_at - datetime.now(SHANGHAI)
        assert await other.claim_lease("r2", "second", "host-b pid 2", 30) is None

        assert await opened.claim_lease("r1", "first", "host-a pid 1", 0.2) is None
        await asyncio.sleep(0.3)  # not renewed in time: as if its router had died
        assert await other.claim_lease("r1", "second", "host-b pid 2", 30) is None
        lost = await opened.claim_lease("r1", "first", "host-a pid 1", 30)
        assert lost is not None and lost.holder == "host-b pid 2"
    finally:
        await other.close()


async def test_a_released_lease_is_free_at_once_and_only_its_holder_releases_it(
    opened: ConfiguredStore,
) -> None:
    assert await opened.claim_lease("r1", "first", "host-a", 30) is None
    await opened.release_lease("r1", "someone-else")
    assert await opened.claim_lease("r1", "second", "host-b", 30) is not None

    await opened.release_lease("r1", "first")
    assert await opened.claim_lease("r1", "second", "host-b", 30) is None


async def test_a_lease_is_taken_over_whoever_holds_it_when_asked(opened: ConfiguredStore) -> None:
    assert await opened.claim_lease("r1", "first", "host-a", 30) is None
    assert await opened.claim_lease("r1", "second", "host-b", 30, take_over=True) is None
    lost = await opened.claim_lease("r1", "first", "host-a", 30)
    assert lost is not None and lost.holder == "host-b"


async def test_a_fresh_lease_held_for_a_spool_dir_is_taken_over_by_a_claim_for_that_spool_dir(
    opened: ConfiguredStore,
) -> None:
    """A claim for the spool_dir the holder journals to comes from a router holding that
    directory's lock, so from the holder's restart: it takes the lease at once. A claim for
    another spool_dir, or for none, is refused while the lease is fresh."""
    assert await opened.claim_lease("r1", "crashed", "host-a pid 1", 30, spool="a t1") is None

    for other_spool in ("a t2", "b t1", None):
        refused = await opened.claim_lease("r1", "other", "host-b", 30, spool=other_spool)
        assert refused is not None and refused.holder == "host-a pid 1"

    assert await opened.claim_lease("r1", "restarted", "host-a pid 2", 30, spool="a t1") is None
    lost = await opened.claim_lease("r1", "crashed", "host-a pid 1", 30)
    assert lost is not None and lost.holder == "host-a pid 2"
