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

Each warning is one event: its body carries an `event_id` and the time it was raised
(`occurred_at`, ISO 8601 in the billing time zone), both kept through every retry and the
spool's replay, so a receiver can tell a warning it already took. When router.yaml names
`low_balance_webhook_secret_env`, each POST is signed as a CRM event is
(router.notifications.signing: HMAC-SHA256 of `<timestamp>.<body>`, the timestamp of that
attempt); a key missing from the environment keeps the warning, never sends it unsigned.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from rating.tariff import DEFAULT_TIMEZONE
from router.configuration.settings import RouterSettings
from router.notifications.delivery import (
    MAX_PENDING,
    DeliveryFailed,
    Sending,
    deliver,
    post_json,
)
from router.notifications.signing import signed_headers
from router.notifications.undelivered import Keeper, UndeliveredEvents
from router.notifications.webhooks import without_secrets

log = logging.getLogger("hotline400.balance")

LOW_BALANCE_UNDELIVERED_FILE = "low_balance.undelivered"
TIMEOUT_S = 5.0
BILLING_ZONE = ZoneInfo(DEFAULT_TIMEZONE)
RESULTS = ("sent", "kept", "lost")
"""sent: the receiver took it; kept: in the spool for `hotline400 low-balance replay`; lost:
the spool could not be written."""


def warning_event(body: dict[str, str], at: datetime) -> dict[str, str]:
    """`body` as the one event it is: a new id and `at`, the time it was raised."""
    occurred_at = at.isoformat(timespec="seconds")
    return {"event_id": uuid.uuid4().hex, "occurred_at": occurred_at, **body}


async def post_warning(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, str],
    secret_env: str | None,
    event_id: str,
    timeout: float = TIMEOUT_S,
) -> None:
    """POST one warning, signed now under the key `secret_env` names (unsigned without
    one); a key missing from the environment fails it for good (DeliveryFailed)."""
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    headers: dict[str, str] = {}
    if secret_env is not None:
        key = os.environ.get(secret_env)
        if not key:
            raise DeliveryFailed(
                f"environment variable {secret_env} (the key) is not set", lasting=True
            )
        headers = signed_headers(key.encode(), int(time.time()), raw, event_id, body["event"])
    await post_json(client, url, raw, timeout, headers)


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
        zone: ZoneInfo = BILLING_ZONE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        secret_env: str | None = None,
        retry_for: float = 60.0,
        backoff: float = 1.0,
        timeout: float = TIMEOUT_S,
    ) -> None:
        self.url = url
        self.kept = kept
        self.zone = zone
        self.clock = clock
        self.secret_env = secret_env
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
        """POST `body`, as a new event, in the background; never waits."""
        warning = _Warning(number, warning_event(body, self.clock().astimezone(self.zone)))
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
            lambda: post_warning(
                self._client,
                self.url,
                warning.body,
                self.secret_env,
                warning.body["event_id"],
                self.timeout,
            ),
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


def webhook_for(
    settings: RouterSettings,
    kept: UndeliveredEvents,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> LowBalanceWebhook | None:
    """The webhook router.yaml names, if it names one; `clock` dates its warnings."""
    if settings.low_balance_webhook is None:
        return None
    return LowBalanceWebhook(
        settings.low_balance_webhook,
        kept,
        zone=settings.zone(),
        clock=clock,
        secret_env=settings.low_balance_webhook_secret_env,
        retry_for=settings.low_balance_webhook_retry_for,
        backoff=settings.low_balance_webhook_backoff,
    )
