"""Live calls per destination, from the recorded AMI streams: offline and over real TCP."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.ami.link import Event
from router.ami.live_calls import LiveCalls, destination_number
from router.ami.wire import AmiMessage, parse_message
from router.simulation.asterisk_ami import RECORDINGS, recorded_events
from tests.router.ami.test_ami import eventually, linked, replayed

BUSY, ANSWERS, RINGS, CONGESTED, STAYS = (
    "13800000021",
    "13800000011",
    "13800000031",
    "13800000041",
    "13800000051",
)


def events(name: str) -> list[Event]:
    return [parse_message(block) for block in recorded_events(RECORDINGS / name)]


def counts_along(live: LiveCalls, stream: Iterable[Event], numbers: Sequence[str]) -> list:
    """The counts of `numbers` after each event, and the event that changed them."""
    changes, before = [], tuple(live.count(number) for number in numbers)
    for event in stream:
        live.handle(event)
        after = tuple(live.count(number) for number in numbers)
        if after != before:
            key = event.get("DestUniqueid") or event.get("Uniqueid")
            changes.append((event["Event"], key, after))
            before = after
    return changes


BUSY_THEN_FORWARDED = [
    ("DialBegin", "1795371273.6", (1, 0)),  # 13800000021 rings ...
    ("DialEnd", "1795371273.6", (0, 0)),  # ... and is busy
    ("DialBegin", "1795371273.8", (0, 1)),  # forwarded to 13800000011, which answers
    ("Hangup", "1795371273.8", (0, 0)),  # and hangs up after 3 s
]


@pytest.mark.parametrize(
    ("dial_string", "number"),
    [
        ("13800000011@phones", "13800000011"),  # Local/13800000011@phones, recorded
        ("13800000011@carrier", "13800000011"),  # PJSIP/13800000011@carrier
        ("carrier/sip:13800000011@10.0.0.1:5060", "13800000011"),
        ("trunk/13800000011", "13800000011"),
        ("13800000011", "13800000011"),
        ("tel:+8613800000011;phone-context=cn", "+8613800000011"),
    ],
)
def test_destination_number_is_read_from_the_dial_string(dial_string: str, number: str) -> None:
    assert destination_number(dial_string) == number


def test_busy_destination_counts_while_it_rings_then_the_forward_while_it_talks() -> None:
    live = LiveCalls()
    assert counts_along(live, events("busy_forward.ami"), [BUSY, ANSWERS]) == BUSY_THEN_FORWARDED


async def test_counts_rise_and_fall_over_tcp_as_in_the_recording() -> None:
    live, changes = LiveCalls(), []
    async with linked() as (simulator, link):
        live.attach(link)
        numbers = [BUSY, ANSWERS]
        before = [(0, 0)]

        def note(event: Event) -> None:  # registered after LiveCalls: sees its counts
            after = tuple(live.count(number) for number in numbers)
            if after != before[-1]:
                changes.append((event["Event"], event.get("DestUniqueid") or event["Uniqueid"]))
                before.append(after)

        for name in LiveCalls.EVENTS:
            link.on_event(name, note)
        await replayed(simulator, link, "busy_forward.ami")
    assert changes == [(name, key) for name, key, _ in BUSY_THEN_FORWARDED]
    assert before[1:] == [counts for _, _, counts in BUSY_THEN_FORWARDED]


async def test_only_the_counted_numbers_are_followed_and_other_events_stay_unparsed() -> None:
    live, changes, parsed = LiveCalls(counted=lambda: {BUSY}), [], []
    async with linked() as (simulator, link):
        live.attach(link)
        for name in LiveCalls.EVENTS:  # parsed only when some handler wants the event
            link.on_event(name, lambda event: parsed.append(event["Event"]), wants=lambda _: False)
        before = [(0, 0)]

        def note(event: Event) -> None:
            after = (live.count(BUSY), live.count(ANSWERS))
            if after != before[-1]:
                changes.append((event["Event"], event.get("DestUniqueid") or event["Uniqueid"]))
                before.append(after)

        link.on_event("DialBegin", note)
        link.on_event("DialEnd", note)
        await replayed(simulator, link, "busy_forward.ami")
    assert changes == [("DialBegin", "1795371273.6"), ("DialEnd", "1795371273.6")]
    assert before[1:] == [(1, 0), (0, 0)]  # 13800000011 has no limit: never counted
    assert parsed == []


def test_a_caller_hanging_up_while_ringing_ends_the_count() -> None:
    changes = counts_along(LiveCalls(), events("caller_hangup.ami"), [RINGS])
    assert changes == [
        ("DialBegin", "1795371339.36", (1,)),
        ("DialEnd", "1795371339.36", (0,)),  # DialStatus CANCEL
    ]


def test_every_recorded_call_leaves_no_live_call_behind() -> None:
    live = LiveCalls()
    numbers = [ANSWERS, RINGS, CONGESTED, STAYS, "99999"]
    changes = counts_along(live, events("misc.ami"), numbers)
    assert max(max(counts) for _, _, counts in changes) == 1
    assert changes[-1][2] == (0, 0, 0, 0, 0)


def test_an_originate_is_not_a_call_to_a_destination() -> None:
    live = LiveCalls()
    for event in events("answer.ami"):
        live.handle(event)
        assert live.count("4000000001") == 0


def test_counts_name_the_destinations_up_and_no_others() -> None:
    live = LiveCalls()
    stream = events("busy_forward.ami")
    answered = next(i for i, event in enumerate(stream) if event.get("DialStatus") == "ANSWER")
    for event in stream[: answered + 1]:
        live.handle(event)
    assert (live.count(ANSWERS), live.count(BUSY), live.count("13900000000")) == (1, 0, 0)


def _dial(caller: str, dialled: str, number: str = ANSWERS) -> AmiMessage:
    return AmiMessage(
        {
            "Event": "DialBegin",
            "Uniqueid": caller,
            "DestUniqueid": dialled,
            "DialString": f"{number}@carrier",
        }
    )


def test_the_dialled_channel_hanging_up_ends_a_dial_without_dial_end() -> None:
    live = LiveCalls()
    live.handle(_dial("1.1", "1.2"))
    live.handle(AmiMessage({"Event": "Hangup", "Uniqueid": "1.2"}))
    assert live.count(ANSWERS) == 0


def test_the_dialling_channel_hanging_up_ends_its_dials_when_theirs_are_missed() -> None:
    live = LiveCalls()
    live.handle(_dial("1.1", "1.2"))
    live.handle(_dial("1.1", "1.3", BUSY))  # Dial(A&B): two at once
    live.handle(_dial("2.1", "2.2"))
    live.handle(AmiMessage({"Event": "Hangup", "Uniqueid": "1.1"}))
    assert (live.count(ANSWERS), live.count(BUSY)) == (1, 0)


def test_repeated_events_never_count_a_dial_twice_nor_below_zero() -> None:
    live = LiveCalls()
    live.handle(_dial("1.1", "1.2"))
    live.handle(_dial("1.1", "1.2"))
    assert live.count(ANSWERS) == 1
    for _ in range(2):
        live.handle(AmiMessage({"Event": "DialEnd", "DestUniqueid": "1.2", "DialStatus": "BUSY"}))
        live.handle(AmiMessage({"Event": "Hangup", "Uniqueid": "1.2"}))
        live.handle(AmiMessage({"Event": "Hangup", "Uniqueid": "1.1"}))
    assert live.count(ANSWERS) == 0
    live.handle(_dial("3.1", "3.2"))
    assert live.count(ANSWERS) == 1


def test_a_dial_older_than_max_age_is_dropped_as_stale() -> None:
    now = [1000.0]
    live = LiveCalls(max_age=3600, clock=lambda: now[0])
    live.handle(_dial("1.1", "1.2"))
    now[0] += 1800
    live.handle(_dial("2.1", "2.2"))
    assert live.count(ANSWERS) == 2
    now[0] += 1801
    assert live.count(ANSWERS) == 1


def test_dials_never_ended_are_dropped_as_new_dials_come_without_waiting_for_a_count() -> None:
    """A DialBegin whose end never comes (a missed Hangup, a broken or hostile peer) is
    dropped once older than `max_age` as the next dials arrive, not only when a count is
    asked for: a destination nobody asks about does not keep them all."""
    now = [1000.0]
    live = LiveCalls(max_age=3600, clock=lambda: now[0])
    for call in range(1, 101):
        live.handle(_dial(f"{call}.1", f"{call}.2"))
    now[0] += 3601
    live.handle(_dial("200.1", "200.2", BUSY))
    assert not any(live.dialling(f"{call}.1") for call in range(1, 101))
    assert live.dialling("200.1")
    assert (live.count(ANSWERS), live.count(BUSY)) == (0, 1)


def test_past_max_dials_the_oldest_dial_gives_way_and_the_log_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """DialBegins without ends, faster than `max_age` drops them, stop at `max_dials`: each
    new dial then drops the oldest (an under-count, which at worst rings a destination at
    its limit), and one warning tells the operator."""
    live = LiveCalls(max_dials=3)
    with caplog.at_level(logging.WARNING, logger="hotline400.ami"):
        for call in range(1, 11):
            live.handle(_dial(f"{call}.1", f"{call}.2", BUSY if call % 2 else ANSWERS))
    assert [call for call in range(1, 11) if live.dialling(f"{call}.1")] == [8, 9, 10]
    assert (live.count(BUSY), live.count(ANSWERS)) == (1, 2)  # 9 busy; 8 and 10
    full = [record for record in caplog.records if "max_dials" in record.getMessage()]
    assert len(full) == 1 and full[0].levelname == "WARNING"


async def test_a_peer_sending_dial_begins_without_end_over_tcp_is_held_to_max_dials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limit = 50
    live = LiveCalls(max_dials=limit)
    begins = [
        b"Event: DialBegin\r\nPrivilege: call,all\r\n"
        + f"Uniqueid: 9{call}.1\r\nDestUniqueid: 9{call}.2\r\n".encode()
        + b"DialString: 13800000011@carrier\r\n\r\n"
        for call in range(20 * limit)
    ]
    with caplog.at_level(logging.WARNING, logger="hotline400.ami"):
        async with linked() as (simulator, link):
            live.attach(link)
            await eventually(lambda: link.connected)
            sent = simulator.send(begins)
            await eventually(lambda: link.stats().events >= sent)
            assert live.count(ANSWERS) == limit
            assert live.dialling(f"9{20 * limit - 1}.1") and not live.dialling("90.1")
    assert sum("max_dials" in record.getMessage() for record in caplog.records) == 1


async def test_the_counts_start_afresh_when_the_ami_session_ends() -> None:
    live = LiveCalls()
    stream = recorded_events(RECORDINGS / "answer.ami")
    answered = next(i for i, block in enumerate(stream) if b"DialStatus: ANSWER" in block)
    async with linked() as (simulator, link):
        live.attach(link)
        await eventually(lambda: link.connected)
        before = link.stats().events
        sent = await simulator.replay(stream[: answered + 1])
        await eventually(lambda: link.stats().events >= before + sent)
        assert live.count(ANSWERS) == 1
        simulator.drop_sessions()
        await eventually(lambda: link.stats().disconnects == 1)
        assert live.count(ANSWERS) == 0


ALL_CALLS = [  # what the link hands LiveCalls: the events it subscribed to
    event
    for name in ("busy_forward.ami", "misc.ami", "caller_hangup.ami")
    for event in events(name)
    if event["Event"] in LiveCalls.EVENTS
]
NUMBERS = [BUSY, ANSWERS, RINGS, CONGESTED, STAYS, "99999"]
MISSABLE = [i for i, event in enumerate(ALL_CALLS) if event["Event"] != "Hangup"]


@settings(max_examples=200, deadline=None)
@given(missed=st.sets(st.sampled_from(MISSABLE)))
def test_with_every_hangup_seen_counts_stay_non_negative_and_end_at_zero(
    missed: set[int],
) -> None:
    live = LiveCalls()
    for i, event in enumerate(ALL_CALLS):
        if i not in missed:
            live.handle(event)
            assert all(live.count(number) >= 0 for number in NUMBERS)
    assert [live.count(number) for number in NUMBERS] == [0] * len(NUMBERS)
