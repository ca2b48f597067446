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

Admission: at most `max_connections` connections (the open-files limit less the router's
own descriptors) are open at once; beyond that, calls wait in the kernel's listen queue
until a call ends. Left to themselves, the loops' servers accept everything queued: past
the descriptors, uvloop (libuv) accepts and closes the surplus at once, each a call lost
without a word, and asyncio logs a traceback for each of the up to 65,535 connections it
tries to accept in one pass. So the listener keeps the listening socket and serves it two
ways:
- exactly: it accepts each connection itself and stops at the limit (a task a connection,
  as asyncio's own server spends);
- through uvloop's own server on a duplicate of the listening socket, which accepts in C,
  for about 6 % less CPU a call; only while the connections open stay a whole listen
  queue (and some) below the limit, since libuv accepts everything queued in one pass.
  Closing that duplicate stops it; the queue stays on the listening socket, which the
  listener then serves exactly until enough calls have ended.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
from collections.abc import Sequence
from pathlib import Path

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
BURST_SLACK = 256
"""Connections that may complete while libuv empties a full listen queue in one pass."""
BROKEN_LOG_WINDOW_S = 10.0
"""Sessions closed before any call are logged one line for the first, then one line a
window counting the rest: a scanner or slowloris opening thousands would otherwise write
a line each."""
SOMAXCONN = Path("/proc/sys/net/core/somaxconn")
"""The kernel's cap on a listen queue."""
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class _CallConnection(AGIConnection):
    """A connection accepted by the listener: refused unless its peer is allowed, a call
    once its header is read."""

    def __init__(self, server: FastAGIServer, peer: object = None) -> None:
        super().__init__(
            header_timeout=server.header_timeout, header_max_bytes=server.header_max_bytes
        )
        self._server = server
        self._peer = peer
        """The address accept() gave, or None when the loop's server accepted and the
        transport is asked for it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._server.stopped:  # accepted as the router stopped: no call of it began
            transport.close()
            return
        if self._peer is None:
            self._peer = transport.get_extra_info("peername")
        peer = self._peer
        if peer is None:  # reset before it was looked at: a TCP check closing at once
            self._server.probes += 1
            log.debug("FastAGI probe gone before its address was read")
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
        self._server.broken_session(error)


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
        burst_room: int | None = None,
        broken_log_window: float = BROKEN_LOG_WINDOW_S,
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
        self.burst_room = _listen_queue_cap() + BURST_SLACK if burst_room is None else burst_room
        """Connections uvloop's server may accept in one pass: it serves only while this many
        more stay within `max_connections`."""
        self._listening: list[socket.socket] = []
        self._loop_accepts = False
        """Whether the loop's own server calls the protocol factory as it accepts (uvloop),
        so that it can be counted and stopped in time."""
        self._loop_servers: list[asyncio.AbstractServer] = []
        self._loop_servers_opening: asyncio.Task[None] | None = None
        self._accepting_exactly = False
        self._handing_over = False
        self._connecting: set[asyncio.Task[object]] = set()
        self._retry: asyncio.TimerHandle | None = None
        self._stopped = False
        self._broken_log_window = broken_log_window
        self._broken_untold = 0
        self._broken_last: AGIProtocolError | None = None
        self._broken_quiet: asyncio.TimerHandle | None = None
        """While set, sessions closed before any call are counted, not logged a line each."""

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
        self._loop_accepts = type(asyncio.get_running_loop()).__module__.startswith("uvloop")
        self._resume()
        if self._loop_servers_opening is not None:
            await self._loop_servers_opening

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
        if self._broken_quiet is not None:
            self._broken_quiet.cancel()
            self._tell_broken()

    def broken_session(self, error: AGIProtocolError) -> None:
        """A connection closed before its call began: counted, and logged (see
        BROKEN_LOG_WINDOW_S)."""
        self.broken_sessions += 1
        if self._broken_quiet is not None:
            self._broken_untold += 1
            self._broken_last = error
            return
        log.warning("closed a FastAGI session before any call: %s", error)
        self._quiet_broken()

    def _quiet_broken(self) -> None:
        loop = asyncio.get_running_loop()
        self._broken_quiet = loop.call_later(self._broken_log_window, self._tell_broken)

    def _tell_broken(self) -> None:
        """The window ends: one line for the sessions it counted; quiet on while they come."""
        self._broken_quiet = None
        if not self._broken_untold:
            return
        log.warning(
            "closed %d more FastAGI sessions before any call in the last %g s (the last: %s)",
            self._broken_untold,
            self._broken_log_window,
            self._broken_last,
        )
        self._broken_untold, self._broken_last = 0, None
        if not self._stopped:
            self._quiet_broken()

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

    @property
    def accepting_with(self) -> str:
        """What takes new connections now: "uvloop's server", "the listener" (one by one)
        or "nothing" (at the limit, or stopped)."""
        if self._loop_servers or self._loop_servers_opening is not None:
            return "uvloop's server"
        return "the listener" if self._accepting_exactly else "nothing"

    # --- admission ----------------------------------------------------------------------

    def connection_closed(self) -> None:
        """A connection's descriptor is free: accept again once enough are, and go back to
        the loop's server once a whole burst fits again."""
        self.open_connections -= 1
        if not self.accepting:
            if self._retry is None and self._below_resume_mark():
                self._resume()
        elif self._accepting_exactly and self._loop_server_fits(self.burst_room):
            self._remove_readers()
            self._start_accepting()

    def _loop_server_fits(self, headroom: int = 0) -> bool:
        """Whether uvloop's server may accept: a full listen queue taken in one pass, and
        `headroom` more, stay within the limit."""
        if not self._loop_accepts or self._stopped:
            return False
        if self.max_connections is None:
            return True
        return self.open_connections + headroom < self._loop_server_mark

    @property
    def _loop_server_mark(self) -> int:
        return (self.max_connections or 0) - self.burst_room

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

    def _accepted_by_loop(self) -> _CallConnection:
        """uvloop's server accepted a connection (it calls this as it accepts, in the same
        pass as the rest of the queue): count it, and hand the queue over to the exact
        accept once the limit is a listen queue away. Closing the server here would close
        the connection just accepted, hence the hand-over just after the pass."""
        self.open_connections += 1
        if not self._handing_over and not self._loop_server_fits():
            self._handing_over = True
            asyncio.get_running_loop().call_soon(self._accept_exactly)
        return _CallConnection(self)

    def _accept_exactly(self) -> None:
        self._handing_over = False
        if self._loop_servers:
            self._close_loop_servers()
            self._add_readers()
            log.info(
                "FastAGI: %d connections open, within a listen queue of the limit (%d): "
                "accepting one by one",
                self.open_connections,
                self.max_connections,
            )

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
        self._remove_readers()
        self._close_loop_servers()
        self.accepting = False

    def _resume(self) -> None:
        if self.accepting or self._stopped:
            return
        self._start_accepting()
        if self.admission_pauses:
            log.info("FastAGI accepting calls again (%d connections open)", self.open_connections)
        self.accepting = True

    def _start_accepting(self) -> None:
        if self._loop_server_fits(self.burst_room):
            self._loop_servers_opening = asyncio.get_running_loop().create_task(
                self._open_loop_servers()
            )
        else:
            self._add_readers()

    def _add_readers(self) -> None:
        loop = asyncio.get_running_loop()
        for listening in self._listening:
            loop.add_reader(listening.fileno(), self._accept, listening)
        self._accepting_exactly = True

    def _remove_readers(self) -> None:
        if self._accepting_exactly:
            loop = asyncio.get_running_loop()
            for listening in self._listening:
                loop.remove_reader(listening.fileno())
            self._accepting_exactly = False

    async def _open_loop_servers(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for listening in self._listening:
                server = await loop.create_server(
                    self._accepted_by_loop, sock=_own_copy(listening), backlog=LISTEN_BACKLOG
                )
                self._loop_servers.append(server)
        except OSError as error:  # no descriptor for the duplicate: accept exactly instead
            log.warning("FastAGI: uvloop's server not started (%s): accepting one by one", error)
            self._loop_servers_opening = None
            self._close_loop_servers()
            self._add_readers()
        else:
            self._loop_servers_opening = None

    def _close_loop_servers(self) -> None:
        """Stop uvloop's servers: their duplicates close, the queue stays on the listening
        sockets, and the connections they accepted carry on."""
        if self._loop_servers_opening is not None:
            self._loop_servers_opening.cancel()
            self._loop_servers_opening = None
        for server in self._loop_servers:
            server.close()
        self._loop_servers.clear()

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
        """One call's task. The session completes its CDR whatever the call does; what still
        escapes it (a fault before its CDR was written ahead) is logged here, once, with the
        call's id, rather than as a task exception nobody retrieved."""
        agi = AGISession(connection, env, command_timeout=self.command_timeout)
        try:
            with self.services.metrics.agi_session_timer():
                await CallSession(agi, context_from(env), self.services).run()
        except Exception:
            uniqueid = env.get("agi_uniqueid", "")[:64]
            log.exception("call %r: router error, the session ended", uniqueid)
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


def _listen_queue_cap() -> int:
    """Connections the kernel queues on our listening socket, at most."""
    try:
        return min(LISTEN_BACKLOG, int(SOMAXCONN.read_text()))
    except (OSError, ValueError):
        return LISTEN_BACKLOG
