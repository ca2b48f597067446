"""Re-rating: what pricing a call again changes in the books. Pure: the caller reads the
stored price and the adjustments already booked, and passes in the time it is.

Re-pricing never changes a ledger entry. The call takes its new price and the difference in
the subscriber's share is booked as an adjustment, ref 'rerate:<call id>:<n>' for the n-th
re-pricing of that call, dated when the re-rating runs, so statements already issued stay
as they were and running the re-rating again books nothing.
"""

from __future__ import annotations

from datetime import datetime

from rating.call import Shares
from rating.ledger import LedgerEntry, LedgerKind

RERATE_PREFIX = "rerate:"


def rerate_ref(call_id: str, nth: int) -> str:
    return f"{RERATE_PREFIX}{call_id}:{nth}"


def rerated_call_id(ref: str) -> str | None:
    """The call id of a re-rating adjustment's ref, None for any other ref."""
    if not ref.startswith(RERATE_PREFIX):
        return None
    return ref[len(RERATE_PREFIX) :].rpartition(":")[0] or None


def rerating_adjustment(
    number: str, call_id: str, old: Shares, new: Shares, now: datetime, *, earlier: int
) -> LedgerEntry | None:
    """The adjustment of a call priced again (`earlier` adjustments of it booked before):
    the subscriber is credited what its share fell by, or debited what it rose by; None
    when its share is the same."""
    credit = old.callee_share - new.callee_share
    if not credit:
        return None
    note = (
        f"re-rated call {call_id}: {old.tariff_id or '-'} {old.callee_share} -> "
        f"{new.tariff_id} {new.callee_share}"
    )
    ref = rerate_ref(call_id, earlier + 1)
    return LedgerEntry(number, now, credit, LedgerKind.ADJUSTMENT, ref, note)
