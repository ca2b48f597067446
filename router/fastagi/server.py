"""The FastAGI listener: a connection per Asterisk call, a task per call once its header is
read, nothing shared but services.

Calls ring for tens of seconds, so thousands of sessions are open at once; a connection and
its task cost a few kilobytes, and the listen backlog is sized for bursts. Connections from
outside the allow-list are closed before a byte is read. A broken or hostile session
(no header, endless header, junk) is closed on its own without touching any other call.
A connection closed before its first byte is a load balancer's or monitor's TCP check: it
is counted as a probe and logged at debug only, not as a broken session.

The environment block is read by the connection itself as its bytes arrive
(router.fastagi.connection), not by a task awaiting it: a burst of calls has every
header read as soon as the loop polls the sockets, however many calls the loop is
busy setting up, so no header that came in time is timed out, and a peer that sends none
holds no task and delays no other call.

The listener accepts connections itself, up to `max_connections` (the open-files limit less
the router's own descriptors): at the limit it stops accepting, so further calls wait in
the kernel's listen queue until a call ends. asyncio's and uvloop's own servers accept
everything queued at once: past the descriptors, uvloop (libuv) accepts and closes the
surplus at once, each a call lost without a word, and asyncio logs a traceback for each of
the up to 65,535 connections it tries to accept in one pass.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
from collections.abc import Sequence

from router.call.context import context_from
from router.call.session import CallServices, CallSession
from router.fastagi.connection import HEADER_TIMEOUT_S, MAX_HEADER_BYTES, AGIConnection
from router.fastagi.errors import AGIClosedUnused, AGIProtocolError
from router.fastagi.protocol import COMMAND_TIMEOUT_S, AGISession

log = logging.getLogger("hotline400.server")

LISTEN_BACKLOG = 65535
"""Connections the kernel queues before they are accepted; it caps this at
net.core.somaxconn (4096 by default on recent kernels), so a burst of calls waits in the
queue rather than being refused while the loop is busy."""
MAX_REMEMBERED_PEERS = 1024
KEEPALIVE_IDLE_S = 60
KEEPALIVE_INTERVAL_S = 15
KEEPALIVE_PROBES = 4
"""TCP keepalive of every call's socket: after 60 s without traffic (a Dial in progress),
a probe each 15 s, the peer declared gone after 4 unanswered: a partition without a FIN
ends the session within 2 minutes, where a Dial, which has no reply timeout, would
otherwise wait for ever. Set on the listening socket, which accepted sockets inherit."""
ACCEPT_BATCH = 256
"""Connections accepted in one wake-up of the listener, so a burst does not hold the loop."""
ACCEPT_RETRY_S = 0.5
"""Pause after an accept failed for want of descriptors or memory, before trying again."""
RESUME_FRACTION = 0.9
"""At the limit, accepting resumes once the connections open fall to this share of it (and
not at each call's end, which would pause and resume, and log, at every call)."""
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class _CallConnection(AGIConnection):
    """A connection accepted by the listener: refused unless its peer is allowed, a call
    once its header is read."""

    def __init__(self, server: FastAGIServer, peer: object) -> None:
        super().__init__(
            header_timeout=server.header_timeout, header_max_bytes=server.header_max_bytes
        )
        self._server = server
        self._peer = peer
        """The address accept() gave: a socket already reset (a TCP check closing at once,
        as HAProxy does) no longer has a peer name to ask for."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = self._peer
        if self._server.stopped:  # accepted as the router stopped: no call of it began
            transport.close()
            return
        if not self._server.peer_allowed(peer):
            self._server.refused_peers += 1
            log.warning("refused FastAGI connection from %s", peer)
            transport.close()
            return
        super().connection_made(transport)
        self._server.reading.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connection_closed()
        if self.transport is not None:  # else refused: nothing was read, nothing to report
            super().connection_lost(exc)

    def header_read(self, env: dict[str, str]) -> None:
        self._server.reading.discard(self)
        self._server.start_call(self, env)

    def header_failed(self, error: AGIProtocolError) -> None:
        self._server.reading.discard(self)
        if isinstance(error, AGIClosedUnused):
            self._server.probes += 1
            log.debug("FastAGI probe from %s: %s", self._peer, error)
            return
        self._server.broken_sessions += 1
        log.warning("closed a FastAGI session before any call: %s", error)


class FastAGIServer:
    def __init__(
        self,
        services: CallServices,
        allowed: Sequence[Network],
        *,
        header_timeout: float = HEADER_TIMEOUT_S,
        header_max_bytes: int = MAX_HEADER_BYTES,
        command_timeout: float = COMMAND_TIMEOUT_S,
        max_connections: int | None = None,
    ) -> None:
        self.services = services
        self.allowed = tuple(allowed)
        self._peer_verdicts: dict[str, bool] = {}
        """Allowed or not, by peer address (so `allowed` is fixed once made): every call
        comes from one of a few Asterisk hosts, and `ipaddress` parses the address and tests
        it against each network in Python, several microseconds a connection."""
        self.header_timeout = header_timeout
        self.header_max_bytes = header_max_bytes
        self.command_timeout = command_timeout
        self.max_connections = max_connections
        """Connections open at once, at most (None: as many as descriptors allow)."""
        self.sessions: set[asyncio.Task[None]] = set()
        """The calls running: one task each, from its header read to its end."""
        self.reading: set[AGIConnection] = set()
        """Connections whose header is not read yet."""
        self.refused_peers = 0
        self.broken_sessions = 0
        self.probes = 0
        """Connections closed before their first byte: TCP health checks."""
        self.open_connections = 0
        """Connections accepted and not yet closed: each holds a descriptor."""
        self.accepting = False
        """Whether the listener takes connections now (False at the limit, or stopped)."""
        self.admission_pauses = 0
        """Times the listener stopped accepting at its limit or for want of descriptors."""
        self._listening: list[socket.socket] = []
        self._connecting: set[asyncio.Task[object]] = set()
        self._retry: asyncio.TimerHandle | None = None
        self._stopped = False

    async def start(self, host: str, port: int) -> int:
        """Listen and accept; returns the bound port (useful with port 0)."""
        bound = await self.bind(host, port)
        await self.serve()
        return bound

    async def bind(self, host: str, port: int) -> int:
        """Take the address without accepting calls yet, so that a taken address fails the
        start before anything else is opened. Returns the bound port."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            asyncio.Protocol, host, port, reuse_address=True, start_serving=False
        )  # the address resolved and bound as asyncio does it; its sockets taken over
        try:
            self._listening = [_own_copy(listening) for listening in server.sockets]
        finally:
            server.close()
        for listening in self._listening:
            _keep_alive(listening)
        return self._listening[0].getsockname()[1]

    async def serve(self) -> None:
        """Accept calls on the address taken by `bind`."""
        if not self._listening:
            raise RuntimeError("bind() first")
        for listening in self._listening:
            listening.listen(LISTEN_BACKLOG)
        self._resume()

    async def stop_accepting(self) -> None:
        """No new connections; those still sending their header are closed (no call of
        theirs has begun)."""
        self._stopped = True
        self._pause()
        for listening in self._listening:
            listening.close()
        for connection in list(self.reading):
            connection.close()
        self.reading.clear()

    async def drain(self, timeout: float) -> int:
        """Wait for calls in flight; cancel those still running after `timeout`. Returns
        how many had to be cancelled."""
        pending = set(self.sessions)
        if not pending:
            return 0
        _, still_running = await asyncio.wait(pending, timeout=timeout)
        for task in still_running:
            task.cancel(f"router stopped: the call was cut after drain_timeout ({timeout:g} s)")
        if still_running:
            await asyncio.wait(still_running)
        return len(still_running)

    @property
    def stopped(self) -> bool:
        return self._stopped

    # --- admission ----------------------------------------------------------------------

    def connection_closed(self) -> None:
        """A connection's descriptor is free: accept again once enough are."""
        self.open_connections -= 1
        if not self.accepting and self._retry is None and self._below_resume_mark():
            self._resume()

    def _room(self) -> int:
        if self.max_connections is None:
            return ACCEPT_BATCH
        return min(ACCEPT_BATCH, self.max_connections - self.open_connections)

    def _below_resume_mark(self) -> bool:
        if self.max_connections is None:
            return True
        return self.open_connections <= int(self.max_connections * RESUME_FRACTION)

    def _accept(self, listening: socket.socket) -> None:
        """Accept what is queued, up to the room left; stop accepting at the limit."""
        for _ in range(self._room()):
            try:
                connection, peer = listening.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as error:
                if error.errno not in _OUT_OF_RESOURCES:
                    raise
                self._stop_for_a_while(error)
                return
            self._connect(connection, peer)
        if self.max_connections is not None and self.open_connections >= self.max_connections:
            self._pause()
            self.admission_pauses += 1
            log.warning(
                "FastAGI: %d connections open, the limit this router's open files hold: new "
                "calls wait in the listen queue until calls end",
                self.open_connections,
            )

    def _connect(self, connection: socket.socket, peer: object) -> None:
        connection.setblocking(False)
        self.open_connections += 1
        loop = asyncio.get_running_loop()
        task = loop.create_task(
            loop.connect_accepted_socket(lambda: _CallConnection(self, peer), connection)
        )
        self._connecting.add(task)
        task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[object]) -> None:
        self._connecting.discard(task)
        if task.cancelled() or task.exception() is not None:  # no protocol to report its end
            self.connection_closed()

    def _stop_for_a_while(self, error: OSError) -> None:
        self._pause()
        self.admission_pauses += 1
        log.warning(
            "FastAGI: cannot accept a call (%s) with %d connections open: new calls wait in "
            "the listen queue; trying again in %g s",
            error.strerror or error,
            self.open_connections,
            ACCEPT_RETRY_S,
        )
        self._retry = asyncio.get_running_loop().call_later(ACCEPT_RETRY_S, self._retry_accept)

    def _retry_accept(self) -> None:
        self._retry = None
        self._resume()

    def _pause(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.accepting:
            loop = asyncio.get_running_loop()
            for listening in self._listening:
                loop.remove_reader(listening.fileno())
        self.accepting = False

    def _resume(self) -> None:
        if self.accepting or self._stopped:
            return
        loop = asyncio.get_running_loop()
        for listening in self._listening:
            loop.add_reader(listening.fileno(), self._accept, listening)
        if self.admission_pauses:
            log.info("FastAGI accepting calls again (%d connections open)", self.open_connections)
        self.accepting = True

    def peer_allowed(self, peer: object) -> bool:
        try:
            host = str(peer[0])  # type: ignore[index]
        except (TypeError, IndexError):
            return False
        verdict = self._peer_verdicts.get(host)
        if verdict is None:
            verdict = self._address_allowed(host)
            if len(self._peer_verdicts) >= MAX_REMEMBERED_PEERS:  # a scan of many addresses
                self._peer_verdicts.clear()
            self._peer_verdicts[host] = verdict
        return verdict

    def _address_allowed(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.allowed)

    def start_call(self, connection: AGIConnection, env: dict[str, str]) -> None:
        task = asyncio.get_running_loop().create_task(self._call(connection, env))
        self.sessions.add(task)
        task.add_done_callback(self.sessions.discard)

    async def _call(self, connection: AGIConnection, env: dict[str, str]) -> None:
        agi = AGISession(connection, env, command_timeout=self.command_timeout)
        try:
            with self.services.metrics.agi_session_timer():
                await CallSession(agi, context_from(env), self.services).run()
        finally:
            await agi.close()  # also drops the session's reply-timeout timer at once


def _own_copy(listening: socket.socket) -> socket.socket:
    """A socket of our own on the listening socket's descriptor (asyncio and uvloop hand
    out wrappers that cannot accept)."""
    return socket.socket(fileno=socket.dup(listening.fileno()))


def _keep_alive(listening: socket.socket) -> None:
    """TCP keepalive on the listening socket, once: Linux copies its options to every
    socket it accepts, so no call pays a system call for them."""
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE_S)
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL_S)
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_PROBES)
