"""`hotline400 pin-hash`: turn a PIN into the salted hash a plan file stores."""

from __future__ import annotations

import argparse
import getpass
import sys

from dialplan.pin import hash_pin


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "pin-hash", parents=[common], help="hash a PIN for a plan's pin.hash"
    )
    parser.add_argument("--stdin", action="store_true", help="read the PIN from standard input")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    pin = sys.stdin.readline().strip() if args.stdin else getpass.getpass("PIN: ")
    try:
        print(hash_pin(pin))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
