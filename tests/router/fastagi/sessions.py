"""FastAGI sessions for tests that play the router's side with a few commands of their own:
a listener that hands each call's session to a coroutine, and a connection to a peer that
plays Asterisk."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from router.fastagi.connection import AGIConnection
from router.fastagi.errors import AGIProtocolError
from router.fastagi.protocol import AGISession

SessionHandler = Callable[[AGISession], Awaitable[None]]


class _Served(AGIConnection):
    def __init__(
        self,
        handler: SessionHandler,
        failed: Callable[[AGIProtocolError], None],
        tasks: set[asyncio.Task[None]],
        **limits: float,
    ) -> None:
        super().__init__(**limits)  # type: ignore[arg-type]
        self._handler = handler
        self._failed = failed
        self._tasks = tasks

    def header_read(self, env: dict[str, str]) -> None:
        task = asyncio.get_running_loop().create_task(self._handler(AGISession(self, env)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def header_failed(self, error: AGIProtocolError) -> None:
        self._failed(error)


async def serve_sessions(
    handler: SessionHandler,
    failed: Callable[[AGIProtocolError], None] = lambda _: None,
    **limits: float,
) -> tuple[asyncio.Server, str, int]:
    """A listener on a free port whose every call runs `handler(session)`; a connection
    without a usable header is closed and `failed` told why (`limits`: the connections'
    header_timeout, header_max_bytes, max_line)."""
    tasks: set[asyncio.Task[None]] = set()
    server = await asyncio.get_running_loop().create_server(
        lambda: _Served(handler, failed, tasks, **limits), "127.0.0.1", 0
    )
    host, port = server.sockets[0].getsockname()[:2]
    return server, host, port


async def connect(host: str, port: int, **limits: float) -> AGIConnection:
    """A connection to a peer that sends an environment block (`limits`: the connection's
    header_timeout, header_max_bytes, max_line)."""
    loop = asyncio.get_running_loop()
    _, connection = await loop.create_connection(lambda: AGIConnection(**limits), host, port)
    return connection
