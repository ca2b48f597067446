"""Low-balance warnings for what the commands book, against a real HTTP receiver named by
router.yaml's `low_balance_webhook`, on each store engine.

4000000008 is prepaid (warning under 50.00, recording switched on 2026-12-03 for 100.00,
rent 60.00); 4000000009 is postpaid, with the same fee the same day.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest

from rating.ledger import LedgerEntry, LedgerKind
from router.cli import main
from tests.conftest import opened_store

PREPAID, POSTPAID = "4000000008", "4000000009"
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
        Receiver.received.append(json.loads(self.rfile.read(length)))
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
    at = datetime(2026, 11, 1, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
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
    return config


def run(config: Path, *argv: str) -> None:
    assert main([*argv, "--config", str(config)]) == 0


def test_a_feature_fee_taking_a_prepaid_balance_below_its_threshold_warns_once(
    config: Path, store_url: str
) -> None:
    asyncio.run(paid(store_url, "120.00"))
    for _ in range(2):  # the second run books nothing, so warns of nothing
        run(config, "account", "fees", "--day", "2026-12-03")
    assert Receiver.received == [
        {"event": "low_balance", "number": PREPAID, "balance": "20.00", "threshold": "50.00"}
    ]


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
