"""`hotline400 callgen`: load a running router with simulated Asterisk calls and report.

Exit 0 when every call completed on the wire, 1 when any failed (refused, reset, timed
out) or the run could not be set up. When the first calls all fail to connect (nothing
listens at --target) it says so in one line instead of reporting them.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from pathlib import Path

from dialplan.errors import ConfigError
from router.commands.arguments import positive, service_number
from router.commands.exits import EXIT_INTERRUPTED
from router.configuration.config_dir import load_config
from router.configuration.settings import PinGuardSettings, load_settings, parse_listen
from router.simulation.callgen import (
    DEFAULT_CALLERS,
    DEFAULT_MIX,
    CallgenSpec,
    TargetUnreachable,
    check_pin,
    parse_mix,
    read_callers,
    run_callgen,
    wrong_pins_per_caller,
)

MAX_CALLS = 10_000_000
MAX_CONCURRENCY = 50_000


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "callgen", parents=[common], help="place simulated calls against a router (load test)"
    )
    parser.add_argument(
        "--target",
        required=True,
        type=_address,
        metavar="HOST:PORT",
        help="the router's FastAGI address, e.g. 127.0.0.1:4573",
    )
    parser.add_argument(
        "--calls",
        required=True,
        type=positive(MAX_CALLS),
        metavar="N",
        help=f"how many calls to place (at most {MAX_CALLS:,}); Ctrl-C stops early and "
        "reports on the calls placed",
    )
    parser.add_argument(
        "--concurrency",
        required=True,
        type=positive(MAX_CONCURRENCY),
        metavar="C",
        help=f"calls open at once (at most {MAX_CONCURRENCY:,})",
    )
    parser.add_argument(
        "--mix",
        type=_mix,
        help="how destinations and callers behave, percentages summing to 100 "
        f"(default {_written(DEFAULT_MIX)}); wrong_pin=N adds callers typing a wrong PIN, "
        "counted by the router's pin_guard",
    )
    parser.add_argument(
        "--pin",
        dest="pins",
        action=_Pins,
        type=_number_and_pin,
        default={},
        metavar="400XXXXXXX=PIN",
        help="the PIN callers of that number type when the router asks (repeatable; a plan "
        "keeps only its hash); without it they type nothing and are refused at the PIN",
    )
    parser.add_argument(
        "--callers", metavar="FILE", help="caller IDs, one a line, used in rotation"
    )
    parser.add_argument(
        "--number",
        dest="numbers",
        nargs="+",
        action="extend",
        type=service_number,
        metavar="400XXXXXXX",
        help="400 numbers to call in rotation (default: every plan in --config)",
    )
    parser.add_argument(
        "--time-scale",
        type=_non_negative,
        default=0.0,
        metavar="S",
        help="really sleep S x each simulated second (0: virtual time, as fast as possible)",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed of the ring, talk and hang-up durations"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        callers = _callers(args.callers) if args.callers else DEFAULT_CALLERS
        numbers = args.numbers or _plan_numbers(args.config)
        host, port = args.target
        spec = CallgenSpec(
            host=host,
            port=port,
            calls=args.calls,
            concurrency=args.concurrency,
            numbers=numbers,
            callers=callers,
            mix=args.mix or dict(DEFAULT_MIX),
            time_scale=args.time_scale,
            seed=args.seed,
            pins=args.pins,
        )
    except (OSError, ValueError) as error:
        print(f"callgen: {error}", file=sys.stderr)
        return 1
    _warn_of_the_pin_guard(spec, args.config)
    try:
        report = asyncio.run(run_callgen(spec))
    except TargetUnreachable as error:
        print(f"callgen: {error}", file=sys.stderr)
        return 1
    print(*report.lines(), sep="\n")
    if report.interrupted:
        return EXIT_INTERRUPTED
    return 0 if report.ok else 1


def _warn_of_the_pin_guard(spec: CallgenSpec, config_dir: str) -> None:
    """Say before the run when its wrong PINs will get callers refused: the guard's block
    outlasts the run, so the calls after it, and the next runs', meet `blocked`."""
    guard = _pin_guard(config_dir)
    limit = guard.max_failed_calls
    over = {n: most for n, most in wrong_pins_per_caller(spec).items() if limit and most >= limit}
    if not over:
        return
    print(
        f"warning: up to {max(over.values())} wrong_pin calls of one caller to "
        f"{', '.join(over)}: the router's pin_guard refuses a caller (blocked) after {limit} "
        f"failed PIN calls to a number within {guard.window:g} s, for {guard.block:g} s; give "
        "more --callers, fewer wrong_pin, or run the router under test with "
        "pin_guard.max_failed_calls: 0",
        file=sys.stderr,
    )


def _pin_guard(config_dir: str) -> PinGuardSettings:
    """The PIN guard of router.yaml in --config, as the router under test likely has it;
    its defaults when that cannot be read."""
    try:
        return load_settings(config_dir).pin_guard
    except ConfigError:
        return PinGuardSettings()


def _callers(path: str) -> tuple[str, ...]:
    """The --callers file's caller IDs, or why it cannot be read in one line."""
    try:
        return read_callers(path)
    except UnicodeDecodeError:
        raise ValueError(f"cannot read {path}: not UTF-8 text (one caller ID a line)") from None
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None


def _plan_numbers(config_dir: str) -> list[str]:
    if not Path(config_dir).is_dir():
        raise ValueError(
            f"no configuration directory {config_dir}: name the numbers to call with --number"
        )
    numbers = sorted(load_config(config_dir).plans)
    if not numbers:
        raise ValueError(f"no plans in {config_dir}/plans: name the numbers with --number")
    return numbers


def _address(text: str) -> tuple[str, int]:
    try:
        return parse_listen(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _mix(text: str) -> dict[str, int]:
    try:
        return parse_mix(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _written(mix: dict[str, int]) -> str:
    return ",".join(f"{name}={percent}" for name, percent in mix.items())


def _number_and_pin(text: str) -> tuple[str, str]:
    """'4001234567=2468' -> the 400 number and its PIN."""
    number, equals, pin = text.partition("=")
    if not equals:
        raise argparse.ArgumentTypeError(f"{text!r} is not 400NUMBER=PIN")
    try:
        return service_number(number), check_pin(pin.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


class _Pins(argparse.Action):
    """`--pin 400NUMBER=PIN`, repeatable, gathered into {number: PIN}; a number given twice
    is refused rather than one of its PINs silently kept."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        _option_string: str | None = None,
    ) -> None:
        number, pin = values  # type: ignore[misc]  # _number_and_pin made it
        pins = dict(getattr(namespace, self.dest))
        if number in pins:
            raise argparse.ArgumentError(self, f"{number} is given twice")
        pins[number] = pin
        setattr(namespace, self.dest, pins)


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of zero or more")
    return value
