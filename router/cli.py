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
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn

from router.commands.exits import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_USAGE

COMMANDS = {
    "serve": "router.commands.serve",
    "demo": "router.commands.demo",
    "check": "router.commands.check",
    "calendar": "router.commands.calendar",
    "simulate": "router.commands.simulate",
    "pin-hash": "router.commands.pin_hash",
    "cdr": "router.commands.cdr",
    "callgen": "router.commands.callgen",
    "account": "router.commands.account",
    "bill": "router.commands.bill",
    "rate": "router.commands.rate",
    "db": "router.commands.db",
    "web": "console.commands.web",
    "users": "console.commands.users",
    "report": "console.commands.report",
    "numbers": "router.commands.numbers",
    "providers": "router.commands.providers",
    "webhooks": "router.commands.webhooks",
    "sms": "router.commands.sms",
    "low-balance": "router.commands.low_balance",
    "recordings": "router.commands.recordings",
}
"""Each command's module, in the order --help lists them. Only the module of the command
run is imported: `serve` refuses a taken address before the router's modules (geodata,
storage engines, the console) take a second or more to load."""

DEFAULT_CONFIG = "config"
"""Every command's --config when none is given: ./config."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the command and its --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def installed_version() -> str:
    try:
        return version("hotline400")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of `command` alone when it names one."""
    parser = OneLineParser(prog="hotline400", description="Call routing for 400 business numbers.")
    parser.add_argument("--version", action="version", version=f"hotline400 {installed_version()}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", default=DEFAULT_CONFIG, metavar="DIR", help="configuration directory (./config)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    names = [command] if command in COMMANDS else list(COMMANDS)
    for name in names:
        import_module(COMMANDS[name]).add_parser(commands, common)
    _describe(parser)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    """Open each command's --help, and each of its actions', with the line its parent's
    --help lists it with (`bill --help`: "Monthly statements; ..."), unless the command
    words it itself: a command's own help says what it does, not only its options."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for listed in action._choices_actions:
            command = action.choices[listed.dest]
            if command.description is None and listed.help:
                text = listed.help[0].upper() + listed.help[1:]
                command.description = text if text.endswith(".") else f"{text}."
            _describe(command)


def command_named(argv: Sequence[str]) -> str | None:
    """The command word of a command line: the first argument that is not an option (the
    top-level options, --help and --version, take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        words = sys.argv[1:] if argv is None else argv
        args = build_parser(command_named(words)).parse_args(words)
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
