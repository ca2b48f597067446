"""The CDR model and the SQLite store, on a real database file."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.storage.cdr import (
    CDR,
    AddLeg,
    CallerRegion,
    FinishCall,
    ForwardReason,
    Leg,
    Outcome,
    StartCall,
    op_from_json,
    op_to_json,
)
from router.storage.protocol import INTERRUPTED_NOTE, StoreUnavailable
from router.storage.sqlite import SCHEMA_VERSION, SQLiteStore

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 22, 18, 14, 24, tzinfo=SHANGHAI)
JINAN = CallerRegion(province="山东", city="济南", area_code="0531")


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


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "cdr.db", busy_timeout_ms=20)
    await store.open()
    yield store
    await store.close()


@contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    """Another connection holding the write lock, as a second process would."""
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")


def raw(path: Path, sql: str) -> list[tuple]:
    """Run one statement on a separate connection, committed at once."""
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        return other.execute(sql).fetchall()


async def test_a_call_written_ahead_reads_back_in_progress_as_given(store: SQLiteStore) -> None:
    await store.apply([StartCall(a_call())])

    assert await store.get_cdr("1795371264.1") == a_call()
    assert (await store.get_cdr("1795371264.1")).outcome is Outcome.IN_PROGRESS


async def test_a_withheld_caller_is_stored_without_a_normalised_number(
    store: SQLiteStore,
) -> None:
    withheld = a_call(caller_raw="anonymous", caller=None)
    await store.apply([StartCall(withheld)])

    assert await store.get_cdr(withheld.call_id) == withheld


async def test_legs_read_back_in_dial_order_whatever_order_they_arrived_in(
    store: SQLiteStore,
) -> None:
    await store.apply([StartCall(a_call()), AddLeg("1795371264.1", a_leg(2))])
    await store.apply([AddLeg("1795371264.1", a_leg(3)), AddLeg("1795371264.1", a_leg(1))])

    cdr = await store.get_cdr("1795371264.1")
    assert [leg.seq for leg in cdr.legs] == [1, 2, 3]
    assert cdr.legs[0] == a_leg(1)


async def test_finishing_a_call_completes_it_and_keeps_what_was_written_ahead(
    store: SQLiteStore,
) -> None:
    await store.apply([StartCall(a_call()), AddLeg("1795371264.1", a_leg(1))])
    await store.apply([FinishCall("1795371264.1", ANSWERED)])

    cdr = await store.get_cdr("1795371264.1")
    assert cdr.outcome is Outcome.ANSWERED
    assert {name: getattr(cdr, name) for name in ANSWERED} == ANSWERED
    assert (cdr.number, cdr.caller, cdr.region, cdr.legs) == (
        "4000000001",
        "053188889999",
        JINAN,
        (a_leg(1),),
    )


async def test_replaying_the_same_operations_stores_each_call_and_leg_once(
    store: SQLiteStore,
) -> None:
    ops = [
        StartCall(a_call()),
        AddLeg("1795371264.1", a_leg(1)),
        AddLeg("1795371264.1", a_leg(2, reason=ForwardReason.BUSY)),
        FinishCall("1795371264.1", ANSWERED),
    ]
    await store.apply(ops)
    once = await store.get_cdr("1795371264.1")
    await store.apply(ops)
    await store.apply(ops[:2])

    assert await store.get_cdr("1795371264.1") == once
    assert raw(store.path, "SELECT COUNT(*) FROM cdrs") == [(1,)]
    assert raw(store.path, "SELECT COUNT(*) FROM legs") == [(2,)]


async def test_a_start_replayed_late_does_not_reopen_a_finished_call(store: SQLiteStore) -> None:
    await store.apply([StartCall(a_call()), FinishCall("1795371264.1", ANSWERED)])
    await store.apply([StartCall(a_call())])

    assert (await store.get_cdr("1795371264.1")).outcome is Outcome.ANSWERED


async def test_a_batch_lands_whole_or_not_at_all(store: SQLiteStore) -> None:
    raw(
        store.path,
        "CREATE TRIGGER refuse_third_leg BEFORE INSERT ON legs WHEN NEW.seq = 3 "
        "BEGIN SELECT RAISE(ABORT, 'third leg refused'); END",
    )
    batch = [StartCall(a_call()), *(AddLeg("1795371264.1", a_leg(seq)) for seq in (1, 2, 3))]

    with pytest.raises(StoreUnavailable, match="third leg refused"):
        await store.apply(batch)
    assert await store.get_cdr("1795371264.1") is None
    assert raw(store.path, "SELECT COUNT(*) FROM legs") == [(0,)]

    raw(store.path, "DROP TRIGGER refuse_third_leg")
    await store.apply(batch)
    assert len((await store.get_cdr("1795371264.1")).legs) == 3


async def test_money_is_kept_exactly_to_the_fen(store: SQLiteStore) -> None:
    tenth, fifth = Decimal("0.1"), Decimal("0.2")
    await store.apply(
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

    small, big = await store.get_cdr("1795371264.1"), await store.get_cdr("big")
    assert (small.caller_share, small.callee_share, small.total) == (tenth, fifth, Decimal("0.3"))
    assert big.total == Decimal("98765432109876.55")
    assert raw(store.path, "SELECT total FROM cdrs ORDER BY call_id") == [
        ("0.30",),
        ("98765432109876.55",),
    ]


def test_money_that_is_not_an_exact_fen_amount_is_refused() -> None:
    with pytest.raises(ValueError, match="fen"):
        FinishCall(
            "x", {"caller_share": Decimal("0.001"), "callee_share": Decimal(0), "total": 0.001}
        )
    with pytest.raises(ValueError, match="fen"):
        FinishCall("x", {"caller_share": 0.1, "callee_share": 0.2, "total": 0.3})


def test_shares_must_come_together_and_add_up_to_the_total() -> None:
    with pytest.raises(ValueError, match="together"):
        FinishCall("x", {"total": Decimal("0.30")})
    with pytest.raises(ValueError, match="equal total"):
        FinishCall(
            "x",
            {"caller_share": Decimal("0.10"), "callee_share": Decimal("0.10"), "total": Decimal(1)},
        )


def test_a_finish_can_set_only_end_of_call_fields() -> None:
    with pytest.raises(ValueError, match="number"):
        FinishCall("x", {"number": "4000000002"})


async def test_times_keep_their_instant_and_their_utc_offset(store: SQLiteStore) -> None:
    answered = datetime(2026, 11, 22, 10, 14, 30, 250_000, tzinfo=UTC)
    ended = datetime(2026, 11, 22, 5, 20, tzinfo=ZoneInfo("America/New_York"))
    await store.apply(
        [
            StartCall(a_call()),
            FinishCall("1795371264.1", {"answered_at": answered, "ended_at": ended}),
        ]
    )

    cdr = await store.get_cdr("1795371264.1")
    for stored, given_time in [
        (cdr.started_at, T0),
        (cdr.answered_at, answered),
        (cdr.ended_at, ended),
    ]:
        assert stored == given_time
        assert stored.utcoffset() == given_time.utcoffset()
    assert raw(store.path, "SELECT started_at, answered_at, ended_at FROM cdrs") == [
        (
            "2026-11-22T18:14:24+08:00",
            "2026-11-22T10:14:30.250000+00:00",
            "2026-11-22T05:20:00-05:00",
        )
    ]


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        a_call(started_at=datetime(2026, 11, 22, 18, 14, 24))
    with pytest.raises(ValueError, match="timezone-aware"):
        FinishCall("x", {"ended_at": datetime(2026, 11, 22, 18, 14, 24)})


async def test_close_interrupted_ends_stranded_calls_at_their_last_known_moment(
    store: SQLiteStore,
) -> None:
    now = T0 + timedelta(hours=1)
    with_legs, without_legs, finished, started_after = (
        a_call("with-legs"),
        a_call("without-legs", started_at=T0 + timedelta(minutes=5)),
        a_call("finished"),
        a_call("after-restart", started_at=now + timedelta(seconds=1)),
    )
    await store.apply(
        [
            *(StartCall(cdr) for cdr in (with_legs, without_legs, finished, started_after)),
            AddLeg("with-legs", a_leg(1, started_at=T0 + timedelta(seconds=2), ring=20)),
            AddLeg("with-legs", a_leg(2, started_at=T0 + timedelta(seconds=23), ring=3, talk=40)),
            FinishCall("finished", ANSWERED),
        ]
    )

    assert await store.close_interrupted(now) == 2

    closed = await store.get_cdr("with-legs")
    assert (closed.outcome, closed.ended_at, closed.note) == (
        Outcome.INTERRUPTED,
        T0 + timedelta(seconds=23 + 3 + 40),
        INTERRUPTED_NOTE,
    )
    closed = await store.get_cdr("without-legs")
    assert (closed.outcome, closed.ended_at) == (Outcome.INTERRUPTED, without_legs.started_at)
    assert (await store.get_cdr("finished")).outcome is Outcome.ANSWERED
    assert (await store.get_cdr("after-restart")).outcome is Outcome.IN_PROGRESS
    assert await store.close_interrupted(now) == 0


@pytest.fixture
async def four_calls(store: SQLiteStore) -> SQLiteStore:
    """Two numbers, three callers, starts an hour apart; the newest is recorded in UTC."""
    calls = [
        a_call("a", started_at=T0),
        a_call(
            "b",
            caller_raw="13800000011",
            caller="13800000011",
            started_at=T0 + timedelta(hours=1),
        ),
        a_call("c", number="4000000002", started_at=T0 + timedelta(hours=2)),
        a_call(
            "d",
            caller_raw="+86 138 0000 0011",
            caller="13800000011",
            started_at=(T0 + timedelta(hours=3)).astimezone(UTC),
        ),
    ]
    await store.apply(
        [
            *(StartCall(cdr) for cdr in calls),
            AddLeg("a", a_leg(1)),
            AddLeg("a", a_leg(2)),
            FinishCall("a", {"outcome": Outcome.BUSY}),
            FinishCall("d", {"outcome": Outcome.ANSWERED}),
        ]
    )
    return store


async def test_queries_list_newest_first_with_legs(four_calls: SQLiteStore) -> None:
    found = await four_calls.query_cdrs()

    assert [cdr.call_id for cdr in found] == ["d", "c", "b", "a"]
    assert [leg.seq for leg in found[-1].legs] == [1, 2]


async def test_queries_filter_by_number_caller_time_and_outcome(four_calls: SQLiteStore) -> None:
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


async def test_an_unknown_call_is_not_found(store: SQLiteStore) -> None:
    assert await store.get_cdr("no-such-call") is None


async def test_a_new_database_is_in_wal_mode_at_the_current_schema_version(
    store: SQLiteStore,
) -> None:
    assert raw(store.path, "PRAGMA journal_mode") == [("wal",)]
    assert raw(store.path, "SELECT MAX(version) FROM schema_version") == [(SCHEMA_VERSION,)]
    assert SCHEMA_VERSION == 2


async def test_records_survive_closing_and_reopening_the_database(store: SQLiteStore) -> None:
    await store.apply([StartCall(a_call()), AddLeg("1795371264.1", a_leg(1))])
    await store.close()

    reopened = SQLiteStore(store.path)
    await reopened.open()
    try:
        assert (await reopened.get_cdr("1795371264.1")).legs == (a_leg(1),)
    finally:
        await reopened.close()


async def test_a_locked_database_is_unavailable_until_the_lock_is_released(
    store: SQLiteStore,
) -> None:
    with write_lock_held(store.path), pytest.raises(StoreUnavailable, match="locked"):
        await store.apply([StartCall(a_call())])
    await store.apply([StartCall(a_call())])

    assert await store.get_cdr("1795371264.1") == a_call()


async def test_a_database_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    raw(path, "CREATE TABLE schema_version (version INTEGER NOT NULL)")
    raw(path, "INSERT INTO schema_version VALUES (99)")

    with pytest.raises(StoreUnavailable, match="newer"):
        await SQLiteStore(path).open()


money = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.one_of(st.just(SHANGHAI), offsets),
)


@given(caller_share=money, callee_share=money, answered_at=moments, rule=st.text())
def test_operations_survive_the_journal_json_unchanged(
    caller_share: Decimal, callee_share: Decimal, answered_at: datetime, rule: str
) -> None:
    ops = [
        StartCall(a_call()),
        AddLeg("1795371264.1", a_leg(1, started_at=answered_at)),
        FinishCall(
            "1795371264.1",
            {
                "answered_at": answered_at,
                "outcome": Outcome.ANSWERED,
                "rule": rule,
                "caller_share": caller_share,
                "callee_share": callee_share,
                "total": caller_share + callee_share,
            },
        ),
    ]
    for op in ops:
        assert op_from_json(json.loads(json.dumps(op_to_json(op)))) == op
