"""The AMI link against the AMI simulator over real TCP: login, events, drops, backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from itertools import pairwise

import pytest

from router.ami.link import MAX_SPELLINGS, AmiLink
from router.ami.wire import AmiConnection, AmiEvent, AmiMessage, header, parse_message
from router.simulation.asterisk_ami import (
    MANAGER_CONF,
    RECORDINGS,
    AmiSimulator,
    accounts_from_manager_conf,
    events_as_sent,
    recorded_events,
    timestamp_events_in,
)
from tests.conftest import free_port

ACCOUNTS = accounts_from_manager_conf(MANAGER_CONF.read_text(encoding="utf-8"))
USER = "hotline400"
SECRET = ACCOUNTS[USER].secret
FAST = {"reconnect_initial": 0.01, "reconnect_max": 0.05, "connect_timeout": 1.0}


async def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


@asynccontextmanager
async def linked(
    simulator: AmiSimulator | None = None, secret: str = SECRET, **options: float
) -> AsyncIterator[tuple[AmiSimulator, AmiLink]]:
    """A simulator on a free port and a started link to it (not waited for)."""
    simulator = simulator or AmiSimulator(ACCOUNTS)
    port = await simulator.start()
    link = AmiLink("127.0.0.1", port, USER, secret, **{**FAST, **options})
    link.start()
    try:
        yield simulator, link
    finally:
        await link.stop()
        await simulator.stop()


async def replayed(simulator: AmiSimulator, link: AmiLink, name: str) -> int:
    """Replay a recording once the link is in; returns when the link has read every event."""
    await eventually(lambda: link.connected)
    before = link.stats().events
    sent = await simulator.replay(recorded_events(RECORDINGS / name))
    await eventually(lambda: link.stats().events >= before + sent)
    return sent


async def test_link_logs_in_and_hands_each_event_to_the_handlers_of_its_name() -> None:
    seen: list[tuple[str, str]] = []
    async with linked() as (simulator, link):
        for name in ("DialBegin", "hangup"):
            link.on_event(name, lambda event: seen.append((event["Event"], event["Uniqueid"])))
        await replayed(simulator, link, "answer.ami")
    assert seen[0] == ("DialBegin", "1795371264.1")
    assert [name for name, _ in seen] == ["DialBegin"] + ["Hangup"] * 4
    assert link.stats().connects == 1


async def test_the_account_gets_only_the_events_manager_conf_lets_it_read() -> None:
    recorded = {
        block.split(b"\r\n", 1)[0].decode().removeprefix("Event: ")
        for block in recorded_events(RECORDINGS / "answer.ami")
    }
    received: set[str] = set()
    async with linked() as (simulator, link):
        for name in recorded:
            link.on_event(name, lambda event: received.add(event["Event"]))
        sent = await replayed(simulator, link, "answer.ami")
    assert received == recorded & ACCOUNTS[USER].event_names
    assert "Newexten" in recorded and "AGIExecStart" in recorded and "VarSet" in recorded
    assert sent == 16  # of 106 recorded events


async def test_a_failing_handler_is_logged_and_the_session_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_event: object) -> None:
        raise RuntimeError("handler bug")

    hangups: list[str] = []
    async with linked() as (simulator, link):
        link.on_event("Hangup", broken)
        link.on_event("Hangup", lambda event: hangups.append(event["Uniqueid"]))
        await replayed(simulator, link, "busy_forward.ami")
        stats = link.stats()
    assert len(hangups) == 6
    assert (stats.connects, stats.disconnects) == (1, 0)
    assert "Hangup handler" in caplog.text and "handler bug" in caplog.text


def test_an_event_name_is_routed_however_it_is_spelt_and_the_spellings_kept_are_bounded() -> None:
    link = AmiLink("127.0.0.1", 5038, "hotline400", "unused")
    seen: list[bytes] = []
    link.on_raw_event("Hangup", seen.append)
    for spelling in ("Hangup", "HANGUP", " hangup ", "Hangup", "NoSuchEvent"):
        link._dispatch(f"Event: {spelling}\r\nUniqueid: 1.1".encode())
    assert len(seen) == 4
    for padding in range(2 * MAX_SPELLINGS):  # a peer spelling one name in ever new ways
        link._dispatch(f"Event: Hangup{' ' * padding}\r\nUniqueid: 1.2".encode())
    assert len(seen) == 4 + 2 * MAX_SPELLINGS
    assert len(link._routes_by_spelling) == MAX_SPELLINGS


def test_a_name_nobody_handles_is_remembered_as_such_until_a_handler_for_it_is_added() -> None:
    """An ignored event costs a lookup of its name as spelt; a handler added later for that
    name still gets the next ones."""
    link = AmiLink("127.0.0.1", 5038, "hotline400", "unused")
    seen: list[bytes] = []
    link.on_raw_event("Hangup", seen.append)
    link._dispatch(b"Event: Newstate\r\nUniqueid: 1.1")
    assert link._routes_by_spelling[b"Newstate"] == ()
    link.on_raw_event("newstate", seen.append)
    link._dispatch(b"Event: Newstate\r\nUniqueid: 1.1")
    link.on_event("Hangup", lambda event: seen.append(event["Uniqueid"].encode()))
    link._dispatch(b"Event: Hangup\r\nUniqueid: 1.2")
    assert seen == [b"Event: Newstate\r\nUniqueid: 1.1", b"Event: Hangup\r\nUniqueid: 1.2", b"1.2"]


async def test_a_raw_handler_gets_each_event_as_bytes_in_turn_with_the_parsed_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_block: bytes) -> None:
        raise RuntimeError("raw handler bug")

    order: list[str] = []
    async with linked() as (simulator, link):
        link.on_raw_event("hangup", broken)
        link.on_raw_event(
            "Hangup", lambda block: order.append(f"raw {header(block, b'Uniqueid')!r}")
        )
        link.on_event("Hangup", lambda event: order.append(f"parsed {event['Uniqueid']}"))
        await replayed(simulator, link, "answer.ami")
    assert order[:2] == ["raw b'1795371264.3'", "parsed 1795371264.3"]
    assert len(order) == 8  # the 4 Hangups, each to both handlers, the raw one first
    assert "Hangup handler" in caplog.text and "raw handler bug" in caplog.text


async def test_start_returns_at_once_and_keeps_trying_while_asterisk_is_down() -> None:
    link = AmiLink("127.0.0.1", free_port(), USER, SECRET, **FAST)
    began = time.monotonic()
    link.start()
    assert time.monotonic() - began < 0.01
    assert not link.connected
    await eventually(lambda: link.stats().failed_attempts >= 3)
    began = time.monotonic()
    await link.stop()
    assert time.monotonic() - began < 0.1
    assert not link.connected and link.stats().connects == 0


async def serving(
    greeting: bytes | None,
) -> tuple[asyncio.Server, list[bytes]]:
    """A peer that writes `greeting` (nothing when None) and then only reads: the bytes of
    each connection are collected."""
    received: list[bytes] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if greeting is not None:
            writer.write(greeting)
        received.append(b"")
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(4096):
                received[-1] += chunk
        writer.close()

    return await asyncio.start_server(silent, "127.0.0.1", 0), received


@pytest.mark.parametrize(
    ("greeting", "warned"),
    [
        (None, "no greeting from Asterisk within 0.05s"),
        (b"Asterisk Call Manager/11.0.0\r\n", "no reply to Login within 0.05s"),
    ],
    ids=["no-greeting", "no-login-reply"],
)
async def test_an_asterisk_that_stays_silent_is_logged_as_timed_out_at_that_step(
    caplog: pytest.LogCaptureFixture, greeting: bytes | None, warned: str
) -> None:
    """The login waits for Asterisk's greeting: a peer that never greets is never sent the
    secret, and the warning says which answer did not come."""
    silent, received = await serving(greeting)
    port = silent.sockets[0].getsockname()[1]
    link = AmiLink("127.0.0.1", port, USER, SECRET, **{**FAST, "connect_timeout": 0.05})
    caplog.set_level(logging.WARNING, "hotline400.ami")
    link.start()
    try:
        await eventually(lambda: link.stats().failed_attempts >= 1)
    finally:
        await link.stop()
        silent.close()
    assert f"AMI 127.0.0.1:{port}: {warned}; trying again with backoff up to 0.05s" in (
        caplog.messages
    )
    sent_login = any(b"Action: Login" in chunk for chunk in received)
    assert sent_login == (greeting is not None)


async def test_a_peer_greeting_as_another_service_is_dropped_before_the_secret_is_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ami_port pointing at another service (here SSH): dropped at its first line, with that
    line in the warning, instead of waiting out the connect timeout with the secret sent."""
    other, received = await serving(b"SSH-2.0-OpenSSH_9.6\r\n")
    port = other.sockets[0].getsockname()[1]
    link = AmiLink("127.0.0.1", port, USER, SECRET, **{**FAST, "connect_timeout": 30.0})
    caplog.set_level(logging.WARNING, "hotline400.ami")
    began = time.monotonic()
    link.start()
    try:
        await eventually(lambda: link.stats().failed_attempts >= 2)
    finally:
        await link.stop()
        other.close()
    assert time.monotonic() - began < 1.0
    assert (
        f"AMI 127.0.0.1:{port}: not an Asterisk manager (it greeted with 'SSH-2.0-OpenSSH_9.6'); "
        "trying again with backoff up to 0.05s"
    ) in caplog.messages
    assert received and not any(SECRET.encode() in chunk for chunk in received)


@pytest.mark.parametrize("closes_at", ["Login", "Ping"])
async def test_asterisk_closing_with_an_action_unanswered_is_a_lost_session_dialled_again(
    closes_at: str,
) -> None:
    """Asterisk restarting closes its manager sessions with whatever was asked unanswered:
    the link must dial again, not end."""
    sessions: list[int] = []

    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sessions.append(1)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        login = await reader.readuntil(b"\r\n\r\n")
        if closes_at == "Ping":
            action_id = header(login.rstrip(b"\r\n"), b"ActionID") or b""
            writer.write(b"Response: Success\r\nActionID: " + action_id + b"\r\n\r\n")
            await reader.readuntil(b"Action: Ping")
        writer.close()

    server = await asyncio.start_server(closing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = AmiLink("127.0.0.1", port, USER, SECRET, **{**FAST, "ping_interval": 0.02})
    link.start()
    try:
        await eventually(lambda: len(sessions) >= 3)
    finally:
        await link.stop()
        server.close()


async def test_a_peer_that_never_greets_is_dropped_at_the_message_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A wrong port (a service that is not Asterisk's manager) streaming bytes without a line
    end is not held in memory without bound."""
    monkeypatch.setattr("router.ami.wire.MAX_PENDING_BYTES", 4096)

    async def streaming(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            for _ in range(64):
                writer.write(b"x" * 1024)
                await writer.drain()
                await asyncio.sleep(0.001)

    server = await asyncio.start_server(streaming, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = AmiLink("127.0.0.1", port, USER, SECRET, **{**FAST, "connect_timeout": 30.0})
    link.start()
    try:
        await eventually(lambda: link.stats().failed_attempts >= 1)
    finally:
        await link.stop()
        server.close()


async def test_a_refused_login_is_retried_after_a_doubling_delay_up_to_the_cap() -> None:
    async with linked(secret="wrong", reconnect_initial=0.02, reconnect_max=0.08) as (
        simulator,
        link,
    ):
        await eventually(lambda: len(simulator.connection_times) >= 6)
        stats = link.stats()
    gaps = [later - earlier for earlier, later in pairwise(simulator.connection_times)]
    assert gaps[0] >= 0.02 and gaps[1] >= 0.04
    assert all(gap >= 0.08 for gap in gaps[2:5])
    assert max(gaps[:5]) < 0.08 + 0.25  # capped, not still doubling (0.16, 0.32, ...)
    assert stats.connects == 0 and stats.failed_attempts >= 5
    assert simulator.logins == 0


async def test_sessions_that_keep_dropping_soon_after_login_are_dialled_with_growing_delays() -> (
    None
):
    """Asterisk accepting the login and closing a moment later, again and again (a peer
    flapping): each short session is a failure for the backoff, which grows to its cap,
    rather than a session that held and resets it (a reconnect, two log lines and the live
    call counts wiped every few seconds, forever). Only a session that held for the cap
    resets it."""
    logins: list[float] = []

    async def flapping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        login = await reader.readuntil(b"\r\n\r\n")
        action_id = header(login.rstrip(b"\r\n"), b"ActionID") or b""
        writer.write(b"Response: Success\r\nActionID: " + action_id + b"\r\n\r\n")
        logins.append(time.monotonic())
        await asyncio.sleep(0.05)
        writer.close()

    server = await asyncio.start_server(flapping, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = AmiLink("127.0.0.1", port, USER, SECRET, reconnect_initial=0.01, reconnect_max=0.2)
    link.start()
    try:
        await eventually(lambda: len(logins) >= 7, timeout=5.0)
    finally:
        await link.stop()
        server.close()
    gaps = [later - earlier for earlier, later in pairwise(logins)]
    assert all(gap >= 0.05 + 0.2 for gap in gaps[4:6])  # the cap reached, not reset


async def test_the_link_logs_in_again_after_asterisk_drops_the_session() -> None:
    ended: list[bool] = []
    async with linked() as (simulator, link):
        link.on_disconnect(lambda: ended.append(True))
        await eventually(lambda: link.connected)
        simulator.drop_sessions()
        await eventually(lambda: link.stats().connects == 2 and link.connected)
        assert link.stats().disconnects == 1
        assert simulator.sessions == 1
        assert ended == [True]


async def test_connected_follows_asterisk_going_away_and_coming_back() -> None:
    simulator = AmiSimulator(ACCOUNTS)
    port = await simulator.start()
    link = AmiLink("127.0.0.1", port, USER, SECRET, **FAST)
    link.start()
    try:
        await eventually(lambda: link.connected)
        await simulator.stop()
        await eventually(lambda: not link.connected)
        failed = link.stats().failed_attempts
        await eventually(lambda: link.stats().failed_attempts >= failed + 2)
        assert not link.connected
        await simulator.start(port=port)
        await eventually(lambda: link.connected)
        assert (link.stats().connects, link.stats().disconnects) == (2, 1)
    finally:
        await link.stop()
        await simulator.stop()


async def test_a_lasting_failure_is_warned_once_and_the_login_after_it_says_how_long(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Asterisk down for an hour is one warning, not one each backoff (two lines a
    30 s retry): the same failure again is logged at debug; a new reason, a login and a
    lost session are changes of state and logged each."""
    caplog.set_level(logging.INFO, "hotline400.ami")
    simulator = AmiSimulator(ACCOUNTS)
    port = free_port()
    link = AmiLink("127.0.0.1", port, USER, SECRET, **FAST)
    link.start()
    try:
        await eventually(lambda: link.stats().failed_attempts >= 5)
        await simulator.start(port=port)
        await eventually(lambda: link.connected)
        simulator.drop_sessions()
        await eventually(lambda: link.stats().connects == 2)
    finally:
        await link.stop()
        await simulator.stop()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    refused = [line for line in lines if "Connect call failed" in line[1]]
    assert len(refused) == 1 and refused[0][0] == "WARNING"
    assert "trying again with backoff up to 0.05s" in refused[0][1]
    logins = [line for line in lines if "logged in" in line[1]]
    assert logins[0][1].startswith(f"AMI logged in to 127.0.0.1:{port} after ")
    assert "failed attempts" in logins[0][1]
    assert logins[1] == ("INFO", f"AMI logged in to 127.0.0.1:{port}")
    assert ("WARNING", f"AMI connection to 127.0.0.1:{port} lost") in lines
    assert not [line for line in lines if "reconnect" in line[1]]  # the retries: debug only


async def test_a_refused_login_is_warned_once_however_often_it_is_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "hotline400.ami")
    async with linked(secret="wrong") as (simulator, _link):
        await eventually(lambda: len(simulator.connection_times) >= 5)
    refused = [r for r in caplog.records if "login refused" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelname == "WARNING"


async def test_a_session_that_stops_answering_ping_is_dropped_and_dialled_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "hotline400.ami")
    silent = AmiSimulator(ACCOUNTS, answer_ping=False)
    async with linked(silent, ping_interval=0.05, ping_timeout=0.05) as (_, link):
        await eventually(lambda: link.stats().connects >= 2)
        assert link.stats().disconnects >= 1
    assert "no reply to Ping" in caplog.text


async def test_stop_ends_the_session_and_no_reconnect_follows() -> None:
    async with linked() as (simulator, link):
        await eventually(lambda: link.connected)
        await link.stop()
        assert not link.connected
        await asyncio.sleep(0.1)
        assert len(simulator.connection_times) == 1 and simulator.sessions == 0


async def test_simulator_answers_actions_as_asterisk_does() -> None:
    simulator = AmiSimulator(ACCOUNTS)
    port = await simulator.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def ask(*lines: str) -> bytes:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return await reader.readuntil(b"\r\n\r\n")

    try:
        assert await reader.readline() == b"Asterisk Call Manager/11.0.0\r\n"
        assert await ask("Action: Ping", "ActionID: 1") == (
            b"Response: Error\r\nActionID: 1\r\nMessage: Permission denied\r\n\r\n"
        )
        login = ("Action: Login", "ActionID: 2", f"Username: {USER}", f"Secret: {SECRET}")
        assert await ask(*login) == (
            b"Response: Success\r\nActionID: 2\r\nMessage: Authentication accepted\r\n\r\n"
        )  # no FullyBooted: the account does not read "system"
        pong = await ask("Action: Ping", "ActionID: 3")
        assert pong.startswith(b"Response: Success\r\nActionID: 3\r\nPing: Pong\r\nTimestamp: ")
        unknown = await ask("Action: Originate", "ActionID: 4")
        assert unknown.startswith(
            b"Response: Error\r\nActionID: 4\r\nMessage: Invalid/unknown command: Originate."
        )
        assert await ask("Action: Logoff") == (
            b"Response: Goodbye\r\nMessage: Thanks for all the fish.\r\n\r\n"
        )
        assert await reader.read() == b""
    finally:
        writer.close()
        await simulator.stop()


async def test_fully_booted_follows_the_login_of_a_session_reading_system_only() -> None:
    accounts = accounts_from_manager_conf(
        "[ops]\nsecret = s\nread = system,call\n[calls]\nsecret = s\nread = call\n"
    )
    simulator = AmiSimulator(accounts)
    port = await simulator.start()

    async def login(user: str, *extra: str) -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()
        lines = ["Action: Login", f"Username: {user}", "Secret: s", *extra]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        writer.write(b"Action: Login\r\nUsername: calls\r\nSecret: s\r\n\r\n")
        writer.write(b"Action: Logoff\r\n\r\n")
        messages = (await reader.read()).split(b"\r\n\r\n")
        writer.close()
        return [message.split(b"\r\n")[-1] for message in messages if message]

    try:
        accepted, again, bye = (
            b"Message: Authentication accepted",
            b"Message: Already authenticated",
            b"Message: Thanks for all the fish.",
        )
        assert await login("ops") == [accepted, b"Status: Fully Booted", again, bye]
        assert await login("ops", "Events: call") == [accepted, again, bye]
        assert await login("calls") == [accepted, again, bye]
    finally:
        await simulator.stop()


@pytest.mark.parametrize(
    ("read", "login_events", "classes"),
    [
        ("all", None, {"call", "cdr", "dialplan", "agi", "security"}),
        ("all", "call,cdr", {"call", "cdr"}),
        ("call,cdr", "on", {"call", "cdr"}),
        ("call,cdr", "y", {"call", "cdr"}),
        ("call,cdr", "n", set()),
        ("all", "1", set()),  # a numeric mask: 1 is "system", which no call event is
        ("all", "1026", {"call", "cdr"}),  # EVENT_FLAG_CALL | EVENT_FLAG_CDR
        ("call,dialplan", "none", set()),
    ],
)
def test_events_reach_a_session_as_asterisk_reads_read_classes_and_the_login_mask(
    read: str, login_events: str | None, classes: set[str]
) -> None:
    account = accounts_from_manager_conf(f"[u]\nsecret = s\nread = {read}\n")["u"]
    recorded = recorded_events(RECORDINGS / "answer.ami")
    sent = events_as_sent(account, recorded, login_events, timestamp_events=False)
    expected = [
        block
        for block in recorded
        if set(parse_message(block)["Privilege"].split(",")) - {"all"} <= classes
    ]
    assert sent == expected


async def test_simulator_lists_channels_with_the_headers_of_asterisks_core_show_channel() -> None:
    simulator = AmiSimulator(ACCOUNTS)
    port = await simulator.start()
    now = time.time()
    simulator.channel_up("1795371264.1", "053188889999", "4000000001", at=now - 65)
    simulator.dial("1795371264.1", "13800000011", at=now - 60)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.readline()
        writer.write(f"Action: Login\r\nUsername: {USER}\r\nSecret: {SECRET}\r\n\r\n".encode())
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"Action: CoreShowChannels\r\nActionID: 7\r\n\r\n")
        assert await reader.readuntil(b"\r\n\r\n") == (
            b"Response: Success\r\nActionID: 7\r\nEventList: start\r\n"
            b"Message: Channels will follow\r\n\r\n"
        )
        item = parse_message(await reader.readuntil(b"\r\n\r\n"))
        done = await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()
        await simulator.stop()
    # manager.c action_coreshowchannels: the channel's state headers, then these four
    assert list(item)[:3] == ["event", "actionid", "channel"]
    assert list(item)[-6:] == [
        "uniqueid",
        "linkedid",
        "application",
        "applicationdata",
        "duration",
        "bridgeid",
    ]
    assert (item["Uniqueid"], item["Application"]) == ("1795371264.1", "Dial")
    assert item["ApplicationData"] == "Local/13800000011@phones,20"  # as the Cdr's LastData
    assert item["Duration"] == "00:01:05"
    assert done == (
        b"Event: CoreShowChannelsComplete\r\nActionID: 7\r\n"
        b"EventList: Complete\r\nListItems: 1\r\n\r\n"
    )


async def test_a_caller_giving_up_while_the_destination_rings_ends_the_dial_as_recorded() -> None:
    names = ACCOUNTS[USER].event_names or frozenset()
    recorded = [
        event
        for event in map(parse_message, recorded_events(RECORDINGS / "caller_hangup.ami"))
        if event["Event"] in names and event.get("Uniqueid") == "1795371339.35"
    ]
    played: list[bytes] = []
    async with linked() as (simulator, link):
        for name in names:
            link.on_raw_event(name, played.append)
        await eventually(lambda: link.connected)
        simulator.channel_up("1795371339.35", "053188889999", "4000000007")
        simulator.dial("1795371339.35", "13800000031")
        simulator.hang_up("1795371339.35")
        await eventually(lambda: bool(played) and played[-1].startswith(b"Event: Cdr"))
    simulated = [parse_message(block) for block in played]
    shown = [(event["Event"], event.get("DialStatus")) for event in recorded]
    assert [(event["Event"], event.get("DialStatus")) for event in simulated] == [
        ("DialBegin", None),
        ("DialEnd", "CANCEL"),
        ("Hangup", None),
        ("Cdr", None),
    ]
    assert sorted(shown, key=str) == sorted(
        [("DialBegin", None), ("DialEnd", "CANCEL"), ("Cdr", None), ("Hangup", None)], key=str
    )  # Asterisk posts the Cdr before or after the Hangup: cdr_manager is not in step
    recorded_end, simulated_end = recorded[1], simulated[1]
    assert list(simulated_end) == list(recorded_end)
    assert simulated_end["DestChannelStateDesc"] == recorded_end["DestChannelStateDesc"]
    assert simulated[3]["Disposition"] == "NO ANSWER"


CALL_EVENTS = ("Newstate", "DialBegin", "DialEnd", "BridgeEnter", "BridgeLeave", "Hangup", "Cdr")


async def played_call(*, prompt: bool) -> list[AmiMessage]:
    """The events of call 1795371264.1 as the simulator plays it to an account reading
    call,cdr without filters: up at 18:14:20 UTC, answered by the router at 18:14:21 for
    a prompt (or not), dialled at :24, answered by the destination at :27, over at :30."""
    accounts = accounts_from_manager_conf(f"[{USER}]\nsecret = {SECRET}\nread = call,cdr\n")
    played: list[bytes] = []
    async with linked(AmiSimulator(accounts, zone=UTC)) as (simulator, link):
        for name in CALL_EVENTS:
            link.on_raw_event(name, played.append)
        await eventually(lambda: link.connected)
        began = datetime(2026, 11, 22, 18, 14, 20, tzinfo=UTC).timestamp()
        simulator.channel_up("1795371264.1", "053188889999", "4000000001", at=began)
        if prompt:
            simulator.answer_caller("1795371264.1", at=began + 1)
        simulator.dial("1795371264.1", "13800000011", at=began + 4)
        simulator.answer("1795371264.1", at=began + 7)
        simulator.hang_up("1795371264.1", at=began + 10)
        await eventually(lambda: bool(played) and played[-1].startswith(b"Event: Cdr"))
    return [parse_message(block) for block in played]


async def test_a_played_call_sends_the_inbound_channels_events_in_the_recorded_order() -> None:
    recorded = [
        (event["Event"], event.get("ChannelState"))
        for event in map(parse_message, recorded_events(RECORDINGS / "answer.ami"))
        if event["Event"] in CALL_EVENTS and event.get("Uniqueid") == "1795371264.1"
    ]
    assert recorded[-1] == recorded[-2] == ("Cdr", None)  # the Dial's, then the Hangup's
    played = [
        (event["Event"], event.get("ChannelState")) for event in await played_call(prompt=False)
    ]
    assert (
        played
        == recorded[:-1]
        == [
            ("DialBegin", "4"),
            ("DialEnd", "4"),
            ("Newstate", "6"),  # the Dial answers the caller's channel
            ("BridgeEnter", "6"),
            ("BridgeLeave", "6"),
            ("Hangup", "6"),
            ("Cdr", None),
        ]
    )


async def test_a_call_answered_for_a_prompt_is_up_when_it_dials_and_billed_from_then() -> None:
    events = await played_call(prompt=True)
    assert [(event["Event"], event.get("ChannelState")) for event in events] == [
        ("Newstate", "6"),
        ("DialBegin", "6"),
        ("DialEnd", "6"),
        ("BridgeEnter", "6"),
        ("BridgeLeave", "6"),
        ("Hangup", "6"),
        ("Cdr", None),
    ]
    cdr = events[-1]
    assert (cdr["AnswerTime"], cdr["BillableSeconds"]) == ("2026-11-22 18:14:21", "9")
    assert (cdr["Disposition"], cdr["Duration"]) == ("ANSWERED", "10")


@pytest.mark.parametrize(
    ("general", "stamped"),
    [
        (MANAGER_CONF.read_text(encoding="utf-8"), True),  # as shipped
        ("[general]\nenabled = yes\n", False),  # Asterisk's default
        ("[general]\ntimestampevents = 1\n[general2]\ntimestampevents = no\n", True),
        ("[general]\ntimestampevents = no\n[x]\ntimestampevents = yes\n", False),
    ],
)
def test_the_demo_server_stamps_events_as_its_manager_confs_general_section_says(
    general: str, stamped: bool
) -> None:
    assert timestamp_events_in(general) is stamped


async def test_simulator_closes_the_connection_after_a_refused_login() -> None:
    simulator = AmiSimulator(ACCOUNTS)
    port = await simulator.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.readline()
        writer.write(b"Action: Login\r\nUsername: hotline400\r\nSecret: guess\r\n\r\n")
        assert await reader.read() == b"Response: Error\r\nMessage: Authentication failed\r\n\r\n"
    finally:
        writer.close()
        await simulator.stop()


async def test_simulator_stamps_events_like_timestampevents() -> None:
    stamps: list[float] = []
    async with linked(AmiSimulator(ACCOUNTS, timestamp_events=True)) as (simulator, link):
        link.on_event("Hangup", lambda event: stamps.append(float(event["Timestamp"])))
        await replayed(simulator, link, "caller_hangup.ami")
    assert len(stamps) == 4
    assert all(abs(stamp - time.time()) < 5 for stamp in stamps)


@pytest.mark.parametrize("chunk", [1, 7, 1000, 1 << 20])
async def test_events_cut_anywhere_by_tcp_are_read_whole_and_stay_bytes(chunk: int) -> None:
    recorded = recorded_events(RECORDINGS / "answer.ami")
    stream = b"Asterisk Call Manager/11.0.0\r\n" + b"".join(recorded)
    received: list[bytes] = []
    connection = AmiConnection(received.append, asyncio.get_running_loop().create_future())
    for start in range(0, len(stream), chunk):
        connection.data_received(stream[start : start + chunk])
    assert received == [block.removesuffix(b"\r\n\r\n") for block in recorded]
    assert connection.version == "11.0.0"


def test_a_header_is_read_from_the_bytes_and_a_parsed_event_ignores_case() -> None:
    dial_begin = next(
        block.removesuffix(b"\r\n\r\n")
        for block in recorded_events(RECORDINGS / "answer.ami")
        if block.startswith(b"Event: DialBegin") and b"\r\nUniqueid: " in block
    )
    assert header(dial_begin, b"Uniqueid") == b"1795371264.1"
    assert header(dial_begin, b"DestUniqueid") == b"1795371264.2"
    assert header(dial_begin, b"DialString") == b"13800000011@phones"
    assert header(dial_begin, b"NoSuchHeader") is None
    event = parse_message(dial_begin)
    assert event["event"] == "DialBegin" and event.get("UNIQUEID") == "1795371264.1"
    assert "AccountCode" in event and event["AccountCode"] == ""


@pytest.mark.parametrize("recording", ["answer.ami", "busy_forward.ami", "misc.ami"])
def test_an_event_read_header_by_header_says_what_the_parsed_event_says(recording: str) -> None:
    for block in recorded_events(RECORDINGS / recording):
        raw = block.removesuffix(b"\r\n\r\n")
        parsed, lazy = parse_message(raw), AmiEvent(raw)
        assert dict(lazy) == parsed
        spelt = [line.partition(":")[0] for line in raw.decode().split("\r\n")]
        for name in [*parsed, *spelt, "NoSuchHeader", "uniqueid", "UNIQUEID", "Event"]:
            assert lazy.get(name) == parsed.get(name)
            assert (name in lazy) == (name in parsed)


@pytest.mark.parametrize("interval", [0.0, 0.2])
async def test_events_written_one_by_one_are_read_in_batches_of_the_read_interval(
    interval: float,
) -> None:
    """The first event after a quiet spell is read at once, the ones written within the
    read interval after it in one read when the interval is over; with 0, each as it comes."""
    hangup = next(
        block
        for block in recorded_events(RECORDINGS / "answer.ami")
        if block.startswith(b"Event: Hangup\r\n")
    )
    loop = asyncio.get_running_loop()
    handled: list[float] = []
    async with linked(read_interval=interval) as (simulator, link):
        link.on_event("Hangup", lambda _: handled.append(loop.time()))
        await eventually(lambda: link.connected)
        await asyncio.sleep(interval + 0.05)  # the login reply's pause is over
        for _ in range(5):
            simulator.send([hangup])
            await asyncio.sleep(0.02)
        await eventually(lambda: len(handled) == 5)
    gaps = [later - earlier for earlier, later in pairwise(handled)]
    if interval:
        assert gaps[0] >= interval - 0.03 and max(gaps[1:]) < 0.005
    else:
        assert min(gaps) >= 0.01


async def test_getvar_reads_the_answer_stamp_of_a_channel_named_or_given_by_uniqueid() -> None:
    """Asterisk's Getvar finds the channel by its name, case aside, or by its uniqueid
    (manager.c action_getvar, ast_channel_get_by_name), and reads SHARED() on it: the
    answer stamp as the UTC date and time to the ms; "" where nothing was stamped."""
    async with linked() as (simulator, link):
        await eventually(lambda: link.connected)
        channel = simulator.channel_up("1796700000.7", "13905310001", "4006001234", at=1.0)
        simulator.answer_caller("1796700000.7", at=2.0)
        simulator.dial("1796700000.7", "13800000011", at=3.0)
        simulator.answer("1796700000.7", at=1796700000.1239)
        by_name = await link.variable(channel.name.upper(), "SHARED(HOTLINE_ANSWERED)")
        by_uniqueid = await link.variable("1796700000.7", "SHARED(HOTLINE_ANSWERED)")
        other = await link.variable(channel.name, "SHARED(SOMETHING_ELSE)")
    assert by_name == by_uniqueid == "2026-12-08T03:20:00.123"
    assert other == ""
