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
the limit is counted and logged, not queued). Each kind has its own count: the low-balance
warning comes once as the balance falls below its threshold, so missed calls that used up
a mobile's messages must not swallow it.

A send that surely did not reach the gateway (connection refused, no connection made in
time) or that it answered with a 5xx, 408 or 429 is tried again after `backoff` seconds,
doubled at each further try, for `retry_for` seconds (router.notifications.delivery, as
the low-balance webhook does). Then, or at once when the gateway
refuses it for good (another 4xx: a wrong token will not fix itself), the message is kept
in `spool_dir/sms.undelivered` (the spool the CRM events use, router.notifications.
undelivered) for `hotline400 sms replay` or `drop`; so is one beyond MAX_PENDING sends under
way, and one still waiting at shutdown. None of these reached the phone, and each gives its
place in the mobile's limit back.
A send whose request went out without an answer in time may have reached the phone: it is
never sent again by the router (a subscriber texted twice for one missed call is worse than
an operator deciding), stays counted in the limit, and is kept marked `maybe_sent`, which
`hotline400 sms replay` passes over unless told `--maybe-sent` after the gateway's own
records were checked.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol

import httpx

from dialplan.plan import Plan
from dialplan.regions import place_name
from router.notifications.delivery import MAX_PENDING, Sending, deliver, post_json
from router.notifications.undelivered import Keeper, UndeliveredEvents
from router.storage.cdr import CDR, Outcome

log = logging.getLogger("hotline400.sms")

SMS_UNDELIVERED_FILE = "sms.undelivered"
MISSED = frozenset({Outcome.BUSY, Outcome.NOANSWER})
"""Outcomes of a call that nobody answered. A call ending so is a missed call only when it
reached the subscriber's lines (`SmsNotices.missed_call`): a caller who gave up in a menu,
at the PIN prompt or during the recording notice ends as noanswer too, having rung nowhere."""


class Reach(Enum):
    """How far a call got towards the subscriber's lines: what makes an unanswered call a
    missed call (`SmsNotices.missed_call`)."""

    SHORT = "short"
    """No line was asked to take it: the caller gave up before (a menu, the PIN prompt,
    the recording notice) or was refused (screening, blacklist, hours, caps, balance, a
    failed PIN)."""
    LINES = "lines"
    """A destination was dialled or found busy, or the caller was held in the queue for
    one."""
    ALL_DOWN = "all_down"
    """Every destination the call could take is marked down: refused as no_route, the
    caller having wanted the subscriber, whose lines are out."""


ALL_DOWN_NOTE = "接听号码均已停用，"
"""What a missed-call text adds when every line was down (their lines are out: the
subscriber most needs to know)."""
RESULTS = ("sent", "kept", "rate_limited", "lost")
"""sent: the gateway took it; kept: in the spool for `hotline400 sms replay`; rate_limited:
over sms_per_number; lost: the spool could not be written."""
KINDS = ("missed_call", "low_balance")


class SmsSender(Protocol):
    async def send(self, to: str, text: str) -> None:
        """Send one message or raise router.notifications.delivery.DeliveryFailed."""

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
        await post_json(self._client, self.url, {"to": to, "text": text}, self.timeout, headers)

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


@dataclass(slots=True)
class _Message:
    kind: str
    number: str
    """The 400 number the message is about (`hotline400 sms replay --number`)."""
    to: str
    text: str
    attempts: int = 0
    error: str = ""
    maybe_sent: bool = False


class SmsNotices:
    """Missed-call and low-balance messages to the mobiles a plan's `notifications` lists."""

    def __init__(
        self,
        sender: SmsSender,
        limit: RateLimit,
        plans: Callable[[str], Plan | None],
        kept: UndeliveredEvents,
        *,
        retry_for: float = 60.0,
        backoff: float = 1.0,
    ) -> None:
        self.sender = sender
        self.limit = limit
        self.plans = plans
        self.kept = kept
        self.retry_for = retry_for
        self.backoff = backoff
        self.counts: Counter[tuple[str, str]] = Counter()
        """(kind, result) -> messages, for the metrics."""
        self.retries = 0
        """Sends tried again after a failure."""
        self._keeper = Keeper(kept, "text message(s)", self._counted("kept"), self._counted("lost"))
        self._sending = Sending()

    def missed_call(self, plan: Plan, cdr: CDR, reach: Reach) -> None:
        """Tell the subscriber who called, when and from where, if the call reached its
        lines and nobody answered: a destination rang out, was busy (at its call limit
        too), every forward failed, the caller hung up while it rang, or the caller was
        held in the queue for one and hung up or ran out of time; or every destination it
        could take was marked down (refused as no_route), which the text names. `reach`
        says how far the call got; a caller who gave up before any line was asked (menu,
        PIN prompt, recording notice) or was refused (screening, blacklist, hours, caps,
        balance, a failed PIN) is no missed call."""
        notify = plan.notifications
        if notify is None or not notify.missed_calls:
            return
        if reach is Reach.ALL_DOWN:
            why = ALL_DOWN_NOTE
        elif reach is Reach.LINES and cdr.outcome in MISSED:
            why = ""
        else:
            return
        region = cdr.region
        where = place_name(region.province, region.city, separator="") or "未知地区"
        when = cdr.started_at.astimezone(plan.zone()).strftime("%m-%d %H:%M")
        caller = cdr.caller or "未显示号码"
        text = f"未接来电：{caller}（{where}）于 {when} 拨打 {plan.number}，{why}请及时回电。"
        self._send_all("missed_call", plan.number, notify.sms_to, text)

    def low_balance(self, number: str, balance: Decimal, threshold: Decimal) -> None:
        """Tell the subscriber its prepaid balance fell below its warning threshold."""
        plan = self.plans(number)
        notify = plan.notifications if plan is not None else None
        if notify is None or not notify.low_balance:
            return
        text = f"{number} 预付余额 {balance} 元，已低于提醒值 {threshold} 元，请及时充值。"
        self._send_all("low_balance", number, notify.sms_to, text)

    async def close(self, grace: float) -> None:
        """Let messages being sent finish for up to `grace` seconds; keep those still
        waiting or being sent then (at shutdown), and close the sender."""
        await self._sending.close(grace)
        await self._keeper.close()
        await self.sender.close()

    def _send_all(self, kind: str, number: str, recipients: list[str], text: str) -> None:
        for to in recipients:
            if not self.limit.allows((kind, to)):
                self.counts[kind, "rate_limited"] += 1
                log.warning(
                    "SMS to %s not sent: over %d per %g s", to, self.limit.most, self.limit.window
                )
                continue
            message = _Message(kind, number, to, text)
            if self._sending.full:
                message.error = f"{MAX_PENDING} messages already being sent"
                self._give_up(message)
                continue
            self._sending.start(self._send(message))

    async def _send(self, message: _Message) -> None:
        def retrying(delay: float) -> None:
            self.retries += 1
            log.info("SMS to %s: %s; retry in %g s", message.to, message.error, delay)

        sent = await deliver(
            lambda: self.sender.send(message.to, message.text),
            message,
            retry_for=self.retry_for,
            backoff=self.backoff,
            retrying=retrying,
            give_up=lambda: self._give_up(message),
            stopping=self._sending.stopping,
        )
        if sent:
            self.counts[message.kind, "sent"] += 1

    def _give_up(self, message: _Message) -> None:
        """Keep a message the gateway did not take; one that surely never reached the phone
        gives its place in the mobile's limit back."""
        if not message.maybe_sent:
            self.limit.give_back((message.kind, message.to))
        doubt = " (it may have been sent)" if message.maybe_sent else ""
        log.error(
            "SMS to %s not sent after %d attempt(s): %s%s; kept for `hotline400 sms replay`",
            message.to,
            message.attempts,
            message.error,
            doubt,
        )
        self._keeper.add(
            {
                "id": uuid.uuid4().hex,
                "kind": message.kind,
                "number": message.number,
                "to": message.to,
                "text": message.text,
                "attempts": message.attempts,
                "error": message.error,
                "maybe_sent": message.maybe_sent,
                "kept_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )

    def _counted(self, result: str) -> Callable[[list[dict[str, Any]]], None]:
        def count(records: list[dict[str, Any]]) -> None:
            for record in records:
                self.counts[record["kind"], result] += 1

        return count
