"""The FastAGI listener: one asyncio task per Asterisk connection, nothing shared but services.

Calls ring for tens of seconds, so thousands of sessions are open at once; a task each
costs a few kilobytes, and the listen backlog is sized for bursts. Connections from
outside the allow-list are closed before a byte is read. A broken or hostile session
(no header, endless header, junk) is closed on its own without touching any other call.

Sessions read their environment block through a bounded stage, and the header timeout
starts when a session enters it. asyncio accepts a whole burst (up to the backlog) in one
pass and starts a task for each; if every task started its header clock there, the later
ones would run out of time while the loop is still busy setting up the earlier calls,
their headers already waiting unread in the socket. A session that waited for its place
finds its header buffered and reads it at once, so the clock runs out only on a peer that
really does not send one. The stage is held only while the header is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Sequence

from router.call.context import context_from
from router.call.session import CallServices, CallSession
from router.fastagi.protocol import AGIProtocolError, AGISession, read_environment

log = logging.getLogger("hotline400.server")

LISTEN_BACKLOG = 65535
"""Connections the kernel queues before they are accepted; it caps this at
net.core.somaxconn (4096 by default on recent kernels), so a burst of calls waits in the
queue rather than being refused while the loop is busy."""
MAX_REMEMBERED_PEERS = 1024
HEADER_STAGE = 256
"""Sessions reading their environment block at once. Honest sessions pass through in
microseconds; a peer that sends no header holds a place for at most the header timeout, so
it takes this many such peers at once to delay the calls queued behind them, and then
they are delayed, not failed."""
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class FastAGIServer:
    def __init__(
        self,
        services: CallServices,
        allowed: Sequence[Network],
        *,
        header_timeout: float = 5.0,
        header_max_bytes: int = 65536,
        header_stage: int = HEADER_STAGE,
    ) -> None:
        if header_stage < 1:
            raise ValueError("header_stage must admit at least one session")
        self.services = services
        self.allowed = tuple(allowed)
        self._peer_verdicts: dict[str, bool] = {}
        """Allowed or not, by peer address (so `allowed` is fixed once made): every call
        comes from one of a few Asterisk hosts, and `ipaddress` parses the address and tests
        it against each network in Python, several microseconds a connection."""
        self.header_timeout = header_timeout
        self.header_max_bytes = header_max_bytes
        self._header_stage = asyncio.Semaphore(header_stage)
        self.sessions: set[asyncio.Task[None]] = set()
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
        self._server = await asyncio.start_server(
            self._accept,
            host,
            port,
            backlog=LISTEN_BACKLOG,
            reuse_address=True,
            start_serving=False,
        )
        return self._server.sockets[0].getsockname()[1]

    async def serve(self) -> None:
        """Accept calls on the address taken by `bind`."""
        if self._server is None:
            raise RuntimeError("bind() first")
        await self._server.start_serving()

    async def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def drain(self, timeout: float) -> int:
        """Wait for calls in flight; cancel those still running after `timeout`. Returns
        how many had to be cancelled."""
        pending = set(self.sessions)
        if not pending:
            return 0
        _, still_running = await asyncio.wait(pending, timeout=timeout)
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running)
        return len(still_running)

    def _peer_allowed(self, writer: asyncio.StreamWriter) -> bool:
        peer = writer.get_extra_info("peername")
        try:
            host = str(peer[0])
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

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.sessions.add(task)
        try:
            if not self._peer_allowed(writer):
                self.refused_peers += 1
                log.warning("refused FastAGI connection from %s", writer.get_extra_info("peername"))
                return
            with self.services.metrics.agi_session_timer():
                await self._serve(reader, writer)
        finally:
            self.sessions.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with self._header_stage:  # the header clock starts inside, once admitted
                env = await read_environment(reader, self.header_timeout, self.header_max_bytes)
        except AGIProtocolError as error:
            self.broken_sessions += 1
            log.warning("closed a FastAGI session before any call: %s", error)
            return
        agi = AGISession(reader, writer, env)
        try:
            await CallSession(agi, context_from(env), self.services).run()
        finally:
            await agi.close()  # also drops the session's reply-timeout timer at once
