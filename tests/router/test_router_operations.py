"""Operating the daemon: hot reload, SIGHUP, SIGTERM drain, crash recovery, database outage."""

import asyncio
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from contextlib import ExitStack, closing
from pathlib import Path

import pytest

from router.simulation.asterisk_agi import CallResult, SimulatedCall, run_call
from router.storage.cdr import DIALLING, Outcome
from router.storage.protocol import INTERRUPTED_NOTE
from router.storage.sqlite import SQLiteStore
from tests.conftest import (
    E2E_CONFIG,
    REPO,
    SimulatedClock,
    call,
    finished_cdr,
    free_port,
    logged_since,
    running_router,
    until_logged,
)
from tests.router.call.test_pin_guard import lock_held_elsewhere
from tests.router.storage.test_cdr_writer import call_ops, eventually, write_lock_held

BUSY_FORWARD_PLAN = """\
number: "4000000002"
name: Busy then forward
forwarding:
  on_busy: ["{forward}"]
default: {{target: "13800000021"}}
"""


def write_plan(config_dir: Path, forward: str) -> None:
    path = config_dir / "plans" / "4000000002.yaml"
    path.write_text(BUSY_FORWARD_PLAN.format(forward=forward), encoding="utf-8")


async def test_a_reload_serves_the_new_plan_to_new_calls(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        write_plan(router.config_dir, forward="13800000012")
        router.reload()
        result = await call(router, dialled="4000000002", uniqueid="r.1")
    assert result.variables["HOTLINE_DEST"] == "13800000012"


async def test_a_bad_file_keeps_the_previous_plan_serving_and_logs_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_router(tmp_path) as router:
        plan_file = router.config_dir / "plans" / "4000000002.yaml"
        plan_file.write_text('number: "4000000002"\nname: Broken\ndefault: {target: "1"}\n')
        with caplog.at_level(logging.ERROR, logger="hotline400.plans"):
            router.reload()
        result = await call(router, dialled="4000000002", uniqueid="r.2")
    assert result.variables["HOTLINE_DEST"] == "13800000011"
    assert f"{plan_file}:3 default.target: '1' is not a phone number" in caplog.text
    assert "previous plan kept serving for 4000000002" in caplog.text
    assert router.plans.reloads_failed == 1


async def test_a_call_in_flight_keeps_the_plan_it_started_with(tmp_path: Path) -> None:
    speedup = 50.0
    async with running_router(tmp_path, clock=SimulatedClock(speedup)) as router:
        in_flight = asyncio.create_task(
            call(router, dialled="4000000003", uniqueid="r.3", time_scale=1 / speedup)
        )
        await asyncio.sleep(0.1)  # the first of three 20 s Dials is ringing
        (router.config_dir / "plans" / "4000000003.yaml").write_text(
            'number: "4000000003"\nname: Changed\ndefault: {target: "13800000011"}\n'
        )
        router.reload()
        result = await in_flight
        fresh = await call(router, dialled="4000000003", uniqueid="r.4")
    dials = [line for line in result.commands if line.startswith("EXEC Dial")]
    assert dials == [
        'EXEC Dial "Local/13800000031@phones,20"',
        'EXEC Dial "Local/13800000032@phones,20"',
        'EXEC Dial "Local/13800000033@phones,20"',
    ]
    assert fresh.variables["HOTLINE_DEST"] == "13800000011"


async def test_the_file_watcher_reloads_a_changed_plan(tmp_path: Path) -> None:
    async with running_router(tmp_path, watch_plans=True) as router:
        await asyncio.sleep(0.3)  # the watcher is set up
        version = router.plans.version
        write_plan(router.config_dir, forward="13800000013")
        async with asyncio.timeout(5):
            while router.plans.version == version:
                await asyncio.sleep(0.05)
        result = await call(router, dialled="4000000002", uniqueid="w.1")
    assert result.variables["HOTLINE_DEST"] == "13800000013"


async def test_cdr_writes_are_gathered_for_the_batch_interval_then_stored_together(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path, cdr_batch_interval=2.0) as router:
        ids = [f"gathered.{n}" for n in range(3)]
        for call_id in ids:
            result = await call(router, dialled="4000000001", uniqueid=call_id)
            assert result.variables["HOTLINE_STATUS"] == "answered"
        await asyncio.sleep(0.5)  # twice the shipped interval
        stored = [await router.store.get_cdr(call_id) for call_id in ids]
        assert stored == [None, None, None]  # the calls ended; their writes are still gathered
        cdrs = [await finished_cdr(router, call_id, timeout=5.0) for call_id in ids]
    assert [cdr.outcome for cdr in cdrs] == [Outcome.ANSWERED] * 3


async def test_a_database_outage_spools_cdrs_and_replays_them_when_it_is_back(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path) as router:
        await call(router, dialled="4000000001", uniqueid="db.0")
        await finished_cdr(router, "db.0")
        locker = sqlite3.connect(router.settings.database, timeout=0.1)
        locker.execute("BEGIN EXCLUSIVE")  # another process holds the database
        results = [
            await call(router, dialled="4000000001", uniqueid=f"db.{n}") for n in range(1, 6)
        ]
        async with asyncio.timeout(15):
            while router.cdrs.stats().spooled_ops == 0:
                await asyncio.sleep(0.05)
        assert all(r.variables["HOTLINE_STATUS"] == "answered" for r in results)
        locker.rollback()
        locker.close()
        cdrs = [await finished_cdr(router, f"db.{n}", timeout=40) for n in range(1, 6)]
    assert [cdr.outcome for cdr in cdrs] == [Outcome.ANSWERED] * 5
    assert all(len(cdr.legs) == 1 for cdr in cdrs)


async def test_a_stop_while_another_process_locks_the_file_takes_the_drain_and_one_store_timeout(
    tmp_path: Path,
) -> None:
    """After the drain the store gets `store_timeout` in all, as on PostgreSQL: the CDR
    writer's last batches, the lease's renewal and release and the file's close share it, so
    a statement begun during the stop waits no longer than what is left of it. What the file
    did not take stays in the journal, and the next start writes it."""
    store_timeout, drain_timeout = 3.0, 0.2
    async with running_router(
        tmp_path, store_timeout=store_timeout, drain_timeout=drain_timeout, lease_heartbeat=0.5
    ) as router:
        await call(router, dialled="4000000001", uniqueid="lock.0")
        await finished_cdr(router, "lock.0")
        async with lock_held_elsewhere(Path(router.settings.database)):
            result = await call(router, dialled="4000000001", uniqueid="lock.1")
            assert result.variables["HOTLINE_STATUS"] == "answered"
            loop = asyncio.get_running_loop()
            began = loop.time()
            await router.stop()
            took = loop.time() - began
            assert took < drain_timeout + store_timeout + 1.5, f"the stop took {took:.1f} s"
            assert router.journal.record_count > 0
    assert outcome_in(Path(router.settings.database), "lock.1") is None

    same_files = {"database": router.settings.database, "spool_dir": router.settings.spool_dir}
    async with running_router(tmp_path / "again", **same_files) as restarted:
        cdr = await finished_cdr(restarted, "lock.1")
    assert cdr.outcome is Outcome.ANSWERED
    assert restarted.journal.record_count == 0


# --- the daemon as a process ---------------------------------------------------------------


class ServeProcess:
    """`hotline400 serve` in its own process, run from a deployment directory; what it
    logs goes to a file of its own there, read while it runs."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.log = workdir / f"serve-{self.port}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "router.cli", "serve", "--listen", f"127.0.0.1:{self.port}"],
                cwd=workdir,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def ready(self) -> None:
        """Once it says it listens: it takes calls from then on."""
        await until_logged(self.process, self.log, f"FastAGI listening on 127.0.0.1:{self.port}")

    async def logged(self, line: str) -> None:
        await until_logged(self.process, self.log, line, timeout=60)

    def output(self) -> str:
        """All it logged, once it has exited."""
        self.process.wait(timeout=60)
        return logged_since(self.log)

    def cdr_outcome(self, call_id: str) -> str | None:
        return outcome_in(self.workdir / "var" / "hotline400.db", call_id)

    def dialling(self, call_id: str) -> bool:
        """The call's Dial has started: its leg is written ahead in the file."""
        with closing(sqlite3.connect(self.workdir / "var" / "hotline400.db")) as db:
            row = db.execute(
                "SELECT 1 FROM legs WHERE call_id = ? AND dial_status = ?", (call_id, DIALLING)
            ).fetchone()
        return row is not None


def outcome_in(database: Path, call_id: str) -> str | None:
    """A CDR's outcome as another process reads the file (a write lock does not stop it)."""
    with closing(sqlite3.connect(database)) as db:
        row = db.execute("SELECT outcome FROM cdrs WHERE call_id = ?", (call_id,)).fetchone()
    return row[0] if row else None


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    """A deployment directory: ./config from the test config, ./var created by the daemon."""
    shutil.copytree(E2E_CONFIG, tmp_path / "config")
    settings = tmp_path / "config" / "router.yaml"
    settings.write_text(settings.read_text().replace("watch_plans: false", "watch_plans: true"))
    return tmp_path


async def in_its_dial(result: CallResult) -> None:
    """Wait until the router has sent the call's first Dial: the call is in progress."""
    await eventually(lambda: any(c.startswith("EXEC Dial") for c in result.commands), 60)


async def left_alone(playing: asyncio.Task[CallResult]) -> None:
    """Asterisk's side of a call the router let go rings on: the test stops playing it."""
    playing.cancel()
    await asyncio.gather(playing, return_exceptions=True)


async def test_sigterm_stops_accepting_lets_the_call_in_flight_finish_and_exits_0(
    deployment: Path,
) -> None:
    settings = deployment / "config" / "router.yaml"
    settings.write_text(settings.read_text().replace("drain_timeout: 5", "drain_timeout: 30"))
    daemon = ServeProcess(deployment)
    await daemon.ready()
    call = SimulatedCall(dialled="4000000003", uniqueid="term.1")
    ringing = CallResult(call=call)
    playing = asyncio.create_task(
        run_call("127.0.0.1", daemon.port, call, time_scale=1 / 15, result=ringing)
    )  # three 20 s Dials: 4 s in all
    await in_its_dial(ringing)
    daemon.process.send_signal(signal.SIGTERM)
    result = await playing
    assert daemon.process.wait(timeout=60) == 0
    assert result.error is None and result.variables["HOTLINE_STATUS"] == "noanswer"
    assert daemon.cdr_outcome("term.1") == "noanswer"
    output = daemon.output()
    assert (
        "SIGTERM: no new calls; 1 call(s) in progress have up to 30 s (drain_timeout) to finish"
    ) in output
    assert "stopped" in output


async def test_sighup_reloads_the_plans_of_a_running_daemon(deployment: Path) -> None:
    settings = deployment / "config" / "router.yaml"  # SIGHUP alone reloads the plan
    settings.write_text(settings.read_text().replace("watch_plans: true", "watch_plans: false"))
    daemon = ServeProcess(deployment)
    await daemon.ready()
    try:
        write_plan(deployment / "config", forward="13800000014")
        daemon.process.send_signal(signal.SIGHUP)
        await daemon.logged("numbers (version 2)")  # the reload done
        result = await run_call(
            "127.0.0.1", daemon.port, SimulatedCall(dialled="4000000002", uniqueid="hup.1")
        )
    finally:
        daemon.process.send_signal(signal.SIGTERM)
        daemon.process.wait(timeout=60)
    assert result.variables["HOTLINE_DEST"] == "13800000014"


async def test_calls_left_in_progress_by_a_crash_are_closed_as_interrupted_on_restart(
    deployment: Path,
) -> None:
    daemon = ServeProcess(deployment)
    await daemon.ready()
    ringing = asyncio.create_task(
        run_call(
            "127.0.0.1",
            daemon.port,
            SimulatedCall(dialled="4000000003", uniqueid="crash.1"),
            time_scale=1.0,  # ringing for a minute: in progress whenever the kill comes
            timeout=120,
        )
    )
    await eventually(lambda: daemon.cdr_outcome("crash.1") == "in_progress", 60)
    daemon.process.kill()
    daemon.process.wait(timeout=60)
    await left_alone(ringing)
    restarted = ServeProcess(deployment)
    await restarted.ready()
    await eventually(lambda: restarted.cdr_outcome("crash.1") == "interrupted", 60)
    restarted.process.send_signal(signal.SIGTERM)
    assert restarted.process.wait(timeout=60) == 0
    assert restarted.cdr_outcome("crash.1") == "interrupted"
    assert "left in progress by a crash as interrupted" in restarted.output()


async def test_a_call_cut_in_its_dial_by_the_drain_timeout_is_left_for_the_next_start(
    deployment: Path,
) -> None:
    """Asterisk keeps a Dial going after its AGI session is cut (fact 10): the router that
    stops cannot know how the call ends, so it leaves the CDR in progress, as a crash
    does, and its next start adopts it, never a call closed as an error with no talk."""
    settings = deployment / "config" / "router.yaml"
    settings.write_text(settings.read_text().replace("drain_timeout: 5", "drain_timeout: 0.3"))
    daemon = ServeProcess(deployment)
    await daemon.ready()
    ringing = asyncio.create_task(
        run_call(
            "127.0.0.1",
            daemon.port,
            SimulatedCall(dialled="4000000003", uniqueid="cut.1"),
            time_scale=1.0,  # the first 20 s Dial rings 20 s: the stop comes during it
            timeout=120,
        )
    )
    await eventually(lambda: daemon.dialling("cut.1"), 60)
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(timeout=60) == 0
    await left_alone(ringing)
    output = daemon.output()
    assert daemon.cdr_outcome("cut.1") == "in_progress"
    assert "1 call(s) still running after the drain timeout were cut" in output
    assert (
        "call cut.1: router stopped: the call was cut after drain_timeout (0.3 s) during its"
        " Dial; left in progress for the next start to adopt"
    ) in output

    restarted = ServeProcess(deployment)
    await restarted.ready()
    await eventually(lambda: restarted.cdr_outcome("cut.1") == "interrupted", 60)
    restarted.process.send_signal(signal.SIGTERM)
    assert restarted.process.wait(timeout=60) == 0


async def test_a_call_cut_before_its_dial_by_the_drain_timeout_says_why_it_ended(
    tmp_path: Path,
) -> None:
    speedup = 20.0
    database = tmp_path / "var" / "hotline400.db"
    clock = SimulatedClock(speedup)
    async with running_router(tmp_path, clock=clock, drain_timeout=0.2) as router:
        prompted = asyncio.create_task(  # the caller never types the PIN: 15 s of prompts
            call(router, dialled="4000000006", uniqueid="cut.2", time_scale=1 / speedup)
        )
        await eventually(lambda: outcome_in(database, "cut.2") == "in_progress", 5)
    await prompted
    with closing(sqlite3.connect(database)) as db:
        row = db.execute("SELECT outcome, note FROM cdrs WHERE call_id = 'cut.2'").fetchone()
    assert row == ("error", "router stopped: the call was cut after drain_timeout (0.2 s)")


async def test_a_call_cut_while_its_refusal_is_played_keeps_its_outcome(tmp_path: Path) -> None:
    database = tmp_path / "var" / "hotline400.db"
    async with running_router(tmp_path, drain_timeout=0.2) as router:
        refused = asyncio.create_task(
            call(
                router,
                dialled="4000000005",  # Guangdong only: a Beijing caller hears why, unanswered
                caller_id="01062345678",
                uniqueid="cut.3",
                sound_lengths={"acme/not-served": 8000 * 60},
                time_scale=1 / 20,
            )
        )
        await eventually(lambda: outcome_in(database, "cut.3") == "in_progress", 5)
    await refused
    with closing(sqlite3.connect(database)) as db:
        row = db.execute("SELECT outcome, note FROM cdrs WHERE call_id = 'cut.3'").fetchone()
    assert row == (
        "blocked",
        "blocked: caller region is screened; router stopped: the call was cut after "
        "drain_timeout (0.2 s)",
    )


async def left_in_progress(database: Path, call_id: str) -> None:
    """The file as a router killed during the call `call_id` left it."""
    database.parent.mkdir(parents=True)
    store = SQLiteStore(database)
    await store.open()
    await store.apply(call_ops(call_id)[:2])
    await store.close()


@pytest.mark.parametrize("ami", [False, True], ids=["without-ami", "ami-not-logged-in"])
async def test_calls_left_in_progress_are_closed_once_a_store_locked_at_start_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, ami: bool
) -> None:
    database = tmp_path / "var" / "hotline400.db"
    await left_in_progress(database, "crash.1")
    link = {"ami_host": "127.0.0.1", "ami_port": free_port(), "adopt_login_wait": 0.1}

    with ExitStack() as lock:
        lock.enter_context(write_lock_held(database))  # longer than the 5 s busy timeout
        async with running_router(tmp_path, **(link if ami else {})) as daemon:
            await call(daemon, dialled="4000000003", uniqueid="new.1")
            await eventually(lambda: "crash not handled yet, retry in" in caplog.text, 10)
            assert outcome_in(database, "crash.1") == "in_progress"
            lock.close()
            crashed = await finished_cdr(daemon, "crash.1", timeout=10)
            await finished_cdr(daemon, "new.1", timeout=10)

    assert crashed.outcome is Outcome.INTERRUPTED
    assert crashed.note is not None and INTERRUPTED_NOTE in crashed.note


async def test_tariffs_lowering_the_minimum_of_numbers_in_use_are_refused_and_the_old_serve(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_router(tmp_path) as router:
        tariffs_file = router.config_dir / "tariffs.yaml"
        original = tariffs_file.read_text()
        with_minimum = original.replace(
            "    monthly_rent: 10.00\n", "    monthly_rent: 10.00\n    minimum_monthly: 100.00\n"
        )
        tariffs_file.write_text(with_minimum)
        assert router.plans.reload().ok
        tariffs_file.write_text(
            with_minimum.replace("minimum_monthly: 100.00", "minimum_monthly: 80.00")
        )
        with caplog.at_level(logging.ERROR, logger="hotline400.plans"):
            assert not router.plans.reload().ok
        assert router.plans.tariffs is not None
        assert router.plans.tariffs.minimum_of("4000000008") == 100
        assert (
            "accounts.4000000008.package: 4000000008: minimum monthly consumption 100.00 -> "
            "80.00 refused: a number already in use keeps its minimum"
        ) in caplog.text
        cheaper = with_minimum.replace("minimum_monthly: 100.00", "minimum_monthly: 50.00")
        cheaper = cheaper.replace("charge: 0.12}", "charge: 0.06}").replace(
            "charge: 0.60}", "charge: 0.30}"
        )
        keeping = cheaper.replace(
            "    package: e2e-regional\n",
            "    package: e2e-regional\n    minimum_monthly: 100.00\n",
        )
        tariffs_file.write_text(keeping)
        assert router.plans.reload().ok  # numbers in use keep their own 100.00


async def test_tariffs_raising_a_price_without_notice_are_refused_and_the_old_serve(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_router(tmp_path) as router:
        tariffs_file = router.config_dir / "tariffs.yaml"
        tariffs_file.write_text(
            tariffs_file.read_text().replace("monthly_rent: 10.00", "monthly_rent: 12.00")
        )
        with caplog.at_level(logging.ERROR, logger="hotline400.plans"):
            assert not router.plans.reload().ok
        assert router.plans.tariffs is not None
        assert router.plans.tariffs.packages["e2e-regional"].monthly_rent == 10
        assert (
            "packages.e2e-regional: 4000000008, 4000000009, 4000000102, 4000000103,"
            " 4000000104, 4000000105: prices of e2e-regional raised from "
        ) in caplog.text
        assert "(monthly rent 10.00 -> 12.00) refused" in caplog.text
