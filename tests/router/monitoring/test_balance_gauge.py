"""The low-balance gauge in production: the daemon sets it whenever a prepaid balance moves
(a priced call, a top-up, a fee), so the Hotline400LowBalance alert and its Grafana panel see
what Prometheus scrapes from /metrics over HTTP.

Tariffs of the test config: 4000000008 is prepaid with a warning threshold of 5.00; each call
to it answered by the simulator costs the subscriber 0.60, as the accounting tests show:
tests/router/money/test_router_accounting.py.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from rating.ledger import LedgerEntry, LedgerKind
from router.daemon import Daemon
from tests.conftest import MONDAY_MORNING, call, running_router
from tests.router.money.test_router_accounting import settled
from tests.router.monitoring.test_router_operability import sample, scrape

PREPAID = "4000000008"
GAUGE = f'hotline400_balance_below_warning{{number="{PREPAID}"}}'


async def book(router: Daemon, amount: str, kind: LedgerKind, ref: str) -> None:
    """An entry booked beside the router, as `hotline400 account` or `bill` books it."""
    entry = LedgerEntry(PREPAID, MONDAY_MORNING, Decimal(amount), kind, ref)
    await router.store.post_ledger([entry])


async def gauge_becomes(router: Daemon, value: float, timeout: float = 5.0) -> None:
    """Wait until the scraped gauge reads `value` (the daemon's first read runs beside the
    start, so the series may not be there yet)."""
    async with asyncio.timeout(timeout):
        while f"{GAUGE} {value:.1f}" not in (await scrape(router)).splitlines():
            await asyncio.sleep(0.05)


async def test_calls_through_the_router_move_the_gauge_at_once(tmp_path: Path) -> None:
    async with running_router(
        tmp_path, metrics_listen="127.0.0.1:0", balance_refresh=3600
    ) as router:
        await gauge_becomes(router, 1)  # read at start: nothing paid yet
        await book(router, "5.70", LedgerKind.PAYMENT, "receipt-1")
        assert sample(await scrape(router), GAUGE) == 1  # no refresh for an hour
        await call(router, dialled=PREPAID, uniqueid="gauge.1")  # read 5.70, left 5.10
        assert sample(await scrape(router), GAUGE) == 0
        await settled(router)
        await call(router, dialled=PREPAID, uniqueid="gauge.2")  # left 4.50
        assert sample(await scrape(router), GAUGE) == 1


async def test_top_ups_and_fees_booked_beside_the_router_reach_the_gauge(tmp_path: Path) -> None:
    async with running_router(
        tmp_path, metrics_listen="127.0.0.1:0", balance_refresh=0.1
    ) as router:
        await gauge_becomes(router, 1)
        await book(router, "100.00", LedgerKind.PAYMENT, "receipt-2")
        await gauge_becomes(router, 0)
        await book(router, "-96.00", LedgerKind.FEATURE_FEE, "recording")
        await gauge_becomes(router, 1)
