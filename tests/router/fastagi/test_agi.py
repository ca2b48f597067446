"""The FastAGI session reader/writer, fed byte for byte what a real Asterisk 22 sent.

Each test plays Asterisk's side from recorded bytes over real TCP: the environment block,
then for every command the session sends, the next recorded reply.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from router.fastagi.connection import AGIConnection
from router.fastagi.errors import (
    AGIConnectionClosed,
    AGIHeaderIncomplete,
    AGIHeaderTimeout,
    AGIHeaderTooLarge,
    AGIMalformedHeader,
    AGIMalformedReply,
    AGIProtocolError,
    AGIReplyTimeout,
)
from router.fastagi.protocol import MAX_COMMAND_BYTES, AGISession, parse_result_line
from tests.router.fastagi.sessions import connect

ENV_LINES = [
    "agi_network: yes",
    "agi_network_script: 4000000007",
    "agi_request: agi://127.0.0.1:4573/4000000007",
    "agi_channel: Local/4000000007@inbound-400-00000011;2",
    "agi_language: en",
    "agi_type: Local",
    "agi_uniqueid: 1795371339.35",
    "agi_version: 22.10.1",
    "agi_callerid: 053188889999",
    "agi_calleridname: Test Caller",
    "agi_callingpres: 0",
    "agi_callingani2: 0",
    "agi_callington: 0",
    "agi_callingtns: 0",
    "agi_dnid: unknown",
    "agi_rdnis: unknown",
    "agi_context: inbound-400",
    "agi_extension: 4000000007",
    "agi_priority: 2",
    "agi_enhanced: 0.0",
    "agi_accountcode: ",
    "agi_threadid: 140520572929728",
]
ENV_BLOCK = "".join(line + "\n" for line in ENV_LINES).encode() + b"\n"
DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"
USAGE_GET_DATA = (
    b"520-Invalid command syntax.  Proper usage follows:\n"
    b"Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
    b"Returns the digits received from the channel at the other end.\n"
    b"520 End of proper usage.\n"
)

Reply = bytes | tuple[float, bytes] | None
"""Recorded reply bytes, optionally sent after a delay in seconds; None never answers."""


class ScriptedAsterisk:
    """Asterisk's side from a recording: sends the environment, then answers each
    command with the next recorded reply; afterwards closes or waits for the session."""

    def __init__(self, header: bytes, replies: list[Reply], close_at_end: bool) -> None:
        self.header = header
        self.replies = replies
        self.close_at_end = close_at_end
        self.received: list[str] = []
        self.done = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(self.header)
            for reply in self.replies:
                line = await reader.readline()
                if not line or reply is None:
                    break
                self.received.append(line.decode().removesuffix("\n"))
                delay, data = reply if isinstance(reply, tuple) else (0.0, reply)
                await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
            if not self.close_at_end:
                await reader.read()
            writer.close()
            await writer.wait_closed()
        except ConnectionError:
            pass
        finally:
            self.done.set()


Connect = Callable[..., Awaitable[tuple[AGISession, ScriptedAsterisk]]]


@pytest.fixture
async def asterisk() -> AsyncIterator[Connect]:
    servers: list[asyncio.Server] = []
    connected: list[tuple[AGISession, ScriptedAsterisk]] = []

    async def session_with(
        replies: list[Reply],
        *,
        close_at_end: bool = False,
        max_line: int | None = None,
        after_header: bytes = b"",
        **options: float | None,
    ) -> tuple[AGISession, ScriptedAsterisk]:
        script = ScriptedAsterisk(ENV_BLOCK + after_header, replies, close_at_end)
        server = await asyncio.start_server(script.handle, "127.0.0.1", 0)
        servers.append(server)
        limits = {} if max_line is None else {"max_line": max_line}
        connection = await connect(*server.sockets[0].getsockname()[:2], **limits)
        session = AGISession(connection, await connection.environment(), **options)
        connected.append((session, script))
        return session, script

    yield session_with
    for session, script in connected:
        await session.close()
        await asyncio.wait_for(script.done.wait(), 2)
    for server in servers:
        server.close()
        await server.wait_closed()


async def header_from(payload: bytes, *, close: bool, **limits: float) -> dict[str, str]:
    """The environment read from a peer that sends `payload`, then closes or holds."""
    done = asyncio.Event()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(payload)
            await writer.drain()
            if not close:
                await reader.read()
            writer.close()
            await writer.wait_closed()
        except ConnectionError:
            pass
        finally:
            done.set()

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    connection = await connect(*server.sockets[0].getsockname()[:2], **limits)
    try:
        return await connection.environment()
    finally:
        connection.close()
        await asyncio.wait_for(done.wait(), 2)
        server.close()
        await server.wait_closed()


# --- the environment block -----------------------------------------------------------------


async def test_environment_is_read_in_full_with_empty_values_kept() -> None:
    env = await header_from(ENV_BLOCK, close=False)
    assert list(env) == [line.split(":", 1)[0] for line in ENV_LINES]
    assert env["agi_extension"] == "4000000007"
    assert env["agi_dnid"] == "unknown"
    assert env["agi_accountcode"] == ""
    assert env["agi_calleridname"] == "Test Caller"


async def test_environment_includes_agi_arguments() -> None:
    block = ENV_BLOCK[:-1] + b"agi_arg_1: first arg\nagi_arg_2: second\n\n"
    env = await header_from(block, close=False)
    assert env["agi_arg_1"] == "first arg"
    assert env["agi_arg_2"] == "second"


async def test_header_that_never_ends_times_out() -> None:
    with pytest.raises(AGIHeaderTimeout):
        await header_from(ENV_BLOCK[:200], close=False, header_timeout=0.2)


async def test_header_cut_by_eof_is_incomplete_not_a_spin() -> None:
    with pytest.raises(AGIHeaderIncomplete):
        await asyncio.wait_for(header_from(ENV_BLOCK[:200], close=True), timeout=2)


async def test_one_mebibyte_header_line_is_too_large() -> None:
    with pytest.raises(AGIHeaderTooLarge):
        await header_from(b"agi_network: " + b"y" * (1 << 20), close=False)


async def test_many_lines_beyond_the_byte_limit_are_too_large() -> None:
    lines = b"".join(b"agi_x%d: %s\n" % (n, b"v" * 50) for n in range(100))
    with pytest.raises(AGIHeaderTooLarge):
        await header_from(lines + b"\n", close=False, header_max_bytes=4096)


@pytest.mark.parametrize(
    "junk",
    [
        bytes(range(256)) + b"\n\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"agi_network: yes\nagi_bad: \x00\x01\x02\n\n",
        b"agi_network yes\n\n",
    ],
)
async def test_lines_that_are_not_agi_headers_are_refused(junk: bytes) -> None:
    with pytest.raises(AGIMalformedHeader):
        await header_from(junk, close=False)


class _Socket(asyncio.Transport):
    """What a connection fed by hand writes to: nothing, closed on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def close(self) -> None:
        self.closed = True


def _fed(reads: list[bytes], **limits: int) -> AGIConnection:
    connection, socket = AGIConnection(**limits), _Socket()
    connection.connection_made(socket)
    for read in reads:
        if not socket.closed:  # a refused header closes the connection: nothing more is read
            connection.data_received(read)
    connection.close()
    return connection


def _as_asterisk_writes(block: bytes) -> list[bytes]:
    """Asterisk writes the environment a line a write, the blank line last."""
    return [line + b"\n" for line in block.split(b"\n")[:-1]]


async def test_an_environment_read_a_line_at_a_time_is_the_one_read_whole() -> None:
    whole = _fed([ENV_BLOCK + b"HANGUP\n"])
    by_line = _fed([*_as_asterisk_writes(ENV_BLOCK), b"HANGUP\n"])
    assert by_line.env == whole.env
    assert list(by_line.env or {}) == [line.split(":", 1)[0] for line in ENV_LINES]
    assert list(by_line.lines) == list(whole.lines) == [b"HANGUP"]


async def test_an_environment_split_anywhere_is_read_the_same() -> None:
    block = ENV_BLOCK[:-1] + b"agi_arg_1: first arg\n\n"
    whole = _fed([block]).env
    for at in range(1, len(block)):
        assert _fed([block[:at], block[at:]]).env == whole, at


@pytest.mark.parametrize(
    ("block", "limits", "error"),
    [
        (ENV_BLOCK[:100] + b"\nGET / HTTP/1.1\n" + ENV_BLOCK[100:], {}, AGIMalformedHeader),
        (ENV_BLOCK[:-1] + b"agi_bad: \x00\n\n", {}, AGIMalformedHeader),
        (ENV_BLOCK, {"header_max_bytes": len(ENV_BLOCK) - 1}, AGIHeaderTooLarge),
    ],
)
async def test_a_header_refused_whole_is_refused_read_a_line_at_a_time(
    block: bytes, limits: dict[str, int], error: type[AGIProtocolError]
) -> None:
    for reads in ([block], _as_asterisk_writes(block)):
        connection = _fed(reads, **limits)
        assert connection.env is None
        with pytest.raises(error):
            await connection.environment()


def test_every_failure_is_an_agi_protocol_error() -> None:
    for error in (
        AGIHeaderTimeout,
        AGIHeaderIncomplete,
        AGIHeaderTooLarge,
        AGIMalformedHeader,
        AGIConnectionClosed,
        AGIReplyTimeout,
        AGIMalformedReply,
    ):
        assert issubclass(error, AGIProtocolError)


# --- replies -------------------------------------------------------------------------------


async def test_answered_dial_result_minus_one_is_not_an_error(asterisk: Connect) -> None:
    session, script = await asterisk(
        [b"200 result=-1\n", b"200 result=1 (ANSWER)\n", b"200 result=1 (3)\n"]
    )
    reply = await session.exec("Dial", "Local/13800000011@phones,20")
    assert (reply.ok, reply.result, reply.result_int) == (True, "-1", -1)
    assert await session.get_variable("DIALSTATUS") == "ANSWER"
    assert await session.get_variable("ANSWEREDTIME") == "3"
    assert script.received == [
        'EXEC Dial "Local/13800000011@phones,20"',
        "GET VARIABLE DIALSTATUS",
        "GET VARIABLE ANSWEREDTIME",
    ]
    assert not session.hung_up


async def test_busy_dial_returns_zero_and_empty_times(asterisk: Connect) -> None:
    session, _ = await asterisk(
        [b"200 result=0\n", b"200 result=1 (BUSY)\n", b"200 result=1 ()\n", b"200 result=0\n"]
    )
    assert (await session.exec("Dial", "Local/13800000021@phones,20")).result == "0"
    assert await session.get_variable("DIALSTATUS") == "BUSY"
    assert await session.get_variable("ANSWEREDTIME") == ""
    assert await session.get_variable("NOSUCHVAR") is None


async def test_dial_variables_come_back_in_one_full_variable_round_trip(
    asterisk: Connect,
) -> None:
    # agi-vas/full_variable_batch.txt, fact 25
    session, script = await asterisk([b"200 result=1 (ANSWER,3,3)\n", b"200 result=1 (BUSY,,)\n"])
    assert await session.get_variables("DIALSTATUS", "ANSWEREDTIME", "DIALEDTIME") == [
        "ANSWER",
        "3",
        "3",
    ]
    assert await session.get_variables("DIALSTATUS", "ANSWEREDTIME", "DIALEDTIME") == [
        "BUSY",
        "",
        "",
    ]
    assert script.received == ["GET FULL VARIABLE ${DIALSTATUS},${ANSWEREDTIME},${DIALEDTIME}"] * 2


async def test_variables_are_set_with_one_mset_and_odd_values_on_their_own(
    asterisk: Connect,
) -> None:
    session, script = await asterisk([b"200 result=1\n", b"200 result=1\n", b"200 result=0\n"])
    await session.set_variables(
        {"HOTLINE_STATUS": "answered", "HOTLINE_DEST": "", "A": "x,y", "B": 'say "hi"', "C": "早"}
    )
    assert script.received == [
        'SET VARIABLE A "x,y"',
        'SET VARIABLE B "say \\"hi\\""',
        'EXEC MSet "HOTLINE_STATUS=answered,HOTLINE_DEST=,C=早"',
    ]


async def test_hangup_line_before_next_result_is_a_state_change_not_a_reply(
    asterisk: Connect,
) -> None:
    session, script = await asterisk(
        [
            b"200 result=-1\n",
            b"HANGUP\n200 result=1 (CANCEL)\n",
            b"200 result=1 (053188889999)\n",
            b"200 result=1\n",
        ]
    )
    await session.exec("Dial", "Local/13800000031@phones,20")
    assert not session.hung_up
    assert await session.get_variable("DIALSTATUS") == "CANCEL"
    assert session.hung_up and session.hangup_event.is_set()
    assert await session.get_variable("CALLERID(num)") == "053188889999"
    assert (await session.set_variable("HOTLINE_STATUS", "noanswer")).raw == ["200 result=1"]
    assert script.received[-1] == 'SET VARIABLE HOTLINE_STATUS "noanswer"'


async def test_usage_block_is_read_to_its_closing_line(asterisk: Connect) -> None:
    session, _ = await asterisk([USAGE_GET_DATA, b"200 result=1\n", b'200 result=1 (a b "c" d)\n'])
    usage = await session.command("GET DATA")
    assert usage.code == 520 and not usage.ok
    assert usage.data == (
        "Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
        "Returns the digits received from the channel at the other end."
    )
    assert len(usage.raw) == 4
    assert (await session.set_variable("QUOTED", 'a b "c" d')).result == "1"
    assert await session.get_variable("QUOTED") == 'a b "c" d'


async def test_unknown_command_and_unknown_application(asterisk: Connect) -> None:
    session, _ = await asterisk([b"510 Invalid or unknown command\n", b"200 result=-2\n"])
    unknown = await session.command("FOO BAR")
    assert (unknown.code, unknown.message) == (510, "Invalid or unknown command")
    assert (await session.exec("NoSuchApp", "foo")).result == "-2"


async def test_dead_channel_commands_come_back_as_511_without_raising(
    asterisk: Connect,
) -> None:
    session, _ = await asterisk(
        [
            b"200 result=-1\n",
            b"HANGUP\n200 result=1 (053188889999)\n",
            DEAD,
            DEAD,
            DEAD,
            b"200 result=1\n",
            b"200 result=-1\n",
            b"200 result=1 (CANCEL)\n",
        ]
    )
    assert (await session.command("WAIT FOR DIGIT 10000")).result == "-1"
    assert await session.get_variable("CALLERID(num)") == "053188889999"
    assert (await session.answer()).code == 511
    assert session.dead and session.hung_up
    assert await session.get_data("beep", 1000, 2) == (None, False)
    assert (await session.stream_file("beep")).code == 511
    assert (await session.verbose("agi still talking after hangup")).ok
    assert (await session.exec("Dial", "Local/13800000011@phones,20")).result == "-1"
    assert await session.get_variable("DIALSTATUS") == "CANCEL"


async def test_hangup_command_is_followed_by_a_hangup_line(asterisk: Connect) -> None:
    session, _ = await asterisk([b"200 result=1\n", b"HANGUP\n200 result=1 (053188889999)\n", DEAD])
    assert (await session.hangup()).result == "1"
    assert await session.get_variable("CALLERID(num)") == "053188889999"
    assert session.hung_up
    assert (await session.stream_file("beep")).code == 511


async def test_cancelled_command_leaves_the_session_unusable(asterisk: Connect) -> None:
    session, _ = await asterisk([None])
    dial = asyncio.create_task(session.exec("Dial", "Local/13800000031@phones,20"))
    await asyncio.sleep(0.05)
    dial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dial
    with pytest.raises(AGIProtocolError):
        await session.command("NOOP")


async def test_get_data_tells_digits_from_timeouts(asterisk: Connect) -> None:
    session, script = await asterisk(
        [
            b"200 result=1234\n",
            b"200 result= (timeout)\n",
            b"200 result=99 (timeout)\n",
            b"200 result=-1\n",
        ]
    )
    assert await session.get_data("beep", 5000, 5) == ("1234", False)
    assert await session.get_data("beep", 3000, 4) == ("", True)
    assert await session.get_data("beep", 2000, 4) == ("99", True)
    assert await session.get_data("no-such-prompt", 1000, 4) == (None, False)
    assert script.received[0] == "GET DATA beep 5000 5"


async def test_stream_file_interrupted_by_a_key_gives_the_digit_and_position(
    asterisk: Connect,
) -> None:
    session, script = await asterisk(
        [b"200 result=53 endpos=5760\n", b"200 result=0 endpos=2400\n"]
    )
    interrupted = await session.stream_file("demo-congrats", "0123456789#*")
    assert (interrupted.digit, interrupted.endpos) == ("5", 5760)
    played = await session.stream_file("beep")
    assert (played.digit, played.endpos) == (None, 2400)
    assert script.received == ['STREAM FILE demo-congrats "0123456789#*"', 'STREAM FILE beep ""']


async def test_intermediate_100_line_is_skipped(asterisk: Connect) -> None:
    session, _ = await asterisk([b"100 result=0 Trying...\n200 result=0 (timeout) endpos=8000\n"])
    reply = await session.command('RECORD FILE msg wav "#" 1000')
    assert (reply.result, reply.data, reply.endpos) == ("0", "timeout", 8000)


async def test_hangup_on_half_close_then_eof_raises_connection_closed(
    asterisk: Connect,
) -> None:
    session, _ = await asterisk([b"200 result=6\n", b"HANGUP\n"], close_at_end=True)
    assert (await session.command("CHANNEL STATUS")).result == "6"
    with pytest.raises(AGIConnectionClosed):
        await session.command("NOOP")
    assert session.hung_up
    with pytest.raises(AGIConnectionClosed):
        await session.command("NOOP")


async def test_reply_timeout_leaves_the_session_unusable(asterisk: Connect) -> None:
    session, _ = await asterisk([None], command_timeout=0.1)
    with pytest.raises(AGIReplyTimeout):
        await session.answer()
    with pytest.raises(AGIReplyTimeout):
        await session.command("NOOP")


async def test_dial_waits_past_the_command_timeout(asterisk: Connect) -> None:
    """Dial answers when the call is over, which may be hours: no reply timeout (the
    listener's TCP keepalive notices a peer gone without a word)."""
    session, _ = await asterisk([(0.3, b"200 result=-1\n")], command_timeout=0.05)
    assert (await session.exec("Dial", "Local/13800000011@phones,20")).result == "-1"


async def test_get_data_has_its_own_wait_for_keys_beyond_the_command_timeout(
    asterisk: Connect,
) -> None:
    """The command timeout is for the prompt to play; GET DATA then waits up to its timeout
    for each key it reads, so a prompt that fits and a caller keying slowly lose no call."""
    session, _ = await asterisk(
        [(0.2, b"200 result= (timeout)\n"), (0.3, b"200 result=12 (timeout)\n")],
        command_timeout=0.1,
    )
    assert await session.get_key("menu", 150) == ""
    assert await session.get_data("pin", 150, 2) == ("12", True)


@pytest.mark.parametrize("app", ["Progress", "Playback", "MixMonitor", "MSet"])
async def test_every_other_application_is_cut_at_the_command_timeout(
    asterisk: Connect, app: str
) -> None:
    """A peer that stops answering must not hold a call for ever: only Dial may run long."""
    session, _ = await asterisk([None], command_timeout=0.1)
    with pytest.raises(AGIReplyTimeout):
        await session.exec(app, "x")


async def test_overlong_reply_line_is_malformed(asterisk: Connect) -> None:
    session, _ = await asterisk([b"200 result=1 (" + b"x" * 40000 + b")\n"], max_line=16384)
    with pytest.raises(AGIMalformedReply):
        await session.get_variable("HUGE")


async def test_a_hangup_sent_with_the_header_is_noted_at_the_first_command(
    asterisk: Connect,
) -> None:
    session, _ = await asterisk([b"200 result=1 (053188889999)\n"], after_header=b"HANGUP\n")
    assert await session.get_variable("CALLERID(num)") == "053188889999"
    assert session.hung_up


async def test_a_flood_of_lines_nobody_asked_for_is_malformed(asterisk: Connect) -> None:
    session, _ = await asterisk([b"200 result=1\n" * 2000])
    with pytest.raises(AGIMalformedReply):
        await session.command("NOOP")


async def test_a_reply_sent_before_its_command_is_not_taken_for_the_commands_reply(
    asterisk: Connect,
) -> None:
    """Asterisk sends nothing unasked but HANGUP: a result line already waiting when a
    command goes out answers no command of this session, and every later reply would be
    read one command late."""
    session, _ = await asterisk(
        [b"200 result=1 (for A)\n"], after_header=b"HANGUP\n200 result=1 (unasked)\n"
    )
    with pytest.raises(AGIMalformedReply, match="unasked"):
        await session.get_variable("A")
    assert session.hung_up
    with pytest.raises(AGIMalformedReply):
        await session.command("NOOP")


async def test_reply_that_is_not_agi_is_malformed(asterisk: Connect) -> None:
    session, _ = await asterisk([b"Stream the given file\n"])
    with pytest.raises(AGIMalformedReply):
        await session.command("NOOP")


async def test_concurrent_commands_are_serialised(asterisk: Connect) -> None:
    session, script = await asterisk([b"200 result=1 (first)\n", b"200 result=1 (second)\n"])
    a, b = await asyncio.gather(session.get_variable("A"), session.get_variable("B"))
    got = {"GET VARIABLE A": a, "GET VARIABLE B": b}
    assert [got[command] for command in script.received] == ["first", "second"]


async def test_commands_that_asterisk_would_split_are_refused(asterisk: Connect) -> None:
    session, script = await asterisk([])
    with pytest.raises(ValueError):
        await session.command("ANSWER\nHANGUP")
    with pytest.raises(ValueError):
        await session.command("VERBOSE " + "x" * MAX_COMMAND_BYTES)
    with pytest.raises(ValueError):
        await session.get_variable("A B")
    with pytest.raises(ValueError):
        await session.exec("Dial;x", "")
    assert script.received == []


def test_result_lines_keep_parentheses_and_endpos_apart() -> None:
    assert parse_result_line("200 result=1 (a (b) c)").data == "a (b) c"
    tricky = parse_result_line("200 result=1 (x) endpos=5)")
    assert (tricky.data, tricky.endpos) == ("x) endpos=5", None)
    recorded = parse_result_line("200 result=0 (timeout) endpos=1234")
    assert (recorded.data, recorded.endpos) == ("timeout", 1234)
    assert parse_result_line("200 result=1 ()").data == ""
    assert parse_result_line("200 result=0").data is None
    full = parse_result_line('200 result=1 (13800000011 "Test" <053188889999>)')
    assert full.data == '13800000011 "Test" <053188889999>'


@pytest.mark.parametrize(
    "line",
    [
        b"200 result=0 endpos=" + b"9" * 5000 + b"\n",
        b"200 result=0 (dtmf) endpos=" + b"9" * 5000 + b"\n",
        b"200 result=0 endpos=" + "\u0663".encode() * 5000 + b"\n",
        b"200 result=0 (x y) endpos=-" + b"1" * 5000 + b"\n",
    ],
)
async def test_an_endpos_too_long_for_a_number_is_malformed_not_a_crash(
    asterisk: Connect, line: bytes
) -> None:
    """Python refuses to read an integer of more than 4300 digits (ValueError): a reply
    carrying one is a peer that is not Asterisk, and ends the session as any other
    malformed reply does."""
    session, _ = await asterisk([line])
    with pytest.raises(AGIMalformedReply):
        await session.command("STREAM FILE x 1")
