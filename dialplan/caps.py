"""Cost control: the business's caps and the prepaid balance, asked before connecting a call."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from dialplan.plan import Caps, NumberStatus

ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class Usage:
    """Month-to-date and day-to-date usage of one 400 number, read from counters (not CDRs).

    month_calls counts what the plan's caps count: incoming calls, or answered ones.
    """

    month_cost: Decimal = ZERO
    month_calls: int = 0
    day_cost: Decimal = ZERO
    balance: Decimal | None = None
    status: NumberStatus | None = None
    """The number's status in the operator's inventory, which rules over the plan's own
    `status`; None for a number the inventory does not hold."""


def reached_cap(caps: Caps, usage: Usage) -> str | None:
    """Which cap stops calls now: monthly_calls, monthly_cost, daily_cost, or None."""
    if caps.monthly_calls is not None and usage.month_calls >= caps.monthly_calls:
        return "monthly_calls"
    if caps.monthly_cost is not None and usage.month_cost >= caps.monthly_cost:
        return "monthly_cost"
    if caps.daily_cost is not None and usage.day_cost >= caps.daily_cost:
        return "daily_cost"
    return None


def cap_reached(caps: Caps, usage: Usage) -> str | None:
    """Why no more calls may be connected this month or day, or None."""
    match reached_cap(caps, usage):
        case "monthly_calls":
            return (
                f"monthly call cap reached ({usage.month_calls} of {caps.monthly_calls} "
                f"{caps.monthly_calls_counting} calls)"
            )
        case "monthly_cost":
            return f"monthly cost cap reached ({usage.month_cost} of {caps.monthly_cost} yuan)"
        case "daily_cost":
            return f"daily cost cap reached ({usage.day_cost} of {caps.daily_cost} yuan)"
    return None


def balance_exhausted(usage: Usage) -> bool:
    """A prepaid number whose balance has run out is in arrears and connects no calls."""
    return usage.balance is not None and usage.balance <= ZERO
