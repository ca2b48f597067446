"""The FastAGI listener: a connection per Asterisk call, a task per call once its header is
read, nothing shared but services.

Calls ring for tens of seconds, so thousands of sessions are open at once; a connection and
its task cost a few kilobytes, and the listen backlog is sized for bursts. Connections from
outside the allow-list are closed before a byte is read. A broken or hostile session
(no header, endless header, junk) is closed on its own without touching any other call.

The environment block is read by the connection itself as its bytes arrive
(router.fastagi.connection), not by a task awaiting it: a burst of calls has every
header read as soon as the loop polls the sockets, however many calls the loop is
busy setting up, so no header that came in time is timed out, and a peer that sends none
holds no task and delays no other call.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Sequence

from router.call.context import context_from
from router.call.session import CallServices, CallSession
from router.fastagi.connection import HEADER_TIMEOUT_S, MAX_HEADER_BYTES, AGIConnection
from router.fastagi.errors import AGIProtocolError
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
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class _CallConnection(AGIConnection):
    """A connection accepted by the listener: refused unless its peer is allowed, a call
    once its header is read."""

    def __init__(self, server: FastAGIServer) -> None:
        super().__init__(
            header_timeout=server.header_timeout, header_max_bytes=server.header_max_bytes
        )
        self._server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        if not self._server.peer_allowed(peer):
            self._server.refused_peers += 1
            log.warning("refused FastAGI connection from %s", peer)
            transport.close()
            return
        super().connection_made(transport)
        self._server.reading.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:  # else refused: nothing was read, nothing to report
            super().connection_lost(exc)

    def header_read(self, env: dict[str, str]) -> None:
        self._server.reading.discard(self)
        self._server.start_call(self, env)

    def header_failed(self, error: AGIProtocolError) -> None:
        self._server.reading.discard(self)
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
        self.sessions: set[asyncio.Task[None]] = set()
        """The calls running: one task each, from its header read to its end."""
        self.reading: set[AGIConnection] = set()
        """Connections whose header is not read yet."""
        self.refused_peers = 0
        self.broken_sessions = 0
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen and accept; returns the bound port (useful with port 0)."""
        bound = await self.bind(host, port)
        await self.serve()
        return bound

    async def bind(self, host: str, port: int) -> int:
        """Take the address without accepting calls yet, so that a taken address fails the
        start before anything else is opened. Returns the bound port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _CallConnection(self),
            host,
            port,
            backlog=LISTEN_BACKLOG,
            reuse_address=True,
            start_serving=False,
        )
        for listening in self._server.sockets:
            _keep_alive(listening)
        return self._server.sockets[0].getsockname()[1]

    async def serve(self) -> None:
        """Accept calls on the address taken by `bind`."""
        if self._server is None:
            raise RuntimeError("bind() first")
        await self._server.start_serving()

    async def stop_accepting(self) -> None:
        """No new connections; those still sending their header are closed (no call of
        theirs has begun)."""
        if self._server is not None:
            self._server.close()
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


def _keep_alive(listening: socket.socket) -> None:
    """TCP keepalive on the listening socket, once: Linux copies its options to every
    socket it accepts, so no call pays a system call for them."""
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE_S)
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL_S)
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_PROBES)
