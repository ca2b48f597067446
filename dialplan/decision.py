"""What the evaluator answers: reject, or dial (after a PIN if asked), with its forwarding chain.

The forwarding chain is part of the decision but its steps depend on dial results only the
router learns, so `forward_step` is the pure function the router (and `simulate`) asks after
each failed attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from dialplan.calendar import DayInfo, Source

if TYPE_CHECKING:
    from dialplan.matchers import Call, Matcher, Moment
    from dialplan.plan import Pin, Recording, Survey


class RejectReason(StrEnum):
    """Why a call is refused. What the router makes of each (the status it leaves on the
    channel, the cause it hangs up with) is router/call/channel_contract.py's table."""

    SUSPENDED = "suspended"
    CANCELLED = "cancelled"
    FROZEN = "frozen"
    ARREARS = "arrears"
    ANONYMOUS = "anonymous"
    BLACKLISTED = "blacklisted"
    BLOCKED = "blocked"
    CAPPED = "capped"
    CLOSED = "closed"
    NO_ROUTE = "no_route"


class DialClass(StrEnum):
    """How a Dial result moves the call on."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CALLER_GONE = "caller_gone"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DialTarget:
    number: str
    ring_timeout: int
    reason: str = "primary"  # primary | busy | no_answer


@dataclass(frozen=True, slots=True)
class DialResult:
    number: str
    status: str  # Asterisk's DIALSTATUS


@dataclass(frozen=True, slots=True)
class ForwardingChain:
    on_busy: tuple[str, ...]
    on_no_answer: tuple[str, ...]
    max_forwards: int
    busy_statuses: frozenset[str]
    ring_timeout: int
    down: frozenset[str] = frozenset()
    """Numbers the plan marks `down`: out of service in every role, so never dialled as a
    forward either; the chain moves on past them."""

    def classify(self, status: str) -> DialClass:
        if status == "ANSWER":
            return DialClass.ANSWERED
        if status in self.busy_statuses:
            return DialClass.BUSY
        if status == "NOANSWER":
            return DialClass.NO_ANSWER
        if status == "CANCEL":
            return DialClass.CALLER_GONE
        return DialClass.FAILED


# One line of the trace: (subject, outcome, matcher whose reason follows, or None).
# A plain tuple rather than a class: the evaluator records one per rule a call passes, most
# of them made once per plan load and shared by every call; the matcher's reason is only
# formatted when the trace is read.
TraceStep = tuple[str, str, "Matcher | None"]


@dataclass(slots=True)
class Decision:
    action: str  # "dial" | "reject" | "menu" (then follow_menu with the caller's keys)
    call: Call
    moment: Moment
    rule: str | None = None
    reject: RejectReason | None = None
    detail: str = ""
    announcement: str | None = None
    pin: Pin | None = None
    first: DialTarget | None = None
    route_targets: tuple[DialTarget, ...] = ()
    """Every destination of the chosen route not down, in plan order (a hold queue waits
    for any of them to have room)."""
    forwarding: ForwardingChain | None = None
    steps: list[TraceStep] = field(default_factory=list)
    menu: str | None = None
    """The menu to play first, while the action is "menu"."""
    menu_path: str | None = None
    menu_digits: str | None = None
    language: str | None = None
    """The prompt language: the plan's, or the one a menu option chose."""
    recording: Recording | None = None
    """The plan's recording, when the route taken records its calls (the router still asks
    whether the account has the feature switched on)."""
    survey: Survey | None = None
    """The plan's survey, when the route taken asks its callers for a score (the router
    still asks whether the account has the feature switched on)."""

    @property
    def calendar_fallback(self) -> list[DayInfo]:
        """Days the official calendar answered only by its estimate or its fallback rule."""
        return self.moment.fallback_days

    def trace(self) -> list[str]:
        lines = []
        for subject, outcome, matcher in self.steps:
            reason = f": {matcher.explain(self.call, self.moment)}" if matcher else ""
            lines.append(f"{subject}: {outcome}{reason}")
        lines.extend(_uncertain_day(day) for day in self.calendar_fallback)
        return lines


def _uncertain_day(day: DayInfo) -> str:
    unknown = (
        f"calendar: {day.date} is known neither to the official calendar nor to "
        "config/calendar.yaml; "
    )
    if day.source is Source.ESTIMATED:
        if day.holiday:
            kind = f"holiday ({day.name})"
        else:
            kind = "working day" if day.workday else "rest day"
        return (
            f"{unknown}estimated {kind} by the statutory-holiday rules "
            "(adjusted working weekends unknown)"
        )
    kind = "working day" if day.workday else "rest day"
    return f"{unknown}assumed {kind} by the fallback rule (Monday-Friday working)"


@dataclass(frozen=True, slots=True)
class ForwardStep:
    """The next forward to dial (None when the call is over), and the forwarding numbers
    passed over on the way because the plan marks them down."""

    target: DialTarget | None
    skipped: tuple[str, ...] = ()


def forward_step(decision: Decision, results: Sequence[DialResult]) -> ForwardStep:
    """Where the chain goes after `results`.

    Busy results move down the busy list, no-answer results down the no-answer list, each
    number tried at most once, a number the plan marks down skipped (it counts as no
    forward), and never more forwards than the chain allows (at most 3 in one call).
    """
    chain = decision.forwarding
    if chain is None or not results:
        return ForwardStep(None)
    forwards_done = len(results) - 1
    if forwards_done >= chain.max_forwards:
        return ForwardStep(None)
    outcome = chain.classify(results[-1].status)
    if outcome is DialClass.BUSY:
        candidates, reason = chain.on_busy, "busy"
    elif outcome is DialClass.NO_ANSWER:
        candidates, reason = chain.on_no_answer, "no_answer"
    else:
        return ForwardStep(None)
    tried = {result.number for result in results}
    skipped: list[str] = []
    for number in candidates:
        if number in tried:
            continue
        if number in chain.down:
            skipped.append(number)
            continue
        return ForwardStep(DialTarget(number, chain.ring_timeout, reason), tuple(skipped))
    return ForwardStep(None, tuple(skipped))
