"""Two routers, one PostgreSQL: caps hold across both, splits stay exact, and a router
killed mid-load loses no call record.

Tariffs of the test config: 4000000008 is prepaid (package e2e-regional, 0.60 per started
local minute) with a monthly call cap; the simulator's 13800000051 answers it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rating.ledger import LedgerEntry, LedgerKind
from router.cli import main
from router.daemon import Daemon
from router.simulation.asterisk_agi import CallResult, SimulatedCall, run_call, run_calls
from router.simulation.asterisk_agi import Outcome as Phone
from router.storage.cdr import CDR, Outcome
from router.storage.postgres import PostgresStore
from tests.conftest import (
    E2E_CONFIG,
    MONDAY_MORNING,
    PROCESS_START_S,
    REPO,
    eventually,
    free_port,
    logged_since,
    run_sql,
    running_router,
    scratch_schema,
    until_logged,
)

REPO = REPO
SHANGHAI = ZoneInfo("Asia/Shanghai")
PREPAID = "4000000008"
SPLIT = "4000000010"
SPLIT_PLAN = f"""\
number: "{SPLIT}"
name: Three desks sharing the calls 50/30/20
default:
  split:
    - {{number: "13800000011", percent: 50}}
    - {{number: "13800000012", percent: 30}}
    - {{number: "13800000013", percent: 20}}
"""


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with scratch_schema() as url:
        yield url


def config_with(tmp_path: Path, monthly_calls: int) -> Path:
    """The e2e config with 4000000008's monthly call cap set and a split plan added."""
    config = tmp_path / "shared-config"
    shutil.copytree(E2E_CONFIG, config)
    plan = config / "plans" / f"{PREPAID}.yaml"
    text = plan.read_text(encoding="utf-8")
    plan.write_text(text.replace("monthly_calls: 2", f"monthly_calls: {monthly_calls}"))
    (config / "plans" / f"{SPLIT}.yaml").write_text(SPLIT_PLAN, encoding="utf-8")
    return config


async def pay(database: str, amount: str, at: datetime) -> None:
    store = PostgresStore(database, router="cashier")
    await store.post_ledger([LedgerEntry(PREPAID, at, Decimal(amount), LedgerKind.PAYMENT, "r1")])
    await store.close()


async def two_routers(
    stack: AsyncExitStack, database: str, tmp_path: Path, config: Path
) -> list[Daemon]:
    return [
        await stack.enter_async_context(
            running_router(tmp_path / name, config, store=database, router_name=name)
        )
        for name in ("r1", "r2")
    ]


async def spread(routers: Sequence[Daemon], calls: Sequence[SimulatedCall]) -> list[CallResult]:
    """Play the calls at once, the nth on router n mod 2, as Asterisk's SRV round-robin does."""
    by_router = [list(calls[index :: len(routers)]) for index in range(len(routers))]
    played = await asyncio.gather(
        *(
            run_calls(router.host, router.port, share, concurrency=len(share))
            for router, share in zip(routers, by_router, strict=True)
        )
    )
    return [result for results in played for result in results]


async def stored(database: str, number: str) -> list[CDR]:
    store = PostgresStore(database, router="reader")
    try:
        return await store.query_cdrs(number=number)
    finally:
        await store.close()


async def test_a_monthly_call_cap_lets_exactly_that_many_calls_through_two_routers(
    database: str, tmp_path: Path
) -> None:
    await pay(database, "100.00", MONDAY_MORNING)
    calls = [SimulatedCall(dialled=PREPAID, uniqueid=f"cap.{n}") for n in range(24)]
    async with AsyncExitStack() as stack:
        routers = await two_routers(stack, database, tmp_path, config_with(tmp_path, 5))
        results = await spread(routers, calls)
    cdrs = await stored(database, PREPAID)

    statuses = Counter(result.variables["HOTLINE_STATUS"] for result in results)
    assert statuses == {"answered": 5, "capped": 19}
    assert Counter(cdr.outcome for cdr in cdrs) == {Outcome.ANSWERED: 5, Outcome.CAPPED: 19}
    answered = [cdr for cdr in cdrs if cdr.outcome is Outcome.ANSWERED]
    await assert_counters_agree(database, answered, reserved=5, paid=Decimal("100.00"))


async def test_a_split_stays_exact_on_each_router_and_so_overall(
    database: str, tmp_path: Path
) -> None:
    calls = [SimulatedCall(dialled=SPLIT, uniqueid=f"split.{n}") for n in range(80)]
    async with AsyncExitStack() as stack:
        routers = await two_routers(stack, database, tmp_path, config_with(tmp_path, 2))
        results = await spread(routers, calls)

    def desks(share: Sequence[CallResult]) -> Counter[str]:
        return Counter(result.dials[0].argument.split("@")[0][-2:] for result in share)

    assert desks(results[:40]) == desks(results[40:]) == {"11": 20, "12": 12, "13": 8}


async def assert_counters_agree(
    database: str, answered: Sequence[CDR], *, reserved: int, paid: Decimal
) -> None:
    """The month's call count, cost and the balance say what the CDRs and the ledger say."""
    charged = sum((cdr.callee_share for cdr in answered), Decimal("0.00"))
    assert charged > 0
    calls = await run_sql(database, "SELECT SUM(calls) FROM call_units WHERE number = $1", PREPAID)
    cost = await run_sql(
        database,
        "SELECT SUM(cost_fen) FROM usage WHERE number = $1 AND length(period) = 7",
        PREPAID,
    )
    assert (calls[0][0], Decimal(cost[0][0]) / 100) == (reserved, charged)
    refs = await run_sql(database, "SELECT ref FROM ledger WHERE kind = 'call' ORDER BY ref")
    assert refs == sorted((cdr.call_id,) for cdr in answered)
    balance = await run_sql(
        database, "SELECT balance_fen FROM holding_balances WHERE number = $1", PREPAID
    )
    assert Decimal(balance[0][0]) / 100 == paid - charged


# --- a router killed mid-load --------------------------------------------------------------


LOADED_AHEAD = """\
import sys
from pathlib import Path

import router.daemon  # the router's modules, all that `serve` loads

Path(sys.argv[1]).touch()
sys.stdin.readline()  # the start
from router.cli import main

sys.exit(main(sys.argv[2:]))
"""
"""`hotline400 serve` with its modules loaded before it is told to start: the start is then
as quick on a loaded machine as on a quiet one, for a test that times it against a lease."""


@dataclass
class RouterProcess:
    """`hotline400 serve` in a directory of its own (its spool), on a fixed port."""

    workdir: Path
    config: Path
    database: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    since: int = 0
    """Where this run's lines begin in router.log (a restart appends to it)."""

    @property
    def name(self) -> str:
        return f"{socket.gethostname()}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "router.log"

    def start(self) -> None:
        """Start it; one `load`ed ahead is told to go on."""
        if self.process is not None and self.process.poll() is None:
            assert self.process.stdin is not None, "running already"
            self.process.stdin.write(b"start\n")
            self.process.stdin.close()
            return
        self._spawn(["-m", "router.cli"])

    async def load(self) -> None:
        """Start the process and load the router's modules, which take half a minute on a
        loaded machine; `start` then starts the router at once."""
        loaded = self.workdir / "modules-loaded"
        loaded.unlink(missing_ok=True)
        self._spawn(["-c", LOADED_AHEAD, str(loaded)], stdin=subprocess.PIPE)
        assert self.process is not None
        async with asyncio.timeout(PROCESS_START_S):
            while not loaded.exists():
                assert self.process.poll() is None, self.log()
                await asyncio.sleep(0.05)

    def _spawn(self, python_args: list[str], stdin: int | None = None) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HOTLINE400_STORE": self.database, "PYTHONPATH": str(REPO)}
        serve = ["serve", "--config", str(self.config), "--listen", f"127.0.0.1:{self.port}"]
        with self.log_path.open("ab") as log:
            self.since = log.tell()
            self.process = subprocess.Popen(
                [sys.executable, *python_args, *serve],
                cwd=self.workdir,
                env=env,
                stdin=stdin,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def listening(self) -> None:
        """Once this run says it listens: it takes calls from then on."""
        assert self.process is not None
        listening = f"FastAGI listening on 127.0.0.1:{self.port}"
        await until_logged(self.process, self.log_path, listening, since=self.since)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return logged_since(self.log_path)


class Switchboard:
    """Asterisk's side: places calls on the routers and, like hagi:// with two SRV targets,
    tries the other router when one refuses the connection. Remembers every placed call."""

    def __init__(self, routers: Sequence[RouterProcess]) -> None:
        self.routers = routers
        self.placed: dict[str, CallResult] = {}
        self._numbers = iter(range(1_000_000))

    async def place(self, first: int, call: SimulatedCall, time_scale: float = 0.0) -> CallResult:
        for router in (self.routers[first], self.routers[1 - first]):
            result = await run_call("127.0.0.1", router.port, call, time_scale=time_scale)
            if result.error is None or not result.error.startswith("connect failed"):
                self.placed[call.uniqueid or ""] = result
                return result
        raise AssertionError(f"no router took {call.uniqueid}: {result.error}")

    def new_call(self, prefix: str, talk_s: float = 3.0) -> SimulatedCall:
        return SimulatedCall(
            dialled=PREPAID,
            uniqueid=f"{prefix}.{next(self._numbers)}",
            destinations={"13800000051": Phone.answers(talk_s=talk_s)},
        )

    async def until_serving(self, index: int) -> None:
        """Once router `index` listens, a call placed on it is put through."""
        router = self.routers[index]
        await router.listening()
        call = self.new_call(f"ready-{index}")
        result = await run_call("127.0.0.1", router.port, call)
        self.placed[call.uniqueid or ""] = result
        assert result.error is None, f"{result.error}\n{router.log()}"


async def test_a_router_killed_mid_load_loses_no_call_record_and_counters_agree(
    database: str, tmp_path: Path
) -> None:
    await pay(database, "500.00", datetime.now(SHANGHAI))
    config = config_with(tmp_path, 1000)
    with (config / "router.yaml").open("a", encoding="utf-8") as router_yaml:
        router_yaml.write("lease_heartbeat: 0.2\nlease_timeout: 0.5\n")
    routers = [RouterProcess(tmp_path / name, config, database, free_port()) for name in ("a", "b")]
    board = Switchboard(routers)
    try:
        for router in routers:
            router.start()
        await asyncio.gather(board.until_serving(0), board.until_serving(1))

        # Calls that talk a virtual minute (6 s real) on both routers ...
        talking = [
            asyncio.create_task(board.place(n % 2, board.new_call("long", 60.0), time_scale=0.1))
            for n in range(12)
        ]
        # ... each holding its unit of the cap, and router a's written ahead, before it dies
        # under them (what is still in its write-behind queue dies with it).
        await eventually(lambda: month_calls(database, equal_to=2 + 12), 60)
        await eventually(lambda: calls_in_progress(database, routers[0].name, equal_to=6), 60)
        routers[0].kill()
        # Asterisk's next calls find router a gone and go to router b.
        await asyncio.gather(*(board.place(n % 2, board.new_call("after")) for n in range(10)))
        await asyncio.sleep(0.7)  # router a's lease on its name runs out: it may start again
        routers[0].start()
        await board.until_serving(0)
        # Starting again, it closes the calls its crash left in progress, as it goes.
        await eventually(lambda: calls_in_progress(database, routers[0].name, equal_to=0), 60)
        await asyncio.gather(*talking)
    finally:
        for router in routers:
            router.stop()

    cdrs = {cdr.call_id: cdr for cdr in await stored(database, PREPAID)}
    assert sorted(cdrs) == sorted(board.placed)
    # A call cut by the kill never had its outcome left on the channel.
    killed = {
        call_id
        for call_id, result in board.placed.items()
        if "HOTLINE_STATUS" not in result.variables
    }
    assert len(killed) == 6
    assert {cdrs[call_id].outcome for call_id in killed} == {Outcome.INTERRUPTED}
    survived = set(cdrs) - killed
    assert {cdrs[call_id].outcome for call_id in survived} == {Outcome.ANSWERED}
    await assert_counters_agree(
        database,
        [cdrs[call_id] for call_id in survived],
        reserved=len(cdrs),
        paid=Decimal("500.00"),
    )


async def month_calls(database: str, *, equal_to: int) -> bool:
    rows = await run_sql(
        database, "SELECT COALESCE(SUM(calls), 0) FROM call_units WHERE number = $1", PREPAID
    )
    return rows[0][0] == equal_to


async def calls_in_progress(database: str, router: str, *, equal_to: int) -> bool:
    rows = await run_sql(
        database,
        "SELECT COUNT(*) FROM cdrs WHERE router = $1 AND outcome = 'in_progress'",
        router,
    )
    return rows[0][0] == equal_to


# --- the commands read what the routers share ----------------------------------------------

CALLERS = ("053188889999", "13916012345", "01062345678")
TARGETS = {PREPAID: "13800000051", "4000000009": "13800000051", "4000000001": "13800000011"}


def three_hundred_calls() -> list[SimulatedCall]:
    """Calls to a prepaid, a postpaid and an unrated number, from three kinds of caller,
    talking from 7 s to 3 min 40: the same calls whichever routers and store take them."""
    numbers = list(TARGETS)
    return [
        SimulatedCall(
            dialled=numbers[n % 3],
            caller_id=CALLERS[n // 3 % 3],
            uniqueid=f"shared.{n:03d}",
            destinations={TARGETS[numbers[n % 3]]: Phone.answers(talk_s=7 + n % 11 * 19)},
        )
        for n in range(300)
    ]


def commands_config(tmp_path: Path, store_url: str) -> Path:
    """The routers' config (no cap in the way), naming the store as an operator's would."""
    config = config_with(tmp_path, 1000)
    postpaid = config / "plans" / "4000000009.yaml"
    text = postpaid.read_text(encoding="utf-8")
    postpaid.write_text(text.replace('daily_cost: "2.00"', 'daily_cost: "9999.00"'))
    router_yaml = config / "router.yaml"
    text = router_yaml.read_text(encoding="utf-8")
    router_yaml.write_text(f'{text}store: "{store_url}"\n', encoding="utf-8")
    return config


async def command(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert await asyncio.to_thread(main, list(args)) == 0, capsys.readouterr().err
    return capsys.readouterr().out


async def what_the_commands_say(config: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """cdr, bill, account show, and rate after a tariff change, as an operator runs them."""
    at = ["--config", str(config)]
    said = [
        await command(capsys, "cdr", *at, "--format", "json"),
        await command(capsys, "bill", *at, "--month", "2026-11", "--format", "json"),
        await command(capsys, "account", "show", *at, "--number", PREPAID, "--today", "2026-11-23"),
    ]
    tariffs = config / "tariffs.yaml"
    text = tariffs.read_text(encoding="utf-8")
    tariffs.write_text(text.replace('"e2e"', '"e2e2"').replace("charge: 0.60", "charge: 0.30"))
    said.append(
        await command(capsys, "rate", *at, "--from", "2026-11-23", "--to", "2026-11-23", "--rerate")
    )
    said.append(await command(capsys, "bill", *at, "--month", "2026-11", "--format", "json"))
    return said


async def test_commands_list_and_bill_the_calls_of_both_routers_as_sqlite_does_for_one(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = three_hundred_calls()
    await pay(database, "1000.00", MONDAY_MORNING)
    shared = commands_config(tmp_path / "postgresql", database)
    async with AsyncExitStack() as stack:
        routers = await two_routers(stack, database, tmp_path, shared)
        halves = [calls[::2], calls[1::2]]
        played = await asyncio.gather(
            *(
                run_calls(router.host, router.port, half, concurrency=20)
                for router, half in zip(routers, halves, strict=True)
            )
        )
    assert all(result.error is None for results in played for result in results)
    on_postgresql = await what_the_commands_say(shared, capsys)

    sqlite_url = f"sqlite:///{tmp_path / 'one-router.db'}"
    alone = commands_config(tmp_path / "sqlite", sqlite_url)
    async with running_router(tmp_path / "r0", alone, store=sqlite_url) as router:
        await router.store.post_ledger(
            [LedgerEntry(PREPAID, MONDAY_MORNING, Decimal("1000.00"), LedgerKind.PAYMENT, "r1")]
        )
        results = await run_calls(router.host, router.port, calls, concurrency=20)
    assert all(result.error is None for result in results)
    on_sqlite = await what_the_commands_say(alone, capsys)

    records = json.loads(on_postgresql[0])
    assert len(records) == 300
    assert {record["call_id"] for record in records} == {call.uniqueid for call in calls}
    assert Counter(record["outcome"] for record in records) == {"answered": 300}
    calls_per_number = {s["number"]: s["calls"] for s in json.loads(on_postgresql[1])}
    assert {number: n for number, n in calls_per_number.items() if n} == {
        PREPAID: 100,
        "4000000009": 100,
    }
    assert "adjustments booked" in on_postgresql[3]
    assert on_postgresql == on_sqlite


async def test_calls_at_once_through_two_routers_crossing_the_threshold_warn_once(
    database: str, tmp_path: Path
) -> None:
    """5.50 paid, a warning under 5.00, 0.60 a call: each router's call reads 5.50 as it
    arrives, and the two take the balance to 4.30 together; one of them warns, once."""
    await pay(database, "5.50", MONDAY_MORNING)
    calls = [SimulatedCall(dialled=PREPAID, uniqueid=f"low.{n}") for n in range(2)]
    async with AsyncExitStack() as stack:
        routers = await two_routers(stack, database, tmp_path, config_with(tmp_path, 10))
        results = await spread(routers, calls)
        assert [result.variables["HOTLINE_STATUS"] for result in results] == ["answered"] * 2
        await eventually(lambda: sum(router.alerts.raised for router in routers) >= 1)
        await eventually(lambda: not any(router.cdrs.stats().queue_depth for router in routers))
        await asyncio.sleep(0.3)  # a second warning would follow the last batch at once
        raised = [router.alerts.raised for router in routers]
    assert sorted(raised) == [0, 1]
