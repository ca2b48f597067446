"""Asterisk's side of AMI: a manager server that logs clients in and replays recorded events.

What it sends is what Asterisk 22 sends (the recordings in asterisk-transcripts/ami/): the
greeting `Asterisk Call Manager/11.0.0`, Login answered `Authentication accepted` and
followed by the FullyBooted event if the session reads `system` (a second Login: `Already
authenticated`), a refused Login answered `Authentication failed` and the connection
closed, Ping answered `Ping: Pong` with a Timestamp, Logoff answered `Goodbye`, every
reply carrying the action's ActionID. Events go, byte for byte as recorded, only to
sessions allowed to read them, as Asterisk decides: every class in the event's Privilege
header must be in the account's `read` classes (`all`: every class) and in the Login's
`Events` mask (a class list, on/off words, or Asterisk's numeric bit mask), and an
account with `eventfilter(name(...))` include filters gets only the events named there.
With `timestamp_events` (manager.conf `timestampevents = yes`) each event carries a
`Timestamp:` header, the moment it was sent.

Calls a test plays (`channel_up`, `answer_caller`, `dial`, `answer`, `hang_up`) live on
as Asterisk keeps them whatever happens to the router: their inbound channel is listed by
`CoreShowChannels` (allowed to accounts whose `write` holds `reporting` or `system`, else
`Permission denied`) until it hangs up, and they send DialBegin, DialEnd, Newstate,
BridgeEnter, BridgeLeave, Hangup and the Dial's Cdr record with the headers of the
recordings. With `cdr_batch` (cdr.conf `batch = yes`) Cdr records are held until
`flush_cdrs`, as Asterisk posts a batch to cdr_manager long after the calls ended.

Known differences from Asterisk: the only actions are Login, Logoff, Ping,
CoreShowChannels and Getvar of the answer hook's stamp (others answer "Invalid/unknown
command"); no Challenge (MD5) login;
eventfilters other than `eventfilter(action(include),name(X)) =` are refused when read;
`permit`/`deny` are not applied; a refused Login is answered at once (Asterisk waits a second).

Run `python -m router.simulation.asterisk_ami FILE.ami ...` for a demo server on 127.0.0.1:5038
that replays the files to each client that logs in, with the accounts and `timestampevents`
of a manager.conf (`--manager-conf`, the shipped one by default).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from router.ami.wire import header, parse_message

VERSION = "11.0.0"
"""The AMI version Asterisk 22 announces in its greeting (recorded)."""

RECORDINGS = Path(__file__).resolve().parent / "recordings" / "ami"
"""The AMI streams recorded from Asterisk 22 (answer, busy_forward, caller_hangup, misc),
shipped with the package so the simulator can replay them anywhere."""
MANAGER_CONF = Path(__file__).resolve().parents[2] / "asterisk" / "manager.conf"
"""The router's AMI account as shipped: what the demo server accepts."""

_SESSION_OWN_EVENTS = frozenset({"FullyBooted", "SuccessfulAuth"})
"""Events a recording holds for its own login: sent per session, never replayed."""


def recorded_events(path: Path | str) -> list[bytes]:
    """The events of a recorded AMI stream, each as sent (CRLF lines, blank line after).

    Replies to the recorder's own actions, the greeting and the events of its own login
    are left out.
    """
    events = []
    for block in Path(path).read_bytes().split(b"\r\n\r\n"):
        name = parse_message(block).get("Event")
        if name is not None and name not in _SESSION_OWN_EVENTS:
            events.append(block + b"\r\n\r\n")
    return events


@dataclass(frozen=True, slots=True)
class AmiAccount:
    """A manager.conf user: secret, read classes, and the event names it is limited to
    (None: no eventfilter)."""

    secret: str
    read: frozenset[str]
    event_names: frozenset[str] | None = None
    write: frozenset[str] = frozenset()


_FILTER = re.compile(r"eventfilter\((?P<criteria>.*)\)")
_CRITERION = re.compile(r"(\w+)\(([^()]*)\)")


def _sections(text: str) -> dict[str, dict[str, list[str]]]:
    """A manager.conf's sections: each option's values, in order."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip(), {})
        elif current is not None and "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            current.setdefault(key, []).append(value)
    return sections


def accounts_from_manager_conf(text: str) -> dict[str, AmiAccount]:
    """The users of a manager.conf: every section but [general]."""
    sections = _sections(text)
    return {
        name: _account(name, options) for name, options in sections.items() if name != "general"
    }


def timestamp_events_in(text: str) -> bool:
    """Whether a manager.conf's [general] has `timestampevents` on (Asterisk: off unless
    set to a true word)."""
    value = _sections(text).get("general", {}).get("timestampevents", ["no"])[-1]
    return value.strip().lower() in _TRUE | {"1"}


def _account(name: str, options: Mapping[str, list[str]]) -> AmiAccount:
    names: set[str] = set()
    for key, values in options.items():
        if key.startswith("eventfilter"):
            match = _FILTER.fullmatch(key)
            criteria = dict(_CRITERION.findall(match["criteria"])) if match else {}
            if (
                set(criteria) != {"action", "name"}
                or criteria["action"] != "include"
                or any(values)
            ):
                raise ValueError(f"[{name}] {key}: only eventfilter(action(include),name(X)) =")
            names.add(criteria["name"])
    return AmiAccount(
        secret=options["secret"][-1],
        read=_permissions(options.get("read", [""])[-1]),
        write=_permissions(options.get("write", [""])[-1]),
        event_names=frozenset(names) if names else None,
    )


_CLASS_BITS = {
    "system": 0,
    "call": 1,
    "log": 2,
    "verbose": 3,
    "command": 4,
    "agent": 5,
    "user": 6,
    "config": 7,
    "dtmf": 8,
    "reporting": 9,
    "cdr": 10,
    "dialplan": 11,
    "originate": 12,
    "agi": 13,
    "cc": 15,
    "aoc": 16,
    "test": 17,
    "security": 18,
    "message": 30,
}
"""Asterisk's event classes and their bits (manager.h EVENT_FLAG_*), for numeric masks."""
ALL_CLASSES = frozenset(_CLASS_BITS)
_TRUE = frozenset({"yes", "true", "y", "t", "on"})
_FALSE = frozenset({"no", "false", "n", "f", "off"})
"""ast_true / ast_false words ("1" and "0" are numeric masks)."""


def _classes(value: str) -> frozenset[str]:
    return frozenset(part.strip().lower() for part in value.split(",") if part.strip())


def _permissions(value: str) -> frozenset[str]:
    """The classes a manager.conf `read`/`write` value or a Login's class list grants:
    `all` is every class, as Asterisk's get_perm reads it."""
    classes = _classes(value)
    return ALL_CLASSES if "all" in classes else classes & ALL_CLASSES


def _reply(response: str, action_id: str | None, *lines: str) -> bytes:
    """A reply as Asterisk's astman_send_response writes it: Response, ActionID, the rest."""
    head = [f"Response: {response}", *([f"ActionID: {action_id}"] if action_id else [])]
    return ("\r\n".join([*head, *lines]) + "\r\n\r\n").encode()


SHANGHAI = ZoneInfo("Asia/Shanghai")
_LIST_CLASSES = frozenset({"system", "reporting"})
"""Write classes that allow CoreShowChannels (Asterisk: EVENT_FLAG_SYSTEM | REPORTING)."""
_GETVAR_CLASSES = frozenset({"call", "reporting"})
"""Write classes that allow Getvar (Asterisk: EVENT_FLAG_CALL | EVENT_FLAG_REPORTING)."""
_CDR_TIME = "%Y-%m-%d %H:%M:%S"
_STATE_DESCRIPTIONS = {0: "Down", 5: "Ringing", 6: "Up"}
_channel_numbers = itertools.count(1)


@dataclass
class SimulatedChannel:
    """An inbound channel the simulated Asterisk holds: the one a router's AGI session ran
    on, its Uniqueid the router's call id. Times are epoch seconds."""

    uniqueid: str
    caller: str
    dialled: str
    started: float
    name: str
    state: int = 4
    destination: str = ""
    peer: str = ""
    peer_uniqueid: str = ""
    dialled_at: float | None = None
    answered: float | None = None
    """When the destination answered."""
    caller_answered: float | None = None
    """When the router answered the channel itself (AGI ANSWER) before its Dial."""
    answer_stamp: str = ""
    """SHARED(HOTLINE_ANSWERED): the destination's answer as the Dial's `U()` hook of the
    shipped dialplan stamped it on the channel (its UTC date and time to the ms), on a channel
    answered first."""
    bridge: str = ""

    @property
    def dial_data(self) -> str:
        """The argument of the channel's Dial, as Asterisk shows it (Cdr LastData)."""
        return f"Local/{self.destination}@phones,20"

    def headers(self, state: int | None = None) -> list[str]:
        """The channel's block of headers, as every call event carries it."""
        state = self.state if state is None else state
        return [
            f"Channel: {self.name}",
            f"ChannelState: {state}",
            f"ChannelStateDesc: {'Up' if state == 6 else 'Ring'}",
            f"CallerIDNum: {self.caller}",
            "CallerIDName: Test Caller",
            f"ConnectedLineNum: {self.caller}",
            "ConnectedLineName: Test Caller",
            "Language: en",
            "AccountCode: ",
            "Context: inbound-400",
            f"Exten: {self.dialled}",
            "Priority: 2",
            f"Uniqueid: {self.uniqueid}",
            f"Linkedid: {self.uniqueid.rsplit('.', 1)[0]}.0",
        ]

    def peer_headers(self, state: int) -> list[str]:
        return [
            f"DestChannel: {self.peer}",
            f"DestChannelState: {state}",
            f"DestChannelStateDesc: {_STATE_DESCRIPTIONS[state]}",
            f"DestCallerIDNum: {self.dialled}",
            "DestCallerIDName: Test Caller",
            f"DestConnectedLineNum: {self.caller}",
            "DestConnectedLineName: Test Caller",
            "DestLanguage: en",
            "DestAccountCode: ",
            "DestContext: phones",
            f"DestExten: {self.dialled if state != 6 else ''}",
            "DestPriority: 1",
            f"DestUniqueid: {self.peer_uniqueid}",
            f"DestLinkedid: {self.uniqueid.rsplit('.', 1)[0]}.0",
        ]


@dataclass(eq=False)
class _Session:
    writer: asyncio.StreamWriter
    task: asyncio.Task[None]
    account: AmiAccount | None = None
    mask: frozenset[str] = field(default_factory=frozenset)

    def may_read(self, name: str, classes: frozenset[str]) -> bool:
        return self.account is not None and _receives(self.account, self.mask, name, classes)


def _receives(
    account: AmiAccount, mask: frozenset[str], name: str, classes: frozenset[str]
) -> bool:
    """Whether a session of `account` with the event classes `mask` is sent the event."""
    return classes <= mask and (account.event_names is None or name in account.event_names)


def _name_and_classes(block: bytes) -> tuple[str, frozenset[str]]:
    """An event's name, and the classes of its Privilege header that decide who reads it."""
    name = block[7 : block.find(b"\r\n")].decode("utf-8", "replace")
    privilege = header(block, b"Privilege") or b""
    return name, _classes(privilege.decode("utf-8", "replace")) - {"all"}


def events_as_sent(
    account: AmiAccount,
    events: Iterable[bytes],
    login_events: str | None,
    *,
    timestamp_events: bool,
) -> list[bytes]:
    """The events a session of `account`, logged in with `Events: login_events`, is sent,
    as AmiSimulator writes them (stamped with `timestamp_events`)."""
    mask = _event_mask(login_events, account.read)
    sent = []
    for block in events:
        if block.startswith(b"Event: ") and _receives(account, mask, *_name_and_classes(block)):
            stamp = timestamp_events and header(block, b"Timestamp") is None
            sent.append(_stamped(block) if stamp else block)
    return sent


class AmiSimulator:
    """A manager server on a real TCP port, for tests and demos."""

    def __init__(
        self,
        accounts: Mapping[str, AmiAccount],
        *,
        version: str = VERSION,
        timestamp_events: bool = False,
        answer_ping: bool = True,
        cdr_batch: bool = False,
        zone: ZoneInfo = SHANGHAI,
    ) -> None:
        """`zone`: Asterisk's local time, in which Cdr records write their times."""
        self.accounts = dict(accounts)
        self.version = version
        self.timestamp_events = timestamp_events
        self.answer_ping = answer_ping
        """False plays an Asterisk that hangs without closing its sockets."""
        self.connection_times: list[float] = []
        """time.monotonic() of each connection accepted."""
        self.logins = 0
        self.channels: dict[str, SimulatedChannel] = {}
        """The inbound channels up now, by Uniqueid."""
        self.channel_lists = 0
        """CoreShowChannels actions answered with a list."""
        self.cdr_batch = cdr_batch
        self.held_cdrs: list[bytes] = []
        self.variables_read = 0
        """Getvar actions answered."""
        self.answer_hook = True
        """The dialplan holds the `[hotline400-answered]` subroutine: the Dial of a channel the
        router answered for a prompt stamps the destination's answer on it."""
        self.zone = zone
        self._sessions: set[_Session] = set()
        self._server: asyncio.Server | None = None
        self._booted = time.monotonic()

    @property
    def sessions(self) -> int:
        """Sessions logged in now."""
        return sum(1 for session in self._sessions if session.account is not None)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close every session, as an Asterisk that stops."""
        if self._server is not None:
            self._server.close()
            self.drop_sessions()
            await asyncio.gather(*(session.task for session in self._sessions))
            await self._server.wait_closed()
            self._server = None

    def drop_sessions(self) -> None:
        """Close every client connection; keep listening."""
        for session in list(self._sessions):
            session.writer.close()

    async def replay(self, events: Iterable[bytes], *, pace: float = 0.0) -> int:
        """Send each event to every session allowed to read it, in order, `pace` seconds
        apart; returns how many events were sent in all."""
        sent = 0
        for block in events:
            readers = self._write(block)
            for session in readers:
                with contextlib.suppress(ConnectionError):
                    await session.writer.drain()
            sent += len(readers)
            if pace:
                await asyncio.sleep(pace)
        return sent

    def send(self, events: Iterable[bytes]) -> int:
        """Write each event to every session allowed to read it, at once and in order,
        without waiting for the sockets to drain (a load generator's pace: the events of
        a call as it happens); returns how many events were written in all."""
        return sum(len(self._write(block)) for block in events)

    # --- calls as Asterisk keeps them -------------------------------------------------------

    def channel_up(
        self, uniqueid: str, caller: str, dialled: str, at: float | None = None
    ) -> SimulatedChannel:
        """An inbound call arrives (its AGI session starts); no event the router reads."""
        number = next(_channel_numbers)
        channel = SimulatedChannel(
            uniqueid,
            caller,
            dialled,
            time.time() if at is None else at,
            f"Local/{dialled}@inbound-400-{number:08x};2",
        )
        self.channels[uniqueid] = channel
        return channel

    def dial(self, uniqueid: str, destination: str, at: float | None = None) -> None:
        """The router's Dial starts ringing `destination`: DialBegin."""
        channel = self.channels[uniqueid]
        number = next(_channel_numbers)
        channel.destination = destination
        channel.peer = f"Local/{destination}@phones-{number:08x};1"
        channel.peer_uniqueid = f"{uniqueid.rsplit('.', 1)[0]}.{number + 100}"
        channel.dialled_at = time.time() if at is None else at
        lines = ["Event: DialBegin", "Privilege: call,all", *channel.headers()]
        self._emit([*lines, *channel.peer_headers(0), f"DialString: {destination}@phones"], at)

    def answer_caller(self, uniqueid: str, at: float | None = None) -> None:
        """The router answers the inbound channel itself (AGI ANSWER, to play a prompt):
        Newstate Up. Its Dial events then carry ChannelState 6, and its Cdr record counts
        from this moment, not the destination's answer (asterisk-transcripts fact 16)."""
        channel = self.channels[uniqueid]
        channel.caller_answered = time.time() if at is None else at
        self._up(channel, at)

    def answer(self, uniqueid: str, at: float | None = None) -> None:
        """The destination answers: DialEnd ANSWER, the caller's channel is Up (answered
        by the Dial unless the router had answered it), then it enters the bridge."""
        channel = self.channels[uniqueid]
        channel.answered = time.time() if at is None else at
        if channel.caller_answered is not None and self.answer_hook:
            stamp_ms = int(channel.answered * 1000)  # STRFTIME's %3q cuts to the millisecond
            moment = datetime.fromtimestamp(stamp_ms // 1000, UTC)
            channel.answer_stamp = f"{moment:%Y-%m-%dT%H:%M:%S}.{stamp_ms % 1000:03d}"
        end = ["Event: DialEnd", "Privilege: call,all", *channel.headers()]
        self._emit([*end, *channel.peer_headers(6), "DialStatus: ANSWER"], at)
        if channel.state != 6:
            self._up(channel, at)
        channel.bridge = str(uuid.uuid4())
        self._emit(
            ["Event: BridgeEnter", "Privilege: call,all", *_bridge(channel, 2), *channel.headers()],
            at,
        )

    def _up(self, channel: SimulatedChannel, at: float | None) -> None:
        channel.state = 6
        self._emit(["Event: Newstate", "Privilege: call,all", *channel.headers()], at)

    def hang_up(self, uniqueid: str, at: float | None = None) -> None:
        """A party hangs up: BridgeLeave, Hangup, and the Dial's Cdr record (held with
        `cdr_batch`); a caller who gives up while the destination rings ends the Dial
        first (DialEnd CANCEL, as recorded in caller_hangup.ami). The channel is gone from
        CoreShowChannels from then on."""
        channel = self.channels.pop(uniqueid)
        ended = time.time() if at is None else at
        if channel.dialled_at is not None and channel.answered is None:
            end = ["Event: DialEnd", "Privilege: call,all", *channel.headers()]
            self._emit([*end, *channel.peer_headers(5), "DialStatus: CANCEL"], at)
        if channel.bridge:
            self._emit(
                [
                    "Event: BridgeLeave",
                    "Privilege: call,all",
                    *_bridge(channel, 0),
                    *channel.headers(),
                ],
                at,
            )
        self._emit(
            [
                "Event: Hangup",
                "Privilege: call,all",
                *channel.headers(),
                "Cause: 16",
                "Cause-txt: Normal Clearing",
            ],
            at,
        )
        if channel.dialled_at is None:
            return
        cdr = self._event(self._cdr_lines(channel, ended), None)
        if self.cdr_batch:
            self.held_cdrs.append(cdr)
        else:
            self.send([cdr])

    def flush_cdrs(self) -> int:
        """Post the held Cdr records, as a cdr.conf batch is posted; how many were sent."""
        held, self.held_cdrs = self.held_cdrs, []
        return self.send(held)

    def _cdr_lines(self, channel: SimulatedChannel, ended: float) -> list[str]:
        """The Dial's record: answered (and billed) from the channel's own answer, whoever
        gave it; its Disposition says whether the destination answered (agi-more
        c_noanswer: NO ANSWER with billable seconds after a prompt)."""
        answered = channel.answered if channel.caller_answered is None else channel.caller_answered
        billable = int(ended - answered) if answered is not None else 0
        return [
            "Event: Cdr",
            "Privilege: cdr,all",
            "AccountCode: ",
            f"Source: {channel.caller}",
            f"Destination: {channel.dialled}",
            "DestinationContext: inbound-400",
            f'CallerID: "Test Caller" <{channel.caller}>',
            f"Channel: {channel.name}",
            f"DestinationChannel: {channel.peer}",
            "LastApplication: Dial",
            f"LastData: {channel.dial_data}",
            f"StartTime: {self._cdr_time(channel.started)}",
            f"AnswerTime: {self._cdr_time(answered) if answered is not None else ''}",
            f"EndTime: {self._cdr_time(ended)}",
            f"Duration: {int(ended - channel.started)}",
            f"BillableSeconds: {billable}",
            f"Disposition: {'ANSWERED' if channel.answered is not None else 'NO ANSWER'}",
            "AMAFlags: DOCUMENTATION",
            f"UniqueID: {channel.uniqueid}",
            "UserField: ",
        ]

    def _cdr_time(self, moment: float) -> str:
        return datetime.fromtimestamp(moment, self.zone).strftime(_CDR_TIME)

    def _event(self, lines: list[str], at: float | None) -> bytes:
        """An event's bytes; stamped (after Privilege) at `at` when events are stamped."""
        if self.timestamp_events and at is not None:
            lines = [*lines[:2], f"Timestamp: {at:.6f}", *lines[2:]]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _emit(self, lines: list[str], at: float | None) -> None:
        self.send([self._event(lines, at)])

    def _channel_list(self, session: _Session, action_id: str | None) -> None:
        """CoreShowChannels as Asterisk answers it: a reply, an event per channel, the end."""
        account = session.account
        if account is None or not account.write & _LIST_CLASSES:
            session.writer.write(_reply("Error", action_id, "Message: Permission denied"))
            return
        self.channel_lists += 1
        tag = [f"ActionID: {action_id}"] if action_id else []
        send = session.writer.write
        send(_reply("Success", action_id, "EventList: start", "Message: Channels will follow"))
        now = time.time()
        for channel in self.channels.values():
            seconds = int(now - channel.started)
            duration = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
            application = ["Application: Dial", f"ApplicationData: {channel.dial_data}"]
            if not channel.dialled_at:
                application = ["Application: AGI", "ApplicationData: agi://router/route"]
            lines = ["Event: CoreShowChannel", *tag, *channel.headers(), *application]
            lines += [f"Duration: {duration}", f"BridgeId: {channel.bridge}"]
            send(("\r\n".join(lines) + "\r\n\r\n").encode())
        done = ["Event: CoreShowChannelsComplete", *tag, "EventList: Complete"]
        send(("\r\n".join([*done, f"ListItems: {len(self.channels)}"]) + "\r\n\r\n").encode())

    def _getvar(self, session: _Session, action: Mapping[str, str], action_id: str | None) -> None:
        """Getvar of a channel's variable or function, as Asterisk answers it (its account
        needs `write = call` or `reporting`); only SHARED(HOTLINE_ANSWERED), the answer
        hook's stamp, is simulated: every other name answers an empty value."""
        account = session.account
        send = session.writer.write
        if account is None or not account.write & _GETVAR_CLASSES:
            send(_reply("Error", action_id, "Message: Permission denied"))
            return
        self.variables_read += 1
        variable = action.get("variable", "")
        wanted = action.get("channel", "")
        channel = next(  # by its name, case aside, else its uniqueid (manager.c action_getvar)
            (c for c in self.channels.values() if wanted.lower() in (c.name.lower(), c.uniqueid)),
            None,
        )
        if not variable:
            send(_reply("Error", action_id, "Message: No variable specified"))
        elif wanted and channel is None:
            send(_reply("Error", action_id, "Message: No such channel"))
        else:
            stamp = channel.answer_stamp if channel is not None else ""
            value = stamp if variable == "SHARED(HOTLINE_ANSWERED)" else ""
            send(_reply("Success", action_id, f"Variable: {variable}", f"Value: {value}"))

    def _write(self, block: bytes) -> list[_Session]:
        if not block.startswith(b"Event: "):
            raise ValueError(f"not an event: {block[:60]!r}")
        name, classes = _name_and_classes(block)
        stamped = self.timestamp_events and header(block, b"Timestamp") is None
        data = _stamped(block) if stamped else block
        readers = [s for s in self._sessions if s.may_read(name, classes)]
        for session in readers:
            session.writer.write(data)
        return readers

    # --- one client ------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connection_times.append(time.monotonic())
        task = asyncio.current_task()
        assert task is not None
        session = _Session(writer, task)
        self._sessions.add(session)
        try:
            writer.write(f"Asterisk Call Manager/{self.version}\r\n".encode())
            while (action := await _read_action(reader)) is not None:
                if not self._answer(session, action):
                    break
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._sessions.discard(session)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _answer(self, session: _Session, action: Mapping[str, str]) -> bool:
        """Answer one action; False when the session is over."""
        name = action.get("action", "")
        action_id = action.get("actionid")
        send = session.writer.write
        if not name:
            send(_reply("Error", action_id, "Message: Missing action in request"))
        elif name.lower() == "login":
            return self._login(session, action, action_id)
        elif name.lower() == "logoff":
            send(_reply("Goodbye", action_id, "Message: Thanks for all the fish."))
            return False
        elif session.account is None:
            send(_reply("Error", action_id, "Message: Permission denied"))
        elif name.lower() == "coreshowchannels":
            self._channel_list(session, action_id)
        elif name.lower() == "getvar":
            self._getvar(session, action, action_id)
        elif name.lower() == "ping":
            if self.answer_ping:
                send(_reply("Success", action_id, "Ping: Pong", f"Timestamp: {time.time():.6f}"))
        else:
            send(
                _reply(
                    "Error",
                    action_id,
                    f"Message: Invalid/unknown command: {name}. "
                    "Use Action: ListCommands to show available commands.",
                )
            )
        return True

    def _login(self, session: _Session, action: Mapping[str, str], action_id: str | None) -> bool:
        """Asterisk's action_login: FullyBooted follows only for a session that reads
        `system` (its account's read classes and its Events mask both)."""
        if session.account is not None:
            session.writer.write(_reply("Success", action_id, "Message: Already authenticated"))
            return True
        account = self.accounts.get(action.get("username", ""))
        if account is None or action.get("secret") != account.secret:
            session.writer.write(_reply("Error", action_id, "Message: Authentication failed"))
            return False
        session.account = account
        session.mask = _event_mask(action.get("events"), account.read)
        self.logins += 1
        uptime = int(time.monotonic() - self._booted)
        session.writer.write(_reply("Success", action_id, "Message: Authentication accepted"))
        if "system" not in session.mask:
            return True
        session.writer.write(
            (
                "Event: FullyBooted\r\nPrivilege: system,all\r\n"
                f"Uptime: {uptime}\r\nLastReload: {uptime}\r\nStatus: Fully Booted\r\n\r\n"
            ).encode()
        )
        return True


def _bridge(channel: SimulatedChannel, members: int) -> list[str]:
    return [
        f"BridgeUniqueid: {channel.bridge}",
        "BridgeType: basic",
        "BridgeTechnology: simple_bridge",
        "BridgeCreator: <unknown>",
        "BridgeName: <unknown>",
        f"BridgeNumChannels: {members}",
        "BridgeVideoSourceMode: none",
    ]


def _stamped(event: bytes) -> bytes:
    """The event with the Timestamp header Asterisk puts after Privilege."""
    lines = event.split(b"\r\n")
    lines.insert(2, f"Timestamp: {time.time():.6f}".encode())
    return b"\r\n".join(lines)


def _event_mask(events: str | None, read: frozenset[str]) -> frozenset[str]:
    """The classes a session gets: its read classes, narrowed by Login's Events header as
    Asterisk's strings_to_mask reads it (digits a bit mask, so `1` is `system` alone)."""
    value = (events or "").strip()
    if not value:
        return read
    if value.isascii() and value.isdigit():
        mask = int(value)
        return read & {name for name, bit in _CLASS_BITS.items() if mask >> bit & 1}
    if value.lower() in _FALSE:
        return frozenset()
    if value.lower() in _TRUE:
        return read
    return read & _permissions(value)


async def _read_action(reader: asyncio.StreamReader) -> dict[str, str] | None:
    """One action's headers (names lower-cased), up to its blank line; None at EOF."""
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if not line:
            return None
        text = line.decode(errors="replace").rstrip("\r\n")
        if not text:
            if headers:
                return headers
            continue
        key, _, value = text.partition(":")
        headers[key.strip().lower()] = value.strip()


async def _demo(
    listen: str, accounts: Mapping[str, AmiAccount], files: list[Path], *, timestamp_events: bool
) -> None:
    host, _, port = listen.rpartition(":")
    simulator = AmiSimulator(accounts, timestamp_events=timestamp_events)
    await simulator.start(host, int(port))
    print(f"AMI simulator on {listen}; replays {len(files)} file(s) to each login")
    served = 0
    while True:
        await asyncio.sleep(0.2)
        if simulator.logins > served:
            served = simulator.logins
            for path in files:
                await simulator.replay(recorded_events(path), pace=0.01)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("files", nargs="+", type=Path, help="recorded .ami streams")
    parser.add_argument("--listen", default="127.0.0.1:5038")
    parser.add_argument("--manager-conf", type=Path, default=MANAGER_CONF, help="accounts")
    args = parser.parse_args(argv)
    conf = args.manager_conf.read_text(encoding="utf-8")
    accounts = accounts_from_manager_conf(conf)
    stamped = timestamp_events_in(conf)
    asyncio.run(_demo(args.listen, accounts, args.files, timestamp_events=stamped))


if __name__ == "__main__":
    main()
