"""The low-balance webhook: each warning POSTed as JSON to router.yaml's `low_balance_webhook`
by a background task (a slow or broken receiver never delays a call), under one deadline of
TIMEOUT_S for all of it; of the answer's body a little is read at most, as of a CRM's.

A POST the receiver did not take is tried again with doubling backoff for
`low_balance_webhook_retry_for` seconds, as a text message is (router.notifications.delivery),
then kept in `spool_dir/low_balance.undelivered` (the spool of the CRM events and the text
messages, router.notifications.undelivered) for `hotline400 low-balance list|replay|drop`;
so is one refused for good (a 4xx other than 408 and 429), one beyond MAX_PENDING sends under
way, and one still being sent at shutdown. One whose request went out without an answer in
time may have been taken: it is kept marked `maybe_sent`, which the replay passes over unless
told `--maybe-sent`. The log shows the URL without its password or query.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from router.configuration.settings import RouterSettings
from router.notifications.delivery import MAX_PENDING, Sending, deliver, post_json
from router.notifications.undelivered import Keeper, UndeliveredEvents
from router.notifications.webhooks import without_secrets

log = logging.getLogger("hotline400.balance")

LOW_BALANCE_UNDELIVERED_FILE = "low_balance.undelivered"
TIMEOUT_S = 5.0
RESULTS = ("sent", "kept", "lost")
"""sent: the receiver took it; kept: in the spool for `hotline400 low-balance replay`; lost:
the spool could not be written."""


@dataclass(slots=True)
class _Warning:
    number: str
    body: dict[str, str]
    attempts: int = 0
    error: str = ""
    maybe_sent: bool = False


class LowBalanceWebhook:
    def __init__(
        self,
        url: str,
        kept: UndeliveredEvents,
        *,
        retry_for: float = 60.0,
        backoff: float = 1.0,
        timeout: float = TIMEOUT_S,
    ) -> None:
        self.url = url
        self.kept = kept
        self.retry_for = retry_for
        self.backoff = backoff
        self.timeout = timeout
        self.counts: Counter[str] = Counter()
        """result -> warnings, for the metrics."""
        self.retries = 0
        """POSTs tried again after a failure."""
        self._keeper = Keeper(
            kept, "low-balance warning(s)", self._counted("kept"), self._counted("lost")
        )
        self._sending = Sending()
        self._client = httpx.AsyncClient(timeout=timeout)

    def send(self, number: str, body: dict[str, str]) -> None:
        """POST `body` in the background; never waits."""
        warning = _Warning(number, body)
        if self._sending.full:
            warning.error = f"{MAX_PENDING} warnings already being sent"
            self._give_up(warning)
            return
        self._sending.start(self._send(warning))

    async def close(self, grace: float) -> None:
        """Let POSTs under way finish for up to `grace` seconds, keep the rest (at the end
        of the process)."""
        await self._sending.close(grace)
        await self._keeper.close()
        await self._client.aclose()

    async def _send(self, warning: _Warning) -> None:
        def retrying(delay: float) -> None:
            self.retries += 1
            log.info(
                "low-balance webhook %s: %s; retry in %g s",
                without_secrets(self.url),
                warning.error,
                delay,
            )

        sent = await deliver(
            lambda: post_json(self._client, self.url, warning.body, self.timeout),
            warning,
            retry_for=self.retry_for,
            backoff=self.backoff,
            retrying=retrying,
            give_up=lambda: self._give_up(warning),
            stopping=self._sending.stopping,
        )
        if sent:
            self.counts["sent"] += 1

    def _give_up(self, warning: _Warning) -> None:
        doubt = " (it may have been taken)" if warning.maybe_sent else ""
        log.error(
            "low-balance webhook %s failed after %d attempt(s): %s%s; kept for "
            "`hotline400 low-balance replay`",
            without_secrets(self.url),
            warning.attempts,
            warning.error,
            doubt,
        )
        self._keeper.add(
            {
                "id": uuid.uuid4().hex,
                "number": warning.number,
                "body": warning.body,
                "attempts": warning.attempts,
                "error": warning.error,
                "maybe_sent": warning.maybe_sent,
                "kept_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )

    def _counted(self, result: str) -> Callable[[list[dict[str, Any]]], None]:
        def count(records: list[dict[str, Any]]) -> None:
            self.counts[result] += len(records)

        return count


def webhook_for(settings: RouterSettings, kept: UndeliveredEvents) -> LowBalanceWebhook | None:
    """The webhook router.yaml names, if it names one."""
    if settings.low_balance_webhook is None:
        return None
    return LowBalanceWebhook(
        settings.low_balance_webhook,
        kept,
        retry_for=settings.low_balance_webhook_retry_for,
        backoff=settings.low_balance_webhook_backoff,
    )
