"""`hotline400 simulate` routes a call as the router does: the same plans, callers and
instants go through simulate and through the daemon over FastAGI (the Asterisk simulator
playing the caller and the destinations), and both name the same destinations in the same
order and end the call the same way. The cases sit on the plans' boundaries: the minute a
time window opens and the one before, working days against weekends, adjusted working
Saturdays and public holidays, mobile and fixed-line callers inside and outside a region,
busy and no-answer forwards, and a 60/30/10 split over 100 calls."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import shutil
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from router.cli import main
from router.daemon import Daemon
from router.simulation.asterisk_agi import Outcome, SimulatedCall, run_call
from tests.conftest import REPO, finished_cdr, running_router

SHANGHAI = ZoneInfo("Asia/Shanghai")
RENHE, JINAN, LANHUA = "4001234567", "4006001234", "4008207788"
RENHE_PIN = "2468#"  # the PIN the shipped clinic plan's hash was made from


@dataclass(frozen=True)
class Case:
    number: str
    caller: str
    at: str
    busy: tuple[str, ...] = ()
    no_answer: tuple[str, ...] = ()
    digits: str = ""


@dataclass
class Comparison:
    """A router serving a copy of the shipped configuration, and simulate reading that copy
    and the router's own store."""

    router: Daemon
    config: Path
    clock: list[datetime]
    calls: int = 0

    def simulate(self, case: Case, calls: int = 1) -> str:
        argv = ["simulate", "--config", str(self.config), "--number", case.number]
        argv += ["--caller", case.caller, "--at", case.at, "--digits", case.digits]
        argv += [*(f"--busy={n}" for n in case.busy), *(f"--no-answer={n}" for n in case.no_answer)]
        argv += ["--calls", str(calls)]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(argv) == 0
        return out.getvalue()

    async def simulated(self, case: Case) -> tuple[list[str], str]:
        """The destinations simulate dials, in order, and the call's outcome."""
        text = await asyncio.to_thread(self.simulate, case)
        dialled = re.findall(r"^  \d+\. (?:dial|forward \(\w+\)) (\d+),", text, re.M)
        outcome = re.search(r"^outcome: (\w+)", text, re.M)
        assert outcome is not None, text
        return dialled, outcome[1]

    async def served(self, case: Case) -> tuple[list[str], str]:
        """The destinations the router dials, in order, and its call record's outcome."""
        self.clock[0] = datetime.strptime(case.at, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)
        self.calls += 1
        call_id = f"compare.{self.calls}"
        keys = (case.digits,) if case.digits else (RENHE_PIN,) if case.number == RENHE else ()
        simulated = SimulatedCall(
            dialled=case.number,
            caller_id=case.caller,
            uniqueid=call_id,
            destinations=behaviour(case),
            dtmf=keys,
        )
        result = await run_call(self.router.host, self.router.port, simulated, time_scale=0.0)
        assert result.error is None
        dialled = [re.sub(r"^Local/(\d+)@.*", r"\1", dial.argument) for dial in result.dials]
        return dialled, str((await finished_cdr(self.router, call_id)).outcome)

    async def assert_same(self, cases: Iterable[Case]) -> None:
        differing = []
        for case in cases:
            simulated, served = await self.simulated(case), await self.served(case)
            if simulated != served:
                differing.append(f"{case}: simulate {simulated}, router {served}")
        assert differing == []


def behaviour(case: Case) -> Callable[[str], Outcome]:
    def outcome(number: str) -> Outcome:
        if number in case.busy:
            return Outcome.busy()
        if number in case.no_answer:
            return Outcome.no_answer()
        return Outcome.answers(talk_s=1.0)

    return outcome


@pytest.fixture
async def comparison(tmp_path: Path) -> AsyncIterator[Comparison]:
    clock = [datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)]
    async with running_router(
        tmp_path,
        config=REPO / "config",
        clock=lambda: clock[0],
        dial_template="Local/{number}@phones",
        listen="127.0.0.1:0",
        metrics_listen=None,
        watch_plans=False,
        cdr_batch_interval=0.005,  # each call's record is read back as soon as it ends
    ) as router:
        config = tmp_path / "config"
        settings = config / "router.yaml"
        store = tmp_path / "var" / "hotline400.db"
        text = settings.read_text(encoding="utf-8")
        settings.write_text(text.replace("database: var/hotline400.db", f"database: {store}"))
        yield Comparison(router, config, clock)


def cases(
    number: str, callers: Iterable[str], instants: Iterable[str], **how: object
) -> list[Case]:
    return [Case(number, caller, at, **how) for at in instants for caller in callers]  # type: ignore[arg-type]


async def test_time_windows_and_the_official_calendar_at_their_boundaries(
    comparison: Comparison,
) -> None:
    """Jinan: Shandong callers on working days 08:00-17:30, sales 08:30-18:00, nights from
    18:00; a Monday, a Saturday, the adjusted working Saturday 2026-02-14 and National Day."""
    monday = [f"2026-11-23 {minute}" for minute in ("07:59", "08:00", "17:29", "17:30")]
    monday += ["2026-11-23 17:59", "2026-11-23 18:00"]
    others = ["2026-02-14 08:00", "2026-10-01 08:00", "2026-11-28 08:00", "2026-11-28 18:00"]
    instants = [*monday, *others]
    await comparison.assert_same(cases(JINAN, ["053188889999"], instants))


async def test_screening_and_region_rules_for_mobile_and_fixed_line_callers(
    comparison: Comparison,
) -> None:
    """Renhe lets in Guangdong only and asks night callers for the PIN; Jinan sends Shandong
    to its factory: mobiles and fixed lines from inside and outside, with +86, withheld."""
    callers = ["13926001111", "+8613926001111", "02012345678", "053188889999", "13905319999"]
    await comparison.assert_same(
        [
            *cases(RENHE, [*callers, "anonymous"], ["2026-11-23 20:00"]),
            Case(RENHE, "02012345678", "2026-11-23 19:59"),
            *cases(JINAN, [*callers, "01088889999"], ["2026-11-23 10:00"]),
        ]
    )


async def test_busy_and_no_answer_forwards(comparison: Comparison) -> None:
    day, night = "2026-11-23 10:00", "2026-11-23 19:00"
    desks = ("053188886666", "01088887777", "13905310001")
    await comparison.assert_same(
        [
            *cases(JINAN, ["053188889999", "01088889999"], [day, night], busy=desks),
            *cases(JINAN, ["01088889999"], [day, night], no_answer=desks, busy=("053188886667",)),
            Case(LANHUA, "13801651234", day, busy=("02155550001",), no_answer=("02155556667",)),
            Case(LANHUA, "13801650002", day, digits="2", busy=("02155556670", "02155556667")),
        ]
    )


async def test_a_split_spreads_100_calls_alike(comparison: Comparison) -> None:
    """The orders split (60/30/10) after the menu, nobody pressing a key."""
    order = Case(LANHUA, "13801650002", "2026-11-23 10:00")
    text = await asyncio.to_thread(comparison.simulate, order, 100)
    simulated = Counter(
        {found[1]: int(found[2]) for found in re.finditer(r"^  (\d+) +(\d+) calls", text, re.M)}
    )
    served: Counter[str] = Counter()
    for _ in range(100):
        dialled, _ = await comparison.served(order)
        served[dialled[0]] += 1
    assert simulated == served == {"02155556666": 60, "02866667777": 30, "02788889999": 10}


async def test_a_caller_blocked_for_guessing_the_pin_is_refused_by_both(
    comparison: Comparison,
) -> None:
    """After 5 calls that failed the clinic's PIN (router.yaml's pin_guard), the router
    refuses that caller before the prompt; simulate reads the same guard in the store."""
    night = Case(RENHE, "13926001111", "2026-11-23 21:00")
    comparison.clock[0] = datetime(2026, 11, 23, 21, 0, tzinfo=SHANGHAI)
    for guess in range(5):
        wrong = SimulatedCall(
            dialled=RENHE,
            caller_id=night.caller,
            uniqueid=f"guess.{guess}",
            dtmf=("1111#", "1111#", "1111#"),
        )
        await run_call(comparison.router.host, comparison.router.port, wrong, time_scale=0.0)
        await finished_cdr(comparison.router, f"guess.{guess}")
    assert await comparison.served(night) == ([], "blocked")
    await comparison.assert_same([night, Case(RENHE, "13926002222", night.at)])


def test_simulate_says_when_the_pin_guard_cannot_be_read(tmp_path: Path) -> None:
    """A store that cannot be read lets the caller through to the PIN prompt, as the router
    does then; simulate says the guard was left out, in the words of the console's preview,
    instead of answering as if no caller were blocked. The store is a real file that is not
    a database."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database " * 20)
    settings = config / "router.yaml"
    text = settings.read_text(encoding="utf-8")
    settings.write_text(text.replace("database: var/hotline400.db", f"database: {junk}"))
    argv = ["simulate", "--config", str(config), "--number", RENHE, "--caller", "13926001111"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*argv, "--at", "2026-11-23 21:00"]) == 0
    lines = out.getvalue().splitlines()
    [guard] = [line for line in lines if line.startswith("PIN guard:")]
    assert guard == (
        "PIN guard: unreadable (DatabaseError: file is not a database); "
        "the router asks the caller for the PIN"
    )
    assert "PIN: the caller is asked for the PIN, 3 attempts" in lines
