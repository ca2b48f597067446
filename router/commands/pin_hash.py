"""`hotline400 pin-hash`: turn a PIN into the salted hash a plan file stores.

On a terminal the PIN is asked twice without echo, so a typo cannot lock callers out;
`--stdin` reads it from a pipe instead (one line). Ctrl-D, Ctrl-C, a missing terminal or
two different entries end the command with one line and no hash.

The hash records the PIN's length: a plan's pin.max_digits (how many digits are read before
the entry ends) defaults to it, and a plan whose max_digits is shorter, where no caller could
ever enter the whole PIN, is refused by the loader and `hotline400 check`.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from dialplan.pin import hash_pin


class NoPin(Exception):
    """No PIN was entered; the message says why."""


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    # not `common`: the hash depends on the PIN alone, no configuration is read
    parser = commands.add_parser(
        "pin-hash",
        help="hash a PIN (4-12 digits) for a plan's pin.hash; the hash records the PIN's "
        "length, which pin.max_digits defaults to",
    )
    # taken and not shown, for a script that passes --config to every command
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument(
        "--stdin",
        action="store_true",
        help="read the PIN from standard input (one line) instead of asking on the terminal",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        pin = _piped() if args.stdin else _asked()
        print(hash_pin(pin))
    except (NoPin, ValueError) as error:
        print(f"pin-hash: {error}; nothing hashed", file=sys.stderr)
        return 1
    return 0


def _piped() -> str:
    line = sys.stdin.readline()
    if not line:
        raise NoPin("no PIN on standard input")
    return line.strip()


def _asked() -> str:
    if not sys.stdin.isatty():
        raise NoPin("no terminal to ask the PIN on (pipe it in with --stdin)")
    try:
        first = getpass.getpass("PIN: ")
        second = getpass.getpass("PIN again: ")
    except EOFError:
        print(file=sys.stderr)  # the prompt's line was left open
        raise NoPin("no PIN entered") from None
    if first != second:
        raise NoPin("the two entries differ")
    return first
