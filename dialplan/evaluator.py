"""decide(): the routing plan applied to one call. A function of its inputs, nothing else.

No I/O and no clock reads: the instant, the usage counters, the calendar, the split
counters and the destinations known to be down all come in as arguments, so the same
inputs always give the same decision and tests need no patching.

Order of questions, cheapest refusal first and nothing answered before it is needed:
number status and balance, anonymous callers, blacklist, region screening, caps, then the
rules (first match wins, the default route last), then the PIN the chosen route asks for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dialplan.calendar import OfficialCalendar
from dialplan.caps import Usage, balance_exhausted, cap_reached
from dialplan.decision import Decision, DialTarget, ForwardingChain, RejectReason, TraceStep
from dialplan.matchers import Call, Moment
from dialplan.plan import NumberStatus, Plan, Route
from dialplan.split import SplitCounters

_REASON_OF_STATUS = {
    NumberStatus.SUSPENDED: RejectReason.SUSPENDED,
    NumberStatus.CANCELLED: RejectReason.CANCELLED,
    NumberStatus.FROZEN: RejectReason.FROZEN,
    NumberStatus.ARREARS: RejectReason.ARREARS,
}


@dataclass
class RoutingState:
    """The world a decision depends on besides the plan, the call and the instant."""

    calendar: OfficialCalendar
    split: SplitCounters = field(default_factory=SplitCounters)
    down: frozenset[str] = frozenset()


def decide(plan: Plan, call: Call, now: datetime, usage: Usage, state: RoutingState) -> Decision:
    """Decide what happens to `call` at `now` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("decide() needs a timezone-aware instant")
    decision = Decision("reject", call, Moment(now.astimezone(plan.zone()), state.calendar))
    decision.down = state.down
    if _refused_before_routing(plan, call, usage, decision):
        return decision
    for index, rule in enumerate(plan.rules):
        subject = f"rule {index} {rule.name!r}"
        failing = next(
            (m for m in rule.when.matchers if not m.matches(call, decision.moment)), None
        )
        if failing is not None:
            decision.steps.append(TraceStep(subject, "no", failing))
            continue
        if _take_route(plan, rule, rule.name, subject, state, decision):
            return decision
    if not _take_route(plan, plan.default, "default", "default route", state, decision):
        _refuse(decision, RejectReason.NO_ROUTE, "every destination of the plan is down", plan)
    return decision


def _refused_before_routing(plan: Plan, call: Call, usage: Usage, decision: Decision) -> bool:
    steps = decision.steps
    if plan.status is not NumberStatus.ACTIVE:
        reason = _REASON_OF_STATUS[plan.status]
        return _refuse(
            decision, reason, f"number is {plan.status.value}; it connects no calls", plan
        )
    if balance_exhausted(usage):
        return _refuse(decision, RejectReason.ARREARS, f"prepaid balance is {usage.balance}", plan)
    caller = call.caller
    if caller.anonymous:
        if plan.screening.anonymous == "reject":
            return _refuse(decision, RejectReason.ANONYMOUS, "caller ID withheld", plan)
        steps.append(TraceStep("screening", "withheld caller ID allowed by policy"))
    else:
        blacklist = plan.blacklist
        if not blacklist.is_empty() and blacklist.matcher.matches(call):
            steps.append(TraceStep("blacklist", "listed", blacklist.matcher))
            return _refuse(decision, RejectReason.BLACKLISTED, "caller is blacklisted", plan)
        screening = plan.screening
        if not screening.callers.is_empty():
            listed = screening.callers.matcher.matches(call)
            refused = listed if screening.mode == "deny" else not listed
            verdict = "refused" if refused else "passed"
            steps.append(
                TraceStep(f"screening ({screening.mode})", verdict, screening.callers.matcher)
            )
            if refused:
                return _refuse(decision, RejectReason.BLOCKED, "caller region is screened", plan)
    capped = cap_reached(plan.caps, usage)
    if capped is not None:
        return _refuse(decision, RejectReason.CAPPED, capped, plan)
    return False


def _refuse(decision: Decision, reason: RejectReason, detail: str, plan: Plan) -> bool:
    decision.action = "reject"
    decision.reject = reason
    decision.detail = detail
    decision.announcement = decision.announcement or plan.announcements.get(reason.value)
    decision.steps.append(TraceStep("decision", f"reject ({reason.value}): {detail}"))
    return True


def _take_route(
    plan: Plan, route: Route, name: str, subject: str, state: RoutingState, decision: Decision
) -> bool:
    """Fill the decision from a matched route; False when all its destinations are down."""
    decision.rule = name
    if route.reject is not None:
        decision.steps.append(TraceStep(subject, "matched"))
        decision.announcement = route.announcement
        reason = RejectReason.CLOSED if route.reject == "closed" else RejectReason.BLOCKED
        return _refuse(decision, reason, f"{subject} refuses the call", plan)
    first = _first_target(plan, route, name, state)
    if first is None:
        decision.steps.append(TraceStep(subject, "matched, but every destination is down"))
        decision.rule = None
        return False
    decision.steps.append(TraceStep(subject, f"matched -> dial {first.number}"))
    decision.action = "dial"
    decision.first = first
    decision.forwarding = _chain(plan, route)
    if plan.pin is not None and (plan.pin.applies_to == "all" or route.require_pin):
        decision.pin = plan.pin
        decision.steps.append(TraceStep("pin", "caller must enter the PIN first"))
    return True


def _first_target(plan: Plan, route: Route, name: str, state: RoutingState) -> DialTarget | None:
    ring_default = route.ring_timeout or plan.ring_timeout
    up = [d for d in route.destinations() if not d.down and d.number not in state.down]
    if not up:
        return None
    chosen = up[0]
    if route.split is not None:
        percents = {share.number: share.percent for share in route.split}
        weights = [percents[destination.number] for destination in up]
        chosen = up[state.split.pick((plan.number, name), weights)]
    return DialTarget(chosen.number, chosen.ring_timeout or ring_default)


def _chain(plan: Plan, route: Route) -> ForwardingChain:
    forwarding = route.forwarding or plan.forwarding
    return ForwardingChain(
        on_busy=tuple(forwarding.on_busy),
        on_no_answer=tuple(forwarding.on_no_answer),
        max_forwards=forwarding.max_forwards,
        busy_statuses=frozenset(forwarding.busy_statuses),
        ring_timeout=route.ring_timeout or plan.ring_timeout,
    )
