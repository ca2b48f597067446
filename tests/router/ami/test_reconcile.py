"""Completing calls whose AGI session ended abnormally, from recorded AMI streams, into a
real SQLite store."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from router.ami.link import AmiLink, Event
from router.ami.reconcile import MAX_KEPT_EVENTS, Completion, Reconciler
from router.ami.wire import AmiMessage, parse_message
from router.configuration.plan_book import PlanBook
from router.money.accounting import Accounting
from router.money.balance_alerts import BalanceAlerts
from router.money.books import load_books
from router.money.late_charges import LateCharges
from router.money.rerating import rate_cdrs
from router.simulation.asterisk_ami import RECORDINGS, AmiSimulator, recorded_events
from router.storage.cdr import (
    CDR,
    DIALLING,
    AddLeg,
    FinishCall,
    ForwardReason,
    Leg,
    Outcome,
    StartCall,
)
from router.storage.protocol import INTERRUPTED_NOTE
from router.storage.spool import Journal
from router.storage.sqlite import SQLiteStore
from router.storage.writer import CdrWriter
from tests.conftest import E2E_CONFIG, UNWATCHED
from tests.router.ami.test_ami import eventually, linked, replayed

BEIJING = ZoneInfo("Asia/Shanghai")
ASTERISK_HOST = ZoneInfo("UTC")  # the recording Asterisk ran on UTC: Cdr times are UTC


def utc(hh: int, mm: int, ss: int) -> datetime:
    return datetime(2026, 11, 22, hh, mm, ss, tzinfo=UTC)


def events(name: str) -> list[Event]:
    return [parse_message(block) for block in recorded_events(RECORDINGS / name)]


def started(call_id: str, number: str, at: datetime) -> StartCall:
    return StartCall(
        CDR(
            call_id=call_id,
            number=number,
            caller_raw="053188889999",
            caller="053188889999",
            caller_kind="fixed",
            started_at=at.astimezone(BEIJING),
        )
    )


def reconciler_for(store: SQLiteStore, **options: Any) -> Reconciler:
    return Reconciler(
        store,
        **{
            "zone": BEIJING,
            "asterisk_zone": ASTERISK_HOST,
            "settle": 0.01,
            "retry": 0.02,
            **options,
        },
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "hotline400.db", zone=BEIJING)
    await store.open()
    yield store
    await store.close()


async def interrupted(store: SQLiteStore, call_id: str, number: str, at: datetime) -> None:
    """A call whose router died: written ahead, then closed at the next start."""
    await store.apply([started(call_id, number, at)])
    assert await store.close_interrupted(at + timedelta(seconds=1)) == 1


@pytest.mark.parametrize(
    ("recording", "call_id", "ended", "answered", "talk", "outcome", "remark"),
    [
        # answered at once; Asterisk hung the inbound channel up at 18:14:29
        ("answer.ami", "1795371264.1", utc(18, 14, 29), utc(18, 14, 24), 3, "answered", ""),
        # 13800000021 busy, forwarded to 13800000011 which talks 3 s
        ("busy_forward.ami", "1795371273.5", utc(18, 14, 38), utc(18, 14, 33), 3, "answered", ""),
        (
            "caller_hangup.ami",
            "1795371339.35",
            utc(18, 15, 43),
            None,
            0,
            "noanswer",
            "; caller hung up while ringing",
        ),
        ("misc.ami", "1795371290.11", utc(18, 14, 56), None, 0, "noanswer", ""),  # no answer
        ("misc.ami", "1795371298.15", utc(18, 14, 59), None, 0, "busy", ""),  # congestion
        ("misc.ami", "1795371301.19", utc(18, 15, 2), None, 0, "busy", ""),  # unavailable
        ("misc.ami", "1795371324.27", utc(18, 15, 30), utc(18, 15, 24), 5, "answered", ""),  # L()
    ],
)
async def test_an_interrupted_call_gets_its_true_end_talk_and_outcome_from_the_recording(
    store: SQLiteStore,
    recording: str,
    call_id: str,
    ended: datetime,
    answered: datetime | None,
    talk: int,
    outcome: str,
    remark: str,
) -> None:
    await interrupted(store, call_id, "4000000001", utc(18, 14, 20))
    reconciler = reconciler_for(store)
    for event in events(recording):
        reconciler.handle(event)
    reconciler.expect(call_id)
    await eventually(lambda: reconciler.completed == 1)
    cdr = await store.get_cdr(call_id)
    assert cdr is not None
    assert (cdr.ended_at, cdr.answered_at) == (ended, answered)
    assert (cdr.billable_seconds, cdr.outcome) == (talk, Outcome(outcome))
    assert cdr.note == f"{INTERRUPTED_NOTE}; completed from AMI (CDR){remark}"
    assert cdr.ended_at is not None and cdr.ended_at.utcoffset() == timedelta(hours=8)


async def test_a_call_still_up_after_a_restart_is_completed_over_tcp(
    store: SQLiteStore,
) -> None:
    await interrupted(store, "1795371264.1", "4000000001", utc(18, 14, 24))
    reconciler = reconciler_for(store)
    async with linked() as (simulator, link):
        reconciler.attach(link)
        reconciler.adopt("1795371264.1")
        await replayed(simulator, link, "answer.ami")
        await eventually(lambda: reconciler.completed == 1)
    cdr = await store.get_cdr("1795371264.1")
    assert cdr is not None
    assert (cdr.outcome, cdr.billable_seconds) == (Outcome.ANSWERED, 3)
    assert (cdr.answered_at, cdr.ended_at) == (utc(18, 14, 24), utc(18, 14, 29))
    assert reconciler.pending == 0
    await reconciler.close()


async def test_a_call_whose_session_broke_is_completed_over_tcp_from_caller_hangup(
    store: SQLiteStore,
) -> None:
    call_id = "1795371339.35"
    await store.apply(
        [
            started(call_id, "4000000007", utc(18, 15, 39)),
            FinishCall(
                call_id,
                {
                    "ended_at": utc(18, 15, 40),
                    "outcome": Outcome.ERROR,
                    "note": "AGI session lost: connection reset",
                },
            ),
        ]
    )
    reconciler = reconciler_for(store)
    async with linked() as (simulator, link):
        reconciler.attach(link)
        reconciler.expect(call_id)
        await replayed(simulator, link, "caller_hangup.ami")
        await eventually(lambda: reconciler.completed == 1)
    cdr = await store.get_cdr(call_id)
    assert cdr is not None
    assert (cdr.outcome, cdr.ended_at, cdr.billable_seconds) == (
        Outcome.NOANSWER,
        utc(18, 15, 43),
        0,
    )
    assert cdr.note == (
        "AGI session lost: connection reset; completed from AMI (CDR); caller hung up while ringing"
    )


async def test_a_call_reported_broken_after_asterisk_hung_it_up_is_still_completed(
    store: SQLiteStore,
) -> None:
    await interrupted(store, "1795371273.5", "4000000002", utc(18, 14, 33))
    reconciler = reconciler_for(store)
    for event in events("busy_forward.ami"):
        reconciler.handle(event)
    await asyncio.sleep(0.05)
    assert reconciler.completed == 0
    reconciler.expect("1795371273.5")
    await eventually(lambda: reconciler.completed == 1)


async def test_calls_not_expected_are_left_as_the_router_wrote_them(store: SQLiteStore) -> None:
    await interrupted(store, "1795371264.1", "4000000001", utc(18, 14, 24))
    before = await store.get_cdr("1795371264.1")
    reconciler = reconciler_for(store)
    for event in events("answer.ami"):
        reconciler.handle(event)
    await asyncio.sleep(0.05)
    assert reconciler.completed == 0
    assert await store.get_cdr("1795371264.1") == before


async def test_a_cdr_not_yet_in_the_store_is_completed_once_it_is(store: SQLiteStore) -> None:
    reconciler = reconciler_for(store)
    reconciler.expect("1795371264.1")
    for event in events("answer.ami"):
        reconciler.handle(event)
    await asyncio.sleep(0.1)  # a few retries find nothing to complete
    assert reconciler.completed == 0
    await store.apply([started("1795371264.1", "4000000001", utc(18, 14, 24))])
    await eventually(lambda: reconciler.completed == 1)
    cdr = await store.get_cdr("1795371264.1")
    assert cdr is not None and cdr.outcome is Outcome.ANSWERED


async def test_completion_goes_through_the_cdr_writer_when_given_one(
    store: SQLiteStore, tmp_path: Path
) -> None:
    writer = CdrWriter(store, Journal(tmp_path / "cdr.journal"), batch_interval=0.01)
    await writer.start()
    await interrupted(store, "1795371264.1", "4000000001", utc(18, 14, 24))
    reconciler = reconciler_for(store, writer=writer)
    for event in events("answer.ami"):
        reconciler.handle(event)
    reconciler.expect("1795371264.1")
    await eventually(lambda: reconciler.completed == 1)
    await writer.close()
    cdr = await store.get_cdr("1795371264.1")
    assert cdr is not None and (cdr.outcome, cdr.billable_seconds) == (Outcome.ANSWERED, 3)


T0 = 1_795_371_264.0  # 2026-11-22 18:14:24 UTC


def stamped(name: str, seconds: float, **headers: str) -> AmiMessage:
    return AmiMessage(
        {"Event": name, "Uniqueid": "9.1", "Timestamp": f"{T0 + seconds:.6f}", **headers}
    )


PROMPTED_DIAL_RECORD = AmiMessage(
    {
        "Event": "Cdr",
        "UniqueID": "9.1",
        "LastApplication": "Dial",
        "DestinationChannel": "PJSIP/carrier-00000002",
        "Disposition": "ANSWERED",
        "AnswerTime": "2026-11-22 18:14:24",  # the router's ANSWER for the prompt
        "EndTime": "2026-11-22 18:14:45",
        "BillableSeconds": "20",
    }
)


async def test_after_a_prompt_the_talk_runs_from_bridge_enter_to_leave_not_the_cdr_billsec(
    store: SQLiteStore,
) -> None:
    """The router answered to play a PIN prompt: Asterisk's Dial record then counts 20 s
    from that answer, though the destination answered 8.5 s in and talked 12.4 s."""
    await interrupted(store, "9.1", "4001234567", utc(18, 14, 24))
    reconciler = reconciler_for(store)
    dial = {"DestUniqueid": "9.2", "DialString": "13800000011@carrier"}
    for event in [
        stamped("DialBegin", 6.0, ChannelState="6", **dial),
        stamped("DialEnd", 8.4, DialStatus="ANSWER", **dial),
        stamped("BridgeEnter", 8.5),
        stamped("BridgeLeave", 20.9),
        stamped("Hangup", 21.2),
        PROMPTED_DIAL_RECORD,
    ]:
        reconciler.handle(event)
    reconciler.expect("9.1")
    await eventually(lambda: reconciler.completed == 1)
    cdr = await store.get_cdr("9.1")
    assert cdr is not None
    assert (cdr.billable_seconds, cdr.outcome) == (12, Outcome.ANSWERED)
    assert cdr.answered_at == datetime.fromtimestamp(T0 + 8.5, UTC)
    assert cdr.ended_at == datetime.fromtimestamp(T0 + 21.2, UTC)
    assert cdr.note == f"{INTERRUPTED_NOTE}; completed from AMI (events)"


async def test_after_a_prompt_without_bridge_events_the_cdr_count_is_used_and_said_so(
    store: SQLiteStore,
) -> None:
    await interrupted(store, "9.1", "4001234567", utc(18, 14, 24))
    reconciler = reconciler_for(store)
    reconciler.handle(stamped("DialBegin", 6.0, ChannelState="6", DestUniqueid="9.2"))
    reconciler.handle(PROMPTED_DIAL_RECORD)
    reconciler.expect("9.1")
    await eventually(lambda: reconciler.completed == 1)
    cdr = await store.get_cdr("9.1")
    assert cdr is not None and (cdr.billable_seconds, cdr.outcome) == (20, Outcome.ANSWERED)
    assert cdr.note == f"{INTERRUPTED_NOTE}; completed from AMI (CDR, counted from the prompt)"


async def test_a_talk_from_the_dial_hooks_answer_stamp_ends_on_asterisks_clock_too(
    store: SQLiteStore,
) -> None:
    """An adopted call the router had answered for a prompt, its DialEnd and BridgeEnter sent
    before the restart: the talk runs from the answer the Dial's hook stamped (Asterisk's
    clock) to the Dial record's end (Asterisk's clock), not to the moment the router, its
    clock 5 s ahead, read an unstamped BridgeLeave: 12 s, not 17 s."""
    call_id = "9.1"
    dialling = Leg(1, "13800000011", DIALLING, utc(18, 14, 30), 0, 0, ForwardReason.PRIMARY)
    await store.apply([started(call_id, "4001234567", utc(18, 14, 24)), AddLeg(call_id, dialling)])
    now = [utc(18, 14, 50)]
    reconciler = reconciler_for(store, clock=lambda: now[0])
    reconciler.adopt(call_id)
    reconciler.answer_stamped(call_id, T0 + 8.5)  # 18:14:32.5 on Asterisk's clock
    reconciler.handle(AmiMessage({"Event": "BridgeLeave", "Uniqueid": call_id}))
    now[0] = utc(18, 14, 51)
    reconciler.handle(AmiMessage({"Event": "Hangup", "Uniqueid": call_id}))
    reconciler.handle(PROMPTED_DIAL_RECORD)  # ended 18:14:45 on Asterisk's clock
    await eventually(lambda: reconciler.completed == 1)
    cdr = await store.get_cdr(call_id)
    assert cdr is not None
    assert (cdr.outcome, cdr.billable_seconds) == (Outcome.ANSWERED, 12)
    assert cdr.answered_at == datetime.fromtimestamp(T0 + 8.5, UTC)
    assert cdr.ended_at == utc(18, 14, 45)
    assert cdr.note == "completed from AMI (the destination's answer as the Dial's hook stamped it)"


async def test_with_the_dial_result_unseen_only_the_end_is_completed(store: SQLiteStore) -> None:
    """The AMI link was down while the dial ended: whether anyone answered is unknown."""
    await interrupted(store, "9.1", "4001234567", utc(18, 14, 24))
    reconciler = reconciler_for(store)
    reconciler.handle(stamped("DialBegin", 0.5, ChannelState="4", DestUniqueid="9.2"))
    reconciler.handle(stamped("Hangup", 40.0))
    reconciler.expect("9.1")
    await eventually(lambda: reconciler.completed == 1)
    cdr = await store.get_cdr("9.1")
    assert cdr is not None
    assert (cdr.outcome, cdr.answered_at, cdr.billable_seconds) == (Outcome.INTERRUPTED, None, 0)
    assert cdr.ended_at == datetime.fromtimestamp(T0 + 40, UTC)
    assert cdr.note == f"{INTERRUPTED_NOTE}; end completed from AMI"


async def test_completing_twice_notes_the_source_once(store: SQLiteStore) -> None:
    await interrupted(store, "1795371264.1", "4000000001", utc(18, 14, 24))
    for _ in range(2):
        reconciler = reconciler_for(store)
        for event in events("answer.ami"):
            reconciler.handle(event)
        reconciler.expect("1795371264.1")
        await eventually(lambda r=reconciler: r.completed == 1)
    cdr = await store.get_cdr("1795371264.1")
    assert cdr is not None and cdr.note == f"{INTERRUPTED_NOTE}; completed from AMI (CDR)"


async def test_a_channel_is_forgotten_retain_seconds_after_it_ended(store: SQLiteStore) -> None:
    await interrupted(store, "1795371264.1", "4000000001", utc(18, 14, 24))
    reconciler = reconciler_for(store, retain=0.05)
    for event in events("answer.ami"):
        reconciler.handle(event)
    await asyncio.sleep(0.1)
    reconciler.handle(AmiMessage({"Event": "Hangup", "Uniqueid": "7.1"}))  # prunes on the way
    reconciler.expect("1795371264.1")
    await asyncio.sleep(0.05)
    assert (reconciler.completed, reconciler.pending) == (0, 1)


async def test_an_expected_call_never_seen_ending_is_given_up_after_max_age(
    store: SQLiteStore,
) -> None:
    reconciler = reconciler_for(store, retain=0.01, max_age=0.05)
    reconciler.expect("1795371264.1")
    await asyncio.sleep(0.1)
    reconciler.handle(AmiMessage({"Event": "Hangup", "Uniqueid": "7.1"}))
    assert reconciler.pending == 0


async def test_a_call_in_progress_has_its_unstamped_events_dated_when_read_not_when_expected(
    store: SQLiteStore,
) -> None:
    """Events of a call in progress wait, as read, until its session breaks; an event
    Asterisk did not stamp still happened when it was read, not when it is looked at."""
    await interrupted(store, "9.1", "4001234567", utc(18, 14, 24))
    now = [utc(18, 15, 0)]
    reconciler = reconciler_for(store, in_progress={"9.1"}, clock=lambda: now[0])
    dial = {"Uniqueid": "9.1", "DestUniqueid": "9.2"}
    reconciler.handle(AmiMessage({"Event": "DialBegin", "ChannelState": "4", **dial}))
    reconciler.handle(AmiMessage({"Event": "DialEnd", "DialStatus": "BUSY", **dial}))
    reconciler.handle(AmiMessage({"Event": "Hangup", "Uniqueid": "9.1"}))
    now[0] = utc(18, 16, 30)  # the session is reported broken a minute and a half later
    reconciler.expect("9.1")
    await eventually(lambda: reconciler.completed == 1)
    cdr = await store.get_cdr("9.1")
    assert cdr is not None
    assert (cdr.outcome, cdr.ended_at) == (Outcome.BUSY, utc(18, 15, 0))


async def test_over_the_link_only_calls_in_progress_or_expected_are_read(
    store: SQLiteStore,
) -> None:
    """The link drops, unparsed, the events of every other channel: a call that ended
    normally leaves nothing behind, and a broken one has all its events."""
    broken, finished = "1795371264.1", "1795371273.5"
    await interrupted(store, broken, "4000000001", utc(18, 14, 20))
    in_progress = {broken}
    reconciler = reconciler_for(store, in_progress=in_progress)
    async with linked() as (simulator, link):
        reconciler.attach(link)
        await replayed(simulator, link, "answer.ami")
        reconciler.expect(broken)  # the session broke while its call was in progress
        in_progress.discard(broken)
        await replayed(simulator, link, "busy_forward.ami")  # another call, not ours
        reconciler.expect(finished)
        await eventually(lambda: reconciler.completed == 1)
        await asyncio.sleep(0.05)
    cdr = await store.get_cdr(broken)
    assert cdr is not None
    assert (cdr.ended_at, cdr.billable_seconds, cdr.outcome) == (
        utc(18, 14, 29),
        3,
        Outcome.ANSWERED,
    )
    assert (reconciler.completed, reconciler.pending) == (1, 1)  # nothing read of the other


class SlowReads(SQLiteStore):
    """A store that takes its time to read a CDR, as one under load does."""

    async def get_cdr(self, call_id: str) -> CDR | None:
        await asyncio.sleep(0.3)
        return await super().get_cdr(call_id)


async def test_a_call_is_completed_and_priced_once_though_its_cdr_event_comes_mid_completion(
    tmp_path: Path,
) -> None:
    store = SlowReads(tmp_path / "slow.db", zone=BEIJING)
    await store.open()
    call_id = "1795371264.1"
    await interrupted(store, call_id, "4000000001", utc(18, 14, 24))
    priced: list[object] = []

    async def price(cdr: CDR, completion: object) -> None:
        priced.append(completion)

    reconciler = reconciler_for(store, on_completed=price)
    reconciler.expect(call_id)
    stream = events("answer.ami")
    first_cdr = next(
        i
        for i, event in enumerate(stream)
        if (event.get("Event"), event.get("UniqueID")) == ("Cdr", call_id)
    )
    for event in stream[:first_cdr]:  # up to the hang-ups: a completion starts
        reconciler.handle(event)
    await asyncio.sleep(0.1)  # it is reading the CDR from the slow store
    for event in stream[first_cdr:]:  # the Cdr records arrive meanwhile
        reconciler.handle(event)
    await eventually(lambda: reconciler.completed >= 1)
    await asyncio.sleep(0.5)  # room for a second completion, were there one
    await reconciler.close()
    await store.close()
    assert reconciler.completed == 1
    assert len(priced) == 1


@pytest.mark.parametrize(
    ("hold_limit", "completed", "outcome", "talk"),
    [(5_000, 1, Outcome.ANSWERED, 3), (1, 0, Outcome.INTERRUPTED, 0)],
)
async def test_held_for_adoption_a_call_that_ended_before_it_was_adopted_is_completed(
    store: SQLiteStore, hold_limit: int, completed: int, outcome: Outcome, talk: int
) -> None:
    """Before the calls left in progress are listed, every channel's events are kept, up to
    `hold_limit` channels: another call's channel taking the only place, the adopted call's
    end is not kept."""
    call_id = "1795371264.1"
    await interrupted(store, call_id, "4000000001", utc(18, 14, 20))
    reconciler = reconciler_for(store, in_progress=set(), hold_limit=hold_limit)
    reconciler.hold()
    async with linked() as (simulator, link):
        reconciler.attach(link)
        await replayed(simulator, link, "busy_forward.ami")  # a call of no concern
        await replayed(simulator, link, "answer.ami")  # the call ends, not yet adopted
        reconciler.adopt(call_id)
        reconciler.released()
        await asyncio.sleep(0.2)
    assert reconciler.completed == completed
    cdr = await store.get_cdr(call_id)
    assert cdr is not None and (cdr.outcome, cdr.billable_seconds) == (outcome, talk)


def cdr_event(call_id: str, **headers: str) -> bytes:
    """A Cdr event of the inbound channel: an answered Dial record, with `headers` over it."""
    fields = {
        "UniqueID": call_id,
        "LastApplication": "Dial",
        "Disposition": "ANSWERED",
        "DestinationChannel": "Local/13800000011@phones-00000001;1",
        "AnswerTime": "2026-11-22 18:14:24",
        "EndTime": "2026-11-22 18:14:31",
        "BillableSeconds": "7",
        **headers,
    }
    lines = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    return f"Event: Cdr\r\nPrivilege: cdr,all\r\n{lines}\r\n".encode()


@pytest.mark.parametrize(
    ("record", "answered", "talk"),
    [
        # a claim no record's own times allow is cut to them
        ({"BillableSeconds": "9" * 40}, utc(18, 14, 24), 7),
        ({"BillableSeconds": "²"}, utc(18, 14, 24), 7),  # a digit int() refuses
        # times out of reach: beyond what the zones can hold, or before the call began
        ({"EndTime": "9999-12-31 23:59:59"}, None, 0),
        ({"AnswerTime": "0001-01-01 00:00:00"}, None, 0),
        ({"EndTime": "2026-11-22 18:14:31", "AnswerTime": "1999-01-01 00:00:00"}, None, 0),
        ({"EndTime": "2099-01-01 00:00:00"}, None, 0),
        # a Hangup stamped in 2100: the end comes from the record
        ({"Hangup-Timestamp": "4102444800"}, utc(18, 14, 24), 7),
    ],
    ids=[
        "huge-seconds",
        "superscript",
        "year-9999",
        "year-1",
        "before-the-call",
        "2099",
        "hangup-in-2100",
    ],
)
async def test_a_cdr_record_asterisk_could_not_have_written_is_not_billed_from(
    store: SQLiteStore, record: dict[str, str], answered: datetime | None, talk: int
) -> None:
    """Whatever the peer puts in a Cdr record, a broken session's report goes through
    (`expect` never raises into the session) and the call is never billed beyond the
    record's own times or from times outside the call's life."""
    call_id = "1795371264.1"
    stamp = record.pop("Hangup-Timestamp", "1795371271.000000")
    await store.apply(
        [
            started(call_id, "4000000001", utc(18, 14, 20)),
            FinishCall(call_id, {"ended_at": utc(18, 14, 21), "outcome": Outcome.ERROR}),
        ]
    )
    reconciler = reconciler_for(store, in_progress={call_id})
    async with linked() as (simulator, link):
        reconciler.attach(link)
        await eventually(lambda: link.connected)
        before = link.stats().events
        sent = await simulator.replay(
            [
                b"Event: DialBegin\r\nPrivilege: call,all\r\nUniqueid: 1795371264.1\r\n"
                b"DestUniqueid: 1795371264.2\r\nChannelState: 4\r\n"
                b"DialString: 13800000011@phones\r\n\r\n",
                b"Event: DialEnd\r\nPrivilege: call,all\r\nUniqueid: 1795371264.1\r\n"
                b"DestUniqueid: 1795371264.2\r\nDialStatus: ANSWER\r\n\r\n",
                cdr_event(call_id, **record),
                b"Event: Hangup\r\nPrivilege: call,all\r\nUniqueid: 1795371264.1\r\n"
                + f"Timestamp: {stamp}\r\n\r\n".encode(),
            ]
        )
        await eventually(lambda: link.stats().events >= before + sent)
        reconciler.expect(call_id)
        await eventually(lambda: reconciler.completed == 1)
    cdr = await store.get_cdr(call_id)
    assert cdr is not None
    assert cdr.ended_at == utc(18, 14, 31)
    assert (cdr.answered_at, cdr.billable_seconds) == (answered, talk)
    await reconciler.close()


@pytest.mark.parametrize(
    ("answered_stamp", "ring"),
    [("1795371267.500000", 3.5), ("inf", None), ("1e400", None), ("nan", None), ("-inf", None)],
)
async def test_the_ring_told_by_dial_stamps_is_a_finite_number_of_seconds_or_none(
    store: SQLiteStore, answered_stamp: str, ring: float | None
) -> None:
    """A session answered for a prompt takes its Dial's ring from the DialBegin and DialEnd
    stamps: a stamp that is no finite time tells no ring (an infinite one would break the
    session's arithmetic)."""
    call_id = "1795371264.1"
    reconciler = reconciler_for(store, in_progress={call_id})
    dial = b"Uniqueid: 1795371264.1\r\nDestUniqueid: 1795371264.2\r\n"
    async with linked() as (simulator, link):
        reconciler.attach(link)
        await eventually(lambda: link.connected)
        before = link.stats().events
        sent = await simulator.replay(
            [
                b"Event: DialBegin\r\nPrivilege: call,all\r\n" + dial + b"ChannelState: 6\r\n"
                b"DialString: 13800000011@phones\r\nTimestamp: 1795371264.000000\r\n\r\n",
                b"Event: DialEnd\r\nPrivilege: call,all\r\n" + dial + b"DialStatus: ANSWER\r\n"
                b"Timestamp: " + answered_stamp.encode() + b"\r\n\r\n",
            ]
        )
        await eventually(lambda: link.stats().events >= before + sent)
        assert await reconciler.ring_of(call_id) == ring
    await reconciler.close()


async def test_a_call_in_progress_keeps_a_bounded_number_of_events_however_many_come(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A peer repeating one call's events without end (a loop in the dialplan, a faulty
    manager) does not grow the router's memory for as long as the call lasts: past
    `MAX_KEPT_EVENTS` a call's further events are dropped, and the log says so once."""
    call_id = "1795371264.1"
    reconciler = reconciler_for(store, in_progress={call_id})
    event = (
        b"Event: DialBegin\r\nPrivilege: call,all\r\nUniqueid: 1795371264.1\r\n"
        b"DestUniqueid: 1795371264.2\r\nChannelState: 4\r\n"
        b"DialString: 13800000011@phones\r\n\r\n"
    )
    async with linked() as (simulator, link):
        reconciler.attach(link)
        await eventually(lambda: link.connected)
        sent = simulator.send([event] * (3 * MAX_KEPT_EVENTS))
        await eventually(lambda: link.stats().events >= sent)
    assert len(reconciler._evidence[call_id].unnoted) == MAX_KEPT_EVENTS
    dropped = [r for r in caplog.records if "events dropped" in r.getMessage()]
    assert len(dropped) == 1 and dropped[0].levelname == "WARNING"
    await reconciler.close()


def dial_event(name: str, stamp: float | None, **headers: str) -> bytes:
    """An event of the inbound channel 1795371264.1's Dial to 1795371264.2, stamped `stamp`
    seconds after T0 (an epoch when above a million) or unstamped (None)."""
    fields = {"Uniqueid": "1795371264.1", "DestUniqueid": "1795371264.2", **headers}
    if stamp is not None:
        fields["Timestamp"] = f"{stamp if stamp > 1e6 else T0 + stamp:.6f}"
    lines = "".join(f"{key}: {value}\r\n" for key, value in fields.items())
    return f"Event: {name}\r\nPrivilege: call,all\r\n{lines}\r\n".encode()


class Clock:
    """The router's clock, set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now.astimezone(BEIJING)


async def read_one_by_one(
    simulator: AmiSimulator, link: AmiLink, clock: Clock, reads: list[tuple[bytes, datetime]]
) -> None:
    """Send each event and wait until it is read, the router's clock at its moment then."""
    for event, read in reads:
        clock.now = read
        target = link.stats().events + await simulator.replay([event])
        await eventually(lambda target=target: link.stats().events >= target)


async def broken_mid_dial(
    store: SQLiteStore,
    stream: list[bytes],
    reads: list[datetime] | None = None,
    after_read: datetime | None = None,
) -> CDR:
    """The CDR of 1795371264.1, started at 18:14:20, its session broken during its Dial,
    once completed from `stream`, read over TCP while the call was in progress; with
    `reads`, each event read at its moment of the router's clock, set to `after_read`
    once the stream is read."""
    call_id = "1795371264.1"
    await store.apply(
        [
            started(call_id, "4000000001", utc(18, 14, 20)),
            FinishCall(
                call_id,
                {
                    "ended_at": utc(18, 14, 21),
                    "outcome": Outcome.ERROR,
                    "note": "AGI session lost: connection reset",
                },
            ),
        ]
    )
    clock = Clock(reads[0]) if reads else None
    reconciler = reconciler_for(store, in_progress={call_id}, clock=clock)
    async with linked() as (simulator, link):
        reconciler.attach(link)
        await eventually(lambda: link.connected)
        if clock is not None and reads is not None:
            await read_one_by_one(simulator, link, clock, list(zip(stream, reads, strict=True)))
            clock.now = after_read or clock.now
        else:
            before = link.stats().events
            sent = await simulator.replay(stream)
            await eventually(lambda: link.stats().events >= before + sent)
        reconciler.expect(call_id)
        await eventually(lambda: reconciler.completed == 1)
    await reconciler.close()
    cdr = await store.get_cdr(call_id)
    assert cdr is not None
    return cdr


DIAL_BEGIN = dial_event("DialBegin", 0.5, ChannelState="4", DialString="13800000011@phones")
ANSWER_AT_3 = dial_event("DialEnd", 3.0, DialStatus="ANSWER")
HANGUP_AT_10 = dial_event("Hangup", 10.0)


@pytest.mark.parametrize(
    "rest",
    [
        [HANGUP_AT_10],  # no Cdr record (cdr.conf batch mode, or none configured)
        [cdr_event("1795371264.1", AnswerTime="", EndTime="2026-11-22 18:14:34")],
        [
            cdr_event(
                "1795371264.1", AnswerTime="1999-01-01 00:00:00", EndTime="2026-11-22 18:14:34"
            )
        ],
        [
            cdr_event(
                "1795371264.1", AnswerTime="0001-01-01 00:00:00", EndTime="2026-11-22 18:14:34"
            ),
            HANGUP_AT_10,
        ],
    ],
    ids=[
        "hangup-only",
        "record-without-answer-time",
        "record-answered-in-1999",
        "year-1-and-hangup",
    ],
)
async def test_an_answer_told_by_dial_end_is_timed_from_it_when_no_record_times_it(
    store: SQLiteStore, rest: list[bytes]
) -> None:
    """DialEnd ANSWER says when the destination answered (its Timestamp, or the moment it
    was read); the talk runs from it to the Hangup, or to the Cdr record's end without one.
    A record's answer time Asterisk could not have written is left out, not its end."""
    cdr = await broken_mid_dial(store, [DIAL_BEGIN, ANSWER_AT_3, *rest])
    assert (cdr.outcome, cdr.answered_at) == (Outcome.ANSWERED, utc(18, 14, 27))
    assert (cdr.ended_at, cdr.billable_seconds) == (utc(18, 14, 34), 7)
    assert cdr.note == "AGI session lost: connection reset; completed from AMI (events)"


@pytest.mark.parametrize(
    ("stream", "source"),
    [
        (
            [DIAL_BEGIN, dial_event("DialEnd", 4102444800.0, DialStatus="ANSWER"), HANGUP_AT_10],
            "events",
        ),
        (
            [DIAL_BEGIN, dial_event("DialEnd", 915148800.0, DialStatus="ANSWER"), HANGUP_AT_10],
            "events",
        ),
        ([DIAL_BEGIN, dial_event("DialEnd", 12.0, DialStatus="ANSWER"), HANGUP_AT_10], "events"),
        (
            [
                DIAL_BEGIN,
                dial_event("DialEnd", 915148800.0, DialStatus="ANSWER"),
                cdr_event("1795371264.1", AnswerTime="", EndTime="2026-11-22 18:14:34"),
            ],
            "CDR",
        ),
    ],
    ids=["answered-in-2100", "answered-in-1999", "answered-after-the-hangup", "and-no-record-time"],
)
async def test_an_answer_whose_talk_cannot_be_known_is_not_priced_at_0s_and_says_why(
    store: SQLiteStore, stream: list[bytes], source: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A destination answered, but no event or record tells, within the call's life, when
    (or the answer comes after the end): the CDR is not `answered` with no answer time,
    which `hotline400 rate` could not price and the bill would pass over; it keeps the
    outcome its session wrote, like any answered call whose talk the router does not know,
    the note says why, and the log warns."""
    cdr = await broken_mid_dial(store, stream)
    assert (cdr.outcome, cdr.answered_at, cdr.billable_seconds) == (Outcome.ERROR, None, 0)
    assert cdr.ended_at == utc(18, 14, 34)
    assert cdr.note == (
        f"AGI session lost: connection reset; completed from AMI ({source}); "
        "a destination answered, talk time unknown: not priced"
    )
    untimed = [r for r in caplog.records if "talk time unknown" in r.getMessage()]
    assert len(untimed) == 1 and untimed[0].levelname == "WARNING"


async def test_an_adopted_call_answered_with_no_answer_time_anywhere_is_closed_interrupted(
    store: SQLiteStore,
) -> None:
    """A call adopted after a restart, its DialEnd sent before: its Dial record says
    ANSWERED but gives no answer time, and no event tells one."""
    call_id = "1795371264.1"
    await store.apply([started(call_id, "4000000001", utc(18, 14, 20))])  # left in progress
    reconciler = reconciler_for(store)
    async with linked() as (simulator, link):
        reconciler.attach(link)
        reconciler.adopt(call_id)
        await eventually(lambda: link.connected)
        before = link.stats().events
        sent = await simulator.replay(
            [cdr_event(call_id, AnswerTime="", EndTime="2026-11-22 18:14:34"), HANGUP_AT_10]
        )
        await eventually(lambda: link.stats().events >= before + sent)
        await eventually(lambda: reconciler.completed == 1)
    await reconciler.close()
    cdr = await store.get_cdr(call_id)
    assert cdr is not None
    assert (cdr.outcome, cdr.answered_at, cdr.billable_seconds) == (Outcome.INTERRUPTED, None, 0)
    assert cdr.note == (
        f"{INTERRUPTED_NOTE}; completed from AMI (CDR); "
        "a destination answered, talk time unknown: not priced"
    )


END_READ = "ended when the router read the Hangup: its stamp, outside the call's life, not trusted"
HANGUP_IN_2100 = dial_event("Hangup", 4102444800.0)
HANGUP_IN_1999 = dial_event("Hangup", 915148800.0)


async def assert_closed_at_the_read(
    store: SQLiteStore,
    call_id: str,
    ended: datetime,
    end_read: str,
    caplog: pytest.LogCaptureFixture,
    reconciler: Reconciler,
) -> str:
    """The adopted call closed as interrupted, talk unknown, at the moment its end was read,
    noted so and warned of once; returns the warning."""
    cdr = await store.get_cdr(call_id)
    assert cdr is not None
    assert (cdr.outcome, cdr.answered_at, cdr.billable_seconds) == (Outcome.INTERRUPTED, None, 0)
    assert cdr.ended_at == ended
    assert cdr.note == (
        f"{INTERRUPTED_NOTE}; end completed from AMI, talk time unknown; {end_read}"
    )
    read = [r for r in caplog.records if "when the router read it" in r.getMessage()]
    assert len(read) == 1 and read[0].levelname == "WARNING"
    assert reconciler.pending == 0
    return read[0].getMessage()


@pytest.mark.parametrize(
    ("hangup", "read", "ended"),
    [
        (HANGUP_IN_2100, utc(18, 14, 40), utc(18, 14, 40)),
        (HANGUP_IN_1999, utc(18, 14, 40), utc(18, 14, 40)),
        # the router that started the call ran ahead of this one: never before its start
        (HANGUP_IN_2100, utc(18, 14, 10), utc(18, 14, 20)),
    ],
    ids=["2100", "1999", "read-before-the-start"],
)
async def test_an_adopted_call_whose_only_end_is_a_misdated_hangup_ends_when_it_was_read(
    store: SQLiteStore,
    hangup: bytes,
    read: datetime,
    ended: datetime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Asterisk told the router the channel hung up, but stamped the Hangup at a time no
    call of this one's life can have (its clock wrong, a faulty peer) and sent no Cdr
    record: the call ended, at the latest when the router read the Hangup. It is closed
    then, on the router's clock (never before the call's start, as a session ends it), not
    left in progress until max_age gives it up; the note says where its end comes from and
    the log warns."""
    call_id = "1795371264.1"
    await store.apply([started(call_id, "4000000001", utc(18, 14, 20))])  # left in progress
    clock = Clock(read)
    reconciler = reconciler_for(store, clock=clock)
    async with linked() as (simulator, link):
        reconciler.attach(link)
        reconciler.adopt(call_id)
        await eventually(lambda: link.connected)
        before = link.stats().events
        sent = await simulator.replay([hangup])
        await eventually(lambda: link.stats().events >= before + sent)
        clock.now = utc(18, 20, 0)  # completed later than read
        await eventually(lambda: reconciler.completed == 1)
    await reconciler.close()
    await assert_closed_at_the_read(store, call_id, ended, END_READ, caplog, reconciler)


# Asterisk's clock 2 s behind the router's: its DialBegin and DialEnd ANSWER (stamped
# 18:14:24.5 and 18:14:27) read at 18:14:26.5 and 18:14:29 on the router's clock
READS_OF_THE_DIAL = [utc(18, 14, 26) + timedelta(seconds=0.5), utc(18, 14, 29)]


async def test_a_broken_call_whose_hangup_is_misdated_is_billed_to_when_it_was_read(
    store: SQLiteStore,
) -> None:
    """A session broken mid-Dial, its events read while it was in progress: the answer
    stamped within the call's life, the Hangup not, and no Cdr record. The talk runs from
    the answer to the moment the router read the Hangup, not to when the call was reported
    broken or completed; both on the router's clock, from the moment it read the answer,
    not its stamp on Asterisk's clock (which may be up to 10 minutes off the router's)."""
    cdr = await broken_mid_dial(
        store,
        [DIAL_BEGIN, ANSWER_AT_3, HANGUP_IN_2100],
        reads=[*READS_OF_THE_DIAL, utc(18, 14, 40)],
        after_read=utc(18, 30, 0),
    )
    assert (cdr.outcome, cdr.answered_at) == (Outcome.ANSWERED, utc(18, 14, 29))
    assert (cdr.ended_at, cdr.billable_seconds) == (utc(18, 14, 40), 11)
    assert cdr.note == (
        f"AGI session lost: connection reset; completed from AMI (events); {END_READ}"
    )


END_READ_CDR = (
    "ended when the router read the Cdr record: its EndTime, outside the call's life, not trusted"
)
CDR_IN_2099 = cdr_event("1795371264.1", EndTime="2099-01-01 00:00:00")
CDR_IN_1999 = cdr_event("1795371264.1", EndTime="1999-01-01 00:00:00")
CDR_IN_9999 = cdr_event("1795371264.1", EndTime="9999-12-31 23:59:59")  # beyond the zones


@pytest.mark.parametrize(
    ("records", "ended"),
    [
        ([(CDR_IN_2099, utc(18, 14, 40))], utc(18, 14, 40)),
        ([(CDR_IN_1999, utc(18, 14, 40))], utc(18, 14, 40)),
        ([(CDR_IN_9999, utc(18, 14, 40))], utc(18, 14, 40)),
        # the router that started the call ran ahead of this one: never before its start
        ([(CDR_IN_2099, utc(18, 14, 10))], utc(18, 14, 20)),
        # Asterisk sends several records of a channel: the last one read ends the call
        ([(CDR_IN_1999, utc(18, 14, 35)), (CDR_IN_2099, utc(18, 14, 40))], utc(18, 14, 40)),
    ],
    ids=["2099", "1999", "year-9999", "read-before-the-start", "the-last-of-two"],
)
async def test_an_adopted_call_whose_only_end_is_misdated_cdr_records_ends_when_read(
    store: SQLiteStore,
    records: list[tuple[bytes, datetime]],
    ended: datetime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Asterisk sent the channel's Cdr records, which it writes once the channel is gone,
    but dated their end at a time no call of this one's life can have, and no Hangup came
    (sent while the router was down): the call ended, at the latest when the router read
    the last record. It is closed then, on the router's clock (never before the call's
    start), not left in progress until max_age gives it up; the note says where its end
    comes from and the log warns, once."""
    call_id = "1795371264.1"
    reconciler = await adopted_and_read(store, records, utc(18, 20, 0))
    warning = await assert_closed_at_the_read(
        store, call_id, ended, END_READ_CDR, caplog, reconciler
    )
    assert "Cdr record" in warning


async def adopted_and_read(
    store: SQLiteStore,
    reads: list[tuple[bytes, datetime]],
    completed_at: datetime,
    legs: tuple[Leg, ...] = (),
) -> Reconciler:
    """1795371264.1, started at 18:14:20 with `legs` and left in progress by a router,
    adopted, then its end read from `reads` (each event at its moment of the router's
    clock), and completed at `completed_at` on that clock."""
    call_id = "1795371264.1"
    started_call = started(call_id, "4000000001", utc(18, 14, 20))
    await store.apply([started_call, *(AddLeg(call_id, leg) for leg in legs)])
    clock = Clock(reads[0][1])
    reconciler = reconciler_for(store, clock=clock, settle=0.5)  # every event read first
    async with linked() as (simulator, link):
        reconciler.attach(link)
        reconciler.adopt(call_id)
        await eventually(lambda: link.connected)
        await read_one_by_one(simulator, link, clock, reads)
        clock.now = completed_at  # completed later than read
        await eventually(lambda: reconciler.completed == 1)
    await reconciler.close()
    return reconciler


@pytest.mark.parametrize(
    ("reads", "end_read"),
    [
        ([(CDR_IN_2099, utc(18, 14, 35)), (HANGUP_IN_2100, utc(18, 14, 40))], END_READ_CDR),
        ([(HANGUP_IN_2100, utc(18, 14, 35)), (CDR_IN_2099, utc(18, 14, 40))], END_READ),
        (
            [(CDR_IN_1999, utc(18, 14, 35)), (dial_event("Hangup", None), utc(18, 14, 40))],
            END_READ_CDR,
        ),
    ],
    ids=["record-first", "hangup-first", "record-then-unstamped-hangup"],
)
async def test_a_call_whose_hangup_and_cdr_records_are_misdated_ends_at_the_first_read(
    store: SQLiteStore,
    reads: list[tuple[bytes, datetime]],
    end_read: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Asterisk sent the channel's Hangup and Cdr records, each dated outside the call's
    life (or the Hangup unstamped): each tells, when the router read it, that the call had
    ended by then. It ends at the earlier of the two reads, noted as that one, not at the
    Hangup's whichever came first."""
    reconciler = await adopted_and_read(store, reads, utc(18, 20, 0))
    await assert_closed_at_the_read(
        store, "1795371264.1", utc(18, 14, 35), end_read, caplog, reconciler
    )


END_ALIVE = (
    "ended at the latest moment it is known alive: AMI's time of its end and the router's "
    "reading of it both outside the call's life, not trusted"
)
BUSY_LEG = Leg(1, "13800000021", "BUSY", utc(18, 14, 24), 3, 0, ForwardReason.PRIMARY)


@pytest.mark.parametrize(
    ("end", "legs", "ended"),
    [
        (HANGUP_IN_2100, (), utc(18, 14, 20)),
        (CDR_IN_2099, (), utc(18, 14, 20)),
        (HANGUP_IN_1999, (BUSY_LEG,), utc(18, 14, 27)),  # its leg ended 18:14:27
    ],
    ids=["hangup", "cdr-record", "after-a-leg"],
)
async def test_a_call_whose_end_and_its_reading_are_both_outside_its_life_ends_when_last_alive(
    store: SQLiteStore,
    end: bytes,
    legs: tuple[Leg, ...],
    ended: datetime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The router that adopted the call runs over 10 minutes behind the one that started it,
    and Asterisk dated the end outside the call's life: the moment the router read the end
    cannot be trusted either. AMI still told the call ended: it is closed at the latest
    moment it is known alive (its start, or its last leg's end), noted so and warned of
    once, not left in progress for hours until max_age gives it up."""
    behind = utc(18, 0, 0)  # 14 min 20 s before the call's start on the router's clock
    reconciler = await adopted_and_read(store, [(end, behind)], utc(18, 5, 0), legs)
    cdr = await store.get_cdr("1795371264.1")
    assert cdr is not None
    assert (cdr.outcome, cdr.answered_at, cdr.billable_seconds) == (Outcome.INTERRUPTED, None, 0)
    assert (cdr.ended_at, reconciler.pending) == (ended, 0)
    assert cdr.note == f"{INTERRUPTED_NOTE}; end completed from AMI, talk time unknown; {END_ALIVE}"
    alive = [r for r in caplog.records if "latest moment it is known alive" in r.getMessage()]
    assert len(alive) == 1 and alive[0].levelname == "WARNING"


async def test_a_broken_call_whose_cdr_record_is_misdated_is_billed_to_when_it_was_read(
    store: SQLiteStore,
) -> None:
    """A session broken mid-Dial, its events read while it was in progress: the answer
    stamped within the call's life; its Cdr record, stamped as the manager stamps every
    event, dated its end in 2099; no Hangup. The talk runs from the answer to the moment
    the router read the record, not to when the call was reported broken or completed;
    both on the router's clock, from the moment it read the answer."""
    record = cdr_event("1795371264.1", EndTime="2099-01-01 00:00:00", Timestamp=f"{T0 + 16}")
    cdr = await broken_mid_dial(
        store,
        [DIAL_BEGIN, ANSWER_AT_3, record],
        reads=[*READS_OF_THE_DIAL, utc(18, 14, 40)],
        after_read=utc(18, 30, 0),
    )
    assert (cdr.outcome, cdr.answered_at) == (Outcome.ANSWERED, utc(18, 14, 29))
    assert (cdr.ended_at, cdr.billable_seconds) == (utc(18, 14, 40), 11)
    assert cdr.note == (
        f"AGI session lost: connection reset; completed from AMI (events); {END_READ_CDR}"
    )


@pytest.mark.parametrize(
    ("stream", "leg", "priced"),
    [
        ([DIAL_BEGIN, ANSWER_AT_3, HANGUP_AT_10], ("ANSWER", 3, 7), True),
        (
            [DIAL_BEGIN, dial_event("DialEnd", 4102444800.0, DialStatus="ANSWER"), HANGUP_AT_10],
            ("ANSWER", 0, 0),
            False,
        ),
    ],
    ids=["answer-timed-by-dial-end", "answer-untimed"],
)
async def test_what_follows_a_completion_the_leg_the_price_and_rate(
    tmp_path: Path, stream: list[bytes], leg: tuple[str, int, int], priced: bool
) -> None:
    """As the daemon wires it: the completion finishes the Dial's leg written ahead and
    prices an answered call; `hotline400 rate` afterwards has nothing left to price or to
    skip. A call whose talk is unknown gets no price, and its leg no ring counted up to the
    call's end: ring and talk are unknown, the CDR's note says so."""
    number, call_id = "4000000009", "1795371264.1"  # a plan and a postpaid account
    config = tmp_path / "config"
    shutil.copytree(E2E_CONFIG, config)
    url = f"sqlite:///{tmp_path / 'hotline400.db'}"
    (config / "router.yaml").write_text(
        f'store: "{url}"\nspool_dir: "{tmp_path / "spool"}"\n', encoding="utf-8"
    )
    store = SQLiteStore(tmp_path / "hotline400.db", zone=BEIJING)
    await store.open()
    writer = CdrWriter(store, Journal(tmp_path / "cdr.journal"), batch_interval=0.01)
    await writer.start()
    accounting = Accounting(store, BalanceAlerts(), BEIJING, balance_seen=lambda *_: None)
    plans = PlanBook(config, BEIJING)
    plans.reload()
    charges, followed = LateCharges(plans, accounting, writer), []

    async def completed(cdr: CDR, completion: Completion) -> None:
        await charges.completed(cdr, completion)
        followed.append(cdr.call_id)  # the price is booked after the completion is counted

    dialling = Leg(1, "13800000011", DIALLING, utc(18, 14, 24), 0, 0, ForwardReason.PRIMARY)
    await store.apply(
        [
            started(call_id, number, utc(18, 14, 20)),
            AddLeg(call_id, dialling),
            FinishCall(call_id, {"ended_at": utc(18, 14, 21), "outcome": Outcome.ERROR}),
        ]
    )
    reconciler = reconciler_for(store, writer=writer, in_progress={call_id}, on_completed=completed)
    async with linked() as (simulator, link):
        reconciler.attach(link)
        await eventually(lambda: link.connected)
        before = link.stats().events
        sent = await simulator.replay(stream)
        await eventually(lambda: link.stats().events >= before + sent)
        reconciler.expect(call_id)
        await eventually(lambda: followed == [call_id])
    await reconciler.close()
    await writer.close()
    cdr = await store.get_cdr(call_id)
    ledger = await store.ledger(number)
    await store.close()
    assert cdr is not None and len(cdr.legs) == 1
    done = cdr.legs[0]
    assert (done.dial_status, done.ring_seconds, done.talk_seconds) == leg
    assert (cdr.total is not None, len(ledger)) == (priced, int(priced))
    books = load_books(config)
    async with books.store() as again:
        run = await rate_cdrs(
            books,
            again,
            datetime(2026, 11, 22, tzinfo=BEIJING),
            datetime(2026, 11, 24, tzinfo=BEIJING),
            rerate=False,
            now=utc(19, 0, 0),
            watch=UNWATCHED,
        )
    assert not run.priced  # nothing left to price
    assert (run.unchanged, run.skipped.total()) == (int(priced), 0)


async def a_call_and_a_repeat_keyed_apart(store: SQLiteStore, call_id: str, closed: bool) -> CDR:
    """An earlier call of `call_id` (another router's, or before a restart; `closed` as
    interrupted, else left in progress), and a call of this run on the same uniqueid, which
    the store keyed apart and a broken session left in progress: the earlier one as stored."""
    if closed:
        await interrupted(store, call_id, "4000000001", utc(18, 10, 0))
    else:
        await store.apply([started(call_id, "4000000001", utc(18, 10, 0))])
    await store.apply([started(call_id, "4000000001", utc(18, 14, 20))])
    assert store.stored_id(call_id) == f"{call_id}~2"
    earlier = await store.get_cdr(call_id)
    assert earlier is not None
    return earlier


async def test_a_broken_session_keyed_apart_as_a_repeat_is_completed_where_it_is_stored(
    store: SQLiteStore,
) -> None:
    earlier = await a_call_and_a_repeat_keyed_apart(store, "1795371264.1", closed=True)
    reconciler = reconciler_for(store)
    for event in events("answer.ami"):
        reconciler.handle(event)
    reconciler.expect("1795371264.1")  # the session's uniqueid, as the session tells it
    await eventually(lambda: reconciler.completed == 1)
    repeat = await store.get_cdr("1795371264.1~2")
    assert repeat is not None
    assert (repeat.outcome, repeat.billable_seconds) == (Outcome.ANSWERED, 3)
    assert repeat.note == "completed from AMI (CDR)"  # not the earlier call's note
    assert await store.get_cdr("1795371264.1") == earlier


async def test_an_adopted_call_is_completed_by_its_stored_id_not_a_repeat_of_its_uniqueid(
    store: SQLiteStore, tmp_path: Path
) -> None:
    await a_call_and_a_repeat_keyed_apart(store, "1795371264.1", closed=False)
    writer = CdrWriter(store, Journal(tmp_path / "cdr.journal"), batch_interval=0.01)
    await writer.start()
    reconciler = reconciler_for(store, writer=writer)
    reconciler.adopt("1795371264.1")  # read from the store: the earlier call
    reconciler.give_up_after("1795371264.1", 0, "Asterisk no longer had the call")
    await eventually(lambda: not reconciler.pending)
    await writer.close()
    earlier, repeat = await store.get_cdr("1795371264.1"), await store.get_cdr("1795371264.1~2")
    assert earlier is not None and repeat is not None
    assert earlier.note == f"{INTERRUPTED_NOTE}; Asterisk no longer had the call"
    assert repeat.outcome is Outcome.IN_PROGRESS
