"""The official calendar past its announced years, on calls through the router.

With the router's clock on 2027's New Year's Day and in the 2027 Spring Festival (not yet
announced, not declared in config/calendar.yaml), a `cn_workday` office rule must not take
the call: the estimated statutory holidays send it to the duty number, and the log says, for
that call, that the day's answer is only estimated.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import E2E_CONFIG, SHANGHAI, call, finished_cdr, running_router

OFFICE_HOURS = """\
number: "4000000099"
name: Office hours on working days
rules:
  - name: office
    when:
      calendar: cn_workday
      time: ["09:00-18:00"]
    target: "13800000011"
default: {target: "13800000012"}
"""


def config_with_office_hours(tmp_path: Path) -> Path:
    config = Path(shutil.copytree(E2E_CONFIG, tmp_path / "source"))
    (config / "plans" / "4000000099.yaml").write_text(OFFICE_HOURS, encoding="utf-8")
    return config


@pytest.mark.parametrize(
    ("moment", "holiday"),
    [
        (datetime(2027, 1, 1, 10, 0, tzinfo=SHANGHAI), "New Year's Day"),
        (datetime(2027, 2, 8, 10, 0, tzinfo=SHANGHAI), "Chinese New Year (Spring Festival)"),
    ],
)
async def test_an_estimated_2027_holiday_keeps_the_office_rule_closed_and_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, moment: datetime, holiday: str
) -> None:
    caplog.set_level(logging.WARNING, logger="hotline400")
    config = config_with_office_hours(tmp_path)
    async with running_router(tmp_path, config, clock=lambda: moment) as router:
        result = await call(router, dialled="4000000099", uniqueid="cal.1")
        cdr = await finished_cdr(router, "cal.1")
    assert result.variables["HOTLINE_DEST"] == "13800000012"
    assert cdr.rule == "default"
    assert (
        f"call cal.1: calendar not announced for {moment:%Y-%m-%d} holiday: {holiday} "
        "[estimated: statutory holidays estimated by their rules, adjusted weekends unknown]"
    ) in caplog.text


async def test_an_ordinary_2027_weekday_opens_the_office_rule_as_an_estimated_working_day(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hotline400")
    monday = datetime(2027, 1, 4, 10, 0, tzinfo=SHANGHAI)
    config = config_with_office_hours(tmp_path)
    async with running_router(tmp_path, config, clock=lambda: monday) as router:
        result = await call(router, dialled="4000000099", uniqueid="cal.2")
    assert result.variables["HOTLINE_DEST"] == "13800000011"
    assert "call cal.2: calendar not announced for 2027-01-04 workday" in caplog.text
    assert "[estimated: " in caplog.text
