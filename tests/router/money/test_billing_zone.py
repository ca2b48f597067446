"""One billing time zone, router.yaml's `timezone`: the store writes the usage counters by
its days and months, the router reads them by the same ones (a plan's own `timezone` only
places its schedules), and the tariffs price and bill in it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dialplan.errors import ConfigError
from rating.ledger import LedgerEntry, LedgerKind
from router.configuration.config_dir import load_config
from router.configuration.settings import load_settings
from router.money.accounting import Accounting
from router.money.balance_alerts import BalanceAlerts
from router.storage.cdr import PostLedger
from router.storage.sqlite import SQLiteStore
from tests.conftest import REPO, plan_from

ROOT = REPO
SHANGHAI = ZoneInfo("Asia/Shanghai")
URUMQI = ZoneInfo("Asia/Urumqi")  # two hours behind: 00:30 in Shanghai is 22:30 the day before
NUMBER = "4006001234"


async def test_counters_are_read_by_the_billing_day_not_by_the_plans_zone(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hotline400.db", zone=SHANGHAI)
    await store.open()
    try:
        charged_at = datetime(2026, 12, 1, 0, 10, tzinfo=SHANGHAI)
        entry = LedgerEntry(NUMBER, charged_at, Decimal("-5.00"), LedgerKind.CALL, "c1", "local")
        await store.apply([PostLedger(entry)])
        plan = plan_from(
            """
            timezone: Asia/Urumqi
            caps: {daily_cost: 100, monthly_cost: 1000}
            default: {target: "13900000001"}
            """
        )
        accounting = Accounting(store, BalanceAlerts(), SHANGHAI, balance_seen=lambda *_: None)
        arrived = datetime(2026, 12, 1, 0, 30, tzinfo=SHANGHAI)
        account = await accounting.open_call(plan, None, arrived)
    finally:
        await store.close()
    usage = account.usage()
    assert (account.month, usage.month_cost, usage.day_cost) == (
        "2026-12",
        Decimal("5.00"),
        Decimal("5.00"),
    )


def test_the_tariffs_of_a_config_directory_are_read_in_router_yamls_zone(tmp_path: Path) -> None:
    (tmp_path / "router.yaml").write_text("timezone: Asia/Urumqi\n")
    shipped = (ROOT / "config" / "tariffs.yaml").read_text()
    (tmp_path / "tariffs.yaml").write_text(shipped)
    config = load_config(tmp_path)
    assert config.tariffs is not None and config.tariffs.zone == URUMQI
    assert config.settings.zone() == URUMQI


def test_a_tariff_file_naming_a_zone_is_refused_with_its_line(tmp_path: Path) -> None:
    shipped = (ROOT / "config" / "tariffs.yaml").read_text()
    (tmp_path / "tariffs.yaml").write_text(f"timezone: Asia/Shanghai\n{shipped}")
    config = load_config(tmp_path)
    assert config.tariffs is None
    assert [str(problem) for problem in config.problems] == [
        f"{tmp_path / 'tariffs.yaml'}:1 timezone: the billing time zone is router.yaml's "
        "timezone; remove it from this file"
    ]


def test_router_yaml_refuses_a_zone_that_does_not_exist(tmp_path: Path) -> None:
    (tmp_path / "router.yaml").write_text("timezone: Asia/Jinan\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(tmp_path)
    assert [problem.message for problem in refused.value.problems] == [
        "'Asia/Jinan' is not an IANA time zone (China's is Asia/Shanghai)"
    ]


@pytest.mark.parametrize(
    ("written", "hint"),
    [
        ("Asia/Shangai", "did you mean Asia/Shanghai?"),
        ("asia/shanghai", "did you mean Asia/Shanghai?"),
        ("Asia/Beijing", "China's is Asia/Shanghai"),  # not Asia/Brunei, however close
    ],
)
def test_a_misspelt_zone_is_told_the_zone_meant(tmp_path: Path, written: str, hint: str) -> None:
    (tmp_path / "router.yaml").write_text(f"timezone: {written}\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(tmp_path)
    assert [problem.message for problem in refused.value.problems] == [
        f"{written!r} is not an IANA time zone ({hint})"
    ]
