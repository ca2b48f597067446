"""`hotline400 callgen`: load a running router with simulated Asterisk calls and report.

Exit 0 when every call completed on the wire, 1 when any failed (refused, reset, timed
out) or the run could not be set up.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys

from router.commands.arguments import positive, service_number
from router.commands.exits import EXIT_INTERRUPTED
from router.configuration.config_dir import load_config
from router.configuration.settings import parse_listen
from router.simulation.callgen import (
    DEFAULT_CALLERS,
    DEFAULT_MIX,
    CallgenSpec,
    parse_mix,
    read_callers,
    run_callgen,
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
    default_mix = ",".join(f"{name}={percent}" for name, percent in DEFAULT_MIX.items())
    parser.add_argument(
        "--mix",
        type=_mix,
        default=dict(DEFAULT_MIX),
        help=f"how destinations and callers behave, percentages summing to 100 ({default_mix})",
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
        callers = read_callers(args.callers) if args.callers else DEFAULT_CALLERS
        numbers = args.numbers or _plan_numbers(args.config)
        host, port = args.target
        spec = CallgenSpec(
            host=host,
            port=port,
            calls=args.calls,
            concurrency=args.concurrency,
            numbers=numbers,
            callers=callers,
            mix=args.mix,
            time_scale=args.time_scale,
            seed=args.seed,
        )
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    report = asyncio.run(run_callgen(spec))
    print(*report.lines(), sep="\n")
    if report.interrupted:
        return EXIT_INTERRUPTED
    return 0 if report.ok else 1


def _plan_numbers(config_dir: str) -> list[str]:
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


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of zero or more")
    return value
