"""A router killed during an answered call: the call is completed and billed as Asterisk
reported it once the router is back.

The router runs as a process (`hotline400 serve`) beside the AMI simulator; the FastAGI side
is the AGI simulator. A call to the prepaid 4000000008 is answered by 13800000051 (0.60 per
started local minute); the router is SIGKILLed during the conversation and started again.
Asterisk (the AMI simulator) keeps the call as Asterisk does: still up (listed by
CoreShowChannels, its end sent as events after the restart), or ended while the router was
down (its Cdr record posted late, as cdr.conf batch mode does, or never). Each case runs on
a SQLite file and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from rating.ledger import LedgerEntry, LedgerKind
from router.simulation.asterisk_agi import Outcome as Phone
from router.simulation.asterisk_agi import SimulatedCall, run_call
from router.simulation.asterisk_ami import (
    MANAGER_CONF,
    AmiSimulator,
    accounts_from_manager_conf,
)
from router.storage.cdr import CDR, DIALLING, AddLeg, ForwardReason, Leg, Outcome, StartCall
from router.storage.location import build_store
from router.storage.protocol import INTERRUPTED_NOTE
from tests.conftest import (
    E2E_CONFIG,
    MONDAY_MORNING,
    REPO,
    SHANGHAI,
    finished_cdr,
    logged_since,
    opened_store,
    running_router,
    scratch_schema,
    until_logged,
)

PREPAID = "4000000008"
DESK = "13800000051"
CALLER = "053188889999"
CALL_ID = "1795400000.7"
ACCOUNTS = accounts_from_manager_conf(MANAGER_CONF.read_text(encoding="utf-8"))
SECRET = ACCOUNTS["hotline400"].secret
PROCESS_S = 60.0
"""A process start imports the whole router (several seconds on a loaded machine)."""
LISTENING = "FastAGI listening on 127.0.0.1:"
LEASE_S = 0.6
"""How long the router's lease on its name lasts unrenewed (lease_timeout)."""


async def until(check: Callable[[], object], timeout: float = PROCESS_S) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


@dataclass
class Router:
    """`hotline400 serve` as a service manager runs it."""

    config: Path
    port: int = 0
    """Where it listens for FastAGI: each start takes a free port of its own (listen port 0),
    which `listening` reads off the log."""
    process: subprocess.Popen[bytes] | None = None
    since: int = 0
    """Where this start's lines begin in the log (earlier starts wrote before it)."""

    def start(self) -> None:
        log_path = self.config.parent / "router.log"
        self.since = log_path.stat().st_size if log_path.exists() else 0
        log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "router.cli", "serve", "--config", str(self.config)],
            cwd=self.config.parent,
            env={**os.environ, "PYTHONPATH": str(REPO), "HOTLINE400_AMI_SECRET": SECRET},
            stdout=log,
            stderr=log,
        )

    async def listening(self) -> None:
        """Wait for this start to listen (failing with its log if it exits first); its port."""
        assert self.process is not None
        log = self.config.parent / "router.log"
        await until_logged(self.process, log, LISTENING, since=self.since)
        line = logged_since(log, self.since).split(LISTENING, 1)[1]
        self.port = int(line.split()[0])

    def kill(self) -> None:
        """SIGKILL, then wait out its lease on r1: a restart before it runs out is refused."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(PROCESS_S) == -signal.SIGKILL
        time.sleep(LEASE_S + 0.2)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(PROCESS_S)

    def log(self) -> str:
        return (self.config.parent / "router.log").read_text(encoding="utf-8")


@pytest.fixture
async def asterisk() -> AsyncIterator[tuple[AmiSimulator, int]]:
    simulator = AmiSimulator(ACCOUNTS, timestamp_events=True, cdr_batch=True)
    port = await simulator.start()
    yield simulator, port
    await simulator.stop()


@pytest.fixture
async def router(
    tmp_path: Path, store_url: str, asterisk: tuple[AmiSimulator, int]
) -> AsyncIterator[Router]:
    config = tmp_path / "config"
    shutil.copytree(E2E_CONFIG, config)
    with (config / "router.yaml").open("a", encoding="utf-8") as settings:
        settings.write(
            "metrics_listen: null\n"
            f'store: "{store_url}"\n'
            "router_name: r1\n"
            f"spool_dir: {tmp_path / 'spool'}\n"
            "ami_host: 127.0.0.1\n"
            f"ami_port: {asterisk[1]}\n"
            "adopt_cdr_window: 2\n"
            f"lease_heartbeat: {LEASE_S / 3}\n"
            f"lease_timeout: {LEASE_S}\n"
        )
    text = (config / "router.yaml").read_text(encoding="utf-8")
    text = text.replace("metrics_listen: 127.0.0.1:0\n", "", 1)
    (config / "router.yaml").write_text(text, encoding="utf-8")
    async with opened_store(store_url) as store:
        payment = LedgerEntry(
            PREPAID, datetime.now(SHANGHAI), Decimal("100.00"), LedgerKind.PAYMENT, "r1"
        )
        await store.post_ledger([payment])
    process = Router(config)
    yield process
    if process.process is not None and process.process.poll() is None:
        process.process.kill()
        process.process.wait(PROCESS_S)


async def stored(store_url: str, call_id: str = CALL_ID) -> CDR | None:
    async with opened_store(store_url) as store:
        return await store.get_cdr(call_id)


async def conversation_cut_by_sigkill(
    router: Router, asterisk: AmiSimulator, store_url: str
) -> tuple[asyncio.Task[object], float]:
    """The router dials the desk, which answers; the router is killed mid-conversation.
    Returns the AGI side (still waiting on its Dial) and the moment the desk answered."""
    router.start()
    await router.listening()
    await until(lambda: asterisk.logins == 1)
    call = SimulatedCall(
        dialled=PREPAID,
        caller_id=CALLER,
        uniqueid=CALL_ID,
        destinations={DESK: Phone.answers(talk_s=3600)},
    )
    agi = asyncio.create_task(run_call("127.0.0.1", router.port, call, time_scale=1.0))
    began = float(int(time.time()))
    asterisk.channel_up(CALL_ID, CALLER, PREPAID, at=began)

    async def dialling() -> bool:
        cdr = await stored(store_url)
        return cdr is not None and [leg.dial_status for leg in cdr.legs] == [DIALLING]

    async with asyncio.timeout(PROCESS_S):
        while not await dialling():  # the leg is written ahead as the Dial starts
            await asyncio.sleep(0.05)
    asterisk.dial(CALL_ID, DESK, at=began)
    asterisk.answer(CALL_ID, at=began + 1)
    router.kill()
    return agi, began + 1


async def finished(store_url: str) -> CDR:
    async with asyncio.timeout(PROCESS_S):
        while True:
            cdr = await stored(store_url)
            if cdr is not None and cdr.outcome is not Outcome.IN_PROGRESS and cdr.total:
                return cdr
            if cdr is not None and cdr.outcome is Outcome.INTERRUPTED:
                return cdr
            await asyncio.sleep(0.05)


async def books(store_url: str) -> tuple[list[LedgerEntry], Decimal]:
    async with opened_store(store_url) as store:
        entries = await store.ledger(PREPAID, kind=LedgerKind.CALL)
        month = datetime.now(SHANGHAI)
        usage = await store.usage(PREPAID, f"{month:%Y-%m}", f"{month:%Y-%m-%d}")
    return entries, usage.month_cost


def at(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, SHANGHAI)


async def test_a_call_still_up_after_the_restart_is_followed_to_its_end_and_billed(
    router: Router, asterisk: tuple[AmiSimulator, int], store_url: str
) -> None:
    simulator = asterisk[0]
    simulator.cdr_batch = False
    agi, answered = await conversation_cut_by_sigkill(router, simulator, store_url)

    router.start()
    await until(lambda: simulator.channel_lists == 1)  # asked Asterisk: the call is up
    simulator.hang_up(CALL_ID, at=answered + 30)
    cdr = await finished(store_url)
    entries, month_cost = await books(store_url)
    assert router.stop() == 0
    agi.cancel()

    assert (cdr.outcome, cdr.billable_seconds) == (Outcome.ANSWERED, 30)
    assert (cdr.answered_at, cdr.ended_at) == (at(answered), at(answered + 30))
    [leg] = cdr.legs
    assert (leg.destination, leg.dial_status, leg.talk_seconds) == (DESK, "ANSWER", 30)
    assert cdr.callee_share == Decimal("0.60")  # one started local minute
    assert [(entry.ref, entry.amount) for entry in entries] == [(CALL_ID, Decimal("-0.60"))]
    assert month_cost == Decimal("0.60")
    assert "1 still up in Asterisk, followed to their end" in router.log()


async def test_a_router_whose_name_another_took_over_stops_and_leaves_it_the_adopted_call(
    router: Router, asterisk: tuple[AmiSimulator, int], store_url: str
) -> None:
    """Cut off from the store longer than its lease, a router finds at its next renewal that
    a router of its name took the lease over (and adopted its calls): it stops, completing
    nothing it adopted."""
    simulator = asterisk[0]
    simulator.cdr_batch = False
    agi, answered = await conversation_cut_by_sigkill(router, simulator, store_url)
    router.start()
    await until(lambda: simulator.channel_lists == 1)  # adopted: followed to its end

    name = "r1" if store_url.startswith("postgresql") else ""  # a SQLite file's router
    async with opened_store(store_url) as store:
        other = "host elsewhere, pid 4242, instance beef"
        assert await store.claim_lease(name, "beef", other, 60, take_over=True) is None
    assert router.process is not None
    assert await asyncio.to_thread(router.process.wait, PROCESS_S) == 1
    simulator.hang_up(CALL_ID, at=answered + 30)
    agi.cancel()

    assert f"stopped: router_name {name!r} is held by another running router ({other})" in (
        router.log()
    )
    assert "1 adopted call(s) left to it" in router.log()
    cdr = await stored(store_url)
    assert cdr is not None and cdr.outcome is Outcome.IN_PROGRESS


async def test_a_call_that_ended_while_the_router_was_down_is_billed_from_its_late_cdr(
    router: Router, asterisk: tuple[AmiSimulator, int], store_url: str
) -> None:
    simulator = asterisk[0]
    agi, answered = await conversation_cut_by_sigkill(router, simulator, store_url)
    simulator.hang_up(CALL_ID, at=answered + 20)  # nobody listens: only its Cdr is kept

    router.start()
    await until(lambda: simulator.channel_lists == 1)  # asked Asterisk: the call is gone
    assert simulator.flush_cdrs() == 1  # cdr.conf's batch is posted
    cdr = await finished(store_url)
    entries, month_cost = await books(store_url)
    assert router.stop() == 0
    agi.cancel()

    assert (cdr.outcome, cdr.billable_seconds) == (Outcome.ANSWERED, 20)
    assert (cdr.answered_at, cdr.ended_at) == (at(answered), at(answered + 20))
    assert [leg.dial_status for leg in cdr.legs] == ["ANSWER"]
    assert [(entry.ref, entry.amount) for entry in entries] == [(CALL_ID, Decimal("-0.60"))]
    assert month_cost == Decimal("0.60")


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_a_call_that_ends_while_the_store_is_locked_at_the_restart_is_billed_from_its_cdr(
    router: Router, asterisk: tuple[AmiSimulator, int], store_url: str
) -> None:
    """The router comes back with its SQLite file locked by another process: it routes, and
    lists the calls left in progress only once the lock is gone. The call ends meanwhile,
    with the AMI link up: its Hangup and Cdr record, sent before the call could be adopted,
    complete it all the same."""
    simulator = asterisk[0]
    simulator.cdr_batch = False
    agi, answered = await conversation_cut_by_sigkill(router, simulator, store_url)
    locker = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        router.start()
        await until(lambda: simulator.logins == 2)
        simulator.hang_up(CALL_ID, at=answered + 20)  # Hangup and Cdr, read at once
        await asyncio.sleep(1)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    cdr = await finished(store_url)
    entries, month_cost = await books(store_url)
    assert router.stop() == 0
    agi.cancel()

    assert "unavailable at start" in router.log()
    assert (cdr.outcome, cdr.billable_seconds) == (Outcome.ANSWERED, 20)
    assert (cdr.answered_at, cdr.ended_at) == (at(answered), at(answered + 20))
    assert [(entry.ref, entry.amount) for entry in entries] == [(CALL_ID, Decimal("-0.60"))]
    assert month_cost == Decimal("0.60")


async def test_a_call_asterisk_forgot_without_a_cdr_is_closed_as_interrupted_after_the_window(
    router: Router, asterisk: tuple[AmiSimulator, int], store_url: str
) -> None:
    simulator = asterisk[0]
    agi, answered = await conversation_cut_by_sigkill(router, simulator, store_url)
    simulator.hang_up(CALL_ID, at=answered + 20)
    simulator.held_cdrs.clear()  # no Cdr record ever comes

    router.start()
    cdr = await finished(store_url)
    entries, _ = await books(store_url)
    assert router.stop() == 0
    agi.cancel()

    assert cdr.outcome is Outcome.INTERRUPTED
    assert cdr.note == (
        f"{INTERRUPTED_NOTE}; Asterisk no longer had the call and sent no Cdr record within 2s"
    )
    assert [(leg.destination, leg.dial_status) for leg in cdr.legs] == [(DESK, DIALLING)]
    assert entries == []


async def test_after_the_ami_link_is_lost_and_back_an_adopted_call_asterisk_ended_is_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two adopted calls are up; the AMI link drops, and one ends while nobody listens. Once
    the link is back, Asterisk is asked again: the call it no longer has is closed as
    interrupted after the Cdr window, saying why, instead of staying in progress for hours;
    the call still up is followed to its end and billed."""
    simulator = AmiSimulator(ACCOUNTS, timestamp_events=True, cdr_batch=False)
    port = await simulator.start()
    began = MONDAY_MORNING - timedelta(minutes=1)  # the router's clock: MONDAY_MORNING
    answered = began.timestamp() + 1
    database = tmp_path / "hotline400.db"
    async with opened_store(f"sqlite:///{database}") as store:
        for call_id in ("x.lost", "x.up"):
            start = CDR(call_id, PREPAID, CALLER, CALLER, "fixed", began)
            await store.apply([StartCall(start), AddLeg(call_id, dialling(began))])
            await answered_call(simulator, call_id, began.timestamp())
    try:
        async with running_router(
            tmp_path,
            database=str(database),
            ami_host="127.0.0.1",
            ami_port=port,
            ami_secret=SECRET,
            adopt_cdr_window=1,
        ) as router:
            await until(lambda: simulator.channel_lists == 1, timeout=10)
            simulator.drop_sessions()
            simulator.hang_up("x.lost", at=answered + 20)  # its Hangup and Cdr reach nobody
            await until(lambda: simulator.channel_lists == 2, timeout=10)
            lost = await finished_cdr(router, "x.lost", timeout=10)
            simulator.hang_up("x.up", at=answered + 30)
            up = await finished_cdr(router, "x.up", timeout=10)
    finally:
        await simulator.stop()

    assert lost.outcome is Outcome.INTERRUPTED
    assert lost.note == (
        f"{INTERRUPTED_NOTE}; the AMI link was lost; Asterisk no longer had the call when it "
        "was back and sent no Cdr record within 1s"
    )
    assert (up.outcome, up.billable_seconds) == (Outcome.ANSWERED, 30)
    assert "1 call(s) awaiting their end on AMI were gone from Asterisk" in caplog.text


PIN_LINE = "4000000006"
"""Callers enter the PIN 2468 before 13800000011 is dialled: the router answers first."""
PIN_DESK = "13800000011"


async def pin_call_dialling(
    router: Router, asterisk: AmiSimulator, store_url: str
) -> tuple[asyncio.Task[object], datetime]:
    """The router answers a call to the PIN line for its prompt, takes the PIN and dials the
    desk (DialBegin with the caller's channel Up). Returns the AGI side and the start of the
    Dial's leg as written ahead. Asterisk posts its Cdr records at once."""
    asterisk.cdr_batch = False
    router.start()
    await router.listening()
    await until(lambda: asterisk.logins == 1)
    call = SimulatedCall(
        dialled=PIN_LINE,
        caller_id=CALLER,
        uniqueid=CALL_ID,
        dtmf=("2468#",),
        destinations={PIN_DESK: Phone.answers(talk_s=3600)},
    )
    agi = asyncio.create_task(run_call("127.0.0.1", router.port, call, time_scale=1.0))
    prompted = float(int(time.time()))
    asterisk.channel_up(CALL_ID, CALLER, PIN_LINE, at=prompted)
    asterisk.answer_caller(CALL_ID, at=prompted)
    async with asyncio.timeout(PROCESS_S):
        while (cdr := await stored(store_url)) is None or [leg.dial_status for leg in cdr.legs] != [
            DIALLING
        ]:
            await asyncio.sleep(0.05)
    dial_started = cdr.legs[0].started_at
    assert dial_started >= at(prompted + 1)  # the PIN took its time: the answer was before
    asterisk.dial(CALL_ID, PIN_DESK, at=dial_started.timestamp())
    return agi, dial_started


async def closed(store_url: str) -> CDR:
    """The CDR once no longer in progress (the PIN line has no tariff: it is not priced)."""
    async with asyncio.timeout(PROCESS_S):
        while (cdr := await stored(store_url)) is None or cdr.outcome is Outcome.IN_PROGRESS:
            await asyncio.sleep(0.05)
    return cdr


async def test_a_prompted_call_answered_after_the_restart_is_billed_from_the_bridge(
    router: Router, asterisk: tuple[AmiSimulator, int], store_url: str
) -> None:
    """Killed while the desk rang: the new router never saw the DialBegin saying the caller
    was answered for the PIN prompt, and Asterisk's Dial record counts from that answer. The
    talk is the bridge's, as the events after the restart tell it."""
    simulator = asterisk[0]
    agi, dial_started = await pin_call_dialling(router, simulator, store_url)
    router.kill()

    router.start()
    await until(lambda: simulator.channel_lists == 1)
    answered = dial_started.timestamp() + 5
    simulator.answer(CALL_ID, at=answered)
    simulator.hang_up(CALL_ID, at=answered + 30)
    cdr = await closed(store_url)
    assert router.stop() == 0
    agi.cancel()

    assert (cdr.outcome, cdr.billable_seconds) == (Outcome.ANSWERED, 30)
    assert (cdr.answered_at, cdr.ended_at) == (at(answered), at(answered + 30))
    [leg] = cdr.legs
    assert (leg.dial_status, leg.ring_seconds, leg.talk_seconds) == ("ANSWER", 5, 30)
    assert cdr.note == "completed from AMI (events)"


async def test_a_prompted_call_in_its_talk_at_the_crash_is_billed_from_the_answer(
    router: Router, asterisk: tuple[AmiSimulator, int], store_url: str
) -> None:
    """Killed during the talk: only the BridgeLeave, the Hangup and the Dial record, counted
    from the prompt's answer, come after the restart. The Dial's answer hook left the
    destination's answer on the caller's channel (SHARED(HOTLINE_ANSWERED)): the new router
    reads it with Getvar as it adopts the call, and bills the talk from there, neither the
    PIN nor the 5 s ring."""
    simulator = asterisk[0]
    agi, dial_started = await pin_call_dialling(router, simulator, store_url)
    answered = float(int(dial_started.timestamp())) + 5.5  # 5 s after the Dial or a bit more
    simulator.answer(CALL_ID, at=answered)
    router.kill()

    router.start()
    await until(lambda: simulator.variables_read == 1)  # the channel listed, its stamp read
    ended = answered + 30
    simulator.hang_up(CALL_ID, at=ended)
    cdr = await closed(store_url)
    assert router.stop() == 0
    agi.cancel()

    assert (cdr.outcome, cdr.billable_seconds) == (Outcome.ANSWERED, 30)
    assert (cdr.answered_at, cdr.ended_at) == (at(answered), at(ended))
    [leg] = cdr.legs
    ring = int(answered - dial_started.timestamp())  # 4 or 5: the leg's own, never billed
    assert (leg.dial_status, leg.ring_seconds, leg.talk_seconds) == ("ANSWER", ring, 30)
    assert cdr.note == "completed from AMI (the destination's answer as the Dial's hook stamped it)"


async def test_a_prompted_call_without_the_answer_hook_is_billed_from_its_dial_at_worst(
    router: Router, asterisk: tuple[AmiSimulator, int], store_url: str
) -> None:
    """A dialplan without the answer hook leaves nothing on the channel to say when the
    destination answered: the prompt is still never talk, the call is billed from its Dial's
    start (its ring included, the note says)."""
    simulator = asterisk[0]
    simulator.answer_hook = False
    agi, dial_started = await pin_call_dialling(router, simulator, store_url)
    answered = dial_started.timestamp() + 5
    simulator.answer(CALL_ID, at=answered)
    router.kill()

    router.start()
    await until(lambda: simulator.channel_lists == 1)
    ended = float(int(answered)) + 30
    simulator.hang_up(CALL_ID, at=ended)
    cdr = await closed(store_url)
    assert router.stop() == 0
    agi.cancel()

    talk = int(ended - dial_started.timestamp())  # 34 or 35: the 5 s ring, never the PIN
    assert (cdr.outcome, cdr.billable_seconds) == (Outcome.ANSWERED, talk)
    assert (cdr.answered_at, cdr.ended_at) == (dial_started, at(ended))
    assert cdr.note == "completed from AMI (CDR, counted from the Dial's start, its ring included)"


async def test_without_an_ami_link_calls_left_in_progress_are_closed_and_the_log_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "hotline400.db"
    async with opened_store(f"sqlite:///{database}") as store:
        start = MONDAY_MORNING - timedelta(minutes=1)  # the router's clock: MONDAY_MORNING
        await store.apply([StartCall(CDR("x.1", PREPAID, CALLER, CALLER, "fixed", start))])
    async with running_router(tmp_path, database=str(database)) as router:
        await until(lambda: "without asking Asterisk" in caplog.text, timeout=10)
        cdr = await router.store.get_cdr("x.1")
    assert cdr is not None and cdr.outcome is Outcome.INTERRUPTED
    assert (
        "closed 1 call(s) left in progress by a crash as interrupted without asking Asterisk: "
        "no AMI link (ami_host is not set in router.yaml)"
    ) in caplog.text


async def test_an_ami_account_that_may_not_list_channels_closes_them_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    read_only = {"hotline400": dataclasses.replace(ACCOUNTS["hotline400"], write=frozenset())}
    simulator = AmiSimulator(read_only)
    port = await simulator.start()
    database = tmp_path / "hotline400.db"
    async with opened_store(f"sqlite:///{database}") as store:
        start = MONDAY_MORNING - timedelta(minutes=1)
        await store.apply([StartCall(CDR("x.2", PREPAID, CALLER, CALLER, "fixed", start))])
    try:
        async with running_router(
            tmp_path,
            database=str(database),
            ami_host="127.0.0.1",
            ami_port=port,
            ami_secret=SECRET,
        ) as router:
            await until(lambda: "Asterisk not asked" in caplog.text, timeout=10)
            cdr = await finished_cdr(router, "x.2", timeout=10)
    finally:
        await simulator.stop()
    assert cdr.outcome is Outcome.INTERRUPTED
    assert cdr.note == (
        f"{INTERRUPTED_NOTE}; Asterisk not asked: CoreShowChannels refused: Permission denied"
    )


def dialling(started: datetime) -> Leg:
    """The leg written ahead as the router's Dial to the desk starts."""
    return Leg(1, DESK, DIALLING, started, 0, 0, ForwardReason.PRIMARY)


async def answered_call(simulator: AmiSimulator, call_id: str, at_: float) -> None:
    """A call started by a router and answered by the desk, as Asterisk keeps it."""
    simulator.channel_up(call_id, CALLER, PREPAID, at=at_)
    simulator.dial(call_id, DESK, at=at_)
    simulator.answer(call_id, at=at_ + 1)


async def test_two_routers_each_adopt_only_their_own_calls_and_a_lost_ones_are_handed_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """r1 and r2 share PostgreSQL and both crash mid-call. r1 comes back: it follows its
    own call to its end and leaves r2's alone, even when r2's call ends under its eyes.
    r2 never comes back: r3, told `adopt_calls_of: [r2]`, completes r2's call from the Cdr
    record Asterisk posts late."""
    simulator = AmiSimulator(ACCOUNTS, timestamp_events=True, cdr_batch=False)
    port = await simulator.start()
    began = MONDAY_MORNING - timedelta(minutes=1)  # the routers' clock: MONDAY_MORNING
    answered = began.timestamp() + 1
    ami = {"ami_host": "127.0.0.1", "ami_port": port, "ami_secret": SECRET}
    try:
        async with scratch_schema() as url:
            for router_name, call_id in (("r1", "r1.call"), ("r2", "r2.call")):
                crashed = build_store(url, zone=SHANGHAI, router=router_name)
                await crashed.open()
                start = CDR(call_id, PREPAID, CALLER, CALLER, "fixed", began)
                await crashed.apply([StartCall(start), AddLeg(call_id, dialling(began))])
                await crashed.close()
                await answered_call(simulator, call_id, began.timestamp())

            async with running_router(
                tmp_path / "r1", store=url, router_name="r1", adopt_cdr_window=2, **ami
            ) as r1:
                await until(lambda: simulator.channel_lists == 1, timeout=10)
                simulator.hang_up("r1.call", at=answered + 30)
                own = await finished_cdr(r1, "r1.call", timeout=10)
                simulator.cdr_batch = True  # r2's Cdr record is held, posted after r1 stops
                simulator.hang_up("r2.call", at=answered + 20)
                await asyncio.sleep(0.5)
                untouched = await r1.store.get_cdr("r2.call")
            r1_log = caplog.text
            caplog.clear()

            async with running_router(
                tmp_path / "r3",
                store=url,
                router_name="r3",
                adopt_calls_of=["r2"],
                adopt_cdr_window=5,
                **ami,
            ) as r3:
                await until(lambda: simulator.channel_lists == 2, timeout=10)
                assert simulator.flush_cdrs() == 1
                handed_over = await finished_cdr(r3, "r2.call", timeout=10)
            r3_log = caplog.text
    finally:
        await simulator.stop()

    assert (own.outcome, own.billable_seconds, own.answered_at) == (
        Outcome.ANSWERED,
        30,
        at(answered),
    )
    assert untouched is not None and untouched.outcome is Outcome.IN_PROGRESS
    assert "1 call(s) left in progress by a crash: 1 still up in Asterisk" in r1_log
    assert "1 call(s) left in progress by a crash: 0 still up in Asterisk" in r3_log
    assert (handed_over.outcome, handed_over.billable_seconds) == (Outcome.ANSWERED, 20)
    assert [leg.dial_status for leg in handed_over.legs] == ["ANSWER"]
    assert handed_over.callee_share == Decimal("0.60")
