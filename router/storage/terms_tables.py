"""Each number's recorded terms (minimum monthly consumption, charged rate, package) over any
engine's sessions, written once: `account terms` records and shows them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from rating.minimum import RecordedTerms, Terms
from router.storage.rows import epoch_us, fen_of, from_epoch_us, yuan_of
from router.storage.sessions import SessionSource

INSERT_TERMS = (
    "INSERT INTO number_terms (number, recorded_us, since, package, minimum_fen, rate, note)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
SELECT_TERMS = "SELECT * FROM number_terms WHERE number = ? ORDER BY recorded_us"


class TermsTables(SessionSource):
    """The terms part of `Store`."""

    async def record_terms(self, records: list[RecordedTerms]) -> None:
        async with self._transaction() as session:
            for record in records:
                await session.execute(
                    INSERT_TERMS,
                    (
                        record.number,
                        epoch_us(record.recorded_at),
                        record.since.isoformat(),
                        record.terms.package,
                        fen_of(record.terms.minimum),
                        str(record.terms.rate),
                        record.note,
                    ),
                )

    async def terms_history(self, number: str) -> list[RecordedTerms]:
        async with self._connected() as session:
            rows = await session.fetch(SELECT_TERMS, (number,))
        return [
            RecordedTerms(
                row["number"],
                date.fromisoformat(row["since"]),
                Terms(row["package"], yuan_of(row["minimum_fen"]), Decimal(row["rate"])),
                from_epoch_us(row["recorded_us"]),
                row["note"],
            )
            for row in rows
        ]
