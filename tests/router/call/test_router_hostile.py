"""Broken and hostile FastAGI sessions are closed on their own; every other call goes on.

Each test keeps a real call ringing on the daemon while the bad client does its worst, then
checks that call completed normally with its CDR, and that the daemon still takes new calls.
"""

import asyncio
from pathlib import Path

import pytest

from router.simulation.asterisk_agi import (
    HostileOutcome,
    SimulatedCall,
    connect_and_close,
    environment,
    send_binary_junk,
    send_header_without_end,
    send_oversized_header,
    send_raw,
)
from router.storage.cdr import Outcome
from tests.conftest import SimulatedClock, call, finished_cdr, running_router

SPEEDUP = 50.0  # three Dials ringing 20 s each take 1.2 s


async def with_a_call_in_flight(router, hostile) -> None:
    """Run `hostile` while a no-answer call rings; the call must end as if alone."""
    ringing = asyncio.create_task(
        call(router, dialled="4000000003", uniqueid="in.flight", time_scale=1 / SPEEDUP)
    )
    await asyncio.sleep(0.1)
    await hostile()
    result = await ringing
    assert result.error is None
    assert result.variables["HOTLINE_STATUS"] == "noanswer"
    cdr = await finished_cdr(router, "in.flight")
    assert [leg.dial_status for leg in cdr.legs] == ["NOANSWER"] * 3
    after = await call(router, dialled="4000000001", uniqueid="after")
    assert after.variables["HOTLINE_STATUS"] == "answered"


async def test_a_client_that_connects_and_closes_is_counted_as_a_probe(tmp_path: Path) -> None:
    async with running_router(tmp_path, clock=SimulatedClock(SPEEDUP)) as router:

        async def hostile() -> None:
            for _ in range(20):
                await connect_and_close(router.host, router.port)

        await with_a_call_in_flight(router, hostile)
        assert router.server.probes == 20 and router.server.broken_sessions == 0


@pytest.mark.parametrize("close", [True, False])
async def test_a_header_without_end_is_closed_by_the_header_timeout(
    tmp_path: Path, close: bool
) -> None:
    async with running_router(tmp_path, clock=SimulatedClock(SPEEDUP)) as router:
        outcomes = []

        async def hostile() -> None:
            outcomes.append(
                await send_header_without_end(router.host, router.port, close=close, wait_s=3)
            )

        await with_a_call_in_flight(router, hostile)
    assert outcomes[0].server_closed
    assert outcomes[0].elapsed_s < 2.5  # header_timeout is 1 s in the test config
    assert outcomes[0].received == b""


async def test_a_one_mebibyte_header_is_refused_at_the_size_cap(tmp_path: Path) -> None:
    async with running_router(tmp_path, clock=SimulatedClock(SPEEDUP)) as router:
        outcomes = []

        async def hostile() -> None:
            outcomes.append(await send_oversized_header(router.host, router.port, wait_s=3))

        await with_a_call_in_flight(router, hostile)
    assert outcomes[0].server_closed and outcomes[0].received == b""


async def test_binary_junk_is_closed_without_a_reply(tmp_path: Path) -> None:
    async with running_router(tmp_path, clock=SimulatedClock(SPEEDUP)) as router:
        outcomes = []

        async def hostile() -> None:
            outcomes.append(await send_binary_junk(router.host, router.port, wait_s=3))

        await with_a_call_in_flight(router, hostile)
    assert outcomes[0].server_closed and outcomes[0].received == b""


async def test_a_line_break_smuggled_into_the_header_ends_the_session_before_any_command(
    tmp_path: Path,
) -> None:
    header = (
        b"agi_network: yes\nagi_uniqueid: 77.1\n"
        b'agi_calleridname: Evil"\nEXEC System "rm -rf /"\nagi_extension: 4000000001\n\n'
    )
    async with running_router(tmp_path) as router:
        outcome = await send_raw(router.host, router.port, header, wait_s=3)
        assert await router.store.get_cdr("77.1") is None
    assert outcome.server_closed and outcome.received == b""


@pytest.mark.parametrize(
    ("caller_id", "caller_name"),
    [
        ('"0531" 8888,9999', 'Zhang "San"'),
        ("13800138000|EXEC", "a,b|c&d(e)"),
        ("\\\\server\\share", 'back\\slash \\" quote'),
        ("13912345678", "张三 ; SET VARIABLE X 1"),
        ("x" * 5000, "y" * 5000),
    ],
)
async def test_callers_with_hostile_ids_are_routed_and_recorded_without_touching_commands(
    tmp_path: Path, caller_id: str, caller_name: str
) -> None:
    async with running_router(tmp_path) as router:
        result = await call(
            router,
            dialled="4000000001",
            uniqueid="h.1",
            caller_id=caller_id,
            caller_name=caller_name,
        )
        cdr = await finished_cdr(router, "h.1")
    assert result.commands[0] == 'EXEC Dial "Local/13800000011@phones,20"'
    assert result.variables["HOTLINE_STATUS"] == "answered"
    assert cdr.outcome is Outcome.ANSWERED
    assert len(cdr.caller_raw) <= 128 and "\n" not in cdr.caller_raw


async def test_a_peer_outside_the_allow_list_is_closed_before_a_byte_is_read(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path, allowed_peers=["10.0.0.0/8"]) as router:
        result = await call(router, dialled="4000000001", uniqueid="peer.1")
        assert router.server.refused_peers == 1
        assert await router.store.get_cdr("peer.1") is None
    assert result.commands == []


async def test_a_peer_that_stops_answering_is_cut_at_the_command_timeout(
    tmp_path: Path,
) -> None:
    """Asterisk wedged, or the network gone without a FIN: every command but Dial has
    `command_timeout` to be answered, EXECs included, so the call's session ends and its
    CDR is completed. A Dial ringing longer than that (0.4 s a destination here) goes on."""
    env = environment(SimulatedCall(dialled="4000000102", uniqueid="mute.1"), "127.0.0.1", 0)
    header = "".join(f"{key}: {value}\n" for key, value in env.items()).encode() + b"\n"
    async with running_router(
        tmp_path, clock=SimulatedClock(SPEEDUP), command_timeout=0.3
    ) as router:

        async def hostile() -> None:
            outcomes.append(await send_raw(router.host, router.port, header, wait_s=3))

        outcomes: list[HostileOutcome] = []
        await with_a_call_in_flight(router, hostile)
        cdr = await finished_cdr(router, "mute.1")
    assert outcomes[0].server_closed and outcomes[0].elapsed_s < 2
    assert outcomes[0].received == b"EXEC Progress\n"  # the recording notice, never answered
    assert cdr.outcome is Outcome.ERROR
    assert cdr.note == "AGI session lost: no reply to 'EXEC Progress' in 0.3 s"
