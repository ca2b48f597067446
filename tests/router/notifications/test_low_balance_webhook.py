"""The low-balance webhook against real HTTP receivers: a warning the receiver failed to take
is tried again, then kept in the spool for `hotline400 low-balance replay`, never dropped;
one that may have been taken is kept marked so and not sent again; what its answer may cost
the router, and what the log shows of its URL."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from router.money.balance_alerts import BalanceAlerts
from router.notifications.low_balance import (
    LOW_BALANCE_UNDELIVERED_FILE,
    TIMEOUT_S,
    LowBalanceWebhook,
)
from router.notifications.undelivered import UndeliveredEvents
from tests.conftest import HttpReceiver, call, eventually, running_router, warning_facts
from tests.router.money.test_router_accounting import PREPAID, pay, settled
from tests.router.monitoring.test_router_operability import sample, scrape

NUMBER = "4000000020"
WARNING = {"event": "low_balance", "number": PREPAID, "balance": "4.90", "threshold": "5.00"}
QUICK_RETRIES = {"low_balance_webhook_backoff": 0.05, "low_balance_webhook_retry_for": 2.0}
"""Tries at 0.05, 0.1, 0.2, 0.4 and 0.8 s after the first: a loaded machine whose first
refused connection took over 0.25 s gave up a 0.3 s window after one attempt."""


def kept_warnings(tmp_path: Path) -> list[dict[str, Any]]:
    return UndeliveredEvents(tmp_path / "var" / "spool", LOW_BALANCE_UNDELIVERED_FILE).read()


async def test_a_receiver_error_is_tried_again_and_the_warning_is_taken(tmp_path: Path) -> None:
    """A 5xx is the receiver's passing trouble: the warning goes again after the backoff,
    as the same event (one id), so a receiver that took an earlier try can tell."""
    async with HttpReceiver(["error", "error", "ok"]) as receiver:
        overrides = {"low_balance_webhook": receiver.url, "low_balance_webhook_backoff": 0.05}
        async with running_router(tmp_path, **overrides) as router:
            await pay(router, PREPAID, "5.50", "receipt-1")
            await call(router, dialled=PREPAID, uniqueid="flaky.1")
            await eventually(lambda: len(receiver.received) == 3, timeout=3)
            await settled(router)
    bodies = [json.loads(r.body) for r in receiver.received]
    assert [warning_facts(body) for body in bodies] == [WARNING] * 3
    assert len({body["event_id"] for body in bodies}) == 1
    assert kept_warnings(tmp_path) == []


async def test_a_warning_is_signed_so_a_receiver_can_refuse_a_forgery_or_a_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HMAC-SHA256 under the secret router.yaml names, of `<timestamp>.<body>`: a receiver
    recomputes it, checks the timestamp is recent and the event id new."""
    monkeypatch.setenv("HOTLINE400_LOW_BALANCE_SECRET", "s3cret-shared-with-the-receiver")
    async with HttpReceiver(["error", "ok"]) as receiver:
        overrides = {
            "low_balance_webhook": receiver.url,
            "low_balance_webhook_backoff": 0.05,
            "low_balance_webhook_secret_env": "HOTLINE400_LOW_BALANCE_SECRET",
        }
        async with running_router(tmp_path, **overrides) as router:
            await pay(router, PREPAID, "5.50", "receipt-5")
            await call(router, dialled=PREPAID, uniqueid="signed.1")
            await eventually(lambda: len(receiver.received) == 2, timeout=3)
    for request in receiver.received:
        timestamp = request.headers["x-hotline400-timestamp"]
        assert abs(int(timestamp) - time.time()) < 60
        signed = timestamp.encode() + b"." + request.body
        digest = hmac.new(b"s3cret-shared-with-the-receiver", signed, hashlib.sha256)
        assert request.headers["x-hotline400-signature"] == f"v1={digest.hexdigest()}"
        body = json.loads(request.body)
        assert request.headers["x-hotline400-id"] == body["event_id"]
        assert request.headers["x-hotline400-event"] == "low_balance"


async def test_without_a_secret_a_warning_goes_unsigned_but_names_its_event_and_time(
    tmp_path: Path,
) -> None:
    async with (
        HttpReceiver("ok") as receiver,
        running_router(tmp_path, low_balance_webhook=receiver.url) as router,
    ):
        await pay(router, PREPAID, "5.50", "receipt-6")
        await call(router, dialled=PREPAID, uniqueid="plain.1")
        await eventually(lambda: len(receiver.received) == 1, timeout=3)
    [request] = receiver.received
    assert "x-hotline400-signature" not in request.headers
    body = json.loads(request.body)
    assert re.fullmatch(r"[0-9a-f]{32}", body["event_id"])
    occurred = datetime.fromisoformat(body["occurred_at"])
    assert occurred.utcoffset() == timedelta(hours=8)  # router.yaml's timezone, Asia/Shanghai


async def test_a_receiver_down_past_the_retry_time_keeps_the_warning_for_replay(
    tmp_path: Path,
) -> None:
    """Connections refused for all of low_balance_webhook_retry_for: the warning is in the
    spool with its body, known not to have been sent, and the metrics count it kept."""
    overrides = {"low_balance_webhook": HttpReceiver.refusing(), **QUICK_RETRIES}
    async with running_router(tmp_path, **overrides) as router:
        await pay(router, PREPAID, "5.50", "receipt-2")
        await call(router, dialled=PREPAID, uniqueid="down.1")
        await eventually(lambda: kept_warnings(tmp_path), timeout=10)
        scraped = await scrape(router)
    [kept] = kept_warnings(tmp_path)
    assert kept["number"] == PREPAID and warning_facts(kept["body"]) == WARNING
    assert kept["maybe_sent"] is False and kept["attempts"] >= 3
    assert "ConnectError" in kept["error"]
    assert "hotline400_low_balance_warnings_kept 1.0" in scraped
    assert 'hotline400_low_balance_webhook_warnings_total{result="kept"} 1.0' in scraped
    assert sample(scraped, "hotline400_low_balance_webhook_retries_total") >= 2


async def test_a_warning_sent_without_an_answer_is_kept_as_maybe_sent_and_not_sent_again(
    tmp_path: Path,
) -> None:
    async with HttpReceiver("silent") as receiver:
        kept = UndeliveredEvents(tmp_path, LOW_BALANCE_UNDELIVERED_FILE)
        webhook = LowBalanceWebhook(receiver.url, kept, timeout=0.3, backoff=0.05)
        webhook.send(NUMBER, {"event": "low_balance", "number": NUMBER})
        await eventually(lambda: webhook.counts["kept"] == 1, timeout=3)
        await webhook.close(grace=1)
    assert len(receiver.received) == 1
    [record] = kept.read()
    assert record["maybe_sent"] is True and record["attempts"] == 1
    assert record["error"] == "no answer within 0.3 s"


async def test_a_warning_the_receiver_refuses_for_good_is_kept_at_once(tmp_path: Path) -> None:
    """A 401 will not change by trying again."""
    async with HttpReceiver("reject") as receiver:
        kept = UndeliveredEvents(tmp_path, LOW_BALANCE_UNDELIVERED_FILE)
        webhook = LowBalanceWebhook(receiver.url, kept, backoff=0.05)
        webhook.send(NUMBER, {"event": "low_balance", "number": NUMBER})
        await eventually(lambda: webhook.counts["kept"] == 1, timeout=3)
        await webhook.close(grace=1)
    assert len(receiver.received) == 1 and webhook.retries == 0
    [record] = kept.read()
    assert (record["error"], record["maybe_sent"]) == ("HTTP 401", False)


async def test_a_receiver_that_moved_is_not_followed_and_the_warning_kept_at_once(
    tmp_path: Path,
) -> None:
    """A redirect answers the same on every try; the kept error says where it points."""
    async with HttpReceiver("moved") as receiver:
        kept = UndeliveredEvents(tmp_path, LOW_BALANCE_UNDELIVERED_FILE)
        webhook = LowBalanceWebhook(receiver.url, kept, backoff=0.05)
        webhook.send(NUMBER, {"event": "low_balance", "number": NUMBER})
        await eventually(lambda: webhook.counts["kept"] == 1, timeout=3)
        await webhook.close(grace=1)
        moved = receiver.moved_to.split("?")[0]
    assert len(receiver.received) == 1 and webhook.retries == 0
    [record] = kept.read()
    assert record["error"] == (
        f"HTTP 308: moved to {moved}?***; not followed: correct the URL in router.yaml"
    )


async def test_a_warning_waiting_to_be_tried_again_at_the_end_is_kept_not_lost(
    tmp_path: Path,
) -> None:
    async with HttpReceiver("error") as receiver:
        kept = UndeliveredEvents(tmp_path, LOW_BALANCE_UNDELIVERED_FILE)
        webhook = LowBalanceWebhook(receiver.url, kept, backoff=30)
        webhook.send(NUMBER, {"event": "low_balance", "number": NUMBER})
        await eventually(lambda: webhook.retries == 1, timeout=3)
        started = time.monotonic()
        await webhook.close(grace=5.0)  # no send under way to let finish
    assert time.monotonic() - started < 2
    [record] = kept.read()
    assert (record["error"], record["maybe_sent"], record["attempts"]) == ("HTTP 500", False, 1)


async def test_a_receiver_answering_2xx_with_an_endless_body_took_the_warning_at_once(
    tmp_path: Path,
) -> None:
    async with HttpReceiver("endless") as receiver:
        webhook = LowBalanceWebhook(receiver.url, UndeliveredEvents(tmp_path, "kept"))
        alerts = BalanceAlerts(webhook)
        started = time.monotonic()
        assert alerts.check(NUMBER, Decimal("5.50"), Decimal("4.90"), Decimal("5.00"))
        await eventually(lambda: webhook.counts["sent"] == 1, timeout=TIMEOUT_S)
        took = time.monotonic() - started
        await alerts.close()
    assert len(receiver.received) == 1 and took < TIMEOUT_S / 2
    assert receiver.streamed < 16 * 2**20  # the router hung up: it did not take the 64 MB


async def test_a_failed_warning_is_logged_without_the_urls_password_or_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with HttpReceiver("reject") as receiver:
        url = receiver.url.replace("http://", "http://ops:s3cret@") + "?token=abc123"
        webhook = LowBalanceWebhook(url, UndeliveredEvents(tmp_path, "kept"))
        with caplog.at_level(logging.ERROR, logger="hotline400.balance"):
            webhook.send(NUMBER, {"event": "low_balance", "number": NUMBER})
            await webhook.close(grace=TIMEOUT_S)
    assert "HTTP 401" in caplog.text and "hotline400 low-balance replay" in caplog.text
    assert "s3cret" not in caplog.text and "abc123" not in caplog.text
