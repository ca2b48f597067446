"""On uvloop, calls are accepted by uvloop's own server (in C, for less CPU a call) while the
router is far from its limit of connections, and one by one by the listener near it, so that
no call is ever accepted beyond the descriptors and closed without a word.

uvloop's server takes everything queued in one pass, so it serves only while a whole listen
queue more would still fit (`burst_room`); the hand-over to the listener and back loses no
connection: the queue stays on the listening socket throughout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from router.fastagi.server import FastAGIServer
from router.simulation.asterisk_agi import (
    HostileOutcome,
    SimulatedCall,
    run_call,
    send_header_without_end,
)
from tests.conftest import eventually, running_router
from tests.router.fastagi.test_server_admission import listener

uvloop = pytest.importorskip("uvloop")  # an optional extra, in the test extra too

HEADER_TIMEOUT_S = 4.5
"""How long a held connection (a header never finished) keeps its descriptor: long enough
that the first of 40 connections opened one by one is still held when the last is, on a
machine the suite's other workers share."""


def on_uvloop(test: Callable[[Path], Awaitable[None]], tmp_path: Path) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(test(tmp_path))


async def answered(port: int, n: int) -> None:
    result = await run_call(
        "127.0.0.1", port, SimulatedCall(dialled="4000000001", uniqueid=f"uv.{n}")
    )
    assert result.error is None
    assert result.variables["HOTLINE_STATUS"] == "answered"


def held(port: int) -> asyncio.Task[HostileOutcome]:
    """A connection that holds its descriptor until the header timeout closes it."""
    return asyncio.ensure_future(
        send_header_without_end("127.0.0.1", port, close=False, wait_s=2 * HEADER_TIMEOUT_S + 3)
    )


async def held_one_by_one(
    server: FastAGIServer, port: int, count: int
) -> list[asyncio.Task[HostileOutcome]]:
    """`count` held connections, each opened once the one before it is accepted (so that no
    pass of uvloop's server takes more than one: the burst room covers a whole queue in
    production, not in this test's small one)."""
    holding = []
    for _ in range(count):
        opened = server.open_connections
        holding.append(held(port))
        await eventually(lambda opened=opened: server.open_connections == opened + 1)
    return holding


def closed_by_the_header_timeout(outcome: HostileOutcome) -> bool:
    """Served and closed by the router after the header timeout, not accepted and closed."""
    return outcome.server_closed and outcome.elapsed_s >= HEADER_TIMEOUT_S - 0.1


def test_far_from_the_limit_uvloops_own_server_accepts_the_calls(tmp_path: Path) -> None:
    async def scenario(tmp_path: Path) -> None:
        async with (
            running_router(tmp_path) as daemon,
            listener(daemon, header_timeout=5, max_connections=10_000) as (server, port),
        ):
            assert server.burst_room >= 128  # a kernel's listen queue and some
            assert server.accepting_with == "uvloop's server"
            await asyncio.gather(*(answered(port, n) for n in range(20)))
            assert server.accepting_with == "uvloop's server"
            await eventually(lambda: server.open_connections == 0)

    on_uvloop(scenario, tmp_path)


def test_near_the_limit_the_listener_takes_over_and_hands_back_losing_no_call(
    tmp_path: Path,
) -> None:
    """Limit 40, burst room 10: uvloop's server up to 30 open, then the listener, which
    stops at 40; calls beyond wait in the queue; once the held ones end, uvloop again."""

    async def scenario(tmp_path: Path) -> None:
        async with (
            running_router(tmp_path) as daemon,
            listener(
                daemon, header_timeout=HEADER_TIMEOUT_S, max_connections=40, burst_room=10
            ) as (server, port),
        ):
            holding = await held_one_by_one(server, port, 25)
            assert server.accepting_with == "uvloop's server"
            holding += await held_one_by_one(server, port, 15)
            assert server.accepting_with == "nothing"  # at the limit
            holding += [held(port) for _ in range(5)]  # 45: five past the limit
            await asyncio.sleep(0.2)
            assert server.open_connections == 40
            assert server.accepting_with == "nothing"
            assert server.admission_pauses == 1
            waiting = asyncio.ensure_future(answered(port, 0))  # queued behind the five
            outcomes = await asyncio.gather(*holding)
            await waiting
            await eventually(lambda: server.open_connections == 0)
            assert server.accepting_with == "uvloop's server"
            await answered(port, 1)
        assert all(closed_by_the_header_timeout(outcome) for outcome in outcomes)
        assert server.broken_sessions == 45
        assert server.probes == 0

    on_uvloop(scenario, tmp_path)


def test_a_burst_past_the_mark_is_handed_over_after_uvloops_pass(tmp_path: Path) -> None:
    """uvloop's server counts each connection as it accepts it and hands the queue over
    once the mark is passed, after its pass: a burst that crosses the mark is all served."""

    async def scenario(tmp_path: Path) -> None:
        async with (
            running_router(tmp_path) as daemon,
            listener(
                daemon, header_timeout=HEADER_TIMEOUT_S, max_connections=100, burst_room=60
            ) as (
                server,
                port,
            ),
        ):
            holding = [held(port) for _ in range(60)]  # the mark at 40: all 60 fit in 100
            await eventually(lambda: server.open_connections == 60)
            assert server.accepting_with == "the listener"
            outcomes = await asyncio.gather(*holding)
            await answered(port, 0)
        assert all(closed_by_the_header_timeout(outcome) for outcome in outcomes)
        assert server.admission_pauses == 0

    on_uvloop(scenario, tmp_path)


def test_a_connection_reset_at_once_counts_as_a_probe_on_uvloop(tmp_path: Path) -> None:
    async def scenario(tmp_path: Path) -> None:
        async with (
            running_router(tmp_path) as daemon,
            listener(daemon, header_timeout=5, max_connections=10_000) as (server, port),
        ):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await eventually(lambda: server.probes == 1)
            await answered(port, 0)
        assert server.broken_sessions == 0 and server.refused_peers == 0

    on_uvloop(scenario, tmp_path)


def test_asyncios_loop_is_served_by_the_listener(tmp_path: Path) -> None:
    """asyncio's own server accepts in Python with a task a connection, as the listener
    does, and calls the protocol factory too late to be counted: the listener serves."""

    async def scenario(tmp_path: Path) -> None:
        async with (
            running_router(tmp_path) as daemon,
            listener(daemon, header_timeout=5, max_connections=10_000) as (server, port),
        ):
            assert server.accepting_with == "the listener"
            await answered(port, 0)

    with asyncio.Runner() as runner:
        runner.run(scenario(tmp_path))
