"""Low-balance warnings for what the commands book, against a real HTTP receiver named by
router.yaml's `low_balance_webhook`, on each store engine: feature fees, a month's close,
calls priced or re-priced by `rate`, and the fees of a number's life (`numbers`).

4000000008 is prepaid (warning under 50.00, recording switched on 2026-12-03 for 100.00,
rent 60.00, calls at 0.10 a minute; a platinum number: selection fee 8000.00, opening fee
600.00, 15.00 a month kept while suspended); 4000000009 is postpaid, with the same fee the
same day.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest

from dialplan.calendar import OfficialCalendar
from numbering import lifecycle
from numbering.lifecycle import NumberRecord
from numbering.rules import NumberRules
from rating.ledger import LedgerEntry, LedgerKind
from rating.tariff_loader import parse_tariffs
from router.cli import main
from router.money.balance_alerts import BalanceAlerts
from router.money.booking_alerts import Watch, book_warning_low_balances
from router.notifications.low_balance import LOW_BALANCE_UNDELIVERED_FILE
from router.notifications.sms import SMS_UNDELIVERED_FILE
from router.notifications.undelivered import UndeliveredEvents
from router.numbers.inventory import Inventory
from router.storage.cdr import CDR, CallerRegion, FinishCall, ForwardReason, Leg, Outcome, StartCall
from router.storage.protocol import Store
from tests.conftest import (
    MONDAY_MORNING,
    UNWATCHED,
    HttpReceiver,
    eventually,
    opened_store,
    running_router,
    warning_facts,
)

PREPAID, POSTPAID = "4000000008", "4000000009"
SHANGHAI = ZoneInfo("Asia/Shanghai")
TARIFFS = """\
caller_tariffs:
  fixed: {per_seconds: 60, charge: 0.11}
  mobile: {per_seconds: 60, charge: 0.15}
  other: {per_seconds: 60, charge: 0.11}
features:
  recording: 100.00
packages:
  office:
    monthly_rent: 60.00
    nationwide: {per_seconds: 60, charge: 0.10}
accounts:
  "4000000008":
    package: office
    opened: 2026-11-01
    low_balance_warning: 50.00
    features: {recording: 2026-12-03}
  "4000000009":
    package: office
    opened: 2026-11-01
    prepaid: false
    features: {recording: 2026-12-03}
"""


class Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Receiver.received.append(warning_facts(json.loads(self.rfile.read(length))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts"
    server.shutdown()


async def paid(url: str, amount: str) -> None:
    at = datetime(2026, 11, 1, 9, 0, tzinfo=SHANGHAI)
    async with opened_store(url) as store:
        await store.post_ledger(
            [LedgerEntry(PREPAID, at, Decimal(amount), LedgerKind.PAYMENT, "receipt-1")]
        )


@pytest.fixture
def config(tmp_path: Path, store_url: str, webhook: str) -> Path:
    config = tmp_path / "config"
    config.mkdir()
    (config / "router.yaml").write_text(
        f'store: "{store_url}"\nspool_dir: "{tmp_path / "spool"}"\n'
        f'low_balance_webhook: "{webhook}"\n',
        encoding="utf-8",
    )
    (config / "tariffs.yaml").write_text(TARIFFS, encoding="utf-8")
    (config / "plans").mkdir()
    (config / "plans" / f"{PREPAID}.yaml").write_text(
        f'number: "{PREPAID}"\nname: Office\nhome_area_code: "010"\n'
        'default: {target: "01087654321"}\n',
        encoding="utf-8",
    )
    return config


def run(config: Path, *argv: str) -> None:
    assert main([*argv, "--config", str(config)]) == 0


def test_a_warning_a_command_could_not_post_is_kept_and_replayed_once_the_receiver_is_back(
    config: Path, store_url: str, webhook: str
) -> None:
    """The receiver refuses connections while `account fees` books: the warning is tried
    again, then kept rather than lost when the command ends; `low-balance replay` delivers it
    once router.yaml names a receiver that answers."""
    asyncio.run(paid(store_url, "120.00"))
    router_yaml = config / "router.yaml"
    working = router_yaml.read_text(encoding="utf-8")
    router_yaml.write_text(
        working.replace(webhook, HttpReceiver.refusing())
        + "low_balance_webhook_backoff: 0.05\nlow_balance_webhook_retry_for: 0.3\n",
        encoding="utf-8",
    )
    run(config, "account", "fees", "--day", "2026-12-03")
    kept = UndeliveredEvents(config.parent / "spool", LOW_BALANCE_UNDELIVERED_FILE)
    warning = {"event": "low_balance", "number": PREPAID, "balance": "20.00", "threshold": "50.00"}
    assert [warning_facts(record["body"]) for record in kept.read()] == [warning]
    assert Receiver.received == []

    router_yaml.write_text(working, encoding="utf-8")
    run(config, "low-balance", "replay")
    assert Receiver.received == [warning]
    assert kept.read() == []


def test_a_feature_fee_taking_a_prepaid_balance_below_its_threshold_warns_once(
    config: Path, store_url: str
) -> None:
    asyncio.run(paid(store_url, "120.00"))
    for _ in range(2):  # the second run books nothing, so warns of nothing
        run(config, "account", "fees", "--day", "2026-12-03")
    assert Receiver.received == [
        {"event": "low_balance", "number": PREPAID, "balance": "20.00", "threshold": "50.00"}
    ]


def test_a_commands_warning_the_sms_gateway_cannot_take_is_kept_for_replay(
    config: Path, store_url: str, tmp_path: Path
) -> None:
    """The command ends within its grace, the text waiting in spool_dir/sms.undelivered."""
    with socket.socket() as probe:  # a port nothing listens on: every send is refused
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with (config / "router.yaml").open("a", encoding="utf-8") as router_yaml:
        router_yaml.write(
            f'sms_gateway: "http://127.0.0.1:{closed}/sms"\nsms_timeout: 0.5\n'
            "sms_backoff: 0.05\nsms_retry_for: 0.2\n"
        )
    plan = config / "plans" / f"{PREPAID}.yaml"
    plan.write_text(
        plan.read_text(encoding="utf-8") + 'notifications: {sms_to: ["13905310001"]}\n',
        encoding="utf-8",
    )
    asyncio.run(paid(store_url, "120.00"))
    run(config, "account", "fees", "--day", "2026-12-03")
    [kept] = UndeliveredEvents(tmp_path / "spool", SMS_UNDELIVERED_FILE).read()
    assert (kept["kind"], kept["number"], kept["to"]) == ("low_balance", PREPAID, "13905310001")
    assert kept["maybe_sent"] is False


def test_closing_a_month_whose_rent_takes_a_prepaid_balance_below_its_threshold_warns(
    config: Path, store_url: str
) -> None:
    asyncio.run(paid(store_url, "100.00"))
    run(config, "bill", "--month", "2026-11", "--close", "--yes", "--today", "2026-12-01")
    assert Receiver.received == [
        {"event": "low_balance", "number": PREPAID, "balance": "40.00", "threshold": "50.00"}
    ]


def test_a_fee_leaving_the_balance_at_or_above_its_threshold_warns_of_nothing(
    config: Path, store_url: str
) -> None:
    asyncio.run(paid(store_url, "150.00"))
    run(config, "account", "fees", "--day", "2026-12-03")
    assert Receiver.received == []


# --- hotline400 rate -------------------------------------------------------------------


async def unpriced_call(url: str, minutes: int) -> None:
    """An answered call of `minutes` the router left without a price."""
    started = datetime(2026, 11, 5, 10, 0, tzinfo=SHANGHAI)
    talk = minutes * 60
    leg = Leg(1, "01087654321", "ANSWER", started, 0, talk, ForwardReason.PRIMARY)
    cdr = CDR("c1", PREPAID, "13800000001", "13800000001", "mobile", started, CallerRegion(""),
              legs=(leg,))  # fmt: skip
    finish = {
        "answered_at": started,
        "ended_at": started + timedelta(seconds=talk),
        "billable_seconds": talk,
        "outcome": Outcome.ANSWERED,
    }
    async with opened_store(url) as store:
        await store.apply([StartCall(cdr), FinishCall("c1", finish)])


def rate(config: Path, *options: str) -> None:
    run(config, "rate", "--from", "2026-11-01", "--to", "2026-11-30", *options)


def test_pricing_a_call_that_takes_a_prepaid_balance_below_its_threshold_warns_once(
    config: Path, store_url: str
) -> None:
    asyncio.run(paid(store_url, "50.25"))
    asyncio.run(unpriced_call(store_url, 3))
    rate(config)
    rate(config, "--rerate")  # the same price: nothing booked, nothing warned
    assert Receiver.received == [
        {"event": "low_balance", "number": PREPAID, "balance": "49.95", "threshold": "50.00"}
    ]


def test_a_re_rating_adjustment_that_takes_a_prepaid_balance_below_its_threshold_warns_once(
    config: Path, store_url: str
) -> None:
    asyncio.run(paid(store_url, "60.30"))
    asyncio.run(unpriced_call(store_url, 3))
    rate(config)  # 0.30 for the call: 60.00 left, above the threshold
    assert Receiver.received == []
    tariffs = config / "tariffs.yaml"
    tariffs.write_text(
        TARIFFS.replace("charge: 0.10}", "charge: 4.00}"), encoding="utf-8"
    )  # the call costs 12.00: 11.70 more
    for _ in range(2):  # the second run finds the call at its new price
        rate(config, "--rerate")
    assert Receiver.received == [
        {"event": "low_balance", "number": PREPAID, "balance": "48.30", "threshold": "50.00"}
    ]


# --- hotline400 numbers ----------------------------------------------------------------

PROVIDER = [
    "--full-name", "East Telecom Services", "--licence", "91310000MA1FL0XX1C",
    "--legal-rep", "Wang Wei", "--id-number", "110101199003071233",
]  # fmt: skip
MATERIAL = [
    "--licence", "91310000MA1FL0YY26", "--legal-rep", "Li Na",
    "--id-number", "11010519491231002X",
]  # fmt: skip


@pytest.fixture
def stocked(config: Path, tmp_path: Path) -> Path:
    """4000000008 in the pool, a service provider to reserve it."""
    (tmp_path / "numbers.txt").write_text(f"{PREPAID}\n", encoding="utf-8")
    run(config, "numbers", "import", str(tmp_path / "numbers.txt"))
    run(config, "providers", "add", "sp-east", *PROVIDER)
    return config


def applied(config: Path) -> None:
    """Reserved and applied for on 1 December: the opening and selection fees, 8600.00."""
    run(config, "numbers", "reserve", PREPAID, "--by", "sp-east", "--at", "2026-12-01 09:00")
    run(config, "numbers", "apply", PREPAID, "--account", "acme", *MATERIAL,
        "--at", "2026-12-01 10:00")  # fmt: skip


def test_the_fees_of_an_application_taking_a_prepaid_balance_below_its_threshold_warn(
    stocked: Path, store_url: str
) -> None:
    asyncio.run(paid(store_url, "8640.00"))
    applied(stocked)
    assert Receiver.received == [
        {"event": "low_balance", "number": PREPAID, "balance": "40.00", "threshold": "50.00"}
    ]


def test_the_keeping_fee_of_a_suspension_taking_a_prepaid_balance_below_its_threshold_warns(
    stocked: Path, store_url: str
) -> None:
    asyncio.run(paid(store_url, "8660.00"))
    applied(stocked)  # 60.00 left
    run(stocked, "numbers", "approve", PREPAID, "--at", "2026-12-02 10:00")
    run(stocked, "numbers", "suspend", PREPAID, "--by", "acme", "--at", "2026-12-03 10:00")
    assert Receiver.received == [
        {"event": "low_balance", "number": PREPAID, "balance": "45.00", "threshold": "50.00"}
    ]


def test_a_keeping_month_the_tick_books_below_the_threshold_warns_once(
    stocked: Path, store_url: str
) -> None:
    asyncio.run(paid(store_url, "8675.00"))
    applied(stocked)  # 75.00 left
    run(stocked, "numbers", "approve", PREPAID, "--at", "2026-12-02 10:00")
    run(stocked, "numbers", "suspend", PREPAID, "--by", "acme", "--at", "2026-12-03 10:00")
    assert Receiver.received == []  # 60.00 left
    for _ in range(2):  # the second tick finds nothing due
        run(stocked, "numbers", "tick", "--at", "2027-01-03 10:01")
    assert Receiver.received == [
        {"event": "low_balance", "number": PREPAID, "balance": "45.00", "threshold": "50.00"}
    ]


# --- the daemon's numbers tick ---------------------------------------------------------

DAY = timedelta(days=1)


async def suspended(store: Store, at: datetime, balance: str) -> None:
    """4000000008 taken into service and suspended at `at`, its balance then `balance`."""
    rules, calendar = NumberRules(), OfficialCalendar()
    start = at - 7 * DAY
    await store.add_numbers([NumberRecord(PREPAID)], start)
    record = await store.number_record(PREPAID)
    assert record is not None
    changes: list[lifecycle.Change] = []
    for make in (
        lambda r: lifecycle.reserve(r, "sp-east", start, rules),
        lambda r: lifecycle.apply(r, "acme", "sp-east", start, rules),
        lambda r: lifecycle.submit(r, start, rules, calendar),
        lambda r: lifecycle.approve(r, "ops", start + 2 * DAY, rules, calendar),
        lambda r: lifecycle.suspend(r, "acme", at, rules),
    ):
        changes.append(make(changes[-1].after if changes else record))
    after = changes[-1].after
    assert await store.record_changes(changes, after.due_at(rules), [[] for _ in changes])
    await store.post_ledger(
        [LedgerEntry(PREPAID, at, Decimal(balance), LedgerKind.PAYMENT, "receipt-1")]
    )


async def test_the_daemons_tick_warns_of_a_keeping_fee_and_waits_for_no_receiver(
    tmp_path: Path,
) -> None:
    """4000000008 (e2e tariffs: prepaid, warning under 5.00) suspended with 19.00 left: the
    second month's 15.00 takes it below. The receiver never answers, and the tick goes on
    to book the third month at once all the same: calls never wait for a tick either."""
    now = [MONDAY_MORNING]
    async with (
        HttpReceiver("silent") as receiver,
        running_router(
            tmp_path,
            clock=lambda: now[0],
            numbers_tick=0.05,
            low_balance_webhook=receiver.url,
        ) as router,
    ):
        await suspended(router.store, MONDAY_MORNING - DAY, "19.00")

        async def third_month_booked() -> bool:
            fees = await router.store.ledger(PREPAID, kind=LedgerKind.KEEPING_FEE)
            return [fee.ref[-7:] for fee in fees] == ["2026-12", "2027-01"]  # #1's left out

        now[0] = MONDAY_MORNING + 30 * DAY  # month 2 began on 22 December
        await eventually(lambda: receiver.received, timeout=3)
        now[0] = MONDAY_MORNING + 61 * DAY  # month 3 began on 22 January
        await eventually(third_month_booked, timeout=2)  # not 5 s on the receiver
    assert [warning_facts(json.loads(r.body)) for r in receiver.received] == [
        {"event": "low_balance", "number": PREPAID, "balance": "4.00", "threshold": "5.00"}
    ]


# --- a number's past holdings -----------------------------------------------------------


async def held_before(url: str) -> None:
    """4000000008 held by alpha from May 2026, cancelled with its fees unpaid, back in the
    pool on 2026-09-17: what alpha owes is not the next holder's balance."""
    rules, calendar = NumberRules(), OfficialCalendar()
    may = datetime(2026, 5, 4, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    async with opened_store(url) as store:
        await store.add_numbers([NumberRecord(PREPAID, rules.grade(PREPAID))], may)
        numbers = Inventory(store, rules, calendar, UNWATCHED)
        await numbers.act(PREPAID, may, lambda r, t: lifecycle.reserve(r, "sp-east", t, rules))
        await numbers.act(
            PREPAID, may, lambda r, t: lifecycle.apply(r, "alpha", "sp-east", t, rules)
        )
        await numbers.act(PREPAID, may, lambda r, t: lifecycle.submit(r, t, rules, calendar))
        await numbers.act(
            PREPAID, may + timedelta(days=20), lambda r, t: lifecycle.cancel(r, "op", t, rules)
        )
        await numbers.tick(may + timedelta(days=140))


def test_a_past_holders_debt_does_not_count_in_the_balance_a_fee_is_warned_against(
    config: Path, store_url: str
) -> None:
    asyncio.run(held_before(store_url))
    asyncio.run(paid(store_url, "120.00"))
    run(config, "account", "fees", "--day", "2026-12-03")
    assert Receiver.received == [
        {"event": "low_balance", "number": PREPAID, "balance": "20.00", "threshold": "50.00"}
    ]


async def book_at_once(url: str, paid_in: str, debits: tuple[str, str]) -> list[Decimal]:
    """Two bookings of one prepaid number through two stores (two processes, or two
    routers sharing one database), each reading the balance before the other writes: the
    warnings they raise, as the balance they report."""
    await paid(url, paid_in)
    warned: list[Decimal] = []
    alerts = BalanceAlerts(notify=lambda number, balance, threshold: warned.append(balance))
    watch = Watch(parse_tariffs("tariffs.yaml", TARIFFS), alerts)
    both_read = asyncio.Barrier(2)
    at = datetime(2026, 12, 3, 9, 0, tzinfo=SHANGHAI)

    async def book(store: Store, ref: str, amount: str) -> None:
        entry = LedgerEntry(PREPAID, at, -Decimal(amount), LedgerKind.ADJUSTMENT, ref)

        async def write() -> int:
            await both_read.wait()
            return await store.post_ledger([entry])

        await book_warning_low_balances(watch, store, [entry], write)

    async with opened_store(url) as first, opened_store(url) as second:
        await asyncio.gather(book(first, "a", debits[0]), book(second, "b", debits[1]))
    return warned


@pytest.mark.parametrize(
    ("debits", "warned"),
    [
        (("15.00", "15.00"), 1),  # 60 -> 45 -> 30: crossed once, not once per booking
        (("5.00", "8.00"), 1),  # 60 -> 55 -> 47: crossed by the two together
        (("3.00", "4.00"), 0),  # 60 -> 57 -> 53: not crossed
    ],
)
def test_bookings_at_once_warn_once_of_the_crossing_they_make_together(
    store_url: str, debits: tuple[str, str], warned: int
) -> None:
    warnings = asyncio.run(book_at_once(store_url, "60.00", debits))
    assert len(warnings) == warned
    assert all(balance < Decimal("50.00") for balance in warnings)


# --- a service provider's balance ------------------------------------------------------

PROVIDER_TARIFFS = TARIFFS.replace(
    "features:\n  recording: 100.00\n",
    "features:\n  recording: 100.00\n  ivr: 30.00\n  screen_pop: 45.00\n",
).replace(
    'features: {recording: 2026-12-03}\n  "4000000009"',
    'features: {recording: 2026-12-03, ivr: 2026-12-04, screen_pop: 2026-12-05}\n  "4000000009"',
)
"""4000000008's recording (100.00), IVR (30.00) and screen pop (45.00), switched on on 3, 4
and 5 December, deducted from sp-east, the provider holding it."""


def provider_warning(balance: str, threshold: str = "50.00") -> dict[str, str]:
    return {
        "event": "provider_low_balance",
        "provider": "sp-east",
        "balance": balance,
        "threshold": threshold,
    }


@pytest.fixture
def held_by_provider(stocked: Path) -> Path:
    """4000000008 applied for through sp-east, whose fees the provider pays."""
    assert PROVIDER_TARIFFS != TARIFFS
    (stocked / "tariffs.yaml").write_text(PROVIDER_TARIFFS, encoding="utf-8")
    applied(stocked)
    return stocked


def provider_topup(config: Path, amount: str, at: str) -> None:
    run(config, "account", "topup", "--provider", "sp-east", "--amount", amount, "--at", at)


def test_a_fee_taking_a_providers_balance_below_its_threshold_warns_once_per_crossing(
    held_by_provider: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The provider's warning is its own event, naming the provider; the number's own
    balance, which paid the opening and selection fees from nothing, crossed nothing."""
    caplog.set_level("WARNING", "hotline400.balance")
    provider_topup(held_by_provider, "120.00", "2026-12-02 09:00")
    run(held_by_provider, "account", "fees", "--day", "2026-12-03")  # 100.00: 20.00 left
    assert Receiver.received == [provider_warning("20.00")]
    run(held_by_provider, "account", "fees", "--day", "2026-12-04")  # 30.00: below already
    run(held_by_provider, "account", "fees", "--day", "2026-12-04")  # booked before
    assert Receiver.received == [provider_warning("20.00")]

    provider_topup(held_by_provider, "100.00", "2026-12-04 12:00")  # 90.00: above again
    run(held_by_provider, "account", "fees", "--day", "2026-12-05")  # 45.00: below again
    assert Receiver.received == [provider_warning("20.00"), provider_warning("45.00")]
    assert [r.getMessage() for r in caplog.records if r.name == "hotline400.balance"] == [
        "low balance: service provider sp-east has 20.00 yuan left, below its warning "
        "threshold of 50.00",
        "low balance: service provider sp-east has 45.00 yuan left, below its warning "
        "threshold of 50.00",
    ]


def test_a_providers_own_threshold_is_the_one_warned_against(held_by_provider: Path) -> None:
    run(held_by_provider, "providers", "set", "sp-east", "--low-balance-warning", "15.5")
    provider_topup(held_by_provider, "120.00", "2026-12-02 09:00")
    run(held_by_provider, "account", "fees", "--day", "2026-12-03")  # 20.00 left: above 15.50
    assert Receiver.received == []
    run(held_by_provider, "account", "fees", "--day", "2026-12-04")  # -10.00
    assert Receiver.received == [provider_warning("-10.00", "15.50")]


def test_a_number_topped_up_above_its_threshold_is_warned_again_when_it_falls_below(
    config: Path, store_url: str
) -> None:
    """The top-up takes its turn at the balance watch too: the fall after it is a new
    crossing, not one the watch saw before."""
    asyncio.run(paid(store_url, "120.00"))
    run(config, "account", "fees", "--day", "2026-12-03")  # 20.00 left
    run(config, "account", "topup", "--number", PREPAID, "--amount", "60.00",
        "--at", "2026-12-03 12:00")  # fmt: skip
    run(config, "bill", "--month", "2026-11", "--close", "--yes", "--today", "2026-12-04")
    assert Receiver.received == [
        {"event": "low_balance", "number": PREPAID, "balance": "20.00", "threshold": "50.00"},
        {"event": "low_balance", "number": PREPAID, "balance": "20.00", "threshold": "50.00"},
    ]
