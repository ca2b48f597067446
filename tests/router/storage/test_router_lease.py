"""One running router per router_name on a shared PostgreSQL: `hotline400 serve` processes
started under one name, as an operator would by copying a router.yaml that sets it.

A router adopts at start the calls its name left in progress; a second router under a live
router's name would adopt, and complete again, the first one's live calls. So it is refused
while the first one's lease is fresh, and only once a dead router's lease has expired does
the next router of its name start and adopt what the dead one left. A SQLite file's one
router has no name, and the line saying its lease is claimed names none.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from router.simulation.asterisk_agi import Outcome as Phone
from router.simulation.asterisk_agi import SimulatedCall, run_call
from router.storage.cdr import Outcome
from tests.conftest import (
    PROCESS_START_S,
    eventually,
    free_port,
    run_sql,
    running_router,
    scratch_schema,
)
from tests.router.storage.test_multi_router import (
    PREPAID,
    SHANGHAI,
    RouterProcess,
    config_with,
    pay,
)

NAME = "router-east"
LEASE_TIMEOUT = 10


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with scratch_schema() as url:
        yield url


def named_config(tmp_path: Path) -> Path:
    """The shared config, every router of it named NAME, renewing every second."""
    config = config_with(tmp_path, 1000)
    router_yaml = config / "router.yaml"
    text = router_yaml.read_text(encoding="utf-8")
    router_yaml.write_text(
        f'{text}router_name: "{NAME}"\nlease_heartbeat: 1\nlease_timeout: {LEASE_TIMEOUT}\n',
        encoding="utf-8",
    )
    return config


def a_router(tmp_path: Path, name: str, config: Path, database: str) -> RouterProcess:
    return RouterProcess(tmp_path / name, config, database, free_port())


async def talk_on(router: RouterProcess, call_id: str) -> None:
    """A call answered and talking 10 real minutes: in progress while the test runs."""
    call = SimulatedCall(
        dialled=PREPAID,
        uniqueid=call_id,
        destinations={"13800000051": Phone.answers(talk_s=600.0)},
    )
    await run_call("127.0.0.1", router.port, call, time_scale=1.0)


async def until_serving(router: RouterProcess) -> None:
    """Once the router listens, a call placed on it is put through."""
    await router.listening()
    call = SimulatedCall(dialled=PREPAID, uniqueid=f"ready.{router.port}")
    result = await run_call("127.0.0.1", router.port, call)
    assert result.error is None, f"{result.error}\n{router.log()}"


async def exit_status(router: RouterProcess, timeout: float = PROCESS_START_S) -> int:
    """How the router process ended; fails the test if it is still running after `timeout`."""
    assert router.process is not None
    try:
        return await asyncio.to_thread(router.process.wait, timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the router is still running after {timeout}s:\n{router.log()}")


async def outcome(database: str, call_id: str) -> str:
    rows = await run_sql(database, "SELECT outcome FROM cdrs WHERE call_id = $1", call_id)
    return rows[0][0] if rows else ""


async def has_outcome(database: str, call_id: str, expected: Outcome) -> bool:
    return await outcome(database, call_id) == expected.value


REFUSAL = re.compile(
    rf"cannot start: router_name '{NAME}' is held by another running router \(host \S+, "
    r"pid (\d+), instance [0-9a-f]+, FastAGI 127\.0\.0\.1:(\d+)\) whose lease expires at "
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) CST"
)


def refused_for(router: RouterProcess) -> tuple[int, int, datetime]:
    """The holder's pid and port and the lease's expiry that the refused router printed."""
    found = REFUSAL.search(router.log())
    assert found is not None, router.log()
    expires = datetime.fromisoformat(found[3]).replace(tzinfo=SHANGHAI)
    return int(found[1]), int(found[2]), expires


async def test_a_second_router_under_a_running_routers_name_is_refused_and_leaves_its_calls(
    database: str, tmp_path: Path
) -> None:
    await pay(database, "500.00", datetime.now(SHANGHAI))
    config = named_config(tmp_path)
    first, second = (a_router(tmp_path, name, config, database) for name in ("a", "b"))
    try:
        first.start()
        await until_serving(first)
        talking = asyncio.create_task(talk_on(first, "live.1"))
        await eventually(lambda: has_outcome(database, "live.1", Outcome.IN_PROGRESS), 60)

        second.start()

        assert await exit_status(second) == 1
        assert first.process is not None
        assert refused_for(second)[:2] == (first.process.pid, first.port)
        assert await outcome(database, "live.1") == "in_progress"  # not closed, not adopted
        assert first.process.poll() is None
        talking.cancel()
    finally:
        for router in (first, second):
            router.stop()


async def test_a_killed_routers_name_is_free_once_its_lease_expires_then_its_calls_adopted(
    database: str, tmp_path: Path
) -> None:
    await pay(database, "500.00", datetime.now(SHANGHAI))
    config = named_config(tmp_path)
    first, too_soon, later = (a_router(tmp_path, n, config, database) for n in ("a", "b", "c"))
    try:
        first.start()
        await until_serving(first)
        talking = asyncio.create_task(talk_on(first, "left.1"))
        await eventually(lambda: has_outcome(database, "left.1", Outcome.IN_PROGRESS), 60)
        assert first.process is not None
        dead_pid = first.process.pid
        await too_soon.load()  # so that it starts while the dead router's lease is fresh
        first.kill()

        too_soon.start()
        assert await exit_status(too_soon) == 1
        holder_pid, _, expires = refused_for(too_soon)
        assert holder_pid == dead_pid
        assert await outcome(database, "left.1") == "in_progress"

        await asyncio.sleep(max(0.0, (expires - datetime.now(SHANGHAI)).total_seconds()) + 1)
        later.start()
        await until_serving(later)

        # No AMI link in this config: the call the dead router left is closed as interrupted.
        await eventually(lambda: has_outcome(database, "left.1", Outcome.INTERRUPTED), 60)
        assert "closed 1 call(s) left in progress by a crash" in later.log()
        talking.cancel()  # its router is gone; the simulated caller would wait on it
    finally:
        for router in (first, too_soon, later):
            router.stop()


async def test_a_killed_router_restarted_on_its_own_spool_dir_takes_its_lease_over_at_once(
    database: str, tmp_path: Path
) -> None:
    """The lease names the spool_dir its holder journals to, and a router holding that
    directory's lock is the holder's restart: it starts at once, well before the lease would
    expire, and adopts what the killed run left. Another router of the name, on a spool_dir
    of its own, is still refused while that lease is fresh."""
    await pay(database, "500.00", datetime.now(SHANGHAI))
    config = named_config(tmp_path)
    first = a_router(tmp_path, "a", config, database)
    restarted = RouterProcess(first.workdir, config, database, free_port())
    stranger = a_router(tmp_path, "b", config, database)
    try:
        first.start()
        await until_serving(first)
        talking = asyncio.create_task(talk_on(first, "crashed.1"))
        await eventually(lambda: has_outcome(database, "crashed.1", Outcome.IN_PROGRESS), 60)
        await restarted.load()  # timed from its start, not from loading its modules
        first.kill()
        killed_at = asyncio.get_running_loop().time()

        restarted.start()
        await until_serving(restarted)
        assert asyncio.get_running_loop().time() - killed_at < LEASE_TIMEOUT - 2, restarted.log()
        await eventually(lambda: has_outcome(database, "crashed.1", Outcome.INTERRUPTED), 60)
        talking.cancel()

        stranger.start()
        assert await exit_status(stranger) == 1
        assert restarted.process is not None
        assert refused_for(stranger)[:2] == (restarted.process.pid, restarted.port)
        assert restarted.process.poll() is None
    finally:
        for router in (first, restarted, stranger):
            router.stop()


def lease_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "hotline400.lease"]


async def test_a_named_router_says_it_claimed_its_names_lease(
    database: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", "hotline400.lease")
    async with running_router(tmp_path, store=database, router_name=NAME) as daemon:
        [claimed] = lease_lines(caplog)
        assert claimed.startswith(f"lease of router_name '{NAME}' claimed (host ")
        assert claimed.endswith(f", FastAGI {daemon.host}:{daemon.port})")


async def test_a_sqlite_router_says_it_claimed_the_lease_of_its_files_only_router(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A SQLite file is one router's, which has no router_name: the line names no empty one."""
    caplog.set_level("INFO", "hotline400.lease")
    async with running_router(tmp_path) as daemon:
        [claimed] = lease_lines(caplog)
        assert claimed.startswith("lease of this store's only router claimed (host ")
        assert claimed.endswith(f", FastAGI {daemon.host}:{daemon.port})")
