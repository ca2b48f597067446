"""Entered PINs checked against their plan's hash on threads of their own, bounded.

A PIN hash is scrypt, made to cost: some 30 ms of a core a check (dialplan/pin.py), and a
wrong entry is checked up to `attempts` times a call. The PIN guard counts failures per
caller, so a dialler rotating caller IDs is never refused; on the event loop's shared
threads its wrong PINs would take every core, slowing every other number's calls and the
CDR writer's batches, which run on those threads too. Here at most `workers` checks run at
once and `max_waiting` more wait; an entry beyond that is not checked (None), the caller's
attempt spent and nothing counted against the caller, so a flood costs one core at most.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from dialplan.pin import verify_pin


class PinChecks:
    def __init__(self, workers: int = 1, max_waiting: int = 64) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pin-check")
        self._room = workers + max_waiting
        self.in_flight = 0
        """Checks running or waiting for a thread now."""
        self.refused = 0
        """Entries not checked since the start: no room."""

    async def verify(self, entered: str, stored_hash: str) -> bool | None:
        """Whether `entered` is the PIN `stored_hash` was made from; None when no check
        could be taken (as many running and waiting as allowed)."""
        if self.in_flight >= self._room:
            self.refused += 1
            return None
        self.in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, verify_pin, entered, stored_hash)
        finally:
            self.in_flight -= 1

    def close(self) -> None:
        """Drop the checks still waiting; one running finishes on its thread."""
        self._pool.shutdown(wait=False, cancel_futures=True)
