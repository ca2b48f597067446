"""A call reads its number's counters only when something about it needs them: a cap, a
prepaid balance, or a package with included minutes. Otherwise it is priced from the
tariff alone, and a store that cannot be read does not keep it from being priced.

The unreadable store here is a real SQLite store whose directory does not exist: every
read of it fails as a broken disk would."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from rating.ledger import LedgerEntry, LedgerKind
from rating.tariff import Tariffs
from router.configuration.config_dir import load_config
from router.money.accounting import Accounting, IncludedTally
from router.money.balance_alerts import BalanceAlerts
from router.storage.cdr import PostLedger
from router.storage.sqlite import SQLiteStore
from tests.conftest import plan_from

SHANGHAI = ZoneInfo("Asia/Shanghai")
ARRIVED = datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI)
POSTPAID, WITH_MINUTES, PREPAID = "4006001234", "4006001235", "4006001236"
TARIFFS = f"""\
caller_tariffs:
  fixed: {{per_seconds: 60, charge: 0.11}}
  mobile: {{per_seconds: 60, charge: 0.15}}
  other: {{per_seconds: 60, charge: 0.11}}
packages:
  metered:
    nationwide: {{per_seconds: 60, charge: 0.60}}
  bundle:
    nationwide: {{per_seconds: 60, charge: 0.60}}
    changes:
      - {{announced: 2026-11-01, effective: 2026-12-01, included_minutes: 100}}
accounts:
  "{POSTPAID}": {{package: metered, prepaid: false}}
  "{WITH_MINUTES}": {{package: bundle, prepaid: false}}
  "{PREPAID}": {{package: metered}}
"""


def tariffs(tmp_path: Path) -> Tariffs:
    (tmp_path / "tariffs.yaml").write_text(TARIFFS)
    config = load_config(tmp_path)
    assert config.tariffs is not None, config.problems
    return config.tariffs


def accounting(store: SQLiteStore) -> Accounting:
    return Accounting(store, BalanceAlerts(), SHANGHAI, balance_seen=lambda *_: None)


def unreadable(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "no such directory" / "hotline400.db")


async def test_a_postpaid_number_without_caps_or_included_minutes_reads_nothing(
    tmp_path: Path,
) -> None:
    books = accounting(unreadable(tmp_path))
    call = await books.open_call(
        plan_from("default: {target: '13900000001'}"), tariffs(tmp_path), ARRIVED
    )
    assert call.rated and call.month == ""  # priced from the tariff, no counter read
    assert books.talk_limit(call, "mobile", "13900000001", ARRIVED) is None
    charged = books.charge(call, "c1", "mobile", ARRIVED, 60, "13900000001")
    assert charged is not None and charged[0].fields["callee_share"] == Decimal("0.60")


async def test_a_cap_a_balance_or_included_minutes_make_the_call_read_its_counters(
    tmp_path: Path,
) -> None:
    books = accounting(unreadable(tmp_path))
    rates = tariffs(tmp_path)
    capped = plan_from("caps: {monthly_calls: 10}\ndefault: {target: '13900000001'}")
    for plan in (
        capped,
        plan_from("default: {target: '13900000001'}", WITH_MINUTES),
        plan_from("default: {target: '13900000001'}", PREPAID),
    ):
        call = await books.open_call(plan, rates, ARRIVED)
        assert not call.rated, plan.number  # the read failed: connected without limits


async def test_minutes_included_from_a_later_change_are_counted(tmp_path: Path) -> None:
    """The bundle includes minutes only from its December change: a package that includes
    minutes in any of its versions reads what the month has used."""
    store = SQLiteStore(tmp_path / "hotline400.db", zone=SHANGHAI)
    await store.open()
    try:
        used = LedgerEntry(WITH_MINUTES, ARRIVED, Decimal("0.00"), LedgerKind.CALL, "c0", "n")
        await store.apply([PostLedger(used, included_seconds=1200)])
        books = accounting(store)
        plan = plan_from("default: {target: '13900000001'}", WITH_MINUTES)
        call = await books.open_call(plan, tariffs(tmp_path), ARRIVED)
    finally:
        await store.close()
    assert call.month == "2026-12"
    assert call.included_seconds_left(ARRIVED) == 100 * 60 - 1200


async def test_calls_that_overlap_share_the_included_minutes_left(tmp_path: Path) -> None:
    """Both calls read 10 included minutes left as they arrive; the one priced first takes
    8, so the other gets the 2 left and pays for the rest, as if they had not overlapped."""
    store = SQLiteStore(tmp_path / "hotline400.db", zone=SHANGHAI)
    await store.open()
    try:
        used = LedgerEntry(WITH_MINUTES, ARRIVED, Decimal("0.00"), LedgerKind.CALL, "c0", "n")
        await store.apply([PostLedger(used, included_seconds=90 * 60)])
        books = accounting(store)
        plan = plan_from("default: {target: '13900000001'}", WITH_MINUTES)
        rates = tariffs(tmp_path)
        first = await books.open_call(plan, rates, ARRIVED)
        second = await books.open_call(plan, rates, ARRIVED)
    finally:
        await store.close()
    charged_first = books.charge(first, "c1", "mobile", ARRIVED, 8 * 60, "13900000001")
    charged_second = books.charge(second, "c2", "mobile", ARRIVED, 5 * 60, "13900000001")
    assert charged_first is not None and charged_second is not None
    assert charged_first[1].included_seconds == 8 * 60
    assert charged_first[0].fields["callee_share"] == Decimal("0.00")
    assert charged_second[1].included_seconds == 2 * 60
    assert charged_second[0].fields["callee_share"] == Decimal("1.80")  # 3 minutes at 0.60


async def test_a_call_opened_after_another_was_priced_relies_on_its_read(tmp_path: Path) -> None:
    """What was priced before a call's read is the store's to show, not counted again."""
    store = SQLiteStore(tmp_path / "hotline400.db", zone=SHANGHAI)
    await store.open()
    try:
        books = accounting(store)
        plan = plan_from("default: {target: '13900000001'}", WITH_MINUTES)
        rates = tariffs(tmp_path)
        first = await books.open_call(plan, rates, ARRIVED)
        charged = books.charge(first, "c1", "mobile", ARRIVED, 30 * 60, "13900000001")
        assert charged is not None
        await store.apply(list(charged))
        second = await books.open_call(plan, rates, ARRIVED)
    finally:
        await store.close()
    assert second.included_seconds_left(ARRIVED) == 70 * 60
    charged_second = books.charge(second, "c2", "mobile", ARRIVED, 60 * 60, "13900000001")
    assert charged_second is not None and charged_second[1].included_seconds == 60 * 60


def test_the_tally_keeps_the_current_month_and_the_one_before() -> None:
    tally = IncludedTally()
    tally.add("4006001235", "2026-11", 60)
    tally.add("4006001235", "2026-12", 120)
    tally.add("4006001235", "2026-12", 30)
    assert (tally.of("4006001235", "2026-11"), tally.of("4006001235", "2026-12")) == (60, 150)
    tally.add("4006001235", "2027-01", 10)
    assert tally.of("4006001235", "2026-11") == 0  # dropped
    assert (tally.of("4006001235", "2026-12"), tally.of("4006001235", "2027-01")) == (150, 10)
    tally.add("4006001235", "", 99)  # no counters read: nothing to count against
    assert tally.of("4006001235", "") == 0


def test_a_call_of_a_month_older_than_the_two_kept_leaves_the_tally_as_it_was() -> None:
    """A late-priced call (a clock stepped back, a crashed router's call adopted late) of a
    month already dropped must still be priced: the store's counters count it once written."""
    tally = IncludedTally()
    tally.add("4006001235", "2026-12", 120)
    tally.add("4006001235", "2027-01", 10)
    tally.add("4006001235", "2026-10", 60)
    assert tally.of("4006001235", "2026-10") == 0
    assert (tally.of("4006001235", "2026-12"), tally.of("4006001235", "2027-01")) == (120, 10)
