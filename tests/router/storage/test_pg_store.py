"""PostgreSQL storage beyond the shared contract: outages, several routers on one database,
and how a router is told which store to use."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from dialplan.errors import ConfigError
from rating.ledger import LedgerEntry, LedgerKind
from router.cli import main
from router.configuration.settings import RouterSettings, load_settings
from router.storage.call_wait import one_store_wait
from router.storage.cdr import (
    CDR,
    AddLeg,
    FinishCall,
    ForwardReason,
    Leg,
    Outcome,
    PostLedger,
    StartCall,
)
from router.storage.location import store_for, store_for_command
from router.storage.postgres import CALL_PATH_TIMEOUT, SCHEMA_VERSION, PostgresStore
from router.storage.protocol import StoreUnavailable
from router.storage.spool import Journal
from router.storage.sqlite import SQLiteStore
from router.storage.store_url import (
    STORE_ENV,
    PostgresLocation,
    SQLiteLocation,
    configured_store_url,
    parse_store_url,
    redacted,
)
from router.storage.writer import CdrWriter
from tests.conftest import (
    Relay,
    call,
    eventually,
    finished_cdr,
    relay_to_server,
    run_sql,
    running_router,
    scratch_schema,
    through,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 22, 18, 14, 24, tzinfo=SHANGHAI)


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with scratch_schema() as url:
        yield url


def a_call(call_id: str) -> CDR:
    return CDR(
        call_id=call_id,
        number="4000000001",
        caller_raw="053188889999",
        caller="053188889999",
        caller_kind="fixed",
        started_at=T0,
    )


def answered_call(call_id: str) -> list:
    leg = Leg(1, "13800000011", "ANSWER", T0, 2, 60, ForwardReason.PRIMARY)
    finish = FinishCall(call_id, {"outcome": Outcome.ANSWERED, "billable_seconds": 60})
    return [StartCall(a_call(call_id)), AddLeg(call_id, leg), finish]


def charge(number: str, ref: str, amount: str = "-0.50") -> PostLedger:
    return PostLedger(LedgerEntry(number, T0, Decimal(amount), LedgerKind.CALL, ref, "local"))


# --- which store ---------------------------------------------------------------------------


def test_store_urls_name_a_sqlite_file_or_a_postgresql_server() -> None:
    assert parse_store_url("sqlite:///var/hotline400.db") == SQLiteLocation(
        Path("var/hotline400.db")
    )
    assert parse_store_url("sqlite:////srv/hotline400/cdr.db") == SQLiteLocation(
        Path("/srv/hotline400/cdr.db")
    )
    for url in (
        "postgresql://hotline400@db1/hotline400",
        "postgres://u:p@[::1]:5433/h?sslmode=require",
    ):
        assert parse_store_url(url) == PostgresLocation(url)


@pytest.mark.parametrize(
    "url",
    ["sqlite://var/hotline400.db", "sqlite:///", "sqlite:///var/", "mysql://h/db", "var/x.db", ""],
)
def test_anything_else_is_refused_with_the_forms_that_work(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite:///"):
        parse_store_url(url)


def test_a_password_never_shows_in_messages() -> None:
    assert redacted("postgresql://router:s3cret@db1:5432/h") == "postgresql://router:***@db1:5432/h"
    assert redacted("postgresql://router@db1/h") == "postgresql://router@db1/h"
    with pytest.raises(ValueError) as refused:
        parse_store_url("mysql://router:s3cret@db1/h")
    assert "s3cret" not in str(refused.value)


def test_the_environment_wins_over_router_yaml_which_wins_over_database() -> None:
    settings = RouterSettings(database="var/local.db")
    assert configured_store_url(settings, {}) == "sqlite:///var/local.db"
    with_store = settings.model_copy(update={"store": "postgresql://router@db1/h"})
    assert configured_store_url(with_store, {}) == "postgresql://router@db1/h"
    environ = {STORE_ENV: "postgresql://router:s3cret@db2/h"}
    assert configured_store_url(with_store, environ) == "postgresql://router:s3cret@db2/h"


def test_router_yaml_with_a_bad_store_fails_the_check_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "router.yaml").write_text(
        "listen: 127.0.0.1:4573\nstore: mysql://db1/hotline400\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as refused:
        load_settings(tmp_path)
    assert [(problem.line, problem.field) for problem in refused.value.problems] == [(2, "store")]


def test_a_router_is_named_by_host_and_port_unless_router_yaml_names_it() -> None:
    settings = RouterSettings(store="postgresql://router@db1/h")
    default = store_for(settings, port=4573, environ={})
    named = store_for(settings.model_copy(update={"router_name": "r1"}), port=4573, environ={})
    assert isinstance(default, PostgresStore) and isinstance(named, PostgresStore)
    assert (default.router, named.router) == (f"{socket.gethostname()}:4573", "r1")


def test_without_a_store_url_the_router_keeps_its_sqlite_file(tmp_path: Path) -> None:
    settings = RouterSettings(database=str(tmp_path / "new" / "hotline400.db"))
    built = store_for(settings, port=4573, environ={})
    assert isinstance(built, SQLiteStore)
    assert built.path == tmp_path / "new" / "hotline400.db"
    assert built.path.parent.is_dir()


def test_db_upgrade_of_a_url_the_driver_refuses_says_why_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "router.yaml").write_text("listen: 127.0.0.1:4573\n", encoding="utf-8")
    misspelt = "postgresql://postgres@127.0.0.1/test?sslmode=requir"

    assert main(["db", "upgrade", "--config", str(tmp_path), "--store", misspelt]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cannot upgrade: ClientConfigurationError: `sslmode` parameter must")
    assert err.count("\n") == 1


# --- outages -------------------------------------------------------------------------------


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    async with relay_to_server() as relay:
        yield relay


async def test_an_unreachable_server_is_unavailable_and_the_store_recovers_when_it_is_back(
    database: str, relay: Relay
) -> None:
    await relay.cut()
    store = PostgresStore(through(database, relay), router="r1", connect_timeout=1)
    with pytest.raises(StoreUnavailable):
        await store.open()

    await relay.restore()
    await store.apply(answered_call("c1"))
    await relay.cut()
    with pytest.raises(StoreUnavailable):
        await store.apply(answered_call("c2"))
    with pytest.raises(StoreUnavailable):
        await store.usage("4000000001", "2026-11", "2026-11-22")

    await relay.restore()
    await store.apply(answered_call("c2"))
    assert [cdr.call_id for cdr in await store.query_cdrs()] == ["c2", "c1"]
    await store.close()


async def test_calls_arriving_while_the_server_is_silent_wait_for_one_connect_timeout() -> None:
    """A server host that is down drops the packets: each connection attempt waits its whole
    timeout. The calls that queued behind an attempt share its failure, so none waits for
    one attempt after another (the tenth call of a burst, ten timeouts)."""

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up and closes
        writer.close()

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    store = PostgresStore(
        f"postgresql://postgres@127.0.0.1:{port}/test", router="r1", connect_timeout=0.5
    )
    loop = asyncio.get_running_loop()
    began = loop.time()

    async def a_call() -> float:
        with pytest.raises(StoreUnavailable):
            await store.usage("4000000001", "2026-11", "2026-11-22")
        return loop.time() - began

    waited = await asyncio.gather(*(a_call() for _ in range(6)))
    assert max(waited) < 1.5
    silent.close()
    await store.close()


async def _silent_store(database: str, relay: Relay, **options: float) -> PostgresStore:
    """A store opened through the relay, whose server then goes silent."""
    store = PostgresStore(through(database, relay), router="r1", **options)  # type: ignore[arg-type]
    await store.open()
    relay.silence()
    return store


async def test_a_call_asking_the_silent_server_twice_waits_one_statement_timeout_in_all(
    database: str, relay: Relay
) -> None:
    """A capped number's call reads its counters, then takes a cap unit: with the server
    silent, the second use gets only what the first left of the call's one timeout."""
    store = await _silent_store(database, relay, connect_timeout=0.5, command_timeout=0.5)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with one_store_wait():
        with pytest.raises(StoreUnavailable):
            await store.usage("4000000001", "2026-11", "2026-11-22")
        with pytest.raises(StoreUnavailable, match=r"already waited 0\.5 s"):
            await store.reserve_call("4000000001", "2026-11", 5)
    assert loop.time() - began < 0.7
    await relay.cut()
    await store.close()


async def test_a_call_waiting_for_a_pooled_connection_counts_that_wait_in_its_timeout(
    database: str, relay: Relay
) -> None:
    """The pool's one connection is held by a use outside any call (the CDR writer's, the
    lease's) that the silent server keeps waiting: the call's read waits for it and for its
    own statement within the one timeout, not one after the other."""
    store = await _silent_store(
        database, relay, max_connections=1, connect_timeout=2, command_timeout=0.5
    )
    loop = asyncio.get_running_loop()
    holding = asyncio.create_task(store.usage("4000000002", "2026-11", "2026-11-22"))
    await asyncio.sleep(0.2)
    began = loop.time()
    with one_store_wait(), pytest.raises(StoreUnavailable):
        await store.usage("4000000001", "2026-11", "2026-11-22")
    assert loop.time() - began < 0.7
    with pytest.raises(StoreUnavailable):
        await holding
    await relay.cut()
    await store.close()


async def test_a_capped_prepaid_call_is_routed_within_one_store_timeout_of_a_silent_server(
    database: str, relay: Relay, tmp_path: Path
) -> None:
    """As docs/deployment.md promises: with the server silent, a call to a number whose
    routing reads the store waits `store_timeout` at most before it is connected (without
    limits, as for a store that is down)."""
    async with running_router(
        tmp_path, store=through(database, relay), router_name="r1", store_timeout=0.5
    ) as router:
        relay.silence()
        loop = asyncio.get_running_loop()
        began = loop.time()
        result = await call(router, dialled="4000000008", uniqueid="silent-1")
        assert loop.time() - began < 0.8
        assert result.variables["HOTLINE_STATUS"] == "answered"
        await relay.cut()


async def test_a_stop_while_the_server_is_silent_takes_the_drain_and_one_store_timeout(
    database: str, relay: Relay, tmp_path: Path
) -> None:
    """After the drain the store gets `store_timeout` in all (the last CDR batch, the lease,
    the pool): what it has not taken stays in the journal for the next start."""
    async with running_router(
        tmp_path,
        store=through(database, relay),
        router_name="r1",
        store_timeout=0.5,
        drain_timeout=0.2,
    ) as router:
        await call(router, dialled="4000000008", uniqueid="before")
        relay.silence()
        await call(router, dialled="4000000008", uniqueid="during")
        loop = asyncio.get_running_loop()
        began = loop.time()
        await router.stop()
        assert loop.time() - began < 0.2 + 0.5 + 0.2
        assert router.journal.record_count > 0
        await relay.cut()


async def test_an_outage_spools_to_the_journal_and_the_replay_adds_no_duplicates(
    database: str, relay: Relay, tmp_path: Path
) -> None:
    store = PostgresStore(through(database, relay), router="r1", connect_timeout=1)
    await store.open()
    journal = Journal(tmp_path / "spool" / "cdr.journal")
    writer = CdrWriter(store, journal, batch_interval=0.01, retry_initial=0.05, retry_max=0.1)
    await writer.start()
    for n in range(5):
        for op in [*answered_call(f"before-{n}"), charge("4000000001", f"before-{n}")]:
            writer.submit(op)
    await eventually(lambda: _has_rows(database, "cdrs", 5))

    await relay.cut()
    for n in range(5):
        for op in [*answered_call(f"during-{n}"), charge("4000000001", f"during-{n}")]:
            writer.submit(op)
    await eventually(lambda: journal.record_count == 20)
    assert writer.stats().write_failures >= 1

    await relay.restore()
    await eventually(lambda: journal.record_count == 0)
    await writer.close()
    await store.close()

    assert await _count(database, "cdrs") == 10
    assert await _count(database, "legs") == 10
    assert await _count(database, "ledger") == 10
    assert await run_sql(database, "SELECT balance_fen FROM holding_balances") == [(-500,)]
    assert await run_sql(database, "SELECT DISTINCT outcome FROM cdrs") == [("answered",)]


async def test_a_command_waits_for_a_read_longer_than_a_call_could(database: str) -> None:
    """A month of a busy number's calls, read for its bill or re-rating, takes longer than
    the few seconds a statement on the call path may: a command's store waits for it."""
    _, store = store_for_command(RouterSettings(store=database), environ={})
    await store.apply(answered_call("c1"))
    other = await asyncpg.connect(database)
    try:
        async with other.transaction():
            await other.execute("LOCK TABLE cdrs")
            reading = asyncio.create_task(store.query_cdrs())
            await asyncio.sleep(CALL_PATH_TIMEOUT + 1)
    finally:
        await other.close()
    assert [cdr.call_id for cdr in await reading] == ["c1"]
    await store.close()


async def _count(database: str, table: str) -> int:
    return (await run_sql(database, f"SELECT COUNT(*) FROM {table}"))[0][0]


async def _has_rows(database: str, table: str, expected: int) -> bool:
    return await _count(database, table) == expected


# --- several routers on one database -------------------------------------------------------


async def test_routers_starting_together_on_an_empty_database_migrate_it_once(
    database: str,
) -> None:
    stores = [PostgresStore(database, router=f"r{n}") for n in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    for store in stores:
        await store.close()

    versions = await run_sql(database, "SELECT version FROM schema_version ORDER BY version")
    assert versions == [(version,) for version in range(1, SCHEMA_VERSION + 1)]


async def test_a_restarting_router_closes_only_its_own_calls_as_interrupted(
    database: str,
) -> None:
    first, second = PostgresStore(database, router="r1"), PostgresStore(database, router="r2")
    await first.apply([StartCall(a_call("on-r1"))])
    await second.apply([StartCall(a_call("on-r2"))])

    assert await first.close_interrupted(T0 + timedelta(hours=1)) == 1
    assert (await second.get_cdr("on-r1")).outcome is Outcome.INTERRUPTED
    assert (await first.get_cdr("on-r2")).outcome is Outcome.IN_PROGRESS
    await first.close()
    await second.close()


async def test_ledger_batches_of_two_routers_crossing_numbers_never_deadlock(
    database: str,
) -> None:
    numbers = ["4000000001", "4000000002", "4000000003"]
    first, second = PostgresStore(database, router="r1"), PostgresStore(database, router="r2")
    batches = [
        (store, [charge(number, f"{store.router}-{n}") for number in order])
        for n in range(30)
        for store, order in ((first, numbers), (second, numbers[::-1]))
    ]
    await asyncio.gather(*(store.apply(batch) for store, batch in batches))

    balances = await run_sql(
        database, "SELECT number, balance_fen FROM holding_balances ORDER BY number"
    )
    assert balances == [(number, -50 * 60) for number in numbers]
    await first.close()
    await second.close()


async def test_a_batch_aborted_as_a_deadlock_with_another_router_runs_again_at_once(
    database: str,
) -> None:
    """Another router's transaction holds call b and then asks for call a while this
    router's batch holds a and waits for b: the server aborts this batch (its deadlock
    check runs first), which is run again once the other has gone, not spooled."""
    store = PostgresStore(database, router="r1")
    await store.apply([StartCall(a_call("a")), StartCall(a_call("b"))])
    other = await asyncpg.connect(database)
    try:
        await other.execute("SET deadlock_timeout = '30s'")  # the other side never gives up
        async with other.transaction():
            await other.execute("SELECT 1 FROM cdrs WHERE call_id = 'b' FOR UPDATE")
            finishes = [
                FinishCall(call_id, {"outcome": Outcome.BUSY, "billable_seconds": 0})
                for call_id in ("a", "b")
            ]
            batch = asyncio.create_task(store.apply(finishes))
            await eventually(lambda: _waiting_for_a_lock(database))
            async with asyncio.timeout(10):
                await other.execute("SELECT 1 FROM cdrs WHERE call_id = 'a' FOR UPDATE")
            assert not batch.done()  # run again, it now waits for the other to end
        async with asyncio.timeout(10):
            await batch
    finally:
        await other.close()
    outcomes = await run_sql(database, "SELECT call_id, outcome FROM cdrs ORDER BY call_id")
    assert outcomes == [("a", "busy"), ("b", "busy")]
    await store.close()


async def _waiting_for_a_lock(database: str) -> bool:
    waiting = await run_sql(
        database,
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND query LIKE 'UPDATE cdrs%'",
    )
    return waiting[0][0] > 0


async def test_reserving_a_cap_unit_never_waits_for_a_ledger_batch_of_the_same_number(
    database: str,
) -> None:
    store = PostgresStore(database, router="r1")
    await store.apply([charge("4000000001", "c1")])
    batch = await asyncpg.connect(database)
    try:
        async with batch.transaction():  # a ledger batch of another router, not committed yet
            await batch.execute(
                "INSERT INTO ledger (number, at, at_us, month, day, amount_fen, kind, ref, note) "
                "VALUES ('4000000001', '', 0, '2026-11', '2026-11-22', -50, 'call', 'c2', '')"
            )
            async with asyncio.timeout(2):
                assert await store.reserve_call("4000000001", "2026-11", 5)
                assert (await store.usage("4000000001", "2026-11", "2026-11-22")).month_calls == 1
    finally:
        await batch.close()
        await store.close()


async def test_the_ledger_cannot_be_truncated(database: str) -> None:
    store = PostgresStore(database, router="r1")
    await store.apply([charge("4000000001", "c1")])
    await store.close()

    with pytest.raises(asyncpg.PostgresError, match="never deleted"):
        await run_sql(database, "TRUNCATE ledger")


async def test_a_nul_character_is_kept_as_a_replacement_character_not_refused(
    database: str,
) -> None:
    store = PostgresStore(database, router="r1")
    await store.apply(
        [StartCall(a_call("c1")), FinishCall("c1", {"outcome": Outcome.ERROR, "note": "bad\x00"})]
    )
    assert (await store.get_cdr("c1")).note == "bad\ufffd"
    await store.close()


async def test_the_daemon_migrates_postgresql_at_start_and_writes_its_cdrs_there(
    database: str, tmp_path: Path
) -> None:
    async with running_router(tmp_path, store=database, router_name="r1") as router:
        result = await call(router, dialled="4000000001", uniqueid="pg-1")
        assert result.variables["HOTLINE_STATUS"] == "answered"
        assert (await finished_cdr(router, "pg-1")).outcome is Outcome.ANSWERED

    assert await run_sql(database, "SELECT router, outcome FROM cdrs") == [("r1", "answered")]
    assert not (tmp_path / "var" / "hotline400.db").exists()


async def test_a_router_started_while_postgresql_is_down_routes_calls_and_stores_them_later(
    database: str, relay: Relay, tmp_path: Path
) -> None:
    await relay.cut()
    async with running_router(tmp_path, store=through(database, relay)) as router:
        result = await call(router, dialled="4000000001", uniqueid="while-down")
        assert result.variables["HOTLINE_STATUS"] == "answered"
        await eventually(lambda: router.cdrs.stats().spooled_ops >= 3)

        await relay.restore()
        await eventually(lambda: router.cdrs.stats().spooled_ops == 0)
        assert (await finished_cdr(router, "while-down")).outcome is Outcome.ANSWERED
    assert await _count(database, "cdrs") == 1
