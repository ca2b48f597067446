"""decide(): the routing plan applied to one call. A function of its inputs, nothing else.

No I/O and no clock reads: the instant, the usage counters, the calendar and the split
counters all come in as arguments, so the same inputs always give the same decision and
tests need no patching. A destination is down by its plan's `down: true` alone.

Order of questions, cheapest refusal first and nothing answered before it is needed:
number status and balance, caller IDs that cannot be dialled back (withheld or not a number),
blacklist, region screening, caps, then the rules (first match wins, the default route
last), then the PIN the chosen route asks for.

Everything that depends on the plan alone is worked out once per plan load, in the plan's
RoutingTable (`routing_table(plan)`, kept while the plan lives): every caller list of the
plan in one CallerIndex, each rule's other matchers paired with the trace step their failure
records, each route's dial targets, split weights and forwarding chain. A call then asks the
index once, tests a bit or asks a matcher per rule and appends ready-made steps, so walking
past twenty rules builds almost nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from dialplan.calendar import OfficialCalendar
from dialplan.caps import Usage, balance_exhausted, cap_reached
from dialplan.decision import Decision, DialTarget, ForwardingChain, RejectReason, TraceStep
from dialplan.matchers import Call, CallerIndex, CallerMatcher, Moment, compile_when
from dialplan.menus import CompiledMenu, MenuWalk
from dialplan.plan import (
    Menu,
    MenuOption,
    NumberStatus,
    Pin,
    Plan,
    Recording,
    Route,
    SplitShare,
    Survey,
)
from dialplan.split import SplitCounters

_REASON_OF_STATUS = {
    NumberStatus.SUSPENDED: RejectReason.SUSPENDED,
    NumberStatus.CANCELLED: RejectReason.CANCELLED,
    NumberStatus.FROZEN: RejectReason.FROZEN,
    NumberStatus.ARREARS: RejectReason.ARREARS,
}
# Looking a member up on its enum class costs as much as a matcher; once per module instead.
_ACTIVE = NumberStatus.ACTIVE
_WITHHELD_ALLOWED: TraceStep = ("screening", "withheld caller ID allowed by policy", None)
_UNDIALLABLE_ALLOWED: TraceStep = (
    "screening",
    "caller ID that cannot be dialled back allowed by policy",
    None,
)
_PIN_ASKED: TraceStep = ("pin", "caller must enter the PIN first", None)
_RECORDED: TraceStep = (
    "recording",
    "caller hears the recording notice unanswered; the call is recorded once answered "
    "(while the account has the recording feature on)",
    None,
)
_SURVEYED: TraceStep = (
    "survey",
    "caller is asked for a score 1-5 once the answered call ends "
    "(while the account has the satisfaction_survey feature on)",
    None,
)


@dataclass
class RoutingState:
    """The world a decision depends on besides the plan, the call and the instant."""

    calendar: OfficialCalendar
    split: SplitCounters = field(default_factory=SplitCounters)


@dataclass(frozen=True, slots=True)
class Choice:
    """A destination of a route, ready to hand out: its target and the step that says so."""

    target: DialTarget
    percent: int  # share of the route's split; 0 outside a split
    step: TraceStep


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    """A route with everything that depends on the plan alone worked out."""

    name: str  # the rule's name, or "default"
    subject: str  # how the trace names it: "rule 3 'night-desk'", "default route"
    reject: RejectReason | None
    announcement: str | None
    choices: tuple[Choice, ...]  # destinations not marked down in the plan, in plan order
    split_key: tuple[str, str] | None  # the split's round-robin key; None for a single target
    weights: tuple[int, ...]  # split percentages of `choices`
    chain: ForwardingChain
    pin: Pin | None  # the PIN this route asks for
    matched: TraceStep
    all_down: TraceStep
    menu: str | None = None  # the menu this route plays instead of dialling
    language: str | None = None  # the prompt language a menu option switches to
    recording: Recording | None = None  # the plan's recording, when this route records
    survey: Survey | None = None  # the plan's survey, when this route's callers are asked

    @classmethod
    def of(
        cls, plan: Plan, route: Route, name: str, subject: str, split_name: str | None = None
    ) -> CompiledRoute:
        ring_default = route.ring_timeout or plan.ring_timeout
        choices = tuple(
            Choice(
                DialTarget(destination.number, destination.ring_timeout or ring_default),
                destination.percent if isinstance(destination, SplitShare) else 0,
                (subject, f"matched -> dial {destination.number}", None),
            )
            for destination in route.destinations()
            if not destination.down
        )
        reject = None
        if route.reject is not None:
            reject = RejectReason.CLOSED if route.reject == "closed" else RejectReason.BLOCKED
        forwarding = route.forwarding or plan.forwarding
        asks_pin = plan.pin is not None and (plan.pin.applies_to == "all" or route.require_pin)
        recording = plan.recording
        records = recording is not None and (recording.applies_to == "all" or route.record)
        survey = plan.survey
        surveys = survey is not None and (survey.applies_to == "all" or route.survey)
        return cls(
            name=name,
            subject=subject,
            reject=reject,
            announcement=route.announcement,
            choices=choices,
            split_key=(plan.number, split_name or name) if route.split is not None else None,
            weights=tuple(choice.percent for choice in choices),
            chain=ForwardingChain(
                on_busy=tuple(forwarding.on_busy),
                on_no_answer=tuple(forwarding.on_no_answer),
                max_forwards=forwarding.max_forwards,
                busy_statuses=frozenset(forwarding.busy_statuses),
                ring_timeout=ring_default,
                down=plan.down_numbers(),
            ),
            pin=plan.pin if asks_pin else None,
            matched=(subject, "matched", None),
            all_down=(subject, "matched, but every destination is down", None),
            menu=route.menu,
            language=route.language if isinstance(route, MenuOption) else None,
            recording=recording if records else None,
            survey=survey if surveys else None,
        )


def _compile_menu(plan: Plan, name: str, menu: Menu) -> CompiledMenu[CompiledRoute]:
    def option(key: str, choice: MenuOption) -> CompiledRoute | None:
        if choice.repeat:
            return None
        subject = f"menu {name!r} {'key ' + key if key != 'default' else key}"
        return CompiledRoute.of(plan, choice, name, subject, split_name=f"menu {name} {key}")

    default = option("default", menu.default)
    assert default is not None, "a menu's default is never repeat (Menu refuses it)"
    return CompiledMenu(
        name=name,
        prompt=menu.prompt,
        invalid_prompt=menu.invalid_prompt,
        timeout_ms=menu.timeout * 1000,
        retries=menu.retries,
        options={key: option(key, choice) for key, choice in menu.options.items()},
        default=default,
        repeat_languages={
            key: choice.language
            for key, choice in menu.options.items()
            if choice.repeat and choice.language is not None
        },
    )


# A matcher as the rule loop asks it: its bound `matches` with the step its failure records,
# prebuilt so that a rule passed by costs a call and an append.
Check = tuple[Callable[[Call, Moment], bool], TraceStep]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule as the loop asks it. Its caller list, asked first when it has one, is answered
    for all rules at once by the table's CallerIndex, leaving one bit to test here."""

    caller_bit: int  # the rule's bit in CallerIndex.listing(); 0 when it lists no callers
    not_listed: TraceStep | None  # recorded when the caller is not in the list
    checks: tuple[Check, ...]  # the rule's other matchers, in order
    route: CompiledRoute


@dataclass(frozen=True, slots=True)
class RoutingTable:
    """A plan compiled for decide(); built once per plan load by `routing_table`."""

    zone: ZoneInfo
    callers: CallerIndex  # every caller list of the plan: blacklist, screening, rules
    blacklist_bit: int  # 0 when the blacklist is empty
    blacklisted: TraceStep | None
    screened_bit: int  # 0 when screening lists nobody
    screening_passed: TraceStep
    screening_refused: TraceStep
    rules: tuple[CompiledRule, ...]
    default: CompiledRoute
    menus: dict[str, CompiledMenu[CompiledRoute]]

    @classmethod
    def of(cls, plan: Plan) -> RoutingTable:
        caller_lists: list[CallerMatcher] = []

        def bit_of(callers: CallerMatcher) -> int:
            caller_lists.append(callers)
            return 1 << (len(caller_lists) - 1)

        blacklist_bit, blacklisted = 0, None
        if not plan.blacklist.is_empty():
            listed = CallerMatcher.of(plan.blacklist)
            blacklist_bit = bit_of(listed)
            blacklisted = ("blacklist", "listed", listed)
        screening = plan.screening
        screened = None if screening.callers.is_empty() else CallerMatcher.of(screening.callers)
        screened_bit = 0 if screened is None else bit_of(screened)
        screening_subject = f"screening ({screening.mode})"
        rules = []
        for index, rule in enumerate(plan.rules):
            subject = f"rule {index} {rule.name!r}"
            matchers = compile_when(rule.when)
            caller_bit, not_listed = 0, None
            if matchers and isinstance(matchers[0], CallerMatcher):  # asked first, as compiled
                caller_bit, not_listed = bit_of(matchers[0]), (subject, "no", matchers[0])
                matchers = matchers[1:]
            checks = tuple((m.matches, (subject, "no", m)) for m in matchers)
            # Its split counts apart from the default route's, even for a rule named "default".
            route = CompiledRoute.of(plan, rule, rule.name, subject, split_name=f"rule {rule.name}")
            rules.append(CompiledRule(caller_bit, not_listed, checks, route))
        return cls(
            zone=plan.zone(),
            callers=CallerIndex(caller_lists),
            blacklist_bit=blacklist_bit,
            blacklisted=blacklisted,
            screened_bit=screened_bit,
            screening_passed=(screening_subject, "passed", screened),
            screening_refused=(screening_subject, "refused", screened),
            rules=tuple(rules),
            default=CompiledRoute.of(plan, plan.default, "default", "default route"),
            menus={name: _compile_menu(plan, name, menu) for name, menu in plan.menus.items()},
        )


_TABLES: dict[int, RoutingTable] = {}


def routing_table(plan: Plan) -> RoutingTable:
    """The plan compiled for decide(), once per plan object (a loaded plan is immutable).

    Kept here rather than on the plan, so that the plan model knows nothing of how it is
    evaluated; the entry goes when the plan is collected (after a reload replaced it).
    """
    key = id(plan)
    table = _TABLES.get(key)
    if table is None:
        table = _TABLES[key] = RoutingTable.of(plan)
        weakref.finalize(plan, _TABLES.pop, key, None)
    return table


def decide(plan: Plan, call: Call, now: datetime, usage: Usage, state: RoutingState) -> Decision:
    """Decide what happens to `call` at `now` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("decide() needs a timezone-aware instant")
    table = routing_table(plan)
    moment = Moment(now.astimezone(table.zone), state.calendar)
    decision = Decision("reject", call, moment)
    decision.language = plan.language
    listed = table.callers.listing(call.caller)
    if _refused_before_routing(plan, table, call, listed, usage, decision):
        return decision
    record = decision.steps.append
    for rule in table.rules:
        if rule.caller_bit and not listed & rule.caller_bit:
            record(rule.not_listed)  # type: ignore[arg-type]  # set along with caller_bit
            continue
        for matches, failed in rule.checks:
            if not matches(call, moment):
                record(failed)
                break
        else:  # every matcher agreed
            if _take_route(plan, rule.route, state, decision):
                return decision
    if not _take_route(plan, table.default, state, decision):
        _refuse(decision, RejectReason.NO_ROUTE, "every destination of the plan is down", plan)
    return decision


def _refused_before_routing(
    plan: Plan, table: RoutingTable, call: Call, listed: int, usage: Usage, decision: Decision
) -> bool:
    steps = decision.steps
    status = usage.status or plan.status
    if status is not _ACTIVE:
        reason = _REASON_OF_STATUS[status]
        return _refuse(decision, reason, f"number is {status.value}; it connects no calls", plan)
    if balance_exhausted(usage):
        return _refuse(decision, RejectReason.ARREARS, f"prepaid balance is {usage.balance}", plan)
    caller = call.caller
    if not caller.number:  # withheld, missing, or nothing that could be dialled back
        if plan.screening.anonymous_policy == "reject":
            detail = "cannot be dialled back" if not caller.anonymous else "withheld"
            return _refuse(decision, RejectReason.ANONYMOUS, f"caller ID {detail}", plan)
        steps.append(_WITHHELD_ALLOWED if caller.anonymous else _UNDIALLABLE_ALLOWED)
    else:
        if listed & table.blacklist_bit:
            steps.append(table.blacklisted)  # type: ignore[arg-type]  # set with the bit
            return _refuse(decision, RejectReason.BLACKLISTED, "caller is blacklisted", plan)
        if table.screened_bit:
            in_list = bool(listed & table.screened_bit)
            refused = in_list if plan.screening.mode == "deny" else not in_list
            steps.append(table.screening_refused if refused else table.screening_passed)
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
    decision.steps.append(("decision", f"reject ({reason.value}): {detail}", None))
    return True


def follow_menu(
    plan: Plan,
    decision: Decision,
    walk: MenuWalk[CompiledRoute],
    route: CompiledRoute,
    state: RoutingState,
) -> None:
    """Turn a decision to play a menu into the route the caller's keys chose (`walk` ended
    on `route`): the walk's steps join the trace, and the rule that led to the menu stays
    the decision's rule. A chosen route whose destinations are all down refuses the call."""
    rule = decision.rule
    decision.steps.extend(walk.steps)
    decision.menu_path, decision.menu_digits = walk.menu_path, walk.digits
    decision.menu = None
    if walk.language is not None:
        decision.language = walk.language
    if not _take_route(plan, route, state, decision):
        detail = f"every destination of {route.subject} is down"
        _refuse(decision, RejectReason.NO_ROUTE, detail, plan)
    decision.rule = rule


def skip_menus(plan: Plan, decision: Decision, state: RoutingState, reason: str) -> None:
    """Take a decision to play a menu straight to the route each menu's default leads to,
    nothing played (`reason` joins the trace): the caller hears no menu, so the call keeps
    no menu path."""
    if decision.menu is None:
        return
    walk = MenuWalk.start(routing_table(plan).menus, decision.menu)
    follow_menu(plan, decision, walk, walk.skipped(reason), state)
    decision.menu_path = decision.menu_digits = None


def follow_keys(plan: Plan, decision: Decision, keys: str, state: RoutingState) -> None:
    """Walk the menus of a decision to play one as a caller pressing `keys` would, one key
    a prompt, then nothing: what `simulate --digits` and the console's preview show."""
    if decision.menu is None:
        return
    walk = MenuWalk.start(routing_table(plan).menus, decision.menu)
    pressed = iter(keys)
    route = None
    while route is None:
        route = walk.press(next(pressed, ""))
    follow_menu(plan, decision, walk, route, state)


def _take_route(plan: Plan, route: CompiledRoute, state: RoutingState, decision: Decision) -> bool:
    """Fill the decision from a matched route; False when all its destinations are down."""
    if route.menu is not None:
        decision.rule = route.name
        decision.steps.append((route.subject, f"matched -> menu {route.menu!r}", None))
        decision.action = "menu"
        decision.menu = route.menu
        return True
    if route.reject is not None:
        decision.rule = route.name
        decision.steps.append(route.matched)
        decision.announcement = route.announcement
        return _refuse(decision, route.reject, f"{route.subject} refuses the call", plan)
    choices = route.choices
    if not choices:
        decision.steps.append(route.all_down)
        return False
    if route.split_key is None:
        chosen = choices[0]
    else:
        chosen = choices[state.split.pick(route.split_key, route.weights)]
    decision.rule = route.name
    decision.steps.append(chosen.step)
    decision.action = "dial"
    decision.first = chosen.target
    decision.route_targets = tuple(choice.target for choice in choices)
    decision.forwarding = route.chain
    if route.pin is not None:
        decision.pin = route.pin
        decision.steps.append(_PIN_ASKED)
    if route.recording is not None:
        decision.recording = route.recording
        decision.steps.append(_RECORDED)
    if route.survey is not None:
        decision.survey = route.survey
        decision.steps.append(_SURVEYED)
    return True
