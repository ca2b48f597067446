"""What `serve` tells an operator tailing its log: one INFO line per call, and one warning
per number that refuses calls for a reason an admin can fix, however many calls it refuses."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import shutil
from pathlib import Path

import pytest

from router.cli import main
from router.monitoring.logs import configure_logging
from router.simulation.asterisk_agi import Outcome
from tests.conftest import MONDAY_MORNING, REPO, call, finished_cdr, running_router

SHIPPED_CONFIG = REPO / "config"
FREE_PORTS = {"listen": "127.0.0.1:0", "metrics_listen": None}


def answering(number: str) -> Outcome:
    return Outcome.answers(talk_s=60.0, ring_s=3.0)


def prepaid(config: Path, tmp_path: Path) -> Path:
    """A copy of a config directory whose web shop account (4008207788) is prepaid."""
    copy = Path(shutil.copytree(config, tmp_path / "source"))
    tariffs = copy / "tariffs.yaml"
    text = tariffs.read_text(encoding="utf-8")
    shop = text.index('"4008207788"')
    marker = text.index("prepaid: false", shop)
    tariffs.write_text(text[:marker] + "prepaid: true" + text[marker + 14 :], encoding="utf-8")
    return copy


async def test_every_call_is_one_info_line_with_number_masked_caller_outcome_and_rule(
    tmp_path: Path,
) -> None:
    stream = io.StringIO()
    handler = configure_logging("logfmt", "INFO", stream=stream)
    try:
        async with running_router(tmp_path, SHIPPED_CONFIG, **FREE_PORTS) as daemon:
            await call(
                daemon,
                dialled="4006001234",
                caller_id="053188889999",
                uniqueid="c1.1",
                destinations=answering,
            )
            await finished_cdr(daemon, "c1.1")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [line for line in stream.getvalue().splitlines() if "logger=hotline400.call" in line]
    assert len(lines) == 1
    line = lines[0]
    assert "level=info" in line and "call_id=c1.1" in line
    assert "number=4006001234" in line and "outcome=answered" in line
    assert "rule=shandong-factory" in line
    assert "caller=0531******99" in line and "053188889999" not in line


async def hotline400(*argv: str) -> str:
    """A command's output (in a thread: the command runs its own event loop)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert await asyncio.to_thread(main, list(argv)) == 0
    return out.getvalue()


async def simulate_outcome(config: Path, number: str, caller: str) -> str:
    """The last line of `hotline400 simulate` for a call at the harness's instant."""
    argv = ["--config", str(config), "--number", number, "--caller", caller]
    said = await hotline400("simulate", *argv, "--at", MONDAY_MORNING.isoformat())
    return said.splitlines()[-1]


async def test_a_number_refusing_calls_for_a_fixable_reason_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, "hotline400.refusals")
    monkeypatch.chdir(tmp_path)  # where router.yaml's var/hotline400.db is the router's file
    config = prepaid(SHIPPED_CONFIG, tmp_path)
    # simulate reads the counters the router will read: none yet, so no prepaid balance
    said = await simulate_outcome(config, "4008207788", "13801650000")
    assert said == "outcome: suspended (arrears)"
    async with running_router(tmp_path, config, **FREE_PORTS) as daemon:
        for index in range(3):
            result = await call(
                daemon, dialled="4008207788", caller_id="13801650000", uniqueid=f"p.{index}"
            )
            assert result.variables["HOTLINE_STATUS"] == "suspended"
        for index in range(2):
            await call(daemon, dialled="4009999999", caller_id="13801650000", uniqueid=f"u.{index}")
        await call(daemon, dialled="4006001234", caller_id="053188889999", uniqueid="ok.1")
        await finished_cdr(daemon, "ok.1")
    said = await simulate_outcome(config, "4008207788", "13801650000")
    assert said == "outcome: suspended (arrears)"
    warnings = [r.getMessage() for r in caplog.records if r.name == "hotline400.refusals"]
    assert warnings == [
        "4008207788 refuses calls: prepaid balance is 0.00; book a payment "
        "(hotline400 account topup --number 4008207788 --amount YUAN) or make the account "
        "postpaid in tariffs.yaml",
        "4009999999 refuses calls: it has no plan; add its plan to the plans directory "
        "(hotline400 check validates it)",
    ]
