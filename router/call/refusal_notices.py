"""Warnings an admin acts on: a 400 number refusing every call for a reason only an admin
can fix (no plan, a suspended number, an exhausted prepaid balance, a cap reached, every
destination down) is logged once, when it starts, not once per call; it is logged again
only after the number has routed a call or refuses for another reason.

Refusals that depend on the caller (blacklist, screening, withheld caller IDs, office
hours) are the plan working as meant, and are left to the per-call log line.
"""

from __future__ import annotations

import logging

from dialplan.decision import RejectReason
from router.call.channel_contract import RouterRefusal

log = logging.getLogger("hotline400.refusals")

REMEMBERED_NUMBERS = 10_000
"""Dialled strings without a plan come from outside; the memory of them is bounded."""

_WHAT_TO_DO = {
    RouterRefusal.UNKNOWN_NUMBER: "add its plan to the plans directory "
    "(hotline400 check validates it)",
    RejectReason.SUSPENDED: "its plan's status is suspended",
    RejectReason.CANCELLED: "its plan's status is cancelled",
    RejectReason.FROZEN: "its plan's status is frozen",
    RejectReason.ARREARS: "book a payment (hotline400 account topup --number {number} "
    "--amount YUAN) or make the account postpaid in tariffs.yaml",
    RejectReason.CAPPED: "a cap of its plan is reached until the period ends or the cap is raised",
    RejectReason.NO_ROUTE: "every destination of its plan is marked down",
}


def fixable(reason: str) -> bool:
    return reason in _WHAT_TO_DO


class RefusalNotices:
    def __init__(self) -> None:
        self._refusing: dict[str, str] = {}

    def refused(self, number: str, reason: str, detail: str) -> None:
        """A call to `number` was refused; warn if the reason is new for the number."""
        if not fixable(reason) or self._refusing.get(number) == reason:
            return
        if len(self._refusing) >= REMEMBERED_NUMBERS:
            self._refusing.clear()
        self._refusing[number] = reason
        advice = _WHAT_TO_DO[reason].format(number=number)
        log.warning(
            "%s refuses calls: %s; %s", number, detail, advice, extra={"reason": str(reason)}
        )

    def routed(self, number: str) -> None:
        """A call to `number` was put through: a later refusal is news again."""
        if self._refusing:
            self._refusing.pop(number, None)
