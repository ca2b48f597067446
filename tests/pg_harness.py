"""The local PostgreSQL server for the storage tests: a scratch schema per test, and a TCP
relay in front of the server that can be cut to play an outage.

The server is the one on this machine (127.0.0.1:5432, trust auth, database `test`);
HOTLINE400_TEST_PG points the tests at another. Each scratch schema has a unique name, is
reached through `search_path` in the store URL, and is dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from urllib.parse import urlsplit

import asyncpg
import pytest

SERVER_URL = os.environ.get("HOTLINE400_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def with_schema(url: str, schema: str) -> str:
    separator = "&" if urlsplit(url).query else "?"
    return f"{url}{separator}search_path={schema}"


async def admin_connection() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(SERVER_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        pytest.fail(
            f"PostgreSQL at {SERVER_URL} is not reachable ({error}); start it with "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )


@contextlib.asynccontextmanager
async def scratch_schema() -> AsyncIterator[str]:
    """A new empty schema; yields the store URL that uses it."""
    schema = await _create()
    try:
        yield with_schema(SERVER_URL, schema)
    finally:
        await _drop(schema)


@contextlib.contextmanager
def scratch_schema_for_sync_test() -> Iterator[str]:
    """`scratch_schema` for a test that runs commands itself (each with its own event loop)."""
    schema = asyncio.run(_create())
    try:
        yield with_schema(SERVER_URL, schema)
    finally:
        asyncio.run(_drop(schema))


async def _create() -> str:
    schema = f"hotline400_test_{uuid.uuid4().hex[:12]}"
    admin = await admin_connection()
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
    finally:
        await admin.close()
    return schema


async def _drop(schema: str) -> None:
    """Drop the schema, retrying while a failed test's stray tasks still write into it."""
    admin = await admin_connection()
    try:
        await _drop_retrying(admin, schema)
    finally:
        await admin.close()


async def _drop_retrying(admin: asyncpg.Connection, schema: str) -> None:
    for attempt in range(5):
        try:
            await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            return
        except asyncpg.PostgresError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.5)


async def run_sql(url: str, sql: str, *args: object) -> list[tuple]:
    """One statement on a connection of its own, committed at once."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return [tuple(row) for row in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


async def eventually(check: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait until `check` (plain or async) gives something true."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(0.02)


class Relay:
    """A TCP relay to the server: `cut()` drops every connection and refuses new ones, as an
    unreachable server does; `restore()` lets them through again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()
        if server is not None:
            await server.wait_closed()

    async def restore(self) -> None:
        await self.start()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._links |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self._links -= {writer, up_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


def through(url: str, relay: Relay) -> str:
    """`url` with its host and port replaced by the relay's."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return parts._replace(netloc=f"{user}127.0.0.1:{relay.port}").geturl()


@contextlib.asynccontextmanager
async def relay_to_server() -> AsyncIterator[Relay]:
    parts = urlsplit(SERVER_URL)
    relay = Relay(parts.hostname or "127.0.0.1", parts.port or 5432)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.cut()
