"""The low-balance webhook against real HTTP receivers: what its answer may cost the router,
and what the log shows of its URL."""

from __future__ import annotations

import logging
import time
from decimal import Decimal

import pytest

from router.money.balance_alerts import WEBHOOK_TIMEOUT_S, BalanceAlerts
from tests.conftest import HttpReceiver

NUMBER = "4000000020"


def crossing(alerts: BalanceAlerts) -> None:
    assert alerts.check(NUMBER, Decimal("5.50"), Decimal("4.90"), Decimal("5.00"))


async def test_a_receiver_answering_2xx_with_an_endless_body_took_the_warning_at_once() -> None:
    async with HttpReceiver("endless") as receiver:
        alerts = BalanceAlerts(receiver.url)
        started = time.monotonic()
        crossing(alerts)
        await alerts.flush()
        took = time.monotonic() - started
    assert alerts.webhook_failures == 0 and len(receiver.received) == 1
    assert took < WEBHOOK_TIMEOUT_S / 2
    assert receiver.streamed < 16 * 2**20  # the router hung up: it did not take the 64 MB


async def test_a_failed_warning_is_logged_without_the_urls_password_or_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with HttpReceiver("error") as receiver:
        url = receiver.url.replace("http://", "http://ops:s3cret@") + "?token=abc123"
        alerts = BalanceAlerts(url)
        with caplog.at_level(logging.ERROR, logger="hotline400.balance"):
            crossing(alerts)
            await alerts.flush()
    assert alerts.webhook_failures == 1
    assert "HTTP 500" in caplog.text
    assert "s3cret" not in caplog.text and "abc123" not in caplog.text
