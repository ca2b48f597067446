"""The last good version of each configuration file, kept in spool_dir/last-good so that a
router restarted after a bad edit serves what it served before, not a dead line."""

import logging
import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from router.configuration.config_dir import load_config
from router.configuration.plan_book import PlanBook
from router.configuration.served import as_served
from router.daemon import Daemon
from router.startup import StartupError
from tests.conftest import E2E_CONFIG, MONDAY_MORNING, REPO, call, finished_cdr, running_router

SHANGHAI = ZoneInfo("Asia/Shanghai")

BROKEN_PLAN = 'number: "4000000002"\nname: Broken\ndefault: {target: "1"}\n'
FORWARDING_PLAN = """\
number: "4000000002"
name: Busy then forward
forwarding:
  on_busy: ["13800000012"]
default: {target: "13800000012"}
"""


@asynccontextmanager
async def restarted(router: Daemon) -> AsyncIterator[Daemon]:
    """A router started again on the config directory and spool of one that has stopped."""
    daemon = Daemon(router.config_dir, settings=router.settings, clock=lambda: MONDAY_MORNING)
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop()


def copy_of(router: Daemon, name: str) -> Path:
    return Path(router.settings.spool_dir) / "last-good" / name


async def test_a_plan_broken_before_a_restart_keeps_routing_its_number_on_its_last_good_plan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_router(tmp_path) as router:
        plan_file = router.config_dir / "plans" / "4000000002.yaml"
        plan_file.write_text(FORWARDING_PLAN)
        assert router.plans.reload().ok  # the copy follows the reload
        plan_file.write_text(BROKEN_PLAN)
        assert not router.plans.reload().ok  # the copy stays the last good one
    assert copy_of(router, "plans/4000000002.yaml").read_text() == FORWARDING_PLAN
    with caplog.at_level(logging.ERROR, logger="hotline400.plans"):
        async with restarted(router) as again:
            result = await call(again, dialled="4000000002", uniqueid="lg.1")
            healthy = again.plans.last_reload_ok
    assert result.variables["HOTLINE_DEST"] == "13800000012"
    assert not healthy  # the file is still to be fixed
    assert f"{plan_file}:3 default.target: '1' is not a phone number" in caplog.text
    served = [r.message for r in caplog.records if "last good version" in r.message]
    assert len(served) == 1
    assert str(plan_file) in served[0]
    assert "from 20" in served[0]  # the copy's time


async def test_a_tariffs_file_broken_before_a_restart_keeps_the_last_good_prices(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path) as router:
        pass
    tariffs_file = router.config_dir / "tariffs.yaml"
    tariffs_file.write_text(tariffs_file.read_text().replace("packages:", "packages: [", 1))
    async with restarted(router) as again:
        tariffs = again.plans.tariffs
        await call(again, dialled="4000000009", uniqueid="lg.2")
        cdr = await finished_cdr(again, "lg.2")
        healthy = again.plans.last_reload_ok
    assert tariffs is not None
    assert tariffs.packages["e2e-regional"].monthly_rent == 10
    assert tariffs.accounts["4000000009"].prepaid is False
    assert (cdr.tariff_id, cdr.callee_share) == ("e2e-regional@e2e", Decimal("0.60"))
    assert not healthy


async def test_a_price_rise_without_notice_made_while_stopped_is_refused_at_the_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The notice a price rise needs holds whether or not a router ran when the file changed:
    at start the new tariffs are compared with the last good copy, as a reload compares them
    with the tariffs serving, and the copy's prices go on."""
    async with running_router(tmp_path) as router:
        pass
    tariffs_file = router.config_dir / "tariffs.yaml"
    tariffs_file.write_text(
        tariffs_file.read_text().replace("monthly_rent: 10.00", "monthly_rent: 12.00")
    )
    with caplog.at_level(logging.ERROR, logger="hotline400.plans"):
        async with restarted(router) as again:
            tariffs = again.plans.tariffs
            healthy = again.plans.last_reload_ok
    assert tariffs is not None and tariffs.packages["e2e-regional"].monthly_rent == 10
    assert not healthy
    assert "(monthly rent 10.00 -> 12.00) refused" in caplog.text
    assert "its last good version from " in caplog.text
    assert "monthly_rent: 10.00" in copy_of(router, "tariffs.yaml").read_text()


async def test_a_plan_deleted_before_a_restart_is_not_served(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        pass
    (router.config_dir / "plans" / "4000000002.yaml").unlink()
    async with restarted(router) as again:
        result = await call(again, dialled="4000000002", uniqueid="lg.3")
        healthy = again.plans.last_reload_ok
    assert result.variables["HOTLINE_STATUS"] == "unknown_number"
    assert healthy
    assert not copy_of(router, "plans/4000000002.yaml").exists()


async def test_a_first_start_with_a_broken_plan_and_no_copy_serves_the_other_numbers(
    tmp_path: Path,
) -> None:
    config = tmp_path / "source"
    shutil.copytree(E2E_CONFIG, config)
    (config / "plans" / "4000000002.yaml").write_text(BROKEN_PLAN)
    async with running_router(tmp_path, config=config) as router:
        result = await call(router, dialled="4000000002", uniqueid="lg.4")
        other = await call(router, dialled="4000000001", uniqueid="lg.4b")
        healthy = router.plans.last_reload_ok
    assert result.variables["HOTLINE_STATUS"] == "unknown_number"
    assert other.variables["HOTLINE_STATUS"] == "answered"
    assert not healthy
    assert not copy_of(router, "plans/4000000002.yaml").exists()
    assert copy_of(router, "plans/4000000001.yaml").exists()


async def test_a_start_whose_broken_tariffs_have_a_copy_that_no_longer_loads_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A copy that no longer loads is no copy: the start is refused as a first start is,
    rather than connect calls with no prices."""
    async with running_router(tmp_path) as router:
        pass
    tariffs = router.config_dir / "tariffs.yaml"
    tariffs.write_text("packages: [\n")
    copy = copy_of(router, "tariffs.yaml")
    copy.write_text("packages: {old-schema: 1}\n")
    with (
        caplog.at_level(logging.WARNING, logger="hotline400.plans"),
        pytest.raises(StartupError) as refused,
    ):
        async with restarted(router):
            pass
    last_good = copy.parent.absolute()
    assert str(refused.value).splitlines()[0] == (
        f"{tariffs} (its copy no longer loads) has problems and no last good copy in "
        f"{last_good} to serve instead; fix it and start again:"
    )
    assert str(refused.value).splitlines()[1].startswith(f"{tariffs}:2 (file): invalid YAML")
    assert f"last good copy {copy} no longer loads, ignored" in caplog.text


async def test_a_last_good_copy_that_no_longer_loads_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_router(tmp_path) as router:
        pass
    (router.config_dir / "plans" / "4000000002.yaml").write_text(BROKEN_PLAN)
    copy = copy_of(router, "plans/4000000002.yaml")
    copy.write_text('number: "4000000002"\nname: Old schema\nroute_to: "13800000011"\n')
    with caplog.at_level(logging.WARNING, logger="hotline400.plans"):
        async with restarted(router) as again:
            result = await call(again, dialled="4000000002", uniqueid="lg.5")
    assert result.variables["HOTLINE_STATUS"] == "unknown_number"
    warnings = [
        r.message for r in caplog.records if r.levelno == logging.WARNING and str(copy) in r.message
    ]
    assert len(warnings) == 1
    assert "no longer loads" in warnings[0]


async def test_copies_that_cannot_be_written_are_told_once_and_calls_are_routed_anyway(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = tmp_path / "var" / "spool"
    spool.mkdir(parents=True)
    (spool / "last-good").write_text("a file where the copies' directory should be\n")
    with caplog.at_level(logging.WARNING, logger="hotline400.plans"):
        async with running_router(tmp_path) as router:
            router.reload()
            result = await call(router, dialled="4000000002", uniqueid="lg.6")
    assert result.variables["HOTLINE_DEST"] == "13800000011"
    warnings = [r.message for r in caplog.records if "not written" in r.message]
    assert len(warnings) == 1


def test_a_calendar_and_number_rules_broken_before_a_restart_serve_their_last_good_versions(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    (config / "calendar.yaml").write_text("holidays:\n  2031-06-02: company day\n")
    numbers = config / "numbers.yaml"
    numbers.write_text(numbers.read_text().replace("opening: 600.00", "opening: 700.00"))
    last_good = tmp_path / "spool" / "last-good"
    assert PlanBook(config, SHANGHAI, last_good).reload().ok
    (config / "calendar.yaml").write_text("holidays: [\n")
    numbers.write_text("fees: {opening: lots}\n")
    again = PlanBook(config, SHANGHAI, last_good)
    assert not again.reload().ok
    assert again.calendar.day(date(2031, 6, 2)).name == "company day"
    assert again.number_rules.fees.opening == Decimal("700.00")


def test_a_copy_is_written_only_when_its_file_changed(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    last_good = tmp_path / "spool" / "last-good"
    book = PlanBook(config, SHANGHAI, last_good)
    assert book.reload().ok
    unchanged, changed = last_good / "plans" / "4001234567.yaml", last_good / "tariffs.yaml"
    for copy in (unchanged, changed):
        os.utime(copy, (0, 0))
    tariffs = config / "tariffs.yaml"
    tariffs.write_text(tariffs.read_text() + "# a comment is a change\n")
    assert book.reload().ok
    assert unchanged.stat().st_mtime == 0
    assert changed.stat().st_mtime > 0
    assert changed.read_bytes() == tariffs.read_bytes()
    assert sorted(p.name for p in last_good.rglob(".*")) == []  # no temporary file left


def test_the_configuration_as_served_is_what_a_router_started_now_serves(tmp_path: Path) -> None:
    """as_served, which the console shows, reads the copies in router.yaml's spool_dir as
    a router's start does, and leaves them as they are: they are the routers'."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    spool = tmp_path / "spool"
    router_yaml = config / "router.yaml"
    router_yaml.write_text(
        re.sub(r"^spool_dir: .*$", f"spool_dir: {spool}", router_yaml.read_text(), flags=re.M)
    )
    (config / "calendar.yaml").write_text("holidays:\n  2031-06-02: company day\n")
    assert PlanBook(config, SHANGHAI, spool / "last-good").reload().ok
    (config / "calendar.yaml").write_text("holidays: [\n")
    (config / "tariffs.yaml").write_text("packages: [\n")
    (config / "plans" / "4001234567.yaml").write_text('number: "4001234567"\n')
    (spool / "last-good" / "tariffs.yaml").write_text("packages: {}\nno_longer: a field\n")
    copies = sorted(path.relative_to(spool) for path in spool.rglob("*"))
    router = PlanBook(config, SHANGHAI, spool / "last-good")
    router.reload()

    served = as_served(load_config(config))
    assert served.calendar.day(date(2031, 6, 2)).name == "company day"
    assert served.plans["4001234567"] == router.get("4001234567")
    assert served.tariffs is None and router.tariffs is None  # its copy no longer loads
    assert [copy.file.name for copy in served.copies] == ["4001234567.yaml", "calendar.yaml"]
    assert len(served.problems) == len(load_config(config).problems)
    assert sorted(path.relative_to(spool) for path in spool.rglob("*")) == copies


def test_with_router_yaml_broken_no_copy_is_taken_for_the_routers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the routers keep their copies is router.yaml's to say: with it broken, copies
    where its defaults would look are not taken for what the routers serve."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    monkeypatch.chdir(tmp_path)  # the default spool_dir, var/spool, is here
    assert PlanBook(config, SHANGHAI, tmp_path / "var" / "spool" / "last-good").reload().ok
    (config / "tariffs.yaml").write_text("packages: [\n")
    assert as_served(load_config(config)).tariffs is not None
    router_yaml = config / "router.yaml"
    router_yaml.write_text(router_yaml.read_text() + "drain_timeout: lots\n")

    served = as_served(load_config(config))
    assert served.tariffs is None and served.copies == []
