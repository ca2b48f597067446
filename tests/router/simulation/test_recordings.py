"""Every recorded FastAGI conversation, replayed against the simulator line for line.

The recordings (copied verbatim from a real Asterisk 22.10.1 into recordings/: agi/,
agi-more/, agi-vas/) are parsed into the environment block, the commands the recorder
sent and every line Asterisk sent back, in wire order. A small server sends the recorded
commands to the simulator at the recorded points and reads as many lines as were
recorded; the simulator must send the same environment (up to the port and thread id)
and the same lines, HANGUP notifications included, and take the recorded time for each
command. Where a recording closed its side without reading on, the simulator must then
send the single HANGUP Asterisk sends as it leaves the AGI loop (fact 14).
"""

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from router.simulation.asterisk_agi import CallerHangup, Outcome, SimulatedCall, run_call

RECORDINGS = Path(__file__).parent / "recordings"
_SHORT = re.compile(r"^\s*(?P<at>\d+\.\d+) (?P<dir><<|>>|\.\.)(?: (?P<text>.*))?$")
_LONG = re.compile(r"^\S+ \S+ \+\s*(?P<at>\d+\.\d+)s (?P<dir><<<|>>>|---)(?: (?P<text>.*))?$")
_READ_S = 2.0
"""How long the replaying server waits for a recorded line before calling it missing."""
MISSING = "<nothing>"


@dataclass
class Recording:
    """One conversation: env lines, then ("send"|"recv", text, seconds) and the close."""

    name: str
    env: list[str] = field(default_factory=list)
    steps: list[tuple[str, str, float]] = field(default_factory=list)
    after_close: list[str] | None = None
    """Lines read after the recorder half-closed; None when it closed without reading."""


def parse_recording(path: Path) -> Recording:
    recording = Recording(f"{path.parent.name}/{path.stem}")
    in_env = True
    closed = False
    for raw in path.read_text().splitlines():
        match = _SHORT.match(raw) or _LONG.match(raw)
        if match is None:
            continue
        direction, text, at = match["dir"][:2], match["text"] or "", float(match["at"])
        if direction in ("--", ".."):
            if "half-closes" in text:
                recording.after_close = []
                closed = True
            elif "closing our side" in text:
                closed = True
        elif in_env:
            if direction == "<<" and text:
                recording.env.append(text)
            elif direction == "<<":
                in_env = False
        elif closed:
            assert recording.after_close is not None and direction == "<<"
            recording.after_close.append(text)
        else:
            recording.steps.append(("send" if direction == ">>" else "recv", text, at))
    return recording


def _all_recordings() -> list[Path]:
    return sorted(RECORDINGS.glob("agi*/*.txt"))


# How the parties behaved in each recorded call, beyond what its environment says. In
# agi-more/ the channel was 4-5 ms old when AGI connected and the router answered it first,
# so ANSWEREDTIME counts from that ANSWER and DIALEDTIME from the channel's making.
AGI_MORE_PHONE = Outcome.answers(talk_s=3.511, ring_s=0.005)
BEHAVIOUR: dict[str, dict[str, object]] = {
    "agi/4000000006_pin_dtmf": {
        "dtmf": ("1234#", None, "99"),
        "missing_sounds": frozenset({"no-such-prompt"}),
    },
    "agi/4000000007_caller_hangs_up_while_ringing": {
        "hangup": CallerHangup.during_dial(1, after_s=4.0)
    },
    "agi-more/a_answered": {
        "destinations": {"13800000011": AGI_MORE_PHONE},
        "channel_age_s": 0.005,
    },
    "agi-more/a2_answered_dial_g_option": {
        "destinations": {"13800000011": Outcome.answers(talk_s=3.505, ring_s=0.005)},
        "channel_age_s": 0.005,
    },
    "agi-more/e1_getdata_pin": {"dtmf": ("1234#",)},
    "agi-more/e2_stream_waitdigit": {
        "dtmf": ("5", "7", "9", None, "12"),
        "missing_sounds": frozenset({"no-such-sound-file"}),
        "sound_lengths": {"demo-congrats": 11520, "digits/4": 6328, "digits/2": 6328},
    },
    "agi-more/f1_hangup_during_command": {"hangup": CallerHangup.at_prompt(1, after_s=2.5)},
    "agi-more/f2_hangup_while_idle": {"hangup": CallerHangup.while_idle(after_command=1)},
    "agi-more/f3_hangup_during_dial_ringing": {"hangup": CallerHangup.during_dial(1, after_s=2.5)},
    "agi-more/f4_hangup_while_bridged": {
        "destinations": {"13800000051": Outcome.answers(talk_s=30.0, ring_s=0.004)},
        "hangup": CallerHangup.during_dial(1, after_s=2.504),
        "channel_age_s": 0.004,
    },
    "agi-vas/hold_caller_gives_up": {"hangup": CallerHangup.while_waiting(1, after_s=3.0)},
    "agi-vas/ivr_menu_digit_and_language": {
        "keys": "1234#",
        "missing_sounds": frozenset({"zh/no-such-prompt"}),
    },
    "agi-vas/survey_after_dial_g": {"dtmf": ("9", "9")},
}
RIG_BEEP = 2400
"""The beep of agi/ and agi-vas/ (agi-more/ had one of 3520 samples, the default)."""
NO_SESSION = {"agi-more/j_agi_server_down"}
"""Nothing listened: Asterisk never connected, there is no conversation to replay."""


def call_for(recording: Recording) -> SimulatedCall:
    """The call as the recording's environment describes it, and its parties' behaviour."""
    env = dict(line.split(": ", 1) if ": " in line else (line[:-1], "") for line in recording.env)
    behaviour = dict(BEHAVIOUR.get(recording.name, {}))
    if not recording.name.startswith("agi-more/"):
        behaviour.setdefault("sound_samples", RIG_BEEP)
    arguments = tuple(value for key, value in env.items() if key.startswith("agi_arg_"))
    return SimulatedCall(  # type: ignore[arg-type]
        dialled=env["agi_extension"],
        caller_id=env["agi_callerid"],
        caller_name=env["agi_calleridname"],
        uniqueid=env["agi_uniqueid"],
        script=env["agi_network_script"],
        context=env["agi_context"],
        priority=env["agi_priority"],
        dnid=env["agi_dnid"],
        channel=env["agi_channel"],
        agi_args=arguments,
        **behaviour,
    )


@dataclass
class Replay:
    env: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    """What the simulator sent after the environment, in the recording's order."""
    after_close: list[str] = field(default_factory=list)


async def replay(recording: Recording, call: SimulatedCall) -> tuple[Replay, list[float]]:
    """Send the recorded commands; return what came back and the simulator's time per
    command (virtual seconds)."""
    seen = Replay()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (line := (await reader.readline()).decode()) not in ("\n", ""):
            seen.env.append(line.removesuffix("\n"))
        for kind, text, _ in recording.steps:
            if kind == "send":
                writer.write(text.encode() + b"\n")
                continue
            try:
                line = await asyncio.wait_for(reader.readline(), _READ_S)
            except TimeoutError:
                seen.lines.append(MISSING)
                continue
            seen.lines.append(line.decode().removesuffix("\n"))
        writer.write_eof()
        seen.after_close = (await reader.read()).decode().splitlines()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        host, port = server.sockets[0].getsockname()[:2]
        result = await asyncio.wait_for(run_call(host, port, call, timeout=20), 30)
    assert result.error is None
    return seen, result.took_s


def _normalised_env(lines: list[str]) -> list[str]:
    return [
        re.sub(r"^(agi_request: agi://[\d.]+):\d+/", r"\1:4573/", line)
        for line in lines
        if not line.startswith("agi_threadid: ")
    ]


def _masked(lines: list[str]) -> list[str]:
    """DIALEDPEERNAME carries Asterisk's running channel counter: mask it."""
    return [re.sub(r"-[0-9a-f]{8};1\)$", "-<seq>;1)", line) for line in lines]


_FINAL = re.compile(r"\d{3} ")
_KEY = re.compile(r"200 result=[0-9*#]*[1-9*#]")
"""A reply carrying a key the caller typed: how long it took is the caller's doing."""


def recorded_durations(recording: Recording) -> list[float | None]:
    """Seconds from each command to its final reply line, as recorded; None where the
    reply reports keys (the rig's caller typed at its own pace)."""
    durations: list[float | None] = []
    sent_at = 0.0
    for kind, text, at in recording.steps:
        if kind == "send":
            sent_at = at
        elif _FINAL.match(text):
            durations.append(None if _KEY.match(text) else at - sent_at)
    return durations


TIME_TOLERANCE_S = 0.6
"""A recorded command took its modelled time plus the rig's latencies (the 0.5 s a
`[phones]` Answer() waits for media before its Wait, 40 ms before a HANGUP's reply)."""


def test_every_recorded_conversation_is_replayed() -> None:
    names = {f"{path.parent.name}/{path.stem}" for path in _all_recordings()}
    assert len(names) == 35
    assert names >= NO_SESSION
    assert set(BEHAVIOUR) <= names
    for name in NO_SESSION:
        assert parse_recording(RECORDINGS / f"{name}.txt").env == []


@pytest.mark.parametrize(
    "path",
    [path for path in _all_recordings() if f"{path.parent.name}/{path.stem}" not in NO_SESSION],
    ids=lambda path: f"{path.parent.name}/{path.stem}",
)
async def test_the_simulator_answers_as_recorded(path: Path) -> None:
    recording = parse_recording(path)
    assert recording.env
    seen, took = await replay(recording, call_for(recording))

    assert _normalised_env(seen.env) == _normalised_env(recording.env)
    recorded = [text for kind, text, _ in recording.steps if kind == "recv"]
    assert _masked(seen.lines) == _masked(recorded)
    expected_close = recording.after_close if recording.after_close is not None else ["HANGUP"]
    assert seen.after_close == expected_close
    durations = recorded_durations(recording)
    assert len(took) == len(durations)
    for command, (simulated, real) in enumerate(zip(took, durations, strict=True)):
        if real is not None:
            assert simulated == pytest.approx(real, abs=TIME_TOLERANCE_S), command
