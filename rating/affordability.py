"""How long a call may last before the subscriber's share exceeds what they can spend.

The budget is the subscriber's spending room: the smaller of the prepaid balance and the
room left under their cost caps. Only the callee share counts against it: the caller pays
their own share. The call is priced as rating.pricing prices it (rate in force at the
answer instant, included minutes first), so the answer agrees with the eventual price:

    callee_share(result) <= budget < callee_share(result + 1)

Under the default sharing the callee share is the package rate over the time left after
the included minutes, and the rate's step function is inverted directly. Under
caller_percent sharing the share is a non-decreasing step function of the duration with
the breakpoints of two rates; it is inverted by bisection over whole seconds (a few dozen
pricings, never one per second).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from rating.call import RatedCall
from rating.pricing import PackagePricer, price_book
from rating.rates import Rate
from rating.tariff import Tariffs


def spending_room(balance: Decimal | None, cap_room: Decimal | None) -> Decimal | None:
    """The smaller of a prepaid balance and the room under the caps; None when neither limits."""
    limits = [amount for amount in (balance, cap_room) if amount is not None]
    return min(limits) if limits else None


def max_affordable_seconds(
    call: RatedCall, tariff: Tariffs, budget: Decimal | None, account_number: str | None = None
) -> int | None:
    """The longest talk time whose callee share stays within `budget`; None when unlimited.

    `call` describes the call as it would be answered (answered_at: the instant it would be
    answered; talk_seconds is ignored). A negative budget affords nothing: 0.
    """
    if call.answered_at is None:
        raise ValueError("affordability needs the instant the call is (to be) answered")
    if budget is None:
        return None
    if budget < 0:
        return 0
    pricer = price_book(tariff).pricer(account_number or call.number, call.answered_at)
    rate = pricer.leg_for(call).rate
    included = call.included_seconds_left // rate.per_seconds * rate.per_seconds
    if pricer.caller_fraction is None:
        within = rate.max_seconds_within(budget)
        return None if within is None else included + within
    return _bisect_shared(call, pricer, rate, budget, included)


def _bisect_shared(
    call: RatedCall, pricer: PackagePricer, rate: Rate, budget: Decimal, included: int
) -> int | None:
    def callee_share(seconds: int) -> Decimal:
        return pricer.price(dataclasses.replace(call, talk_seconds=seconds)).callee_share

    caller_rate = pricer.caller_rates[call.caller_kind]
    grows = pricer.caller_fraction != 1 and (rate.charge > 0 or caller_rate.charge > 0)
    # Beyond its first increment a rate that charges nothing per increment stays flat.
    over = included + max(rate.first_seconds, caller_rate.first_seconds) + 1
    if not grows:
        if callee_share(over) <= budget:
            return None
    else:
        while callee_share(over) <= budget:
            over *= 2
    within = 0  # callee_share(within) <= budget < callee_share(over)
    while over - within > 1:
        middle = (within + over) // 2
        if callee_share(middle) <= budget:
            within = middle
        else:
            over = middle
    return within
