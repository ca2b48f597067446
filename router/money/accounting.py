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
(every call put through to the subscriber's phones: a call refused or gone before any Dial
gives its unit back), unless the plan counts answered calls only: then an unanswered call
gives its unit back. When a balance or a cost cap limits
spending, the longest affordable talk time goes to Dial as L(), so no call can overspend:
a call is priced at the rates in force at the instant it is answered, which may come at any
moment of the Dial's ring, so the limit is the smallest over every price that can be in
force by the end of the ring (a period opening or closing, a price change taking effect, a
new month's included minutes). Only a Dial whose ring spans such a boundary computes more
than one.
After an answered call the price is booked: the CDR's shares and one ledger entry, written
behind the call like every CDR write.

A call belongs to the month it is answered in (rating.billing_time), and the included
minutes left are that month's. The counters are read as a call arrives; when a Dial may be
answered in a later month (it starts within its ring of the month's end, or the call arrived
the month before), the session has that month's counters read before the Dial
(`read_answer_month`): rare, and only for packages with included minutes, so the common
path reads nothing more. A call answered in a month whose counters were not read (a read
that failed) is left unpriced, for `hotline400 rate` to price with that month's counters.

The counters read count this router's charges the store has not taken yet (waiting in the
CDR writer's batch or its journal): a call arriving just after one that spent the balance or
reached a cost cap is refused, not connected on counters that do not show it yet.

When the database cannot be read the router fails open (connects calls without limits)
and logs it: cost control must not take a 400 number off the air.

Every prepaid balance the router learns (read as a call arrives, moved by a priced call, or
read by `refresh_balances`, which catches top-ups, fees and other routers' calls) is told
to `balance_seen`: the daemon hands it the low-balance gauge of the metrics. A priced call
moves the balance read as it arrived less what this router's calls of the number were
charged that the read did not hold: those charged since, and those charged before but still
waiting in the CDR writer's batch (the writer tells `written` what the store has taken).
The low-balance warning is decided once the charges are stored: `written` has the store
watch the balance (Store.watch_balance), which every router and command booking for the
number takes turns at, so calls at once on one router or several, and calls one after the
other within the batch interval, crossing the threshold raise one warning.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo

from dialplan.caps import Usage
from dialplan.geo import locate
from dialplan.plan import NumberStatus, Plan
from rating.affordability import max_affordable_seconds, spending_room
from rating.call import RatedCall, Shares, answered_call
from rating.closing import month_span
from rating.ledger import LedgerKind, call_entry
from rating.pricing import price, price_book
from rating.tariff import Account, Tariffs
from router.money.balance_alerts import BalanceAlerts
from router.storage.cdr import CdrOp, FinishCall, PostLedger
from router.storage.protocol import Store, StoreUnavailable
from router.storage.rows import UsageSnapshot

log = logging.getLogger("hotline400.accounting")

BalanceSeen = Callable[[str, Decimal, Decimal], None]
"""(400 number, prepaid balance, its warning threshold)."""

ZERO = Decimal("0.00")
NO_USAGE = UsageSnapshot(ZERO, 0, 0, ZERO, None)

LONGEST_RING_S = 120
"""The longest ring timeout a plan may give a destination (dialplan.plan): the ring a talk
limit covers when its Dial's is not said."""
ANSWER_SLACK_S = 2
"""How much later than its Dial's start plus ring timeout a call's answer instant may be
recorded: the ring is rounded to whole seconds from the channel's times (DIALEDTIME_MS less
ANSWEREDTIME_MS and what came before the Dial), and the Dial starts a moment after its talk
limit was computed."""


class Counters(NamedTuple):
    """A month's counters as a call read them."""

    month: str
    snapshot: UsageSnapshot
    taken_at_read: int
    """The included seconds this router's calls had taken of the month as the read was
    sent (Accounting's tally)."""
    spent_at_read: Decimal = ZERO
    """What this router had charged the number as the read came back: the snapshot counts
    it all, the charges the store did not hold yet added in (Accounting._with_unstored)."""


@dataclass(frozen=True, slots=True)
class LaterMonth:
    """The counters of a month after the one a call arrived in, read before a Dial that may
    be answered in it (Accounting.read_answer_month)."""

    counters: Counters
    starts: datetime
    ends: datetime


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
    spent_at_read: Decimal = ZERO
    """For the balance: what this router had charged the number as the counters read came
    back, all of it counted in the snapshot (Accounting._with_unstored); what it charged
    since is not."""
    month_ends: datetime | None = None
    """When the month of the counters read ends, if the price depends on them (a package
    with included minutes); None when it does not. A call answered from then on belongs to
    a later month, whose counters are `later`."""
    later: LaterMonth | None = None
    unread: str = ""
    """Why the counters the call needed could not be read (the store's error): it is then
    connected without limits, unrated; "" when they were read or none were needed."""

    @property
    def rated(self) -> bool:
        return self.tariffs is not None and self.account is not None

    def usage(self, snapshot: UsageSnapshot | None = None) -> Usage:
        """Counters as the evaluator reads them (those read as the call arrived, or
        `snapshot`); a prepaid account with no entries has 0."""
        if snapshot is None:
            snapshot = self.snapshot
        prepaid = self.account is not None and self.account.prepaid
        balance = (snapshot.balance or Decimal("0.00")) if prepaid else None
        status = self.number_status
        return Usage(
            month_cost=snapshot.month_cost,
            month_calls=snapshot.month_calls,
            day_cost=snapshot.day_cost,
            balance=balance,
            status=status if isinstance(status, NumberStatus) else None,
        )

    def counters_at(self, at: datetime) -> Counters | None:
        """The counters of the month a call answered at `at` belongs to; None when that
        month's were not read (the price depends on them: see `month_ends`)."""
        ends = self.month_ends
        if ends is None or at < ends:
            return Counters(
                self.month, self.snapshot, self.included_taken_at_read, self.spent_at_read
            )
        later = self.later
        if later is not None and later.starts <= at < later.ends:
            return later.counters
        return None

    def included_seconds_left(
        self, at: datetime, taken_since_read: int = 0, snapshot: UsageSnapshot | None = None
    ) -> int:
        """What is left of the month's included time, by the package in force at `at`,
        once the counters read (`snapshot`, by default those read as the call arrived) and
        `taken_since_read` (by calls priced since) are used."""
        if not self.rated:
            return 0
        assert self.tariffs is not None
        # The compiled prices, not tariffs.package_on: that copies the package per call.
        included = price_book(self.tariffs).pricer(self.plan.number, at).included_minutes
        if snapshot is None:
            snapshot = self.snapshot
        used = snapshot.included_used + taken_since_read
        return max(0, included * 60 - used)

    def budget(self, snapshot: UsageSnapshot | None = None) -> Decimal | None:
        """What the subscriber can still spend: the balance or the room under a cost cap,
        by the counters read as the call arrived, or by `snapshot`."""
        caps = self.plan.caps
        usage = self.usage(snapshot)
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
        self._spent: dict[str, Decimal] = {}
        """What this router's calls of each prepaid number were charged, in all: calls of
        one number that overlap each read the balance before the others were charged."""
        self._unwritten: dict[str, dict[str, Decimal]] = {}
        """number -> call id -> charge, for this router's charges the store has not taken
        yet (they wait in the CDR writer's batch, or its journal)."""
        self._thresholds: dict[str, Decimal] = {}
        """number -> its low-balance warning threshold, as its last charge was priced."""
        self._read_before: dict[str, Decimal] = {}
        """number -> the balance before the oldest of its charges not yet watched, as this
        router reckoned it: where a first watch of the balance starts from."""

    async def written(self, ops: Sequence[CdrOp]) -> None:
        """The CDR writer stored `ops`: their call charges are in the balances read from
        now on, and the balances they moved are watched for the low-balance warning."""
        moved: dict[str, list[Decimal]] = {}
        for op in ops:
            if isinstance(op, PostLedger) and op.entry.kind is LedgerKind.CALL:
                waiting = self._unwritten.get(op.entry.number)
                if waiting is not None and waiting.pop(op.entry.ref, None) is not None:
                    moved.setdefault(op.entry.number, []).append(op.entry.amount)
                    if not waiting:
                        del self._unwritten[op.entry.number]
        for number, moves in moved.items():
            await self._watch(number, moves)

    async def _watch(self, number: str, moves: Sequence[Decimal]) -> None:
        """Warn of the threshold crossed by this router's charges just stored, as the store's
        watch of the balance sees it: calls through other routers, and commands, take turns
        with these there, so a crossing is warned of once."""
        threshold = self._thresholds.get(number)
        if threshold is None:  # a postpaid number's charges, waited on for its caps alone
            return
        read_before = self._read_before.pop(number, None)
        try:
            seen, now = await self.store.watch_balance(number)
        except StoreUnavailable as error:
            log.error("low balance of %s not checked: %s", number, error)
            return
        self.alerts.watched(number, seen, now, moves, threshold, read_before)

    def stored_spent(self, number: str) -> Decimal:
        """What of this router's charges of `number` the store holds: a balance read now
        holds them, and not the others."""
        return self._spent.get(number, ZERO) - self._unstored(number)

    def _with_unstored(self, number: str, read: UsageSnapshot) -> tuple[UsageSnapshot, Decimal]:
        """The counters just `read` with this router's charges of `number` the store did
        not hold as the read came back (waiting in the CDR writer's batch or journal): the
        balance less them, the month's and day's cost more, so a call does not spend again
        what one just before it spent (a charge waits a fraction of a second: one of the
        day before counts toward today, erring toward the cap). Returns them with what this
        router had charged the number in all: what the counters now hold of its charges."""
        spent = self._spent.get(number, ZERO)
        unstored = spent - self.stored_spent(number)
        if not unstored:
            return read, spent
        counted = dataclasses.replace(
            read,
            month_cost=read.month_cost + unstored,
            day_cost=read.day_cost + unstored,
            balance=(read.balance or ZERO) - unstored,
        )
        return counted, spent

    def _unstored(self, number: str) -> Decimal:
        """This router's charges of `number` still waiting for the store to take them."""
        return sum(self._unwritten.get(number, {}).values(), ZERO)

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
        snapshot, month, taken, month_ends, unread = NO_USAGE, "", 0, None, ""
        spent = self.stored_spent(plan.number)
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
                snapshot, account, unread = NO_USAGE, None, str(error)
            else:
                snapshot, spent = self._with_unstored(plan.number, snapshot)
                if _includes_minutes(account, tariffs):
                    month_ends = month_span(month, self.zone)[1]
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
            spent_at_read=spent,
            month_ends=month_ends,
            unread=unread,
        )

    def answer_month_unread(self, call: CallAccount, now: datetime, ring_timeout: int) -> bool:
        """Whether a Dial starting at `now` may be answered in a month whose counters the
        call has not read while its price depends on them (included minutes): the session
        then has them read (`read_answer_month`) before the Dial. Cheap, and False for
        almost every call."""
        ends = call.month_ends
        if ends is None:
            return False
        latest = now + timedelta(seconds=ring_timeout + ANSWER_SLACK_S)
        if latest < ends:
            return False
        later = call.later
        return later is None or not later.starts <= latest < later.ends

    async def read_answer_month(
        self, call: CallAccount, now: datetime, ring_timeout: int
    ) -> CallAccount:
        """The call with the counters of the month the end of a Dial's ring (from `now`)
        falls in, a month after the one it arrived in: a call belongs to the month it is
        answered in (rating.billing_time), and takes that month's included minutes. When
        they cannot be read the call is returned as it was: answered in that month, it is
        left unpriced (`charge`), for `hotline400 rate` to price."""
        number = call.plan.number
        local = (now + timedelta(seconds=ring_timeout + ANSWER_SLACK_S)).astimezone(self.zone)
        month, day = f"{local:%Y-%m}", f"{local:%Y-%m-%d}"
        taken = self._included_taken.of(number, month)
        try:
            snapshot = await self.store.usage(number, month, day)
        except StoreUnavailable as error:
            log.error(
                "usage of %s for %s unreadable: a call answered then is left unpriced: %s",
                number,
                month,
                error,
            )
            return call
        snapshot, spent = self._with_unstored(number, snapshot)
        starts, ends = month_span(month, self.zone)
        later = LaterMonth(Counters(month, snapshot, taken, spent), starts, ends)
        return dataclasses.replace(call, later=later)

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
            balance -= self._unstored(number)  # not in the read yet
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
        self,
        call: CallAccount,
        caller_kind: str,
        destination: str,
        now: datetime,
        ring_timeout: int = LONGEST_RING_S,
    ) -> int | None:
        """Seconds of talk the budget affords on this destination, or None when unlimited,
        for a Dial starting at `now` that rings at most `ring_timeout` seconds.

        The call is priced at the rates in force when it is answered, at any moment of the
        ring: the limit is the smallest over the prices in force from `now` to the end of
        the ring (and its slack), with the included minutes of the month each falls in. A
        month whose counters were not read counts no included minutes."""
        budget = call.budget() if call.rated else None
        if budget is None:  # nothing to afford: the call is not rated before it is answered
            return None
        assert call.tariffs is not None
        limit = self._affordable(call, caller_kind, destination, now, budget)
        latest = now + timedelta(seconds=ring_timeout + ANSWER_SLACK_S)
        instants = price_book(call.tariffs).changes_within(call.plan.number, now, latest)
        if call.month_ends is not None and now < call.month_ends <= latest:
            instants.append(call.month_ends)  # the next month's included minutes
        for at in instants:  # a boundary within the ring: rare
            other = self._affordable(call, caller_kind, destination, at, budget)
            if other is not None and (limit is None or other < limit):
                limit = other
        return limit

    def _affordable(
        self,
        call: CallAccount,
        caller_kind: str,
        destination: str,
        at: datetime,
        budget: Decimal,
    ) -> int | None:
        """Seconds of talk affordable on a call answered at `at`: within `budget` (the
        room by the counters read as the call arrived), or the room by the counters of a
        later month read for a call answered in it."""
        assert call.tariffs is not None
        counters = call.counters_at(at)
        if counters is None:  # its month's counters not read: no included minutes counted
            left = 0
        else:
            taken = self._included_taken.of(call.plan.number, counters.month)
            left = call.included_seconds_left(at, taken - counters.taken_at_read, counters.snapshot)
            if counters.snapshot is not call.snapshot:
                room = call.budget(counters.snapshot)
                budget = budget if room is None else room
        rated = _answered(call, caller_kind, at, 0, destination, left)
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
        """The priced fields of the CDR and the ledger entry of an answered call, with the
        included minutes of the month it was answered in; None when it is not priced (no
        account, or that month's counters were not read)."""
        if not call.rated:
            return None
        assert call.tariffs is not None and call.account is not None
        number = call.plan.number
        counters = call.counters_at(answered_at)
        if counters is None:
            log.warning(
                "call %s of %s answered %s, in a month whose counters were not read: left "
                "unpriced for hotline400 rate",
                call_id,
                number,
                answered_at.isoformat(),
            )
            return None
        month, snapshot, taken_at_read, spent_at_read = counters
        taken = self._included_taken.of(number, month) - taken_at_read
        left = call.included_seconds_left(answered_at, taken, snapshot)
        rated = _answered(call, caller_kind, answered_at, talk_seconds, destination, left)
        priced = price(rated, call.tariffs)
        self._included_taken.add(number, month, priced.included_seconds_used)
        money = FinishCall(call_id, Shares.of_price(priced)._asdict())
        entry = call_entry(number, call_id, answered_at, priced)
        spent = self._spent.get(number, ZERO)
        self._spent[number] = spent + priced.callee_share
        self._unwritten.setdefault(number, {})[call_id] = priced.callee_share
        if call.account.prepaid:
            read = call.usage(snapshot).balance or ZERO
            before = read - (spent - spent_at_read)  # less this router's charges not in it
            after = before - priced.callee_share
            warning = call.account.low_balance_warning
            self._thresholds[number] = warning  # warned of once stored (`written`)
            self._read_before.setdefault(number, before)
            self.balance_seen(call.plan.number, after, warning)
        return money, PostLedger(entry, priced.included_seconds_used)

    async def close_call(self, call: CallAccount, answered: bool, put_through: bool) -> None:
        """Give back the reserved unit of a call never put through to the subscriber's
        phones (refused or gone before any Dial), or, for a cap counting answered calls,
        of a call nobody answered."""
        counts_answered_only = call.plan.caps.monthly_calls_counting == "answered"
        if call.reserved and (not put_through or (counts_answered_only and not answered)):
            try:
                await self.store.release_call(call.plan.number, call.month)
            except StoreUnavailable as error:
                log.error("call cap unit of %s not given back: %s", call.plan.number, error)


def _reads_counters(account: Account | None, tariffs: Tariffs | None) -> bool:
    """Whether an account's calls need its counters: a balance, or minutes included."""
    if account is None or tariffs is None:
        return False
    return account.prepaid or tariffs.packages[account.package].ever_includes_minutes


def _includes_minutes(account: Account | None, tariffs: Tariffs | None) -> bool:
    """Whether an account's prices depend on its month's counters: minutes included."""
    if account is None or tariffs is None:
        return False
    return tariffs.packages[account.package].ever_includes_minutes


def _answered(
    call: CallAccount,
    caller_kind: str,
    answered_at: datetime,
    talk_seconds: int,
    destination: str,
    included_seconds_left: int,
) -> RatedCall:
    """The call as pricing reads it, answered by `destination`, with `included_seconds_left`."""
    return answered_call(
        call.plan.number,
        caller_kind,
        answered_at,
        talk_seconds,
        answering_area_code=locate(destination).area_code,
        home_area_code=call.plan.home_area_code,
        included_seconds_left=included_seconds_left,
    )


class IncludedTally:
    """The included seconds this router's calls have taken, by number and the month they were
    answered in, counted as each call is priced.

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
            if len(self._taken) >= self.MONTHS_KEPT and month < min(self._taken):
                return  # older than both months kept: no call still reads its tally
            self._taken[month] = {}
            for old in sorted(self._taken)[: -self.MONTHS_KEPT]:
                del self._taken[old]
        numbers = self._taken[month]
        numbers[number] = numbers.get(number, 0) + seconds
