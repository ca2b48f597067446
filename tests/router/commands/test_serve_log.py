"""What `serve` tells an operator tailing its log: one INFO line per call `log_calls` names
(the unanswered ones by default), and one warning per number that refuses calls for a reason
an admin can fix, however many calls it refuses."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import shutil
from collections.abc import Callable
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


def busy(number: str) -> Outcome:
    return Outcome.busy()


async def call_lines(
    tmp_path: Path, destinations: Callable[[str], Outcome], **settings: str
) -> list[str]:
    """The call lines `serve` on the shipped config logs for one call from Jinan to the
    factory's line (4006001234), its destinations behaving as `destinations` says."""
    stream = io.StringIO()
    handler = configure_logging("logfmt", "INFO", stream=stream)
    try:
        async with running_router(tmp_path, SHIPPED_CONFIG, **FREE_PORTS, **settings) as daemon:
            await call(
                daemon,
                dialled="4006001234",
                caller_id="053188889999",
                uniqueid="c1.1",
                destinations=destinations,
            )
            await finished_cdr(daemon, "c1.1")
    finally:
        logging.getLogger().removeHandler(handler)
    return [line for line in stream.getvalue().splitlines() if "logger=hotline400.call" in line]


async def test_log_calls_all_gives_every_call_an_info_line_with_number_masked_caller_and_rule(
    tmp_path: Path,
) -> None:
    lines = await call_lines(tmp_path, answering, log_calls="all")
    assert len(lines) == 1
    line = lines[0]
    assert "level=info" in line and "call_id=c1.1" in line
    assert "number=4006001234" in line and "outcome=answered" in line
    assert "rule=shandong-factory" in line
    assert "caller=0531******99" in line and "053188889999" not in line


async def test_by_default_a_call_nobody_answered_has_its_line_and_an_answered_one_none(
    tmp_path: Path,
) -> None:
    assert await call_lines(tmp_path / "answered", answering) == []
    [line] = await call_lines(tmp_path / "busy", busy)
    assert "call_id=c1.1" in line and "outcome=busy" in line and "rule=shandong-factory" in line


async def test_log_calls_none_logs_no_call_line(tmp_path: Path) -> None:
    assert await call_lines(tmp_path, busy, log_calls="none") == []


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


def test_check_names_the_line_of_a_log_calls_it_does_not_know(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = Path(shutil.copytree(SHIPPED_CONFIG, tmp_path / "config"))
    path = config / "router.yaml"
    text = path.read_text(encoding="utf-8")
    line = text[: text.index("log_calls:")].count("\n") + 1
    path.write_text(text.replace("log_calls: unanswered", "log_calls: answered"), encoding="utf-8")
    assert main(["check", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:{line} log_calls:" in out and "'all', 'unanswered' or 'none'" in out
