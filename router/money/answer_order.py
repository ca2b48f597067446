"""The answered calls of a range in answer order, read a page at a time.

Rating prices calls in answer order (answer instant, else start; ties by call id): a number's
included minutes go to the calls answered first. A month of an operator's calls is millions
of CDRs, too many to read at once and sort. The store lists them by start instead, each page
from the call after the last one read (keyset on started_us, call id: an index range), and a
heap here puts them in answer order: a call is let go once every call not yet read is known
to be answered after it. A call is answered after it starts, so one not read yet, started at
or after the last start read, is answered no earlier than that start less `ANSWER_SLACK`;
memory holds a page and the calls still waiting to be answered at the last start read,
whatever the range.

The answer instants are compared here, as instants, not in SQL: the CDRs keep them as text in
the offset each call was recorded in, which only the instants order.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from router.storage.cdr import CDR
from router.storage.cdr_pages import PAGE_SIZE
from router.storage.protocol import Store
from router.storage.rows import epoch_us

log = logging.getLogger("hotline400.rating")

ANSWER_SLACK = timedelta(minutes=10)
"""How far an answer may be stamped before its call's start and still be put in order: the
reconciler takes answers from Asterisk's CDRs, whose AnswerTime is cut to the second and
read from Asterisk's clock, not the router's."""


def answer_key(cdr: CDR) -> tuple[int, str]:
    """Where a call comes in answer order: the instant in UTC microseconds (as the datetimes
    compare, and a heap's comparisons of plain integers cost a fraction of theirs)."""
    return epoch_us(cdr.answered_at or cdr.started_at), cdr.call_id


async def in_answer_order(
    store: Store,
    since: datetime,
    until: datetime,
    *,
    number: str | None = None,
    page_size: int = PAGE_SIZE,
) -> AsyncIterator[CDR]:
    """The answered calls started in [since, until) (of `number` only, if given), in answer
    order, read `page_size` calls at a time."""
    waiting: list[tuple[tuple[int, str], CDR]] = []
    last: CDR | None = None
    settled = None
    while True:
        page = await store.answered_calls(since, until, number=number, after=last, limit=page_size)
        for cdr in page:
            key = answer_key(cdr)
            if settled is not None and key[0] < settled:
                _out_of_order(cdr)
            heapq.heappush(waiting, (key, cdr))
        if len(page) < page_size:
            break
        last = page[-1]
        settled = epoch_us(last.started_at - ANSWER_SLACK)
        while waiting and waiting[0][0][0] < settled:
            yield heapq.heappop(waiting)[1]
    while waiting:
        yield heapq.heappop(waiting)[1]


def _out_of_order(cdr: CDR) -> None:
    """A call answered more than ANSWER_SLACK before its start (a clock far off) comes after
    calls answered later: priced all the same, and said, as its included minutes may have
    gone to those."""
    log.warning(
        "call %s answered at %s, %s before its start: priced out of answer order",
        cdr.call_id,
        cdr.answered_at.isoformat() if cdr.answered_at else "-",
        cdr.started_at - cdr.answered_at if cdr.answered_at else "-",
    )
