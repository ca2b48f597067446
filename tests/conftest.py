"""What the tests share: paths, plans written as YAML, a real router daemon, the local
PostgreSQL server's scratch schemas and outage relay, and the store engines every
store-backed test runs on."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
import shutil
import socket
import ssl
import subprocess
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from hypothesis import settings

from dialplan.calendar import OfficialCalendar
from dialplan.caps import Usage
from dialplan.decision import Decision
from dialplan.evaluator import RoutingState, decide
from dialplan.geo import locate
from dialplan.matchers import Call
from dialplan.plan import Plan
from dialplan.plan_loader import parse_plan
from router.configuration.settings import load_settings
from router.daemon import Daemon
from router.money.balance_alerts import BalanceAlerts
from router.money.booking_alerts import Watch
from router.monitoring.logs import StructuredFormatter
from router.simulation.asterisk_agi import CallResult, SimulatedCall, run_call
from router.storage.cdr import CDR, Outcome
from router.storage.location import build_store
from router.storage.protocol import Store

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
"""The repository root: the shipped config/, docs and README live there."""

# Properties are about behaviour, not speed: a loaded machine must not fail an example
# for taking longer than hypothesis's default 200 ms.
settings.register_profile("hotline400", deadline=None)
settings.load_profile("hotline400")


@pytest.fixture(autouse=True)
def root_logger_restored() -> Iterator[None]:
    """A command run in-process (`main(["serve", ...])`) installs its structured handler
    on the root logger, writing to the stderr pytest captures for that test; left there,
    a later test's records would go to a closed file and print "--- Logging error ---"
    into that test's stderr."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in list(root.handlers):
        if isinstance(handler.formatter, StructuredFormatter):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


STORE_ENGINES = ["sqlite", "postgresql"]
SHANGHAI = ZoneInfo("Asia/Shanghai")


@contextmanager
def store_of_engine(engine: str, directory: Path) -> Iterator[str]:
    """The URL of a new store with its schema created: a SQLite file in `directory`, or a
    PostgreSQL scratch schema.

    Commands refuse a SQLite file that does not exist yet (the router creates it), so the
    store is opened once here, as a router's first start would.
    """
    if engine == "sqlite":
        url = f"sqlite:///{directory / 'hotline400.db'}"
        asyncio.run(_create_store(url))
        yield url
        return
    with scratch_schema_for_sync_test() as url:
        asyncio.run(_create_store(url))
        yield url


@pytest.fixture(params=STORE_ENGINES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new store on each engine in turn, for a test of one function."""
    with store_of_engine(request.param, tmp_path) as url:
        yield url


def store_url_of(config: Path) -> str:
    """The store a test's config directory names in its router.yaml."""
    store = load_settings(config).store
    assert store is not None, f"{config}/router.yaml names no store"
    return store


async def _create_store(url: str) -> None:
    async with opened_store(url):
        pass


@asynccontextmanager
async def opened_store(url: str) -> AsyncIterator[Store]:
    """The store a URL names, opened for a test's reads and writes, closed afterwards."""
    store = build_store(url, zone=SHANGHAI, router="test-router")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


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
    schema = await _create_schema()
    try:
        yield with_schema(SERVER_URL, schema)
    finally:
        await _drop(schema)


@contextlib.contextmanager
def scratch_schema_for_sync_test() -> Iterator[str]:
    """`scratch_schema` for a test that runs commands itself (each with its own event loop)."""
    schema = asyncio.run(_create_schema())
    try:
        yield with_schema(SERVER_URL, schema)
    finally:
        asyncio.run(_drop(schema))


async def _create_schema() -> str:
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


def free_port() -> int:
    """A port nothing listens on, for a process the test starts moments later.

    Taken below the kernel's ephemeral range (net.ipv4.ip_local_port_range): a port the
    kernel hands out when asked for port 0 may go to any outgoing connection of the busy
    machine before the process binds it; one below that range only to a listener asking
    for it by number, as these tests do at random."""
    lowest_ephemeral = int(Path(EPHEMERAL_RANGE).read_text().split()[0])
    while True:
        port = random.randrange(PRIVATE_PORTS_FROM, lowest_ephemeral)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


EPHEMERAL_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"
PRIVATE_PORTS_FROM = 10_000
"""Below this, well-known services (PostgreSQL 5432, Redis 6379, ...) listen."""


PROCESS_START_S = 120.0
"""How long a test waits for a router process to serve: importing the router takes about a
second on a quiet machine and half a minute on a loaded one (load average 12 on 2 cores). A
start that fails is not waited for: the process exits, and the test fails with its log."""


async def until_logged(
    process: subprocess.Popen[bytes] | subprocess.Popen[str],
    log: Path,
    line: str,
    *,
    since: int = 0,
    timeout: float = PROCESS_START_S,
) -> None:
    """Wait until the process writes `line` to its log file, past its first `since` bytes
    (where an earlier run of the same log ends): a readiness signal rather than a guess
    of how long the start takes."""
    try:
        async with asyncio.timeout(timeout):
            while line not in (written := logged_since(log, since)):
                assert process.poll() is None, (
                    f"exited with {process.returncode} before logging {line!r}:\n{written}"
                )
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"no {line!r} in {timeout:g} s:\n{logged_since(log, since)}")


def logged_since(log: Path, since: int = 0) -> str:
    """The log file's text past its first `since` bytes ('' before it exists)."""
    try:
        with log.open("rb") as file:
            file.seek(since)
            return file.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


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
    unreachable server does; `silence()` keeps accepting and forwards nothing, as a server
    host that is down and drops the packets does; `restore()` lets them through again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self.silent = False

    def silence(self) -> None:
        self.silent = True

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
        self.silent = False
        if self._server is None:
            await self.start()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._links |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer, self), _pipe(up_reader, writer, self))
        self._links -= {writer, up_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, relay: Relay) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            if relay.silent:
                continue
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


def plan_from(yaml_text: str, number: str = "4006001234") -> Plan:
    head = f'number: "{number}"\nname: Test Co.\n'
    return parse_plan(f"{number}.yaml", head + textwrap.dedent(yaml_text))


def at(text: str) -> datetime:
    """'2026-10-01 09:30' in Beijing time."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


def route(
    plan: Plan,
    caller: str = "053188889999",
    when: str = "2026-11-23 10:00",
    usage: Usage | None = None,
    state: RoutingState | None = None,
) -> Decision:
    call = Call(plan.number, locate(caller))
    return decide(plan, call, at(when), usage or Usage(), state or RoutingState(OfficialCalendar()))


E2E_CONFIG = TESTS / "e2e_config"
MONDAY_MORNING = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
UNWATCHED = Watch(None, BalanceAlerts())
"""An inventory's watch over no balances, for tests of numbers that have no accounts."""


class SimulatedClock:
    """Beijing time that runs `speedup` times faster than real time from MONDAY_MORNING,
    matching a simulator that sleeps 1/speedup of each virtual second."""

    def __init__(self, speedup: float) -> None:
        self.speedup = speedup
        self.began = time.monotonic()

    def __call__(self) -> datetime:
        elapsed = (time.monotonic() - self.began) * self.speedup
        return MONDAY_MORNING + timedelta(seconds=elapsed)


@asynccontextmanager
async def running_router(
    tmp_path: Path,
    config: Path = E2E_CONFIG,
    clock: Callable[[], datetime] = lambda: MONDAY_MORNING,
    **overrides: object,
) -> AsyncIterator[Daemon]:
    config_dir = tmp_path / "config"
    shutil.copytree(config, config_dir)
    settings = load_settings(config_dir).model_copy(
        update={
            "database": str(tmp_path / "var" / "hotline400.db"),
            "spool_dir": str(tmp_path / "var" / "spool"),
            **overrides,
        }
    )
    daemon = Daemon(config_dir, settings=settings, clock=clock)
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop()


async def call(daemon: Daemon, time_scale: float = 0.0, **fields: object) -> CallResult:
    """Play one simulated call (SimulatedCall fields) against the daemon."""
    simulated = SimulatedCall(**fields)  # type: ignore[arg-type]
    return await run_call(daemon.host, daemon.port, simulated, time_scale=time_scale)


async def finished_cdr(daemon: Daemon, call_id: str, timeout: float = 3.0) -> CDR:
    """The CDR once the writer has stored its end (writes are batched, not synchronous)."""
    async with asyncio.timeout(timeout):
        while True:
            cdr = await daemon.store.get_cdr(call_id)
            if cdr is not None and cdr.outcome is not Outcome.IN_PROGRESS:
                return cdr
            await asyncio.sleep(0.02)


@dataclass
class Received:
    """One HTTP request a test receiver read."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class LoopbackServer:
    """A TCP server on 127.0.0.1 for a test, an async context manager: each connection is
    served by `_answer` in a task of its own, cut when the server closes; a connection the
    peer drops or cuts ends quietly. With `tls` it serves over that context."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._answer(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class HttpReceiver(LoopbackServer):
    """A real HTTP/1.1 server on 127.0.0.1 standing for a CRM or an SMS gateway.

    `behaviour` is what it does with each request: "ok" (204 at once), "slow" (answers
    after `delay` seconds), "silent" (reads the request and never answers), "error"
    (500), "reject" (401), "moved" (308 to `moved_to`, a token in its query), "endless" (200
    with a body of 100 GB: it sends up to 64 MB, as fast as the client reads, then never
    closes; `streamed` counts the bytes it got out), or a list of those taken in turn (the
    last one repeats). `refusing()` gives a port nothing listens on, for a receiver that
    refuses connections. With `tls` it serves HTTPS with that context.
    """

    def __init__(
        self,
        behaviour: str | list[str] = "ok",
        delay: float = 10.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(tls)
        self.behaviours = [behaviour] if isinstance(behaviour, str) else list(behaviour)
        self.delay = delay
        self.received: list[Received] = []
        self.streamed = 0

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/events"

    @property
    def moved_to(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2/events?token=s3cret"

    @staticmethod
    def refusing() -> str:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return f"http://127.0.0.1:{port}/events"

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append(Received(method, path, headers, body, time.monotonic()))
            index = min(len(self.received), len(self.behaviours)) - 1
            behaviour = self.behaviours[index]
            if behaviour == "silent":
                await asyncio.Event().wait()
            if behaviour == "slow":
                await asyncio.sleep(self.delay)
            if behaviour == "endless":
                await self._endless(writer)
            status = {"error": "500 Internal Server Error", "reject": "401 Unauthorized"}
            line = status.get(behaviour, "204 No Content")
            if behaviour == "moved":
                line = f"308 Permanent Redirect\r\nLocation: {self.moved_to}"
            writer.write(f"HTTP/1.1 {line}\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()

    async def _endless(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (100 * 2**30))
        chunk = b"x" * 2**16
        while self.streamed < 64 * 2**20:
            writer.write(chunk)
            await writer.drain()
            self.streamed += len(chunk)
        await asyncio.Event().wait()


def warning_facts(body: dict[str, str]) -> dict[str, str]:
    """A low-balance warning without what makes each one unique (its event id and time),
    which every warning carries."""
    assert body["event_id"] and datetime.fromisoformat(body["occurred_at"]).tzinfo is not None
    return {k: v for k, v in body.items() if k not in ("event_id", "occurred_at")}
