"""The inventory's word on every number the router has a plan for, kept in memory.

Reading a number's status from the store as each call arrived put a store round trip on
every call's path: about a fifth of the event loop's busy time under load (docs/
benchmarks.md), most of it the hand-off to the database thread and back. The daemon reads
the statuses of the planned numbers every `status_refresh` seconds instead (one statement
per 500 numbers), and at once after its own numbers tick moved one; a status an operator
sets on any host therefore counts within `status_refresh` on every router sharing the
store. A number the inventory does not hold has no status here: its plan's own `status`
counts. When the store cannot be read, the statuses read last stay in force.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dialplan.plan import NumberStatus
from numbering.lifecycle import NumberRecord, Status
from router.numbers.service import status_on_calls
from router.storage.protocol import Store


@dataclass(frozen=True, slots=True)
class InventoryStatus:
    """A number's status in the inventory, and what it means for its calls."""

    status: Status
    on_calls: NumberStatus | str
    """A plan status, or router.numbers.service.NOT_IN_SERVICE."""


class NumberStatuses:
    def __init__(self) -> None:
        self._known: dict[str, InventoryStatus] = {}

    def of(self, number: str) -> InventoryStatus | None:
        """The status read last; None for a number the inventory does not hold."""
        return self._known.get(number)

    async def refresh(self, store: Store, numbers: Sequence[str]) -> None:
        """Read the statuses of `numbers` (the planned ones); raises StoreUnavailable, the
        statuses read before staying in force."""
        records = await store.number_records(numbers)
        self._known = {number: inventory_status(record) for number, record in records.items()}


def inventory_status(record: NumberRecord) -> InventoryStatus:
    suspended = record.suspended_since is not None
    return InventoryStatus(record.status, status_on_calls(record.status, suspended))
