"""The FastAGI session as Asterisk really speaks it: environment block, commands, replies.

panoramisk's FastAGI `Request` reads one line per command and so misreads a real
Asterisk 22: the `HANGUP` line Asterisk sends after a caller hangs up would be taken as
the reply to the next command and shift every later reply by one; a `520-` usage block is
read one line short; `511` (dead channel) is an unknown error; and its header loop spins
forever on a client that closes mid-header. This module and router.fastagi.connection,
which cuts the bytes into the environment block and lines, are the one place that reads
the wire; everything above them gets whole `AGIReply` objects.

Its result-line parser, `panoramisk.utils.parse_agi_result`, does not fit either: it turns
every `result=-1` into an `AGIAppError` and drops the rest of the line (Dial's -1 is a
normal end of a bridged call, GET DATA's -1 a missing prompt), its value pattern needs a
non-empty result so `200 result= (timeout)` loses the "timeout" marker that tells an
empty entry from a timed-out one, and a line without a numeric code raises ValueError.
"""

import asyncio
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from router.fastagi.connection import AGIConnection
from router.fastagi.errors import (
    AGIMalformedReply,
    AGIProtocolError,
    AGIReplyTimeout,
)
from router.fastagi.quoting import quote

MAX_USAGE_LINES = 200
MAX_COMMAND_BYTES = 2047
"""Asterisk reads commands with fgets into a 2048-byte buffer (AGI_BUF_LEN): anything
longer is cut there and the remainder runs as a second command."""
COMMAND_TIMEOUT_S = 120.0
"""Default wait for the reply to any command but Dial (router.yaml's command_timeout):
prompts and announcements finish within it, and a peer that stops answering holds a call
no longer. Dial waits without limit since it rings and bridges for as long as the call
lasts; the listener's TCP keepalive (router.fastagi.server) notices a peer gone meanwhile."""
MAX_EXEC_ARGS = 1024
"""Characters in one application argument string; longer ones are refused, not cut."""

DEAD_CHANNEL_CODE = 511
_HANGUP_LINE = "HANGUP"
_CODE_LINE = re.compile(r"(\d{3})([ -])(.*)")
_RESULT = re.compile(r"result=(\S*)(?: \((.*)\))?(?: endpos=(-?\d+))?")
_APP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*(\([A-Za-z0-9_,.:%-]*\))?")
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
_ESCAPE_DIGITS = re.compile(r"[0-9*#]*")


@dataclass(slots=True)
class AGIReply:
    """One reply to one command.

    `result` is the text after `result=` ("" for GET DATA's timeout, "-1" after an
    answered Dial); `data` the text in parentheses, or for a 520 the usage text; `raw`
    every line of the reply as received (HANGUP notifications are not part of a reply).

    Slots and not frozen: a frozen dataclass sets each field through
    `object.__setattr__`, which made building a reply cost as much as parsing it, and a
    call builds one per command. Nothing changes a reply after it is made.
    """

    code: int
    result: str = ""
    data: str | None = None
    endpos: int | None = None
    raw: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Asterisk ran the command; what the result means is the command's business."""
        return self.code == 200

    @property
    def result_int(self) -> int | None:
        try:
            return int(self.result)
        except ValueError:
            return None

    @property
    def timed_out(self) -> bool:
        return self.data == "timeout"

    @property
    def digit(self) -> str | None:
        """The key pressed, for commands that answer its ASCII code (STREAM FILE, ...)."""
        code = self.result_int
        return chr(code) if self.ok and code is not None and 0 < code < 128 else None

    @property
    def message(self) -> str:
        """The text after the code on the first line (`Invalid or unknown command`)."""
        return self.raw[0][4:] if self.raw else ""


_RESULT_PREFIX = "200 result="
_ENDPOS = "endpos="
_DATA_ENDPOS = ") endpos="
_MAX_POSITION_DIGITS = 18
"""Digits of an `endpos` read on the fast path: a 64-bit sample count has at most 19."""


def parse_result_line(line: str) -> AGIReply:
    """Parse a single `200 result=...` line (and other single-line codes)."""
    if line.startswith(_RESULT_PREFIX):
        reply = _parse_common_result(line)
        if reply is not None:
            return reply
    return _parse_any_reply(line)


def _parse_common_result(line: str) -> AGIReply | None:
    """The shapes nearly every reply has, split with `str.partition` rather than two
    regular expressions (a call reads about eleven replies): `result=R`, `result=R (D)`,
    `result=R (D) endpos=N` and `result=R endpos=N`, with R free of whitespace and N ASCII
    digits. None for any other line, which `_parse_any_reply` then reads; both give the
    same reply for a line either accepts.
    """
    value, space, tail = line[len(_RESULT_PREFIX) :].partition(" ")
    if not value.isprintable():  # whitespace other than a space: not `result=\S*`
        return None
    if not space:
        return AGIReply(200, value, None, None, [line])
    if tail.startswith("("):
        if len(tail) > 1 and tail.endswith(")"):
            # The last `)` closes the data, as the greedy `\((.*)\)` of _RESULT reads it.
            return AGIReply(200, value, tail[1:-1], None, [line])
        data, marker, position = tail.rpartition(_DATA_ENDPOS)
        if marker and _is_position(position):
            return AGIReply(200, value, data[1:], int(position), [line])
        return None
    if tail.startswith(_ENDPOS) and _is_position(position := tail[len(_ENDPOS) :]):
        return AGIReply(200, value, None, int(position), [line])
    return None


def _is_position(text: str) -> bool:
    """`-?[0-9]+` in ASCII, of a length a file position has (other digits, and longer
    runs, are left to the regular expression)."""
    digits = text[1:] if text.startswith("-") else text
    return len(digits) <= _MAX_POSITION_DIGITS and digits.isascii() and digits.isdigit()


def _parse_any_reply(line: str) -> AGIReply:
    match = _CODE_LINE.fullmatch(line)
    if match is None:
        raise AGIMalformedReply(f"not an AGI reply line: {line[:80]!r}")
    code, rest = int(match[1]), match[3]
    if code != 200:
        return AGIReply(code=code, raw=[line])
    result = _RESULT.fullmatch(rest)
    if result is None:
        if not rest.startswith("result="):
            raise AGIMalformedReply(f"200 reply without result=: {line[:80]!r}")
        # A shape this parser does not know (speech commands): keep the first token.
        return AGIReply(code=200, result=rest[7:].split(" ", 1)[0], raw=[line])
    try:
        endpos = int(result[3]) if result[3] is not None else None
    except ValueError:  # more digits than Python reads (4300): no file is that long
        raise AGIMalformedReply(f"endpos beyond any file position: {line[:80]!r}") from None
    return AGIReply(code=200, result=result[1], data=result[2], endpos=endpos, raw=[line])


class _Default(Enum):
    """Marks "use the session's timeout for this kind of command"."""

    TIMEOUT = "default"


Timeout = float | None | _Default


class AGISession:
    """A FastAGI conversation with one channel, one command at a time.

    `hung_up` (and `hangup_event`) turn true when Asterisk reports the caller gone: a
    `HANGUP` line, which arrives before the reply to the next command, or a 511 reply.
    `dead` is true once a command was refused as not permitted on a dead channel. Neither
    raises: after a hang-up Asterisk still runs EXEC, GET/SET VARIABLE, VERBOSE and NOOP,
    and the other commands come back as replies with code 511.
    Any protocol failure (EOF, timeout, malformed reply) leaves the session unusable,
    because the next reply could no longer be matched to its command.

    Close the session when the call is done: that also drops its reply-timeout timer.

    The command path is shaped for its cost, since the router runs it about eleven times a
    call and it used to take most of the router's time beyond the bare protocol:
    - one timer per session instead of a fresh `asyncio.timeout()` per command: a command
      only moves the session's deadline, and the timer, when it fires early, sleeps on to
      the current deadline; at the deadline it fails the connection, which wakes the
      waiting read with `AGIReplyTimeout`.
    - commands queue behind a busy flag and a list of waiters instead of an
      `asyncio.Lock`: one coroutine drives a session, so the flag is almost always free
      and the common case costs two attribute writes.
    - a reply is read and parsed in one method, most lines by `str.partition`, from the
      lines the connection has already cut (router.fastagi.connection).
    """

    def __init__(
        self,
        connection: AGIConnection,
        env: dict[str, str],
        *,
        command_timeout: float | None = COMMAND_TIMEOUT_S,
    ) -> None:
        self.env = env
        self.hung_up = False
        self.dead = False
        self.hangup_event = asyncio.Event()
        self._connection = connection
        self._command_timeout = command_timeout
        self._busy = False
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._failure: AGIProtocolError | None = None
        self._deadline: float | None = None
        """When the reply in flight is due; None while no reply with a limit is awaited."""
        self._pending = ""
        self._pending_timeout: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        """When `_timer` fires; kept here as `TimerHandle.when()` is a method call."""
        self._expired: AGIReplyTimeout | None = None

    # --- the wire --------------------------------------------------------------------

    async def command(self, line: str, timeout: Timeout = _Default.TIMEOUT) -> AGIReply:
        """Send one command line and return its reply.

        `timeout` defaults to `command_timeout`; None waits without limit.
        """
        if "\n" in line or "\r" in line:
            raise ValueError("an AGI command is one line; quote values with agi_quote")
        payload = line.encode("utf-8") + b"\n"
        if len(payload) > MAX_COMMAND_BYTES:
            raise ValueError(f"AGI command longer than {MAX_COMMAND_BYTES} bytes")
        if timeout is _Default.TIMEOUT:
            timeout = self._command_timeout
        if self._busy:
            await self._wait_for_turn()
        else:
            self._busy = True
        try:
            if self._failure is not None:
                raise type(self._failure)(f"session unusable: {self._failure}")
            try:
                if self._connection.lines:
                    self._refuse_unasked()
                self._connection.send(payload)
                if timeout is not None:
                    self._arm(line, timeout)
                reply = await self._read_reply()
                if self._expired is not None:  # the deadline passed as the reply came in
                    raise self._expired
            except AGIProtocolError as exc:
                self._failure = exc
                raise
            except asyncio.CancelledError:
                self._failure = AGIProtocolError(f"cancelled while {line[:40]!r} was running")
                raise
        finally:
            self._deadline = None
            self._next_turn()
        if reply.code == DEAD_CHANNEL_CODE:
            self.dead = True
            self._note_hangup()
        return reply

    def _refuse_unasked(self) -> None:
        """Lines already waiting as a command goes out: HANGUP notices are noted; any
        other line answers no command (Asterisk sends nothing else unasked), and taking it
        for this command's reply would read every later reply one command late."""
        self._note_told_hangups()
        lines = self._connection.lines
        if lines:
            unasked = lines[0].decode("utf-8", "replace")
            raise AGIMalformedReply(f"a reply line came unasked: {unasked[:80]!r}")

    async def close(self) -> None:
        """End the session: Asterisk then continues the dialplan after AGI()."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._connection.close()

    async def _wait_for_turn(self) -> None:
        """Queue behind the command in flight; its end hands the turn over in order."""
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed the turn, then cancelled
                self._next_turn()
            raise

    def _next_turn(self) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)  # _busy stays set: the turn passes straight on
                return
        self._busy = False

    def _arm(self, line: str, timeout: float) -> None:
        """Set the deadline of the reply now due; the session's one timer is moved only
        when it would fire after that deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._deadline, self._pending, self._pending_timeout = deadline, line, timeout
        timer = self._timer
        if timer is None or self._timer_at > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(deadline, self._check_deadline, deadline)
            self._timer_at = deadline

    def _check_deadline(self, fired_for: float) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None:
            return
        if deadline > fired_for:  # the reply it was set for came; a later one is due
            self._timer = asyncio.get_running_loop().call_at(
                deadline, self._check_deadline, deadline
            )
            self._timer_at = deadline
            return
        self._expired = AGIReplyTimeout(
            f"no reply to {self._pending[:40]!r} in {self._pending_timeout} s"
        )
        self._connection.fail(self._expired)

    async def _read_reply(self) -> AGIReply:
        """Read lines up to the reply: HANGUP notices and `100 Trying` lines are skipped,
        a `520-` usage block is read whole."""
        connection = self._connection
        lines = connection.lines
        while True:
            if not lines:
                await connection.more()
                continue
            # decode's arguments positional: as keywords they double its cost.
            line = lines.popleft().removesuffix(b"\r").decode("utf-8", "replace")
            if line == _HANGUP_LINE:
                self._note_hangup()
                continue
            if line.startswith("520-"):
                return await self._read_usage(line)
            reply = parse_result_line(line)
            if reply.code != 100:  # "100 result=0 Trying..." precedes the real reply
                return reply

    async def _next_line(self) -> str:
        connection = self._connection
        while not connection.lines:
            await connection.more()
        return connection.lines.popleft().removesuffix(b"\r").decode("utf-8", "replace")

    async def _read_usage(self, first: str) -> AGIReply:
        """A `520-` block runs to its `520 End of proper usage.` line."""
        raw = [first]
        while len(raw) <= MAX_USAGE_LINES:
            line = await self._next_line()
            raw.append(line)
            if line.startswith("520 "):
                return AGIReply(code=520, data="\n".join(raw[1:-1]), raw=raw)
        raise AGIMalformedReply(f"520 usage block longer than {MAX_USAGE_LINES} lines")

    def caller_gone(self) -> bool:
        """Whether Asterisk has told the caller gone so far: with no command running, a
        HANGUP line that came after the last reply is noted now rather than as the next
        command goes out, so a step that must not run on a dead channel (a Dial) can be
        left out."""
        if not self._busy:
            self._note_told_hangups()
        return self.hung_up

    def _note_told_hangups(self) -> None:
        lines = self._connection.lines
        while lines and lines[0].removesuffix(b"\r") == b"HANGUP":
            lines.popleft()
            self._note_hangup()

    def _note_hangup(self) -> None:
        self.hung_up = True
        self.hangup_event.set()

    # --- commands the call session uses ------------------------------------------------

    async def exec(self, app: str, args: str = "", timeout: Timeout = _Default.TIMEOUT) -> AGIReply:
        """Run a dialplan application. `args` is its whole argument string, built from
        vetted parts (see agi_quote.dial_argument); it is sent as one quoted word.

        Dial answers only when the call is over: `result=-1` after a bridged call is
        normal; DIALSTATUS tells the outcome. So Dial alone waits without limit by
        default; every other application has `command_timeout`.
        """
        if not _APP_NAME.fullmatch(app):
            raise ValueError(f"not an application name: {app!r}")
        if len(args) > MAX_EXEC_ARGS:
            raise ValueError(f"application arguments longer than {MAX_EXEC_ARGS} characters")
        line = f"EXEC {app} {quote(args, MAX_EXEC_ARGS)}" if args else f"EXEC {app}"
        if timeout is _Default.TIMEOUT and app == "Dial":
            timeout = None
        return await self.command(line, timeout)

    async def get_variable(self, name: str) -> str | None:
        """The variable's value, "" when set but empty, None when unset (or refused)."""
        reply = await self.command(f"GET VARIABLE {_checked(_VARIABLE_NAME, name, 'name')}")
        if not reply.ok or reply.result != "1":
            return None
        return reply.data or ""

    async def get_variables(self, *names: str) -> list[str] | None:
        """Several variables in one round trip: `GET FULL VARIABLE ${A},${B}` answers
        `200 result=1 (a,b)` (recorded, transcripts fact 25). Unset variables come back as
        "". Only for variables whose values never hold a comma (DIALSTATUS, the Dial
        times): the values are split there. None when Asterisk refused the command or the
        reply does not split into one value per name.
        """
        for name in names:
            _checked(_VARIABLE_NAME, name, "name")
        expression = ",".join(f"${{{name}}}" for name in names)
        reply = await self.command(f"GET FULL VARIABLE {expression}")
        if not reply.ok or reply.result != "1":
            return None
        values = (reply.data or "").split(",")
        return values if len(values) == len(names) else None

    async def set_variables(self, values: Mapping[str, str]) -> None:
        """Set channel variables with as few round trips as the values allow.

        `EXEC MSet "A=1,B=2"` sets several at once (recorded, transcripts fact 25). MSet
        splits its argument at commas and `=`, drops quotes and backslashes, and pairs
        parentheses and brackets, so only values free of that syntax go in it; any other
        value gets its own `SET VARIABLE`, whose quoting carries anything. Both work on a
        hung-up channel (fact 14).
        """
        batched: list[str] = []
        for name, value in values.items():
            _checked(_VARIABLE_NAME, name, "name")
            if _mset_safe(value):
                batched.append(f"{name}={value}")
            else:
                await self.set_variable(name, value)
        if batched:
            await self.exec("MSet", ",".join(batched))

    async def set_variable(self, name: str, value: str) -> AGIReply:
        line = f"SET VARIABLE {_checked(_VARIABLE_NAME, name, 'name')} {quote(value)}"
        return await self.command(line)

    async def answer(self) -> AGIReply:
        return await self.command("ANSWER")

    async def hangup(self) -> AGIReply:
        return await self.command("HANGUP")

    async def get_data(
        self, prompt: str, timeout_ms: int, max_digits: int
    ) -> tuple[str | None, bool]:
        """Play `prompt` and collect digits: (digits, timed_out).

        `("1234", False)` for an entry ended by `#` or by reaching max_digits,
        `("99", True)` for a partial entry, `("", True)` for silence, `("", False)` for `#`
        alone. A failure (missing prompt file, hang-up, dead channel) gives `(None, False)`;
        `hung_up` tells which.
        """
        if timeout_ms < 0 or max_digits < 1:
            raise ValueError("timeout_ms must be >= 0 and max_digits >= 1")
        file = _checked(_FILE_NAME, prompt, "prompt")
        line = f"GET DATA {file} {timeout_ms} {max_digits}"
        reply = await self.command(line, self._keying_timeout(timeout_ms, max_digits))
        if not reply.ok or reply.result == "-1":
            return None, False
        return reply.result, reply.timed_out

    async def get_key(self, prompt: str, timeout_ms: int) -> str | None:
        """Play `prompt` and wait for one key (`GET DATA prompt timeout 1`, fact 18): the
        key, "" when none came within the timeout (or `#` alone), None when the prompt
        could not be played: a missing sound file or a hang-up, both `result=-1` (fact 20),
        which `hung_up` tells apart."""
        file = _checked(_FILE_NAME, prompt, "prompt")
        timeout_ms = max(timeout_ms, 0)
        reply = await self.command(
            f"GET DATA {file} {timeout_ms} 1", self._keying_timeout(timeout_ms, 1)
        )
        if not reply.ok or reply.result == "-1":
            return None
        return reply.result

    def _keying_timeout(self, timeout_ms: int, max_digits: int) -> float | None:
        """GET DATA's reply limit: `command_timeout` for the prompt, then its own wait for
        each key (Asterisk waits `timeout` for the first key and again after each one)."""
        if self._command_timeout is None:
            return None
        return self._command_timeout + max_digits * timeout_ms / 1000

    async def channel_up(self) -> bool:
        """Whether the caller is still there: `CHANNEL STATUS` answers the channel's state,
        or `HANGUP` and 511 once it is gone. Asked after a prompt answered -1, which a
        missing sound file and a hang-up both give (fact 20; agi-vas/hold_caller_gives_up)."""
        reply = await self.command("CHANNEL STATUS")
        return reply.ok and not self.hung_up

    async def stream_file(self, name: str, escape_digits: str = "") -> AGIReply:
        """Play a sound file; `reply.digit` is the key that interrupted it, if any."""
        file = _checked(_FILE_NAME, name, "sound file")
        digits = _checked(_ESCAPE_DIGITS, escape_digits, "escape digits")
        return await self.command(f'STREAM FILE {file} "{digits}"')

    async def verbose(self, message: str, level: int = 1) -> AGIReply:
        return await self.command(f"VERBOSE {quote(message)} {int(level)}")


_MSET_SYNTAX = frozenset(',=|"\\()[]{}$;')
"""Characters MSet's argument parsing (or res_agi's `|` compatibility) would act on, and a
few more that no HOTLINE_* value needs."""
MAX_MSET_VALUE = 128


def _mset_safe(value: str) -> bool:
    """Whether `value` reaches the channel unchanged as `NAME=value` inside MSet's
    argument: printable, no whitespace, none of MSet's syntax. "" is safe: `NAME=` sets
    an empty value (a trailing delimiter still ends an argument)."""
    return (
        len(value) <= MAX_MSET_VALUE
        and value.isprintable()
        and " " not in value
        and _MSET_SYNTAX.isdisjoint(value)
    )


def _checked(pattern: re.Pattern[str], value: str, what: str) -> str:
    """Names in commands come from code and config; refuse anything that needs quoting."""
    if not pattern.fullmatch(value):
        raise ValueError(f"invalid {what}: {value!r}")
    return value
