"""`hotline400 simulate`: what a plan would do with a call, without Asterisk.

Prints the decision's trace and the dial attempts and forwards that would follow, given
which destinations are busy or do not answer. `--calls N` shows how a split spreads.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from dialplan.caps import Usage
from dialplan.decision import Decision, DialResult, forward_step
from dialplan.evaluator import RoutingState, decide, follow_keys, skip_menus
from dialplan.geo import locate
from dialplan.matchers import Call, describe_caller
from dialplan.plan import Plan
from numbering.rules import NumberRules
from rating.tariff import Tariffs
from router.call.channel_contract import ENDINGS, RouterRefusal
from router.call.features import IVR, NO_IVR, feature_on
from router.call.pin_guard import WITHHELD
from router.call.recording import RECORDING
from router.call.survey import SATISFACTION_SURVEY
from router.commands.arguments import (
    TIME_FORMS,
    instant,
    moment,
    phone_number,
    positive,
    service_number,
)
from router.configuration.config_dir import load_config
from router.configuration.settings import RouterSettings
from router.money.accounting import NO_USAGE, Accounting, CallAccount
from router.money.balance_alerts import BalanceAlerts
from router.numbers.service import NOT_IN_SERVICE, past_holders_plan
from router.numbers.statuses import InventoryStatus, inventory_status
from router.storage.location import store_for
from router.storage.protocol import Store
from router.storage.sqlite import StoreUnavailable
from router.storage.store_url import SQLiteLocation, configured_store_url, parse_store_url

_T = TypeVar("_T")

MAX_CALLS = 1_000_000
PROGRESS_FROM = 100_000
"""Runs this long show their progress on a terminal."""


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("simulate", parents=[common], help="show how a plan routes a call")
    parser.add_argument(
        "--number", required=True, type=service_number, help="the dialled 400 number"
    )
    parser.add_argument("--caller", required=True, help="caller ID as Asterisk hands it over")
    parser.add_argument(
        "--at",
        type=moment,
        metavar="TIME",
        help=f"when the call comes: {TIME_FORMS}; local to the plan (default: now)",
    )
    parser.add_argument(
        "--busy",
        action="append",
        default=[],
        type=phone_number,
        metavar="NUMBER",
        help="this destination is busy when dialled (repeat for several)",
    )
    parser.add_argument(
        "--no-answer",
        action="append",
        default=[],
        type=phone_number,
        metavar="NUMBER",
        help="this destination rings out when dialled (repeat for several)",
    )
    parser.add_argument(
        "--digits",
        type=menu_keys,
        default="",
        metavar="KEYS",
        help="keys the caller presses at the IVR menus, one per prompt (e.g. 21: 2 in the "
        "first menu, 1 in the next); prompts after the last key hear none",
    )
    parser.add_argument(
        "--calls",
        type=positive(MAX_CALLS),
        default=1,
        metavar="N",
        help=f"place N calls and show how they spread (at most {MAX_CALLS:,})",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not Path(args.config).is_dir():
        print(f"no configuration directory {args.config}", file=sys.stderr)
        return 1
    config = load_config(args.config)
    plan = config.plans.get(args.number)
    if plan is None:
        reasons = [
            str(p)
            for p in config.problems
            if args.number in p.file or Path(p.file) == config.directory
        ]
        more = f" (and {len(reasons) - 1} more: hotline400 check)" if len(reasons) > 1 else ""
        why = f": {reasons[0]}{more}" if reasons else ""
        print(f"no valid plan for {args.number}{why}", file=sys.stderr)
        return 1
    for problem in config.problems:
        if args.number not in problem.file:  # other files: routing may differ from production
            print(f"warning: {problem}")
    zone = ZoneInfo(plan.timezone)
    at = _instant(args.at, zone)
    standing = _standing(config.settings, config.tariffs, config.number_rules, plan, at)
    usage = standing.usage
    state = RoutingState(config.calendar)
    call = Call(plan.number, locate(args.caller))
    caller = describe_caller(call.caller)
    print(f"call to {plan.number} ({plan.name}) from {caller} at {at:%a %Y-%m-%d %H:%M %Z}")
    if standing.out_of_service is not None:
        print(not_in_service_line(plan, standing.out_of_service))
        return 0
    if standing.counters:
        print(standing.counters)
    ivr = feature_on(plan, config.tariffs, IVR, at)
    try:
        guessing = _pin_refused_until(config.settings, plan, call.caller.number or WITHHELD, at)
    except StoreUnavailable as error:
        guessing = None
        print(pin_guard_unreadable(str(error)))
    if args.calls == 1:
        decision = decide(plan, call, at, usage, state)
        walk_menus(plan, decision, args.digits, state, ivr)
        off = features_off(plan, config.tariffs, at)
        lines = decision_lines(decision, set(args.busy), set(args.no_answer), off, guessing)
        print(*lines, sep="\n")
        return 0
    spread: Counter[str] = Counter()
    show_progress = args.calls >= PROGRESS_FROM and sys.stderr.isatty()
    step = max(1, args.calls // 100)
    for placed in range(1, args.calls + 1):
        decision = decide(plan, call, at, usage, state)
        walk_menus(plan, decision, args.digits, state, ivr)
        if decision.pin is not None and guessing is not None:
            spread[f"reject:{RouterRefusal.PIN_GUESSING}"] += 1
        else:
            spread[decision.first.number if decision.first else f"reject:{decision.reject}"] += 1
        if show_progress and placed % step == 0:
            print(f"\r{placed:,} of {args.calls:,} calls", end="", file=sys.stderr, flush=True)
    if show_progress:
        print(file=sys.stderr)
    for destination, count in spread.most_common():
        print(f"  {destination:<16} {count:>6} calls  {100 * count / args.calls:6.2f}%")
    return 0


def menu_keys(text: str) -> str:
    """--digits: keys of a telephone keypad."""
    if not re.fullmatch(r"[0-9*#]{0,20}", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not up to 20 keys of a telephone keypad (0-9, * and #)"
        )
    return text


def _instant(value: date | datetime | None, zone: ZoneInfo) -> datetime:
    """--at in the plan's zone: a day is its midnight, a time with an offset is converted."""
    if value is None:
        return datetime.now(zone)
    return instant(value, zone).astimezone(zone)


def _standing(
    settings: RouterSettings,
    tariffs: Tariffs | None,
    rules: NumberRules,
    plan: Plan,
    at: datetime,
) -> Standing:
    """The number's standing as the router would read it for this call, from the configured
    store (`standing_at`), so simulate and serve agree."""

    async def read(store: Store | None) -> Standing:
        return await standing_at(store, settings, tariffs, rules, plan, at)

    try:
        return asyncio.run(_on_configured_store(settings, read))
    except StoreUnavailable as error:
        return unreadable(plan, tariffs, str(error))


@dataclass(frozen=True, slots=True)
class Standing:
    """What the router reads of a number as a call arrives, before it decides the call."""

    usage: Usage
    """The counters decide() is given (balance, month and day cost, calls this month) and
    the number's status in the inventory."""
    counters: str = ""
    """A line saying what the counters are when they can change the route (a prepaid
    balance, or caps), or that the store could not be read; "" otherwise."""
    out_of_service: InventoryStatus | None = None
    """The inventory's status when the router refuses the call outright, whatever its plan
    says (`refused_outright`): the number not in service, or its plan a past holder's."""


async def standing_at(
    store: Store | None,
    settings: RouterSettings,
    tariffs: Tariffs | None,
    rules: NumberRules,
    plan: Plan,
    at: datetime,
) -> Standing:
    """The number's standing for a call at `at`, read from `store` as the router reads it:
    the inventory's status, then the counters through the router's own `open_call` (None:
    no store yet, whose first call sees empty counters). A store that cannot be read leaves
    them empty, as the router connects without limits then, and the line says so.
    Simulate and the console's preview read it so."""
    account = tariffs.accounts.get(plan.number) if tariffs is not None else None
    month = f"{at.astimezone(plan.zone()):%Y-%m}"
    call = CallAccount(plan, tariffs, account, NO_USAGE, month)
    if store is not None:
        try:
            inventory = await inventory_at(store, plan.number, at, rules)
            if inventory is not None and refused_outright(plan, inventory):
                return Standing(Usage(), out_of_service=inventory)
            accounting = Accounting(
                store, BalanceAlerts(None), settings.zone(), balance_seen=lambda *_: None
            )
            status = None if inventory is None else inventory.on_calls
            call = await accounting.open_call(plan, tariffs, at, status)
        except StoreUnavailable as error:
            return unreadable(plan, tariffs, str(error))
    usage = call.usage()
    if not _limited(plan, tariffs):
        return Standing(usage)
    if call.unread:
        return Standing(usage, _unreadable_usage(call.unread))
    caps = plan.caps
    kind = "no account" if account is None else "prepaid" if account.prepaid else "postpaid"
    balance = f"balance {usage.balance}, " if usage.balance is not None else ""
    calls = f"{usage.month_calls} call(s)"
    if caps.monthly_calls is not None:
        calls = f"{usage.month_calls} of {caps.monthly_calls} {caps.monthly_calls_counting} call(s)"
    return Standing(
        usage,
        f"usage ({kind}): {balance}{month} cost {usage.month_cost} in {calls}, "
        f"today's cost {usage.day_cost}",
    )


def unreadable(plan: Plan, tariffs: Tariffs | None, error: str) -> Standing:
    """The standing of a number whose store cannot be read: no counters nor inventory
    status, as the router connects then, and a line saying what is left out."""
    if _limited(plan, tariffs):
        return Standing(Usage(), _unreadable_usage(error))
    return Standing(Usage(), f"store: unreadable ({error}); the inventory's status is left out")


def _unreadable_usage(error: str) -> str:
    return f"usage: unreadable ({error}); the router connects without limits then"


def _limited(plan: Plan, tariffs: Tariffs | None) -> bool:
    """Whether the counters can refuse this number's calls: a prepaid balance, or caps."""
    account = tariffs.accounts.get(plan.number) if tariffs is not None else None
    return (account is not None and account.prepaid) or plan.caps.limited


def _pin_refused_until(
    settings: RouterSettings, plan: Plan, caller: str, at: datetime
) -> datetime | None:
    """Until when the router's PIN guard refuses this caller on this number before the
    prompt, read from the configured store as the router reads it; None when it does not
    (no PIN, the guard off, no store yet). StoreUnavailable when the store cannot be read:
    the router prompts then, and simulate says so (`pin_guard_unreadable`)."""
    if not guards_pin(settings, plan):
        return None

    async def read(store: Store | None) -> datetime | None:
        return None if store is None else await pin_refused_until(store, settings, plan, caller, at)

    return asyncio.run(_on_configured_store(settings, read))


async def _on_configured_store(
    settings: RouterSettings, work: Callable[[Store | None], Awaitable[_T]]
) -> _T:
    """`work` on the configured store, opened for it and closed after; on None while a
    SQLite file does not exist yet (the router's first start makes it, its first call sees
    nothing stored). StoreUnavailable when the store cannot be opened or read."""
    location = parse_store_url(configured_store_url(settings))
    if isinstance(location, SQLiteLocation) and not location.path.is_file():
        return await work(None)
    store = store_for(settings, port=0)
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


def pin_guard_unreadable(error: str) -> str:
    """The line simulate and the console's preview give a PIN guard the store could not
    tell: the router lets the caller through to the prompt then."""
    return f"PIN guard: unreadable ({error}); the router asks the caller for the PIN"


async def inventory_at(
    store: Store, number: str, at: datetime, rules: NumberRules
) -> InventoryStatus | None:
    """The number's status in the inventory at `at`, as the router's statuses give it to a
    call (periods due by then run out); None when the inventory does not hold it (its plan's
    own `status` counts). Simulate and the console's preview read it so."""
    record = await store.number_record(number)
    return None if record is None else inventory_status(record, at, rules)


def guards_pin(settings: RouterSettings, plan: Plan) -> bool:
    """Whether the router's PIN guard may refuse callers of this plan: it asks a PIN and
    router.yaml's pin_guard is on."""
    return plan.pin is not None and settings.pin_guard.max_failed_calls > 0


async def pin_refused_until(
    store: Store, settings: RouterSettings, plan: Plan, caller: str, at: datetime
) -> datetime | None:
    """Until when (in the plan's zone) the router's PIN guard refuses `caller` (its number,
    or router.call.pin_guard.WITHHELD) on the plan's number before the prompt, as the router
    asks the store; None when it does not (no PIN, the guard off, no block)."""
    if not guards_pin(settings, plan):
        return None
    until = await store.pin_blocked_until(plan.number, caller, at)
    return None if until is None else until.astimezone(plan.zone())


def refused_outright(plan: Plan, inventory: InventoryStatus) -> bool:
    """Whether the router refuses a call to the plan's number as one without a plan: the
    inventory has not put it in service, or the plan names a subscriber that does not hold
    it (a past holder's: router.numbers.service.past_holders_plan)."""
    return inventory.on_calls == NOT_IN_SERVICE or bool(
        past_holders_plan(plan, inventory.subscriber)
    )


def not_in_service_line(plan: Plan, inventory: InventoryStatus) -> str:
    """How the router ends a call it refuses outright (`refused_outright`): as a number
    without a plan, whatever its plan says, and why."""
    outcome = ENDINGS[RouterRefusal.UNKNOWN_NUMBER].outcome
    why = past_holders_plan(plan, inventory.subscriber)
    if inventory.on_calls == NOT_IN_SERVICE or why is None:
        why = f"{inventory.status} in the inventory, not in service"
    return f"outcome: {outcome}, {plan.number} is {why}"


def walk_menus(plan: Plan, decision: Decision, keys: str, state: RoutingState, ivr: bool) -> None:
    """The menus as the router plays them: with the caller's keys, or not at all when the
    account has no IVR feature."""
    if ivr:
        follow_keys(plan, decision, keys, state)
    else:
        skip_menus(plan, decision, state, NO_IVR)


def features_off(plan: Plan, tariffs: Tariffs | None, at: datetime) -> frozenset[str]:
    """The features sold on top (recording, the survey) the number's account does not have
    switched on the plan's day of `at`: the router skips them on that call."""
    return frozenset(
        feature
        for feature in (RECORDING, SATISFACTION_SURVEY)
        if not feature_on(plan, tariffs, feature, at)
    )


def decision_lines(
    decision: Decision,
    busy: set[str],
    no_answer: set[str],
    off: frozenset[str] = frozenset(),
    pin_refused: datetime | None = None,
) -> list[str]:
    """The trace, the dial attempts and forwards, and the outcome of a decision, given which
    destinations are busy or do not answer, which features the account has `off` and until
    when the PIN guard refuses the caller (`pin_refused`, None: it does not): what simulate
    prints and the console previews."""
    lines = ["trace:", *(f"  {line}" for line in decision.trace())]
    if decision.menu_path is not None:
        keys = decision.menu_digits or "none"
        lines.append(f"menus: {decision.menu_path} (keys pressed: {keys})")
    if decision.pin is not None and pin_refused is not None:  # refused before the prompt
        lines.append(
            f"outcome: {ENDINGS[RouterRefusal.PIN_GUESSING].outcome} (pin_guessing): too many "
            f"failed PIN calls from this caller; refused until {pin_refused:%Y-%m-%d %H:%M}"
        )
        return lines
    if decision.reject is not None:
        prompt = f", playing {decision.announcement}" if decision.announcement else ""
        lines.append(f"outcome: {ENDINGS[decision.reject].outcome} ({decision.reject}){prompt}")
        return lines
    if decision.pin is not None:
        lines.append(f"PIN: the caller is asked for the PIN, {decision.pin.attempts} attempts")
    if decision.recording is not None and RECORDING in off:
        lines.append(f"recording: none, the account has no {RECORDING} feature that day")
    elif decision.recording is not None:
        notice = decision.recording.notice
        lines.append(f"recording: {notice} played unanswered, then the answered call recorded")
    if decision.survey is not None and SATISFACTION_SURVEY in off:
        lines.append(f"survey: none, the account has no {SATISFACTION_SURVEY} feature that day")
    elif decision.survey is not None:
        survey = decision.survey
        lines.append(
            f"survey: once an answered call's destination hangs up (Dial's g), {survey.prompt} "
            f"asks for a score 1-5, {1 + survey.retries} attempt(s) of {survey.timeout} s"
        )
    results: list[DialResult] = []
    skipped: set[str] = set()  # forwards the plan marks down, told once
    target = decision.first
    step = 1
    while target is not None:
        status = (
            "BUSY"
            if target.number in busy
            else "NOANSWER"
            if target.number in no_answer
            else "ANSWER"
        )
        how = "dial" if target.reason == "primary" else f"forward ({target.reason})"
        lines.append(f"  {step}. {how} {target.number}, ring {target.ring_timeout} s -> {status}")
        results.append(DialResult(target.number, status))
        forward = forward_step(decision, results)
        for number in forward.skipped:
            if number not in skipped:
                skipped.add(number)
                lines.append(f"  forward {number} skipped: down")
        target = forward.target
        step += 1
    assert decision.forwarding is not None, "a decision to dial carries its forwarding chain"
    final = decision.forwarding.classify(results[-1].status)
    lines.append(f"outcome: {ENDINGS[final].outcome} (rule {decision.rule})")
    return lines
