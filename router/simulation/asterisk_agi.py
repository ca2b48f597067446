"""Asterisk's side of FastAGI: plays scripted calls against a FastAGI server over TCP.

Every line it sends is one a real Asterisk 22 sends in the same situation (the
recordings in asterisk-transcripts/): the environment block in Asterisk's order, the
result codes of each command, `HANGUP` before the reply to the first command after a
hang-up and again when the server half-closes, 511 for channel commands on a dead
channel, 510 for unknown commands, multi-line 520 usage blocks. Commands are read as
Asterisk reads them: up to `\\n`, cut at 2047 bytes, a trailing `\\r` kept (so a CRLF
command is unknown), words split by `split_agi_args`.

Time is virtual: Dial's DIALEDTIME / ANSWEREDTIME, prompt timeouts and ringing are
computed from the call's behaviour without waiting. `time_scale` > 0 makes the simulator
really sleep the scaled durations, to hold many ringing sessions open in load tests.

Known differences from Asterisk: only the commands below are simulated (others answer
510); usage text is verbatim for GET DATA and SET VARIABLE (recorded) and the command's
one-line synopsis otherwise; DATABASE commands are not simulated.

After an answered Dial, ANSWEREDTIME and DIALEDTIME are the inbound channel's time since
it was answered and since it was created, as Asterisk's app_dial sets them (its up time
and its age, not the Dial's own talk and ring): a channel that an ANSWER took up before the
Dial counts the time since that ANSWER (agi-more/a_answered: ANSWER, then a Dial of 3.5 s,
gives ANSWEREDTIME_MS 4016), one the Dial took up counts the talk, and DIALEDTIME counts
everything since the channel was made, earlier Dials included. A Dial carrying
`U(hotline400-answered^<this channel>)` runs the shipped dialplan's subroutine as the
destination answers: SHARED(HOTLINE_ANSWERED) then holds that moment as
`STRFTIME(,UTC,%Y-%m-%dT%H:%M:%S.%3q)` writes Asterisk's clock, which runs with the call's
virtual time (`answer_hook=False` is a dialplan without the subroutine).
"""

import asyncio
import contextlib
import itertools
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# --- Asterisk's command-line syntax --------------------------------------------------------

AGI_BUF_LEN = 2048
"""res_agi reads a command with fgets into this buffer: 2047 bytes at most per command."""
MAX_ARGS = 128


def split_agi_args(line: str) -> list[str]:
    """Split a command line into words exactly as res_agi's parse_args does.

    Spaces and tabs separate words outside double quotes; a quote toggles quoting (and
    `""` after a space makes an empty word); a backslash makes the next character
    literal and is itself dropped. This is the unquoting `agi_quote.quote` must survive.
    """
    words: list[list[str]] = []
    word: list[str] | None = None
    quoted = escaped = False
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and word is None:
                word = []
                words.append(word)
        elif ch in " \t" and not quoted and not escaped:
            word = None
        elif ch == "\\" and not escaped:
            escaped = True
        else:
            if word is None:
                if len(words) >= MAX_ARGS - 1:
                    continue
                word = []
                words.append(word)
            word.append(ch)
            escaped = False
    return ["".join(chars) for chars in words]


def split_app_args(argument: str) -> list[str]:
    """Split an application's argument string at commas outside parentheses and quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quoted = False
    for ch in argument:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")" and depth:
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def separate_app_args(text: str, delim: str, limit: int = 0) -> list[str]:
    """Asterisk's __ast_app_separate_args with quote and backslash removal, as MSet reads
    its argument (`,` between pairs, then `=` between name and value, at most `limit`
    parts, the last taking the rest): delimiters inside parentheses, brackets or quotes do
    not split, quotes are dropped, a backslash makes the next character literal, and a
    delimiter at the very end makes one more, empty, argument."""
    parts: list[str] = []
    current: list[str] = []
    paren = bracket = 0
    quoted = escaped = ended_on_delim = False
    for index, ch in enumerate(text):
        if limit and len(parts) == limit - 1:
            current.append(text[index:])
            ended_on_delim = False
            break
        ended_on_delim = False
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == delim and not (paren or bracket or quoted):
            parts.append("".join(current))
            current = []
            ended_on_delim = True
        else:
            paren += ch == "("
            paren -= ch == ")" and paren > 0
            bracket += ch == "["
            bracket -= ch == "]" and bracket > 0
            current.append(ch)
    if current or ended_on_delim:
        parts.append("".join(current))
    return parts


# --- what Asterisk answers -----------------------------------------------------------------

HANGUP_LINE = "HANGUP"
UNKNOWN_COMMAND = "510 Invalid or unknown command"
DEAD_CHANNEL = "511 Command Not Permitted on a dead channel or intercept routine"
USAGE_HEAD = "520-Invalid command syntax.  Proper usage follows:"
USAGE_TAIL = "520 End of proper usage."
USAGE_TEXT: dict[str, tuple[str, ...]] = {
    "get data": (
        "Stream the given <replaceable>file</replaceable>, and receive DTMF data.",
        "Returns the digits received from the channel at the other end.",
    ),
    "set variable": ("Sets a variable to the current channel.",),
    "exec": ("Executes a given Application",),
    "get variable": ("Gets a channel variable.",),
    "get full variable": ("Evaluates a channel expression",),
    "stream file": ("Sends audio file on channel.",),
    "get option": ("Stream file, prompt for DTMF, with timeout.",),
    "wait for digit": ("Waits for a digit to be pressed.",),
    "say digits": ("Says a given digit string.",),
    "verbose": ("Logs a message to the asterisk verbose log.",),
}

STATE_RING = 4
ANSWER_HOOK = "hotline400-answered"
"""The subroutine of the shipped dialplan (asterisk/extensions.conf) that stamps a Dial's
answer on the caller's channel when the Dial carries `U(hotline400-answered^<channel>)`."""
ANSWER_STAMP_CLOCK = ",UTC,%Y-%m-%dT%H:%M:%S.%3q"
"""STRFTIME's arguments in the shipped subroutine's stamp: the UTC date and time, to the ms."""
STATE_UP = 6
ANSWER_S = 0.5
"""ANSWER's reply comes half a second later in every recording."""
SAMPLES_PER_S = 8000
DIGIT_GAP_S = 0.25
DEFAULT_GETDATA_TIMEOUT_MS = 5000
KNOWN_TECHNOLOGIES = frozenset({"local", "pjsip", "sip", "iax2", "dahdi"})
CHANNEL_APPLICATIONS = frozenset(
    {"answer", "dial", "hangup", "mixmonitor", "musiconhold", "playback", "progress", "ringing"}
)
"""Simulated applications that need a live channel: -1 once it is hung up. (`Wait` on a
dead channel still waits and answers 0: hold_caller_gives_up.)"""
APPLICATIONS = CHANNEL_APPLICATIONS | {
    "log",
    "mset",
    "noop",
    "set",
    "stopmixmonitor",
    "verbose",
    "wait",
}
"""Every other application is unknown to the simulator: EXEC answers -2."""


# --- what a simulated call does ------------------------------------------------------------

DialStatus = Literal["ANSWER", "BUSY", "NOANSWER", "CONGESTION", "CHANUNAVAIL"]


@dataclass(frozen=True)
class Outcome:
    """How one dialled destination behaves.

    ANSWER after `ring_s`, then talk `talk_s` and hang up; NOANSWER rings until Dial's
    timeout; BUSY, CONGESTION and CHANUNAVAIL refuse after `ring_s`.
    """

    status: DialStatus
    ring_s: float = 0.0
    talk_s: float = 0.0

    @classmethod
    def answers(cls, talk_s: float, ring_s: float = 0.0) -> "Outcome":
        return cls("ANSWER", ring_s, talk_s)

    @classmethod
    def busy(cls) -> "Outcome":
        return cls("BUSY")

    @classmethod
    def no_answer(cls) -> "Outcome":
        return cls("NOANSWER")

    @classmethod
    def congestion(cls) -> "Outcome":
        return cls("CONGESTION")

    @classmethod
    def unavailable(cls) -> "Outcome":
        return cls("CHANUNAVAIL")


_RECORDED_PHONE = re.compile(r"138000000([1-6])\d")
_RECORDED_OUTCOMES = {
    "1": Outcome.answers(talk_s=3.0),
    "2": Outcome.busy(),
    "3": Outcome.no_answer(),
    "4": Outcome.congestion(),
    "5": Outcome.answers(talk_s=30.0),
    "6": Outcome.answers(talk_s=0.5),
}


def recorded_destinations(number: str) -> Outcome:
    """The recordings' `[phones]` context: 138000000 1x answers for 3 s, 2x is busy,
    3x rings forever, 4x is congested, 5x answers for 30 s, 6x answers for half a second
    (agi-vas/hold_ringing_then_dial); other numbers do not exist."""
    match = _RECORDED_PHONE.fullmatch(number)
    return _RECORDED_OUTCOMES[match[1]] if match else Outcome.unavailable()


@dataclass(frozen=True)
class CallerHangup:
    """When the simulated caller hangs up: right after the environment block, during
    the `nth` Dial once it has run `after_s` seconds (while ringing or bridged), during
    the `nth` prompt (a command listening for DTMF; a WAIT FOR DIGIT has waited `after_s`
    seconds by then), right after keying in at the `nth`
    prompt (the prompt answers the keys, HANGUP comes before the next reply), during the
    `nth` announcement (`EXEC Playback`), during the `nth` sound played without listening
    (`STREAM FILE` without escape digits), during the `nth` `EXEC Wait` after `after_s`
    seconds (held), or while the server is idle after its `nth` command's reply (HANGUP
    goes out at once, agi-more/f2_hangup_while_idle)."""

    at: Literal["after_env", "dial", "prompt", "after_prompt", "playback", "sound", "wait", "idle"]
    nth: int = 1
    after_s: float = 0.0

    @classmethod
    def after_env(cls) -> "CallerHangup":
        return cls("after_env")

    @classmethod
    def during_dial(cls, nth: int = 1, after_s: float = 3.0) -> "CallerHangup":
        return cls("dial", nth, after_s)

    @classmethod
    def at_prompt(cls, nth: int = 1, after_s: float = 0.0) -> "CallerHangup":
        return cls("prompt", nth, after_s)

    @classmethod
    def after_keying_in(cls, nth: int = 1) -> "CallerHangup":
        return cls("after_prompt", nth)

    @classmethod
    def during_playback(cls, nth: int = 1) -> "CallerHangup":
        return cls("playback", nth)

    @classmethod
    def during_sound(cls, nth: int = 1) -> "CallerHangup":
        return cls("sound", nth)

    @classmethod
    def while_waiting(cls, nth: int = 1, after_s: float = 0.0) -> "CallerHangup":
        return cls("wait", nth, after_s)

    @classmethod
    def while_idle(cls, after_command: int = 1) -> "CallerHangup":
        return cls("idle", after_command)


Destinations = Mapping[str, Outcome] | Callable[[str], Outcome]
_LANGUAGE = "CHANNEL(language)"
_DTMF = re.compile(r"[0-9A-D*#]*")
_sequence = itertools.count(1)


@dataclass(frozen=True)
class SimulatedCall:
    """One inbound call as Asterisk presents it, and how its parties behave.

    `dtmf` holds the caller's entry for successive prompts (a prompt is a command that
    listens for DTMF: GET DATA, WAIT FOR DIGIT, and STREAM FILE / GET OPTION / SAY
    DIGITS with escape digits): digits such as "1234#", or None for silence. Prompts
    beyond the list meet silence. `keys` is the other way to type, as fact 18 records it:
    keys sent while prompts run, buffered by Asterisk and read in order across commands
    (GET DATA takes up to its maximum or `#`, the others one key each); when given, it
    replaces `dtmf`. `destinations` maps a dialled number to its Outcome
    (a mapping falls back to `recorded_destinations`). A Dial with no timeout that
    nobody answers ends when the caller gives up after `patience_s`.
    """

    dialled: str = "4001234567"
    caller_id: str = "053188889999"
    caller_name: str = "Test Caller"
    uniqueid: str | None = None
    script: str = "route"
    context: str = "inbound-400"
    priority: str = "1"
    dnid: str = "unknown"
    channel: str | None = None
    agi_args: tuple[str, ...] = ()
    destinations: Destinations | None = None
    dtmf: tuple[str | None, ...] = ()
    hangup: CallerHangup | None = None
    patience_s: float = 60.0
    missing_sounds: frozenset[str] = frozenset()
    """Sound files that do not exist: `name` in every language, `lang/name` in one."""
    keys: str | None = None
    pin_entry: str | None = None
    """What the caller types at every prompt that reads several digits (GET DATA with a
    maximum above one: a PIN prompt, as menus and surveys read one key), such as "2468#":
    a caller who knows the number's PIN. Those prompts then leave `dtmf` and `keys` alone;
    None: they take the caller's entries as any other prompt."""
    sound_samples: int = 3520
    """Length of every sound file at 8 kHz: agi-more's beep is 3520, agi/'s and agi-vas's 2400."""
    sound_lengths: Mapping[str, int] = field(default_factory=dict)
    """Sounds of another length, by name (`demo-congrats`, `digits/4`): 8 kHz samples."""
    channel_age_s: float = 0.0
    """How long the inbound channel had existed when AGI connected (its DIALEDTIME counts
    that too): a few milliseconds in the recordings."""
    recordings_on_disk: bool = False
    """MixMonitor writes its file once the call is bridged (option `b`): the 44-byte WAV
    header the rig's silent Local channels gave (fact 21). Off, nothing touches the disk."""
    mixmonitor_fails: bool = False
    """MixMonitor cannot start (its file cannot be made): it answers `200 result=-1` on the
    live channel, sets no MIXMONITOR_FILENAME and records nothing; the call goes on."""
    answer_hook: bool = True
    """The dialplan holds the shipped `[hotline400-answered]` subroutine (asterisk/
    extensions.conf) that Dial's `U()` runs on the destination's channel as it answers,
    stamping that moment on the caller's channel: SHARED(HOTLINE_ANSWERED). False: a
    dialplan without it, whose Gosub fails and leaves no stamp (the call goes on)."""

    def __post_init__(self) -> None:
        texts = [self.dialled, self.caller_id, self.caller_name, self.script, self.context]
        texts += [self.priority, self.dnid, self.uniqueid or "", self.channel or ""]
        if any("\n" in text or "\r" in text for text in [*texts, *self.agi_args]):
            raise ValueError("Asterisk never sends a line break inside an environment value")
        for entry in (*self.dtmf, self.keys, self.pin_entry):
            if entry is not None and not _DTMF.fullmatch(entry):
                raise ValueError(f"not DTMF: {entry!r}")

    def outcome(self, number: str) -> Outcome:
        if self.destinations is None:
            return recorded_destinations(number)
        if isinstance(self.destinations, Mapping):
            found = self.destinations.get(number)
            return found if found is not None else recorded_destinations(number)
        return self.destinations(number)


@dataclass(frozen=True)
class DialRecord:
    """One EXEC Dial as the simulator played it."""

    argument: str
    status: str
    result: str
    ring_s: float
    talk_s: float


@dataclass
class CallResult:
    """Everything that crossed the wire, and the channel as the call left it.

    `transcript` uses the recordings' markers: `<<` what Asterisk (the simulator) sent,
    `>>` what the FastAGI server sent. `replies[i]` are the lines answering
    `commands[i]`, without HANGUP notifications. `think_s[i]` is the server's wall time
    from the previous reply (or the environment) to command i.
    """

    call: SimulatedCall
    env: dict[str, str] = field(default_factory=dict)
    transcript: list[tuple[str, str]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    replies: list[list[str]] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    answered: bool = False
    """ANSWER (or an application that answers) ran: the caller pays from then on."""
    early_media: bool = False
    """Progress ran: the caller heard sound unanswered."""
    dials: list[DialRecord] = field(default_factory=list)
    hung_up_by: Literal["caller", "server"] | None = None
    hangup_lines: int = 0
    virtual_s: float = 0.0
    wall_s: float = 0.0
    think_s: list[float] = field(default_factory=list)
    took_s: list[float] = field(default_factory=list)
    """`took_s[i]`: the virtual seconds Asterisk spent on command i before answering."""
    error: str | None = None
    refused: bool = False
    """The connection was refused: nothing listens at the address."""

    @property
    def first_command_s(self) -> float | None:
        return self.think_s[0] if self.think_s else None


# --- the channel ---------------------------------------------------------------------------


class _Usage(Exception):
    """The command's arguments are wrong: Asterisk answers with its usage block."""


Reply = tuple[list[str], float]
"""Reply lines and the virtual seconds the command took."""


class _Channel:
    """The simulated inbound channel and Asterisk's AGI command handlers for it."""

    def __init__(self, call: SimulatedCall, result: CallResult, env: dict[str, str]) -> None:
        self.call = call
        self.result = result
        self.env = env
        self.caller_id = call.caller_id
        self.caller_name = call.caller_name
        self.variables: dict[str, str] = {}
        self.state = STATE_RING
        self.up_since: float | None = None
        """Virtual seconds at which the channel was answered (None: not yet)."""
        self.epoch_us = int(time.time() * 1000) * 1000
        """Asterisk's clock as the call began, in microseconds since the epoch (a whole
        millisecond): its clock at a virtual instant is this plus the virtual time."""
        self.shared: dict[str, str] = {}
        """The channel's SHARED() variables, which another channel may set."""
        self.dead = False
        self.pending_hangup = False
        self.dial_count = 0
        self.prompt_count = 0
        self.playback_count = 0
        self.sound_count = 0
        self.wait_count = 0
        self.dtmf = iter(call.dtmf)
        self.keys = call.keys
        # (command words, handler, runs on a dead channel), longest words first
        self.table: list[tuple[tuple[str, ...], Callable[[list[str]], Reply], bool]] = [
            (("answer",), self._answer, False),
            (("channel", "status"), self._channel_status, False),
            (("exec",), self._exec, True),
            (("get", "data"), self._get_data, False),
            (("get", "full", "variable"), self._get_full_variable, True),
            (("get", "option"), self._get_option, False),
            (("get", "variable"), self._get_variable, True),
            (("hangup",), self._hangup, False),
            (("noop",), self._noop, True),
            (("say", "digits"), self._say_digits, False),
            (("set", "variable"), self._set_variable, True),
            (("stream", "file"), self._stream_file, False),
            (("verbose",), self._verbose, True),
            (("wait", "for", "digit"), self._wait_for_digit, False),
        ]
        self.table.sort(key=lambda entry: -len(entry[0]))

    def hang_up(self, by: Literal["caller", "server"]) -> None:
        if not self.dead:
            self.dead = True
            self.pending_hangup = True
            self.result.hung_up_by = by

    def handle(self, line: str) -> Reply:
        """Asterisk's agi_handle_command: find the command, check the channel, run it."""
        argv = split_agi_args(line)
        for words, handler, runs_dead in self.table:
            if [word.lower() for word in argv[: len(words)]] == list(words):
                if self.dead and not runs_dead:
                    return [DEAD_CHANNEL], 0.0
                try:
                    return handler(argv[len(words) :])
                except _Usage:
                    return [USAGE_HEAD, *USAGE_TEXT[" ".join(words)], USAGE_TAIL], 0.0
        return [UNKNOWN_COMMAND], 0.0

    # --- variables

    def lookup(self, name: str) -> str | None:
        if name.upper().startswith("CALLERID(") and name.endswith(")"):
            return self._callerid(name[9:-1].lower())
        if name.upper() == "CHANNEL(LANGUAGE)":
            return self.variables.get(_LANGUAGE, self.env["agi_language"])
        if name in self.variables:
            return self.variables[name]
        if name.upper().startswith("SHARED(") and name.endswith(")"):
            return self.shared.get(name[7:-1])
        if name.upper().startswith("STRFTIME(") and name.endswith(")"):
            return _strftime(self._clock_us(self.result.virtual_s), name[9:-1])
        builtins = {
            "EXTEN": self.env["agi_extension"],
            "CONTEXT": self.env["agi_context"],
            "PRIORITY": self.env["agi_priority"],
            "CHANNEL": self.env["agi_channel"],
            "UNIQUEID": self.env["agi_uniqueid"],
        }
        return builtins.get(name)

    def _callerid(self, part: str) -> str | None:
        values = {
            "num": self.caller_id,
            "name": self.caller_name,
            "all": f'"{self.caller_name}" <{self.caller_id}>',
        }
        return values.get(part)

    def assign(self, name: str, value: str) -> None:
        if name.upper() == "CALLERID(NUM)":
            self.caller_id = value
        elif name.upper() == "CALLERID(NAME)":
            self.caller_name = value
        elif name.upper() == "CHANNEL(LANGUAGE)":
            self.variables[_LANGUAGE] = value
        else:
            self.variables[name] = value

    def expand(self, expression: str) -> str:
        """`${...}` substitution as GET FULL VARIABLE does it: names may themselves hold
        `${...}`, substituted values are not scanned again, unknown names become ""."""
        out: list[str] = []
        start = 0
        while (opening := expression.find("${", start)) >= 0:
            closing, depth = opening + 2, 1
            while closing < len(expression) and depth:
                if expression.startswith("${", closing):
                    depth, closing = depth + 1, closing + 2
                    continue
                depth -= expression[closing] == "}"
                closing += 1
            if depth:
                break  # unterminated: the rest stays literal
            out.append(expression[start:opening])
            out.append(self.lookup(self.expand(expression[opening + 2 : closing - 1])) or "")
            start = closing
        out.append(expression[start:])
        return "".join(out)

    # --- prompts

    def _next_prompt(self, most: int = 1) -> str | Literal[False] | None:
        """The caller's entry for the next listening prompt; False if they hang up now.

        A prompt reading several digits (`most` above one) gets the caller's `pin_entry`
        when there is one. With buffered `keys`, the next `most` keys (up to a `#`,
        included) come off the buffer, or None when it is empty."""
        self.prompt_count += 1
        hangup = self.call.hangup
        if hangup and hangup.at == "prompt" and hangup.nth == self.prompt_count:
            self.hang_up("caller")
            return False
        if hangup and hangup.at == "after_prompt" and hangup.nth == self.prompt_count:
            self.hang_up("caller")  # the prompt still answers the keys typed
        if most > 1 and self.call.pin_entry is not None:
            return self.call.pin_entry
        if self.keys is None:
            return next(self.dtmf, None)
        taken = ""
        while self.keys and len(taken) < most and not taken.endswith("#"):
            taken, self.keys = taken + self.keys[0], self.keys[1:]
        return taken or None

    def _sound_s(self, name: str) -> float:
        return self.call.sound_lengths.get(name, self.call.sound_samples) / SAMPLES_PER_S

    def _sound_missing(self, name: str) -> bool:
        language = self.lookup("CHANNEL(language)")
        missing = self.call.missing_sounds
        return name in missing or f"{language}/{name}" in missing

    def _playback(self, args: list[str]) -> tuple[str | None, str, float]:
        """STREAM FILE-like playback: (result, endpos, seconds); result None if played.

        A key typed during the sound stops it halfway; buffered keys (fact 18) arrive once
        the sound has played, while the command still listens."""
        name, escape = args[0], args[1]
        sound_s = self._sound_s(name)
        full = int(sound_s * SAMPLES_PER_S)
        if self._sound_missing(name):
            return "-1", "0", 0.0
        if not escape:
            self.sound_count += 1
            hangup = self.call.hangup
            if hangup and hangup.at == "sound" and hangup.nth == self.sound_count:
                self.hang_up("caller")  # the sound stops where the caller left
                return "-1", str(full // 2), sound_s / 2
            return None, str(full), sound_s
        entry = self._next_prompt()
        stopped = full if self.keys is not None else full // 2
        if entry is False:
            return "-1", str(full // 2), sound_s / 2
        if entry and entry[0] in escape:
            return str(ord(entry[0])), str(stopped), stopped / SAMPLES_PER_S
        return None, str(full), sound_s

    # --- command handlers

    def _answer(self, args: list[str]) -> Reply:
        took = 0.0 if self.state == STATE_UP else ANSWER_S
        if self.up_since is None:
            self.up_since = self.result.virtual_s  # up at once; ANSWER then waits its half second
        self.state = STATE_UP
        self.result.answered = True
        return ["200 result=0"], took

    def _channel_status(self, args: list[str]) -> Reply:
        return [f"200 result={self.state}"], 0.0

    def _noop(self, args: list[str]) -> Reply:
        return ["200 result=0"], 0.0

    def _hangup(self, args: list[str]) -> Reply:
        self.hang_up("server")
        return ["200 result=1"], 0.0

    def _verbose(self, args: list[str]) -> Reply:
        if not args:
            raise _Usage
        return ["200 result=1"], 0.0

    def _get_variable(self, args: list[str]) -> Reply:
        if len(args) != 1:
            raise _Usage
        value = self.lookup(args[0])
        return (["200 result=0"] if value is None else [f"200 result=1 ({value})"]), 0.0

    def _get_full_variable(self, args: list[str]) -> Reply:
        if len(args) not in (1, 2):
            raise _Usage
        if len(args) == 2 and args[1] != self.env["agi_channel"]:
            return ["200 result=0"], 0.0
        return [f"200 result=1 ({self.expand(args[0])})"], 0.0

    def _set_variable(self, args: list[str]) -> Reply:
        if len(args) != 2:
            raise _Usage
        self.assign(args[0], args[1])
        return ["200 result=1"], 0.0

    def _get_data(self, args: list[str]) -> Reply:
        if not 1 <= len(args) <= 3:
            raise _Usage
        timeout_ms = _int(args[1]) if len(args) > 1 else 0
        timeout_s = (timeout_ms or DEFAULT_GETDATA_TIMEOUT_MS) / 1000
        max_digits = (_int(args[2]) if len(args) > 2 else 0) or 1024
        if self._sound_missing(args[0]):
            return ["200 result=-1"], 0.0
        entry = self._next_prompt(max_digits)
        sound_s = self._sound_s(args[0])
        if entry is False:
            return ["200 result=-1"], sound_s
        digits = ""
        for key in entry or "":
            if key == "#":
                return [f"200 result={digits}"], sound_s + DIGIT_GAP_S * (len(digits) + 1)
            digits += key
            if len(digits) == max_digits:
                return [f"200 result={digits}"], sound_s + DIGIT_GAP_S * len(digits)
        took = sound_s + DIGIT_GAP_S * len(digits) + timeout_s
        return [f"200 result={digits} (timeout)"], took

    def _stream_file(self, args: list[str]) -> Reply:
        if not 2 <= len(args) <= 3:
            raise _Usage
        result, endpos, took = self._playback(args)
        return [f"200 result={result or 0} endpos={endpos}"], took

    def _get_option(self, args: list[str]) -> Reply:
        if not 2 <= len(args) <= 3:
            raise _Usage
        result, endpos, took = self._playback(args)
        waited = (_int(args[2]) if len(args) > 2 else 0) / 1000 if result is None else 0.0
        return [f"200 result={result or 0} endpos={endpos}"], took + waited

    def _say_digits(self, args: list[str]) -> Reply:
        """Plays `digits/N` for each digit; a key stops it during the first."""
        if len(args) != 2:
            raise _Usage
        result, _, took = self._playback([f"digits/{args[0][:1]}", args[1]])
        if result is None:
            took = sum(self._sound_s(f"digits/{digit}") for digit in args[0])
        return [f"200 result={result or 0}"], took

    def _wait_for_digit(self, args: list[str]) -> Reply:
        if len(args) != 1:
            raise _Usage
        timeout_ms = _int(args[0])
        entry = self._next_prompt()
        if entry is False:
            assert self.call.hangup is not None
            after_s = self.call.hangup.after_s
            return ["200 result=-1"], after_s if timeout_ms < 0 else min(after_s, timeout_ms / 1000)
        if entry:
            return [f"200 result={ord(entry[0])}"], DIGIT_GAP_S
        if timeout_ms < 0:
            self.hang_up("caller")
            return ["200 result=-1"], self.call.patience_s
        return ["200 result=0"], timeout_ms / 1000

    def _exec(self, args: list[str]) -> Reply:
        if not args:
            raise _Usage
        app, argument = args[0].lower(), args[1] if len(args) > 1 else ""
        if app not in APPLICATIONS:
            return ["200 result=-2"], 0.0
        if app == "dial":
            return self._dial(argument)
        if self.dead and app in CHANNEL_APPLICATIONS:
            return ["200 result=-1"], 0.0
        if app == "answer":
            return self._answer([])
        if app == "hangup":
            self.hang_up("server")
            return ["200 result=-1"], 0.0
        if app == "set":
            name, _, value = argument.partition("=")
            self.assign(name, value)
        elif app == "mset":
            for pair in separate_app_args(argument, ","):
                name_value = separate_app_args(pair, "=", limit=2)
                if len(name_value) == 2:  # Asterisk ignores an entry without '='
                    self.assign(*name_value)
        elif app == "playback":
            return self._playback_app(argument)
        elif app == "wait":
            return self._wait(argument)
        elif app == "mixmonitor":
            if self.call.mixmonitor_fails:
                return ["200 result=-1"], 0.0
            # Variables in EXEC arguments are not expanded (fact 21): the name is literal.
            self.variables["MIXMONITOR_FILENAME"] = split_app_args(argument)[0]

        elif app == "progress":
            self.result.early_media = True
        return ["200 result=0"], 0.0

    def _playback_app(self, argument: str) -> Reply:
        """Playback: `noanswer` plays early media on a ringing channel (fact 22); without it
        Playback answers the channel first. A caller hanging up stops it with -1. A file it
        cannot play still answers 0, as app_playback does (`res = 0; mres = 1;`): only
        PLAYBACKSTATUS says FAILED (SUCCESS once played, ami/misc.ami). Answering takes
        the half second ANSWER takes (agi/4000000008: Playback beep 0.8 s)."""
        parts = split_app_args(argument)
        options = parts[1] if len(parts) > 1 else ""
        answering_s = 0.0
        if "noanswer" not in options.split("&") and self.state != STATE_UP:
            _, answering_s = self._answer([])
        self.playback_count += 1
        self.variables["PLAYBACKSTATUS"] = "FAILED"
        files = parts[0].split("&")
        sound_s = sum(self._sound_s(name) for name in files)
        hangup = self.call.hangup
        if hangup and hangup.at == "playback" and hangup.nth == self.playback_count:
            self.hang_up("caller")
            return ["200 result=-1"], answering_s + sound_s / 2
        if any(self._sound_missing(name) for name in files):
            return ["200 result=0"], answering_s
        self.variables["PLAYBACKSTATUS"] = "SUCCESS"
        return ["200 result=0"], answering_s + sound_s

    def _wait(self, argument: str) -> Reply:
        """Wait: 0 after the time, also on a dead channel; -1 when the caller hangs up
        during it (fact 24)."""
        seconds = _float(argument)
        if self.dead:
            return ["200 result=0"], seconds
        self.wait_count += 1
        hangup = self.call.hangup
        if hangup and hangup.at == "wait" and hangup.nth == self.wait_count:
            self.hang_up("caller")
            return ["200 result=-1"], min(hangup.after_s, seconds)
        return ["200 result=0"], seconds

    # --- Dial

    def _dial(self, argument: str) -> Reply:
        if self.dead:
            self._set_dial_variables("CANCEL", cause="16")
            self.result.dials.append(DialRecord(argument, "CANCEL", "-1", 0.0, 0.0))
            return ["200 result=-1"], 0.0
        parts = split_app_args(argument)
        if not parts[0]:
            return ["200 result=-1"], 0.0  # "Dial requires an argument"
        timeout = _float(parts[1]) if len(parts) > 1 else 0.0
        options = parts[2] if len(parts) > 2 else ""
        self.dial_count += 1
        targets = [(target, self._target_outcome(target)) for target in parts[0].split("&")]
        status, ring, talk, peer = self._race(targets, timeout or None)
        talk = min(talk, _limit_s(options))
        ends = {"ANSWER": ring + talk, "NOANSWER": timeout}.get(status, ring)
        hangup = self.call.hangup
        leaves_at = float("inf")
        if hangup is not None and hangup.at == "dial" and hangup.nth == self.dial_count:
            leaves_at = hangup.after_s
        rings_until_caller_leaves = status == "NOANSWER" and not timeout
        if rings_until_caller_leaves:
            leaves_at = ends = min(leaves_at, self.call.patience_s)
        caller_left = rings_until_caller_leaves or leaves_at < ends
        if caller_left:
            self.hang_up("caller")
            if status == "ANSWER" and leaves_at >= ring:
                talk = leaves_at - ring  # hung up while bridged
            else:
                status = "CANCEL"
            ends = leaves_at
        if status == "ANSWER":
            began = self.result.virtual_s
            self._run_answer_hook(options, began + ring)
            if self.up_since is None:
                self.up_since = began + ring  # Dial answers the caller when the callee answers
            self.state = STATE_UP
            self._write_recording()
            keeps_going = "g" in _option_letters(options) and not caller_left
            result = "0" if keeps_going else "-1"
            self._set_dial_variables(
                "ANSWER",
                cause="16",
                up_s=began + ends - self.up_since,
                age_s=self.call.channel_age_s + began + ends,
                peer=peer,
            )
        else:
            result = "-1" if status == "CANCEL" else "0"
            self._set_dial_variables(status, cause="16" if status == "CANCEL" else "0")
            ring, talk = ends, 0.0
        self.result.dials.append(DialRecord(argument, status, result, ring, talk))
        return [f"200 result={result}"], ends

    def _run_answer_hook(self, options: str, answered_s: float) -> None:
        """Dial's `U(context^arg...)`: the subroutine runs on the destination's channel as
        it answers. Dial turns every `^` into a comma and takes the context up to the first
        (app_dial.c), Gosub's ARG1 runs to the next (app_stack.c). The shipped
        `[hotline400-answered]` sets SHARED(HOTLINE_ANSWERED,ARG1) to
        `${STRFTIME(,UTC,%Y-%m-%dT%H:%M:%S.%3q)}`: on this channel when ARG1 names it
        (SHARED finds a channel by its whole name or uniqueid, case aside, else by the
        prefix before a `-`); a context the dialplan lacks, or a channel not found, sets
        nothing, and the Dial bridges all the same."""
        match = re.search(r"U\(([^)]*)\)", options)
        if match is None or not self.call.answer_hook:
            return
        context, _, arguments = match[1].replace("^", ",").partition(",")
        wanted = arguments.split(",", 1)[0].lower()
        name, uniqueid = self.env["agi_channel"].lower(), self.env["agi_uniqueid"].lower()
        found = wanted in (name, uniqueid) or (wanted and name.startswith(f"{wanted}-"))
        if context == ANSWER_HOOK and found:
            stamp = _strftime(self._clock_us(answered_s), ANSWER_STAMP_CLOCK)
            self.shared["HOTLINE_ANSWERED"] = stamp

    def _clock_us(self, virtual_s: float) -> int:
        """Asterisk's clock at the call's virtual second `virtual_s`, in microseconds."""
        return self.epoch_us + round(virtual_s * 1_000_000)

    def _write_recording(self) -> None:
        """A bridged call is recorded by a MixMonitor started on the channel (fact 21)."""
        path = self.variables.get("MIXMONITOR_FILENAME")
        if path and self.call.recordings_on_disk:
            file = Path(path)
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(_SILENT_WAV)

    def _target_outcome(self, target: str) -> Outcome:
        technology, _, resource = target.partition("/")
        if technology.lower() not in KNOWN_TECHNOLOGIES or not resource:
            return Outcome.unavailable()
        return self.call.outcome(resource.split("@", 1)[0])

    def _race(
        self, targets: list[tuple[str, Outcome]], timeout: float | None
    ) -> tuple[str, float, float, str]:
        """Dial rings every target at once: the first to answer wins; else NOANSWER if any
        still rings at the timeout; else the first target's refusal."""
        answering = [
            (outcome.ring_s, target, outcome)
            for target, outcome in targets
            if outcome.status == "ANSWER" and (timeout is None or outcome.ring_s < timeout)
        ]
        if answering:
            ring, target, outcome = min(answering, key=lambda item: item[0])
            return "ANSWER", ring, outcome.talk_s, target
        if any(outcome.status in ("ANSWER", "NOANSWER") for _, outcome in targets):
            return "NOANSWER", 0.0, 0.0, ""
        return targets[0][1].status, max(o.ring_s for _, o in targets), 0.0, ""

    def _set_dial_variables(
        self, status: str, *, cause: str, up_s: float = 0.0, age_s: float = 0.0, peer: str = ""
    ) -> None:
        """`up_s`, `age_s`: the channel's up time and age as the Dial ends (answered)."""
        answered = status == "ANSWER"
        talk_ms, dialed_ms = round(up_s * 1000), round(age_s * 1000)
        resource = peer.partition("/")[2]
        peer_name = ""
        if answered:
            suffix = ";1" if peer.lower().startswith("local/") else ""
            peer_name = f"{peer}-{next(_sequence):08x}{suffix}"
        self.variables.update(
            {
                "DIALSTATUS": status,
                "ANSWEREDTIME": str(talk_ms // 1000) if answered else "",
                "DIALEDTIME": str(dialed_ms // 1000) if answered else "",
                "ANSWEREDTIME_MS": str(talk_ms) if answered else "",
                "DIALEDTIME_MS": str(dialed_ms) if answered else "",
                "HANGUPCAUSE": cause,
                "DIALEDPEERNAME": peer_name,
                "DIALEDPEERNUMBER": resource if answered else "",
            }
        )


_SILENT_WAV = (
    b"RIFF"
    + (36).to_bytes(4, "little")
    + b"WAVEfmt "
    + (16).to_bytes(4, "little")
    + (1).to_bytes(2, "little")
    + (1).to_bytes(2, "little")
    + (8000).to_bytes(4, "little")
    + (16000).to_bytes(4, "little")
    + (2).to_bytes(2, "little")
    + (16).to_bytes(2, "little")
    + b"data"
    + (0).to_bytes(4, "little")
)
"""A WAV file of 8 kHz 16-bit mono holding no sound: its 44-byte header."""


def _int(text: str) -> int:
    """atoi: leading integer, 0 when there is none."""
    match = re.match(r"\s*-?\d+", text)
    return int(match[0]) if match else 0


def _float(text: str) -> float:
    match = re.match(r"\s*\d+(\.\d+)?", text)
    return float(match[0]) if match else 0.0


def _option_letters(options: str) -> str:
    """Dial's option letters without their parenthesised parameters."""
    return re.sub(r"\([^)]*\)", "", options)


def _strftime(moment_us: int, arguments: str) -> str | None:
    """STRFTIME([epoch][,timezone][,format]) with an empty epoch (now, `moment_us` in
    microseconds), as func_strings.c's acf_strftime writes it: the fields in the zone named
    (UTC, GMT or a zoneinfo name; Asterisk's fallback for a name it cannot load is GMT), else
    in local time; `%1q`..`%6q` (`%q`: 3) the fraction of the second cut to that many digits
    (ast_strftime's own); the rest libc's strftime, whose `%s` is mktime() of those fields in
    the process's own zone: the epoch only for local fields."""
    parts = arguments.split(",", 2)
    if parts[0].strip() or len(parts) < 3:
        return None  # only "now" with a format is simulated
    seconds, fraction = divmod(moment_us, 1_000_000)
    zone_name = parts[1].strip()
    if not zone_name:
        fields = time.localtime(seconds)
    else:
        fields = datetime.fromtimestamp(seconds, _zone(zone_name)).timetuple()
    text = re.sub(r"%([1-6]?)q", lambda match: f"{fraction:06d}"[: int(match[1] or 3)], parts[2])
    text = text.replace("%s", str(int(time.mktime(fields))))
    return time.strftime(text, fields)


def _zone(name: str) -> tzinfo:
    """A zone STRFTIME names; GMT (UTC) when it names none Asterisk could load."""
    if name.upper() in {"UTC", "GMT"}:
        return UTC
    try:
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return UTC


def _limit_s(options: str) -> float:
    """Dial's `L(x)` option: the answered call is cut after x milliseconds."""
    match = re.search(r"L\((\d+)", options)
    return int(match[1]) / 1000 if match else float("inf")


# --- the conversation ----------------------------------------------------------------------


def environment(call: SimulatedCall, host: str, port: int) -> dict[str, str]:
    """The environment block, in Asterisk's order."""
    sequence = next(_sequence)
    env = {
        "agi_network": "yes",
        "agi_network_script": call.script,
        "agi_request": f"agi://{host}:{port}/{call.script}",
        "agi_channel": call.channel or f"Local/{call.dialled}@{call.context}-{sequence:08x};2",
        "agi_language": "en",
        "agi_type": "Local",
        "agi_uniqueid": call.uniqueid or f"{int(time.time())}.{sequence}",
        "agi_version": "22.10.1",
        "agi_callerid": call.caller_id,
        "agi_calleridname": call.caller_name,
        "agi_callingpres": "0",
        "agi_callingani2": "0",
        "agi_callington": "0",
        "agi_callingtns": "0",
        "agi_dnid": call.dnid,
        "agi_rdnis": "unknown",
        "agi_context": call.context,
        "agi_extension": call.dialled,
        "agi_priority": call.priority,
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": str(140_000_000_000_000 + sequence),
    }
    env.update({f"agi_arg_{n}": arg for n, arg in enumerate(call.agi_args, start=1)})
    return env


async def _command_lines(reader: asyncio.StreamReader) -> AsyncIterator[str]:
    """Commands as res_agi's fgets loop reads them: up to and including `\\n`, at most
    2047 bytes each (a longer line becomes several commands); a partial line before EOF
    still runs."""
    buffer = bytearray()
    limit = AGI_BUF_LEN - 1
    while True:
        newline = buffer.find(b"\n", 0, limit)
        if newline >= 0:
            line, buffer = bytes(buffer[:newline]), buffer[newline + 1 :]
        elif len(buffer) >= limit:
            line, buffer = bytes(buffer[:limit]), buffer[limit:]
        else:
            chunk = await reader.read(4096)
            if chunk:
                buffer += chunk
                continue
            if buffer:
                yield buffer.decode("utf-8", errors="replace")
            return
        yield line.decode("utf-8", errors="replace")


class _Conversation:
    """One call: send the environment, answer commands until the server closes its side."""

    def __init__(
        self,
        call: SimulatedCall,
        result: CallResult,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        time_scale: float,
    ) -> None:
        self.result = result
        self.reader = reader
        self.writer = writer
        self.time_scale = time_scale
        self.channel = _Channel(call, result, result.env)
        self.loop = asyncio.get_running_loop()

    def _send(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.writer.write(line.encode("utf-8") + b"\n")
            self.result.transcript.append(("<<", line))
            self.result.hangup_lines += line == HANGUP_LINE

    def _flush_hangup(self) -> None:
        if self.channel.pending_hangup:
            self.channel.pending_hangup = False
            self._send([HANGUP_LINE])

    async def run(self) -> None:
        env = self.result.env
        self.writer.write("".join(f"{key}: {value}\n" for key, value in env.items()).encode())
        self.writer.write(b"\n")
        hangup = self.channel.call.hangup
        if hangup is not None and hangup.at == "after_env":
            self.channel.hang_up("caller")
            self._flush_hangup()  # a hang-up while no command runs is reported at once
        await self.writer.drain()
        idle_since = self.loop.time()
        async for line in _command_lines(self.reader):
            self.result.think_s.append(self.loop.time() - idle_since)
            self.result.transcript.append((">>", line))
            self.result.commands.append(line)
            self._flush_hangup()  # a hang-up during the previous command, told before this reply
            reply, took = self.channel.handle(line)
            self.result.replies.append(reply)
            self.result.took_s.append(took)
            self.result.virtual_s += took
            if self.time_scale > 0 and took > 0:
                await asyncio.sleep(took * self.time_scale)
            self._send(reply)
            replied = len(self.result.replies)
            if hangup is not None and hangup.at == "idle" and hangup.nth == replied:
                self.channel.hang_up("caller")
                self._flush_hangup()  # told at once, as no command runs
            await self.writer.drain()
            idle_since = self.loop.time()
        # The server closed its side: Asterisk reports any hang-up not yet told, then
        # sends HANGUP as it leaves the AGI loop, and closes.
        self._flush_hangup()
        self._send([HANGUP_LINE])
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.drain()


async def run_call(
    host: str,
    port: int,
    call: SimulatedCall,
    *,
    time_scale: float = 0.0,
    timeout: float | None = 60.0,
    connecting: asyncio.Semaphore | None = None,
    result: CallResult | None = None,
) -> CallResult:
    """Play one call against the FastAGI server at host:port.

    Never raises for the server's behaviour: a refused connection, a reset or a server
    that does not end the session within `timeout` (wall seconds) is `result.error`.
    `connecting`, when given, is held from the connect until the environment block is
    written (see `run_calls`). `result`, when given, is the record filled as the call goes
    (its `virtual_s` is the call's virtual time so far: a clock can follow it).
    """
    result = CallResult(call=call) if result is None else result
    started = time.monotonic()
    try:
        if connecting is None:
            reader, writer = await asyncio.open_connection(host, port)
        else:
            async with connecting:  # released as the block is written, in this same step
                reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        result.error = f"connect failed: {exc}"
        result.refused = isinstance(exc, ConnectionRefusedError)
        return result
    result.env = environment(call, host, port)
    conversation = _Conversation(call, result, reader, writer, time_scale)
    try:
        async with asyncio.timeout(timeout):
            await conversation.run()
    except TimeoutError:
        result.error = f"server did not end the session within {timeout} s"
    except (ConnectionError, OSError) as exc:
        result.error = f"connection broke: {exc}"
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
        result.variables = dict(conversation.channel.variables)
        result.wall_s = time.monotonic() - started
    return result


async def run_calls(
    host: str,
    port: int,
    calls: Sequence[SimulatedCall],
    concurrency: int,
    *,
    time_scale: float = 0.0,
    timeout: float | None = 60.0,
    connecting: int | None = None,
) -> list[CallResult]:
    """Play many calls with at most `concurrency` connections open; results in order.

    `connecting` bounds the calls between their connect and their environment block, as
    Asterisk sends the block the moment a channel's connection is up. Without it one
    event loop starting thousands of calls at once has the kernel complete every
    handshake (the server may accept them all) before it writes the first block, and the
    last blocks go out seconds after their connections were accepted.
    """
    if concurrency < 1 or (connecting is not None and connecting < 1):
        raise ValueError("concurrency and connecting must be at least 1")
    gate = asyncio.Semaphore(concurrency)
    opening = asyncio.Semaphore(connecting) if connecting is not None else None

    async def one(call: SimulatedCall) -> CallResult:
        async with gate:
            return await run_call(
                host, port, call, time_scale=time_scale, timeout=timeout, connecting=opening
            )

    return list(await asyncio.gather(*(one(call) for call in calls)))


# --- hostile clients -----------------------------------------------------------------------


@dataclass(frozen=True)
class HostileOutcome:
    """What a misbehaving client saw: did the server close on it, and how soon."""

    server_closed: bool
    elapsed_s: float
    received: bytes


async def send_raw(
    host: str, port: int, payload: bytes, *, half_close: bool = False, wait_s: float = 2.0
) -> HostileOutcome:
    """Send `payload`, optionally half-close, and wait up to `wait_s` for the server to
    close the connection."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    received = bytearray()
    closed = False
    try:
        async with asyncio.timeout(wait_s):
            writer.write(payload)
            await writer.drain()
            if half_close:
                writer.write_eof()
            while chunk := await reader.read(65536):
                received += chunk[: 65536 - len(received)]
            closed = True
    except TimeoutError:
        pass
    except (ConnectionError, OSError):
        closed = True
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    return HostileOutcome(closed, time.monotonic() - started, bytes(received))


async def connect_and_close(host: str, port: int) -> None:
    """Open a connection and close it at once without a byte."""
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


def _partial_header() -> bytes:
    env = environment(SimulatedCall(), "127.0.0.1", 4573)
    return "".join(f"{key}: {value}\n" for key, value in list(env.items())[:5]).encode()


async def send_header_without_end(
    host: str, port: int, *, close: bool, wait_s: float = 2.0
) -> HostileOutcome:
    """Five environment lines and no blank line; then close (`close=True`) or hold."""
    return await send_raw(host, port, _partial_header(), half_close=close, wait_s=wait_s)


async def send_oversized_header(
    host: str, port: int, size: int = 1 << 20, wait_s: float = 2.0
) -> HostileOutcome:
    """An `agi_` header line of `size` bytes that never ends."""
    payload = b"agi_network: " + b"y" * (size - 13)
    return await send_raw(host, port, payload, wait_s=wait_s)


async def send_binary_junk(host: str, port: int, wait_s: float = 2.0) -> HostileOutcome:
    """Bytes that are no header at all, line breaks included."""
    payload = bytes(range(256)) * 4 + b"\n\n"
    return await send_raw(host, port, payload, wait_s=wait_s)
