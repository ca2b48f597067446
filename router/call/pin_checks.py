"""Entered PINs checked against their plan's hash on threads of their own, bounded.

A PIN hash is scrypt, made to cost: some 30 ms of a core a check (dialplan/pin.py), and a
wrong entry is checked up to `attempts` times a call. The PIN guard counts failures per
caller, so a dialler rotating caller IDs is never refused; on the event loop's shared
threads its wrong PINs would take every core, slowing every other number's calls and the
CDR writer's batches, which run on those threads too. Here at most `workers` checks run at
once and `max_waiting` more wait; an entry beyond that is not checked (None), the caller's
attempt spent and nothing counted against the caller, so a flood costs one core at most.
Such an entry is logged once a minute with the count since, not once per entry: in a flood
the log line would cost the very core the calls need.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from dialplan.pin import verify_pin

log = logging.getLogger("hotline400.call")

WARN_EVERY_S = 60.0


class PinChecks:
    def __init__(self, workers: int = 1, max_waiting: int = 64) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pin-check")
        self._room = workers + max_waiting
        self.in_flight = 0
        """Checks running or waiting for a thread now."""
        self.refused = 0
        """Entries not checked since the start: no room."""
        self._warned_at = -WARN_EVERY_S
        self._warned_refused = 0

    async def verify(self, entered: str, stored_hash: str) -> bool | None:
        """Whether `entered` is the PIN `stored_hash` was made from; None when no check
        could be taken (as many running and waiting as allowed)."""
        if self.in_flight >= self._room:
            self.refused += 1
            self._warn()
            return None
        self.in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, verify_pin, entered, stored_hash)
        finally:
            self.in_flight -= 1

    def _warn(self) -> None:
        """The refused entry, in the log at most once every WARN_EVERY_S."""
        now = time.monotonic()
        if now - self._warned_at < WARN_EVERY_S:
            return
        since = self.refused - self._warned_refused
        self._warned_at, self._warned_refused = now, self.refused
        log.warning(
            "PIN entry not checked: %d PIN checks running or waiting, the most pin_guard "
            "allows; %d entries not checked since the last such line, %d since the start",
            self.in_flight,
            since,
            self.refused,
        )

    def close(self) -> None:
        """Drop the checks still waiting; one running finishes on its thread."""
        self._pool.shutdown(wait=False, cancel_futures=True)
