"""A call is priced at its answer instant: by the rates in force then, and with the included
minutes of the month it is answered in (rating.billing_time). The talk limit given to Dial
must hold wherever in the ring the answer falls, and a call answered after the month it
arrived in takes the new month's minutes, not what was left of the old one's."""

from __future__ import annotations

import logging
import shutil
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rating.ledger import LedgerEntry, LedgerKind
from rating.money import ZERO
from rating.tariff import Tariffs
from rating.tariff_loader import parse_tariffs
from router.money.accounting import Accounting
from router.money.balance_alerts import BalanceAlerts
from router.simulation.asterisk_agi import Outcome as Phone
from router.storage.cdr import PostLedger
from router.storage.protocol import StoreUnavailable
from router.storage.rows import UsageSnapshot
from tests.conftest import E2E_CONFIG, call, finished_cdr, plan_from, running_router
from tests.router.money.test_router_accounting import POSTPAID, PREPAID, settled

SHANGHAI = ZoneInfo("Asia/Shanghai")
NUMBER = "4006001234"
PLAN = plan_from("default: {target: '13800000051'}", NUMBER)
ANSWERS = "13800000051"


def tariffs(package: str, prepaid: bool) -> Tariffs:
    return parse_tariffs(
        "tariffs.yaml",
        f"""\
caller_tariffs:
  fixed: {{per_seconds: 60, charge: 0.11}}
  mobile: {{per_seconds: 60, charge: 0.15}}
  other: {{per_seconds: 60, charge: 0.11}}
packages:
  p:
{package}
accounts:
  "{NUMBER}": {{package: p, prepaid: {str(prepaid).lower()}}}
""",
    )


BUNDLE = tariffs(
    "    included_minutes: 100\n    nationwide: {per_seconds: 60, charge: 0.20}", False
)
NIGHT_RATE = tariffs(
    "    nationwide: {per_seconds: 60, charge: 0.30}\n"
    "    periods:\n"
    '      - {name: night, time: ["22:00-07:00"], nationwide: {per_seconds: 60, charge: 0.10}}',
    True,
)


def at(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=SHANGHAI)


class Counters:
    """A store's `usage` by month: each month's included seconds used, one balance; every
    read recorded."""

    def __init__(self, used: dict[str, int], balance: str | None = None) -> None:
        self.used = used
        self.balance = None if balance is None else Decimal(balance)
        self.reads: list[tuple[str, str]] = []
        self.broken_for: set[str] = set()

    async def usage(self, number: str, month: str, day: str) -> UsageSnapshot:
        self.reads.append((month, day))
        if month in self.broken_for:
            raise StoreUnavailable("disk I/O error")
        zero = Decimal("0.00")
        return UsageSnapshot(zero, 0, self.used.get(month, 0), zero, self.balance)


def accounting(store: Counters) -> Accounting:
    return Accounting(store, BalanceAlerts(), SHANGHAI, balance_seen=lambda *_: None)  # type: ignore[arg-type]


# --- the month a call is answered in ---------------------------------------------------


async def test_a_call_answered_in_a_new_month_takes_that_months_included_minutes() -> None:
    """Arrived 2026-11-30 23:59:50 with November's 100 minutes used up, dialled at once
    (20 s ring), answered 2026-12-01 00:00:10: a December call, within December's minutes."""
    store = Counters({"2026-11": 6000})
    books = accounting(store)
    call = await books.open_call(PLAN, BUNDLE, at(2026, 11, 30, 23, 59, 50))
    dial = at(2026, 11, 30, 23, 59, 50)
    assert books.answer_month_unread(call, dial, 20)
    call = await books.read_answer_month(call, dial, 20)
    assert store.reads == [("2026-11", "2026-11-30"), ("2026-12", "2026-12-01")]
    assert not books.answer_month_unread(call, dial, 20)  # read once
    charged = books.charge(call, "c1", "fixed", at(2026, 12, 1, 0, 0, 10), 120, ANSWERS)
    assert charged is not None
    money, post = charged
    assert (money.fields["callee_share"], post.included_seconds) == (Decimal("0.00"), 120)
    assert post.entry.at == at(2026, 12, 1, 0, 0, 10)


async def test_a_call_that_arrived_the_month_before_its_dial_reads_the_dials_month() -> None:
    """Arrived 23:58 on 30 November, through the menus and a queue until 00:01: the Dial
    rings wholly in December."""
    store = Counters({"2026-11": 6000})
    books = accounting(store)
    call = await books.open_call(PLAN, BUNDLE, at(2026, 11, 30, 23, 58))
    dial = at(2026, 12, 1, 0, 1)
    assert books.answer_month_unread(call, dial, 20)
    call = await books.read_answer_month(call, dial, 20)
    assert store.reads[-1] == ("2026-12", "2026-12-01")
    charged = books.charge(call, "c1", "fixed", at(2026, 12, 1, 0, 1, 15), 60, ANSWERS)
    assert charged is not None and charged[1].included_seconds == 60


async def test_the_same_dial_answered_before_midnight_is_a_november_call() -> None:
    store = Counters({"2026-11": 6000})
    books = accounting(store)
    call = await books.open_call(PLAN, BUNDLE, at(2026, 11, 30, 23, 59, 40))
    call = await books.read_answer_month(call, at(2026, 11, 30, 23, 59, 40), 20)
    charged = books.charge(call, "c1", "fixed", at(2026, 11, 30, 23, 59, 55), 120, ANSWERS)
    assert charged is not None
    money, post = charged
    assert (money.fields["callee_share"], post.included_seconds) == (Decimal("0.40"), 0)


async def test_calls_answered_in_the_new_month_share_its_minutes() -> None:
    """The tally of included seconds taken is kept by the month a call is answered in: a
    December call arriving in November counts against December, for the calls after it."""
    store = Counters({"2026-11": 5940, "2026-12": 5880})  # 1 minute, 2 minutes left
    books = accounting(store)
    late = await books.open_call(PLAN, BUNDLE, at(2026, 11, 30, 23, 59, 50))
    late = await books.read_answer_month(late, at(2026, 11, 30, 23, 59, 50), 20)
    december = await books.open_call(PLAN, BUNDLE, at(2026, 12, 1, 0, 0, 5))
    first = books.charge(late, "c1", "fixed", at(2026, 12, 1, 0, 0, 10), 120, ANSWERS)
    second = books.charge(december, "c2", "fixed", at(2026, 12, 1, 0, 0, 15), 120, ANSWERS)
    assert first is not None and second is not None
    assert (first[1].included_seconds, first[0].fields["callee_share"]) == (120, Decimal("0.00"))
    # December's 2 minutes went to the first call; November's minute is left untouched
    assert (second[1].included_seconds, second[0].fields["callee_share"]) == (0, Decimal("0.40"))
    november = await books.open_call(PLAN, BUNDLE, at(2026, 11, 30, 23, 59, 58))
    assert november.included_seconds_left(at(2026, 11, 30, 23, 59, 58)) == 60


async def test_a_call_dialled_within_its_month_reads_nothing_more() -> None:
    store = Counters({"2026-11": 0})
    books = accounting(store)
    call = await books.open_call(PLAN, BUNDLE, at(2026, 11, 30, 23, 59, 0))
    assert not books.answer_month_unread(call, at(2026, 11, 30, 23, 59, 0), 20)
    assert store.reads == [("2026-11", "2026-11-30")]


async def test_a_package_without_included_minutes_never_reads_another_month() -> None:
    store = Counters({}, balance="5.00")
    books = accounting(store)
    call = await books.open_call(PLAN, NIGHT_RATE, at(2026, 11, 30, 23, 59, 50))
    assert call.month_ends is None
    assert not books.answer_month_unread(call, at(2026, 11, 30, 23, 59, 50), 120)
    charged = books.charge(call, "c1", "fixed", at(2026, 12, 1, 0, 0, 10), 60, ANSWERS)
    assert charged is not None and charged[0].fields["callee_share"] == Decimal("0.10")


async def test_a_call_answered_in_a_month_not_read_is_left_for_rate_to_price(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Counters({"2026-11": 6000})
    store.broken_for.add("2026-12")
    books = accounting(store)
    call = await books.open_call(PLAN, BUNDLE, at(2026, 11, 30, 23, 59, 50))
    with caplog.at_level(logging.WARNING, "hotline400.accounting"):
        call = await books.read_answer_month(call, at(2026, 11, 30, 23, 59, 50), 20)
        charged = books.charge(call, "c1", "fixed", at(2026, 12, 1, 0, 0, 10), 120, ANSWERS)
    assert charged is None
    assert "left unpriced for hotline400 rate" in caplog.text


# --- the talk limit over the ring --------------------------------------------------------


async def test_the_talk_limit_holds_at_the_dearer_rate_a_ring_may_run_into() -> None:
    """Balance 1.50, 0.10/min until 07:00 and 0.30/min after. Dialled 06:59:50 with a 20 s
    ring, the call may be answered at 0.30: 5 minutes, not 15; answered 07:00:05 and talking
    all of them, it spends the balance exactly."""
    books = accounting(Counters({}, balance="1.50"))
    call = await books.open_call(PLAN, NIGHT_RATE, at(2026, 11, 24, 6, 59, 45))
    limit = books.talk_limit(call, "fixed", ANSWERS, at(2026, 11, 24, 6, 59, 50), 20)
    assert limit == 300
    charged = books.charge(call, "c1", "fixed", at(2026, 11, 24, 7, 0, 5), 300, ANSWERS)
    assert charged is not None and charged[0].fields["callee_share"] == Decimal("1.50")


@pytest.mark.parametrize(
    ("dialled", "expected"),
    [
        (at(2026, 11, 24, 6, 0), 900),  # night all through the ring
        (at(2026, 11, 24, 6, 59, 30), 900),  # the ring (and its slack) ends before 07:00
        (at(2026, 11, 24, 6, 59, 39), 300),  # ... or at 07:00:01
        (at(2026, 11, 24, 21, 59, 50), 300),  # day rate now, night later: the dearer holds
        (at(2026, 11, 24, 12, 0), 300),
    ],
)
async def test_the_talk_limit_is_the_smallest_over_the_ring(
    dialled: datetime, expected: int
) -> None:
    books = accounting(Counters({}, balance="1.50"))
    call = await books.open_call(PLAN, NIGHT_RATE, dialled)
    assert books.talk_limit(call, "fixed", ANSWERS, dialled, 20) == expected


async def test_the_talk_limit_counts_the_included_minutes_of_the_month_answered_in() -> None:
    """Prepaid 1.00 at 0.20/min with 100 included minutes a month: November has 10 left,
    December (read before the Dial) none; dialled 23:59:50, either may price the call."""
    bundle = tariffs(
        "    included_minutes: 100\n    nationwide: {per_seconds: 60, charge: 0.20}", True
    )
    store = Counters({"2026-11": 5400, "2026-12": 6000}, balance="1.00")
    books = accounting(store)
    dialled = at(2026, 11, 30, 23, 59, 50)
    call = await books.open_call(PLAN, bundle, dialled)
    within_november = books.talk_limit(call, "fixed", ANSWERS, dialled - timedelta(hours=1), 20)
    assert within_november == 10 * 60 + 5 * 60
    assert books.talk_limit(call, "fixed", ANSWERS, dialled, 20) == 5 * 60  # December unknown
    call = await books.read_answer_month(call, dialled, 20)
    assert books.talk_limit(call, "fixed", ANSWERS, dialled, 20) == 5 * 60
    store.used["2026-12"] = 0
    fresh = await books.read_answer_month(await books.open_call(PLAN, bundle, dialled), dialled, 20)
    assert books.talk_limit(fresh, "fixed", ANSWERS, dialled, 20) == 10 * 60 + 5 * 60


async def test_a_price_change_taking_effect_within_the_ring_bounds_the_talk_limit() -> None:
    rise = tariffs(
        "    nationwide: {per_seconds: 60, charge: 0.10}\n"
        "    changes:\n"
        "      - {announced: 2026-10-01, effective: 2026-11-25,"
        " nationwide: {per_seconds: 60, charge: 0.50}}",
        True,
    )
    books = accounting(Counters({}, balance="1.00"))
    dialled = at(2026, 11, 24, 23, 59, 50)
    call = await books.open_call(PLAN, rise, dialled)
    assert books.talk_limit(call, "fixed", ANSWERS, dialled - timedelta(minutes=5), 20) == 600
    assert books.talk_limit(call, "fixed", ANSWERS, dialled, 20) == 120


# --- through the router ------------------------------------------------------------------


def e2e_tariffs(tmp_path: Path, package_lines: str) -> Path:
    """The end-to-end configuration with `package_lines` added to package e2e-regional."""
    config = Path(shutil.copytree(E2E_CONFIG, tmp_path / "config-edited"))
    tariffs_file = config / "tariffs.yaml"
    standard = "    long_distance: {per_seconds: 6, charge: 0.12}\n"
    text = tariffs_file.read_text()
    assert standard in text
    tariffs_file.write_text(text.replace(standard, standard + package_lines))
    return config


async def test_the_router_prices_a_call_answered_after_midnight_with_the_new_months_minutes(
    tmp_path: Path,
) -> None:
    """4000000009 (long distance, 0.12/6s) with 10 included minutes a month, November's all
    used; a call arrives 23:59:55 on 30 November and is answered after 10 s of ringing."""
    config = e2e_tariffs(tmp_path, "    included_minutes: 10\n")
    clock = at(2026, 11, 30, 23, 59, 55)
    async with running_router(tmp_path / "run", config, clock=lambda: clock) as router:
        used = LedgerEntry(POSTPAID, at(2026, 11, 30, 12), ZERO, LedgerKind.CALL, "c0", "n")
        await router.store.apply([PostLedger(used, included_seconds=600)])
        rings = {ANSWERS: Phone.answers(talk_s=30, ring_s=10)}
        await call(router, dialled=POSTPAID, uniqueid="turn.1", destinations=rings)
        cdr = await finished_cdr(router, "turn.1")
        await settled(router)
        december = await router.store.usage(POSTPAID, "2026-12", "2026-12-01")
        november = await router.store.usage(POSTPAID, "2026-11", "2026-11-30")
    assert cdr.answered_at == at(2026, 12, 1, 0, 0, 5)
    assert (cdr.callee_share, december.included_used, november.included_used) == (ZERO, 30, 600)


async def test_the_router_limits_talk_at_the_rate_the_ring_may_run_into(tmp_path: Path) -> None:
    """4000000008 answered at home: 0.60/min, 0.20/min at night until 07:00; balance 1.20.
    Dialled at 06:59:55 the call may be answered at the day rate: L() allows 2 minutes."""
    night = (
        '    periods:\n      - {name: night, time: ["22:00-07:00"],'
        " local: {per_seconds: 60, charge: 0.20}}\n"
    )
    config = e2e_tariffs(tmp_path, night)
    now = [at(2026, 11, 24, 6, 0)]
    async with running_router(tmp_path / "run", config, clock=lambda: now[0]) as router:
        payment = LedgerEntry(PREPAID, now[0], Decimal("1.20"), LedgerKind.PAYMENT, "r1")
        await router.store.post_ledger([payment])
        at_night = await call(router, dialled=PREPAID, uniqueid="night.1")
        await settled(router)
        await router.store.post_ledger(
            [LedgerEntry(PREPAID, now[0], Decimal("0.20"), LedgerKind.PAYMENT, "r2")]
        )
        now[0] = at(2026, 11, 24, 6, 59, 55)
        at_dawn = await call(router, dialled=PREPAID, uniqueid="night.2")
    assert at_night.commands[0] == 'EXEC Dial "Local/13800000051@phones,20,L(360000)"'
    assert at_dawn.commands[0] == 'EXEC Dial "Local/13800000051@phones,20,L(120000)"'
