"""A guided tour: the example plans routing a varied day of calls through the real daemon.

The daemon runs in-process on a free port with the example config and its own SQLite file;
Asterisk's side is played by the protocol simulator. Each call is placed at its own
instant (the daemon's clock is set per call), so one run shows office hours, nights and a
public holiday, busy and no-answer forwards, screening, a blacklist, a split and a PIN.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from dialplan.geo import locate
from dialplan.matchers import describe_caller
from rating.ledger import LedgerEntry, LedgerKind
from router.call.channel_contract import ChannelVariable
from router.daemon import Daemon
from router.simulation.asterisk_agi import CallResult, Outcome, SimulatedCall, run_call

SHANGHAI = ZoneInfo("Asia/Shanghai")
ANSWERS = Outcome.answers(talk_s=95.0, ring_s=6.0)


class DemoClock:
    """The daemon's clock during the tour: the instant of the call being placed, moved on by
    the call's virtual time so far (its prompts, its ringing), so the router times a call's
    parts as it would on a real Asterisk, where they take real time."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
        self.call: CallResult | None = None

    def __call__(self) -> datetime:
        elapsed = 0.0 if self.call is None else self.call.virtual_s
        return self.now + timedelta(seconds=elapsed)


@dataclass(frozen=True)
class DemoCall:
    title: str
    number: str
    caller: str
    at: str  # local "YYYY-MM-DD HH:MM"
    behaviour: dict[str, Outcome] = field(default_factory=dict)
    dtmf: tuple[str | None, ...] = ()

    def instant(self) -> datetime:
        return datetime.strptime(self.at, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)

    def destinations(self) -> Callable[[str], Outcome]:
        return lambda number: self.behaviour.get(number, ANSWERS)


TOUR = (
    DemoCall("Jinan caller, office hours", "4006001234", "0531-8888 9999", "2026-11-23 10:00"),
    DemoCall(
        "Beijing caller, sales desk busy",
        "4006001234",
        "010-6666 5555",
        "2026-11-23 10:05",
        {"01088887777": Outcome.busy()},
    ),
    DemoCall("Jinan caller on National Day", "4006001234", "15966668888", "2026-10-01 09:30"),
    DemoCall("blacklisted caller", "4006001234", "13012345678", "2026-11-23 10:10"),
    DemoCall("web shop, order line (60/30/10)", "4008207788", "13801650000", "2026-11-23 11:00"),
    DemoCall("web shop, order line again", "4008207788", "02087654321", "2026-11-23 11:01"),
    DemoCall("web shop, VIP customer", "4008207788", "13801651234", "2026-11-23 11:02"),
    DemoCall(
        "web shop, call centre rings out",
        "4008207788",
        "18612345678",
        "2026-11-23 11:03",
        {"02155556666": Outcome.no_answer(), "02866667777": Outcome.no_answer()},
    ),
    DemoCall("web shop at night", "4008207788", "13801650000", "2026-11-23 23:30"),
    DemoCall("web shop, withheld caller ID", "4008207788", "anonymous", "2026-11-23 11:05"),
    DemoCall("clinic, Guangzhou patient", "4001234567", "020-8765 4321", "2026-11-23 09:00"),
    DemoCall("clinic, caller outside Guangdong", "4001234567", "010-6666 5555", "2026-11-23 09:05"),
    DemoCall(
        "clinic after hours, right PIN",
        "4001234567",
        "13926001111",
        "2026-11-23 21:00",
        dtmf=("2468#",),
    ),
    DemoCall(
        "clinic after hours, duty doctor does not answer",
        "4001234567",
        "13926002222",
        "2026-11-23 21:10",
        {"13926005678": Outcome.no_answer()},
        dtmf=("2468#",),
    ),
    DemoCall(
        "clinic after hours, wrong PIN three times",
        "4001234567",
        "13926003333",
        "2026-11-23 21:20",
        dtmf=("1111#", "1234#", "0000#"),
    ),
)


async def play_tour(host: str, port: int, clock: DemoClock) -> list[tuple[DemoCall, CallResult]]:
    """Place the tour's calls one after the other; call ids are unique per run."""
    run = int(time.time())
    played = []
    for index, demo in enumerate(TOUR, start=1):
        clock.now = demo.instant()
        call = SimulatedCall(
            dialled=demo.number,
            caller_id=demo.caller,
            uniqueid=f"demo{run}.{index}",
            script=demo.number,
            destinations=demo.destinations(),
            dtmf=demo.dtmf,
        )
        clock.call = CallResult(call=call)
        played.append((demo, await run_call(host, port, call, result=clock.call)))
    clock.call = None
    return played


OPENING_PREPAYMENT = Decimal("600.00")


async def prepay_accounts(daemon: Daemon, now: datetime) -> list[str]:
    """Book an opening prepayment on every prepaid account (a prepaid account with no
    payment connects no calls); postpaid accounts need none."""
    tariffs = daemon.plans.tariffs
    if tariffs is None:
        return []
    prepaid = sorted(number for number, account in tariffs.accounts.items() if account.prepaid)
    if not prepaid:
        return []
    run = int(time.time())
    entries = [
        LedgerEntry(number, now, OPENING_PREPAYMENT, LedgerKind.PAYMENT, f"demo-{run}", "prepaid")
        for number in prepaid
    ]
    await daemon.store.post_ledger(entries)
    return [f"prepaid {OPENING_PREPAYMENT} yuan on {', '.join(prepaid)}\n"]


async def balances(daemon: Daemon) -> list[str]:
    """The accounts' balances after the tour, from the ledger (a postpaid account's is
    what it owes so far, before the month is billed)."""
    tariffs = daemon.plans.tariffs
    if tariffs is None:
        return []
    await daemon.cdrs.close()  # every charge of the tour is booked before reading
    lines = ["\nbalances:"]
    for number, account in sorted(tariffs.accounts.items()):
        entries = await daemon.store.ledger(number)
        calls = [entry for entry in entries if entry.kind is LedgerKind.CALL]
        balance = sum((entry.amount for entry in entries), Decimal("0.00"))
        kind = "prepaid" if account.prepaid else "postpaid"
        lines.append(f"  {number}  {balance:>9} yuan ({kind}) after {len(calls)} charged call(s)")
    return lines


def describe(index: int, demo: DemoCall, result: CallResult, crm_events: Sequence[str]) -> str:
    """Two lines: who called when, and what the router did; a third naming the CRM events
    the subscriber's CRM took, if any."""
    caller = describe_caller(locate(demo.caller))
    head = f"{index:>2}. {demo.title}\n    {demo.at}  {caller} -> {demo.number}"
    attempts = " > ".join(f"{_destination(dial.argument)} {dial.status}" for dial in result.dials)
    variables = result.variables
    route = f"rule {variables.get(ChannelVariable.RULE) or '-'}"
    pin = " (PIN asked)" if any(_asks_for_pin(command) for command in result.commands) else ""
    outcome = variables.get(ChannelVariable.STATUS, result.error or "?")
    crm = f"\n    CRM took {', '.join(crm_events)}" if crm_events else ""
    return f"{head}\n    {route}{pin}: {attempts or 'not connected'} => {outcome}{crm}"


def _asks_for_pin(command: str) -> bool:
    """`GET DATA <prompt> <timeout> <max digits>` reading a PIN (4 digits or more); a menu
    or the survey reads one key (`... 1`), which is no PIN."""
    words = command.split()
    return words[:2] == ["GET", "DATA"] and len(words) == 5 and words[4] != "1"


def _destination(dial_argument: str) -> str:
    """'PJSIP/053188886666@carrier,25' -> '053188886666'."""
    resource = dial_argument.split(",", 1)[0].split("/", 1)[-1]
    return resource.split("@", 1)[0]
