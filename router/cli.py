"""The `hotline400` command line: one subcommand per job, all reading one config directory.

Every refusal is one line on stderr and a non-zero exit: a mistyped option names the
option and points at `--help` instead of printing the usage block, Ctrl-C says it was
interrupted, and a reader that stops early (`hotline400 cdr | head`) ends the command
quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn

from console.commands import report, users, web
from router.commands import (
    account,
    bill,
    calendar,
    callgen,
    cdr,
    check,
    db,
    demo,
    numbers,
    pin_hash,
    providers,
    rate,
    serve,
    simulate,
    webhooks,
)
from router.commands.exits import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_USAGE

COMMANDS = (
    serve, demo, check, calendar, simulate, pin_hash, cdr, callgen, account, bill, rate, db, web,
    users, report, numbers, providers, webhooks,
)



class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the command and its --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def installed_version() -> str:
    try:
        return version("hotline400")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="hotline400", description="Call routing for 400 business numbers.")
    parser.add_argument(
        "--version", action="version", version=f"hotline400 {installed_version()}"
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", default="config", metavar="DIR", help="configuration directory (./config)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        code: int = args.run(args)
        sys.stdout.flush()  # a reader gone shows here, not in the interpreter's last flush
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    """The reader of stdout is gone: point stdout at /dev/null so the interpreter's final
    flush raises nothing more."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file descriptor (captured in-process)
        pass


if __name__ == "__main__":
    sys.exit(main())
