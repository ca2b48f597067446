"""The inventory's word on every number the router has a plan for, kept in memory.

Reading a number's status from the store as each call arrived put a store round trip on
every call's path: about a fifth of the event loop's busy time under load (docs/
benchmarks.md), most of it the hand-off to the database thread and back. The daemon reads
the records of the planned numbers every `status_refresh` seconds instead (one statement
per 500 numbers), and at once after its own numbers tick moved one; a status an operator
sets on any host therefore counts within `status_refresh` on every router sharing the
store. A number the inventory does not hold has no status here: its plan's own `status`
counts. When the store cannot be read, the records read last stay in force.

A call sees the status at its own instant, not as the store last wrote it: the periods that
run out by themselves (a notice of cancellation ending, a review period ending, a suspension
using up its months) take effect when they fall due, though no numbers tick has written
them yet (the tick runs every `numbers_tick` seconds, up to an hour). Each number keeps the
instant its next time-driven transition falls due, so a call compares two instants; only the
first call after that instant applies numbering.lifecycle's catch-up to the record in
memory, without reading the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dialplan.plan import NumberStatus
from numbering.lifecycle import NumberRecord, Status, catch_up
from numbering.rules import NumberRules
from router.numbers.service import status_on_calls
from router.storage.protocol import Store


@dataclass(frozen=True, slots=True)
class InventoryStatus:
    """A number's status in the inventory, and what it means for its calls."""

    status: Status
    on_calls: NumberStatus | str
    """A plan status, or router.numbers.service.NOT_IN_SERVICE."""
    subscriber: str | None = None
    """Who holds the number (router.numbers.service.past_holders_plan); None: nobody."""


@dataclass(frozen=True, slots=True)
class _Known:
    """A record as read, and its status over the span [since, until) of instants."""

    read: NumberRecord
    status: InventoryStatus
    since: datetime | None
    """When the last time-driven transition applied in memory fell due; None: none was."""
    until: datetime | None
    """When the next one falls due; None: none will by itself."""


class NumberStatuses:
    def __init__(self) -> None:
        self._known: dict[str, _Known] = {}
        self._rules = NumberRules()

    def of(self, number: str, at: datetime) -> InventoryStatus | None:
        """The status at `at` of the record read last; None for a number the inventory does
        not hold."""
        known = self._known.get(number)
        if known is None:
            return None
        if (known.until is None or at < known.until) and (known.since is None or at >= known.since):
            return known.status
        known = self._known[number] = _at(known.read, at, self._rules)
        return known.status

    async def refresh(self, store: Store, numbers: Sequence[str], rules: NumberRules) -> None:
        """Read the records of `numbers` (the planned ones), whose periods run by `rules`;
        raises StoreUnavailable, the records read before staying in force."""
        records = await store.number_records(numbers)
        before = self._known if rules is self._rules else {}
        known: dict[str, _Known] = {}
        for number, record in records.items():
            kept = before.get(number)
            known[number] = (
                kept if kept is not None and kept.read == record else _read(record, rules)
            )
        self._known, self._rules = known, rules


def _read(record: NumberRecord, rules: NumberRules) -> _Known:
    """The record as read: its status holds until its next time-driven transition."""
    return _Known(record, _status(record), None, record.due_at(rules))


def _at(record: NumberRecord, at: datetime, rules: NumberRules) -> _Known:
    """The record caught up to `at`: its status holds from the last transition that fell due
    by then until the next one."""
    changes = catch_up(record, at, rules)
    if not changes:
        return _read(record, rules)
    current = changes[-1].after
    return _Known(record, _status(current), changes[-1].at, current.due_at(rules))


def inventory_status(record: NumberRecord, at: datetime, rules: NumberRules) -> InventoryStatus:
    """The status at `at` of a record as read, the periods due by then run out."""
    return _at(record, at, rules).status


def _status(record: NumberRecord) -> InventoryStatus:
    suspended = record.suspended_since is not None
    on_calls = status_on_calls(record.status, suspended)
    return InventoryStatus(record.status, on_calls, record.subscriber)
