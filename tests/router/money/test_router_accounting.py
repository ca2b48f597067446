"""Money on the call path: prices booked, balances and caps enforced, talk time limited.

Tariffs of the test config (tests/e2e_config/tariffs.yaml): package e2e-regional charges the
subscriber 0.60 per started minute when the call is answered in its home area, 0.12 per
started 6 s when answered long distance; a fixed-line caller pays 0.22 for the first 3
minutes. The simulator's 13800000051 (a Beijing mobile, area 010) answers and talks 30 s.
"""

import asyncio
import json
import shutil
import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from rating.ledger import LedgerEntry, LedgerKind
from router.daemon import Daemon
from router.simulation.asterisk_agi import CallerHangup
from router.simulation.asterisk_agi import Outcome as Phone
from router.storage.cdr import CdrOp, FinishCall, Outcome, PostLedger
from tests.conftest import (
    E2E_CONFIG,
    MONDAY_MORNING,
    call,
    finished_cdr,
    running_router,
    warning_facts,
)

PREPAID, POSTPAID = "4000000008", "4000000009"


async def pay(router: Daemon, number: str, amount: str, ref: str) -> None:
    entry = LedgerEntry(number, MONDAY_MORNING, Decimal(amount), LedgerKind.PAYMENT, ref)
    await router.store.post_ledger([entry])


async def settled(router: Daemon) -> None:
    """Wait until the writer has booked everything submitted so far."""
    async with asyncio.timeout(5):
        while router.cdrs.stats().queue_depth:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)


async def test_an_answered_call_is_priced_and_booked_on_the_ledger(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        await pay(router, PREPAID, "20.00", "receipt-1")
        result = await call(router, dialled=PREPAID, uniqueid="m.1")
        cdr = await finished_cdr(router, "m.1")
        await settled(router)
        usage = await router.store.usage(PREPAID, "2026-11", "2026-11-23")
        ledger = await router.store.ledger(PREPAID)
    assert result.commands[0] == 'EXEC Dial "Local/13800000051@phones,20,L(1980000)"'
    assert (cdr.caller_share, cdr.callee_share, cdr.total) == (
        Decimal("0.22"),
        Decimal("0.60"),
        Decimal("0.82"),
    )
    assert cdr.tariff_id == "e2e-regional@e2e"
    assert [(e.kind, e.amount, e.ref) for e in ledger] == [
        (LedgerKind.PAYMENT, Decimal("20.00"), "receipt-1"),
        (LedgerKind.CALL, Decimal("-0.60"), "m.1"),
    ]
    assert (usage.balance, usage.month_cost, usage.day_cost, usage.month_calls) == (
        Decimal("19.40"),
        Decimal("0.60"),
        Decimal("0.60"),
        1,
    )


async def test_a_priced_call_is_completed_by_one_finish_that_carries_its_price(
    tmp_path: Path,
) -> None:
    """The finishes of a batch that set the same columns share one UPDATE: a priced call's
    end and price go in one finish, then its ledger entry."""
    async with running_router(tmp_path) as router:
        await pay(router, PREPAID, "20.00", "receipt-1")
        submitted: list[CdrOp] = []
        submit = router.cdrs.submit

        def recorded(op: CdrOp) -> None:
            submitted.append(op)
            submit(op)

        router.cdrs.submit = recorded  # type: ignore[method-assign]
        await call(router, dialled=PREPAID, uniqueid="m.9")
        cdr = await finished_cdr(router, "m.9")
    finishes = [op for op in submitted if isinstance(op, FinishCall)]
    assert len(finishes) == 1
    assert finishes[0].fields["outcome"] == Outcome.ANSWERED
    assert finishes[0].fields["callee_share"] == cdr.callee_share == Decimal("0.60")
    assert [type(op) for op in submitted[-2:]] == [FinishCall, PostLedger]


async def test_a_call_that_cannot_be_priced_is_completed_unpriced_for_rate_to_price(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def pricing_breaks(*_args: object) -> None:
        raise RuntimeError("pricing broke")

    async with running_router(tmp_path) as router:
        await pay(router, PREPAID, "20.00", "receipt-1")
        monkeypatch.setattr(router.services.accounting, "charge", pricing_breaks)
        await call(router, dialled=PREPAID, uniqueid="m.10")
        cdr = await finished_cdr(router, "m.10")
        await settled(router)
        ledger = await router.store.ledger(PREPAID)
    assert (cdr.outcome, cdr.billable_seconds) == (Outcome.ANSWERED, 30)
    assert (cdr.callee_share, cdr.total) == (None, None)
    assert [e.kind for e in ledger] == [LedgerKind.PAYMENT]


async def test_a_call_is_priced_by_the_tariff_in_force_when_it_is_answered(
    tmp_path: Path,
) -> None:
    """A rise announced on 1 October takes effect on Monday 23 November: Sunday's call keeps
    the old long-distance rate, Monday's is priced and named by the change."""
    config = tmp_path / "dated"
    shutil.copytree(E2E_CONFIG, config)
    tariffs = config / "tariffs.yaml"
    tariffs.write_text(
        tariffs.read_text().replace(
            "    long_distance: {per_seconds: 6, charge: 0.12}\n",
            "    long_distance: {per_seconds: 6, charge: 0.12}\n    changes:\n"
            "      - {announced: 2026-10-01, effective: 2026-11-23,\n"
            "         long_distance: {per_seconds: 6, charge: 0.18}}\n",
        )
    )
    now = [MONDAY_MORNING - timedelta(days=1)]
    async with running_router(tmp_path / "run", config, clock=lambda: now[0]) as router:
        await call(router, dialled=POSTPAID, uniqueid="d.sunday")
        sunday = await finished_cdr(router, "d.sunday")
        now[0] = MONDAY_MORNING
        await call(router, dialled=POSTPAID, uniqueid="d.monday")
        monday = await finished_cdr(router, "d.monday")
    assert (sunday.callee_share, sunday.tariff_id) == (Decimal("0.60"), "e2e-regional@e2e")
    assert (monday.callee_share, monday.tariff_id) == (
        Decimal("0.90"),
        "e2e-regional@e2e/2026-11-23",
    )


async def test_a_prepaid_number_without_balance_is_in_arrears(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled=PREPAID, uniqueid="m.2")
        cdr = await finished_cdr(router, "m.2")
    assert result.commands[-1] == 'EXEC Hangup "63"'
    assert (cdr.outcome, cdr.note) == (Outcome.SUSPENDED, "arrears: prepaid balance is 0.00")


async def test_the_monthly_call_cap_lets_exactly_the_cap_through(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        await pay(router, PREPAID, "50.00", "receipt-2")
        results = await asyncio.gather(
            *(call(router, dialled=PREPAID, uniqueid=f"cap.{n}") for n in range(5))
        )
    statuses = sorted(r.variables["HOTLINE_STATUS"] for r in results)
    assert statuses == ["answered", "answered", "capped", "capped", "capped"]
    capped = [r for r in results if r.variables["HOTLINE_STATUS"] == "capped"]
    assert all(r.commands[-1] == 'EXEC Hangup "17"' for r in capped)


async def test_the_monthly_call_cap_counts_incoming_calls_answered_or_not(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path) as router:
        await pay(router, PREPAID, "50.00", "receipt-3")
        busy = {"13800000051": Phone.busy()}
        missed = await call(router, dialled=PREPAID, uniqueid="cap.busy", destinations=busy)
        later = [await call(router, dialled=PREPAID, uniqueid=f"cap.ok.{n}") for n in range(2)]
        usage = await router.store.usage(PREPAID, "2026-11", "2026-11-23")
        refused = await finished_cdr(router, "cap.ok.1")
    assert missed.variables["HOTLINE_STATUS"] == "busy"
    assert [r.variables["HOTLINE_STATUS"] for r in later] == ["answered", "capped"]
    assert refused.note == "capped: monthly call cap reached (2 of 2 incoming calls)"
    assert usage.month_calls == 2


async def test_a_cap_counting_answered_calls_gets_the_unit_of_an_unanswered_call_back(
    tmp_path: Path,
) -> None:
    config = Path(shutil.copytree(E2E_CONFIG, tmp_path / "answered-only"))
    plan = config / "plans" / f"{PREPAID}.yaml"
    plan.write_text(
        plan.read_text().replace(
            "monthly_calls: 2\n", "monthly_calls: 2\n  monthly_calls_counting: answered\n"
        )
    )
    async with running_router(tmp_path, config=config) as router:
        await pay(router, PREPAID, "50.00", "receipt-3")
        busy = {"13800000051": Phone.busy()}
        missed = await call(router, dialled=PREPAID, uniqueid="cap.busy", destinations=busy)
        later = [await call(router, dialled=PREPAID, uniqueid=f"cap.ok.{n}") for n in range(3)]
        usage = await router.store.usage(PREPAID, "2026-11", "2026-11-23")
        refused = await finished_cdr(router, "cap.ok.2")
    assert missed.variables["HOTLINE_STATUS"] == "busy"
    assert [r.variables["HOTLINE_STATUS"] for r in later] == ["answered", "answered", "capped"]
    assert refused.note == "capped: monthly call cap reached (2 of 2 answered calls)"
    assert usage.month_calls == 2


def capped_config(tmp_path: Path, caps: str) -> Path:
    """The e2e config with 4000000008's caps replaced by `caps` and the PIN 2468 asked."""
    config = Path(shutil.copytree(E2E_CONFIG, tmp_path / "capped"))
    pin = (config / "plans" / "4000000006.yaml").read_text().split("pin:\n")[1]
    pin = pin.split("default:")[0]
    plan = config / "plans" / f"{PREPAID}.yaml"
    text = plan.read_text().replace("  monthly_calls: 2\n", caps)
    plan.write_text(text.replace("default:", f"pin:\n{pin}default:"))
    return config


async def test_a_call_ended_before_any_dial_gives_its_unit_of_the_cap_back(
    tmp_path: Path,
) -> None:
    """Refused for want of a billing increment, failed at the PIN, or left by the caller
    before ringing: the call was never put through, so the cap of incoming calls still lets
    two calls through."""
    config = capped_config(tmp_path, "  monthly_calls: 2\n")
    async with running_router(tmp_path, config=config) as router:
        await pay(router, PREPAID, "0.30", "receipt-5")
        poor = await call(router, dialled=PREPAID, uniqueid="unit.poor", dtmf=("2468#",))
        await pay(router, PREPAID, "50.00", "receipt-6")
        wrong = await call(router, dialled=PREPAID, uniqueid="unit.pin", dtmf=("1111#",) * 3)
        gone = await call(
            router, dialled=PREPAID, uniqueid="unit.gone", hangup=CallerHangup.at_prompt()
        )
        later = [
            await call(router, dialled=PREPAID, uniqueid=f"unit.ok.{n}", dtmf=("2468#",))
            for n in range(3)
        ]
        usage = await router.store.usage(PREPAID, "2026-11", "2026-11-23")
    assert [r.variables["HOTLINE_STATUS"] for r in (poor, wrong, gone)] == [
        "capped",
        "pin_failed",
        "noanswer",
    ]
    assert [r.variables["HOTLINE_STATUS"] for r in later] == ["answered", "answered", "capped"]
    assert usage.month_calls == 2


async def test_a_unit_of_a_cap_counting_answered_calls_is_given_back_once(
    tmp_path: Path,
) -> None:
    config = capped_config(tmp_path, "  monthly_calls: 2\n  monthly_calls_counting: answered\n")
    async with running_router(tmp_path, config=config) as router:
        await pay(router, PREPAID, "50.00", "receipt-7")
        await call(router, dialled=PREPAID, uniqueid="once.ok", dtmf=("2468#",))
        await call(router, dialled=PREPAID, uniqueid="once.pin", dtmf=("1111#",) * 3)
        usage = await router.store.usage(PREPAID, "2026-11", "2026-11-23")
    assert usage.month_calls == 1


async def test_a_cost_cap_limits_the_talk_time_then_refuses_calls(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        results = []
        for n in range(5):
            results.append(await call(router, dialled=POSTPAID, uniqueid=f"day.{n}"))
            await settled(router)
        cdrs = [await finished_cdr(router, f"day.{n}") for n in range(5)]
    # long distance: 30 s = 5 increments of 6 s at 0.12; the daily cap is 2.00
    assert [cdr.callee_share for cdr in cdrs[:3]] == [Decimal("0.60")] * 3
    assert results[3].commands[0] == 'EXEC Dial "Local/13800000051@phones,20,L(6000)"'
    assert (cdrs[3].billable_seconds, cdrs[3].callee_share) == (6, Decimal("0.12"))
    assert results[4].commands[0].startswith('EXEC MSet "HOTLINE_STATUS=capped,')
    assert cdrs[4].outcome is Outcome.CAPPED


async def test_a_balance_spent_by_a_charge_not_yet_written_connects_no_more_calls(
    tmp_path: Path,
) -> None:
    """The first call spends the whole 0.60; the second arrives while that charge still
    waits in the CDR writer's batch, so the store still says 0.60: the router knows it is
    spent, and the number is in arrears."""
    async with running_router(tmp_path, cdr_batch_interval=1.0) as router:
        await pay(router, PREPAID, "0.60", "receipt-11")
        await call(router, dialled=PREPAID, uniqueid="spent.0")
        second = await call(router, dialled=PREPAID, uniqueid="spent.1")
        cdr = await finished_cdr(router, "spent.1")
        await settled(router)
        usage = await router.store.usage(PREPAID, "2026-11", "2026-11-23")
    assert second.commands[-1] == 'EXEC Hangup "63"'
    assert (cdr.outcome, cdr.note) == (Outcome.SUSPENDED, "arrears: prepaid balance is 0.00")
    assert usage.balance == Decimal("0.00")


async def test_a_cost_cap_counts_the_charges_not_yet_written(tmp_path: Path) -> None:
    """As test_a_cost_cap_limits_the_talk_time_then_refuses_calls, the calls one right
    after the other, their charges still in the CDR writer's batch."""
    async with running_router(tmp_path, cdr_batch_interval=1.0) as router:
        results = [await call(router, dialled=POSTPAID, uniqueid=f"fast.{n}") for n in range(5)]
        await settled(router)
        usage = await router.store.usage(POSTPAID, "2026-11", "2026-11-23")
    assert results[3].commands[0] == 'EXEC Dial "Local/13800000051@phones,20,L(6000)"'
    assert results[4].commands[0].startswith('EXEC MSet "HOTLINE_STATUS=capped,')
    assert usage.day_cost == Decimal("1.92")


class Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

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


async def test_crossing_the_low_balance_threshold_posts_one_warning(
    tmp_path: Path, webhook: str
) -> None:
    async with running_router(tmp_path, low_balance_webhook=webhook) as router:
        await pay(router, PREPAID, "5.50", "receipt-4")
        for n in range(2):
            await call(router, dialled=PREPAID, uniqueid=f"low.{n}")
            await settled(router)
        assert router.alerts.raised == 1
    assert Receiver.received == [
        {"event": "low_balance", "number": PREPAID, "balance": "4.90", "threshold": "5.00"}
    ]


async def test_overlapping_calls_crossing_the_threshold_post_one_warning(
    tmp_path: Path, webhook: str
) -> None:
    """Both calls read 5.50 as they arrive; the second is priced from what the first left."""
    async with running_router(tmp_path, low_balance_webhook=webhook) as router:
        await pay(router, PREPAID, "5.50", "receipt-8")
        await asyncio.gather(
            *(
                call(router, time_scale=0.01, dialled=PREPAID, uniqueid=f"both.{n}")
                for n in range(2)
            )
        )
        await settled(router)
        usage = await router.store.usage(PREPAID, "2026-11", "2026-11-23")
        assert router.alerts.raised == 1
    assert usage.balance == Decimal("4.30")
    assert Receiver.received == [
        {"event": "low_balance", "number": PREPAID, "balance": "4.90", "threshold": "5.00"}
    ]


async def test_a_call_arriving_before_the_last_ones_charge_is_written_warns_no_second_time(
    tmp_path: Path, webhook: str
) -> None:
    """The first call takes 5.50 to 4.90 and warns; the second arrives while that charge
    still waits in the CDR writer's batch, so the balance it reads is 5.50: it is priced
    from the 4.90 this router knows is left, and the warning is not repeated."""
    async with running_router(
        tmp_path, low_balance_webhook=webhook, cdr_batch_interval=1.0
    ) as router:
        await pay(router, PREPAID, "5.50", "receipt-10")
        for n in range(2):
            await call(router, dialled=PREPAID, uniqueid=f"batched.{n}")
        await settled(router)
        usage = await router.store.usage(PREPAID, "2026-11", "2026-11-23")
        assert router.alerts.raised == 1
    assert usage.balance == Decimal("4.30")
    assert Receiver.received == [
        {"event": "low_balance", "number": PREPAID, "balance": "4.90", "threshold": "5.00"}
    ]


async def test_a_call_behind_a_pin_is_charged_no_more_talk_than_its_limit(tmp_path: Path) -> None:
    """The router answered for the PIN, and a dialplan without the answer hook leaves the
    ring counted as talk when AMI does not tell it; Asterisk cut the talk at L() all the
    same, and so does the price."""
    config = capped_config(tmp_path, "  monthly_calls: 2\n")
    async with running_router(tmp_path, config=config) as router:
        await pay(router, PREPAID, "1.00", "receipt-9")
        phone = {"13800000051": Phone.answers(talk_s=200, ring_s=10)}
        result = await call(
            router,
            dialled=PREPAID,
            uniqueid="pin.long",
            dtmf=("2468#",),
            destinations=phone,
            answer_hook=False,
        )
        cdr = await finished_cdr(router, "pin.long")
        await settled(router)
        usage = await router.store.usage(PREPAID, "2026-11", "2026-11-23")
    hook = f"U(hotline400-answered^{result.env['agi_channel']})"
    assert f'EXEC Dial "Local/13800000051@phones,20,L(60000){hook}"' in result.commands
    assert (cdr.billable_seconds, cdr.callee_share, usage.balance) == (
        60,
        Decimal("0.60"),
        Decimal("0.40"),
    )
