"""`hotline400 simulate`: what a plan would do with a call, without Asterisk.

Prints the decision's trace and the dial attempts and forwards that would follow, given
which destinations are busy or do not answer. `--calls N` shows how a split spreads.
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from dialplan.caps import Usage
from dialplan.decision import Decision, DialResult, next_target
from dialplan.evaluator import RoutingState, decide
from dialplan.geo import locate
from dialplan.matchers import Call, describe_caller
from router.call.channel_contract import ENDINGS
from router.configuration.config_dir import load_config


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("simulate", parents=[common], help="show how a plan routes a call")
    parser.add_argument(
        "--number", required=True, type=_service_number, help="the dialled 400 number"
    )
    parser.add_argument("--caller", required=True, help="caller ID as Asterisk hands it over")
    parser.add_argument(
        "--at", type=_local_time, help='local time "YYYY-MM-DD HH:MM" (default: now)'
    )
    parser.add_argument("--busy", action="append", default=[], metavar="NUMBER")
    parser.add_argument("--no-answer", action="append", default=[], metavar="NUMBER")
    parser.add_argument("--calls", type=_positive, default=1, help="place this many calls")
    parser.set_defaults(run=run)


def _service_number(text: str) -> str:
    """'400-600-1234' -> '4006001234'."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) != 10 or not digits.startswith("400"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a 400 number")
    return digits


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of calls")
    return int(text)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    plan = config.plans.get(args.number)
    if plan is None:
        reasons = [
            str(p)
            for p in config.problems
            if args.number in p.file or Path(p.file) == config.directory
        ]
        print(f"no valid plan for {args.number}", *reasons, sep="\n")
        return 1
    for problem in config.problems:
        if args.number not in problem.file:  # other files: routing may differ from production
            print(f"warning: {problem}")
    zone = ZoneInfo(plan.timezone)
    at = datetime.now(zone) if args.at is None else args.at.replace(tzinfo=zone)
    state = RoutingState(config.calendar)
    call = Call(plan.number, locate(args.caller))
    busy = {locate(n).number or n for n in args.busy}
    no_answer = {locate(n).number or n for n in args.no_answer}
    caller = describe_caller(call.caller)
    print(f"call to {plan.number} ({plan.name}) from {caller} at {at:%a %Y-%m-%d %H:%M %Z}")
    if args.calls == 1:
        decision = decide(plan, call, at, Usage(), state)
        _print_decision(decision, busy, no_answer)
        return 0
    spread: Counter[str] = Counter()
    for _ in range(args.calls):
        decision = decide(plan, call, at, Usage(), state)
        spread[decision.first.number if decision.first else f"reject:{decision.reject}"] += 1
    for destination, count in spread.most_common():
        print(f"  {destination:<16} {count:>6} calls  {100 * count / args.calls:6.2f}%")
    return 0


def _local_time(text: str) -> datetime:
    """A wall-clock time; the plan's time zone is attached once the plan is known."""
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time like 2026-10-01 09:30") from None


def _print_decision(decision: Decision, busy: set[str], no_answer: set[str]) -> None:
    print("trace:")
    for line in decision.trace():
        print(f"  {line}")
    if decision.reject is not None:
        prompt = f", playing {decision.announcement}" if decision.announcement else ""
        print(f"outcome: {ENDINGS[decision.reject].outcome} ({decision.reject}){prompt}")
        return
    if decision.pin is not None:
        print(f"PIN: the caller is asked for the PIN, {decision.pin.attempts} attempts")
    results: list[DialResult] = []
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
        print(f"  {step}. {how} {target.number}, ring {target.ring_timeout} s -> {status}")
        results.append(DialResult(target.number, status))
        target = next_target(decision, results)
        step += 1
    assert decision.forwarding is not None, "a decision to dial carries its forwarding chain"
    final = decision.forwarding.classify(results[-1].status)
    print(f"outcome: {ENDINGS[final].outcome} (rule {decision.rule})")
