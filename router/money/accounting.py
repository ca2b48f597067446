"""Money around a call: usage before it is connected, a talk-time limit, its price after.

Before deciding, the router reads the number's counters (month and day cost, calls this
month, included minutes used, prepaid balance: a few keyed rows, never a scan of CDRs)
when something about the call needs them: a cap, a prepaid balance, or a package with
included minutes, whose price depends on the minutes used. A postpaid account without caps
on a package without included minutes is priced from its tariff alone and reads nothing,
like a number without an account: the read, a hand-off to the store's thread and back,
was the largest part of what an account added to a call (docs/benchmarks.md).
A plan with a monthly call cap reserves its call with one conditional statement, so
routers sharing a database never both take the last unit. The cap counts incoming calls
(every call put through to the subscriber's phones), unless the plan counts answered calls
only: then an unanswered call gives its unit back. When a balance or a cost cap limits
spending, the longest affordable talk time goes to Dial as L(), so no call can overspend.
After an answered call the price is booked: the CDR's shares and one ledger entry, written
behind the call like every CDR write.

When the database cannot be read the router fails open (connects calls without limits)
and logs it: cost control must not take a 400 number off the air.

Every prepaid balance the router learns (read as a call arrives, moved by a priced call, or
read by `refresh_balances`, which catches top-ups, fees and other routers' calls) is told
to `balance_seen`: the daemon hands it the low-balance gauge of the metrics.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from dialplan.caps import Usage
from dialplan.geo import locate
from dialplan.plan import NumberStatus, Plan
from rating.affordability import max_affordable_seconds, spending_room
from rating.call import RatedCall, Shares, answered_call
from rating.ledger import call_entry
from rating.pricing import price, price_book
from rating.tariff import Account, Tariffs
from router.money.balance_alerts import BalanceAlerts
from router.storage.cdr import FinishCall, PostLedger
from router.storage.protocol import Store, StoreUnavailable
from router.storage.rows import UsageSnapshot

log = logging.getLogger("hotline400.accounting")

BalanceSeen = Callable[[str, Decimal, Decimal], None]
"""(400 number, prepaid balance, its warning threshold)."""

NO_USAGE = UsageSnapshot(Decimal("0.00"), 0, 0, Decimal("0.00"), None)


@dataclass(frozen=True, slots=True)
class CallAccount:
    """What one call knows of its account from the moment it was admitted."""

    plan: Plan
    tariffs: Tariffs | None
    account: Account | None
    snapshot: UsageSnapshot
    month: str
    """The month of the counters read, "" when the number has none to read."""
    reserved: bool = False
    number_status: NumberStatus | str | None = None
    """The inventory's word on the number (router.numbers.service), None if it has none."""
    included_taken_at_read: int = 0
    """The included seconds this router's calls had taken of the number's month as the
    counters read was sent (Accounting's tally): what the calls priced since took is the
    tally now less this, none of it in the snapshot."""

    @property
    def rated(self) -> bool:
        return self.tariffs is not None and self.account is not None

    def usage(self) -> Usage:
        """Counters as the evaluator reads them; a prepaid account with no entries has 0."""
        prepaid = self.account is not None and self.account.prepaid
        balance = (self.snapshot.balance or Decimal("0.00")) if prepaid else None
        status = self.number_status
        return Usage(
            month_cost=self.snapshot.month_cost,
            month_calls=self.snapshot.month_calls,
            day_cost=self.snapshot.day_cost,
            balance=balance,
            status=status if isinstance(status, NumberStatus) else None,
        )

    def included_seconds_left(self, at: datetime, taken_since_read: int = 0) -> int:
        """What is left of the month's included time, by the package in force at `at`,
        once the read counters and `taken_since_read` (by calls priced since) are used."""
        if not self.rated:
            return 0
        assert self.tariffs is not None
        # The compiled prices, not tariffs.package_on: that copies the package per call.
        included = price_book(self.tariffs).pricer(self.plan.number, at).included_minutes
        used = self.snapshot.included_used + taken_since_read
        return max(0, included * 60 - used)

    def budget(self) -> Decimal | None:
        """What the subscriber can still spend: the balance or the room under a cost cap."""
        caps, usage = self.plan.caps, self.usage()
        rooms = []
        if caps.monthly_cost is not None:
            rooms.append(caps.monthly_cost - usage.month_cost)
        if caps.daily_cost is not None:
            rooms.append(caps.daily_cost - usage.day_cost)
        return spending_room(usage.balance, min(rooms) if rooms else None)


class Accounting:
    def __init__(
        self,
        store: Store,
        alerts: BalanceAlerts,
        zone: ZoneInfo,
        *,
        balance_seen: BalanceSeen,
    ) -> None:
        """`zone` is the billing time zone: the store writes counters by its days and
        months, so they are read by them too (not by the plan's zone, which is for its
        schedules)."""
        self.store = store
        self.alerts = alerts
        self.zone = zone
        self.balance_seen = balance_seen
        self._included_taken = IncludedTally()

    async def open_call(
        self,
        plan: Plan,
        tariffs: Tariffs | None,
        now: datetime,
        number_status: NumberStatus | str | None = None,
    ) -> CallAccount:
        """Read the number's counters as the call arrives, if it has an account or a cap;
        `number_status` is the inventory's word on it (router.numbers.statuses)."""
        account = tariffs.accounts.get(plan.number) if tariffs is not None else None
        snapshot, month, taken = NO_USAGE, "", 0
        # Without a counter to read no month nor day is needed.
        if plan.caps.limited or _reads_counters(account, tariffs):
            local = now.astimezone(self.zone)
            month, day = f"{local:%Y-%m}", f"{local:%Y-%m-%d}"
            # Taken before the read is sent: a call priced while it is under way is not in it.
            taken = self._included_taken.of(plan.number, month)
            try:
                snapshot = await self.store.usage(plan.number, month, day)
            except StoreUnavailable as error:
                log.error(
                    "usage of %s unreadable, connecting without limits: %s", plan.number, error
                )
                snapshot, account = NO_USAGE, None
        if account is not None and account.prepaid:
            balance = snapshot.balance or Decimal("0.00")
            self.balance_seen(plan.number, balance, account.low_balance_warning)
        return CallAccount(
            plan,
            tariffs,
            account,
            snapshot,
            month,
            number_status=number_status,
            included_taken_at_read=taken,
        )

    async def refresh_balances(self, tariffs: Tariffs | None, now: datetime) -> None:
        """Read every prepaid balance: top-ups and fees booked by `hotline400 account` and
        `bill`, and calls through other routers, move balances without a call here."""
        if tariffs is None:
            return
        local = now.astimezone(self.zone)
        for number, account in tariffs.accounts.items():
            if not account.prepaid:
                continue
            try:
                snapshot = await self.store.usage(number, f"{local:%Y-%m}", f"{local:%Y-%m-%d}")
            except StoreUnavailable as error:
                log.error("balances not refreshed: %s", error)
                return
            balance = snapshot.balance or Decimal("0.00")
            self.balance_seen(number, balance, account.low_balance_warning)

    async def reserve(self, call: CallAccount) -> tuple[CallAccount, bool]:
        """Take one unit of the monthly call cap; False when another call took the last."""
        cap = call.plan.caps.monthly_calls
        if cap is None:
            return call, True
        try:
            granted = await self.store.reserve_call(call.plan.number, call.month, cap)
        except StoreUnavailable as error:
            log.error("call cap of %s not checked: %s", call.plan.number, error)
            return call, True
        return dataclasses.replace(call, reserved=granted), granted

    def talk_limit(
        self, call: CallAccount, caller_kind: str, destination: str, now: datetime
    ) -> int | None:
        """Seconds of talk the budget affords on this destination, or None when unlimited."""
        budget = call.budget() if call.rated else None
        if budget is None:  # nothing to afford: the call is not rated before it is answered
            return None
        assert call.tariffs is not None
        rated = _answered(call, caller_kind, now, 0, destination, self._taken_since_read(call))
        return max_affordable_seconds(rated, call.tariffs, budget)

    def charge(
        self,
        call: CallAccount,
        call_id: str,
        caller_kind: str,
        answered_at: datetime,
        talk_seconds: int,
        destination: str,
    ) -> tuple[FinishCall, PostLedger] | None:
        """The priced fields of the CDR and the ledger entry of an answered call."""
        if not call.rated:
            return None
        assert call.tariffs is not None and call.account is not None
        taken = self._taken_since_read(call)
        rated = _answered(call, caller_kind, answered_at, talk_seconds, destination, taken)
        priced = price(rated, call.tariffs)
        self._included_taken.add(call.plan.number, call.month, priced.included_seconds_used)
        money = FinishCall(call_id, Shares.of_price(priced)._asdict())
        entry = call_entry(call.plan.number, call_id, answered_at, priced)
        if call.account.prepaid:
            before = call.usage().balance or Decimal("0.00")
            after = before - priced.callee_share
            warning = call.account.low_balance_warning
            self.alerts.check(call.plan.number, before, after, warning)
            self.balance_seen(call.plan.number, after, warning)
        return money, PostLedger(entry, priced.included_seconds_used)

    def _taken_since_read(self, call: CallAccount) -> int:
        return self._included_taken.of(call.plan.number, call.month) - call.included_taken_at_read

    async def close_call(self, call: CallAccount, answered: bool) -> None:
        """Give back the reserved unit of a cap counting answered calls when nobody answered."""
        counts_answered_only = call.plan.caps.monthly_calls_counting == "answered"
        if call.reserved and counts_answered_only and not answered:
            try:
                await self.store.release_call(call.plan.number, call.month)
            except StoreUnavailable as error:
                log.error("call cap unit of %s not given back: %s", call.plan.number, error)


def _reads_counters(account: Account | None, tariffs: Tariffs | None) -> bool:
    """Whether an account's calls need its counters: a balance, or minutes included."""
    if account is None or tariffs is None:
        return False
    return account.prepaid or tariffs.packages[account.package].ever_includes_minutes


def _answered(
    call: CallAccount,
    caller_kind: str,
    answered_at: datetime,
    talk_seconds: int,
    destination: str,
    taken_since_read: int,
) -> RatedCall:
    """The call as pricing reads it, answered by `destination`, with the included time left."""
    return answered_call(
        call.plan.number,
        caller_kind,
        answered_at,
        talk_seconds,
        answering_area_code=locate(destination).area_code,
        home_area_code=call.plan.home_area_code,
        included_seconds_left=call.included_seconds_left(answered_at, taken_since_read),
    )


class IncludedTally:
    """The included seconds this router's calls have taken, by number and month, counted as
    each call is priced.

    A call reads its counters as it arrives and is priced when it ends: calls of one number
    that overlap all read the same included time left, and each would take all of it. What
    the calls priced since a call's read was sent took is the tally then and now apart;
    none of it can be in that read. (A call priced within the CDR batch interval before the
    read may be in neither; other routers' calls are seen once written.) Two months are
    kept: the current one and the one before, for calls that span the turn of the month.
    """

    MONTHS_KEPT = 2

    def __init__(self) -> None:
        self._taken: dict[str, dict[str, int]] = {}

    def of(self, number: str, month: str) -> int:
        return self._taken.get(month, {}).get(number, 0)

    def add(self, number: str, month: str, seconds: int) -> None:
        if not seconds or not month:
            return
        if month not in self._taken:
            self._taken[month] = {}
            for old in sorted(self._taken)[: -self.MONTHS_KEPT]:
                del self._taken[old]
        numbers = self._taken[month]
        numbers[number] = numbers.get(number, 0) + seconds
