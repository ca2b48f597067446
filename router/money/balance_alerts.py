"""Low-balance warnings: raised once when a prepaid balance falls below its threshold.

Each warning is logged, counted, sent as a text message to the subscriber when its plan
asks (router/notifications/sms.py), and, when router.yaml names `low_balance_webhook`,
POSTed there as JSON in the background, tried again and else kept for `hotline400
low-balance replay` (router/notifications/low_balance.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

from router.notifications.low_balance import TIMEOUT_S, LowBalanceWebhook

log = logging.getLogger("hotline400.balance")


class BalanceAlerts:
    def __init__(
        self,
        webhook: LowBalanceWebhook | None = None,
        notify: Callable[[str, Decimal, Decimal], None] = lambda *_: None,
    ) -> None:
        """`notify(number, balance, threshold)` is told each warning too (the SMS notices)."""
        self.webhook = webhook
        self.notify = notify
        self.raised = 0

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
        if self.webhook is not None:
            body = {
                "event": "low_balance",
                "number": number,
                "balance": str(after),
                "threshold": str(threshold),
            }
            self.webhook.send(number, body)
        return True

    async def close(self, grace: float = TIMEOUT_S) -> None:
        """Let webhook POSTs under way finish for up to `grace` seconds and keep the rest
        (at the end of the process)."""
        if self.webhook is not None:
            await self.webhook.close(grace)
