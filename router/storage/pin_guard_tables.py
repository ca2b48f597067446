"""Failed PIN calls per caller and 400 number, counted in a sliding window shared by every
router on the store, written once over any engine's sessions.

A failure is a row of `pin_failures`, kept only while it is inside the window. Counting
first locks the caller's `pin_guard` row (an upsert that changes nothing), so two routers
counting the same caller at the same moment take turns and the second sees the first's
failure: together they never both stay under the threshold. The caller who reaches it is
refused until `blocked_until_us`, which every router reads before playing the prompt.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from router.storage.rows import PinTally, epoch_us, from_epoch_us
from router.storage.sessions import SessionSource

_LOCK_GUARD = (
    "INSERT INTO pin_guard (number, caller, failures, blocked_until_us) VALUES (?, ?, 0, 0)"
    " ON CONFLICT (number, caller) DO UPDATE SET failures = pin_guard.failures"
)
_FORGET_OLD = "DELETE FROM pin_failures WHERE number = ? AND at_us < ?"
_ADD_FAILURE = (
    "INSERT INTO pin_failures (number, caller, at_us, call_id) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (number, caller, at_us, call_id) DO NOTHING"
)
_COUNT = (
    "SELECT COUNT(*) AS failures FROM pin_failures"
    " WHERE number = ? AND caller = ? AND at_us >= ? AND at_us <= ?"
)
_SET_GUARD = (
    "UPDATE pin_guard SET failures = ?,"
    " blocked_until_us = CASE WHEN ? > blocked_until_us THEN ? ELSE blocked_until_us END"
    " WHERE number = ? AND caller = ?"
)
_BLOCKED_UNTIL = (
    "SELECT blocked_until_us FROM pin_guard"
    " WHERE number = ? AND caller = ? AND blocked_until_us > ?"
)


class PinGuardTables(SessionSource):
    """The PIN-guessing part of `Store`."""

    async def count_pin_failure(
        self,
        number: str,
        caller: str,
        call_id: str,
        at: datetime,
        *,
        window: timedelta,
        limit: int,
        block: timedelta,
    ) -> PinTally:
        at_us = epoch_us(at)
        since_us = epoch_us(at - window)
        async with self._transaction() as session:
            await session.execute(_LOCK_GUARD, (number, caller))
            await session.execute(_FORGET_OLD, (number, since_us))
            await session.execute(_ADD_FAILURE, (number, caller, at_us, call_id))
            [row] = await session.fetch(_COUNT, (number, caller, since_us, at_us))
            failures = int(row["failures"])
            until_us = epoch_us(at + block) if failures >= limit else 0
            await session.execute(_SET_GUARD, (failures, until_us, until_us, number, caller))
            blocked = await session.fetch(_BLOCKED_UNTIL, (number, caller, at_us))
        until = from_epoch_us(blocked[0]["blocked_until_us"]) if blocked else None
        return PinTally(failures, until.astimezone(at.tzinfo) if until else None)

    async def pin_blocked_until(self, number: str, caller: str, now: datetime) -> datetime | None:
        async with self._connected() as session:
            rows = await session.fetch(_BLOCKED_UNTIL, (number, caller, epoch_us(now)))
        if not rows:
            return None
        return from_epoch_us(rows[0]["blocked_until_us"]).astimezone(now.tzinfo)
