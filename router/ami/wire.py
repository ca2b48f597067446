"""The AMI wire: the manager byte stream cut into messages, and an event turned into an
object only when a handler wants it.

This small reader replaced panoramisk's `AMIProtocol`, which could not be made cheap
enough. With the shipped manager.conf Asterisk sends about 15 events for a plain answered
call (some 8 KB: Hangup 4, Cdr 3-4, DialBegin 2, DialEnd 2, BridgeEnter 2, BridgeLeave 2),
and the router needs only a few of them: those of its own calls in progress, and of calls
whose AGI session broke. panoramisk decodes every chunk to text, splits it into lines and
builds a case-insensitive `Message` of every header of every event (a Cdr has 20) before
anything can look at it, then matches the event name against each registered pattern
with a regular expression: about 27 µs an event, more than the AGI work of the whole
call, spent mostly on events nobody keeps. The building happens inside its
`data_received`, so there is no place to skip it from outside.

Here an event stays bytes until it is wanted: its name (the first line) picks the
handlers registered for it, each handler's test reads the one header it cares about
straight from the bytes (`header`), and only an event some handler wants is decoded and
parsed into an `AmiMessage`. Actions (Login, Ping) are matched to their replies by
ActionID.

Reads are paced: after a chunk is handled the socket is left unread for `read_interval`,
so the events Asterisk writes meanwhile (one write each) wait in the kernel and come in
one read. Read as they come, the 15 events of a call cost 15 wake-ups of the loop, each a
select, a recv and a pass through the transport, about as much as the events' own
handling; paced, a busy link's events arrive in batches and the wake-ups vanish from the
cost of a call. An event is then seen up to `read_interval` late, which nothing the link
feeds minds: live call counts also hold this router's own dials until AMI shows them, and
a broken call is completed seconds after its end.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import cast

log = logging.getLogger("hotline400.ami")

GREETING = b"Asterisk Call Manager/"
"""How Asterisk's manager starts every session; a peer that starts otherwise is another
service (a wrong port) and is not sent the Login and its secret."""
END_OF_MESSAGE = b"\r\n\r\n"
MAX_PENDING_BYTES = 1 << 20
"""Bytes of one unfinished message; Asterisk's largest events are a few kilobytes."""
READ_INTERVAL_S = 0.05
"""Seconds the socket is left unread after a chunk (see the module's docstring). At 100
calls a second that gathers some 80 events (40 KB) a read, well within a socket's buffer."""


class AmiRefused(Exception):
    """Asterisk answered an action with an error (e.g. `Permission denied`)."""


class AmiMessage(dict[str, str]):
    """One message's headers, looked up without regard to case ("UniqueID" ==
    "Uniqueid"), as Asterisk spells the same header differently in different events.
    Keys are kept lower-cased."""

    __slots__ = ()

    def __init__(self, headers: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        items = headers.items() if isinstance(headers, Mapping) else headers
        super().__init__((key.lower(), value) for key, value in items)

    def __getitem__(self, key: str) -> str:
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and dict.__contains__(self, key.lower())

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return dict.get(self, key.lower(), default)

    @property
    def success(self) -> bool:
        """An action's reply saying it was done."""
        return self.get("Response") in ("Success", "Follows")


def parse_message(block: bytes) -> AmiMessage:
    """The headers of one message (its CRLF lines without the blank line after them).
    A header repeated keeps its first value; bytes that are not UTF-8 become U+FFFD."""
    message = AmiMessage()
    for line in block.decode("utf-8", "replace").split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            message.setdefault(name.strip().lower(), value.strip())
    return message


class AmiEvent(Mapping[str, str]):
    """An event read from its bytes header by header, as a handler asks: a handler reads
    three to six of an event's 15 to 30 headers, and finding each in the bytes costs less
    than splitting them all. Looked up without regard to case, like `AmiMessage`, with the
    same values (a repeated header gives its first); iterating parses the whole event.

    A header is first looked for as asked (`Uniqueid: `), which is how Asterisk spells it
    in nearly every lookup; only a name not found so gets the case-blind search, over a
    lower-cased copy made then (lower-casing an event costs more than the lookups)."""

    __slots__ = ("_block", "_folded", "_parsed")

    def __init__(self, block: bytes) -> None:
        self._block = b"\r\n" + block
        self._folded: bytes | None = None
        self._parsed: AmiMessage | None = None

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        name = key.strip().encode()
        block = self._block
        start = block.find(b"\r\n" + name + b": ")
        if start < 0 or b"\r" in name or b"\n" in name:
            return self._get_folded(name.lower(), default)
        start += len(name) + 4
        end = block.find(b"\r\n", start)
        value = block[start:] if end < 0 else block[start:end]
        return value.decode("utf-8", "replace").strip()

    def _get_folded(self, folded_name: bytes, default: str | None) -> str | None:
        """The case-blind search: `folded_name` (lower-cased) followed by a colon."""
        if self._folded is None:
            self._folded = self._block.lower()
        folded = self._folded
        name = b"\r\n" + folded_name + b":"
        start = folded.find(name)
        while start >= 0 and b"\r\n" in folded[start + 2 : start + len(name)]:
            start = folded.find(name, start + 2)  # a name holding a line break never matches
        if start < 0:
            return default
        start += len(name)
        end = folded.find(b"\r\n", start)
        value = self._block[start:] if end < 0 else self._block[start:end]
        return value.decode("utf-8", "replace").strip()

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def _all(self) -> AmiMessage:
        if self._parsed is None:
            self._parsed = parse_message(self._block[2:])
        return self._parsed

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def header(block: bytes, name: bytes) -> bytes | None:
    """The raw value of header `name`, spelt as Asterisk writes it in that event, from
    an event's bytes; None if the event has no such header. The first line (`Event:`) is
    not a header here."""
    start = block.find(b"\r\n" + name + b": ")
    if start < 0:
        return None
    start += len(name) + 4
    end = block.find(b"\r\n", start)
    return block[start:] if end < 0 else block[start:end]


def event_name(block: bytes) -> bytes:
    """`dialbegin` from `Event: DialBegin\\r\\n...`: lower-cased, as handlers are found."""
    end = block.find(b"\r\n")
    return (block[7:] if end < 0 else block[7:end]).strip().lower()


class AmiConnection(asyncio.Protocol):
    """One manager connection: frames the stream, hands every event's bytes to `on_event`
    and each reply to the action that asked for it."""

    def __init__(
        self,
        on_event: Callable[[bytes], None],
        lost: asyncio.Future[None],
        read_interval: float = READ_INTERVAL_S,
    ) -> None:
        self._on_event = on_event
        self._lost = lost
        self._read_interval = read_interval
        self._resume: asyncio.TimerHandle | None = None
        self._pending = b""
        self.greeting: asyncio.Future[bytes] = lost.get_loop().create_future()
        """The peer's first line; the Login waits for it (see `GREETING`)."""
        self._transport: asyncio.Transport | None = None
        self._replies: dict[str, asyncio.Future[AmiMessage]] = {}
        self._lists: dict[str, tuple[list[AmiMessage], asyncio.Future[list[AmiMessage]]]] = {}
        self._action_ids = itertools.count(1)
        self.version: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._read_interval > 0 and self._resume is None and self._transport is not None:
            self._transport.pause_reading()
            loop = asyncio.get_running_loop()
            self._resume = loop.call_later(self._read_interval, self._read_again)
        buffer = self._pending + data if self._pending else data
        if not self.greeting.done():
            if b"\r\n" not in buffer:
                self._pending = buffer
                if len(buffer) > MAX_PENDING_BYTES:  # not a manager: a wrong port, say
                    log.error("AMI peer sent %d bytes without a greeting: closing", len(buffer))
                    self.close()
                return
            line, _, buffer = buffer.partition(b"\r\n")
            if line.startswith(GREETING):
                self.version = line[len(GREETING) :].decode("ascii", "replace").strip()
            self.greeting.set_result(line)
        blocks = buffer.split(END_OF_MESSAGE)
        self._pending = blocks.pop()
        if len(self._pending) > MAX_PENDING_BYTES:
            log.error("AMI message longer than %d bytes: closing the session", MAX_PENDING_BYTES)
            self.close()
            return
        on_event = self._on_event
        for block in blocks:
            if block.startswith(b"\r\n"):  # a stray line end between two messages
                block = block.lstrip(b"\r\n")
            if block.startswith(b"Event: "):
                if not self._lists or not self._listed(block):
                    on_event(block)
            elif block.startswith(b"Response: "):
                self._reply(block)

    def _read_again(self) -> None:
        self._resume = None
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def _reply(self, block: bytes) -> None:
        reply = parse_message(block)
        action_id = reply.get("ActionID") or ""
        waiting = self._replies.pop(action_id, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(reply)
        if not reply.success and action_id in self._lists:  # refused: no list will follow
            _, done = self._lists.pop(action_id)
            if not done.done():
                done.set_exception(AmiRefused(reply.get("Message") or "refused"))

    def _listed(self, block: bytes) -> bool:
        """Whether the event is an item (or the end) of a list an action asked for."""
        action_id = header(block, b"ActionID")
        if not action_id:
            return False
        key = action_id.decode("utf-8", "replace")
        listing = self._lists.get(key)
        if listing is None:
            return False
        items, done = listing
        if header(block, b"EventList") == b"Complete":
            del self._lists[key]
            if not done.done():
                done.set_result(items)
        else:
            items.append(parse_message(block))
        return True

    def send_list_action(self, fields: Mapping[str, str]) -> asyncio.Future[list[AmiMessage]]:
        """Send an action answered by a list of events (CoreShowChannels); the future gets
        the list's items once its `EventList: Complete` event arrives, or AmiRefused."""
        items: list[AmiMessage] = []
        done: asyncio.Future[list[AmiMessage]] = asyncio.get_running_loop().create_future()
        action_id, _ = self._send(fields)
        self._lists[action_id] = (items, done)
        return done

    def send_action(self, fields: Mapping[str, str]) -> asyncio.Future[AmiMessage]:
        """Send an action with a fresh ActionID; the future gets its reply."""
        return self._send(fields)[1]

    def _send(self, fields: Mapping[str, str]) -> tuple[str, asyncio.Future[AmiMessage]]:
        assert self._transport is not None, "not connected"
        action_id = str(next(self._action_ids))
        lines = [f"{name}: {value}" for name, value in fields.items()]
        lines.append(f"ActionID: {action_id}")
        for line in lines:
            if "\r" in line or "\n" in line:
                raise ValueError("an AMI header is one line")
        reply: asyncio.Future[AmiMessage] = asyncio.get_running_loop().create_future()
        self._replies[action_id] = reply
        self._transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return action_id, reply

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        for waiting in self._replies.values():
            waiting.cancel()
        self._replies.clear()
        for _, done in self._lists.values():
            done.cancel()
        self._lists.clear()
        self.greeting.cancel()
        if not self._lost.done():
            self._lost.set_result(None)
