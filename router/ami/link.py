"""The AMI link: one manager session to Asterisk, kept up for as long as the daemon runs.

Calls are routed over FastAGI whether this link is up or not; only what is built on it
(live call counts, completing calls whose AGI session broke) waits for it. So the link
never blocks and never raises into its owner: `start` returns at once, a lost or refused
connection is retried in the background after a doubling delay (capped), a session that
stops answering Ping is dropped and retried, and an event handler that fails is logged
and skipped.

panoramisk's `Manager` speaks the protocol here: it frames the byte stream, parses
events, sends Login and Ping and matches each reply to its action by ActionID. Its
connection life is not used, because it does not suit a daemon:
- it retries after a fixed `int(reconnect_timeout)` seconds: no backoff, so a dead or
  refusing Asterisk is hammered at a constant rate, and a delay under a second becomes 0;
- it has no connect or login timeout, and a refused Login leaves it connected and
  unauthenticated (Asterisk then closes, and the fixed-rate retry starts again);
- its Ping is never checked for a reply: a half-open connection (Asterisk's host gone
  without a FIN) looks connected until TCP gives up, many minutes later;
- `close()` does not cancel a reconnect already scheduled, so a closed Manager comes back;
- an event callback that raises does so inside `data_received`, which asyncio treats as
  fatal: the connection is closed and the rest of the received chunk lost.
So each connection here gets a fresh Manager, bound to its protocol as the connection is
made, and this module decides when to connect, log in, ping and retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

log = logging.getLogger("hotline400.ami")

Event = Mapping[str, Any]
"""One AMI event: its headers, looked up without regard to case ("UniqueID" == "Uniqueid")."""
EventHandler = Callable[[Event], object]


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


class _Manager(Manager):
    """panoramisk's Manager for one connection: a lost connection resolves `lost` instead
    of scheduling Manager's own fixed-delay reconnect."""

    def __init__(
        self, lost: asyncio.Future[None], dispatch: Callable[[Manager, Message], None], **config
    ) -> None:
        super().__init__(**config)
        self.lost = lost
        self.register_event("*", dispatch)

    def connection_lost(self, exc: object) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


class _Protocol(AMIProtocol):
    """AMIProtocol bound to its Manager as the connection is made, before a byte is read
    (Manager.connection_made binds it a loop turn later, after data may have arrived)."""

    def __init__(self, manager: _Manager) -> None:
        super().__init__()
        self._manager = manager

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        manager = self._manager
        self.factory, self.log, self.config = manager, manager.log, manager.config
        self.encoding = manager.config["encoding"]
        manager.protocol, manager.responses = self, self.responses


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
        self._handlers: defaultdict[str, list[EventHandler]] = defaultdict(list)
        self._disconnect_hooks: list[Callable[[], object]] = []
        self._connected = False
        self._connects = self._disconnects = self._failed_attempts = self._events = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """Logged in to Asterisk now."""
        return self._connected

    def on_event(self, name: str, handler: EventHandler) -> None:
        """Call `handler` with every event named `name` (any case), in registration order."""
        self._handlers[name.lower()].append(handler)

    def on_disconnect(self, hook: Callable[[], object]) -> None:
        """Call `hook` each time a connection to Asterisk ends: the events until the next
        one are lost, so state built from them is stale."""
        self._disconnect_hooks.append(hook)

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
                log.warning("AMI connection to %s:%d lost", self.host, self.port)
            except (OSError, AmiError) as error:  # TimeoutError is an OSError
                log.warning("AMI %s:%d: %s", self.host, self.port, error or type(error).__name__)
            except Exception:  # a fault here must not end the link: log it and retry
                log.exception("AMI link to %s:%d failed", self.host, self.port)
            if self._connects == connects_before:
                self._failed_attempts += 1
            elif loop.time() - began >= delay:  # a session that held resets the backoff
                delay = self._reconnect_initial
            log.info("AMI reconnect to %s:%d in %.3gs", self.host, self.port, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._reconnect_max)

    async def _session(self) -> None:
        """One connection: connect, log in, then ping until it is lost."""
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[None] = loop.create_future()
        manager = _Manager(lost, self._dispatch, loop=loop)
        try:
            async with asyncio.timeout(self._connect_timeout):
                await loop.create_connection(lambda: _Protocol(manager), self.host, self.port)
                reply = await _reply(manager.send_action(dict(self._login)), lost)
            if not reply.success:
                raise AmiError(f"login refused: {reply.get('Message', '')}")
            self._connected = True
            self._connects += 1
            log.info("AMI logged in to %s:%d", self.host, self.port)
            await self._keep_alive(manager, lost)
        finally:
            if manager.protocol is not None:
                manager.protocol.close()
                self._session_ended()

    async def _keep_alive(self, manager: _Manager, lost: asyncio.Future[None]) -> None:
        """Ping every `ping_interval`; returns when the connection is lost, raises when a
        Ping goes unanswered."""
        while True:
            done, _ = await asyncio.wait({lost}, timeout=self._ping_interval)
            if done:
                return
            try:
                async with asyncio.timeout(self._ping_timeout):
                    await _reply(manager.send_action({"Action": "Ping"}), lost)
            except TimeoutError:
                raise AmiError(f"no reply to Ping within {self._ping_timeout}s") from None

    def _session_ended(self) -> None:
        if self._connected:
            self._connected = False
            self._disconnects += 1
        for hook in self._disconnect_hooks:
            try:
                hook()
            except Exception:
                log.exception("AMI disconnect hook %r failed", hook)

    def _dispatch(self, _manager: Manager, event: Message) -> None:
        self._events += 1
        name = str(event.get("Event", ""))
        for handler in self._handlers.get(name.lower(), ()):
            try:
                handler(event)
            except Exception:
                log.exception("AMI %s handler %r failed", name, handler)


async def _reply(action: asyncio.Future[Message], lost: asyncio.Future[None]) -> Message:
    """The reply to an action, or AmiError if the connection ends first."""
    await asyncio.wait({action, lost}, return_when=asyncio.FIRST_COMPLETED)
    if action.done():
        return action.result()
    raise AmiError("Asterisk closed the connection")
