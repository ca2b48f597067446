"""A number's holdings: its life from one return to the pool to the next.

A number comes back to the pool with nothing of its past holders (numbering.lifecycle): who
holds it next sees, and pays for, only what happened since. This is the one reading of where
a holding begins, from the number's history; the store keeps each holding's balance from the
same transitions (Store.holdings), and the console scopes a subscriber's pages by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from numbering.lifecycle import Status
from router.storage.number_rows import HistoryEntry


def current_life(history: list[HistoryEntry]) -> list[HistoryEntry]:
    """The transitions since the number last came back to the pool: a subscriber's users
    see their own holding of it, never who held it before them nor why that ended (the
    record itself keeps nothing of past holders)."""
    back = _last_return(history)
    return history if back is None else history[back + 1 :]


def holding_since(
    history: Sequence[HistoryEntry], before: datetime | None = None
) -> datetime | None:
    """When the number last came back to the pool (None if it never did): the start of the
    current holding, or, with `before`, of the holding in force just before that instant."""
    if before is not None:
        history = [entry for entry in history if entry.at < before]
    back = _last_return(history)
    return None if back is None else history[back].at


def _last_return(history: Sequence[HistoryEntry]) -> int | None:
    """Where in the history the number last came back to the pool."""
    back = [i for i, entry in enumerate(history) if entry.to_status == Status.AVAILABLE.value]
    return back[-1] if back else None
