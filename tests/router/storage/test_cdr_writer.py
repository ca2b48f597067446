"""The write-behind CDR writer and its journal, against a real SQLite file that really fails."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from router.storage.cdr import (
    CDR,
    AddLeg,
    CallerRegion,
    CdrOp,
    FinishCall,
    ForwardReason,
    Leg,
    Outcome,
    StartCall,
    op_to_json,
)
from router.storage.spool import Journal
from router.storage.sqlite import SQLiteStore
from router.storage.writer import CdrWriter

T0 = datetime(2026, 11, 22, 18, 14, 24, tzinfo=ZoneInfo("Asia/Shanghai"))


def call_ops(call_id: str, legs: int = 2) -> list[CdrOp]:
    """What one call submits: written ahead, a leg per Dial attempt, completed at hang-up."""
    start = CDR(
        call_id=call_id,
        number="4000000001",
        caller_raw="053188889999",
        caller="053188889999",
        caller_kind="fixed",
        started_at=T0,
        region=CallerRegion("山东", "济南", "0531"),
    )
    dials = [
        AddLeg(
            call_id,
            Leg(
                seq=seq,
                destination=f"1380000001{seq}",
                dial_status="BUSY" if seq < legs else "ANSWER",
                started_at=T0 + timedelta(seconds=seq),
                ring_seconds=3,
                talk_seconds=0 if seq < legs else 60,
                forward_reason=ForwardReason.PRIMARY if seq == 1 else ForwardReason.BUSY,
            ),
        )
        for seq in range(1, legs + 1)
    ]
    finish = FinishCall(
        call_id,
        {
            "outcome": Outcome.ANSWERED,
            "ended_at": T0 + timedelta(seconds=70),
            "billable_seconds": 60,
            "caller_share": Decimal("0.22"),
            "callee_share": Decimal("0.20"),
            "total": Decimal("0.42"),
        },
    )
    return [StartCall(start), *dials, finish]


async def eventually(check: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait until `check` (plain or async) gives something true."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if await result if isinstance(result, Awaitable) else result:
                return
            await asyncio.sleep(0.005)


@contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    """Another connection holding the write lock, as a second process would."""
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")


def count(path: Path, table: str) -> int:
    with closing(sqlite3.connect(path)) as other:
        return other.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


async def assert_completed(store: SQLiteStore, call_ids: Sequence[str], legs: int = 2) -> None:
    """Each call stored exactly once, finished, with each of its legs exactly once."""
    assert count(store.path, "cdrs") == len(call_ids)
    assert count(store.path, "legs") == len(call_ids) * legs
    for call_id in call_ids:
        cdr = await store.get_cdr(call_id)
        assert cdr is not None
        assert cdr.outcome is Outcome.ANSWERED
        assert cdr.total == Decimal("0.42")
        assert [leg.seq for leg in cdr.legs] == list(range(1, legs + 1))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "cdr.db", busy_timeout_ms=20)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "spool" / "cdr.journal")


def quick_writer(store: SQLiteStore, journal: Journal, **settings: float) -> CdrWriter:
    return CdrWriter(
        store,
        journal,
        **{"batch_interval": 0.01, "retry_initial": 0.02, "retry_max": 0.1, **settings},
    )


async def test_submit_returns_at_once_and_close_writes_everything(
    store: SQLiteStore, journal: Journal
) -> None:
    writer = quick_writer(store, journal)
    await writer.start()
    ops = [op for n in range(20) for op in call_ops(f"call-{n}")]

    for op in ops:
        writer.submit(op)
    assert writer.stats().queue_depth == len(ops)
    await writer.close()

    await assert_completed(store, [f"call-{n}" for n in range(20)])
    assert writer.stats().queue_depth == 0


class BatchRecordingStore(SQLiteStore):
    """The real store, remembering the size of each batch it was given."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batch_sizes: list[int] = []

    async def apply(self, ops: Sequence[CdrOp]) -> None:
        self.batch_sizes.append(len(ops))
        await super().apply(ops)


async def test_ops_are_applied_in_batches_of_at_most_batch_size(
    tmp_path: Path, journal: Journal
) -> None:
    store = BatchRecordingStore(tmp_path / "cdr.db")
    writer = quick_writer(store, journal, batch_size=10)
    await writer.start()

    for op in [op for n in range(5) for op in call_ops(f"call-{n}", legs=3)]:
        writer.submit(op)
    await writer.close()

    assert store.batch_sizes == [10, 10, 5]
    await assert_completed(store, [f"call-{n}" for n in range(5)], legs=3)
    await store.close()


async def test_a_lone_op_is_written_within_the_batch_interval(
    store: SQLiteStore, journal: Journal
) -> None:
    writer = quick_writer(store, journal, batch_size=100, batch_interval=0.02)
    await writer.start()

    writer.submit(call_ops("alone")[0])
    await eventually(lambda: store.get_cdr("alone"), timeout=1.0)
    await writer.close()


async def test_while_the_database_is_locked_ops_wait_in_the_journal_then_land_once(
    store: SQLiteStore, journal: Journal
) -> None:
    writer = quick_writer(store, journal, batch_size=4)
    await writer.start()
    await store.apply(call_ops("before-the-lock"))
    ops = [op for n in range(3) for op in call_ops(f"call-{n}")]

    with write_lock_held(store.path):
        for op in ops:
            writer.submit(op)
        await eventually(lambda: journal.record_count == len(ops))
        stats = writer.stats()
        assert stats.spooled_ops == len(ops)
        assert stats.write_failures >= 1
        assert stats.journal_bytes == journal.path.stat().st_size > 0
        assert len(journal.path.read_bytes().splitlines()) == len(ops)
        assert await store.get_cdr("call-0") is None

    await eventually(lambda: writer.stats().spooled_ops == 0)
    assert journal.path.stat().st_size == writer.stats().journal_bytes == 0
    await assert_completed(store, ["before-the-lock", *(f"call-{n}" for n in range(3))])
    await writer.close()


async def test_a_lasting_outage_is_warned_once_and_its_end_says_how_many_retries_failed(
    store: SQLiteStore, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    """A store down for an hour is one warning, not one each retry (about 125 with the
    doubling delay capped at 30 s): the same failure again is logged at debug."""
    caplog.set_level(logging.INFO, "router.storage.writer")
    writer = quick_writer(store, journal, retry_max=0.02)
    await writer.start()
    with write_lock_held(store.path):
        for op in call_ops("during"):
            writer.submit(op)
        await eventually(lambda: writer.stats().write_failures >= 5)
    await eventually(lambda: writer.stats().spooled_ops == 0)
    await writer.close()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, message in lines if "unavailable" in message] == ["WARNING"]
    (replayed,) = [message for _, message in lines if "replayed" in message]
    assert replayed.startswith("CDR journal replayed into the store after ")
    assert "failed attempts" in replayed


async def test_it_tells_which_ops_the_store_took_only_once_it_took_them(
    store: SQLiteStore, journal: Journal
) -> None:
    """The accounting reads balances from the store: what waits in the journal is not in
    them, so the writer says so only after the replay landed it."""
    told: list[str] = []

    async def written(ops: Sequence[CdrOp]) -> None:
        told.extend(op.cdr.call_id for op in ops if isinstance(op, StartCall))

    writer = CdrWriter(
        store,
        journal,
        batch_interval=0.01,
        retry_initial=0.02,
        retry_max=0.1,
        written=written,
    )
    await writer.start()
    with write_lock_held(store.path):
        for op in call_ops("locked-out"):
            writer.submit(op)
        await eventually(lambda: journal.record_count == 4)
        assert told == []
    await eventually(lambda: told == ["locked-out"])
    for op in call_ops("direct"):
        writer.submit(op)
    await writer.close()
    assert told == ["locked-out", "direct"]


async def test_ops_submitted_while_the_journal_waits_queue_up_behind_it(
    store: SQLiteStore, journal: Journal
) -> None:
    writer = quick_writer(store, journal, retry_initial=60)
    await writer.start()
    start, *legs_and_finish = call_ops("in-order")

    with write_lock_held(store.path):
        writer.submit(start)
        await eventually(lambda: writer.stats().spooled_ops == 1)
    for op in legs_and_finish:
        writer.submit(op)
    await eventually(lambda: writer.stats().spooled_ops == 4)
    assert await store.get_cdr("in-order") is None

    await writer.close()
    await assert_completed(store, ["in-order"])
    assert journal.record_count == 0


async def test_a_database_file_moved_away_spools_until_it_is_back(
    store: SQLiteStore, journal: Journal
) -> None:
    writer = quick_writer(store, journal)
    await writer.start()
    await store.apply(call_ops("before-the-move"))
    aside = store.path.with_name("cdr.db.aside")

    store.path.rename(aside)
    store.path.mkdir()
    for op in call_ops("while-away"):
        writer.submit(op)
    await eventually(lambda: writer.stats().spooled_ops == 4)
    store.path.rmdir()
    aside.rename(store.path)

    await eventually(lambda: writer.stats().spooled_ops == 0)
    await assert_completed(store, ["before-the-move", "while-away"])
    await writer.close()


async def test_ops_are_held_in_memory_when_the_journal_cannot_be_written_either(
    store: SQLiteStore, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    writer = quick_writer(store, Journal(blocker / "cdr.journal"))
    await writer.start()

    with write_lock_held(store.path):
        for op in call_ops("held"):
            writer.submit(op)
        await eventually(lambda: writer.stats().spooled_ops == 4)
        assert writer.stats().journal_bytes == 0

    await eventually(lambda: writer.stats().spooled_ops == 0)
    await assert_completed(store, ["held"])
    await writer.close()


async def test_a_journal_left_by_an_earlier_run_is_replayed_on_start(
    store: SQLiteStore, journal: Journal
) -> None:
    journal.append([op_to_json(op) for n in range(3) for op in call_ops(f"call-{n}")])
    await store.apply(call_ops("call-0"))  # that run crashed half-way through a replay
    with journal.path.open("ab") as torn:
        torn.write(b'{"op":"start","cdr":{"call_id":"cut-short')

    reopened = Journal(journal.path)
    assert reopened.record_count == 12
    writer = quick_writer(store, reopened)
    await writer.start()

    await assert_completed(store, ["call-0", "call-1", "call-2"])
    assert reopened.path.read_bytes() == b""
    await writer.close()


def journal_lines(*calls: str, bad: Sequence[bytes] = ()) -> bytes:
    """The journal of `calls`, each call's ops in order, with the `bad` lines after the first."""
    first, *rest = (
        b"".join(json.dumps(op_to_json(op)).encode() + b"\n" for op in call_ops(call_id))
        for call_id in calls
    )
    return first + b"".join(line + b"\n" for line in bad) + b"".join(rest)


UNREADABLE = (
    b'{"op":"finish","call_id":"A","fie',  # garbled, yet a complete line
    b'{"op":"teleport","call_id":"A"}',  # an op another version wrote
    b'{"op":"finish","call_id":"A"}',  # a field missing
    b"\xff\xfe not even text",
)


async def test_unreadable_journal_lines_are_moved_aside_and_the_rest_is_replayed_in_order(
    store: SQLiteStore, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    journal.path.parent.mkdir()
    journal.path.write_bytes(journal_lines("A", "B", bad=UNREADABLE))
    first_bad = len(journal_lines("A"))
    reopened = Journal(journal.path)
    writer = quick_writer(store, reopened)

    with caplog.at_level(logging.ERROR, logger="router.storage.spool"):
        await writer.start()
    for op in call_ops("C"):
        writer.submit(op)
    await writer.close()

    await assert_completed(store, ["A", "B", "C"])
    assert reopened.path.read_bytes() == b""
    bad_file = journal.path.with_name("cdr.journal.bad")
    assert bad_file.read_bytes() == b"".join(line + b"\n" for line in UNREADABLE)
    assert writer.stats().journal_lines_moved_aside == len(UNREADABLE)
    errors = [record.getMessage() for record in caplog.records]
    assert len(errors) == len(UNREADABLE)
    assert errors[0].startswith(f"CDR journal {journal.path}: the line at byte {first_bad} ")
    assert "JSONDecodeError" in errors[0] and errors[0].endswith(f"moved to {bad_file}")
    assert "unknown CDR operation 'teleport'" in errors[1]
    assert "KeyError: 'fields'" in errors[2]


async def test_a_line_moved_aside_stays_there_once_while_the_store_refuses_the_rest(
    store: SQLiteStore, journal: Journal
) -> None:
    journal.path.parent.mkdir()
    journal.path.write_bytes(journal_lines("A", "B", bad=UNREADABLE[:1]))
    bad_file = journal.path.with_name("cdr.journal.bad")
    bad_file.write_bytes(b"moved aside by an earlier run\n")
    reopened = Journal(journal.path)
    writer = quick_writer(store, reopened, batch_size=2)

    with write_lock_held(store.path):
        await writer.start()
        await eventually(lambda: writer.stats().write_failures >= 3)
        assert reopened.record_count == 9
    await eventually(lambda: reopened.record_count == 0)
    await writer.close()

    await assert_completed(store, ["A", "B"])
    assert bad_file.read_bytes() == b"moved aside by an earlier run\n" + UNREADABLE[0] + b"\n"
    assert writer.stats().journal_lines_moved_aside == 1


async def test_a_line_that_cannot_be_moved_aside_keeps_the_journal_whole(
    store: SQLiteStore, journal: Journal
) -> None:
    journal.path.parent.mkdir()
    journal.path.write_bytes(journal_lines("A", "B", bad=UNREADABLE[:1]))
    bad_file = journal.path.with_name("cdr.journal.bad")
    bad_file.mkdir()  # cannot be appended to
    reopened = Journal(journal.path)
    writer = quick_writer(store, reopened)

    await writer.start()
    await eventually(lambda: writer.stats().write_failures >= 2)
    assert reopened.record_count == 9
    bad_file.rmdir()
    await eventually(lambda: reopened.record_count == 0)
    await writer.close()

    await assert_completed(store, ["A", "B"])
    assert bad_file.read_bytes() == UNREADABLE[0] + b"\n"


async def test_close_leaves_in_the_journal_what_the_database_still_refuses(
    store: SQLiteStore, journal: Journal
) -> None:
    writer = quick_writer(store, journal)
    await writer.start()

    with write_lock_held(store.path):
        for op in call_ops("refused"):
            writer.submit(op)
        await writer.close()
        assert journal.record_count == 4

    next_run = quick_writer(store, Journal(journal.path))
    await next_run.start()
    await assert_completed(store, ["refused"])
    await next_run.close()


async def test_caught_up_returns_once_the_journal_is_in_the_store(
    store: SQLiteStore, journal: Journal
) -> None:
    writer = quick_writer(store, journal)
    await writer.start()
    await asyncio.wait_for(writer.caught_up(), 1)

    with write_lock_held(store.path):
        writer.submit(call_ops("journaled")[0])
        await eventually(lambda: writer.stats().spooled_ops == 1)
        waiting = asyncio.create_task(writer.caught_up())
        await asyncio.sleep(0.1)
        assert not waiting.done()
    await asyncio.wait_for(waiting, 5)

    assert await store.get_cdr("journaled") is not None
    await writer.close()


async def test_nothing_can_be_submitted_after_close(store: SQLiteStore, journal: Journal) -> None:
    writer = quick_writer(store, journal)
    await writer.start()
    await writer.close()

    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(call_ops("late")[0])


def test_the_journal_reads_back_in_order_from_any_offset(journal: Journal) -> None:
    journal.append([{"n": n, "region": "济南"} for n in range(5)])

    first, offset = journal.read(0, 2, dict)
    rest, end = journal.read(offset, 10, dict)

    assert [record["n"] for record in first + rest] == [0, 1, 2, 3, 4]
    assert first[0]["region"] == "济南"
    assert end == journal.size_bytes == journal.path.stat().st_size
    assert journal.read(end, 10, dict) == ([], end)


def test_a_line_cut_short_by_a_crash_is_dropped_when_the_journal_reopens(
    journal: Journal,
) -> None:
    journal.append([{"n": 1}])
    with journal.path.open("ab") as torn:
        torn.write(b'{"n": 2')

    reopened = Journal(journal.path)
    reopened.append([{"n": 3}])

    assert reopened.read(0, 10, dict)[0] == [{"n": 1}, {"n": 3}]
    assert reopened.record_count == 2


def test_reading_skips_a_line_moved_aside_until_the_journal_is_cleared(journal: Journal) -> None:
    journal.append([{"n": 1}, ["not", "a", "record"], {"n": 3}])

    assert journal.read(0, 2, dict)[0] == [{"n": 1}, {"n": 3}]
    assert journal.read(0, 10, dict)[0] == [{"n": 1}, {"n": 3}]
    assert journal.bad_path.read_bytes() == b'["not","a","record"]\n'
    journal.clear()
    journal.append([["again"]])
    assert journal.read(0, 10, dict) == ([], journal.size_bytes)
    assert journal.bad_path.read_bytes() == b'["not","a","record"]\n["again"]\n'


def test_clearing_the_journal_empties_it(journal: Journal) -> None:
    journal.append([{"n": 1}, {"n": 2}])
    journal.clear()

    assert (journal.record_count, journal.size_bytes) == (0, 0)
    assert journal.read(0, 10, dict) == ([], 0)
    assert Journal(journal.path).record_count == 0


async def test_a_repeat_keyed_apart_is_followed_by_its_ops_through_a_later_runs_replay(
    store: SQLiteStore, journal: Journal, tmp_path: Path
) -> None:
    """The store holds a call of the uniqueid from before a restart; this run's session of it
    is keyed `~2` as its start is written. Its legs and finish, journaled while the file is
    locked, are replayed by the next run (which remembers no repeat) into `~2`."""
    start, *later = call_ops("dup")
    assert isinstance(start, StartCall)
    earlier = dataclasses.replace(start.cdr, started_at=T0 - timedelta(hours=1))
    await store.apply([StartCall(earlier)])
    writer = quick_writer(store, journal)
    await writer.start()
    writer.submit(start)
    await eventually(lambda: store.stored_id("dup") == "dup~2")
    with write_lock_held(store.path):
        for op in later:
            writer.submit(op)
        await eventually(lambda: journal.record_count == len(later) + 1)  # the Rekeyed first
        await writer.close()
    restarted = SQLiteStore(store.path, busy_timeout_ms=20)
    writer = quick_writer(restarted, Journal(journal.path))
    await writer.start()
    await writer.close()
    repeat, first = await restarted.get_cdrs(["dup", "dup~2"])
    await restarted.close()
    assert (repeat.call_id, repeat.outcome, len(repeat.legs)) == ("dup~2", Outcome.ANSWERED, 2)
    assert (first.call_id, first.outcome, first.legs) == ("dup", Outcome.IN_PROGRESS, ())
