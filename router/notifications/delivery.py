"""What the SMS gateway and the low-balance webhook share: one JSON POST whose failure says
whether it may have gone through and whether trying again can help, and the retries.

A POST that surely did not reach the receiver (connection refused, no connection made in
time) or that it answered with a 5xx, 408 or 429 is tried again after `backoff` seconds,
doubled at each further try up to MAX_BACKOFF_S, for `retry_for` seconds; then it is given
up (kept in a spool by the caller). One the receiver refuses for good (another 4xx: a wrong
token will not fix itself; or a redirect, not followed, its Location named in the error) is
given up at once. So is one whose request went out without an
answer in time, or whose connection broke after it: the receiver may have taken it, and the
router never sends it again blindly; it is given up marked `maybe_sent`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol

import httpx

from router.notifications.webhooks import answer_error, refused_for_good, skim

MAX_BACKOFF_S = 60.0
MAX_PENDING = 1000


class DeliveryFailed(Exception):
    """The receiver did not take it; the text says why. `maybe_sent` when it may have taken
    it all the same (no answer in time after the request went out, the connection lost after
    it); `lasting` when it refused it in a way trying again will not change."""

    def __init__(self, reason: str, *, maybe_sent: bool = False, lasting: bool = False) -> None:
        super().__init__(reason)
        self.maybe_sent = maybe_sent
        self.lasting = lasting


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    body: Mapping[str, Any] | bytes,
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> None:
    """POST `body` as JSON (bytes: already encoded, as signed) under one deadline for all of
    it; a 2xx answer returns (of its body a little is read at most), anything else raises
    DeliveryFailed."""
    payload: dict[str, Any] = (
        {"content": body, "headers": {"Content-Type": "application/json", **(headers or {})}}
        if isinstance(body, bytes)
        else {"json": body, "headers": headers}
    )
    status: int | None = None
    location = ""
    request_went_out = False

    async def trace(event: str, info: dict[str, Any]) -> None:
        nonlocal request_went_out
        if event.endswith(".send_request_headers.started"):
            request_went_out = True

    try:
        async with (
            asyncio.timeout(timeout),
            client.stream("POST", url, **payload, extensions={"trace": trace}) as response,
        ):
            status = response.status_code
            location = response.headers.get("location", "")
            await skim(response)
    except TimeoutError:
        if status is None:
            reason = f"no answer within {timeout:g} s"
            if not request_went_out:
                reason = f"no connection within {timeout:g} s"
            raise DeliveryFailed(reason, maybe_sent=request_went_out) from None
    except (httpx.HTTPError, OSError) as error:
        if status is None:
            reason = f"{type(error).__name__}: {error}".rstrip(": ")
            raise DeliveryFailed(reason, maybe_sent=request_went_out) from None
    if not 200 <= status < 300:
        error = answer_error(status, location, "the URL in router.yaml")
        raise DeliveryFailed(error, lasting=refused_for_good(status))


class Attempted(Protocol):
    """What is being delivered, as far as its tries go."""

    attempts: int
    error: str
    maybe_sent: bool


async def deliver(
    send: Callable[[], Awaitable[None]],
    item: Attempted,
    *,
    retry_for: float,
    backoff: float,
    retrying: Callable[[float], None],
    give_up: Callable[[], None],
    stopping: asyncio.Event,
) -> bool:
    """Send `item` by `send` until it goes through (True), trying again as the module says;
    `retrying` is told each delay before it is waited. When it is given up, `give_up` is
    called, `item` saying why and whether it may have gone through (False); so it is when
    `stopping` is set while it waits to try again (no send is under way: nothing to let
    finish), and when this is cancelled (at shutdown), which is raised again."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + retry_for
    delay = backoff
    sending = False
    try:
        while True:
            item.attempts += 1
            sending = True
            try:
                await send()
            except DeliveryFailed as error:
                item.error, item.maybe_sent = str(error), error.maybe_sent
                if error.maybe_sent or error.lasting or loop.time() + delay > give_up_at:
                    give_up()
                    return False
            else:
                return True
            sending = False
            if stopping.is_set():
                give_up()
                return False
            retrying(delay)
            try:
                await asyncio.wait_for(stopping.wait(), delay)
            except TimeoutError:
                delay = min(delay * 2, MAX_BACKOFF_S)
            else:
                give_up()
                return False
    except asyncio.CancelledError:
        item.error = item.error or "stopped before sending"
        item.maybe_sent = sending  # cut short during a send: it may have gone out
        give_up()
        raise


class Sending:
    """Sends under way in the background, at most MAX_PENDING (beyond it the caller keeps
    what it would send, rather than opening connections without end)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self.stopping = asyncio.Event()
        """Set at close: a send waiting to try again is given up at once, not waited for."""

    @property
    def full(self) -> bool:
        return len(self._tasks) >= MAX_PENDING

    def start(self, send: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(send)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, grace: float) -> None:
        """Let the sends finish for up to `grace` seconds, then cancel the rest (each, as
        `deliver` does, gives itself up); those waiting to try again give up at once."""
        self.stopping.set()
        if self._tasks:
            _, waiting = await asyncio.wait(self._tasks, timeout=grace)
            for task in waiting:
                task.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
