"""The Asterisk protocol simulator answers as the recorded Asterisk 22 did.

A tiny FastAGI server in each test sends the commands of a recording, one at a time,
and the lines the simulator sends back must be the recorded ones. Transcripts use the
recordings' markers: `>>` sent by the FastAGI server, `<<` sent by Asterisk.
"""

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta

import pytest

from router.fastagi.errors import AGIProtocolError
from router.fastagi.protocol import AGISession
from router.simulation.asterisk_agi import (
    ANSWER_S,
    DEAD_CHANNEL,
    CallerHangup,
    CallResult,
    Outcome,
    SimulatedCall,
    connect_and_close,
    recorded_destinations,
    run_call,
    run_calls,
    send_binary_junk,
    send_header_without_end,
    send_oversized_header,
    split_agi_args,
)
from tests.router.fastagi.sessions import serve_sessions

HALF_CLOSE = "-- server half-closes"
Wire = list[tuple[str, str]]


def parse(transcript: str) -> Wire:
    wire = []
    for line in transcript.strip().splitlines():
        marker, _, text = line.partition(" ")
        wire.append((marker, text) if marker in ("<<", ">>") else ("--", line))
    return wire


def without_peer_sequence(wire: Wire) -> Wire:
    """DIALEDPEERNAME carries Asterisk's running channel counter: mask it."""
    return [(marker, re.sub(r"-[0-9a-f]{8};1\)", "-<seq>;1)", text)) for marker, text in wire]


async def play(transcript: str, call: SimulatedCall) -> tuple[Wire, CallResult, list[str]]:
    """Send the transcript's commands to the simulator; return what came back on the
    wire (in transcript form), the simulator's own result, and the environment lines."""
    expected = parse(transcript)
    wire: Wire = []
    env_lines: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (line := (await reader.readline()).decode()) != "\n":
            env_lines.append(line.removesuffix("\n"))
        for marker, text in expected:
            if marker == ">>":
                writer.write(text.encode() + b"\n")
                wire.append((">>", text))
            elif marker == "<<":
                wire.append(("<<", (await reader.readline()).decode().removesuffix("\n")))
            elif text == HALF_CLOSE:
                writer.write_eof()
                wire.extend(("<<", line) for line in (await reader.read()).decode().splitlines())
                break
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        host, port = server.sockets[0].getsockname()[:2]
        result = await asyncio.wait_for(run_call(host, port, call, timeout=5), 10)
    assert result.error is None
    return wire, result, env_lines


def assert_same(wire: Wire, result: CallResult, transcript: str) -> None:
    """The wire matches the recording, and the simulator's own record matches the wire."""
    expected = [(marker, text) for marker, text in parse(transcript) if marker != "--"]
    assert without_peer_sequence(wire) == without_peer_sequence(expected)
    assert result.transcript == wire


async def assert_replays(transcript: str, call: SimulatedCall) -> CallResult:
    wire, result, _ = await play(transcript, call)
    assert_same(wire, result, transcript)
    return result


# --- recordings, replayed -------------------------------------------------------------------

BUSY_THEN_FORWARD = """
>> EXEC Dial "Local/13800000021@phones,20"
<< 200 result=0
>> GET VARIABLE DIALSTATUS
<< 200 result=1 (BUSY)
>> GET VARIABLE ANSWEREDTIME
<< 200 result=1 ()
>> GET VARIABLE DIALEDTIME
<< 200 result=1 ()
>> EXEC Dial "Local/13800000011@phones,20"
<< 200 result=-1
>> GET VARIABLE DIALSTATUS
<< 200 result=1 (ANSWER)
>> GET VARIABLE ANSWEREDTIME
<< 200 result=1 (3)
>> GET VARIABLE DIALEDTIME
<< 200 result=1 (3)
-- server half-closes
<< HANGUP
"""

RECORDED_ENV_BUSY_THEN_FORWARD = [
    "agi_network: yes",
    "agi_network_script: 4000000002",
    "agi_request: agi://127.0.0.1:4573/4000000002",
    "agi_channel: Local/4000000002@inbound-400-00000002;2",
    "agi_language: en",
    "agi_type: Local",
    "agi_uniqueid: 1795371273.5",
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
    "agi_extension: 4000000002",
    "agi_priority: 2",
    "agi_enhanced: 0.0",
    "agi_accountcode: ",
    "agi_threadid: 140520573441728",
]


async def test_busy_then_forward_replays_with_the_recorded_environment() -> None:
    call = SimulatedCall(
        dialled="4000000002",
        script="4000000002",
        priority="2",
        uniqueid="1795371273.5",
        channel="Local/4000000002@inbound-400-00000002;2",
    )
    wire, result, env_lines = await play(BUSY_THEN_FORWARD, call)
    assert_same(wire, result, BUSY_THEN_FORWARD)
    normalised = [
        re.sub(r"(agi_request: agi://127\.0\.0\.1:)\d+", r"\g<1>4573", line) for line in env_lines
    ]
    assert normalised[:-1] == RECORDED_ENV_BUSY_THEN_FORWARD[:-1]
    assert re.fullmatch(r"agi_threadid: \d+", normalised[-1])
    assert [dial.status for dial in result.dials] == ["BUSY", "ANSWER"]
    assert not result.answered


FULL_VARIABLE_BATCH = """
>> EXEC Dial "Local/13800000011@phones,20"
<< 200 result=-1
>> GET FULL VARIABLE ${DIALSTATUS},${ANSWEREDTIME},${DIALEDTIME}
<< 200 result=1 (ANSWER,3,3)
>> EXEC Set "HOTLINE_STATUS=answered"
<< 200 result=0
>> EXEC Set "HOTLINE_DEST=13800000011"
<< 200 result=0
>> EXEC MSet "A=1,B=2"
<< 200 result=0
>> GET FULL VARIABLE ${HOTLINE_STATUS}|${HOTLINE_DEST}|${A}|${B}
<< 200 result=1 (answered|13800000011|1|2)
-- server half-closes
<< HANGUP
"""


async def test_full_variable_batch_reads_and_sets_several_variables_at_once() -> None:
    # agi-vas/full_variable_batch.txt (fact 25)
    result = await assert_replays(FULL_VARIABLE_BATCH, SimulatedCall(dialled="4000000107"))
    assert result.variables["A"] == "1"


MSET_EDGES = """
>> EXEC MSet "EMPTY=,EQ=a=b,PAREN=f(x\\,y),QUOTED=\\"c,d\\",NOEQUALS"
<< 200 result=0
>> GET FULL VARIABLE ${EMPTY}|${EQ}|${PAREN}|${QUOTED}|${NOEQUALS}
<< 200 result=1 (|a=b|f(x,y)|c,d|)
-- server half-closes
<< HANGUP
"""


async def test_mset_splits_its_argument_as_asterisk_does() -> None:
    # Not recorded: Asterisk's argument splitting (__ast_app_separate_args in main/app.c)
    # as MSet uses it: a trailing '=' sets an empty value, the value keeps later '=',
    # parentheses and quotes hold commas, an entry without '=' is ignored
    result = await assert_replays(MSET_EDGES, SimulatedCall())
    assert result.variables["EMPTY"] == "" and "NOEQUALS" not in result.variables


CALLER_HANGS_UP_WHILE_RINGING = """
>> EXEC Dial "Local/13800000031@phones,20"
<< 200 result=-1
>> GET VARIABLE DIALSTATUS
<< HANGUP
<< 200 result=1 (CANCEL)
>> GET VARIABLE CALLERID(num)
<< 200 result=1 (053188889999)
>> SET VARIABLE HOTLINE_STATUS "noanswer"
<< 200 result=1
-- server half-closes
<< HANGUP
"""


async def test_caller_hangs_up_while_ringing() -> None:
    call = SimulatedCall(dialled="4000000007", hangup=CallerHangup.during_dial(1, after_s=4.0))
    result = await assert_replays(CALLER_HANGS_UP_WHILE_RINGING, call)
    assert result.hung_up_by == "caller"
    assert result.hangup_lines == 2
    assert result.variables["HOTLINE_STATUS"] == "noanswer"
    assert result.dials[0].ring_s == 4.0


E1_GETDATA_PIN = """
>> ANSWER
<< 200 result=0
>> GET DATA beep 5000 5
<< 200 result=1234
>> GET DATA beep 3000 5
<< 200 result= (timeout)
>> STREAM FILE beep ""
<< 200 result=0 endpos=3520
>> WAIT FOR DIGIT 2000
<< 200 result=0
>> GET DATA beep 2000
<< 200 result= (timeout)
-- server half-closes
<< HANGUP
"""


async def test_e1_getdata_pin() -> None:
    result = await assert_replays(E1_GETDATA_PIN, SimulatedCall(dtmf=("1234#",)))
    assert result.answered


F1_HANGUP_DURING_COMMAND = """
>> ANSWER
<< 200 result=0
>> GET VARIABLE CALLERID(num)
<< 200 result=1 (053188889999)
>> WAIT FOR DIGIT 10000
<< 200 result=-1
>> GET VARIABLE CALLERID(num)
<< HANGUP
<< 200 result=1 (053188889999)
>> SET VARIABLE AFTER_HANGUP yes
<< 200 result=1
>> GET VARIABLE AFTER_HANGUP
<< 200 result=1 (yes)
>> CHANNEL STATUS
<< 511 Command Not Permitted on a dead channel or intercept routine
>> STREAM FILE beep ""
<< 511 Command Not Permitted on a dead channel or intercept routine
>> WAIT FOR DIGIT 1000
<< 511 Command Not Permitted on a dead channel or intercept routine
>> GET DATA beep 1000 2
<< 511 Command Not Permitted on a dead channel or intercept routine
>> ANSWER
<< 511 Command Not Permitted on a dead channel or intercept routine
>> VERBOSE "agi still talking after hangup" 1
<< 200 result=1
>> EXEC Verbose "1,exec after hangup"
<< 200 result=0
>> NOOP
<< 200 result=0
>> EXEC Dial "Local/13800000011@phones,20"
<< 200 result=-1
>> GET VARIABLE DIALSTATUS
<< 200 result=1 (CANCEL)
>> HANGUP
<< 511 Command Not Permitted on a dead channel or intercept routine
-- server half-closes
<< HANGUP
"""


async def test_f1_hangup_during_command_then_dead_channel_rules() -> None:
    await assert_replays(F1_HANGUP_DURING_COMMAND, SimulatedCall(hangup=CallerHangup.at_prompt(1)))


H_UNKNOWN_COMMAND = """
>> ANSWER
<< 200 result=0
>> FOO BAR
<< 510 Invalid or unknown command
>> THIS IS NOT AN AGI COMMAND
<< 510 Invalid or unknown command
>> GET DATA
<< 520-Invalid command syntax.  Proper usage follows:
<< Stream the given <replaceable>file</replaceable>, and receive DTMF data.
<< Returns the digits received from the channel at the other end.
<< 520 End of proper usage.
>> SET VARIABLE
<< 520-Invalid command syntax.  Proper usage follows:
<< Sets a variable to the current channel.
<< 520 End of proper usage.
>> answer
<< 200 result=0
>> NOOP
<< 200 result=0
>> HANGUP
<< 200 result=1
>> GET VARIABLE CALLERID(num)
<< HANGUP
<< 200 result=1 (053188889999)
>> STREAM FILE beep ""
<< 511 Command Not Permitted on a dead channel or intercept routine
-- server half-closes
<< HANGUP
"""


async def test_h_unknown_commands_usage_blocks_and_hangup_command() -> None:
    result = await assert_replays(H_UNKNOWN_COMMAND, SimulatedCall())
    assert result.hung_up_by == "server"


ERRORS_AND_QUOTING = """
>> EXEC NoSuchApp foo
<< 200 result=-2
>> FOO BAR
<< 510 Invalid or unknown command
>> GET DATA
<< 520-Invalid command syntax.  Proper usage follows:
<< Stream the given <replaceable>file</replaceable>, and receive DTMF data.
<< Returns the digits received from the channel at the other end.
<< 520 End of proper usage.
>> SET VARIABLE QUOTED "a b \\"c\\" d"
<< 200 result=1
>> GET VARIABLE QUOTED
<< 200 result=1 (a b "c" d)
>> GET VARIABLE NOSUCHVAR
<< 200 result=0
>> GET FULL VARIABLE ${CALLERID(num)}-${EXTEN}
<< 200 result=1 (053188889999-4000000008)
>> CHANNEL STATUS
<< 200 result=4
>> EXEC Progress
<< 200 result=0
>> EXEC Playback beep
<< 200 result=0
>> EXEC Hangup "21"
<< 200 result=-1
>> GET VARIABLE DIALSTATUS
<< HANGUP
<< 200 result=0
>> ANSWER
<< 511 Command Not Permitted on a dead channel or intercept routine
-- server half-closes
<< HANGUP
"""


async def test_errors_and_quoting() -> None:
    result = await assert_replays(ERRORS_AND_QUOTING, SimulatedCall(dialled="4000000008"))
    assert result.variables["QUOTED"] == 'a b "c" d'


ANSWERED_TEMPLATE = """
>> ANSWER
<< 200 result=0
>> GET VARIABLE CALLERID(num)
<< 200 result=1 (053188889999)
>> GET VARIABLE CALLERID(name)
<< 200 result=1 (Test)
>> SET VARIABLE ROUTE_DEST 13800000011
<< 200 result=1
>> EXEC Dial "Local/13800000011@phones,20{options}"
<< 200 result={result}
>> GET VARIABLE DIALSTATUS
<< 200 result=1 (ANSWER)
>> GET VARIABLE ANSWEREDTIME
<< 200 result=1 (4)
>> GET VARIABLE DIALEDTIME
<< 200 result=1 (4)
>> GET VARIABLE ANSWEREDTIME_MS
<< 200 result=1 ({talk_ms})
>> GET VARIABLE DIALEDTIME_MS
<< 200 result=1 ({dialed_ms})
>> GET VARIABLE HANGUPCAUSE
<< 200 result=1 (16)
>> GET VARIABLE DIALEDPEERNAME
<< 200 result=1 (Local/13800000011@phones-00000001;1)
>> GET VARIABLE DIALEDPEERNUMBER
<< 200 result=1 (13800000011@phones)
>> GET VARIABLE ROUTE_DEST
<< 200 result=1 (13800000011)
>> GET FULL VARIABLE "${{ROUTE_DEST}} ${{CALLERID(all)}}"
<< 200 result=1 (13800000011 "Test" <053188889999>)
>> CHANNEL STATUS
<< 200 result=6
-- server half-closes
<< HANGUP
"""


@pytest.mark.parametrize(
    ("options", "result", "talk_ms", "dialed_ms"),
    [("", "-1", 4016, 4021), (",g", "0", 4010, 4015)],
    ids=["a_answered", "a2_answered_dial_g_option"],
)
async def test_answered_dial_times_count_from_the_answer_and_the_channels_making(
    options: str, result: str, talk_ms: int, dialed_ms: int
) -> None:
    """The channel was answered (ANSWER, half a second) before the Dial: ANSWEREDTIME is its
    up time since that ANSWER, not the Dial's talk; DIALEDTIME its age, 5 ms more here."""
    transcript = ANSWERED_TEMPLATE.format(
        options=options, result=result, talk_ms=talk_ms, dialed_ms=dialed_ms
    )
    dial_s = talk_ms / 1000 - ANSWER_S
    phone = Outcome.answers(talk_s=dial_s - 0.005, ring_s=0.005)
    call = SimulatedCall(
        caller_name="Test",
        destinations={"13800000011": phone},
        channel_age_s=(dialed_ms - talk_ms) / 1000,
    )
    played = await assert_replays(transcript, call)
    assert played.answered
    assert played.dials[0].ring_s + played.dials[0].talk_s == pytest.approx(dial_s)


UNANSWERED_TEMPLATE = """
>> ANSWER
<< 200 result=0
>> GET VARIABLE CALLERID(num)
<< 200 result=1 (053188889999)
>> GET VARIABLE CALLERID(name)
<< 200 result=1 (Test)
>> SET VARIABLE ROUTE_DEST {number}
<< 200 result=1
>> EXEC Dial "Local/{number}@phones,{timeout}"
<< 200 result=0
>> GET VARIABLE DIALSTATUS
<< 200 result=1 ({status})
>> GET VARIABLE ANSWEREDTIME
<< 200 result=1 ()
>> GET VARIABLE DIALEDTIME
<< 200 result=1 ()
>> GET VARIABLE ANSWEREDTIME_MS
<< 200 result=1 ()
>> GET VARIABLE DIALEDTIME_MS
<< 200 result=1 ()
>> GET VARIABLE HANGUPCAUSE
<< 200 result=1 (0)
>> GET VARIABLE DIALEDPEERNAME
<< 200 result=1 ()
>> GET VARIABLE DIALEDPEERNUMBER
<< 200 result=1 ()
>> GET VARIABLE ROUTE_DEST
<< 200 result=1 ({number})
>> GET FULL VARIABLE "${{ROUTE_DEST}} ${{CALLERID(all)}}"
<< 200 result=1 ({number} "Test" <053188889999>)
>> CHANNEL STATUS
<< 200 result=6
-- server half-closes
<< HANGUP
"""


@pytest.mark.parametrize(
    ("number", "timeout", "status"),
    [
        ("13800000021", 20, "BUSY"),
        ("13800000031", 5, "NOANSWER"),
        ("13800000041", 20, "CONGESTION"),
    ],
    ids=["b_busy", "c_noanswer", "d_congestion"],
)
async def test_unanswered_dials(number: str, timeout: int, status: str) -> None:
    transcript = UNANSWERED_TEMPLATE.format(number=number, timeout=timeout, status=status)
    result = await assert_replays(transcript, SimulatedCall(caller_name="Test"))
    assert result.virtual_s == pytest.approx(0.5 + (timeout if status == "NOANSWER" else 0))


F3_HANGUP_DURING_DIAL_RINGING = """
>> ANSWER
<< 200 result=0
>> SET VARIABLE ROUTE_DEST 13800000031
<< 200 result=1
>> EXEC Dial "Local/13800000031@phones,20"
<< 200 result=-1
>> GET VARIABLE DIALSTATUS
<< HANGUP
<< 200 result=1 (CANCEL)
>> GET VARIABLE ANSWEREDTIME
<< 200 result=1 ()
>> GET VARIABLE DIALEDTIME
<< 200 result=1 ()
>> GET VARIABLE ANSWEREDTIME_MS
<< 200 result=1 ()
>> GET VARIABLE DIALEDTIME_MS
<< 200 result=1 ()
>> GET VARIABLE HANGUPCAUSE
<< 200 result=1 (16)
>> GET VARIABLE DIALEDPEERNAME
<< 200 result=1 ()
>> GET VARIABLE DIALEDPEERNUMBER
<< 200 result=1 ()
>> STREAM FILE beep ""
<< 511 Command Not Permitted on a dead channel or intercept routine
-- server half-closes
<< HANGUP
"""


async def test_f3_hangup_during_dial_ringing() -> None:
    call = SimulatedCall(hangup=CallerHangup.during_dial(1, after_s=2.5))
    await assert_replays(F3_HANGUP_DURING_DIAL_RINGING, call)


F4_HANGUP_WHILE_BRIDGED = """
>> ANSWER
<< 200 result=0
>> SET VARIABLE ROUTE_DEST 13800000051
<< 200 result=1
>> EXEC Dial "Local/13800000051@phones,20"
<< 200 result=-1
>> GET VARIABLE DIALSTATUS
<< HANGUP
<< 200 result=1 (ANSWER)
>> GET VARIABLE ANSWEREDTIME
<< 200 result=1 (3)
>> GET VARIABLE DIALEDTIME
<< 200 result=1 (3)
>> GET VARIABLE ANSWEREDTIME_MS
<< 200 result=1 (3004)
>> GET VARIABLE DIALEDTIME_MS
<< 200 result=1 (3008)
>> GET VARIABLE HANGUPCAUSE
<< 200 result=1 (16)
>> GET VARIABLE DIALEDPEERNAME
<< 200 result=1 (Local/13800000051@phones-00000012;1)
>> GET VARIABLE DIALEDPEERNUMBER
<< 200 result=1 (13800000051@phones)
>> STREAM FILE beep ""
<< 511 Command Not Permitted on a dead channel or intercept routine
-- server half-closes
<< HANGUP
"""


async def test_f4_hangup_while_bridged() -> None:
    call = SimulatedCall(
        destinations={"13800000051": Outcome.answers(talk_s=30.0, ring_s=0.004)},
        hangup=CallerHangup.during_dial(1, after_s=2.504),
        channel_age_s=0.004,
    )
    result = await assert_replays(F4_HANGUP_WHILE_BRIDGED, call)
    assert result.dials[0].talk_s == pytest.approx(2.5)  # ANSWEREDTIME 3: since the ANSWER


G_EXEC_UNKNOWN_APP = """
>> ANSWER
<< 200 result=0
>> EXEC NoSuchApplication "foo,bar"
<< 200 result=-2
>> EXEC NoSuchApplication
<< 200 result=-2
>> EXEC Verbose "1,hello from AGI EXEC"
<< 200 result=0
>> EXEC Wait 1
<< 200 result=0
>> EXEC Set "MYVAR=set via exec"
<< 200 result=0
>> GET VARIABLE MYVAR
<< 200 result=1 (set via exec)
>> GET VARIABLE NO_SUCH_VARIABLE
<< 200 result=0
>> SET VARIABLE SPACED "hello world"
<< 200 result=1
>> GET VARIABLE SPACED
<< 200 result=1 (hello world)
-- server half-closes
<< HANGUP
"""


async def test_g_exec_unknown_app() -> None:
    result = await assert_replays(G_EXEC_UNKNOWN_APP, SimulatedCall())
    assert result.virtual_s == pytest.approx(1.5)


K_AGI_ARGS = """
>> ANSWER
<< 200 result=0
>> GET VARIABLE ARG1
<< 200 result=0
>> GET FULL VARIABLE "${EXTEN}|${CONTEXT}|${PRIORITY}|${CHANNEL}|${UNIQUEID}|${LINKEDID}|${CALLERID(num)}"
<< 200 result=1 (4001234567|inbound-400-args|1|Local/4001234567@inbound-400-args-00000017;2|1795374326.47||053188889999)
-- server half-closes
<< HANGUP
"""  # noqa: E501


async def test_k_agi_args() -> None:
    call = SimulatedCall(
        context="inbound-400-args",
        uniqueid="1795374326.47",
        channel="Local/4001234567@inbound-400-args-00000017;2",
        agi_args=("first arg", "second"),
    )
    result = await assert_replays(K_AGI_ARGS, call)
    assert list(result.env)[-3:] == ["agi_threadid", "agi_arg_1", "agi_arg_2"]
    assert result.env["agi_arg_1"] == "first arg"


async def test_i_server_closes_immediately() -> None:
    result = await assert_replays(f"{HALF_CLOSE}\n<< HANGUP", SimulatedCall())
    assert not result.answered and result.commands == []


DIAL_TIME_LIMIT = """
>> EXEC Dial "Local/13800000051@phones,20,L(5000)"
<< 200 result=-1
>> GET VARIABLE DIALSTATUS
<< 200 result=1 (ANSWER)
>> GET VARIABLE ANSWEREDTIME
<< 200 result=1 (5)
>> GET VARIABLE DIALEDTIME
<< 200 result=1 (5)
-- server half-closes
<< HANGUP
"""


async def test_dial_time_limit_caps_answered_time() -> None:
    await assert_replays(DIAL_TIME_LIMIT, SimulatedCall(dialled="4000000009"))


CHANUNAVAIL = """
>> EXEC Dial "Local/99999@nowhere,20"
<< 200 result=0
>> GET VARIABLE DIALSTATUS
<< 200 result=1 (CHANUNAVAIL)
>> EXEC Dial "NoSuchTech/123,20"
<< 200 result=0
>> GET VARIABLE DIALSTATUS
<< 200 result=1 (CHANUNAVAIL)
-- server half-closes
<< HANGUP
"""


async def test_unknown_destination_and_technology_are_unavailable() -> None:
    await assert_replays(CHANUNAVAIL, SimulatedCall(dialled="4000000005"))


E2_STREAM_WAITDIGIT = """
>> ANSWER
<< 200 result=0
>> STREAM FILE demo-congrats "0123456789#*"
<< 200 result=53 endpos=1760
>> WAIT FOR DIGIT 5000
<< 200 result=55
>> GET DATA beep 5000 1
<< 200 result=9
>> WAIT FOR DIGIT 800
<< 200 result=0
>> GET DATA beep 4000 5
<< 200 result=12 (timeout)
>> STREAM FILE no-such-sound-file ""
<< 200 result=-1 endpos=0
>> GET DATA no-such-sound-file 1000 2
<< 200 result=-1
>> GET OPTION beep "123" 1000
<< 200 result=0 endpos=3520
>> SAY DIGITS 42 ""
<< 200 result=0
-- server half-closes
<< HANGUP
"""


async def test_e2_keys_interrupt_prompts_and_missing_files_fail() -> None:
    """As recorded, except the interrupted position: every simulated sound is the
    0.44 s beep, stopped halfway (the recording's demo-congrats stopped at 5760)."""
    call = SimulatedCall(
        dtmf=("5", "7", "9", None, "12"), missing_sounds=frozenset({"no-such-sound-file"})
    )
    await assert_replays(E2_STREAM_WAITDIGIT, call)


IDLE_HANGUP = """
<< HANGUP
>> ANSWER
<< 511 Command Not Permitted on a dead channel or intercept routine
>> GET VARIABLE DIALSTATUS
<< 200 result=0
>> GET VARIABLE CALLERID(num)
<< 200 result=1 (053188889999)
>> NOOP
<< 200 result=0
-- server half-closes
<< HANGUP
"""


async def test_hangup_right_after_the_environment_is_reported_at_once() -> None:
    """As in f2 (hang-up while the server is idle): HANGUP comes without waiting for a
    command, and is not repeated before the next reply."""
    result = await assert_replays(IDLE_HANGUP, SimulatedCall(hangup=CallerHangup.after_env()))
    assert result.hung_up_by == "caller"


# --- behaviour beyond the recordings --------------------------------------------------------


def test_recorded_phone_convention() -> None:
    assert recorded_destinations("13800000011") == Outcome.answers(talk_s=3.0)
    assert recorded_destinations("13800000029").status == "BUSY"
    assert recorded_destinations("13800000031").status == "NOANSWER"
    assert recorded_destinations("13800000041").status == "CONGESTION"
    assert recorded_destinations("13800000052") == Outcome.answers(talk_s=30.0)
    assert recorded_destinations("13800000061") == Outcome.answers(talk_s=0.5)
    assert recorded_destinations("13800000071").status == "CHANUNAVAIL"


def test_words_split_as_asterisk_splits_them() -> None:
    assert split_agi_args('STREAM FILE beep ""') == ["STREAM", "FILE", "beep", ""]
    assert split_agi_args('SET VARIABLE Q "a b \\"c\\" d"') == ["SET", "VARIABLE", "Q", 'a b "c" d']
    assert split_agi_args("GET  DATA\tbeep") == ["GET", "DATA", "beep"]
    assert split_agi_args('a"b c"d e\\ f \\\\') == ["ab cd", "e f", "\\"]


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _header_lines(reader: asyncio.StreamReader) -> AsyncIterator[str]:
    """The environment block's lines, read plainly (the router's reader is not under test)."""
    while (line := await reader.readline()) not in (b"\n", b""):
        yield line.decode().removesuffix("\n")


async def serve_with(handler: Handler) -> tuple[asyncio.Server, str, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    return server, host, port


async def test_destinations_callable_and_ring_time_drive_dialed_time() -> None:
    async def router(session: AGISession) -> None:
        await session.exec("Dial", "PJSIP/13900000000@carrier,30")
        await session.close()

    server, host, port = await serve_sessions(router)
    async with server:
        call = SimulatedCall(destinations=lambda number: Outcome.answers(talk_s=62.4, ring_s=7.9))
        result = await run_call(host, port, call)
    assert result.variables["DIALSTATUS"] == "ANSWER"
    assert result.variables["ANSWEREDTIME"] == "62"
    assert result.variables["DIALEDTIME"] == "70"
    assert result.variables["DIALEDPEERNUMBER"] == "13900000000@carrier"
    assert result.dials[0].ring_s == pytest.approx(7.9)


async def test_the_answer_hook_stamps_the_destinations_answer_on_the_callers_channel() -> None:
    """Dial's `U(hotline400-answered^<caller's channel>)` runs the shipped dialplan's
    subroutine as the destination answers: SHARED(HOTLINE_ANSWERED) holds that moment on
    Asterisk's clock (its UTC date and time to the ms), and STRFTIME read as the Dial
    returns is the bridge's end:
    their difference is the talk, whatever the prompt and the ring before it took."""
    read: list[list[str] | None] = []

    async def router(session: AGISession) -> None:
        await session.answer()
        await session.command("GET DATA beep 5000 4")  # a PIN prompt: the beep, 5 s of silence
        channel = session.env["agi_channel"]
        await session.exec("Dial", f"PJSIP/13900000000@carrier,30,U(hotline400-answered^{channel})")
        read.append(
            await session.get_variables(
                "ANSWEREDTIME_MS",
                "SHARED(HOTLINE_ANSWERED)",
                "STRFTIME(,UTC,%Y-%m-%dT%H:%M:%S.%3q)",
            )
        )
        await session.close()

    server, host, port = await serve_sessions(router)
    async with server:
        phone = Outcome.answers(talk_s=62.4, ring_s=7.9)
        hooked = await run_call(host, port, SimulatedCall(destinations={"13900000000": phone}))
        plain = SimulatedCall(destinations={"13900000000": phone}, answer_hook=False)
        unhooked = await run_call(host, port, plain)
    assert hooked.error is None and unhooked.error is None
    (up_ms, answered, now), (_, no_stamp, _) = read[0], read[1]
    assert int(up_ms) == 500 + 440 + 5000 + 7900 + 62400  # ANSWER, prompt, ring, talk
    utc = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}"
    assert re.fullmatch(utc, answered) and re.fullmatch(utc, now)
    talk = datetime.fromisoformat(f"{now}+00:00") - datetime.fromisoformat(f"{answered}+00:00")
    assert talk == timedelta(seconds=62.4)
    assert no_stamp == ""  # a dialplan without the subroutine stamps nothing


@pytest.mark.parametrize(
    ("argument", "stamped"),
    [
        ("{channel}", True),
        ("{channel}^more", True),  # ARG1 ends at the comma a ^ became; ARG2 is "more"
        ("{upper}", True),  # SHARED finds a channel by its name, case aside
        ("{uniqueid}", True),  # or by its uniqueid
        ("{prefix}", True),  # or by the name's part before its last "-"
        ("other^{channel}", False),  # a context the dialplan does not have: nothing stamped
        ("PJSIP/nobody-00000001", False),  # SHARED finds no such channel: nothing set
    ],
)
async def test_the_answer_hook_reads_its_argument_as_dial_and_gosub_split_it(
    argument: str, stamped: bool
) -> None:
    """As app_dial.c reads U(): every ^ a comma, the context up to the first, Gosub's
    ARG1 up to the next; SHARED(var,ARG1) then names the caller's channel, or sets nothing.
    The Dial bridges either way."""
    read: list[list[str] | None] = []

    async def router(session: AGISession) -> None:
        await session.answer()
        channel, uniqueid = session.env["agi_channel"], session.env["agi_uniqueid"]
        hook = argument.format(
            channel=channel,
            upper=channel.upper(),
            uniqueid=uniqueid,
            prefix=channel.rsplit("-", 1)[0],
        )
        if not hook.startswith("other^"):
            hook = f"hotline400-answered^{hook}"
        await session.exec("Dial", f"PJSIP/13900000000@carrier,30,U({hook})")
        read.append(await session.get_variables("DIALSTATUS", "SHARED(HOTLINE_ANSWERED)"))
        await session.close()

    server, host, port = await serve_sessions(router)
    async with server:
        phone = Outcome.answers(talk_s=10, ring_s=2)
        result = await run_call(host, port, SimulatedCall(destinations={"13900000000": phone}))
    assert result.error is None
    [(status, stamp)] = read
    assert status == "ANSWER"
    assert bool(stamp) is stamped


async def test_ringing_longer_than_the_dial_timeout_is_no_answer() -> None:
    async def router(session: AGISession) -> None:
        await session.exec("Dial", "Local/13800000011@phones,10")
        await session.close()

    server, host, port = await serve_sessions(router)
    async with server:
        slow = {"13800000011": Outcome.answers(talk_s=3.0, ring_s=12.0)}
        result = await run_call(host, port, SimulatedCall(destinations=slow))
    assert result.dials[0].status == "NOANSWER"
    assert result.virtual_s == pytest.approx(10.0)


async def test_caller_hangs_up_at_the_kth_prompt() -> None:
    seen: list[tuple[str | None, bool]] = []

    async def router(session: AGISession) -> None:
        await session.stream_file("welcome")  # no escape digits: not a prompt
        for _ in range(3):
            digits, _timed_out = await session.get_data("enter-pin", 3000, 4)
            seen.append((digits, session.hung_up))
        await session.close()

    server, host, port = await serve_sessions(router)
    async with server:
        call = SimulatedCall(dtmf=("1111",), hangup=CallerHangup.at_prompt(2))
        await run_call(host, port, call)
    assert seen == [("1111", False), (None, False), (None, True)]


async def test_a_caller_who_knows_the_pin_types_it_wherever_several_digits_are_asked() -> None:
    """A PIN is asked with GET DATA reading several digits, a menu or survey key with one:
    the PIN comes at every such prompt, retries included, and the one-key prompts still
    take the caller's `dtmf` in order."""
    seen: list[str | None] = []

    async def router(session: AGISession) -> None:
        seen.append(await session.get_key("menu", 3000))
        for _ in range(2):
            digits, _timed_out = await session.get_data("enter-pin", 5000, 6)
            seen.append(digits)
        seen.append(await session.get_key("survey", 3000))
        await session.close()

    server, host, port = await serve_sessions(router)
    async with server:
        call = SimulatedCall(dtmf=("2", "5"), pin_entry="2468#")
        result = await run_call(host, port, call)
    assert seen == ["2", "2468", "2468", "5"]
    assert result.replies[1] == ["200 result=2468"]  # `#` ends the entry: no timeout


def test_a_pin_entry_is_dtmf() -> None:
    with pytest.raises(ValueError, match="not DTMF: '24x8'"):
        SimulatedCall(pin_entry="24x8")


async def test_a_caller_hanging_up_right_after_keying_in_is_told_at_the_next_reply() -> None:
    seen: list[tuple[str | None, bool]] = []

    async def router(session: AGISession) -> None:
        for _ in range(2):
            digits, _timed_out = await session.get_data("menu", 3000, 1)
            seen.append((digits, session.hung_up))
        await session.close()

    server, host, port = await serve_sessions(router)
    async with server:
        call = SimulatedCall(dtmf=("2",), hangup=CallerHangup.after_keying_in(1))
        result = await run_call(host, port, call)
    assert seen == [("2", False), (None, True)]
    assert result.replies[1] == [DEAD_CHANNEL]


async def test_commands_are_read_as_asterisk_reads_them() -> None:
    """CRLF keeps the CR in the last word, and a line past 2047 bytes runs as two commands."""
    long_value = "v" * 3000

    async def router(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readline() != b"\n":  # the environment block
            pass
        writer.write(b"ANSWER\r\n")
        writer.write(f'SET VARIABLE LONG "{long_value}"\n'.encode())
        writer.write(b"NOOP\n")
        writer.write_eof()
        await reader.read()
        writer.close()
        await writer.wait_closed()

    server, host, port = await serve_with(router)
    async with server:
        result = await run_call(host, port, SimulatedCall())
    assert result.replies == [
        ["510 Invalid or unknown command"],
        ["200 result=1"],
        ["510 Invalid or unknown command"],
        ["200 result=0"],
    ]
    assert len(result.variables["LONG"]) == 2047 - len('SET VARIABLE LONG "')


async def test_time_scale_really_waits() -> None:
    async def router(session: AGISession) -> None:
        await session.exec("Dial", "Local/13800000031@phones,20")
        await session.close()

    server, host, port = await serve_sessions(router)
    async with server:
        started = time.monotonic()
        result = await run_call(host, port, SimulatedCall(), time_scale=0.01)
    assert time.monotonic() - started >= 0.2
    assert result.virtual_s == 20.0


async def test_run_calls_keeps_order_and_measures_each_call() -> None:
    async def router(session: AGISession) -> None:
        number = session.env["agi_extension"]
        await session.set_variable("SEEN", number)
        await session.close()

    server, host, port = await serve_sessions(router)
    calls = [SimulatedCall(dialled=f"40000{n:05d}") for n in range(60)]
    async with server:
        results = await run_calls(host, port, calls, concurrency=20)
    assert [r.variables["SEEN"] for r in results] == [c.dialled for c in calls]
    assert all(r.error is None and r.wall_s > 0 for r in results)
    assert all(r.first_command_s is not None for r in results)


async def test_refused_connection_and_silent_server_are_errors_not_exceptions() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()
        await writer.wait_closed()

    server, host, port = await serve_with(silent)
    async with server:
        stuck = await run_call(host, port, SimulatedCall(), timeout=0.2)
    assert stuck.error is not None and "0.2" in stuck.error
    refused = await run_call(host, port, SimulatedCall())
    assert refused.error is not None and refused.error.startswith("connect failed")


# --- hostile clients against a reader that must shed them -----------------------------------


async def test_hostile_clients_are_shed_quickly_and_the_server_keeps_serving() -> None:
    outcomes: list[str] = []

    async def router(session: AGISession) -> None:
        await session.set_variable("OK", "yes")
        outcomes.append("served")
        await session.close()

    def failed(error: AGIProtocolError) -> None:
        outcomes.append(type(error).__name__)

    server, host, port = await serve_sessions(router, failed, header_timeout=0.3)
    async with server:
        await connect_and_close(host, port)
        closing = await send_header_without_end(host, port, close=True)
        holding = await send_header_without_end(host, port, close=False)
        huge = await send_oversized_header(host, port)
        junk = await send_binary_junk(host, port)
        normal = await run_call(host, port, SimulatedCall())
    for outcome in (closing, holding, huge, junk):
        assert outcome.server_closed
        assert outcome.elapsed_s < 1.5
    assert holding.elapsed_s >= 0.25
    assert normal.variables["OK"] == "yes"
    assert outcomes == [
        "AGIClosedUnused",  # connected and closed: a health check's probe
        "AGIHeaderIncomplete",
        "AGIHeaderTimeout",
        "AGIHeaderTooLarge",
        "AGIMalformedHeader",
        "served",
    ]


@pytest.mark.parametrize("connecting", [1, 4])
async def test_run_calls_writes_each_environment_before_opening_many_more(
    connecting: int,
) -> None:
    """As Asterisk does, a block goes out as its connection is up: the server never has
    more than a few connections accepted and still without their block (without the bound,
    60 calls started at once would all connect before the first block is written)."""
    headerless: set[asyncio.StreamWriter] = set()
    most = 0

    async def router(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal most
        headerless.add(writer)
        most = max(most, len(headerless))
        env = [line async for line in _header_lines(reader)]
        headerless.discard(writer)
        extension = next(line for line in env if line.startswith("agi_extension: "))
        writer.write(f"SET VARIABLE SEEN {extension.partition(': ')[2]}\n".encode())
        await reader.readline()
        writer.close()

    server, host, port = await serve_with(router)
    calls = [SimulatedCall(dialled=f"40000{n:05d}") for n in range(60)]
    async with server:
        results = await run_calls(host, port, calls, concurrency=60, connecting=connecting)
    assert [r.variables["SEEN"] for r in results] == [c.dialled for c in calls]
    assert most <= 2 * connecting
