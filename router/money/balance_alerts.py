"""Low-balance warnings: raised once when a prepaid balance, a 400 number's or a service
provider's, falls below its threshold.

Each warning is logged, counted, sent as a text message to a number's subscriber when its
plan asks (router/notifications/sms.py), and, when router.yaml names `low_balance_webhook`,
POSTed there as JSON in the background, tried again and else kept for `hotline400
low-balance replay` (router/notifications/low_balance.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from decimal import Decimal
from itertools import accumulate, pairwise

from router.money.provider_accounts import provider_of
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

    def check(self, account: str, before: Decimal, after: Decimal, threshold: Decimal) -> bool:
        """Warn when this movement takes the balance of `account` (a 400 number's, or a
        service provider's) across the threshold from above."""
        if not (before >= threshold > after):
            return False
        self.raised += 1
        provider = provider_of(account)
        log.warning(
            "low balance: %s has %s yuan left, below its warning threshold of %s",
            account if provider is None else f"service provider {provider}",
            after,
            threshold,
        )
        if provider is None:  # a provider has no plan to text
            self.notify(account, after, threshold)
        if self.webhook is not None:
            self.webhook.send(account, warning_body(account, after, threshold))
        return True

    def watched(
        self,
        account: str,
        seen: Decimal | None,
        now: Decimal,
        moves: Sequence[Decimal],
        threshold: Decimal,
        read_before: Decimal | None = None,
    ) -> None:
        """Warn of the crossings a booking's watch of the store (Store.watch_balance) saw:
        the balance went from `seen` (the last watch's; else `read_before`, the balance
        the booking read before it wrote) to `now`, moved by the booking's `moves` among
        others. Watches take turns, so each crossing is warned of once."""
        known = seen if seen is not None else read_before
        for before, after in pairwise(balance_path(known, now, moves)):
            self.check(account, before, after, threshold)

    async def close(self, grace: float = TIMEOUT_S) -> None:
        """Let webhook POSTs under way finish for up to `grace` seconds and keep the rest
        (at the end of the process)."""
        if self.webhook is not None:
            await self.webhook.close(grace)


def warning_body(account: str, balance: Decimal, threshold: Decimal) -> dict[str, str]:
    """The webhook's warning: a number's `low_balance` naming the number, a service
    provider's `provider_low_balance` naming the provider, so a receiver of the numbers'
    warnings never takes a provider for a number."""
    facts = {"balance": str(balance), "threshold": str(threshold)}
    provider = provider_of(account)
    if provider is None:
        return {"event": "low_balance", "number": account, **facts}
    return {"event": "provider_low_balance", "provider": provider, **facts}


def balance_path(known: Decimal | None, now: Decimal, moves: Sequence[Decimal]) -> list[Decimal]:
    """The balances a watch knows were passed through: step by step through the booking's
    own moves when nothing else moved the balance since the one `known` before (or none is
    known), else straight from that one to the one now (the booking's moves may be in both)."""
    start = now - sum(moves, Decimal(0))
    if known is not None and known != start:
        return [known, now]
    return list(accumulate(moves, initial=start))
