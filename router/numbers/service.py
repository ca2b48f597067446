"""What a number's status in the inventory means for its calls.

Only a number in service connects calls: active, or given notice of cancellation and not
suspended (the notice runs 30 days, the number works meanwhile). Suspended, arrears,
cancelled and frozen numbers are refused with the plan statuses' own Q.850 causes; a
number in the pool (available, reserved, applied for, in review) is not in service at all
and is refused like a number without a plan. A number the inventory does not hold keeps
its plan file's `status`.

A plan naming its `subscriber` routes the calls of that subscriber's holding only: once the
number is held by another (it came back to the pool and was given again), the plan is a past
holder's and the number's calls are refused as those of a number without a plan, whatever its
status. A plan naming no subscriber routes the calls of whoever holds the number.
"""

from __future__ import annotations

from typing import Final

from dialplan.plan import NumberStatus, Plan
from numbering.lifecycle import Status

NOT_IN_SERVICE: Final = "not in service"

_ON_CALLS: dict[Status, NumberStatus | str] = {
    Status.ACTIVE: NumberStatus.ACTIVE,
    Status.CANCELLATION_REQUESTED: NumberStatus.ACTIVE,
    Status.SUSPENDED: NumberStatus.SUSPENDED,
    Status.ARREARS: NumberStatus.ARREARS,
    Status.CANCELLED: NumberStatus.CANCELLED,
    Status.FROZEN: NumberStatus.FROZEN,
    Status.AVAILABLE: NOT_IN_SERVICE,
    Status.RESERVED: NOT_IN_SERVICE,
    Status.APPLIED: NOT_IN_SERVICE,
    Status.UNDER_REVIEW: NOT_IN_SERVICE,
}


def status_on_calls(status: str | None, suspended: bool) -> NumberStatus | str | None:
    """The plan status a call is routed with, NOT_IN_SERVICE, or None (the plan's own)."""
    if status is None:
        return None
    if suspended and status == Status.CANCELLATION_REQUESTED:
        return NumberStatus.SUSPENDED
    return _ON_CALLS[Status(status)]


def past_holders_plan(plan: Plan, holder: str | None) -> str | None:
    """Why `plan` routes none of its number's calls while `holder` holds the number (the
    inventory's subscriber at the call's instant): it names another subscriber. None when it
    may route them: it names none, names the holder, or nobody holds the number (whose calls
    its status refuses anyway)."""
    if plan.subscriber is None or holder is None or plan.subscriber == holder:
        return None
    return (
        f"held by {holder}, not by {plan.subscriber}, the subscriber its plan names: "
        "a past holder's plan routes none of its calls"
    )
