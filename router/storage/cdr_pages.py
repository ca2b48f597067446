"""Call records read a page at a time, newest first, for exports of any length.

A month of a busy number is millions of CDRs: read at once they would all sit in memory
before the first line is written. Each page here starts where the last one ended (keyset
pagination on the listing's own order, started_us then call id), so memory holds one page
whatever the export's size, and a page costs the same near the end as at the start (an
OFFSET would read every row before it again).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from router.storage.cdr import CDR, Outcome
from router.storage.protocol import Store

PAGE_SIZE = 2000
"""Calls a page: a few megabytes of CDRs, and few enough round trips that the reading
costs no more than one query would (measured in docs/benchmarks.md)."""


async def cdr_pages(
    store: Store,
    *,
    number: str | None = None,
    caller: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    outcome: Outcome | None = None,
    limit: int | None = None,
    page_size: int = PAGE_SIZE,
) -> AsyncIterator[list[CDR]]:
    """The calls `store.query_cdrs` would list with these filters, at most `limit` of them,
    in pages of up to `page_size`, none given twice: each page starts after the last call
    of the one before, so calls written meanwhile shift nothing (one started during the
    export is newer than its first page, and left out)."""
    left = limit
    last: CDR | None = None
    while left is None or left > 0:
        size = page_size if left is None else min(page_size, left)
        page = await store.query_cdrs(
            number=number,
            caller=caller,
            since=since,
            until=until,
            outcome=outcome,
            limit=size,
            older_than=last,
        )
        if page:
            yield page
        if len(page) < size:
            return
        last = page[-1]
        left = None if left is None else left - len(page)
