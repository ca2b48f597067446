"""Delivery of call events to CRMs: a bounded queue, a few workers, retries with backoff.

A call only ever calls `submit`, which never waits: the event joins the queue, or, when
the queue is full (a CRM down for long under heavy traffic), it is kept at once as
undelivered. Workers POST each event with a total time limit; a failed POST is retried
after `backoff`, doubled at each further try, by a timer that puts it back in the queue,
so a dead CRM holds no worker while it waits and other subscribers' events flow on. An
event that used its attempts, that a CRM refuses for good (a 4xx other than 408 and
429: a wrong URL or key will not fix itself), or whose key is missing from the
environment is kept in the spool (`UndeliveredEvents`) for `hotline400 webhooks replay`.
A redirect (3xx) is refused for good too: it is not followed, since the signed event would
go to a URL no plan names (and a 301 or 302 turns the POST into a GET), and it answers the
same on every try; its error names the Location, so the operator corrects the plan's
crm.url, and it is counted (`redirected`) for the metrics.
At shutdown, events still queued, waiting to retry or in flight after the grace time
are kept the same way: nothing accepted is dropped.

httpx: a maintained asyncio HTTP client with connection pooling and per-phase timeouts;
each POST also runs under one overall deadline, so a receiver that trickles its answer
byte by byte still ends in time. The status line is the CRM's answer: a 2xx is delivered
even when its body is endless, of which the router reads MAX_ANSWER_BYTES at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx

from router.notifications.crm_address import Network, RefusedAddress, checked_transport
from router.notifications.signing import signed_headers
from router.notifications.undelivered import Keeper, UndeliveredEvents
from router.storage.store_url import redacted

log = logging.getLogger("hotline400.webhooks")

MAX_BACKOFF_S = 300.0
LOG_EVERY_S = 60.0
MAX_ANSWER_BYTES = 64 * 1024
"""What of a CRM's answer is read: only its status counts, and a CRM answering with a
huge or endless body must not fill the router's memory."""


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One event, ready to POST: its JSON body is fixed, its signature made per attempt."""

    id: str
    kind: str
    number: str
    """The 400 number whose plan names the CRM (replay reads its current URL and key)."""
    url: str
    secret_env: str
    body: bytes


@dataclass(slots=True)
class _Pending:
    event: CallEvent
    attempt: int = 1
    error: str = ""


@dataclass
class DeliveryStats:
    delivered: int = 0
    retried: int = 0
    undelivered: int = 0
    redirected: int = 0
    """Of the undelivered, those a CRM answered with a redirect (3xx)."""


@dataclass
class WebhookDelivery:
    undelivered: UndeliveredEvents
    queue_size: int = 10_000
    timeout: float = 5.0
    attempts: int = 5
    backoff: float = 1.0
    workers: int = 4
    secrets: Callable[[str], str | None] = os.environ.get
    clock: Callable[[], float] = time.time
    posted: Callable[[float], None] = lambda seconds: None
    """Told the seconds of every POST (the metrics' histogram)."""
    stats: DeliveryStats = field(default_factory=DeliveryStats)
    allowed_networks: Sequence[Network] = ()
    """Private networks a CRM may be in (router.yaml's crm_allowed_networks); public
    addresses always are."""
    proxy: str | None = None
    """The operator's HTTP proxy events go through (router.yaml's crm_proxy); None: straight
    to the CRM."""

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(self.queue_size)
        self._workers: list[asyncio.Task[None]] = []
        self._retries: dict[asyncio.TimerHandle, _Pending] = {}
        self._in_flight: dict[int, _Pending] = {}
        self._keeper = Keeper(self.undelivered, "webhook event(s)")
        self._logged: dict[str, tuple[float, int]] = {}  # url -> (last logged, not logged since)
        self._client: httpx.AsyncClient | None = None

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize() + len(self._retries)

    async def start(self) -> None:
        limits = httpx.Limits(max_connections=self.workers * 4)
        transport = checked_transport(self.allowed_networks, limits, self.proxy)
        self._client = httpx.AsyncClient(timeout=self.timeout, transport=transport)
        self._workers = [
            asyncio.create_task(self._work(), name=f"webhook-{n}") for n in range(self.workers)
        ]

    def submit(self, event: CallEvent) -> None:
        """Queue an event; never waits. A full queue keeps it as undelivered at once."""
        self._enqueue(_Pending(event))

    async def close(self, grace: float) -> None:
        """Let queued events go out for up to `grace` seconds, then keep the rest."""
        left: list[_Pending] = []
        if self._workers:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    while self._queue.qsize() or self._in_flight:
                        await asyncio.sleep(0.02)
            left.extend(self._in_flight.values())  # cut short below: kept, not lost
            for worker in self._workers:
                worker.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            self._workers = []
        left.extend(self._retries.values())
        for handle in self._retries:
            handle.cancel()
        self._retries.clear()
        while not self._queue.empty():
            left.append(self._queue.get_nowait())
        for pending in left:
            self._give_up(pending, pending.error or "router stopped before delivery")
        await self._keeper.close()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- the workers ---------------------------------------------------------------------------

    def _enqueue(self, pending: _Pending) -> None:
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            self._give_up(pending, f"delivery queue full ({self.queue_size} events)")

    async def _work(self) -> None:
        while True:
            pending = await self._queue.get()
            key = id(pending)
            self._in_flight[key] = pending
            try:
                await self._attempt(pending)
            except Exception:  # a bug here must not stop the worker
                log.exception("webhook %s failed", pending.event.id)
                self._give_up(pending, "router error")
            finally:
                self._in_flight.pop(key, None)
                self._queue.task_done()

    async def _attempt(self, pending: _Pending) -> None:
        event = pending.event
        key = self.secrets(event.secret_env)
        if not key:
            self._give_up(pending, f"environment variable {event.secret_env} (the key) is not set")
            return
        timestamp = int(self.clock())
        headers = signed_headers(key.encode(), timestamp, event.body, event.id, event.kind)
        started = time.monotonic()
        status: int | None = None
        location = ""
        try:
            assert self._client is not None, "start() opens the client"
            async with (
                asyncio.timeout(self.timeout),
                self._client.stream(
                    "POST", event.url, content=event.body, headers=headers
                ) as response,
            ):
                status = response.status_code
                location = response.headers.get("location", "")
                await skim(response)
            error = f"HTTP {status}"
        except TimeoutError:
            error = f"no answer within {self.timeout:g} s"
        except RefusedAddress as refused:  # the plan must change: trying again will not
            self._give_up(pending, f"crm.url: {refused}")
            return
        except (httpx.HTTPError, OSError) as failure:
            error = f"{type(failure).__name__}: {failure}".rstrip(": ")
        if status is not None:  # its answer, however its body went
            error = answer_error(status, location)
        self.posted(time.monotonic() - started)
        if status is not None and 200 <= status < 300:
            self.stats.delivered += 1
            return
        pending.error = error
        if status is not None and is_redirect(status):
            self.stats.redirected += 1
        if (status is not None and refused_for_good(status)) or pending.attempt >= self.attempts:
            self._give_up(pending, error)
            return
        self.stats.retried += 1
        delay = min(self.backoff * 2 ** (pending.attempt - 1), MAX_BACKOFF_S)
        log.debug("webhook %s: %s; retry in %g s", event.id, error, delay)
        pending.attempt += 1
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def retry() -> None:
            assert handle is not None
            self._retries.pop(handle, None)
            self._enqueue(pending)

        handle = loop.call_later(delay, retry)
        self._retries[handle] = pending

    # --- what no CRM took ------------------------------------------------------------------------

    def _give_up(self, pending: _Pending, error: str) -> None:
        """Keep an event no CRM took (written with others, by the Keeper); the log says so
        once a minute per URL, not once per event."""
        event = pending.event
        self.stats.undelivered += 1
        self._log_given_up(event.url, event.id, pending.attempt, error)
        self._keeper.add(
            {
                "id": event.id,
                "kind": event.kind,
                "number": event.number,
                "url": event.url,
                "secret_env": event.secret_env,
                "body": event.body.decode(),
                "attempts": pending.attempt,
                "error": error,
                "kept_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )

    def _log_given_up(self, url: str, event_id: str, attempts: int, error: str) -> None:
        now = time.monotonic()
        last, quiet = self._logged.get(url, (-LOG_EVERY_S, 0))
        if now - last < LOG_EVERY_S:
            self._logged[url] = (last, quiet + 1)
            return
        self._logged[url] = (now, 0)
        also = f" ({quiet} more since the last report)" if quiet else ""
        log.warning(
            "webhook %s to %s not delivered after %d attempt(s): %s%s; kept for "
            "`hotline400 webhooks replay`",
            event_id,
            without_secrets(url),
            attempts,
            error,
            also,
        )


def is_redirect(status: int) -> bool:
    return 300 <= status < 400


def refused_for_good(status: int) -> bool:
    """An answer that trying again will not change: a redirect (not followed), or a 4xx
    other than 408 (timeout) and 429 (too many requests)."""
    return is_redirect(status) or (400 <= status < 500 and status not in (408, 429))


def answer_error(status: int, location: str, setting: str = "the plan's crm.url") -> str:
    """What a receiver's non-2xx answer is kept and logged as; a redirect says where it
    points (its query hidden) and which `setting` to correct."""
    if is_redirect(status):
        where = without_secrets(location) if location else "no Location"
        return f"HTTP {status}: moved to {where}; not followed: correct {setting}"
    return f"HTTP {status}"


async def skim(response: httpx.Response) -> None:
    """Read and drop up to MAX_ANSWER_BYTES of an answer's body, so a short one leaves its
    connection for the next POST; a longer one is left unread and its connection closed."""
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > MAX_ANSWER_BYTES:
            return


def without_secrets(url: str) -> str:
    """A CRM's URL as the log shows it: its password and its query (where CRMs take their
    tokens) hidden; the spool keeps the URL whole, for the replay."""
    parts = urlsplit(redacted(url))
    return urlunsplit(parts._replace(query="***")) if parts.query else urlunsplit(parts)
