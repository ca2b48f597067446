"""The AMI link: one manager session to Asterisk, kept up for as long as the daemon runs.

Calls are routed over FastAGI whether this link is up or not; only what is built on it
(live call counts, completing calls whose AGI session broke) waits for it. So the link
never blocks and never raises into its owner: `start` returns at once, a lost or refused
connection is retried in the background after a doubling delay (capped; only a session
that held for the cap starts the delays afresh, so a peer dropping each session soon after
its login is dialled no more often than a peer refusing it), a session that stops answering
Ping is dropped and retried, and an event handler that fails is logged and skipped.

Its own reconnect suits a daemon, where panoramisk's `Manager` (used here before, with
its connection life replaced) did not: that retries after a fixed whole number of seconds
with no backoff and no connect or login timeout, never checks that Ping is answered (a
half-open connection looks up until TCP gives up, many minutes later), and lets an event
callback that raises close the connection and lose the rest of the chunk. The bytes are
read by `router.ami.wire`, which also says why panoramisk's reader went: it built an object
of every event, and most events are not wanted.

Handlers say which events they want before any is parsed: `on_event(name, handler,
wants=test)`, where `test` looks at the event's raw bytes (see `wire.header`). An event
whose name has no handler, or that no handler's test accepts, is counted and dropped as
bytes. A handler that keeps most events without reading them takes them as bytes
(`on_raw_event`) and parses only those it comes to need.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from router.ami.wire import (
    GREETING,
    READ_INTERVAL_S,
    AmiConnection,
    AmiEvent,
    AmiMessage,
    AmiRefused,
    event_name,
)

_T = TypeVar("_T")
log = logging.getLogger("hotline400.ami")

Event = Mapping[str, Any]
"""One AMI event: its headers, looked up without regard to case ("UniqueID" == "Uniqueid")."""
EventHandler = Callable[[Event], object]
EventTest = Callable[[bytes], bool]
"""Whether a handler wants an event, asked of the event's raw bytes before it is parsed."""
RawEventHandler = Callable[[bytes], object]
"""A handler given an event's bytes (its CRLF lines, without the blank line after them)."""


MAX_SPELLINGS = 256
"""Event names remembered as spelt: Asterisk has some 200 events, a peer sending made-up
names must not grow the table without bound."""


class _Route(NamedTuple):
    handler: Callable[[Any], object]
    wants: EventTest | None
    raw: bool


class AmiError(Exception):
    """The manager session could not be set up or kept: login refused, connection closed."""


@dataclass(frozen=True, slots=True)
class AmiStats:
    """Figures for metrics."""

    connected: bool
    connects: int
    """Sessions logged in since start."""
    disconnects: int
    """Logged-in sessions lost."""
    failed_attempts: int
    """Connection attempts that never logged in (refused, timed out, bad credentials)."""
    events: int
    """Events received."""


class AmiLink:
    """A manager session to one Asterisk, reconnected for as long as the link runs.

    `events` is the Login event mask: the classes of events Asterisk should send.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        events: str = "call,cdr",
        reconnect_initial: float = 0.5,
        reconnect_max: float = 30.0,
        connect_timeout: float = 5.0,
        ping_interval: float = 20.0,
        ping_timeout: float = 5.0,
        read_interval: float = READ_INTERVAL_S,
    ) -> None:
        if not 0 < reconnect_initial <= reconnect_max:
            raise ValueError("need 0 < reconnect_initial <= reconnect_max")
        self.host, self.port = host, port
        self._login = {"Action": "Login", "Username": username, "Secret": secret, "Events": events}
        self._reconnect_initial = reconnect_initial
        self._reconnect_max = reconnect_max
        self._connect_timeout = connect_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._read_interval = read_interval
        self._handlers: defaultdict[bytes, list[_Route]] = defaultdict(list)
        self._routes_by_spelling: dict[bytes, Sequence[_Route]] = {}
        """The handlers of an event name as Asterisk spells it (`DialBegin`), none for a name
        nobody handles (`Newstate`), found without lower-casing it again for every event;
        cleared when a handler is added."""
        self._disconnect_hooks: list[Callable[[], object]] = []
        self._login_hooks: list[Callable[[], object]] = []
        self._connected = False
        self._connection: AmiConnection | None = None
        self._logged_in = asyncio.Event()
        self._connects = self._disconnects = self._failed_attempts = self._events = 0
        self._failures_in_a_row = 0
        self._reported: str | None = None
        """The failure last logged as a warning; the same one again is logged at debug."""
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """Logged in to Asterisk now."""
        return self._connected

    def on_event(self, name: str, handler: EventHandler, wants: EventTest | None = None) -> None:
        """Call `handler` with every event named `name` (any case) that `wants` accepts
        (every one without it), in registration order. `wants` gets the event's bytes and
        must be cheap: it runs for each event of that name, parsed or not."""
        self._handlers[name.lower().encode()].append(_Route(handler, wants, raw=False))
        self._routes_by_spelling.clear()

    def on_raw_event(self, name: str, handler: RawEventHandler) -> None:
        """Call `handler` with the bytes of every event named `name` (any case), in
        registration order with the other handlers; nothing is parsed for it."""
        self._handlers[name.lower().encode()].append(_Route(handler, None, raw=True))
        self._routes_by_spelling.clear()

    def on_disconnect(self, hook: Callable[[], object]) -> None:
        """Call `hook` each time a connection to Asterisk ends: the events until the next
        one are lost, so state built from them is stale."""
        self._disconnect_hooks.append(hook)

    def on_login(self, hook: Callable[[], object]) -> None:
        """Call `hook` each time a session has logged in (events flow from then on)."""
        self._login_hooks.append(hook)

    async def logged_in(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a logged-in session; whether there is one."""
        try:
            async with asyncio.timeout(timeout):
                await self._logged_in.wait()
        except TimeoutError:
            return False
        return True

    async def channels(self, timeout: float = 10.0) -> list[AmiMessage]:
        """The channels Asterisk has now (`CoreShowChannels`: one CoreShowChannel each,
        with its Uniqueid). Raises AmiError when not logged in, when the list does not come
        within `timeout`, or when Asterisk refuses (the account needs `write = reporting`)."""
        connection = self._connection
        if connection is None:
            raise AmiError("not logged in to Asterisk")
        listing = connection.send_list_action({"Action": "CoreShowChannels"})
        try:
            return await _awaited(listing, timeout, "channel list")
        except AmiRefused as refused:
            raise AmiError(f"CoreShowChannels refused: {refused}") from None

    async def variable(self, channel: str, name: str, timeout: float = 5.0) -> str:
        """The value of a channel's variable or function (`Getvar`; the account needs
        `write = call` or `reporting`), "" when unset. Raises AmiError when not logged in,
        when no reply comes within `timeout`, or when Asterisk refuses (no such channel)."""
        connection = self._connection
        if connection is None:
            raise AmiError("not logged in to Asterisk")
        reply = connection.send_action({"Action": "Getvar", "Channel": channel, "Variable": name})
        answer = await _awaited(reply, timeout, "Getvar reply")
        if not answer.success:
            raise AmiError(f"Getvar {name} of {channel} refused: {answer.get('Message')}")
        return answer.get("Value") or ""

    def stats(self) -> AmiStats:
        return AmiStats(
            self._connected, self._connects, self._disconnects, self._failed_attempts, self._events
        )

    def start(self) -> None:
        """Connect in the background; returns at once."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ami-link")

    async def stop(self) -> None:
        """Close the session and stop reconnecting."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # --- the connection's life ---------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self._reconnect_initial
        while True:
            connects_before, began = self._connects, loop.time()
            try:
                await self._session()
                problem = "lost"
            except (OSError, AmiError) as error:  # TimeoutError is an OSError
                problem = str(error) or type(error).__name__
            except Exception:  # a fault here must not end the link: log it and retry
                log.exception("AMI link to %s:%d failed", self.host, self.port)
                problem = "failed"
            if self._connects == connects_before:
                self._failed_attempts += 1
                self._failures_in_a_row += 1
            else:
                self._reported = None  # logged in since: a failure now is news again
                if loop.time() - began >= self._reconnect_max:  # it held: a fresh start
                    delay = self._reconnect_initial
            self._report(problem)
            log.debug("AMI reconnect to %s:%d in %.3gs", self.host, self.port, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._reconnect_max)

    def _report(self, problem: str) -> None:
        """Warn at a change of state: a session lost, or a new reason for not getting one.
        The same failure again is logged at debug, so an Asterisk down for hours is one
        warning, not one each backoff."""
        if problem == self._reported:
            log.debug(
                "AMI %s:%d: %s again (%d failed attempts in a row)",
                self.host,
                self.port,
                problem,
                self._failures_in_a_row,
            )
        elif problem == "lost":
            log.warning("AMI connection to %s:%d lost", self.host, self.port)
        elif problem != "failed":  # a fault was logged with its traceback
            log.warning(
                "AMI %s:%d: %s; trying again with backoff up to %gs",
                self.host,
                self.port,
                problem,
                self._reconnect_max,
            )
        self._reported = problem

    async def _session(self) -> None:
        """One connection: connect, log in, then ping until it is lost."""
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[None] = loop.create_future()
        connection: AmiConnection | None = None
        awaited = "connection"
        try:
            try:
                async with asyncio.timeout(self._connect_timeout):
                    _, connection = await loop.create_connection(
                        lambda: AmiConnection(self._dispatch, lost, self._read_interval),
                        self.host,
                        self.port,
                    )
                    awaited = "greeting from Asterisk"
                    greeting = await _reply(connection.greeting, lost)
                    if not greeting.startswith(GREETING):
                        shown = greeting[:60].decode("utf-8", "replace")
                        raise AmiError(f"not an Asterisk manager (it greeted with {shown!r})")
                    awaited = "reply to Login"
                    reply = await _reply(connection.send_action(self._login), lost)
            except TimeoutError:
                raise AmiError(f"no {awaited} within {self._connect_timeout:g}s") from None
            if not reply.success:
                raise AmiError(f"login refused: {reply.get('Message', '')}")
            self._connected = True
            self._connection = connection
            self._logged_in.set()
            self._connects += 1
            self._log_login()
            _call_each(self._login_hooks, "login")
            await self._keep_alive(connection, lost)
        finally:
            if connection is not None:
                connection.close()
                self._session_ended()

    def _log_login(self) -> None:
        if self._failures_in_a_row:
            log.info(
                "AMI logged in to %s:%d after %d failed attempts",
                self.host,
                self.port,
                self._failures_in_a_row,
            )
        else:
            log.info("AMI logged in to %s:%d", self.host, self.port)
        self._failures_in_a_row = 0

    async def _keep_alive(self, connection: AmiConnection, lost: asyncio.Future[None]) -> None:
        """Ping every `ping_interval`; returns when the connection is lost, raises when a
        Ping goes unanswered."""
        while True:
            done, _ = await asyncio.wait({lost}, timeout=self._ping_interval)
            if done:
                return
            try:
                async with asyncio.timeout(self._ping_timeout):
                    await _reply(connection.send_action({"Action": "Ping"}), lost)
            except TimeoutError:
                raise AmiError(f"no reply to Ping within {self._ping_timeout}s") from None

    def _session_ended(self) -> None:
        self._connection = None
        self._logged_in.clear()
        if self._connected:
            self._connected = False
            self._disconnects += 1
        _call_each(self._disconnect_hooks, "disconnect")

    def _dispatch(self, block: bytes) -> None:
        """One event as bytes: parsed only if a handler of its name wants it."""
        self._events += 1
        end = block.find(b"\r\n")
        spelt = block[7:end] if end >= 0 else block[7:]
        routes = self._routes_by_spelling.get(spelt)
        if routes is None:
            routes = self._handlers.get(event_name(block), ())
            if len(self._routes_by_spelling) < MAX_SPELLINGS:
                self._routes_by_spelling[spelt] = routes
        event: AmiEvent | None = None
        for handler, wants, raw in routes:
            try:
                if raw:
                    handler(block)
                    continue
                if wants is not None and not wants(block):
                    continue
                if event is None:
                    event = AmiEvent(block)
                handler(event)
            except Exception:
                name = block.partition(b"\r\n")[0][7:].decode("utf-8", "replace")
                log.exception("AMI %s handler %r failed", name, handler)


def _call_each(hooks: list[Callable[[], object]], what: str) -> None:
    """Call every hook; one that fails is logged and the others still run."""
    for hook in hooks:
        try:
            hook()
        except Exception:
            log.exception("AMI %s hook %r failed", what, hook)


async def _reply(action: asyncio.Future[_T], lost: asyncio.Future[None]) -> _T:
    """The reply to an action (or the greeting), or AmiError if the connection ends first."""
    await asyncio.wait({action, lost}, return_when=asyncio.FIRST_COMPLETED)
    if action.done() and not action.cancelled():  # a lost connection cancels what it owed
        return action.result()
    raise AmiError("Asterisk closed the connection")


async def _awaited(pending: asyncio.Future[_T], timeout: float, what: str) -> _T:
    """What Asterisk owes an action (`what`, for the errors) within `timeout`: AmiError when
    it does not come in time or the connection is lost first (which cancels `pending`); the
    caller's own cancellation goes through."""
    try:
        async with asyncio.timeout(timeout):
            return await asyncio.shield(pending)
    except TimeoutError:
        raise AmiError(f"no {what} from Asterisk within {timeout}s") from None
    except asyncio.CancelledError:
        if not pending.cancelled():  # this task is being cancelled
            raise
        raise AmiError(f"the AMI connection was lost before the {what} came") from None
