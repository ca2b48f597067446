"""Replies no Asterisk sends, played against the whole router over TCP: the call they
belong to ends with a finished CDR and one log line, and a normal call made alongside is
put through as usual.

The peer here answers each command the router sends with the next reply of its script
and closes once the script is spent; a normal call runs on the protocol simulator at the
same time.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from router.daemon import Daemon
from router.simulation.asterisk_agi import SimulatedCall, environment, run_call
from router.storage.cdr import Outcome
from tests.conftest import finished_cdr, running_router

PLANNED = "4000000001"
"""A number of tests/e2e_config whose plan dials one destination."""
DIAL_OK = b"200 result=0\n"


async def scripted_call(daemon: Daemon, call_id: str, replies: list[bytes]) -> list[bytes]:
    """Play one call whose every command is answered by the next of `replies`; returns
    the commands the router sent."""
    env = environment(SimulatedCall(dialled=PLANNED, uniqueid=call_id), daemon.host, daemon.port)
    reader, writer = await asyncio.open_connection(daemon.host, daemon.port)
    writer.write("".join(f"{k}: {v}\n" for k, v in env.items()).encode() + b"\n")
    commands: list[bytes] = []
    try:
        async with asyncio.timeout(10):
            for reply in replies:
                command = await reader.readline()
                if not command:
                    break
                commands.append(command)
                writer.write(reply)
            await reader.read()  # until the router closes
    finally:
        writer.close()
    return commands


@pytest.mark.parametrize(
    "answered_ms",
    [b"99999999999999999999", b"9" * 5000, "\u00b2".encode()],
    ids=["beyond-any-date", "beyond-python-ints", "superscript-digit"],
)
async def test_dial_times_beyond_any_call_end_the_call_with_its_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, answered_ms: bytes
) -> None:
    """An ANSWEREDTIME_MS of 20 digits once made the CDR's end time overflow as the call
    ended: the call's task died, its CDR stayed in progress for ever, and asyncio logged
    the task's exception as never retrieved."""
    times = b"200 result=1 (ANSWER," + answered_ms + b"," + answered_ms + b")\n"
    async with running_router(tmp_path) as daemon:
        with caplog.at_level(logging.WARNING):
            _, normal = await asyncio.gather(
                scripted_call(daemon, "odd.1", [DIAL_OK, times] + [DIAL_OK] * 5),
                run_call(daemon.host, daemon.port, SimulatedCall(dialled=PLANNED)),
            )
            cdr = await finished_cdr(daemon, "odd.1")
    assert normal.error is None
    assert cdr.outcome is not Outcome.IN_PROGRESS
    assert cdr.billable_seconds == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len([r for r in caplog.records if "odd.1" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    "reply", [b"200 result=zz!!\n", b"200 result=1 (ANSWER,1000)\n", b"510 Invalid\n"]
)
async def test_a_dial_outcome_that_cannot_be_read_is_told_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, reply: bytes
) -> None:
    """A Dial's outcome that does not come back as its three variables was recorded as
    CHANUNAVAIL without a word: the CDR said busy, and nothing told why."""
    async with running_router(tmp_path) as daemon:
        with caplog.at_level(logging.WARNING):
            _, normal = await asyncio.gather(
                scripted_call(daemon, "odd.2", [DIAL_OK, reply] + [DIAL_OK] * 5),
                run_call(daemon.host, daemon.port, SimulatedCall(dialled=PLANNED)),
            )
            cdr = await finished_cdr(daemon, "odd.2")
    assert normal.error is None
    assert cdr.legs[0].dial_status == "CHANUNAVAIL"
    told = [r.getMessage() for r in caplog.records if "odd.2" in r.getMessage()]
    assert len(told) == 1
    assert "CHANUNAVAIL" in told[0]
