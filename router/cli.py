"""The `hotline400` command line: one subcommand per job, all reading one config directory."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from router.commands import (
    account,
    bill,
    calendar,
    callgen,
    cdr,
    check,
    db,
    demo,
    pin_hash,
    rate,
    serve,
    simulate,
)

COMMANDS = (serve, demo, check, calendar, simulate, pin_hash, cdr, callgen, account, bill, rate, db)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline400", description="Call routing for 400 business numbers."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", default="config", metavar="DIR", help="configuration directory (./config)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
