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
from router.money.accounting import Accounting
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
