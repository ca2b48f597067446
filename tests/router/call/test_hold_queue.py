"""VIP callers first: while every destination of the chosen route is at its max_calls, the
caller is held unanswered hearing ringing (`EXEC Ringing`, then `EXEC Wait` slices, as
agi-vas/hold_ringing_then_dial records it), VIPs ahead of the others; after max_wait the
call takes the route's busy forwarding or hears the queue's announcement. End to end: the
daemon, the simulator over FastAGI, and the AMI simulator replaying the recorded answered
call to 13800000011 up to its bridge (the desk busy) and then its hang-up (the desk free).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from dialplan.errors import ConfigError
from router.daemon import Daemon
from router.simulation.asterisk_agi import CallerHangup, Outcome
from router.simulation.asterisk_ami import (
    MANAGER_CONF,
    RECORDINGS,
    AmiSimulator,
    accounts_from_manager_conf,
    recorded_events,
)
from tests.conftest import (
    E2E_CONFIG,
    HttpReceiver,
    call,
    eventually,
    finished_cdr,
    plan_from,
    running_router,
)
from tests.router.call.test_router_calls import prompted_dial_lines

ACCOUNTS = accounts_from_manager_conf(MANAGER_CONF.read_text(encoding="utf-8"))
QUEUED = "4000000040"
DESK = "13800000011"  # takes one call at a time
VIP = "13901659876"
ANSWERED_CALL = recorded_events(RECORDINGS / "answer.ami")
DESK_BUSY = [event for event in ANSWERED_CALL if b"Event: Hangup" not in event]
DESK_FREE = [event for event in ANSWERED_CALL if b"Event: Hangup" in event]


def queue_config(tmp_path: Path, queue: str | None) -> Path:
    config = tmp_path / "source"
    shutil.copytree(E2E_CONFIG, config)
    queue_line = "" if queue is None else f"queue: {queue}\n"
    (config / "plans" / f"{QUEUED}.yaml").write_text(
        f"""number: "{QUEUED}"
name: A desk that takes one call at a time, and a queue
forwarding: {{on_busy: ["13800000012"]}}
{queue_line}default: {{target: {{number: "{DESK}", max_calls: 1}}}}
""",
        encoding="utf-8",
    )
    return config


@asynccontextmanager
async def linked_router(
    tmp_path: Path, queue: str | None, **settings: object
) -> AsyncIterator[tuple[Daemon, AmiSimulator]]:
    """A router with the AMI link up and the desk free; `settings` override router.yaml's."""
    simulator = AmiSimulator(ACCOUNTS)
    ami_port = await simulator.start()
    overrides: dict[str, object] = {**settings, "ami_host": "127.0.0.1", "ami_port": ami_port}
    overrides["ami_secret"] = ACCOUNTS["hotline400"].secret
    try:
        config = queue_config(tmp_path, queue)
        async with running_router(tmp_path, config, **overrides) as router:
            await eventually(lambda: router.ami is not None and router.ami.connected)
            yield router, simulator
    finally:
        await simulator.stop()


@asynccontextmanager
async def busy_desk(
    tmp_path: Path, queue: str, **settings: object
) -> AsyncIterator[tuple[Daemon, AmiSimulator]]:
    """A router with the AMI link up and the desk in a call."""
    async with linked_router(tmp_path, queue, **settings) as (router, simulator):
        await simulator.replay(DESK_BUSY)
        await eventually(lambda: router.live_calls.count(DESK) == 1)
        yield router, simulator


def held(router: Daemon) -> int:
    return sum(router.services.holding.lengths().values())


def metrics_text(router: Daemon) -> str:
    return generate_latest(router.metrics.registry).decode()


async def test_out_of_time_the_held_call_takes_the_busy_forwarding(tmp_path: Path) -> None:
    async with busy_desk(tmp_path, "{max_wait: 5}") as (router, _):
        result = await call(router, dialled=QUEUED, uniqueid="q.1")
        cdr = await finished_cdr(router, "q.1")
        text = metrics_text(router)
    assert result.commands[:7] == [
        "EXEC Ringing",
        *['EXEC Wait "1"'] * 5,
        ('EXEC Dial "Local/13800000012@phones,20"'),
    ]
    assert not result.answered or result.dials[0].status == "ANSWER"  # answered by the forward
    assert [(leg.destination, leg.dial_status) for leg in cdr.legs] == [
        (DESK, "BUSY"),
        ("13800000012", "ANSWER"),
    ]
    assert cdr.note == "held 5 s in the queue, then busy forwarding"
    assert f'hotline400_hold_wait_seconds_count{{number="{QUEUED}",result="timeout"}} 1.0' in text


async def test_out_of_time_with_an_announcement_the_caller_hears_it_unanswered(
    tmp_path: Path,
) -> None:
    async with busy_desk(tmp_path, "{max_wait: 5, announcement: desk/all-busy}") as (router, _):
        result = await call(router, dialled=QUEUED, uniqueid="q.2")
        cdr = await finished_cdr(router, "q.2")
    assert result.commands[6:] == [
        "EXEC Progress",
        'EXEC Playback "desk/all-busy,noanswer"',
        'EXEC MSet "HOTLINE_STATUS=busy,HOTLINE_DEST=,HOTLINE_RULE=default"',
        'EXEC Hangup "17"',
    ]
    assert not result.answered and result.early_media
    assert cdr.outcome == "busy" and cdr.legs == ()
    assert cdr.note == "held 5 s in the queue, no destination came free"


async def test_the_queue_announcement_is_heard_in_the_plans_language(tmp_path: Path) -> None:
    """As a refusal's announcement is: the channel's prompts switch to the plan's language
    first (fact 19), or the caller hears the English recording, or none at all."""
    queue_and_language = "{max_wait: 5, announcement: desk/all-busy}\nlanguage: zh"
    async with busy_desk(tmp_path, queue_and_language) as (router, _):
        result = await call(router, dialled=QUEUED, uniqueid="q.zh")
    assert result.commands[6:9] == [
        'EXEC Set "CHANNEL(language)=zh"',
        "EXEC Progress",
        'EXEC Playback "desk/all-busy,noanswer"',
    ]


async def test_a_caller_hanging_up_while_held_leaves_the_queue_at_once(tmp_path: Path) -> None:
    async with busy_desk(tmp_path, "{max_wait: 60}") as (router, _):
        gives_up = CallerHangup.while_waiting(3, after_s=0.4)
        waiting = asyncio.create_task(
            call(router, time_scale=0.05, dialled=QUEUED, uniqueid="q.3", hangup=gives_up)
        )
        await eventually(lambda: held(router) == 1)
        assert (
            f'hotline400_hold_queue_length{{number="{QUEUED}",rule="default"}} 1.0'
            in metrics_text(router)
        )
        result = await waiting
        assert held(router) == 0
        cdr = await finished_cdr(router, "q.3")
        text = metrics_text(router)
    assert result.commands == [
        "EXEC Ringing",
        'EXEC Wait "1"',
        'EXEC Wait "1"',
        'EXEC Wait "1"',  # answered -1: the caller is gone, nothing more is tried
        'EXEC MSet "HOTLINE_STATUS=noanswer,HOTLINE_DEST=,HOTLINE_RULE=default"',
    ]
    assert result.hung_up_by == "caller"
    assert cdr.outcome == "noanswer" and cdr.legs == () and cdr.ended_at is not None
    assert cdr.note == "caller hung up after 3 s held in the queue"
    assert f'hotline400_hold_wait_seconds_count{{number="{QUEUED}",result="gave_up"}} 1.0' in text


async def test_a_caller_served_from_the_queue_who_hangs_up_before_the_dial_gave_up_held(
    tmp_path: Path,
) -> None:
    """A place came free during the caller's Wait, and the caller hung up as it ended: the
    HANGUP came right after the Wait's reply, before the Dial. Nothing is dialled to the
    dead channel: the call ends as a caller who gave up while held does, noanswer with no
    leg, in the CDR, on the channel and in the metrics."""
    async with busy_desk(tmp_path, "{max_wait: 60}") as (router, ami):
        gone = CallerHangup.while_idle(after_command=2)  # just after the first Wait's reply
        served = asyncio.create_task(
            call(router, time_scale=3.0, dialled=QUEUED, uniqueid="q.gone", hangup=gone)
        )
        await eventually(lambda: held(router) == 1)
        await ami.replay(DESK_FREE)  # a place, long before the 3 s Wait ends
        await eventually(lambda: router.live_calls.count(DESK) == 0)
        result = await served
        cdr = await finished_cdr(router, "q.gone")
        text = metrics_text(router)
    assert result.commands == [
        "EXEC Ringing",
        'EXEC Wait "1"',
        'EXEC MSet "HOTLINE_STATUS=noanswer,HOTLINE_DEST=,HOTLINE_RULE=default"',
    ]
    assert result.dials == [] and result.hung_up_by == "caller"
    assert cdr.outcome == "noanswer" and cdr.legs == ()
    assert cdr.note == "caller hung up after 1 s held in the queue"
    assert f'hotline400_calls_total{{number="{QUEUED}",outcome="noanswer"}} 1.0' in text
    assert f'hotline400_hold_wait_seconds_count{{number="{QUEUED}",result="gave_up"}} 1.0' in text
    assert 'result="served"' not in text
    assert router.services.holding.in_use(DESK) == 0  # the place granted is free again


async def test_a_caller_who_gave_up_while_held_is_told_to_the_subscriber_as_a_missed_call(
    tmp_path: Path,
) -> None:
    """Held, the caller heard ringing while every line was busy: the subscriber's lines
    were asked to take the call, so its end unanswered is a missed call, texted as one."""
    mobile = "13905310001"
    queue_and_texts = f'{{max_wait: 60}}\nnotifications: {{sms_to: ["{mobile}"]}}'
    async with (
        HttpReceiver("ok") as gateway,
        busy_desk(tmp_path, queue_and_texts, sms_gateway=gateway.url) as (router, _),
    ):
        gives_up = CallerHangup.while_waiting(2, after_s=0.4)
        await call(router, time_scale=0.05, dialled=QUEUED, uniqueid="q.sms", hangup=gives_up)
        cdr = await finished_cdr(router, "q.sms")
        await eventually(lambda: len(gateway.received) == 1)
    assert cdr.outcome == "noanswer" and cdr.legs == ()
    [message] = [json.loads(request.body) for request in gateway.received]
    assert message["to"] == mobile and message["text"].startswith("未接来电：053188889999")


async def test_a_vip_held_after_another_caller_is_served_first(tmp_path: Path) -> None:
    queue = f'{{max_wait: 60, vip: {{numbers: ["{VIP}"]}}}}'
    async with busy_desk(tmp_path, queue) as (router, ami):
        finished: dict[str, float] = {}

        async def caller(caller_id: str, uniqueid: str):
            result = await call(
                router, time_scale=0.05, dialled=QUEUED, uniqueid=uniqueid, caller_id=caller_id
            )
            finished[uniqueid] = time.monotonic()
            return result

        first = asyncio.create_task(caller("01088881234", "regular"))
        await eventually(lambda: held(router) == 1)
        vip = asyncio.create_task(caller(VIP, "vip"))
        await eventually(lambda: held(router) == 2)
        await ami.replay(DESK_FREE)  # the desk's call ends: one place
        regular_result, vip_result = await asyncio.gather(first, vip)
    assert finished["vip"] < finished["regular"]
    for result in (vip_result, regular_result):
        assert result.variables["HOTLINE_STATUS"] == "answered"
        assert [dial.argument for dial in result.dials] == [f"Local/{DESK}@phones,20"]
        assert result.commands[0] == "EXEC Ringing" and "ANSWER" not in result.commands


async def test_with_a_place_free_and_nobody_held_the_call_is_dialled_at_once(
    tmp_path: Path,
) -> None:
    async with busy_desk(tmp_path, "{max_wait: 5}") as (router, ami):
        await ami.replay(DESK_FREE)
        await eventually(lambda: router.live_calls.count(DESK) == 0)
        result = await call(router, dialled=QUEUED, uniqueid="q.5")
    assert result.commands[0] == f'EXEC Dial "Local/{DESK}@phones,20"'


async def test_a_dial_holds_its_place_from_the_moment_it_is_sent(tmp_path: Path) -> None:
    """AMI shows a Dial some time after it is sent (its events are read in batches; here
    it never shows it): a second call meanwhile finds the one-call desk taken and is
    forwarded at once, and the place is free again when the first call's Dial is over."""
    async with linked_router(tmp_path, None) as (router, _):
        first = asyncio.create_task(
            call(
                router,
                time_scale=0.05,
                dialled=QUEUED,
                uniqueid="c.1",
                destinations={DESK: Outcome.answers(talk_s=20, ring_s=2)},
            )
        )
        await eventually(lambda: router.services.holding.in_use(DESK) == 1)
        second = await call(router, dialled=QUEUED, uniqueid="c.2")
        answered = await first
        free_after = router.services.holding.in_use(DESK)
    assert [dial.argument for dial in answered.dials] == [f"Local/{DESK}@phones,20"]
    assert [dial.argument for dial in second.dials] == ["Local/13800000012@phones,20"]
    assert second.variables["HOTLINE_STATUS"] == "answered"
    assert free_after == 0


def test_a_queue_needs_a_destination_with_max_calls_and_a_valid_vip_list() -> None:
    with pytest.raises(ConfigError, match="no destination of the plan has max_calls"):
        plan_from('queue: {max_wait: 30}\ndefault: {target: "13800000011"}')
    with pytest.raises(ConfigError, match="is not a province of China"):
        plan_from(
            "queue: {vip: {provinces: [Atlantis]}}\n"
            'default: {target: {number: "13800000011", max_calls: 2}}'
        )
    with pytest.raises(ConfigError, match="max_wait"):
        plan_from(
            'queue: {max_wait: 3600}\ndefault: {target: {number: "13800000011", max_calls: 2}}'
        )


MENU_QUEUED = "4000000041"
SUPPORT = "13800000012"  # takes one call at a time too, free all along


async def test_a_caller_for_a_free_desk_never_waits_behind_callers_held_for_a_busy_one(
    tmp_path: Path,
) -> None:
    """A queue is per route: a menu's options are routes of their own, though one rule led
    to the menu. A caller whose key chose the free support desk is dialled at once while
    another is held for the busy sales desk."""
    config = queue_config(tmp_path, "{max_wait: 60}")
    (config / "plans" / f"{MENU_QUEUED}.yaml").write_text(
        f"""number: "{MENU_QUEUED}"
name: Sales and support desks behind a menu, one call at a time each
queue: {{max_wait: 60}}
menus:
  main:
    prompt: acme/main-menu
    options:
      1: {{target: {{number: "{DESK}", max_calls: 1}}}}
      2: {{target: {{number: "{SUPPORT}", max_calls: 1}}}}
    default: {{target: {{number: "{DESK}", max_calls: 1}}}}
default: {{menu: main}}
""",
        encoding="utf-8",
    )
    simulator = AmiSimulator(ACCOUNTS)
    overrides = {"ami_host": "127.0.0.1", "ami_port": await simulator.start()}
    overrides["ami_secret"] = ACCOUNTS["hotline400"].secret
    try:
        async with running_router(tmp_path, config, **overrides) as router:
            await eventually(lambda: router.ami is not None and router.ami.connected)
            await simulator.replay(DESK_BUSY)
            await eventually(lambda: router.live_calls.count(DESK) == 1)
            sales = asyncio.create_task(
                call(router, time_scale=0.05, dialled=MENU_QUEUED, uniqueid="m.1", dtmf=("1",))
            )
            await eventually(lambda: held(router) == 1)
            started = time.monotonic()
            support = await call(router, dialled=MENU_QUEUED, uniqueid="m.2", dtmf=("2",))
            waited = time.monotonic() - started
            await simulator.replay(DESK_FREE)
            await sales
    finally:
        await simulator.stop()
    assert support.commands[:4] == [
        "ANSWER",
        "GET DATA acme/main-menu 5000 1",
        *prompted_dial_lines(SUPPORT, support.env["agi_channel"]),
    ]
    assert support.variables["HOTLINE_STATUS"] == "answered" and waited < 1.0
