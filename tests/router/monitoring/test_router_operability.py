"""Watching the router: /metrics over HTTP, the AMI link, and destinations at their limit."""

import asyncio
import logging
import socket
import struct
import urllib.request
from pathlib import Path

import pytest

from router.daemon import Daemon
from router.simulation.asterisk_agi import SimulatedCall, environment
from router.simulation.asterisk_ami import (
    MANAGER_CONF,
    RECORDINGS,
    AmiSimulator,
    accounts_from_manager_conf,
    recorded_events,
)
from tests.conftest import call, running_router

ACCOUNTS = accounts_from_manager_conf(MANAGER_CONF.read_text(encoding="utf-8"))


async def scrape(router: Daemon) -> str:
    url = f"http://127.0.0.1:{router.metrics_port}/metrics"

    def fetch() -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()

    return await asyncio.to_thread(fetch)


def sample(text: str, name: str) -> float:
    """The value of one sample line, e.g. 'hotline400_calls_total{number="...",outcome="..."}'."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exposed")


async def eventually(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_metrics_count_calls_forwards_rejections_and_decisions(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        await call(router, dialled="4000000001", uniqueid="x.1")
        await call(router, dialled="4000000001", uniqueid="x.2")
        await call(router, dialled="4000000002", uniqueid="x.3")  # busy, forwarded
        await call(router, dialled="4000000005", uniqueid="x.4", caller_id="01088881234")
        await call(router, dialled="4009999999", uniqueid="x.5")
        text = await scrape(router)
    assert sample(text, 'hotline400_calls_total{number="4000000001",outcome="answered"}') == 2
    assert sample(text, 'hotline400_calls_total{number="4000000002",outcome="answered"}') == 1
    assert sample(text, 'hotline400_calls_total{number="other",outcome="unknown_number"}') == 1
    assert sample(text, 'hotline400_forwards_total{reason="busy"}') == 1
    assert sample(text, 'hotline400_rejections_total{reason="blocked"}') == 1
    assert sample(text, 'hotline400_rejections_total{reason="unknown_number"}') == 1
    assert sample(text, "hotline400_decision_seconds_count") == 4
    assert sample(text, 'hotline400_decision_seconds_bucket{le="+Inf"}') == 4
    assert sample(text, "hotline400_agi_session_seconds_count") == 5
    assert sample(text, "hotline400_plans_loaded") == len(router.plans.numbers())
    assert "053188889999" not in text  # never a caller number in a label


def tcp_check(host: str, port: int, sent: bytes = b"", *, reset: bool = False) -> None:
    """What a load balancer's TCP check does: connect, close (HAProxy with a reset).
    With `sent`, a peer that wrote those bytes and went away."""
    with socket.create_connection((host, port), timeout=2) as probe:
        if reset:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if sent:
            probe.sendall(sent)


async def test_a_tcp_health_check_is_a_probe_not_a_broken_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A load balancer's or monitor's TCP check (connect, close without a byte) is counted
    as a probe and logged at debug only: it is not a broken session, so the alert on
    broken sessions stays quiet under a normal deployment; a peer that sent part of a
    header and went away is still a broken session."""
    caplog.set_level(logging.DEBUG, logger="hotline400.server")
    env = environment(SimulatedCall(), "127.0.0.1", 4573)
    partial = "".join(f"{key}: {value}\n" for key, value in list(env.items())[:3]).encode()
    async with running_router(tmp_path) as router:
        caplog.clear()  # what starting logged
        for reset in (False, False, True):
            await asyncio.to_thread(tcp_check, router.host, router.port, reset=reset)
        await asyncio.to_thread(tcp_check, router.host, router.port, partial)
        await eventually(lambda: router.server.broken_sessions + router.server.probes == 4)
        text = await scrape(router)
    assert sample(text, "hotline400_agi_probes_total") == 3
    assert sample(text, "hotline400_agi_broken_sessions_total") == 1
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "closed a FastAGI session before any call: "
        "connection closed after 3 header lines, before the blank line"
    ]
    assert any("probe" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)


async def test_calls_keep_routing_while_ami_is_down_and_the_link_comes_back(
    tmp_path: Path,
) -> None:
    simulator = AmiSimulator(ACCOUNTS)
    ami_port = await simulator.start()
    overrides = {"ami_host": "127.0.0.1", "ami_port": ami_port, "ami_reconnect_max": 1.0}
    overrides["ami_secret"] = ACCOUNTS["hotline400"].secret
    try:
        async with running_router(tmp_path, **overrides) as router:
            assert router.ami is not None
            await eventually(lambda: router.ami.connected)
            assert "hotline400_ami_connected 1.0" in await scrape(router)
            await simulator.stop()
            await eventually(lambda: not router.ami.connected)
            while_down = await call(router, dialled="4000000001", uniqueid="ami.1")
            assert while_down.variables["HOTLINE_STATUS"] == "answered"
            assert "hotline400_ami_connected 0.0" in await scrape(router)
            await simulator.start(port=ami_port)
            await eventually(lambda: router.ami.connected)
            assert router.ami.stats().connects == 2
    finally:
        await simulator.stop()


async def test_a_destination_at_its_call_limit_is_busy_without_ringing(tmp_path: Path) -> None:
    simulator = AmiSimulator(ACCOUNTS)
    ami_port = await simulator.start()
    overrides = {"ami_host": "127.0.0.1", "ami_port": ami_port}
    overrides["ami_secret"] = ACCOUNTS["hotline400"].secret
    try:
        async with running_router(tmp_path, **overrides) as router:
            await eventually(lambda: router.ami is not None and router.ami.connected)
            # the recorded answered call to 13800000011, up to the moment it is bridged
            events = recorded_events(RECORDINGS / "answer.ami")
            ringing = [event for event in events if b"Event: Hangup" not in event]
            await simulator.replay(ringing)
            await eventually(lambda: router.live_calls.count("13800000011") == 1)
            result = await call(router, dialled="4000000010", uniqueid="lim.1")
    finally:
        await simulator.stop()
    dialled = [line for line in result.commands if line.startswith("EXEC Dial")]
    assert dialled == ['EXEC Dial "Local/13800000012@phones,20"']
    assert result.variables["HOTLINE_DEST"] == "13800000012"
