"""Text messages to subscribers: who to tell, how often at most, and through what.

`SmsSender` is the one thing a sender does, send one message; two ship. `LogSms`, the
default, writes each message to the log (caller numbers in it masked like every log line)
and sends nothing: set `sms_gateway` in router.yaml to send. `HttpSmsGateway` POSTs
`{"to": ..., "text": ...}` as JSON to that URL, with `Authorization: Bearer <token>` when
the environment variable `sms_token_env` names holds one; a 2xx answer is a message sent
(of its body the router reads a little at most, like a CRM's).

`SmsNotices` decides and never waits: each message is sent by a background task under a
time limit, at most `per_number` messages of one kind reach one mobile in `window` seconds
(a burst of missed calls must not flood a phone or run up the gateway's bill; what is over
the limit is counted and logged, not queued), and at most MAX_PENDING sends are under way
at once (beyond that a message is dropped and counted). Each kind has its own count: the
low-balance warning comes once as the balance falls below its threshold, so missed calls
that used up a mobile's messages must not swallow it. A message the gateway refused, or
could not be reached for, never reached the phone and leaves the count as it was; one
without an answer in time may have, and stays counted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable
from decimal import Decimal
from typing import Protocol

import httpx

from dialplan.plan import Plan
from router.notifications.webhooks import skim
from router.storage.cdr import CDR, Outcome

log = logging.getLogger("hotline400.sms")

MAX_PENDING = 1000
MISSED = frozenset({Outcome.BUSY, Outcome.NOANSWER})
"""Outcomes of a call put through to the subscriber that nobody answered."""
RESULTS = ("sent", "failed", "rate_limited", "dropped")
KINDS = ("missed_call", "low_balance")


class SmsFailed(Exception):
    """The gateway did not take the message; the text says why. `maybe_sent` when it may
    have taken it all the same (no answer in time, the connection lost after the request)."""

    def __init__(self, reason: str, *, maybe_sent: bool = False) -> None:
        super().__init__(reason)
        self.maybe_sent = maybe_sent


class SmsSender(Protocol):
    async def send(self, to: str, text: str) -> None:
        """Send one message or raise SmsFailed."""

    async def close(self) -> None:
        """Let go of connections (at shutdown)."""


class LogSms:
    """The default sender: the message goes to the log only."""

    async def send(self, to: str, text: str) -> None:
        log.info("SMS to %s (log only, no sms_gateway set): %s", to, text)

    async def close(self) -> None:
        pass


class HttpSmsGateway:
    def __init__(self, url: str, token_env: str, timeout: float) -> None:
        self.url = url
        self.token_env = token_env
        self.timeout = timeout
        self._client = httpx.AsyncClient(timeout=timeout)

    async def send(self, to: str, text: str) -> None:
        token = os.environ.get(self.token_env)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        status: int | None = None
        try:
            async with (
                asyncio.timeout(self.timeout),
                self._client.stream(
                    "POST", self.url, json={"to": to, "text": text}, headers=headers
                ) as response,
            ):
                status = response.status_code
                await skim(response)
        except TimeoutError:
            if status is None:
                reason = f"no answer within {self.timeout:g} s"
                raise SmsFailed(reason, maybe_sent=True) from None
        except (httpx.HTTPError, OSError) as error:
            if status is None:
                reason = f"{type(error).__name__}: {error}".rstrip(": ")
                unreached = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
                raise SmsFailed(reason, maybe_sent=not unreached) from None
        if not 200 <= status < 300:
            raise SmsFailed(f"HTTP {status}")

    async def close(self) -> None:
        await self._client.aclose()


def sender_for(gateway: str | None, token_env: str, timeout: float) -> SmsSender:
    """The HTTP gateway router.yaml names (`sms_gateway`), else the log."""
    if gateway is None:
        return LogSms()
    return HttpSmsGateway(gateway, token_env, timeout)


class RateLimit:
    """At most `most` events per key in any `window` seconds (a sliding window)."""

    def __init__(
        self, most: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.most = most
        self.window = window
        self.clock = clock
        self._sent: dict[Hashable, deque[float]] = {}

    def allows(self, key: Hashable) -> bool:
        """True, and counted, when one more is allowed now."""
        now = self.clock()
        times = self._sent.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.most:
            return False
        times.append(now)
        return True

    def give_back(self, key: Hashable) -> None:
        """Uncount one event of `key`: it did not happen after all."""
        times = self._sent.get(key)
        if times:
            times.pop()


class SmsNotices:
    """Missed-call and low-balance messages to the mobiles a plan's `notifications` lists."""

    def __init__(
        self, sender: SmsSender, limit: RateLimit, plans: Callable[[str], Plan | None]
    ) -> None:
        self.sender = sender
        self.limit = limit
        self.plans = plans
        self.counts: Counter[tuple[str, str]] = Counter()
        """(kind, result) -> messages, for the metrics."""
        self._pending: set[asyncio.Task[None]] = set()

    def missed_call(self, plan: Plan, cdr: CDR) -> None:
        """Tell the subscriber who called, when and from where, if nobody answered."""
        notify = plan.notifications
        if notify is None or not notify.missed_calls or cdr.outcome not in MISSED:
            return
        region = cdr.region
        where = f"{region.province or ''}{region.city or ''}" or "未知地区"
        when = cdr.started_at.astimezone(plan.zone()).strftime("%m-%d %H:%M")
        caller = cdr.caller or "未显示号码"
        text = f"未接来电：{caller}（{where}）于 {when} 拨打 {plan.number}，请及时回电。"
        self._send_all("missed_call", notify.sms_to, text)

    def low_balance(self, number: str, balance: Decimal, threshold: Decimal) -> None:
        """Tell the subscriber its prepaid balance fell below its warning threshold."""
        plan = self.plans(number)
        notify = plan.notifications if plan is not None else None
        if notify is None or not notify.low_balance:
            return
        text = f"{number} 预付余额 {balance} 元，已低于提醒值 {threshold} 元，请及时充值。"
        self._send_all("low_balance", notify.sms_to, text)

    async def close(self) -> None:
        """Wait for messages still being sent, then close the sender (at shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self.sender.close()

    def _send_all(self, kind: str, recipients: list[str], text: str) -> None:
        for to in recipients:
            if not self.limit.allows((kind, to)):
                self.counts[kind, "rate_limited"] += 1
                log.warning(
                    "SMS to %s not sent: over %d per %g s", to, self.limit.most, self.limit.window
                )
                continue
            if len(self._pending) >= MAX_PENDING:
                self.counts[kind, "dropped"] += 1
                log.error("SMS to %s dropped: %d messages already being sent", to, MAX_PENDING)
                continue
            task = asyncio.get_running_loop().create_task(self._send(kind, to, text))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _send(self, kind: str, to: str, text: str) -> None:
        try:
            await self.sender.send(to, text)
        except SmsFailed as error:
            self.counts[kind, "failed"] += 1
            if not error.maybe_sent:  # it never reached the phone: the limit keeps its room
                self.limit.give_back((kind, to))
            log.error("SMS to %s failed: %s", to, error)
        else:
            self.counts[kind, "sent"] += 1
