"""Low-balance warnings: raised once when a prepaid balance falls below its threshold.

Each warning is logged, counted, sent as a text message to the subscriber when its plan
asks (router/notifications/sms.py), and, when router.yaml names `low_balance_webhook`,
POSTed there as JSON from a background task (a slow or broken receiver never delays a
call; a failed POST is logged, the URL without its password or query). The POST has one
deadline for all of it, and of the answer's body the router reads 64 KiB at most, as for a
CRM's: a receiver that never ends its answer costs neither time nor memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal

import httpx

from router.notifications.webhooks import skim, without_secrets

log = logging.getLogger("hotline400.balance")

WEBHOOK_TIMEOUT_S = 5.0


class BalanceAlerts:
    def __init__(
        self,
        webhook: str | None = None,
        notify: Callable[[str, Decimal, Decimal], None] = lambda *_: None,
    ) -> None:
        """`notify(number, balance, threshold)` is told each warning too (the SMS notices)."""
        self.webhook = webhook
        self.notify = notify
        self.raised = 0
        self.webhook_failures = 0
        self._posts: set[asyncio.Task[None]] = set()

    def check(self, number: str, before: Decimal, after: Decimal, threshold: Decimal) -> bool:
        """Warn when this movement takes the balance across the threshold from above."""
        if not (before >= threshold > after):
            return False
        self.raised += 1
        log.warning(
            "low balance: %s has %s yuan left, below its warning threshold of %s",
            number,
            after,
            threshold,
        )
        self.notify(number, after, threshold)
        if self.webhook:
            body = {
                "event": "low_balance",
                "number": number,
                "balance": str(after),
                "threshold": str(threshold),
            }
            task = asyncio.get_running_loop().create_task(self._post(body))
            self._posts.add(task)
            task.add_done_callback(self._posts.discard)
        return True

    async def flush(self) -> None:
        """Wait for webhook posts still under way (at shutdown)."""
        if self._posts:
            await asyncio.gather(*self._posts, return_exceptions=True)

    async def _post(self, body: dict[str, str]) -> None:
        assert self.webhook is not None
        try:
            async with (
                asyncio.timeout(WEBHOOK_TIMEOUT_S),
                httpx.AsyncClient() as client,
                client.stream("POST", self.webhook, json=body) as response,
            ):
                await skim(response)
                response.raise_for_status()
            return
        except TimeoutError:
            error = f"no answer within {WEBHOOK_TIMEOUT_S:g} s"
        except (httpx.HTTPError, OSError) as failure:
            error = str(failure) or type(failure).__name__
            if isinstance(failure, httpx.HTTPStatusError):
                error = f"HTTP {failure.response.status_code}"
        self.webhook_failures += 1
        log.error("low-balance webhook %s failed: %s", without_secrets(self.webhook), error)
