"""PIN guessing across calls: a caller who fails a number's PIN call after call is refused
before the prompt for a while.

The plan's `attempts` limit the guesses of one call; a dialler simply calls again, and a
4-digit PIN falls in hours. So every call that ended with a wrong PIN entered is counted in
the store per caller and 400 number (routers on one store count together), and a caller
with `max_failed_calls` of them within `window` seconds is refused for `block` seconds with
HOTLINE_STATUS=blocked. A withheld (or otherwise unusable) caller ID is one shared caller.
The guard never takes a number off the air: when the store cannot be read or written it
lets the call through to the prompt and says so in the log.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from router.configuration.settings import PinGuardSettings
from router.monitoring.metrics import Metrics
from router.storage.protocol import Store, StoreUnavailable

log = logging.getLogger("hotline400.pin_guard")

WITHHELD = ""
"""The one caller every withheld, missing or unusable caller ID counts as."""


class PinGuard:
    def __init__(self, store: Store, settings: PinGuardSettings, metrics: Metrics) -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics

    @property
    def on(self) -> bool:
        return self._settings.max_failed_calls > 0

    async def refused_until(self, number: str, caller: str, now: datetime) -> datetime | None:
        """Until when this caller is refused on this number; None: play the prompt."""
        if not self.on:
            return None
        try:
            until = await self._store.pin_blocked_until(number, caller, now)
        except StoreUnavailable as error:
            log.error("PIN guard of %s not read (%s): the caller gets the prompt", number, error)
            return None
        if until is not None:
            self._metrics.pin_guessing_refused(number)
        return until

    async def failed(self, number: str, caller: str, call_id: str, at: datetime) -> None:
        """Count a call that ended with a wrong PIN; the caller may now be refused."""
        if not self.on:
            return
        settings = self._settings
        try:
            tally = await self._store.count_pin_failure(
                number,
                caller,
                call_id,
                at,
                window=timedelta(seconds=settings.window),
                limit=settings.max_failed_calls,
                block=timedelta(seconds=settings.block),
            )
        except StoreUnavailable as error:
            log.error("failed PIN call %s not counted: %s", call_id, error)
            return
        if tally.blocked_until is not None and tally.failures >= settings.max_failed_calls:
            self._metrics.pin_guessing_blocked(number)
            log.warning(
                "PIN guessing on %s: %d failed PIN calls within %gs; caller refused until %s",
                number,
                tally.failures,
                settings.window,
                tally.blocked_until.isoformat(timespec="seconds"),
                extra={"number": number, "caller": caller or "withheld"},
            )
