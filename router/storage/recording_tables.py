"""The calls' recordings as `recordings purge` reads and marks them, written once over any
engine's sessions (schema version 11).

A recording stays named on its CDR after it is removed; `recording_purged_at` says when, so
a purge reads only the recordings still on disk, through the partial index
`cdrs_recordings`, number by number with each number's own retention.
"""

from __future__ import annotations

from datetime import datetime

from router.storage.rows import Recorded, epoch_us
from router.storage.sessions import SessionSource

_NUMBERS = (
    "SELECT DISTINCT number FROM cdrs"
    " WHERE recording_path IS NOT NULL AND recording_purged_at IS NULL ORDER BY number"
)
_BEFORE = (
    "SELECT call_id, started_at, recording_path FROM cdrs"
    " WHERE number = ? AND started_us < ? AND (started_us > ? OR (started_us = ? AND call_id > ?))"
    " AND recording_path IS NOT NULL AND recording_purged_at IS NULL"
    " ORDER BY started_us, call_id LIMIT ?"
)
_PURGED = (
    "UPDATE cdrs SET recording_purged_at = ? WHERE call_id = ? AND recording_purged_at IS NULL"
)


class RecordingTables(SessionSource):
    """The recordings part of `Store`."""

    async def recorded_numbers(self) -> list[str]:
        async with self._connected() as session:
            rows = await session.fetch(_NUMBERS, ())
        return [row["number"] for row in rows]

    async def recordings_before(
        self, number: str, before: datetime, after: Recorded | None = None, limit: int = 1000
    ) -> list[Recorded]:
        after_us, after_id = (epoch_us(after.started_at), after.call_id) if after else (-1, "")
        params = (number, epoch_us(before), after_us, after_us, after_id, limit)
        async with self._connected() as session:
            rows = await session.fetch(_BEFORE, params)
        return [
            Recorded(
                row["call_id"],
                number,
                datetime.fromisoformat(row["started_at"]),
                row["recording_path"],
            )
            for row in rows
        ]

    async def recording_purged(self, call_id: str, at: datetime) -> None:
        async with self._transaction() as session:
            await session.execute(_PURGED, (at.isoformat(), call_id))
