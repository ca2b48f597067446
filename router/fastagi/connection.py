"""The bytes of one FastAGI connection as they arrive: the environment block, then reply
lines for the session to read.

An `asyncio.Protocol`, not asyncio's streams. On streams a call read its 23 header lines
with 23 awaited `readuntil`s, every reply with another, and drained the writer after every
command; the streams' own machinery (the reader's buffer and waiter, the writer's drain,
a task waiting on a socket that has not sent its header yet) was about a fifth of the
router's loop time per call (docs/benchmarks.md). Here the header is parsed in
`data_received` as its bytes come, with no task waiting for it, and a call's task is
started only once its header is whole; reply lines are cut as they arrive and queued for
the one session that reads them.

The header clock starts when the connection is accepted. A header that came before the
deadline is read before the deadline is judged, however late a busy loop gets to it:
asyncio runs a pass's socket reads before its due timers, and the verdict waits one more
pass (libuv-based loops run timers first). So a burst of calls on a busy router loses
none, and only a peer that really sent no header in time is closed.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from typing import cast

from router.fastagi.errors import (
    AGIClosedUnused,
    AGIConnectionClosed,
    AGIHeaderIncomplete,
    AGIHeaderTimeout,
    AGIHeaderTooLarge,
    AGIMalformedHeader,
    AGIMalformedReply,
    AGIProtocolError,
)

HEADER_TIMEOUT_S = 5.0
MAX_HEADER_BYTES = 65536
MAX_REPLY_LINE = 16384
"""Bytes in one reply line; GET VARIABLE of a huge value is the only long reply."""
MAX_UNREAD_LINES = 1024
"""Reply lines waiting to be read. Asterisk answers one command at a time, and its longest
answer is a usage block of a few dozen lines: a peer that sends more unasked is not
Asterisk, and is not buffered without end."""

_ENV_NAME = re.compile(r"agi_[A-Za-z0-9_]+")
_ASTERISK_ENV_NAMES = frozenset(
    (
        "agi_network",
        "agi_network_script",
        "agi_request",
        "agi_channel",
        "agi_language",
        "agi_type",
        "agi_uniqueid",
        "agi_version",
        "agi_callerid",
        "agi_calleridname",
        "agi_callingpres",
        "agi_callingani2",
        "agi_callington",
        "agi_callingtns",
        "agi_dnid",
        "agi_rdnis",
        "agi_context",
        "agi_extension",
        "agi_priority",
        "agi_enhanced",
        "agi_accountcode",
        "agi_threadid",
    )
)
"""The names every Asterisk environment block holds: known good without a regex."""
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _header_entry(text: str) -> tuple[str, str] | None:
    """`(name, value)` of an `agi_name: value` line, None for anything else.

    The rule: `agi_` and at least one of `[A-Za-z0-9_]`, a colon, one optional space, then
    the value; no control character but tab anywhere. Every call reads ~23 such lines, so
    the cheap checks come first: the name is cut at the first colon (it cannot hold one)
    and looked up among the names Asterisk always sends, and `isprintable()` rules out
    all control characters at once; only a line it refuses (a tab, a format character in
    a caller name) goes on to the exact search.
    """
    name, colon, value = text.partition(":")
    if not colon or (name not in _ASTERISK_ENV_NAMES and _ENV_NAME.fullmatch(name) is None):
        return None
    if not text.isprintable() and _CONTROL.search(text):
        return None
    return name, value[1:] if value.startswith(" ") else value


def _whole_block(block: bytes) -> dict[str, str] | None:
    """The environment of complete header lines (without their last `\n`) in one pass,
    for the lines Asterisk sends: `agi_name: value` lines of the names it always sends, no
    control character, `\n` line ends. None for anything else, which the line-by-line
    reading then takes (it gives the same environment for lines both accept, and the exact
    error for lines it refuses). About a fifth of the time of reading them line by line."""
    text = block.decode("utf-8", "replace")
    lines = text.count("\n") + 1
    fields = text.replace("\n", ": ").split(": ")
    if len(fields) != 2 * lines:  # a line without ": ", or a value holding one
        return None
    env = dict(zip(fields[::2], fields[1::2], strict=True))
    if not _ASTERISK_ENV_NAMES.issuperset(env) or not text.replace("\n", " ").isprintable():
        return None
    return env


class AGIConnection(asyncio.Protocol):
    """One FastAGI connection: reads the environment block, then queues reply lines.

    Subclasses act on the header by overriding `header_read` and `header_failed`; without
    them, `await environment()` gives the block or raises its failure. A session reads
    lines from `lines`, awaiting `more()` when it is empty, and writes with `send`.
    """

    def __init__(
        self,
        *,
        header_timeout: float = HEADER_TIMEOUT_S,
        header_max_bytes: int = MAX_HEADER_BYTES,
        max_line: int = MAX_REPLY_LINE,
    ) -> None:
        self.transport: asyncio.Transport | None = None
        self.env: dict[str, str] | None = None
        """The environment block, once read whole."""
        self.lines: deque[bytes] = deque()
        """Reply lines received and not read yet, without their `\\n`."""
        self._header_timeout = header_timeout
        self._header_max = header_max_bytes
        self._max_line = max_line
        self._header: dict[str, str] = {}
        self._header_used = 0
        self._partial = b""
        self._clock: asyncio.Handle | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._failure: AGIProtocolError | None = None
        self._lost = False
        self._lost_error: Exception | None = None
        self._received = False
        """Whether any byte came: a connection closed before its first is a TCP check."""
        self._environment: asyncio.Future[dict[str, str]] | None = None

    # --- what the owner of a connection overrides or calls ------------------------------

    def header_read(self, env: dict[str, str]) -> None:
        """The environment block is whole: start the call."""
        if self._environment is not None and not self._environment.done():
            self._environment.set_result(env)

    def header_failed(self, error: AGIProtocolError) -> None:
        """No usable environment block: the connection is being closed."""
        if self._environment is not None and not self._environment.done():
            self._environment.set_exception(error)

    async def environment(self) -> dict[str, str]:
        """The environment block once read; raises what made it fail."""
        if self.env is not None:
            return self.env
        if self._failure is not None:
            raise self._failure
        if self._environment is None:
            self._environment = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self._environment)

    def send(self, payload: bytes) -> None:
        """Write a command; nothing once the connection is gone (the reply read says so).

        No waiting for the transport to drain: a session has one command in flight and
        sends the next only after its reply, so at most one command (2 KB) is ever
        buffered, and a peer that stops reading is caught by the reply timeout."""
        if not self._lost and self.transport is not None:
            self.transport.write(payload)

    def more(self) -> asyncio.Future[None]:
        """A future done when more lines came (or the connection ended: the next call then
        raises). Raises at once if no more lines can come."""
        if self._failure is not None:
            raise self._failure
        if self._lost:
            if self._lost_error is None:
                raise AGIConnectionClosed("Asterisk closed the connection")
            raise AGIConnectionClosed(f"connection broke: {self._lost_error}")
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        return waiter

    def fail(self, error: AGIProtocolError) -> None:
        """Make the connection unusable: the waiting read (and every later one) raises."""
        if self._failure is None:
            self._failure = error
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def close(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            self._clock = None
        if self.transport is not None:
            self.transport.close()

    # --- asyncio's side -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        loop = asyncio.get_running_loop()
        self._clock = loop.call_later(self._header_timeout, self._header_deadline)

    def data_received(self, data: bytes) -> None:
        self._received = True
        if self.env is None:
            self._read_header(data)
        else:
            self._read_lines(data)

    def eof_received(self) -> bool:
        return False  # close: Asterisk never half-closes a session it still serves

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost, self._lost_error = True, exc
        if self.env is None and self._failure is None:
            self._header_error(self._closed_early())
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- the header ---------------------------------------------------------------------

    def _read_header(self, data: bytes) -> None:
        """Parse the complete header lines received so far; at the blank line the header
        is whole and whatever followed it is the first reply bytes (a HANGUP line).

        The complete lines of each read are parsed together by `_whole_block` when they are
        the lines Asterisk sends: Asterisk writes the block a line a write, so it may come
        in several reads, and its blank line in a read of its own. Anything else (a read
        of one line, or one that would pass the size limit) is read line by line, which
        also gives the exact error."""
        buffer = self._partial + data if self._partial else data
        env, limit = self._header, self._header_max
        first = buffer.find(b"\n")
        if 0 < first < len(buffer) - 1:  # more than a line: one line is cheaper on its own
            cut = buffer.find(b"\n\n", first)
            end = cut if cut >= 0 else buffer.rfind(b"\n")  # where the complete lines end
            used = self._header_used + end + (2 if cut >= 0 else 1)
            lines = _whole_block(buffer[:end]) if end > first and used <= limit else None
            if lines is not None:
                self._header_lines(lines, buffer, cut, end, used)
                return
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = buffer[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            self._header_used += len(line) + 1
            if self._header_used > limit:
                self._header_error(AGIHeaderTooLarge(f"environment larger than {limit} bytes"))
                return
            if not line:
                self._partial = b""
                self._header_done(env)
                if start < len(buffer):
                    self._read_lines(buffer[start:])
                return
            # Bytes that are not UTF-8 (a caller name from a misconfigured trunk) become
            # U+FFFD rather than failing the call.
            text = line.decode("utf-8", "replace")
            entry = _header_entry(text)
            if entry is None:
                self._header_error(AGIMalformedHeader(f"not an agi_ header line: {text[:80]!r}"))
                return
            env[entry[0]] = entry[1]
        self._partial = buffer[start:]
        if self._header_used + len(self._partial) > limit:
            self._header_error(AGIHeaderTooLarge(f"environment larger than {limit} bytes"))

    def _header_lines(
        self, lines: dict[str, str], buffer: bytes, cut: int, end: int, used: int
    ) -> None:
        """The complete lines of a read, parsed together: the header is whole if the blank
        line came (`cut`), else what follows the last line waits for the next read."""
        self._header.update(lines)
        self._header_used = used
        if cut < 0:  # the blank line is still to come
            self._partial = buffer[end + 1 :]
            if used + len(self._partial) > self._header_max:
                self._header_error(
                    AGIHeaderTooLarge(f"environment larger than {self._header_max} bytes")
                )
            return
        self._partial = b""
        self._header_done(self._header)
        if cut + 2 < len(buffer):
            self._read_lines(buffer[cut + 2 :])

    def _closed_early(self) -> AGIHeaderIncomplete:
        """Why a connection closed before its header was whole: unused, or cut short."""
        if not self._received:
            return AGIClosedUnused("connection closed before its first byte (a TCP check)")
        count = len(self._header)
        return AGIHeaderIncomplete(
            f"connection closed after {count} header lines, before the blank line"
        )

    def _header_done(self, env: dict[str, str]) -> None:
        if self._clock is not None:
            self._clock.cancel()
            self._clock = None
        self.env = env
        self.header_read(env)

    def _header_error(self, error: AGIProtocolError) -> None:
        self._failure = error
        self.close()
        self.header_failed(error)

    def _header_deadline(self) -> None:
        # One more pass before the verdict: see the module's docstring.
        self._clock = asyncio.get_running_loop().call_soon(self._header_expired)

    def _header_expired(self) -> None:
        self._clock = None
        if self.env is None and self._failure is None:
            self._header_error(
                AGIHeaderTimeout(f"no complete environment within {self._header_timeout} s")
            )

    # --- reply lines --------------------------------------------------------------------

    def _read_lines(self, data: bytes) -> None:
        buffer = self._partial + data if self._partial else data
        lines = buffer.split(b"\n")
        self._partial = lines.pop()
        longest = max(map(len, lines), default=0) + 1
        if longest > self._max_line or len(self._partial) >= self._max_line:
            self._drop(AGIMalformedReply(f"reply line longer than {self._max_line} bytes"))
            return
        if not lines:
            return
        self.lines.extend(lines)
        if len(self.lines) > MAX_UNREAD_LINES:
            self._drop(AGIMalformedReply(f"more than {MAX_UNREAD_LINES} reply lines unasked"))
            return
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _drop(self, error: AGIProtocolError) -> None:
        """A peer that is not Asterisk: fail the session and stop reading."""
        self.fail(error)
        if self.transport is not None:
            self.transport.close()
